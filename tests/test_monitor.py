"""watch(): statistics equal NumPy on the recorded activations, alarms fire once and re-arm,
the NaN origin is named, hooks never outlive the block, non-nn.Module models log arrays."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray._warnings import NetxrayWarning
from netxray.capture import Activations
from netxray.monitor import TrainingAlarm, watch
from netxray.store import open_run


@pytest.fixture(autouse=True, params=[False, True], ids=["inline", "stats-thread"])
def stats_thread(request, monkeypatch):
    """Every test here runs twice: the statistics on the training thread, and on a thread
    of their own from copies (what a watch does when PyTorch's threads leave a core idle)."""
    monkeypatch.setattr("netxray.monitor.spare_core", lambda: request.param)
    return request.param


def _data(n: int = 200, d: int = 6, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def _hist(a: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Counts below lo, in each of ``bins`` equal bins, and at or above hi (independent of
    netxray's kernel: NumPy's histogram on the values inside the range)."""
    edges = np.linspace(lo, hi, bins + 1)
    inside = a[(a >= lo) & (a < hi)]
    mid = np.histogram(inside, edges)[0]
    return np.concatenate([[(a < lo).sum()], mid, [(a >= hi).sum()]])


def test_store_statistics_equal_numpy_on_the_recorded_activations(tmp_path):
    X, y = _data()
    model = netxray.mlp([6, 32, 16, 3], seed=0).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    every, bins, steps = 3, 16, 10
    seen: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    ref: dict[int, dict] = {}

    def keep(name):
        def hook(_m, _i, out):
            seen[name] = out.detach().numpy().copy()
            out.register_hook(lambda g: grads.__setitem__(name, g.numpy().copy()))
        return hook

    handles = [model.get_submodule(n).register_forward_hook(keep(n)) for n in ("act1", "act2")]
    try:
        with watch(model, tmp_path / "run", every=every, bins=bins,
                   alarms=lambda f, s: None) as w:
            for s in range(steps):
                before = {n: p.detach().clone().numpy() for n, p in model.named_parameters()}
                loss = nn.functional.cross_entropy(model(X), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                w.step(loss=loss, metrics={"lr": 0.5})
                if s % every == 0:
                    ref[s] = {
                        "acts": dict(seen), "grads": dict(grads),
                        "params": {n: (p.detach().numpy().copy(), p.grad.numpy().copy(), before[n])
                                   for n, p in model.named_parameters()},
                    }
                ref.setdefault("loss", []).append(loss.item())
    finally:
        for h in handles:
            h.remove()

    run = open_run(tmp_path / "run")
    np.testing.assert_array_equal(run.steps.step, np.arange(steps))
    np.testing.assert_allclose(run.steps.loss, ref["loss"], rtol=1e-12)
    np.testing.assert_array_equal(run.steps.metrics["lr"], 0.5)
    assert list(run.layers) == ["act1", "act2"] and run.layers["act1"].units == 32
    recorded = [s for s in range(steps) if s % every == 0]
    for name in ("act1", "act2"):
        ls, us = run.layer_stats(name), run.unit_stats(name)
        np.testing.assert_array_equal(ls.step, recorded)
        np.testing.assert_array_equal(us.step, recorded)
        for i, s in enumerate(recorded):
            a, g = ref[s]["acts"][name], ref[s]["grads"][name]
            np.testing.assert_allclose(ls.mean[i], a.mean(), rtol=1e-10)
            np.testing.assert_allclose(ls.scale[i], np.sqrt((a ** 2).mean()), rtol=1e-10)
            assert ls.min[i] == a.min() and ls.max[i] == a.max()
            np.testing.assert_allclose(ls.frac_active[i], (a > 0).mean(), rtol=1e-12)
            assert ls.dead[i] == ((a > 0).sum(0) == 0).sum()
            assert ls.nan[i] == 0 and ls.inf[i] == 0 and np.isnan(ls.frac_saturated[i])
            np.testing.assert_allclose(ls.grad_rms[i], np.sqrt((g ** 2).mean()), rtol=1e-6)
            np.testing.assert_array_equal(ls.hist[i], _hist(a, 0.0, 8.0, bins))
            np.testing.assert_allclose(us.activity[i], (a > 0).mean(0), rtol=1e-6)
        np.testing.assert_allclose(ls.hist_edges, np.linspace(0, 8, bins + 1))
    assert run.params == [n for n, _ in model.named_parameters()]
    for pname in run.params:
        ps = run.param_stats(pname)
        np.testing.assert_array_equal(ps.step, recorded)
        for i, s in enumerate(recorded):
            w_, g_, w0 = ref[s]["params"][pname]
            np.testing.assert_allclose(ps.weight_norm[i], np.linalg.norm(w_), rtol=1e-10)
            np.testing.assert_allclose(ps.grad_norm[i], np.linalg.norm(g_), rtol=1e-10)
            n0 = np.linalg.norm(w0)  # zero-initialised biases: no ratio at step 0 (NaN)
            want = np.linalg.norm(w_ - w0) / n0 if n0 > 0 else np.nan
            np.testing.assert_allclose(ps.update_ratio[i], want, rtol=1e-8)
    assert run.meta["status"] == "closed" and run.config["every"] == every
    run.close()


def _relu_net(seed: int = 0) -> nn.Module:
    return netxray.mlp([4, 16, 16, 3], seed=seed)  # fc1 act1 fc2 act2 fc3


def test_an_alarm_fires_once_per_problem_and_rearms_when_it_clears(tmp_path):
    X, y = _data(d=4)
    X = X.float()
    model = _relu_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    calls: list[tuple[int, str, str | None]] = []
    bias = model.fc2.bias.detach().clone()
    with watch(model, tmp_path / "run", every=2,
               alarms=lambda f, s: calls.append((s, f.kind, f.layer))) as w:
        for s in range(24):
            if s in (6, 16):  # kill every unit of act2: its pre-activations far below 0
                with torch.no_grad():
                    model.fc2.bias.fill_(-1e3)
            if s == 12:
                with torch.no_grad():
                    model.fc2.bias.copy_(bias)
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss)
    dead = [c for c in calls if c[1] == "dead_units"]
    assert dead == [(6, "dead_units", "act2"), (16, "dead_units", "act2")]
    with open_run(tmp_path / "run") as run:
        events = [(f.step, f.event) for f in run.findings if f.kind == "dead_units"]
        assert events == [(6, "raised"), (12, "cleared"), (16, "raised")]
        ev = next(f for f in run.findings if f.kind == "dead_units")
        assert ev.layer == "act2" and ev.units == tuple(range(16)) and ev.severity == "error"
        assert "never activate" in ev.message
        assert run.unit_death_steps("act2") == dict.fromkeys(range(16), 16)
        ls = run.layer_stats("act2")
        np.testing.assert_array_equal(ls.dead, [0, 0, 0, 16, 16, 16, 0, 0, 16, 16, 16, 16])


@pytest.mark.parametrize("bad_step", [7, 10])  # between recorded steps (sums), recorded (counts)
def test_the_first_nan_names_its_step_and_layer(tmp_path, bad_step):
    X, y = _data(d=4)
    X = X.float()
    model = _relu_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    layers = ["fc1", "act1", "fc2", "act2", "fc3"]
    with pytest.raises(TrainingAlarm) as info:
        with watch(model, tmp_path / "run", every=5, layers=layers, alarms="raise") as w:
            for s in range(30):
                if s == bad_step:  # 7 is not recorded: the every-step check still sees it
                    with torch.no_grad():
                        model.fc2.weight[0, 0] = float("nan")
                loss = nn.functional.cross_entropy(model(X), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                w.step(loss=loss)
            w.flush()
    assert info.value.step == bad_step and info.value.finding.kind == "nonfinite"
    assert info.value.finding.layer == "fc2"
    assert f"step {bad_step}" in str(info.value) and "`fc2`" in str(info.value)
    with open_run(tmp_path / "run") as run:
        first = run.first_nonfinite
        assert first is not None and first.step == bad_step and first.layer == "fc2"
        assert np.isfinite(run.steps.loss[:bad_step]).all() and np.isnan(run.steps.loss[bad_step])
        assert [f.kind for f in run.findings if f.event == "raised"].count("nonfinite") == 1


def test_weights_made_infinite_by_an_update_are_named_at_that_step(tmp_path):
    """The forward pass and the loss of step 3 are finite; its update makes a weight Inf.
    The alarm names step 3 and the parameter (it named step 4's first NaN layer), and the
    problems found before are not reported "cleared" at step 3 (diagnose judged nothing
    else there: it stopped at the non-finite weights)."""
    X, y = _data(d=4)
    X = X.float()
    model = _relu_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    events = []
    with watch(model, tmp_path / "run", every=1, layers=["act1", "act2"],
               alarms=lambda f, s: events.append((s, f.kind)),
               thresholds=netxray.Thresholds(activation_bound=1e-3)) as w:
        for s in range(6):
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if s == 3:
                with torch.no_grad():
                    model.fc2.weight[0, 0] = float("inf")  # as a huge update would
            w.step(loss=loss)
    with open_run(tmp_path / "run") as run:
        first = run.first_nonfinite
        losses = run.steps.loss
        found = run.findings
    assert first is not None and first.step == 3 and first.layer == "fc2"
    assert "`fc2.weight`" in first.message + first.advice and np.isfinite(losses[3])
    assert not np.isfinite(losses[4])
    assert (0, "exploding_activations") in events  # raised at step 0 (bound 1e-3) ...
    assert not [f for f in found if f.kind == "exploding_activations" and f.event == "cleared"]


@pytest.mark.parametrize("bad_step", [7, 10])  # between recorded steps (sums), recorded (counts)
def test_a_nan_only_in_the_loss_points_at_the_loss_not_at_a_layer(tmp_path, bad_step):
    """Every layer finite, the loss NaN (a mean over an empty selection, 0/0): the advice is
    about the loss's inputs, not "check this layer's weights"."""
    X, y = _data(d=4)
    X = X.float()
    model = _relu_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(TrainingAlarm) as info:
        with watch(model, tmp_path / "run", every=5, alarms="raise") as w:
            for s in range(12):
                out = model(X)
                keep = y >= 0 if s != bad_step else y < 0  # no row kept at bad_step
                loss = nn.functional.cross_entropy(out[keep], y[keep])
                opt.zero_grad()
                if s != bad_step:
                    loss.backward()
                    opt.step()
                w.step(loss=loss)
            w.flush()
    f = info.value.finding
    assert info.value.step == bad_step and f.kind == "nonfinite" and f.layer is None
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    advice = " ".join(f.advice.split())
    assert f"The loss became nan at step {bad_step} while every watched layer's output is " \
        "finite" in advice
    for words in ("loss function's inputs", "log of zero", "division by zero",
                  "labels out of range"):
        assert words in advice
    assert "this layer's weights" not in advice and "weights are garbage" not in advice


def test_warn_alarms_are_netxray_warnings(tmp_path):
    X, y = _data(d=4)
    model = _relu_net().double()
    with torch.no_grad():
        model.fc1.bias.fill_(-1e3)
    with pytest.warns(NetxrayWarning) as caught:
        with watch(model, tmp_path / "run", every=1) as w:
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()
            w.step(loss=loss)
    assert any("step 0: ERROR dead_units [act1]" in str(c.message) for c in caught)


def test_no_hook_survives_and_the_model_is_untouched(tmp_path, hook_count):
    X, y = _data(d=4)
    model = _relu_net().double()
    model.eval()
    model.fc3.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with watch(model, tmp_path / "a", every=1, alarms=lambda f, s: None) as w:
        assert hook_count(model) > 0
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        w.step(loss=loss)
    assert hook_count(model) == 0
    with pytest.raises(RuntimeError, match="this watch is not open"):
        w.step(loss=loss)
    with pytest.raises(KeyError, match="boom"):
        with watch(model, tmp_path / "b", every=1, alarms=lambda f, s: None) as w:
            model(X).sum().backward()
            raise KeyError("boom")
    assert hook_count(model) == 0
    assert not model.training and not model.fc3.weight.requires_grad
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    with open_run(tmp_path / "b") as run:  # closed cleanly on the exception too
        assert run.meta["status"] == "closed"


def test_snapshots_of_a_probe_and_the_2d_decision_surface(tmp_path):
    X, y = _data(n=120, d=2, classes=2)
    X = X.float()
    model = netxray.mlp([2, 8, 2], seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "run", every=5, snapshot_every=4, probe=(X[:32], y[:32]),
               snapshot_resolution=16, alarms=lambda f, s: None) as w:
        for _ in range(9):
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss)
            if w._step == 5:  # right after step 4's snapshot, with step 4's weights
                with w.paused():
                    expected = netxray.activations(model, (X[:32], y[:32]))
    with open_run(tmp_path / "run") as run:
        acts = run.snapshots("activations")
        assert list(acts) == [0, 4, 8] and run.dropped_snapshots == 0
        assert isinstance(acts[4], Activations) and acts[4] == expected
        grid = run.snapshots("boundary")[8]
        assert type(grid).__name__ == "BoundaryGrid" and grid.probs.shape[:2] == (16, 16)
        assert type(run.snapshots("unit_maps")[0]).__name__ == "UnitMaps"
        # the probe's forward passes were not counted in the training statistics
        assert len(run.layer_stats("act1").step) == 2


def test_a_writer_that_falls_behind_drops_snapshots_never_statistics(tmp_path, monkeypatch):
    from netxray.store import RunDB

    slow = RunDB.write_snapshot
    go = threading.Event()

    def write_snapshot(self, *args):
        go.wait(30)  # the writer is stuck on the first snapshot until training ends
        slow(self, *args)

    monkeypatch.setattr(RunDB, "write_snapshot", write_snapshot)
    X, y = _data(n=64, d=4)
    model = _relu_net().double()
    with watch(model, tmp_path / "run", every=1, snapshot_every=1, probe=X[:8],
               alarms=lambda f, s: None) as w:
        for _ in range(8):
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()
            w.step(loss=loss)
        dropped = w.dropped_snapshots
        go.set()
    assert dropped == 6  # steps 0 and 1 queued (2 may wait), steps 2-7 dropped
    with open_run(tmp_path / "run") as run:
        assert run.dropped_snapshots == dropped
        assert len(run.snapshots("activations")) + dropped == 8
        assert len(run.steps.step) == 8 and len(run.layer_stats("act1").step) == 8


def test_a_watch_that_keeps_snapshots_waits_for_a_slow_writer(tmp_path, monkeypatch):
    from netxray.store import RunDB

    slow = RunDB.write_snapshot
    written = []

    def write_snapshot(self, kind, name, step, data):
        time.sleep(0.05)  # slower than a training step: a dropping watch would skip some
        written.append(step)
        slow(self, kind, name, step, data)

    monkeypatch.setattr(RunDB, "write_snapshot", write_snapshot)
    X, y = _data(n=64, d=4)
    model = _relu_net().double()
    with watch(model, tmp_path / "run", every=1, snapshot_every=1, probe=X[:8],
               alarms=lambda f, s: None, drop_snapshots=False) as w:
        for _ in range(8):
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()
            w.step(loss=loss)
        assert w.dropped_snapshots == 0
    with open_run(tmp_path / "run") as run:
        assert run.dropped_snapshots == 0
        assert list(run.snapshots("activations")) == list(range(8))


def test_log_gives_a_numpy_model_the_same_statistics(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    W = rng.normal(size=(3, 5))
    b = np.array([0.0, 0.0, -50.0, 0.0, 0.0])  # unit 2 is dead from the start
    alarms, refs, logged = [], {}, {}
    with watch(None, tmp_path / "run", every=2, alarms=lambda f, s: alarms.append((s, f.kind))) as w:
        for step in range(6):
            z = X @ W + b
            a = np.maximum(z, 0)
            ga = rng.normal(size=a.shape)
            gW = X.T @ (ga * (z > 0))
            w.log(step, activations={"hidden": a}, gradients={"hidden": ga, "W": gW},
                  weights={"W": W}, loss=float(a.mean()), families={"hidden": "relu"})
            refs[step], logged[step] = (a, ga, gW), W.copy()
            W = W - 0.01 * gW
        with pytest.raises(ValueError, match="steps must increase"):
            w.log(3, loss=1.0)
        with pytest.raises(ValueError, match="matches no activation"):
            w.log(10, gradients={"nope": ga})
    with open_run(tmp_path / "run") as run:
        ls, ps = run.layer_stats("hidden"), run.param_stats("W")
        assert run.layers["hidden"].family == "relu" and run.layers["hidden"].module_type == "array"
        np.testing.assert_array_equal(ls.step, [0, 2, 4])
        for i, step in enumerate([0, 2, 4]):
            a, ga, gW = refs[step]
            np.testing.assert_allclose(ls.frac_active[i], (a > 0).mean(), rtol=1e-12)
            np.testing.assert_allclose(ls.grad_rms[i], np.sqrt((ga ** 2).mean()), rtol=1e-6)
            assert ls.dead[i] == 1
            np.testing.assert_allclose(ps.weight_norm[i], np.linalg.norm(logged[step]), rtol=1e-12)
            np.testing.assert_allclose(ps.grad_norm[i], np.linalg.norm(gW), rtol=1e-12)
            if step:  # the update of this step: from the weights logged one step earlier
                prev = logged[step - 1]
                np.testing.assert_allclose(ps.update_ratio[i], np.linalg.norm(logged[step] - prev)
                                           / np.linalg.norm(prev), rtol=1e-10)
        assert np.isnan(ps.update_ratio[0])
        assert run.unit_death_steps("hidden") == {2: 0}
        assert np.allclose(run.steps.step, np.arange(6))
    assert (0, "dead_units") not in alarms  # 1 of 5 units: a note, below the alarm level


def test_nan_hidden_from_the_loss_is_named_on_its_own_unrecorded_step(tmp_path):
    """The every-step check reads each layer output, not just the loss: a NaN the loss never
    sees (here zeroed by nan_to_num) in a shared module's second call is named at once, as
    that call (``act1#1``)."""

    class Hiding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.act1, self.fc2 = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)
            self.poison = False

        def forward(self, x):
            h = self.act1(self.fc1(x))
            if self.poison:
                h = h.clone()
                h[0, 0] = float("nan")
                h = self.act1(h)  # act1 runs again on the poisoned values (a shared module)
            return self.fc2(torch.nan_to_num(h))

    X, y = _data(d=4)
    model = Hiding().float()
    seen: list[tuple[int, str | None]] = []
    with watch(model, tmp_path / "run", every=4, layers=["act1"],
               alarms=lambda f, s: seen.append((s, f.layer))) as w:
        for s in range(10):
            model.poison = s >= 5
            loss = nn.functional.cross_entropy(model(X.float()), y)
            loss.backward()
            w.step(loss=loss)
    # step 5 is not recorded and its loss is finite; the NaN is in act1's second call
    assert seen == [(5, "act1#1")]
    with open_run(tmp_path / "run") as run:
        assert np.isfinite(run.steps.loss).all()
        assert run.layer_stats("act1").nan.tolist() == [0, 0, 0]  # the first call stays clean
        assert run.layer_stats("act1#1").nan.tolist() == [1]  # recorded at step 8


class _SharedReluBlock(nn.Module):
    """A ResNet-style block whose one ReLU runs twice per forward."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        h = self.relu(self.fc1(x))
        return self.head(self.relu(self.fc2(h) + h))


def test_each_call_of_a_shared_module_is_its_own_layer(tmp_path):
    torch.manual_seed(0)
    model = _SharedReluBlock().double()
    X, y = _data()
    with netxray.watch(model, tmp_path / "run", every=1, layers="relu") as w:
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        w.step(loss=loss)
    with torch.no_grad():  # the two calls, computed by hand
        first = torch.relu(model.fc1(X))
        second = torch.relu(model.fc2(first) + first)
    with netxray.open_run(tmp_path / "run") as run:
        assert set(run.layers) == {"relu", "relu#1"}
        for name, ref in (("relu", first), ("relu#1", second)):
            np.testing.assert_allclose(run.layer_stats(name).mean[0], ref.mean().item(),
                                       rtol=1e-5)
            np.testing.assert_allclose(run.layer_stats(name).max[0], ref.max().item(), rtol=1e-6)



def test_a_selected_call_that_never_runs_is_named_not_left_empty(tmp_path):
    """"relu#5" of a module called twice per forward pass recorded nothing, without a word."""
    model = _SharedReluBlock().double()
    X, y = _data()
    with pytest.warns(NetxrayWarning, match=r"'relu#5'.*ran 2 times.*relu, relu#1"), \
            netxray.watch(model, tmp_path / "run", every=1, layers=["relu#1", "relu#5"]) as w:
        for _ in range(2):
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()
            w.step(loss=loss)
    with netxray.open_run(tmp_path / "run") as run:
        assert set(run.layers) == {"relu#1"}


class _MaskedEncoder(nn.Module):
    """A per-token layer called with an attention mask as a keyword, like a transformer."""

    def __init__(self):
        super().__init__()
        self.proj, self.act, self.head = nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)

    def forward(self, x, attention_mask):
        h = self.act(self.proj(x))
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


def test_padding_never_counts_in_a_watched_run(tmp_path):
    torch.manual_seed(0)
    model = _MaskedEncoder()
    x = torch.randn(3, 7, 4)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    x[mask == 0] = 1e3  # padding that would dominate every statistic if it were counted
    y = torch.tensor([0, 1, 0])
    with netxray.watch(model, tmp_path / "run", every=1, layers="act") as w:
        loss = nn.functional.cross_entropy(model(x, attention_mask=mask), y)
        loss.backward()
        w.step(loss=loss)
    with torch.no_grad():
        real = model.act(model.proj(x))[mask.bool()].numpy()  # (13 real tokens, 5)
    with netxray.open_run(tmp_path / "run") as run:
        s = run.layer_stats("act")
        np.testing.assert_allclose(s.mean[0], real.mean(), rtol=1e-5)
        np.testing.assert_allclose(s.max[0], real.max(), rtol=1e-6)
        assert run.layers["act"].units == 5


@pytest.mark.parametrize("advice, message", [
    ("3 units of `a` output the same value on every input (e.g. 0.5); they carry nothing.",
     "3 units of `a` output the same value on every input (e.g. 0.5)"),
    ("Half the units are dead, i.e. never active. Try: lower the learning rate.",
     "Half the units are dead, i.e. never active"),
    ("The loss is NaN (see step 3. and on). Lower the rate", "The loss is NaN (see step 3. and on)"),
    ("Only one clause.", "Only one clause"),
])
def test_an_alarm_message_is_the_advice_first_clause(advice, message):
    from netxray._watch_analysis import _message
    from netxray.health import Finding

    f = Finding(kind="dead_units", severity="warning", layer="a", units=(), evidence={},
                advice=advice)
    assert _message(f) == message


class _SeqFirstLSTM(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(3, 5, batch_first=batch_first)
        self.head = nn.Linear(5, 2)
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, seq, 3)
        out, _ = self.lstm(x if self.batch_first else x.transpose(0, 1))
        return self.head(out[:, -1] if self.batch_first else out[-1])


@pytest.mark.parametrize("batch_first", [True, False])
def test_the_gradient_of_an_lstm_output_is_recorded_in_either_layout(tmp_path, batch_first):
    """The RMS of d loss / d lstm output, against the gradient autograd gives that output."""
    model = _SeqFirstLSTM(batch_first).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (6,), generator=g)
    kept = {}

    def keep_grad(_m, _i, out):
        out[0].register_hook(lambda gr: kept.__setitem__("g", gr.clone()))

    handle = model.lstm.register_forward_hook(keep_grad)
    try:
        with watch(model, tmp_path / "run", every=1, layers=["lstm"],
                   alarms=lambda f, s: None) as w:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            w.step(loss=loss)
    finally:
        handle.remove()
    with open_run(tmp_path / "run") as run:
        rms = run.layer_stats("lstm").grad_rms[0]
    np.testing.assert_allclose(rms, kept["g"].pow(2).mean().sqrt().item(), rtol=1e-10)


def test_unrecorded_steps_reach_the_store_in_batches_and_keep_their_order(tmp_path, monkeypatch):
    """Unrecorded steps go to the writer 32 at a time (or after 0.25 s): every loss and
    metric arrives, in order, whatever its type, and a NaN in a batch names its own step."""
    import netxray.monitor as monitor

    monkeypatch.setattr(monitor, "_SEND_SECONDS", 1e9)  # batches by count only
    X, y = _data(d=4)
    X = X.float()
    model = _relu_net()
    layers = ["fc1", "act1", "fc2", "act2", "fc3"]
    losses = []
    with pytest.raises(TrainingAlarm) as info:
        with watch(model, tmp_path / "run", every=1000, layers=layers, alarms="raise") as w:
            for s in range(80):
                if s == 70:
                    with torch.no_grad():
                        model.fc2.bias[0] = float("inf")
                loss = nn.functional.cross_entropy(model(X), y)
                losses.append(float(loss.detach()))
                # a tensor, a float and None as the loss; a tensor and a NumPy metric
                given = loss if s % 3 == 0 else (float(loss.detach()) if s % 3 == 1 else None)
                w.step(loss=given, metrics={"acc": torch.tensor(s / 100), "lr": np.float32(0.1)})
            w.flush()
    assert info.value.step == 70 and info.value.finding.layer == "fc2"
    with open_run(tmp_path / "run") as run:
        np.testing.assert_array_equal(run.steps.step, np.arange(80))
        want = [v if s % 3 != 2 else np.nan for s, v in enumerate(losses)]
        np.testing.assert_allclose(run.steps.loss[:70], want[:70], rtol=1e-6)
        np.testing.assert_allclose(run.steps.metrics["acc"], np.arange(80) / 100, rtol=1e-6)
        np.testing.assert_allclose(run.steps.metrics["lr"], 0.1, rtol=1e-6)
        first = run.first_nonfinite
        assert first is not None and first.step == 70 and first.layer == "fc2"


def test_a_failing_store_stops_the_watch_with_a_clear_error(tmp_path, monkeypatch, hook_count):
    """A writer error surfaces at the next step as one RuntimeError that names it, and the
    hooks still come off."""
    from netxray.store import RunDB

    def broken(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(RunDB, "write_layer_stats", broken)
    X, y = _data(d=4)
    model = _relu_net().double()
    with pytest.raises(RuntimeError, match="run store writer failed .*disk full"):
        with watch(model, tmp_path / "run", every=1, alarms=lambda f, s: None) as w:
            for _ in range(50):
                loss = nn.functional.cross_entropy(model(X), y)
                loss.backward()
                w.step(loss=loss)
                w.flush()
    assert hook_count(model) == 0


class _PaddingSafeEncoder(_MaskedEncoder):
    """Pools with masked_fill: a NaN in padding never reaches the loss."""

    def forward(self, x, attention_mask):
        h = self.act(self.proj(x)).masked_fill(~attention_mask.bool().unsqueeze(-1), 0.0)
        return self.head(h.sum(1) / attention_mask.sum(1, keepdim=True))


def test_nan_in_padding_is_not_an_alarm_and_nan_in_a_real_token_is_on_unrecorded_steps(tmp_path):
    torch.manual_seed(0)
    model = _PaddingSafeEncoder()
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    y = torch.tensor([0, 1, 0])
    with netxray.watch(model, tmp_path / "run", every=100, layers="act",
                       alarms=lambda f, s: None) as w:
        for step in range(4):
            x = torch.randn(3, 7, 4)
            if step == 1:
                x[1, 5] = float("nan")  # padding of sequence 1
            if step == 3:
                x[2, 1] = float("nan")  # a real token of sequence 2
            loss = nn.functional.cross_entropy(model(x, attention_mask=mask), y)
            loss.backward()
            w.step(loss=loss)
    with netxray.open_run(tmp_path / "run") as run:
        first = run.first_nonfinite
        assert first is not None and first.step == 3 and first.layer == "act"
        assert np.isfinite(run.steps.loss[:3]).all()


def test_half_precision_outputs_are_summed_in_float32_for_the_nan_check(tmp_path):
    """Each float16 value is finite, but their sum (3.3e6) is not a float16: summed in
    float16 it would be Inf, and an unrecorded step would report a non-finite layer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4096), nn.ReLU()).half()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(100.0)
    x = torch.ones(8, 4, dtype=torch.float16)
    assert float(model(x).detach().sum()) == float("inf")  # (what a float16 sum gives)
    with watch(model, tmp_path / "run", every=100, gradients=False,
               alarms=lambda f, s: None) as w:
        for _ in range(3):  # step 0 recorded, steps 1 and 2 take the sum
            model(x)
            w.step()
    with open_run(tmp_path / "run") as run:
        assert list(run.steps.step) == [0, 1, 2]
        assert run.first_nonfinite is None
        assert not [f for f in run.findings if f.kind == "nonfinite"]


def _layer(count, mean, lo, hi, active):
    from netxray.stats import LayerStats

    n = len(count)
    return LayerStats(
        name="l", module_type="ReLU", family="relu", shape=(n,), calls=1,
        hist_edges=np.linspace(0.0, 8.0, 33), saturation=None, grad_norm=None,
        count=np.array(count, dtype=np.int64), mean=np.array(mean, float), var=np.zeros(n),
        min=np.array(lo, float), max=np.array(hi, float), frac_active=np.array(active, float),
        frac_saturated=np.zeros(n), nan_count=np.zeros(n, np.int64),
        inf_count=np.zeros(n, np.int64), hist=np.zeros((1, 34), np.int64))


@pytest.mark.parametrize(("layer", "want"), [
    # every unit seen: count-weighted mean and activity, min and max over units
    (_layer([1, 3], [1.0, 3.0], [0.5, 2.0], [1.5, 4.0], [1.0, 0.5]), (2.5, 0.5, 4.0, 0.625, 0)),
    # a unit that saw no finite value counts nowhere and is not dead; a silent one is
    (_layer([2, 0], [1.0, np.nan], [0.5, np.nan], [1.5, np.nan], [0.0, 0.0]),
     (1.0, 0.5, 1.5, 0.0, 1)),
    (_layer([], [], [], [], []), (None, None, None, None, 0)),  # no units at all
])
def test_a_layer_row_summarises_the_units_that_saw_values(layer, want):
    from netxray._watch_analysis import StepAnalysis

    row = StepAnalysis._layer_row(7, 3, layer, None)
    assert row[:2] == (7, 3)
    mean, lo, hi, active, dead = row[2], row[4], row[5], row[6], row[8]
    assert [mean, lo, hi, active, dead] == [None if w is None else pytest.approx(w, rel=1e-12)
                                            for w in want]


def test_tensors_given_to_step_are_read_as_they_were_at_that_step(tmp_path):
    """A reused loss buffer and a running counter, changed in place after w.step(): the
    writer reads them later, so it must read copies taken at the step."""
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(8, 3)
    buf, seen = torch.zeros(()), torch.zeros((), dtype=torch.int64)
    want = []
    with watch(m, tmp_path / "r", every=3) as w:
        for step in range(10):
            buf.copy_(m(x).pow(2).mean().detach() + step)
            seen += 1
            want.append(float(buf))
            w.step(loss=buf, metrics={"seen": seen})
            buf.zero_()
            seen.mul_(100)  # (the value stored must be the one at the step, never this)
            seen.div_(100, rounding_mode="floor")
    run = open_run(tmp_path / "r")
    np.testing.assert_allclose(run.steps.loss, want, rtol=1e-6)
    np.testing.assert_array_equal(run.steps.metrics["seen"], np.arange(1, 11))
    run.close()


def test_a_model_with_lazy_parameters_is_refused_before_a_run_is_created(tmp_path):
    m = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"uninitialised lazy parameters \(0.weight, 0.bias\)"
                                         r".*run one batch"):
        watch(m, tmp_path / "r").__enter__()
    assert not (tmp_path / "r").exists()
    m(torch.randn(2, 3))  # initialised: the same path works now
    with watch(m, tmp_path / "r") as w:
        m(torch.randn(2, 3)).sum().backward()
        w.step()
    assert len(open_run(tmp_path / "r").steps.step) == 1


