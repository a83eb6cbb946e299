"""The plane through input space and the grid over it, shared by every boundary result.

``make_plane`` picks the plane (the input space itself for 2-D inputs, the top-2 PCA plane,
or the plane through three samples); the helpers lay a grid over the data's extent on it,
turn plane coordinates into model inputs, evaluate in bounded chunks, and turn logits into
class probabilities. ``_PlaneResult`` gives every result on a plane its ``to_plane``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import (
    MEMORY_FRACTION,
    as_input_tensor,
    gib,
    memory_bytes,
    model_device,
    model_dtype,
    output_tensor,
    probe_model,
)
from netxray._probabilities import to_probabilities, watch_head

PlaneSpec = str | tuple[Any, Any, Any]


def _flat_numpy(X: torch.Tensor | np.ndarray) -> np.ndarray:
    """``X`` as float64 ``(n, features)`` (a bfloat16 tensor, which NumPy lacks, included)."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().to(torch.float64).numpy()
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


def _axes(
    points: np.ndarray, resolution: int, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """The grid's ``u`` and ``v`` values: the points' extent plus ``margin`` on each side."""
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise TypeError(f"resolution must be an int, got {resolution!r}")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    lo, hi = points.min(0), points.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    return np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)


def _grid(points: np.ndarray, resolution: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    u, v = _axes(points, resolution, margin)
    return np.meshgrid(u, v)  # xx[i, j] = u[j], yy[i, j] = v[i]


def _valid_resolution(resolution: Any) -> int | None:
    """``resolution`` as an int when it is one the grid accepts, else None (``_axes`` then
    refuses it with its own message); for memory checks that must run before the grid."""
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        return None
    return int(resolution) if resolution >= 2 else None


#: Bytes each point of a ``resolution x resolution`` grid takes besides the results: its
#: coordinates ``xx`` and ``yy`` and the ``(u, v)`` pairs fed to the model, all float64.
GRID_BYTES = 32
#: One chunk's inputs may take at most this fraction of the device's memory (the model's
#: activations on the chunk come on top, often many times the inputs).
CHUNK_FRACTION = 1 / 64


def _check_memory(
    call: str, points: int, per_point: int, holds: str, fix: str, square: bool = True
) -> None:
    """Refuse, before any work, a result that would not fit: ``points`` grid points of
    ``per_point`` bytes each beyond a quarter of the machine's memory (the rule attribution
    uses). ``fix`` gets the largest ``resolution`` (``square``) or point count that fits."""
    need = points * per_point
    total = memory_bytes("cpu")
    limit = total * MEMORY_FRACTION
    if need <= limit:
        return
    fits = int(limit // per_point)
    most = math.isqrt(fits) if square else fits
    raise ValueError(
        f"{call} would need {gib(need)} to hold {holds}: more than a quarter of the "
        f"{gib(total)} of memory this machine has. {fix.format(most=most)}"
    )


def _chunk_size(model: nn.Module, batch_size: int, input_shape: tuple[int, ...]) -> int:
    """``batch_size``, lowered so that one chunk's inputs take at most :data:`CHUNK_FRACTION`
    of the device's memory (an image model at the default 65536 points per chunk would
    otherwise stack 39 GB of 3x224x224 inputs). Smaller chunks give the same result."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    per_point = math.prod(input_shape) * torch.empty((), dtype=model_dtype(model)).element_size()
    budget = int(memory_bytes(model_device(model)) * CHUNK_FRACTION)
    return max(1, min(int(batch_size), budget // max(1, per_point)))


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


def _probabilities(out: Any, kind: str) -> torch.Tensor:
    """``(batch, classes)`` probabilities of a model output (a tensor, a dict or HF output's
    ``logits``...) that holds ``kind`` (see :mod:`netxray._probabilities`)."""
    t = output_tensor(out)
    if t is None:
        raise TypeError("the model returned no tensor; a decision surface needs logits")
    if t.ndim not in (1, 2):
        raise ValueError(
            f"the model outputs shape {tuple(t.shape)}; a decision surface needs logits "
            "(batch, classes) or a single logit (batch,) / (batch, 1)"
        )
    return to_probabilities(t, kind)


def _to_plane(Xf: np.ndarray, origin: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return (Xf - origin) @ basis.T


def _inputs(model: nn.Module, X: Any) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, str]:
    """``X`` as the model's inputs, flattened for the plane, the model's output on its first
    8 samples and what that output holds (:func:`netxray._probabilities.watch_head`): one
    probe that turns torch's shape errors into "the model cannot take inputs of shape ...;
    it expects ..." before any grid is built."""
    Xt = as_input_tensor(X, model, "X")
    if Xt.ndim < 2:
        raise ValueError(
            f"X must have shape (samples, features...), got {tuple(Xt.shape)}; for one sample "
            "pass X[None], but a plane needs at least 2 samples"
        )
    with watch_head(model) as head:
        out = probe_model(model, Xt)
    return Xt, _flat_numpy(Xt), out, head.kind(out)


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


def _as_arrays(d: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Dicts of arrays as arrays again (JSON round trips turn them into lists)."""
    return {str(k): np.asarray(v) for k, v in d.items()}
