"""Late and out-of-order data: which stored daily history rows and which rendered period reports a
recomputation of SLI minutes makes stale, and the pending file that carries them to the late-data sensor.

Ingestion marks the minutes each file touches as dirty; ``refresh_aggregates`` recomputes exactly those
minutes. A history row for day *d* is an evaluation as of the end of *d*, which reads every minute of its
:func:`~pipelines.slo.budget.evaluation_span` (the SLO window and the longest burn-rate window), so the
row is stale when that span overlaps a recomputed range. A period report (monthly, quarterly) is stale when
its own evaluation as of the period's end reads a recomputed minute, or when it reads a stale history day.

The pending file (``stale_partitions.json`` beside the warehouse) is how the asset that recomputes the
aggregates tells a sensor what to re-materialise without the sensor ever opening DuckDB::

    {"generation": 7,
     "history":   {"2026-09-03": {"token": "…", "marked_at": 1.79e9, "slos": ["checkout-availability"]}},
     "monthly":   {"2026-09-01": {"token": "…", "marked_at": 1.79e9, "end": "2026-09-30T22:00:00",
                                  "waits_for": ["2026-09-03"]}},
     "quarterly": {"2026-07-01": {…}},
     "unsettled": {"<journal id>": {"ranges": [["2026-09-03T10:00:00", "2026-09-03T10:05:00"]], …}}}

Keys are partition keys. Every marking gives the entries it touches a fresh random ``token``: the sensor's
run keys include it, so re-reading the same staleness asks for nothing new while a new late file for the
same day asks again. Writes are read-modify-write under an exclusive ``flock`` on a sidecar lock file and
land with ``os.replace``, so readers (the sensor, without the lock) never see half a file. A history day
is cleared only if its token is still the one read before the day was re-evaluated (compare-and-delete):
staleness marked while an evaluation was running survives it. The ranges a refresh is about to recompute
are journaled under ``unsettled`` before it starts and settled in the write that marks what they made
stale: a refresh killed between its commit and that write leaves the journal, and the next refresh marks
those ranges too (the sensor never sees a half-done marking, and none is lost).

No Dagster here.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipelines import sqlfiles
from pipelines.slo.aggregate import AggregateReport, merge_ranges
from pipelines.slo.budget import evaluation_span
from pipelines.slo.report import HISTORY_DAYS
from pipelines.slo.spec import SloDefinition

Interval = tuple[datetime, datetime]
PERIOD_KINDS = ("monthly", "quarterly")
PENDING_NAME = "stale_partitions.json"


class PendingFileError(ValueError):
    """The pending file exists but is not what :func:`write_pending` writes."""


# --- which history days and period reports are stale -----------------------------------------------------


def overlaps(span: Interval, intervals: Iterable[Interval]) -> bool:
    """Whether the half-open ``span`` shares an instant with any of the half-open ``intervals``."""
    start, end = span
    return any(low < end and start < high for low, high in intervals)


def history_as_of(day: date) -> datetime:
    """A history row for ``day`` is the evaluation as of the end of that UTC day."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def with_composites(chosen: list[SloDefinition], slos: list[SloDefinition]) -> list[SloDefinition]:
    """``chosen`` plus every other component of a composite one of them belongs to (a composite's whole is
    computed from all its components, so they are recomputed together)."""
    names = {s.name for s in chosen}
    composites = {s.composite for s in chosen if s.composite}
    return chosen + [s for s in slos if s.composite in composites and s.name not in names]


def history_days_touched(
    stored: Mapping[str, Iterable[date]],
    slos: list[SloDefinition],
    touches: Callable[[SloDefinition, datetime, datetime], bool],
) -> dict[date, list[SloDefinition]]:
    """Stored history days (``slo name -> days`` with a row) whose evaluation span ``touches`` reports as
    changed for an SLO, with the SLOs to recompute that day (composites completed). ``touches(slo, start,
    end)`` gets the span ``[start, end)`` the row of that day read."""
    affected: dict[date, list[SloDefinition]] = {}
    for slo in slos:
        for day in stored.get(slo.name, ()):
            start, end = evaluation_span(slo, history_as_of(day))
            if touches(slo, start, end):
                affected.setdefault(day, []).append(slo)
    return {day: with_composites(chosen, slos) for day, chosen in sorted(affected.items())}


def stored_history_days(con: duckdb.DuckDBPyConnection, since: date) -> dict[str, list[date]]:
    """Every SLO's stored history days from ``since`` on, in one query."""
    stored: dict[str, list[date]] = {}
    for day, slo in con.execute(sqlfiles.sql("history_days_since"), {"since": since}).fetchall():
        stored.setdefault(slo, []).append(day)
    return stored


