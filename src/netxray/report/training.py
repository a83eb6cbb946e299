"""The Training section of ``netxray report RUN``: a watched run's health over its steps.

Drawn from a :class:`netxray.run_analysis.TrainingRun` (results read from a run store; no
model): the loss with the alarms marked where they were raised, per-layer statistics over
steps, each layer's activation histogram over time as one image (fastai's "colorful
dimension"), a per-unit death (or saturation) timeline, gradient RMS by depth over time,
and the decision surface's snapshots on a slider.

Long runs stay small: heatmaps keep at most :data:`MAX_COLUMNS` recorded steps (evenly
spread, each column one real step, labelled with it), line charts at most
:data:`MAX_LINE_POINTS` points, unit timelines at most :data:`MAX_UNITS` units.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netxray.report import charts
from netxray.report.html import write_report
from netxray.report.plane_charts import blank_surface

if TYPE_CHECKING:  # annotations only: the report draws results and imports no application code
    from netxray.run_analysis import TrainingRun

__all__ = ["MAX_COLUMNS", "MAX_LINE_POINTS", "MAX_LOSS_MARKERS", "MAX_UNITS", "alarms_table",
           "column_steps", "histogram_image", "nonfinite_loss_markers", "run_payload",
           "run_training_section", "with_markers", "write_run_report"]

#: a heatmap over steps keeps at most this many recorded steps (columns)
MAX_COLUMNS = 300
#: a line over steps keeps at most this many points (the alarms' markers keep their steps)
MAX_LINE_POINTS = 2000
#: a unit timeline shows at most this many units (every dead one first)
MAX_UNITS = 256
#: at most this many NaN/Inf stretches of the loss are marked (the last marker counts the rest)
MAX_LOSS_MARKERS = 50
#: marker colours by severity (the front-end's palette), ``cleared`` events in grey
MARKER_SEVERITIES = ("error", "warning", "info", "ok")


def column_steps(n: int, limit: int | None = None) -> np.ndarray:
    """Indices of at most ``limit`` (default :data:`MAX_COLUMNS`) of ``n`` recorded steps,
    evenly spread, first and last included (all of them when ``n <= limit``)."""
    limit = MAX_COLUMNS if limit is None else limit
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def with_markers(spec: dict[str, Any], markers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``lines`` spec with vertical markers at x positions (``web/charts-markers.js`` draws
    them): each ``{"x": number, "severity": one of MARKER_SEVERITIES, "text": str}``; the
    markers at the hovered x are listed in the tooltip."""
    if spec.get("kind") != "lines":
        raise ValueError(f"markers go on a lines chart; got {spec.get('kind')!r}")
    out = []
    for i, m in enumerate(markers):
        x = m.get("x")
        if not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError(f"markers[{i}]['x'] must be a finite number; got {x!r}")
        if m.get("severity") not in MARKER_SEVERITIES:
            raise ValueError(f"markers[{i}]['severity'] must be one of "
                             f"{', '.join(MARKER_SEVERITIES)}; got {m.get('severity')!r}")
        if not isinstance(m.get("text"), str) or not m["text"]:
            raise ValueError(f"markers[{i}] needs a non-empty 'text'")
        out.append({"x": float(x), "severity": m["severity"], "text": m["text"]})
    return {**spec, "markers": out}


def _line_index(n: int) -> np.ndarray:
    return column_steps(n, MAX_LINE_POINTS)


def _severity(sev: str) -> str:
    return sev if sev in MARKER_SEVERITIES else "info"


def _finding_text(f: Any) -> str:
    where = f" in {f.layer}" if f.layer else ""
    return f"{f.event} {f.kind}{where}: {f.message}"


def _value_text(v: float) -> str:
    return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")


def nonfinite_loss_markers(steps: Any) -> list[dict[str, Any]]:
    """One ``error`` marker at the first step of each stretch of consecutive steps whose
    recorded loss is NaN or Inf (a chart draws them as a gap, like steps without a loss),
    saying which values and until which step (at most :data:`MAX_LOSS_MARKERS`)."""
    bad = steps.recorded("loss") & ~np.isfinite(steps.loss)
    runs = [r for r in np.split(np.arange(len(bad)), np.flatnonzero(np.diff(bad.astype(np.int8))) + 1)
            if len(r) and bad[r[0]]]
    markers = []
    for k, run in enumerate(runs[:MAX_LOSS_MARKERS]):
        first, last = int(steps.step[run[0]]), int(steps.step[run[-1]])
        values = " or ".join(dict.fromkeys(_value_text(float(v)) for v in steps.loss[run]))
        span = f"at step {first}" if first == last else f"from step {first} to {last}"
        more = len(runs) - MAX_LOSS_MARKERS
        tail = f" ({more} later stretches not marked)" if k == MAX_LOSS_MARKERS - 1 and more > 0 else ""
        markers.append({"x": first, "severity": "error",
                        "text": f"the loss is {values} {span}{tail}"})
    return markers


