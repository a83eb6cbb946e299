"""Grid warp: how each 2-unit layer bends a grid laid over the input plane.

After colah's "Neural Networks, Manifolds, and Topology".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import check_eval_mode, preserved_state, probe_model, warn_nonfinite
from netxray._results import Result
from netxray.boundary._plane import (
    PlaneSpec,
    _as_arrays,
    _axes,
    _check_memory,
    _chunk_size,
    _chunks,
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
    batch_size: int = 65536,
    allow_train: bool = False,
) -> GridWarp:
    """Grid lines over the input plane, mapped through each 2-unit layer of ``model``.

    ``layers``: a selection for :func:`netxray.select_layers`; default: every leaf module
    whose output has exactly 2 features (for a 2-2-2-2 net: fc1, act1, fc2, ...). A chosen
    layer of another width is an error (use :func:`unit_maps` or :func:`project` instead).
    A module called several times per forward pass gives one layer per call (``relu``,
    ``relu#1``, ...); the later calls of a chosen module are drawn when they have 2 units.
    The ``2 * n_lines * points_per_line`` grid points run in chunks of ``batch_size``;
    lines that would not fit in a quarter of the memory are refused up front (16 bytes per
    point for the grid and 16 per drawn layer); lines that come out NaN/Inf warn.
    """
    from netxray.capture import call_hooks, select_layers

    check_eval_mode(model, allow_train=allow_train)
    for name, value in (("n_lines", n_lines), ("points_per_line", points_per_line)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if n_lines < 2 or points_per_line < 2:
        raise ValueError("n_lines and points_per_line must both be at least 2")
    if layers is None:
        chosen = select_layers(model, lambda _n, m: not any(True for _ in m.children()))
    else:
        chosen = select_layers(model, layers)
    Xt, Xf, _, _ = _inputs(model, X)
    drawn = _two_unit_layers(model, Xt, chosen, explicit=layers is not None)
    n_points = 2 * int(n_lines) * int(points_per_line)
    _check_memory(
        f"grid_warp(n_lines={n_lines}, points_per_line={points_per_line})",
        n_points,
        16 + 16 * len(drawn),
        f"{n_points} grid points and their images under {len(drawn)} layer(s)",
        "Pass 2 * n_lines * points_per_line <= {most}",
        square=False,
    )
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    u, v = _axes(points, int(points_per_line), margin)
    ui = np.linspace(u[0], u[-1], n_lines)
    vi = np.linspace(v[0], v[-1], n_lines)
    grid_lines = np.empty((2 * n_lines, points_per_line, 2))  # first along u, then along v
    grid_lines[:n_lines, :, 0], grid_lines[:n_lines, :, 1] = u, vi[:, None]
    grid_lines[n_lines:, :, 0], grid_lines[n_lines:, :, 1] = ui[:, None], v
    flat = grid_lines.reshape(-1, 2)
    lines = {n: np.empty((n_points, 2)) for n in drawn}
    pts = {n: np.empty((Xt.shape[0], 2)) for n in drawn}
    target, current = lines, slice(0, 0)

    def keep(name: str, out: torch.Tensor, *_: Any) -> None:
        if name in drawn:
            target[name][current] = out.detach().reshape(out.shape[0], -1).cpu().double().numpy()

    shape = tuple(Xt.shape[1:])
    chunk = _chunk_size(model, batch_size, shape)
    with preserved_state(model), torch.no_grad(), call_hooks(model, chosen, keep):
        for current in _chunks(n_points, chunk):  # noqa: B007 - read by the hook
            model(_plane_inputs(flat[current], origin, basis, model, shape))
        target = pts
        for current in _chunks(Xt.shape[0], chunk):  # noqa: B007 - read by the hook
            model(Xt[current])
    warn_nonfinite(model, [*lines.values(), *pts.values()], "grid_warp", "the warped grid contains")
    return GridWarp(
        layers=list(drawn),
        grid_lines=grid_lines,
        lines={n: a.reshape(grid_lines.shape) for n, a in lines.items()},
        input_points=points,
        points=pts,
        origin=origin,
        basis=basis,
        plane=kind,
    )


def _two_unit_layers(
    model: nn.Module, Xt: torch.Tensor, chosen: dict[str, nn.Module], *, explicit: bool
) -> list[str]:
    """The chosen layers with exactly 2 units, one per call of a module (``relu``,
    ``relu#1``, ...), found on a 2-sample probe. A layer the user named that is not one is an
    error; the other calls of a module the user named are drawn when they have 2 units."""
    from netxray.capture import _call_order, call_hooks, check_ran

    widths: dict[str, int] = {}

    def width(name: str, out: torch.Tensor, *_: Any) -> None:
        widths[name] = out.reshape(out.shape[0], -1).shape[1]

    with call_hooks(model, chosen, width) as runs:
        probe_model(model, Xt, n=2)
    if explicit:
        check_ran(chosen, widths, runs)
    drawn = []
    for name in _call_order(dict.fromkeys([*chosen, *widths])):
        got = widths.get(name)
        if got != 2:
            if explicit and name in chosen:
                raise ValueError(
                    f"layer {name!r} has {got} units; grid_warp draws 2-unit layers only. "
                    "Use unit_maps() or project() for wider layers"
                )
            continue
        drawn.append(name)
    if not drawn:
        raise ValueError(
            "the model has no layer with exactly 2 units to draw; grid_warp is for nets with "
            "2-unit hidden layers (e.g. netxray.mlp((2, 2, 2, 2)))"
        )
    return drawn
