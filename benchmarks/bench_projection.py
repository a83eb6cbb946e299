"""Projection speed and quality: PCA, openTSNE (Barnes-Hut / FFT), UMAP vs scikit-learn's TSNE.

Data: 64-unit ReLU hidden states of a random MLP on a 10-centre gaussian mixture, at 2k,
10k and 50k points. Trustworthiness (scikit-learn's definition, 5 neighbours) on the same
seeded sample of at most 2000 points for every method. PCA is timed as the median of 5
runs; the slow methods run once each (minutes each at 50k).

    .venv/bin/python benchmarks/bench_projection.py           # full: ~10-15 min on 2 cores
    .venv/bin/python benchmarks/bench_projection.py --quick   # 2k and 10k only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from netxray.projection import BH_MAX_POINTS, _trust_sample, project

try:
    from benchmarks._common import emit
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit  # type: ignore[no-redef]


def hidden_states(n: int, seed: int = 0) -> np.ndarray:
    """(n, 64) ReLU activations of a random 16-64 MLP on a 10-centre gaussian mixture."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(10, 16))
    X = centres[rng.integers(0, 10, size=n)] + rng.normal(size=(n, 16))
    torch.manual_seed(seed)
    layer = torch.nn.Linear(16, 64)
    with torch.no_grad():
        return torch.relu(layer(torch.as_tensor(X, dtype=torch.float32))).numpy()


def timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[tuple[float, float], np.ndarray]:
    """Median wall-clock and median CPU seconds (all threads of this process)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    assert out is not None
    return (statistics.median(walls), statistics.median(cpus)), out


def sklearn_tsne(H: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", random_state=0, n_jobs=2).fit_transform(H)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 50k-point runs")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the sizes (smoke tests)")
    args = parser.parse_args()
    sizes = args.sizes or ([2000, 10_000] if args.quick else [2000, 10_000, 50_000])
    warnings.filterwarnings("ignore", category=FutureWarning)

    rows: list[tuple[int, str, tuple[float, float], float | None, str]] = []

    def add(
        n: int, name: str, seconds: tuple[float, float], trust: float | None, note: str = ""
    ) -> None:
        rows.append((n, name, seconds, trust, note))
        t = "n/a" if trust is None else f"{trust:.4f}"
        print(
            f"{n:>6}  {name:<28} {seconds[0]:8.2f} s wall {seconds[1]:8.2f} s cpu  "
            f"trust {t}  {note}",
            flush=True,
        )

    # UMAP compiles its numba kernels once per process: measure that apart.
    t0 = time.perf_counter()
    project(hidden_states(300, seed=1), "umap")
    umap_compile = time.perf_counter() - t0
    print(f"UMAP first call (compilation) on 300 points: {umap_compile:.1f} s", flush=True)

    for n in sizes:
        H = hidden_states(n)
        sec, p = timed(lambda H=H: project(H, "pca").coords, 5)
        add(n, "PCA (scikit-learn)", sec, _trust_sample(H, p, 0)[0], "median of 5")
        sec, _ = timed(lambda H=H, p=p: np.array(_trust_sample(H, p, 0)[0]), 3)
        add(n, "(trustworthiness alone)", sec, None, "included in every netxray row")
        sec, p = timed(lambda H=H: project(H, "tsne").coords, 1)
        auto = "bh" if n < BH_MAX_POINTS else "fft"
        add(n, f"openTSNE, default ({auto})", sec, _trust_sample(H, p, 0)[0])
        if n <= 10_000:
            other = "fft" if auto == "bh" else "bh"
            sec, p = timed(
                lambda H=H, m=other: project(H, "tsne", negative_gradient_method=m).coords, 1
            )
            add(n, f"openTSNE, {other}", sec, _trust_sample(H, p, 0)[0])
        sec, p = timed(lambda H=H: project(H, "umap").coords, 1)
        add(n, "UMAP (umap-learn, seeded)", sec, _trust_sample(H, p, 0)[0], "after compilation")
        sec, p = timed(lambda H=H: sklearn_tsne(H), 1)
        add(n, "scikit-learn TSNE", sec, _trust_sample(H, p, 0)[0], "reference")

    lines = [
        "# Projection benchmark",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_projection.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}. Shared and noisy: "
        "other jobs ran at the same time.",
        "",
        "Data: (n, 64) ReLU hidden states of a random MLP on a 10-centre gaussian mixture. "
        "Trustworthiness: scikit-learn's, 5 neighbours, on the same seeded sample of "
        "<= 2000 points. PCA: median of 5 runs; the others: one run each.",
        "",
        f"UMAP's first call in a process compiles numba kernels: {umap_compile:.1f} s "
        "(on 300 points), not included below.",
        "",
        "Wall: elapsed seconds. CPU: seconds of CPU used by all threads of the process, "
        "the steadier number on a shared machine (a 2-thread run can use 2 CPU-s per second).",
        "",
        "| n | method | wall s | CPU s | wall speed-up vs sklearn TSNE "
        "| CPU speed-up vs sklearn TSNE | trustworthiness | note |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    ref = {n: s for n, name, s, _, _ in rows if name == "scikit-learn TSNE"}
    for n, name, sec, trust, note in rows:
        if n not in ref:
            continue
        wall, cpu = sec
        t = "n/a" if trust is None else f"{trust:.4f}"
        lines.append(
            f"| {n} | {name} | {wall:.2f} | {cpu:.2f} | {ref[n][0] / wall:.2f}x "
            f"| {ref[n][1] / cpu:.2f}x | {t} | {note} |"
        )
    if args.quick:
        lines += ["", "Quick run: the 50k-point rows were skipped (`--quick`)."]
    emit("projection", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
