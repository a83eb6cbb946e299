"""The runs folder as the viewer sees it: which runs it holds, and a name -> file that cannot escape.

A run is a subfolder holding ``run.sqlite`` or a ``*.sqlite`` file directly in the folder;
its name is that one path component (``exp1`` or ``exp1.sqlite``). :func:`resolve_run` is
the only way a name from a URL becomes a file: it refuses anything but a single plain
component, resolves symlinks, and accepts the result only if it is still inside the folder
and is a run the listing would show. Nothing here writes: stores are opened read-only
(``mode=ro``, or ``immutable`` when no writer is connected, so no ``-wal``/``-shm`` file is
created in a user's run; :func:`netxray.store.read_only_uri`) and only the ``meta`` and
``steps`` tables are read. No FastAPI import.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from netxray.store import RUN_FILE, read_only_uri

__all__ = ["RunEntry", "RunNotFound", "list_runs", "resolve_run", "valid_name"]

#: longest run name accepted (a file name on every common file system fits)
MAX_NAME = 255


class RunNotFound(LookupError):
    """A name that is not a run of the folder (or not a name at all): a 404, never a read."""


@dataclass(frozen=True)
class RunEntry:
    """One row of the listing. ``created``/``updated``: Unix times (``None`` when unknown);
    ``status``: ``running``, ``closed`` or ``unreadable`` (with ``error`` saying why)."""

    name: str
    status: str
    steps: int
    created: float | None
    updated: float | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def valid_name(name: object) -> bool:
    """A single, plain path component: no separators, NUL, ``.``/``..`` or hidden names."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_NAME and not name.startswith(".")
            and not any(c in name for c in "/\\\0:") and name.isprintable())


def _inside(root: Path, path: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _store_of(root: Path, name: str) -> Path | None:
    """The store file of the entry ``name`` of ``root`` (resolved, inside ``root``) or None."""
    entry = root / name
    if name.endswith(".sqlite"):
        candidate = entry
    elif entry.is_dir():
        candidate = entry / RUN_FILE
    else:
        return None
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    return real if real.is_file() and _inside(root, real) else None


def resolve_run(runs_dir: str | os.PathLike[str], name: object) -> Path:
    """The store file of the run ``name`` in ``runs_dir``; :class:`RunNotFound` otherwise.

    Symlinks are followed only where they stay inside ``runs_dir``.
    """
    if not valid_name(name):
        raise RunNotFound(f"{name!r} is not a run name (one plain path component)")
    assert isinstance(name, str)
    root = Path(runs_dir).resolve()
    file = _store_of(root, name)
    if file is None:
        raise RunNotFound(f"no run named {name!r} in the runs folder")
    return file


def _mtime(file: Path) -> float:
    """When the store last changed: the file or its write-ahead log, whichever is newer."""
    times = []
    for extra in ("", "-wal"):
        try:
            times.append(Path(f"{file}{extra}").stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def signature(file: Path) -> tuple[float, int, float, int]:
    """Changes whenever the writer commits: (mtime, size) of the store and its WAL."""
    out: list[float | int] = []
    for extra in ("", "-wal"):
        try:
            st = Path(f"{file}{extra}").stat()
            out += [st.st_mtime_ns, st.st_size]
        except OSError:
            out += [0, 0]
    return tuple(out)  # type: ignore[return-value]


def _entry(name: str, file: Path) -> RunEntry:
    mtime = _mtime(file) or None
    try:
        con = sqlite3.connect(read_only_uri(file), uri=True)
        try:
            meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
            steps, last = con.execute("SELECT COUNT(*), MAX(time) FROM steps").fetchone()
        finally:
            con.close()
    except (sqlite3.Error, ValueError) as e:
        return RunEntry(name, "unreadable", 0, None, mtime, error=f"not a readable run ({e})")
    if meta.get("format") != "netxray-run":
        return RunEntry(name, "unreadable", 0, None, mtime, error="not a netxray run")
    created = meta.get("created")
    status = "closed" if meta.get("status") == "closed" else "running"
    updated = max(float(last or 0.0), float(mtime or 0.0)) or None
    return RunEntry(name, status, int(steps or 0),
                    float(created) if isinstance(created, int | float) else None, updated)


def list_runs(runs_dir: str | os.PathLike[str], limit: int) -> list[RunEntry]:
    """The runs of ``runs_dir``, newest change first, at most ``limit`` of them.

    A missing folder lists nothing. Each store is opened read-only; one that cannot be
    read is listed as ``unreadable`` rather than hiding the others.
    """
    root = Path(runs_dir).resolve()
    if not root.is_dir():
        return []
    found: list[tuple[float, str, Path]] = []
    with os.scandir(root) as it:
        for d in it:
            if not valid_name(d.name):
                continue
            file = _store_of(root, d.name)
            if file is not None:
                found.append((_mtime(file), d.name, file))
    found.sort(key=lambda t: (-t[0], t[1]))
    return [_entry(name, file) for _, name, file in found[:limit]]
