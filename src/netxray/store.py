"""The run store: one SQLite file per training run, written by :func:`netxray.watch`.

A run is a folder holding ``run.sqlite`` (``runs/exp1/run.sqlite``; SQLite's ``-wal`` and
``-shm`` files sit beside it while it is written). Any path ending in ``.sqlite`` is used as
the file itself. The file is in WAL mode with ``synchronous=NORMAL``: a commit is one append
to the log, a process killed at any moment leaves every committed transaction readable, and
readers never block the writer. The schema is versioned in the ``meta`` table; a foreign,
truncated or newer file is refused with :class:`RunFormatError`.

Tables (``docs/watch.md`` has the full schema): ``meta`` and ``config`` (key -> JSON),
``steps``, ``layers``, ``layer_stats`` and ``unit_stats`` (``WITHOUT ROWID``, keyed
``(layer_id, step)`` so one layer over all steps is one range scan), ``params`` and
``param_stats``, ``snapshots`` (``Result.to_bytes()`` BLOBs) and ``findings`` (alarm events).
Arrays are BLOBs whose dtype and shape the schema fixes. The schema, its versions and how
a NaN is stored (a flag beside each column where NULL means "not recorded") are in
:mod:`netxray.store_schema`.

This module holds the rest of the SQL: :class:`RunDB` writes (used by the watcher's writer
thread), :func:`open_run` reads into result objects (``netxray.store_results``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from netxray._results import Result
from netxray.store_results import (
    FindingEvent,
    LayerInfo,
    LayerSeries,
    ParamSeries,
    StepSeries,
    UnitSeries,
)
from netxray.store_schema import (
    FORMAT_NAME,
    LAYER_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    RunFormatError,
    check_size,
    check_version,
    encode_rows,
    flag_sql,
    insert_sql,
)

RUN_FILE = "run.sqlite"


def run_file(path: str | os.PathLike[str]) -> Path:
    """The SQLite file of a run: ``path`` itself if it ends in ``.sqlite``, else
    ``path/run.sqlite``."""
    p = Path(path)
    return p if p.suffix == ".sqlite" else p / RUN_FILE


def read_only_uri(file: Path) -> str:
    """The SQLite URI that reads ``file`` without writing anything beside it.

    While a writer has the run open its ``-wal`` file exists and ``mode=ro`` shares it. With
    no ``-wal`` no writer is connected, and ``mode=ro`` alone would still create ``-wal`` and
    ``-shm`` files in the run's folder, so the file is opened ``immutable`` (no locks, no
    side files)."""
    uri = file.resolve().as_uri() + "?mode=ro"
    return uri if Path(f"{file}-wal").exists() else uri + "&immutable=1"


def _pragmas(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")


def _json(v: Any) -> str:
    return json.dumps(v, allow_nan=True, default=str)


def _replaceable(file: Path) -> bool:
    """Whether ``file`` is a netxray run store (any schema version) or empty: the only files
    ``overwrite=True`` may delete (never a user's own database that happens to be there)."""
    if file.stat().st_size == 0:
        return True
    try:
        con = sqlite3.connect(read_only_uri(file), uri=True)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        finally:
            con.close()
        return row is not None and json.loads(row[0]) == FORMAT_NAME
    except (sqlite3.DatabaseError, ValueError, TypeError):
        return False


def run_files(file: Path) -> tuple[Path, ...]:
    """The run store ``file`` and the side files SQLite keeps beside it."""
    return tuple(Path(f"{file}{extra}") for extra in ("", "-wal", "-shm", "-journal"))


def check_new_run(file: Path, *, overwrite: bool) -> bool:
    """Raise unless a run may be written at ``file``; return whether a run is there now
    (which ``overwrite`` allows replacing). Errors carry an errno and the path."""
    if file.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, f"{file} is a folder; a run is written to FOLDER/{RUN_FILE}, or to a "
            "path ending in .sqlite that is not a folder: pick another path", str(file))
    if not file.exists():
        return False
    if not _replaceable(file):
        raise RunFormatError(
            f"{file} exists and is not a netxray run, so netxray will not replace it (not "
            "even with overwrite=True or --overwrite): pick another path"
        )
    if not overwrite:
        raise FileExistsError(errno.EEXIST, f"a run already exists at {file}; pick a new path, "
                              "or pass overwrite=True to replace it", str(file))
    return True


