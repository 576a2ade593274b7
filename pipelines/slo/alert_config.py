"""Alerting configuration: which rules watch each SLO, how alerts become incidents, and where notifications
go. One YAML file (``data/alerting.yaml``)::

    defaults:
      catalog: workbook          # workbook (3 pairs) | workbook-4 | none | a catalog defined below
      resolve_after: 5m          # hysteresis: an alert resolves this much later than its condition clears
      cooldown: 30m              # a service's alert firing again this soon reopens its resolved incident
      no_data_after: 60m         # no events for an SLO for this long raises a no-data alert (0m: never)
      no_data_severity: ticket
      budget_states: {exhausted: ticket}   # error budget policy state -> alert severity
      anomaly_severity: info     # the newest hour anomalous (slo_anomalies) with enough confidence; null: off
      anomaly_min_confidence: 0.5
      anomaly_metrics: [error_rate, latency_p99]
    catalogs:
      tight:
        - {severity: page, long_window: 1h, short_window: 5m, budget_share: 0.02}
    assignments: {search-latency: workbook-4}     # SLO -> catalog
    routes:                      # channels per service ("default" for all others) and severity
      default: {page: [oncall-pager, team-slack], ticket: [team-slack]}
    escalation:
      after: 15m                 # unacknowledged this long: level 2
      routes: {default: {page: [manager-sms]}}
    remediation:                 # an optional webhook per severity, called when an alert of it fires
      page: {channel: restart-hook, dry_run: true}
    channels: {...}              # see pipelines.slo.notify
    known_incidents: known_incidents.csv   # labelled incidents for backtests (start, end, service)

An SLO with OpenSLO ``alertPolicies`` is watched by its policies' conditions; it gets a catalog as well
only when ``assignments`` names one for it. Every other SLO gets ``defaults.catalog``.

Secrets never appear here: channels name the environment variables that hold them. Every problem in the
file is reported at once, as ``<file>: <path>: <what was expected>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.slo.alerting import BurnRateRule, workbook_rules
from pipelines.slo.notify import Channel, ChannelConfigError, parse_channels
from pipelines.slo.policies import DuplicateKeyError, StrictLoader

SEVERITIES = ("page", "ticket", "info")
BUILT_IN_CATALOGS = ("workbook", "workbook-4", "none")
DEFAULT_ROUTE = "default"
_DURATION = re.compile(r"^(\d{1,6})(m|h|d)$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


class AlertConfigError(ValueError):
    """The alerting file is invalid; ``problems`` lists each as file: path: message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(text: str) -> timedelta:
    """``90m``, ``6h``, ``3d`` (``0m`` allowed) -> timedelta; anything else is a ValueError."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a duration such as 5m, 6h or 3d, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _duration_text(value: Any) -> str:
    parse_duration(value)
    return str(value)


_Duration = Annotated[str, Field(min_length=2)]
_Severity = Annotated[str, Field(pattern="^(page|ticket|info)$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _RuleModel(_Model):
    severity: _Severity
    long_window: _Duration
    short_window: _Duration
    budget_share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]

    _check_windows = field_validator("long_window", "short_window")(_duration_text)


class _DefaultsModel(_Model):
    catalog: str = "workbook"
    resolve_after: _Duration = "5m"
    cooldown: _Duration = "30m"
    no_data_after: _Duration = "60m"
    no_data_severity: _Severity = "ticket"
    budget_states: dict[str, _Severity] = Field(default_factory=lambda: {"exhausted": "ticket"})
    anomaly_severity: _Severity | None = "info"
    anomaly_min_confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.5
    anomaly_metrics: list[Literal["error_rate", "throughput", "latency_p95", "latency_p99"]] = Field(
        default_factory=lambda: ["error_rate", "latency_p99"]
    )

    _check_durations = field_validator("resolve_after", "cooldown", "no_data_after")(_duration_text)


class _EscalationModel(_Model):
    after: _Duration = "15m"
    routes: dict[str, dict[_Severity, list[str]]] = Field(default_factory=dict)

    _check_after = field_validator("after")(_duration_text)


class _RemediationModel(_Model):
    channel: str
    dry_run: bool = True


class _FileModel(_Model):
    defaults: _DefaultsModel = Field(default_factory=_DefaultsModel)
    catalogs: dict[str, list[_RuleModel]] = Field(default_factory=dict)
    assignments: dict[str, str] = Field(default_factory=dict)
    routes: dict[str, dict[_Severity, list[str]]] = Field(default_factory=dict)
    escalation: _EscalationModel = Field(default_factory=_EscalationModel)
    remediation: dict[_Severity, _RemediationModel] = Field(default_factory=dict)
    channels: dict[str, Any] = Field(default_factory=dict)
    dashboard_url: str | None = None
    known_incidents: str | None = None


@dataclass(frozen=True)
class Remediation:
    channel: str
    dry_run: bool


@dataclass(frozen=True)
class AlertingConfig:
    """The parsed file; :data:`DEFAULT_ALERTING` when there is none."""

    default_catalog: str = "workbook"
    catalogs: dict[str, tuple[BurnRateRule, ...]] = field(default_factory=dict)
    assignments: dict[str, str] = field(default_factory=dict)
    resolve_after: timedelta = timedelta(minutes=5)
    cooldown: timedelta = timedelta(minutes=30)
    no_data_after: timedelta = timedelta(minutes=60)
    no_data_severity: str = "ticket"
    budget_states: dict[str, str] = field(default_factory=lambda: {"exhausted": "ticket"})
    anomaly_severity: str | None = "info"  # None: no anomaly alerts
    anomaly_min_confidence: float = 0.5
    anomaly_metrics: tuple[str, ...] = ("error_rate", "latency_p99")
    routes: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    escalation_after: timedelta = timedelta(minutes=15)
    escalation_routes: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    remediation: dict[str, Remediation] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    dashboard_url: str | None = None
    known_incidents: Path | None = None  # CSV of labelled incidents for backtests

    def catalog_rules(self, name: str) -> tuple[BurnRateRule, ...]:
        if name == "workbook":
            return tuple(workbook_rules())
        if name == "workbook-4":
            return tuple(workbook_rules(four_pairs=True))
        if name == "none":
            return ()
        return self.catalogs[name]

    def rules_for(self, slo: str, has_alert_policies: bool) -> tuple[BurnRateRule, ...]:
        """The catalog watching an SLO: its assignment, else the default unless it has OpenSLO policies."""
        if slo in self.assignments:
            return self.catalog_rules(self.assignments[slo])
        return () if has_alert_policies else self.catalog_rules(self.default_catalog)

    def channels_for(self, service: str, severity: str, level: int) -> tuple[str, ...]:
        """Channels notified at an escalation level (1 or 2); a service's own routes replace the default's
        for the severities they name."""
        table = self.routes if level == 1 else self.escalation_routes
        for key in (service, DEFAULT_ROUTE):
            if severity in table.get(key, {}):
                return table[key][severity]
        return ()


DEFAULT_ALERTING = AlertingConfig()


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "[key]") or "(document)"


def _problem(source: str, err: Any) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "string_pattern_mismatch":
        message = f"expected one of {', '.join(SEVERITIES)}, got {value!r}"
    elif kind in ("float_type", "float_parsing"):
        message = f"expected a number, got {value!r}"
    elif kind in ("string_type", "bool_type", "list_type", "dict_type", "model_type"):
        expected = {"string_type": "text", "bool_type": "true or false", "list_type": "a list"}.get(
            kind, "a mapping"
        )
        message = f"expected {expected}, got {type(value).__name__}"
    else:
        message = err["msg"].removeprefix("Value error, ")
    return f"{source}: {_location(err['loc'])}: {message}"


def _build(model: _FileModel, channels: dict[str, Channel], source: str, base: Path | None) -> AlertingConfig:
    problems: list[str] = []
    catalogs: dict[str, tuple[BurnRateRule, ...]] = {}
    for name, rules in model.catalogs.items():
        if name in BUILT_IN_CATALOGS:
            problems.append(f"{source}: catalogs.{name}: {name!r} is a built-in catalog; choose another name")
        if not rules:
            problems.append(f"{source}: catalogs.{name}: a catalog needs at least one rule (or use 'none')")
        built = []
        for i, rule in enumerate(rules):
            long_window, short_window = parse_duration(rule.long_window), parse_duration(rule.short_window)
            if short_window > long_window or short_window <= timedelta(0):
                problems.append(
                    f"{source}: catalogs.{name}[{i}]: short_window must be positive and not longer than "
                    "long_window"
                )
                continue
            built.append(
                BurnRateRule(rule.severity, long_window, short_window, Fraction(str(rule.budget_share)))
            )
        catalogs[name] = tuple(built)
    known_catalogs = set(BUILT_IN_CATALOGS) | set(catalogs)
    for where, name in [("defaults.catalog", model.defaults.catalog)] + [
        (f"assignments.{slo}", name) for slo, name in model.assignments.items()
    ]:
        if name not in known_catalogs:
            problems.append(
                f"{source}: {where}: unknown catalog {name!r}; known: {', '.join(sorted(known_catalogs))}"
            )
    route_tables = [("routes", model.routes), ("escalation.routes", model.escalation.routes)]
    for prefix, table in route_tables:
        for service, by_severity in table.items():
            for severity, names in by_severity.items():
                for name in names:
                    if name not in channels:
                        problems.append(f"{source}: {prefix}.{service}.{severity}: unknown channel {name!r}")
    for severity, hook in model.remediation.items():
        channel = channels.get(hook.channel)
        if channel is None:
            problems.append(f"{source}: remediation.{severity}.channel: unknown channel {hook.channel!r}")
        elif channel.type != "webhook":
            problems.append(
                f"{source}: remediation.{severity}.channel: {hook.channel!r} is a {channel.type} channel; "
                "remediation calls a webhook channel"
            )
    if model.dashboard_url is not None and not model.dashboard_url.startswith(("http://", "https://")):
        problems.append(f"{source}: dashboard_url: expected an http or https URL")
    if parse_duration(model.escalation.after) <= timedelta(0):
        problems.append(f"{source}: escalation.after: must be longer than 0m")
    if problems:
        raise AlertConfigError(problems)
    return AlertingConfig(
        default_catalog=model.defaults.catalog,
        catalogs=catalogs,
        assignments=dict(model.assignments),
        resolve_after=parse_duration(model.defaults.resolve_after),
        cooldown=parse_duration(model.defaults.cooldown),
        no_data_after=parse_duration(model.defaults.no_data_after),
        no_data_severity=model.defaults.no_data_severity,
        budget_states=dict(model.defaults.budget_states),
        anomaly_severity=model.defaults.anomaly_severity,
        anomaly_min_confidence=model.defaults.anomaly_min_confidence,
        anomaly_metrics=tuple(model.defaults.anomaly_metrics),
        routes={s: {k: tuple(v) for k, v in t.items()} for s, t in model.routes.items()},
        escalation_after=parse_duration(model.escalation.after),
        escalation_routes={
            s: {k: tuple(v) for k, v in t.items()} for s, t in model.escalation.routes.items()
        },
        remediation={k: Remediation(v.channel, v.dry_run) for k, v in model.remediation.items()},
        channels=channels,
        dashboard_url=model.dashboard_url,
        known_incidents=(
            None if model.known_incidents is None else (base or Path.cwd()) / model.known_incidents
        ),
    )


def parse_alerting(text: str, source: str, base: Path | None = None) -> AlertingConfig:
    """Parse an alerting file's text; relative paths in it are resolved against ``base``."""
    try:
        raw = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except DuplicateKeyError as exc:
        raise AlertConfigError([f"{source}: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise AlertConfigError([f"{source}: not valid YAML: {exc}"]) from None
    if raw is None:
        return DEFAULT_ALERTING
    if not isinstance(raw, dict):
        raise AlertConfigError([f"{source}: expected a mapping, got {type(raw).__name__}"])
    problems: list[str] = []
    try:
        model = _FileModel.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(source, err) for err in exc.errors()]
        model = None
    try:
        channels = parse_channels(raw.get("channels") or {}, source)
    except ChannelConfigError as exc:
        problems.extend(exc.problems)
        channels = {}
    if model is None or problems:
        raise AlertConfigError(problems)
    return _build(model, channels, source, base)


def load_alerting(path: Path | None) -> AlertingConfig:
    """The alerting file at ``path``; :data:`DEFAULT_ALERTING` when it is None or does not exist."""
    if path is None or not path.exists():
        return DEFAULT_ALERTING
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AlertConfigError([f"{path}: cannot be read: {exc}"]) from None
    return parse_alerting(text, str(path), path.parent)
