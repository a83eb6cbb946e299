"""Moving steps' tensors: gathered, to the host without blocking, and across ranks.

All of it runs on the training thread at ``w.step()``: :class:`PendingSteps` keeps the
unrecorded steps until they go to the writer as one :class:`StepBatch` (one stack of their
losses and layer sums instead of a message per step), ``to_host`` only starts GPU -> CPU
copies (the writer waits on the recorded CUDA event), the ``reduce_*`` functions are one
collective each.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from netxray._watch_analysis import StepBatch, StepMsg


def detach_value(v: Any) -> Any:
    """A loss or metric as the writer takes it: a 0-d tensor off the graph (the mean of a
    larger one), a float for NumPy values (their mean), a number or None as is; anything
    else is refused. Never a GPU sync. A tensor is copied: the writer reads it later, after
    the training loop may have changed it in place (a running counter, a reused buffer)."""
    if isinstance(v, torch.Tensor):
        if v.ndim == 0:  # (the usual loss: no reshape, each op costs ~10 us cold at a step)
            return v.detach().clone()
        return v.detach().reshape(()).clone() if v.numel() == 1 else v.detach().float().mean()
    if isinstance(v, np.ndarray | np.generic):
        a = np.asarray(v, dtype=np.float64)
        return float(a.reshape(())) if a.size == 1 else float(a.mean())  # (as a tensor's)
    if v is None or isinstance(v, numbers.Real):
        return v
    raise TypeError(f"a loss or metric must be a number, a tensor or a NumPy array, got "
                    f"{type(v).__name__}")


def _tensor(a: Any) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))


def logged_tensors(activations: Mapping[str, Any] | None, gradients: Mapping[str, Any] | None,
                   weights: Mapping[str, Any] | None) -> tuple[dict[str, torch.Tensor], ...]:
    """``Watch.log``'s arrays as tensors: ``(activations, weights, layer gradients, weight
    gradients)``, each gradient matched by name to a logged layer or weight."""
    acts = {n: _tensor(a) for n, a in (activations or {}).items()}
    for n, a in acts.items():
        if not a.is_floating_point():  # (a layer's output; an integer array is a mix-up)
            raise ValueError(f"activation {n!r} has dtype {a.dtype}; log the layer's "
                             "floating-point outputs")
    ws = {n: _tensor(w) for n, w in (weights or {}).items()}
    layer_grads, param_grads = {}, {}
    for n, g in (gradients or {}).items():
        if n in acts and n in ws:
            raise ValueError(f"{n!r} names both a layer and a weight; give them distinct names")
        if n in acts:
            layer_grads[n] = _tensor(g)
        elif n in ws:
            param_grads[n] = _tensor(g)
        else:
            raise ValueError(f"gradient {n!r} matches no activation ({', '.join(acts) or 'none'}) "
                             f"and no weight ({', '.join(ws) or 'none'}) logged at this step")
    return acts, ws, layer_grads, param_grads


def distributed() -> tuple[bool, int, int]:
    """``(initialized, rank, world size)`` of ``torch.distributed``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return True, dist.get_rank(), dist.get_world_size()
    return False, 0, 1


def stack_sums(sums: list[torch.Tensor]) -> torch.Tensor:
    """Unrecorded steps' layer sums as one float32 tensor (one copy to the host)."""
    return torch.stack([t.float() for t in sums])


