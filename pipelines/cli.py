"""``sloscope``: ingest files, evaluate SLOs, validate SLO files, and run the demo.

Every command runs the same functions as the Dagster assets (``pipelines.workflows``). Errors go to
stderr with a non-zero exit status: 1 when the work ran but found a problem (a file failed), 2 when it
could not run (bad arguments, invalid SLO files, an unusable warehouse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.settings import Settings, SettingsError, load_settings
from pipelines.slo.budget import EvaluationError, ObjectiveStatus
from pipelines.slo.corrections import Correction, CorrectionError
from pipelines.slo.ingest import IngestError, IngestReport, ingest_paths
from pipelines.slo.policies import PolicyError, load_policies
from pipelines.slo.spec import SloDefinition, SpecError, export_yaml, load_catalog, load_slos
from pipelines.warehouse import WarehouseError, open_warehouse


class UsageError(ValueError):
    pass


def parse_as_of(text: str) -> datetime:
    """ISO-8601 with an offset (``Z`` allowed), returned as naive UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"--as-of: {text!r} is not an ISO-8601 time such as 2026-09-30T12:00:00Z") from exc
    if moment.tzinfo is None:
        raise UsageError(f"--as-of: {text!r} has no UTC offset; write e.g. {text.strip()}Z")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _percent(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def format_table(results: list[ObjectiveStatus]) -> str:
    header = ("SLO", "objective", "target", "SLI", "budget left", "burn 1h", "burn 1d", "status", "policy")
    rows = [
        (
            r.slo,
            r.objective,
            _percent(r.target, 2),
            _percent(r.sli),
            _percent(r.budget_remaining, 1),
            _rate(r.burn_rates["1h"]),
            _rate(r.burn_rates["1d"]),
            r.status,
            r.policy_state,
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def format_ingest(report: IngestReport) -> str:
    lines = []
    for f in report.files:
        detail = f"{f.rows_read} read, {f.rows_loaded} loaded, {f.rows_quarantined} quarantined"
        if f.status != "loaded":
            detail = f.message
        elif f.message:
            detail += f" ({f.message})"
        lines.append(f"{f.status:<8} {f.path}: {detail}")
    lines.append(
        f"{report.count('loaded')} loaded, {report.count('skipped')} skipped, "
        f"{report.count('failed')} failed; "
        f"rows: {report.rows_read} read = {report.rows_loaded} loaded + {report.rows_quarantined} quarantined"
    )
    return "\n".join(lines)


def _refresh(con: duckdb.DuckDBPyConnection, slos: list[SloDefinition], db: Path) -> None:
    """Recompute dirty aggregates and, like the sli_aggregates asset, mark the stored history days the
    recomputed ranges made stale (the late-data sensor re-runs them; `sloscope backfill` clears them)."""
    from pipelines import late_data, workflows

    late_data.refresh_and_mark(
        con, slos, late_data.pending_file(db), {}, lambda: workflows.refresh(con, slos)
    )


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    db = Path(args.db) if args.db else settings.warehouse
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        report = ingest_paths(
            con,
            [Path(p) for p in args.paths],
            max_clock_skew_seconds=settings.max_clock_skew_seconds,
            max_latency_ms=settings.quality.max_latency_ms,
        )
    print(format_ingest(report))
    failed = [f for f in report.files if f.status == "failed"]
    for f in failed:
        print(f"error: {f.message}", file=sys.stderr)
    return 1 if failed else 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import workflows

    db = Path(args.db) if args.db else settings.warehouse
    slos = load_slos(Path(args.slos) if args.slos else settings.slos)
    policies = load_policies(Path(args.policies) if args.policies else settings.policies)
    as_of = parse_as_of(args.as_of) if args.as_of else None
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        _refresh(con, slos, db)
        _, results = workflows.evaluate_and_store(
            con, slos, as_of=as_of, at_risk_remaining=settings.at_risk_remaining, policies=policies
        )
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(format_table(results))
    return 0


def _quantiles(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UsageError(f"--quantiles: expected numbers such as 0.5,0.95,0.99, got {text!r}") from exc
    if not values or any(not 0 < q <= 1 for q in values):
        raise UsageError(f"--quantiles: each must be in (0, 1], got {text!r}")
    return values


def cmd_latency(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo.latency import latency_percentiles

    start, end = parse_as_of(args.start), parse_as_of(args.end)
    if start >= end:
        raise UsageError("--from must be before --to")
    quantiles = _quantiles(args.quantiles)
    db = Path(args.db) if args.db else settings.warehouse
    with open_warehouse(
        db, read_only=True, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        result = latency_percentiles(
            con, args.service, start, end, quantiles, operations=args.operation or None, success=args.success
        )
    if args.json:
        print(json.dumps({f"p{q * 100:g}": v for q, v in result.items()}))
    else:
        for q, value in result.items():
            print(f"p{q * 100:g}\t{'no data' if value is None else f'{value:.1f} ms'}")
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_catalog(Path(args.directory) if args.directory else settings.slos)
    objectives = sum(len(s.objectives) for s in catalog.slos)
    others = ", ".join(
        f"{len(docs)} {kind}" for kind, docs in sorted(catalog.documents.items()) if kind != "SLO" and docs
    )
    print(
        f"{len(catalog.slos)} SLOs with {objectives} objectives are valid"
        + (f" (and {others})" if others else "")
    )
    load_policies(settings.policies)
    return 0


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: expected a date such as 2026-09-01, got {text!r}") from exc


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import late_data, workflows

    first, last = _day(args.start, "--from"), _day(args.end, "--to")
    if first > last:
        raise UsageError("--from must not be after --to")
    slos = load_slos(Path(args.slos) if args.slos else settings.slos)
    policies = load_policies(settings.policies)
    db = Path(args.db) if args.db else settings.warehouse
    days = 0
    pending = late_data.pending_file(db)
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        _refresh(con, slos, db)
        day = first
        while day <= last:
            token = late_data.history_token(pending, day)
            workflows.store_history(
                con, slos, day, at_risk_remaining=settings.at_risk_remaining, policies=policies
            )
            late_data.clear_history_day(pending, day, token)
            days += 1
            day += timedelta(days=1)
    print(
        f"stored history for {days} days ({first} to {last}), "
        f"{sum(len(s.objectives) for s in slos)} objectives each"
    )
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import workflows

    first, last = _day(args.start, "--from"), _day(args.end, "--to")
    db = Path(args.db) if args.db else settings.warehouse
    with open_warehouse(
        db, read_only=True, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        rows = workflows.history(con, first, last + timedelta(days=1), args.slo or None)
    if args.json:
        print(json.dumps([{"day": day.isoformat(), **status.to_json()} for day, status in rows], indent=2))
        return 0
    for day, s in rows:
        print(
            f"{day}  {s.slo}  {s.objective}  SLI {_percent(s.sli)}  "
            f"budget left {_percent(s.budget_remaining, 1)}"
            f"  {s.status}  {s.policy_state}"
        )
    return 0


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import alert_workflow, workflows
    from pipelines.slo.budget import default_as_of

    slos = {s.name: s for s in load_slos(Path(args.slos) if args.slos else settings.slos)}
    if args.slo not in slos:
        raise UsageError(f"--slo: no SLO named {args.slo!r}")
    slo = slos[args.slo]
    if not 0 <= args.objective < len(slo.objectives):
        raise UsageError(f"--objective: {args.slo} has objectives 0..{len(slo.objectives) - 1}")
    config = _alerting(args, settings)
    catalog = workflows.policy_catalog(slo, config)
    plain = {name.removesuffix(" (configured)"): name for name in catalog}
    if args.policy:
        unknown = [p for p in args.policy if p not in plain and p != "configured"]
        if unknown:
            raise UsageError(
                f"--policy: unknown {', '.join(unknown)}; choose from configured, {', '.join(plain)}"
            )
        configured = next(iter(catalog))
        chosen = {p: catalog[configured if p == "configured" else plain[p]] for p in args.policy}
    else:
        chosen = {
            "workbook-4" if args.four_pairs else "workbook": list(
                config.catalog_rules("workbook-4" if args.four_pairs else "workbook")
            )
        }
    known = alert_workflow.read_known_incidents(Path(args.incidents)) if args.incidents else None
    db = Path(args.db) if args.db else settings.warehouse
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        _refresh(con, list(slos.values()), db)
        end = parse_as_of(args.end) if args.end else default_as_of(con)
        start = parse_as_of(args.start) if args.start else end - timedelta(days=28)
        if known is None:
            file_incidents = []
            if config.known_incidents is not None and config.known_incidents.exists():
                file_incidents = alert_workflow.read_known_incidents(config.known_incidents)
            incidents = alert_workflow.labelled_incidents(con, slo.service, file_incidents)
        else:
            incidents = sorted({(k.start, k.end) for k in known if k.service in (None, slo.service)})
        runs = {
            name: workflows.backtest_slo(
                con,
                slo,
                incidents,
                start,
                end,
                objective_index=args.objective,
                rules=rules,
                resolve_after=config.resolve_after if args.policy else timedelta(0),
            )
            for name, rules in chosen.items()
        }
    if args.json:

        def episodes_json(episodes) -> list[dict]:  # type: ignore[no-untyped-def]
            return [
                {
                    "severity": e.severity,
                    "start": e.start.isoformat() + "Z",
                    "end": e.end.isoformat() + "Z" if e.end else None,
                }
                for e in episodes
            ]

        document = {
            "slo": slo.name,
            "objective": slo.objectives[args.objective].name,
            "from": start.isoformat() + "Z",
            "to": end.isoformat() + "Z",
            "incidents": len(incidents),
        }
        if args.policy:
            document["policies"] = [
                {
                    "policy": name,
                    "episodes": episodes_json(episodes),
                    "results": [r.__dict__ for r in results],
                }
                for name, (episodes, results) in runs.items()
            ]
        else:
            ((episodes, results),) = runs.values()
            document |= {"episodes": episodes_json(episodes), "results": [r.__dict__ for r in results]}
        print(json.dumps(document, indent=2))
        return 0
    print(
        f"{slo.name} / {slo.objectives[args.objective].name}: "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, {len(incidents)} known incidents"
    )
    for name, (_, results) in runs.items():
        print(f"policy {name}:")
        for r in results:
            detect = ", ".join(f"{m:g}" for m in r.detection_minutes) or "—"
            reset = ", ".join("still firing" if m is None else f"{m:g}" for m in r.reset_minutes) or "—"
            print(
                f"  {r.severity:<7} alerts {r.alerts:<4} precision {_percent(r.precision, 0)}  "
                f"recall {_percent(r.recall, 0)}  detection min [{detect}]  reset min [{reset}]  "
                f"per week {r.pages_per_week:.2f}"
            )
    return 0


def _alerting(args: argparse.Namespace, settings: Settings):  # type: ignore[no-untyped-def]
    from pipelines.slo.alert_config import load_alerting

    return load_alerting(Path(args.alerting) if getattr(args, "alerting", None) else settings.alerting)


def _delivery_line(delivery) -> str:  # type: ignore[no-untyped-def]
    if delivery is None or not delivery.outcomes:
        return "notifications: none to send"
    return "notifications: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(delivery.outcomes.items()))


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import alert_workflow, workflows

    db = Path(args.db) if args.db else settings.warehouse
    slos = load_slos(Path(args.slos) if args.slos else settings.slos)
    policies = load_policies(Path(args.policies) if args.policies else settings.policies)
    config = _alerting(args, settings)
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        _refresh(con, slos, db)
        as_of, statuses = workflows.evaluate_and_store(
            con, slos, as_of=None, at_risk_remaining=settings.at_risk_remaining, policies=policies
        )
        run = alert_workflow.run_alerting(con, slos, statuses, as_of, config, deliver=not args.no_deliver)
    active = [o for o in run.observations if o.active]
    if args.json:
        print(
            json.dumps(
                {
                    "as_of": run.as_of.isoformat() + "Z",
                    "active": [
                        {
                            "dedup_key": o.dedup_key,
                            "slo": o.slo,
                            "service": o.service,
                            "kind": o.kind,
                            "severity": o.severity,
                            "started_at": o.started_at.isoformat() + "Z" if o.started_at else None,
                            "title": o.title,
                            "details": o.details,
                        }
                        for o in active
                    ],
                    "events": [
                        {
                            "incident_id": e.incident_id,
                            "event": e.event,
                            "alert_id": e.alert_id,
                            "detail": e.detail,
                        }
                        for e in run.result.events
                    ],
                    "notifications": run.delivery.outcomes if run.delivery else {},
                },
                indent=2,
                default=str,
            )
        )
        return 0
    print(f"alerts as of {run.as_of:%Y-%m-%d %H:%M} UTC: {len(active)} active")
    for o in sorted(active, key=lambda o: (o.service, o.slo, o.kind)):
        print(f"  {o.severity:<6} {o.kind:<9} {o.title}")
    for e in run.result.events:
        print(f"incident {e.incident_id}: {e.event}" + (f" ({e.detail})" if e.detail else ""))
    print(_delivery_line(run.delivery))
    return 0


def _stamp(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import alert_workflow

    db = Path(args.db) if args.db else settings.warehouse
    if args.action == "list":
        states = None if args.all else ["open", "acknowledged"]
        with open_warehouse(
            db, read_only=True, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
        ) as con:
            found = alert_workflow.list_incidents(con, states=states, service=args.service, limit=args.limit)
        if args.json:
            print(json.dumps(found, indent=2, default=str))
            return 0
        if not found:
            print("no incidents" if args.all else "no open or acknowledged incidents")
        for i in found:
            print(
                f"#{i['incident_id']:<5} {i['state']:<12} {i['severity']:<6} {i['service']:<14} "
                f"opened {_stamp(i['opened_at'])}  firing {i['alerts_firing']}/{i['alerts']}  {i['title']}"
            )
        return 0
    if args.action == "show":
        with open_warehouse(
            db, read_only=True, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
        ) as con:
            detail = alert_workflow.incident_detail(con, args.id)
        if detail is None:
            raise UsageError(f"no incident #{args.id}")
        if args.json:
            print(
                json.dumps(
                    {
                        "incident": detail["incident"],
                        "alerts": [a.__dict__ for a in detail["alerts"]],
                        "events": [e.__dict__ for e in detail["events"]],
                        "notifications": detail["notifications"],
                    },
                    indent=2,
                    default=str,
                )
            )
            return 0
        i = detail["incident"]
        print(f"incident #{i['incident_id']} {i['state']} {i['severity']} {i['service']}: {i['title']}")
        print(
            f"  opened {_stamp(i['opened_at'])}, acknowledged {_stamp(i['acknowledged_at'])} by "
            f"{i['acknowledged_by'] or '—'}, resolved {_stamp(i['resolved_at'])} by {i['resolved_by'] or '—'}"
        )
        print("alerts:")
        for a in detail["alerts"]:
            print(
                f"  #{a.alert_id} {a.state:<8} {a.severity:<6} {a.kind:<9} {_stamp(a.started_at)} → "
                f"{_stamp(a.resolved_at)}  {a.title}"
            )
            for label, value in a.facts:
                print(f"      {label}: {value}")
            if a.runbook_url:
                print(f"      Runbook: {a.runbook_url}")
        print("history:")
        for e in detail["events"]:
            print(f"  {_stamp(e.at)}  {e.event:<16} {e.actor:<12} {e.detail}")
        print("notifications:")
        for n in detail["notifications"]:
            print(
                f"  {n['channel']:<16} {n['action']:<8} L{n['level']} {n['purpose']:<9} {n['status']:<12} "
                f"attempts {n['attempts']}"
            )
        return 0
    config = _alerting(args, settings)
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        if args.action == "ack":
            incident, delivery = alert_workflow.acknowledge_incident(
                con, config, args.id, args.by, args.note or ""
            )
        else:
            incident, delivery = alert_workflow.resolve_incident(
                con, config, args.id, args.by, args.note or ""
            )
    print(f"incident #{incident.incident_id} {incident.state} by {args.by}")
    print(_delivery_line(delivery))
    return 0


def _write_or_print(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        print(text, end="")


def cmd_import_sloth(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo.sloth import SlothError, import_sloth

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read: {exc}") from exc
    try:
        _write_or_print(import_sloth(text, str(path)), args.out)
    except SlothError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


def _openslo_text(directory: Path) -> str:
    from pipelines.slo.spec import yaml_files

    files = yaml_files(directory) if directory.is_dir() else [directory]
    return "\n---\n".join(f.read_text(encoding="utf-8") for f in files)


def cmd_export_sloth(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo.sloth import SlothError, export_sloth

    directory = Path(args.directory) if args.directory else settings.slos
    try:
        _write_or_print(export_sloth(_openslo_text(directory), str(directory)), args.out)
    except SlothError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


def cmd_prometheus_rules(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo.alerting import workbook_rules
    from pipelines.slo.prom_rules import prometheus_rules, rules_yaml, skipped_slos

    slos = load_slos(Path(args.directory) if args.directory else settings.slos)
    for note in skipped_slos(slos):
        print(f"note: {note}", file=sys.stderr)
    _write_or_print(rules_yaml(prometheus_rules(slos, catalog=workbook_rules(args.four_pairs))), args.out)
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    db = Path(args.db) if args.db else settings.warehouse
    if args.serve:
        from pipelines.metrics_server import serve

        print(f"serving http://{args.host}:{args.port}/metrics from {db} (Ctrl-C stops)")
        serve(db, host=args.host, port=args.port)
        return 0
    from pipelines.slo.openmetrics import textfile
    from pipelines.workflows import current_status

    with open_warehouse(
        db, read_only=True, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        statuses = current_status(con)
    if not args.textfile:
        raise UsageError("give --textfile PATH (node_exporter's textfile collector) or --serve")
    print(f"wrote {textfile(statuses, Path(args.textfile))}")
    return 0


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import workflows

    until = parse_as_of(args.until) if args.until else datetime.now(UTC).replace(tzinfo=None)
    landing = Path(args.landing) if args.landing else settings.landing
    written = workflows.pull_sources(
        Path(args.sources) if args.sources else settings.sources,
        Path(args.slos) if args.slos else settings.slos,
        landing,
        until,
    )
    for path in written:
        print(f"wrote {path}")
    print(f"pulled {len(written)} new file(s) into {landing}; `sloscope ingest {landing}` loads them")
    return 0


def cmd_detect(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo.anomaly import detect_csv

    rows = detect_csv(Path(args.input), Path(args.output))
    print(f"scored {rows} points; wrote {args.output}")
    return 0


def cmd_forecast(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import analytics
    from pipelines.slo.budget import default_as_of

    db = Path(args.db) if args.db else settings.warehouse
    slos = load_slos(Path(args.slos) if args.slos else settings.slos)
    if args.slo:
        slos = [s for s in slos if s.name in args.slo]
        if not slos:
            raise UsageError(f"--slo: no SLO named {', '.join(args.slo)}")
    # Read-only: forecasting changes nothing (run `sloscope evaluate` first to bring aggregates up to date).
    with open_warehouse(
        db, read_only=True, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        rows = analytics.forecast_rows(
            con, slos, default_as_of(con), simulations=args.simulations, base_seed=args.seed
        )
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        left = " / ".join(
            "—" if r[k] is None else f"{r[k]:.0%}"
            for k in ("remaining_p10", "remaining_p50", "remaining_p90")
        )
        runs_out = "—" if r["exhaustion_p50"] is None else f"{r['exhaustion_p50']:%Y-%m-%d %H:%M} UTC"
        print(
            f"{r['slo']} / {r['objective']}: P(exhausted by {r['window_end']:%Y-%m-%d %H:%M} UTC) "
            f"{r['probability_exhausted']:.0%}; left at the end p10/p50/p90 {left}; "
            f"runs out (p50) {runs_out}; seed {r['seed']}"
        )
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_catalog(Path(args.directory) if args.directory else settings.slos)
    print(export_yaml(catalog), end="")
    return 0


def _correction_row(c: Correction) -> dict[str, object]:
    return {
        "id": c.correction_id,
        "slo": c.slo,
        "service": c.service,
        "start": c.start.isoformat() + "Z",
        "end": c.end.isoformat() + "Z" if c.end else None,
        "rrule": c.rrule,
        "duration_minutes": c.duration_minutes,
        "time_zone": c.time_zone,
        "reason": c.reason,
        "added_by": c.added_by,
        "added_at": c.added_at.isoformat() + "Z",
        "removed_by": c.removed_by,
        "removed_at": c.removed_at.isoformat() + "Z" if c.removed_at else None,
    }


def _recompute_history(
    con: object, correction: Correction, args: argparse.Namespace, settings: Settings
) -> int:
    from pipelines import workflows

    slos = load_slos(Path(args.slos) if args.slos else settings.slos)
    policies = load_policies(settings.policies)
    days = workflows.recompute_history_for(
        con,
        slos,
        correction,
        at_risk_remaining=settings.at_risk_remaining,
        policies=policies,  # type: ignore[arg-type]
    )
    return len(days)


def cmd_corrections(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo import corrections

    db = Path(args.db) if args.db else settings.warehouse
    with open_warehouse(
        db, wait_seconds=settings.lock_wait_seconds, memory_limit=settings.memory_limit
    ) as con:
        if args.action == "add":
            slos = load_slos(Path(args.slos) if args.slos else settings.slos)
            known = {s.name for s in slos} | {s.composite for s in slos if s.composite}
            if args.slo != "*" and args.slo not in known:
                raise UsageError(f"--slo: no SLO named {args.slo!r}; use one of the defined SLOs or *")
            if args.rrule:
                # A recurring rule's first occurrence is local wall time in its zone, written without offset.
                start = datetime.fromisoformat(args.start)
                if start.tzinfo is not None:
                    raise UsageError("--start: with --rrule give the local wall time without an offset")
            else:
                start = parse_as_of(args.start)
            correction = corrections.add_correction(
                con,
                slo=args.slo,
                service=args.service,
                reason=args.reason,
                added_by=args.by,
                start=start,
                end=parse_as_of(args.end) if args.end else None,
                rrule=args.rrule,
                duration_minutes=args.duration_minutes,
                time_zone=args.time_zone,
            )
            days = _recompute_history(con, correction, args, settings)
            print(
                f"added correction {correction.correction_id}; evaluations exclude it from now on, "
                f"and {days} days of stored history were recomputed"
            )
            return 0
        if args.action == "remove":
            removed = corrections.remove_correction(con, args.id, removed_by=args.by)
            days = _recompute_history(con, removed, args, settings)
            print(
                f"removed correction {removed.correction_id} (kept for audit); "
                f"{days} days of stored history were recomputed"
            )
            return 0
        listed = corrections.list_corrections(con, slo=args.slo, include_removed=args.all)
    rows = [_correction_row(c) for c in listed]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            when = row["rrule"] and f"{row['rrule']} ({row['duration_minutes']} min, {row['time_zone']})"
            span = when or f"{row['start']} .. {row['end']}"
            gone = f"  [removed by {row['removed_by']}]" if row["removed_by"] else ""
            print(f"{row['id']:>4}  {row['slo']}  {span}  {row['reason']}  (by {row['added_by']}){gone}")
    return 0


def cmd_generate_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.slo.demo import generate_demo

    out = Path(args.out) if args.out else settings.landing
    manifest = generate_demo(out, seed=args.seed, days=args.days, scale=args.scale)
    print(
        f"wrote {len(manifest.files)} files to {out}: {manifest.events} events, "
        f"{manifest.count_rows} count rows, "
        f"{manifest.malformed_rows} deliberately malformed rows"
    )
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.demo_run import run_demo

    return run_demo(settings, scale=args.scale, days=args.days)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text}")
    return value


def _incident_id(text: str) -> int:
    value = int(text)
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an incident number such as 12, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sloscope", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", help="settings file (default: sloscope.toml or $SLOSCOPE_SETTINGS)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "ingest", help="load CSV, Parquet and NDJSON files (or folders of them) into the warehouse"
    )
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("evaluate", help="evaluate SLO objectives: SLI, error budget, burn rates, status")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--slos", help="folder or file of OpenSLO YAML (default from settings)")
    p.add_argument(
        "--as-of",
        dest="as_of",
        help="end of the window, ISO-8601 with offset (default: end of the newest data minute)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON array, one object per objective")
    p.add_argument("--policies", help="error budget policies file (default from settings)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("latency", help="latency percentiles over any window (within 1%% of exact)")
    p.add_argument("--service", action="append", required=True, help="service (repeat for several)")
    p.add_argument("--operation", action="append", help="operation (repeat for several; default all)")
    p.add_argument("--from", dest="start", required=True, help="window start, ISO-8601 with offset")
    p.add_argument("--to", dest="end", required=True, help="window end (exclusive), ISO-8601 with offset")
    p.add_argument("--quantiles", default="0.5,0.95,0.99", help="comma-separated, e.g. 0.5,0.95,0.99")
    outcome = p.add_mutually_exclusive_group()
    outcome.add_argument(
        "--successful", dest="success", action="store_const", const=True, help="successful requests only"
    )
    outcome.add_argument(
        "--failed", dest="success", action="store_const", const=False, help="failed requests only"
    )
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("validate", help="check OpenSLO files and report every problem")
    p.add_argument("directory", nargs="?", help="folder or file (default from settings)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("export", help="write every OpenSLO document in canonical YAML (loads back the same)")
    p.add_argument("directory", nargs="?", help="folder or file (default from settings)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("corrections", help="exclude maintenance and known-bad periods from error budgets")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="record a one-off (--start/--end) or recurring (--rrule) correction")
    a.add_argument("--slo", required=True, help="SLO name, or * for every SLO")
    a.add_argument("--service", help="only SLOs of this service")
    a.add_argument("--reason", required=True)
    a.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who adds it (default $USER)")
    a.add_argument("--start", required=True, help="ISO-8601 with offset; with --rrule, local wall time")
    a.add_argument("--end", help="one-off end, ISO-8601 with offset")
    a.add_argument("--rrule", help="RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=SU;BYHOUR=2")
    a.add_argument("--duration-minutes", type=int, help="length of each occurrence of --rrule")
    a.add_argument("--time-zone", default="UTC", help="IANA zone of --rrule occurrences")
    a.add_argument("--db", help="warehouse file (default from settings)")
    a.add_argument("--slos", help="SLO folder, for recomputing stored history (default from settings)")
    r = actions.add_parser("remove", help="retire a correction (the record is kept for audit)")
    r.add_argument("id", type=int)
    r.add_argument("--by", default=os.environ.get("USER", "unknown"))
    r.add_argument("--db", help="warehouse file (default from settings)")
    r.add_argument("--slos", help="SLO folder, for recomputing stored history (default from settings)")
    ls = actions.add_parser("list", help="list corrections")
    ls.add_argument("--slo")
    ls.add_argument("--all", action="store_true", help="include removed ones")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--db", help="warehouse file (default from settings)")
    p.set_defaults(func=cmd_corrections)

    p = sub.add_parser("backfill", help="store daily SLO history for a range of days (inclusive)")
    p.add_argument("--from", dest="start", required=True, help="first day, e.g. 2026-09-01")
    p.add_argument("--to", dest="end", required=True, help="last day, e.g. 2026-09-30")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--slos", help="folder or file of OpenSLO YAML (default from settings)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("history", help="daily SLO history for a range of days (inclusive)")
    p.add_argument("--from", dest="start", required=True)
    p.add_argument("--to", dest="end", required=True)
    p.add_argument("--slo", action="append", help="SLO name (repeat for several; default all)")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "backtest", help="replay history through burn-rate alert rules against known incidents"
    )
    p.add_argument("--slo", required=True)
    p.add_argument("--objective", type=int, default=0, help="objective index (default 0)")
    p.add_argument(
        "--incidents",
        help="CSV with start,end (ISO-8601 with offsets) and optional service columns "
        "(default: the alerting file's known_incidents and resolved incidents of the SLO's service)",
    )
    p.add_argument(
        "--policy",
        action="append",
        help="alert policy to replay (repeat to compare): configured, workbook, workbook-4, openslo, or a "
        "catalog of the alerting file; with --policy the engine's hysteresis (resolve_after) applies",
    )
    p.add_argument("--alerting", help="alerting file (default from settings)")
    p.add_argument(
        "--from", dest="start", help="replay start, ISO-8601 with offset (default: 28 days before --to)"
    )
    p.add_argument("--to", dest="end", help="replay end (default: end of the newest data minute)")
    p.add_argument("--four-pairs", action="store_true", help="add the 1d/2h ticket pair (SRE Workbook)")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--slos", help="folder or file of OpenSLO YAML (default from settings)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("alerts", help="evaluate every alert now, update incidents and send notifications")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--slos", help="folder or file of OpenSLO YAML (default from settings)")
    p.add_argument("--policies", help="error budget policies file (default from settings)")
    p.add_argument("--alerting", help="alerting file: rules, routes, channels (default from settings)")
    p.add_argument("--no-deliver", action="store_true", help="queue notifications without sending them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("incidents", help="list, show, acknowledge and resolve incidents")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="open and acknowledged incidents (--all for every one)")
    ls.add_argument("--all", action="store_true", help="include resolved incidents")
    ls.add_argument("--service")
    ls.add_argument("--limit", type=_count, default=50)
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--db", help="warehouse file (default from settings)")
    show = actions.add_parser("show", help="an incident's alerts, impact, history and notifications")
    show.add_argument("id", type=_incident_id)
    show.add_argument("--json", action="store_true")
    show.add_argument("--db", help="warehouse file (default from settings)")
    for name, text in (
        ("ack", "acknowledge: stops escalation"),
        ("resolve", "resolve, telling the receivers"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("id", type=_incident_id)
        a.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who (default $USER)")
        a.add_argument("--note", help="a note for the incident history")
        a.add_argument("--alerting", help="alerting file (default from settings)")
        a.add_argument("--db", help="warehouse file (default from settings)")
    p.set_defaults(func=cmd_incidents)

    p = sub.add_parser(
        "pull", help="pull new data from configured sources (Prometheus) into the landing folder"
    )
    p.add_argument("--until", help="pull up to this time, ISO-8601 with offset (default: now)")
    p.add_argument("--sources", help="sources file (default from settings)")
    p.add_argument("--slos", help="SLO folder holding the DataSource documents (default from settings)")
    p.add_argument("--landing", help="landing folder (default from settings)")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("import-sloth", help="convert a Sloth prometheus/v1 spec to OpenSLO YAML")
    p.add_argument("file")
    p.add_argument("--out", help="write here instead of stdout")
    p.set_defaults(func=cmd_import_sloth)

    p = sub.add_parser("export-sloth", help="write the SLOs that carry Prometheus queries as a Sloth spec")
    p.add_argument("directory", nargs="?", help="folder or file of OpenSLO YAML (default from settings)")
    p.add_argument("--out", help="write here instead of stdout")
    p.set_defaults(func=cmd_export_sloth)

    p = sub.add_parser(
        "prometheus-rules", help="Prometheus recording and multiwindow burn-rate alert rules for the SLOs"
    )
    p.add_argument("directory", nargs="?", help="folder or file of OpenSLO YAML (default from settings)")
    p.add_argument("--four-pairs", action="store_true", help="add the 1d/2h ticket pair")
    p.add_argument("--out", help="write here instead of stdout")
    p.set_defaults(func=cmd_prometheus_rules)

    p = sub.add_parser("metrics", help="SLO status as metrics: a textfile for node_exporter, or an endpoint")
    p.add_argument("--textfile", help="write the Prometheus text format here (atomically)")
    p.add_argument("--serve", action="store_true", help="serve /metrics (OpenMetrics) until stopped")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9464)
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("detect", help="score any timestamp,value CSV for anomalies (streaming, no setup)")
    p.add_argument("--input", required=True, help="CSV with timestamp,value columns")
    p.add_argument("--output", required=True, help="CSV written with timestamp,value,score,is_anomaly")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("forecast", help="Monte Carlo forecast of each objective's error budget (seeded)")
    p.add_argument("--slo", action="append", help="SLO name (repeat for several; default all)")
    p.add_argument("--simulations", type=int, default=2000)
    p.add_argument("--seed", type=int, default=20261001, help="base seed (each objective derives its own)")
    p.add_argument("--db", help="warehouse file (default from settings)")
    p.add_argument("--slos", help="folder or file of OpenSLO YAML (default from settings)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("generate-demo", help="write the deterministic demo data set into a landing folder")
    p.add_argument("--out", help="folder (default: the landing folder from settings)")
    p.add_argument("--scale", type=float, default=1.0, help="traffic multiplier (10 = ten times the events)")
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=20261001)
    p.set_defaults(func=cmd_generate_demo)

    p = sub.add_parser("demo", help="generate the demo data and materialise every asset in-process")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--days", type=int, default=90)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(Path(args.settings) if args.settings else None)
        return int(args.func(args, settings))
    except SpecError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except (
        UsageError,
        SettingsError,
        IngestError,
        WarehouseError,
        EvaluationError,
        CorrectionError,
        PolicyError,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        # The warehouse answered with an error (a file from an older version, a locked file): say so
        # without a traceback.
        print(f"error: the warehouse could not answer: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
