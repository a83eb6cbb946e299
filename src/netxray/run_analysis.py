"""From a run store to the results its report draws: ``netxray report RUN``.

:func:`read_run` reads a run written by :func:`netxray.watch` into a :class:`TrainingRun`,
a bundle of the store's own read-back results (``netxray.store_results``) plus the decision
surface snapshots; :func:`write_run_report` draws it (:mod:`netxray.report.training`). No
model is needed: everything comes from the store.

A run still being written is read as of one moment: the steps table is read first and every
other series is cut to its last step, so a layer read a little later cannot hold steps that
the loss curve does not (the writer commits a step's rows together).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netxray._probabilities import Head, to_probabilities
from netxray._results import Result
from netxray.store import Run, open_run
from netxray.store_results import (
    FindingEvent,
    LayerInfo,
    LayerSeries,
    ParamSeries,
    StepSeries,
    UnitSeries,
)

if TYPE_CHECKING:
    from netxray.boundary import BoundaryGrid

__all__ = ["TrainingRun", "death_steps", "read_run", "write_run_report"]


@dataclass(frozen=True, eq=False)
class TrainingRun(Result):
    """A run store's contents, as the Training section draws them.

    ``steps``: the loss (and metrics) of every step; ``layers``: each watched layer's
    :class:`LayerInfo`, in forward order; ``layer_stats``/``unit_stats``: each layer's
    series over the recorded steps; ``deaths``: per layer, ``(units,)`` the step at which
    each unit died (activity 0 from then on), -1 for a unit alive at the end;
    ``params``: each parameter's norms and update ratios; ``findings``: the alarm events;
    ``snapshot_steps``/``boundaries``: the decision surface at those steps (2-D problems);
    ``probe_labels``: the probe's labels and ``snapshot_accuracy`` its accuracy at each
    snapshot (NaN where unknown); ``status``: ``running`` or ``closed``.
    """

    title: str
    source: str
    status: str
    steps: StepSeries
    layers: dict[str, LayerInfo]
    layer_stats: dict[str, LayerSeries]
    unit_stats: dict[str, UnitSeries]
    deaths: dict[str, np.ndarray]
    params: dict[str, ParamSeries]
    findings: tuple[FindingEvent, ...]
    snapshot_steps: np.ndarray
    boundaries: list[BoundaryGrid]
    probe_labels: np.ndarray | None = None
    snapshot_accuracy: np.ndarray | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def last_step(self) -> int | None:
        """The last step read (None for a run with no step yet)."""
        return int(self.steps.step[-1]) if len(self.steps.step) else None


def death_steps(units: UnitSeries) -> np.ndarray:
    """``(units,)`` the step at which each unit died, -1 for a unit alive at the last step.

    See :meth:`netxray.store_results.UnitSeries.death_steps` (the store's
    ``Run.unit_death_steps`` reads the same); from a series, so a run cut at one step agrees
    with itself.
    """
    return units.death_steps()


def _cut(series: Any, upto: int) -> Any:
    """``series`` (a step-aligned result) without its steps after ``upto``."""
    keep = series.step <= upto
    if keep.all():
        return series
    changes = {}
    for name in series.__dataclass_fields__:
        v = getattr(series, name)
        if isinstance(v, np.ndarray) and v.ndim and len(v) == len(keep) and name != "hist_edges":
            changes[name] = v[keep]
        elif isinstance(v, dict):
            changes[name] = {k: a[keep] for k, a in v.items()}
    return replace(series, **changes)


def _snapshots(run: Run, upto: int) -> tuple[np.ndarray, list[Any], np.ndarray | None,
                                                 np.ndarray | None]:
    boundary = {s: b for s, b in run.snapshots("boundary").items() if s <= upto}
    steps = np.array(sorted(boundary), dtype=np.int64)
    acts = run.snapshots("activations")
    labels, accuracy = None, None
    if len(steps):
        accuracy = np.full(len(steps), np.nan)
        for i, s in enumerate(steps):
            a = acts.get(int(s))
            if a is None or a.targets is None:
                continue
            y = a.targets.cpu().numpy()
            labels = y if labels is None else labels
            out = a.outputs.detach().cpu()
            if out.ndim == 2 and out.shape[0] == len(y) and (out.shape[1] > 1 or not bool(
                    ((out >= 0) & (out <= 1)).all())):  # (one column in [0, 1]: logit or p?)
                pred = to_probabilities(out, Head().kind(out)).argmax(1).numpy()
                accuracy[i] = float(np.mean(pred == y))
    return steps, [boundary[int(s)] for s in steps], labels, accuracy


def read_run(path: str | os.PathLike[str]) -> TrainingRun:
    """Read the run at ``path`` (its folder or ``.sqlite`` file) into a :class:`TrainingRun`.

    Raises ``FileNotFoundError`` when there is no run there and
    :class:`netxray.RunFormatError` when the file is not a readable run.
    """
    with open_run(path) as run:
        steps = run.steps
        upto = int(steps.step[-1]) if len(steps.step) else -1
        layers = run.layers
        layer_stats = {n: _cut(run.layer_stats(n), upto) for n in layers}
        unit_stats = {n: _cut(run.unit_stats(n), upto) for n in layers}
        deaths = {n: death_steps(u) for n, u in unit_stats.items()}
        params = {n: _cut(run.param_stats(n), upto) for n in run.params}
        findings = tuple(f for f in run.findings if f.step <= upto)
        snap_steps, boundaries, labels, accuracy = _snapshots(run, upto)
        config = dict(run.config)
        status = str(run.meta.get("status", "running"))
        source = str(run.file)
    what = config.get("preset") or config.get("dataset") or config.get("model") or "a run"
    title = f"netxray run: {what}" if what != "a run" else f"netxray run: {Path(source).parent.name}"
    return TrainingRun(title=title, source=source, status=status, steps=steps, layers=layers,
                       layer_stats=layer_stats, unit_stats=unit_stats, deaths=deaths,
                       params=params, findings=findings, snapshot_steps=snap_steps,
                       boundaries=boundaries, probe_labels=labels, snapshot_accuracy=accuracy,
                       config=config)


def write_run_report(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Read the run at ``path`` and write its report (the Training section) to ``out``."""
    from netxray.report.training import write_run_report as draw

    return draw(read_run(path), out)
