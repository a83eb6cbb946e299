"""Datasets: TensorFlow Playground's 2-D sets, scikit-learn's bundled sets, CSV and NPZ files,
and token ids for text models (:class:`TokenDataset`, :func:`load_tokens`, which live in
:mod:`netxray.text_data` and are reachable from here).

Everything is generated or ships inside an installed package: nothing is downloaded.
Each loader returns a :class:`Dataset` of NumPy arrays; ``Dataset.split`` gives train/test.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from netxray._results import Result


@dataclass(frozen=True, eq=False)
class Dataset(Result):
    """Features ``X`` ``(n, features)`` (images: ``(n, h, w)`` flattened unless asked),
    integer labels ``y`` ``(n,)``, and names for both."""

    X: np.ndarray
    y: np.ndarray
    name: str
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    image_shape: tuple[int, ...] | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.X.ndim != 2:
            raise ValueError(f"X must be (n, features), got shape {self.X.shape}")
        if self.y.shape != (self.X.shape[0],):
            raise ValueError(f"y must be ({self.X.shape[0]},), got shape {self.y.shape}")
        if not self.feature_names:
            object.__setattr__(
                self, "feature_names", tuple(f"x{i + 1}" for i in range(self.X.shape[1]))
            )
        if not self.class_names and len(self.y):
            object.__setattr__(
                self, "class_names", tuple(str(c) for c in range(int(self.y.max()) + 1))
            )

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return self.X.shape[0]

    def split(self, test_size: float = 0.3, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Train/test split with scikit-learn's ``train_test_split`` (the lecture's call)."""
        from sklearn.model_selection import train_test_split

        Xtr, Xte, ytr, yte = train_test_split(
            self.X, self.y, test_size=test_size, random_state=seed
        )
        return (
            replace(self, X=Xtr, y=ytr, name=f"{self.name} (train)"),
            replace(self, X=Xte, y=yte, name=f"{self.name} (test)"),
        )

    def tensors(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, y)`` as tensors: features in ``dtype``, labels as int64.

        ``X`` has the stored sample shape ``meta["input_shape"]`` when the data has one (an
        ``.npz`` of images for a CNN), else ``(n, features)``.
        """
        X = torch.as_tensor(self.X, dtype=dtype)
        shape = self.meta.get("input_shape")
        if shape is not None:
            X = X.reshape(len(self), *shape)  # type: ignore[misc]
        return X, torch.as_tensor(self.y, dtype=torch.long)


def standardize(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """Scale features to zero mean, unit variance using the *training* set's statistics."""
    mean = train.X.mean(axis=0)
    std = train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple(replace(d, X=(d.X - mean) / std) for d in (train, *others))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_sizes(n_samples: int, noise: float) -> None:
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def moons(n_samples: int = 400, noise: float = 0.25, seed: int = 5) -> Dataset:
    """Two interleaving half circles (scikit-learn's ``make_moons``; the lecture's data)."""
    from sklearn.datasets import make_moons

    _check_sizes(n_samples, noise)
    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return Dataset(X, y.astype(np.int64), "moons", class_names=("0", "1"))


def circles(n_samples: int = 400, noise: float = 0.1, seed: int = 0) -> Dataset:
    """A disc inside a ring (scikit-learn's ``make_circles``, factor 0.5)."""
    from sklearn.datasets import make_circles

    _check_sizes(n_samples, noise)
    X, y = make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=seed)
    return Dataset(X, y.astype(np.int64), "circles", class_names=("outer", "inner"))


