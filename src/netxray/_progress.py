"""Progress bars for long work: passes over a dataset, attribution, t-SNE and UMAP.

Every long-running function takes ``progress: bool | None = None``:

- ``None`` (the default): on when the output is a person's, that is stderr is a terminal
  or we run in a Jupyter kernel; and even then a bar is drawn only once the work has run
  for :data:`DELAY_S` seconds, so short calls stay silent. Pipes, CI logs and tests (stderr
  is neither) get nothing.
- ``True``: always, from the start, wherever stderr goes.
- ``False``: never.

Bars come from ``tqdm.auto``: a widget in a notebook, one line in a terminal. When a bar is
off, the iterable is handed back untouched, so the work costs exactly what it did without.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

#: a bar asked for by default (``progress=None``) appears only after this many seconds
DELAY_S = 2.0
#: at least this many seconds between redraws (tqdm's ``mininterval``): the overhead stays negligible
MININTERVAL_S = 0.2

Progress = bool | None


def interactive() -> bool:
    """Whether someone is watching: stderr is a terminal, or this is a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        try:
            shell = ipython.get_ipython()
        except Exception:  # pragma: no cover - a broken IPython install
            shell = None
        if shell is not None and hasattr(shell, "kernel"):
            return True
    stream = sys.stderr
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def check(progress: Any) -> Progress:
    """``progress`` as given, refused unless it is True, False or None."""
    if progress is None or isinstance(progress, bool):
        return progress
    raise TypeError(
        f"progress must be True (always show a bar), False (never) or None (when the work is "
        f"long and stderr is a terminal or notebook), got {progress!r}"
    )


def enabled(progress: Progress) -> bool:
    """Whether a bar may be drawn at all for this ``progress`` setting."""
    progress = check(progress)
    return interactive() if progress is None else progress


class Bar:
    """A progress bar that opens only when it should: at once for ``progress=True``, else
    once the work has run for :data:`DELAY_S` seconds, and never when progress is off.

    Until then no tqdm object exists, so a quick call leaves no trace anywhere (in a
    notebook, not even a hidden widget in the saved file). ``update``, ``describe`` and
    ``note`` work in every state; text changes wait for the next redraw.
    """

    def __init__(self, *, desc: str, total: float | None, unit: str, progress: Progress) -> None:
        self._on = enabled(progress)
        self._delay = 0.0 if progress is True else DELAY_S
        self._desc, self._total, self._unit, self._note = desc, total, unit, ""
        self._count: float = 0
        self._t0 = time.monotonic()
        self._bar: Any = None
        if self._on and self._delay <= 0:
            self._open()

    @property
    def n(self) -> float:
        """How far the work has gone, shown or not."""
        return self._count

    def _open(self) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(desc=self._desc, total=self._total, unit=self._unit, initial=self._count,
                         mininterval=MININTERVAL_S, dynamic_ncols=True)
        self._bar.start_t -= time.monotonic() - self._t0  # the elapsed time counts from the start
        if self._note:
            self._bar.set_postfix_str(self._note, refresh=False)

    def update(self, n: float = 1) -> None:
        self._count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._on and time.monotonic() - self._t0 >= self._delay:
            self._open()

    def describe(self, text: str) -> None:
        """The name shown before the bar (e.g. the phase running)."""
        self._desc = text
        if self._bar is not None:
            self._bar.set_description(text, refresh=False)

    def note(self, text: str) -> None:
        """A few words shown after the count (e.g. the step running, a loss so far)."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def bar(
    *, desc: str, total: float | None = None, unit: str = "it", progress: Progress = None
) -> Iterator[Bar]:
    """A :class:`Bar` to advance by hand, closed on exit (also after an error). For work
    that is not one loop, e.g. a report's stages::

        with bar(desc="report", total=3, unit="step", progress=progress) as b:
            b.note("statistics"); ...; b.update()
    """
    b = Bar(desc=desc, total=total, unit=unit, progress=progress)
    try:
        yield b
    finally:
        b.close()


@contextlib.contextmanager
def counted(
    iterable: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "batch",
    progress: Progress = None,
) -> Iterator[Iterator[T]]:
    """``iterable``, counted by a bar when progress is on (else handed back as it is); the
    bar is closed on exit however the loop ends (done, ``break`` or an error)::

        with counted(batches, desc="activations", total=n, progress=progress) as batches:
            for b in batches: ...

    An item counts once the loop asks for the next one, i.e. once its work is done.
    ``total``: the number of items when known (``len(iterable)`` is tried otherwise).
    """
    if not enabled(progress):
        yield iter(iterable)
        return
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with bar(desc=desc, total=total, unit=unit, progress=progress) as b:
        yield _through(b, iterable)


def _through(b: Bar, iterable: Iterable[T]) -> Iterator[T]:
    for item in iterable:
        yield item
        b.update()


def say(message: str, *, progress: Progress = None) -> None:
    """One line of words on stderr, when progress is on: for a wait no bar can measure
    (UMAP compiling its kernels). Said at once: the wait it announces is known to be long."""
    if enabled(progress):
        print(f"netxray: {message}", file=sys.stderr, flush=True)


def count_batches(data: Any, batch_size: int) -> int | None:
    """How many batches :func:`netxray.batches.read_batches` will yield, when that is known
    without reading the data: arrays, ``(X, y)`` pairs and dicts of arrays are split into
    ``batch_size`` chunks; a DataLoader or a list says its ``len``; a generator cannot."""
    from netxray.batches import _is_array, _rows

    n: int | None = None
    if _is_array(data):
        n = _rows(data)
    elif isinstance(data, tuple | list) and len(data) == 2 and all(map(_is_array, data)):
        n = _rows(data[0])
    elif isinstance(data, Mapping):
        n = next((r for r in map(_rows, data.values()) if r is not None), None)
    else:
        try:
            return int(len(data))
        except (TypeError, NotImplementedError):  # an IterableDataset's loader, a generator
            return None
    if n is None or not isinstance(batch_size, int) or batch_size < 1:
        return None
    return -(-n // batch_size)


__all__ = ["DELAY_S", "Bar", "Progress", "bar", "count_batches", "counted", "enabled", "interactive",
           "say"]
