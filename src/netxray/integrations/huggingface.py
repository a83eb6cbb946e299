"""A HuggingFace ``transformers`` ``TrainerCallback`` that watches training into a run store.

>>> trainer = Trainer(model=model, args=args, train_dataset=ds,
...                   callbacks=[NetxrayTrainerCallback("runs/exp1", every=10)])
>>> trainer.train()

The watch opens at ``on_train_begin`` on the trainer's model and closes one step per
optimizer step at ``on_optimizer_step``: right after ``optimizer.step()``, while the
gradients are still there (the Trainer zeroes them before ``on_step_end``) and before the
learning-rate scheduler moves on. The Trainer does not hand callbacks the loss, so a
forward hook on the model keeps the ``loss`` of each training-mode output (the mean over
the micro-batches of a gradient-accumulation step). Forward passes in eval mode (the
Trainer's evaluation) are paused, so they never count as training statistics.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import torch

from netxray.integrations import require

_tf = require("transformers", "huggingface", "netxray.integrations.huggingface")

from netxray.monitor import Watch, watch  # noqa: E402


def _output_loss(out: Any) -> torch.Tensor | None:
    loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
    return loss.detach() if isinstance(loss, torch.Tensor) and loss.numel() == 1 else None


class NetxrayTrainerCallback(_tf.TrainerCallback):
    """Watch a ``transformers.Trainer`` run: ``run_dir`` and the keyword arguments are
    :func:`netxray.watch`'s (``every``, ``gradients``, ``layers``, ``alarms``, ...). The
    learning rate of the first parameter group is stored as metric ``lr``."""

    def __init__(self, run_dir: str | os.PathLike[str], *, every: int = 10,
                 **watch_kwargs: Any) -> None:
        self.run_dir, self.every, self.watch_kwargs = run_dir, every, watch_kwargs
        self.watch: Watch | None = None
        self._losses: list[torch.Tensor] = []
        self._stack: contextlib.ExitStack | None = None
        self._pause: contextlib.ExitStack | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        if model is None:
            raise ValueError("NetxrayTrainerCallback needs the Trainer's model (got none)")
        self._close(None)
        config = {"framework": "transformers", "model_type": getattr(model.config, "model_type", None)
                  if hasattr(model, "config") else None,
                  "gradient_accumulation_steps": args.gradient_accumulation_steps,
                  **dict(self.watch_kwargs.get("config") or {})}
        kw = {k: v for k, v in self.watch_kwargs.items() if k != "config"}
        stack = contextlib.ExitStack()
        try:
            self.watch = stack.enter_context(watch(model, self.run_dir, every=self.every,
                                                   config=config, **kw))
            pre = model.register_forward_pre_hook(self._before)
            stack.callback(pre.remove)
            post = model.register_forward_hook(self._after, always_call=True)
            stack.callback(post.remove)
        except BaseException:
            stack.close()
            self.watch = None
            raise
        self._stack = stack

    def _before(self, module: torch.nn.Module, _inputs: Any) -> None:
        if not module.training and self._pause is None and self.watch is not None:
            self._pause = contextlib.ExitStack()
            self._pause.enter_context(self.watch.paused())

    def _after(self, module: torch.nn.Module, _inputs: Any, out: Any) -> None:
        if self._pause is not None:
            self._pause.close()
            self._pause = None
        elif module.training:
            loss = _output_loss(out)
            if loss is not None:
                self._losses.append(loss)

    def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None,
                          **kwargs: Any) -> None:
        if self.watch is None:
            return
        losses, self._losses = self._losses, []
        loss = torch.stack(losses).float().mean() if losses else None
        metrics = {"lr": optimizer.param_groups[0]["lr"]} if optimizer is not None else None
        try:
            self.watch.step(loss=loss, metrics=metrics)
        except BaseException as e:  # e.g. a TrainingAlarm: the Trainer has no exception hook
            self._close(e)
            raise

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close(None)

    def close(self) -> None:
        """Remove the hooks and close the run store. The Trainer tells callbacks nothing when
        training fails outside them: call this in a ``finally`` if that can happen."""
        self._close(None)

    def _close(self, exc: BaseException | None) -> None:
        if self._pause is not None:
            self._pause.close()
            self._pause = None
        stack, self._stack, self.watch = self._stack, None, None
        self._losses = []
        if stack is not None:
            if exc is None:
                stack.close()
            else:
                stack.__exit__(type(exc), exc, None)
