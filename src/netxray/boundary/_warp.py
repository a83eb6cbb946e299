"""Grid warp: how each 2-unit layer bends a grid laid over the input plane.

After colah's "Neural Networks, Manifolds, and Topology".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import check_eval_mode, preserved_state
from netxray._results import Result
from netxray.boundary._plane import (
    PlaneSpec,
    _as_arrays,
    _grid,
    _inputs,
    _plane_inputs,
    _PlaneResult,
    _to_plane,
    make_plane,
)


@dataclass(frozen=True, eq=False)
class GridWarp(_PlaneResult, Result):
    """How each 2-unit layer bends a grid laid over the input plane.

    grid_lines: ``(2 * n_lines, points_per_line, 2)`` the grid in plane coordinates
    (first ``n_lines`` lines run along u, the rest along v). lines: ``{layer: same shape}``
    the grid after that layer. input_points: ``(n, 2)`` the data in the plane;
    points: ``{layer: (n, 2)}`` the data after each layer.
    """

    layers: list[str]
    grid_lines: np.ndarray
    lines: dict[str, np.ndarray]
    input_points: np.ndarray
    points: dict[str, np.ndarray]
    origin: np.ndarray
    basis: np.ndarray
    plane: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", _as_arrays(self.lines))
        object.__setattr__(self, "points", _as_arrays(self.points))


def grid_warp(
    model: nn.Module,
    X: torch.Tensor | np.ndarray,
    layers: Any = None,
    n_lines: int = 21,
    points_per_line: int = 101,
    plane: PlaneSpec = "auto",
    margin: float = 0.1,
    *,
    allow_train: bool = False,
) -> GridWarp:
    """Grid lines over the input plane, mapped through each 2-unit layer of ``model``.

    ``layers``: a selection for :func:`netxray.select_layers`; default: every leaf module
    whose output has exactly 2 features (for a 2-2-2-2 net: fc1, act1, fc2, ...). A chosen
    layer of another width is an error (use :func:`unit_maps` or :func:`project` instead).
    """
    from netxray.capture import hooks, select_layers

    check_eval_mode(model, allow_train=allow_train)
    if n_lines < 2 or points_per_line < 2:
        raise ValueError("n_lines and points_per_line must both be at least 2")
    if layers is None:
        chosen = select_layers(model, lambda _n, m: not any(True for _ in m.children()))
    else:
        chosen = select_layers(model, layers)
    Xt, Xf = _inputs(model, X)
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    xx, yy = _grid(points, points_per_line, margin)
    u, v = xx[0], yy[:, 0]
    ui = np.linspace(u[0], u[-1], n_lines)
    vi = np.linspace(v[0], v[-1], n_lines)
    along_u = np.stack([np.column_stack([u, np.full_like(u, c)]) for c in vi])
    along_v = np.stack([np.column_stack([np.full_like(v, c), v]) for c in ui])
    grid_lines = np.concatenate([along_u, along_v])  # (2 * n_lines, points_per_line, 2)
    flat = grid_lines.reshape(-1, 2)
    outs: dict[str, list[np.ndarray]] = {n: [] for n in chosen}

    def keep(name: str, out: torch.Tensor) -> None:
        outs[name].append(out.detach().reshape(out.shape[0], -1).cpu().double().numpy())

    with preserved_state(model), torch.no_grad(), hooks(chosen, keep):
        model(_plane_inputs(flat, origin, basis, model, tuple(Xt.shape[1:])))
        model(Xt)
    lines: dict[str, np.ndarray] = {}
    pts: dict[str, np.ndarray] = {}
    for name, got in outs.items():
        if len(got) != 2:
            if layers is None:
                continue
            raise ValueError(f"layer {name!r} never ran (or ran more than once per call)")
        width = got[0].shape[1]
        if width != 2:
            if layers is None:
                continue
            raise ValueError(
                f"layer {name!r} has {width} units; grid_warp draws 2-unit layers only. "
                "Use unit_maps() or project() for wider layers"
            )
        lines[name] = got[0].reshape(grid_lines.shape)
        pts[name] = got[1]
    if not lines:
        raise ValueError(
            "the model has no layer with exactly 2 units to draw; grid_warp is for nets with "
            "2-unit hidden layers (e.g. netxray.mlp((2, 2, 2, 2)))"
        )
    return GridWarp(
        layers=list(lines),
        grid_lines=grid_lines,
        lines=lines,
        input_points=points,
        points=pts,
        origin=origin,
        basis=basis,
        plane=kind,
    )
