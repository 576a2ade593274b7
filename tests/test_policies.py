"""Error budget policies: rule matching at the edges, assignments, and file validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.slo.policies import (
    BURN_WINDOWS,
    DEFAULT_POLICIES,
    Policy,
    PolicyError,
    PolicyRule,
    PolicySet,
    load_policies,
)
from tests.conftest import REPO_ROOT, write

NO_BURN: dict[str, float | None] = dict.fromkeys(BURN_WINDOWS, 0.0)

FILE = """
policies:
  default:
    - {state: exhausted, below_remaining: 0}
    - {state: freeze-releases, below_remaining: 0.25}
    - {state: warn, below_remaining: 0.5}
    - {state: warn, burn_rate_above: 6, burn_window: 6h}
  payments:
    - {state: exhausted, below_remaining: 0}
    - {state: page, below_remaining: 0.9, burn_rate_above: 10, burn_window: 1h}
    - {state: freeze-releases, below_remaining: 0.5}
assignments:
  payments-api-availability: payments
"""


def burning(rates: dict[str, float | None]) -> dict[str, float | None]:
    """Burn rates: 0.0 in every window except those given."""
    return {**NO_BURN, **rates}


# --- matching --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (1.0, "healthy"),
        (0.5, "healthy"),  # 0.5 is not < 0.5
        (0.4999, "warn"),
        (0.25, "warn"),  # 0.25 is not < 0.25: the next rule down
        (0.2499, "freeze-releases"),
        (0.0, "freeze-releases"),  # exactly spent is not < 0
        (-0.01, "exhausted"),
        (-5.0, "exhausted"),
        (None, "no_data"),
    ],
)
def test_default_policy_states_at_the_edges(remaining: float | None, expected: str) -> None:
    assert DEFAULT_POLICIES.for_slo("any-slo").state(remaining, NO_BURN) == expected


def test_burn_rule_matches_strictly_above() -> None:
    default = DEFAULT_POLICIES.policies["default"]
    assert default.state(0.9, burning({"6h": 6.0})) == "healthy"  # 6 is not > 6
    assert default.state(0.9, burning({"6h": 6.01})) == "warn"
    # Another window burning fast does not match a 6h rule.
    assert default.state(0.9, burning({"1h": 100.0})) == "healthy"


def test_budget_rules_win_over_later_burn_rules() -> None:
    default = DEFAULT_POLICIES.policies["default"]
    # Both freeze-releases (0.1 < 0.25) and the 6h burn rule match: the first one listed wins.
    assert default.state(0.1, burning({"6h": 50.0})) == "freeze-releases"


def test_a_missing_or_none_burn_rate_never_matches() -> None:
    default = DEFAULT_POLICIES.policies["default"]
    assert default.state(0.9, burning({"6h": None})) == "healthy"
    assert default.state(0.9, {}) == "healthy"
    # ... but budget rules still apply when burn rates are unknown.
    assert default.state(0.1, {"6h": None}) == "freeze-releases"


def test_rule_with_both_conditions_needs_both(tmp_path: Path) -> None:
    payments = load_policies(write(tmp_path / "policies.yaml", FILE)).policies["payments"]
    # page: remaining < 0.9 AND 1h burn > 10.
    assert payments.state(0.8, burning({"1h": 11.0})) == "page"
    assert payments.state(0.95, burning({"1h": 11.0})) == "healthy"  # budget condition fails
    assert payments.state(0.8, burning({"1h": 10.0})) == "healthy"  # burn condition fails
    assert payments.state(0.8, burning({"1h": None})) == "healthy"
    assert payments.state(0.4, burning({"1h": 11.0})) == "page"  # listed before freeze-releases
    assert payments.state(0.4, NO_BURN) == "freeze-releases"
    assert payments.state(None, burning({"1h": 50.0})) == "no_data"


def test_nan_is_refused_rather_than_read_as_healthy() -> None:
    default = DEFAULT_POLICIES.policies["default"]
    with pytest.raises(ValueError, match="NaN"):
        default.state(float("nan"), NO_BURN)
    with pytest.raises(ValueError, match="NaN"):
        default.state(0.9, {"6h": float("nan")})


def test_policy_without_rules_is_always_healthy() -> None:
    policy = Policy("lenient", ())
    assert policy.state(-3.0, NO_BURN) == "healthy"
    assert policy.state(None, NO_BURN) == "no_data"


def test_rules_built_in_code() -> None:
    policy = Policy("p", (PolicyRule("stop", below_remaining=0.1), PolicyRule("slow", 5.0, 2.0, "window")))
    policies = PolicySet({"default": policy}, {})
    assert policies.for_slo("x").state(0.05, NO_BURN) == "stop"
    assert policies.for_slo("x").state(0.5, burning({"window": 3.0})) == "slow"


# --- assignments and defaults ----------------------------------------------------------------------------


def test_assignments(tmp_path: Path) -> None:
    policies = load_policies(write(tmp_path / "policies.yaml", FILE))
    assert policies.for_slo("payments-api-availability").name == "payments"
    assert policies.for_slo("checkout-availability").name == "default"
    # remaining 0.4: default says warn, payments says freeze-releases.
    assert policies.for_slo("payments-api-availability").state(0.4, NO_BURN) == "freeze-releases"
    assert policies.for_slo("checkout-availability").state(0.4, NO_BURN) == "warn"


def test_missing_file_or_none_gives_the_built_in_default(tmp_path: Path) -> None:
    assert load_policies(None) is DEFAULT_POLICIES
    assert load_policies(tmp_path / "absent.yaml") is DEFAULT_POLICIES
    assert list(DEFAULT_POLICIES.policies) == ["default"]
    assert DEFAULT_POLICIES.assignments == {}
    assert [r.state for r in DEFAULT_POLICIES.policies["default"].rules] == [
        "exhausted",
        "freeze-releases",
        "warn",
        "warn",
    ]


def test_default_policy_implied_when_the_file_has_none(tmp_path: Path) -> None:
    path = write(
        tmp_path / "policies.yaml",
        "policies:\n  strict:\n    - {state: stop, below_remaining: 0.9}\n"
        "assignments:\n  a: strict\n  b: default\n",
    )
    policies = load_policies(path)
    assert policies.policies["default"] == DEFAULT_POLICIES.policies["default"]
    assert policies.for_slo("a").state(0.5, NO_BURN) == "stop"
    assert policies.for_slo("b").state(0.5, NO_BURN) == "healthy"
    assert policies.for_slo("c").state(0.1, NO_BURN) == "freeze-releases"


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    policies = load_policies(write(tmp_path / "policies.yaml", "# nothing yet\n"))
    assert policies.policies == DEFAULT_POLICIES.policies
    assert policies.assignments == {}


def test_repository_policies_file_loads() -> None:
    path = REPO_ROOT / "data" / "policies.yaml"
    if not path.exists():
        pytest.skip("data/policies.yaml not present")
    policies = load_policies(path)
    assert "default" in policies.policies


# --- errors ----------------------------------------------------------------------------------------------


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return [p.removeprefix(f"{path}: ") for p in caught.value.problems]


def test_error_names_file_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.yaml",
        "policies:\n  default:\n    - {state: a, below_remaining: 0}\n"
        "    - {state: b, below_remaining: 0.1}\n    - {state: c, below_remaining: x}\n",
    )
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    assert str(caught.value) == f"{path}: policies.default[2].below_remaining: expected a number, got 'x'"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{state: a}", "policies.default[0]: a rule needs at least one condition"),
        (
            "{state: a, burn_rate_above: 5}",
            "policies.default[0]: burn_rate_above and burn_window go together",
        ),
        ("{state: a, below_remaining: 0.5, burn_window: 1h}", "policies.default[0]: burn_rate_above and"),
        (
            "{state: a, burn_rate_above: 5, burn_window: 4h}",
            "policies.default[0].burn_window: expected one of 5m, 30m, 1h, 2h, 6h, 1d, 3d, window, got '4h'",
        ),
        ("{state: a, burn_rate_above: -1, burn_window: 1h}", "policies.default[0].burn_rate_above: "),
        (
            "{state: a, below_remaining: true}",
            "policies.default[0].below_remaining: expected a number, got True",
        ),
        (
            "{state: a, below_remaining: '0.5'}",
            "policies.default[0].below_remaining: expected a number, got '0.5'",
        ),
        (
            "{state: a, below_remaining: .nan}",
            "policies.default[0].below_remaining: expected a finite number",
        ),
        ("{below_remaining: 0.5}", "policies.default[0].state: required field is missing"),
        ("{state: '', below_remaining: 0.5}", "policies.default[0].state: "),
        ("{state: healthy, below_remaining: 0.5}", "policies.default[0]: state 'healthy' is reserved"),
        ("{state: no_data, below_remaining: 0.5}", "policies.default[0]: state 'no_data' is reserved"),
        ("{state: a, below_remaining: 0.5, colour: red}", "policies.default[0].colour: unknown field"),
        ("just-text", "policies.default[0]: expected a mapping (a rule), got str"),
    ],
)
def test_rule_validation(tmp_path: Path, rule: str, message: str) -> None:
    problems = errors_of(tmp_path, f"policies:\n  default:\n    - {rule}\n")
    assert len(problems) == 1
    assert problems[0].startswith(message), problems[0]


def test_all_problems_are_listed(tmp_path: Path) -> None:
    problems = errors_of(
        tmp_path,
        "policies:\n  default:\n    - {state: a}\n  other:\n    - {state: b, below_remaining: x}\n",
    )
    assert [p.split(":")[0] for p in problems] == ["policies.default[0]", "policies.other[0].below_remaining"]


def test_assignment_to_an_unknown_policy(tmp_path: Path) -> None:
    problems = errors_of(tmp_path, FILE + "  checkout-availability: paymnets\n")
    assert problems == [
        "assignments.checkout-availability: unknown policy 'paymnets'; defined: default, payments"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping with policies and assignments, got list"),
        ("policy: {}\n", "policy: unknown field"),
        ("policies:\n  default: {state: a}\n", "policies.default: expected a list of rules, got dict"),
        ("policies: [a]\n", "policies: expected a mapping, got list"),
        ("policies:\n  3: []\n", "policies.3: expected a name (text), got 3"),
        ("assignments:\n  x: 3\n", "assignments.x: expected text, got 3"),
        ("policies: {default: [\n", "not valid YAML"),
        (
            "policies:\n  default: []\n  default:\n    - {state: a, below_remaining: 0}\n",
            "line 3: key 'default' is given twice",
        ),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, message: str) -> None:
    problems = errors_of(tmp_path, text)
    assert problems[0].startswith(message), problems


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PolicyError, match=r"policies\.yaml: cannot be read"):
        load_policies(path)
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policies(tmp_path)  # a folder, not a file
