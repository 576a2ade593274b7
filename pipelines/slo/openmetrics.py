"""SLO status as metrics text for Prometheus and Grafana: OpenMetrics 1.0 and the classic text format.

Two renderings of the same families, because the two consumers accept different things:

* :func:`exposition` — OpenMetrics 1.0 (``application/openmetrics-text; version=1.0.0``), what
  Prometheus asks for first when it scrapes ``/metrics``; ends with ``# EOF``, may carry ``# UNIT``.
* :func:`text_exposition` / :func:`textfile` — the classic text format 0.0.4, the only one node_exporter's
  textfile collector parses (it rejects ``# EOF`` and ``# UNIT`` lines, OpenMetrics-only types such as
  ``stateset``/``info``, and samples with timestamps).

Every family is a plain ``gauge`` so the two renderings differ only in those framing lines and in how
``# HELP`` is escaped. States are label values of 0/1 gauges rather than OpenMetrics ``stateset``s: a
stateset's label must be named after the family (``sloscope_slo_status{sloscope_slo_status="ok"}``),
which the classic format cannot declare and dashboards read badly.

No sample carries a timestamp: evaluations are often of data minutes or days old (a backfill, a demo),
and Prometheus drops samples older than its head block. The evaluation time is a sample of its own,
``sloscope_evaluation_timestamp_seconds``, so staleness can be alerted on (``time() - ... > 900``).

A figure that does not exist (``None``: no traffic in the window) or is NaN is left out: an absent series
is how Prometheus says "no data", and a NaN would be plotted and compared as if it were a number.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.slo.budget import ObjectiveStatus

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every status budget.classify can give, all exposed (0 or 1) so `== 1` alerts and stat panels work and
# a series does not vanish when the status changes. Policy states are user-defined, so only the current
# one is exposed (value 1).
STATUSES = ("ok", "at_risk", "breached", "no_data")

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Family:
    name: str
    help: str
    samples: Callable[[ObjectiveStatus], Iterable[tuple[Labels, float | int | None]]]
    unit: str | None = None


def _one(value: Callable[[ObjectiveStatus], float | int | None]) -> Callable[[ObjectiveStatus], list]:
    """A family with one sample per objective, labelled by the objective only."""
    return lambda s: [((), value(s))]


def _burn_rates(status: ObjectiveStatus) -> list[tuple[Labels, float | None]]:
    return [((("window", window),), rate) for window, rate in status.burn_rates.items()]


def _statuses(status: ObjectiveStatus) -> list[tuple[Labels, int]]:
    known = STATUSES if status.status in STATUSES else (*STATUSES, status.status)
    return [((("status", name),), int(name == status.status)) for name in known]


FAMILIES: tuple[_Family, ...] = (
    _Family(
        "sloscope_slo_target",
        "Objective target as a ratio of good to total events (0.999 = 99.9%).",
        _one(lambda s: s.target),
    ),
    _Family(
        "sloscope_slo_sli",
        "Service level indicator over the SLO window: good / total events (ratio); absent without traffic.",
        _one(lambda s: s.sli),
    ),
    _Family(
        "sloscope_slo_error_budget_remaining",
        "Share of the error budget left over the SLO window (ratio; 1 = untouched, below 0 = overspent).",
        _one(lambda s: s.budget_remaining),
    ),
    _Family(
        "sloscope_slo_burn_rate",
        "Error budget burn rate over the trailing window: bad share / (1 - target); 1 = spending exactly "
        "the budget.",
        _burn_rates,
    ),
    _Family(
        "sloscope_slo_good_events",
        "Good events counted over the SLO window (a gauge: the window rolls, so it is not a counter).",
        _one(lambda s: s.good),
    ),
    _Family(
        "sloscope_slo_total_events",
        "Valid events counted over the SLO window (a gauge: the window rolls, so it is not a counter).",
        _one(lambda s: s.total),
    ),
    _Family(
        "sloscope_slo_data_completeness",
        "Share of the SLO window's minutes with data (ratio); absent when not measured.",
        _one(lambda s: s.data_completeness),
    ),
    _Family(
        "sloscope_slo_status",
        "Budget status of the objective: 1 for the current status, 0 for the others.",
        _statuses,
    ),
    _Family(
        "sloscope_slo_policy_state",
        "Error budget policy state of the objective (the label); always 1.",
        lambda s: [((("state", s.policy_state),), 1)],
    ),
)
TIMESTAMP_FAMILY = "sloscope_evaluation_timestamp_seconds"


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as both formats require inside ``"..."``.

    Label values come from SLO files (names, display names, policy states): hostile input that must not
    be able to end the value early or start a line of its own.
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str, *, openmetrics: bool) -> str:
    """OpenMetrics escapes double quotes in HELP too; the classic format escapes only \\ and newline."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def format_value(value: float | int) -> str:
    """Integers as they are, floats in shortest round-trip form, infinities as ``+Inf``/``-Inf``."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _present(value: float | int | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _epoch_seconds(moment: datetime) -> float:
    """Naive datetimes are UTC throughout the warehouse."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.timestamp()


