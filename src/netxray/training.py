"""The small trainer behind ``netxray demo`` and the presets: classification by cross-entropy.

Full-batch gradient descent by default, which is the lecture's setup: with ``lr=0.2`` and
the lecture's initialisation its printed losses and accuracies come out to the digit.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import as_input_tensor, check_labels, model_device, n_classes_of, probe_model
from netxray._results import Result

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True, eq=False)
class TrainingHistory(Result):
    """Per-epoch curves (index ``i`` is epoch ``i + 1``) and saved weights.

    ``train_loss``/``train_acc``: the mean over the epoch's batches as they were computed,
    before each step (for full-batch training: the model at the start of the epoch, as the
    lecture prints it). ``test_loss``/``test_acc``: the model at the end of the epoch (empty
    lists without test data). ``checkpoints`` maps an epoch (0 = before training) to a copy
    of the state dict on the CPU.
    """

    epochs: list[int]
    train_loss: list[float]
    train_acc: list[float]
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """True when the training loss became NaN or infinite."""
        return any(not math.isfinite(v) for v in self.train_loss)

    def weights_before(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """The checkpoint to measure ``model``'s latest update against (update ratios): the
        latest one whose weights differ from the model's, i.e. the one before the last when
        ``model`` holds the last checkpoint's weights; None when no checkpoint differs."""
        now = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        for epoch in sorted(self.checkpoints, reverse=True):
            saved = self.checkpoints[epoch]
            if saved.keys() != now.keys() or not all(
                    saved[k].shape == v.shape and torch.equal(saved[k], v) for k, v in now.items()):
                return saved
        return None

    def to_dict(self) -> dict[str, object]:
        d = super().to_dict()
        d["checkpoints"] = sorted(self.checkpoints)  # epochs only: weights are not JSON data
        return d


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimizer :func:`train` uses for ``name`` (also the playground's)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``."""
    logits = model(X)
    loss = nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(dim=1) == y).double().mean().item()
    return loss, acc


def train(
    model: nn.Module,
    train_data: tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray],
    *,
    epochs: int,
    lr: float,
    optimizer: str = "sgd",
    batch_size: int | None = None,
    test_data: tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray] | None = None,
    checkpoints: Iterable[int] = (),
    seed: int = 0,
    progress: bool = False,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
    watch: Any = None,
) -> TrainingHistory:
    """Train a classifier on ``(X, y)`` with cross-entropy; return its :class:`TrainingHistory`.

    ``batch_size=None`` is full-batch gradient descent. ``checkpoints`` lists the epochs
    (0 = before the first step) whose weights to keep, for boundary evolution. Training
    goes on when the loss becomes NaN (so a diverging run can be diagnosed); the history's
    ``diverged`` says so. The model's train/eval mode is restored at the end. Before the
    first step, one pass of 8 samples checks that the model takes ``X`` ("the model cannot
    take inputs of shape ...") and outputs a class for every label ("training label 7 but the
    model outputs 3 classes").

    ``watch``: an open :func:`netxray.watch` on ``model``; every optimizer step ends with
    ``watch.step(loss=..., metrics={"acc": batch accuracy})``, and the input check and the
    test evaluation run inside ``watch.paused()``, so the run store sees training batches only.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    X = as_input_tensor(train_data[0], model, "training inputs")
    y = torch.as_tensor(train_data[1]).to(device=model_device(model), dtype=torch.long)
    if y.shape != (X.shape[0],):
        raise ValueError(f"training labels must be ({X.shape[0]},), got {tuple(y.shape)}")
    def quiet() -> Any:  # forward passes that are not training steps: the watch skips them
        return watch.paused() if watch is not None else contextlib.nullcontext()

    with quiet():
        k = n_classes_of(probe_model(model, X))  # one pass of 8 samples: shapes and classes
    check_labels(y, k, what="training label")
    test = None
    if test_data is not None:
        Xt = as_input_tensor(test_data[0], model, "test inputs")
        yt = torch.as_tensor(test_data[1]).to(device=model_device(model), dtype=torch.long)
        if yt.shape != (Xt.shape[0],):
            raise ValueError(f"test labels must be ({Xt.shape[0]},), got {tuple(yt.shape)}")
        with quiet():
            probe_model(model, Xt)
        check_labels(yt, k, what="test label")
        test = (Xt, yt)
    wanted = set(checkpoints)
    bad = [e for e in wanted if not 0 <= e <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs must be within 0..{epochs}, got {sorted(bad)}")
    opt = make_optimizer(optimizer, model.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    history: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    saved: dict[int, dict[str, torch.Tensor]] = {}
    if 0 in wanted:
        saved[0] = _state_copy(model)
    was_training = model.training
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="training", unit="epoch", leave=False)
    try:
        model.train()
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=gen).to(X.device) if bs < n else None
            total_loss, total_correct = 0.0, 0
            for start in range(0, n, bs):
                idx = None if order is None else order[start : start + bs]
                xb = X if idx is None else X[idx]
                yb = y if idx is None else y[idx]
                logits = model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                correct = int((logits.detach().argmax(dim=1) == yb).sum())
                if watch is not None:
                    watch.step(loss=loss.detach(), metrics={"acc": correct / xb.shape[0]})
                total_loss += loss.item() * xb.shape[0]
                total_correct += correct
            history["train_loss"].append(total_loss / n)
            history["train_acc"].append(total_correct / n)
            if test is not None:
                model.eval()
                with quiet():
                    tl, ta = evaluate(model, *test)
                model.train()
                history["test_loss"].append(tl)
                history["test_acc"].append(ta)
            if epoch in wanted:
                saved[epoch] = _state_copy(model)
            if on_epoch is not None:
                on_epoch(epoch, model)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}")
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
        opt.zero_grad(set_to_none=True)
    return TrainingHistory(
        epochs=list(range(1, epochs + 1)),
        checkpoints=saved,
        **history,
    )


def load_checkpoint(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` holding the weights ``state``; the original is untouched."""
    clone = copy.deepcopy(model)
    clone.load_state_dict(state)
    return clone
