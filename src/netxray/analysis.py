"""The application layer between a trained model and the report: run the model, keep results.

:func:`analyze` runs a model over its data and returns an :class:`Analysis`, a bundle of
result objects that saves, loads and compares like any other result. The report
(:mod:`netxray.report`) draws only from such results and never sees a model, so a page can
be drawn again later from a saved bundle::

    from netxray.analysis import Analysis, analyze
    from netxray.report import write_analysis

    a = analyze(model, train, test, history)
    a.save("results.npz")
    write_analysis(Analysis.load("results.npz"), "report.html")

``write_health_report`` and ``write_explanation`` do the same for ``netxray diagnose --out``
and ``netxray explain``: they run what needs the model here, then hand results to
:mod:`netxray.report.writers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from netxray._checks import model_dtype
from netxray._results import Result
from netxray.data import Dataset

if TYPE_CHECKING:
    from netxray.attribution import Attribution, DatasetAttribution
    from netxray.boundary import BoundaryEvolution, BoundaryGrid, GridWarp, UnitMaps
    from netxray.health import HealthReport
    from netxray.probes import ActivationMap, CKAMatrix, ProbeResult
    from netxray.projection import Projection
    from netxray.training import TrainingHistory

__all__ = ["Analysis", "analyze", "explain_dataset", "write_explanation", "write_health_report"]

#: The report adds a t-SNE of the last hidden layer up to this many training samples.
TSNE_MAX_POINTS = 5000
#: The report shows the input pattern of at most this many first-layer units.
MAX_PATTERNS = 64


@dataclass(frozen=True, eq=False)
class Analysis(Result):
    """Every result a report shows, computed once (:func:`analyze`) and drawn by the HTML
    report and the PNGs; ``save``/``load`` keep it for drawing later."""

    title: str
    train: Dataset
    test: Dataset
    history: TrainingHistory | None
    boundary: BoundaryGrid
    evolution: BoundaryEvolution | None
    unit_maps: UnitMaps
    layers: tuple[str, ...]  # hidden layers shown, in forward order
    hidden: dict[str, np.ndarray]  # layer -> (n_train, features) activations
    activation_maps: dict[str, ActivationMap]  # layer -> map over the training set
    projections: dict[str, Projection]  # layer (or "layer (t-SNE)") -> training-set projection
    train_pred: np.ndarray  # (n_train,) predicted class
    probes: ProbeResult | None
    cka: CKAMatrix | None
    saliency: Attribution  # the test points, signed, predicted class
    dataset_saliency: DatasetAttribution  # over the test set, by true class
    health: HealthReport
    unit_patterns: np.ndarray | None = None  # (units, features): mean d unit / d input, layer 1
    grid_warp: GridWarp | None = None  # when a hidden layer has exactly 2 units
    subtitle: str = ""  # one line under the report's title
    meta: dict[str, str | int | float | bool | None] = field(default_factory=dict)  # header chips


def _predict(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(X).argmax(dim=1).cpu().numpy()


def analyze(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    history: TrainingHistory | None = None,
    *,
    health: HealthReport | None = None,
    title: str = "netxray report",
    subtitle: str = "",
    meta: dict[str, str | int | float | bool | None] | None = None,
) -> Analysis:
    """Compute what the report shows. ``model`` must be in eval mode; it is not changed."""
    from netxray.attribution import NeuronGradient, Saliency, attribute_dataset
    from netxray.boundary import boundary_evolution, decision_boundary, grid_warp, unit_maps
    from netxray.capture import activations, default_layers
    from netxray.health import diagnose
    from netxray.probes import activation_map, cka_matrix, linear_probes
    from netxray.projection import project

    dtype = model_dtype(model)
    Xtr, ytr = train.tensors(dtype)
    Xte, _ = test.tensors(dtype)
    layers = tuple(default_layers(model))
    acts = activations(model, (Xtr, ytr), layers=list(layers))
    hidden = {name: acts.flat(name) for name in layers}
    two_d = train.X.shape[1] == 2
    boundary = decision_boundary(model, Xtr, resolution=160 if two_d else 100)
    maps = unit_maps(model, Xtr, resolution=48)
    evolution = None
    if history is not None and len(history.checkpoints) > 1:
        # frames hold resolution^2 x classes numbers each: keep many-class reports small
        res = 80 if train.n_classes <= 3 else 48
        evolution = boundary_evolution(
            model, history.checkpoints, Xtr, ytr, resolution=res, hidden_layer=layers[-1]
        )
    projections = {
        name: project(H, "pca", n_components=2) for name, H in hidden.items() if H.shape[1] >= 2
    }
    last = hidden[layers[-1]]
    if not two_d and last.shape[1] > 2 and len(last) <= TSNE_MAX_POINTS:
        projections[f"{layers[-1]} (t-SNE)"] = project(last, "tsne", random_state=0)
    probes = None
    counts = np.bincount(train.y)
    if counts.min() >= 5:
        probes = linear_probes({"input": train.X, **hidden}, train.y, cv=5)
    cka = cka_matrix({"input": train.X, **hidden}) if len(hidden) >= 1 else None
    saliency = Saliency(model).attribute(Xte, target="pred", abs=False)
    dataset_saliency = attribute_dataset(
        Saliency(model), test.tensors(dtype), target="label", n_classes=train.n_classes
    )
    if health is None:
        health = diagnose(model, (Xtr, ytr))
    patterns = None
    if train.image_shape is not None:  # what each first-layer unit looks for in an image
        ng = NeuronGradient(model, layers[0])
        n_units = hidden[layers[0]].shape[1]
        patterns = np.stack([
            ng.attribute(Xte, unit=k).values.mean(0).detach().cpu().numpy().reshape(-1)
            for k in range(min(n_units, MAX_PATTERNS))
        ])
    warp = None
    if any(h.shape[1] == 2 for h in hidden.values()):
        warp = grid_warp(model, Xtr, layers=[n for n, h in hidden.items() if h.shape[1] == 2])
    return Analysis(
        title=title,
        train=train,
        test=test,
        history=history,
        boundary=boundary,
        evolution=evolution,
        unit_maps=maps,
        layers=layers,
        hidden=hidden,
        activation_maps={n: activation_map(H, train.y) for n, H in hidden.items()},
        projections=projections,
        train_pred=_predict(model, Xtr),
        probes=probes,
        cka=cka,
        saliency=saliency,
        dataset_saliency=dataset_saliency,
        health=health,
        unit_patterns=patterns,
        grid_warp=warp,
        subtitle=subtitle,
        meta=dict(meta or {}),
    )


# ------------------------------------------------------------- netxray diagnose / explain


def write_health_report(model: nn.Module, dataset: Dataset, health: HealthReport,
                        out: Path) -> Path:
    """``out/report.html`` with the Health section, and ``out/health.png``."""
    from netxray.report.writers import write_health_files

    return write_health_files(health, dataset, out,
                              subtitle=f"{type(model).__name__} on {len(dataset)} samples")


def explain_dataset(
    model: nn.Module, dataset: Dataset, *, method: str = "saliency", target: int | str = "pred"
) -> Attribution:
    """Attributions of every sample of ``dataset``: an ``Attribution`` (signed values).

    ``method`` is any name :func:`netxray.explain` accepts; an unknown one raises there.
    """
    from netxray.attribution import explain

    X, _ = dataset.tensors(model_dtype(model))
    kwargs: dict[str, Any] = {"abs": False} if method == "saliency" else {}
    return explain(model, X, method=method, target=target, **kwargs)


def write_explanation(
    model: nn.Module, dataset: Dataset, *, method: str, target: int | str, out: Path
) -> list[Path]:
    """Attributions as NPZ (every value) and CSV (per-feature summary), PNGs and a report."""
    from netxray.report.writers import write_attribution_files

    attr = explain_dataset(model, dataset, method=method, target=target)
    return write_attribution_files(attr, dataset, target=target, out=out)
