"""A watch's snapshot of a fixed probe batch: its hidden states, and for 2-D inputs the
decision surface and unit maps, so a report can animate them over training.

Taken on the training thread every ``snapshot_every`` steps, with the model in eval mode
(restored after, module by module) and without recording its forward passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import nn


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def probe_snapshot(model: nn.Module, probe: Any, names: list[str],
                   resolution: int) -> list[tuple[str, str, Any]]:
    """``(kind, name, result)`` for the writer: ``activations`` of ``probe`` (a batch or
    ``(X, y)``) at ``names``; for 2-D inputs also ``boundary`` and ``unit_maps``."""
    import netxray

    X = probe[0] if isinstance(probe, tuple | list) else probe
    with _eval_mode(model):
        out: list[tuple[str, str, Any]] = [
            ("activations", "probe", netxray.activations(model, probe, names, allow_train=True))]
        if getattr(X, "ndim", 0) == 2 and X.shape[1] == 2:
            out.append(("boundary", "model",
                        netxray.decision_boundary(model, X, resolution=resolution)))
            out.append(("unit_maps", "model",
                        netxray.unit_maps(model, X, names, resolution=resolution)))
    return out
