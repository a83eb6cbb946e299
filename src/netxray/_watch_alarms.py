"""A watch's alarms and its threads' failures, surfaced on the training thread: both happen
on a background thread (the writer evaluates findings, a thread may die), and both reach the
user at their next ``w.step()``, ``flush()`` or ``close()``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from netxray._warnings import NetxrayWarning
from netxray.health import Finding

Alarm = Callable[[Finding, int], Any]


class TrainingAlarm(RuntimeError):
    """Raised by ``watch(..., alarms="raise")``: ``finding`` appeared at ``step``."""

    def __init__(self, finding: Finding, step: int) -> None:
        super().__init__(f"netxray watch: step {step}: {finding}")
        self.finding = finding
        self.step = step


def raise_failure(worker: Any, writer: Any) -> None:
    """Raise (once) the error that stopped the statistics thread or the writer, if any."""
    if (worker is None or worker.error is None) and (writer is None or writer.error is None):
        return  # (every step: no loop, no tuples)
    for part, what in ((worker, "statistics thread"), (writer, "run store writer")):
        if part is not None and part.error is not None:
            err, part.error = part.error, None
            raise RuntimeError(f"netxray watch: the {what} failed ({type(err).__name__}: "
                               f"{err}); statistics after this point are not recorded") from err


def deliver(writer: Any, alarms: str | Alarm, stacklevel: int) -> None:
    """Fire the alarms the writer raised since the last call: warn, raise or call back.
    ``stacklevel``: as the caller's own ``warnings.warn`` would take it."""
    while writer.alarms:
        ev, finding = writer.alarms.popleft()
        if ev.event != "raised":
            continue
        if callable(alarms):
            alarms(finding, ev.step)
        elif alarms == "raise":
            raise TrainingAlarm(finding, ev.step)
        else:
            warnings.warn(f"netxray watch: step {ev.step}: {finding}", NetxrayWarning,
                          stacklevel=stacklevel + 1)
