"""The reductions of one recorded training step: PyTorch's kernels against the compiled loops.

Side by side, in one run, on the outputs a training watch records (ReLU outputs of the
MLP 784-512-256-10 and of the small CNN of ``bench_watch``, batch 256, and a batch of 4096
for scale), with 1 and 2 threads:

- ``UnitStats(layer_hist=True).update``: per-unit moments, min, max, activity and one
  32-bin layer histogram, by PyTorch's kernels (``compiled=False``, what one-shot analyses
  use) and by the compiled loops (``compiled=True``, what ``netxray.watch`` uses);
- the parameter norms of a recorded step (weight, gradient, update and previous-weight
  norms of the MLP's parameters): ``torch._foreach_norm`` calls against one compiled pass
  over each weight and its previous copy.

Variants alternate call by call; medians over repeats; ratios compiled / PyTorch.
Run: ``python -m benchmarks.bench_kernels`` (``--quick``: fewer repeats, results untouched).
"""

from __future__ import annotations

import argparse
import os

import torch

import netxray._watch_reduce as reduce
from netxray.models import mlp
from netxray.stats import UnitStats
from netxray.stats._kernels import Scratch

try:
    from benchmarks._common import emit, machine, markdown_table, run_interleaved
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import (  # type: ignore[no-redef]
        emit,
        machine,
        markdown_table,
        run_interleaved,
    )

SHAPES = [("MLP layer 1 (256 x 512)", (256, 512)), ("MLP layer 2 (256 x 256)", (256, 256)),
          ("CNN conv1 ReLU (256 x 16 x 28 x 28)", (256, 16, 28, 28)),
          ("CNN conv2 ReLU (256 x 32 x 14 x 14)", (256, 32, 14, 14)),
          ("4096 x 512", (4096, 512))]


def unit_stats_rows(threads: int, repeats: int) -> list[list[str]]:
    rows = []
    for name, shape in SHAPES:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).relu_()
        scratch = Scratch()  # (the PyTorch kernels' work buffers, reused as a watch does)
        t = run_interleaved({
            compiled: (lambda c=compiled, x=x, s=scratch: UnitStats(
                hist_range=(0.0, 8.0), layer_hist=True, compiled=c).update(x, scratch=s))
            for compiled in (False, True)}, repeats)
        rows.append([f"UnitStats.update, {name}", str(threads), f"{t[False] * 1e3:.3f}",
                     f"{t[True] * 1e3:.3f}", f"{t[True] / t[False]:.2f}x"])
    return rows


def norms_rows(threads: int, repeats: int) -> list[list[str]]:
    model = mlp([784, 512, 256, 10], seed=0)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = [(n, p, p.grad) for n, p in model.named_parameters()]
    prev = {n: p.detach() + 0.01 for n, p in model.named_parameters()}
    fused = reduce._fused

    def run(compiled: bool) -> None:
        reduce._fused = fused if compiled else (lambda tensors: False)
        try:
            reduce.param_norms(params, prev)
        finally:
            reduce._fused = fused

    t = run_interleaved({c: (lambda c=c: run(c)) for c in (False, True)}, repeats)
    return [[f"parameter norms, MLP 784-512-256-10 ({sum(p.numel() for p in model.parameters())}"
             " parameters)", str(threads), f"{t[False] * 1e3:.3f}", f"{t[True] * 1e3:.3f}",
             f"{t[True] / t[False]:.2f}x"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, results untouched")
    args = ap.parse_args()
    repeats = 10 if args.quick else 60
    load0 = os.getloadavg()[0]
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rows += unit_stats_rows(threads, repeats) + norms_rows(threads, repeats)
    load1 = os.getloadavg()[0]
    table = markdown_table(["what", "threads", "PyTorch kernels, ms", "compiled loops, ms",
                            "ratio"], rows)
    text = (
        "# A recorded step's reductions: PyTorch's kernels against the compiled loops\n\n"
        f"Command: `python -m benchmarks.bench_kernels` ({machine()}; {repeats} calls each, "
        f"alternating; load average {load0:.1f} before, {load1:.1f} after, "
        f"{os.cpu_count()} cores)\n\n"
        f"{table}\n\n"
        "Float32 ReLU outputs, per-unit statistics with one 32-bin layer histogram, as "
        "`netxray.watch` records them. The PyTorch kernels take a dozen passes (mean, centred "
        "squares, min, max, counts, quantisation, `bincount`), each a kernel call; the "
        "compiled loops (numba, `netxray/stats/_fused_loops.py`) read each value once, on "
        "one thread. The histogram's one "
        "increment per value does not vectorise: it is most of the loops' time on the CNN's "
        "outputs. Loading the compiled loops costs about 0.7 s once per process (not in the "
        "table).\n"
    )
    emit("kernels", text, write=not args.quick)


if __name__ == "__main__":
    main()
