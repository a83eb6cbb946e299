"""export_tensorboard: read back with TensorBoard's own EventAccumulator, every scalar and
histogram equals the run store's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.monitor import watch
from netxray.store import open_run

ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _run(path):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(256, 4, generator=g), torch.randint(0, 3, (256,), generator=g)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with torch.no_grad():
        model[2].bias[:] = -50.0  # every unit of the ReLU dead: a finding
    with watch(model, path, every=2, bins=8, alarms=lambda f, s: None) as w:
        for _ in range(7):
            loss = nn.functional.cross_entropy(model(X * 3), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss, metrics={"half": loss.detach() / 2})


def _load(out):
    acc = ea_mod.EventAccumulator(str(out), size_guidance={ea_mod.SCALARS: 0,
                                                           ea_mod.HISTOGRAMS: 0,
                                                           ea_mod.TENSORS: 0})
    acc.Reload()
    return acc


def test_scalars_and_histograms_read_back_equal_the_run(tmp_path):
    _run(tmp_path / "run")
    out = netxray.export_tensorboard(tmp_path / "run", tmp_path / "tb")
    acc = _load(out)
    tags = acc.Tags()
    with open_run(tmp_path / "run") as run:
        def check(tag, steps, values, walls=None):
            ev = acc.Scalars(tag)
            keep = ~np.isnan(values)
            np.testing.assert_array_equal([e.step for e in ev], steps[keep])
            np.testing.assert_allclose([e.value for e in ev], values[keep], rtol=1e-6)
            if walls is not None:
                np.testing.assert_allclose([e.wall_time for e in ev], walls[keep], rtol=1e-12)

        st = run.steps
        check("train/loss", st.step, st.loss, st.time)
        check("metrics/half", st.step, st.metrics["half"])
        assert len(acc.Scalars("train/loss")) == 7
        for layer in ("1", "3"):
            ls = run.layer_stats(layer)
            check(f"layers/{layer}/activity", ls.step, ls.frac_active)
            check(f"layers/{layer}/scale", ls.step, ls.scale)
            check(f"layers/{layer}/mean", ls.step, ls.mean)
            check(f"layers/{layer}/grad_rms", ls.step, ls.grad_rms)
            hs = acc.Histograms(f"histograms/{layer}")
            np.testing.assert_array_equal([h.step for h in hs], ls.step)
            for i, h in enumerate(hs):
                v = h.histogram_value
                np.testing.assert_array_equal(v.bucket, ls.hist[i])
                np.testing.assert_allclose(v.bucket_limit[:-1], ls.hist_edges)
                assert v.bucket_limit[-1] >= ls.hist_edges[-1]
                assert v.min == pytest.approx(ls.min[i]) and v.max == pytest.approx(ls.max[i])
                assert v.num == ls.hist[i].sum() == 256 * 8
                np.testing.assert_allclose(v.sum, ls.mean[i] * v.num, rtol=1e-6)
                np.testing.assert_allclose(v.sum_squares, ls.scale[i] ** 2 * v.num, rtol=1e-6)
        check("layers/1/saturation", run.layer_stats("1").step, run.layer_stats("1").frac_saturated)
        check("layers/3/dead_units", run.layer_stats("3").step, run.layer_stats("3").dead)
        assert "layers/1/dead_units" not in tags["scalars"]  # NaN for tanh: not written
        for pname in run.params:
            ps = run.param_stats(pname)
            check(f"params/{pname}/weight_norm", ps.step, ps.weight_norm)
            check(f"params/{pname}/grad_norm", ps.step, ps.grad_norm)
            check(f"params/{pname}/update_ratio", ps.step, ps.update_ratio)
        dead = [f for f in run.findings if f.kind == "dead_units"]
        assert dead
    texts = acc.Tensors("findings/text_summary")
    assert any("dead_units" in t.tensor_proto.string_val[0].decode() for t in texts)


def test_a_run_object_stays_open_and_histograms_can_be_left_out(tmp_path):
    _run(tmp_path / "run")
    with open_run(tmp_path / "run") as run:
        netxray.export_tensorboard(run, tmp_path / "tb", histograms=False)
        assert len(run.steps.step) == 7  # still usable
    acc = _load(tmp_path / "tb")
    assert acc.Tags()["histograms"] == [] and "train/loss" in acc.Tags()["scalars"]


def test_the_export_tensorboard_command_writes_what_the_api_writes(tmp_path, capsys):
    from netxray import cli

    _run(tmp_path / "run")
    assert cli.main(["export-tensorboard", str(tmp_path / "run"), str(tmp_path / "tb")]) == 0
    assert f"TensorBoard: {tmp_path / 'tb'}" in capsys.readouterr().out
    api = netxray.export_tensorboard(tmp_path / "run", tmp_path / "api")
    got, want = _load(tmp_path / "tb"), _load(api)
    assert got.Tags()["scalars"] == want.Tags()["scalars"] and got.Tags()["histograms"]
    for tag in want.Tags()["scalars"]:
        assert [(e.step, e.value) for e in got.Scalars(tag)] == [
            (e.step, e.value) for e in want.Scalars(tag)]
    # a second export into the same folder would double every series: refused
    assert cli.main(["export-tensorboard", str(tmp_path / "run"), str(tmp_path / "tb")]) == 2
    assert "already holds TensorBoard event files" in capsys.readouterr().err
    assert cli.main(["export-tensorboard", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no run at" in err and "Traceback" not in err
    assert cli.main(["export-tensorboard", str(tmp_path / "run"), str(tmp_path / "nh"),
                     "--no-histograms"]) == 0
    assert not _load(tmp_path / "nh").Tags()["histograms"]
