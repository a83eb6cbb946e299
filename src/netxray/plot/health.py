"""Pictures of network health: activity by depth, gradient norm by depth, per-unit activity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _network_stats(result: Any) -> Any:
    """A NetworkStats from a NetworkStats or a HealthReport."""
    stats = getattr(result, "stats", None)
    if stats is not None and hasattr(stats, "layers"):
        return stats
    if hasattr(result, "layers") and hasattr(result, "n_samples"):
        return result
    raise TypeError(
        f"expected the result of netxray.collect_stats or netxray.diagnose, got {type(result).__name__}"
    )


class LayerActivityDisplay:
    """Per layer, in forward order: the mean fraction of inputs on which units are active
    (> 0), saturated, and the share of dead units. Arrays are ``(layers,)``; NaN where a
    measure does not apply (no saturation band; not a ReLU-family layer)."""

    def __init__(
        self,
        layers: Sequence[str],
        frac_active: np.ndarray,
        frac_saturated: np.ndarray,
        frac_dead: np.ndarray,
    ) -> None:
        self.layers = list(layers)
        self.frac_active = np.asarray(frac_active, dtype=float)
        self.frac_saturated = np.asarray(frac_saturated, dtype=float)
        self.frac_dead = np.asarray(frac_dead, dtype=float)
        n = len(self.layers)
        for name in ("frac_active", "frac_saturated", "frac_dead"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {getattr(self, name).shape}")

    @classmethod
    def from_result(cls, result: Any) -> LayerActivityDisplay:
        """From ``collect_stats(...)`` or a ``HealthReport``."""
        stats = _network_stats(result)
        act, sat, dead = [], [], []
        for s in stats.values():
            seen = s.count > 0
            act.append(float(s.frac_active[seen].mean()) if seen.any() else np.nan)
            sat.append(float(s.frac_saturated[seen].mean()) if s.saturation is not None and seen.any() else np.nan)
            dead.append(float(((s.frac_active == 0) & seen).mean()) if s.family == "relu" else np.nan)
        return cls(list(stats), np.array(act), np.array(sat), np.array(dead))

    def plot(self, ax: Any = None) -> LayerActivityDisplay:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(self.layers) + 2), 3.4),
                                 layout="constrained")
        x = np.arange(len(self.layers))
        w = 0.27
        ax.bar(x - w, self.frac_active, w, label="active (mean over units)", color="#2ca02c")
        ax.bar(x, np.nan_to_num(self.frac_saturated), w, label="saturated", color="#ff7f0e")
        ax.bar(x + w, np.nan_to_num(self.frac_dead), w, label="dead units", color="#d62728")
        ax.set_xticks(x, self.layers, rotation=45 if len(self.layers) > 6 else 0, ha="right"
                      if len(self.layers) > 6 else "center")
        ax.set(ylim=(0, 1.05), ylabel="fraction", xlabel="layer (input → output)",
               title="unit activity by depth")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(frameon=False, fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class GradientNormDisplay:
    """Gradient RMS per layer in forward order (``(layers,)``), on a log scale: vanishing
    gradients fall toward the input (left), exploding ones rise."""

    def __init__(self, layers: Sequence[str], grad_rms: np.ndarray) -> None:
        self.layers = list(layers)
        self.grad_rms = np.asarray(grad_rms, dtype=float)
        if self.grad_rms.shape != (len(self.layers),):
            raise ValueError(f"grad_rms must be ({len(self.layers)},), got {self.grad_rms.shape}")

    @classmethod
    def from_result(cls, result: Any) -> GradientNormDisplay:
        """From ``collect_stats(..., gradients=True)`` or a ``HealthReport`` with targets."""
        stats = _network_stats(result)
        rows = [(n, s.grad_rms) for n, s in stats.items() if s.grad_rms is not None]
        if not rows:
            raise ValueError(
                "these statistics have no gradients: collect them with gradients=True "
                "(or diagnose data with targets)"
            )
        return cls([n for n, _ in rows], np.array([g for _, g in rows]))

    def plot(self, ax: Any = None) -> GradientNormDisplay:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(self.layers) + 2), 3.4),
                                 layout="constrained")
        x = np.arange(len(self.layers))
        shown = np.where(self.grad_rms > 0, self.grad_rms, np.nan)
        ax.plot(x, shown, marker="o", color="#1f77b4")
        zero = self.grad_rms == 0
        if zero.any():
            ax.scatter(x[zero], np.full(zero.sum(), np.nanmin(shown) if np.isfinite(shown).any()
                                         else 1.0), marker="v", color="#d62728", label="zero")
            ax.legend(frameon=False)
        ax.set_yscale("log")
        ax.set_xticks(x, self.layers, rotation=45 if len(self.layers) > 6 else 0)
        ax.set(xlabel="layer (input → output)", ylabel="gradient RMS per unit",
               title="gradient norm by depth")
        ax.grid(alpha=0.3, which="both")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class UnitStatsDisplay:
    """One layer's units: the fraction of inputs each unit is active on (``(units,)``), with
    dead units marked (``dead``, bool ``(units,)``) and, when given, the fraction saturated."""

    def __init__(
        self,
        layer: str,
        frac_active: np.ndarray,
        dead: np.ndarray,
        frac_saturated: np.ndarray | None = None,
    ) -> None:
        self.layer = layer
        self.frac_active = np.asarray(frac_active, dtype=float)
        self.dead = np.asarray(dead, dtype=bool)
        self.frac_saturated = None if frac_saturated is None else np.asarray(frac_saturated, float)
        if self.dead.shape != self.frac_active.shape:
            raise ValueError("dead and frac_active must both be (units,)")

    @classmethod
    def from_result(cls, result: Any, layer: str) -> UnitStatsDisplay:
        """From ``collect_stats(...)`` or a ``HealthReport``; ``layer`` is its name."""
        s = _network_stats(result)[layer]
        dead = (s.frac_active == 0) & (s.count > 0) if s.family == "relu" else np.zeros(s.units, bool)
        return cls(layer, s.frac_active, dead, s.frac_saturated if s.saturation is not None else None)

    def plot(self, ax: Any = None) -> UnitStatsDisplay:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.12 * len(self.frac_active) + 2), 3.2),
                                 layout="constrained")
        x = np.arange(len(self.frac_active))
        colors = np.where(self.dead, "#d62728", "#2ca02c")
        from matplotlib.patches import Patch

        ax.bar(x, self.frac_active, 0.85, color=colors)
        handles: list[Any] = [Patch(color="#2ca02c", label="active")]
        if self.dead.any():
            handles.append(
                ax.scatter(x[self.dead], np.full(self.dead.sum(), 0.02), marker="x",
                           color="#d62728", zorder=3, label=f"dead ({int(self.dead.sum())})")
            )
        if self.frac_saturated is not None:
            (line,) = ax.plot(x, self.frac_saturated, "s", color="#ff7f0e", ms=3, label="saturated")
            handles.append(line)
        ax.set(xlim=(-0.6, len(x) - 0.4), ylim=(0, 1.05), xlabel="unit",
               ylabel="fraction of inputs", title=f"units of `{self.layer}`")
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                  fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
