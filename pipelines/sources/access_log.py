"""Web-server access logs (nginx, Apache) as a file source: one request per line becomes one event.

Formats, recognised per line (a file may mix them, as after a ``log_format`` change):

* **common** (Apache ``%h %l %u %t "%r" %>s %b``, nginx without the quoted trailer);
* **combined** (common + ``"$http_referer" "$http_user_agent"``; nginx's default ``combined``);
* **combined with request times**, the two usual nginx ``log_format`` variants, optionally after extra
  quoted fields such as ``"$http_x_forwarded_for"``:
  ``... "$http_user_agent" $request_time $upstream_response_time`` and
  ``... "$http_user_agent" rt=$request_time uct="..." uht="..." urt="$upstream_response_time"``.

Each line becomes an events-schema record (see README "Input data"), all values text:

* ``timestamp``: ``[25/Oct/2015:04:11:25 +0100]`` as ``2015-10-25T04:11:25+01:00``. The log's own offset
  is kept, so the warehouse's ``sloscope_parse_ts`` converts it to UTC (2015-10-25 03:11:25).
* ``service``: the file name up to its first dot (``checkout.access.log`` and ``checkout.2026-10-01.log``
  are both ``checkout``): a server writes one log per site, so the file is the service. The name is only
  data; a file whose name starts with a dot has no service and every line is quarantined saying so.
* ``operation``: ``METHOD /path/template``. The query string and fragment are dropped, an absolute URI
  (proxy request) keeps only its path, and every path segment that is a number, a UUID or a hex string of
  16+ characters becomes ``:id`` (``GET /orders/123?x=1`` -> ``GET /orders/:id``), so one endpoint is one
  operation, not one per order; a run of 16+ hex digits inside a segment between ``.``, ``-`` or ``_``
  is replaced too (``/static/app.3f2a9c0d1e5b7a44.js`` -> ``/static/app.:id.js``). A target that is not a
  path (``OPTIONS *``, ``CONNECT host:443``) becomes ``METHOD *``; a request line that is not
  ``METHOD target [HTTP/x]`` (a TLS handshake sent to the plain port, nginx's ``"-"`` for a request that
  never arrived) is the operation ``(invalid request)``: it was answered (usually 400), so it is counted,
  not dropped. Templates are cut to 200 characters (the
  warehouse's limit for names) with a trailing ``…``.
* ``status_code``: the status as logged; ``success`` is empty (the status decides: 5xx is a failure).
* ``latency_ms``: ``$request_time`` in milliseconds when the line has it; else the first value of
  ``$upstream_response_time`` (several upstreams are logged ``0.010, 0.020 : 0.005``; ``-`` is missing);
  else empty. ``$request_time`` is preferred because it is what the client waited.

Lines end at ``\\n`` (a trailing ``\\r`` is dropped). A blank or whitespace-only line is not a record, as
in the CSV and NDJSON readers, so ``rows_read`` counts the other lines; every one of those is loaded or
quarantined. A line that is not valid UTF-8, does not match any of the formats, has an impossible
timestamp or trailing fields of an unknown format is quarantined with a reason, its line number and the
line itself (undecodable bytes shown as U+FFFD). Unknown trailing fields are refused rather than ignored:
they would mean a ``log_format`` this reader does not know, whose latency would silently be lost.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.sources import StagedRecords

COLUMNS = ("timestamp", "service", "operation", "status_code", "success", "latency_ms")
INVALID_REQUEST = "(invalid request)"
MAX_OPERATION_CHARS = 200  # the warehouse quarantines longer names (sloscope_name_problems)
_CACHE_LIMIT = 200_000  # distinct paths remembered per file; beyond this the cache starts over

# A quoted field's content: nginx escapes '"' as \x22, Apache as \" — both are handled.
_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
# The fast path: one match per line. Groups: time, method, target, status, rest of the line.
_LINE = re.compile(
    r"\S+ \S+ \S+ \[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    r'"(?:([A-Z][A-Z_-]{0,19}) ([^\s"]+)(?: HTTP/\d+(?:\.\d+)?)?|' + _QUOTED + r')" '
    r"(\d{3}) (?:\d+|-)"
    r'(?: "' + _QUOTED + r'" "' + _QUOTED + r'")?'
    r"(.*)"
)
# Only for lines the fast path refused: which field is wrong.
_LOOSE = re.compile(r'\S+ \S+ \S+ \[([^\]]*)\] "' + _QUOTED + r'" (\S+) (\S+)(.*)')
# Trailers after the user agent: extra quoted fields, then "$request_time $upstream_response_time"...
_UPSTREAM_LIST = r"(?:\d+(?:\.\d+)?|-)(?:\s*[,:]\s*(?:\d+(?:\.\d+)?|-))*"
_POSITIONAL = re.compile(
    r'(?:\s*"' + _QUOTED + r'")*\s+(\d+(?:\.\d+)?|-)(?:\s+(' + _UPSTREAM_LIST + r"))?\s*"
)
# ... or key=value pairs (rt=, urt=, uct=, ...) mixed with quoted fields; or quoted fields alone.
# The unquoted value excludes "=" too: otherwise "a=a=a=..." splits in exponentially many ways before a
# stray quote makes the match fail (catastrophic backtracking on one bad line).
_KEY_VALUES = re.compile(r'(?:\s*(?:"' + _QUOTED + r'"|\w+=(?:"[^"]*"|[^\s"=]*)))*\s*')
_PAIR = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s"]*))')
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_REQUEST_TIME_KEYS = ("rt", "request_time")
_UPSTREAM_TIME_KEYS = ("urt", "upstream_response_time")
# Parts of a path that name one object rather than an endpoint: a whole segment that is a number or a
# UUID, or a run of 16+ hex digits between separators (also inside a segment: app.3f2a9c0d1e5b7a44.js).
_ID_SEGMENT = re.compile(
    r"(?<=/)(?:\d+|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})(?=/|$)"
    r"|(?<=[/._-])[0-9A-Fa-f]{16,}(?=[/._-]|$)"
)
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}
_SURROGATE = re.compile("[\udc80-\udcff]")
# The usual trailer, " $request_time $upstream_response_time" with one upstream, before the general forms.
_SIMPLE_TIMES = re.compile(r" (\d+\.\d+|-) (\d+\.\d+|-)")
_MS_CACHE: dict[str, str] = {}  # nginx logs times in whole milliseconds: few distinct values


def service_of(path: Path) -> str | None:
    """The service a log file belongs to: its name up to the first dot; None when that part is empty."""
    return path.name.split(".", 1)[0].strip() or None


def operation_template(method: str, target: str) -> str:
    """``METHOD /path/template`` for a request target; see the module docstring for the rules."""
    return f"{method} {_path_template(target)}"


def _path_template(target: str) -> str:
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        absolute = _ABSOLUTE_URI.match(path)
        if absolute is None:
            return "*"
        path = path[absolute.end() :] or "/"
    template = _ID_SEGMENT.sub(":id", path)
    # Room for the longest method allowed (20 characters) and its space, so "METHOD template" fits.
    if len(template) > MAX_OPERATION_CHARS - 21:
        template = template[: MAX_OPERATION_CHARS - 22] + "…"
    return template


def _iso_date(text: str) -> str | None:
    """``25/Oct/2015`` -> ``2015-10-25``; None for an impossible date (31/Feb, an unknown month)."""
    month = _MONTHS.get(text[3:6].title())
    if month is None:
        return None
    try:
        return date(int(text[7:11]), month, int(text[0:2])).isoformat()
    except ValueError:
        return None


def _iso_timestamp(text: str, dates: dict[str, str | None]) -> str | None:
    """``25/Oct/2015:04:11:25 +0100`` -> ``2015-10-25T04:11:25+01:00``; None for an impossible one.

    The fast path's pattern has already checked the shape (digits where digits belong), so the ranges are
    plain string comparisons; ``dates`` remembers each day, as a log holds few.
    """
    day = dates.get(text[:11], "")
    if day == "":
        day = dates[text[:11]] = _iso_date(text[:11])
    if (
        day is None
        or text[12:14] > "23"
        or text[15:17] > "59"
        or text[18:20] > "59"
        or text[22:26] > "1400"
        or text[24:26] > "59"
    ):
        return None
    return f"{day}T{text[12:20]}{text[21:24]}:{text[24:26]}"


def _milliseconds(seconds: str) -> str:
    """Seconds as logged (``0.123``) in milliseconds (``123.0``), rounded to the microsecond."""
    found = _MS_CACHE.get(seconds)
    if found is None:
        if len(_MS_CACHE) >= _CACHE_LIMIT:
            _MS_CACHE.clear()
        found = _MS_CACHE[seconds] = repr(round(float(seconds) * 1000.0, 3))
    return found


def _first_upstream(values: str) -> str | None:
    first = re.split(r"\s*[,:]\s*", values.strip(), maxsplit=1)[0]
    return None if first in ("", "-") else first


def _latency(rest: str) -> tuple[str | None, str | None]:
    """(latency_ms, problem) from what follows the request fields of a line."""
    simple = _SIMPLE_TIMES.fullmatch(rest)
    if simple:
        request_time, upstream = simple.groups()
        if request_time != "-":
            return _milliseconds(request_time), None
        return (_milliseconds(upstream) if upstream != "-" else None), None
    if rest.isspace():
        return None, None
    positional = _POSITIONAL.fullmatch(rest)
    if positional:
        request_time, upstream = positional.groups()
        if request_time != "-":
            return _milliseconds(request_time), None
        first = _first_upstream(upstream) if upstream else None
        return (_milliseconds(first) if first else None), None
    if _KEY_VALUES.fullmatch(rest):
        pairs = {m[1]: m[2] if m[2] is not None else m[3] for m in _PAIR.finditer(rest)}
        for keys, pick in ((_REQUEST_TIME_KEYS, str.strip), (_UPSTREAM_TIME_KEYS, _first_upstream)):
            for key in keys:
                value = pairs.get(key)
                value = pick(value) if value is not None else None
                if value in (None, "", "-"):
                    continue
                if not _NUMBER.fullmatch(value):
                    return None, f"{key}={value[:40]!r} is not a number of seconds"
                return _milliseconds(value), None
        return None, None
    return None, (
        f"unrecognised fields after the request: {rest.strip()[:80]!r} (expected "
        "'$request_time $upstream_response_time', 'rt=... urt=...' or quoted fields)"
    )


def _diagnose(line: str) -> str:
    """Why a line is not an access log line, for the quarantine; only called for refused lines."""
    loose = _LOOSE.fullmatch(line)
    if loose is None:
        return "not an access log line (common, combined or combined with request times)"
    time_text, status, size, _ = loose.groups()
    if not re.fullmatch(r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}", time_text):
        return f"timestamp [{time_text[:40]}] is not in the form [25/Oct/2015:04:11:25 +0100]"
    if not re.fullmatch(r"\d{3}", status):
        return f"status {status[:40]!r} is not a 3-digit HTTP status"
    if not re.fullmatch(r"\d+|-", size):
        return f"response size {size[:40]!r} is not a number of bytes or '-'"
    return "not an access log line: the referer and user agent are not two quoted fields"


@dataclass(frozen=True)
class AccessLogSource:
    """The ``access-log`` file source: ``*.log`` files in the landing folder (see the module docstring)."""

    name: str = "access-log"
    suffixes: tuple[str, ...] = (".log",)

    def read(self, raw: bytes, path: Path) -> StagedRecords:
        """Every non-blank line as an event record, or with the reason it cannot be one."""
        # Millions of small containers would trigger the cyclic collector over and over (~15% of the
        # time on a day's log); none of them can form a cycle, so it is paused and restored as it was.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._read(raw, path)
        finally:
            if collecting:
                gc.enable()

    def _read(self, raw: bytes, path: Path) -> StagedRecords:
        try:
            text = raw.decode("utf-8")
            clean = True
        except UnicodeDecodeError:
            # Keep undecodable bytes as surrogates to find their lines; the rest of the file still loads.
            text = raw.decode("utf-8", errors="surrogateescape")
            clean = False
        text = text.removeprefix("\ufeff")
        service = service_of(path)
        file_problem = None if service else f"the service cannot be told from the file name {path.name!r}"
        timestamps: list[str | None] = []
        operations: list[str | None] = []
        statuses: list[str | None] = []
        latencies: list[str | None] = []
        numbers: list[int] = []
        raws: list[str | None] = []
        problems: list[str | None] = []
        times: dict[str, str | None] = {}  # a busy log repeats each second many times
        dates: dict[str, str | None] = {}
        templates: dict[str, str] = {}
        match_line = _LINE.fullmatch

        for number, line in enumerate(text.split("\n"), start=1):
            if line.endswith("\r"):
                line = line[:-1]
            if not line or line.isspace():
                continue
            problem: str | None = None
            found = None
            if not clean and _SURROGATE.search(line):
                problem = "not valid UTF-8"
            else:
                found = match_line(line)
                if found is None:
                    problem = _diagnose(line)
            if found is not None:
                time_text, method, target, status, rest = found.groups()
                timestamp = times.get(time_text, "")
                if timestamp == "":
                    timestamp = times[time_text] = _iso_timestamp(time_text, dates)
                if timestamp is None:
                    problem = f"timestamp [{time_text}] is not a valid date, time and UTC offset"
                else:
                    latency, problem = _latency(rest) if rest else (None, None)
            if problem is not None:
                timestamps.append(None)
                operations.append(None)
                statuses.append(None)
                latencies.append(None)
                raws.append(line.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            else:
                if method is None:
                    operation = INVALID_REQUEST
                else:
                    path_part = target.split("?", 1)[0]
                    template = templates.get(path_part)
                    if template is None:
                        if len(templates) >= _CACHE_LIMIT:
                            templates.clear()
                        template = templates[path_part] = _path_template(path_part)
                    operation = f"{method} {template}"
                timestamps.append(timestamp)
                operations.append(operation)
                statuses.append(status)
                latencies.append(latency)
                raws.append(None)  # a record the warehouse refuses is kept as its parsed fields
            numbers.append(number)
            problems.append(problem)

        count = len(numbers)
        return StagedRecords(
            columns={
                "timestamp": timestamps,
                "service": [service] * count,
                "operation": operations,
                "status_code": statuses,
                "success": [None] * count,
                "latency_ms": latencies,
            },
            row_numbers=numbers,
            raw=raws,
            problems=problems,
            file_problem=file_problem,
        )


SOURCE = AccessLogSource()
