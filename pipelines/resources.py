"""Dagster resources, built from settings (``sloscope.toml`` + environment) per deployment."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from pipelines.settings import Settings
from pipelines.slo.alert_config import AlertingConfig, load_alerting
from pipelines.slo.policies import PolicySet, load_policies
from pipelines.slo.retention import RetentionPolicy, parse_retention
from pipelines.slo.spec import SloDefinition, load_slos
from pipelines.warehouse import DEFAULT_MEMORY_LIMIT, open_warehouse

# Every asset and check that opens the DuckDB warehouse claims a slot of this pool; dagster.yaml gives it
# one slot, so runs may overlap while warehouse steps still take turns (DuckDB allows one writing process,
# and an open reader blocks it too).
DUCKDB_POOL = "duckdb_writer"


class SloscopeResource(ConfigurableResource):
    """Where the warehouse, landing folder, SLO files and reports live, and evaluation settings."""

    warehouse: str
    landing: str
    reports: str
    slos: str
    policies: str = ""
    alerting: str = ""
    sources: str = ""
    report_recipients: str = ""
    at_risk_remaining: float = 0.25
    max_clock_skew_seconds: int = 300
    kernel_name: str = "sloscope"
    # How long a run waits for another process's DuckDB lock before failing with a clear error.
    lock_wait_seconds: float = 60.0
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    # Data-quality thresholds and retention; see QualitySettings and [retention] in sloscope.toml.
    max_latency_ms: float = 600_000.0
    completeness_tolerance: float = 0.05
    completeness_hours: int = 24
    freshness_minutes: int = 30
    completeness_severity: str = "error"
    freshness_severity: str = "warn"
    retention: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> "SloscopeResource":
        return cls(
            warehouse=str(settings.warehouse),
            landing=str(settings.landing),
            reports=str(settings.reports),
            slos=str(settings.slos),
            policies=str(settings.policies),
            alerting=str(settings.alerting) if settings.alerting else "",
            sources=str(settings.sources) if settings.sources else "",
            report_recipients=str(settings.report_recipients) if settings.report_recipients else "",
            at_risk_remaining=settings.at_risk_remaining,
            max_clock_skew_seconds=settings.max_clock_skew_seconds,
            lock_wait_seconds=settings.lock_wait_seconds,
            memory_limit=settings.memory_limit,
            max_latency_ms=settings.quality.max_latency_ms,
            completeness_tolerance=settings.quality.completeness_tolerance,
            completeness_hours=settings.quality.completeness_hours,
            freshness_minutes=settings.quality.freshness_minutes,
            completeness_severity=settings.quality.completeness_severity,
            freshness_severity=settings.quality.freshness_severity,
            retention=dict(settings.retention),
        )

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(
            self.warehouse,
            read_only=read_only,
            wait_seconds=self.lock_wait_seconds,
            memory_limit=self.memory_limit,
        ) as con:
            yield con

    def load_slos(self) -> list[SloDefinition]:
        return load_slos(Path(self.slos))

    def load_policies(self) -> PolicySet:
        """The error budget policies file; the built-in defaults when none is configured or present."""
        return load_policies(Path(self.policies) if self.policies else None)

    def retention_policy(self) -> RetentionPolicy:
        """The retention policy of the settings (defaults for tiers not given)."""
        return parse_retention(self.retention, "settings [retention]")

    def load_alerting(self) -> AlertingConfig:
        """Alert rules, routes and channels; built-in defaults (no channels) when no file is configured."""
        return load_alerting(Path(self.alerting) if self.alerting else None)
