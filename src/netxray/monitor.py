"""Watch a training run: layer and unit health at every k-th step into a run store, with alarms.

>>> with netxray.watch(model, "runs/exp1", every=10) as w:
...     for x, y in loader:
...         loss = loss_fn(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
...         w.step(loss=loss)
>>> run = netxray.open_run("runs/exp1")

Forward hooks exist only inside the ``with`` block. On a recorded step (every ``every``-th
call of ``step``) they reduce each layer's output with :class:`netxray.stats.UnitStats`
(per-unit activity and saturation, one layer histogram) and hook the output's gradient; on
the other steps they take one sum per layer output, which is enough to name the layer where
NaN/Inf start. ``step()`` adds parameter norms and update ratios, and hands everything to a
background writer: no GPU sync on the training thread (but to pick real tokens out of a
padded batch). When a CPU core is idle, the reductions run there instead (``_watch_worker``).
Unrecorded steps go to the writer in batches (every 32 steps, at a recorded step, or after
0.25 s), so they cost a sum per layer and a list append. Models that are not
``nn.Module``s log arrays with :meth:`Watch.log`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from netxray._checks import check_initialised
from netxray._outputs import Packed
from netxray._reading import Reader, first_size, grad_rows
from netxray._warnings import NetxrayWarning
from netxray._watch_alarms import Alarm, deliver, raise_failure
from netxray._watch_alarms import TrainingAlarm as TrainingAlarm  # (its public home)
from netxray._watch_analysis import LayerMeta, Recorded, StepAnalysis, StepBatch, StepMsg
from netxray._watch_args import check_log_step, check_watch_args
from netxray._watch_reduce import PreviousWeights, fit_all, param_norms
from netxray._watch_snapshot import probe_snapshot
from netxray._watch_transfer import (
    PendingSteps,
    detach_value,
    distributed,
    logged_tensors,
    reduce_across_ranks,
    reduce_batch_across_ranks,
    to_host,
)
from netxray._watch_worker import StatsWorker, spare_core
from netxray._watch_writer import Writer
from netxray.families import DEFAULT_HIST_RANGES
from netxray.health import Thresholds
from netxray.layers import _CALL_NAME, check_ran
from netxray.stats import Scratch, UnitStats, activation_family, saturation_band
from netxray.store import RunDB, run_file

#: Unrecorded steps go to the writer together: after this many, at the next recorded step,
#: or (single process) after this many seconds, so that a NaN alarm is never late for long.
_SEND_STEPS, _SEND_SECONDS = 32, 0.25
#: The dtype an output is summed in for the NaN/Inf check (half types overflow at 65504).
_SUM_DTYPE = {torch.float16: torch.float32, torch.bfloat16: torch.float32,
              torch.float32: torch.float32, torch.float64: torch.float64}


class Watch:
    """A watch over one training run; see :func:`watch`. Use it as a context manager."""

    def __init__(self, model: nn.Module | None, path: str | os.PathLike[str], *, every: int,
                 gradients: bool, layers: Any, snapshot_every: int | None, probe: Any,
                 alarms: str | Alarm, bins: int, thresholds: Thresholds | None,
                 alarm_severity: str, config: Mapping[str, Any] | None, overwrite: bool,
                 snapshot_resolution: int, commit_interval: float,
                 drop_snapshots: bool = True, stats_thread: bool | None = None) -> None:
        check_watch_args(model, every=every, snapshot_every=snapshot_every, probe=probe,
                         alarms=alarms, bins=bins)
        from netxray.capture import select_layers

        self.model = model
        self.path = run_file(path)
        self.every, self.gradients, self.bins = every, gradients, bins
        self.snapshot_every, self.probe = snapshot_every, probe
        self.alarms, self.thresholds, self.alarm_severity = alarms, thresholds, alarm_severity
        self.snapshot_resolution, self.commit_interval = snapshot_resolution, commit_interval
        self.drop_snapshots, self.stats_thread = drop_snapshots, stats_thread
        self.chosen = select_layers(model, layers) if model is not None else {}
        self._reader = Reader(model, self.chosen) if model is not None else None
        self._dims = ({n: lay.unit_dim for n, lay in self._reader.layouts.layouts.items()}
                      if self._reader is not None else {})
        self._config = {"every": every, "gradients": gradients, "bins": bins,
                        "layers": list(self.chosen), "snapshot_every": snapshot_every,
                        "model": type(model).__name__ if model is not None else None,
                        **dict(config or {})}
        self._overwrite = overwrite
        self._stack: contextlib.ExitStack | None = None
        self._writer: Writer | None = None
        self._worker: StatsWorker | None = None
        self._distributed, self._rank, self._world = False, 0, 1
        self._metas: dict[str, LayerMeta] = {}
        self._new: list[LayerMeta] = []
        self._units: dict[str, UnitStats] = {}
        self._calls: dict[str, int] = {}
        self._batch = 0
        self._grad_sq: dict[str, torch.Tensor] = {}
        self._grad_n: dict[str, int] = {}
        self._handles: list[Any] = []
        self._sums: list[tuple[str, torch.Tensor]] = []
        self._pending = PendingSteps()
        self._sent = time.monotonic()
        self._prev = PreviousWeights()
        self._last_log = -1
        self._step = 0
        self._recording = True
        self._paused = False
        self._scratch: Scratch | None = None
        self._runs: dict[str, int] = {}  # {module: most calls per forward} (call_hooks)
        self._ran_checked = False
        self.closed = False

    # ------------------------------------------------------------------- lifecycle
    def __enter__(self) -> Watch:
        from netxray.capture import call_hooks

        check_initialised(self.model, "watch()")  # (before the store is created)
        self._distributed, self._rank, self._world = distributed()
        self._scratch = Scratch()  # work buffers, reused by every inline reduction
        stack = contextlib.ExitStack()
        try:
            if self._rank == 0:
                db = RunDB(self.path, overwrite=self._overwrite)
                stack.callback(self._close_writer)
                db.set_config(self._config)
                analysis = StepAnalysis(db, thresholds=self.thresholds, level=self.alarm_severity)
                self._writer = Writer(db, analysis, commit_interval=self.commit_interval,
                                      drop_snapshots=self.drop_snapshots)
                if self.model is not None and not self._distributed and (
                        spare_core() if self.stats_thread is None else self.stats_thread):
                    self._worker = StatsWorker(self._writer.put)
                    stack.callback(self._worker.close)  # (before the writer's: its errors too)
            if self.model is not None:
                handle = self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True)
                stack.callback(handle.remove)
                self._runs = stack.enter_context(call_hooks(self.model, self.chosen, self._on_call))
                stack.enter_context(self._reader.hooks())  # type: ignore[union-attr]
                stack.callback(self._remove_tensor_hooks)
                self._copy_weights(-1)  # step 0 is recorded: its update ratio needs these
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(_deliver=exc_type is None)

    def close(self, *, _deliver: bool = True) -> None:
        """Remove every hook, flush the writer and close the store (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._stack is not None:
            try:  # (after an error, other ranks may never reach the batch's collective)
                if _deliver or not self._distributed:
                    self._send_pending()
            finally:  # hooks come off whatever happened
                self._stack.close()
        if _deliver:
            self._deliver()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close({"status": "closed", "steps": self._step})
            self._check()

    def flush(self) -> None:
        """Wait until every step so far is committed to the store, then fire its alarms."""
        self._send_pending()
        if self._worker is not None:
            self._worker.flush()
        if self._writer is not None:
            self._writer.flush()
        self._check()
        self._deliver()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Forward passes inside this block (evaluation, a probe) are not recorded."""
        was, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = was

    @property
    def dropped_snapshots(self) -> int:  # (see Writer.take_snapshot)
        return 0 if self._writer is None else self._writer.dropped

    # --------------------------------------------------------------------- hooks
    def _module(self, name: str) -> nn.Module | None:
        call = _CALL_NAME.fullmatch(name)  # a later call of a shared module: that module
        return self.chosen.get(name) or (self.chosen.get(call[1]) if call else None)

    def _meta(self, name: str, t: torch.Tensor, family: str | None = None) -> LayerMeta:
        module = self._module(name)
        fam = family or (activation_family(module) if module is not None else "linear")
        if fam not in DEFAULT_HIST_RANGES:
            raise ValueError(
                f"family of {name!r} must be one of {tuple(DEFAULT_HIST_RANGES)}, got {fam!r}")
        dim = self._dims.get(name, 1)
        units = 1 if t.ndim < 2 else int(t.shape[dim])
        meta = LayerMeta(name=name, module_type=type(module).__name__ if module is not None else "array",
                         family=fam, unit_dim=dim, units=units, shape=tuple(t.shape[1:]),
                         saturation=saturation_band(fam), hist_range=DEFAULT_HIST_RANGES[fam],
                         bins=self.bins)
        self._metas[name] = meta
        self._new.append(meta)
        return meta

    def _on_forward(self, _module: nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        """Keep this forward's attention mask (``model(..., attention_mask=m)``; padding
        never counts in the statistics of per-token layers) and batch size (see
        :mod:`netxray._reading`)."""
        m = kwargs.get("attention_mask") if kwargs else None
        mask = m.detach().bool() if isinstance(m, torch.Tensor) and m.ndim == 2 else None
        self._reader.begin(mask, first_size(args, kwargs))  # type: ignore[union-attr]

    def _on_call(self, name: str, out: torch.Tensor, own: torch.Tensor | None,
                 packed: Packed | None) -> None:
        """One call of a watched module (``relu``, ``relu#1`` for a shared one), read
        batch-first; a per-token output keeps its real tokens only (:mod:`netxray._reading`)."""
        if self._paused:
            return
        reader = self._reader
        assert reader is not None
        if not self._recording and own is None and reader.plain(name):
            acc = _SUM_DTYPE.get(out.dtype)  # (a view needs no aligning for a sum)
            if acc is not None:
                return self._check_finite(name, out.detach(), acc)
        got = reader.watched(name, out, own, packed, pick=self._recording)
        if got is not None:  # (unrecorded: the NaN check sums real tokens, no picking)
            self._on_output(name, got[0], grad_of=got[1])

    def _on_output(self, name: str, out: torch.Tensor, family: str | None = None,
                   grad_of: tuple[torch.Tensor, Any] | None = None) -> None:
        if self._paused or not out.is_floating_point():
            return
        d = out.detach()  # (so the sum below builds no graph, without no_grad's cost)
        if not self._recording:  # a recorded step counts NaN/Inf per unit: no sum needed
            return self._check_finite(name, d, _SUM_DTYPE.get(d.dtype, d.dtype))
        meta = self._metas.get(name) or self._meta(name, d, family)
        meta.check_units(d)
        if self._worker is not None and d.device.type == "cpu":  # (as _offload, fewer ops)
            self._worker.update(meta, d)  # a copy, reduced on the spare core
        else:
            us = self._units.get(name)
            if us is None:
                us = self._units[name] = meta.unit_stats()
            us.update(d, scratch=self._scratch)
        if not self._calls:
            self._batch = int(d.shape[0]) if d.ndim else 1
        self._calls[name] = self._calls.get(name, 0) + 1
        source, how = grad_of if grad_of is not None else (out, None)
        if self.gradients and source.requires_grad:
            self._handles.append(source.register_hook(functools.partial(self._on_grad, name, how)))

    def _check_finite(self, name: str, d: torch.Tensor, acc: torch.dtype) -> None:
        """An unrecorded step's NaN/Inf check of one output: its sum (few ops: on every step
        each costs microseconds, its code cold after the layers' kernels)."""
        w = self._worker
        slot = (w.sum(name, d, acc) if w is not None and d.nbytes >= w.min_handed
                and d.device.type == "cpu" else None)
        self._sums.append((name, d.sum(dtype=acc) if slot is None else slot))

    def _on_grad(self, name: str, how: Any, g: torch.Tensor) -> None:
        g = g.detach() if how is None else grad_rows(g.detach(), how)
        if g.dtype in (torch.float16, torch.bfloat16):
            g = g.float()  # half squares overflow
        n2 = torch.linalg.vector_norm(g).square()
        if name in self._grad_sq:
            self._grad_sq[name] = self._grad_sq[name] + n2
            self._grad_n[name] += g.numel()
        else:
            self._grad_sq[name], self._grad_n[name] = n2, g.numel()

    def _remove_tensor_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # ---------------------------------------------------------------------- steps
    def _params(self) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
        assert self.model is not None
        return [(n, p, p.grad) for n, p in self.model.named_parameters()  # (read in no_grad)
                if p.is_floating_point()]

    def _copy_weights(self, step: int, weights: Mapping[str, torch.Tensor] | None = None) -> None:
        if self._prev.step == step:  # (every=1: the statistics thread's copies of this step)
            return
        if weights is None:
            if self.model is None:
                return
            weights = {n: w for n, w, _ in self._params()}
        self._prev.keep(step, weights, copies=self._worker.buffers.copies if self._offload(
            weights.values()) else None)

    def _offload(self, tensors: Any) -> bool:
        """Whether the statistics thread reduces these (CPU tensors, when it runs)."""
        return self._worker is not None and all(t.device.type == "cpu" for t in tensors)

    def step(self, loss: Any = None, metrics: Mapping[str, Any] | None = None) -> None:
        """Close the current training step: call it once per step, after ``optimizer.step()``.

        ``loss``: the step's loss (a tensor is fine: it is read on the writer thread);
        ``metrics``: name -> number or 0-d tensor. Alarms raised by earlier steps fire here.
        """
        self._require_open()
        if self.model is None:
            raise TypeError("this watch has no model: log arrays with w.log(step, ...)")
        self._finish(self._step, loss, metrics, params=self._params() if self._recording else None)
        if (self.snapshot_every and self.probe is not None and self._writer is not None
                and self._step % self.snapshot_every == 0):
            self._writer.snapshot(self._step, self._snapshot)
        self._advance(self._step + 1)
        if self._recording:
            self._copy_weights(self._step - 1)

    def log(self, step: int, *, activations: Mapping[str, Any] | None = None,
            gradients: Mapping[str, Any] | None = None, weights: Mapping[str, Any] | None = None,
            loss: Any = None, metrics: Mapping[str, Any] | None = None,
            families: Mapping[str, str] | None = None) -> None:
        """Log one step of a model that is not an ``nn.Module`` (arrays or tensors).

        ``activations``: layer name -> ``(batch, units)`` (or ``(batch, channels, ...)``);
        ``gradients``: name -> the loss gradient of a layer output (keyed like
        ``activations``) or of a weight (keyed like ``weights``); ``weights``: parameter name
        -> array; ``families``: layer name -> ``relu``/``rectifier``/``tanh``/``sigmoid``/
        ``linear`` (default ``linear``; ``relu`` makes units able to die). Steps must
        increase; statistics are kept on steps divisible by ``every``, the loss on all.
        """
        self._require_open()
        check_log_step(step, self._last_log)
        acts, ws, layer_grads, param_grads = logged_tensors(activations, gradients, weights)
        self._last_log = step  # (a refused call changes nothing)
        self._advance(step)
        for n, a in acts.items():
            self._on_output(n, a, (families or {}).get(n))
        if self._recording:
            for n, g in layer_grads.items():
                self._on_grad(n, None, g)
        params = [(n, w, param_grads.get(n)) for n, w in ws.items()] if self._recording else None
        self._finish(step, loss, metrics, params=params)
        if ws and (step + 1) % self.every == 0:
            self._copy_weights(step, ws)

    def _require_open(self) -> None:
        if self._stack is None or self.closed:
            raise RuntimeError("this watch is not open: use it as `with netxray.watch(...) as w:` "
                               "and call w.step()/w.log() inside the block")

    def _advance(self, step: int) -> None:
        self._check()
        self._deliver()
        self._step = step
        self._recording = step % self.every == 0

    def _finish(self, step: int, loss: Any, metrics: Mapping[str, Any] | None,
                params: list[tuple[str, torch.Tensor, torch.Tensor | None]] | None) -> None:
        loss = detach_value(loss)
        metrics = {k: detach_value(v) for k, v in metrics.items()} if metrics else {}
        if not self._recording:
            self._pending.add(step, time.time(), loss, metrics, self._sums)
            self._sums = []
            if len(self._pending) >= _SEND_STEPS or (
                    not self._distributed and time.monotonic() - self._sent > _SEND_SECONDS):
                self._send_pending()
            if self._worker is not None:  # the step's sums (and steps to send): one hand-off
                self._worker.dispatch()
            return
        self._send_pending()
        with torch.no_grad():  # small kernels: autograd's checks would cost more than they do
            record = self._take_record(step, params)
        msg = StepMsg(step=step, time=time.time(), loss=loss, metrics=metrics, record=record)
        msg.new_layers, self._new = self._new, []
        if self._distributed:
            reduce_across_ranks(msg, self._world)
        self._put(to_host(msg))

    def _put(self, msg: StepMsg | StepBatch) -> None:
        """To the writer (through the statistics thread, if any, which keeps the order)."""
        sink = self._worker or self._writer
        if sink is not None:
            sink.put(msg)

    def _send_pending(self) -> None:
        """Hand the unrecorded steps so far to the writer, as one batch."""
        self._sent = time.monotonic()
        if not len(self._pending):
            return
        batch = self._pending.take(stack=self._worker is None)  # (else the worker stacks)
        if self._distributed:
            reduce_batch_across_ranks(batch, self._world)
        self._put(to_host(batch))

    def _check_ran(self, step: int) -> None:
        """Warn, once, about selected layers that did not run in the first recorded step
        that ran the model (``"relu#5"`` of a module called twice): the run would hold
        nothing for them, without a word."""
        if self._ran_checked or not self._calls or self.model is None:
            return
        self._ran_checked = True
        try:
            check_ran(self.chosen, self._calls, self._runs)
        except ValueError as e:
            warnings.warn(f"netxray.watch, step {step} (the first recorded one): {e}. The "
                          "run holds no statistics for them while they do not run.",
                          NetxrayWarning, stacklevel=5)

    def _take_record(self, step: int, params: list[Any] | None) -> Recorded:
        self._check_ran(step)
        states = {}
        for name in list(self._calls):
            us = self._units.get(name)  # (None: reduced on the statistics thread)
            if us is not None and us.state is not None:
                if self._distributed:
                    us.sync()
                states[name] = us.state
                us.reset()
        rec = Recorded(batch=self._batch, states=states, calls=self._calls,
                       grad_sq=self._grad_sq, grad_n=self._grad_n)
        self._calls, self._grad_sq, self._grad_n = {}, {}, {}
        self._remove_tensor_hooks()
        if params:
            if self._offload(w for _, w, _ in params):  # copies now, norms there
                assert self._worker is not None
                kept = self._worker.param_norms(rec, params, self._prev.take(step, give_away=True),
                                                keep_weights=self.every == 1)
                if kept is not None:  # they are the next step's previous weights too
                    self._prev.hold(step, kept)
            else:  # at every=1 the previous weights' buffers take these weights on the way
                prev, keep = self._prev.take(step), self.every == 1
                rec.norms = param_norms(params, prev, keep=keep)
                if keep and fit_all(params, prev):
                    self._prev.hold(step, prev)
            rec.params = [(n, tuple(w.shape)) for n, w, _ in params]
        return rec

    def _snapshot(self) -> list[tuple[str, str, Any]]:
        assert self.model is not None
        with self.paused():
            return probe_snapshot(self.model, self.probe, list(self.chosen),
                                  self.snapshot_resolution)

    # --------------------------------------------------------------------- alarms
    def _check(self) -> None:
        raise_failure(self._worker, self._writer)

    def _deliver(self) -> None:
        if self._writer is not None:
            deliver(self._writer, self.alarms, stacklevel=3)  # (as when it warned itself)


def watch(model: nn.Module | None, path: str | os.PathLike[str], *, every: int = 10,
          gradients: bool = True, layers: Any = None, snapshot_every: int | None = None,
          probe: Any = None, alarms: str | Alarm = "warn", bins: int = 32,
          thresholds: Thresholds | None = None, alarm_severity: str = "warning",
          config: Mapping[str, Any] | None = None, overwrite: bool = False,
          snapshot_resolution: int = 64, commit_interval: float = 0.5,
          drop_snapshots: bool = True, stats_thread: bool | None = None) -> Watch:
    """Watch ``model`` while you train it; write a run store at ``path`` (``runs/exp1`` ->
    ``runs/exp1/run.sqlite``; a path ending in ``.sqlite`` is the file itself).

    ``every``: record statistics on every ``every``-th ``step()`` (the loss on every step);
    ``gradients``: also the RMS of each layer output's gradient; ``layers``: as
    :func:`netxray.select_layers` (default: the activation modules); ``snapshot_every`` and
    ``probe`` (a batch ``(n, ...)`` or ``(X, y)``): every K steps store the probe's hidden
    states, and for 2-D inputs the decision surface and unit maps; ``alarms``: ``"warn"``
    (a ``NetxrayWarning``), ``"raise"`` (:class:`TrainingAlarm`) or a callable
    ``(finding, step)``, fired once per problem of at least ``alarm_severity``;
    ``bins``: layer histogram bins (0: none); ``config``: anything JSON-able to store with
    the run; ``drop_snapshots``: skip (and count) a snapshot while two are still being
    written, so a slow disk never stalls training; ``False`` waits instead and keeps them all.
    ``stats_thread``: reduce a recorded step's CPU activations on a thread of their own, from
    a copy (same numbers; default: when PyTorch's threads leave a core idle, not with
    ``torch.distributed``).
    ``model=None``: log arrays with :meth:`Watch.log`.
    """
    return Watch(model, path, every=every, gradients=gradients, layers=layers,
                 snapshot_every=snapshot_every, probe=probe, alarms=alarms, bins=bins,
                 thresholds=thresholds, alarm_severity=alarm_severity, config=config,
                 overwrite=overwrite, snapshot_resolution=snapshot_resolution,
                 commit_interval=commit_interval, drop_snapshots=drop_snapshots,
                 stats_thread=stats_thread)
