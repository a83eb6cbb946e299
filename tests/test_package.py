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


def test_split_packages_keep_their_names():
    """netxray.stats and netxray.boundary are packages of concept-sized private modules;
    the names code imports from them stay importable from the package itself."""
    import netxray.boundary
    import netxray.stats

    used = {
        netxray.stats: ["DEFAULT_HIST_RANGES", "LayerStats", "NetworkStats", "ParamStats",
                        "RECTIFIER_FAMILY", "RELU_FAMILY", "Scratch", "UnitStats",
                        "activation_family", "collect_stats", "default_loss", "saturation_band",
                        "_batch", "_compute", "_merge", "_update"],
        netxray.boundary: ["BoundaryEvolution", "BoundaryGrid", "GridWarp", "UnitMaps",
                           "boundary_evolution", "decision_boundary", "grid_warp",
                           "make_plane", "unit_maps"],
    }  # fmt: skip
    for mod, names in used.items():
        assert mod.__all__ == sorted(mod.__all__), mod.__name__
        assert [n for n in names if not hasattr(mod, n)] == [], mod.__name__
        assert set(mod.__all__) == {n for n in names if not n.startswith("_")}, mod.__name__