class RunDB:
    """The writing side: one connection, used by one thread at a time (the writer)."""

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        file = run_file(path)
        if check_new_run(file, overwrite=overwrite):
            for side in run_files(file):
                side.unlink(missing_ok=True)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # (a file where the run's folder would go, no permission...)
            raise type(e)(e.errno, f"{e.strerror} (the run's folder cannot be created there: "
                          "pick another path)", e.filename) from None
        self.file = file
        self.con = sqlite3.connect(file, check_same_thread=False, isolation_level=None)
        try:
            _pragmas(self.con)
            self.con.executescript("BEGIN;" + SCHEMA + "COMMIT;")
            self.layer_ids: dict[str, int] = {}
            self.param_ids: dict[str, int] = {}
            self.begin()
            self.set_meta(format=FORMAT_NAME, schema_version=SCHEMA_VERSION,
                          netxray_version=_version(), created=time.time(), status="running",
                          dropped_snapshots=0)
            self.commit()
        except BaseException:  # (a full or read-only disk): no stub that blocks the next try
            self.con.close()
            for side in run_files(file):
                with contextlib.suppress(OSError):  # (a read-only disk refuses even that)
                    side.unlink(missing_ok=True)
            raise

    # transactions: the writer batches many steps into one
    def begin(self) -> None:
        if not self.con.in_transaction:
            self.con.execute("BEGIN")

    def commit(self) -> None:
        if self.con.in_transaction:
            self.con.execute("COMMIT")

    def close(self) -> None:
        self.commit()
        self.con.close()

    def set_meta(self, **items: Any) -> None:
        self.begin()
        self.con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [(k, _json(v)) for k, v in items.items()])

    def set_config(self, config: dict[str, Any]) -> None:
        self.begin()
        self.con.executemany("INSERT OR REPLACE INTO config VALUES (?, ?)",
                             [(str(k), _json(v)) for k, v in config.items()])

    def add_layer(self, info: LayerInfo) -> int:
        self.begin()
        cur = self.con.execute(
            "INSERT INTO layers (name, position, module_type, family, units, shape, saturation,"
            " hist_edges) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (info.name, len(self.layer_ids), info.module_type, info.family, info.units,
             _json(list(info.shape)), None if info.saturation is None else _json(list(info.saturation)),
             np.ascontiguousarray(info.hist_edges, dtype=np.float64).tobytes()),
        )
        self.layer_ids[info.name] = int(cur.lastrowid)
        return self.layer_ids[info.name]

    def param_id(self, name: str, shape: tuple[int, ...]) -> int:
        pid = self.param_ids.get(name)
        if pid is None:
            self.begin()
            cur = self.con.execute("INSERT INTO params (name, shape) VALUES (?, ?)",
                                   (name, _json(list(shape))))
            pid = self.param_ids[name] = int(cur.lastrowid)
        return pid

    # Rows hold NaN as a float NaN and "not recorded" as None; ``encode_rows`` stores both
    # (``netxray.store_schema``).
    def write_steps(self, rows: Iterable[tuple[int, float, float | None, str | None]]) -> None:
        """Rows ``(step, time, loss, metrics JSON)``."""
        self._write("steps", rows)

    def write_layer_stats(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows ``(layer_id, step, *LAYER_COLUMNS, hist bytes)``."""
        self._write("layer_stats", rows)

    def write_unit_stats(self, rows: list[tuple[int, int, bytes, bytes | None]]) -> None:
        self.begin()
        self.con.executemany("INSERT OR REPLACE INTO unit_stats VALUES (?, ?, ?, ?)", rows)

    def write_param_stats(self, rows: Iterable[tuple[int, int, float | None, float | None,
                                                     float | None]]) -> None:
        """Rows ``(param_id, step, weight_norm, grad_norm, update_ratio)``."""
        self._write("param_stats", rows)

    def _write(self, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self.begin()
        self.con.executemany(insert_sql(table), encode_rows(table, rows))

    def write_snapshot(self, kind: str, name: str, step: int, data: bytes) -> None:
        self.begin()
        self.con.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                         (kind, name, step, data))

    def write_finding(self, ev: FindingEvent) -> None:
        self.begin()
        self.con.execute(
            "INSERT INTO findings (step, event, kind, severity, layer, units, message, advice,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ev.step, ev.event, ev.kind, ev.severity, ev.layer, _json(list(ev.units)),
             ev.message, ev.advice, _json(ev.evidence)),
        )


def _version() -> str:
    from netxray import __version__

    return __version__


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _recorded(values: np.ndarray, flags: Any) -> np.ndarray:
    """Where a value was recorded: a number (Inf included), or NULL flagged as NaN."""
    return ~np.isnan(values) | (np.asarray(flags, dtype=np.int64).reshape(values.shape) != 0)


class Run:
    """A run store opened for reading (:func:`open_run`). Every accessor returns arrays over
    the recorded steps, in step order; use it as a context manager or call :meth:`close`.
    ``schema_version``: the file's (a file of schema 1 stored NaN as "not recorded")."""

    def __init__(self, file: Path, con: sqlite3.Connection, schema_version: int) -> None:
        self.file = file
        self._con = con
        self.schema_version = schema_version
        self.closed = False
        self._steps: StepSeries | None = None
        self.meta: dict[str, Any] = {k: json.loads(v) for k, v in self._q("SELECT * FROM meta")}
        self.config: dict[str, Any] = {k: json.loads(v) for k, v in self._q("SELECT * FROM config")}
        self._layers: dict[str, tuple[int, LayerInfo]] = {}
        for lid, name, _pos, mtype, family, units, shape, sat, edges in self._q(
            "SELECT * FROM layers ORDER BY position"
        ):
            info = LayerInfo(name=name, module_type=mtype, family=family, units=int(units),
                             shape=tuple(json.loads(shape)),
                             saturation=None if sat is None else tuple(json.loads(sat)),
                             hist_edges=np.frombuffer(edges, dtype=np.float64).copy())
            self._layers[name] = (int(lid), info)
        self._params = {name: int(pid) for pid, name in self._q("SELECT param_id, name FROM params ORDER BY param_id")}

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        if self.closed:
            raise ValueError(f"this run ({self.file}) is closed; open it again with "
                             "netxray.open_run to read it")
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise RunFormatError(f"{self.file} is truncated or corrupt ({e})") from None

    def close(self) -> None:
        self.closed = True
        self._con.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed and self._steps is None:
            return f"<Run {self.file} (closed)>"
        return (f"<Run {self.file}: {len(self.steps.step)} steps, {len(self._layers)} layers"
                + (" (closed)>" if self.closed else ">"))

    @property
    def layers(self) -> dict[str, LayerInfo]:
        """``name -> LayerInfo`` in forward order (module type, family, units, edges)."""
        return {n: info for n, (_, info) in self._layers.items()}

    @property
    def params(self) -> list[str]:
        """Names of the parameters with statistics."""
        return list(self._params)

    @property
    def dropped_snapshots(self) -> int:
        """Snapshots the writer dropped because it had fallen behind (never statistics)."""
        return int(self.meta.get("dropped_snapshots", 0))

    def _flag(self, table: str, column: str) -> str:
        return flag_sql(table, column, self.schema_version)

    @property
    def steps(self) -> StepSeries:
        """Every step's loss, wall time and metrics (recorded every step)."""
        if self._steps is None:
            rows = self._q(f"SELECT step, time, loss, {self._flag('steps', 'loss')}, metrics "
                           "FROM steps ORDER BY step")
            n = len(rows)
            metrics: dict[str, list[float]] = {}
            given: dict[str, np.ndarray] = {}
            for i, (*_, m) in enumerate(rows):
                for k, v in (json.loads(m) if m else {}).items():  # (JSON keeps NaN and Inf)
                    metrics.setdefault(k, [np.nan] * n)[i] = np.nan if v is None else v
                    given.setdefault(k, np.zeros(n, dtype=bool))[i] = v is not None
            loss = _floats([r[2] for r in rows])
            self._steps = StepSeries(
                step=np.array([r[0] for r in rows], dtype=np.int64),
                time=np.array([r[1] for r in rows], dtype=np.float64),
                loss=loss, loss_recorded=_recorded(loss, [r[3] for r in rows]),
                metrics={k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()},
                metrics_recorded=given,
            )
        return self._steps

    def _layer(self, name: str) -> tuple[int, LayerInfo]:
        if name not in self._layers:
            import difflib

            close = difflib.get_close_matches(name, list(self._layers), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
            raise ValueError(f"layer {name!r} not in this run{hint} Layers: "
                             f"{', '.join(self._layers)}")
        return self._layers[name]

    def layer_stats(self, layer: str) -> LayerSeries:
        """One layer's statistics at every recorded step: two range scans of the table (the
        numbers straight into one float array, then the histogram BLOBs)."""
        lid, info = self._layer(layer)
        rows = self._q("SELECT step, " + ", ".join(LAYER_COLUMNS) + ", "
                       + self._flag("layer_stats", "grad_rms") + " FROM layer_stats "
                       "WHERE layer_id = ? ORDER BY step", (lid,))
        a = np.array(rows, dtype=np.float64).reshape(len(rows), 2 + len(LAYER_COLUMNS))  # NULL -> NaN
        columns = {c: a[:, i + 1].copy() for i, c in enumerate(LAYER_COLUMNS)}
        nb = len(info.hist_edges) + 1 if len(info.hist_edges) else 0
        empty = bytes(8 * nb)
        blobs = self._q("SELECT hist FROM layer_stats WHERE layer_id = ? ORDER BY step", (lid,))
        hist = np.frombuffer(b"".join([h or empty for (h,) in blobs]), dtype=np.int64)
        return LayerSeries(
            layer=layer,
            step=a[:, 0].astype(np.int64),
            **columns,
            grad_recorded=_recorded(columns["grad_rms"], a[:, -1]),
            hist=hist.reshape(len(rows), nb).copy(),
            hist_edges=info.hist_edges,
        )

    def unit_stats(self, layer: str) -> UnitSeries:
        """Per-unit activity and saturation ``(steps, units)`` at every recorded step."""
        lid, info = self._layer(layer)
        rows = self._q("SELECT step, activity, saturation FROM unit_stats WHERE layer_id = ? "
                       "ORDER BY step", (lid,))
        n, u = len(rows), info.units
        act = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(n, u)
        sat = None
        if info.saturation is not None:
            nan = np.full(u, np.nan, dtype=np.float32).tobytes()
            sat = np.frombuffer(b"".join(r[2] or nan for r in rows), dtype=np.float32)
            sat = sat.reshape(n, u).copy()
        return UnitSeries(layer=layer, step=np.array([r[0] for r in rows], dtype=np.int64),
                          activity=act.copy(), saturation=sat)

    def param_stats(self, name: str) -> ParamSeries:
        """A parameter's weight norm, gradient norm and update-to-weight ratio over steps."""
        if name not in self._params:
            raise ValueError(f"parameter {name!r} not in this run; parameters: "
                             f"{', '.join(self._params)}")
        flags = (self._flag("param_stats", "grad_norm"), self._flag("param_stats", "update_ratio"))
        rows = self._q(f"SELECT step, weight_norm, grad_norm, update_ratio, {flags[0]}, {flags[1]} "
                       "FROM param_stats WHERE param_id = ? ORDER BY step", (self._params[name],))
        cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
        grad, update = _floats(list(cols[2])), _floats(list(cols[3]))
        return ParamSeries(name=name, step=np.asarray(cols[0], dtype=np.int64),
                           weight_norm=_floats(list(cols[1])), grad_norm=grad,
                           update_ratio=update, grad_recorded=_recorded(grad, cols[4]),
                           update_recorded=_recorded(update, cols[5]))

    @property
    def findings(self) -> tuple[FindingEvent, ...]:
        """Every alarm event (``raised`` / ``cleared``) in the order they happened."""
        rows = self._q("SELECT step, event, kind, severity, layer, units, message, advice, "
                       "evidence FROM findings ORDER BY id")
        return tuple(
            FindingEvent(step=int(s), event=e, kind=k, severity=sev, layer=layer,
                         units=tuple(json.loads(u)), message=m, advice=a, evidence=json.loads(ev))
            for s, e, k, sev, layer, u, m, a, ev in rows
        )

    @property
    def first_nonfinite(self) -> FindingEvent | None:
        """The event naming the step and the layer where NaN/Inf first appeared, or None."""
        return next((f for f in self.findings if f.kind == "nonfinite" and f.event == "raised"),
                    None)

    def snapshots(self, kind: str, name: str | None = None) -> dict[int, Result]:
        """``step -> result`` of one kind of snapshot (``"activations"``, ``"boundary"``,
        ``"unit_maps"``); ``name`` is needed only when a kind has several."""
        names = [r[0] for r in self._q("SELECT DISTINCT name FROM snapshots WHERE kind = ?", (kind,))]
        if name is None:
            if len(names) > 1:
                raise ValueError(f"snapshots of kind {kind!r} have several names ({', '.join(names)}); "
                                 "pass name=")
            name = names[0] if names else ""
        rows = self._q("SELECT step, data FROM snapshots WHERE kind = ? AND name = ? ORDER BY step",
                       (kind, name))
        return {int(s): Result.from_bytes(d, source=f"snapshot {kind}/{name} at step {s}")
                for s, d in rows}

    def unit_death_steps(self, layer: str) -> dict[int, int]:
        """``unit -> step`` at which each dead unit died: its activity (fraction of values > 0)
        was 0 at that recorded step and at every recorded step after it. Units that are
        alive at the last recorded step, or whose last steps are NaN, are left out."""
        steps = self.unit_stats(layer).death_steps()
        return {int(u): int(steps[u]) for u in np.flatnonzero(steps >= 0)}


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run store for reading: the run folder (``runs/exp1``) or its ``.sqlite`` file.

    Readable while the run is still being written, and after a crash up to the last
    committed step. Raises :class:`RunFormatError` for a file that is not a netxray run, is
    truncated, or was written by a newer netxray.
    """
    file = run_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"no run at {path} (looked for {file}); watch() creates one")
    check_size(file)
    con = sqlite3.connect(read_only_uri(file), uri=True, check_same_thread=False)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            raise RunFormatError(f"{file} is an SQLite file but not a netxray run (no meta table)")
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        con.close()
        raise RunFormatError(f"{file} is not a readable netxray run: it is not an SQLite file, "
                             f"or it is truncated or corrupt ({e})") from None
    except RunFormatError:
        con.close()
        raise
    try:
        return Run(file, con, check_version(file, meta))
    except BaseException:
        con.close()
        raise
