"""Generated Prometheus rules pass ``promtool check rules`` and fire when ``promtool test rules`` says."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.slo.alerting import BurnRateRule, workbook_rules
from pipelines.slo.prom_rules import (
    PromRulesError,
    alert_name,
    catalog_windows,
    label_name,
    prom_duration,
    prometheus_rules,
    promql_string,
    rules_yaml,
    skipped_slos,
)
from pipelines.slo.sloth import import_sloth
from pipelines.slo.spec import SloDefinition, load_slos, parse_documents

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus'): rules cannot be checked"
)

SLOTH = """
version: prometheus/v1
service: checkout
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
"""
RUNBOOK = "https://runbooks.example.com/checkout"
SLO_LABELS = {"sloscope_service": "checkout", "sloscope_slo": "checkout-availability"}


def _slos() -> list[SloDefinition]:
    text = import_sloth(SLOTH, "checkout.yaml")
    # The runbook is a sloscope annotation, added the way a user would in the OpenSLO file.
    text = text.replace("  annotations:\n", f"  annotations:\n    sloscope.io/runbook-url: {RUNBOOK}\n", 1)
    slos, problems = parse_documents(text, "checkout.yaml")
    assert problems == []
    return slos


def _expected(severity: str, long_w: str, short_w: str, factor: str, share: str) -> dict[str, Any]:
    return {
        "exp_labels": {
            **SLO_LABELS,
            "severity": severity,
            "sloscope_severity": severity,
            "sloscope_long_window": long_w,
            "sloscope_short_window": short_w,
        },
        "exp_annotations": {
            "summary": f"checkout-availability: error budget burning {factor}x too fast "
            f"over {long_w} and {short_w}",
            "description": "SLO checkout-availability (service checkout, target 0.999 over 30d) would spend "
            f"{share}% of its error budget in {long_w} at this rate.",
            "runbook_url": RUNBOOK,
        },
    }


PAGE_FAST = _expected("page", "1h", "5m", "14.4", "2")
PAGE_SLOW = _expected("page", "6h", "30m", "6", "5")
TICKET = _expected("ticket", "3d", "6h", "1", "10")


def _unit_test(rule_file: str, at_130m: list[dict[str, Any]]) -> dict[str, Any]:
    """200s at 100/min throughout; 500s at 10/min from minute 60 to 120, then none (about 9% errors)."""
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'http_requests_total{code="200"}', "values": "0+100x200"},
                    {"series": 'http_requests_total{code="500"}', "values": "0x60 10+10x59 600x70"},
                ],
                "alert_rule_test": [
                    # No errors yet: nothing fires.
                    {
                        "eval_time": "30m",
                        "alertname": "CheckoutAvailabilityErrorBudgetBurn",
                        "exp_alerts": [],
                    },
                    # Thirty minutes of 9% errors: every window burns far above its factor.
                    {
                        "eval_time": "90m",
                        "alertname": "CheckoutAvailabilityErrorBudgetBurn",
                        "exp_alerts": [PAGE_FAST, PAGE_SLOW, TICKET],
                    },
                    # Ten minutes after the errors stop the 5m window is clean, so the fast page resets
                    # while the slower pairs, whose short windows still hold errors, keep firing.
                    {
                        "eval_time": "130m",
                        "alertname": "CheckoutAvailabilityErrorBudgetBurn",
                        "exp_alerts": at_130m,
                    },
                ],
            }
        ],
    }


def _write_rules(tmp_path: Path) -> Path:
    path = tmp_path / "slo-rules.yml"
    path.write_text(rules_yaml(prometheus_rules(_slos())), encoding="utf-8")
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


def test_rule_names_and_expressions() -> None:
    rules = prometheus_rules(_slos())
    recordings, alerts = rules["groups"]
    assert recordings["name"] == "sloscope-sli-recordings-checkout-availability"
    assert [r["record"] for r in recordings["rules"]] == [
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "6h", "3d")
    ]
    assert recordings["rules"][0]["labels"] == SLO_LABELS
    assert recordings["rules"][0]["expr"] == (
        '(sum(rate(http_requests_total{code=~"5.."}[5m])))\n/\n(sum(rate(http_requests_total[5m])))'
    )
    selector = '{sloscope_service="checkout", sloscope_slo="checkout-availability"}'
    assert alerts["rules"][0]["expr"] == (
        f"(slo:sli_error:ratio_rate1h{selector} >= (14.4 * 0.001))\n"
        f"and\n"
        f"(slo:sli_error:ratio_rate5m{selector} >= (14.4 * 0.001))"
    )
    assert [r["labels"]["severity"] for r in alerts["rules"]] == ["page", "page", "ticket"]
    assert "(6 * 0.001)" in alerts["rules"][1]["expr"]
    assert "(1 * 0.001)" in alerts["rules"][2]["expr"]


def test_four_pairs_and_other_periods() -> None:
    assert catalog_windows(workbook_rules(four_pairs=True)) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    text = import_sloth(SLOTH, "c.yaml").replace("duration: 30d", "duration: 28d")
    slos, _ = parse_documents(text, "c.yaml")
    rule = BurnRateRule("ticket", timedelta(days=3), timedelta(hours=6), Fraction(1, 10))
    expr = prometheus_rules(slos, catalog=[rule])["groups"][1]["rules"][0]["expr"]
    assert "((14 / 15) * 0.001)" in expr  # 10% x 28d / 3d is not a terminating decimal: kept exact


def test_names_are_sanitised_and_values_escaped() -> None:
    assert label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert label_name("9lives") == "_9lives"
    assert label_name("__reserved") == "l__reserved"
    assert alert_name("payments-api availability") == "PaymentsApiAvailability"
    assert promql_string('a "quoted" \\ value\n') == '"a \\"quoted\\" \\\\ value\\n"'
    assert prom_duration(timedelta(days=3)) == "3d"
    assert prom_duration(timedelta(minutes=90)) == "90m"


def test_sloscope_slos_are_skipped_with_a_reason() -> None:
    native = load_slos(Path(__file__).parents[1] / "data" / "slos")
    notes = skipped_slos(native)
    assert len(notes) == len(native)
    assert all(n.endswith("skipped: its indicator has no Prometheus queries") for n in notes)
    with pytest.raises(PromRulesError):
        prometheus_rules(native)
    mixed = prometheus_rules([*native, *_slos()])
    assert [g["name"] for g in mixed["groups"]] == [
        "sloscope-sli-recordings-checkout-availability",
        "sloscope-alerts-checkout-availability",
    ]


@needs_promtool
def test_promtool_check_rules(tmp_path: Path) -> None:
    result = _promtool("check", "rules", str(_write_rules(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


@needs_promtool
def test_promtool_check_rules_on_the_sloth_fixture(tmp_path: Path) -> None:
    text = (Path(__file__).parent / "fixtures" / "sloth" / "myservice.yaml").read_text(encoding="utf-8")
    slos, _ = parse_documents(import_sloth(text, "myservice.yaml"), "myservice.yaml")
    path = tmp_path / "rules.yml"
    path.write_text(rules_yaml(prometheus_rules(slos)), encoding="utf-8")
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_test_fires_when_it_must(tmp_path: Path) -> None:
    rule_file = _write_rules(tmp_path)
    test_file = tmp_path / "slo-rules.test.yml"
    test_file.write_text(yaml.safe_dump(_unit_test(rule_file.name, [PAGE_SLOW, TICKET])), encoding="utf-8")
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_test_can_fail(tmp_path: Path) -> None:
    """A wrong expectation (the fast page still firing at 130m) must fail: the test above can catch bugs."""
    rule_file = _write_rules(tmp_path)
    test_file = tmp_path / "wrong.test.yml"
    wrong = _unit_test(rule_file.name, [PAGE_FAST, PAGE_SLOW, TICKET])
    test_file.write_text(yaml.safe_dump(wrong), encoding="utf-8")
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode != 0
    assert "time: 2h10m" in result.stdout + result.stderr  # 130m, and only there
