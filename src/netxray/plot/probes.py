"""Pictures of what layers encode: class-sorted activation heatmaps, probe accuracy, CKA."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class ActivationMapDisplay:
    """Heatmap of activations: rows are samples grouped by class, columns similar units.

    values: ``(n, units)`` in display order; labels: ``(n,)`` the class of each row;
    unit_order: ``(units,)`` original unit index of each column; selectivity: ``(units,)``
    in original order (shown above the heatmap when given).
    """

    def __init__(
        self,
        values: np.ndarray,
        labels: np.ndarray,
        unit_order: np.ndarray | None = None,
        selectivity: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.values = np.asarray(values)
        self.labels = np.asarray(labels)
        if self.values.ndim != 2 or self.labels.shape != (self.values.shape[0],):
            raise ValueError(
                f"values must be (n, units) and labels (n,); got {self.values.shape} and "
                f"{self.labels.shape}"
            )
        units = self.values.shape[1]
        self.unit_order = np.arange(units) if unit_order is None else np.asarray(unit_order)
        self.selectivity = None if selectivity is None else np.asarray(selectivity)
        self.class_names = list(class_names) if class_names is not None else None

    @classmethod
    def from_result(
        cls, amap: Any, class_names: Sequence[str] | None = None
    ) -> ActivationMapDisplay:
        """From a :class:`netxray.ActivationMap`."""
        return cls(amap.values, amap.labels, amap.unit_order, amap.selectivity, class_names)

    def plot(
        self, ax: Any = None, *, cmap: str = "viridis", title: str = "activations by class"
    ) -> ActivationMapDisplay:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(
                layout="constrained", figsize=(max(4.0, 0.25 * self.values.shape[1] + 2), 5)
            )
        im = ax.imshow(self.values, aspect="auto", interpolation="nearest", cmap=cmap)
        ax.figure.colorbar(im, ax=ax, label="activation")
        classes, starts = np.unique(self.labels, return_index=True)
        order = np.argsort(starts)
        classes, starts = classes[order], starts[order]
        ends = np.append(starts[1:], len(self.labels))
        for b in starts[1:]:
            ax.axhline(b - 0.5, color="white", lw=1.2)
        ax.set_yticks((starts + ends - 1) / 2)
        names = [
            self.class_names[int(k)] if self.class_names is not None else str(k) for k in classes
        ]
        ax.set_yticklabels(names)
        ax.set_ylabel("samples (by class)")
        units = self.values.shape[1]
        if units <= 40:
            ax.set_xticks(np.arange(units))
            ax.set_xticklabels([str(int(u)) for u in self.unit_order], fontsize="small")
        ax.set_xlabel("unit (clustered order)")
        if self.selectivity is not None and units <= 40:
            sel = self.selectivity[self.unit_order]
            for j, sv in enumerate(sel):
                ax.text(j, -0.5, f"{sv:.2f}", ha="center", va="bottom", fontsize=6, rotation=90)
            title += "  (numbers: class selectivity)"
        ax.set_title(title, pad=22 if self.selectivity is not None and units <= 40 else 6)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class ProbeDisplay:
    """Linear-probe accuracy by depth, with error bars and the majority-class (chance) line."""

    def __init__(
        self,
        layers: Sequence[str],
        accuracy: Mapping[str, float] | Sequence[float],
        std: Mapping[str, float] | Sequence[float] | None = None,
        chance: float | None = None,
    ) -> None:
        self.layers = list(layers)
        get = (lambda d: [d[k] for k in self.layers]) if isinstance(accuracy, Mapping) else list
        self.accuracy = np.asarray(get(accuracy), dtype=float)
        self.std = (
            None
            if std is None
            else np.asarray(
                [std[k] for k in self.layers] if isinstance(std, Mapping) else list(std),
                dtype=float,
            )
        )
        self.chance = chance

    @classmethod
    def from_result(cls, result: Any) -> ProbeDisplay:
        """From a :class:`netxray.ProbeResult`."""
        return cls(result.layers, result.accuracy, result.std, result.chance)

    def plot(self, ax: Any = None, *, title: str = "linear probe accuracy") -> ProbeDisplay:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(
                layout="constrained", figsize=(max(4.0, 0.8 * len(self.layers) + 2), 3.5)
            )
        x = np.arange(len(self.layers))
        ax.errorbar(x, self.accuracy, yerr=self.std, marker="o", capsize=3, label="probe")
        if self.chance is not None:
            ax.axhline(self.chance, color="grey", ls="--", label=f"chance ({self.chance:.2f})")
        ax.set_xticks(x)
        ax.set_xticklabels(self.layers, rotation=30 if len(self.layers) > 5 else 0)
        ax.set_ylim(min(0.0, float(np.nanmin(self.accuracy)) - 0.05), 1.02)
        ax.set_xlabel("layer")
        ax.set_ylabel("cross-validated accuracy")
        ax.set_title(title)
        ax.legend(fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class CKADisplay:
    """The CKA matrix between layers (1: same representation up to rotation and scale)."""

    def __init__(self, layers: Sequence[str], values: np.ndarray, debiased: bool = False) -> None:
        self.layers = list(layers)
        self.values = np.asarray(values, dtype=float)
        if self.values.shape != (len(self.layers), len(self.layers)):
            raise ValueError(f"values must be ({len(self.layers)}, {len(self.layers)})")
        self.debiased = debiased

    @classmethod
    def from_result(cls, result: Any) -> CKADisplay:
        """From a :class:`netxray.CKAMatrix`."""
        return cls(result.layers, result.values, result.debiased)

    def plot(
        self, ax: Any = None, *, cmap: str = "magma", annotate: bool | None = None
    ) -> CKADisplay:
        import matplotlib.pyplot as plt

        L = len(self.layers)
        if ax is None:
            _, ax = plt.subplots(
                layout="constrained", figsize=(max(3.5, 0.6 * L + 2), max(3.0, 0.6 * L + 1.5))
            )
        im = ax.imshow(self.values, vmin=0.0, vmax=1.0, cmap=cmap)
        ax.figure.colorbar(im, ax=ax, label="CKA")
        ax.set_xticks(range(L))
        ax.set_yticks(range(L))
        ax.set_xticklabels(self.layers, rotation=45, ha="right")
        ax.set_yticklabels(self.layers)
        if annotate if annotate is not None else L <= 12:
            for i in range(L):
                for j in range(L):
                    v = self.values[i, j]
                    ax.text(
                        j,
                        i,
                        "nan" if np.isnan(v) else f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if v > 0.6 else "white",
                    )
        ax.set_title(("debiased " if self.debiased else "") + "linear CKA")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
