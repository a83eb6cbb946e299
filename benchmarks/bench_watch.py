"""Cost of watching a training loop, and of reading a large run store.

Side by side, in one run, on an MLP 784-512-256-10 and a small CNN (1x28x28 -> conv16 ->
pool -> conv32 -> pool -> fc10), batch 256, SGD with momentum:

- plain training steps (forward, loss, backward, optimizer step);
- ``netxray.watch(every=10)`` and ``watch(every=1)`` (activation statistics with 32-bin layer
  histograms, output-gradient RMS, parameter norms and update ratios, the every-step NaN
  check, the writer thread and its SQLite commits, closing included);
- a ``wandb.watch(log="all")``-style hook set, written here (wandb is not installed):
  a 64-bin histogram of every parameter's gradient (a tensor hook) and of every parameter
  after every step, each read back to the CPU as wandb does to log it.

Variants run round-robin (rounds of ``steps`` steps each) so that load changes hit every
variant alike; medians over rounds, ratios to plain training; with 1 and with 2 threads.
A watch's steps are timed with its store open (the steady state of a long run); opening
and closing the store (SQLite file, writer thread, final flush) is reported apart. Then a synthetic run store of
100,000 steps x 50 layers: time to open it and to read one layer's statistics.
Run: ``python -m benchmarks.bench_watch`` (``--quick``: fewer steps, results file untouched).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from itertools import count, repeat
from pathlib import Path

import numpy as np
import torch
from torch import nn

import netxray
from netxray.models import mlp

try:
    from benchmarks._common import emit, machine, markdown_table
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit, machine, markdown_table  # type: ignore[no-redef]


_RUNS = count()


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip


class WandbStyle:
    """Histograms of every parameter's gradient (in a tensor hook) and of every parameter
    after each step, 64 bins between the tensor's min and max, copied to the CPU."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.logged: list[torch.Tensor] = []
        self.handles = [p.register_hook(self._hist) for p in model.parameters()]

    def _hist(self, t: torch.Tensor) -> None:
        t = t.detach().float()
        lo, hi = t.min().item(), t.max().item()
        self.logged.append(torch.histc(t, 64, lo, hi).cpu())

    def step(self) -> None:
        for p in self.model.parameters():
            self._hist(p)
        self.logged.clear()

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
         variant: str, tmp: Path) -> Callable[[], float | None]:
    """One round of ``steps`` steps; returns the training loop's seconds for a watch (the
    steady state: opening and closing the store are timed apart, into ``fixed``)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def train(after: Callable[[torch.Tensor], None]) -> None:
        for _ in range(steps):
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            after(loss)

    def run() -> float | None:
        if variant == "plain":
            train(lambda loss: None)
        elif variant == "wandb":
            hooks = WandbStyle(model)
            try:
                train(lambda loss: hooks.step())
            finally:
                hooks.close()
            return None
        else:
            every = int(variant.split("=")[1])
            path = tmp / f"{variant}-{next(_RUNS)}.sqlite"
            t = time.perf_counter()
            w = netxray.watch(model, path, every=every, alarms=lambda f, s: None).__enter__()
            opened = time.perf_counter() - t
            try:
                t = time.perf_counter()
                train(lambda loss: w.step(loss=loss))
                took = time.perf_counter() - t
            finally:
                t = time.perf_counter()
                w.close()
                fixed[variant].append(opened + time.perf_counter() - t)
            return took
        return None

    return run


fixed: dict[str, list[float]] = {"every=10": [], "every=1": []}


def compare(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
            rounds: int, tmp: Path) -> list[list[object]]:
    variants = {"plain": "plain training", "every=10": "watch(every=10)",
                "every=1": "watch(every=1)", "wandb": "wandb.watch-style hooks (hand-written)"}
    fns = {v: loop(model, x, y, steps, v, tmp) for v in variants}
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {v: [] for v in fns}
    for f in fixed.values():
        f.clear()
    for _ in range(rounds):
        for v, fn in fns.items():
            t = time.perf_counter()
            inside = fn()
            times[v].append((time.perf_counter() - t if inside is None else inside) / steps)
    med = {v: statistics.median(ts) for v, ts in times.items()}
    # paired: each round's time over the plain loop's time in the same round, so that a load
    # change between rounds cancels; the median of those ratios is the one to read
    paired = {v: statistics.median(t / p for t, p in zip(ts, times["plain"], strict=True))
              for v, ts in times.items()}
    rows = [[name, variants[v], f"{med[v] * 1e3:.2f}", f"{med[v] / med['plain']:.3f}x",
             f"{paired[v]:.3f}x"] for v in variants]
    once = statistics.median(fixed["every=10"] + fixed["every=1"])
    rows.append([name, "watch: open + close the store (once per run)", f"{once * 1e3:.1f}", "",
                 ""])
    return rows


def store_read(steps: int, layers: int, tmp: Path) -> list[list[object]]:
    from netxray.store import RunDB, open_run
    from netxray.store_results import LayerInfo

    path = tmp / "big.sqlite"
    t = time.perf_counter()
    db = RunDB(path, overwrite=True)
    db.con.execute("PRAGMA journal_mode=OFF")
    for i in range(layers):
        db.add_layer(LayerInfo(name=f"layer{i}", module_type="ReLU", family="relu", units=64,
                               shape=(64,), hist_edges=np.linspace(0.0, 8.0, 33)))
    db.write_steps(zip(range(steps), map(float, range(steps)), repeat(0.5), repeat(None), strict=False))
    hist = np.arange(34, dtype=np.int64).tobytes()
    for lid in range(1, layers + 1):
        db.write_layer_stats(zip(repeat(lid), range(steps), repeat(0.1), repeat(0.2), repeat(0.0),
                                 repeat(1.0), repeat(0.5), repeat(None), repeat(0), repeat(0),
                                 repeat(0), repeat(0.01), repeat(hist), strict=False))
    db.commit()
    db.con.execute("PRAGMA journal_mode=WAL")
    db.close()
    build = time.perf_counter() - t
    size = path.stat().st_size / 2**20
    opens, reads = [], []
    for i in range(5):
        t = time.perf_counter()
        run = open_run(path)
        opens.append(time.perf_counter() - t)
        t = time.perf_counter()
        run.layer_stats(f"layer{(7 * i) % layers}")
        reads.append(time.perf_counter() - t)
        run.close()
    what = f"{steps:,} steps x {layers} layers, 32-bin histograms ({size:.0f} MiB, built in {build:.0f} s)"
    return [[what, "open_run", f"{statistics.median(opens) * 1e3:.1f}"],
            [what, "layer_stats(one layer)", f"{statistics.median(reads) * 1e3:.0f}"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps and rounds, a smaller store")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    rounds = 3 if args.quick else 15
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        x, y = torch.randn(256, 784, generator=g), torch.randint(0, 10, (256,), generator=g)
        xc = torch.randn(256, 1, 28, 28, generator=g)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rows += compare(f"MLP 784-512-256-10, {threads} thread(s)",
                            mlp([784, 512, 256, 10], seed=0), x, y,
                            20 if args.quick else 60, rounds, tmp)
            rows += compare(f"CNN 1x28x28 c16 c32 fc, {threads} thread(s)", cnn(), xc, y,
                            5 if args.quick else 10, rounds, tmp)
        store = store_read(10_000 if args.quick else 100_000, 50, tmp)
    load = f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores"
    text = [
        "# Watching training: cost per step, and reading a large run store",
        "",
        "Command: `python -m benchmarks.bench_watch`" + (" --quick" if args.quick else "")
        + f" ({machine()}, batch 256; medians of {rounds} rounds, run round-robin; {load})",
        "",
        "ms per step: the training loop alone, the store already open (steady state); opening "
        "and closing the store is a fixed cost per run, in its own row. Each round runs every "
        "variant once, in turn; the last column pairs each round with that round's plain "
        "loop, so a change of load between rounds cancels out.",
        "",
        markdown_table(["model", "what", "ms per step (median)", "ratio of medians",
                        "median of per-round ratios"], rows),
        "",
        markdown_table(["run store", "what", "median ms"], store),
        "",
        "Targets: watch(every=10) within 1.03x of plain training, watch(every=1) within 1.3x.",
    ]
    emit("watch", "\n".join(text) + "\n", write=not args.quick)


if __name__ == "__main__":
    main()
