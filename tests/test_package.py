"""The package's promises: a curated __all__, a cheap import, a README example that runs."""

import re
import subprocess
import sys
from pathlib import Path

import netxray

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "matplotlib", "openTSNE", "umap", "plotly", "fastapi", "uvicorn", "scipy",
         "captum", "numba", "rich", "tqdm", "PIL")


def test_every_public_name_resolves_and_all_is_sorted():
    assert netxray.__all__ == sorted(netxray.__all__)
    for name in netxray.__all__:
        assert getattr(netxray, name) is not None, name


def test_import_is_light():
    code = (
        "import sys, time, torch\n"
        "before = set(sys.modules)\n"
        "t = time.perf_counter(); import netxray; dt = time.perf_counter() - t\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules and m not in before]\n"
        "print(dt); print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, heavy = out.stdout.splitlines()[:2] + [""] * (2 - len(out.stdout.splitlines()[:2]))
    assert heavy == "", f"import netxray pulled in {heavy}"
    assert float(seconds) < 0.3, f"import netxray took {seconds} s on top of torch"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert len([ln for ln in blocks[0].splitlines() if ln.strip()]) <= 10  # ten lines
