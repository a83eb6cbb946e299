"""The example notebooks: committed clean, and run top to bottom in a fresh Jupyter kernel.

Each notebook is executed once per session with nbclient (tests/notebook_runner.py); the
checks read what a reader would see: printed lines, and the rich (HTML) output of the
results a cell ends with, e.g. the findings of a HealthReport.
"""

from __future__ import annotations

import json
import re

import pytest

from lecture_reference import LECTURE_OUTPUT
from notebook_runner import EXAMPLES, ROOT, executed, findings, notebooks, rich, stderr, stdout

NOTEBOOKS = ["dying_relu.ipynb", "lecture.ipynb", "token_attributions.ipynb"]


def test_every_notebook_is_checked() -> None:
    assert [p.name for p in notebooks()] == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name: str) -> None:
    """Outputs belong to whoever runs a notebook: the repository holds only the cells."""
    nb = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    assert any(c["cell_type"] == "code" for c in nb["cells"]), f"{name} has no code cells"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name} cell {i} is committed with outputs"
            assert cell["execution_count"] is None, f"{name} cell {i} has an execution count"
        assert not cell.get("attachments"), f"{name} cell {i} has attachments"


def test_docs_page_lists_every_notebook() -> None:
    page = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        assert f"examples/{name}" in page, f"docs/notebooks.md does not mention {name}"
    assert "images/notebook_health.png" in page
    assert (ROOT / "docs" / "images" / "notebook_health.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean(name: str) -> None:
    """Every cell runs (nbclient raises on the first error) and netxray does not warn."""
    if name == "token_attributions.ipynb":
        pytest.importorskip("transformers")
    nb = executed(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert "NetxrayWarning" not in stderr(nb), f"{name} warned:\n{stderr(nb)}"


@pytest.mark.slow
def test_lecture_notebook_prints_the_lectures_numbers() -> None:
    nb = executed("lecture.ipynb")
    out = stdout(nb)
    for line in filter(None, LECTURE_OUTPUT.splitlines()):
        assert line in out, f"lecture.ipynb did not print {line!r}; it printed:\n{out}"
    # the autograd gradient agrees with the lecture's finite difference to ~1e-6
    fd, grad = (re.search(rf"{label}:\s+\[([^\]]+)\]", out).group(1).split()
                for label in ("first test point", r"exact gradient \(autograd\)"))
    assert [float(v) for v in fd] == pytest.approx([float(v) for v in grad], abs=1e-6)


@pytest.mark.slow
def test_lecture_notebook_shows_each_result() -> None:
    nb = executed("lecture.ipynb")
    shown = {t: rich(nb, t) for t in ["TrainingHistory", "LayerStats", "Projection",
                                      "Attribution", "BoundaryGrid", "HealthReport"]}
    for t, items in shown.items():
        assert len(items) == 1, f"{t} is shown {len(items)} times"
        assert "text/html" in items[0][1], f"{t} has no HTML display"
    html = {t: items[0][1]["text/html"] for t, items in shown.items()}
    assert "300 epochs, final train loss 0.2969" in html["TrainingHistory"]
    assert "pca of 280 points" in html["Projection"]
    assert "<svg" in html["LayerStats"]  # the histogram sparkline (bins=24)
    for t in ("TrainingHistory", "Projection", "Attribution", "BoundaryGrid"):
        assert '<img alt="plot" src="data:image/png;base64,' in html[t], f"{t} has no picture"
    # the coloured PCA scatter is a matplotlib figure shown by the inline backend
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)
    # the lecture's network is healthy: no error or warning, at most notes
    report = findings(html["HealthReport"])
    assert report and all(sev == "info" for sev, _, _ in report), report


@pytest.mark.slow
def test_dying_relu_notebook_diagnoses_then_fixes() -> None:
    nb = executed("dying_relu.ipynb")
    reports = [data["text/html"] for _, data in rich(nb, "HealthReport")]
    assert len(reports) == 4, "expected: the dying net, lower lr, LeakyReLU at lr 1.5, fixed"
    dying, lower_lr, diverged, fixed = (findings(r) for r in reports)

    assert ("error", "dead_units", "act2") in dying
    assert ("warning", "dead_units", "act1") in dying
    assert all(sev != "error" for sev, _, _ in lower_lr) and lower_lr
    assert ("error", "loss_diverged", "") in diverged
    assert ("error", "nonfinite", "act1") in diverged
    assert fixed == []
    assert "no problems found on 490 samples" in reports[3]
    assert 'class="nx-sev nx-error"' not in reports[3]

    # the dead count the notebook prints, against the trained preset recomputed here with a
    # plain forward pass (no netxray statistics involved)
    import torch

    from netxray import presets

    n_dead = int(re.search(r"(\d+) of 64 units in act2 are dead", stdout(nb)).group(1))
    run = presets.get("dying_relu").run(seed=0)
    X, _ = run.data.tensors()
    with torch.no_grad():
        act2 = run.model[:4](X)  # fc1, act1, fc2, act2
    assert [n for n, _ in run.model.named_children()][:4] == ["fc1", "act1", "fc2", "act2"]
    assert n_dead == int(((act2 > 0).sum(0) == 0).sum()) > 32
    assert f"{n_dead} of 64 units in `act2` never activate" in reports[0]


@pytest.mark.slow
def test_token_attributions_notebook_finds_the_sentiment_words() -> None:
    pytest.importorskip("transformers")
    nb = executed("token_attributions.ipynb")
    out = stdout(nb)
    assert "test accuracy 1.000" in out
    hits, total = map(int, re.search(r"scores highest in (\d+) of (\d+) reviews", out).groups())
    assert total >= 4 and hits == total, out
    with_word, neutral = map(float, re.search(
        r"largest \|score\|: ([\d.]+) with a sentiment word, ([\d.]+) in the", out).groups())
    assert neutral < 0.05 * with_word, out
    delta = float(re.search(r"completeness error \|delta\|: ([\d.e+-]+)", out).group(1))
    assert delta < 1e-4
    # the shaded table: one row per review, words escaped into spans
    tables = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if "text/html" in o.get("data", {})]
    assert len(tables) == 1 and tables[0].count("<tr>") == 1 + 12
    assert ">[CLS]</span>" in tables[0]
