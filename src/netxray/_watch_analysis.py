"""What the watcher's writer does with one training step: store rows and alarm events.

The training thread hands over raw reductions (``UnitStats`` states, gradient sums of
squares, parameter norms, one sum per layer output for the non-finite check); this module
turns them into the run store's rows, into a per-step :class:`NetworkStats` judged by
:func:`netxray.health.diagnose_stats`, and into alarm events: a problem ``(kind, layer)``
fires once when it appears and re-arms when it clears.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from netxray._watch_reduce import MISSING
from netxray.health import Finding, Thresholds, diagnose_stats
from netxray.stats import LayerStats, NetworkStats, ParamStats, UnitStats
from netxray.store import RunDB
from netxray.store_results import FindingEvent, LayerInfo

_RANK = {"info": 0, "warning": 1, "error": 2}
#: kinds judged on every step from the loss and one sum per layer output
_EVERY_STEP = ("nonfinite",)
#: kinds diagnose_stats reports that the every-step check owns instead
_OWNED = ("nonfinite", "loss_diverged", "loss_rising", "initial_loss")


@dataclass
class LayerMeta:
    """How one watched layer is reduced (fixed when it first runs)."""

    name: str
    module_type: str
    family: str
    unit_dim: int
    units: int
    shape: tuple[int, ...]
    saturation: tuple[float, float] | None
    hist_range: tuple[float, float]
    bins: int

    def unit_stats(self) -> UnitStats:
        """Per-unit statistics with one layer histogram (the run store keeps no other), in
        the compiled loops on the CPU (a training run pays their loading back)."""
        return UnitStats(unit_dim=self.unit_dim, saturation=self.saturation,
                         hist_range=self.hist_range, bins=self.bins, layer_hist=True,
                         compiled=True)

    def check_units(self, x: torch.Tensor) -> None:
        """Raise if ``x`` (a later output of this layer) has another number of units: the
        store's per-unit rows have the width of the first."""
        units = int(x.shape[self.unit_dim]) if x.ndim >= 2 else 1
        if units != self.units:
            raise ValueError(
                f"watched layer {self.name!r} output {units} units (dimension {self.unit_dim} of "
                f"shape {tuple(x.shape)}) where its first output had {self.units}; a watched "
                "layer must keep its width: leave it out (layers=...)")

    @functools.cached_property
    def hist_edges(self) -> np.ndarray:
        return self.unit_stats().hist_edges

    def info(self) -> LayerInfo:
        return LayerInfo(name=self.name, module_type=self.module_type, family=self.family,
                         units=self.units, shape=self.shape, saturation=self.saturation,
                         hist_edges=self.hist_edges)


@dataclass
class Recorded:
    """A recorded step's raw reductions, in forward order of first call."""

    batch: int
    states: dict[str, dict[str, torch.Tensor]]
    calls: dict[str, int]
    grad_sq: dict[str, torch.Tensor]  # sum of squared gradient elements
    grad_n: dict[str, int]  # number of gradient elements
    params: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    norms: torch.Tensor | None = None  # (params, 4): weight, gradient, update, previous weight norms


@dataclass
class StepMsg:
    """One recorded training step for the writer; tensors may still be in flight from the
    GPU (``event``: wait for it before reading them)."""

    step: int
    time: float
    loss: Any
    metrics: dict[str, Any]
    record: Recorded | None = None
    new_layers: list[LayerMeta] = field(default_factory=list)
    event: Any = None


@dataclass
class StepBatch:
    """Unrecorded steps, sent together: one message and one copy for many steps.

    ``losses``: a ``(steps,)`` tensor when every loss was a tensor, else a list;
    ``sums``: every step's layer-output sums (for the non-finite check) in one flat
    tensor, step ``i`` owning the next ``len(sum_layers[i])`` of them, in forward order
    (a list of 0-d tensors on the way through the statistics thread, which stacks them).
    """

    steps: list[int]
    times: list[float]
    losses: Any
    metrics: list[dict[str, Any]]
    sum_layers: list[list[str]]
    sums: torch.Tensor | None
    event: Any = None


