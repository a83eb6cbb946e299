"""`netxray demo` against the lecture's script, whole commands, side by side in one run.

The lecture's script trains and prints; `netxray demo` trains the same model to the same
numbers and also diagnoses it and writes the report and its PNGs. Both are timed as whole
processes (interpreter start and imports included), and the demo's lecture part alone is
timed in-process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from benchmarks._common import markdown_table, median_seconds, write_result
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import markdown_table, median_seconds, write_result  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed" / "seed_demo.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed-script", type=Path, default=SEED)
    args = parser.parse_args()
    py = sys.executable
    out = tempfile.mkdtemp(prefix="netxray-bench-")

    def lecture() -> None:
        subprocess.run([py, str(args.seed_script)], check=True, capture_output=True)

    def demo() -> None:
        subprocess.run([py, "-m", "netxray.cli", "demo", "--no-progress", "--out", out],
                       check=True, capture_output=True)

    def demo_lecture_part() -> None:
        subprocess.run([py, "-c", "from netxray import demo; print(demo.lecture_table(demo.run()))"],
                       check=True, capture_output=True)

    t_lecture = median_seconds(lecture, args.repeats)
    t_demo = median_seconds(demo, args.repeats)
    t_part = median_seconds(demo_lecture_part, args.repeats)
    rows = [
        ["lecture script (seed_demo.py)", f"{t_lecture:.2f}", "1.00"],
        ["netxray: lecture part (train, PCA, saliency, health)", f"{t_part:.2f}",
         f"{t_part / t_lecture:.2f}"],
        ["`netxray demo` (all of it, report and PNGs included)", f"{t_demo:.2f}",
         f"{t_demo / t_lecture:.2f}"],
    ]
    body = markdown_table(["command", "median wall time (s)", "ratio to lecture"], rows)
    body += f"\n\nMedians of {args.repeats} runs each, whole processes, interpreter start included."
    write_result("demo", "`netxray demo` vs the lecture's script", body)


if __name__ == "__main__":
    main()
