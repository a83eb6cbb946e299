"""Training curves: loss and accuracy per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class TrainingCurvesDisplay:
    """Train/test loss (left) and accuracy (right) against the epoch."""

    def __init__(
        self,
        epochs: Sequence[int],
        train_loss: Sequence[float],
        train_acc: Sequence[float],
        test_loss: Sequence[float] = (),
        test_acc: Sequence[float] = (),
    ) -> None:
        self.epochs = np.asarray(epochs)
        self.train_loss, self.train_acc = np.asarray(train_loss), np.asarray(train_acc)
        self.test_loss, self.test_acc = np.asarray(test_loss), np.asarray(test_acc)
        n = len(self.epochs)
        for name in ("train_loss", "train_acc"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {n} epochs")
        for name in ("test_loss", "test_acc"):
            if len(getattr(self, name)) not in (0, n):
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {n} epochs")

    @classmethod
    def from_result(cls, history: Any) -> TrainingCurvesDisplay:
        """From a :class:`netxray.TrainingHistory`."""
        return cls(history.epochs, history.train_loss, history.train_acc,
                   history.test_loss, history.test_acc)

    def plot(self, ax: Any = None) -> TrainingCurvesDisplay:
        """``ax``: None (a new figure) or two axes (loss, accuracy)."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
        ax_loss, ax_acc = ax
        ax_loss.plot(self.epochs, self.train_loss, color="#1f77b4", label="train")
        ax_acc.plot(self.epochs, self.train_acc, color="#1f77b4", label="train")
        if len(self.test_loss):
            ax_loss.plot(self.epochs, self.test_loss, color="#ff7f0e", ls="--", label="test")
            ax_acc.plot(self.epochs, self.test_acc, color="#ff7f0e", ls="--", label="test")
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        for a in (ax_loss, ax_acc):
            a.grid(alpha=0.3)
            a.legend(frameon=False)
        self.ax_ = ax
        self.figure_ = ax_loss.figure
        return self
