"""What a run store reads back as: small results of arrays over the recorded steps.

Every series is step-aligned: ``step`` is ``(steps,)`` and each statistic is ``(steps,)`` (or
``(steps, ...)``), with NaN where a value was not recorded (a gradient on a step without
backward, a saturation fraction for a family without a band).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netxray._results import Result


@dataclass(frozen=True, eq=False)
class LayerInfo(Result):
    """A watched layer: dotted ``name``, ``module_type``, activation ``family``
    (relu/rectifier/tanh/sigmoid/linear), ``units``, one sample's output ``shape``, the
    ``saturation`` band (None: none) and the histogram's ``hist_edges`` ``(bins + 1,)``."""

    name: str
    module_type: str
    family: str
    units: int
    shape: tuple[int, ...]
    hist_edges: np.ndarray
    saturation: tuple[float, float] | None = None


@dataclass(frozen=True, eq=False)
class StepSeries(Result):
    """Every step: ``step``, wall ``time`` (seconds since the epoch), ``loss`` (NaN when not
    given) and ``metrics`` (name -> ``(steps,)``, NaN where a step did not report it)."""

    step: np.ndarray
    time: np.ndarray
    loss: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LayerSeries(Result):
    """One layer at each recorded step, over that step's batch.

    ``mean`` activation; ``scale`` its RMS; ``min``/``max``; ``frac_active`` (share of values
    > 0); ``frac_saturated`` (share outside the band; NaN without one); ``dead`` (ReLU-family
    units never positive on the batch; NaN for other families); ``nan``/``inf`` counts;
    ``grad_rms`` the root mean square of the loss gradient with respect to the layer's
    output, per element (NaN without gradients); ``hist`` ``(steps, bins + 2)`` the layer's
    histogram pooled over units, on ``hist_edges``.
    """

    layer: str
    step: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    min: np.ndarray
    max: np.ndarray
    frac_active: np.ndarray
    frac_saturated: np.ndarray
    dead: np.ndarray
    nan: np.ndarray
    inf: np.ndarray
    grad_rms: np.ndarray
    hist: np.ndarray
    hist_edges: np.ndarray


@dataclass(frozen=True, eq=False)
class UnitSeries(Result):
    """Per-unit ``activity`` (share of values > 0) and ``saturation`` (share outside the
    band; None for a family without one), each ``(steps, units)`` float32, NaN where a
    unit saw no finite value."""

    layer: str
    step: np.ndarray
    activity: np.ndarray
    saturation: np.ndarray | None

    def death_steps(self) -> np.ndarray:
        """``(units,)`` the step at which each unit died, -1 for a unit alive at the last
        recorded step: the first recorded step from which its activity is 0 at every later
        recorded step (NaN, no finite value, is neither dead nor alive)."""
        out = np.full(self.activity.shape[1], -1, dtype=np.int64)
        if not len(self.step):
            return out
        zero = self.activity == 0
        dead_from = np.flip(np.logical_and.accumulate(np.flip(zero, 0), axis=0), 0)
        for unit in np.flatnonzero(dead_from[-1]):
            out[unit] = int(self.step[int(np.argmax(dead_from[:, unit]))])
        return out


@dataclass(frozen=True, eq=False)
class ParamSeries(Result):
    """A parameter at each recorded step: ``weight_norm`` (Frobenius), ``grad_norm`` of its
    ``.grad``, ``update_ratio`` ``||W_t - W_{t-1}|| / ||W_{t-1}||`` (this step's update)."""

    name: str
    step: np.ndarray
    weight_norm: np.ndarray
    grad_norm: np.ndarray
    update_ratio: np.ndarray


@dataclass(frozen=True, eq=False)
class FindingEvent(Result):
    """An alarm event: a problem ``raised`` at ``step`` (the alarm fired) or ``cleared``
    (the alarm re-armed). ``kind``, ``severity``, ``layer``, ``units``, ``advice`` and
    ``evidence`` are the :class:`netxray.health.Finding`'s; ``message`` is one line."""

    step: int
    event: str
    kind: str
    severity: str
    layer: str | None
    units: tuple[int, ...]
    message: str
    advice: str
    evidence: dict[str, Any]

    def __str__(self) -> str:
        return f"step {self.step}: {self.event} {self.kind}: {self.message}"
