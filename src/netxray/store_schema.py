"""The run store's schema, its versions, and how a NaN is written to and read from it.

SQLite stores a float NaN bound to a REAL column as NULL, and NULL already means "not
recorded" (a step without a loss, a layer without a gradient). Where both can happen the
table has a flag column ``<column>_is_nan`` (``NAN_FLAGS``): a NaN is stored as NULL with the
flag 1, a value that was not recorded as NULL with the flag 0 (a CHECK keeps the flag 0
beside a number). +Inf and -Inf are REAL values and are stored as they are. Schema 1 had no
flags: its NULL there is either, and reads as "not recorded" (:func:`flag_sql`).

Columns without a flag never hold both: ``param_stats.weight_norm`` is recorded for every
parameter at every recorded step (NULL there is a NaN), and ``layer_stats``' ``mean``,
``scale``, ``min``, ``max`` and ``frac_*`` are statistics of the finite values (NULL: the
layer saw none, or the statistic does not apply; NaN/Inf values are counted in ``nan`` and
``inf``). Metrics are JSON, which writes ``NaN`` and ``Infinity`` as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "netxray-run"
#: Version of the schema below; readers refuse files with a higher one. 2: NaN flags.
SCHEMA_VERSION = 2
#: The oldest schema this netxray reads.
OLDEST_VERSION = 1

#: dtype and shape of every BLOB column (units: the layer's ``units``; bins: its edges + 1).
BLOBS = {
    "layers.hist_edges": ("float64", "(bins + 1,)"),
    "layer_stats.hist": ("int64", "(bins + 2,): below the first edge, between edges, above the last"),
    "unit_stats.activity": ("float32", "(units,)"),
    "unit_stats.saturation": ("float32", "(units,), NULL when the layer has no saturation band"),
    "snapshots.data": ("bytes", "Result.to_bytes()"),
}

#: table -> its REAL columns where NULL ("not recorded") and NaN both occur; each has a flag
#: column ``<column>_is_nan`` (schema 2 on)
NAN_FLAGS = {"steps": ("loss",), "layer_stats": ("grad_rms",),
             "param_stats": ("grad_norm", "update_ratio")}


def _flag(column: str) -> str:
    return (f"{column}_is_nan INTEGER NOT NULL DEFAULT 0 "
            f"CHECK ({column}_is_nan IN (0, 1) AND ({column}_is_nan = 0 OR {column} IS NULL))")


SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE steps (step INTEGER PRIMARY KEY, time REAL NOT NULL, loss REAL, metrics TEXT,
    {_flag("loss")});
CREATE TABLE layers (
    layer_id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, position INTEGER NOT NULL,
    module_type TEXT NOT NULL, family TEXT NOT NULL, units INTEGER NOT NULL,
    shape TEXT NOT NULL, saturation TEXT, hist_edges BLOB NOT NULL);
CREATE TABLE layer_stats (
    layer_id INTEGER NOT NULL, step INTEGER NOT NULL,
    mean REAL, scale REAL, min REAL, max REAL, frac_active REAL, frac_saturated REAL,
    dead INTEGER, nan INTEGER NOT NULL, inf INTEGER NOT NULL, grad_rms REAL, hist BLOB,
    {_flag("grad_rms")},
    PRIMARY KEY (layer_id, step)) WITHOUT ROWID;
CREATE TABLE unit_stats (
    layer_id INTEGER NOT NULL, step INTEGER NOT NULL, activity BLOB NOT NULL, saturation BLOB,
    PRIMARY KEY (layer_id, step)) WITHOUT ROWID;
CREATE TABLE params (param_id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, shape TEXT NOT NULL);
CREATE TABLE param_stats (
    param_id INTEGER NOT NULL, step INTEGER NOT NULL,
    weight_norm REAL, grad_norm REAL, update_ratio REAL,
    {_flag("grad_norm")}, {_flag("update_ratio")},
    PRIMARY KEY (param_id, step)) WITHOUT ROWID;
CREATE TABLE snapshots (
    kind TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (kind, name, step));
CREATE TABLE findings (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, event TEXT NOT NULL, kind TEXT NOT NULL,
    severity TEXT NOT NULL, layer TEXT, units TEXT NOT NULL, message TEXT NOT NULL,
    advice TEXT NOT NULL, evidence TEXT NOT NULL);
"""