def xor(n_samples: int = 400, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Points in the square [-1, 1]^2 labelled by the sign of x1 * x2 (Playground's XOR)."""
    _check_sizes(n_samples, noise)
    rng = _rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    # keep points off the axes so the classes are separable before noise, as Playground does
    X += np.sign(X) * 0.05
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    X = X + rng.normal(scale=noise, size=X.shape)
    return Dataset(X, y, "xor", class_names=("different sign", "same sign"))


def gaussians(n_samples: int = 400, noise: float = 0.5, seed: int = 0, centers: int = 2) -> Dataset:
    """``centers`` isotropic Gaussian blobs on a circle of radius 2, std ``noise``."""
    _check_sizes(n_samples, noise)
    if centers < 2:
        raise ValueError(f"centers must be >= 2, got {centers}")
    rng = _rng(seed)
    y = np.arange(n_samples) % centers
    rng.shuffle(y)
    angles = 2 * np.pi * np.arange(centers) / centers
    means = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    X = means[y] + rng.normal(scale=noise, size=(n_samples, 2))
    return Dataset(X, y.astype(np.int64), "gaussians")


def spiral(n_samples: int = 400, noise: float = 0.1, seed: int = 0, arms: int = 2) -> Dataset:
    """``arms`` interleaved spirals (Playground's spiral), one class per arm."""
    _check_sizes(n_samples, noise)
    if arms < 2:
        raise ValueError(f"arms must be >= 2, got {arms}")
    rng = _rng(seed)
    y = np.arange(n_samples) % arms
    t = rng.uniform(0.0, 1.0, size=n_samples)
    r = 0.1 + 0.9 * t
    theta = 1.75 * 2 * np.pi * t + 2 * np.pi * y / arms
    X = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    X = X + rng.normal(scale=noise * 0.5, size=X.shape)
    return Dataset(X, y.astype(np.int64), "spiral")


def _sklearn_bundle(name: str, loader: Callable[..., object], scale: float | None) -> Dataset:
    bunch = loader()
    X = np.asarray(bunch.data, dtype=np.float64)  # type: ignore[attr-defined]
    if scale is not None:
        X = X / scale
    return Dataset(
        X,
        np.asarray(bunch.target, dtype=np.int64),  # type: ignore[attr-defined]
        name,
        feature_names=tuple(str(f) for f in getattr(bunch, "feature_names", ())),
        class_names=tuple(str(c) for c in bunch.target_names),  # type: ignore[attr-defined]
    )


def digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = _sklearn_bundle("digits", load_digits, scale=16.0)
    return replace(d, image_shape=(8, 8))


def iris() -> Dataset:
    """scikit-learn's iris: 150 flowers, 4 measurements, 3 species."""
    from sklearn.datasets import load_iris

    return _sklearn_bundle("iris", load_iris, scale=None)


def wine() -> Dataset:
    """scikit-learn's wine: 178 wines, 13 chemical measurements, 3 cultivars."""
    from sklearn.datasets import load_wine

    return _sklearn_bundle("wine", load_wine, scale=None)


def breast_cancer() -> Dataset:
    """scikit-learn's breast cancer (Wisconsin): 569 tumours, 30 features, 2 classes."""
    from sklearn.datasets import load_breast_cancer

    return _sklearn_bundle("breast_cancer", load_breast_cancer, scale=None)


TOY: dict[str, Callable[..., Dataset]] = {
    "moons": moons,
    "circles": circles,
    "xor": xor,
    "gaussians": gaussians,
    "spiral": spiral,
}
BUNDLED: dict[str, Callable[[], Dataset]] = {
    "digits": digits,
    "iris": iris,
    "wine": wine,
    "breast_cancer": breast_cancer,
}


def names() -> list[str]:
    """Every dataset name :func:`load` accepts."""
    return [*TOY, *BUNDLED]


def load(name: str, **kwargs: object) -> Dataset:
    """A dataset by name (see :func:`names`), or a ``.csv``/``.npz`` file by path."""
    if name in TOY:
        return TOY[name](**kwargs)
    if name in BUNDLED:
        if kwargs:
            raise ValueError(f"{name} takes no options (got {sorted(kwargs)})")
        return BUNDLED[name]()
    if name.endswith((".csv", ".npz")):
        return load_csv(name, **kwargs) if name.endswith(".csv") else load_npz(name)  # type: ignore[arg-type]
    raise ValueError(f"unknown dataset {name!r}; choose one of {names()} or a .csv/.npz file")


def load_npz(path: str | os.PathLike[str]) -> Dataset:
    """An ``.npz`` with arrays ``X`` ``(n, ...)`` and ``y`` ``(n,)`` integer labels.

    ``X`` keeps its stored shape for the model: ``Dataset.X`` is ``(n, features)``, and
    :meth:`Dataset.tensors` gives ``(n, *meta["input_shape"])`` (e.g. ``(n, 1, 28, 28)``
    for a CNN). Images ``(n, h, w)`` or ``(n, 1, h, w)`` also get ``image_shape``.
    Loaded with ``allow_pickle=False``: object arrays are refused, never unpickled.
    """
    p = Path(path)
    arrays = _npz_arrays(p, ("X", "y"), "Save it with np.savez(path, X=features, y=labels)")
    X, y = arrays["X"], arrays["y"]
    if X.ndim == 0:
        raise ValueError(f"{p}: X is a single number; it must be (samples, features)")
    if X.ndim == 1:
        X = X[:, None]
    input_shape = tuple(int(s) for s in X.shape[1:]) if X.ndim > 2 else None
    image_shape = None
    if input_shape is not None and len(input_shape) in (2, 3) and input_shape[:-2] in ((), (1,)):
        image_shape = input_shape[-2:]  # one grey channel: drawn as an image
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{p}: X must be numeric, got dtype {X.dtype}")
    X = X.reshape(X.shape[0], -1).astype(np.float64)
    _check_finite_rows(X, p)
    meta: dict[str, object] = {} if input_shape is None else {"input_shape": input_shape}
    return Dataset(X, _labels(y, p), p.stem, image_shape=image_shape, meta=meta)


def load_csv(
    path: str | os.PathLike[str], label: str | int = -1, *, delimiter: str = ","
) -> Dataset:
    """A CSV with a header row; ``label`` names the label column (default: the last one).

    Labels are all numbers or all names. Numbers are compared as numbers, so ``2.0`` is
    class 2 (as in an ``.npz``); they must be whole and >= 0. Names are numbered in sorted
    order. A missing, NaN or infinite label, a fraction, or numbers mixed with names raise
    naming the row. Every other column must be numeric; a bad cell raises naming its row and
    column. A first row of numbers only is refused: it is data, not a header.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{p} is empty; expected a header row and data rows")
        header = [h.strip() for h in header]
        if all(_is_number(h) for h in header):
            raise ValueError(
                f"{p}: the first row ({', '.join(header[:4])}{', ...' if len(header) > 4 else ''})"
                " is all numbers, so it is data, not a header: netxray reads the first row as "
                "column names. Add a header row with a name for each column, e.g. "
                f"{','.join(f'x{i + 1}' for i in range(min(len(header) - 1, 3)))},label"
            )
        if isinstance(label, int):
            if not -len(header) <= label < len(header):
                raise ValueError(f"{p}: label column {label} out of range ({len(header)} columns)")
            li = label % len(header)
        elif label in header:
            li = header.index(label)
        else:
            raise ValueError(
                f"{p}: no label column {label!r}; columns are {header}. Name one with --label NAME (label=NAME in Python)"
            )
        feats = [i for i in range(len(header)) if i != li]
        if not feats:
            raise ValueError(f"{p}: only a label column; at least one feature column is needed")
        rows: list[list[float]] = []
        labels: list[tuple[int, str]] = []  # (row number in the file, the label cell)
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{p}, row {lineno}: {len(row)} cells, but the header has {len(header)}"
                )
            values = []
            for i in feats:
                cell = row[i].strip()
                try:
                    v = float(cell)
                except ValueError:
                    raise ValueError(
                        f"{p}, row {lineno}, column {header[i]!r}: {cell!r} is not a number"
                    ) from None
                if not math.isfinite(v):
                    raise ValueError(
                        f"{p}, row {lineno}, column {header[i]!r}: {cell!r} is not finite; "
                        "clean or impute it first"
                    )
                values.append(v)
            rows.append(values)
            labels.append((lineno, row[li].strip()))
    if not rows:
        raise ValueError(f"{p} has a header but no data rows")
    y, class_names = _encode_labels(labels, p, header[li])
    return Dataset(
        np.asarray(rows, dtype=np.float64),
        y,
        p.stem,
        feature_names=tuple(header[i] for i in feats),
        class_names=class_names,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _encode_labels(labels: Sequence[tuple[int, str]], p: Path,
                   column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and names of a CSV's label cells ``(row number, text)``.

    Numbers are compared as numbers (``"2.0"`` is class 2, as the same value in an ``.npz``,
    never the text sorted after ``"10.0"``); names are numbered in sorted order; a missing
    or non-finite label, or numbers mixed with names, is refused naming the row."""
    where = f"{p}, row {{}}, column {column!r}"
    numbers: list[tuple[int, str, float]] = []
    names: list[tuple[int, str]] = []
    for row, text in labels:
        if not text:
            raise ValueError(f"{where.format(row)}: the label is missing; every row needs a class")
        try:
            v = float(text)
        except ValueError:
            names.append((row, text))
            continue
        if not math.isfinite(v):
            raise ValueError(f"{where.format(row)}: the label {text!r} is not a class; "
                             "drop the row or give it its class")
        numbers.append((row, text, v))
    if numbers and names:
        (nrow, ntext, _), (srow, stext) = numbers[0], names[0]
        raise ValueError(
            f"{p}, column {column!r}: labels mix numbers (row {nrow}: {ntext!r}) and names "
            f"(row {srow}: {stext!r}); use one kind: class numbers 0..k-1, or names"
        )
    if names:
        classes = sorted({t for _, t in names})
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[t] for _, t in names], dtype=np.int64), tuple(classes)
    ints: list[int] = []
    for row, text, v in numbers:
        if v != math.floor(v):
            raise ValueError(f"{where.format(row)}: the label {text!r} is not a whole number; "
                             "a classifier needs class labels 0..k-1 (or names)")
        if v < 0:
            raise ValueError(f"{where.format(row)}: the label {text!r} is negative; class "
                             "labels are 0..k-1")
        try:
            ints.append(int(text))
        except ValueError:
            ints.append(int(v))  # "2.0", "1e1": the whole number it is
    return _labels(np.asarray(ints), p), ()


