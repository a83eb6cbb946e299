"""What a run store reads back as: small results of arrays over the recorded steps.

Every series is step-aligned: ``step`` is ``(steps,)`` and each statistic is ``(steps,)`` (or
``(steps, ...)``), with NaN where a value was not recorded (a gradient on a step without
backward, a saturation fraction for a family without a band). Where a value can also be a
real NaN (a diverged loss, a NaN gradient), a boolean ``*_recorded`` array beside it tells
the two apart: True where the value was recorded (NaN included), False where it was not;
:meth:`recorded` gives it for any field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

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


def _not_nan(values: Any) -> np.ndarray:
    return ~np.isnan(np.asarray(values, dtype=np.float64))


class _Recorded:
    """:meth:`recorded` for a series whose ``_masks`` name the fields that have a
    ``*_recorded`` array; ``_always`` fields are recorded at every step (NaN is a value)."""

    _masks: ClassVar[dict[str, str]] = {}
    _always: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        """A mask not given (a series built by hand, or saved before masks existed): every
        value that is not NaN was recorded, the reading of a schema-1 store."""
        for name, mask in self._masks.items():
            if getattr(self, mask) is None:
                object.__setattr__(self, mask, _not_nan(getattr(self, name)))

    def recorded(self, name: str) -> np.ndarray:
        """``(steps,)`` bool: where field ``name`` holds a recorded value (a NaN there is a
        real NaN), False where nothing was recorded (its NaN means "no value")."""
        values = getattr(self, name)
        if name in self._masks:
            return getattr(self, self._masks[name])
        if name in self._always:
            return np.ones(len(values), dtype=bool)
        return _not_nan(values)


@dataclass(frozen=True, eq=False)
class StepSeries(_Recorded, Result):
    """Every step: ``step``, wall ``time`` (seconds since the epoch), ``loss`` (NaN when not
    given, and when the loss was NaN: ``loss_recorded`` is False only for a step that was not
    given a loss) and ``metrics`` (name -> ``(steps,)``, NaN where a step did not report it
    or reported NaN; ``metrics_recorded`` tells which)."""

    _masks: ClassVar[dict[str, str]] = {"loss": "loss_recorded"}
    _always: ClassVar[tuple[str, ...]] = ("time",)

    step: np.ndarray
    time: np.ndarray
    loss: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    loss_recorded: np.ndarray | None = None
    metrics_recorded: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metrics_recorded is None:
            object.__setattr__(self, "metrics_recorded",
                               {k: _not_nan(v) for k, v in self.metrics.items()})


@dataclass(frozen=True, eq=False)
class LayerSeries(_Recorded, Result):
    """One layer at each recorded step, over that step's batch.

    ``mean`` activation; ``scale`` its RMS; ``min``/``max``; ``frac_active`` (share of values
    > 0); ``frac_saturated`` (share outside the band; NaN without one); ``dead`` (ReLU-family
    units never positive on the batch; NaN for other families); ``nan``/``inf`` counts;
    ``grad_rms`` the root mean square of the loss gradient with respect to the layer's
    output, per element (NaN without gradients, and for a NaN gradient: ``grad_recorded``
    is False only without gradients); ``hist`` ``(steps, bins + 2)`` the layer's histogram
    pooled over units, on ``hist_edges``. The other statistics are of the finite values
    (NaN: the layer had none, or the statistic does not apply).
    """

    _masks: ClassVar[dict[str, str]] = {"grad_rms": "grad_recorded"}

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
    grad_recorded: np.ndarray | None = None


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
class ParamSeries(_Recorded, Result):
    """A parameter at each recorded step: ``weight_norm`` (Frobenius; recorded at every
    step, so a NaN is NaN weights), ``grad_norm`` of its ``.grad`` (``grad_recorded``: False
    where it had none), ``update_ratio`` ``||W_t - W_{t-1}|| / ||W_{t-1}||`` (this step's
    update; ``update_recorded``: False without the previous weights, or where their norm is 0).
    NaN where not recorded, and where the value was NaN."""

    _masks: ClassVar[dict[str, str]] = {"grad_norm": "grad_recorded",
                                        "update_ratio": "update_recorded"}
    _always: ClassVar[tuple[str, ...]] = ("weight_norm",)

    name: str
    step: np.ndarray
    weight_norm: np.ndarray
    grad_norm: np.ndarray
    update_ratio: np.ndarray
    grad_recorded: np.ndarray | None = None
    update_recorded: np.ndarray | None = None


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
