"""Boundary evolution: the decision surface at each training checkpoint, on one fixed plane."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import check_labels, n_classes_of, warn_nonfinite
from netxray._probabilities import warn_if_unclear
from netxray._results import Result
from netxray.boundary._plane import (
    PlaneSpec,
    _chunk_size,
    _chunks,
    _grid,
    _inputs,
    _PlaneResult,
    _probabilities,
    _to_plane,
    make_plane,
)
from netxray.boundary._surface import BoundaryGrid, _check_surface_memory, _surface


@dataclass(frozen=True, eq=False)
class BoundaryEvolution(_PlaneResult, Result):
    """Decision surfaces of one model at several checkpoints, on one fixed plane and grid.

    epochs: ``(T,)`` checkpoint keys in increasing order. probs: ``(T, res, res, classes)``.
    xx, yy, points, origin, basis, plane: as in :class:`BoundaryGrid`.
    accuracy: ``(T,)`` accuracy on ``X`` per checkpoint when labels were given, else None.
    hidden: ``(T, n, 2)`` PCA of ``hidden_layer`` on ``X`` per checkpoint, each frame
    Procrustes-aligned to the previous one so the animation does not flip or spin; or None.
    """

    epochs: np.ndarray
    probs: np.ndarray
    xx: np.ndarray
    yy: np.ndarray
    points: np.ndarray
    origin: np.ndarray
    basis: np.ndarray
    plane: str
    accuracy: np.ndarray | None = None
    hidden: np.ndarray | None = None
    hidden_layer: str | None = None

    def frame(self, i: int) -> BoundaryGrid:
        """Frame ``i`` as a :class:`BoundaryGrid` (for :class:`DecisionBoundaryDisplay`)."""
        return BoundaryGrid(
            xx=self.xx,
            yy=self.yy,
            probs=self.probs[i],
            points=self.points,
            origin=self.origin,
            basis=self.basis,
            plane=self.plane,
        )


def _class_indices(y: Any, n: int, k: int) -> np.ndarray:
    """``y`` as the model's class indices ``0..k-1``, one per sample, for accuracy: labels
    of another coding (+-1, 1/2, names) would compare unequal to every prediction."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu()
        y = (y.double() if y.is_floating_point() else y).numpy()
    labels = np.asarray(y).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"y has {labels.shape[0]} labels for {n} samples")
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == labels.round()).all():
        labels = labels.astype(np.int64)
    elif labels.dtype.kind == "b":
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        what = {"U": "string", "S": "bytes", "O": "object", "f": "fractional or non-finite"}
        raise ValueError(
            f"y holds {what.get(labels.dtype.kind, str(labels.dtype))} labels; accuracy "
            "compares them with the model's class "
            f"indices 0..{k - 1}, so pass the index of each sample's class among the model's "
            "outputs (integers)"
        )
    check_labels(labels, k, what="label")
    return labels


