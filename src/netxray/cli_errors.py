"""How the ``netxray`` command turns an error into an exit code and one line.

Bad input (exit 2) is an :class:`InputError`, a ``ValueError`` or a missing file, and any
error of the disk or the path the command writes: an ``OSError`` with a write errno (full,
read-only, no permission...), one of netxray's own path errors (``IsADirectoryError`` and
the like, also without an errno), and SQLite's "database or disk is full", "attempt to write
a readonly database" and "unable to open database file", also when they reach the command
wrapped (the run store's writer thread re-raises its error as a ``RuntimeError`` from it).
Those read "cannot write PATH: reason; FIX". Anything else is a crash (exit 3).
Imports nothing heavy, like the parser.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["InputError", "crash_message", "reading", "write_error"]


class InputError(Exception):
    """Bad input found by the CLI itself: exit 2 with this message."""


# errors of the disk or the path, not of netxray: exit 2, "cannot write PATH: reason"
WRITE_ERRNOS = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
    errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.EEXIST, errno.ENAMETOOLONG,
    errno.EINVAL, errno.ELOOP, errno.EIO,
}

_FIXES = {
    errno.ENOSPC: "free some space, or choose another {option} on another disk",
    errno.EDQUOT: "free some of your quota, or choose another {option}",
    errno.EFBIG: "choose another {option} on a disk that takes larger files",
    errno.EROFS: "the disk is read-only: choose another {option}",
    errno.EACCES: "fix the permissions, or choose another {option}",
    errno.EPERM: "fix the permissions, or choose another {option}",
    errno.ENOENT: "check that its folder exists and is writable, or choose another {option}",
}

# SQLite's primary result codes of a disk or path that cannot take the write, as the errno
# whose advice fits: SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
_SQLITE_ERRNOS = {3: errno.EACCES, 8: errno.EROFS, 10: errno.EIO, 13: errno.ENOSPC,
                  14: errno.ENOENT}

# netxray's own path errors, which may carry a message and no errno
_PATH_ERRORS = (IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError)


def fix(code: int | None, option: str) -> str:
    """The advice for a write that failed with errno ``code``, naming ``option``."""
    return _FIXES.get(code or 0, "choose another {option}").format(option=option)


def _sqlite_disk_error(e: BaseException) -> tuple[BaseException, int] | None:
    """The SQLite error of the disk behind ``e`` (itself, or what it was raised from) and the
    errno that matches it; ``None`` when there is none."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "sqlite_errorcode", None)
        if type(cur).__module__ == "sqlite3" and code is not None and code & 0xFF in _SQLITE_ERRNOS:
            return cur, _SQLITE_ERRNOS[code & 0xFF]
        cur = cur.__cause__ or cur.__context__
    return None


def write_error(e: BaseException, path: object, option: str, *,
                store: bool = False) -> str | None:
    """``cannot write PATH: reason; fix`` when ``e`` is an error of the disk or the path
    (``path`` names the file where ``e`` does not), else ``None``. SQLite's errors count
    only where the command writes a run store (``store``): elsewhere SQLite only reads."""
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        where = e.filename if e.filename is not None else path
        reason = e.strerror or str(e)
        advice = "" if "pick another path" in reason else f"; {fix(e.errno, option)}"
        return f"cannot write {where}: {reason}{advice}"
    if isinstance(e, _PATH_ERRORS) and e.errno is None:
        return str(e)
    found = _sqlite_disk_error(e) if store else None
    if found is not None:
        return f"cannot write {path}: {found[0]}; {fix(found[1], option)}"
    return None


def crash_message(name: str, e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if len(text) > 300:
        text = text[:300] + " ..."
    return (f"{name}: unexpected error: {type(e).__name__}: {text}\n"
            f"{name}: this is a bug in netxray or in the model's code; run again with --debug "
            "for the traceback (exit code 3)")


def _touches(name: object, path: Path) -> bool:
    """Whether the OSError's file ``name`` is ``path``, inside it, or a folder above it."""
    if name is None:
        return False
    p = Path(str(name)).absolute()
    root = path.absolute()
    return p == root or root in p.parents or p in root.parents


@contextmanager
def reading(writes: dict[Path, str] | None = None) -> Iterator[None]:
    """Any OSError while reading the inputs is bad input: "cannot read PATH: reason"; one on
    a path the command writes (``writes``: path -> the option that names it), or SQLite's
    error of a full or read-only disk where that path is a run store (``.sqlite``), is
    "cannot write PATH: reason; choose another OPTION"."""
    try:
        yield
    except OSError as e:
        option = next((o for p, o in (writes or {}).items() if _touches(e.filename, p)), None)
        if option is not None and e.errno is not None:
            raise InputError(write_error(e, e.filename, option) or f"cannot write {e.filename}: "
                             f"{e.strerror}; choose another {option}") from e
        if isinstance(e, FileNotFoundError) or e.errno is None:
            raise
        raise InputError(f"cannot read {e.filename}: {e.strerror}") from e
    except Exception as e:
        store = next(((p, o) for p, o in (writes or {}).items() if p.suffix == ".sqlite"), None)
        if store is not None and _sqlite_disk_error(e) is not None:
            raise InputError(write_error(e, *store, store=True)) from e
        raise