def loss_chart(tr: TrainingRun) -> dict[str, Any]:
    """The loss over every step, the alarms marked at the steps they were raised (and
    cleared, in grey), and where the loss is NaN or Inf (a gap in the line otherwise)."""
    s = tr.steps
    idx = _line_index(len(s.step))
    loss = s.loss[idx]
    finite = loss[np.isfinite(loss)]
    log_y = bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > 20)
    spec = charts.lines("Loss, with the alarms", s.step[idx], {"loss": loss}, xlabel="step",
                        ylabel="loss", log_y=log_y,
                        description="The training loss at every step; a vertical line marks "
                        "each alarm where it was raised (coloured by severity) or cleared "
                        "(grey), and where the loss turns NaN or Inf (red: the line has a gap "
                        "there, as at steps without a loss). Hover for the text.")
    markers = [{"x": int(f.step),
                "severity": _severity(f.severity) if f.event == "raised" else "ok",
                "text": _finding_text(f)} for f in tr.findings]
    return with_markers(spec, markers + nonfinite_loss_markers(s))


def alarms_table(tr: TrainingRun) -> dict[str, Any]:
    """Every alarm event, in order: step, event, severity, kind, layer, message, advice."""
    rows = [[int(f.step), f.event, f.severity, f.kind, f.layer or "-", f.message, f.advice]
            for f in tr.findings]
    return charts.table("Alarms", ["step", "event", "severity", "kind", "layer", "message",
                                   "advice"], rows,
                        description="Raised when a problem appears, cleared when it goes "
                        "away; each fires once per problem." if rows else
                        "No alarm was raised in this run.")


def _per_layer_lines(tr: TrainingRun, title: str, column: str, ylabel: str, *,
                     log_y: bool = False, description: str = "",
                     layers: Sequence[str] | None = None) -> dict[str, Any] | None:
    names = list(layers if layers is not None else tr.layers)
    if not names:
        return None
    step = tr.layer_stats[names[0]].step
    if not len(step) or any(not np.array_equal(tr.layer_stats[n].step, step) for n in names):
        names = [n for n in names if np.array_equal(tr.layer_stats[n].step, step)]
    series = {n: getattr(tr.layer_stats[n], column).astype(np.float64) for n in names}
    if not len(step) or all(not np.isfinite(v).any() for v in series.values()):
        return None
    idx = _line_index(len(step))
    return charts.lines(title, step[idx], {n: v[idx] for n, v in series.items()},
                        xlabel="step", ylabel=ylabel, log_y=log_y, description=description)


