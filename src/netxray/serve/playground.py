"""The playground's computation: data, features, the network, and training one frame at a time.

No I/O here: :class:`PlaygroundSession` builds the data and the model from a
:class:`~netxray.serve.playground_config.PlayConfig`, trains it an epoch at a time with the
library's optimizers (:mod:`netxray.training`) and measures it with the library's
statistics and health rules (:func:`netxray.stats.collect_stats`,
:func:`netxray.health.diagnose_stats`), and returns a :class:`Frame` of plain arrays.
:mod:`netxray.serve.frames` turns a frame into chart patches; the API streams them.

The network is one ``nn.Sequential``: ``features`` (x1, x2, x1^2, ... from the 2-D point),
then ``fc1, act1, ..., fcN`` as :func:`netxray.models.mlp` builds them, so it takes the raw
2-D point and every library function (unit maps, decision surface, watch) sees the plane.
"""

from __future__ import annotations

import csv
import io
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray.data import Dataset
from netxray.serve.playground_config import ACTIVATIONS, MAX_CLASSES, PlayConfig
from netxray.serve.settings import Limits

__all__ = ["FeatureMap", "Frame", "PlaygroundSession", "build_model", "make_dataset",
           "parse_csv"]

_FEATURE_FNS = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1^2": lambda a, b: a * a,
    "x2^2": lambda a, b: b * b,
    "x1x2": lambda a, b: a * b,
    "sin_x1": lambda a, b: torch.sin(a),
    "sin_x2": lambda a, b: torch.sin(b),
}


class FeatureMap(nn.Module):
    """``(n, 2)`` points -> ``(n, len(names))`` features (Playground's input column)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__()
        self.names = tuple(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, 0], x[:, 1]
        return torch.stack([_FEATURE_FNS[n](a, b) for n in self.names], dim=1)

    def extra_repr(self) -> str:
        return ", ".join(self.names)


def build_model(config: PlayConfig, n_classes: int) -> nn.Sequential:
    """``features`` then :func:`netxray.models.mlp`'s ``fc1, act1, ..., fcN``, seeded."""
    from netxray.models import mlp

    sizes = (len(config.features), *config.hidden, n_classes)
    net = mlp(sizes, ACTIVATIONS[config.activation], init=config.init,
              scale=config.init_scale, seed=config.seed)
    return nn.Sequential(OrderedDict([("features", FeatureMap(config.features)),
                                      *net.named_children()]))


# ---------------------------------------------------------------- data
def make_dataset(config: PlayConfig, uploaded: Dataset | None = None) -> Dataset:
    """The config's 2-D data set (``csv``: the ``uploaded`` one)."""
    from netxray import data

    n, noise, seed, k = config.n_samples, config.noise, config.seed, config.classes
    if config.dataset == "csv":
        if uploaded is None:
            raise ValueError("dataset=csv needs an uploaded CSV; upload one first")
        return uploaded
    if config.dataset == "circle":
        return data.circles(n, noise, seed)
    if config.dataset == "xor":
        return data.xor(n, noise, seed)
    if config.dataset == "gauss":
        return data.gaussians(n, noise, seed, centers=k)
    if config.dataset == "spiral":
        return data.spiral(n, noise, seed, arms=k)
    return data.moons(n, noise, seed)