def _f(v: Any) -> float | None:
    """A plain float for the store (None: not given). NaN stays NaN: the store keeps it
    apart from "not given" (``netxray.store_schema``)."""
    if v is None:
        return None
    return float(v.item() if isinstance(v, torch.Tensor) else v)


def _norm(v: float) -> float | None:
    """A norm from ``param_norms``: None where it was missing."""
    return None if v == MISSING else v


def _ratio(update: float, previous: float) -> float | None:
    """``||W_t - W_{t-1}|| / ||W_{t-1}||``: None without previous weights, or when their
    norm is 0 (no relative size); NaN and Inf as the norms make them."""
    if update == MISSING or previous == MISSING or previous == 0:
        return None
    return update / previous


_ABBREVIATIONS = ("e.g", "i.e", "vs", "etc")


def _message(f: Finding) -> str:
    """The advice's first clause: what is wrong, in one line. It ends at the first "; " or
    ". " outside parentheses that does not close an abbreviation such as "e.g."."""
    text, depth = f.advice, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth or text[i + 1:i + 2] != " ":
            continue
        if ch == ";" or (ch == "." and not text[:i].lower().endswith(_ABBREVIATIONS)):
            return text[:i]
    return text.rstrip(".")


class StepAnalysis:
    """Writer-side state: layer metadata, the alarm book, thresholds."""

    def __init__(self, db: RunDB, *, thresholds: Thresholds | None, level: str) -> None:
        if level not in _RANK:
            raise ValueError(f"alarm severity must be one of {tuple(_RANK)}, got {level!r}")
        self.db = db
        self.thresholds = thresholds or Thresholds()
        self.level = _RANK[level]
        self.metas: dict[str, LayerMeta] = {}
        self.active: dict[tuple[str, str | None], Finding] = {}

    # ---------------------------------------------------------------------------- steps
    def handle(self, msg: StepMsg | StepBatch) -> list[tuple[FindingEvent, Finding]]:
        """Write ``msg``'s rows; return the alarm events it raised or cleared."""
        if isinstance(msg, StepBatch):
            events = self._handle_batch(msg)
        else:
            events = self._handle_recorded(msg)
        for ev, _ in events:
            self.db.write_finding(ev)
        return events

    def _handle_batch(self, b: StepBatch) -> list[tuple[FindingEvent, Finding]]:
        raw = b.losses.tolist() if isinstance(b.losses, torch.Tensor) else list(b.losses)
        losses = [_f(v) for v in raw]
        metrics = [{k: _f(v) for k, v in m.items()} for m in b.metrics]
        self.db.write_steps([(s, t, loss, json.dumps(m) if m else None) for s, t, loss, m
                             in zip(b.steps, b.times, losses, metrics, strict=True)])
        ok = torch.isfinite(b.sums).tolist() if b.sums is not None else []
        clean = all(ok) and all(v is None or math.isfinite(float(v)) for v in raw)
        if clean and not any(k == "nonfinite" for k, _ in self.active):
            return []  # nothing found, nothing to clear: the common case, no per-step work
        events, i = [], 0
        for step, names, loss in zip(b.steps, b.sum_layers, raw, strict=True):
            bad = [n for n, good in zip(names, ok[i:i + len(names)], strict=True) if not good]
            i += len(names)
            events += self._nonfinite(step, bad, None if loss is None else float(loss))
        return events

    def _handle_recorded(self, msg: StepMsg) -> list[tuple[FindingEvent, Finding]]:
        for meta in msg.new_layers:
            self.metas[meta.name] = meta
            self.db.add_layer(meta.info())
        loss = _f(msg.loss)
        metrics = {k: _f(v) for k, v in msg.metrics.items()}
        self.db.write_steps([(msg.step, msg.time, loss,
                              json.dumps(metrics) if metrics else None)])
        bad: list[str] = []
        if msg.record is not None:  # a recorded step counts NaN/Inf in every layer
            bad = [n for n, st in msg.record.states.items()
                   if int(st["nan"].sum()) + int(st["inf"].sum()) > 0]
        stats = None
        if msg.record is not None:
            # (the health rules see no NaN loss: the nonfinite check below owns it)
            stats = self._write_record(msg.step, msg.record,
                                       None if loss is None or math.isnan(loss) else loss)
        weights = [] if stats is None else [  # after this step's update
            p.name for p in stats.params.values() if not math.isfinite(p.weight_norm)]
        events = self._nonfinite(msg.step, bad, None if msg.loss is None else float(msg.loss),
                                 weights)
        if stats is not None and not any(k == "nonfinite" for k, _ in self.active):
            report = diagnose_stats(stats, thresholds=self.thresholds)
            # (diagnose judges nothing else beside NaN/Inf: no advice from garbage, and no
            # "cleared" for problems it did not look at)
            if not any(f.kind == "nonfinite" for f in report.findings):
                found = [f for f in report.findings if f.kind not in _OWNED]
                events += self._update(msg.step, found, lambda k: k not in _EVERY_STEP)
        return events

    def _nonfinite(self, step: int, bad: list[str], loss: float | None,
                   weights: list[str] | None = None) -> list[tuple[FindingEvent, Finding]]:
        """The every-step check of one step: ``bad`` layers (forward order) had a NaN/Inf
        output; ``loss`` is the step's loss (None: not given); ``weights``: parameters that
        hold NaN/Inf after the step's update (recorded steps only)."""
        bad = list(dict.fromkeys(bad))  # a shared module may run several times
        loss_bad = loss is not None and not math.isfinite(loss)
        found = []
        if bad:
            found.append(Finding(
                kind="nonfinite", severity="error", layer=bad[0], units=(),
                evidence={"step": step, "layer": bad[0], "layers": bad, "loss": loss},
                advice=(
                    f"NaN/Inf first appeared at step {step} in `{bad[0]}`, the first watched "
                    "layer (in forward order) whose output is not finite"
                    + (f" (the loss is {loss})" if loss is not None else "")
                    + ". From here on the weights are garbage. Common causes: a learning rate "
                    "too high, no gradient clipping, log or division of zero. Try: lower the "
                    "learning rate 10x, clip gradients (torch.nn.utils.clip_grad_norm_), check "
                    "this layer's weights, torch.autograd.set_detect_anomaly(True)."
                ),
            ))
        elif loss_bad:  # the model's outputs are finite: the loss computation made it
            found.append(Finding(
                kind="nonfinite", severity="error", layer=None, units=(),
                evidence={"step": step, "layer": None, "layers": [], "loss": loss},
                advice=(
                    f"The loss became {loss} at step {step} while every watched layer's output "
                    "is finite: the NaN/Inf comes from the loss computation, not from the "
                    "layers. Check the loss function's inputs: a log of zero (log of a "
                    "probability that is 0: use log_softmax or cross_entropy on logits, or "
                    "clamp), a division by zero (a mean over an empty batch or mask, a "
                    "normalisation by a zero sum), labels out of range (a class index >= the "
                    "number of classes, targets outside [0, 1] for BCE), NaN in the targets. "
                    "Its backward step would make the weights NaN: skip or stop such a step."
                ),
            ))
        elif weights:  # the forward pass and the loss were finite: the update made it
            found.append(Finding(
                kind="nonfinite", severity="error", layer=weights[0].rsplit(".", 1)[0] or None,
                units=(), evidence={"step": step, "layer": None, "layers": [], "loss": loss,
                                    "parameters": weights},
                advice=(
                    f"NaN/Inf first appeared at step {step} in the weights ({len(weights)} "
                    f"parameter(s), first `{weights[0]}`: their norm is not finite, so they "
                    "hold NaN/Inf or values too large to square), made by that step's update: "
                    "its forward pass and loss were still finite. The gradients or the step "
                    "size were too large. Try: lower the learning rate 10x, clip gradients "
                    "(torch.nn.utils.clip_grad_norm_)."
                ),
            ))
        return self._update(step, found, lambda k: k in _EVERY_STEP)

    def _update(self, step: int, findings: list[Finding], covers: Any
                ) -> list[tuple[FindingEvent, Finding]]:
        """Raise each new problem once; clear the ones this evaluation covers that are gone."""
        now: dict[tuple[str, str | None], Finding] = {}
        for f in findings:
            if _RANK[f.severity] >= self.level:
                now.setdefault((f.kind, None if f.kind == "nonfinite" else f.layer), f)
        events = []
        for key, f in now.items():
            if key not in self.active:
                self.active[key] = f
                events.append((self._event(step, "raised", f), f))
        for key in [k for k in self.active if covers(k[0]) and k not in now]:
            f = self.active.pop(key)
            events.append((self._event(step, "cleared", f), f))
        return events

    @staticmethod
    def _event(step: int, event: str, f: Finding) -> FindingEvent:
        return FindingEvent(step=step, event=event, kind=f.kind, severity=f.severity,
                            layer=f.layer, units=f.units, message=_message(f), advice=f.advice,
                            evidence=json.loads(json.dumps(f.evidence, default=float)))

    # ----------------------------------------------------------------- recorded steps
    def _write_record(self, step: int, rec: Recorded, loss: float | None) -> NetworkStats:
        layer_rows, unit_rows = [], []
        layers: dict[str, LayerStats] = {}
        for name, state in rec.states.items():
            meta = self.metas[name]
            us = meta.unit_stats()
            us.state = state
            a = us.compute()
            a.pop("total")
            grad_rms = None
            if name in rec.grad_sq and rec.grad_n.get(name):
                grad_rms = math.sqrt(float(rec.grad_sq[name]) / rec.grad_n[name])
            ls = LayerStats(
                name=name, module_type=meta.module_type, family=meta.family, shape=meta.shape,
                calls=rec.calls.get(name, 1), hist_edges=meta.hist_edges,
                saturation=meta.saturation,
                grad_norm=None if grad_rms is None else grad_rms * math.sqrt(
                    max(math.prod(meta.shape), 1)),
                **a,
            )
            layers[name] = ls
            layer_rows.append(self._layer_row(self.db.layer_ids[name], step, ls, grad_rms))
            seen = a["count"] > 0
            act = np.where(seen, a["frac_active"], np.nan).astype(np.float32)
            sat = None
            if meta.saturation is not None:
                sat = np.where(seen, a["frac_saturated"], np.nan).astype(np.float32).tobytes()
            unit_rows.append((self.db.layer_ids[name], step, act.tobytes(), sat))
        self.db.write_layer_stats(layer_rows)
        self.db.write_unit_stats(unit_rows)
        params: dict[str, ParamStats] = {}
        if rec.norms is not None and rec.params:
            norms = rec.norms.double().tolist()
            rows = []
            for (pname, shape), (wn, gn, un, pn) in zip(rec.params, norms, strict=True):
                grad = _norm(gn)
                rows.append((self.db.param_id(pname, shape), step, wn, grad, _ratio(un, pn)))
                params[pname] = ParamStats(name=pname, shape=shape, weight_norm=wn,
                                           grad_norm=None if grad is None or math.isnan(grad)
                                           else grad)
            self.db.write_param_stats(rows)
        return NetworkStats(layers=layers, n_samples=rec.batch, loss=loss, params=params)

    @staticmethod
    def _layer_row(lid: int, step: int, s: LayerStats, grad_rms: float | None) -> tuple[Any, ...]:
        count = s.count.astype(np.float64)
        seen = count > 0
        w = count.sum()
        every = bool(seen.size and seen.all())  # (the usual case: no picking, plain min, max)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (float((s.mean if every else s.mean[seen]) @ (count if every else count[seen])
                          / w) if w else None)
            active = float(s.frac_active @ count / w) if w else None
            sat = (float(s.frac_saturated @ count / w)
                   if w and s.saturation is not None else None)
        dead = int(((s.frac_active == 0) & seen).sum()) if s.family == "relu" else None
        hist = s.hist.sum(0).astype(np.int64).tobytes() if s.hist.size else None
        lo = hi = None
        if every:
            lo, hi = _f(s.min.min()), _f(s.max.max())
        elif seen.any():
            lo, hi = _f(s.min[seen].min()), _f(s.max[seen].max())
        return (lid, step, mean, _f(s.scale), lo, hi, active, sat, dead,
                int(s.nan_count.sum()), int(s.inf_count.sum()), grad_rms, hist)