def _bin_labels(edges: np.ndarray) -> list[str]:
    """Labels of a histogram's ``bins + 2`` rows: below the first edge, each bin, above."""
    inner = [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
    return [f"below {edges[0]:.3g}", *inner, f"above {edges[-1]:.3g}"]


def histogram_image(tr: TrainingRun, layer: str) -> dict[str, Any] | None:
    """fastai's "colorful dimension": the layer's histogram at each recorded step as one
    column, bins on y (largest values at the top, with the below/above-range counts as the
    bottom and top rows), colour ``log10(1 + count)``."""
    ls = tr.layer_stats[layer]
    if not len(ls.step) or ls.hist.size == 0:
        return None
    cols = column_steps(len(ls.step))
    counts = ls.hist[cols].astype(np.float64)  # (steps, bins + 2)
    matrix = np.log10(1.0 + counts).T[::-1]  # (bins + 2, steps), top row = above the range
    return charts.heatmap(
        f"{layer}: activation histogram over training", matrix,
        row_labels=_bin_labels(ls.hist_edges)[::-1], col_labels=[str(int(s)) for s in ls.step[cols]],
        xlabel="step", ylabel="activation value",
        description=f"Each column is the histogram of {layer}'s outputs on that step's batch "
        f"(colour: log10(1 + count)); {len(cols)} of {len(ls.step)} recorded steps. A band "
        "collapsing onto the bottom row is units going silent; mass moving to the top row is "
        "activations growing out of range.")


def _unit_order(values: np.ndarray, deaths: np.ndarray | None) -> np.ndarray:
    """Dead units first, earliest death on top; then the rest, least active at the end first."""
    last = values[-1] if len(values) else np.zeros(values.shape[1])
    last = np.where(np.isfinite(last), last, -1.0)
    if deaths is None:
        order = np.argsort(last, kind="stable")
    else:
        dead = deaths >= 0
        key = np.where(dead, deaths.astype(np.float64), np.inf)
        order = np.lexsort((last, key))  # by death step, then by final activity
    return order[:MAX_UNITS]


def death_timeline(tr: TrainingRun, layer: str) -> dict[str, Any] | None:
    """Units x steps of activity (share of values > 0), dead units first in the order they
    died, each labelled with its death step."""
    us = tr.unit_stats[layer]
    if not len(us.step):
        return None
    deaths = tr.deaths[layer]
    order = _unit_order(us.activity, deaths)
    cols = column_steps(len(us.step))
    n_dead = int((deaths >= 0).sum())
    labels = [f"unit {u} · died at step {deaths[u]}" if deaths[u] >= 0 else f"unit {u}"
              for u in order]
    shown = "" if len(order) == len(deaths) else f" The first {len(order)} of {len(deaths)} units."
    return charts.heatmap(
        f"{layer}: unit activity, and when each unit died", us.activity[cols][:, order].T,
        row_labels=labels, col_labels=[str(int(s)) for s in us.step[cols]], vmin=0.0, vmax=1.0,
        xlabel="step", ylabel="unit",
        description=f"Share of each unit's outputs > 0 on each recorded step's batch. {n_dead} "
        f"of {len(deaths)} units died (activity 0 from some step to the end); they are on top, "
        f"in the order they died (hover: the step).{shown}")


def saturation_timeline(tr: TrainingRun, layer: str) -> dict[str, Any] | None:
    """Units x steps of the share of outputs outside the layer's saturation band."""
    us = tr.unit_stats[layer]
    if us.saturation is None or not len(us.step):
        return None
    order = np.argsort(-np.nan_to_num(us.saturation[-1], nan=-1.0), kind="stable")[:MAX_UNITS]
    cols = column_steps(len(us.step))
    return charts.heatmap(
        f"{layer}: unit saturation over training", us.saturation[cols][:, order].T,
        row_labels=[f"unit {u}" for u in order], col_labels=[str(int(s)) for s in us.step[cols]],
        vmin=0.0, vmax=1.0, xlabel="step", ylabel="unit (most saturated at the end first)",
        description="Share of each unit's outputs in the flat ends of its activation, where "
        "the gradient is nearly zero.")


def gradient_depth(tr: TrainingRun) -> dict[str, Any] | None:
    """Layers (forward order, top to bottom) x steps of log10 of the gradient RMS."""
    names = [n for n in tr.layers if np.isfinite(tr.layer_stats[n].grad_rms).any()]
    if not names:
        return None
    step = tr.layer_stats[names[0]].step
    names = [n for n in names if np.array_equal(tr.layer_stats[n].step, step)]
    cols = column_steps(len(step))
    g = np.stack([tr.layer_stats[n].grad_rms[cols] for n in names])
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(g > 0, np.log10(g), np.nan)
    return charts.heatmap(
        "Gradient RMS by depth over training (log10)", m, row_labels=names,
        col_labels=[str(int(s)) for s in step[cols]], xlabel="step", ylabel="layer (input first)",
        description="log10 of the RMS of the loss gradient with respect to each layer's "
        "output. A colour gradient from top to bottom that deepens over time is vanishing or "
        "exploding gradients.")


def update_ratios(tr: TrainingRun) -> dict[str, Any] | None:
    """Each weight's update-to-weight ratio ``||dW|| / ||W||`` over the steps (biases left out)."""
    names = [n for n in tr.params if not n.endswith("bias")
             and np.isfinite(tr.params[n].update_ratio).any()]
    if not names:
        return None
    step = tr.params[names[0]].step
    names = [n for n in names if np.array_equal(tr.params[n].step, step)]
    idx = _line_index(len(step))
    return charts.lines("Update-to-weight ratio", step[idx],
                        {n: tr.params[n].update_ratio[idx] for n in names}, xlabel="step",
                        ylabel="||ΔW|| / ||W||", log_y=True,
                        description="How far each step moved each weight, relative to its "
                        "size; around 1e-3 is the usual rule of thumb, far above it is a "
                        "learning rate too high.")


def boundary_slider(tr: TrainingRun) -> dict[str, Any] | None:
    """The decision surface at each snapshot step, on a slider, with the probe's points.

    A snapshot whose probabilities are not all finite (the network diverged) stays a frame,
    drawn blank with a note that says from which step the outputs are NaN/Inf."""
    if not tr.boundaries:
        return None
    classes = [str(c) for c in tr.config.get("classes") or []]
    k = tr.boundaries[0].probs.shape[-1]
    if len(classes) != k:
        classes = [str(i) for i in range(k)]
    features = tr.config.get("features") or ["x1", "x2"]
    xl, yl = (features[0], features[1]) if len(features) == 2 else ("x1", "x2")
    finite = [bool(np.isfinite(b.probs).all()) for b in tr.boundaries]
    first_bad = next((int(s) for s, ok in zip(tr.snapshot_steps, finite, strict=True)
                      if not ok), None)
    note = (f"the network's outputs are NaN/Inf from step {first_bad}: no surface"
            if first_bad is not None else "")
    frames, labels = [], []
    acc = tr.snapshot_accuracy
    for i, (s, b) in enumerate(zip(tr.snapshot_steps, tr.boundaries, strict=True)):
        pts = None
        if tr.probe_labels is not None and len(tr.probe_labels) == len(b.points):
            idx = column_steps(len(b.points), 600)
            pts = [{"x": float(b.points[j, 0]), "y": float(b.points[j, 1]),
                    "label": int(tr.probe_labels[j]), "marker": "train", "index": int(j)}
                   for j in idx]
        common = dict(points=pts, class_names=classes, xlabel=xl, ylabel=yl)
        if not finite[i]:
            frames.append(blank_surface(f"step {int(s)}", b.xx, b.yy, note, **common))
            labels.append(f"step {int(s)} · {note}")
            continue
        frames.append(charts.surface(f"step {int(s)}", b.xx, b.yy, b.probs, **common))
        a = None if acc is None or not np.isfinite(acc[i]) else float(acc[i])
        labels.append(f"step {int(s)}" + (f" · probe acc {a:.3f}" if a is not None else ""))
    blanks = len(finite) - sum(finite)
    said = (f" {blanks} of the {len(finite)} snapshots are blank: {note}." if blanks else "")
    return charts.slider("The decision surface over training", frames, labels,
                         description="Snapshots of the class probabilities over the input "
                         "plane, taken during training on the training points." + said)


def run_training_section(tr: TrainingRun) -> dict[str, Any]:
    """The Training section: every chart above that the run has data for."""
    layers = list(tr.layers)
    relu = [n for n in layers if tr.layers[n].family == "relu"]
    banded = [n for n in layers if tr.layers[n].saturation is not None]
    found: list[dict[str, Any] | None] = []
    if len(tr.steps.step):
        found.append(loss_chart(tr))
    found.append(alarms_table(tr))
    found += [
        _per_layer_lines(tr, "Activity per layer", "frac_active", "share of outputs > 0",
                         description="The share of each layer's outputs that are positive."),
        _per_layer_lines(tr, "Scale per layer", "scale", "RMS of the outputs", log_y=True,
                         description="Root mean square of each layer's outputs: a layer whose "
                         "scale grows or shrinks with depth or time explodes or vanishes."),
        _per_layer_lines(tr, "Gradient RMS per layer", "grad_rms", "RMS of dloss/doutput",
                         log_y=True),
        _per_layer_lines(tr, "Dead units per layer", "dead", "units never positive",
                         layers=relu) if relu else None,
        _per_layer_lines(tr, "Saturated share per layer", "frac_saturated",
                         "share outside the band", layers=banded) if banded else None,
        gradient_depth(tr),
        update_ratios(tr),
    ]
    for n in layers:
        found.append(histogram_image(tr, n))
    for n in relu:
        found.append(death_timeline(tr, n))
    for n in banded:
        found.append(saturation_timeline(tr, n))
    found.append(boundary_slider(tr))
    recorded = len(tr.layer_stats[layers[0]].step) if layers else 0
    state = "still being written" if tr.status != "closed" else "closed"
    return {
        "id": "watch",
        "title": "Training",
        "description": f"{len(tr.steps.step)} steps ({recorded} with statistics) of "
        f"{len(layers)} watched layers, read from {tr.source} ({state}).",
        "charts": [c for c in found if c is not None],
    }


def run_payload(tr: TrainingRun) -> dict[str, Any]:
    """The whole page of ``netxray report RUN``: a header and the Training section."""
    raised = [f for f in tr.findings if f.event == "raised"]
    meta: dict[str, Any] = {"run": tr.source, "status": tr.status, "steps": len(tr.steps.step),
                            "alarms": len(raised)}
    if len(tr.steps.loss) and tr.steps.recorded("loss")[-1]:  # (a diverged run's is NaN/Inf)
        last = float(tr.steps.loss[-1])
        meta["final loss"] = float(f"{last:.4g}") if math.isfinite(last) else _value_text(last)
    for k in ("preset", "dataset", "activation", "lr", "every"):
        if isinstance(tr.config.get(k), str | int | float):
            meta[k] = tr.config[k]
    return {"title": tr.title, "subtitle": "made by netxray report", "meta": meta,
            "sections": [run_training_section(tr)]}


def write_run_report(tr: TrainingRun, path: str | os.PathLike[str]) -> Path:
    """Draw a :class:`TrainingRun` as the HTML report at ``path``."""
    return write_report(run_payload(tr), path)
