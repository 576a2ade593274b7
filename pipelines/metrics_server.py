"""A small ``/metrics`` endpoint for Prometheus: the stored SLO status as OpenMetrics or classic text.

Each scrape opens the warehouse read-only for the few milliseconds it takes to read ``slo_status`` and
closes it again: DuckDB allows one writing process, and a connection held between scrapes would make
every pipeline run fail on the lock. When a writer holds the file, a read-only open fails at once; the
scrape retries briefly and then answers 503 with the reason instead of waiting for the writer (the
warehouse's own ``connect`` waits up to a minute, which is longer than any scrape timeout). Prometheus
records the failed scrape as ``up == 0`` and the series go stale, which is the truth: no fresh status.

Stdlib only (``http.server``): no web framework to deploy beside the pipeline. Binds to 127.0.0.1 by
default; expose it wider only behind something that authenticates.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

from pipelines.slo.budget import EvaluationError, ObjectiveStatus, default_as_of
from pipelines.slo.openmetrics import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    exposition,
    text_exposition,
)
from pipelines.warehouse import _is_lock_conflict
from pipelines.workflows import current_status

log = logging.getLogger(__name__)

DEFAULT_PORT = 9464


class WarehouseUnavailable(RuntimeError):
    """The status cannot be read right now (locked by a writer, missing, never evaluated)."""


def read_status(warehouse: Path, *, lock_wait_seconds: float = 1.0) -> tuple[datetime, list[ObjectiveStatus]]:
    """The as-of time and the stored statuses, from a short read-only connection.

    Retries a lock conflict for ``lock_wait_seconds`` at most (a writer's commit is usually brief), then
    gives up with a message saying so; never creates the file or its schema.
    """
    if not warehouse.exists():
        raise WarehouseUnavailable(f"warehouse {warehouse} does not exist; ingest and evaluate first")
    deadline = time.monotonic() + lock_wait_seconds
    while True:
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
            break
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise WarehouseUnavailable(f"cannot open warehouse {warehouse}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise WarehouseUnavailable(
                    f"warehouse {warehouse} is locked by a writing process (a pipeline run?); "
                    "the status will be served again when it finishes"
                ) from exc
            time.sleep(0.1)
        except duckdb.ConnectionException as exc:
            # This process already holds the file read-write (e.g. the server runs inside a pipeline).
            raise WarehouseUnavailable(f"cannot open warehouse {warehouse} read-only: {exc}") from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        statuses = current_status(con)
        return default_as_of(con), statuses
    except EvaluationError as exc:
        raise WarehouseUnavailable(str(exc)) from exc
    except duckdb.CatalogException as exc:
        raise WarehouseUnavailable(f"warehouse {warehouse} has no SLO status tables yet: {exc}") from exc
    finally:
        con.close()


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str], float]]:
    """``Accept`` split into (type, parameters, q); a malformed q counts as 0."""
    ranges = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        ranges.append((pieces[0].lower(), params, q))
    return ranges


def wants_openmetrics(accept: str | None) -> bool:
    """Whether to answer in OpenMetrics: the client lists it with a quality at least that of plain text.

    Prometheus 2.x sends ``application/openmetrics-text;version=1.0.0,...;text/plain;version=0.0.4;q=0.5,
    */*;q=0.1``; curl sends ``*/*`` and a browser ``text/html,...``, which get the classic format (the
    one every client can read). OpenMetrics 0.0.1 and 1.0.0 are the same text for gauges, so any
    version is answered with 1.0.0, as the reference client library does.
    """
    if not accept:
        return False
    om_q = text_q = 0.0
    for media_type, _, q in _media_ranges(accept):
        if media_type == "application/openmetrics-text":
            om_q = max(om_q, q)
        elif media_type in ("text/plain", "text/*", "*/*"):
            text_q = max(text_q, q)
    return om_q > 0 and om_q >= text_q


class MetricsHandler(BaseHTTPRequestHandler):
    """``/metrics`` and ``/healthz``; the warehouse path is set on a subclass by :func:`make_server`."""

    warehouse: Path
    lock_wait_seconds: float = 1.0
    timeout = 10  # a client that never sends its request must not hold a thread forever
    server_version = "sloscope-metrics"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            # Liveness of the server only: the warehouse being busy is not a reason to restart it.
            self._send(HTTPStatus.OK, "text/plain; charset=utf-8", "ok\n", send_body)
        elif path == "/metrics":
            try:
                as_of, statuses = read_status(self.warehouse, lock_wait_seconds=self.lock_wait_seconds)
            except WarehouseUnavailable as exc:
                log.warning("metrics unavailable: %s", exc)
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", f"{exc}\n", send_body)
                return
            if wants_openmetrics(self.headers.get("Accept")):
                self._send(
                    HTTPStatus.OK, OPENMETRICS_CONTENT_TYPE, exposition(statuses, as_of=as_of), send_body
                )
            else:
                text = text_exposition(statuses, as_of=as_of)
                self._send(HTTPStatus.OK, TEXT_CONTENT_TYPE, text, send_body)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", "try /metrics\n", send_body)

    def _send(self, status: HTTPStatus, content_type: str, text: str, send_body: bool) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            self.send_header("Retry-After", "5")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Through logging at debug level, not stderr: a scrape every few seconds is not news."""
        log.debug("%s - %s", self.address_string(), format % args)


def make_server(
    warehouse: Path | str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    lock_wait_seconds: float = 1.0,
) -> ThreadingHTTPServer:
    """A bound, not yet serving, server (``port=0`` picks a free one: see ``server.server_address``)."""
    handler = type(
        "BoundMetricsHandler",
        (MetricsHandler,),
        {"warehouse": Path(warehouse), "lock_wait_seconds": lock_wait_seconds},
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(warehouse: Path | str, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (the ``sloscope`` CLI's entry point for the endpoint)."""
    server = make_server(warehouse, host, port)
    bound_host, bound_port = server.server_address[:2]
    log.info("serving SLO metrics of %s on http://%s:%s/metrics", warehouse, bound_host, bound_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