def boundary_evolution(
    model: nn.Module | Callable[[], nn.Module],
    checkpoints: Mapping[int, Mapping[str, torch.Tensor]],
    X: torch.Tensor | np.ndarray,
    y: Any = None,
    *,
    resolution: int = 100,
    plane: PlaneSpec = "auto",
    margin: float = 0.1,
    hidden_layer: str | None = None,
    batch_size: int = 65536,
) -> BoundaryEvolution:
    """Decision surface at each checkpoint (e.g. ``TrainingHistory.checkpoints``).

    ``model``: the architecture, as a model (deep-copied; the original is never touched) or
    a zero-argument factory. Each ``state_dict`` is loaded into that copy, put in eval mode.
    The plane and grid come from ``X`` and are the same for every frame. ``y`` (optional)
    adds per-frame accuracy: the index of each sample's class among the model's outputs
    (other codings, +-1, 1/2 or names, are refused). ``hidden_layer`` adds aligned 2-D PCA
    of that layer on ``X``: one call of a module (``"relu"`` its first call per forward
    pass, ``"relu#1"`` its second, as in :func:`netxray.activations`). Outputs that are
    probabilities already (an ``nn.Sigmoid``/``nn.Softmax`` head) are not squashed again
    (see :mod:`netxray._probabilities`).
    Frames that would not fit in a quarter of the memory are refused up front (checkpoints x
    ``resolution`` squared x 4 bytes per class); the first NaN/Inf frame warns, naming the
    parameters that hold NaN/Inf at that checkpoint.
    """
    from netxray.capture import call_hooks, check_ran, copy_output, select_layers
    from netxray.projection import align

    if not checkpoints:
        raise ValueError("checkpoints is empty; train with checkpoints=(...) to record some")
    net = copy.deepcopy(model) if isinstance(model, nn.Module) else model()
    if not isinstance(net, nn.Module):
        raise TypeError("model must be an nn.Module or a function returning one")
    net.eval()
    Xt, Xf, out, scores = _inputs(net, X)
    k = _probabilities(out, scores).shape[1]
    _check_surface_memory("boundary_evolution", resolution, k, frames=len(checkpoints))
    labels = None if y is None else _class_indices(y, Xf.shape[0], k)
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    xx, yy = _grid(points, resolution, margin)
    chosen = select_layers(net, hidden_layer) if hidden_layer is not None else {}
    if len(chosen) > 1:
        raise ValueError(
            f"hidden_layer {hidden_layer!r} matches {len(chosen)} layers "
            f"({', '.join(chosen)}); name exactly one"
        )
    hidden_name = next(iter(chosen), None)  # one call: "relu" the first, "relu#1" the second

    def keep(name: str, out: torch.Tensor, *_: Any) -> None:
        if name == hidden_name:
            kept.append(copy_output(out))

    epochs = sorted(checkpoints)
    frames, accs, hidden = [], [], []
    kept: list[torch.Tensor] = []
    data_chunk = _chunk_size(net, batch_size, tuple(Xt.shape[1:]))
    warned = False
    for epoch in epochs:
        net.load_state_dict(checkpoints[epoch])
        with torch.no_grad():
            frames.append(
                _surface(net, xx, yy, origin, basis, tuple(Xt.shape[1:]), batch_size, scores)
            )
            kept.clear()
            with call_hooks(net, chosen, keep) as runs:
                outs = [_probabilities(net(Xt[sl]), scores)
                        for sl in _chunks(Xt.shape[0], data_chunk)]
            check_ran(chosen, [hidden_name] if kept else [], runs)
        if not warned and not np.isfinite(frames[-1].sum()):  # once: a diverged run stays NaN
            warned = True
            warn_nonfinite(
                net, (frames[-1],), "boundary_evolution",
                f"the decision surface at epoch {epoch} (the first such frame) contains",
            )
        if labels is not None:
            pred = torch.cat(outs).argmax(1).cpu().numpy()
            accs.append(float((pred == labels).mean()))
        if chosen:
            from netxray.projection import project

            H = torch.cat(kept).reshape(Xt.shape[0], -1).cpu().double().numpy()
            if H.shape[1] >= 2:
                coords = project(H, "pca").coords
            else:  # a 1-unit layer: plot it against zero
                coords = np.column_stack([H[:, 0], np.zeros(H.shape[0])])
            hidden.append(coords if not hidden else align(hidden[-1], coords))
    probs = np.stack(frames)
    warn_if_unclear(probs, scores, n_classes_of(out), "boundary_evolution")
    return BoundaryEvolution(
        epochs=np.asarray(epochs),
        probs=probs,
        xx=xx,
        yy=yy,
        points=points,
        origin=origin,
        basis=basis,
        plane=kind,
        accuracy=np.asarray(accs) if labels is not None else None,
        hidden=np.stack(hidden) if chosen else None,
        hidden_layer=hidden_name,
    )
