"""Prometheus as a pull source: raw counter samples from the HTTP API, landed as per-interval counts.

Why raw samples and not ``increase()``/``rate()``: those extrapolate to the window edges and are computed
separately for the good and the total query, so an interval can come out with fractional counts or with
``good > total``. Here every series' raw samples are fetched (``/api/v1/query`` of the range vector
``selector[<range>]``, which returns the stored samples unchanged) and differenced per series:

* a value lower than the previous one of the same series is a counter reset (a restarted process): the
  increase is the new value, as Prometheus itself assumes;
* a series' first sample ever seen (no earlier sample in the state or just before the window) is a
  baseline: it adds nothing, since its value counts events from before the window;
* each increase belongs to the interval ``[b, b + step)`` holding the instant just before the sample that
  closes it, so a sample scraped exactly on a boundary closes the interval that ends there;
* the increases of all series matched by a selector are summed per interval *after* differencing, so one
  series' reset is never read as a fall of the whole sum.

Good and total come from the same scrapes (the good selector normally matches a subset of the total
series, e.g. ``code!~"5.."``), so good <= total holds interval by interval. If the selectors point at
different series that reset at different times, good can exceed total in an interval; it is then clamped
to total and a warning says how often, because ingestion would rightly quarantine such a row.

Incremental: ``<landing>/prometheus/<source>/.state.json`` remembers per (service, operation) where the
last pull ended and each series' last raw sample, so the next pull starts there and its first increase is
continuous with the last pull. Only whole intervals up to ``until`` are pulled; pulling again with the same
``until`` fetches and writes nothing. A sample that reaches Prometheus late (after its interval was
pulled) is counted in the first interval of the next pull rather than lost.

Counters are floats in Prometheus; request counters and histogram buckets hold whole numbers, and the
summed increases are rounded to whole numbers because the counts schema takes whole numbers only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

STATE_FILE = ".state.json"
_STATE_VERSION = 1
_SECRET_KEYS = frozenset({"bearertoken", "token", "password", "apikey", "api_key", "secret", "authorization"})


class PrometheusSourceError(ValueError):
    """A pull cannot go on: the API answered with an error, timed out, or the configuration is wrong.

    Messages name the server (without credentials) and the query, never a token."""


@dataclass(frozen=True)
class SeriesSpec:
    """A request-based SLI from two raw counter selectors, e.g. ``http_requests_total{job="api"}`` and
    ``http_requests_total{job="api",code!~"5.."}``. Selectors, not expressions: the raw samples are needed."""

    service: str
    operation: str
    total: str
    good: str


@dataclass(frozen=True)
class HistogramSpec:
    """A latency-threshold SLI from a classic histogram: good = requests in the bucket whose ``le`` equals
    ``threshold_ms``, total = ``<metric>_count``."""

    service: str
    operation: str
    metric: str = "http_request_duration_seconds"
    labels: Mapping[str, str] = field(default_factory=dict)
    threshold_ms: float = 300


@dataclass(frozen=True)
class _Sample:
    ts_ms: int
    value: float


def _selector(metric: str, labels: Mapping[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    inner = ",".join(f"{key}={quoted(value)}" for key, value in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _slug(text: str) -> str:
    """File-name-safe form of a service or operation (``GET /users/{id}`` -> ``get-users-id``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "all"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise PrometheusSourceError(f"'until' must carry a time zone, got {moment.isoformat()}")
    return round(moment.timestamp() * 1000)


def _series_key(metric: Mapping[str, str]) -> str:
    return json.dumps(sorted(metric.items()), separators=(",", ":"))


def _atomic_write(path: Path, text: str) -> None:
    """Temp file in the same folder + rename: the landing sensor never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)  # mkstemp makes 0600; landed files are read by other processes
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def increases(
    samples: Sequence[_Sample], previous: _Sample | None, start_ms: int, end_ms: int, step_ms: int
) -> tuple[dict[int, float], _Sample | None]:
    """One series' increases per interval start within ``[start_ms, end_ms)``, and its last sample.

    ``samples`` are in time order; those after ``end_ms`` are left for the next pull, and those up to
    ``previous`` were counted already. Without ``previous`` the first sample is the baseline.
    """
    out: dict[int, float] = {}
    last = previous
    for sample in samples:
        if sample.ts_ms > end_ms or (last is not None and sample.ts_ms <= last.ts_ms):
            continue
        if last is not None:
            delta = sample.value if sample.value < last.value else sample.value - last.value
            bucket = max(start_ms, (sample.ts_ms - 1) // step_ms * step_ms)
            out[bucket] = out.get(bucket, 0.0) + delta
        last = sample
    return out, last


class PrometheusSource:
    """Pulls request and latency SLIs from one Prometheus server into counts CSV files in the landing."""

    def __init__(
        self,
        name: str,
        url: str,
        series: Sequence[SeriesSpec | HistogramSpec],
        step: timedelta = timedelta(minutes=1),
        timeout_s: float = 10,
        bearer_token_env: str | None = None,
        initial_lookback: timedelta = timedelta(days=1),
        chunk: timedelta = timedelta(hours=6),
        baseline_lookback: timedelta = timedelta(minutes=5),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise PrometheusSourceError(f"source name {name!r} must be letters, digits, '.', '_' or '-'")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PrometheusSourceError(
                f"source {name!r}: the Prometheus URL must be http(s)://host[:port][/path]"
            )
        step_s = step.total_seconds()
        if step_s < 1 or step_s != int(step_s):
            raise PrometheusSourceError(f"step must be a whole number of seconds >= 1, got {step}")
        keys = [(s.service, s.operation) for s in series]
        if len(set(keys)) != len(keys):
            raise PrometheusSourceError("each (service, operation) may appear only once in a source")
        self.name = name
        self.url = url.rstrip("/")
        self.series = list(series)
        self.step = step
        self.timeout_s = timeout_s
        self.bearer_token_env = bearer_token_env
        self.initial_lookback = initial_lookback
        self.chunk = chunk
        self.baseline_lookback = baseline_lookback
        self._transport = transport
        # For messages: the server without any user:password in the URL.
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._safe_url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    # -- HTTP -----------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if not self.bearer_token_env:
            return {}
        token = os.environ.get(self.bearer_token_env)
        if not token:
            raise PrometheusSourceError(
                f"source {self.name!r}: environment variable {self.bearer_token_env} "
                "(the bearer token) is not set"
            )
        return {"Authorization": f"Bearer {token}"}

    def _get(self, client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
        """The ``data`` of a successful API answer; anything else is a PrometheusSourceError."""
        what = f"{self._safe_url}{path} ({params.get('query') or params.get('match[]') or ''})"
        try:
            response = client.get(f"{self.url}{path}", params=params, headers=self._headers())
        except httpx.TimeoutException as exc:
            raise PrometheusSourceError(
                f"Prometheus did not answer within {self.timeout_s}s: {what}"
            ) from exc
        except httpx.HTTPError as exc:
            raise PrometheusSourceError(f"cannot reach Prometheus: {what}: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusSourceError(
                f"Prometheus answered HTTP {response.status_code} without an API response: {what}: "
                f"{response.text[:200]!r}"
            )
        if body.get("status") != "success":
            raise PrometheusSourceError(
                f"Prometheus query failed (HTTP {response.status_code}, {body.get('errorType', 'error')}): "
                f"{body.get('error', 'no error message')}: {what}"
            )
        return body.get("data")

    def _raw_samples(
        self, client: httpx.Client, selector: str, lo_ms: int, hi_ms: int
    ) -> dict[str, list[_Sample]]:
        """Every stored sample in ``(lo_ms, hi_ms]`` of each series the selector matches, per series.

        Fetched in chunks as ``selector[<chunk>]`` evaluated at the chunk's end: a range vector returns
        the raw samples (no step alignment, no lookback filling). Chunk edges are filtered here, so the
        result does not depend on whether the server's ranges are left-open (3.x) or closed (2.x).
        """
        chunk_ms = max(1000, int(self.chunk.total_seconds()) * 1000)
        found: dict[str, dict[int, float]] = {}
        low = lo_ms
        while low < hi_ms:
            high = min(hi_ms, low + chunk_ms)
            range_s = math.ceil((high - low) / 1000)
            data = self._get(
                client, "/api/v1/query", {"query": f"{selector}[{range_s}s]", "time": f"{high / 1000:.3f}"}
            )
            if not isinstance(data, dict) or data.get("resultType") != "matrix":
                raise PrometheusSourceError(
                    f"{selector!r} is not a plain series selector (a range query gave "
                    f"{data.get('resultType') if isinstance(data, dict) else data!r}); use raw counters"
                )
            for result in data.get("result", []):
                values = found.setdefault(_series_key(result.get("metric", {})), {})
                for ts, value in result.get("values", []):
                    ts_ms = round(float(ts) * 1000)
                    if low < ts_ms <= high:
                        values[ts_ms] = float(value)
            low = high
        return {
            key: [_Sample(ts, values[ts]) for ts in sorted(values)] for key, values in found.items() if values
        }

    def _histogram_selectors(
        self, client: httpx.Client, spec: HistogramSpec, lo_ms: int, hi_ms: int
    ) -> tuple[str, str]:
        """(total, good) selectors: ``_count`` and the ``_bucket`` whose ``le`` equals the threshold."""
        bucket_selector = _selector(f"{spec.metric}_bucket", spec.labels)
        data = self._get(
            client,
            "/api/v1/label/le/values",
            {"match[]": bucket_selector, "start": f"{lo_ms / 1000:.3f}", "end": f"{hi_ms / 1000:.3f}"},
        )
        buckets: list[tuple[float, str]] = []
        for text in data or []:
            try:
                buckets.append((float(text), text))
            except ValueError:
                continue
        buckets.sort()
        wanted = spec.threshold_ms / 1000
        match = [text for bound, text in buckets if math.isclose(bound, wanted, rel_tol=1e-9, abs_tol=1e-12)]
        if not match:
            available = ", ".join(
                "+Inf" if math.isinf(bound) else f"{bound * 1000:g} ms" for bound, _ in buckets
            )
            raise PrometheusSourceError(
                f"{spec.service}/{spec.operation}: no bucket of {bucket_selector} has le = "
                f"{spec.threshold_ms:g} ms ({wanted:g} s); available buckets: {available or 'none'}. "
                "A latency threshold must equal a bucket bound: pick one of these or add the bucket."
            )
        total = _selector(f"{spec.metric}_count", spec.labels)
        good = _selector(f"{spec.metric}_bucket", {**spec.labels, "le": match[0]})
        return total, good

    # -- state --------------------------------------------------------------------------------------

    def _folder(self, landing: Path) -> Path:
        return landing / "prometheus" / self.name

    def _load_state(self, landing: Path) -> dict[str, Any]:
        path = self._folder(landing) / STATE_FILE
        if not path.exists():
            return {"version": _STATE_VERSION, "series": {}}
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PrometheusSourceError(
                f"the pull state {path} cannot be read ({exc}); fix or delete it (deleting re-pulls "
                "the initial lookback, which may land intervals twice)"
            ) from exc
        if state.get("version") != _STATE_VERSION:
            raise PrometheusSourceError(
                f"the pull state {path} has an unknown version {state.get('version')}"
            )
        return state

    # -- pull ---------------------------------------------------------------------------------------

    def pull(self, landing: Path, until: datetime) -> list[Path]:
        """Land the whole intervals after the last pull up to ``until``; the written files, in order."""
        step_ms = int(self.step.total_seconds()) * 1000
        end_ms = _ms(until) // step_ms * step_ms
        folder = self._folder(landing)
        state = self._load_state(landing)
        written: list[Path] = []
        with httpx.Client(timeout=self.timeout_s, transport=self._transport) as client:
            for spec in self.series:
                key = f"{spec.service}\x1f{spec.operation}"
                entry = state["series"].get(key)
                if entry is not None:
                    start_ms = int(entry["end_ms"])
                else:
                    start_ms = (
                        (end_ms - int(self.initial_lookback.total_seconds() * 1000)) // step_ms * step_ms
                    )
                if start_ms >= end_ms:
                    continue
                if isinstance(spec, HistogramSpec):
                    total_sel, good_sel = self._histogram_selectors(client, spec, start_ms, end_ms)
                else:
                    total_sel, good_sel = spec.total, spec.good
                selectors = [total_sel, good_sel]
                # New selectors: keep where the last pull ended (no interval landed twice), new baselines.
                last: dict[str, dict[str, list[float]]] = (
                    entry["last"] if entry is not None and entry.get("selectors") == selectors else {}
                )
                sums: list[dict[int, float]] = []
                new_last: dict[str, dict[str, list[float]]] = {}
                fetch_from = start_ms - int(self.baseline_lookback.total_seconds() * 1000)
                for role, selector in (("total", total_sel), ("good", good_sel)):
                    known = last.get(role, {})
                    per_interval: dict[int, float] = {}
                    kept: dict[str, list[float]] = {}
                    for series_key, samples in self._raw_samples(
                        client, selector, fetch_from, end_ms
                    ).items():
                        previous = (
                            _Sample(int(known[series_key][0]), known[series_key][1])
                            if (series_key in known)
                            else None
                        )
                        if previous is None:  # baseline: the last sample at or before the window start
                            before = [s for s in samples if s.ts_ms <= start_ms]
                            previous = before[-1] if before else None
                        deltas, tail = increases(samples, previous, start_ms, end_ms, step_ms)
                        for bucket, delta in deltas.items():
                            per_interval[bucket] = per_interval.get(bucket, 0.0) + delta
                        if tail is not None:
                            kept[series_key] = [tail.ts_ms, tail.value]
                    # Series not seen this time keep their last sample (a scrape gap is not a reset).
                    retention_ms = 7 * 86_400_000
                    for series_key, (ts_ms, value) in known.items():
                        if series_key not in kept and ts_ms > end_ms - retention_ms:
                            kept[series_key] = [ts_ms, value]
                    sums.append(per_interval)
                    new_last[role] = kept
                path = self._write(folder, spec, sums[0], sums[1], start_ms, end_ms)
                if path is not None:
                    written.append(path)
                state["series"][key] = {"end_ms": end_ms, "selectors": selectors, "last": new_last}
                # Saved after each file: a crash later re-pulls only the series not yet saved, and a
                # re-written file has the same name and bytes, which ingestion recognises.
                _atomic_write(folder / STATE_FILE, json.dumps(state, indent=1, sort_keys=True))
        return written

    def _write(
        self,
        folder: Path,
        spec: SeriesSpec | HistogramSpec,
        totals: dict[int, float],
        goods: dict[int, float],
        start_ms: int,
        end_ms: int,
    ) -> Path | None:
        """The counts CSV for one series and window; None when no total sample fell in the window
        (no data is not zero traffic)."""
        if not totals:
            return None
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["timestamp", "service", "operation", "total", "good"])
        clamped = 0
        for bucket in sorted(totals):
            total = round(totals[bucket])
            good = round(goods.get(bucket, 0.0))
            if good > total:
                clamped += 1
                good = total
            writer.writerow([_iso(bucket), spec.service, spec.operation, total, good])
        if clamped:
            log.warning(
                "source %s, %s/%s: good exceeded total in %d interval(s) between %s and %s "
                "(the good and total selectors reset differently?); good was clamped to total",
                self.name,
                spec.service,
                spec.operation,
                clamped,
                _iso(start_ms),
                _iso(end_ms),
            )
        # Named by series and start only: names that slug alike stay apart (the hash), and a pull that
        # re-runs after a crash (before its state was saved) rewrites the same path, whose new content
        # replaces the old rows on ingestion instead of adding to them.
        identity = hashlib.sha256(f"{spec.service}\x00{spec.operation}".encode()).hexdigest()[:8]
        path = folder / f"{_slug(spec.service)}-{_slug(spec.operation)}-{identity}-{_compact(start_ms)}.csv"
        _atomic_write(path, buffer.getvalue())
        return path


def from_datasource(
    doc: Mapping[str, Any], series: Sequence[SeriesSpec | HistogramSpec], **options: Any
) -> PrometheusSource:
    """A source from an OpenSLO ``DataSource`` document of ``spec.type: prometheus``.

    ``spec.connectionDetails`` holds ``url`` and optionally ``bearerTokenEnv``, the *name* of the
    environment variable with the token: a secret written in the document would end up in git, so a
    literal token, password or similar key is refused. ``options`` go to :class:`PrometheusSource`.
    """
    if doc.get("kind") != "DataSource":
        raise PrometheusSourceError(f"expected an OpenSLO DataSource document, got kind {doc.get('kind')!r}")
    name = (doc.get("metadata") or {}).get("name")
    spec = doc.get("spec") or {}
    where = f"DataSource {name!r}"
    if not name:
        raise PrometheusSourceError("the DataSource document has no metadata.name")
    if str(spec.get("type", "")).lower() != "prometheus":
        raise PrometheusSourceError(f"{where}: spec.type is {spec.get('type')!r}, expected 'prometheus'")
    details = spec.get("connectionDetails") or {}
    if not isinstance(details, Mapping):
        raise PrometheusSourceError(f"{where}: spec.connectionDetails must be a mapping")
    secrets = sorted(k for k in details if str(k).lower().replace("-", "").replace("_", "") in _SECRET_KEYS)
    if secrets:
        raise PrometheusSourceError(
            f"{where}: connectionDetails.{secrets[0]} would put a secret in the document; "
            "set bearerTokenEnv to the name of an environment variable holding it"
        )
    url = details.get("url")
    if not isinstance(url, str) or not url:
        raise PrometheusSourceError(f"{where}: spec.connectionDetails.url is missing")
    if urlsplit(url).password:
        raise PrometheusSourceError(f"{where}: the URL holds a password; use bearerTokenEnv instead")
    token_env = details.get("bearerTokenEnv")
    if token_env is not None and not (
        isinstance(token_env, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env)
    ):
        raise PrometheusSourceError(f"{where}: bearerTokenEnv must be an environment variable name")
    return PrometheusSource(str(name), url, series, bearer_token_env=token_env, **options)
