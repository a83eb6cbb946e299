"""The base of every result object: a frozen dataclass of arrays that serializes to plain data.

Results are what the computing layers hand to plots, the report, the run store and the
server. They hold NumPy arrays, tensors, plain values, and other results, and round-trip
through ``save``/``load`` as their own types, nested results included: an ``.npz`` of arrays
plus a versioned JSON header that describes the tree. Loading never unpickles, and only
builds classes that subclass :class:`Result`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import zipfile
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


#: Version of the file layout written by :meth:`Result.save`; readers refuse newer ones.
FORMAT_VERSION = 1
_FORMAT_NAME = "netxray-result"

#: every Result subclass by class name, so a file can name the classes it holds
_REGISTRY: dict[str, type[Result]] = {}


class ResultFormatError(ValueError):
    """A file is not a netxray result, is truncated, or was written by a newer netxray."""


class Result:
    """Mixin for frozen dataclasses: ``to_dict()``, ``save(path)``, ``load(path)``, ``==``.

    Declare results with ``@dataclass(frozen=True, eq=False)`` so that ``==`` is this class's:
    arrays compare by dtype, shape and value instead of raising.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = _REGISTRY.get(cls.__name__)
        # the library's own class keeps the name when a test or user reuses it
        if known is None or not known.__module__.startswith("netxray."):
            _REGISTRY[cls.__name__] = cls
        if "__repr__" not in cls.__dict__:  # @dataclass keeps a __repr__ the class already has
            cls.__repr__ = Result.__repr__  # type: ignore[method-assign]

    def __repr__(self) -> str:
        """``Name(field=summary, ...)``: arrays by dtype and shape, never dumped."""
        from netxray.notebook import short_repr

        return short_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's rich display: findings, tables with sparklines, or a small picture."""
        from netxray.notebook import result_html

        return result_html(self)

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

    def to_bytes(self) -> bytes:
        """The bytes :meth:`save` writes (for a database BLOB or a network message)."""
        arrays: dict[str, np.ndarray] = {}
        tree = _encode(self, arrays, type(self).__name__)
        header = {"format": _FORMAT_NAME, "version": FORMAT_VERSION, "value": tree}
        arrays["__header__"] = np.frombuffer(
            json.dumps(header, allow_nan=False).encode(), dtype=np.uint8
        )
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an ``.npz``: every array once, the structure in a versioned JSON header."""
        data = self.to_bytes()
        return atomic_write(path, lambda f: f.write(data))

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "the data") -> Self:
        """Rebuild a result from :meth:`to_bytes`' output."""
        return cls._read(io.BytesIO(data), source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read what :meth:`save` wrote, as ``cls``, nested results rebuilt as their classes."""
        with open(path, "rb") as f:
            return cls._read(f, str(path))

    @classmethod
    def _read(cls, f: Any, source: str) -> Self:
        try:
            with np.load(f, allow_pickle=False) as data:
                if "__header__" not in data.files:
                    raise ResultFormatError(
                        f"{source} is an .npz archive but not a netxray result (no header); "
                        "load it with numpy.load"
                    )
                header = json.loads(bytes(data["__header__"]).decode())
                value = _decode_file(header, data, source)
        except (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError,
                json.JSONDecodeError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ResultFormatError(
                f"{source} is not a readable netxray result: it is truncated, corrupt or of "
                f"another format ({type(e).__name__}: {e})"
            ) from None
        except ValueError as e:
            if isinstance(e, ResultFormatError):
                raise
            raise ResultFormatError(
                f"{source} is not a readable netxray result ({e})"
            ) from None
        if not isinstance(value, cls):
            name = type(value).__name__
            raise ResultFormatError(f"{source} holds a {name}, not a {cls.__name__}; "
                                    f"load it with {name}.load")
        return value


# ------------------------------------------------------------------------------ encoding
# The header's tree: JSON scalars stand for themselves; everything else is a one-key object:
# {"float": "nan"|"inf"|"-inf"}, {"tuple": [...]}, {"list": [...]}, {"dict": [[k, v], ...]},
# {"ndarray": name}, {"npscalar": name}, {"tensor": name, "dtype": torch dtype},
# {"result": class name, "module": where it was defined, "fields": {name: value}}.


def _store(arrays: dict[str, np.ndarray], a: np.ndarray, where: str) -> str:
    if a.dtype.kind == "O":
        raise TypeError(f"cannot save {where}: object arrays are not supported (no pickle)")
    # named by the array's path in the tree (``stats/layers/fc1/mean``), readable with numpy.load
    key = where.split("/", 1)[1] if "/" in where else where
    key = key or "value"
    if key in arrays or key == "__header__":
        key = f"{key}#{len(arrays)}"
    arrays[key] = a
    return key


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    t = type(value)
    if value is None or t is bool or t is str or t is int:
        return value
    if t is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, Result):
        fields = {
            f.name: _encode(getattr(value, f.name), arrays, f"{where}/{f.name}")
            for f in dataclasses.fields(value)  # type: ignore[arg-type]
        }
        return {"result": t.__name__, "module": t.__module__, "fields": fields}
    if isinstance(value, torch.Tensor):
        x = value.detach().cpu()
        dtype = str(x.dtype).removeprefix("torch.")
        if x.dtype == torch.bfloat16:
            x = x.float()
        return {"tensor": _store(arrays, x.numpy(), where), "dtype": dtype}
    if isinstance(value, np.ndarray):
        return {"ndarray": _store(arrays, value, where)}
    if isinstance(value, np.generic):
        return {"npscalar": _store(arrays, np.asarray(value), where)}
    if t is tuple or t is list:
        items = [_encode(v, arrays, f"{where}/{i}") for i, v in enumerate(value)]
        return {t.__name__: items}
    if t is dict:
        return {"dict": [[_encode(k, arrays, f"{where}/key"), _encode(v, arrays, f"{where}/{k}")]
                         for k, v in value.items()]}
    raise TypeError(
        f"cannot save {where}: a {t.__name__} is not a result, array, tensor or plain value"
    )


def _result_class(name: str, module: str | None) -> type[Result]:
    if name not in _REGISTRY and module and module.startswith("netxray."):
        import importlib

        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if name not in _REGISTRY:
        import netxray

        for exported in netxray.__all__:  # a class that moved: its public module defines it
            if exported == name:
                getattr(netxray, exported)
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ResultFormatError(f"unknown result type {name!r}; was it written by a newer netxray?")
    return cls


def _build(cls: type[Result], fields: dict[str, Any]) -> Result:
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ResultFormatError(f"a {cls.__name__} has no field(s) {', '.join(unknown)}; "
                                "was it written by a newer netxray?")
    init = {k: v for k, v in fields.items() if known[k].init}
    obj = cls(**init)
    for k, v in fields.items():
        if not known[k].init:
            object.__setattr__(obj, k, v)
    return obj


def _decode(node: Any, data: Any) -> Any:
    if not isinstance(node, dict):
        if isinstance(node, list):
            raise ResultFormatError("malformed header: a bare list")
        return node
    if len(node) != 1 and "result" not in node and "tensor" not in node:
        raise ResultFormatError(f"malformed header entry with keys {sorted(node)}")
    if "result" in node:
        cls = _result_class(node["result"], node.get("module"))
        return _build(cls, {k: _decode(v, data) for k, v in node["fields"].items()})
    if "float" in node:
        return float(node["float"])
    if "tuple" in node:
        return tuple(_decode(v, data) for v in node["tuple"])
    if "list" in node:
        return [_decode(v, data) for v in node["list"]]
    if "dict" in node:
        return {_decode(k, data): _decode(v, data) for k, v in node["dict"]}
    if "ndarray" in node:
        return data[node["ndarray"]]
    if "npscalar" in node:
        return data[node["npscalar"]][()]
    if "tensor" in node:
        t = torch.from_numpy(np.array(data[node["tensor"]]))
        return t.to(getattr(torch, node["dtype"]))
    raise ResultFormatError(f"malformed header entry {sorted(node)}")


def _decode_file(header: Any, data: Any, source: str) -> Any:
    if not isinstance(header, dict):
        raise ResultFormatError(f"{source} has a malformed header")
    if "format" not in header and {"type", "fields"} <= set(header):
        return _decode_legacy(header, data)
    if header.get("format") != _FORMAT_NAME:
        raise ResultFormatError(f"{source} is not a netxray result (format {header.get('format')!r})")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ResultFormatError(
            f"{source} was written by a newer netxray (result format {version}); this one "
            f"reads format {FORMAT_VERSION} and older: upgrade netxray to read it"
        )
    return _decode(header["value"], data)


def _decode_legacy(header: dict[str, Any], data: Any) -> Result:
    """Files written before the format was versioned: flat fields, no nested results."""
    kwargs: dict[str, Any] = {}
    for name, entry in header["fields"].items():
        if entry.get("array") == "tensor":
            kwargs[name] = torch.from_numpy(np.array(data[name]))
        elif entry.get("array") == "numpy":
            kwargs[name] = np.array(data[name])
        elif "arrays" in entry:
            kwargs[name] = {
                key: torch.from_numpy(np.array(data[f"{name}/{key}"]))
                if kind == "tensor" else np.array(data[f"{name}/{key}"])
                for key, kind in entry["arrays"].items()
            }
        else:
            kwargs[name] = entry["value"]
    return _build(_result_class(header["type"], None), kwargs)
