"""The watch's statistics thread: the reductions of every step, computed on a spare CPU
core instead of the training thread.

With ``torch.set_num_threads(n)`` below the cores the process may use, one core sits idle
while PyTorch trains. On a recorded step the training thread then only copies what the
reductions read (each watched output and the weights: one memory copy each, a fraction of
what reducing them costs; of each gradient it takes the norm, one read) into reused
buffers and stages the copies; at ``w.step()`` the step's work goes into the queue as one
item (each wake-up of this thread takes the GIL from the training thread; a sum, below,
goes at once). This thread
folds the copies into each layer's :class:`~netxray.stats.UnitStats` and the parameter
norms, puts the results into the step's message and passes it on to the writer. At
``every=1`` the weight copies, once read, become the next step's previous weights (no
second copy). On the other steps it takes the sum of each watched output of
``MIN_HANDED_BYTES`` or more (the NaN/Inf check) from the output itself: an output changed
in place before it is read is detected (its version counter moved) and warned about, and
that layer's sums go back to the training thread. Every message reaches the writer through
here, so their order is kept. At most ``max_steps`` recorded steps wait here; beyond that
the training thread waits: statistics are never dropped, and the copies held stay bounded.
Results are the same kernels on the same values, so they equal the inline ones (to the last
bit with the same thread count).
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch

from netxray._warnings import NetxrayWarning
from netxray._watch_analysis import LayerMeta, Recorded, StepBatch, StepMsg
from netxray._watch_reduce import grad_norms, param_norms
from netxray._watch_transfer import stack_sums
from netxray._watch_writer import Flush, release_flushes
from netxray.stats import Scratch, UnitStats


def spare_core() -> bool:
    """Whether PyTorch's threads leave at least one of this process's cores idle."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        cores = os.cpu_count() or 1
    return torch.get_num_threads() < cores


