"""The decision surface: a model's class probabilities over a grid in a plane of input space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from netxray._checks import check_eval_mode, n_classes_of, preserved_state, warn_nonfinite
from netxray._probabilities import warn_if_unclear
from netxray._results import Result
from netxray.boundary._plane import (
    GRID_BYTES,
    PlaneSpec,
    _check_memory,
    _chunk_size,
    _chunks,
    _grid,
    _inputs,
    _plane_inputs,
    _PlaneResult,
    _probabilities,
    _to_plane,
    _valid_resolution,
    make_plane,
)


@dataclass(frozen=True, eq=False)
class BoundaryGrid(_PlaneResult, Result):
    """Class probabilities over a grid in a 2-D plane of input space.

    xx, yy: ``(res, res)`` plane coordinates (``xx[i, j] = u_j``, ``yy[i, j] = v_i``).
    probs: ``(res, res, classes)`` class probabilities: softmax of the logits (sigmoid -> 2
    classes for one logit), or the model's own when it outputs probabilities (see
    :mod:`netxray._probabilities`).
    points: ``(n, 2)`` the data in plane coordinates. origin ``(d,)``, basis ``(2, d)``:
    the grid point ``(u, v)`` is the input ``origin + u * basis[0] + v * basis[1]``.
    plane: ``"input"``, ``"pca"`` or ``"samples"``.
    """

    xx: np.ndarray
    yy: np.ndarray
    probs: np.ndarray
    points: np.ndarray
    origin: np.ndarray
    basis: np.ndarray
    plane: str

    @property
    def predictions(self) -> np.ndarray:
        """``(res, res)`` the most probable class at each grid point."""
        return self.probs.argmax(-1)


def _surface(
    model: nn.Module,
    xx: np.ndarray,
    yy: np.ndarray,
    origin: np.ndarray,
    basis: np.ndarray,
    input_shape: tuple[int, ...],
    batch_size: int,
    scores: str,
) -> np.ndarray:
    uv = np.column_stack([xx.ravel(), yy.ravel()])
    probs: np.ndarray | None = None
    for sl in _chunks(uv.shape[0], _chunk_size(model, batch_size, input_shape)):
        p = _probabilities(model(_plane_inputs(uv[sl], origin, basis, model, input_shape)), scores)
        if probs is None:
            probs = np.empty((uv.shape[0], p.shape[1]), dtype=np.float32)
        probs[sl] = p.detach().cpu().float().numpy()
    assert probs is not None
    return probs.reshape(*xx.shape, -1)


def decision_boundary(
    model: nn.Module,
    X: torch.Tensor | np.ndarray,
    resolution: int = 200,
    plane: PlaneSpec = "auto",
    margin: float = 0.1,
    batch_size: int = 65536,
    *,
    allow_train: bool = False,
) -> BoundaryGrid:
    """The model's class probabilities on a ``resolution x resolution`` grid around ``X``.

    ``X``: ``(n, d)`` or ``(n, *input_shape)`` data fixing the plane and the grid's extent
    (the points' range plus ``margin`` times it on each side). ``plane``: see
    :func:`make_plane`. Evaluated in chunks of ``batch_size`` points without gradients;
    the model's weights and mode are untouched. Inputs the model cannot take are refused
    by one 8-sample probe, which also tells logits from probabilities (a model ending in
    ``nn.Sigmoid``/``nn.Softmax`` is not squashed twice; see :mod:`netxray._probabilities`;
    a dict or HF output gives its ``logits``). A grid whose probabilities would not fit in
    a quarter of the memory is refused up front (``resolution`` x ``resolution`` x
    (32 + 4 * classes) bytes); a surface that comes out NaN/Inf warns, naming the parameters that hold NaN/Inf.
    """
    check_eval_mode(model, allow_train=allow_train)
    Xt, Xf, out, scores = _inputs(model, X)
    k = _probabilities(out, scores).shape[1]
    _check_surface_memory("decision_boundary", resolution, k)
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    xx, yy = _grid(points, resolution, margin)
    with preserved_state(model), torch.no_grad():
        probs = _surface(model, xx, yy, origin, basis, tuple(Xt.shape[1:]), batch_size, scores)
    warn_nonfinite(model, (probs,), "decision_boundary", "the decision surface contains")
    warn_if_unclear(probs, scores, n_classes_of(out), "decision_boundary")
    return BoundaryGrid(
        xx=xx, yy=yy, probs=probs, points=points, origin=origin, basis=basis, plane=kind
    )


def _check_surface_memory(call: str, resolution: int, classes: int, frames: int = 1) -> None:
    """Refuse surfaces whose grid and float32 probabilities would not fit in memory."""
    if _valid_resolution(resolution) is None:
        return
    of = f"{frames} frames of " if frames > 1 else ""
    _check_memory(
        f"{call}(resolution={resolution})",
        resolution * resolution,
        GRID_BYTES + 4 * classes * frames,
        f"the {resolution} x {resolution} grid and {of}its probabilities of {classes} "
        "classes",
        "Pass resolution <= {most}" + (" or fewer checkpoints" if frames > 1 else ""),
    )