def parse_csv(text: str, limits: Limits, name: str = "upload") -> Dataset:
    """A user's 2-D CSV: a header, then rows ``x1,x2,label``; parsed strictly.

    Labels are class indices ``0..k-1`` or names (numbered in sorted order), 2 to
    ``MAX_CLASSES`` classes; the points are standardised (zero mean, unit variance per
    column). Every problem raises ``ValueError`` naming its row and what to fix.
    """
    if len(text.encode("utf-8")) > limits.max_upload_bytes:
        raise ValueError(f"the CSV is larger than {limits.max_upload_bytes} bytes")
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError("the CSV is empty; expected a header row x1,x2,label and data rows")
    header = [c.strip() for c in rows[0]]
    if len(header) != 3:
        raise ValueError(f"the header has {len(header)} columns ({', '.join(header)}); a "
                         "playground CSV has 3: two coordinates and a label (x1,x2,label)")
    body = rows[1:]
    if len(body) < 10:
        raise ValueError(f"the CSV has {len(body)} data rows; at least 10 are needed")
    if len(body) > limits.max_samples:
        raise ValueError(f"the CSV has {len(body)} data rows; at most {limits.max_samples} "
                         "are allowed")
    X = np.empty((len(body), 2))
    labels: list[str] = []
    for i, row in enumerate(body):
        line = i + 2
        if len(row) != 3:
            raise ValueError(f"row {line} has {len(row)} cells; expected 3 (x1,x2,label)")
        for j in range(2):
            cell = row[j].strip()
            try:
                X[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"row {line}, column {header[j]!r}: {cell!r} is not a "
                                 "number") from None
            if not math.isfinite(X[i, j]):
                raise ValueError(f"row {line}, column {header[j]!r}: {cell!r} is not finite")
        label = row[2].strip()
        if not label:
            raise ValueError(f"row {line}: the label is missing")
        labels.append(label)
    if all(s.lstrip("-").isdigit() for s in labels):
        ints = np.array([int(s) for s in labels])
        if ints.min() < 0:
            raise ValueError(f"labels must be class indices >= 0; found {ints.min()}")
        y, names = ints, tuple(str(c) for c in range(int(ints.max()) + 1))
    else:
        names = tuple(sorted(set(labels)))
        y = np.array([names.index(s) for s in labels])
    k = len(names)
    if not 2 <= k <= MAX_CLASSES or len(np.unique(y)) < 2:
        raise ValueError(f"the labels name {len(np.unique(y))} distinct classes of {k}; a "
                         f"playground CSV needs 2 to {MAX_CLASSES}")
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return Dataset(X, y.astype(np.int64), name, feature_names=("x1", "x2"), class_names=names)


# ---------------------------------------------------------------- frames
@dataclass(frozen=True, eq=False)
class Frame:
    """What one frame shows, as plain arrays (see :mod:`netxray.serve.frames`).

    ``xs``/``ys``: the surface grid's axes; ``probs`` ``(ny, nx, classes)``; ``maps``: layer
    -> ``(units, m, m)`` response maps on the smaller thumbnail grid (``features`` first,
    ``output``: the class probabilities);
    ``weights``: one ``(out, in)`` matrix per linear layer; ``dead``/``saturated``: layer ->
    ``(units,)`` flags from the statistics; ``grad_norms``: layer -> RMS gradient of the
    loss wrt its output; ``pca``: layer -> ``(n_train, 2)``; ``findings``: the health
    report's findings; ``curve``: epoch -> train and test loss so far; ``input_grad``
    ``(ny, nx, 2)`` on the surface grid: the gradient of the predicted class's probability
    with respect to the point (x1, x2), the page's hover arrows.
    """

    epoch: int
    steps: int
    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float
    xs: np.ndarray
    ys: np.ndarray
    probs: np.ndarray
    thumb_extent: tuple[float, float, float, float]
    maps: dict[str, np.ndarray]
    weights: list[np.ndarray]
    dead: dict[str, np.ndarray]
    saturated: dict[str, np.ndarray]
    grad_norms: dict[str, float]
    pca: dict[str, np.ndarray]
    findings: list[Any]
    curve: dict[str, list[float]]
    input_grad: np.ndarray
    class_names: tuple[str, ...]
    layer_names: list[str]
    train_points: tuple[np.ndarray, np.ndarray] = field(repr=False, default=(np.zeros((0, 2)),
                                                                              np.zeros(0)))
    test_points: tuple[np.ndarray, np.ndarray] = field(repr=False, default=(np.zeros((0, 2)),
                                                                             np.zeros(0)))


def _grid_axes(X: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - 0.1 * span, hi + 0.1 * span
    return np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)


