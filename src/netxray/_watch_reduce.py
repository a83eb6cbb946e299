"""A recorded step's parameter reductions: weight, gradient, update and previous-weight
norms, and the previous weights they need. On the CPU the compiled loops of
:mod:`netxray.stats._fused_loops` read each weight and its previous copy once for all three
norms (copying the weights on the way when the next step needs them); elsewhere four
``torch._foreach_norm`` calls and one stack do, instead of several small kernels per
parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

#: what :func:`param_norms` puts where a norm is missing (no gradient, no previous weights):
#: a norm is never negative, and NaN or Inf is a real norm (of NaN or huge weights)
MISSING = -1.0


class PreviousWeights:
    """The weights before a recorded step's update, for its update ratios: copied at the
    end of the step before it (``keep``), handed over at the recorded step (``take``). At
    ``every=1`` the recorded step's own copies (the statistics thread's, or the buffers
    :func:`param_norms` refilled on the way) become the next step's (``hold``)."""

    def __init__(self) -> None:
        self.buffers: dict[str, torch.Tensor] = {}
        self.step = -2

    @torch.no_grad()
    def keep(self, step: int, weights: Mapping[str, torch.Tensor],
             copies: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None) -> None:
        """Copy ``weights`` as those of ``step``: into ``copies``' buffers if given, else into
        the last ones when they fit (one fused copy, no allocation)."""
        old, ws = self.buffers, [w.detach() for w in weights.values()]
        if not ws:  # (a model without parameters)
            self.buffers = {}
        elif copies is not None:
            self.buffers = dict(zip(weights, copies(ws), strict=True))
        elif old.keys() == weights.keys() and all(
                old[n].shape == w.shape and old[n].dtype == w.dtype and old[n].device == w.device
                for n, w in zip(weights, ws, strict=True)):
            torch._foreach_copy_(list(old.values()), ws)
        else:
            self.buffers = {n: w.clone() for n, w in zip(weights, ws, strict=True)}
        self.step = step

    def hold(self, step: int, copies: dict[str, torch.Tensor]) -> None:
        """Keep ``copies`` (made elsewhere, of the weights at the end of ``step``) as is."""
        self.buffers, self.step = copies, step

    def take(self, step: int, *, give_away: bool = False) -> dict[str, torch.Tensor]:
        """The weights of ``step - 1`` if kept (else ``{}``), for :func:`param_norms`, which
        overwrites them; ``give_away``: forget the buffers (another thread owns them now)."""
        prev = self.buffers if self.step == step - 1 else {}
        self.step = -2
        if give_away:
            self.buffers = {}
        return prev


Norm = torch.Tensor | float

_FUSED_DTYPES = (torch.float32, torch.float64)


def _fused(tensors: list[torch.Tensor]) -> bool:
    """Whether the compiled loops take these: contiguous float32/float64 CPU tensors
    (one read of each, against one pass per norm and per difference in PyTorch)."""
    return all(t.device.type == "cpu" and t.dtype in _FUSED_DTYPES and t.is_contiguous()
               and t.numel() > 0 for t in tensors)


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().view(-1).numpy()


def grad_norms(params: list[tuple[str, torch.Tensor, torch.Tensor | None]]) -> list[Norm | None]:
    """Each parameter's gradient norm (None: no gradient): floats from the compiled loops
    on the CPU, else 0-d tensors from one ``_foreach_norm``."""
    grads = [g.detach() for _, _, g in params if g is not None]
    if grads and _fused(grads):
        from netxray.stats import _fused_loops as loops

        norms: Any = iter([math.sqrt(loops.square_sum(_flat(g))) for g in grads])
    else:
        norms = iter(torch._foreach_norm(grads) if grads else [])
    return [None if g is None else next(norms) for _, _, g in params]


def _matching(params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
              prev: Mapping[str, torch.Tensor]) -> list[int]:
    """Indices of the parameters whose previous weights fit them."""
    return [i for i, (n, w, _) in enumerate(params)
            if n in prev and prev[n].shape == w.shape and prev[n].dtype == w.dtype
            and prev[n].device == w.device]


