"""The analysis bundle: results only, saved and loaded as its own type, drawn the same from a
file as fresh; and the page's packed numbers against the results they came from."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from netxray import demo
from netxray._results import Result
from netxray.analysis import Analysis, analyze
from netxray.report import analysis_payload, write_analysis
from netxray.report.build import MAX_POINTS, _subsample
from netxray.report.packing import tolerance, unpack


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    run = demo.run(demo.DemoConfig(epochs=20, n_checkpoints=3))
    return analyze(run.model, run.train, run.test, run.history, health=run.health,
                   title="small moons", subtitle="sub", meta={"epochs": 20, "note": "x"})


def test_an_analysis_holds_results_arrays_and_plain_data_only(analysis: Analysis) -> None:
    assert isinstance(analysis, Result)
    allowed = (Result, np.ndarray, torch.Tensor, str, int, float, bool, type(None))

    def check(v, where):
        if isinstance(v, dict):
            for k, x in v.items():
                check(x, f"{where}[{k!r}]")
        elif isinstance(v, list | tuple):
            for i, x in enumerate(v):
                check(x, f"{where}[{i}]")
        else:
            assert isinstance(v, allowed), f"{where} is a {type(v).__name__}"

    for f in dataclasses.fields(analysis):
        check(getattr(analysis, f.name), f.name)
    assert isinstance(analysis.layers, tuple)
    # results compare by value, and an analysis is one
    assert analysis == dataclasses.replace(analysis)
    assert analysis != dataclasses.replace(analysis, title="other")


def test_the_bundle_round_trips_and_draws_the_same_page(analysis: Analysis, tmp_path: Path) -> None:
    path = analysis.save(tmp_path / "results.npz")
    loaded = Analysis.load(path)
    assert type(loaded) is Analysis and loaded == analysis
    assert type(loaded.boundary) is type(analysis.boundary)
    assert type(loaded.health) is type(analysis.health) and loaded.health.findings
    fresh = write_analysis(analysis, tmp_path / "fresh.html").read_bytes()
    again = write_analysis(loaded, tmp_path / "again.html").read_bytes()
    assert again == fresh  # the page needs nothing the file does not hold


def _embedded(page: str) -> dict:
    text = re.search(r'id="netxray-data"[^>]*>(.*?)</script>', page, re.S).group(1)
    data = json.loads(text)
    table = data.pop("arrays")

    def walk(v):
        if isinstance(v, dict):
            return table[v["$ref"]] if set(v) == {"$ref"} else {k: walk(x) for k, x in v.items()}
        return [walk(x) for x in v] if isinstance(v, list) else v

    return walk(data)


def _close(packed: dict, expected) -> None:
    """The decoded array equals ``expected`` within the encoding's stated tolerance."""
    want = np.asarray(expected.detach().cpu() if isinstance(expected, torch.Tensor) else expected,
                      dtype=np.float64)
    got = unpack(packed)
    assert got.shape == want.shape
    assert (np.abs(got - want) <= tolerance(packed, want)).all(), packed["$nd"]


def _chart(data: dict, section: str, title: str) -> dict:
    sec = next(s for s in data["sections"] if s["id"] == section)
    return next(c for c in sec["charts"] if c["title"].startswith(title))


