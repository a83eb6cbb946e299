"""Assemble BENCHMARKS.md from the per-topic results in benchmarks/results/*.md.

Each benchmark writes its own results file with the command that made it; this script only
joins them, in a fixed order, under a short preface.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["demo", "stats", "kernels", "memory", "attribution", "projection", "boundary", "watch", "cuda",
         "serve"]

PREFACE = """# Benchmarks

Side-by-side timings, each made in one run on this project's 2-core CPU machine, except
the CUDA section, made on a GPU machine lent for a session (`benchmarks/check_cuda.py`).
Machines here are shared and noisy: every table quotes medians and, above all, ratios
between rows measured in the same run. Each section names the command that produced it;
rerun it to refresh that section, then `python -m benchmarks.collect` to rebuild this file
(`make bench` reruns every benchmark and rebuilds it, in about half an hour).
"""


def main() -> None:
    results = ROOT / "benchmarks" / "results"
    files = sorted(results.glob("*.md"), key=lambda p: (
        ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    parts = [PREFACE]
    for f in files:
        text = f.read_text().strip()
        title, _, rest = text.partition("\n")
        text = "## " + title.lstrip("#").strip() + "\n" + rest  # every section at one level
        parts.append(text)
    (ROOT / "BENCHMARKS.md").write_text("\n\n".join(parts) + "\n")
    print(f"BENCHMARKS.md: {len(files)} sections")


if __name__ == "__main__":
    main()
