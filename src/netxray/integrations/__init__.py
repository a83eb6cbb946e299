"""Training-framework callbacks that run :func:`netxray.watch` for you.

- :class:`netxray.integrations.lightning.NetxrayCallback`: PyTorch Lightning
  (``pip install 'netxray[lightning]'``);
- :class:`netxray.integrations.huggingface.NetxrayTrainerCallback`: HuggingFace
  ``transformers.Trainer`` (``pip install 'netxray[huggingface]'``).

Each module imports its framework when it is imported, never when ``netxray`` is, and says
which extra to install when the framework is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs the `{module}` package: pip install 'netxray[{extra}]' "
                          f"({e})") from e
