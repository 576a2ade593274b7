"""IO faults: another writer's lock, a full disk, unwritable paths (README "Guarantees", issue 7).

Each fault is real: a second process holds DuckDB's lock, a small tmpfs fills up, a tmpfs is remounted
read-only. Mounting needs root (CI runs as root on the same machine kind); where ``mount`` is not
permitted those tests skip and say so. Every mount is unmounted in a ``finally``.

What each must show: an error that names the file and the reason, one line on stderr from ``sloscope``
(no traceback), nothing lost or half written, and a re-run after the fault that gives the same result
as a run that never met it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import workflows
from pipelines.slo.dashboard import build_dashboard
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.report import render_service_report
from pipelines.slo.spec import load_slos
from pipelines.warehouse import WarehouseError, connect, open_warehouse
from tests.conftest import write

SLOSCOPE = Path(sys.executable).parent / "sloscope"
REPO = Path(__file__).resolve().parents[1]

# The holder is an analyst's session or a second run: it opens the warehouse for writing and keeps it.
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print("released", flush=True)
"""

SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability, displayName: Shop availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
"""


def _landing(folder: Path) -> Path:
    # 20 minutes of shop traffic, 10 requests a minute, one 503 every other minute; one junk row.
    lines = ["timestamp,service,operation,status_code,latency_ms"]
    for minute in range(20):
        for second in range(10):
            status = 503 if second == 0 and minute % 2 == 0 else 200
            lines.append(f"2026-03-01T10:{minute:02d}:{second:02d}Z,shop,pay,{status},25")
    lines.append("not-a-time,shop,pay,200,25")
    write(folder / "events.csv", "\n".join(lines) + "\n")
    return folder


def _big_landing(folder: Path, rows: int) -> Path:
    """An events file of ``rows`` pseudo-random rows (hash-based, so the same bytes every time)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "big.csv"
    duckdb.connect().execute(
        f"""COPY (SELECT strftime(TIMESTAMP '2026-03-01' + i * INTERVAL 137 MILLISECOND,
                                  '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp,
                         'svc' || (hash(i) % 50) AS service, 'op' || (hash(i * 3) % 200) AS operation,
                         CASE WHEN hash(i * 7) % 4 = 0 THEN 500 ELSE 200 END AS status_code,
                         round((hash(i * 11) % 1000000) / 1000.0, 3) AS latency_ms
              FROM range({rows}) t(i)) TO '{target}' (HEADER)"""
    )
    return folder


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    return subprocess.run(
        [str(SLOSCOPE), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def _one_error_line(stderr: str) -> str:
    """``sloscope`` failed cleanly: one ``error:`` line, no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _contents(db: Path) -> dict[str, list[tuple]]:
    """What ingestion stored, without the wall-clock columns."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "files": con.execute(
                "SELECT path, sha256, status, rows_read, rows_loaded, rows_quarantined, min_ts, max_ts "
                "FROM ingested_files ORDER BY path"
            ).fetchall(),
            "events": con.execute(
                "SELECT ts, service, operation, status_code, success, latency_ms, source_row "
                "FROM raw_events ORDER BY ALL"
            ).fetchall(),
            "quarantine": con.execute("SELECT source_row, reason FROM quarantine ORDER BY ALL").fetchall(),
        }
    finally:
        con.close()


