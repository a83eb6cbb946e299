"""Displays for projections, probes, CKA, decision boundaries, unit maps, grid warps, GIFs."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import make_blobs, make_moons  # noqa: E402
from torch import nn  # noqa: E402

from netxray.boundary import boundary_evolution, decision_boundary, grid_warp, unit_maps  # noqa: E402
from netxray.plot.boundary import (  # noqa: E402
    DecisionBoundaryDisplay,
    GridWarpDisplay,
    UnitMapsDisplay,
    save_gif,
)
from netxray.plot.probes import ActivationMapDisplay, CKADisplay, ProbeDisplay  # noqa: E402
from netxray.plot.projection import ProjectionDisplay  # noqa: E402
from netxray.probes import activation_map, cka_matrix, linear_probes  # noqa: E402
from netxray.projection import project  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(100, noise=0.2, random_state=0)
    return X.astype(np.float32), y


def model(sizes=(2, 5, 2), act=nn.ReLU):
    torch.manual_seed(0)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def test_computing_modules_do_not_import_matplotlib() -> None:
    code = (
        "import sys, netxray.projection, netxray.probes, netxray.boundary, "
        "netxray.plot.projection, netxray.plot.probes, netxray.plot.boundary; "
        "bad = [m for m in ('matplotlib', 'sklearn', 'openTSNE', 'umap', 'scipy') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("color_by", ["label", "prediction", "correct", "value", "none", "auto"])
def test_projection_display(color_by: str) -> None:
    X, y = make_blobs(60, n_features=5, centers=3, random_state=0)
    proj = project(X, "pca")
    disp = ProjectionDisplay.from_result(
        proj, labels=y, predictions=np.roll(y, 1), values=X[:, 0], class_names=["a", "b", "c"]
    ).plot(color_by=color_by)
    assert disp.ax_.figure is disp.figure_
    assert disp.ax_.get_xlabel() == "PC1"
    n_collections = len(disp.ax_.collections)
    assert n_collections == {"label": 3, "prediction": 3, "correct": 2}.get(
        color_by, 1 if color_by != "auto" else 3
    )
    if color_by == "label":
        assert [t.get_text() for t in disp.ax_.get_legend().get_texts()] == ["a", "b", "c"]


def test_projection_display_errors_and_existing_axes() -> None:
    disp = ProjectionDisplay(np.zeros((4, 2)), labels=[0, 1, 0, 1])
    with pytest.raises(ValueError, match="needs predictions"):
        disp.plot(color_by="correct")
    with pytest.raises(ValueError, match="color_by"):
        disp.plot(color_by="rainbow")
    with pytest.raises(ValueError, match="entries"):
        ProjectionDisplay(np.zeros((4, 2)), labels=[0, 1])
    _, ax = plt.subplots()
    assert disp.plot(ax=ax).ax_ is ax


def test_probe_cka_and_activation_map_displays() -> None:
    X, y = make_blobs(90, n_features=6, centers=3, random_state=1)
    acts = {
        "input": X,
        "relu": np.maximum(X @ np.ones((6, 4)), 0),
        "noise": np.random.default_rng(0).normal(size=(90, 3)),
    }
    probes = ProbeDisplay.from_result(linear_probes(acts, y, cv=3)).plot()
    assert [t.get_text() for t in probes.ax_.get_xticklabels()] == ["input", "relu", "noise"]
    assert any(line.get_linestyle() == "--" for line in probes.ax_.get_lines())  # chance
    cka = CKADisplay.from_result(cka_matrix(acts)).plot()
    assert cka.ax_.images[0].get_array().shape == (3, 3)
    amap = ActivationMapDisplay.from_result(
        activation_map(acts["relu"], y), class_names=["x", "y", "z"]
    ).plot()
    assert [t.get_text() for t in amap.ax_.get_yticklabels()] == ["x", "y", "z"]
    assert amap.ax_.images[0].get_array().shape == (90, 4)


def test_decision_boundary_display_two_and_many_classes(moons) -> None:
    X, y = moons
    disp = DecisionBoundaryDisplay.from_model(
        model(), X, y, X_test=X[:10], y_test=y[:10], resolution=20
    ).plot()
    markers = {
        c.get_paths()[0].vertices.shape[0]
        for c in disp.ax_.collections
        if hasattr(c, "get_offsets") and len(c.get_offsets())
    }
    assert len(markers) >= 2  # circles and triangles differ
    assert disp.ax_.get_xlabel() == "x1"
    Xb, yb = make_blobs(60, n_features=4, centers=4, random_state=0)
    grid = decision_boundary(model((4, 6, 4)), Xb, resolution=15)
    disp = DecisionBoundaryDisplay.from_result(grid, y=yb).plot()
    assert disp.ax_.get_xlabel() == "PC1" and len(disp.ax_.images) == 1
    with pytest.raises(ValueError, match="grid shape"):
        DecisionBoundaryDisplay(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((4, 4, 2)))


def test_unit_maps_and_grid_warp_displays(moons) -> None:
    X, y = moons
    m = model((2, 3, 2))
    with torch.no_grad():
        m[0].bias[0] = -100.0
    disp = UnitMapsDisplay.from_result(unit_maps(m, X, resolution=10), y=y, show_points=True).plot()
    titled = [a for a in disp.axes_.ravel() if a.get_title()]
    assert len(titled) == 3
    assert any(t.get_text() == "dead" for t in titled[0].texts)
    assert not any(t.get_text() == "dead" for t in titled[1].texts)
    gw = GridWarpDisplay.from_result(
        grid_warp(model((2, 2, 2), act=nn.Tanh), X, n_lines=4), y=y
    ).plot()
    assert [a.get_title() for a in gw.axes_] == ["input", "0", "1", "2"]
    assert len(gw.axes_[1].get_lines()) == 8


def test_save_gif_writes_one_frame_per_checkpoint(tmp_path, moons) -> None:
    X, y = moons
    m = model()
    ckpts = {}
    for e in range(3):
        with torch.no_grad():
            m[0].weight.mul_(1.5)
        ckpts[e] = {k: v.clone() for k, v in m.state_dict().items()}
    ev = boundary_evolution(m, ckpts, X, y, resolution=12, hidden_layer="1")
    path = save_gif(ev, tmp_path / "ev.gif", y=y, fps=5, dpi=40)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 3
        assert im.info["duration"] == 200


def _point_colours(ax) -> dict[str, tuple[float, ...]]:
    return {c.get_label(): tuple(np.round(c.get_facecolor()[0][:3], 6)) for c in ax.collections
            if c.get_label().startswith(("train", "test"))}


def test_points_take_the_colour_of_their_class_on_the_surface() -> None:
    # two classes: the surface runs from RdBu_r's blue end (class 0) to its red end (class 1)
    xx, yy = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    probs = np.stack([1 - xx, xx], -1)
    pts = np.array([[0.1, 0.5], [0.9, 0.5]])
    end = {0: matplotlib.colormaps["RdBu_r"](0.05)[:3], 1: matplotlib.colormaps["RdBu_r"](0.95)[:3]}
    for y, names in (([0, 1], None), ([1, 0], None), (["no", "yes"], ["no", "yes"])):
        disp = DecisionBoundaryDisplay(xx, yy, probs, points=pts, y=y, class_names=names).plot()
        got = _point_colours(disp.ax_)
        for label in y:
            c = label if names is None else names.index(label)
            name = f"train: {label}" if names else f"train: class {label}"
            assert got[name] == tuple(np.round(end[c], 6))
    # labels that are not output columns cannot be matched to the surface: refused, not guessed
    for y in ([-1, 1], [1, 2], ["a", "b"]):
        with pytest.raises(ValueError, match="not class indices 0..1"):
            DecisionBoundaryDisplay(xx, yy, probs, points=pts, y=y)
    with pytest.raises(ValueError, match="y_test holds"):
        DecisionBoundaryDisplay(xx, yy, probs, test_points=pts, y_test=[-1, 1])
    # three classes: a point has the colour the surface shows where the model is sure of it
    probs3 = np.zeros((5, 5, 3))
    probs3[:, :2, 0], probs3[:, 2, 1], probs3[:, 3:, 2] = 1, 1, 1
    pts3 = np.array([[0.0, 0.5], [0.5, 0.5], [1.0, 0.5]])
    disp = DecisionBoundaryDisplay(xx, yy, probs3, points=pts3, y=[2, 0, 1]).plot()
    img = disp.ax_.images[0].get_array()
    sure = {0: img[2, 0], 1: img[2, 2], 2: img[2, 4]}
    got = _point_colours(disp.ax_)
    for c in range(3):  # the surface fades a sure class's colour by 0.85 toward white
        np.testing.assert_allclose(got[f"train: class {c}"], 1 - (1 - sure[c][:3]) / 0.85,
                                   atol=1e-6)


def test_a_class_keeps_its_colour_in_the_label_and_prediction_views() -> None:
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(30, 2))
    labels = np.repeat([0, 1, 2], 10)
    preds = np.where(labels == 1, 2, labels)  # class 1 never predicted
    for lab, pred in ((labels, preds), (labels - 1, preds - 1), (np.array(list("abc"))[labels],
                                                                  np.array(list("abc"))[preds])):
        seen = {}
        for by in ("label", "prediction"):
            ax = ProjectionDisplay(coords, labels=lab, predictions=pred).plot(color_by=by).ax_
            seen[by] = {c.get_label(): tuple(c.get_facecolor()[0]) for c in ax.collections}
        assert set(seen["prediction"]) < set(seen["label"])
        for name, colour in seen["prediction"].items():
            assert seen["label"][name] == colour
        assert len(set(seen["label"].values())) == 3
    # class index c is colour c, as on the decision surface
    ax = ProjectionDisplay(coords, labels=labels, predictions=preds).plot(color_by="prediction").ax_
    tab = matplotlib.colormaps["tab10"].colors
    assert {c.get_label(): tuple(c.get_facecolor()[0][:3]) for c in ax.collections} == {
        "0": tuple(tab[0]), "2": tuple(tab[2])}


def test_the_title_says_why_trustworthiness_is_undefined() -> None:
    proj = project(np.ones((20, 4)))
    ax = ProjectionDisplay.from_result(proj).plot().ax_
    assert "undefined" in ax.get_title()
