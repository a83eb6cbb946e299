"""A recorded step's parameter reductions, batched: weight, gradient, update and
previous-weight norms in four ``torch._foreach_norm`` calls and one stack, instead of
several small kernels per parameter; and the previous weights they need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch


class PreviousWeights:
    """The weights before a recorded step's update, for its update ratios: copied at the
    end of the step before it (``keep``), handed over at the recorded step (``take``)."""

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


def grad_norms(params: list[tuple[str, torch.Tensor, torch.Tensor | None]]
               ) -> list[torch.Tensor | None]:
    """Each parameter's gradient norm (None: no gradient), in one ``_foreach_norm``."""
    grads = [g.detach() for _, _, g in params if g is not None]
    norms = iter(torch._foreach_norm(grads) if grads else [])
    return [None if g is None else next(norms) for _, _, g in params]


def param_norms(params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
                prev: Mapping[str, torch.Tensor],
                gradients: list[torch.Tensor | None] | None = None) -> torch.Tensor:
    """``(params, 4)`` float64: weight, gradient, update (``W - W_prev``) and previous weight
    norms, NaN where missing (no gradient, no previous weight). ``prev``'s tensors are
    overwritten (they hold ``W_prev - W`` after). ``gradients``: the :func:`grad_norms`
    taken already (then ``params``' gradients are not read)."""
    weights = [w.detach() for _, w, _ in params]
    if gradients is None:
        gradients = grad_norms(params)
    gi = [i for i, n in enumerate(gradients) if n is not None]
    pi = [i for i, (n, w, _) in enumerate(params)
          if n in prev and prev[n].shape == w.shape and prev[n].dtype == w.dtype
          and prev[n].device == w.device]
    before = [prev[params[i][0]] for i in pi]
    prev_norms = torch._foreach_norm(before) if before else []
    if before:  # in place: W_prev - W has the update's norm, and no new memory
        torch._foreach_sub_(before, [weights[i] for i in pi])
    columns = [(range(len(params)), torch._foreach_norm(weights)),
               (gi, [gradients[i] for i in gi]),
               (pi, torch._foreach_norm(before) if before else []), (pi, prev_norms)]
    devices = {w.device for w in weights}
    dev = weights[0].device if len(devices) == 1 else torch.device("cpu")
    # float64 weights keep float64 norms; anything narrower is reduced in float32 or wider
    dtype = torch.float64 if any(w.dtype == torch.float64 for w in weights) else torch.float32
    nan = torch.full((), math.nan, dtype=dtype, device=dev)
    cells = []
    for rows, norms in columns:
        col = [nan] * len(params)
        for i, n in zip(rows, norms, strict=True):
            col[i] = n.to(dev, dtype)
        cells += col
    # one stack and one conversion for all of them: (4, params) -> (params, 4)
    return torch.stack(cells).view(4, len(params)).t().double()
