"""What each layer knows: activation maps, linear probes and CKA similarity between layers.

- :func:`activation_map`: samples sorted by class x units ordered by hierarchical clustering,
  with per-class mean activations and a class-selectivity index per unit.
- :func:`linear_probes`: how linearly decodable the labels are from each layer
  (cross-validated logistic regression), against the majority-class rate.
- :func:`cka` / :func:`cka_matrix`: linear centered kernel alignment (Kornblith et al. 2019),
  biased or debiased, between two representations of the same samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from netxray._results import Result
from netxray.projection import as_features


def _labels(y: Any, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot, as in the lecture
        y = y.argmax(1)
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise ValueError(
            f"y has {y.shape[0]} labels but there are {n} samples; pass one per sample"
        )
    return y


def _layer_dict(acts: Any) -> dict[str, Any]:
    layers = getattr(acts, "layers", acts)  # an Activations result or a plain mapping
    if not isinstance(layers, Mapping) or not layers:
        raise TypeError(
            "pass activations as a non-empty dict {layer name: (n, features) array}, "
            "or the result of netxray.activations(...)"
        )
    return dict(layers)


# --------------------------------------------------------------------------------------
# Activation maps


@dataclass(frozen=True, eq=False)
class ActivationMap(Result):
    """Data for a class-sorted activation heatmap.

    values: ``(n, units)`` activations with rows in ``sample_order`` (grouped by class) and
    columns in ``unit_order`` (similar units side by side): ready to draw as is.
    sample_order ``(n,)``, unit_order ``(units,)``: indices into the original samples/units.
    labels: ``(n,)`` class of each row of ``values``. classes: ``(c,)`` the distinct labels.
    class_means: ``(c, units)`` mean activation per class, columns in ORIGINAL unit order.
    selectivity: ``(units,)`` class-selectivity index per unit (original order), see
    :func:`activation_map`. preferred_class: ``(units,)`` the class with the largest mean.
    """

    values: np.ndarray
    sample_order: np.ndarray
    unit_order: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    class_means: np.ndarray
    selectivity: np.ndarray
    preferred_class: np.ndarray


def selectivity_index(class_means: np.ndarray) -> np.ndarray:
    """Class selectivity (Morcos et al. 2018): ``(mu_max - mu_rest) / (mu_max + mu_rest)``.

    ``class_means``: ``(classes, units)``. ``mu_max`` is a unit's largest class mean and
    ``mu_rest`` the mean of its other class means. 0: the unit responds equally to every
    class; 1: only to one. Meant for non-negative (ReLU-family) activations; a unit silent
    for every class (a dead unit) gets 0. Signed activations should be shifted or read with
    care: the index is unbounded when the denominator nears 0.
    """
    m = np.asarray(class_means, dtype=np.float64)
    c = m.shape[0]
    if c < 2:
        return np.zeros(m.shape[1])
    top = m.max(0)
    rest = (m.sum(0) - top) / (c - 1)
    denom = top + rest
    out = np.zeros_like(top)
    ok = np.abs(denom) > 1e-12
    out[ok] = (top[ok] - rest[ok]) / denom[ok]
    return out


def _cluster_order(H: np.ndarray) -> np.ndarray:
    """Leaves of an average-linkage clustering of units by the correlation of their responses."""
    units = H.shape[1]
    if units < 3:
        return np.arange(units)
    from scipy.cluster.hierarchy import leaves_list, linkage

    Z = H.astype(np.float64)
    Z = Z - Z.mean(0)
    sd = np.sqrt((Z**2).mean(0))
    Z = np.divide(Z, sd, out=np.zeros_like(Z), where=sd > 0)  # constant (dead) units -> 0
    # Euclidean distance of standardised columns is sqrt(2 n (1 - r)): correlation distance
    # that is still defined for dead units.
    link = linkage(Z.T, method="average", metric="euclidean", optimal_ordering=True)
    return leaves_list(link).astype(np.int64)


def activation_map(
    H: torch.Tensor | np.ndarray, y: Any, *, cluster_units: bool = True
) -> ActivationMap:
    """Arrange activations ``H`` ``(n, units)`` by class (rows) and by similarity (columns).

    Rows are grouped by label (stable within a class); units are ordered by average-linkage
    hierarchical clustering of their correlation over samples (``cluster_units=False`` keeps
    their order). Also returns each class's mean activation and each unit's class
    selectivity (:func:`selectivity_index`). Conv maps ``(n, c, h, w)`` are flattened.
    """
    X = as_features(H)
    labels = _labels(y, X.shape[0])
    classes, inverse = np.unique(labels, return_inverse=True)
    sample_order = np.argsort(inverse, kind="stable")
    unit_order = _cluster_order(X) if cluster_units else np.arange(X.shape[1])
    class_means = np.stack([X[inverse == k].mean(0) for k in range(len(classes))]).astype(
        np.float64
    )
    return ActivationMap(
        values=X[sample_order][:, unit_order],
        sample_order=sample_order,
        unit_order=unit_order,
        labels=labels[sample_order],
        classes=classes,
        class_means=class_means,
        selectivity=selectivity_index(class_means),
        preferred_class=classes[class_means.argmax(0)],
    )


# --------------------------------------------------------------------------------------
# Linear probes


@dataclass(frozen=True, eq=False)
class ProbeResult(Result):
    """Cross-validated linear-probe accuracy per layer (layers in the order given).

    accuracy / std: ``{layer: mean / standard deviation of the fold accuracies}``.
    folds: ``{layer: [accuracy of each fold]}``. chance: the majority-class rate.
    n_groups: the number of groups the folds kept whole (the sequences of per-token
    activations), 0 when rows were split one by one.
    """

    layers: list[str]
    accuracy: dict[str, float]
    std: dict[str, float]
    folds: dict[str, list[float]]
    chance: float
    cv: int
    n_samples: int
    n_groups: int = 0


def linear_probes(
    activations: Mapping[str, Any] | Any,
    y: Any,
    cv: int = 5,
    *,
    C: float = 1.0,
    max_iter: int = 2000,
    random_state: int = 0,
    groups: Any = None,
) -> ProbeResult:
    """Fit a logistic-regression probe on each layer and report cross-validated accuracy.

    ``activations``: ``{layer: (n, features)}`` (tensors or arrays; conv maps flattened) or
    the result of :func:`netxray.activations`. The probe is scikit-learn's
    ``make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))``, scored
    with ``StratifiedKFold(cv, shuffle=True, random_state=random_state)``: the same folds for
    every layer, so layers are compared on equal terms.

    Rows that belong together must not be split between training and test folds: tokens of
    one sentence share its context, so a probe would recognise the sentence, not decode the
    label. ``groups`` ``(n,)`` names each row's group; per-token activations (an
    ``Activations`` with ``token_index``) are grouped by their sequence by default. Grouped
    rows are scored with ``StratifiedGroupKFold(cv, shuffle=True,
    random_state=random_state)``, every group whole in one fold.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    layers = _layer_dict(activations)
    feats = {name: as_features(a, f"activations[{name!r}]") for name, a in layers.items()}
    n = next(iter(feats.values())).shape[0]
    for name, a in feats.items():
        if a.shape[0] != n:
            raise ValueError(
                f"layer {name!r} has {a.shape[0]} samples but others have {n}; "
                "record every layer on the same data"
            )
    token_layers = getattr(activations, "token_layers", ())
    if token_layers and len(y) != n:
        raise ValueError(
            f"these activations have one row per real token ({n} rows in "
            f"{token_layers[0]!r}) but y has one label per sequence; record them with "
            "netxray.activations(..., pool='mean') (or 'first') for one row per sequence, or "
            "pass one label per token"
        )
    labels = _labels(y, n)
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise ValueError("y has a single class: a probe needs at least two classes")
    if counts.min() < cv:
        raise ValueError(
            f"the rarest class has {counts.min()} samples, fewer than cv={cv} folds; "
            "lower cv or pass more data"
        )
    group_ids = _groups(activations, groups, n, token_layers)
    if group_ids is None:
        splitter: Any = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    else:
        _check_groups(labels, group_ids, cv)
        splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=random_state)
    acc: dict[str, float] = {}
    std: dict[str, float] = {}
    folds: dict[str, list[float]] = {}
    for name, X in feats.items():
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        scores = cross_val_score(probe, X, labels, cv=splitter, groups=group_ids)
        acc[name] = float(scores.mean())
        std[name] = float(scores.std())
        folds[name] = [float(s) for s in scores]
    return ProbeResult(
        layers=list(feats),
        accuracy=acc,
        std=std,
        folds=folds,
        chance=float(counts.max() / n),
        cv=int(cv),
        n_samples=int(n),
        n_groups=0 if group_ids is None else len(np.unique(group_ids)),
    )


