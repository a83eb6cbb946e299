"""Decision-surface throughput: netxray's decision_boundary vs a point-by-point loop vs the floor.

For each model the grid has ``resolution**2`` points (500 x 500 = 250,000 by default):

- ``decision_boundary``: ours (grid built and mapped into input space chunk by chunk,
  softmax, copy to NumPy), median of 5 runs;
- point by point: ``model(x[None])`` + softmax per grid point, the way a naive loop draws a
  surface; a subset of 2000 points is timed (median of 3) and extrapolated;
- floor: one batched forward pass + softmax of the whole grid, prebuilt as one tensor
  (median of 5): no method can be much faster than this.

    .venv/bin/python benchmarks/bench_boundary.py           # ~1-2 min
    .venv/bin/python benchmarks/bench_boundary.py --quick   # 200 x 200 grid
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
import torch
from torch import nn

from netxray.boundary import decision_boundary
from netxray.models import mlp

try:
    from benchmarks._common import emit, median_seconds
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit, median_seconds  # type: ignore[no-redef]

SUBSET = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 200 x 200 grid")
    args = parser.parse_args()
    res = 200 if args.quick else 500
    m = res * res
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rng = np.random.default_rng(0)
    cases = [
        ("lecture 2-10-2, 2-D inputs", (2, 10, 2), rng.normal(size=(400, 2))),
        ("2-64-64-3, 2-D inputs", (2, 64, 64, 3), rng.normal(size=(400, 2))),
        ("64-128-128-10, PCA plane", (64, 128, 128, 10), rng.normal(size=(2000, 64))),
    ]
    rows = []
    for name, sizes, X in cases:
        model = mlp(sizes, init="torch", seed=0).eval()
        X = X.astype(np.float32)
        grid = decision_boundary(model, X, resolution=res)
        inputs = torch.as_tensor(
            grid.origin + np.stack([grid.xx, grid.yy], -1).reshape(-1, 2) @ grid.basis,
            dtype=torch.float32,
        )

        def ours(model: nn.Module = model, X: np.ndarray = X) -> object:
            return decision_boundary(model, X, resolution=res)

        def floor(model: nn.Module = model, inputs: torch.Tensor = inputs) -> object:
            with torch.no_grad():
                return torch.softmax(model(inputs), 1)

        def loop(model: nn.Module = model, inputs: torch.Tensor = inputs) -> object:
            with torch.no_grad():
                return [torch.softmax(model(inputs[i : i + 1]), 1) for i in range(SUBSET)]

        t_ours = median_seconds(ours, 5, warmup=0)
        t_floor = median_seconds(floor, 5, warmup=0)
        t_loop = median_seconds(loop, 3, warmup=0) * m / SUBSET
        rows.append((name, t_ours, t_loop, t_floor))
        print(f"{name}: ours {t_ours:.3f}s loop {t_loop:.1f}s floor {t_floor:.3f}s", flush=True)

    lines = [
        "# Decision-boundary benchmark",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_boundary.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads. Shared and noisy: medians.",
        "",
        f"Grid: {res} x {res} = {m:,} points. netxray and the floor: median of 5 runs; "
        f"point by point: {SUBSET} points timed (median of 3), extrapolated to the grid.",
        "",
        "| model | netxray decision_boundary (points/s) | point by point (points/s) "
        "| floor: one batched forward (points/s) | netxray vs loop | netxray / floor time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t_ours, t_loop, t_floor in rows:
        lines.append(
            f"| {name} | {m / t_ours:,.0f} ({t_ours:.3f} s) | {m / t_loop:,.0f} ({t_loop:.1f} s) "
            f"| {m / t_floor:,.0f} ({t_floor:.3f} s) | {t_loop / t_ours:,.0f}x faster "
            f"| {t_ours / t_floor:.2f}x |"
        )
    emit("boundary", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
