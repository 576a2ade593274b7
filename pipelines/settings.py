"""One settings file (``sloscope.toml``) with environment-variable overrides.

Secrets are deliberately absent from the file format: they are read from the environment by the
code that needs them, at the moment it needs them, and never stored on this object's repr.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

# DuckDB caches data up to its memory_limit, 80% of RAM by default: a 100 M-event aggregation held
# 7.5 GB. Bounded, larger operations spill to the temp folder beside the warehouse file instead.
DEFAULT_MEMORY_LIMIT = "2GB"
_MEMORY_LIMIT = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def check_memory_limit(value: str) -> str:
    """``value`` if it is empty (DuckDB's default) or a size DuckDB reads, such as ``2GB`` or ``512MiB``."""
    text = value.strip()
    if text and not _MEMORY_LIMIT.fullmatch(text):
        raise ValueError(f"expected a size such as 2GB, 512MiB or empty for DuckDB's default, got {value!r}")
    return text


REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_FILE = REPO_ROOT / "sloscope.toml"


# Evaluation intervals that divide an hour, so the schedule ticks at the same minutes every hour.
EVALUATE_INTERVALS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


class SettingsError(ValueError):
    """The settings file or an override is invalid; the message names the key."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"
    sender: str = "sloscope@localhost"


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the data-quality suites (assets/quality.py)."""

    # Latencies above this are implausible (a unit mix-up, a timeout sentinel) and fail the accuracy suite.
    max_latency_ms: float = 600_000.0
    # Completeness: share of the expected 1-minute buckets a series may miss over the last
    # `completeness_hours` of its data before the check fails (0.05 = 5%).
    completeness_tolerance: float = 0.05
    completeness_hours: int = 24
    # Timeliness: the newest data of every service is at most this old when the check runs.
    freshness_minutes: int = 30
    # "error" blocks downstream assets on failure; "warn" shows the failure and lets the run go on.
    completeness_severity: str = "error"
    freshness_severity: str = "warn"


@dataclass(frozen=True)
class Settings:
    warehouse: Path
    landing: Path
    reports: Path
    slos: Path
    policies: Path
    alerting: Path | None = None
    sources: Path | None = None
    report_recipients: Path | None = None
    evaluate_interval_minutes: int = 15
    max_clock_skew_seconds: int = 300
    at_risk_remaining: float = 0.25
    history_start: str = "2026-06-01"
    report_time_zone: str = "UTC"
    lock_wait_seconds: float = 60.0
    # DuckDB's memory_limit for warehouse connections ("" = DuckDB's own default, 80% of RAM).
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    # Tier -> "<N>d" or "forever", as written in [retention]; parsed by pipelines.slo.retention.
    retention: dict[str, str] = field(default_factory=dict)


# (section, key) -> (environment variable, type)
_OVERRIDES: dict[tuple[str, str], tuple[str, type]] = {
    ("paths", "warehouse"): ("SLOSCOPE_WAREHOUSE", Path),
    ("paths", "landing"): ("SLOSCOPE_LANDING_DIR", Path),
    ("paths", "reports"): ("SLOSCOPE_REPORTS_DIR", Path),
    ("paths", "slos"): ("SLOSCOPE_SLOS_DIR", Path),
    ("paths", "policies"): ("SLOSCOPE_POLICIES", Path),
    ("paths", "alerting"): ("SLOSCOPE_ALERTING", Path),
    ("paths", "sources"): ("SLOSCOPE_SOURCES", Path),
    ("paths", "report_recipients"): ("SLOSCOPE_REPORT_RECIPIENTS", Path),
    ("warehouse", "lock_wait_seconds"): ("SLOSCOPE_LOCK_WAIT_SECONDS", float),
    ("warehouse", "memory_limit"): ("SLOSCOPE_MEMORY_LIMIT", str),
    ("evaluation", "interval_minutes"): ("SLOSCOPE_EVALUATE_INTERVAL_MINUTES", int),
    ("ingest", "max_clock_skew_seconds"): ("SLOSCOPE_MAX_CLOCK_SKEW_SECONDS", int),
    ("evaluation", "at_risk_remaining"): ("SLOSCOPE_AT_RISK_REMAINING", float),
    ("history", "start_date"): ("SLOSCOPE_HISTORY_START", str),
    ("reports", "time_zone"): ("SLOSCOPE_REPORTS_TIME_ZONE", str),
    ("smtp", "host"): ("SLOSCOPE_SMTP_HOST", str),
    ("smtp", "port"): ("SLOSCOPE_SMTP_PORT", int),
    ("smtp", "tls"): ("SLOSCOPE_SMTP_TLS", str),
    ("smtp", "sender"): ("SLOSCOPE_SMTP_SENDER", str),
    ("quality", "max_latency_ms"): ("SLOSCOPE_QUALITY_MAX_LATENCY_MS", float),
    ("quality", "completeness_tolerance"): ("SLOSCOPE_QUALITY_COMPLETENESS_TOLERANCE", float),
    ("quality", "completeness_hours"): ("SLOSCOPE_QUALITY_COMPLETENESS_HOURS", int),
    ("quality", "freshness_minutes"): ("SLOSCOPE_QUALITY_FRESHNESS_MINUTES", int),
    ("quality", "completeness_severity"): ("SLOSCOPE_QUALITY_COMPLETENESS_SEVERITY", str),
    ("quality", "freshness_severity"): ("SLOSCOPE_QUALITY_FRESHNESS_SEVERITY", str),
    ("retention", "raw"): ("SLOSCOPE_RETENTION_RAW", str),
    ("retention", "minute"): ("SLOSCOPE_RETENTION_MINUTE", str),
    ("retention", "hour"): ("SLOSCOPE_RETENTION_HOUR", str),
    ("retention", "day"): ("SLOSCOPE_RETENTION_DAY", str),
    ("retention", "quarantine"): ("SLOSCOPE_RETENTION_QUARANTINE", str),
}


def _coerce(value: Any, kind: type, where: str) -> Any:
    try:
        if kind is Path:
            return Path(str(value))
        if kind is int and isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{where}: expected {kind.__name__}, got {value!r}") from exc


def _date_text(value: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise SettingsError(f"history start_date: expected a date such as 2026-06-01, got {value!r}") from exc


def _time_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(
            f"reports time_zone: {name!r} is not an IANA time zone such as Europe/Berlin"
        ) from exc
    return name


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the settings file (default: the repository's ``sloscope.toml``, or $SLOSCOPE_SETTINGS)."""
    env = os.environ if environ is None else environ
    settings_path = Path(path or env.get("SLOSCOPE_SETTINGS") or DEFAULT_SETTINGS_FILE)
    raw: dict[str, Any] = {}
    if settings_path.exists():
        try:
            raw = tomllib.loads(settings_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{settings_path}: not valid TOML: {exc}") from exc
    base = settings_path.resolve().parent

    values: dict[tuple[str, str], Any] = {}
    for (section, key), (variable, kind) in _OVERRIDES.items():
        if variable in env:
            values[(section, key)] = _coerce(env[variable], kind, variable)
        elif key in raw.get(section, {}):
            values[(section, key)] = _coerce(raw[section][key], kind, f"{settings_path} [{section}] {key}")

    def path_of(key: str, default: str) -> Path:
        p = Path(values.get(("paths", key), default))
        return p if p.is_absolute() else (base / p)

    tls = values.get(("smtp", "tls"), "none")
    if tls not in {"none", "starttls", "ssl"}:
        raise SettingsError(f"smtp tls: expected one of none, starttls, ssl; got {tls!r}")
    interval = values.get(("evaluation", "interval_minutes"), 15)
    if interval not in EVALUATE_INTERVALS:
        raise SettingsError(
            "evaluation interval_minutes: expected a whole number of minutes that divides an hour "
            f"({', '.join(map(str, EVALUATE_INTERVALS))}), got {interval}"
        )
    at_risk = values.get(("evaluation", "at_risk_remaining"), 0.25)
    if not 0.0 <= at_risk <= 1.0:
        raise SettingsError(f"evaluation at_risk_remaining: expected a share between 0 and 1, got {at_risk}")

    quality = _quality(values)
    lock_wait = values.get(("warehouse", "lock_wait_seconds"), 60.0)
    if not 0 <= lock_wait <= 86_400:
        raise SettingsError(f"warehouse lock_wait_seconds: expected 0 to 86400 seconds, got {lock_wait}")
    try:
        memory_limit = check_memory_limit(values.get(("warehouse", "memory_limit"), DEFAULT_MEMORY_LIMIT))
    except ValueError as exc:
        raise SettingsError(f"warehouse memory_limit: {exc}") from exc
    retention = {
        key: values[("retention", key)]
        for (section, key) in _OVERRIDES
        if section == "retention" and ("retention", key) in values
    }
    # Validated here so a bad policy fails at start-up, not at the first nightly run.
    from pipelines.slo.retention import RetentionError, parse_retention

    try:
        parse_retention(retention, f"{settings_path} [retention]")
    except RetentionError as exc:
        raise SettingsError(str(exc)) from exc

    return Settings(
        warehouse=path_of("warehouse", "data/warehouse/sloscope.duckdb"),
        landing=path_of("landing", "data/landing"),
        reports=path_of("reports", "reports"),
        slos=path_of("slos", "data/slos"),
        policies=path_of("policies", "data/policies.yaml"),
        alerting=path_of("alerting", "data/alerting.yaml"),
        sources=path_of("sources", "data/sources.yaml"),
        report_recipients=path_of("report_recipients", "data/report_recipients.yaml"),
        evaluate_interval_minutes=interval,
        max_clock_skew_seconds=values.get(("ingest", "max_clock_skew_seconds"), 300),
        at_risk_remaining=at_risk,
        history_start=_date_text(values.get(("history", "start_date"), "2026-06-01")),
        lock_wait_seconds=lock_wait,
        memory_limit=memory_limit,
        report_time_zone=_time_zone(values.get(("reports", "time_zone"), "UTC")),
        smtp=SmtpSettings(
            host=values.get(("smtp", "host"), "127.0.0.1"),
            port=values.get(("smtp", "port"), 25),
            tls=tls,
            sender=values.get(("smtp", "sender"), "sloscope@localhost"),
        ),
        quality=quality,
        retention=retention,
    )


def _quality(values: dict[tuple[str, str], Any]) -> QualitySettings:
    defaults = QualitySettings()
    chosen = {
        key: values.get(("quality", key), getattr(defaults, key))
        for key in QualitySettings.__dataclass_fields__
    }
    if not chosen["max_latency_ms"] > 0:
        raise SettingsError(f"quality max_latency_ms: expected a number > 0, got {chosen['max_latency_ms']}")
    if not 0.0 <= chosen["completeness_tolerance"] < 1.0:
        raise SettingsError(
            "quality completeness_tolerance: expected a share of missing minutes in [0, 1), "
            f"got {chosen['completeness_tolerance']}"
        )
    for key in ("completeness_hours", "freshness_minutes"):
        if chosen[key] < 1:
            raise SettingsError(f"quality {key}: expected a whole number >= 1, got {chosen[key]}")
    for key in ("completeness_severity", "freshness_severity"):
        if chosen[key] not in {"error", "warn"}:
            raise SettingsError(f"quality {key}: expected error or warn, got {chosen[key]!r}")
    return QualitySettings(**chosen)
