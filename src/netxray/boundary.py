"""Decision surfaces and per-unit response maps over a 2-D plane of input space.

For 2-D inputs the plane is the input space itself. For n-D inputs it is a plane through the
data (the top-2 PCA plane, or the plane through three samples); each grid point ``(u, v)`` is
the input ``origin + u * basis[0] + v * basis[1]``. Grids are evaluated in chunks of
``batch_size`` points under ``torch.no_grad()``, so a 500 x 500 grid needs bounded memory,
and the model is never changed (checkpoints are loaded into a deep copy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import (
    as_input_tensor,
    check_eval_mode,
    model_device,
    model_dtype,
    preserved_state,
)
from netxray._results import Result

PlaneSpec = str | tuple[Any, Any, Any]
RELU_FAMILY: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


# --------------------------------------------------------------------------------------
# The plane and the grid


def _flat_numpy(X: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(X.shape[0], -1)


def _vector(spec: Any, Xf: np.ndarray, what: str) -> np.ndarray:
    if isinstance(spec, int | np.integer):
        if not -Xf.shape[0] <= int(spec) < Xf.shape[0]:
            raise ValueError(f"plane {what} index {spec} is out of range for {Xf.shape[0]} samples")
        return Xf[int(spec)]
    v = _flat_numpy(torch.as_tensor(spec).reshape(1, -1))[0]
    if v.shape[0] != Xf.shape[1]:
        raise ValueError(
            f"plane {what} has {v.shape[0]} values but inputs have {Xf.shape[1]} features"
        )
    return v


def make_plane(
    X: torch.Tensor | np.ndarray, plane: PlaneSpec = "auto"
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(origin (d,), basis (2, d) orthonormal, kind)`` of a plane through the data ``X``.

    ``plane``: ``"auto"`` (the input space for 2-D inputs, else ``"pca"``), ``"input"``
    (2-D inputs only), ``"pca"`` (the mean and top-2 principal directions of ``X``, signs
    as scikit-learn's PCA), or ``(a, b, c)``: three sample indices or input vectors; the
    plane passes through all three with ``a`` at the origin and ``b`` along the first axis.
    """
    Xf = _flat_numpy(X)
    d = Xf.shape[1]
    if isinstance(plane, str):
        if plane == "auto":
            plane = "input" if d == 2 else "pca"
        if plane == "input":
            if d != 2:
                raise ValueError(
                    f"plane='input' needs 2-D inputs, these have {d} features; use "
                    "plane='pca' or plane=(a, b, c) (three sample indices)"
                )
            return np.zeros(2), np.eye(2), "input"
        if plane == "pca":
            if d < 2 or Xf.shape[0] < 2:
                raise ValueError(
                    f"a PCA plane needs at least 2 samples and 2 features, got {Xf.shape}"
                )
            from sklearn.decomposition import PCA

            pca = PCA(n_components=2).fit(Xf)
            return pca.mean_.copy(), pca.components_.copy(), "pca"
        raise ValueError(f"unknown plane {plane!r}; use 'auto', 'input', 'pca' or (a, b, c)")
    if not isinstance(plane, tuple | list) or len(plane) != 3:
        raise ValueError("plane must be 'auto', 'input', 'pca' or a triple (a, b, c)")
    a, b, c = (_vector(p, Xf, w) for p, w in zip(plane, "abc", strict=True))
    e1 = b - a
    n1 = np.linalg.norm(e1)
    if n1 == 0:
        raise ValueError("plane points a and b coincide; pick three distinct samples")
    e1 = e1 / n1
    e2 = (c - a) - ((c - a) @ e1) * e1
    n2 = np.linalg.norm(e2)
    if n2 < 1e-12 * max(1.0, np.linalg.norm(c - a)):
        raise ValueError("plane points a, b, c are collinear; pick three that span a plane")
    return a.copy(), np.stack([e1, e2 / n2]), "samples"


