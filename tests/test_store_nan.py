"""A NaN survives the run store: a diverged loss, a NaN metric, gradient or update ratio reads
back as NaN, apart from a value that was not given (a step without a loss, a step without
backward); Inf as Inf. The run store's schema 1 files (no NaN flags) still open, and the
TensorBoard export and the report keep the diverged steps.

The references are what the test fed the watch (the losses, metrics) and what PyTorch's own
hooks saw (which gradients were NaN), never the reader's output."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.monitor import watch
from netxray.run_analysis import read_run
from netxray.store import open_run, run_file
from netxray.store_results import StepSeries

NAN, INF = math.nan, math.inf
#: per step: the loss given to w.step (None: none), the metric ``acc`` (None: not reported)
LOSSES = [1.25, None, "zero-with-nan-gradient", INF, "forward", -INF, "forward"]
METRICS = [0.5, None, NAN, INF, -INF, None, 0.25]
#: the steps whose loss is given and finite / NaN / +-Inf, and not given
GIVEN_FINITE, NOT_GIVEN = [0, 2], [1]


def _nan_grad_loss(out: torch.Tensor) -> torch.Tensor:
    """0 in the forward pass, NaN gradients in the backward one: d sqrt(u)/du at u = 0 is
    Inf, times du/dout = 0."""
    return torch.sqrt(((out - out.detach()) ** 2).sum())


def _train(path, every: int = 1, weights: list[dict[str, torch.Tensor]] | None = None
           ) -> dict[str, dict[int, bool]]:
    """Seven steps (see ``LOSSES``): step 1 has no loss and no backward (no gradients),
    step 2's gradients are NaN and so are the weights after its update, steps 4 and 6 take
    the NaN loss of those weights. Returns, per watched layer, step -> whether the gradient
    of its output was NaN, seen by a plain tensor hook. ``weights``: gets copies of the
    weights before training and after each step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    with torch.no_grad():
        model[2].bias.zero_()  # (no relative update at step 0: its norm before is 0)
    X, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: dict[str, dict[int, bool]] = {"0": {}, "1": {}, "2": {}}
    step = [0]

    def spy(name):
        def hook(_m, _i, out):
            if out.requires_grad:
                out.register_hook(lambda g: seen[name].__setitem__(
                    step[0], bool(torch.isnan(g.clone()).any())))
        return hook

    handles = [model[int(n)].register_forward_hook(spy(n)) for n in seen]
    keep = (lambda: weights.append({n: p.detach().clone() for n, p in model.named_parameters()})
            ) if weights is not None else (lambda: None)
    keep()
    try:
        with watch(model, path, every=every, layers=list(seen), alarms=lambda f, s: None) as w:
            for s, (given, acc) in enumerate(zip(LOSSES, METRICS, strict=True)):
                step[0] = s
                opt.zero_grad(set_to_none=True)
                out = model(X)
                metrics = {} if acc is None else {"acc": torch.tensor(acc)}
                if given is None:  # no loss, no backward
                    w.step(metrics=metrics)
                    keep()
                    continue
                nan_grad = given == "zero-with-nan-gradient"
                loss = _nan_grad_loss(out) if nan_grad else nn.functional.cross_entropy(out, y)
                loss.backward()
                opt.step()
                if isinstance(given, float):  # this value, as a 0-d tensor
                    loss = torch.tensor(given)
                w.step(loss=loss, metrics=metrics)
                keep()
    finally:
        for h in handles:
            h.remove()
    return seen


def _want_loss() -> list[float]:
    """The loss each step was given (NaN for the two forward passes of NaN weights)."""
    return [1.25, NAN, 0.0, INF, NAN, -INF, NAN]


@pytest.mark.parametrize("every", [1, 100], ids=["recorded-steps", "batched-steps"])
def test_a_nan_or_inf_loss_and_metric_read_back_apart_from_not_given(tmp_path, every):
    _train(tmp_path / "run", every=every)
    with open_run(tmp_path / "run") as run:
        st = run.steps
        np.testing.assert_array_equal(st.step, np.arange(7))
        np.testing.assert_array_equal(st.loss, _want_loss())  # (NaN equals NaN here)
        assert st.loss_recorded.tolist() == [s not in NOT_GIVEN for s in range(7)]
        assert st.recorded("loss").tolist() == st.loss_recorded.tolist()
        want = [np.nan if a is None else a for a in METRICS]
        np.testing.assert_array_equal(st.metrics["acc"], want)
        assert st.metrics_recorded["acc"].tolist() == [a is not None for a in METRICS]
    # the encoding itself, read with plain SQL: NULL with the flag set is NaN
    con = sqlite3.connect(run_file(tmp_path / "run"))
    rows = con.execute("SELECT step, loss, loss_is_nan, metrics FROM steps ORDER BY step").fetchall()
    con.close()
    assert [(r[1], r[2]) for r in rows if r[0] in (1, 3, 4, 5)] == [
        (None, 0), (INF, 0), (None, 1), (-INF, 0)]
    assert math.isnan(json.loads(rows[2][3])["acc"]) and json.loads(rows[3][3]) == {"acc": INF}


