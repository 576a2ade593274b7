"""Settings: defaults work out of the box, the environment overrides the file, bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import REPO_ROOT, SettingsError, load_settings
from tests.conftest import write


def test_defaults_resolve_inside_the_repository() -> None:
    settings = load_settings(environ={})
    assert settings.warehouse == REPO_ROOT / "data" / "warehouse" / "sloscope.duckdb"
    assert settings.slos == REPO_ROOT / "data" / "slos"
    assert settings.at_risk_remaining == 0.25


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.toml", '[paths]\nwarehouse = "w/x.duckdb"\n[evaluation]\nat_risk_remaining = 0.5\n'
    )
    settings = load_settings(
        path, environ={"SLOSCOPE_LANDING_DIR": "/srv/landing", "SLOSCOPE_SMTP_PORT": "2525"}
    )
    assert settings.warehouse == tmp_path / "w" / "x.duckdb"  # relative to the settings file
    assert settings.landing == Path("/srv/landing")
    assert settings.at_risk_remaining == 0.5
    assert settings.smtp.port == 2525


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SLOSCOPE_SMTP_PORT": "twenty-five"}, "SLOSCOPE_SMTP_PORT: expected int"),
        ({"SLOSCOPE_AT_RISK_REMAINING": "2"}, "at_risk_remaining: expected a share between 0 and 1"),
        ({"SLOSCOPE_SMTP_TLS": "maybe"}, "smtp tls: expected one of none, starttls, ssl"),
        ({"SLOSCOPE_LOCK_WAIT_SECONDS": "-1"}, "lock_wait_seconds: expected 0 to 86400"),
        # The value reaches a SET statement (bound, but DuckDB parses it): only sizes are accepted.
        ({"SLOSCOPE_MEMORY_LIMIT": "2GB'; DROP TABLE x; --"}, "memory_limit: expected a size such as 2GB"),
        ({"SLOSCOPE_MEMORY_LIMIT": "lots"}, "memory_limit: expected a size such as 2GB"),
        ({"SLOSCOPE_QUALITY_COMPLETENESS_TOLERANCE": "1"}, r"completeness_tolerance: expected a share"),
        ({"SLOSCOPE_QUALITY_FRESHNESS_SEVERITY": "page"}, "freshness_severity: expected error or warn"),
        ({"SLOSCOPE_QUALITY_MAX_LATENCY_MS": "0"}, "max_latency_ms: expected a number > 0"),
        ({"SLOSCOPE_RETENTION_RAW": "two weeks"}, r"raw: expected a number of days such as '14d'"),
        # Raw events kept longer than minute aggregates: the minutes would go first and never be rebuilt.
        ({"SLOSCOPE_RETENTION_RAW": "120d"}, r"minute \(90d\) is kept shorter than raw \(120d\)"),
    ],
)
def test_bad_values_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "[paths\n")
    with pytest.raises(SettingsError, match=r"broken\.toml: not valid TOML"):
        load_settings(path, environ={})


def test_quality_retention_and_lock_wait_overrides() -> None:
    settings = load_settings(
        environ={
            "SLOSCOPE_LOCK_WAIT_SECONDS": "5",
            "SLOSCOPE_QUALITY_COMPLETENESS_SEVERITY": "warn",
            "SLOSCOPE_QUALITY_FRESHNESS_MINUTES": "90",
            "SLOSCOPE_RETENTION_RAW": "7d",
        }
    )
    assert settings.lock_wait_seconds == 5.0
    assert settings.quality.completeness_severity == "warn"
    assert settings.quality.freshness_minutes == 90
    # The repository's sloscope.toml gives the other tiers; the variable replaces raw only.
    assert settings.retention == {
        "raw": "7d",
        "minute": "90d",
        "hour": "400d",
        "day": "forever",
        "quarantine": "90d",
    }


def test_memory_limit_reaches_warehouse_connections(tmp_path: Path) -> None:
    from pipelines.warehouse import connect

    settings = load_settings(environ={"SLOSCOPE_MEMORY_LIMIT": "512MiB"})
    assert settings.memory_limit == "512MiB"
    con = connect(tmp_path / "w.duckdb", memory_limit=settings.memory_limit)
    try:
        # DuckDB reports 512 MiB as 512.0 MiB; 2**29 bytes either way.
        shown = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # type: ignore[index]
        assert shown.replace(".0", "") == "512 MiB"
    finally:
        con.close()
    # Empty: DuckDB's own default (a share of RAM), larger than the 2GB sloscope sets otherwise.
    assert load_settings(environ={"SLOSCOPE_MEMORY_LIMIT": ""}).memory_limit == ""
