"""A recording HTTP receiver on 127.0.0.1 for notification tests.

Tests need a real HTTP peer (status codes, Retry-After, slow answers that provoke client timeouts,
raw bytes to verify signatures against) without touching anything outside the loopback interface.
:class:`Receiver` is a threaded ``http.server`` on an ephemeral port that records every request and
answers from a programmable script of :class:`Reply` values; once the script is used up it repeats
``default``.

    with Receiver([503, Reply(202, b'{"status":"success"}')]) as receiver:
        dispatch(..., url=receiver.url("/v2/enqueue"))
        assert [r.path for r in receiver.requests] == ["/v2/enqueue", "/v2/enqueue"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """What the receiver answers: status, body, headers, and an optional delay before answering."""

    status: int = 200
    body: bytes | str = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived. ``headers`` keys are lower-case (HTTP header names are not)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, list[str]] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Receiver:
    """Threaded recording HTTP server bound to 127.0.0.1 on a free port; use as a context manager."""

    def __init__(self, script: Iterable[Reply | int] = (), default: Reply | int = Reply()) -> None:
        self._lock = threading.Lock()
        self._script: list[Reply] = [self._as_reply(r) for r in script]
        self._default = self._as_reply(default)
        self._closing = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _as_reply(reply: Reply | int) -> Reply:
        return Reply(reply) if isinstance(reply, int) else reply

    def program(self, script: Iterable[Reply | int], default: Reply | int | None = None) -> None:
        """Replace the remaining script (and optionally the default reply)."""
        with self._lock:
            self._script = [self._as_reply(r) for r in script]
            if default is not None:
                self._default = self._as_reply(default)

    def url(self, path: str = "/") -> str:
        assert self._server is not None, "receiver is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    @property
    def port(self) -> int:
        assert self._server is not None, "receiver is not running"
        return int(self._server.server_address[1])

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._script.pop(0) if self._script else self._default

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                parsed_json: Any = None
                form: dict[str, list[str]] | None = None
                if content_type == "application/json" and body:
                    try:
                        parsed_json = json.loads(body)
                    except ValueError:
                        parsed_json = None
                elif content_type == "application/x-www-form-urlencoded":
                    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                recorded = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    json=parsed_json,
                    form=form,
                )
                reply = receiver._next_reply(recorded)
                if reply.delay and receiver._closing.wait(reply.delay):
                    return  # shutting down: drop the answer
                payload = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to tell it

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="receiver", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