def _groups(activations: Any, groups: Any, n: int, token_layers: tuple[str, ...]
            ) -> np.ndarray | None:
    """Each row's group: ``groups`` as given, else the sequence of per-token rows."""
    if groups is None:
        index = getattr(activations, "token_index", None)
        if not token_layers or index is None:
            return None
        groups = index[:, 0]
    if isinstance(groups, torch.Tensor):
        groups = groups.detach().cpu().numpy()
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != n:
        raise ValueError(f"groups has {g.shape[0]} entries but there are {n} samples; "
                         "pass one group id per sample")
    return g


def _check_groups(labels: np.ndarray, groups: np.ndarray, cv: int) -> None:
    """Whole groups per fold: enough groups, and the rarest class in at least ``cv``."""
    n_groups = len(np.unique(groups))
    if n_groups < cv:
        raise ValueError(
            f"the rows fall in {n_groups} groups (sequences), fewer than cv={cv} folds; each "
            "fold holds whole groups: lower cv or pass more sequences"
        )
    for c in np.unique(labels):
        k = len(np.unique(groups[labels == c]))
        if k < cv:
            raise ValueError(
                f"class {c.item()!r} occurs in {k} groups (sequences), fewer than cv={cv} folds; "
                "each fold holds whole groups: lower cv or pass more sequences"
            )


