"""The connector commands end to end: Sloth in and out, Prometheus rules, the metrics textfile, and the
sources file that configures pull sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.slo.spec import load_catalog
from pipelines.sources.config import SourcesError, load_sources
from pipelines.sources.prometheus import PrometheusSource
from tests.conftest import REPO_ROOT, write

SLOTH = REPO_ROOT / "tests" / "fixtures" / "sloth" / "myservice.yaml"


def test_sloth_to_openslo_to_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slos = tmp_path / "slos"
    slos.mkdir()
    assert main(["import-sloth", str(SLOTH), "--out", str(slos / "myservice.yaml")]) == 0
    assert main(["validate", str(slos)]) == 0
    capsys.readouterr()
    assert main(["prometheus-rules", str(slos), "--out", str(tmp_path / "rules.yml")]) == 0
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert {a["labels"]["severity"] for a in alerts} == {"page", "ticket"}
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    capsys.readouterr()
    assert main(["export-sloth", str(slos)]) == 0
    exported = yaml.safe_load(capsys.readouterr().out)
    assert exported["version"] == "prometheus/v1" and exported["service"] == "myservice"


def test_import_sloth_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        tmp_path / "bad.yaml",
        'version: "prometheus/v1"\nservice: x\nslos:\n  - name: a\n    objective: 120\n',
    )
    assert main(["import-sloth", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "objective" in err and "sli" in err


DATASOURCE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom-main}
spec: {type: prometheus, connectionDetails: {url: "http://127.0.0.1:9090", bearerTokenEnv: PROM_TOKEN}}
"""


def test_sources_file_builds_prometheus_sources(tmp_path: Path) -> None:
    write(tmp_path / "slos" / "ds.yaml", DATASOURCE)
    catalog = load_catalog(tmp_path / "slos")
    write(
        tmp_path / "sources.yaml",
        """
prometheus:
  - datasource: prom-main
    initial_lookback: 2h
    series:
      - {service: api, operation: all, total: 'http_requests_total{job="api"}',
         good: 'http_requests_total{job="api",code!~"5.."}'}
    histograms:
      - {service: api, operation: fast, labels: {job: api}, threshold_ms: 300}
""",
    )
    (source,) = load_sources(tmp_path / "sources.yaml", catalog).sources
    assert isinstance(source, PrometheusSource)
    assert (source.name, source.url, source.bearer_token_env) == (
        "prom-main",
        "http://127.0.0.1:9090",
        "PROM_TOKEN",
    )
    assert [s.operation for s in source.series] == ["all", "fast"]
    assert load_sources(tmp_path / "missing.yaml", catalog).sources == ()


def test_sources_file_problems_are_listed(tmp_path: Path) -> None:
    write(tmp_path / "slos" / "ds.yaml", DATASOURCE)
    catalog = load_catalog(tmp_path / "slos")
    write(tmp_path / "s.yaml", "prometheus:\n  - {datasource: nope}\ngraphite: []\n")
    with pytest.raises(SourcesError) as caught:
        load_sources(tmp_path / "s.yaml", catalog)
    assert caught.value.problems == [
        f"{tmp_path / 's.yaml'}: prometheus[0].datasource: no DataSource named 'nope' in the SLO folder",
        f"{tmp_path / 's.yaml'}: graphite: unknown source kind; known: prometheus",
    ]
