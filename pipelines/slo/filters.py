"""Declarative event filters from ``metricSource.spec``, compiled to a canonical, SQL-free form.

A filter maps fields to conditions::

    {service: checkout, operation: {in: [pay, refund]}, status_code: {lt: 500}, latency_ms: {lte: 300}}

A scalar means ``eq`` and a list means ``in``. Every filter becomes an :class:`EventFilter`, whose
values reach SQL only as bound parameters of one static query (``sql/objective_counts.sql``). A
condition on a field an event does not carry (``status_code`` on a counts-schema row, ``latency_ms``
on an event without latency) does not match it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

OPERATORS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte")
FIELDS: dict[str, tuple[str, ...]] = {
    "service": ("eq", "in"),
    "operation": ("eq", "ne", "in", "not_in"),
    "status_code": OPERATORS,
    "success": ("eq",),
    "latency_ms": ("lt", "lte", "gt", "gte"),
}


class FilterError(ValueError):
    """A filter is malformed; ``path`` names the offending key (e.g. ``status_code.lt``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Bound:
    """A latency bound in milliseconds."""

    value: float
    inclusive: bool


@dataclass(frozen=True)
class EventFilter:
    services: frozenset[str]
    operations_in: frozenset[str] | None = None
    operations_not_in: frozenset[str] = frozenset()
    status_in: frozenset[int] | None = None
    status_not_in: frozenset[int] = frozenset()
    status_min: int | None = None
    status_max: int | None = None
    success: bool | None = None
    latency_upper: Bound | None = None
    latency_lower: Bound | None = None
    matches_nothing: bool = False

    def intersect(self, other: EventFilter) -> EventFilter:
        """Events matching both filters."""

        def both_in(a: frozenset[Any] | None, b: frozenset[Any] | None) -> frozenset[Any] | None:
            if a is None:
                return b
            if b is None:
                return a
            return a & b

        def tighter(a: int | None, b: int | None, pick: Any) -> int | None:
            return b if a is None else a if b is None else pick(a, b)

        nothing = self.matches_nothing or other.matches_nothing
        success = self.success
        if other.success is not None:
            if success is not None and success != other.success:
                nothing = True
            success = other.success
        return EventFilter(
            services=self.services & other.services,
            operations_in=both_in(self.operations_in, other.operations_in),
            operations_not_in=self.operations_not_in | other.operations_not_in,
            status_in=both_in(self.status_in, other.status_in),
            status_not_in=self.status_not_in | other.status_not_in,
            status_min=tighter(self.status_min, other.status_min, max),
            status_max=tighter(self.status_max, other.status_max, min),
            success=success,
            latency_upper=_tighter_upper(self.latency_upper, other.latency_upper),
            latency_lower=_tighter_lower(self.latency_lower, other.latency_lower),
            matches_nothing=nothing,
        )

    @property
    def latency_empty(self) -> bool:
        """No latency can satisfy both bounds (e.g. > 300 and < 300): the filter matches nothing.

        This must be caught before SQL, where the count is le(U) - lt(L) and would go negative.
        """
        upper, lower = self.latency_upper, self.latency_lower
        if upper is None or lower is None:
            return False
        if lower.value != upper.value:
            return lower.value > upper.value
        return not (lower.inclusive and upper.inclusive)

    @property
    def thresholds(self) -> set[float]:
        return {b.value for b in (self.latency_upper, self.latency_lower) if b is not None}

    def sql_params(self) -> dict[str, Any]:
        """Bound parameters for ``sql/objective_counts.sql``."""

        def listed(values: frozenset[Any] | None) -> list[Any] | None:
            return None if values is None else sorted(values)

        upper, lower = self.latency_upper, self.latency_lower
        return {
            "services": sorted(self.services),
            "operations_in": listed(self.operations_in),
            "operations_not_in": listed(self.operations_not_in) if self.operations_not_in else None,
            "status_in": listed(self.status_in),
            "status_not_in": listed(self.status_not_in) if self.status_not_in else None,
            "status_min": self.status_min,
            "status_max": self.status_max,
            "success": self.success,
            "has_upper": upper is not None,
            "upper": upper.value if upper else None,
            "upper_inclusive": bool(upper and upper.inclusive),
            "has_lower": lower is not None,
            "lower": lower.value if lower else None,
            "lower_inclusive": bool(lower and lower.inclusive),
            "matches_nothing": self.matches_nothing or not self.services or self.latency_empty,
        }


def _tighter_upper(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a.value != b.value:
        return a if a.value < b.value else b
    return Bound(a.value, a.inclusive and b.inclusive)


def _tighter_lower(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a.value != b.value:
        return a if a.value > b.value else b
    return Bound(a.value, a.inclusive and b.inclusive)


def _conditions(field: str, raw: Any) -> list[tuple[str, Any]]:
    if isinstance(raw, dict):
        if not raw:
            raise FilterError(field, "an empty condition; give an operator such as eq or lt")
        return [(str(op), value) for op, value in raw.items()]
    if isinstance(raw, list):
        return [("in", raw)]
    return [("eq", raw)]


def _text(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FilterError(path, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _status(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise FilterError(path, f"expected an HTTP status code (an integer 100-599), got {value!r}")
    return value


def _latency(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise FilterError(path, f"expected a latency in milliseconds (a finite number >= 0), got {value!r}")
    return float(value)


def _values(path: str, op: str, value: Any, parse: Any) -> list[Any]:
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise FilterError(path, f"expected a non-empty list, got {value!r}")
        return [parse(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return [parse(path, value)]


def compile_filter(spec: Any, *, default_services: frozenset[str], path: str = "spec") -> EventFilter:
    """Compile a ``metricSource.spec`` mapping; ``default_services`` apply when it names no service."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise FilterError(path, f"expected a mapping of field to condition, got {type(spec).__name__}")
    result = EventFilter(services=frozenset(default_services))
    named_service = False
    for key, raw in spec.items():
        field = str(key)
        if field not in FIELDS:
            raise FilterError(f"{path}.{field}", f"unknown field; expected one of {', '.join(FIELDS)}")
        for op, value in _conditions(field, raw):
            where = f"{path}.{field}.{op}" if isinstance(raw, dict) else f"{path}.{field}"
            if op not in FIELDS[field]:
                raise FilterError(
                    where, f"operator not allowed for {field}; expected one of {', '.join(FIELDS[field])}"
                )
            part = _compile_condition(field, op, value, where)
            if field == "service":
                if named_service:
                    part = EventFilter(services=part.services & result.services)
                named_service = True
                result = replace(result, services=part.services)
            else:
                result = result.intersect(replace(part, services=result.services))
    return result


def _compile_condition(field: str, op: str, value: Any, where: str) -> EventFilter:
    anything: frozenset[str] = frozenset()
    if field == "service":
        return EventFilter(services=frozenset(_values(where, op, value, _text)))
    if field == "operation":
        values = frozenset(_values(where, op, value, _text))
        if op in ("eq", "in"):
            return EventFilter(anything, operations_in=values)
        return EventFilter(anything, operations_not_in=values)
    if field == "status_code":
        if op in ("eq", "in"):
            return EventFilter(anything, status_in=frozenset(_values(where, op, value, _status)))
        if op in ("ne", "not_in"):
            return EventFilter(anything, status_not_in=frozenset(_values(where, op, value, _status)))
        code = _status(where, value)
        bounds = {"lt": (None, code - 1), "lte": (None, code), "gt": (code + 1, None), "gte": (code, None)}[
            op
        ]
        return EventFilter(anything, status_min=bounds[0], status_max=bounds[1])
    if field == "success":
        if not isinstance(value, bool):
            raise FilterError(where, f"expected true or false, got {value!r}")
        return EventFilter(anything, success=value)
    ms = _latency(where, value)
    if op in ("lt", "lte"):
        return EventFilter(anything, latency_upper=Bound(ms, op == "lte"))
    return EventFilter(anything, latency_lower=Bound(ms, op == "gte"))