# --------------------------------------------------------------------------------------
# CKA


def _centered(A: Any, what: str) -> np.ndarray:
    X = as_features(A, what).astype(np.float64)
    return X - X.mean(0)


def _hsic_terms(X: np.ndarray, Y: np.ndarray, debiased: bool) -> float:
    """``tr(K H L H)`` of linear kernels of centred ``X``, ``Y``, or its debiased form.

    Without forming ``n x n`` Gram matrices unless the features outnumber the samples.
    Debiased (Song et al. 2012, as used by Kornblith et al. 2019), up to the factor
    ``1 / (n (n - 3))`` which cancels in CKA; with centred features ``K 1 = 0`` and
    ``tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1`` reduces to
    ``<K, L> - n/(n-2) k.l + (sum k)(sum l)/((n-1)(n-2))`` with ``k = diag K``.
    """
    n = X.shape[0]
    if X.shape[1] * Y.shape[1] <= n * n:
        cross = float(np.sum((X.T @ Y) ** 2))  # ||X'Y||_F^2 = tr(K L)
    else:
        cross = float(np.sum((X @ X.T) * (Y @ Y.T)))
    if not debiased:
        return cross
    k = np.einsum("ij,ij->i", X, X)
    l_ = np.einsum("ij,ij->i", Y, Y)
    return cross - n / (n - 2) * float(k @ l_) + float(k.sum() * l_.sum()) / ((n - 1) * (n - 2))


def _cka_centered(
    X: np.ndarray, Y: np.ndarray, debiased: bool, self_x: float, self_y: float
) -> float:
    denom = self_x * self_y
    if not (denom > 0):
        return float("nan")
    return _hsic_terms(X, Y, debiased) / float(np.sqrt(denom))


def cka(
    A: torch.Tensor | np.ndarray, B: torch.Tensor | np.ndarray, debiased: bool = False
) -> float:
    """Linear CKA between two representations of the same ``n`` samples.

    ``A``: ``(n, d1)``, ``B``: ``(n, d2)`` (conv maps flattened). 1 means the same
    representation up to rotation and isotropic scaling; 0 means unrelated.
    ``debiased=True`` uses the unbiased HSIC estimator, which corrects the upward bias of
    CKA when features are many relative to samples (needs n >= 4). Returns NaN when a
    representation is constant over the samples (e.g. an entirely dead layer).
    Computed in float64.
    """
    X, Y = _centered(A, "A"), _centered(B, "B")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"A has {X.shape[0]} samples and B has {Y.shape[0]}: CKA compares "
            "representations of the same samples"
        )
    _check_n(X.shape[0], debiased)
    return _cka_centered(X, Y, debiased, _hsic_terms(X, X, debiased), _hsic_terms(Y, Y, debiased))


def _check_n(n: int, debiased: bool) -> None:
    need = 4 if debiased else 2
    if n < need:
        raise ValueError(
            f"{'debiased ' if debiased else ''}CKA needs at least {need} samples, got {n}"
        )


@dataclass(frozen=True, eq=False)
class CKAMatrix(Result):
    """CKA between every pair of layers: ``values[i, j]`` for ``layers[i]``, ``layers[j]``."""

    layers: list[str]
    values: np.ndarray
    debiased: bool


def cka_matrix(activations: Mapping[str, Any] | Any, debiased: bool = False) -> CKAMatrix:
    """Linear CKA between all pairs of layers recorded on the same samples: ``(L, L)``.

    ``activations``: ``{layer: (n, features)}`` or the result of :func:`netxray.activations`.
    """
    layers = _layer_dict(activations)
    feats = {name: _centered(a, f"activations[{name!r}]") for name, a in layers.items()}
    names = list(feats)
    n = feats[names[0]].shape[0]
    for name in names:
        if feats[name].shape[0] != n:
            raise ValueError(
                f"layer {name!r} has {feats[name].shape[0]} samples but {names[0]!r} has {n}"
            )
    _check_n(n, debiased)
    selfs = {name: _hsic_terms(X, X, debiased) for name, X in feats.items()}
    L = len(names)
    values = np.eye(L)
    for i in range(L):
        if not selfs[names[i]] > 0:
            values[i, i] = np.nan
        for j in range(i + 1, L):
            a, b = names[i], names[j]
            values[i, j] = values[j, i] = _cka_centered(
                feats[a], feats[b], debiased, selfs[a], selfs[b]
            )
    return CKAMatrix(layers=names, values=values, debiased=bool(debiased))


__all__ = [
    "ActivationMap",
    "CKAMatrix",
    "ProbeResult",
    "activation_map",
    "cka",
    "cka_matrix",
    "linear_probes",
    "selectivity_index",
]