def _sample(name: str, labels: Labels, value: float | int) -> str:
    if not labels:
        return f"{name} {format_value(value)}"
    body = ",".join(f'{key}="{escape_label_value(text)}"' for key, text in labels)
    return f"{name}{{{body}}} {format_value(value)}"


def _render(statuses: list[ObjectiveStatus], as_of: datetime | None, *, openmetrics: bool) -> str:
    """Families in a fixed order, each contiguous (both formats require it), metadata first."""
    lines: list[str] = []

    def header(name: str, help_text: str, unit: str | None = None) -> None:
        lines.append(f"# HELP {name} {_escape_help(help_text, openmetrics=openmetrics)}")
        lines.append(f"# TYPE {name} gauge")
        if unit and openmetrics:
            lines.append(f"# UNIT {name} {unit}")

    if as_of is not None:
        header(
            TIMESTAMP_FAMILY,
            "When the exposed SLO status was evaluated (as-of time, Unix seconds).",
            "seconds",
        )
        lines.append(_sample(TIMESTAMP_FAMILY, (), _epoch_seconds(as_of)))
    for family in FAMILIES:
        header(family.name, family.help, family.unit)
        for status in statuses:
            base: Labels = (("slo", status.slo), ("service", status.service), ("objective", status.objective))
            for extra, value in family.samples(status):
                if _present(value):
                    assert value is not None
                    lines.append(_sample(family.name, base + extra, value))
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def exposition(statuses: list[ObjectiveStatus], *, as_of: datetime) -> str:
    """OpenMetrics 1.0 text of the statuses evaluated as of ``as_of`` (what ``/metrics`` serves)."""
    return _render(statuses, as_of, openmetrics=True)


def text_exposition(statuses: list[ObjectiveStatus], *, as_of: datetime | None) -> str:
    """The same metrics in the classic text format 0.0.4 (node_exporter, clients without OpenMetrics)."""
    return _render(statuses, as_of, openmetrics=False)


def textfile(statuses: list[ObjectiveStatus], path: Path | str, *, as_of: datetime | None = None) -> Path:
    """Write the classic-format metrics for node_exporter's textfile collector, atomically.

    node_exporter reads ``*.prom`` files whenever it is scraped: a partly written file would be exposed
    half-way (or fail the whole collector), so the text goes to a temporary file in the same folder (a
    rename is atomic only within one file system) whose name does not end in ``.prom``, then replaces
    ``path``. ``as_of`` defaults to the statuses' window end (the evaluation time); without either, the
    timestamp family is left out.
    """
    target = Path(path)
    if as_of is None and statuses:
        as_of = max(s.window_end for s in statuses)
    text = text_exposition(statuses, as_of=as_of)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; node_exporter usually runs as another user.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target
