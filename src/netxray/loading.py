"""Load a user's model for the CLI: a factory named ``package.module:function`` plus weights.

Weights come from safetensors, or from a state dict read with ``torch.load(weights_only=True)``;
netxray never unpickles arbitrary objects.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import torch
from torch import nn


def load_factory(spec: str) -> nn.Module:
    """Call the factory ``spec`` (``"pkg.module:make_model"`` or ``"path/file.py:make_model"``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"--model must look like 'package.module:factory' or 'file.py:factory', got {spec!r}"
        )
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        mod_spec = importlib.util.spec_from_file_location(f"_netxray_user_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise ValueError(f"cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_spec.name] = module
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise ValueError(
                f"cannot import {module_name!r} ({e}); is it installed or on PYTHONPATH?"
            ) from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        public = sorted(n for n in dir(module) if not n.startswith("_"))
        raise ValueError(f"{module_name} has no callable {attr!r}; it has: {', '.join(public)}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a state dict into ``model`` from ``.safetensors`` or a ``torch.save``d state dict."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such weights file: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises UnpicklingError for anything but plain tensors
            raise ValueError(
                f"{p} is not a plain state dict ({type(e).__name__}); netxray loads weights only "
                "with weights_only=True. Save with torch.save(model.state_dict(), path) or "
                "safetensors"
            ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{p} does not hold a state dict (a mapping of names to tensors)")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{p} does not fit the model: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    return model


def load_model(spec: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """The model from ``spec`` with ``weights`` loaded, in eval mode."""
    model = load_factory(spec)
    if weights is not None:
        load_weights(model, weights)
    return model.eval()