class PendingSteps:
    """Unrecorded steps waiting to be sent: their number, time, loss, metrics, layer sums."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.times: list[float] = []
        self.losses: list[Any] = []
        self.metrics: list[Mapping[str, Any]] = []
        self.sums: list[list[tuple[str, torch.Tensor]]] = []

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, time: float, loss: Any, metrics: Mapping[str, Any],
            sums: list[tuple[str, torch.Tensor]]) -> None:
        self.steps.append(step)
        self.times.append(time)
        self.losses.append(loss)
        self.metrics.append(metrics)
        self.sums.append(sums)

    def take(self, *, stack: bool = True) -> StepBatch:
        """The steps so far as one batch (two stacks at most); empties this. ``stack=False``
        leaves the layer sums a list (the statistics thread fills and stacks them)."""
        losses: Any = self.losses
        kinds = {(t.device, t.dtype) if isinstance(t, torch.Tensor) and t.ndim == 0 else None
                 for t in losses}
        if None not in kinds and len(kinds) == 1:
            losses = torch.stack(losses)
        flat = [t for step in self.sums for _, t in step]
        batch = StepBatch(steps=self.steps, times=self.times, losses=losses,
                          metrics=[dict(m) for m in self.metrics],
                          sum_layers=[[n for n, _ in step] for step in self.sums],
                          sums=(stack_sums(flat) if stack else flat) if flat else None)
        self.clear()
        return batch


def _mover() -> tuple[Any, Any]:
    """``move(t)``: a CUDA tensor's non-blocking copy to the host (anything else as is),
    and ``finish(msg)``: record an event on ``msg`` if anything moved."""
    cuda = False

    def move(t: Any) -> Any:
        nonlocal cuda
        if isinstance(t, torch.Tensor) and t.is_cuda:
            cuda = True
            return t.to("cpu", non_blocking=True)
        return t

    def finish(msg: Any) -> Any:
        if cuda:
            msg.event = torch.cuda.Event()
            msg.event.record()
        return msg

    return move, finish


def to_host(msg: StepMsg | StepBatch) -> StepMsg | StepBatch:
    """Start the GPU -> CPU copies of ``msg``'s tensors (non-blocking) and record an event."""
    move, finish = _mover()
    if isinstance(msg, StepBatch):
        msg.losses = move(msg.losses) if isinstance(msg.losses, torch.Tensor) else [
            move(v) for v in msg.losses]
        msg.metrics = [{k: move(v) for k, v in m.items()} for m in msg.metrics]
        msg.sums = move(msg.sums)
        return finish(msg)
    msg.loss = move(msg.loss)
    msg.metrics = {k: move(v) for k, v in msg.metrics.items()}
    rec = msg.record
    if rec is not None:
        rec.states = {n: {k: move(v) for k, v in s.items()} for n, s in rec.states.items()}
        rec.grad_sq = {n: move(v) for n, v in rec.grad_sq.items()}
        rec.norms = move(rec.norms)
    return finish(msg)


def _reduce_device() -> torch.device:
    import torch.distributed as dist

    # NCCL reduces CUDA tensors only; gloo and MPI take CPU ones
    return (torch.device("cuda", torch.cuda.current_device())
            if dist.get_backend() == "nccl" else torch.device("cpu"))


def reduce_batch_across_ranks(b: StepBatch, world: int) -> None:
    """Across ``torch.distributed`` ranks: losses averaged, layer sums summed (a NaN on any
    rank is a NaN in the sum). Every rank sends after the same steps, so the shapes agree."""
    import torch.distributed as dist

    losses = torch.tensor([float("nan") if v is None else float(v) for v in b.losses],
                          dtype=torch.float64)
    sums = b.sums.double().cpu() if b.sums is not None else torch.zeros(0, dtype=torch.float64)
    v = torch.cat([losses, sums]).to(_reduce_device())
    dist.all_reduce(v)
    v = v.cpu()
    n = len(b.steps)
    b.losses = [None if orig is None else float(x) / world
                for orig, x in zip(b.losses, v[:n].tolist(), strict=True)]
    b.sums = v[n:] if b.sums is not None else None


def reduce_across_ranks(msg: StepMsg, world: int) -> None:
    """Across ``torch.distributed`` ranks: loss averaged, gradient sums of squares
    summed (unit statistics were merged with ``UnitStats.sync``)."""
    import torch.distributed as dist

    dev = _reduce_device()
    parts = [torch.as_tensor(float("nan") if msg.loss is None else msg.loss,
                             dtype=torch.float64).reshape(1)]
    rec = msg.record
    names = sorted(rec.grad_sq) if rec is not None else []
    if names:
        parts.append(torch.stack([rec.grad_sq[n].double().cpu() for n in names]))
        parts.append(torch.tensor([float(rec.grad_n[n]) for n in names], dtype=torch.float64))
    v = torch.cat([p.double().cpu().reshape(-1) for p in parts]).to(dev)
    dist.all_reduce(v)
    v = v.cpu()
    msg.loss = None if msg.loss is None else float(v[0]) / world
    i = 1
    if rec is not None and names:
        k = len(names)
        rec.grad_sq = {n: v[i + j] for j, n in enumerate(names)}
        rec.grad_n = {n: int(v[i + k + j]) for j, n in enumerate(names)}
    if rec is not None:
        total = torch.tensor([float(rec.batch)], dtype=torch.float64, device=dev)
        dist.all_reduce(total)
        rec.batch = int(total.item())
