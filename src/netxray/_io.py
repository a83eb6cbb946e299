"""File writes that never leave a half-written file and never replace what is at the path.

A regular file is written atomically: into a temporary file beside it, then renamed over it,
so a reader never sees half a file and a crash never loses the old one. A symlink is
followed (the file it points to is written; the link stays). A FIFO or a character device
(``/dev/stdout``, a terminal, ``/dev/null``) is written directly, since renaming over it
would replace it with a regular file. Block devices, sockets and directories are refused.
``"-"`` means standard output.

A run killed mid-write leaves its temporary file ``.NAME.PID.XXXX.tmp``; the next write to
``NAME`` removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

#: the path that means standard output
STDOUT = "-"

# when this process imported the module: a temporary file without a pid that is older
# than this cannot belong to a write of this process
_STARTED = time.time()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clean_stale_temps(target: Path) -> list[Path]:
    """Remove temporary files of ``target`` left by killed runs; return what was removed.

    ``.NAME.PID.XXXX.tmp`` goes when process PID no longer exists; an older-style
    ``.NAME.XXXX.tmp`` (no pid) goes when it is older than this process.
    """
    removed: list[Path] = []
    pattern = re.compile(r"^\." + re.escape(target.name) + r"\.(?:(\d+)\.)?[^.]+\.tmp$")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if m.group(1) is not None:
                pid = int(m.group(1))
                stale = pid != os.getpid() and not _pid_alive(pid)
            else:
                stale = entry.stat(follow_symlinks=False).st_mtime < _STARTED
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove: leave it
            continue
    return removed


def _refuse(target: Path, reason: str, code: int) -> OSError:
    return OSError(code, reason, str(target))


def _named(e: OSError, path: Path) -> OSError:
    """``e`` as the same kind of error about ``path`` (not a temporary file or a link target).

    ``OSError(errno, ...)`` builds the matching subclass (``PermissionError``, ...).
    """
    if e.errno is None:
        return OSError(f"{path}: {e}")
    return OSError(e.errno, e.strerror, str(path))


def _write_stdout(write: Callable[[BinaryIO], None]) -> None:
    out = sys.stdout
    out.flush()
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        write(buffer)
        buffer.flush()
        return
    import io

    buf = io.BytesIO()
    write(buf)
    out.write(buf.getvalue().decode("utf-8", errors="replace"))
    out.flush()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a binary file object for ``path``; return the path written.

    Regular files (new or existing): atomically, through a temporary file renamed over the
    file (an existing file keeps its permission bits). Symlinks: the file they point to.
    FIFOs and character devices: written directly. ``"-"``: standard output.
    Errors are ``OSError`` naming ``path`` (not the temporary file).
    """
    if os.fspath(path) == STDOUT:
        _write_stdout(write)
        return Path(STDOUT)
    given = Path(path)
    target = Path(os.path.realpath(given))  # follow symlinks, however many
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _named(e, given) from e
    if st is not None and not stat.S_ISREG(st.st_mode):
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            raise _refuse(given, "is a folder; give a file name", errno.EISDIR)
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            try:
                with open(target, "wb") as f:  # noqa: PTH123 - a device: no rename, no fsync
                    write(f)
                    f.flush()
            except OSError as e:
                raise _named(e, given) from e
            return given
        kind = "a block device" if stat.S_ISBLK(mode) else "not a regular file"
        raise _refuse(
            given, f"is {kind}; netxray writes only regular files, FIFOs and character devices",
            errno.EINVAL,
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _named(e, Path(e.filename or target.parent)) from e
    clean_stale_temps(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
        )
    except OSError as e:
        raise _named(e, given) from e
    try:
        # mkstemp makes 0600: give an existing file's bits, or the usual ones for a new file
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _named(e, given) from e
        raise
    return given


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=1, allow_nan=False))
