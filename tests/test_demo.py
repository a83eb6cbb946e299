"""`netxray demo` reproduces the lecture, checked against the lecture's own printed numbers."""

import re

import numpy as np
import pytest

from lecture_reference import LECTURE_OUTPUT, PRINTED_SALIENCY
from netxray import demo


@pytest.fixture(scope="module")
def lecture_run():
    return demo.run()


def test_demo_prints_every_line_of_the_lecture(lecture_run):
    table = demo.lecture_table(lecture_run)
    for line in LECTURE_OUTPUT.splitlines():
        assert line in table.splitlines(), f"missing lecture line: {line!r}"


def test_gradient_saliency_agrees_with_the_lectures_finite_difference(lecture_run):
    # a central difference with eps=1e-3 is exact to O(eps^2) times the third derivative
    np.testing.assert_allclose(lecture_run.saliency_grad, PRINTED_SALIENCY, atol=1e-6)
    np.testing.assert_allclose(lecture_run.saliency_fd, PRINTED_SALIENCY, atol=5e-9)


def test_demo_leaves_a_model_in_eval_mode_with_a_health_report(lecture_run):
    assert not lecture_run.model.training
    assert lecture_run.health.n_samples == 280


def test_outputs_report_and_pngs(lecture_run, tmp_path):
    report = demo.write_outputs(lecture_run, tmp_path)
    assert report == tmp_path / "report.html"
    html = report.read_text()
    assert "netxray-data" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", html)
    assert report.stat().st_size <= 1_000_000  # it was 2.1 MB with arrays as JSON lists
    # the results it draws are saved beside it, and draw the same page again
    from netxray.analysis import Analysis
    from netxray.report import write_analysis

    again = write_analysis(Analysis.load(tmp_path / "results.npz"), tmp_path / "again.html")
    assert again.read_text() == html
    pngs = {p.name for p in tmp_path.glob("*.png")}
    for name in ("training.png", "decision_boundary.png", "unit_maps.png",
                 "activations_act1.png", "pca_act1.png", "saliency.png"):
        assert name in pngs
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_variants_run_on_other_datasets(tmp_path):
    cfg = demo.DemoConfig(dataset="digits", hidden=(16,), epochs=30, lr=0.5, n_checkpoints=3)
    run = demo.run(cfg)
    assert run.train.X.shape[1] == 64 and run.pca_rows.shape[1] == 2
    assert len(run.history.train_loss) == 30
    table = demo.lecture_table(run)
    assert "epoch  10 |" in table and "epoch  30 |" in table
    # the saliency of 64 pixels is one short line each, not two 64-number arrays
    saliency = [line for line in table.splitlines() if "Saliency" in line or "autograd" in line]
    assert len(saliency) == 2
    for line in saliency:
        assert " ... " in line and "(64 values" in line and len(line) < 160
        inside = line[line.index("[") + 1:line.index("]")].split()
        assert len(inside) == 7 and inside[3] == "..."  # 3 values, ..., 3 values
    report = demo.write_outputs(run, tmp_path)
    assert (tmp_path / "saliency_by_class.png").exists() and report.exists()
    assert (tmp_path / "unit_patterns.png").exists()  # the input pattern of each unit
    assert (tmp_path / "boundary_evolution.gif").read_bytes()[:6] == b"GIF89a"
    html = report.read_text()
    assert "hidden states over training" in html and "Per unit" in html


def test_a_net_with_two_unit_layers_gets_the_manifold_view(tmp_path):
    run = demo.run(demo.DemoConfig(hidden=(2, 2), epochs=20, n_checkpoints=2))
    demo.write_outputs(run, tmp_path)
    assert (tmp_path / "grid_warp.png").exists()


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        demo.run(demo.DemoConfig(dataset="mnist"))
    with pytest.raises(ValueError, match="unknown activation"):
        demo.run(demo.DemoConfig(activation="swish"))


def test_a_diverged_preset_still_gets_a_report_that_says_so_first(tmp_path):
    run = demo.run_preset("nan")
    assert not run.finite and run.pca_rows is None
    table = demo.lecture_table(run)
    assert "not computed: the network's values are NaN/Inf" in table
    # the report says what broke first, and nothing computed from the garbage after it
    assert run.health.findings[0].kind in ("loss_diverged", "nonfinite")
    assert {f.kind for f in run.health.findings} <= {"loss_diverged", "nonfinite"}
    html = demo.write_outputs(run, tmp_path).read_text()
    assert '"id":"health"' in html and '"id":"boundary"' not in html


def test_a_preset_report_shows_its_pathology(tmp_path):
    run = demo.run_preset("dying_relu")
    assert "dead_units" in run.health.kinds
    html = demo.write_outputs(run, tmp_path).read_text()
    assert '"kind":"dead_units"' in html
    # the header says how the preset was trained, not the lecture's defaults
    assert "dying_relu preset's recipe" in html and "sgd, lr 0.2" not in html
