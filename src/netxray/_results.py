"""The base of every result object: a frozen dataclass of arrays that serializes to plain data.

Results are what the computing layers hand to plots, the report and the run store. They hold
NumPy arrays / tensors and plain values only, and round-trip through ``save``/``load`` (an
``.npz`` of arrays plus a JSON header; loading never unpickles).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from netxray._io import atomic_write

_SCALARS = (str, int, bool, type(None))


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is float or t is int


def _array_plain(a: np.ndarray) -> Any:
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        obj = a.astype(object)
        obj[~np.isfinite(a)] = None
        return obj.tolist()
    return a.tolist()


def to_plain(value: Any) -> Any:
    """Tensors and arrays to nested lists, NumPy scalars to Python ones, NaN/Inf to None.

    Reports hold hundreds of thousands of numbers, so plain floats and flat lists of numbers
    take a fast path.
    """
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None
    if t in _SCALARS:
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _array_plain(value)
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(map(_is_number, value)):
            return [v if type(v) is int or math.isfinite(v) else None for v in value]
        return [to_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):  # float subclasses
        return float(value) if math.isfinite(value) else None
    return value


def _is_array_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, torch.Tensor | np.ndarray) for v in value.values())
    )


def values_equal(a: Any, b: Any) -> bool:
    """Equality for result fields: arrays and tensors by dtype, shape and value (NaN equals
    NaN), containers element by element, floats with NaN equal to NaN."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        a, b = a.detach().cpu(), b.detach().cpu()
        return bool(torch.equal(a, b)) or bool(
            (a.is_floating_point() or a.is_complex()) and torch.equal(a.isnan(), b.isnan())
            and torch.equal(a[~a.isnan()], b[~b.isnan()])
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if type(a) is not type(b):
        if isinstance(a, int | float | np.number) and isinstance(b, int | float | np.number):
            return bool(a == b) and not isinstance(a, bool) and not isinstance(b, bool)
        return False
    if isinstance(a, float | np.floating):
        return bool(a == b) or bool(np.isnan(a) and np.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(values_equal, a, b))
    if dataclasses.is_dataclass(a) and not isinstance(a, type) and not isinstance(a, Result):
        return all(
            values_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    return bool(a == b)


class Result:
    """Mixin for frozen dataclasses: ``to_dict()``, ``save(path)``, ``load(path)``.

    Declare results with ``@dataclass(frozen=True, eq=False)`` so that ``==`` is this class's:
    arrays compare by value instead of raising.
    """

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return all(
            values_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data (lists, numbers, strings, None for non-finite floats)."""
        return to_plain(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an ``.npz``: array fields as arrays, everything else in a JSON header."""
        arrays: dict[str, np.ndarray] = {}
        header: dict[str, Any] = {"type": type(self).__name__, "fields": {}}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                arrays[f.name] = value.detach().cpu().numpy()
                header["fields"][f.name] = {"array": "tensor"}
            elif isinstance(value, np.ndarray):
                arrays[f.name] = value
                header["fields"][f.name] = {"array": "numpy"}
            elif _is_array_dict(value):
                kinds = {}
                for key, v in value.items():
                    is_tensor = isinstance(v, torch.Tensor)
                    arrays[f"{f.name}/{key}"] = v.detach().cpu().numpy() if is_tensor else v
                    kinds[key] = "tensor" if is_tensor else "numpy"
                header["fields"][f.name] = {"arrays": kinds}
            else:
                header["fields"][f.name] = {"value": to_plain(value)}
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

        def write(f: Any) -> None:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            f.write(buf.getvalue())

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["__header__"]).decode())
            if header["type"] != cls.__name__:
                raise ValueError(
                    f"{path} holds a {header['type']}, not a {cls.__name__}; "
                    f"load it with {header['type']}.load"
                )
            kwargs: dict[str, Any] = {}
            for name, entry in header["fields"].items():
                if entry.get("array") == "tensor":
                    kwargs[name] = torch.from_numpy(data[name].copy())
                elif entry.get("array") == "numpy":
                    kwargs[name] = data[name].copy()
                elif "arrays" in entry:
                    kwargs[name] = {
                        key: torch.from_numpy(data[f"{name}/{key}"].copy())
                        if kind == "tensor"
                        else data[f"{name}/{key}"].copy()
                        for key, kind in entry["arrays"].items()
                    }
                else:
                    kwargs[name] = entry["value"]
        return cls(**kwargs)
