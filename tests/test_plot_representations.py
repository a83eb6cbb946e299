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
