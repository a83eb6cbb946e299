"""The lecture's NumPy 2-10-2 ReLU MLP (seed_demo.py), trained as it does: an independent
reference for netxray's tests. NumPy and scikit-learn only: nothing here imports netxray.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

#: seed_demo.expected.txt, the lecture's own printout, kept here as data: the one place the
#: tests read the lecture's printed numbers from.
LECTURE_OUTPUT = """\
epoch 100 | loss 0.3270 | train acc 0.854
epoch 200 | loss 0.3057 | train acc 0.850
epoch 300 | loss 0.2969 | train acc 0.861

First two PCA components of hidden states (first 5 rows):
[[ 1.53146837 -0.839845  ]
 [-1.26497468  0.39839427]
 [-1.11865191  0.23210566]
 [ 1.05886699  0.46724442]
 [ 1.70560633  0.13048269]]

Saliency scores for first test point: [-0.10720718  0.11882685]
"""


def _printed_array(after: str, rows: int) -> np.ndarray:
    lines = LECTURE_OUTPUT.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    text = " ".join(lines[start:start + rows]).split(":", 1)[1] if rows == 1 else \
        " ".join(lines[start + 1:start + 1 + rows])
    return np.array([float(v) for v in text.replace("[", " ").replace("]", " ").split()])


#: the printed PCA coordinates of the first five training points, (5, 2)
PRINTED_PCA = _printed_array("First two PCA", 5).reshape(5, 2)
#: the printed saliency of the first test point, (2,)
PRINTED_SALIENCY = _printed_array("Saliency scores", 1)
#: the printed lines of one epoch each: (epoch, loss, train accuracy)
PRINTED_EPOCHS = [
    (int(m[0]), float(m[1]), float(m[2]))
    for m in re.findall(r"epoch (\d+) \| loss ([\d.]+) \| train acc ([\d.]+)", LECTURE_OUTPUT)
]


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