def fit_all(params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
            prev: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``prev`` holds a fitting buffer for every parameter (and nothing else)."""
    return len(prev) == len(params) == len(_matching(params, prev))


def param_norms(params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
                prev: Mapping[str, torch.Tensor], gradients: list[Norm | None] | None = None,
                *, keep: bool = False) -> torch.Tensor:
    """``(params, 4)`` float64: weight, gradient, update (``W - W_prev``) and previous weight
    norms, :data:`MISSING` where missing (no gradient, no previous weight). ``prev``'s tensors are
    overwritten: with ``keep``, each then holds its weights (the next step's previous
    weights), else what is left there is unspecified. ``gradients``: the
    :func:`grad_norms` taken already (then ``params``' gradients are not read)."""
    if gradients is None:
        gradients = grad_norms(params)
    pi = _matching(params, prev)
    weights = [w.detach() for _, w, _ in params]
    if weights and _fused(weights + [prev[params[i][0]] for i in pi]):
        return _fused_norms(params, prev, gradients, pi, keep)
    return _torch_norms(weights, [prev[params[i][0]] for i in pi], pi, gradients, keep)


def _fused_norms(params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
                 prev: Mapping[str, torch.Tensor], gradients: list[Norm | None], pi: list[int],
                 keep: bool) -> torch.Tensor:
    """:func:`param_norms` by the compiled loops: one read of each weight and previous
    weight for the three norms (and the copy, with ``keep``), sums in float64."""
    from netxray.stats import _fused_loops as loops

    rows = [[MISSING, MISSING if g is None else float(g), MISSING, MISSING] for g in gradients]
    matched = set(pi)
    for i, (n, w, _) in enumerate(params):
        if i in matched:
            sw, sp, sd = loops.square_sums(_flat(w), _flat(prev[n]), keep)
            rows[i][2], rows[i][3] = math.sqrt(sd), math.sqrt(sp)
        else:
            sw = loops.square_sum(_flat(w))
        rows[i][0] = math.sqrt(sw)
    return torch.tensor(rows, dtype=torch.float64)


def _tensor(norm: Norm | None) -> torch.Tensor:
    return norm if isinstance(norm, torch.Tensor) else torch.tensor(norm, dtype=torch.float64)


def _torch_norms(weights: list[torch.Tensor], before: list[torch.Tensor], pi: list[int],
                 gradients: list[Norm | None], keep: bool) -> torch.Tensor:
    """:func:`param_norms` in four ``torch._foreach_norm`` calls and one stack."""
    prev_norms = torch._foreach_norm(before) if before else []
    if before:  # in place: W_prev - W has the update's norm, and no new memory
        torch._foreach_sub_(before, [weights[i] for i in pi])
    gi = [i for i, n in enumerate(gradients) if n is not None]
    columns = [(range(len(weights)), torch._foreach_norm(weights)),
               (gi, [_tensor(gradients[i]) for i in gi]),
               (pi, torch._foreach_norm(before) if before else []), (pi, prev_norms)]
    if keep and before:
        torch._foreach_copy_(before, [weights[i] for i in pi])
    devices = {w.device for w in weights}
    dev = weights[0].device if len(devices) == 1 else torch.device("cpu")
    # float64 weights keep float64 norms; anything narrower is reduced in float32 or wider
    dtype = torch.float64 if any(w.dtype == torch.float64 for w in weights) else torch.float32
    missing = torch.full((), MISSING, dtype=dtype, device=dev)
    cells = []
    for rows, norms in columns:
        col = [missing] * len(weights)
        for i, n in zip(rows, norms, strict=True):
            col[i] = n.to(dev, dtype)
        cells += col
    # one stack and one conversion for all of them: (4, params) -> (params, 4)
    return torch.stack(cells).view(4, len(weights)).t().double()
