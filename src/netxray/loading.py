"""Load a user's model for the CLI: a factory named ``package.module:function`` plus weights.

``--model`` imports that module and calls that function: it runs the user's code, as
``python -c "import module"`` would. Weights come from safetensors, or from a state dict read
with ``torch.load(weights_only=True)``; netxray never unpickles arbitrary objects.
Every failure is a ``ValueError`` or ``FileNotFoundError`` that names the problem and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
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
        try:
            mod_spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(mod_spec.name, None)
            raise ValueError(f"running {path} raised {type(e).__name__}: {e}") from e
    else:
        module = _import(module_name, attr)
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        public = sorted(n for n in dir(module) if not n.startswith("_"))
        raise ValueError(f"{module_name} has no callable {attr!r}; it has: {', '.join(public)}")
    try:
        model = factory()
    except Exception as e:
        raise ValueError(
            f"calling {spec}() raised {type(e).__name__}: {e}. --model needs a function "
            "that takes no arguments and returns the model"
        ) from e
    if not isinstance(model, nn.Module):
        raise ValueError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _import(module_name: str, attr: str) -> object:
    """Import ``module_name``; if it is not found, suggest the file of that name that is."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and not f"{module_name}.".startswith(f"{e.name}."):
            raise ValueError(  # the module exists but imports something that does not
                f"importing {module_name!r} failed: {e}; install what it needs"
            ) from e
        local = Path(*module_name.split(".")).with_suffix(".py")
        if local.is_file():
            raise ValueError(
                f"cannot import {module_name!r}: the folder netxray runs in is not on the "
                f"Python path. For the file {local} use --model {local}:{attr}"
            ) from None
        raise ValueError(
            f"cannot import {module_name!r} ({e}); is it installed or on PYTHONPATH? "
            "For a file, use --model path/to/file.py:" + attr
        ) from None
    except Exception as e:
        raise ValueError(f"importing {module_name!r} raised {type(e).__name__}: {e}") from e


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a state dict into ``model`` from ``.safetensors`` or a ``torch.save``d state dict."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such weights file: {p}")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(p))
        except SafetensorError as e:
            raise ValueError(
                f"{p} is not a readable .safetensors file ({e}); it may be truncated or not "
                "a safetensors file. Save it again with safetensors.torch.save_file"
            ) from None
    else:
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # weights_only refused an object
            raise ValueError(
                f"{p} is not a plain state dict ({e.__class__.__name__}); netxray loads weights "
                "only with weights_only=True. Save with torch.save(model.state_dict(), path) "
                "or safetensors"
            ) from None
        except Exception as e:  # a truncated or foreign file: torch raises many kinds
            raise ValueError(
                f"{p} is not a readable torch.save file ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); it may be truncated. Save it "
                "again with torch.save(model.state_dict(), path)"
            ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{p} does not hold a state dict (a mapping of names to tensors)")
    own = model.state_dict()
    wrong = [
        f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if wrong:
        raise ValueError(
            f"{p} does not fit the model: {len(wrong)} weight(s) of the wrong shape "
            f"({'; '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}). Were the weights "
            "saved from the model this factory builds, with the same sizes?"
        )
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