def test_the_page_holds_the_results_numbers(analysis: Analysis, tmp_path: Path) -> None:
    a = analysis
    page = write_analysis(a, tmp_path / "report.html").read_text(encoding="utf-8")
    data = _embedded(page)
    assert (data["title"], data["subtitle"], data["meta"]) == ("small moons", "sub", a.meta)
    # training curves
    loss = _chart(data, "training", "Loss")
    _close(loss["x"], a.history.epochs)
    _close(loss["series"][0]["values"], a.history.train_loss)
    _close(loss["series"][1]["values"], a.history.test_loss)
    # the decision surface (x along columns, y along rows), once for both charts that show it
    surf = _chart(data, "boundary", "Decision boundary")
    b = a.boundary
    _close(surf["x"], b.xx[0])
    _close(surf["y"], b.yy[:, 0])
    _close(surf["probs"], b.probs)
    assert surf["probs"]["$nd"] == "u8"  # one byte a probability
    assert _chart(data, "saliency", "Saliency of test points")["probs"] is surf["probs"]
    # its evolution, frame by frame
    evo = _chart(data, "boundary", "How the boundary evolved")
    assert len(evo["frames"]) == len(a.evolution.epochs)
    for frame, probs in zip(evo["frames"], a.evolution.probs, strict=True):
        _close(frame["probs"], probs)
    # each unit's map, zero kept exact (a dead unit stays blank)
    units = _chart(data, "units", "act1")
    _close(units["maps"], a.unit_maps.maps["act1"])
    zero = a.unit_maps.maps["act1"] == 0
    assert zero.any() and (unpack(units["maps"])[zero] == 0).all()
    # activations of the training samples shown, and the PCA of the hidden layer
    am = a.activation_maps["act1"]
    rows = _subsample(am.values.shape[0], 600)
    _close(_chart(data, "activations", "act1")["matrix"], am.values[rows])
    pca = _chart(data, "representations", "act1: PCA")
    idx = _subsample(len(a.projections["act1"].coords), MAX_POINTS)
    _close(pca["x"], a.projections["act1"].coords[idx, 0])
    _close(pca["y"], a.projections["act1"].coords[idx, 1])
    _close(pca["color_by"][0]["values"], a.train.y[idx])
    _close(_chart(data, "representations", "CKA")["matrix"], a.cka.values)
    probe = _chart(data, "representations", "Linear probe")
    _close(probe["series"][0]["values"], [a.probes.accuracy[n] for n in a.probes.layers])
    # feature importance, largest first
    bars = _chart(data, "saliency", "Feature importance")
    mean_abs = a.dataset_saliency.mean_abs.flatten().numpy()
    _close(bars["values"], np.sort(mean_abs)[::-1])


def test_the_payload_is_built_from_the_bundle_alone(analysis: Analysis) -> None:
    p = analysis_payload(analysis)
    assert [s["id"] for s in p["sections"]] == [
        "health", "training", "boundary", "units", "activations", "representations", "saliency"]


def test_a_run_without_test_data_reports_and_its_update_ratios_come_from_the_checkpoints():
    import netxray
    from netxray import data

    train, test = data.moons(n_samples=120, noise=0.25, seed=5).split(test_size=0.3, seed=5)
    model = netxray.mlp([2, 8, 2], seed=0)
    hist = netxray.train(model, train.tensors(), epochs=10, lr=0.3, checkpoints=[0, 5, 10])
    model.eval()
    a = analyze(model, train, test, hist, progress=False)  # no health given: analyze's own
    payload = analysis_payload(a)  # no test curves: nothing drawn dashed, nothing crashes
    loss = _chart(payload, "training", "Loss")
    assert [s["name"] for s in loss["series"]] == ["train loss"]
    # the model holds epoch 10's weights: the ratio is over epochs 5 -> 10, by hand
    weights = _chart(payload, "health", "Weights")
    assert weights["columns"][-1] == "update ratio"
    before, after = hist.checkpoints[5], hist.checkpoints[10]
    for row in weights["rows"]:
        w0, w1 = before[row[0]].double(), after[row[0]].double()
        assert row[-1] == pytest.approx(float((w1 - w0).norm() / w0.norm()), rel=1e-3)
    # without a history there are no earlier weights: no update-ratio column at all
    a2 = dataclasses.replace(a, health=netxray.diagnose(model, train.tensors(), progress=False))
    table = _chart(analysis_payload(a2), "health", "Weights")
    assert "update ratio" not in table["columns"] and "no update ratio" in table["description"]
    assert all(len(r) == len(table["columns"]) for r in table["rows"])


def test_the_checkpoint_an_update_is_measured_against():
    import netxray

    model = netxray.mlp([2, 4, 2], seed=0)
    state = lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}  # noqa: E731
    s0 = state()
    with torch.no_grad():
        model.fc1.weight.add_(1.0)
    s1 = state()
    hist = netxray.TrainingHistory(epochs=[], train_loss=[], train_acc=[],
                                   checkpoints={0: s0, 1: s1})
    got = hist.weights_before(model)  # the model is the last checkpoint: the one before
    assert got is s0
    with torch.no_grad():
        model.fc1.weight.add_(1.0)
    assert hist.weights_before(model) is s1  # trained on past the last checkpoint
    one = netxray.TrainingHistory(epochs=[], train_loss=[], train_acc=[], checkpoints={0: s1})
    model.load_state_dict(s1)
    assert one.weights_before(model) is None  # no checkpoint differs from the model
