"""The lecture's NumPy 2-10-2 ReLU MLP (seed_demo.py), trained as it does: an independent
reference for netxray's tests. NumPy and scikit-learn only: nothing here imports netxray.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Lecture(NamedTuple):
    """Trained weights (``W1`` (2, 10), ``W2`` (10, 2): ``x @ W1 + B1``), the lecture's splits
    (targets one-hot, (n, 2)) and the training loss before each epoch's update."""

    W1: np.ndarray
    B1: np.ndarray
    W2: np.ndarray
    B2: np.ndarray
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    losses: list[float]


def train_lecture(epochs: int = 300) -> Lecture:
    """seed_demo.py's data, initialisation and full-batch gradient descent (lr 0.2).

    The loss is the exact cross-entropy (the lecture adds 1e-8 inside the log, for printing
    only; it does not enter the updates).
    """
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(5)
    X, y = make_moons(n_samples=400, noise=0.25, random_state=5)
    y_onehot = np.eye(2)[y]
    X_train, X_test, y_train, y_test = train_test_split(X, y_onehot, test_size=0.3, random_state=5)
    W1 = rng.normal(scale=0.4, size=(2, 10))
    B1 = np.zeros(10)
    W2 = rng.normal(scale=0.4, size=(10, 2))
    B2 = np.zeros(2)
    lr = 0.2
    losses = []
    for _ in range(epochs):
        z1 = X_train @ W1 + B1
        a1 = np.maximum(0, z1)
        logits = a1 @ W2 + B2
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        losses.append(float(-np.mean(np.sum(y_train * np.log(probs), axis=1))))
        grad_logits = (probs - y_train) / len(X_train)
        grad_W2 = a1.T @ grad_logits
        grad_B2 = grad_logits.sum(axis=0)
        grad_z1 = (grad_logits @ W2.T) * (z1 > 0)
        grad_W1 = X_train.T @ grad_z1
        grad_B1 = grad_z1.sum(axis=0)
        W2 -= lr * grad_W2
        B2 -= lr * grad_B2
        W1 -= lr * grad_W1
        B1 -= lr * grad_B1
    return Lecture(W1, B1, W2, B2, X_train, X_test, y_train, y_test, losses)
