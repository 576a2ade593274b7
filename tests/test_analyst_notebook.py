"""The analyst notebook and its snapshots: a tiny warehouse whose period SLIs are worked out by hand, the
notebook run clean by papermill, and the locking behaviour DuckDB 2.0 actually allows.

What DuckDB 2.0 does across processes (checked on this machine): while one process holds the file for
writing, another cannot open it even read-only; while one holds it read-only, no other can write. So no
notebook can *start* a snapshot while a writer holds the warehouse. What we guarantee instead: the
snapshot holds the lock only for the copy, after which a writer opens the warehouse while the notebook is
still running; and a snapshot attempted under a writer waits, then fails with a message that says why.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines import workflows
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from pipelines.snapshot import snapshot
from pipelines.warehouse import WarehouseError, connect
from tests.conftest import REPO_ROOT, write

NOTEBOOK = REPO_ROOT / "notebooks" / "explore_slos.ipynb"

SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability, displayName: Shop availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}, {displayName: "99.5%", target: 0.995}]
"""

START = datetime(2026, 3, 2)
PERIOD_A = "2026-03-02/2026-03-04"  # 48 hours, 100 requests and 1 failure each
PERIOD_B = "2026-03-04/2026-03-06"  # 48 hours, 100 requests and 2 failures each


def _landing(folder: Path) -> None:
    lines = ["timestamp,service,operation,total,good"]
    for h in range(4 * 24):
        moment = START + timedelta(hours=h)
        bad = 1 if h < 48 else 2
        lines.append(f"{moment:%Y-%m-%dT%H:%M}:00Z,shop,pay,100,{100 - bad}")
    # One row after period B so that the evaluation (and slo_hourly) covers all of it.
    lines.append("2026-03-06T00:00:00Z,shop,pay,100,100")
    write(folder / "shop.csv", "\n".join(lines) + "\n")


@pytest.fixture
def tiny_warehouse(tmp_path: Path) -> Path:
    """A closed warehouse holding four days of hourly counts for one SLO with two objectives."""
    _landing(tmp_path / "landing")
    write(tmp_path / "slos" / "shop.yaml", SLO)
    slos = load_slos(tmp_path / "slos")
    db = tmp_path / "warehouse.duckdb"
    con = connect(db)
    try:
        ingest_paths(con, [tmp_path / "landing"], max_clock_skew_seconds=300)
        workflows.store_objectives(con, slos)
        workflows.refresh(con, slos)
        as_of, _ = workflows.evaluate_and_store(
            con, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
        )
        workflows.store_hourly(con, slos, as_of)
    finally:
        con.close()
    return db


def _hold_writer(db: Path) -> subprocess.Popen[str]:
    """Another process holding the warehouse for writing (a pipeline run), until its stdin closes."""
    code = (
        "import sys, duckdb\n"
        f"con = duckdb.connect({str(db)!r})\n"
        "print('holding', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def _papermill(output: Path, cwd: Path, **parameters: object) -> subprocess.Popen[str]:
    """papermill in its own process, as an analyst would run it; PYTHONPATH reaches this checkout."""
    args = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(output), "-k", "sloscope"]
    args += ["--cwd", str(cwd), "--no-progress-bar", "--no-log-output"]
    for name, value in parameters.items():
        args += ["-p", name, str(value)] if not isinstance(value, bool) else ["-y", f"{name}: {value}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _errors(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for c in cells
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o["output_type"] == "error"
    ]


# ---------------------------------------------------------------------------------------------------------
# snapshot() on its own


def test_snapshot_copies_everything_into_a_new_file(tiny_warehouse: Path, tmp_path: Path) -> None:
    path = snapshot(tiny_warehouse, tmp_path / "snaps")
    assert path.parent == tmp_path / "snaps" and path.suffix == ".duckdb"
    assert not list((tmp_path / "snaps").glob("*.partial"))
    con = duckdb.connect(str(path), read_only=True)
    try:
        # 97 hours of data: 4 days plus the hour at 2026-03-06 00:00.
        assert con.execute("SELECT count(*), sum(total) FROM slo_hourly").fetchone() == (97, 9700)
        assert con.execute("SELECT count(*) FROM slo_objectives").fetchone() == (2,)
        # Macros come along with a whole-database copy.
        assert con.execute("SELECT sloscope_epoch_seconds('1700000000')").fetchone() == (1700000000.0,)
    finally:
        con.close()
    # The warehouse is free again: a writer opens it at once.
    connect(tiny_warehouse, wait_seconds=0).close()


def test_snapshot_of_chosen_tables_in_a_temporary_folder(tiny_warehouse: Path) -> None:
    path = snapshot(tiny_warehouse, tables=["slo_hourly", "slo_objectives"])
    try:
        con = duckdb.connect(str(path), read_only=True)
        tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        con.close()
        assert tables == {"slo_hourly", "slo_objectives"}
    finally:
        path.unlink()
        path.parent.rmdir()
    with pytest.raises(WarehouseError, match=r"no table\(s\) \['nope'\]"):
        snapshot(tiny_warehouse, tables=["nope"])


