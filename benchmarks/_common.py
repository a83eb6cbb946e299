"""Shared helpers for the benchmarks: median timing, markdown tables, writing results.

Import as ``from benchmarks._common import ...`` (``python -m benchmarks.bench_x``), falling
back to ``from _common import ...`` when a benchmark runs as a script (``python
benchmarks/bench_x.py`` puts ``benchmarks/`` itself on ``sys.path``).
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from netxray._io import write_text

RESULTS = Path(__file__).resolve().parent / "results"


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time per function, running them round-robin so that load changes on a
    shared machine hit every variant alike (after one untimed call of each)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def machine() -> str:
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()}"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def emit(name: str, text: str, *, write: bool = True) -> Path | None:
    """Print ``text`` and, if ``write``, save it atomically as ``results/<name>.md``."""
    print()
    print(text)
    if not write:
        return None
    path = write_text(RESULTS / f"{name}.md", text)
    print(f"wrote {path}", file=sys.stderr)
    return path


def write_result(name: str, title: str, body: str) -> Path:
    """Write ``results/<name>.md`` with the command that made it."""
    script = Path(sys.argv[0]).resolve()
    root = Path(__file__).resolve().parents[1]
    argv0 = str(script.relative_to(root)) if script.is_relative_to(root) else sys.argv[0]
    command = " ".join([Path(sys.executable).name, argv0, *sys.argv[1:]])  # no machine paths
    path = emit(name, f"## {title}\n\nCommand: `{command}` ({machine()})\n\n{body}\n")
    assert path is not None
    return path
