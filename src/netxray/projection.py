"""Project hidden states to 2-D (PCA, t-SNE, UMAP), score the map, and keep frames aligned.

``project(H, method=...)`` returns a :class:`Projection` (coordinates, parameters, PCA's
explained variance, and a trustworthiness score saying how faithfully local neighbourhoods
survive). A fitted projection can place new points (:meth:`Projection.transform`), and
:func:`align` rotates one frame onto another so an animation over checkpoints does not flip
or spin. scikit-learn, openTSNE and umap-learn are imported only inside the functions.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netxray._io import atomic_write, write_text
from netxray._progress import DELAY_S, Bar, bar, enabled, say
from netxray._progress import check as check_progress
from netxray._results import Result

METHODS = ("pca", "tsne", "umap")
# openTSNE's Barnes-Hut gradients beat its FFT interpolation on small data only. Measured on
# 64-unit hidden states, one thread (benchmarks/results/projection.md): 2k points 5.3 s vs
# 13.6 s, 5k 18.1 s vs 18.4 s, 10k 48 s vs 27 s. So BH below 5k points, FFT from there on.
BH_MAX_POINTS = 5000
TSNE_THREADS_MIN = 5000
TRUST_MAX_POINTS = 2000
#: with a bar on, t-SNE reports every this many iterations (each report evaluates the KL
#: divergence; measured cost in tests/test_progress.py's notes: well under 1% of the fit)
TSNE_PROGRESS_EVERY = 10
TRUST_NEIGHBORS = 5
#: why a projection's trustworthiness is NaN
NO_VARIANCE = ("every sample is the same point (the layer has no variance): all distances are "
               "tied, so no neighbourhood exists to preserve")

_umap_compiled = False


def as_features(H: torch.Tensor | np.ndarray, what: str = "H") -> np.ndarray:
    """``H`` as a finite, non-empty ``(n, features)`` NumPy array; conv maps are flattened.

    ``(n, c, h, w)`` becomes ``(n, c*h*w)``. NumPy input keeps its dtype (so PCA matches
    scikit-learn bit for bit); tensors are detached and moved to the CPU, bfloat16 (which
    NumPy lacks) as float32.
    """
    if isinstance(H, torch.Tensor):
        H = H.detach().cpu()
        H = (H.float() if H.dtype == torch.bfloat16 else H).numpy()
    elif not isinstance(H, np.ndarray):
        H = np.asarray(H)
    if H.ndim < 2:
        raise ValueError(
            f"{what} must have shape (samples, features), got shape {H.shape}; "
            "for a single feature pass H.reshape(-1, 1)"
        )
    if H.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {H.shape}); pass at least one sample")
    if H.ndim > 2:
        H = H.reshape(H.shape[0], -1)
    if H.shape[1] == 0:
        raise ValueError(f"{what} has no features (shape {H.shape})")
    if not np.issubdtype(H.dtype, np.floating):
        H = H.astype(np.float64)
    bad = ~np.isfinite(H)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN/Inf value(s), the first at row {row}, "
            f"column {col}; the network may have diverged, or the inputs need cleaning"
        )
    return H


@dataclass(frozen=True, eq=False)
class Projection(Result):
    """Low-dimensional coordinates of ``n`` samples.

    coords: ``(n, k)`` float array. method: ``"pca"``, ``"tsne"`` or ``"umap"``.
    params: the parameters actually used (seed, perplexity, gradient method, ...).
    explained_variance_ratio: ``(k,)`` for PCA, ``None`` otherwise.
    trustworthiness: scikit-learn's ``trustworthiness`` (1 = every embedded neighbour is a
    true neighbour) over a seeded sample of at most 2000 points; ``None`` when n is too small;
    NaN when every sample is the same point (a layer with no variance, e.g. all units dead):
    every distance is then tied, nobody has nearer neighbours, and a score would be
    meaningless (``params["trustworthiness_note"]`` says so).
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    explained_variance_ratio: np.ndarray | None = None
    trustworthiness: float | None = None

    @property
    def column_names(self) -> list[str]:
        return [f"{self.method}{i + 1}" for i in range(self.coords.shape[1])]

    def transform(self, H: torch.Tensor | np.ndarray) -> np.ndarray:
        """Place new samples ``(m, d)`` in this projection's space: ``(m, k)``.

        Available on a projection fitted in this process (not on one read back by ``load``);
        to project several checkpoints into one basis use a :class:`Projector`.
        """
        projector = self.__dict__.get("_projector")
        if projector is None:
            raise RuntimeError(
                "this Projection has no fitted estimator (it was loaded from disk or built by "
                "hand); refit with Projector(method=...).fit(H) to transform new data"
            )
        return projector.transform(H)

    def _columns(self, labels: Any, extra: dict[str, Any]) -> dict[str, np.ndarray]:
        n = self.coords.shape[0]
        cols: dict[str, np.ndarray] = {
            name: self.coords[:, i] for i, name in enumerate(self.column_names)
        }
        named = {} if labels is None else {"label": labels}
        named.update(extra)
        for name, values in named.items():
            if isinstance(values, torch.Tensor):
                values = values.detach().cpu().numpy()
            arr = np.asarray(values)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(
                    f"column {name!r} must have one value per sample (shape ({n},)), "
                    f"got shape {arr.shape}"
                )
            if name in cols:
                raise ValueError(f"column {name!r} clashes with a coordinate column")
            cols[name] = arr
        return cols

    def to_csv(self, path: str | os.PathLike[str], labels: Any = None, **extra: Any) -> Path:
        """Write the coordinates, ``labels`` and any extra per-sample columns to a CSV (atomic).

        Columns: ``index``, ``<method>1..k``, ``label`` (if given), then ``extra`` in order.
        """
        cols = self._columns(labels, extra)
        lines = [",".join(["index", *cols])]
        for i in range(self.coords.shape[0]):
            row = [str(i)]
            for arr in cols.values():
                v = arr[i]
                if isinstance(v, float | np.floating):
                    row.append(repr(float(v)))
                else:
                    s = str(v.item() if isinstance(v, np.generic) else v)
                    if any(ch in s for ch in ',"\n'):
                        s = '"' + s.replace('"', '""') + '"'
                    row.append(s)
            lines.append(",".join(row))
        return write_text(path, "\n".join(lines) + "\n")

    def to_npz(self, path: str | os.PathLike[str], labels: Any = None, **extra: Any) -> Path:
        """Write ``coords`` plus ``labels`` and extra per-sample arrays to a plain ``.npz``."""
        cols = self._columns(labels, extra)
        arrays = {"coords": self.coords}
        arrays.update({k: v for k, v in cols.items() if k not in self.column_names})

        def write(f: Any) -> None:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            f.write(buf.getvalue())

        return atomic_write(path, write)


