"""Run every benchmark in turn (each writes benchmarks/results/<topic>.md), then rebuild
BENCHMARKS.md. A full run takes about half an hour on 2 cores; `--quick` runs the small
versions, which print their tables but leave the results files alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from benchmarks import collect

BENCHMARKS = ["bench_demo", "bench_stats", "bench_kernels", "bench_memory", "bench_attribution",
              "bench_token_attribution", "bench_projection", "bench_boundary", "bench_watch",
              "bench_serve"]
HAS_QUICK = {"bench_stats", "bench_kernels", "bench_memory", "bench_attribution", "bench_token_attribution",
             "bench_projection", "bench_boundary", "bench_watch", "bench_serve"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small versions, results unchanged")
    args = parser.parse_args()
    for name in BENCHMARKS:
        if args.quick and name not in HAS_QUICK:
            continue
        cmd = [sys.executable, "-m", f"benchmarks.{name}"] + (["--quick"] if args.quick else [])
        print(f"== {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
    if not args.quick:
        collect.main()


if __name__ == "__main__":
    main()
