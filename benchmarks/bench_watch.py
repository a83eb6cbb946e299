"""Cost of watching a training loop, and of reading a large run store.

Side by side, in one run, on an MLP 784-512-256-10 and a small CNN (1x28x28 -> conv16 ->
pool -> conv32 -> pool -> fc10), batch 256, SGD with momentum:

- plain training steps (forward, loss, backward, optimizer step);
- ``netxray.watch(every=10)`` and ``watch(every=1)`` (activation statistics with 32-bin layer
  histograms, output-gradient RMS, parameter norms and update ratios, the every-step NaN
  check, the writer thread and its SQLite commits, closing included); with 1 thread of 2
  cores the watch reduces on the idle core, and ``stats_thread=False`` rows show the cost
  of reducing on the training thread instead;
- a ``wandb.watch(log="all")``-style hook set, written here (wandb is not installed):
  a 64-bin histogram of every parameter's gradient (a tensor hook) and of every parameter
  after every step, each read back to the CPU as wandb does to log it.

Each variant trains its own copy of the model; they run in turn, a round each (40 steps of
the MLP, 10 of the CNN: a few tenths of a second), for many rounds, so that the load
changes of this shared machine hit neighbouring rounds of every variant alike; medians over
rounds, ratios to plain training; with 1 and with 2 threads. A watch's round ends with
``w.flush()``, timed: the round pays for all of its own background work (statistics thread,
writer, a commit), none of which may spill into another variant's round (it would slow that
variant instead: measured, without it, a 2-thread MLP's ``every=1`` looked 1.2x where it
costs 1.5x). With 1 thread that is an upper bound: the writer handles what is queued up to
0.5 s late, so part of its work runs in the flush, while training waits, where a long run
would overlap it on the idle core. Watches stay open across rounds (the steady state of a
long run: every 10th step of ``every=10`` is recorded); opening and closing the store
(SQLite file, writer thread, final flush) is reported apart. Then a synthetic run store of
100,000 steps x 50 layers: time to open it and to read one layer's statistics.
Each model and thread count runs in several fresh processes (``--processes``, default 5),
in turn: the table gives the median of their ratios and the range between them.
Run: ``python -m benchmarks.bench_watch`` (``--quick``: fewer steps, results file untouched).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count, repeat
from pathlib import Path

import numpy as np
import torch
from torch import nn

import netxray
from netxray._watch_worker import spare_core
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


class Variant:
    """One way of training its own copy of the model (same weights, same data): ``round``
    runs ``steps`` steps and returns their seconds. Watches stay open across rounds (the
    steady state of a long run); their open and close times are kept apart in ``fixed``."""

    def __init__(self, kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 tmp: Path) -> None:
        self.kind, self.model, self.x, self.y = kind, copy.deepcopy(model), x, y
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.fixed = 0.0
        self.after: Callable[[torch.Tensor], object] = lambda loss: None
        self.watch: netxray.Watch | None = None
        self.hooks: WandbStyle | None = None
        if kind == "wandb":
            self.hooks = WandbStyle(self.model)
            self.after = lambda loss: self.hooks.step()  # type: ignore[union-attr]
        elif kind.startswith("every="):
            every, _, inline = kind.removeprefix("every=").partition(" ")
            t = time.perf_counter()
            self.watch = netxray.watch(self.model, tmp / f"{kind}-{next(_RUNS)}.sqlite",
                                       every=int(every), alarms=lambda f, s: None,
                                       stats_thread=False if inline else None).__enter__()
            self.fixed = time.perf_counter() - t
            self.after = lambda loss: self.watch.step(loss=loss)  # type: ignore[union-attr]

    def round(self, steps: int) -> float:
        model, opt, loss_fn, x, y, after = (self.model, self.opt, self.loss_fn, self.x, self.y,
                                            self.after)
        t = time.perf_counter()
        for _ in range(steps):
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            after(loss)
        if self.watch is not None:  # this round's background work, in this round's time
            self.watch.flush()
        if x.is_cuda:  # (the GPU's work, not just its launches)
            torch.cuda.synchronize()
        return time.perf_counter() - t

    def close(self) -> None:
        if self.hooks is not None:
            self.hooks.close()
        if self.watch is not None:
            t = time.perf_counter()
            self.watch.close()
            self.fixed += time.perf_counter() - t


_NAMES = {"plain": "plain training", "every=10": "watch(every=10)",
          "every=1": "watch(every=1)", "wandb": "wandb.watch-style hooks (hand-written)",
          "every=10 inline": "watch(every=10, stats_thread=False)",
          "every=1 inline": "watch(every=1, stats_thread=False)"}
_MODELS = {"mlp": "MLP 784-512-256-10", "cnn": "CNN 1x28x28 c16 c32 fc"}
_STEPS = {"mlp": 40, "cnn": 10}  # per round


def compare(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, rounds: int,
            tmp: Path) -> dict[str, list[float]]:
    """Seconds per step of each variant, one entry per round: rounds of ``steps`` steps per
    variant, in turn (a round takes a fraction of a second, so load changes on this shared
    machine hit neighbouring rounds of every variant alike); ``"fixed"``: the watches' open
    and close times."""
    kinds = ["plain", "every=10", "every=1", "wandb"]
    if spare_core():  # the watch reduces on the idle core: show the training thread's cost too
        kinds += ["every=10 inline", "every=1 inline"]
    variants = {v: Variant(v, model, x, y, tmp) for v in kinds}
    times: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for v in variants.values():
            v.round(steps)  # warm-up (and each watch's step 0, which sets up its layers)
        for _ in range(rounds):
            for k, v in variants.items():
                times[k].append(v.round(steps) / steps)
    finally:
        for v in variants.values():
            v.close()
    times["fixed"] = [variants["every=10"].fixed, variants["every=1"].fixed]
    return times


def _part(which: str, threads: int, rounds: int) -> None:
    """One process's measurement of one model at one thread count, as JSON on stdout."""
    if which not in _MODELS:
        raise ValueError(f"model must be one of {tuple(_MODELS)}, got {which!r}")
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (256,), generator=g)
    if which == "mlp":
        model, x = mlp([784, 512, 256, 10], seed=0), torch.randn(256, 784, generator=g)
    else:
        model, x = cnn(), torch.randn(256, 1, 28, 28, generator=g)
    with tempfile.TemporaryDirectory() as d:  # (rounds of a few tenths of a second each)
        print(json.dumps(compare(model, x, y, _STEPS[which], rounds, Path(d))))


