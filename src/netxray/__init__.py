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
    # capture
    "record": "netxray.capture",
    "activations": "netxray.capture",
    "select_layers": "netxray.capture",
    "Recording": "netxray.capture",
    "Activations": "netxray.capture",
    # models, data, training
    "mlp": "netxray.models",
    "train": "netxray.training",
    "TrainingHistory": "netxray.training",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name in {"data", "presets", "plot", "report"}:
            return importlib.import_module(f"netxray.{name}")
        raise AttributeError(f"module 'netxray' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

