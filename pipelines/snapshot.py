"""Snapshots of the warehouse for analysts: a private DuckDB file that nothing else ever locks.

DuckDB allows one writing process per file, and on DuckDB 2.0 a process holding the file - even read-only
- makes every other process's writer fail with a lock conflict (and a writer makes read-only opens fail
too). An analyst's notebook that keeps a connection open for an afternoon would therefore stall the
pipeline. A snapshot holds the warehouse's lock only for the copy (about 2 s for the 90-day demo
warehouse, well under a second for the analysis tables alone); the notebook then works on its own file.

The copy is consistent: it runs in one read-only session, and no writer can change the file while that
session holds the lock. It is made with ``ATTACH ... (READ_ONLY)`` and ``COPY FROM DATABASE`` (DuckDB
0.10+, tables, views and macros included) from an in-memory connection, because a database attached from
a read-only *main* database is itself read-only and could not receive the copy.

The snapshot is written under a temporary name and renamed when complete and the warehouse released, so
whoever sees ``<timestamp>.duckdb`` sees a whole snapshot, and the warehouse is already free again.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.warehouse import WarehouseError, _is_lock_conflict

__all__ = ["ANALYSIS_TABLES", "snapshot"]

log = logging.getLogger(__name__)

# What the analyst notebooks read: evaluations, hourly and daily history and the objectives they refer to.
ANALYSIS_TABLES: tuple[str, ...] = ("slo_objectives", "slo_status", "slo_hourly", "slo_history")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _snapshot_path(dest_dir: Path) -> Path:
    # Microseconds and a counter: two snapshots in the same second must not overwrite each other.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S_%fZ")
    path = dest_dir / f"{stamp}.duckdb"
    suffix = 1
    while path.exists() or path.with_name(path.name + ".partial").exists():
        path = dest_dir / f"{stamp}-{suffix}.duckdb"
        suffix += 1
    return path


def _attach_source(con: duckdb.DuckDBPyConnection, warehouse: Path, wait_seconds: float) -> None:
    """Attach the warehouse read-only, retrying while a writer holds it (the writer's runs are short)."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    while True:
        try:
            con.execute(f"ATTACH {_sql_string(str(warehouse))} AS src (READ_ONLY)")
            return
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise WarehouseError(f"cannot open warehouse {warehouse} for a snapshot: {exc}") from exc
            if time.monotonic() >= deadline:
                raise WarehouseError(
                    f"cannot snapshot warehouse {warehouse}: another process has been writing to it for "
                    f"{wait_seconds:.0f} s (DuckDB allows no reader while a writer holds the file). Retry "
                    f"when the pipeline run has finished, or pass a longer wait. DuckDB said: {exc}"
                ) from exc
            log.warning(
                "warehouse %s is locked by a writer; retrying the snapshot in %.1fs", warehouse, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def snapshot(
    warehouse: Path,
    dest_dir: Path | None = None,
    *,
    tables: Sequence[str] | None = None,
    wait_seconds: float = 10.0,
) -> Path:
    """Copy the warehouse into a new DuckDB file for analysis and return the copy's path.

    ``dest_dir`` defaults to a new temporary folder (the caller deletes it when done); given, the snapshot
    is ``dest_dir/<UTC timestamp>.duckdb``, e.g. ``data/warehouse/snapshots/``. ``tables`` limits the copy
    to those tables (faster and smaller, for notebooks that only read aggregates); None copies the whole
    database, tables, views and macros. While a writer holds the warehouse the snapshot retries for
    ``wait_seconds`` and then raises :class:`WarehouseError` saying so.
    """
    source = Path(warehouse).resolve()
    if not source.is_file():
        raise WarehouseError(f"warehouse {source} does not exist; run the pipeline first (make demo)")
    folder = Path(tempfile.mkdtemp(prefix="sloscope-snapshot-")) if dest_dir is None else Path(dest_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = _snapshot_path(folder)
    partial = final.with_name(final.name + ".partial")
    started = time.monotonic()
    con = duckdb.connect()  # in memory: only the attached files are touched
    try:
        _attach_source(con, source, wait_seconds)
        con.execute(f"ATTACH {_sql_string(str(partial))} AS snap")
        if tables is None:
            con.execute("COPY FROM DATABASE src TO snap")
        else:
            present = {
                name
                for (name,) in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'src'"
                ).fetchall()
            }
            missing = [t for t in tables if t not in present]
            if missing:
                raise WarehouseError(
                    f"warehouse {source} has no table(s) {missing}; expected some of {sorted(present)}"
                )
            # One transaction over a read-only source: every table is read as of the same moment.
            con.execute("BEGIN TRANSACTION")
            for table in tables:
                name = _sql_identifier(table)
                con.execute(f"CREATE TABLE snap.main.{name} AS SELECT * FROM src.main.{name}")
            con.execute("COMMIT")
        con.execute("DETACH snap")
        con.execute("DETACH src")
    except BaseException:
        con.close()
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)
        if dest_dir is None:
            folder.rmdir()  # ours and now empty: a failed snapshot leaves nothing behind
        raise
    con.close()
    os.replace(partial, final)
    log.info("snapshot of %s in %s (%.1f s)", source, final, time.monotonic() - started)
    return final
