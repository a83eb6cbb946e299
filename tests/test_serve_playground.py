"""The playground's computation: config bounds, URL state, data, training, frames, patches."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from netxray.report.html import payload_json
from netxray.report.network_chart import network
from netxray.report.packing import tolerance, unpack
from netxray.serve.frames import frame_message, frame_patches, playground_payload
from netxray.serve.playground import PlaygroundSession, build_model, parse_csv
from netxray.serve.playground_config import (
    PRESETS,
    PlayConfig,
    from_dict,
    from_query,
    preset,
    to_query,
)
from netxray.serve.settings import Limits

L = Limits()


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- config and URL state
def test_defaults_are_tensorflow_playgrounds():
    c = PlayConfig().validate(L)
    assert (c.dataset, c.hidden, c.activation, c.lr, c.batch_size, c.train_ratio) == (
        "circle", (4, 2), "tanh", 0.03, 10, 0.5)


@pytest.mark.parametrize("change, words", [
    ({"hidden": (4,) * 7}, "at most 6"),
    ({"hidden": (17,)}, r"hidden\[0\] must be a whole number in 1\.\.16"),
    ({"n_samples": 2001}, "n_samples"),
    ({"lr": float("nan")}, "lr must be a number"),
    ({"lr": 0.0}, "lr must be a number"),
    ({"features": ()}, "at least one"),
    ({"features": ("x1", "x3")}, "features must be one of"),
    ({"activation": "swish"}, "activation must be one of"),
    ({"classes": 3, "dataset": "circle"}, "only gauss, spiral, csv"),
    ({"resolution": 101}, "resolution"),
    ({"batch_size": True}, "batch_size"),
])
def test_every_field_is_bounded(change, words):
    with pytest.raises(ValueError, match=words):
        replace(PlayConfig(), **change).validate(L)


def test_limits_shrink_the_bounds():
    with pytest.raises(ValueError, match="at most 2 are allowed"):
        PlayConfig(hidden=(4, 4, 4)).validate(Limits(max_layers=2))


def test_url_state_round_trips_every_preset():
    for name in PRESETS:
        c = preset(name, L)
        assert from_query(to_query(c), L) == c
        assert from_query("#" + to_query(c), L) == c


def test_url_state_is_strict():
    with pytest.raises(ValueError, match="unknown URL parameter 'bogus'"):
        from_query("bogus=1", L)
    with pytest.raises(ValueError, match="given twice"):
        from_query("lr=0.1&lr=0.2", L)
    with pytest.raises(ValueError, match="hidden"):
        from_query("hidden=4,x", L)
    with pytest.raises(ValueError, match="in 1..16; got 99"):
        from_query("hidden=99", L)
    assert from_query("", L) == PlayConfig()
    assert from_query("hidden=&act=gelu", L).hidden == ()
    assert from_dict({"hidden": [3, 2], "lr": 0.1}, L) == PlayConfig(hidden=(3, 2), lr=0.1)


# ---------------------------------------------------------------- data and model
def test_model_takes_the_plane_and_computes_the_features():
    c = PlayConfig(features=("x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2"))
    model = build_model(c, 2)
    x = torch.tensor([[0.5, -2.0]])
    f = model.features(x)
    expected = [0.5, -2.0, 0.25, 4.0, -1.0, np.sin(0.5), np.sin(-2.0)]
    np.testing.assert_allclose(f.numpy()[0], expected, rtol=1e-6)
    assert [n for n, _ in model.named_children()] == ["features", "fc1", "act1", "fc2", "act2",
                                                      "fc3"]


def test_csv_upload_is_parsed_strictly():
    rows = "\n".join(f"{i * 0.1},{-i * 0.2},{'a' if i % 2 else 'b'}" for i in range(20))
    ds = parse_csv("x,y,label\n" + rows, L)
    assert ds.class_names == ("a", "b") and len(ds) == 20
    np.testing.assert_allclose(ds.X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(ds.X.std(0), 1, atol=1e-12)
    with pytest.raises(ValueError, match="row 3, column 'y': 'oops' is not a number"):
        parse_csv("x,y,label\n1,2,0\n1,oops,1\n" + rows, L)
    with pytest.raises(ValueError, match="has 4 columns"):
        parse_csv("a,b,c,d\n" + rows, L)
    with pytest.raises(ValueError, match="not finite"):
        parse_csv("x,y,label\n1,inf,0\n" + rows, L)
    with pytest.raises(ValueError, match="at most 15 are allowed"):
        parse_csv("x,y,label\n" + rows, Limits(max_samples=15))
    with pytest.raises(ValueError, match="larger than 50 bytes"):
        parse_csv("x,y,label\n" + rows, Limits(max_upload_bytes=50))
    with pytest.raises(ValueError, match="2 to 6"):
        parse_csv("x,y,label\n" + "\n".join(f"{i},{i},0" for i in range(20)), L)


# ---------------------------------------------------------------- training and frames
def test_training_lowers_the_loss_and_is_deterministic():
    a = PlaygroundSession(PlayConfig(), L)
    first = a.frame()
    for _ in range(30):
        last = a.step()
    assert last.epoch == 30 and last.steps == 30 * 25
    assert last.train_loss < first.train_loss - 0.02
    b = PlaygroundSession(PlayConfig(), L)
    for _ in range(30):
        b.train_epoch()
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_frame_maps_agree_with_the_librarys_unit_maps_and_surface():
    from netxray.boundary import unit_maps

    s = PlaygroundSession(PlayConfig(hidden=(5, 3), activation="relu", init="he"), L)
    s.step()
    f = s.frame()
    X = np.array([[s.txs[0], s.tys[0]], [s.txs[-1], s.tys[-1]]])
    ref = unit_maps(s.model, X, layers=["act1", "act2"], resolution=len(s.txs), margin=0.0)
    for name in ("act1", "act2"):
        np.testing.assert_allclose(f.maps[name], ref.maps[name], rtol=1e-5, atol=1e-6)
    # the surface: softmax of the network at a grid point, row 0 at the bottom
    j, i = 3, 7
    x = torch.tensor([[f.xs[i], f.ys[j]]], dtype=torch.float32)
    np.testing.assert_allclose(f.probs[j, i], torch.softmax(s.model(x), 1)[0].detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # the hover arrows' field: on the same grid (checked in tests/test_surface_gradient.py)
    assert f.input_grad.shape == (len(f.ys), len(f.xs), 2)


def test_dying_relu_preset_marks_dead_units_as_the_statistics_find_them():
    from netxray.stats import collect_stats

    s = PlaygroundSession(preset("dying_relu", L), L)
    for _ in range(30):
        f = s.step()
    assert sum(int(v.sum()) for v in f.dead.values()) >= 3
    stats = collect_stats(s.model, (s.X, s.y), ["act1", "act2"])
    for name in ("act1", "act2"):  # dead: never > 0 on any training sample
        out = s.model[: list(dict(s.model.named_children())).index(name) + 1](s.X)
        np.testing.assert_array_equal(f.dead[name], (out > 0).sum(0).numpy() == 0)
        np.testing.assert_array_equal(f.dead[name], stats[name].frac_active == 0)
    assert "dead_units" in {x.kind for x in f.findings}


def test_a_leaky_relu_unit_that_is_never_positive_is_not_greyed_as_dead():
    """LeakyReLU passes gradient below 0, so the health rules never call it dead."""
    s = PlaygroundSession(replace(preset("dying_relu", L), activation="leaky_relu"), L)
    with torch.no_grad():
        s.model.fc1.bias[0] = -1e3  # unit 0 of act1 is negative on every input
    f = s.frame()
    out = s.model[: list(dict(s.model.named_children())).index("act1") + 1](s.X)
    assert ((out[:, 0] > 0).sum() == 0).item()  # never active ...
    assert not f.dead["act1"].any()  # ... yet not dead
    assert "dead_units" not in {x.kind for x in f.findings}


def test_saturated_preset_marks_saturated_units():
    s = PlaygroundSession(preset("saturated", L), L)
    f = s.step()
    assert sum(int(v.sum()) for v in f.saturated.values()) >= 4
    assert "saturated_units" in {x.kind for x in f.findings}


def test_pca_is_scikit_learns():
    from sklearn.decomposition import PCA

    s = PlaygroundSession(PlayConfig(hidden=(6, 4)), L)
    f = s.step()
    H = s.model[:3](s.X).detach().numpy().astype(np.float64)
    np.testing.assert_allclose(f.pca["act1"], PCA(2).fit_transform(H), rtol=1e-6, atol=1e-6)


def test_patches_are_valid_charts_keyed_by_id():
    c = preset("spiral3", L)
    s = PlaygroundSession(c, L)
    f = s.step()
    patches = frame_patches(f, c)
    assert set(patches) >= {"network", "surface", "loss", "findings", "gradients",
                            "pca-act1", "pca-act2", "pca-act3"}
    for cid, spec in patches.items():
        assert spec["id"] == cid
    payload = playground_payload(f, c)
    json.loads(payload_json(payload))  # every chart passes the report's validation
    msg = json.loads(json.dumps(frame_message(f, c), allow_nan=False))
    assert msg["epoch"] == 1 and msg["type"] == "frame"
    # the diagram's columns: input features, each hidden layer, the 3 class outputs
    net = patches["network"]
    assert [len(col["dead"]) for col in net["layers"]] == [4, 12, 12, 12, 3]
    w = unpack(net["links"][1])
    np.testing.assert_allclose(w, s.model.fc2.weight.detach().numpy(), rtol=2**-20)


def test_discretize_shows_the_top_class_only():
    c = PlayConfig(discretize=True)
    s = PlaygroundSession(c, L)
    f = s.step()
    probs = unpack(frame_patches(f, c)["surface"]["probs"])
    assert set(np.unique(probs)) <= {0.0, 1.0}
    np.testing.assert_array_equal(probs.argmax(-1), f.probs.argmax(-1))


def test_network_chart_checks_its_inputs():
    maps = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="between columns 0 and 1 it must be"):
        network("n", [{"maps": maps}, {"maps": maps[:1]}], [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="has 3 entries but the layer has 2"):
        network("n", [{"maps": maps, "dead": [0, 1, 0]}, {"maps": maps}], [np.zeros((2, 2))])
    rng = np.random.default_rng(0)
    m0 = rng.normal(size=(2, 4, 4))
    spec = network("n", [{"maps": m0}, {"maps": maps}], [np.ones((2, 2))])
    packed = spec["layers"][0]["maps"]
    assert (np.abs(unpack(packed) - m0) <= tolerance(packed, m0) + 1e-12).all()
    assert spec["kind"] == "network" and spec["layers"][1]["labels"] == ["layer 1 0", "layer 1 1"]


def test_a_diverged_network_still_makes_frames():
    s = PlaygroundSession(preset("nan", L), L)
    for _ in range(5):
        f = s.step()
    assert not np.isfinite(f.train_loss)
    msg = json.loads(json.dumps(frame_message(f, s.config), allow_nan=False))
    assert msg["train_loss"] is None
    kinds = [item["kind"] for item in msg["patches"]["findings"]["items"]]
    assert "nonfinite" in kinds or "loss_diverged" in kinds
