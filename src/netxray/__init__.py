"""netxray: see inside neural networks and find out why one trains badly.

Names are imported on first use, so ``import netxray`` stays cheap: scikit-learn,
matplotlib, openTSNE and UMAP load only when a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "record": "netxray.capture",
    "activations": "netxray.capture",
    "select_layers": "netxray.capture",
    "default_layers": "netxray.capture",
    "Recording": "netxray.capture",
    "Activations": "netxray.capture",
    "read_batches": "netxray.batches",
    "BatchFormat": "netxray.batches",
    "Batch": "netxray.batches",
    "mlp": "netxray.models",
    "train": "netxray.training",
    "TrainingHistory": "netxray.training",
    "collect_stats": "netxray.stats",
    "UnitStats": "netxray.stats",
    "LayerStats": "netxray.stats",
    "NetworkStats": "netxray.stats",
    "ParamStats": "netxray.stats",
    "diagnose": "netxray.health",
    "diagnose_stats": "netxray.health",
    "precheck": "netxray.health",
    "HealthReport": "netxray.health",
    "Finding": "netxray.health",
    "Thresholds": "netxray.health",
    "render_findings": "netxray.health",
    "weight_health": "netxray.weights",
    "WeightHealth": "netxray.weights",
    "Attribution": "netxray.attribution",
    "DatasetAttribution": "netxray.attribution",
    "TokenAttribution": "netxray.attribution",
    "Saliency": "netxray.attribution",
    "InputXGradient": "netxray.attribution",
    "IntegratedGradients": "netxray.attribution",
    "SmoothGrad": "netxray.attribution",
    "Occlusion": "netxray.attribution",
    "FeatureAblation": "netxray.attribution",
    "FiniteDifference": "netxray.attribution",
    "NeuronGradient": "netxray.attribution",
    "NeuronIntegratedGradients": "netxray.attribution",
    "LayerGradient": "netxray.attribution",
    "LayerGradientXActivation": "netxray.attribution",
    "LayerIntegratedGradients": "netxray.attribution",
    "attribute_dataset": "netxray.attribution",
    "explain": "netxray.attribution",
    "project": "netxray.projection",
    "Projection": "netxray.projection",
    "Projector": "netxray.projection",
    "align": "netxray.projection",
    "activation_map": "netxray.probes",
    "ActivationMap": "netxray.probes",
    "linear_probes": "netxray.probes",
    "ProbeResult": "netxray.probes",
    "cka": "netxray.probes",
    "cka_matrix": "netxray.probes",
    "CKAMatrix": "netxray.probes",
    "decision_boundary": "netxray.boundary",
    "BoundaryGrid": "netxray.boundary",
    "unit_maps": "netxray.boundary",
    "UnitMaps": "netxray.boundary",
    "grid_warp": "netxray.boundary",
    "GridWarp": "netxray.boundary",
    "boundary_evolution": "netxray.boundary",
    "BoundaryEvolution": "netxray.boundary",
    "make_plane": "netxray.boundary",
    "watch": "netxray.monitor",
    "Watch": "netxray.monitor",
    "TrainingAlarm": "netxray.monitor",
    "open_run": "netxray.store",
    "export_tensorboard": "netxray.store_tensorboard",
    "Run": "netxray.store",
    "RunFormatError": "netxray.store",
    "StepSeries": "netxray.store_results",
    "LayerSeries": "netxray.store_results",
    "UnitSeries": "netxray.store_results",
    "ParamSeries": "netxray.store_results",
    "LayerInfo": "netxray.store_results",
    "FindingEvent": "netxray.store_results",
    "counterfactual": "netxray.swaps",
    "CounterfactualResult": "netxray.swaps",
    "write_report": "netxray.report.html",
    "render_html": "netxray.report.html",
}

#: submodules reachable as attributes without an explicit import (``netxray.data.moons``)
_SUBMODULES = {"data", "presets", "plot", "report", "demo", "analysis", "resumes"}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name in _SUBMODULES:
            return importlib.import_module(f"netxray.{name}")
        raise AttributeError(f"module 'netxray' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

