"""One colour per class, the same wherever a class is drawn: the surface, the labelled points,
the predictions.

A class index ``c`` (an integer 0, 1, ...) always takes colour ``c``; a colour never depends on
which classes one array happens to hold (a model that never predicts class 1 would otherwise
shift every later class's colour in the prediction view).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def class_colors(n: int) -> np.ndarray:
    """``(n, 3)`` RGB, colour ``c`` for class ``c``: tab10 up to 10 classes, tab20 beyond."""
    import matplotlib.pyplot as plt

    if n <= 10:
        return np.asarray(plt.get_cmap("tab10").colors)[:n]
    return np.asarray(plt.get_cmap("tab20")(np.arange(n) % 20))[:, :3]


def _as_indices(values: np.ndarray) -> np.ndarray | None:
    """``values`` as int64 when every one is a whole number >= 0 (bools, ints, 0.0/1.0)."""
    if values.dtype.kind in "biu":
        out = values.astype(np.int64)
    elif values.dtype.kind == "f" and np.isfinite(values).all() and (values % 1 == 0).all():
        out = values.astype(np.int64)
    else:
        return None
    return out if (out >= 0).all() else None


def class_positions(*arrays: np.ndarray | None) -> dict[Any, int]:
    """Each class found in ``arrays`` (labels, predictions, ...) -> its colour position.

    Class indices keep their own number; other labels (strings, -1/+1) are numbered in the
    sorted order of all of them together, so every array gets the same colours."""
    found = [np.unique(a) for a in arrays if a is not None and len(a)]
    if not found:
        return {}
    values = np.unique(np.concatenate(found))  # (mixed kinds, e.g. names and ints: as str)
    idx = _as_indices(values)
    pos = {v.item(): int(i) for v, i in zip(values, idx if idx is not None
                                              else range(len(values)), strict=True)}
    for a in found:  # each array's own values, as they were before the common dtype
        for v in a:
            pos.setdefault(v.item(), pos[np.asarray(v).astype(values.dtype).item()])
    return pos


def class_columns(labels: np.ndarray, k: int, class_names: Sequence[str] | None,
                  what: str = "y") -> np.ndarray:
    """``labels`` as columns ``0..k-1`` of a model's ``k`` class outputs (the surface's colours).

    Integers are the columns themselves; strings are looked up in ``class_names``. Anything else
    (-1/+1, 1/2 for two classes) cannot be matched to a column without guessing: refused."""
    idx = _as_indices(labels)
    if idx is not None and (idx < k).all():
        return idx
    if class_names is not None and labels.dtype.kind in "US":
        names = [str(c) for c in class_names]
        if all(str(v) in names for v in np.unique(labels)):
            return np.asarray([names.index(str(v)) for v in labels], dtype=np.int64)
    seen = ", ".join(repr(v.item()) for v in np.unique(labels)[:6])
    raise ValueError(
        f"{what} holds {seen}, which are not class indices 0..{k - 1} of the model's {k} "
        "outputs, so their colours cannot be matched to the surface's; pass the index of each "
        "label's output (e.g. (y > 0).astype(int) for -1/+1, y - 1 for 1/2), or class_names "
        "and labels that are those names"
    )
