"""Access-log speed: a synthetic day of a busy server, parsed by the plugin and ingested into a warehouse.

Usage: .venv/bin/python benchmarks/access_log_speed.py [--lines N] [--seed N] [--keep DIR]

The issue asks that the access-log source be fast enough for a day of a busy server's logs. This writes
``--lines`` (2 million by default: ~23 requests/s around the clock) nginx combined lines with
``$request_time $upstream_response_time`` over one day at +0100, seeded, with the mix a real log has (ids
in paths, query strings, a few 5xx and 4xx, now and then several upstreams or a TLS handshake answered
400). It then times ``SOURCE.read`` on the bytes, and a full ``ingest_file`` into a fresh temporary
warehouse (parse, validation in DuckDB, load). It prints lines/s; it asserts no time.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from pipelines.slo import ingest
from pipelines.sources.access_log import SOURCE
from pipelines.warehouse import connect

ROUTES = [
    ("GET", "/"),
    ("GET", "/products/{id}"),
    ("GET", "/products/{id}/reviews?page={n}"),
    ("GET", "/search?q=item{n}"),
    ("POST", "/cart/{uuid}/items"),
    ("GET", "/cart/{uuid}"),
    ("POST", "/checkout"),
    ("GET", "/static/app.{hex}.js"),
    ("GET", "/api/v2/orders/{id}"),
    ("DELETE", "/api/v2/orders/{id}"),
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
]


def generate(path: Path, lines: int, seed: int) -> None:
    """``lines`` combined + request-time lines spread evenly over one day, in time order."""
    rng = random.Random(seed)
    zone = timezone(timedelta(hours=1))
    start = datetime(2026, 10, 1, tzinfo=zone)
    step = 86400 / lines
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            moment = start + timedelta(seconds=int(i * step))
            method, route = ROUTES[rng.randrange(len(ROUTES))]
            target = route.format(
                id=rng.randrange(1, 10**6),
                n=rng.randrange(1, 50),
                uuid=f"{rng.getrandbits(128):032x}",
                hex=f"{rng.getrandbits(64):016x}",
            )
            if "{uuid}" in route:
                u = target.split("/")[2]
                target = target.replace(u, f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}")
            roll = rng.random()
            status = 500 if roll < 0.002 else 404 if roll < 0.02 else 304 if roll < 0.1 else 200
            upstream_seconds = rng.expovariate(1 / 0.05)
            request_seconds = upstream_seconds + rng.expovariate(1 / 0.002)
            upstream = f"{upstream_seconds:.3f}"
            if roll > 0.995:
                upstream = f"{upstream_seconds / 2:.3f}, {upstream_seconds / 2:.3f}"
            request = f"{method} {target} HTTP/1.1"
            if roll > 0.9995:
                request, status, upstream = r"\x16\x03\x01\x00\xA5\x01", 400, "-"
            address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            out.write(
                f'{address} - - [{moment:%d/%b/%Y:%H:%M:%S %z}] "{request}" {status} '
                f'{rng.randrange(200, 60000)} "https://shop.example/" "{AGENTS[rng.randrange(len(AGENTS))]}" '
                f"{request_seconds:.3f} {upstream}\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--keep", type=Path, help="write the log and warehouse here instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sloscope-access-log-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / "shop.access.log"
        started = time.perf_counter()
        generate(log_path, args.lines, args.seed)
        raw = log_path.read_bytes()
        seconds = time.perf_counter() - started
        print(f"generated {args.lines:,} lines ({len(raw) / 1e6:,.0f} MB) in {seconds:.1f} s")

        started = time.perf_counter()
        records = SOURCE.read(raw, log_path)
        parse_seconds = time.perf_counter() - started
        refused = sum(problem is not None for problem in records.problems)
        operations = len(set(records.columns["operation"]))
        del records
        print(
            f"SOURCE.read        {parse_seconds:8.2f} s  {args.lines / parse_seconds:>12,.0f} lines/s"
            f"  ({refused} refused, {operations} distinct operations)"
        )

        # The plugin as the sloscope.sources entry point registers it, whether or not it is installed yet.
        ingest._PLUGINS[".log"] = SOURCE
        ingest.FORMATS[".log"] = f"plugin:{SOURCE.name}"
        con = connect(folder / "warehouse.duckdb")
        try:
            started = time.perf_counter()
            result = ingest.ingest_file(con, log_path)
            ingest_seconds = time.perf_counter() - started
        finally:
            con.close()
        print(
            f"ingest_file        {ingest_seconds:8.2f} s  {args.lines / ingest_seconds:>12,.0f} lines/s"
            f"  ({result.rows_loaded:,} loaded, {result.rows_quarantined:,} quarantined)"
        )


if __name__ == "__main__":
    main()
