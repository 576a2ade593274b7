"""Error budget policies: what an SLO's budget state means for the team owning it.

A policy is an ordered list of rules, most severe first; the first rule that matches gives the SLO's
policy state (``exhausted``, ``freeze-releases``, ...). A rule matches on the budget remaining
(``below_remaining: 0.25`` matches remaining < 0.25) and/or a burn rate (``burn_rate_above: 10`` with
``burn_window: 1h`` matches a 1-hour burn rate > 10); with both, both must hold. The state is
``no_data`` when the remaining budget is unknown and ``healthy`` when no rule matches.

Policies live in a YAML file::

    policies:
      default:
        - {state: exhausted, below_remaining: 0}
        - {state: warn, burn_rate_above: 6, burn_window: 6h}
      payments:
        - {state: freeze-releases, below_remaining: 0.5}
    assignments:                      # SLO name -> policy name; unassigned SLOs use "default"
      payments-api-availability: payments

Without a file, or without a ``default`` policy in it, the built-in :data:`DEFAULT_POLICIES` default
applies. Every problem in a file is reported as ``<file>: <path>: <what was expected>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "window")  # budget.BURN_RATE_WINDOWS + "window"
NO_DATA = "no_data"
HEALTHY = "healthy"
DEFAULT_POLICY = "default"

# Strict: YAML `true` or the string "0.25" is a mistake to report, not a number to coerce.
_Number = Annotated[float, Field(allow_inf_nan=False)]


class PolicyError(ValueError):
    """A policy file is invalid; ``problems`` lists each as file: path: message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PolicyRule:
    state: str
    below_remaining: float | None = None
    burn_rate_above: float | None = None
    burn_window: str | None = None

    def matches(self, remaining: float, burn_rates: dict[str, float | None]) -> bool:
        if self.below_remaining is not None and not remaining < self.below_remaining:
            return False
        if self.burn_rate_above is not None:
            # A window without traffic has no burn rate; "unknown" must not trigger an action.
            rate = burn_rates.get(self.burn_window) if self.burn_window is not None else None
            if rate is None or not rate > self.burn_rate_above:
                return False
        return True


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[PolicyRule, ...]

    def state(self, remaining: float | None, burn_rates: dict[str, float | None]) -> str:
        """The first matching rule's state; ``no_data`` without a remaining budget, else ``healthy``."""
        if remaining is None:
            return NO_DATA
        # NaN compares false with everything, which would silently read as "healthy".
        if math.isnan(remaining) or any(r is not None and math.isnan(r) for r in burn_rates.values()):
            raise ValueError(f"remaining and burn rates must not be NaN, got {remaining} and {burn_rates}")
        for rule in self.rules:
            if rule.matches(remaining, burn_rates):
                return rule.state
        return HEALTHY


@dataclass(frozen=True)
class PolicySet:
    policies: dict[str, Policy]
    assignments: dict[str, str]

    def for_slo(self, slo: str) -> Policy:
        return self.policies[self.assignments.get(slo, DEFAULT_POLICY)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _RuleModel(_Model):
    state: str = Field(min_length=1, max_length=100)
    below_remaining: _Number | None = None
    burn_rate_above: Annotated[_Number, Field(ge=0)] | None = None
    burn_window: Literal["5m", "30m", "1h", "2h", "6h", "1d", "3d", "window"] | None = None

    @model_validator(mode="after")
    def _conditions(self) -> _RuleModel:
        if self.state.strip() != self.state:
            raise ValueError(f"state must not start or end with spaces, got {self.state!r}")
        if self.state in (NO_DATA, HEALTHY):
            raise ValueError(f"state {self.state!r} is reserved: the state when no rule applies")
        if self.below_remaining is None and self.burn_rate_above is None:
            raise ValueError("a rule needs at least one condition: below_remaining or burn_rate_above")
        if (self.burn_rate_above is None) != (self.burn_window is None):
            raise ValueError("burn_rate_above and burn_window go together: give both or neither")
        return self


class _FileModel(_Model):
    policies: dict[Annotated[str, Field(min_length=1)], list[_RuleModel]] = Field(default_factory=dict)
    assignments: dict[Annotated[str, Field(min_length=1)], str] = Field(default_factory=dict)


class DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"line {line}: key {key!r} is given twice")


