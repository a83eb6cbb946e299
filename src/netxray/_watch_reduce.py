"""The training thread's parameter reductions for a recorded step, batched: weight,
gradient, update and previous-weight norms in a few ``torch._foreach_*`` calls instead of
four small kernels per parameter (runs inside ``w.step()``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


def _norms(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norms of ``ts`` as float64 0-d tensors, one fused call per device and dtype."""
    if not ts:
        return []
    return [n.double() for n in torch._foreach_norm([t.detach() for t in ts])]


def param_norms(params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
                 prev: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``(params, 4)`` float64: weight, gradient, update (``W - W_prev``) and previous weight
    norms, NaN where missing. Batched (``torch._foreach_*``): a handful of kernels, not four
    per parameter. ``prev``'s tensors are overwritten (they hold ``W_prev - W`` after)."""
    dev = params[0][1].device
    if any(w.device != dev or (g is not None and g.device != dev) for _, w, g in params):
        dev = torch.device("cpu")  # parameters spread over devices: gather the norms here
    out = torch.full((len(params), 4), math.nan, dtype=torch.float64, device=dev)
    gi = [i for i, (_, _, g) in enumerate(params) if g is not None]
    pi = [i for i, (n, w, _) in enumerate(params)
          if n in prev and prev[n].shape == w.shape and prev[n].dtype == w.dtype
          and prev[n].device == w.device]
    before = [prev[params[i][0]] for i in pi]
    prev_norms = _norms(before)
    if before:  # in place: W_prev - W has the update's norm, and no new memory
        torch._foreach_sub_(before, [params[i][1].detach() for i in pi])
    cols = [(range(len(params)), _norms([w for _, w, _ in params])),
            (gi, _norms([params[i][2] for i in gi])),  # type: ignore[misc]
            (pi, _norms(before)), (pi, prev_norms)]
    for c, (rows, norms) in enumerate(cols):
        if norms:
            out[list(rows), c] = torch.stack([n.to(dev) for n in norms])
    return out
