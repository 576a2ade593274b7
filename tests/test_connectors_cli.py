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


def test_pull_reports_an_unreachable_prometheus_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("PROM_TOKEN", "t0ken-value")

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write(tmp_path / "slos" / "ds.yaml", DATASOURCE.replace("9090", str(port)))
    write(
        tmp_path / "sources.yaml",
        "prometheus:\n  - datasource: prom-main\n    series:\n"
        "      - {service: api, operation: all, total: 'up', good: 'up'}\n",
    )
    args = ["pull", "--sources", str(tmp_path / "sources.yaml"), "--slos", str(tmp_path / "slos")]
    args += ["--landing", str(tmp_path / "landing"), "--until", "2026-01-01T00:00:00Z"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot reach Prometheus" in err and "t0ken-value" not in err


def test_access_log_pathological_lines_neither_hang_nor_overflow_names(tmp_path: Path) -> None:
    from pipelines.sources.access_log import SOURCE

    prefix = '127.0.0.1 - - [25/Oct/2015:04:11:25 +0100] "GET / HTTP/1.1" 200 5 "-" "ua"'
    # "a=a=a=...\"" used to backtrack exponentially (2^n splits) before failing.
    evil = prefix + " " + "a=" * 40 + '"'
    method = "VERSION-CONTROLXXXXX"  # 20 characters, the longest method accepted
    long_path = prefix.replace("GET /", f"{method} /" + "x" * 400)
    records = SOURCE.read(f"{evil}\n{long_path}\n".encode(), tmp_path / "api.access.log")
    assert records.problems[0] is not None
    assert len(records.columns["operation"][1] or "") <= 200


def test_plugins_cannot_take_over_built_in_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import sources

    class CsvGrabber:
        name = "csv-grabber"
        suffixes = (".csv",)

        def read(self, raw: bytes, path: Path) -> sources.StagedRecords:
            raise AssertionError("never called")

    class Entry:
        name, value = "csv-grabber", "x:y"

        def load(self) -> object:
            return CsvGrabber()

    monkeypatch.setattr(sources, "entry_points", lambda group: [Entry()])
    registry = sources.load_registry()
    assert registry.file_sources == {}
    assert registry.problems == ["source plugin 'csv-grabber': suffix .csv is a built-in format; ignored"]


def test_a_failing_plugin_fails_its_file_only(
    tmp_path: Path, warehouse: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.slo import ingest

    class Broken:
        name = "broken"
        suffixes = (".brk",)

        def read(self, raw: bytes, path: Path) -> object:
            raise ValueError("plugin bug")

    monkeypatch.setattr(ingest, "_PLUGINS", {".brk": Broken()})
    monkeypatch.setattr(ingest, "FORMATS", {**ingest.BUILT_IN_FORMATS, ".brk": "plugin:broken"})
    write(tmp_path / "in" / "a.brk", "x")
    write(tmp_path / "in" / "b.csv", "timestamp,service,status_code\n2026-03-01T00:00:00Z,api,200\n")
    report = ingest.ingest_paths(warehouse, [tmp_path / "in"])  # type: ignore[arg-type]
    assert [(Path(f.path).name, f.status) for f in report.files] == [("a.brk", "failed"), ("b.csv", "loaded")]
    assert "source plugin 'broken' could not read it: plugin bug" in report.files[0].message


def test_sloth_keys_given_twice_are_an_error() -> None:
    from pipelines.slo.sloth import SlothError, import_sloth

    spec = SLOTH.read_text().replace("objective: 99.9", "objective: 99.9\n    objective: 50", 1)
    with pytest.raises(SlothError, match="given twice"):
        import_sloth(spec, "dup.yaml")


def test_generated_alert_labels_do_not_expand_templates(tmp_path: Path) -> None:
    from pipelines.slo.prom_rules import prometheus_rules
    from pipelines.slo.sloth import import_sloth
    from pipelines.slo.spec import parse_documents

    spec = SLOTH.read_text().replace("service: myservice", "service: pay{{ 1 }}", 1)
    slos, problems = parse_documents(import_sloth(spec, "t.yaml"), "t.yaml")
    assert not problems
    rules = prometheus_rules(slos)
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert all(
        "{{" not in r["labels"]["sloscope_service"] or "{{`" in r["labels"]["sloscope_service"]
        for r in alerts
    )