def _grid(points: np.ndarray, resolution: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    lo, hi = points.min(0), points.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    u = np.linspace(lo[0], hi[0], resolution)
    v = np.linspace(lo[1], hi[1], resolution)
    return np.meshgrid(u, v)  # xx[i, j] = u[j], yy[i, j] = v[i]


def _plane_inputs(
    uv: np.ndarray,
    origin: np.ndarray,
    basis: np.ndarray,
    model: nn.Module,
    input_shape: tuple[int, ...],
) -> torch.Tensor:
    """Plane coordinates ``(m, 2)`` to model inputs ``(m, *input_shape)``, in the model's dtype."""
    device, dtype = model_device(model), model_dtype(model)
    uv_t = torch.as_tensor(uv, device=device).to(dtype)
    if origin.shape[0] == 2 and not origin.any() and np.array_equal(basis, np.eye(2)):
        return uv_t.reshape(uv.shape[0], *input_shape)  # the input plane itself
    o = torch.as_tensor(origin, device=device).to(dtype)
    B = torch.as_tensor(basis, device=device).to(dtype)
    return torch.addmm(o, uv_t, B).reshape(uv.shape[0], *input_shape)


def _chunks(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def _probabilities(out: Any) -> torch.Tensor:
    from netxray.capture import first_tensor

    t = first_tensor(out)
    if t is None:
        raise TypeError("the model returned no tensor; a decision surface needs logits")
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(
            f"the model outputs shape {tuple(t.shape)}; a decision surface needs logits "
            "(batch, classes) or a single logit (batch,) / (batch, 1)"
        )
    t = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    if t.shape[1] == 1:
        p = torch.sigmoid(t)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(t, dim=1)


def _to_plane(Xf: np.ndarray, origin: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return (Xf - origin) @ basis.T


def _inputs(model: nn.Module, X: Any) -> tuple[torch.Tensor, np.ndarray]:
    Xt = as_input_tensor(X, model, "X")
    if Xt.ndim < 2:
        raise ValueError(f"X must have shape (samples, features...), got {tuple(Xt.shape)}")
    return Xt, _flat_numpy(Xt)


# --------------------------------------------------------------------------------------
# Decision boundary


class _PlaneResult:
    """Shared by results on a plane: map more inputs into plane coordinates."""

    origin: np.ndarray
    basis: np.ndarray

    def to_plane(self, X: torch.Tensor | np.ndarray) -> np.ndarray:
        """Plane coordinates ``(m, 2)`` of inputs ``(m, d)`` (e.g. test points to overlay)."""
        Xf = _flat_numpy(X)
        if Xf.shape[1] != self.origin.shape[0]:
            raise ValueError(
                f"X has {Xf.shape[1]} features but the plane lives in {self.origin.shape[0]}"
            )
        return _to_plane(Xf, self.origin, self.basis)


@dataclass(frozen=True, eq=False)
class BoundaryGrid(_PlaneResult, Result):
    """Class probabilities over a grid in a 2-D plane of input space.

    xx, yy: ``(res, res)`` plane coordinates (``xx[i, j] = u_j``, ``yy[i, j] = v_i``).
    probs: ``(res, res, classes)`` softmax of the logits (sigmoid -> 2 classes for one logit).
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
) -> np.ndarray:
    uv = np.column_stack([xx.ravel(), yy.ravel()])
    probs: np.ndarray | None = None
    for sl in _chunks(uv.shape[0], batch_size):
        p = _probabilities(model(_plane_inputs(uv[sl], origin, basis, model, input_shape)))
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
    the model's weights and mode are untouched.
    """
    check_eval_mode(model, allow_train=allow_train)
    Xt, Xf = _inputs(model, X)
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    xx, yy = _grid(points, resolution, margin)
    with preserved_state(model), torch.no_grad():
        probs = _surface(model, xx, yy, origin, basis, tuple(Xt.shape[1:]), batch_size)
    return BoundaryGrid(
        xx=xx, yy=yy, probs=probs, points=points, origin=origin, basis=basis, plane=kind
    )


# --------------------------------------------------------------------------------------
# Unit maps


def _as_arrays(d: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {str(k): np.asarray(v) for k, v in d.items()}


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
    """
    from netxray.capture import hooks, select_layers

    check_eval_mode(model, allow_train=allow_train)
    chosen = select_layers(model, layers)
    Xt, Xf = _inputs(model, X)
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

    with preserved_state(model), torch.no_grad():
        with hooks(chosen, to_map):
            for current in _chunks(m, batch_size):  # noqa: B007 - read by the hook
                model(_plane_inputs(uv[current], origin, basis, model, tuple(Xt.shape[1:])))
        with hooks(chosen, to_alive):
            for sl in _chunks(Xt.shape[0], batch_size):
                model(Xt[sl])
    missing = [n for n in chosen if n not in maps]
    if missing:
        raise ValueError(
            f"layer(s) {', '.join(missing)} never ran during the forward pass; "
            "are they used by model.forward?"
        )
    dead = {}
    for name, module in chosen.items():
        units = maps[name].shape[0]
        if isinstance(module, RELU_FAMILY):
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


# --------------------------------------------------------------------------------------
# Grid warp (colah's "Neural Networks, Manifolds, and Topology")


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


# --------------------------------------------------------------------------------------
# Evolution over checkpoints


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
    adds per-frame accuracy; ``hidden_layer`` adds aligned 2-D PCA of that layer on ``X``.
    """
    from netxray.capture import hooks, select_layers
    from netxray.projection import align

    if not checkpoints:
        raise ValueError("checkpoints is empty; train with checkpoints=(...) to record some")
    net = copy.deepcopy(model) if isinstance(model, nn.Module) else model()
    if not isinstance(net, nn.Module):
        raise TypeError("model must be an nn.Module or a function returning one")
    net.eval()
    Xt, Xf = _inputs(net, X)
    labels = None
    if y is not None:
        labels = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
        if labels.shape[0] != Xf.shape[0]:
            raise ValueError(f"y has {labels.shape[0]} labels for {Xf.shape[0]} samples")
    origin, basis, kind = make_plane(Xf, plane)
    points = _to_plane(Xf, origin, basis)
    xx, yy = _grid(points, resolution, margin)
    chosen = select_layers(net, hidden_layer) if hidden_layer is not None else {}
    if len(chosen) > 1:
        raise ValueError(
            f"hidden_layer {hidden_layer!r} matches {len(chosen)} layers "
            f"({', '.join(chosen)}); name exactly one"
        )
    epochs = sorted(checkpoints)
    frames, accs, hidden = [], [], []
    kept: list[torch.Tensor] = []
    for epoch in epochs:
        net.load_state_dict(checkpoints[epoch])
        with torch.no_grad():
            frames.append(_surface(net, xx, yy, origin, basis, tuple(Xt.shape[1:]), batch_size))
            kept.clear()
            with hooks(chosen, lambda _n, out: kept.append(out.detach())):
                outs = [_probabilities(net(Xt[sl])) for sl in _chunks(Xt.shape[0], batch_size)]
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
    return BoundaryEvolution(
        epochs=np.asarray(epochs),
        probs=np.stack(frames),
        xx=xx,
        yy=yy,
        points=points,
        origin=origin,
        basis=basis,
        plane=kind,
        accuracy=np.asarray(accs) if labels is not None else None,
        hidden=np.stack(hidden) if chosen else None,
        hidden_layer=next(iter(chosen)) if chosen else None,
    )


__all__ = [
    "BoundaryEvolution",
    "BoundaryGrid",
    "GridWarp",
    "UnitMaps",
    "boundary_evolution",
    "decision_boundary",
    "grid_warp",
    "make_plane",
    "unit_maps",
]