class Projector:
    """A projection method that is fitted once and then places any data in the same space.

    ``Projector("pca").fit(H_final)`` and ``.transform(H_epoch)`` put every checkpoint in the
    basis of the final one, so animation frames share axes. ``progress``: a bar over t-SNE's
    iterations and UMAP's epochs, and UMAP's first-call compilation said in words (see
    :mod:`netxray._progress`; ``None``: when the work is long and someone is watching).
    """

    def __init__(
        self,
        method: str = "pca",
        n_components: int = 2,
        random_state: int = 0,
        *,
        progress: bool | None = None,
        **params: Any,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if int(n_components) < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        self.method = method
        self.n_components = int(n_components)
        self.random_state = int(random_state)
        self.progress = check_progress(progress)
        self.params = params
        self.estimator_: Any = None
        self.result_: Projection | None = None
        self.n_features_: int | None = None

    def fit(self, H: torch.Tensor | np.ndarray) -> Projector:
        """Fit on ``H`` ``(n, d)`` (conv maps flattened); the result is in ``result_``."""
        X = as_features(H)
        n, d = X.shape
        fit = {"pca": self._fit_pca, "tsne": self._fit_tsne, "umap": self._fit_umap}
        coords, used, evr = fit[self.method](X)
        coords = np.asarray(coords)
        self.n_features_ = d
        trust, k = _trust_sample(X, coords, self.random_state)
        used = {"n_components": self.n_components, "random_state": self.random_state, **used}
        used["trustworthiness_neighbors"] = k
        if trust is not None and np.isnan(trust):
            used["trustworthiness_note"] = NO_VARIANCE
        used["n_samples"] = n
        result = Projection(
            coords=coords,
            method=self.method,
            params=used,
            explained_variance_ratio=evr,
            trustworthiness=trust,
        )
        object.__setattr__(result, "_projector", self)
        self.result_ = result
        return self

    def transform(self, H: torch.Tensor | np.ndarray) -> np.ndarray:
        """Place ``(m, d)`` samples in the fitted space: ``(m, k)``."""
        if self.estimator_ is None:
            raise RuntimeError("this Projector is not fitted yet; call .fit(H) first")
        X = as_features(H)
        if X.shape[1] != self.n_features_:
            raise ValueError(
                f"H has {X.shape[1]} features but the projection was fitted on "
                f"{self.n_features_}; pass activations of the same layer"
            )
        if self.method == "tsne":
            return np.asarray(self.estimator_.transform(X))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
            return np.asarray(self.estimator_.transform(X))

    # -- the three methods ---------------------------------------------------------------
    def _check_k(self, n: int, d: int) -> None:
        if self.n_components > min(n, d) and self.method == "pca":
            raise ValueError(
                f"PCA can give at most min(samples, features) = {min(n, d)} components; "
                f"got n_components={self.n_components}"
            )

    def _fit_pca(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
        from sklearn.decomposition import PCA

        self._check_k(*X.shape)
        # scikit-learn's defaults, so coordinates (signs included) equal PCA().fit_transform.
        pca = PCA(n_components=self.n_components, random_state=self.random_state, **self.params)
        with np.errstate(divide="ignore", invalid="ignore"):  # constant H: 0/0 variance ratio
            coords = pca.fit_transform(X)
        self.estimator_ = pca
        used = dict(self.params)
        used["svd_solver"] = getattr(pca, "_fit_svd_solver", pca.svd_solver)
        # a constant layer (e.g. every unit dead) explains none of a variance that is zero
        ratio = np.nan_to_num(np.asarray(pca.explained_variance_ratio_), nan=0.0)
        return coords, used, ratio

    def _fit_tsne(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, Any], None]:
        from openTSNE import TSNE

        n = X.shape[0]
        if n < 4:
            raise ValueError(f"t-SNE needs at least 4 samples, got {n}")
        params = dict(self.params)
        perplexity = float(params.pop("perplexity", 30.0))
        # openTSNE needs 3 * perplexity < n; lower it (and record it) instead of failing.
        perplexity = min(perplexity, (n - 1) / 3.0)
        method = params.pop("negative_gradient_method", "auto")
        if method == "auto":
            method = "bh" if n < BH_MAX_POINTS else "fft"
        # Threads only pay off on larger data; on a busy machine they can cost seconds.
        n_jobs = params.pop("n_jobs", 1 if n < TSNE_THREADS_MIN else min(os.cpu_count() or 1, 8))
        tsne = TSNE(
            n_components=self.n_components,
            perplexity=perplexity,
            negative_gradient_method=method,
            n_jobs=n_jobs,
            random_state=self.random_state,
            verbose=False,
            **params,
        )
        emb = self._run_tsne(tsne, np.ascontiguousarray(X, dtype=np.float64))
        self.estimator_ = emb
        used = {
            "perplexity": perplexity,
            "negative_gradient_method": method,
            "n_jobs": n_jobs,
            **params,
        }
        return np.array(emb), used, None

    def _run_tsne(self, tsne: Any, X: np.ndarray) -> Any:
        """``tsne.fit(X)``, its optimisation phases counted by a bar through openTSNE's
        callbacks (the user's own callbacks still run, as often as they asked)."""
        if not enabled(self.progress):
            return tsne.fit(X)
        theirs, every = tsne.callbacks, tsne.callbacks_every_iters
        total = int(tsne.early_exaggeration_iter) + int(tsne.n_iter)
        with bar(desc="t-SNE affinities", total=total, unit="iter", progress=self.progress) as b:
            counter = _TSNEPhases(b)
            mine = [counter] if theirs is None else [*_as_list(theirs), counter]
            tsne.callbacks = mine
            if theirs is None:
                tsne.callbacks_every_iters = TSNE_PROGRESS_EVERY
            try:
                emb = tsne.fit(X)
            finally:
                tsne.callbacks, tsne.callbacks_every_iters = theirs, every
            b.update(total - b.n)  # the iterations after the last callback
        # the embedding keeps its optimisation settings for transform(): not our bar
        emb.gradient_descent_params["callbacks"] = theirs
        emb.gradient_descent_params["callbacks_every_iters"] = every
        return emb

    def _fit_umap(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, Any], None]:
        global _umap_compiled
        try:
            import umap
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "UMAP projections need umap-learn: pip install 'netxray[umap]'"
            ) from exc
        n = X.shape[0]
        params = dict(self.params)
        n_neighbors = int(params.pop("n_neighbors", 15))
        n_neighbors = max(2, min(n_neighbors, n - 1))
        if not _umap_compiled:
            say("UMAP compiles its numba kernels on its first call in a process (15-50 s); "
                "then its epochs are counted", progress=self.progress)
        show = {}
        if enabled(self.progress) and "tqdm_kwds" not in params and not params.get("verbose"):
            # umap-learn draws its epochs with tqdm.auto when tqdm_kwds says not to disable it
            delay = 0.0 if self.progress else DELAY_S
            show = {"tqdm_kwds": {"disable": False, "desc": "UMAP epochs", "delay": delay}}
        reducer = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=n_neighbors,
            random_state=self.random_state,
            **params,
            **show,
        )
        with warnings.catch_warnings():
            # umap warns that a seed forces single-threading; that is the price of a seed.
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
            coords = reducer.fit_transform(X)
        _umap_compiled = True
        self.estimator_ = reducer
        return coords, {"n_neighbors": n_neighbors, **params}, None


