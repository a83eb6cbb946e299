"""Scatter plots of projected hidden states, coloured by label, prediction, correctness or a unit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from netxray.plot._classes import class_colors, class_positions

COLOR_BY = ("auto", "label", "prediction", "correct", "value", "none")


def _array(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] > 1:  # one-hot labels or logits
        x = x.argmax(1)
    return x.reshape(-1)


class ProjectionDisplay:
    """A 2-D projection of hidden states as a scatter plot.

    coords: ``(n, 2)`` (a third column and more are ignored). labels / predictions:
    ``(n,)`` classes (one-hot or logits ``(n, c)`` are reduced with argmax). values: ``(n,)``
    any per-sample number, e.g. one unit's activation. ``plot(color_by=...)`` picks which.
    A class has one colour in the label and the prediction views (class index ``c``: colour
    ``c``, as in :class:`netxray.plot.boundary.DecisionBoundaryDisplay`).
    """

    def __init__(
        self,
        coords: np.ndarray,
        *,
        labels: Any = None,
        predictions: Any = None,
        values: Any = None,
        value_name: str = "value",
        method: str = "",
        class_names: Sequence[str] | None = None,
        trustworthiness: float | None = None,
    ) -> None:
        self.coords = np.asarray(coords)
        if self.coords.ndim != 2 or self.coords.shape[1] < 2:
            raise ValueError(
                f"coords must have shape (n, 2) or more columns, got {self.coords.shape}"
            )
        n = self.coords.shape[0]
        self.labels, self.predictions, self.values = (
            _array(labels),
            _array(predictions),
            _array(values),
        )
        for name in ("labels", "predictions", "values"):
            arr = getattr(self, name)
            if arr is not None and arr.shape[0] != n:
                raise ValueError(f"{name} has {arr.shape[0]} entries for {n} points")
        self.value_name = value_name
        self.method = method
        self.class_names = list(class_names) if class_names is not None else None
        self.trustworthiness = trustworthiness

    @classmethod
    def from_result(
        cls,
        projection: Any,
        *,
        labels: Any = None,
        predictions: Any = None,
        values: Any = None,
        value_name: str = "value",
        class_names: Sequence[str] | None = None,
    ) -> ProjectionDisplay:
        """From a :class:`netxray.Projection`."""
        return cls(
            projection.coords,
            labels=labels,
            predictions=predictions,
            values=values,
            value_name=value_name,
            method=projection.method,
            class_names=class_names,
            trustworthiness=projection.trustworthiness,
        )

    def _class_name(self, k: Any) -> str:
        if (
            self.class_names is not None
            and isinstance(k, int | np.integer)
            and 0 <= k < len(self.class_names)
        ):
            return str(self.class_names[int(k)])
        return str(k)

    def plot(
        self,
        ax: Any = None,
        *,
        color_by: str = "auto",
        cmap: str | None = None,
        s: float = 12.0,
        alpha: float = 0.8,
        title: str | None = None,
        legend: bool = True,
    ) -> ProjectionDisplay:
        """Draw the scatter. ``color_by``: ``"auto"`` (labels, else values, else none),
        ``"label"``, ``"prediction"``, ``"correct"`` (needs both), ``"value"`` or ``"none"``."""
        import matplotlib.pyplot as plt

        if color_by not in COLOR_BY:
            raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, got {color_by!r}")
        if color_by == "auto":
            color_by = (
                "label"
                if self.labels is not None
                else ("value" if self.values is not None else "none")
            )
        need = {
            "label": ["labels"],
            "prediction": ["predictions"],
            "correct": ["labels", "predictions"],
            "value": ["values"],
        }.get(color_by, [])
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"color_by={color_by!r} needs {name}; pass {name}= to the display")
        if ax is None:
            _, ax = plt.subplots(layout="constrained", figsize=(5, 4.5))
        x, yv = self.coords[:, 0], self.coords[:, 1]
        if color_by in ("label", "prediction"):
            classes = self.labels if color_by == "label" else self.predictions
            assert classes is not None
            # one colour per class over labels and predictions both, so the views agree
            where = class_positions(self.labels, self.predictions)
            palette = plt.get_cmap(cmap) if cmap else None
            rgb = class_colors(max(where.values()) + 1)
            for k in np.unique(classes):
                mask = classes == k
                i = where[k.item()]
                ax.scatter(
                    x[mask],
                    yv[mask],
                    s=s,
                    alpha=alpha,
                    color=rgb[i] if palette is None else palette(i % palette.N),
                    label=self._class_name(k),
                    edgecolors="none",
                )
            if legend:
                ax.legend(title=color_by, fontsize="small", markerscale=1.5)
        elif color_by == "correct":
            ok = self.labels == self.predictions
            ax.scatter(
                x[ok],
                yv[ok],
                s=s,
                alpha=alpha,
                color="tab:green",
                label=f"correct ({int(ok.sum())})",
                edgecolors="none",
            )
            ax.scatter(
                x[~ok],
                yv[~ok],
                s=s * 1.5,
                alpha=alpha,
                color="tab:red",
                marker="x",
                label=f"wrong ({int((~ok).sum())})",
            )
            if legend:
                ax.legend(fontsize="small")
        elif color_by == "value":
            sc = ax.scatter(
                x, yv, c=self.values, s=s, alpha=alpha, cmap=cmap or "viridis", edgecolors="none"
            )
            ax.figure.colorbar(sc, ax=ax, label=self.value_name)
        else:
            ax.scatter(x, yv, s=s, alpha=alpha, color="tab:blue", edgecolors="none")
        name = {"pca": "PC", "tsne": "t-SNE ", "umap": "UMAP "}.get(self.method, "dim ")
        ax.set_xlabel(f"{name}1")
        ax.set_ylabel(f"{name}2")
        if title is None:
            title = f"{self.method.upper() or 'projection'}"
            if self.trustworthiness is not None:
                title += (f" (trustworthiness {self.trustworthiness:.3f})"
                          if np.isfinite(self.trustworthiness) else
                          " (trustworthiness undefined: every point the same)")
        ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
