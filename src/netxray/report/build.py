"""From results to the report's payload: one section builder per part of the page.

Everything here reads result objects (an :class:`netxray.analysis.Analysis` bundle, a
``HealthReport``, a ``TrainingHistory``) and returns chart specs; nothing here runs a model.
That is what lets a saved bundle, a stored run or the live server feed the same front-end.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netxray.report import charts
from netxray.report.html import write_report

if TYPE_CHECKING:  # for annotations only: the report imports no computing or application code
    from netxray.analysis import Analysis
    from netxray.boundary import BoundaryEvolution
    from netxray.health import HealthReport
    from netxray.projection import Projection
    from netxray.training import TrainingHistory
    from netxray.weights import WeightHealth

__all__ = [
    "analysis_payload", "diverged_payload", "health_section", "training_section", "write_analysis"
]

#: A report embeds at most this many points per scatter/surface, so it stays small.
MAX_POINTS = 1500
#: The per-unit health table lists at most this many units (the least active first).
MAX_UNIT_ROWS = 400


# ------------------------------------------------------------------------------ payload


def _subsample(n: int, limit: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _points(a: Analysis) -> list[dict[str, Any]]:
    pts = []
    tr = a.boundary.points
    for i in _subsample(len(tr)):
        pts.append({"x": tr[i, 0], "y": tr[i, 1], "label": int(a.train.y[i]), "marker": "train",
                    "index": int(i)})
    te = a.boundary.to_plane(a.test.X)
    for i in _subsample(len(te), MAX_POINTS // 3):
        pts.append({"x": te[i, 0], "y": te[i, 1], "label": int(a.test.y[i]), "marker": "test",
                    "index": int(i)})
    return pts


def _axis_labels(a: Analysis) -> tuple[str, str]:
    if a.boundary.plane == "input":
        return a.train.feature_names[0], a.train.feature_names[1]
    return "PC 1 of the inputs", "PC 2 of the inputs"


def training_section(h: TrainingHistory) -> dict[str, Any]:
    """Loss and accuracy curves from a :class:`netxray.TrainingHistory`."""
    loss = {"train loss": h.train_loss}
    acc = {"train accuracy": h.train_acc}
    if h.test_loss:
        loss["test loss"] = h.test_loss
        acc["test accuracy"] = h.test_acc
    return {
        "id": "training",
        "title": "Training",
        "description": "Loss and accuracy per epoch. Training numbers are measured before each "
        "step (as the lecture prints them), test numbers after it.",
        "charts": [
            charts.lines("Loss", h.epochs, loss, xlabel="epoch", ylabel="cross-entropy",
                         dashed=[k for k in loss if k.startswith("test")]),
            charts.lines("Accuracy", h.epochs, acc, xlabel="epoch", ylabel="accuracy",
                         dashed=[k for k in acc if k.startswith("test")]),
        ],
    }


def boundary_section(a: Analysis) -> dict[str, Any]:
    xl, yl = _axis_labels(a)
    b = a.boundary
    where = (
        "over the input plane"
        if b.plane == "input"
        else "on the plane of the inputs' top two principal components (the rest of each input "
        "held at the data mean)"
    )
    chart_list = [
        charts.surface("Decision boundary", b.xx, b.yy, b.probs, points=_points(a),
                       class_names=list(a.train.class_names), xlabel=xl, ylabel=yl,
                       description=f"Class probabilities {where}; circles are training "
                       "points, squares test points.", link={"train": "train", "test": "test"})
    ]
    ev = a.evolution
    if ev is not None:
        frames = [
            charts.surface(f"epoch {e}", ev.xx, ev.yy, p, class_names=list(a.train.class_names),
                           xlabel=xl, ylabel=yl)
            for e, p in zip(ev.epochs, ev.probs, strict=True)
        ]
        labels = [
            f"epoch {e}" + (f" · train acc {acc:.3f}" if acc is not None else "")
            for e, acc in zip(ev.epochs, _accuracies(ev), strict=True)
        ]
        chart_list.append(charts.slider("How the boundary evolved", frames, labels))
    return {
        "id": "boundary",
        "title": "Decision boundary",
        "description": "How the network carves up its input space.",
        "charts": chart_list,
    }


def _accuracies(ev: BoundaryEvolution) -> list[float | None]:
    acc = getattr(ev, "accuracy", None)
    if acc is None or len(acc) == 0:
        return [None] * len(ev.epochs)
    return [float(v) for v in acc]


def units_section(a: Analysis) -> dict[str, Any]:
    m = a.unit_maps
    ext = [float(m.xx.min()), float(m.xx.max()), float(m.yy.min()), float(m.yy.max())]
    chart_list = []
    for name in m.layers:
        maps = m.maps[name]
        dead = m.dead.get(name)
        marked = None if dead is None else [bool(v) for v in dead]
        n_dead = 0 if dead is None else int(np.sum(dead))
        desc = f"{maps.shape[0]} units" + (f", {n_dead} dead on the training data" if n_dead else "")
        chart_list.append(
            charts.thumbnails(f"{name}: each unit's response", maps,
                              labels=[f"{name}[{i}]" for i in range(maps.shape[0])],
                              marked=marked, extent=ext, description=desc)
        )
    if a.unit_patterns is not None and a.train.image_shape is not None:
        imgs = a.unit_patterns.reshape(-1, *a.train.image_shape)
        chart_list.append(
            charts.images(f"{a.layers[0]}: the input pattern that drives each unit", imgs,
                          labels=[f"{a.layers[0]}[{i}]" for i in range(len(imgs))],
                          cmap="diverging",
                          description="Mean gradient of each unit with respect to the input "
                          "image over the test set: blue pixels raise the unit, orange lower it.")
        )
    return {
        "id": "units",
        "title": "Hidden units",
        "description": "Each hidden unit's output over the same plane as the decision boundary "
        "(orange negative, blue positive). Dead units (never positive on the data) are marked.",
        "charts": chart_list,
    }


def activations_section(a: Analysis) -> dict[str, Any]:
    chart_list = []
    for name, am in a.activation_maps.items():
        rows = _subsample(am.values.shape[0], 600)
        chart_list.append(
            charts.heatmap(
                f"{name}: activations", am.values[rows],
                col_labels=[str(int(u)) for u in am.unit_order],
                row_groups=[int(v) for v in am.labels[rows]],
                group_names=list(a.train.class_names),
                xlabel="unit (clustered by similarity)", ylabel="training samples, by class",
            )
        )
    return {
        "id": "activations",
        "title": "Activation patterns",
        "description": "Hidden activations of the training samples, grouped by class; units "
        "that respond alike sit together.",
        "charts": chart_list,
    }


def _projection_chart(
    a: Analysis, name: str, proj: Projection, correct: np.ndarray
) -> dict[str, Any]:
    idx = _subsample(len(proj.coords))
    H = a.hidden[name]
    busiest = np.argsort(-H.var(axis=0))[:3]  # colour by the units that vary most
    units = {f"{name}[{u}] activation": H[idx, u].astype(np.float64) for u in busiest}
    evr = proj.explained_variance_ratio
    if evr is not None:
        desc = f"explained variance {evr[0]:.0%} + {evr[1]:.0%}"
    elif proj.trustworthiness is not None:
        desc = (f"trustworthiness {proj.trustworthiness:.3f}" if np.isfinite(proj.trustworthiness)
                else "trustworthiness undefined: "
                + str(proj.params.get("trustworthiness_note", "every sample is the same point")))
    else:
        desc = ""
    axis = proj.method.upper() if proj.method == "pca" else proj.method
    return charts.scatter(
        f"{name}: {axis} of hidden states", proj.coords[idx, 0], proj.coords[idx, 1],
        color_by={"class": [int(v) for v in a.train.y[idx]],
                  "correct": [str(v) for v in correct[idx]],
                  "prediction": [int(v) for v in a.train_pred[idx]], **units},
        class_names=list(a.train.class_names), xlabel=f"{axis} 1", ylabel=f"{axis} 2",
        description=desc, link="train", index=idx,
    )


def representations_section(a: Analysis) -> dict[str, Any]:
    correct = np.where(a.train_pred == a.train.y, "correct", "wrong")
    pca = {n: p for n, p in a.projections.items() if p.method == "pca"}
    frames = [_projection_chart(a, n, p, correct) for n, p in pca.items()]
    chart_list: list[dict[str, Any]] = []
    if len(frames) == 1:
        chart_list.append(frames[0])
    elif frames:
        chart_list.append(charts.slider("PCA of hidden states, layer by layer", frames,
                                        list(pca)))
    chart_list += [
        _projection_chart(a, n.removesuffix(" (t-SNE)"), p, correct)
        for n, p in a.projections.items() if p.method != "pca"
    ]
    ev = a.evolution
    if ev is not None and ev.hidden is not None:
        idx = _subsample(ev.hidden.shape[1], 800)
        y = [int(v) for v in a.train.y[idx]]
        frames = [
            charts.scatter(f"epoch {e}", h[idx, 0], h[idx, 1], color_by={"class": y},
                           class_names=list(a.train.class_names), xlabel="PC 1", ylabel="PC 2")
            for e, h in zip(ev.epochs, ev.hidden, strict=True)
        ]
        chart_list.append(charts.slider(
            f"{ev.hidden_layer}: hidden states over training", frames,
            [f"epoch {e}" for e in ev.epochs],
            description="PCA of the layer at each checkpoint, each frame aligned to the one "
            "before (Procrustes), so the picture moves instead of flipping."))
    if a.probes is not None:
        p = a.probes
        chart_list.append(
            charts.lines(
                "Linear probe accuracy by depth", list(range(len(p.layers))),
                {"probe accuracy": [p.accuracy[n] for n in p.layers],
                 "chance": [p.chance] * len(p.layers)},
                xlabel="depth", ylabel="accuracy", dashed=["chance"], x_labels=p.layers,
                description="Cross-validated logistic regression on each layer: where the "
                "classes become linearly separable.",
            )
        )
    if a.cka is not None:
        chart_list.append(
            charts.heatmap("CKA between layers", a.cka.values, row_labels=a.cka.layers,
                           col_labels=a.cka.layers, vmin=0.0, vmax=1.0,
                           description="Linear CKA: 1 means two layers hold the same "
                           "representation up to rotation and scale.")
        )
    return {
        "id": "representations",
        "title": "Representations",
        "description": "Hidden states projected to 2-D, probes and layer similarity.",
        "charts": chart_list,
    }


def saliency_section(a: Analysis) -> dict[str, Any]:
    ds = a.dataset_saliency
    names = list(a.train.class_names)
    chart_list: list[dict[str, Any]] = []
    if a.train.X.shape[1] == 2 and a.boundary.plane == "input":
        b = a.boundary
        vals = a.saliency.values.detach().cpu().numpy()
        idx = _subsample(len(vals), 300)
        arrows = [{"x": a.test.X[i, 0], "y": a.test.X[i, 1], "dx": vals[i, 0], "dy": vals[i, 1]}
                  for i in idx]
        pts = [{"x": a.test.X[i, 0], "y": a.test.X[i, 1], "label": int(a.test.y[i]),
                "marker": "test", "index": int(i)} for i in idx]
        xl, yl = _axis_labels(a)
        chart_list.append(
            charts.surface("Saliency of test points", b.xx, b.yy, b.probs, points=pts,
                           arrows=arrows, class_names=names, xlabel=xl, ylabel=yl,
                           link={"test": "test"},
                           description="Arrows: the gradient of each test point's predicted-"
                           "class logit; they point where the prediction strengthens.")
        )
    shape = a.train.image_shape
    if shape is not None:
        imgs = ds.class_mean_abs.reshape(-1, *shape).cpu().numpy()
        chart_list.append(
            charts.images("Mean |saliency| per class", imgs, labels=names, cmap="viridis",
                          description="Which pixels move each class's logit, averaged over "
                          "the test images of that class.")
        )
    order = np.argsort(-ds.mean_abs.flatten().cpu().numpy())[:30]
    feats = list(a.train.feature_names)
    chart_list.append(
        charts.bars("Feature importance (mean |saliency|)", [feats[i] for i in order],
                    ds.mean_abs.flatten().cpu().numpy()[order], signed=False,
                    description=f"Over {ds.n_samples} test samples; top {len(order)} features.")
    )
    return {
        "id": "saliency",
        "title": "Saliency",
        "description": "Gradients that show which input dimensions drive the predictions.",
        "charts": chart_list,
    }


def _severity(s: str) -> str:
    return s if s in charts.SEVERITIES else "info"


def weights_table(weights: WeightHealth) -> dict[str, Any]:
    """Spectral norm and stable rank per matrix, and the update ratio when earlier weights
    were given (the column is left out when none were)."""
    layers = weights.layers.items()
    ratio = any(w.update_ratio is not None for _, w in layers)
    return charts.table(
        "Weights", ["parameter", "shape", "spectral norm", "stable rank",
                    *(["update ratio"] if ratio else [])],
        [[n, "x".join(map(str, w.shape)), _cell(w.spectral_norm), _cell(w.stable_rank),
          *([_cell(w.update_ratio)] if ratio else [])] for n, w in layers],
        description="Spectral norm (largest singular value) and stable rank "
        "(||W||_F^2 / ||W||_2^2)" + (
            ", and the update ratio ||W - W_before|| / ||W_before||, W_before the earlier "
            "weights given to diagnose (in a report of a training run: the last checkpoint "
            "whose weights differ from these, usually the one before the last)." if ratio
            else ". No earlier weights were given, so no update ratio."))


def health_section(health: HealthReport) -> dict[str, Any]:
    items = [
        {"severity": _severity(f.severity), "kind": f.kind, "layer": f.layer or "",
         **_headline(f.advice),
         "units": list(f.units)[:64],
         "evidence": {("layer width" if k == "units" else k): v for k, v in f.evidence.items()
                      if isinstance(v, int | float | str)}}
        for f in health.findings
    ]
    chart_list = [charts.findings("Findings", items)]
    rows = health.layer_table()
    if rows:
        cols = ["layer", "type", "units", "scale", "frac_active", "frac_saturated", "dead",
                "nonfinite", "grad_rms"]
        chart_list.append(
            charts.table("Per layer", cols, [[_cell(r[c]) for c in cols] for r in rows])
        )
    units = _unit_rows(health)
    if units:
        chart_list.append(charts.table(
            "Per unit", ["layer", "unit", "frac_active", "frac_saturated", "mean", "std", "min",
                         "max", "nan+inf", "mean |dloss/da|"], units,
            description=f"The {len(units)} least active units first; click a header to sort."))
    if health.weights is not None and len(health.weights):
        chart_list.append(weights_table(health.weights))
    if len(rows) >= 2:  # curves across depth need at least two layers
        names = [r["layer"] for r in rows]
        active = [r["frac_active"] for r in rows]
        chart_list.append(
            charts.lines("Activity by depth", list(range(len(rows))),
                         {"mean fraction active": active,
                          "mean fraction saturated": [
                              math.nan if r["frac_saturated"] is None else r["frac_saturated"]
                              for r in rows]},
                         xlabel="layer", ylabel="fraction", x_labels=names)
        )
        grads = [r["grad_rms"] for r in rows]
        if any(g is not None for g in grads):
            chart_list.append(
                charts.lines("Gradient RMS by depth", list(range(len(rows))),
                             {"gradient RMS": [math.nan if g is None else g for g in grads]},
                             xlabel="layer", ylabel="RMS", log_y=True, x_labels=names)
            )
    return {
        "id": "health",
        "title": "Health",
        "description": health.summary().splitlines()[0],
        "charts": chart_list,
    }


def _unit_rows(health: HealthReport) -> list[list[Any]]:
    if health.stats is None:
        return []
    rows = []
    for name, st in health.stats.items():
        grad = st.grad_abs_mean
        for u in range(st.units):
            sat = float(st.frac_saturated[u]) if st.saturation is not None else None
            rows.append([name, u, _cell(float(st.frac_active[u])), _cell(sat),
                         _cell(float(st.mean[u])), _cell(float(np.sqrt(st.var[u]))),
                         _cell(float(st.min[u])), _cell(float(st.max[u])),
                         int(st.nan_count[u] + st.inf_count[u]),
                         _cell(None if grad is None else float(grad[u]))])
    rows.sort(key=lambda r: r[2] if isinstance(r[2], float) else -1.0)
    return rows[:MAX_UNIT_ROWS]


def _headline(advice: str) -> dict[str, str]:
    """A finding's first sentence as its text, the rest as advice (so nothing is shown twice)."""
    first, sep, rest = advice.partition(". ")
    if not sep:
        return {"text": advice, "advice": ""}
    return {"text": first + ".", "advice": rest}