def project(
    H: torch.Tensor | np.ndarray,
    method: str = "pca",
    n_components: int = 2,
    random_state: int = 0,
    *,
    progress: bool | None = None,
    **params: Any,
) -> Projection:
    """Project hidden states ``H`` ``(n, d)`` (or ``(n, c, h, w)``, flattened) to ``(n, k)``.

    ``method``: ``"pca"`` (scikit-learn's PCA: identical coordinates and signs),
    ``"tsne"`` (openTSNE; Barnes-Hut below 5k points, FFT above; seeded) or ``"umap"``
    (umap-learn, the ``netxray[umap]`` extra; seeded, hence single-threaded). Extra keyword
    arguments go to the underlying estimator (e.g. ``perplexity=50``, ``n_neighbors=30``).
    The result's ``transform`` places new points in the same space. ``progress``: a bar over
    t-SNE's iterations and UMAP's epochs (``None``: when long and someone is watching).
    """
    projector = Projector(method, n_components=n_components, random_state=random_state,
                          progress=progress, **params)
    result = projector.fit(H).result_
    assert result is not None
    return result


class _TSNEPhases:
    """An openTSNE callback: counts iterations on ``bar`` and names the phase running
    (early exaggeration, then the embedding proper), with the KL divergence so far."""

    PHASES = ("t-SNE early exaggeration", "t-SNE embedding")

    def __init__(self, bar: Bar) -> None:
        self.bar = bar
        self.phase = -1
        self.done = 0  # iterations counted in this phase

    def optimization_about_to_start(self) -> None:
        self.phase += 1
        self.done = 0
        self.bar.describe(self.PHASES[min(self.phase, 1)])

    def __call__(self, iteration: int, error: float, embedding: Any) -> bool:
        self.bar.note(f"KL {error:.3g}")
        self.bar.update(iteration - self.done)
        self.done = iteration
        return False  # never stop the optimisation