LAYER_COLUMNS = ("mean", "scale", "min", "max", "frac_active", "frac_saturated", "dead", "nan",
                 "inf", "grad_rms")
#: the columns of the rows RunDB's writers take, in their order (flags added on the way)
ROW_COLUMNS = {
    "steps": ("step", "time", "loss", "metrics"),
    "layer_stats": ("layer_id", "step", *LAYER_COLUMNS, "hist"),
    "param_stats": ("param_id", "step", "weight_norm", "grad_norm", "update_ratio"),
}


class RunFormatError(ValueError):
    """A file is not a netxray run, is truncated or corrupt, or has a newer schema."""


# --------------------------------------------------------------------------------------
# NaN: writing and reading
# --------------------------------------------------------------------------------------


def insert_sql(table: str) -> str:
    """``INSERT OR REPLACE`` of one of ``ROW_COLUMNS``' tables, flag columns included."""
    cols = [*ROW_COLUMNS[table], *(f"{c}_is_nan" for c in NAN_FLAGS.get(table, ()))]
    return (f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' * len(cols))})")


def encode_rows(table: str, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """``rows`` (``ROW_COLUMNS[table]``, NaN as a float NaN, not recorded as None) as
    :func:`insert_sql` takes them: each flagged NaN to NULL, its flag to 1."""
    at = [ROW_COLUMNS[table].index(c) for c in NAN_FLAGS.get(table, ())]
    for row in rows:
        flags = tuple(int(_is_nan(row[i])) for i in at)
        if any(flags):
            row = tuple(None if i in at and _is_nan(v) else v for i, v in enumerate(row))
        yield (*row, *flags)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float | np.floating) and math.isnan(v)


def flag_sql(table: str, column: str, version: int) -> str:
    """The SELECT expression of ``column``'s NaN flag in a file of schema ``version``: the
    flag column, or 0 for a file written before flags (its NULL reads as not recorded)."""
    if column not in NAN_FLAGS.get(table, ()):
        raise ValueError(f"{table}.{column} has no NaN flag; flagged: {NAN_FLAGS}")
    return f"{column}_is_nan" if version >= 2 else "0"


# --------------------------------------------------------------------------------------
# refusing what is not a run this netxray reads
# --------------------------------------------------------------------------------------


def check_version(file: Path, meta: dict[str, str]) -> int:
    """The schema version of a run whose ``meta`` table holds ``meta`` (raw JSON values);
    :class:`RunFormatError` for a file that is not a netxray run or is newer."""
    try:
        fmt = json.loads(meta.get("format", "null"))
        version = json.loads(meta.get("schema_version", "null"))
    except (ValueError, TypeError):
        fmt = version = None
    if fmt != FORMAT_NAME or not isinstance(version, int) or isinstance(version, bool):
        raise RunFormatError(f"{file} is an SQLite file but not a netxray run (format {fmt!r})")
    if version > SCHEMA_VERSION:
        raise RunFormatError(f"{file} has run-store schema {version}, newer than this netxray "
                             f"reads ({SCHEMA_VERSION}); upgrade netxray to read it")
    if version < OLDEST_VERSION:
        raise RunFormatError(f"{file} claims run-store schema {version}; netxray has only "
                             f"written schemas {OLDEST_VERSION} to {SCHEMA_VERSION}, so the file "
                             "is not one of its runs")
    return version


def check_size(file: Path) -> None:
    """Refuse a file shorter than its header says (a truncated copy), and one without
    SQLite's magic header, before SQLite reads garbage."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise RunFormatError(f"{file} is not a netxray run: not an SQLite file"
                             + (" (it is empty or truncated)" if len(head) < 100 else ""))
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    wal = Path(f"{file}-wal")
    if pages and size < page * pages and not (wal.exists() and wal.stat().st_size):
        raise RunFormatError(f"{file} is truncated: {size:,} bytes of the {page * pages:,} its "
                             "header announces")
