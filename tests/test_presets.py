import math

import pytest
import torch

from netxray import presets
from netxray.health import diagnose

PATHOLOGIES = ("dying_relu", "saturated", "exploding", "vanishing", "nan")


@pytest.fixture(scope="module")
def reports():
    """Every preset trained once (a few seconds each on a quiet 2-core machine)."""
    out = {}
    for name in presets.names():
        run = presets.get(name).run(seed=0)
        out[name] = (run, diagnose(run.model, run.data.tensors(), history=run.history))
    return out


def test_names_and_lookup():
    assert presets.names() == ["healthy", *PATHOLOGIES]
    p = presets.get("saturated")
    assert p.name == "saturated" and "tanh" in p.description
    with pytest.raises(ValueError, match="did you mean 'saturated'"):
        presets.get("saturate")


@pytest.mark.slow
@pytest.mark.parametrize("name", PATHOLOGIES)
def test_each_preset_produces_its_finding(reports, name):
    run, report = reports[name]
    expected = presets.get(name).expected
    assert expected and set(expected) <= report.kinds, report.summary()
    found = [f for f in report.findings if f.kind in expected]
    assert any(f.severity in ("warning", "error") for f in found)


@pytest.mark.slow
def test_the_healthy_baseline_raises_no_alarm(reports):
    run, report = reports["healthy"]
    assert report.findings == (), report.summary()
    assert report.exit_code == 0
    assert run.history.train_acc[-1] > 0.85  # and it did learn


@pytest.mark.slow
def test_nan_preset_says_nonfinite_first_and_nothing_else(reports):
    run, report = reports["nan"]
    assert run.history.diverged
    assert report.kinds <= {"nonfinite", "loss_diverged"}
    assert report.findings[0].kind == "loss_diverged"


@pytest.mark.slow
def test_pathologies_are_what_they_claim(reports):
    _, sat = reports["saturated"]
    assert max(f.evidence["saturated"] / f.evidence["units"] for f in sat.by_kind("saturated_units")) > 0.25
    _, van = reports["vanishing"]
    (f,) = van.by_kind("vanishing_gradients")
    assert f.evidence["ratio_first_to_last"] < 1e-4 and f.layer == "act1"
    _, exp = reports["exploding"]
    (f,) = exp.by_kind("exploding_activations")
    assert f.evidence["growth"] > 100


def test_runs_are_reproducible_and_leave_eval_mode():
    a = presets.get("saturated").run(seed=1)
    b = presets.get("saturated").run(seed=1)
    assert a.history.train_loss == b.history.train_loss
    assert not a.model.training
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert all(math.isfinite(v) for v in a.history.train_loss)