def _as_list(callbacks: Any) -> list[Any]:
    return [callbacks] if callable(callbacks) else list(callbacks)


def _trust_sample(X: np.ndarray, coords: np.ndarray, seed: int) -> tuple[float | None, int]:
    """sklearn's trustworthiness on a seeded sample of at most 2000 points."""
    from sklearn.manifold import trustworthiness

    n = X.shape[0]
    if n > TRUST_MAX_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(n, TRUST_MAX_POINTS, replace=False))
        X, coords = X[idx], coords[idx]
        n = TRUST_MAX_POINTS
    k = min(TRUST_NEIGHBORS, (n - 1) // 2)  # sklearn requires n_neighbors < n / 2
    if k < 1:
        return None, 0
    if not np.ptp(X, axis=0).any():  # one point: every neighbour rank is a tie
        return float("nan"), k
    return float(trustworthiness(X, coords, n_neighbors=k)), k


def align(
    reference_coords: np.ndarray | torch.Tensor,
    coords: np.ndarray | torch.Tensor,
    *,
    scale: bool = False,
) -> np.ndarray:
    """Rotate/reflect (and shift) ``coords`` ``(n, k)`` onto ``reference_coords`` ``(n, k)``.

    Orthogonal Procrustes: the orthogonal ``R`` minimising ``||(B - mean B) R - (A - mean A)||``;
    the result is ``(B - mean B) R + mean A``. Rows must be the same samples in both frames.
    ``scale=True`` also matches the overall size. Use it between animation frames of t-SNE,
    UMAP or independently fitted PCAs, which are free to flip or spin.
    """
    A = as_features(reference_coords, "reference_coords").astype(np.float64)
    B = as_features(coords, "coords").astype(np.float64)
    if A.shape != B.shape:
        raise ValueError(
            f"reference_coords {A.shape} and coords {B.shape} must have the same shape: "
            "the same samples, in the same order, in the same number of dimensions"
        )
    mu_a, mu_b = A.mean(0), B.mean(0)
    A0, B0 = A - mu_a, B - mu_b
    U, S, Vt = np.linalg.svd(B0.T @ A0)
    R = U @ Vt
    s = 1.0
    if scale:
        norm = float((B0**2).sum())
        s = float(S.sum()) / norm if norm > 0 else 1.0
    return s * (B0 @ R) + mu_a


__all__ = ["Projection", "Projector", "align", "as_features", "project"]
