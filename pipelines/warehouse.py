"""Connections to the DuckDB warehouse.

DuckDB allows one writing process per file. Writers wait and retry on a lock conflict (an analyst's
notebook or the web UI holding the file) instead of failing the run, and say what they are waiting for.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from pipelines import sqlfiles
from pipelines.settings import DEFAULT_MEMORY_LIMIT, check_memory_limit

log = logging.getLogger(__name__)


class WarehouseError(RuntimeError):
    """The warehouse could not be opened or written; the message says which file and why."""


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflict" in text or "could not set lock" in text)


# How long a writer waits for another process's lock before giving up (see connect).
LOCK_WAIT_SECONDS = 60.0


def memory_limit_from_env() -> str:
    """``SLOSCOPE_MEMORY_LIMIT``, else :data:`DEFAULT_MEMORY_LIMIT` (for callers without settings)."""
    return check_memory_limit(os.environ.get("SLOSCOPE_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT))


def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating its folder and schema when writable).

    ``memory_limit``: DuckDB's limit for this connection (see :func:`check_memory_limit`); None takes
    ``SLOSCOPE_MEMORY_LIMIT`` or :data:`DEFAULT_MEMORY_LIMIT`.

    While another process holds the file's lock, wait up to ``wait_seconds`` (logging a warning that
    names the file at each retry), then raise :class:`WarehouseError`; nothing is written before the
    lock is ours.
    """
    db = Path(path)
    limit = memory_limit_from_env() if memory_limit is None else check_memory_limit(memory_limit)
    if not read_only:
        if db.parent.exists() and not db.parent.is_dir():
            raise WarehouseError(
                f"cannot create the warehouse {db}: {db.parent} is a file, not a folder; "
                "choose another warehouse path (SLOSCOPE_WAREHOUSE or --db)"
            )
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"cannot create the warehouse folder {db.parent}: {exc.strerror}") from exc
    elif not db.exists():
        raise WarehouseError(f"warehouse {db} does not exist; ingest data first (sloscope ingest)")
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    while True:
        try:
            con = duckdb.connect(str(db), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise WarehouseError(f"cannot open warehouse {db}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise WarehouseError(
                    f"warehouse {db} is still locked by another process after waiting {wait_seconds:g}s; "
                    "nothing was written. Close the process holding it (a notebook, the Dagster UI, another "
                    f"sloscope run) or try again later. DuckDB said: {exc}"
                ) from exc
            log.warning(
                "warehouse %s is locked by another process; waiting for the lock (retrying in %.1fs, "
                "giving up after %gs)",
                db,
                delay,
                wait_seconds,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    try:
        # Naive TIMESTAMPs hold UTC throughout; make casts from TIMESTAMPTZ agree.
        con.execute("SET TimeZone = 'UTC'")
        if limit:
            con.execute("SET memory_limit = $limit", {"limit": limit})
        if not read_only:
            sqlfiles.run(con, "schema")
    except duckdb.Error as exc:  # a full disk or a read-only file while creating the schema
        con.close()
        raise WarehouseError(f"cannot prepare warehouse {db}: {exc}") from exc
    return con


@contextmanager
def open_warehouse(
    path: Path | str,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only, wait_seconds=wait_seconds, memory_limit=memory_limit)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a crash or error inside leaves the warehouse as it was."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def query_frame(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None) -> pl.DataFrame:
    """Run a query with bound parameters; a polars frame (duckdb 2 has ``.pl()`` on relations only)."""
    # con.sql() refuses to run while an execute() result is open (duckdb 2); the copy execute() makes
    # for Arrow is cheap at the sizes queried here (aggregates, not raw events).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        table = con.execute(query, params or {}).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = $t AND schema_name = current_schema()",
        {"t": table},
    ).fetchone()
    return bool(row and row[0])


def optional_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    params: dict,
    notes: list[str],
    *,
    missing: str = "Table {table} does not exist in this warehouse.",
    unreadable: str = "Could not read {table}: {error}",
) -> list[dict]:
    """Rows of a table a warehouse may lack (created by a later version, or a later asset): a missing or
    older-shaped table gives no rows and a note for the reader (``missing`` / ``unreadable``), not an
    error."""
    if not table_exists(con, table):
        notes.append(missing.format(table=table))
        return []
    try:
        cursor = con.execute(query, params)
    except duckdb.Error as exc:  # e.g. a column added after this warehouse was created
        notes.append(unreadable.format(table=table, error=exc))
        return []
    columns = [d[0] for d in cursor.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
