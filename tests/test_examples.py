"""Every script in examples/ runs as a user would run it, and prints and writes what it says.

Each example runs in a fresh subprocess with NETXRAY_EXAMPLES_OUT pointing at a temporary
folder and its working directory elsewhere, so a script that ignores the variable (and
writes into the default ``netxray-examples/``) is caught.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lecture_reference import LECTURE_OUTPUT

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# script -> (lines that must appear in stdout, files that must exist under the out folder)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "01_lecture.py": (
        # the lecture's own printout, digit for digit
        [*filter(None, LECTURE_OUTPUT.splitlines()), "netxray health report", "Report: "],
        ["lecture/report.html", "lecture/training.png", "lecture/decision_boundary.png"],
    ),
    "02_record_any_model.py": (
        ["glob 'conv*' -> conv1: (32, 8, 8, 8)", "glob 'conv*' -> conv2: (32, 16, 4, 4)",
         "type nn.ReLU -> relu1: (64, 8, 8, 8)", "type nn.ReLU -> relu2: (64, 16, 4, 4)",
         "layer 'conv3' not found; did you mean 'conv2'",
         "activations over the loader: relu2 (1797, 16, 4, 4), targets (1797,)"],
        ["cnn_activations.npz"],
    ),
    "03_training_loop_health.py": (
        ["step  10", "half of layer act1 died at step", "ERROR   dead_units [act1]"],
        [],
    ),
    "04_attributions.py": (
        ["explaining predictions", "integrated gradients completeness error",
         "540 test images"],
        ["saliency_by_class.png", "integrated_gradients.png"],
    ),
    "05_representations.py": (
        ["PCA of act2 explains", "linear probe accuracy: input", "CKA(input, act1)",
         "decision boundary on the pca plane"],
        ["act2_pca.png", "act2_tsne.png", "probes.png", "cka.png", "boundary_pca.png"],
    ),
    "06_counter_examples.py": (
        ["   healthy  no problems found.", "expected dead_units: found",
         "expected saturated_units: found", "expected exploding_activations: found",
         "expected vanishing_gradients: found", "expected nonfinite: found"],
        [],
    ),
    "07_watch_numpy_lecture.py": (
        ["epoch 100 | loss 0.3270 | train acc 0.854", "layers hidden, logits",
         "unit death steps: none", "W1 update-to-weight ratio", "alarms: none"],
        ["lecture-run/run.sqlite"],
    ),
    "08_biased_hiring.py": (
        ["biased_resumes: accuracy 0.9", "top evidence for reject: 1, women's",
         "fair_resumes: accuracy 1.000", "flip rate 0.0%"],
        ["biased_resumes.html", "fair_resumes.html"],
    ),
}


def test_every_example_is_checked() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


def _run(script: str, out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        NETXRAY_EXAMPLES_OUT=str(out),
        MPLBACKEND="Agg",
        # the models are tiny: one thread avoids oversubscription when tests run side by side
        OMP_NUM_THREADS="1",
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str, tmp_path: Path) -> None:
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    proc = _run(script, out, cwd)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "NetxrayWarning" not in proc.stderr, f"{script} warned:\n{proc.stderr[-4000:]}"
    lines, files = EXPECTED[script]
    for line in lines:
        assert line in proc.stdout, f"{script}: {line!r} not printed; stdout:\n{proc.stdout}"
    for name in files:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"{script} did not write {name}"
    assert not any(cwd.iterdir()), f"{script} wrote outside NETXRAY_EXAMPLES_OUT: {list(cwd.iterdir())}"
    if script == "02_record_any_model.py":
        _check_saved_activations(out)


def _check_saved_activations(out: Path) -> None:
    """02 saves an Activations result: it reads back with the right shapes and labels."""
    import numpy as np

    from netxray import data
    from netxray.capture import Activations

    acts = Activations.load(out / "cnn_activations.npz")
    assert set(acts.layers) == {"relu2", "fc"}
    assert tuple(acts.layers["relu2"].shape) == (1797, 16, 4, 4)
    assert tuple(acts.outputs.shape) == (1797, 10)
    np.testing.assert_array_equal(acts.targets.numpy(), data.digits().y)
    assert float(acts.layers["relu2"].min()) >= 0.0  # ReLU outputs


_RUN_DOC = """
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
code = "\\n".join(re.findall(r"```python\\n(.*?)```", text, re.S))
exec(compile(code, sys.argv[1], "exec"), {"__name__": "__main__"})
"""


def test_capture_docs_run(tmp_path: Path) -> None:
    """The code blocks of docs/capture.md run one after another, and print what they say."""
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_DOC, str(ROOT / "docs" / "capture.md")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for line in ["['fc1', 'act1', 'fc2', 'act2', 'fc3']", "['act1', 'fc3']",
                 "layer 'fc4' not found; did you mean", "(100, 32)", "(1797, 16)",
                 "(797, 64) (797,)", "[(5, 64), (3, 64)]", "0 True", "1797 32"]:
        assert line in proc.stdout, f"{line!r} not printed by docs/capture.md:\n{proc.stdout}"


@pytest.mark.parametrize("doc", ["diagnostics", "attribution", "representations", "report", "results",
                                 "watch", "text"])
def test_every_docs_page_runs(doc: str, tmp_path: Path) -> None:
    """Each page's python blocks run in order, as a reader pasting them would run them."""
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_DOC, str(ROOT / "docs" / f"{doc}.md")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip(), f"docs/{doc}.md printed nothing"
