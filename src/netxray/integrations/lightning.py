"""A PyTorch Lightning callback that watches training into a netxray run store.

>>> trainer = lightning.Trainer(callbacks=[NetxrayCallback("runs/exp1", every=10)])
>>> trainer.fit(module, loader)
>>> run = netxray.open_run("runs/exp1")

The watch opens at ``on_train_start`` on the ``LightningModule`` itself, closes one step per
optimizer step (``on_train_batch_end`` at the accumulation boundary, with the step's loss:
the mean of its micro-batches' ``training_step`` losses, and the scalar ``callback_metrics``), pauses during validation, and closes at
``on_train_end``, on an exception, or at ``teardown``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import torch

from netxray.integrations import require

_pl = require("lightning.pytorch", "lightning", "netxray.integrations.lightning")

from netxray.monitor import Watch, watch  # noqa: E402


def _loss(outputs: Any) -> Any:
    """The loss of ``training_step``'s return value: a tensor or a mapping with ``loss``."""
    if isinstance(outputs, Mapping):
        return outputs.get("loss")
    return outputs if isinstance(outputs, torch.Tensor) else None


class NetxrayCallback(_pl.Callback):
    """Watch a Lightning training run: ``run_dir`` and the keyword arguments are
    :func:`netxray.watch`'s (``every``, ``gradients``, ``layers``, ``alarms``, ...).

    ``metrics=True`` also stores the scalar entries of ``trainer.callback_metrics`` (what
    ``self.log`` reported) with each step. Only the training forward passes are counted:
    validation runs inside ``Watch.paused``.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, every: int = 10,
                 metrics: bool = True, **watch_kwargs: Any) -> None:
        super().__init__()
        self.run_dir, self.every, self.metrics = run_dir, every, metrics
        self.watch_kwargs = watch_kwargs
        self.watch: Watch | None = None
        self._paused: contextlib.ExitStack | None = None
        self._loss: torch.Tensor | None = None

    # ------------------------------------------------------------------ lifecycle
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._close(None)
        config = {"framework": "lightning", "max_epochs": trainer.max_epochs,
                  "accumulate_grad_batches": trainer.accumulate_grad_batches,
                  **dict(self.watch_kwargs.get("config") or {})}
        kw = {k: v for k, v in self.watch_kwargs.items() if k != "config"}
        self.watch = watch(pl_module, self.run_dir, every=self.every, config=config,
                           **kw).__enter__()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.watch is None:
            return
        loss = _loss(outputs)  # Lightning's, divided by accumulate_grad_batches
        if loss is not None:
            loss = loss.detach()
            self._loss = loss if self._loss is None else self._loss + loss
        last = batch_idx + 1 == trainer.num_training_batches
        if (batch_idx + 1) % trainer.accumulate_grad_batches and not last:
            return  # not an optimizer step yet
        loss, self._loss = self._loss, None
        metrics = None
        if self.metrics:
            metrics = {k: v for k, v in trainer.callback_metrics.items()
                       if isinstance(v, torch.Tensor) and v.numel() == 1}
        self.watch.step(loss=loss, metrics=metrics)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if self.watch is not None and self._paused is None:
            self._paused = contextlib.ExitStack()
            self._paused.enter_context(self.watch.paused())

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self._paused is not None:
            self._paused.close()
            self._paused = None

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close(exception)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(None)

    def close(self) -> None:
        """Close the watch now (idempotent; the callbacks above call it for you)."""
        self._close(None)

    def _close(self, exc: BaseException | None) -> None:
        self.on_validation_end(None, None)
        w, self.watch = self.watch, None
        if w is not None:
            w.__exit__(None if exc is None else type(exc), exc, None)