def stale_history_days(
    con: duckdb.DuckDBPyConnection, slos: list[SloDefinition], ranges: list[Interval]
) -> dict[date, list[SloDefinition]]:
    """Stored history days whose rows read a minute of the recomputed ``ranges``."""
    if not ranges:
        return {}
    # A row for day d reads minutes before the end of d only: days ending at or before the first
    # recomputed minute cannot have read it.
    since = min(start for start, _ in ranges).date()
    return history_days_touched(
        stored_history_days(con, since), slos, lambda _slo, start, end: overlaps((start, end), ranges)
    )


@dataclass(frozen=True)
class Period:
    """One partition of a period report: its key and its ``[start, end)`` in naive UTC."""

    key: str
    start: datetime
    end: datetime


def period_reads_day(period: Period, day: date) -> bool:
    """Whether a period report reads the history row of ``day``: the portfolio reports take the days whose
    middle falls inside the period, the service report's achieved history the days that ended in the
    :data:`~pipelines.slo.report.HISTORY_DAYS` before the period's end."""
    middle = datetime.combine(day, datetime.min.time()) + timedelta(hours=12)
    ended = history_as_of(day)
    return period.start <= middle < period.end or (
        period.end - timedelta(days=HISTORY_DAYS) < ended <= period.end
    )


def stale_periods(
    periods: Iterable[Period], slos: list[SloDefinition], ranges: list[Interval], stale_days: Iterable[date]
) -> dict[str, tuple[Period, list[date]]]:
    """Period reports made stale: ``key -> (period, stale history days it reads)``. A report is stale when
    it reads a stale history day (it must wait for that day to be recomputed) or when its evaluation as of
    the period's end reads a recomputed minute."""
    days = sorted(set(stale_days))
    if not ranges and not days:
        return {}
    stale: dict[str, tuple[Period, list[date]]] = {}
    for period in periods:
        waits = [d for d in days if period_reads_day(period, d)]
        if waits or any(overlaps(evaluation_span(slo, period.end), ranges) for slo in slos):
            stale[period.key] = (period, waits)
    return stale


# --- the pending file -------------------------------------------------------------------------------------


def pending_file(warehouse: Path) -> Path:
    """Where the stale partitions wait for the late-data sensor (beside the warehouse, like breaches.json)."""
    return Path(warehouse).parent / PENDING_NAME


def empty_pending() -> dict[str, Any]:
    return {"generation": 0, "history": {}, **{kind: {} for kind in PERIOD_KINDS}, "unsettled": {}}