def test_a_nan_gradient_and_update_read_back_apart_from_none(tmp_path):
    weights: list[dict[str, torch.Tensor]] = []
    seen = _train(tmp_path / "run", weights=weights)
    with open_run(tmp_path / "run") as run:
        for layer in ("0", "1", "2"):
            ls = run.layer_stats(layer)
            np.testing.assert_array_equal(ls.step, np.arange(7))
            hooked = seen[layer]  # the steps with a backward pass, and whether it was NaN
            assert hooked[2] and not hooked[0]
            assert ls.grad_recorded.tolist() == [s in hooked for s in range(7)]
            assert [bool(np.isnan(v)) for v in ls.grad_rms] == [
                s not in hooked or hooked[s] for s in range(7)]
        for name in run.params:
            ps = run.param_stats(name)
            # step 1 set the gradients to None; every other step has them, NaN from step 2
            assert ps.grad_recorded.tolist() == [s != 1 for s in range(7)]
            assert np.isnan(ps.grad_norm).tolist() == [s >= 1 for s in range(7)]
            # step 0's ratio is to the weights before training (none for a zero bias); step 1
            # did not move the weights (ratio 0); NaN from step 2
            before, after = weights[0][name].double(), weights[1][name].double()
            zero = name == "2.bias"
            assert bool(before.norm() == 0) == zero
            assert ps.update_recorded.tolist() == [not zero] + [True] * 6
            assert np.isnan(ps.update_ratio[0]) if zero else ps.update_ratio[0] == pytest.approx(
                float((after - before).norm() / before.norm()), rel=1e-5)
            assert ps.update_ratio[1] == 0.0 and np.isnan(ps.update_ratio[2:]).all()
            assert ps.recorded("weight_norm").all() and np.isnan(ps.weight_norm[2:]).all()
            assert np.isfinite(ps.weight_norm[:2]).all()


# the run store as netxray 0.x wrote it before NaN flags (git history: SCHEMA_VERSION = 1)
_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE steps (step INTEGER PRIMARY KEY, time REAL NOT NULL, loss REAL, metrics TEXT);
CREATE TABLE layers (
    layer_id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, position INTEGER NOT NULL,
    module_type TEXT NOT NULL, family TEXT NOT NULL, units INTEGER NOT NULL,
    shape TEXT NOT NULL, saturation TEXT, hist_edges BLOB NOT NULL);
CREATE TABLE layer_stats (
    layer_id INTEGER NOT NULL, step INTEGER NOT NULL,
    mean REAL, scale REAL, min REAL, max REAL, frac_active REAL, frac_saturated REAL,
    dead INTEGER, nan INTEGER NOT NULL, inf INTEGER NOT NULL, grad_rms REAL, hist BLOB,
    PRIMARY KEY (layer_id, step)) WITHOUT ROWID;
CREATE TABLE unit_stats (
    layer_id INTEGER NOT NULL, step INTEGER NOT NULL, activity BLOB NOT NULL, saturation BLOB,
    PRIMARY KEY (layer_id, step)) WITHOUT ROWID;
CREATE TABLE params (param_id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, shape TEXT NOT NULL);
CREATE TABLE param_stats (
    param_id INTEGER NOT NULL, step INTEGER NOT NULL,
    weight_norm REAL, grad_norm REAL, update_ratio REAL,
    PRIMARY KEY (param_id, step)) WITHOUT ROWID;
CREATE TABLE snapshots (
    kind TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (kind, name, step));
CREATE TABLE findings (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, event TEXT NOT NULL, kind TEXT NOT NULL,
    severity TEXT NOT NULL, layer TEXT, units TEXT NOT NULL, message TEXT NOT NULL,
    advice TEXT NOT NULL, evidence TEXT NOT NULL);
