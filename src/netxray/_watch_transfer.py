"""Moving one step's tensors: to the host without blocking, and across distributed ranks.

Both run on the training thread at ``w.step()``: ``to_host`` only starts GPU -> CPU copies
(the writer waits on the recorded CUDA event), ``reduce_across_ranks`` is one collective.
"""

from __future__ import annotations

from typing import Any

import torch

from netxray._watch_analysis import StepMsg


def to_host(msg: StepMsg) -> StepMsg:
    """Start the GPU -> CPU copies of ``msg``'s tensors (non-blocking) and record an event."""
    cuda = False

    def move(t: Any) -> Any:
        nonlocal cuda
        if isinstance(t, torch.Tensor) and t.is_cuda:
            cuda = True
            return t.to("cpu", non_blocking=True)
        return t

    msg.loss = move(msg.loss)
    msg.metrics = {k: move(v) for k, v in msg.metrics.items()}
    msg.sums = move(msg.sums)
    rec = msg.record
    if rec is not None:
        rec.states = {n: {k: move(v) for k, v in s.items()} for n, s in rec.states.items()}
        rec.grad_sq = {n: move(v) for n, v in rec.grad_sq.items()}
        rec.norms = move(rec.norms)
    if cuda:
        msg.event = torch.cuda.Event()
        msg.event.record()
    return msg


def reduce_across_ranks(msg: StepMsg, world: int) -> None:
        """Across ``torch.distributed`` ranks: loss averaged, layer sums and gradient sums of
        squares summed (unit statistics were merged with ``UnitStats.sync``)."""
        import torch.distributed as dist

        # NCCL reduces CUDA tensors only; gloo and MPI take CPU ones
        dev = (torch.device("cuda", torch.cuda.current_device())
               if dist.get_backend() == "nccl" else torch.device("cpu"))
        parts = [torch.as_tensor(float("nan") if msg.loss is None else msg.loss,
                                 dtype=torch.float64).reshape(1)]
        if msg.sums is not None:
            parts.append(msg.sums.double().cpu())
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
        if msg.sums is not None:
            k = msg.sums.numel()
            msg.sums, i = v[i:i + k], i + k
        if rec is not None and names:
            k = len(names)
            rec.grad_sq = {n: v[i + j] for j, n in enumerate(names)}
            rec.grad_n = {n: int(v[i + k + j]) for j, n in enumerate(names)}
        if rec is not None:
            total = torch.tensor([float(rec.batch)], dtype=torch.float64, device=dev)
            dist.all_reduce(total)
            rec.batch = int(total.item())