def _labels(y: np.ndarray, p: Path) -> np.ndarray:
    """Integer class labels from an array: whole floats become those ints (``2.0`` -> 2, as a
    CSV's ``2.0``); a NaN/Inf, a fraction or a negative label raises naming its index."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{p}: labels must be one per row, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating):
            raise ValueError(f"{p}: labels must be integers 0..k-1, got dtype {y.dtype}")
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.floor(y)))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"{p}: label y[{i}] is {float(y[i])!r}, not a class: labels must be whole "
                f"numbers 0..k-1 ({len(bad)} such label(s) in all)"
            )
        y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        i = int(np.argmin(y))
        raise ValueError(f"{p}: labels must be >= 0, found {int(y.min())} (y[{i}])")
    return y.astype(np.int64)


def _check_finite_rows(X: np.ndarray, p: Path) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"{p}: X[{r}, {c}] is {X[r, c]}; {int(bad.sum())} non-finite value(s) in all. "
            "Clean or impute them first"
        )


def _npz_arrays(p: Path, required: Sequence[str], save_hint: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``p`` (never unpickled), refusing one that lacks a
    ``required`` name, with errors that say how to save it right (``save_hint``)."""
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    try:
        with p.open("rb") as fh:  # ours to close, even when numpy gives up half way
            archive = np.load(fh, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError(f"{p} is a single .npy array, not an .npz archive. {save_hint}")
            with archive as f:
                missing = [k for k in required if k not in f.files]
                if missing:
                    raise ValueError(
                        f"{p} lacks array(s) {missing}; it has {f.files}. {save_hint}"
                    )
                arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(
                f"{p} is not an .npz archive of plain arrays: it holds pickled data (object "
                f"arrays, or another format), which netxray never unpickles. {save_hint}"
            ) from None
        if str(e).startswith(str(p)):
            raise
        raise ValueError(f"{p}: cannot read an array ({e}); is it truncated? {save_hint}") from e
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(
            f"{p} is not a readable .npz archive ({type(e).__name__}: {e}); is it truncated? "
            f"{save_hint}"
        ) from e
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise ValueError(
                f"{p}: member {name!r} is not a NumPy array (not in .npy format). {save_hint}"
            )
    return arrays


_TEXT_NAMES = ("TokenDataset", "is_token_file", "load_tokens", "read_vocab")


def __getattr__(name: str) -> object:
    """Token datasets live in :mod:`netxray.text_data`; ``netxray.data`` names them too."""
    if name in _TEXT_NAMES:
        from netxray import text_data

        return getattr(text_data, name)
    raise AttributeError(f"module 'netxray.data' has no attribute {name!r}")