class _Buffers:
    """Copy buffers handed back and forth between the threads: a fresh activation-sized
    tensor per copy would pay its page faults every time (about twice the copy)."""

    def __init__(self) -> None:
        self._free: dict[tuple[Any, ...], list[torch.Tensor]] = {}
        self._lock = threading.Lock()

    def copies(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Contiguous copies of ``tensors`` (one fused copy)."""
        out = []
        with self._lock:
            for t in tensors:
                free = self._free.get((t.shape, t.dtype, t.device))
                out.append(free.pop() if free else None)
        out = [torch.empty(t.shape, dtype=t.dtype, device=t.device) if b is None else b
               for t, b in zip(tensors, out, strict=True)]
        if out:
            torch._foreach_copy_(out, tensors)
        return out

    def give(self, tensors: list[torch.Tensor]) -> None:
        with self._lock:
            for t in tensors:
                self._free.setdefault((t.shape, t.dtype, t.device), []).append(t)


_CLOSE = object()

#: Outputs smaller than this are summed on the training thread: handing one over (a queue
#: item, a wake-up) costs the training thread more than the sum (measured on this project's
#: 2-core VM, MLP 784-512-256-10, batch 256, 1 thread: 1.036x of plain training with every
#: sum handed over, 1.018x with none; the small CNN's 6-13 MB outputs: 1.045x handed over,
#: 1.069x summed inline).
MIN_HANDED_BYTES = 2 << 20


class StatsWorker:
    """Per-layer statistics of queued copies; every method here is for the training thread."""

    def __init__(self, forward: Callable[[Any], None], *, max_steps: int = 2,
                 max_held: int = 64 << 20, min_handed: int | None = None) -> None:
        self._forward = forward
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(max_steps)
        self._units: dict[str, UnitStats] = {}
        self._in_place: set[str] = set()  # layers whose output changed before _sum read it
        self._warned: set[str] = set()
        self._held, self.max_held = 0, max_held  # bytes of outputs waiting for their sum
        self.min_handed = MIN_HANDED_BYTES if min_handed is None else min_handed
        self._lock = threading.Lock()
        self._staged: list[Any] = []  # this step's work, queued in one put (one wake-up)
        self.buffers = _Buffers()
        self._scratch = Scratch()  # this thread's own work buffers
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="netxray-watch-stats",
                                        daemon=True)
        self._thread.start()

    def update(self, meta: LayerMeta, x: torch.Tensor) -> None:
        """Stage a copy of ``x`` (one call of layer ``meta.name`` in a recorded step)."""
        self._staged.append((self._update, meta, self.buffers.copies([x.detach()])[0]))

    def sum(self, name: str, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """A 0-d tensor that will hold ``x.sum(dtype=dtype)`` (an unrecorded step's check
        of layer ``name`` for NaN/Inf) once this thread gets to it; ``x`` itself is read
        there, not a copy. None (the caller sums) for an output under ``min_handed`` bytes,
        while outputs waiting here hold more than ``max_held`` bytes, and, after a warning,
        for a layer whose output was changed in place before it was read: its sums are the
        caller's from then on. (None too for an inference tensor: it has no version counter
        to tell.)"""
        size = x.numel() * x.element_size()
        if size < self.min_handed or x.is_inference():
            return None
        with self._lock:
            if name not in self._in_place and self._held + size <= self.max_held:
                self._held += size
                slot = torch.empty((), dtype=dtype)
                self._staged.append((self._sum, name, x, x._version, slot))
                # at once, not at w.step(): a large output held past its backward keeps the
                # next forward from reusing its memory (fresh pages, each faulted in):
                # measured 1.12x against 1.01x of plain training on the small CNN
                self.dispatch()
                return slot
        if name in self._in_place:
            if name not in self._warned:
                self._warned.add(name)
                warnings.warn(
                    f"netxray watch: layer {name!r}'s output is changed in place after its "
                    "forward call (an in-place op on it); its NaN/Inf check on unrecorded steps "
                    "runs on the training thread from now on, and may have read the changed "
                    "values once", NetxrayWarning, stacklevel=4)
        return None

    def param_norms(self, rec: Recorded, params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
                    prev: dict[str, torch.Tensor], *, keep_weights: bool = False
                    ) -> dict[str, torch.Tensor] | None:
        """Set ``rec.norms`` (see :func:`param_norms`) from copies of the weights taken now,
        and the gradients' norms, taken now too (reading a gradient once costs less than
        copying it). ``prev``'s buffers (taken from ``buffers``) become this thread's.
        ``keep_weights``: return the weight copies instead of reusing them (the next step's
        previous weights: this thread only reads them first)."""
        weights = self.buffers.copies([w for _, w, _ in params])
        gradients = grad_norms(params)
        copied = [(n, w, None) for (n, _, _), w in zip(params, weights, strict=True)]
        self._staged.append((self._norms, rec, copied, prev, gradients, keep_weights))
        return {n: w for (n, _, _), w in zip(params, weights, strict=True)} if keep_weights else None

    def dispatch(self) -> None:
        """Queue what was staged since the last call, as one item: the thread wakes once
        a step, not once per layer (each wake-up takes the GIL from the training thread)."""
        if self._staged:
            self._q.put(self._staged)
            self._staged = []

    def put(self, msg: Any) -> None:
        """Pass ``msg`` on to the writer after everything staged before it. A recorded
        step's message gets the states of the layers updated here since the last one, and
        is queued at once with the step's work; anything else waits for the next
        :meth:`dispatch`."""
        recorded = isinstance(msg, StepMsg) and msg.record is not None
        if recorded:
            while not self._slots.acquire(timeout=0.1):  # (wait while max_steps are queued)
                if not self._thread.is_alive():
                    return
        self._staged.append(msg)
        if recorded:
            self.dispatch()

    def flush(self) -> None:
        """Block until everything queued so far has been passed on."""
        self.dispatch()
        f = Flush()
        self._q.put(f)
        f.wait(self._thread)

    def close(self) -> None:
        """Pass on everything queued, then stop the thread."""
        if self._thread.is_alive():
            self.dispatch()
            self._q.put(_CLOSE)
            self._thread.join()

    # ---------------------------------------------------------------- this thread
    def _run(self) -> None:
        try:
            while True:
                item = self._q.get()
                if item is _CLOSE:
                    return
                for one in item if isinstance(item, list) else (item,):  # (a staged step)
                    if isinstance(one, Flush):
                        one.done.set()
                    elif isinstance(one, tuple):  # (work, *its arguments)
                        with torch.no_grad():
                            one[0](*one[1:])
                    else:
                        self._pass_on(one)
        except BaseException as e:  # surfaced on the training thread at its next step()
            self.error = e
            release_flushes(self._q)  # nobody may wait on what will never be passed on

    def _update(self, meta: LayerMeta, x: torch.Tensor) -> None:
        us = self._units.get(meta.name)
        if us is None:
            us = self._units[meta.name] = meta.unit_stats()
        us.update(x, scratch=self._scratch)
        self.buffers.give([x])

    def _norms(self, rec: Recorded, params: list[tuple[str, torch.Tensor, torch.Tensor | None]],
               prev: dict[str, torch.Tensor], gradients: list[torch.Tensor | None],
               kept: bool) -> None:
        rec.norms = param_norms(params, prev, gradients)
        if not kept:
            self.buffers.give([w for _, w, _ in params])
        self.buffers.give(list(prev.values()))

    def _sum(self, name: str, x: torch.Tensor, version: int, slot: torch.Tensor) -> None:
        slot.copy_(x.sum(dtype=slot.dtype))
        with self._lock:
            self._held -= x.numel() * x.element_size()
            if x._version != version:  # changed in place since its forward call: warn, stop
                self._in_place.add(name)

    def _pass_on(self, msg: Any) -> None:
        rec = msg.record if isinstance(msg, StepMsg) else None
        if rec is not None:
            states = {}
            for name in rec.calls:  # forward order of first call, as the inline states
                us = self._units.get(name)
                if name in rec.states:
                    states[name] = rec.states[name]
                elif us is not None and us.state is not None:
                    states[name] = us.state
                    us.reset()
            rec.states = states
            self._slots.release()
        if isinstance(msg, StepBatch) and isinstance(msg.sums, list):
            msg.sums = stack_sums(msg.sums)  # (each filled by _sum, queued before this)
        self._forward(msg)