def test_snapshot_of_a_missing_warehouse_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=r"missing\.duckdb does not exist"):
        snapshot(tmp_path / "missing.duckdb")


def test_snapshot_under_a_writer_waits_then_says_why(tiny_warehouse: Path, tmp_path: Path) -> None:
    writer = _hold_writer(tiny_warehouse)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseError, match="another process has been writing to it"):
            snapshot(tiny_warehouse, tmp_path / "snaps", wait_seconds=0.5)
        assert time.monotonic() - started >= 0.5  # it retried rather than failing at once
    finally:
        writer.communicate("")
    assert not list((tmp_path / "snaps").iterdir())  # nothing half-written left behind


# ---------------------------------------------------------------------------------------------------------
# The notebook


@pytest.mark.slow
def test_notebook_runs_clean_and_a_writer_opens_the_warehouse_while_it_runs(
    tiny_warehouse: Path, tmp_path: Path
) -> None:
    output = tmp_path / "explore.ipynb"
    snaps = tmp_path / "snaps"
    comparison = tmp_path / "comparison.csv"
    run = _papermill(
        output,
        REPO_ROOT / "notebooks",
        warehouse=tiny_warehouse,
        use_snapshot=True,
        period_a=PERIOD_A,
        period_b=PERIOD_B,
        snapshot_dir=snaps,
        comparison_csv=comparison,
    )
    writer = None
    notebook_still_running = False
    try:
        # The snapshot file appears (renamed into place) only once the warehouse has been released.
        deadline = time.monotonic() + 120
        while not list(snaps.glob("*.duckdb")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # A pipeline run starts now and writes, with no wait allowed: the notebook holds no lock.
        writer = connect(tiny_warehouse, wait_seconds=0)
        notebook_still_running = run.poll() is None
        writer.execute(
            "INSERT INTO slo_hourly VALUES ('shop-availability', TIMESTAMP '2026-03-04 05:00', 0, 1000)"
        )
        _, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
        if writer is not None:
            writer.close()
    assert run.returncode == 0, stderr[-3000:]
    assert notebook_still_running, "the notebook finished before the writer opened; the test proved nothing"
    assert _errors(output) == []

    rows = {(r["slo"], r["objective"]): r for r in csv.DictReader(comparison.open(encoding="utf-8"))}
    assert set(rows) == {("shop-availability", "99%"), ("shop-availability", "99.5%")}
    for (_, objective), row in rows.items():
        # By hand: A = 48 h x 100 requests, 1 failure an hour -> 4800 requests, SLI 4752/4800 = 0.99.
        # B = 48 h x 100 requests, 2 failures an hour -> 4800, SLI 4704/4800 = 0.98. The writer's extra
        # hour in B came after the snapshot and must not show. Burn = (1 - SLI) / (1 - target).
        assert int(row["total A"]) == 4800 and int(row["total B"]) == 4800
        assert float(row["SLI A"]) == pytest.approx(0.99)
        assert float(row["SLI B"]) == pytest.approx(0.98)
        assert float(row["Δ SLI"]) == pytest.approx(-0.01)
        burn_a, burn_b = (1.0, 2.0) if objective == "99%" else (2.0, 4.0)
        assert float(row["burn A"]) == pytest.approx(burn_a)
        assert float(row["burn B"]) == pytest.approx(burn_b)
        assert float(row["Δ burn"]) == pytest.approx(burn_b - burn_a)
    # The snapshot was kept because a folder was given; the writer's row is in the warehouse only.
    kept = duckdb.connect(str(next(snaps.glob("*.duckdb"))), read_only=True)
    assert kept.execute("SELECT sum(total) FROM slo_hourly").fetchone() == (9700,)
    kept.close()


@pytest.mark.slow
def test_notebook_without_snapshot_and_default_periods(tiny_warehouse: Path, tmp_path: Path) -> None:
    output = tmp_path / "explore.ipynb"
    comparison = tmp_path / "comparison.csv"
    run = _papermill(
        output, tmp_path, warehouse=tiny_warehouse, use_snapshot=False, comparison_csv=comparison
    )
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-3000:]
    assert _errors(output) == []
    # Default periods: the newest hour is 2026-03-06 00:00, so B is the 7 days up to 2026-03-06 (excluded)
    # and A the 7 before it, which holds no data: no SLI, never a made-up 100%.
    row = next(csv.DictReader(comparison.open(encoding="utf-8")))
    assert row["SLI A"] == "" and int(row["total B"]) == 9600
    assert float(row["SLI B"]) == pytest.approx((4752 + 4704) / 9600)
    # Nothing holds the warehouse after the run.
    connect(tiny_warehouse, wait_seconds=0).close()


@pytest.mark.slow
def test_notebook_under_a_writer_fails_with_a_clear_message(tiny_warehouse: Path, tmp_path: Path) -> None:
    writer = _hold_writer(tiny_warehouse)
    try:
        run = _papermill(
            tmp_path / "explore.ipynb", tmp_path, warehouse=tiny_warehouse, lock_wait_seconds=0.5
        )
        _, stderr = run.communicate(timeout=300)
    finally:
        writer.communicate("")
    assert run.returncode != 0
    assert "another process has been writing to it" in stderr
