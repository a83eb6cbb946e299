"""Unit maps: each hidden unit's response over the plane, and which units are dead.

TensorFlow Playground's neuron thumbnails for any PyTorch model. A unit is marked dead
only in the ReLU family (:mod:`netxray.families`): never > 0 on the data.
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
    GRID_BYTES,
    PlaneSpec,
    _as_arrays,
    _check_memory,
    _chunk_size,
    _chunks,
    _grid,
    _inputs,
    _plane_inputs,
    _PlaneResult,
    _to_plane,
    _valid_resolution,
    make_plane,
)
from netxray.families import activation_family


def _unit_view(t: torch.Tensor) -> torch.Tensor:
    """A layer output as ``(batch, units)``: conv channels averaged over their positions."""
    if t.ndim == 1:
        return t[:, None]
    if t.ndim > 2:
        return t.flatten(2).mean(2)
    return t


@dataclass(frozen=True, eq=False)
class UnitMaps(_PlaneResult, Result):
    """Each hidden unit's response over a grid in a plane of input space.

    maps: ``{layer: (units, res, res)}`` (conv layers: each channel's mean over positions).
    dead: ``{layer: (units,) bool}`` for ReLU-family layers, units never > 0 on the data
    ``X`` (all False for other layers). kinds: ``{layer: module class name}``.
    xx, yy, points, origin, basis, plane: as in :class:`BoundaryGrid`.
    """

    layers: list[str]
    maps: dict[str, np.ndarray]
    dead: dict[str, np.ndarray]
    kinds: dict[str, str]
    xx: np.ndarray
    yy: np.ndarray
    points: np.ndarray
    origin: np.ndarray
    basis: np.ndarray
    plane: str

    def __post_init__(self) -> None:  # JSON round trips turn dicts of arrays into lists
        object.__setattr__(self, "maps", _as_arrays(self.maps))
        object.__setattr__(
            self, "dead", {k: v.astype(bool) for k, v in _as_arrays(self.dead).items()}
        )


def unit_maps(
    model: nn.Module,
    X: torch.Tensor | np.ndarray,
    layers: Any = None,
    resolution: int = 64,
    plane: PlaneSpec = "auto",
    margin: float = 0.1,
    batch_size: int = 65536,
    *,
    allow_train: bool = False,
) -> UnitMaps:
    """Response of every unit of ``layers`` over the plane (TensorFlow Playground's thumbnails).

    ``layers``: any selection :func:`netxray.select_layers` accepts; default: the activation
    modules. ``X`` fixes the plane and grid extent as in :func:`decision_boundary`, and is
    also run through the model to find dead ReLU units (never positive on any sample).
    Maps that would not fit in a quarter of the memory are refused up front
    (``resolution`` squared x (32 + 4 * units) bytes); maps that come out NaN/Inf warn,
    naming the parameters that hold NaN/Inf.
    """
    from netxray.capture import check_ran, hooks, select_layers

    check_eval_mode(model, allow_train=allow_train)
    chosen = select_layers(model, layers)
    Xt, Xf, _ = _inputs(model, X)
    widths: dict[str, int] = {}
    with hooks(chosen, lambda name, out: widths.setdefault(name, _unit_view(out).shape[1])):
        probe_model(model, Xt, n=2)  # how many units each layer has, before any grid
    check_ran(chosen, widths)
    if _valid_resolution(resolution) is not None:
        units = sum(widths.values())
        _check_memory(
            f"unit_maps(resolution={resolution})",
            int(resolution) ** 2,
            GRID_BYTES + 4 * units,
            f"the {resolution} x {resolution} grid and float32 maps of {units} units",
            "Pass resolution <= {most}, or fewer layers",
        )
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    xx, yy = _grid(points, resolution, margin)
    uv = np.column_stack([xx.ravel(), yy.ravel()])
    m = uv.shape[0]
    maps: dict[str, np.ndarray] = {}
    alive: dict[str, torch.Tensor] = {}
    current = slice(0, 0)

    def to_map(name: str, out: torch.Tensor) -> None:
        u = _unit_view(out).detach()
        if name not in maps:
            maps[name] = np.empty((u.shape[1], m), dtype=np.float32)
        maps[name][:, current] = u.T.cpu().float().numpy()

    def to_alive(name: str, out: torch.Tensor) -> None:
        pos = (
            (out.detach() > 0).reshape(out.shape[0], -1)
            if out.ndim <= 2
            else ((out.detach() > 0).flatten(2).any(2))
        )
        hit = pos.any(0)
        alive[name] = hit if name not in alive else alive[name] | hit

    chunk = _chunk_size(model, batch_size, tuple(Xt.shape[1:]))
    with preserved_state(model), torch.no_grad():
        with hooks(chosen, to_map):
            for current in _chunks(m, chunk):  # noqa: B007 - read by the hook
                model(_plane_inputs(uv[current], origin, basis, model, tuple(Xt.shape[1:])))
        with hooks(chosen, to_alive):
            for sl in _chunks(Xt.shape[0], chunk):
                model(Xt[sl])
    check_ran(chosen, maps)
    warn_nonfinite(model, list(maps.values()), "unit_maps", "the unit maps contain")
    dead = {}
    for name, module in chosen.items():
        units = maps[name].shape[0]
        if activation_family(module) == "relu":
            dead[name] = ~alive[name].cpu().numpy().reshape(units)
        else:
            dead[name] = np.zeros(units, dtype=bool)
    return UnitMaps(
        layers=list(chosen),
        maps={n: v.reshape(-1, *xx.shape) for n, v in maps.items()},
        dead=dead,
        kinds={n: type(mod).__name__ for n, mod in chosen.items()},
        xx=xx,
        yy=yy,
        points=points,
        origin=origin,
        basis=basis,
        plane=kind,
    )