def read_pending(path: Path) -> dict[str, Any]:
    """The pending file's content; empty when there is none. Raises PendingFileError naming the file and
    the part that is not as written."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_pending()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PendingFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PendingFileError(f"{path}: expected an object at the top, got {type(data).__name__}")
    pending = empty_pending()
    if not isinstance(data.get("generation", 0), int):
        raise PendingFileError(f"{path}: generation: expected an integer, got {data['generation']!r}")
    pending["generation"] = data.get("generation", 0)
    for section in ("history", *PERIOD_KINDS):
        entries = data.get(section, {})
        if not isinstance(entries, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("token"), str) for e in entries.values()
        ):
            raise PendingFileError(f"{path}: {section}: expected partition key -> {{token, ...}} objects")
        pending[section] = entries
    unsettled = data.get("unsettled", {})
    if not isinstance(unsettled, dict) or not all(
        isinstance(j, dict) and isinstance(j.get("ranges"), list) for j in unsettled.values()
    ):
        raise PendingFileError(f"{path}: unsettled: expected journal id -> {{ranges: [[start, end], ...]}}")
    pending["unsettled"] = unsettled
    return pending


def write_pending(path: Path, pending: Mapping[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(pending, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextmanager
def locked(path: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write of the pending file under an exclusive lock on ``<file>.lock``: yields the
    content to change in place, written back (atomically) when the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            pending = read_pending(path)
            before = json.dumps(pending, sort_keys=True)
            yield pending
            if json.dumps(pending, sort_keys=True) != before:
                write_pending(path, pending)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def mark_stale(
    path: Path,
    history: Mapping[date, Iterable[str]],
    periods: Mapping[str, Mapping[str, tuple[Period, list[date]]]],
    *,
    settle: Iterable[str] = (),
    now: float | None = None,
) -> str | None:
    """Merge stale history days (with SLO names) and stale periods (``kind -> key -> (period, days it
    waits for)``) into the pending file, and drop the journals ``settle`` names, in one write. Entries
    already pending keep their SLOs and waited-for days; every entry touched gets this marking's new token.
    Returns the token (None when there was nothing to mark)."""
    settled = list(settle)
    if not history and not any(periods.values()):
        if settled and path.exists():
            with locked(path) as pending:
                for journal in settled:
                    pending["unsettled"].pop(journal, None)
        return None
    token = uuid.uuid4().hex[:12]
    stamp = time.time() if now is None else now
    with locked(path) as pending:
        for journal in settled:
            pending["unsettled"].pop(journal, None)
        pending["generation"] += 1
        for day, names in history.items():
            entry = pending["history"].get(day.isoformat(), {})
            slos = sorted(set(entry.get("slos", [])) | set(names))
            pending["history"][day.isoformat()] = {"token": token, "marked_at": stamp, "slos": slos}
        for kind, stale in periods.items():
            for key, (period, waits) in stale.items():
                entry = pending[kind].get(key, {})
                waits_for = sorted(set(entry.get("waits_for", [])) | {d.isoformat() for d in waits})
                pending[kind][key] = {
                    "token": token,
                    "marked_at": stamp,
                    "end": period.end.isoformat(),
                    "waits_for": waits_for,
                }
    return token


def journal_ranges(path: Path, ranges: list[Interval]) -> tuple[str | None, dict[str, list[Interval]]]:
    """Before recomputing ``ranges``: record them as unsettled, so that a crash between the aggregates'
    commit and :func:`mark_stale` cannot lose what they make stale. Returns this journal's id (None when
    there is nothing to record) and the journals earlier refreshes left unsettled (they crashed), whose
    ranges this refresh must mark too. Call it holding the warehouse (no other refresh runs meanwhile)."""
    if not ranges and not path.exists():
        return None, {}
    journal = uuid.uuid4().hex[:12] if ranges else None
    with locked(path) as pending:
        leftovers = {
            key: [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in entry["ranges"]]
            for key, entry in pending["unsettled"].items()
        }
        if journal is not None:
            pending["unsettled"][journal] = {
                "ranges": [[a.isoformat(), b.isoformat()] for a, b in ranges],
                "started_at": time.time(),
            }
    return journal, leftovers


@dataclass(frozen=True)
class LateData:
    """What one refresh made stale (as marked in the pending file)."""

    ranges: list[Interval]
    history: dict[date, list[SloDefinition]]
    periods: dict[str, dict[str, tuple[Period, list[date]]]]
    token: str | None


def refresh_and_mark(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    path: Path,
    periods: Mapping[str, list[Period]],
    refresh: Callable[[], AggregateReport],
) -> tuple[AggregateReport, LateData]:
    """Run ``refresh`` (the aggregates' recomputation of the dirty ranges) and mark in the pending file the
    stored history days and the ``periods`` (``kind -> complete periods``) it made stale.

    The dirty ranges are journaled in the file first and settled in the same write as the marking, so a
    crash after the aggregates' commit leaves the journal, and the next refresh marks its ranges too.
    The marking comes after the commit: a history run that reads the token can only read the new data.
    """
    dirty = merge_ranges([(s, e) for s, e in con.execute(sqlfiles.sql("dirty_ranges")).fetchall()])
    journal, leftovers = journal_ranges(path, dirty)
    report = refresh()
    ranges = merge_ranges([*report.ranges, *(r for found in leftovers.values() for r in found)])
    days = stale_history_days(con, slos, ranges)
    stale = {kind: stale_periods(found, slos, ranges, days) for kind, found in periods.items()}
    token = mark_stale(
        path,
        {day: [s.name for s in chosen] for day, chosen in days.items()},
        stale,
        settle=[*([journal] if journal else []), *leftovers],
    )
    return report, LateData(ranges, days, stale, token)


def history_token(path: Path, day: date) -> str | None:
    """The token of ``day``'s pending entry (read before re-evaluating the day), if it is pending."""
    entry = read_pending(path)["history"].get(day.isoformat())
    return entry["token"] if entry else None


def clear(path: Path, section: str, key: str, token: str) -> bool:
    """Remove a pending entry if its token is still ``token`` (staleness marked since stays pending)."""
    if not path.exists():
        return False
    with locked(path) as pending:
        entry = pending[section].get(key)
        if entry is None or entry["token"] != token:
            return False
        del pending[section][key]
        return True


def clear_history_day(path: Path, day: date, token: str | None) -> bool:
    """After ``day``'s history rows were stored: no longer pending, unless marked again meanwhile."""
    return token is not None and clear(path, "history", day.isoformat(), token)


def run_key(section: str, key: str, entry: Mapping[str, Any]) -> str:
    """The same staleness asks once; a new marking (new token) of the same partition asks again."""
    return f"late-data:{section}:{key}:{entry['token']}"
