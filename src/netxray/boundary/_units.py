"""Unit maps: each hidden unit's response over the plane, and which units are dead.

TensorFlow Playground's neuron thumbnails for any PyTorch model. A unit is marked dead by
``diagnose``'s definition (:func:`netxray.health.rules.dead_units`): a ReLU-family unit never
> 0 on the data, a smooth gate's (GELU, SiLU...) never > 0 and always within
``Thresholds.gate_dead_bound`` of 0. A module called k times per forward pass is k layers
(``relu``, ``relu#1``, ...), each with its own maps and marks, as in
:func:`netxray.activations`.
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


def _per_unit(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A layer output as ``(batch, positions, units)``, its units at ``dim`` (see
    :func:`netxray.layers.unit_dims`): a conv's channels (dim 1) over its pixels, a
    ``(batch, seq, features)`` output's features over its steps, ``(batch, units)`` over one
    position."""
    if t.ndim == 1:
        return t[:, None, None]
    if t.ndim > 2 and dim % t.ndim == 1:
        t = t.movedim(1, -1)
    return t.reshape(t.shape[0], -1, t.shape[-1])


def _module_of(name: str, chosen: dict[str, nn.Module]) -> nn.Module:
    """The module of layer ``name`` (``relu#1``: module ``relu``'s second call)."""
    from netxray.layers import _CALL_NAME

    call = _CALL_NAME.fullmatch(name)
    return chosen[name] if name in chosen or not call else chosen[call[1]]


@dataclass(frozen=True, eq=False)
class UnitMaps(_PlaneResult, Result):
    """Each hidden unit's response over a grid in a plane of input space.

    layers: the layers drawn, one per call of a module (``relu``, ``relu#1``, ...).
    maps: ``{layer: (units, res, res)}`` (a unit over several positions, a conv's channel or
    a ``(batch, seq, features)`` layer's feature: its mean over them).
    dead: ``{layer: (units,) bool}`` the units ``diagnose`` calls dead on the data ``X``
    (ReLU family: never > 0; smooth gates: never > 0 and always ~0; other layers: none).
    kinds: ``{layer: module class name}``.
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
    modules. A module called several times per forward pass gives one layer per call
    (``relu``, ``relu#1``, ...; select ``"relu#1"`` for its second call only). A unit is
    what :func:`netxray.layers.unit_dims` says (a conv's channel, a Linear's feature, also
    per step of a ``(batch, seq, features)`` output), its map the mean over its positions.
    ``X`` fixes the plane and grid extent as in :func:`decision_boundary`, and is also run
    through the model to mark the units ``diagnose`` calls dead (default thresholds).
    Maps that would not fit in a quarter of the memory are refused up front
    (``resolution`` squared x (32 + 4 * units) bytes); maps that come out NaN/Inf warn,
    naming the parameters that hold NaN/Inf.
    """
    from netxray.capture import _call_order, call_hooks, check_ran, select_layers
    from netxray.health.rules import dead_units
    from netxray.layers import unit_dims

    check_eval_mode(model, allow_train=allow_train)
    chosen = select_layers(model, layers)
    Xt, Xf, _, _ = _inputs(model, X)
    shapes: dict[str, torch.Size] = {}
    with call_hooks(model, chosen, lambda name, out, *_: shapes.setdefault(name, out.shape)
                    ) as runs:
        probe_model(model, Xt, n=2)  # each call's output shape, before any grid
    check_ran(chosen, shapes, runs)
    names = [n for n in _call_order(dict.fromkeys([*chosen, *shapes])) if n in shapes]
    dims = unit_dims(model, {n: _module_of(n, chosen) for n in names})
    widths = {n: _per_unit(torch.empty(shapes[n], device="meta"), dims[n]).shape[2]
              for n in names}
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
    maps = {n: np.empty((widths[n], m), dtype=np.float32) for n in names}
    seen: dict[str, list[torch.Tensor]] = {}  # per layer: [ever > 0, least, greatest]
    current = slice(0, 0)

    def to_map(name: str, out: torch.Tensor, *_: Any) -> None:
        if name not in maps:
            raise ValueError(
                f"layer {name!r} ran on the grid but not on the first samples of X: the "
                "model calls its module a varying number of times; select its calls by name"
            )
        maps[name][:, current] = _per_unit(out.detach(), dims[name]).mean(1).T.cpu().float().numpy()

    def to_seen(name: str, out: torch.Tensor, *_: Any) -> None:
        u = _per_unit(out.detach(), dims[name]).flatten(0, 1)
        got = [(u > 0).any(0), u.amin(0), u.amax(0)]
        if name in seen:
            a, lo, hi = seen[name]
            got = [a | got[0], torch.minimum(lo, got[1]), torch.maximum(hi, got[2])]
        seen[name] = got

    chunk = _chunk_size(model, batch_size, tuple(Xt.shape[1:]))
    with preserved_state(model), torch.no_grad():
        with call_hooks(model, chosen, to_map):
            for current in _chunks(m, chunk):  # noqa: B007 - read by the hook
                model(_plane_inputs(uv[current], origin, basis, model, tuple(Xt.shape[1:])))
        with call_hooks(model, chosen, to_seen):
            for sl in _chunks(Xt.shape[0], chunk):
                model(Xt[sl])
    warn_nonfinite(model, list(maps.values()), "unit_maps", "the unit maps contain")
    dead = {}
    for name in names:
        module = _module_of(name, chosen)
        active, lo, hi = (t.cpu().double().numpy() for t in seen[name])
        dead[name] = dead_units(activation_family(module), type(module).__name__,
                                seen=np.ones(widths[name], dtype=bool), active=active,
                                lo=lo, hi=hi)
    return UnitMaps(
        layers=names,
        maps={n: maps[n].reshape(-1, *xx.shape) for n in names},
        dead=dead,
        kinds={n: type(_module_of(n, chosen)).__name__ for n in names},
        xx=xx,
        yy=yy,
        points=points,
        origin=origin,
        basis=basis,
        plane=kind,
    )
