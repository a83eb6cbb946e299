"""The watcher's background writer: a queue, one thread, batched SQLite transactions.

The training thread only enqueues (a few microseconds per step). The writer wakes at most
every ``commit_interval`` seconds (at once for a flush or close), turns everything queued
into rows (``_watch_analysis``) and commits them in one transaction; alarm events go back
through a deque that the training thread drains at its next ``step()``. Statistics are never dropped: the
queue is unbounded. Snapshots may be: while ``max_pending_snapshots`` are still waiting, a new
step's set is refused and counted (``meta.dropped_snapshots``), unless ``drop_snapshots`` is off;
then the training thread waits for a free slot (right for offline runs that want every frame).
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netxray._watch_analysis import StepAnalysis, StepBatch, StepMsg
from netxray.store import RunDB


@dataclass
class _Snapshot:
    step: int
    results: list[tuple[str, str, Any]]  # (kind, name, result)


class Flush:
    """A marker in a background thread's queue, done once everything before it is."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def wait(self, thread: threading.Thread) -> None:
        """Block until done, or until ``thread`` has died (it will never be done then)."""
        while not self.done.wait(0.1):
            if not thread.is_alive():
                return


def release_flushes(q: queue.SimpleQueue[Any]) -> None:
    """Empty the queue of a thread that died, so that nobody waits on a Flush in it."""
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, Flush):
            item.done.set()


_CLOSE = object()


class Writer:
    """Owns the :class:`RunDB` once started; every method here is for the training thread."""

    def __init__(self, db: RunDB, analysis: StepAnalysis, *, commit_interval: float = 0.5,
                 max_pending_snapshots: int = 2, drop_snapshots: bool = True) -> None:
        self.db = db
        self.analysis = analysis
        self.commit_interval = commit_interval
        self.max_pending_snapshots = max_pending_snapshots
        self.drop_snapshots = drop_snapshots
        self.alarms: collections.deque[tuple[Any, Any]] = collections.deque()
        self.error: BaseException | None = None
        self.dropped = 0
        self._pending_snapshots = 0
        self._lock = threading.Condition()  # guards the snapshot slots; notified when one frees
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._urgent = threading.Event()  # a flush or close is waiting: do not sleep
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="netxray-watch-writer", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- training thread
    def put(self, msg: StepMsg | StepBatch) -> None:
        self._q.put(msg)

    def snapshot(self, step: int, take: Callable[[], list[tuple[str, str, Any]]]) -> None:
        """Queue ``take()``'s snapshots ``(kind, name, result)`` of ``step``, if a slot is
        free (see :meth:`take_snapshot`); ``take`` is not called otherwise."""
        if not self.take_snapshot():
            return
        try:
            results = take()
        except BaseException:
            self.release_snapshot()
            raise
        self.put_snapshot(step, results)

    def take_snapshot(self) -> bool:
        """Whether a snapshot may be queued now; if not, it is counted as dropped. Without
        ``drop_snapshots`` this waits for a free slot (False only if the writer has died)."""
        with self._lock:
            if not self.drop_snapshots:
                self._lock.wait_for(lambda: self._pending_snapshots < self.max_pending_snapshots
                                    or not self._thread.is_alive() or self.error is not None)
            if self._pending_snapshots >= self.max_pending_snapshots:
                self.dropped += 1
                return False
            self._pending_snapshots += 1
            return True

    def release_snapshot(self) -> None:
        """Give back a slot reserved by :meth:`take_snapshot` without queueing anything."""
        with self._lock:
            self._pending_snapshots -= 1
            self._lock.notify_all()

    def put_snapshot(self, step: int, results: list[tuple[str, str, Any]]) -> None:
        """Queue one step's snapshots ``(kind, name, result)`` (after :meth:`take_snapshot`)."""
        self._q.put(_Snapshot(step, results))
        self._urgent.set()  # rare and large: write it now rather than let them pile up

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        if not self._thread.is_alive():
            return
        f = Flush()
        self._q.put(f)
        self._urgent.set()
        f.wait(self._thread)

    def close(self, meta: dict[str, Any]) -> None:
        """Flush, write ``meta``, commit and stop the thread."""
        if self._thread.is_alive():
            self._q.put((_CLOSE, meta))
            self._urgent.set()
            self._thread.join()

    # ------------------------------------------------------------------- writer thread
    def _run(self) -> None:
        """Wake at most every ``commit_interval`` (or at once for a flush or close), take
        everything queued, handle it in order and commit once: few wake-ups, so the
        training thread rarely waits for the GIL."""
        try:
            while True:
                batch = [self._q.get()]
                if not self._urgent.is_set():
                    self._urgent.wait(max(0.0, self._last + self.commit_interval - time.monotonic()))
                self._urgent.clear()
                while True:
                    try:
                        batch.append(self._q.get_nowait())
                    except queue.Empty:
                        break
                for item in batch:
                    if isinstance(item, tuple) and item and item[0] is _CLOSE:
                        self.db.set_meta(**item[1], dropped_snapshots=self.dropped)
                        self.db.close()
                        return
                    if isinstance(item, Flush):
                        self._commit()
                        item.done.set()
                    else:
                        self._handle(item)
                        time.sleep(0)  # let a training thread waiting for the GIL in
                self._commit()
        except BaseException as e:  # surfaced on the training thread at its next step()
            self.error = e
            try:
                self.db.con.rollback()
                self.db.con.close()
            except Exception:
                pass
            self._release_waiters()

    def _release_waiters(self) -> None:
        with self._lock:
            self._lock.notify_all()  # a training thread waiting for a snapshot slot
        release_flushes(self._q)

    def _handle(self, item: Any) -> None:
        if isinstance(item, _Snapshot):
            try:
                for kind, name, result in item.results:
                    self.db.write_snapshot(kind, name, item.step, result.to_bytes())
            finally:
                with self._lock:
                    self._pending_snapshots -= 1
                    self._lock.notify_all()
            return
        if item.event is not None:
            item.event.synchronize()  # the GPU -> CPU copies of this step are done
        for ev in self.analysis.handle(item):
            self.alarms.append(ev)

    def _commit(self) -> None:
        self.db.set_meta(dropped_snapshots=self.dropped)
        self.db.commit()
        self._last = time.monotonic()
