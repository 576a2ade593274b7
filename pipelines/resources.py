"""Dagster resources, built from settings (``sloscope.toml`` + environment) per deployment."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

from pipelines.settings import Settings
from pipelines.slo.alert_config import AlertingConfig, load_alerting
from pipelines.slo.policies import PolicySet, load_policies
from pipelines.slo.spec import SloDefinition, load_slos
from pipelines.warehouse import open_warehouse


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
        )

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.warehouse, read_only=read_only) as con:
            yield con

    def load_slos(self) -> list[SloDefinition]:
        return load_slos(Path(self.slos))

    def load_policies(self) -> PolicySet:
        """The error budget policies file; the built-in defaults when none is configured or present."""
        return load_policies(Path(self.policies) if self.policies else None)

    def load_alerting(self) -> AlertingConfig:
        """Alert rules, routes and channels; built-in defaults (no channels) when no file is configured."""
        return load_alerting(Path(self.alerting) if self.alerting else None)
