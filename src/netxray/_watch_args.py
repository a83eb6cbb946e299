"""The checks of :func:`netxray.watch`'s arguments and of what :meth:`Watch.log` is given:
each bad value gets an error that names it and says what to pass instead, before a run
store is created (a float ``every`` or a probe without ``snapshot_every`` would otherwise
record something else than asked, silently)."""

from __future__ import annotations

import numbers
from typing import Any

from torch import nn


def _count(name: str, value: Any, *, low: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        allowed = f"an integer >= {low}" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_watch_args(model: Any, *, every: Any, snapshot_every: Any, probe: Any,
                     alarms: Any, bins: Any) -> None:
    """Raise for the first bad argument of :func:`netxray.watch`."""
    _count("every", every, low=1)
    _count("snapshot_every", snapshot_every, low=1, optional=True)
    _count("bins", bins, low=0)
    if not (alarms in ("warn", "raise") or callable(alarms)):
        raise ValueError(f"alarms must be 'warn', 'raise' or a callable(finding, step), got {alarms!r}")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or None (then log arrays with "
                        f"w.log), got {type(model).__name__}")
    if probe is not None and model is None:
        raise ValueError("probe snapshots need a model; pass model= or drop probe=")
    if (probe is None) != (snapshot_every is None):
        given, missing = ("probe", "snapshot_every") if probe is not None else (
            "snapshot_every", "probe")
        raise ValueError(f"{given}= takes snapshots only with {missing}= as well (snapshots "
                         "are the probe batch's hidden states every snapshot_every steps); "
                         f"pass both, or neither")


def check_log_step(step: Any, last: int) -> None:
    """``Watch.log``'s step: an integer >= 0, above the last one logged."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    if step <= last:
        raise ValueError(f"steps must increase: got {step} after step {last}")
