"""The report's pictures as PNG files, drawn by the matplotlib Displays from the same results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netxray._io import atomic_write

if TYPE_CHECKING:
    from netxray.analysis import Analysis


def save_png(figure: Any, path: Path) -> Path:
    """Write a matplotlib figure as a PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=130))
    plt.close(figure)
    return path


def write_pngs(a: Analysis, out: Path) -> list[Path]:
    """Draw every picture of the report into ``out``; returns the files written."""
    import matplotlib

    from netxray.plot.attribution import ImageAttributionDisplay, SaliencyArrowsDisplay
    from netxray.plot.boundary import (
        DecisionBoundaryDisplay,
        GridWarpDisplay,
        UnitMapsDisplay,
        save_gif,
    )
    from netxray.plot.health import LayerActivityDisplay
    from netxray.plot.probes import ActivationMapDisplay, CKADisplay, ProbeDisplay
    from netxray.plot.projection import ProjectionDisplay
    from netxray.plot.training import TrainingCurvesDisplay

    names = list(a.train.class_names)
    jobs: dict[str, Callable[[], Any]] = {}
    if a.history is not None:
        jobs["training.png"] = lambda: TrainingCurvesDisplay.from_result(a.history).plot()
    jobs["decision_boundary.png"] = lambda: DecisionBoundaryDisplay.from_result(
        a.boundary, y=a.train.y, X_test=a.test.X, y_test=a.test.y, class_names=names
    ).plot()
    jobs["unit_maps.png"] = lambda: UnitMapsDisplay.from_result(a.unit_maps).plot()
    for layer, amap in a.activation_maps.items():
        jobs[f"activations_{layer}.png"] = (
            lambda amap=amap, layer=layer: ActivationMapDisplay.from_result(amap, names).plot(
                title=f"{layer}: activations by class"
            )
        )
    for key, proj in a.projections.items():
        layer = key.removesuffix(" (t-SNE)")
        jobs[f"{proj.method}_{layer}.png"] = (
            lambda proj=proj, layer=layer: ProjectionDisplay.from_result(
                proj, labels=a.train.y, predictions=a.train_pred, class_names=names
            ).plot(color_by="label", title=f"{layer}: {proj.method} of hidden states")
        )
    if a.probes is not None:
        jobs["probes.png"] = lambda: ProbeDisplay.from_result(a.probes).plot()
    if a.cka is not None:
        jobs["cka.png"] = lambda: CKADisplay.from_result(a.cka).plot()
    if a.boundary.plane == "input":
        jobs["saliency.png"] = lambda: SaliencyArrowsDisplay.from_result(
            a.saliency, xx=a.boundary.xx, yy=a.boundary.yy, probs=a.boundary.probs
        ).plot()
    if a.train.image_shape is not None:
        jobs["saliency_by_class.png"] = lambda: ImageAttributionDisplay.from_result(
            a.dataset_saliency, image_shape=a.train.image_shape, class_names=names
        ).plot()
    if a.health.stats is not None:
        jobs["health.png"] = lambda: LayerActivityDisplay.from_result(a.health).plot()

    if a.grid_warp is not None:
        jobs["grid_warp.png"] = lambda: GridWarpDisplay.from_result(a.grid_warp, y=a.train.y).plot()
    if a.unit_patterns is not None and a.train.image_shape is not None:
        jobs["unit_patterns.png"] = lambda: ImageAttributionDisplay(
            a.unit_patterns.reshape(-1, *a.train.image_shape),
            titles=[f"{a.layers[0]}[{i}]" for i in range(len(a.unit_patterns))],
        ).plot()

    written = []
    if a.evolution is not None:
        written.append(save_gif(a.evolution, out / "boundary_evolution.gif", y=a.train.y))
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        for filename, draw in jobs.items():
            display = draw()
            written.append(save_png(display.figure_, out / filename))
    return written