def _summary(db: Path) -> tuple[list[tuple], int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        files = con.execute(
            "SELECT path, status, rows_read, rows_loaded, rows_quarantined FROM ingested_files ORDER BY path"
        ).fetchall()
        return files, con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------
# Mounts


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """``tmpfs("name", "2m")`` mounts a tmpfs of that size at ``tmp_path/name``; skips where mounting is
    not permitted (not root, no CAP_SYS_ADMIN, a container without mount rights)."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (the IO-fault tests run as root in CI)")
        result = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point))
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in reversed(mounted):
            if _run("umount", str(point)).returncode != 0:
                _run("umount", "-l", str(point))


def _remount(point: Path, options: str) -> None:
    result = _run("mount", "-o", f"remount,{options}", str(point))
    assert result.returncode == 0, result.stderr


def _fill(folder: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``folder`` until at most ``leave`` bytes are free."""
    filler = folder / "filler"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with filler.open("wb") as handle:
        try:
            handle.write(b"\0" * max(free - leave, 0))
            handle.flush()
        except OSError:
            pass
    return filler


# ---------------------------------------------------------------------------------------------------------
# 1. Another writer's lock


def _hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_ingest_waits_for_another_writers_lock_then_loads_the_same(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    free, locked = tmp_path / "free.duckdb", tmp_path / "locked.duckdb"
    for db in (free, locked):
        connect(db).close()

    plain = _cli("ingest", str(landing), "--db", str(free))
    assert plain.returncode == 0, plain.stderr

    holder = _hold(locked, 3.0)
    try:
        waited = _cli("ingest", str(landing), "--db", str(locked))
        released = holder.wait(timeout=30)
    finally:
        holder.kill()
    assert released == 0
    assert waited.returncode == 0, waited.stderr
    # It said what it waits for, naming the file, and then did the same work as without the lock.
    assert f"warehouse {locked} is locked by another process; waiting for the lock" in waited.stderr
    assert waited.stdout == plain.stdout
    assert "1 loaded, 0 skipped, 0 failed; rows: 201 read = 200 loaded + 1 quarantined" in waited.stdout
    assert _contents(locked) == _contents(free)


def test_lock_held_past_the_wait_limit_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    db = tmp_path / "w.duckdb"
    with open_warehouse(db) as con:
        ingest_paths(con, [landing])
    before = _contents(db)
    write(tmp_path / "more" / "later.csv", "timestamp,service,status_code\n2026-03-01T11:00:00Z,shop,200\n")

    holder = _hold(db, 60.0)
    try:
        with pytest.raises(WarehouseError) as caught, open_warehouse(db, wait_seconds=1.0) as con:
            ingest_paths(con, [tmp_path / "more"])
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert f"warehouse {db} is still locked by another process after waiting 1s" in message
    assert "nothing was written" in message and "Close the process holding it" in message
    assert f"PID {holder.pid}" in message  # DuckDB names the holder
    assert _contents(db) == before


# ---------------------------------------------------------------------------------------------------------
# 2. A full disk


BIG_ROWS = 300_000  # about 2.2 MB of warehouse (measured: 600,000 rows take 4.4 MB), so 1 MB cannot hold it


def test_full_warehouse_disk_fails_clearly_and_loses_nothing(
    tmp_path: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    landing = _big_landing(tmp_path / "landing", BIG_ROWS)
    _landing(landing)  # and the small file, which fits
    roomy = tmp_path / "roomy.duckdb"
    assert _cli("ingest", str(landing), "--db", str(roomy)).returncode == 0

    folder = tmpfs("wh", "1m")
    db = folder / "w.duckdb"
    full = _cli("ingest", str(landing), "--db", str(db))
    assert full.returncode == 1
    # One line per failed file (the big one, and the small one whose commit then found no room either),
    # each naming the file and the warehouse file that could not be written, and why.
    assert "Traceback" not in full.stderr
    errors = full.stderr.splitlines()
    assert errors[0].startswith(f"error: {landing / 'big.csv'}: ")
    for line in errors:
        assert line.startswith("error: ") and f'Could not write file "{db}' in line, line
        assert "No space left on device" in line
    assert f"failed   {landing / 'big.csv'}" in full.stdout
    # The warehouse still opens; the file that failed left nothing behind (its transaction rolled back).
    files, _ = _summary(db)
    assert [f for f in files if f[0] == str(landing / "big.csv")] == []

    _remount(folder, "size=256m")
    again = _cli("ingest", str(landing), "--db", str(db))
    assert again.returncode == 0, again.stderr
    # Per file: read = loaded + quarantined, and everything as on a roomy disk.
    files, events = _summary(db)
    assert all(read == loaded + quarantined for _, _, read, loaded, quarantined in files)
    assert (files, events) == _summary(roomy)
    assert events == BIG_ROWS + 200


def _small_warehouse(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, list[dict], pl.DataFrame, datetime]:
    """Three days of shop requests (one a minute, every 97th failing), evaluated: a report with charts."""
    lines = ["timestamp,service,operation,status_code,latency_ms"]
    start = datetime(2026, 3, 1)
    lines += [
        f"{start + timedelta(minutes=m):%Y-%m-%dT%H:%M}:00Z,shop,pay,{503 if m % 97 == 0 else 200},25"
        for m in range(3 * 1440)
    ]
    landing = tmp_path / "landing"
    write(landing / "events.csv", "\n".join(lines) + "\n")
    write(tmp_path / "slos" / "shop.yaml", SLO)
    slos = load_slos(tmp_path / "slos")
    con = connect(tmp_path / "w.duckdb")
    ingest_paths(con, [landing])
    workflows.refresh(con, slos)
    as_of, statuses = workflows.evaluate_and_store(
        con, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    workflows.store_hourly(con, slos, as_of)
    mine = [{**s.to_json(), "display_name": s.display_name} for s in statuses]
    return con, mine, workflows.report_hourly(con, "shop"), as_of


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.suffixes]


def test_full_reports_disk_keeps_the_old_dashboard_and_leaves_no_half_page(
    tmp_path: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    con, _, _, _ = _small_warehouse(tmp_path)
    reports = tmpfs("reports", "16m")
    page = build_dashboard(con, reports / "dashboard" / "index.html")
    before = page.read_bytes()
    _fill(reports)
    with pytest.raises(OSError) as caught:
        build_dashboard(con, reports / "dashboard" / "index.html")
    con.close()
    assert "No space left on device" in str(caught.value)
    assert str(page) in str(caught.value)
    assert page.read_bytes() == before  # the previous dashboard, whole
    assert _leftovers(reports) == []


@pytest.mark.slow
def test_full_reports_disk_while_rendering_leaves_no_page_that_looks_valid(
    tmp_path: Path, tmpfs: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.slo import report

    con, statuses, hourly, as_of = _small_warehouse(tmp_path)
    con.close()
    reports = tmpfs("reports", "16m")
    html = render_service_report("shop", statuses, hourly, reports, as_of=as_of)

    # The disk fills up while the notebook runs: the page itself is the write that fails.
    convert = report.notebook_to_html

    def convert_then_fill(*args: object, **kwargs: object) -> str:
        page = convert(*args, **kwargs)  # type: ignore[arg-type]
        _fill(reports)
        return page

    monkeypatch.setattr(report, "notebook_to_html", convert_then_fill)
    with pytest.raises(OSError) as caught:
        render_service_report("shop", statuses, hourly, reports, as_of=as_of)
    monkeypatch.undo()
    assert "No space left on device" in str(caught.value)
    assert str(html) in str(caught.value)
    assert not html.exists()
    assert _leftovers(reports) == []

    # A full disk from the start (a new period's folder): the first write fails, naming its file.
    (reports / "filler").unlink()
    # With room again, the same render works (the failed one left nothing in its way).
    again = render_service_report("shop", statuses, hourly, reports, as_of=as_of)
    assert again.read_text(encoding="utf-8").endswith("</html>\n")
    _fill(reports)
    with pytest.raises(OSError) as caught:
        render_service_report("shop", statuses, hourly, reports, as_of=as_of, period="2026-03")
    assert "No space left on device" in str(caught.value)
    assert str(reports / "2026-03" / "shop" / "data") in str(caught.value)
    assert not (reports / "2026-03" / "shop" / "report.html").exists()
    assert _leftovers(reports) == []


# ---------------------------------------------------------------------------------------------------------
# 3. Unwritable paths


def test_read_only_warehouse_folder_fails_clearly(tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    landing = _landing(tmp_path / "landing")
    folder = tmpfs("wh", "16m")
    db = folder / "w.duckdb"
    assert _cli("ingest", str(landing), "--db", str(db)).returncode == 0
    before = _contents(db)
    write(tmp_path / "more" / "later.csv", "timestamp,service,status_code\n2026-03-01T11:00:00Z,shop,200\n")
    _remount(folder, "ro")
    result = _cli("ingest", str(tmp_path / "more"), "--db", str(db))
    assert result.returncode == 2
    error = _one_error_line(result.stderr)
    assert f"cannot open warehouse {db}" in error and "Read-only file system" in error
    # A new warehouse on the read-only folder fails the same way.
    fresh = _cli("ingest", str(landing), "--db", str(folder / "new.duckdb"))
    assert fresh.returncode == 2
    assert str(folder / "new.duckdb") in _one_error_line(fresh.stderr)
    _remount(folder, "rw")
    assert _contents(db) == before


def test_warehouse_under_a_regular_file_fails_clearly(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    blocker = write(tmp_path / "not-a-folder", "x")
    result = _cli("ingest", str(landing), "--db", str(blocker / "w.duckdb"))
    assert result.returncode == 2
    error = _one_error_line(result.stderr)
    assert f"{blocker} is a file, not a folder" in error
    deeper = _cli("ingest", str(landing), "--db", str(blocker / "sub" / "w.duckdb"))
    assert deeper.returncode == 2
    assert str(blocker) in _one_error_line(deeper.stderr)
    assert blocker.read_text() == "x"


def test_read_only_reports_folder_fails_clearly(tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    con, statuses, hourly, as_of = _small_warehouse(tmp_path)
    reports = tmpfs("reports", "16m")
    _remount(reports, "ro")
    with pytest.raises(OSError) as caught:
        build_dashboard(con, reports / "dashboard" / "index.html")
    con.close()
    assert "Read-only file system" in str(caught.value) and str(reports / "dashboard") in str(caught.value)
    with pytest.raises(OSError) as caught:
        render_service_report("shop", statuses, hourly, reports, as_of=as_of, timeout_s=60)
    assert "Read-only file system" in str(caught.value) and str(reports) in str(caught.value)


def test_read_only_landing_folder(tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    landing = tmpfs("landing", "16m")
    _landing(landing)
    _remount(landing, "ro")
    # Ingestion only reads the landing folder: a read-only one is fine.
    db = tmp_path / "w.duckdb"
    result = _cli("ingest", str(landing), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "rows: 201 read = 200 loaded + 1 quarantined" in result.stdout
    # What writes there (the demo generator, like a pull) fails with the path and the reason.
    demo = _cli("generate-demo", "--out", str(landing), "--days", "7", "--scale", "0.01")
    assert demo.returncode == 2
    error = _one_error_line(demo.stderr)
    # polars shortens long paths in its errors ("...-root/…/landing/<file>"): the reason and the file.
    assert "Read-only file system" in error and "landing/checkout-events-" in error


def test_cli_reports_a_missing_warehouse_in_one_line(tmp_path: Path) -> None:
    result = _cli("latency", "--db", str(tmp_path / "missing.duckdb"), "--service", "shop",
                  "--from", "2026-03-01T10:00:00Z", "--to", "2026-03-01T11:00:00Z")  # fmt: skip
    assert result.returncode == 2
    assert f"warehouse {tmp_path / 'missing.duckdb'} does not exist" in _one_error_line(result.stderr)