class PlaygroundSession:
    """One playground: the data, the network and its training, a frame at a time.

    ``step()`` trains one epoch (every mini-batch once, in a seeded order) and returns the
    :class:`Frame`; ``frame()`` measures without training. The session is deterministic:
    the same config trained for the same epochs gives the same weights.
    """

    def __init__(self, config: PlayConfig, limits: Limits, uploaded: Dataset | None = None):
        self.limits = limits
        self.config = config.validate(limits)
        self.uploaded = uploaded
        self.reset()

    def reset(self, config: PlayConfig | None = None, uploaded: Dataset | None = None) -> None:
        """Start over (with a new ``config`` or uploaded data set, if given)."""
        from netxray.training import make_optimizer

        if config is not None:
            self.config = config.validate(self.limits)
        if uploaded is not None:
            self.uploaded = uploaded
        cfg = self.config
        ds = make_dataset(cfg, self.uploaded)
        self.class_names = ds.class_names
        train, test = ds.split(test_size=1.0 - cfg.train_ratio, seed=cfg.seed)
        self.X, self.y = train.tensors()
        self.Xt, self.yt = test.tensors()
        self.model = build_model(cfg, len(ds.class_names)).eval()  # no dropout or norm layers
        self.optimizer = make_optimizer(cfg.optimizer, self.model.parameters(), cfg.lr)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0
        self.steps = 0
        self.curve: dict[str, list[float]] = {"epoch": [], "train": [], "test": []}
        all_x = np.concatenate([train.X, test.X])
        self.xs, self.ys = _grid_axes(all_x, cfg.resolution)
        self.txs, self.tys = _grid_axes(all_x, max(8, cfg.resolution // 2))
        self.layers = [n for n, _ in self.model.named_children() if n.startswith("act")]

    # -------------------------------------------------------------- training
    def _penalty(self) -> torch.Tensor | None:
        cfg = self.config
        if cfg.regularization == "none" or cfg.reg_rate == 0:
            return None
        ws = [m.weight for m in self.model.modules() if isinstance(m, nn.Linear)]
        if cfg.regularization == "l1":
            return cfg.reg_rate * sum(w.abs().sum() for w in ws)
        return cfg.reg_rate * 0.5 * sum((w * w).sum() for w in ws)

    def train_epoch(self, watch: Any = None) -> None:
        """One epoch: each mini-batch of the training set once (``batch_size`` 0: all).

        ``watch``: an open :func:`netxray.watch` on the model, told of every step (with its
        loss and batch accuracy), to record the run in a run store."""
        n = self.X.shape[0]
        bs = self.config.batch_size or n
        order = torch.randperm(n, generator=self.gen) if bs < n else None
        with torch.enable_grad():
            for start in range(0, n, bs):
                idx = None if order is None else order[start:start + bs]
                xb = self.X if idx is None else self.X[idx]
                yb = self.y if idx is None else self.y[idx]
                logits = self.model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
                penalty = self._penalty()
                if penalty is not None:
                    loss = loss + penalty
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.steps += 1
                if watch is not None:
                    acc = (logits.detach().argmax(1) == yb).double().mean()
                    watch.step(loss=loss.detach(), metrics={"acc": acc})
        self.optimizer.zero_grad(set_to_none=True)
        self.epoch += 1

    def step(self) -> Frame:
        """Train one epoch and measure the network."""
        self.train_epoch()
        return self.frame()

    # -------------------------------------------------------------- measuring
    @torch.no_grad()
    def _forward_all(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        outs: dict[str, torch.Tensor] = {}
        h = X
        for name, module in self.model.named_children():
            h = module(h)
            outs[name] = h
        return outs

    def _plane(self, xs: np.ndarray, ys: np.ndarray) -> torch.Tensor:
        gx, gy = np.meshgrid(xs, ys)  # row j is y = ys[j]: row 0 at the bottom
        return torch.as_tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float32)

    def _surface(self) -> tuple[np.ndarray, np.ndarray]:
        """The class probabilities on the surface grid ``(ny, nx, classes)`` and, from the same
        forward pass, ``(ny, nx, 2)``: the gradient of the predicted class's probability with
        respect to the raw point ``(x1, x2)``, through the features and the network (one
        backward pass; ``probs[j, i]`` and ``grad[j, i]`` are at ``(xs[i], ys[j])``)."""
        k = len(self.class_names)
        P = self._plane(self.xs, self.ys).requires_grad_(True)
        with torch.enable_grad():
            probs = torch.softmax(self.model(P), dim=1)
            top = probs.gather(1, probs.detach().argmax(1, keepdim=True)).sum()
            (g,) = torch.autograd.grad(top, P)
        shape = (len(self.ys), len(self.xs))
        probs = torch.nan_to_num(probs.detach(), nan=1.0 / k).reshape(*shape, k)
        g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0).reshape(*shape, 2)
        return probs.numpy().astype(np.float64), g.numpy().astype(np.float64)

    def frame(self) -> Frame:
        """Measure the network as it is now (no training)."""
        from netxray.health import Thresholds, diagnose_stats
        from netxray.stats import collect_stats
        from netxray.training import evaluate

        tl, ta = evaluate(self.model, self.X, self.y)
        vl, va = evaluate(self.model, self.Xt, self.yt)
        if not self.curve["epoch"] or self.curve["epoch"][-1] != self.epoch:
            self.curve["epoch"].append(self.epoch)
            self.curve["train"].append(tl)
            self.curve["test"].append(vl)
        k = len(self.class_names)
        probs, input_grad = self._surface()
        touts = self._forward_all(self._plane(self.txs, self.tys))
        m = len(self.txs)
        names = ["features", *self.layers]
        maps = {n: touts[n].T.reshape(-1, m, m).numpy().astype(np.float64) for n in names}
        out = torch.softmax(touts[list(touts)[-1]], dim=1).T.reshape(k, m, m)
        maps["output"] = torch.nan_to_num(out, nan=1.0 / k).numpy().astype(np.float64)
        stats = collect_stats(self.model, (self.X, self.y), self.layers, gradients=True)
        th = Thresholds()
        report = diagnose_stats(stats, history=self.curve["train"], context="diagnose")
        # dead as the health rules define it: a ReLU never > 0, a GELU stuck near 0; a
        # LeakyReLU unit is never dead (it passes gradient below 0)
        dead_units = {f.layer: list(f.units) for f in report.findings if f.kind == "dead_units"}
        dead, sat, grads = {}, {}, {}
        for n in self.layers:
            s = stats[n]
            dead[n] = np.isin(np.arange(s.units), dead_units.get(n, []))
            sat[n] = s.frac_saturated >= th.saturated_fraction
            grads[n] = float(s.grad_rms) if s.grad_rms is not None else math.nan
        hidden = self._forward_all(self.X)
        pca = {n: _pca2(hidden[n].numpy()) for n in self.layers}
        ws = [mod.weight.detach().numpy().astype(np.float64)
              for mod in self.model.modules() if isinstance(mod, nn.Linear)]
        return Frame(
            epoch=self.epoch, steps=self.steps, train_loss=tl, test_loss=vl, train_acc=ta,
            test_acc=va, xs=self.xs, ys=self.ys, probs=probs,
            thumb_extent=(float(self.txs[0]), float(self.txs[-1]), float(self.tys[0]),
                          float(self.tys[-1])),
            maps=maps, weights=ws, dead=dead, saturated=sat, grad_norms=grads, pca=pca,
            findings=list(report.findings), curve={k: list(v) for k, v in self.curve.items()},
            input_grad=input_grad, class_names=tuple(self.class_names),
            layer_names=names, train_points=(self.X.numpy(), self.y.numpy()),
            test_points=(self.Xt.numpy(), self.yt.numpy()),
        )


def _pca2(H: np.ndarray) -> np.ndarray:
    """``(n, d)`` -> ``(n, 2)``: the top-2 principal components, as scikit-learn's PCA (and
    :func:`netxray.projection.project`, without its trustworthiness score, which costs 10x
    the projection) computes them; a constant second axis for fewer than 2 varying units."""
    from sklearn.decomposition import PCA

    n, d = H.shape
    out = np.zeros((n, 2))
    H = np.nan_to_num(H.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if d < 2 or n < 3 or not np.ptp(H, axis=0).any():
        if d >= 1:
            out[:, 0] = H[:, 0] - H[:, 0].mean()
        return out
    return PCA(n_components=2).fit_transform(H)
