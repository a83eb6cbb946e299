"""Pictures of attributions: feature bars, image heatmaps, saliency arrows, unit patterns.

Each Display holds NumPy arrays only; ``from_result``/``from_model`` build one, ``plot``
draws it (matplotlib is imported there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _grid_axes(ax: Any, n: int, ncols: int | None, size: float = 1.6) -> tuple[Any, np.ndarray]:
    """``n`` axes: new ones in a grid when ``ax`` is None, else the axes given."""
    import matplotlib.pyplot as plt

    if ax is None:
        cols = ncols or min(n, 8)
        rows = -(-n // cols)
        fig, axes = plt.subplots(
            rows,
            cols,
            figsize=(size * cols, size * rows + 0.3),
            layout="constrained",
            squeeze=False,
        )
        axes = axes.ravel()
        for a in axes[n:]:
            a.set_axis_off()
        return fig, axes[:n]
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if axes.size < n:
        raise ValueError(f"{n} panels to draw but {axes.size} axes given; pass at least {n}")
    return axes[0].figure, axes[:n]


class FeatureAttributionDisplay:
    """Horizontal bars, one per feature: signed attributions for one sample (red pushes
    the target up, blue down), or mean |attribution| over a dataset.

    values: ``(features,)``; feature_names: one per feature; signed: colour by sign.
    """

    def __init__(
        self,
        values: Any,
        *,
        feature_names: Sequence[str] | None = None,
        signed: bool = True,
        title: str | None = None,
        xlabel: str = "attribution",
    ) -> None:
        self.values = _np(values).reshape(-1)
        if feature_names is None:
            feature_names = [f"x{i + 1}" for i in range(self.values.shape[0])]
        if len(feature_names) != self.values.shape[0]:
            raise ValueError(
                f"{len(feature_names)} feature names for {self.values.shape[0]} features; "
                "pass one name per feature"
            )
        self.feature_names = list(feature_names)
        self.signed = signed
        self.title = title
        self.xlabel = xlabel

    @classmethod
    def from_result(
        cls,
        result: Any,
        *,
        index: int = 0,
        class_index: int | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> FeatureAttributionDisplay:
        """From an :class:`~netxray.attribution.Attribution` (sample ``index``) or a
        :class:`~netxray.attribution.DatasetAttribution` (overall, or class ``class_index``)."""
        from netxray.attribution import Attribution, DatasetAttribution

        if isinstance(result, Attribution):
            target = None if result.target is None else int(result.target[index])
            what = f"target {target}" if target is not None else f"unit {result.params.get('unit')}"
            return cls(
                result.values[index].flatten(),
                feature_names=feature_names,
                signed=True,
                title=f"{result.method}: sample {index}, {what}",
            )
        if isinstance(result, DatasetAttribution):
            if class_index is None:
                vals, what = result.mean_abs, f"all {result.n_samples} samples"
            else:
                vals = result.class_mean_abs[class_index]
                what = f"class {class_index} (n={int(result.class_counts[class_index])})"
            return cls(
                vals.flatten(),
                feature_names=feature_names,
                signed=False,
                title=f"{result.method}: mean |attribution|, {what}",
                xlabel="mean |attribution|",
            )
        raise TypeError(
            f"expected an Attribution or DatasetAttribution, got {type(result).__name__}"
        )

    def plot(
        self, ax: Any = None, *, top: int | None = None, sort: bool = True
    ) -> FeatureAttributionDisplay:
        """``top``: show only the ``top`` largest |values|; ``sort``: largest at the top."""
        import matplotlib.pyplot as plt

        order = np.arange(self.values.shape[0])
        if sort:
            order = np.argsort(-np.abs(self.values), kind="stable")
        if top is not None:
            order = order[:top]
        vals = self.values[order]
        names = [self.feature_names[i] for i in order]
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 0.3 * len(vals) + 1.2), layout="constrained")
        if self.signed:
            colors = np.where(vals >= 0, "#c0392b", "#2c7fb8")
        else:
            colors = np.full(vals.shape, "#555555")
        y = np.arange(len(vals))[::-1]
        ax.barh(y, vals, color=colors)
        ax.set_yticks(y, names)
        ax.axvline(0, color="k", linewidth=0.8)
        ax.set_xlabel(self.xlabel)
        if self.title:
            ax.set_title(self.title, fontsize=10)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class ImageAttributionDisplay:
    """Heatmaps of attributions over images, alone or over the image in grey.

    attributions: ``(n, H, W)`` (channels are summed by the constructors); images:
    ``(n, H, W)`` or None; titles: one per panel.
    """

    def __init__(
        self,
        attributions: Any,
        images: Any = None,
        *,
        titles: Sequence[str] | None = None,
        signed: bool = True,
    ) -> None:
        self.attributions = _np(attributions)
        if self.attributions.ndim == 2:
            self.attributions = self.attributions[None]
        if self.attributions.ndim != 3:
            raise ValueError(
                f"attributions must be (n, H, W), got shape {self.attributions.shape}; "
                "pass image_shape= to from_result for flat inputs"
            )
        self.images = None if images is None else _np(images).reshape(self.attributions.shape)
        self.titles = list(titles) if titles is not None else None
        self.signed = signed

    @staticmethod
    def _as_images(t: Any, image_shape: Sequence[int] | None) -> np.ndarray:
        a = _np(t)
        if image_shape is not None:
            a = a.reshape(a.shape[0], *image_shape)
        if a.ndim == 4:  # (n, C, H, W): sum over channels
            a = a.sum(1)
        if a.ndim != 3:
            raise ValueError(
                f"cannot show attributions of shape {a.shape[1:]} as images; pass "
                "image_shape=(H, W), e.g. (8, 8) for scikit-learn's digits"
            )
        return a

    @classmethod
    def from_result(
        cls,
        result: Any,
        *,
        image_shape: Sequence[int] | None = None,
        indices: Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> ImageAttributionDisplay:
        """From an Attribution (samples ``indices``, default the first 8, over their images)
        or a DatasetAttribution (one panel of mean |attribution| per class)."""
        from netxray.attribution import Attribution, DatasetAttribution

        if isinstance(result, Attribution):
            idx = list(range(min(8, len(result)))) if indices is None else list(indices)
            attr = cls._as_images(result.values[idx], image_shape)
            imgs = None
            if result.layer is None or result.values.shape == result.inputs.shape:
                imgs = cls._as_images(result.inputs[idx], image_shape)
            tgt = [None if result.target is None else int(result.target[i]) for i in idx]
            titles = [
                f"#{i}" + ("" if t is None else f" -> {class_names[t] if class_names else t}")
                for i, t in zip(idx, tgt, strict=True)
            ]
            return cls(attr, imgs, titles=titles, signed=True)
        if isinstance(result, DatasetAttribution):
            attr = cls._as_images(result.class_mean_abs, image_shape)
            names = class_names or [str(c) for c in range(result.n_classes)]
            titles = [f"{names[c]} (n={int(n)})" for c, n in enumerate(_np(result.class_counts))]
            return cls(attr, None, titles=titles, signed=False)
        raise TypeError(
            f"expected an Attribution or DatasetAttribution, got {type(result).__name__}"
        )

    def plot(
        self, ax: Any = None, *, overlay: bool = True, ncols: int | None = None, alpha: float = 0.6
    ) -> ImageAttributionDisplay:
        """``overlay``: draw the heatmap over the image in grey (when images are known).
        Signed maps share a symmetric colour scale (red +, blue -) across panels."""
        n = self.attributions.shape[0]
        fig, axes = _grid_axes(ax, n, ncols)
        if self.signed:
            lim = float(np.abs(self.attributions).max()) or 1.0
            kw = {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim}
        else:
            kw = {"cmap": "magma", "vmin": 0.0, "vmax": float(self.attributions.max()) or 1.0}
        im = None
        for i, a in enumerate(axes):
            if overlay and self.images is not None:
                a.imshow(self.images[i], cmap="gray", interpolation="nearest")
                im = a.imshow(self.attributions[i], alpha=alpha, interpolation="nearest", **kw)
            else:
                im = a.imshow(self.attributions[i], interpolation="nearest", **kw)
            a.set_xticks([])
            a.set_yticks([])
            if self.titles:
                a.set_title(self.titles[i], fontsize=8)
        if im is not None:
            fig.colorbar(im, ax=list(axes), shrink=0.8)
        self.ax_, self.figure_ = axes, fig
        return self


class SaliencyArrowsDisplay:
    """Arrows over a 2-D input plane: at each point, the direction in which the target
    output grows fastest (the signed gradient), optionally over a probability surface.

    points: ``(n, 2)``; vectors: ``(n, 2)``; xx, yy: ``(res, res)``; probs: ``(res, res)``
    (the probability shown as background, e.g. of the target class).
    """

    def __init__(
        self,
        points: Any,
        vectors: Any,
        *,
        xx: Any = None,
        yy: Any = None,
        probs: Any = None,
        title: str | None = None,
    ) -> None:
        self.points, self.vectors = _np(points), _np(vectors)
        if (
            self.points.ndim != 2
            or self.points.shape[1] != 2
            or self.vectors.shape != self.points.shape
        ):
            raise ValueError(
                f"points {self.points.shape} and vectors {self.vectors.shape} must both be (n, 2): "
                "saliency arrows need 2-D inputs"
            )
        given = [v is not None for v in (xx, yy, probs)]
        if any(given) and not all(given):
            raise ValueError("pass all of xx, yy and probs for a background, or none")
        self.xx = None if xx is None else _np(xx)
        self.yy = None if yy is None else _np(yy)
        self.probs = None if probs is None else _np(probs)
        if self.probs is not None and self.probs.ndim == 3:
            self.probs = self.probs[..., -1]
        if self.probs is not None and not (self.xx.shape == self.yy.shape == self.probs.shape):
            raise ValueError(
                f"xx {self.xx.shape}, yy {self.yy.shape} and probs {self.probs.shape} must share "
                "the grid shape (res, res)"
            )
        self.title = title

    @classmethod
    def from_result(
        cls, result: Any, *, xx: Any = None, yy: Any = None, probs: Any = None
    ) -> SaliencyArrowsDisplay:
        """From a signed gradient Attribution on 2-D inputs (``Saliency(abs=False)``,
        ``SmoothGrad``, ``FiniteDifference``); a background grid may be added."""
        if result.params.get("abs"):
            raise ValueError(
                "these attributions are absolute values, which lose the direction; compute "
                "them with Saliency(model).attribute(..., abs=False)"
            )
        return cls(result.inputs, result.values, xx=xx, yy=yy, probs=probs, title=result.method)

    @classmethod
    def from_model(
        cls,
        model: Any,
        X: Any,
        *,
        target: Any = 1,
        background: bool = True,
        resolution: int = 100,
    ) -> SaliencyArrowsDisplay:
        """Signed saliency of ``target`` at ``X`` ``(n, 2)``, over the model's probability
        of class ``target`` on a grid (from :func:`netxray.boundary.decision_boundary`)."""
        from netxray.attribution import Saliency

        res = Saliency(model).attribute(X, target=target, abs=False)
        if not background:
            return cls.from_result(res)
        from netxray.boundary import decision_boundary

        grid = decision_boundary(model, X, resolution=resolution, plane="input")
        col = target if isinstance(target, int) else -1
        return cls(
            res.inputs, res.values, xx=grid.xx, yy=grid.yy, probs=grid.probs[..., col],
            title=f"saliency of output {target}",
        )  # fmt: skip

    def plot(
        self, ax: Any = None, *, normalize: bool = True, color: str = "k"
    ) -> SaliencyArrowsDisplay:
        """``normalize``: arrows of equal length (direction only; the colour of each arrow's
        point shows the gradient's size)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
        if self.probs is not None:
            cs = ax.contourf(
                self.xx, self.yy, self.probs, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6
            )
            ax.contour(self.xx, self.yy, self.probs, levels=[0.5], colors="k", linewidths=1.0)
            ax.figure.colorbar(cs, ax=ax, label="probability")
        v = self.vectors
        norm = np.linalg.norm(v, axis=1)
        if normalize:
            v = v / np.where(norm > 0, norm, 1.0)[:, None]
        if np.any(v != 0):  # all-zero gradients (e.g. a dead network) have no arrows to draw
            ax.quiver(
                self.points[:, 0],
                self.points[:, 1],
                v[:, 0],
                v[:, 1],
                color=color,
                angles="xy",
                width=0.004,
            )
        sc = ax.scatter(
            self.points[:, 0], self.points[:, 1], c=norm, cmap="viridis", s=10, zorder=3
        )
        ax.figure.colorbar(sc, ax=ax, label="|gradient|")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        if self.title:
            ax.set_title(self.title, fontsize=10)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class UnitPatternDisplay:
    """The input pattern that drives each hidden unit: images for image inputs, bars for
    tabular ones.

    patterns: ``(units, *input_shape)`` (e.g. NeuronGradient averaged over data);
    unit_labels: one per unit; image_shape: reshape flat inputs to images.
    """

    def __init__(
        self,
        patterns: Any,
        *,
        unit_labels: Sequence[str] | None = None,
        image_shape: Sequence[int] | None = None,
        feature_names: Sequence[str] | None = None,
        title: str | None = None,
    ) -> None:
        self.patterns = _np(patterns)
        if image_shape is not None:
            self.patterns = self.patterns.reshape(self.patterns.shape[0], *image_shape)
        if self.patterns.ndim == 4:
            self.patterns = self.patterns.sum(1)
        n = self.patterns.shape[0]
        self.unit_labels = (
            list(unit_labels) if unit_labels is not None else [f"unit {i}" for i in range(n)]
        )
        if len(self.unit_labels) != n:
            raise ValueError(f"{len(self.unit_labels)} labels for {n} units; pass one per unit")
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.title = title

    @classmethod
    def from_model(
        cls,
        model: Any,
        layer: str,
        X: Any,
        *,
        units: Sequence[int] | None = None,
        method: str = "gradient",
        image_shape: Sequence[int] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> UnitPatternDisplay:
        """Average ``NeuronGradient`` (``method="gradient"``) or
        ``NeuronIntegratedGradients`` (``"integrated_gradients"``) over ``X`` for each unit
        of a ``(batch, units)`` layer (default: every unit)."""
        from netxray.attribution import NeuronGradient, NeuronIntegratedGradients

        if method == "gradient":
            m: Any = NeuronGradient(model, layer)
        elif method == "integrated_gradients":
            m = NeuronIntegratedGradients(model, layer)
        else:
            raise ValueError(f"method must be 'gradient' or 'integrated_gradients', got {method!r}")
        if units is None:
            from netxray.attribution._engine import _float_inputs
            from netxray.attribution.layer import _layer_forward

            x1 = _float_inputs(X, model, "unit patterns")[:1]
            with torch.no_grad():
                act = _layer_forward(model, m.module, m.layer, x1, call=m.call)
            if act.ndim != 2:
                raise ValueError(
                    f"layer {layer!r} outputs {tuple(act.shape[1:])} per sample; pass units="
                )
            units = range(act.shape[1])
        pats = np.stack([_np(m.attribute(X, unit=u).values.mean(0)) for u in units])
        return cls(
            pats, unit_labels=[f"{layer}[{u}]" for u in units], image_shape=image_shape,
            feature_names=feature_names, title=f"{m.name}, mean over {len(X)} inputs",
        )  # fmt: skip

    def plot(self, ax: Any = None, *, ncols: int | None = None) -> UnitPatternDisplay:
        n = self.patterns.shape[0]
        fig, axes = _grid_axes(ax, n, ncols, size=1.8)
        lim = float(np.abs(self.patterns).max()) or 1.0
        for i, a in enumerate(axes):
            p = self.patterns[i]
            if p.ndim == 2:
                a.imshow(p, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
                a.set_xticks([])
                a.set_yticks([])
            else:
                p = p.reshape(-1)
                names = self.feature_names or [f"x{j + 1}" for j in range(p.shape[0])]
                a.bar(np.arange(p.shape[0]), p, color=np.where(p >= 0, "#c0392b", "#2c7fb8"))
                a.set_xticks(np.arange(p.shape[0]), names, rotation=90, fontsize=6)
                a.set_ylim(-lim * 1.05, lim * 1.05)
                a.axhline(0, color="k", linewidth=0.6)
            a.set_title(self.unit_labels[i], fontsize=8)
        if self.title:
            fig.suptitle(self.title, fontsize=10)
        self.ax_, self.figure_ = axes, fig
        return self
