"""A playground :class:`~netxray.serve.playground.Frame` as chart patches, keyed by chart id.

Every chart is built by the report's own builders (:mod:`netxray.report.charts`,
:mod:`netxray.report.network_chart`), arrays packed, and carries an ``"id"``; the page
redraws one chart per patch with ``window.netxray.patch(id, spec)``. :func:`frame_message`
is what the server streams each frame; :func:`playground_payload` is the first page.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netxray.report import charts
from netxray.report.network_chart import network
from netxray.serve.playground import Frame
from netxray.serve.playground_config import PlayConfig

__all__ = ["MAX_CURVE", "MAX_POINTS", "frame_message", "frame_patches", "playground_payload"]

#: points drawn on the surface (a seeded subsample beyond this)
MAX_POINTS = 300
#: epochs drawn on the loss curve (evenly spaced beyond this, the last one always)
MAX_CURVE = 400
_FEATURE_LABELS = {"x1": "x1", "x2": "x2", "x1^2": "x1\u00b2", "x2^2": "x2\u00b2",
                   "x1x2": "x1\u00b7x2", "sin_x1": "sin x1", "sin_x2": "sin x2"}


def _with_id(chart_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec["id"] = chart_id
    return spec


def _subsample(n: int, limit: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, limit, replace=False))


def _points(frame: Frame) -> list[dict[str, Any]]:
    out = []
    for marker, (X, y), share in (("train", frame.train_points, 0.7),
                                  ("test", frame.test_points, 0.3)):
        for i in _subsample(len(y), int(MAX_POINTS * share)):
            out.append({"x": float(X[i, 0]), "y": float(X[i, 1]), "label": int(y[i]),
                        "marker": marker})
    return out


def _probs(frame: Frame, discretize: bool) -> np.ndarray:
    if not discretize:
        return frame.probs
    return np.eye(frame.probs.shape[-1])[frame.probs.argmax(-1)]


def network_chart(frame: Frame, config: PlayConfig) -> dict[str, Any]:
    cols = []
    for name in frame.layer_names:
        maps = frame.maps[name]
        labels = ([_FEATURE_LABELS[f] for f in config.features] if name == "features"
                  else [f"{name} unit {u}" for u in range(maps.shape[0])])
        cols.append({"name": "input" if name == "features" else name, "maps": maps,
                     "labels": labels, "dead": frame.dead.get(name),
                     "saturated": frame.saturated.get(name)})
    k = frame.probs.shape[-1]
    out = frame.maps["output"]
    if config.discretize:
        out = np.moveaxis(np.eye(k)[out.argmax(0)], -1, 0)
    cols.append({"name": "output", "maps": out - 1.0 / k,
                 "labels": [f"p({c})" for c in frame.class_names]})
    return _with_id("network", network(
        "Network", cols, frame.weights, extent=frame.thumb_extent,
        description="Each unit's response over the input plane (blue positive, orange "
        "negative); links: width |weight|, blue positive, orange negative. Dead units are "
        "greyed, saturated units outlined in red. Hover a unit for its numbers."))


def _gradient(frame: Frame) -> dict[str, Any]:
    """The surface's hover arrows: the input gradient on the surface grid itself."""
    g = frame.input_grad
    return {"x": frame.xs, "y": frame.ys, "dx": g[..., 0], "dy": g[..., 1],
            "label": "\u2202P(predicted)/\u2202(x1, x2)"}