def _in_process(which: str, threads: int, rounds: int) -> dict[str, list[float]]:
    """:func:`_part` in a fresh process: its own memory layout, its own model copies."""
    here = Path(__file__).resolve().parent
    out = subprocess.run([sys.executable, str(here / "bench_watch.py"), "--part", which,
                          str(threads), str(rounds)], capture_output=True, text=True)
    if out.returncode != 0:  # (its traceback, not just an exit status)
        raise RuntimeError(f"bench_watch --part {which} {threads} {rounds} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(name: str, runs: list[dict[str, list[float]]]) -> list[list[object]]:
    """Table rows of one model at one thread count from several processes' rounds: the
    median ms per step over every round, and the median over processes of each process's
    median per-round ratio to plain training (its range: the spread between processes)."""
    rows = []
    for v in [k for k in _NAMES if k in runs[0]]:
        ms = statistics.median(t for run in runs for t in run[v])
        ratios = [statistics.median(t / p for t, p in zip(run[v], run["plain"], strict=True))
                  for run in runs]
        spread = f"{min(ratios):.3f}-{max(ratios):.3f}" if len(ratios) > 1 else ""
        rows.append([name, _NAMES[v], f"{ms * 1e3:.2f}", f"{statistics.median(ratios):.3f}x",
                     spread])
    once = statistics.median(t for run in runs for t in run["fixed"])
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
    ap.add_argument("--processes", type=int, default=5,
                    help="fresh processes per model and thread count (default 5)")
    ap.add_argument("--part", nargs=3, metavar=("MODEL", "THREADS", "ROUNDS"),
                    help=argparse.SUPPRESS)  # (one process's share, run by main)
    args = ap.parse_args()
    if args.part:
        return _part(args.part[0], int(args.part[1]), int(args.part[2]))
    rounds = {"mlp": 3, "cnn": 3} if args.quick else {"mlp": 12, "cnn": 10}
    procs = 1 if args.quick else args.processes
    configs = [(which, threads, rounds[which]) for threads in (1, 2) for which in _MODELS]
    load = os.getloadavg()[0]
    runs: dict[tuple[str, int, int], list[dict[str, list[float]]]] = {c: [] for c in configs}
    for _ in range(procs):  # each configuration once per pass: a slow spell hits them all
        for c in configs:
            runs[c].append(_in_process(*c))
    rows = []
    for (which, threads, _), got in runs.items():
        rows += summarize(f"{_MODELS[which]}, {threads} thread(s)", got)
    with tempfile.TemporaryDirectory() as d:
        store = store_read(10_000 if args.quick else 100_000, 50, Path(d))
    load = f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores"
    text = [
        "# Watching training: cost per step, and reading a large run store",
        "",
        "Command: `python -m benchmarks.bench_watch`" + (" --quick" if args.quick else "")
        + f" ({machine()}, batch 256; {procs} fresh process(es) per model and thread count, "
        f"each running rounds of {_STEPS['mlp']} (MLP) or {_STEPS['cnn']} (CNN) steps per "
        f"variant in turn, {rounds['mlp']} and {rounds['cnn']} rounds; {load})",
        "",
        "ms per step: the training loop alone, the store already open (steady state); opening "
        "and closing the store is a fixed cost per run, in its own row. Each round runs every "
        "variant for a few tenths of a second, in turn, each on its own copy of the model; a "
        "watch's round ends with a timed w.flush(), so that it pays for its own background "
        "work (statistics thread, writer, one commit) and none spills into another variant's "
        "round; each round is "
        "paired with that round's plain steps, so a change of load between rounds cancels "
        "out. Each process gives the median of its per-round ratios; the table shows the "
        "median of the processes' ratios and their range: fresh processes place the models "
        "and buffers anew in memory, and on this VM that alone moves a ratio by 1-4%.",
        "",
        markdown_table(["model", "what", "ms per step (median)", "ratio to plain (median)",
                        "range over processes"], rows),
        "",
        markdown_table(["run store", "what", "median ms"], store),
        "",
        "Targets: watch(every=10) within 1.03x of plain training, watch(every=1) within 1.3x.",
    ]
    emit("watch", "\n".join(text) + "\n", write=not args.quick)


if __name__ == "__main__":
    main()