def _cell(v: Any) -> Any:
    if v is None:
        return "-"
    if isinstance(v, float):
        return float(f"{v:.4g}") if math.isfinite(v) else str(v)
    return v


def analysis_payload(a: Analysis) -> dict[str, Any]:
    """The report's payload for an analysis bundle: health first, then the pictures."""
    sections = [health_section(a.health)]
    if a.history is not None:
        sections.append(training_section(a.history))
    sections += [
        boundary_section(a),
        units_section(a),
        activations_section(a),
        representations_section(a),
        saliency_section(a),
    ]
    return {"title": a.title, "subtitle": a.subtitle, "meta": dict(a.meta), "sections": sections}


def write_analysis(a: Analysis, path: str | os.PathLike[str]) -> Path:
    """Draw an analysis bundle, fresh or loaded (``Analysis.load("results.npz")``), as the
    HTML report at ``path``."""
    return write_report(analysis_payload(a), path)


def diverged_payload(
    title: str, health: HealthReport, history: TrainingHistory | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """The report of a network whose values are NaN/Inf: its health first, then its curves.

    Nothing computed from the broken network (boundaries, projections, saliency) is shown:
    it would be garbage, and the findings already say what went wrong and where.
    """
    sections = [health_section(health)]
    if history is not None:
        sections.append(training_section(history))
    return {"title": title, "subtitle": "the network's values are NaN/Inf", "meta": meta,
            "sections": sections}
