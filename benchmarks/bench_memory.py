"""Peak memory of ``collect_stats`` does not grow with the number of samples.

Streams N samples (generated on the fly, batch 4096) through an MLP 784-512-256-10 with
activation statistics, and, separately, with gradient statistics. Each (mode, N) runs in a
fresh subprocess that reports its peak resident set size (``resource.getrusage`` maxrss;
tracemalloc does not see torch's allocations). A baseline process does one batch.

Run: ``.venv/bin/python benchmarks/bench_memory.py`` (``--quick``: 10k and 100k samples).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

try:
    from benchmarks._common import emit
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit  # type: ignore[no-redef]

CHILD = r"""
import json, resource, sys, time
import torch
from netxray.models import mlp
from netxray.stats import collect_stats

torch.set_num_threads(2)
n, mode, batch = int(sys.argv[1]), sys.argv[2], 4096
model = mlp((784, 512, 256, 10), init="torch", seed=0).eval()

def batches():
    g = torch.Generator().manual_seed(0)
    for start in range(0, n, batch):
        b = min(batch, n - start)
        x = torch.randn(b, 784, generator=g)
        yield (x, torch.randint(0, 10, (b,), generator=g)) if mode == "gradients" else x

t = time.perf_counter()
stats = collect_stats(model, batches(), gradients=(mode == "gradients"))
assert stats.n_samples == n
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": time.perf_counter() - t}))
"""


def run(n: int, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), mode],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [4096, 10_000, 100_000] if args.quick else [4096, 100_000, 1_000_000]
    rows = []
    for mode in ("activations", "gradients"):
        for n in sizes:
            t = time.perf_counter()
            r = run(n, mode)
            rows.append((mode, n, r["maxrss_kb"] / 1024, r["seconds"]))
            print(f"{mode:12s} n={n:>9,} peak {r['maxrss_kb'] / 1024:7.1f} MiB "
                  f"({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    cmd = "python benchmarks/bench_memory.py" + (" --quick" if args.quick else "")
    lines = [
        "# Peak memory of collect_stats vs number of samples",
        "",
        f"Command: `{cmd}`",
        "",
        "MLP 784-512-256-10, batches of 4096 generated on the fly, one fresh process per row; "
        "peak RSS from `resource.getrusage(RUSAGE_SELF).ru_maxrss` (includes Python, torch and "
        "the model). The first row of each mode is a single batch.",
        "",
        "| statistics | samples | peak RSS MiB | vs one batch | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, n, mib, sec in rows:
        base = next(m for mo, nn_, m, _ in rows if mo == mode and nn_ == sizes[0])
        lines.append(f"| {mode} | {n:,} | {mib:.1f} | {mib - base:+.1f} | {sec:.1f} |")
    lines += [
        "",
        "Flat means: the peak does not grow with the number of samples (10x more samples, "
        "same peak within the allocator's noise of ~10-20 MiB). The step from one batch to "
        "many is the steady-state working set: the allocator keeps freed batch-sized blocks, "
        "and with gradients one batch's autograd graph and gradients plus the float64 "
        "full-data gradient accumulators (one copy of the parameters).",
    ]
    emit("memory", "\n".join(lines) + "\n", write=not args.quick)


if __name__ == "__main__":
    main()