def frame_patches(frame: Frame, config: PlayConfig) -> dict[str, dict[str, Any]]:
    """Every chart of the playground for this frame: ``{chart id: spec}``."""
    out: dict[str, dict[str, Any]] = {}
    out["network"] = network_chart(frame, config)
    out["surface"] = _with_id("surface", charts.surface(
        f"Output at epoch {frame.epoch}", frame.xs, frame.ys, _probs(frame, config.discretize),
        points=_points(frame), class_names=list(frame.class_names), xlabel="x1", ylabel="x2",
        gradient=_gradient(frame),
        description="The network's class probabilities over the plane; circles are training "
        "points, squares test points." + (" Discretized: each cell shows its top class."
                                          if config.discretize else "") +
        " Hover: the arrow is the gradient of the predicted class's probability with respect "
        "to (x1, x2), the direction that raises it fastest."))
    ep = np.asarray(frame.curve["epoch"], dtype=np.float64)
    keep = np.unique(np.append(np.linspace(0, len(ep) - 1, min(len(ep), MAX_CURVE)).round(),
                               len(ep) - 1)).astype(int)
    out["loss"] = _with_id("loss", charts.lines(
        "Loss", ep[keep], {"train": np.asarray(frame.curve["train"])[keep],
                           "test": np.asarray(frame.curve["test"])[keep]},
        xlabel="epoch", ylabel="cross-entropy", dashed=["test"]))
    names = list(frame.grad_norms)
    if names:
        out["gradients"] = _with_id("gradients", charts.lines(
            "Gradient RMS by depth", list(range(len(names))),
            {"gradient RMS": [frame.grad_norms[n] for n in names]}, xlabel="layer",
            ylabel="RMS", log_y=True, x_labels=names,
            description="RMS of the loss gradient with respect to each hidden layer's output "
            "(input side first); a steep slope is vanishing or exploding gradients."))
    out["findings"] = _with_id("findings", charts.findings("Findings", [
        {"severity": f.severity if f.severity in charts.SEVERITIES else "info", "kind": f.kind,
         "layer": f.layer or "", **_headline(f.advice), "units": list(f.units)[:64]}
        for f in frame.findings]))
    X, y = frame.train_points
    idx = _subsample(len(y), MAX_POINTS)
    for name, coords in frame.pca.items():
        out[f"pca-{name}"] = _with_id(f"pca-{name}", charts.scatter(
            f"PCA of {name}", coords[idx, 0], coords[idx, 1],
            color_by={"class": y[idx].astype(int)}, class_names=list(frame.class_names),
            xlabel="PC1", ylabel="PC2"))
    return out


def _headline(advice: str) -> dict[str, str]:
    first, sep, rest = advice.partition(". ")
    return {"text": first + "." if sep else advice, "advice": rest if sep else ""}


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def frame_message(frame: Frame, config: PlayConfig) -> dict[str, Any]:
    """One frame as the server sends it: the counters and ``patches`` by chart id."""
    return {"type": "frame", "epoch": frame.epoch, "steps": frame.steps,
            "train_loss": _num(frame.train_loss), "test_loss": _num(frame.test_loss),
            "train_acc": _num(frame.train_acc), "test_acc": _num(frame.test_acc),
            "dead": int(sum(int(v.sum()) for v in frame.dead.values())),
            "saturated": int(sum(int(v.sum()) for v in frame.saturated.values())),
            "patches": frame_patches(frame, config)}


#: sections of the playground page: (id, title, chart ids or a prefix ending in "-")
_SECTIONS = (("play", "Playground", ("network", "surface", "loss")),
             ("health", "Findings", ("findings", "gradients")),
             ("pca", "Hidden layers (PCA)", ("pca-",)))


def playground_payload(frame: Frame, config: PlayConfig,
                       controls: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page's payload: every chart of the first frame, in sections; ``controls`` (a
    controls chart, :func:`netxray.serve.controls.controls_chart`) first, when given."""
    patches = frame_patches(frame, config)
    sections = []
    for sid, title, ids in _SECTIONS:
        chosen = [spec for cid, spec in patches.items()
                  if cid in ids or any(p.endswith("-") and cid.startswith(p) for p in ids)]
        if controls is not None and sid == "play":
            chosen.insert(0, controls)
        sections.append({"id": sid, "title": title, "description": "", "charts": chosen})
    return {"title": f"netxray playground \u2014 {config.label}",
            "subtitle": "Training live on the server; frames stream to this page.",
            "meta": {}, "sections": sections}
