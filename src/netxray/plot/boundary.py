"""Decision surfaces, per-unit thumbnails, warped grids, and an animated GIF over training."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netxray._io import atomic_write
from netxray.plot._classes import class_colors, class_columns

_AXIS_NAMES = {"input": ("x1", "x2"), "pca": ("PC1", "PC2"), "samples": ("u", "v")}


def _labels(y: Any) -> np.ndarray | None:
    if y is None:
        return None
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(1)
    return y.reshape(-1)


class DecisionBoundaryDisplay:
    """A model's class probabilities over a plane, with data points on top.

    xx, yy: ``(res, res)`` plane coordinates; probs: ``(res, res, classes)``.
    points / y: training data ``(n, 2)`` in plane coordinates and labels ``(n,)`` (circles);
    test_points / y_test: test data (triangles). Two classes are drawn as a probability
    surface with the 0.5 contour; more as class colours faded by confidence. A point takes
    the colour of its class's output column: labels must be column indices ``0..k-1`` (or
    names from ``class_names``); others (-1/+1) are refused rather than guessed.
    """

    def __init__(
        self,
        xx: np.ndarray,
        yy: np.ndarray,
        probs: np.ndarray,
        *,
        points: np.ndarray | None = None,
        y: Any = None,
        test_points: np.ndarray | None = None,
        y_test: Any = None,
        plane: str = "input",
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.xx, self.yy, self.probs = np.asarray(xx), np.asarray(yy), np.asarray(probs)
        if self.probs.shape[:2] != self.xx.shape or self.xx.shape != self.yy.shape:
            raise ValueError(
                f"xx {self.xx.shape}, yy {self.yy.shape} and probs {self.probs.shape} must "
                "share the grid shape (res, res)"
            )
        self.points = None if points is None else np.asarray(points)
        self.test_points = None if test_points is None else np.asarray(test_points)
        self.plane = plane
        self.class_names = list(class_names) if class_names is not None else None
        k = self.probs.shape[-1]
        self.y, self.y_test = (None if v is None else class_columns(v, k, self.class_names, what)
                               for v, what in ((_labels(y), "y"), (_labels(y_test), "y_test")))

    @classmethod
    def from_result(
        cls,
        grid: Any,
        *,
        y: Any = None,
        X_test: Any = None,
        y_test: Any = None,
        class_names: Sequence[str] | None = None,
    ) -> DecisionBoundaryDisplay:
        """From a :class:`netxray.BoundaryGrid`; ``X_test`` (inputs) is mapped onto its plane."""
        test_points = None if X_test is None else grid.to_plane(X_test)
        return cls(
            grid.xx,
            grid.yy,
            grid.probs,
            points=grid.points,
            y=y,
            test_points=test_points,
            y_test=y_test,
            plane=grid.plane,
            class_names=class_names,
        )

    @classmethod
    def from_model(
        cls,
        model: Any,
        X: Any,
        y: Any = None,
        *,
        X_test: Any = None,
        y_test: Any = None,
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DecisionBoundaryDisplay:
        """Compute :func:`netxray.decision_boundary` (``kwargs`` go to it) and wrap it."""
        from netxray.boundary import decision_boundary

        grid = decision_boundary(model, X, **kwargs)
        return cls.from_result(grid, y=y, X_test=X_test, y_test=y_test, class_names=class_names)

    def plot(
        self, ax: Any = None, *, title: str | None = "decision boundary", s: float = 18.0
    ) -> DecisionBoundaryDisplay:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(layout="constrained", figsize=(5, 4.5))
        k = self.probs.shape[-1]
        colors = class_colors(k)
        extent = (self.xx.min(), self.xx.max(), self.yy.min(), self.yy.max())
        if k == 2:
            cs = ax.contourf(
                self.xx,
                self.yy,
                self.probs[..., 1],
                levels=np.linspace(0, 1, 11),
                cmap="RdBu_r",
                alpha=0.75,
            )
            ax.contour(
                self.xx, self.yy, self.probs[..., 1], levels=[0.5], colors="k", linewidths=1.2
            )
            ax.figure.colorbar(cs, ax=ax, label=f"P({self._name(1)})")
            colors = np.asarray(
                [plt.get_cmap("RdBu_r")(0.05)[:3], plt.get_cmap("RdBu_r")(0.95)[:3]]
            )
        else:
            conf = self.probs.max(-1, keepdims=True)
            rgb = self.probs @ colors
            # faded toward white where the model is unsure
            img = 1 - (1 - rgb) * (0.25 + 0.6 * (conf - 1 / k) / (1 - 1 / k))
            ax.imshow(
                np.clip(img, 0, 1),
                origin="lower",
                extent=extent,
                aspect="auto",
                interpolation="bilinear",
            )
            pred = self.probs.argmax(-1)
            ax.contour(
                self.xx, self.yy, pred, levels=np.arange(k) + 0.5, colors="k", linewidths=0.8
            )
        for pts, labels, marker, name in (
            (self.points, self.y, "o", "train"),
            (self.test_points, self.y_test, "^", "test"),
        ):
            if pts is None:
                continue
            if labels is None:
                ax.scatter(
                    pts[:, 0],
                    pts[:, 1],
                    s=s,
                    marker=marker,
                    facecolor="none",
                    edgecolors="k",
                    label=name,
                )
                continue
            for c in np.unique(labels):
                m = labels == c
                ax.scatter(
                    pts[m, 0],
                    pts[m, 1],
                    s=s,
                    marker=marker,
                    color=colors[int(c)],
                    edgecolors="k",
                    linewidths=0.5,
                    label=f"{name}: {self._name(c)}",
                )
        if self.points is not None or self.test_points is not None:
            ax.legend(fontsize="x-small", loc="best")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        xl, yl = _AXIS_NAMES.get(self.plane, ("u", "v"))
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        if title:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _name(self, c: Any) -> str:
        if self.class_names is not None and 0 <= int(c) < len(self.class_names):
            return str(self.class_names[int(c)])
        return f"class {int(c)}"


class UnitMapsDisplay:
    """A grid of thumbnails: each unit's response over the plane, one row per layer.

    maps: ``{layer: (units, res, res)}``; dead: ``{layer: (units,) bool}`` (dead units get a
    red frame); xx, yy: ``(res, res)``; points: ``(n, 2)`` data drawn as dots when given.
    """

    def __init__(
        self,
        maps: Mapping[str, np.ndarray],
        xx: np.ndarray,
        yy: np.ndarray,
        *,
        dead: Mapping[str, np.ndarray] | None = None,
        points: np.ndarray | None = None,
        y: Any = None,
    ) -> None:
        self.maps = {k: np.asarray(v) for k, v in maps.items()}
        self.dead = {k: np.asarray(v, dtype=bool) for k, v in (dead or {}).items()}
        self.xx, self.yy = np.asarray(xx), np.asarray(yy)
        self.points = None if points is None else np.asarray(points)
        self.y = _labels(y)

    @classmethod
    def from_result(
        cls, result: Any, *, y: Any = None, show_points: bool = False
    ) -> UnitMapsDisplay:
        """From a :class:`netxray.UnitMaps`."""
        return cls(
            result.maps,
            result.xx,
            result.yy,
            dead=result.dead,
            points=result.points if show_points else None,
            y=y,
        )

    @classmethod
    def from_model(cls, model: Any, X: Any, y: Any = None, **kwargs: Any) -> UnitMapsDisplay:
        from netxray.boundary import unit_maps

        return cls.from_result(unit_maps(model, X, **kwargs), y=y)

    def plot(
        self, ax: Any = None, *, max_cols: int = 16, cmap: str = "RdBu_r", size: float = 1.1
    ) -> UnitMapsDisplay:
        """``ax``: None (a new figure) or a 2-D array of axes at least (rows, cols) large."""
        import matplotlib.pyplot as plt

        rows_per = {k: -(-v.shape[0] // max_cols) for k, v in self.maps.items()}
        nrows = sum(rows_per.values())
        ncols = min(max_cols, max(v.shape[0] for v in self.maps.values()))
        if ax is None:
            fig, axes = plt.subplots(
                nrows,
                ncols,
                layout="constrained",
                figsize=(size * ncols + 1, size * nrows + 0.5),
                squeeze=False,
            )
        else:
            axes = (
                np.asarray(ax).reshape(-1, np.asarray(ax).shape[-1])
                if np.ndim(ax)
                else np.array([[ax]])
            )
            if axes.shape[0] < nrows or axes.shape[1] < ncols:
                raise ValueError(f"need a ({nrows}, {ncols}) array of axes, got {axes.shape}")
            fig = axes[0, 0].figure
        for a in axes.ravel():
            a.set_axis_off()
        extent = (self.xx.min(), self.xx.max(), self.yy.min(), self.yy.max())
        r = 0
        for layer, maps in self.maps.items():
            dead = self.dead.get(layer, np.zeros(maps.shape[0], dtype=bool))
            for i in range(maps.shape[0]):
                a = axes[r + i // max_cols, i % max_cols]
                vmax = float(np.abs(maps[i]).max()) or 1.0
                a.imshow(
                    maps[i],
                    origin="lower",
                    extent=extent,
                    cmap=cmap,
                    vmin=-vmax,
                    vmax=vmax,
                    aspect="auto",
                    interpolation="nearest",
                )
                if self.points is not None:
                    a.scatter(
                        self.points[:, 0],
                        self.points[:, 1],
                        s=1,
                        c="k" if self.y is None else self.y,
                        cmap="Greys",
                        alpha=0.4,
                    )
                a.set_axis_on()
                a.set_xticks([])
                a.set_yticks([])
                if dead[i]:
                    for sp in a.spines.values():
                        sp.set_color("red")
                        sp.set_linewidth(2)
                    a.text(
                        0.5,
                        0.5,
                        "dead",
                        color="red",
                        ha="center",
                        va="center",
                        transform=a.transAxes,
                        fontsize=8,
                        fontweight="bold",
                    )
                a.set_title(f"{layer}[{i}]", fontsize=6, pad=2)
            r += rows_per[layer]
        self.axes_ = axes
        self.ax_ = axes[0, 0]
        self.figure_ = fig
        return self


class GridWarpDisplay:
    """The input grid and how each 2-unit layer bends it (colah's manifold pictures).

    grid_lines: ``(lines, points, 2)`` in the input plane; lines: ``{layer: same shape}``;
    input_points: ``(n, 2)``; points: ``{layer: (n, 2)}``; y: labels to colour the data.
    """

    def __init__(
        self,
        grid_lines: np.ndarray,
        lines: Mapping[str, np.ndarray],
        *,
        input_points: np.ndarray | None = None,
        points: Mapping[str, np.ndarray] | None = None,
        y: Any = None,
    ) -> None:
        self.grid_lines = np.asarray(grid_lines)
        self.lines = {k: np.asarray(v) for k, v in lines.items()}
        self.input_points = None if input_points is None else np.asarray(input_points)
        self.points = {k: np.asarray(v) for k, v in (points or {}).items()}
        self.y = _labels(y)

    @classmethod
    def from_result(cls, result: Any, *, y: Any = None) -> GridWarpDisplay:
        """From a :class:`netxray.GridWarp`."""
        return cls(
            result.grid_lines,
            result.lines,
            input_points=result.input_points,
            points=result.points,
            y=y,
        )

    def plot(self, ax: Any = None, *, size: float = 3.0) -> GridWarpDisplay:
        """``ax``: None (a new figure) or a sequence of 1 + len(lines) axes."""
        import matplotlib.pyplot as plt

        stages = [("input", self.grid_lines, self.input_points)] + [
            (k, v, self.points.get(k)) for k, v in self.lines.items()
        ]
        if ax is None:
            fig, axes = plt.subplots(
                1,
                len(stages),
                layout="constrained",
                figsize=(size * len(stages), size),
                squeeze=False,
            )
            axes = axes[0]
        else:
            axes = np.asarray(ax).ravel()
            if len(axes) < len(stages):
                raise ValueError(f"need {len(stages)} axes, got {len(axes)}")
            fig = axes[0].figure
        half = self.grid_lines.shape[0] // 2
        for a, (name, lines, pts) in zip(axes, stages, strict=False):
            for i, line in enumerate(lines):
                a.plot(
                    line[:, 0],
                    line[:, 1],
                    lw=0.6,
                    color="tab:blue" if i < half else "tab:orange",
                    alpha=0.6,
                )
            if pts is not None:
                a.scatter(
                    pts[:, 0],
                    pts[:, 1],
                    s=5,
                    c="k" if self.y is None else self.y,
                    cmap=None if self.y is None else "coolwarm",
                    zorder=3,
                )
            a.set_title(name)
            a.set_aspect("equal", adjustable="datalim")
        self.axes_ = axes
        self.ax_ = axes[0]
        self.figure_ = fig
        return self


def save_gif(
    evolution: Any,
    path: str | os.PathLike[str],
    *,
    y: Any = None,
    fps: float = 4.0,
    dpi: int = 80,
) -> Path:
    """Write an animated GIF of a :class:`netxray.BoundaryEvolution` (atomic).

    One frame per checkpoint: the decision surface, and, when the evolution has them, the
    aligned hidden-state projections beside it. ``y`` colours the data points.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    labels = _labels(y)
    T = len(evolution.epochs)
    if T == 0:
        raise ValueError("the evolution has no frames")
    hidden = getattr(evolution, "hidden", None)
    if hidden is not None:
        lo, hi = hidden.reshape(-1, 2).min(0), hidden.reshape(-1, 2).max(0)
        pad = 0.05 * (hi - lo + 1e-12)
    images = []
    for t in range(T):
        fig = Figure(figsize=(9 if hidden is not None else 5, 4.2), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 2 if hidden is not None else 1, 1)
        title = f"epoch {int(evolution.epochs[t])}"
        if getattr(evolution, "accuracy", None) is not None:
            title += f"  acc {float(evolution.accuracy[t]):.3f}"
        DecisionBoundaryDisplay.from_result(evolution.frame(t), y=labels).plot(ax=ax, title=title)
        if hidden is not None:
            ax2 = fig.add_subplot(1, 2, 2)
            ax2.scatter(
                hidden[t, :, 0],
                hidden[t, :, 1],
                s=6,
                c="k" if labels is None else labels,
                cmap="coolwarm",
            )
            ax2.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
            ax2.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
            ax2.set_title(f"{evolution.hidden_layer} (PCA, aligned)")
        fig.tight_layout()
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3].copy()).convert("P", palette=Image.ADAPTIVE))

    def write(f: Any) -> None:
        buf = io.BytesIO()
        images[0].save(
            buf,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(1000 / fps),
            loop=0,
        )
        f.write(buf.getvalue())

    return atomic_write(path, write)