class StrictLoader(yaml.SafeLoader):
    """Safe YAML that rejects a key given twice, instead of keeping the last one silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; the base class reports it
                break
            if duplicate:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for position, part in enumerate(loc):
        if part == "[key]":
            continue
        # The part after policies/assignments is a name (a mapping key), even when YAML made it an int.
        is_name = position == 1 and loc[0] in ("policies", "assignments")
        if isinstance(part, int) and not is_name:
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _problem(source: str, err: Any) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "literal_error":
        message = f"expected one of {', '.join(BURN_WINDOWS)}, got {value!r}"
    elif kind in ("float_type", "float_parsing"):
        message = f"expected a number, got {value!r}"
    elif kind == "finite_number":
        message = f"expected a finite number, got {value!r}"
    elif kind == "string_type" and err["loc"][-1] == "[key]":
        message = f"expected a name (text), got {value!r}"
    elif kind == "string_type":
        message = f"expected text, got {value!r}"
    elif kind == "list_type":
        message = f"expected a list of rules, got {type(value).__name__}"
    elif kind == "dict_type":
        message = f"expected a mapping, got {type(value).__name__}"
    elif kind == "model_type":
        message = f"expected a mapping (a rule), got {type(value).__name__}"
    else:
        message = err["msg"].removeprefix("Value error, ")
    return f"{source}: {_location(err['loc'])}: {message}"


def _parse(text: str, source: str, fallback: PolicySet | None) -> PolicySet:
    try:
        raw = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except DuplicateKeyError as exc:
        raise PolicyError([f"{source}: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"{source}: not valid YAML: {exc}"]) from None
    if raw is None:  # an empty file: nothing overrides the built-in default
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(
            [f"{source}: expected a mapping with policies and assignments, got {type(raw).__name__}"]
        )
    try:
        model = _FileModel.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError([_problem(source, err) for err in exc.errors()]) from None

    policies = {
        name: Policy(
            name=name,
            rules=tuple(
                PolicyRule(r.state, r.below_remaining, r.burn_rate_above, r.burn_window) for r in rules
            ),
        )
        for name, rules in model.policies.items()
    }
    if DEFAULT_POLICY not in policies:
        if fallback is None:
            raise PolicyError([f"{source}: policies: a {DEFAULT_POLICY!r} policy is required"])
        policies[DEFAULT_POLICY] = fallback.policies[DEFAULT_POLICY]
    unknown = [
        f"{source}: assignments.{slo}: unknown policy {policy!r}; defined: {', '.join(sorted(policies))}"
        for slo, policy in model.assignments.items()
        if policy not in policies
    ]
    if unknown:
        raise PolicyError(unknown)
    return PolicySet(policies=policies, assignments=dict(model.assignments))


_BUILT_IN = """
policies:
  default:
    - {state: exhausted, below_remaining: 0}
    - {state: freeze-releases, below_remaining: 0.25}
    - {state: warn, below_remaining: 0.5}
    - {state: warn, burn_rate_above: 6, burn_window: 6h}
"""

# Parsed by the same validation as a user's file, so the built-in default cannot drift out of it.
DEFAULT_POLICIES: PolicySet = _parse(_BUILT_IN, "<built-in policies>", None)


def load_policies(path: Path | None) -> PolicySet:
    """The policies in ``path``; :data:`DEFAULT_POLICIES` when ``path`` is None or does not exist."""
    if path is None or not path.exists():
        return DEFAULT_POLICIES
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}: cannot be read: {exc}"]) from None
    return _parse(text, str(path), DEFAULT_POLICIES)