def test_bad_watch_arguments_and_logged_values_get_clear_errors(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    for kwargs, msg in [({"every": 2.5}, r"every must be an integer >= 1, got 2.5"),
                        ({"every": "10"}, r"every must be an integer >= 1, got '10'"),
                        ({"bins": 2.5}, r"bins must be an integer >= 0"),
                        ({"snapshot_every": 1}, r"snapshot_every= takes snapshots only with probe="),
                        ({"probe": torch.randn(2, 3)}, r"probe= takes snapshots only with "
                                                       r"snapshot_every=")]:
        with pytest.raises(ValueError, match=msg):
            watch(m, tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()
    with watch(m, tmp_path / "r") as w:
        with pytest.raises(TypeError, match="loss or metric must be a number, a tensor or a "
                                            "NumPy array, got list"):
            w.step(loss=[1.0, 2.0])
        w.step(loss=np.array([1.0, 2.0]), metrics={"acc": np.float32(0.5)})  # (their means)
    assert open_run(tmp_path / "r").steps.loss.tolist() == [1.5]
    with watch(None, tmp_path / "a", every=1, alarms=lambda f, s: None) as w:
        with pytest.raises(ValueError, match=r"step must be an integer >= 0, got -1"):
            w.log(-1, activations={"h": np.ones((2, 3))})
        with pytest.raises(ValueError, match=r"step must be an integer >= 0, got 1.5"):
            w.log(1.5, activations={"h": np.ones((2, 3))})
        with pytest.raises(ValueError, match=r"activation 'h' has dtype torch.int64"):
            w.log(0, activations={"h": np.ones((2, 3), dtype=np.int64)})
        w.log(0, activations={"h": np.ones((2, 3))})
        with pytest.raises(ValueError, match=r"steps must increase: got 0 after step 0"):
            w.log(0, activations={"h": np.ones((2, 3))})