"""


def _schema_1_run(file) -> None:
    """A schema-1 run by hand: 3 steps (the NaN loss of step 1 stored as NULL, as it was),
    one layer and one parameter."""
    con = sqlite3.connect(file)
    con.executescript(_SCHEMA_1)
    con.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("format", '"netxray-run"'), ("schema_version", "1"), ("status", '"closed"'),
        ("netxray_version", '"0.1.0"'), ("created", "0.0"), ("dropped_snapshots", "0")])
    con.executemany("INSERT INTO steps VALUES (?, ?, ?, ?)", [
        (0, 10.0, 0.7, '{"acc": 0.5}'), (1, 11.0, None, '{"acc": null}'), (2, 12.0, INF, None)])
    edges = np.linspace(0.0, 1.0, 3)
    con.execute("INSERT INTO layers VALUES (1, 'fc', 0, 'Linear', 'linear', 2, '[2]', NULL, ?)",
                (edges.tobytes(),))
    hist = np.array([0, 3, 1, 0], dtype=np.int64).tobytes()
    con.executemany("INSERT INTO layer_stats VALUES (1, ?, 0.1, 0.2, 0.0, 0.9, 0.5, NULL, NULL, "
                    "0, 0, ?, ?)", [(0, 0.03, hist), (2, None, hist)])
    con.execute("INSERT INTO params VALUES (1, 'fc.weight', '[2, 2]')")
    con.executemany("INSERT INTO param_stats VALUES (1, ?, ?, ?, ?)",
                    [(0, 1.5, 0.2, None), (2, None, None, None)])
    con.commit()
    con.close()


def test_a_schema_1_file_still_opens_and_its_null_reads_as_not_recorded(tmp_path):
    file = tmp_path / "old.sqlite"
    _schema_1_run(file)
    with open_run(file) as run:
        assert run.schema_version == 1
        st = run.steps
        np.testing.assert_array_equal(st.loss, [0.7, NAN, INF])
        assert st.loss_recorded.tolist() == [True, False, True]  # (NULL: NaN or not given)
        np.testing.assert_array_equal(st.metrics["acc"], [0.5, NAN, NAN])
        assert st.metrics_recorded["acc"].tolist() == [True, False, False]
        ls = run.layer_stats("fc")
        np.testing.assert_array_equal(ls.grad_rms, [0.03, NAN])
        assert ls.grad_recorded.tolist() == [True, False]
        ps = run.param_stats("fc.weight")
        np.testing.assert_array_equal(ps.weight_norm, [1.5, NAN])
        assert ps.grad_recorded.tolist() == [True, False]
        assert ps.update_recorded.tolist() == [False, False]
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = netxray.export_tensorboard(file, tmp_path / "tb")
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(0, pytest.approx(0.7)),
                                                                      (2, INF)]


def test_the_tensorboard_export_keeps_the_nan_steps(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seen = _train(tmp_path / "run")
    out = netxray.export_tensorboard(tmp_path / "run", tmp_path / "tb")
    acc = EventAccumulator(str(out), size_guidance={"scalars": 0})
    acc.Reload()

    def series(tag):
        return {e.step: e.value for e in acc.Scalars(tag)}

    loss = series("train/loss")
    assert sorted(loss) == [s for s in range(7) if s not in NOT_GIVEN]
    want = _want_loss()
    for s, v in loss.items():
        assert (math.isnan(v) and math.isnan(want[s])) or v == pytest.approx(want[s]), (s, v)
    metric = series("metrics/acc")
    assert sorted(metric) == [s for s, a in enumerate(METRICS) if a is not None]
    assert math.isnan(metric[2]) and metric[3] == INF and metric[4] == -INF
    for layer in ("0", "2"):
        grad = series(f"layers/{layer}/grad_rms")
        assert sorted(grad) == sorted(seen[layer])  # the steps with a backward pass
        assert [math.isnan(grad[s]) for s in sorted(grad)] == [seen[layer][s] for s in sorted(grad)]
    update = series("params/0.weight/update_ratio")
    assert sorted(update) == list(range(7)) and update[1] == 0.0 and math.isnan(update[2])
    assert sorted(series("params/0.weight/grad_norm")) == [s for s in range(7) if s != 1]


def test_the_report_marks_the_steps_where_the_loss_is_nan_or_inf(tmp_path):
    from netxray.report.training import loss_chart, run_payload

    _train(tmp_path / "run")
    tr = read_run(tmp_path / "run")
    texts = [m["text"] for m in loss_chart(tr)["markers"] if m["text"].startswith("the loss")]
    # steps 3-6 are +Inf, NaN, -Inf, NaN (the losses fed in): one stretch
    assert texts == ["the loss is +Inf or NaN or -Inf from step 3 to 6"]
    assert run_payload(tr)["meta"]["final loss"] == "NaN"


def test_a_series_built_without_masks_reads_nan_as_not_recorded(tmp_path):
    """A series built by hand (or saved before the masks): NaN there means not recorded, as
    in a schema-1 store; a saved series keeps its masks."""
    s = StepSeries(step=np.arange(3), time=np.zeros(3), loss=np.array([1.0, NAN, INF]),
                   metrics={"acc": np.array([NAN, 0.5, NAN])})
    assert s.loss_recorded.tolist() == [True, False, True]
    assert s.metrics_recorded["acc"].tolist() == [False, True, False]
    _train(tmp_path / "run")
    with open_run(tmp_path / "run") as run:
        back = StepSeries.load(run.steps.save(tmp_path / "steps.npz"))
        assert back == run.steps and back.loss_recorded.tolist() == run.steps.loss_recorded.tolist()


@pytest.mark.parametrize("version, match", [
    ("3", "has run-store schema 3, newer than this netxray reads \\(2\\); upgrade"),
    ("0", "claims run-store schema 0; netxray has only written schemas 1 to 2"),
    ("true", "not a netxray run"), ("{", "not a netxray run")])
def test_a_schema_version_this_netxray_never_wrote_is_refused(tmp_path, version, match):
    file = tmp_path / "r.sqlite"
    _schema_1_run(file)
    con = sqlite3.connect(file)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    con.commit()
    con.close()
    with pytest.raises(netxray.RunFormatError, match=match):
        open_run(file)
