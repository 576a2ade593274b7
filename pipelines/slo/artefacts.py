"""Report artefacts on disk: the PDF of a report page, and one index page listing every artefact.

The PDF is printed by Debian's ``chromium`` in headless mode rather than WeasyPrint: Chromium lays out
the inline SVG charts exactly as a reader's browser does, and it installs from the distribution on a
fresh machine (``apt-get install chromium``) with no Python wheels that need system Cairo/Pango.

Both writers replace their output atomically (write beside it, then ``os.replace``), so a reader or
the mailer never picks up a half-written PDF or index, and a failed run leaves the previous file intact.

Layout (from :func:`pipelines.slo.report.render_service_report`)::

    reports/index.html
    reports/<YYYY-MM-DD>/<service slug>/<report type>.html   (and .pdf)

This module must not import Dagster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment

__all__ = ["CHROMIUM_NAMES", "ArtefactError", "find_chromium", "html_to_pdf", "write_index"]

CHROMIUM_NAMES: tuple[str, ...] = ("chromium", "chromium-browser")
"""Executables tried in order on PATH (Debian ships ``chromium``; Ubuntu's snap ``chromium-browser``)."""

INSTALL_HINT = "install Debian's chromium (apt-get install chromium) or set SLOSCOPE_CHROMIUM to its path"
ARTEFACT_SUFFIXES = (".html", ".pdf")
INDEX_NAME = "index.html"


class ArtefactError(RuntimeError):
    """An artefact could not be produced; the message names the file and what to do about it."""


# --------------------------------------------------------------------------------------------------
# PDF


def find_chromium(env: dict[str, str] | None = None) -> str:
    """The Chromium executable: ``$SLOSCOPE_CHROMIUM`` when set, else the first of CHROMIUM_NAMES on PATH."""
    environ = os.environ if env is None else env
    override = environ.get("SLOSCOPE_CHROMIUM")
    candidates = (override,) if override else CHROMIUM_NAMES
    for name in candidates:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    tried = ", ".join(candidates)
    raise ArtefactError(f"cannot print PDFs: no Chromium executable found (tried {tried}); {INSTALL_HINT}")


def html_to_pdf(html: Path, pdf: Path, *, timeout_s: float = 60, browser: str | None = None) -> Path:
    """Print the page ``html`` to ``pdf`` with headless Chromium and return ``pdf``.

    Each run gets its own throwaway profile (``--user-data-dir``), because two Chromiums sharing a
    profile refuse to start side by side. Chromium is started in its own process group so a timeout
    kills its renderer and GPU helpers too, not only the parent. The page must be self-contained:
    nothing here waits for network resources.

    Raises ArtefactError when Chromium is missing, exits non-zero, times out or writes no PDF.
    """
    source = html.resolve()
    if not source.is_file():
        raise ArtefactError(f"cannot print {html}: no such file")
    executable = browser or find_chromium()
    target = pdf.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary PDF sits beside the target so the final os.replace stays on one filesystem.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory(prefix="sloscope-chromium-") as profile:
            command = [
                executable,
                "--headless",
                "--no-sandbox",  # containers and CI run as root, where the sandbox cannot start
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--no-pdf-header-footer",  # Chromium >= 111; older ones used --print-to-pdf-no-header
                f"--user-data-dir={profile}",
                f"--print-to-pdf={tmp}",
                source.as_uri(),
            ]
            _run_chromium(command, html, timeout_s)
        with tmp.open("rb") as handle:
            head = handle.read(5)
        if head != b"%PDF-":
            raise ArtefactError(f"Chromium printed no PDF for {html} (output {tmp} is empty or not a PDF)")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf


def _run_chromium(command: list[str], html: Path, timeout_s: float) -> None:
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ArtefactError(
            f"cannot start {command[0]} to print {html}: {exc.strerror}; {INSTALL_HINT}"
        ) from exc
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise ArtefactError(
            f"Chromium did not finish printing {html} within {timeout_s:g}s (killed); is the page"
            " waiting for a network resource?"
        ) from None
    if process.returncode != 0:
        # Chromium logs harmless D-Bus complaints on servers; the last lines hold the real reason.
        tail = " | ".join(stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
        raise ArtefactError(
            f"Chromium exited with status {process.returncode} printing {html}: {tail or '(no output)'};"
            f" {INSTALL_HINT}"
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------
# Index


@dataclass(frozen=True)
class _File:
    name: str
    href: str
    size: str
    modified: str


@dataclass
class _Report:
    kind: str
    files: list[_File] = field(default_factory=list)


@dataclass
class _Service:
    name: str
    reports: list[_Report] = field(default_factory=list)


@dataclass
class _Period:
    name: str
    services: list[_Service] = field(default_factory=list)


_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sloscope reports</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #202124; }
h2 { border-bottom: 1px solid #dadce0; padding-bottom: .2rem; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { text-align: left; padding: .25rem .75rem; border-bottom: 1px solid #eee; }
td.size { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>sloscope reports</h1>
<p>Generated {{ generated }} (UTC). {{ count }} artefact{{ "" if count == 1 else "s" }}.</p>
{% if not periods %}<p>No reports yet.</p>{% endif %}
{% for period in periods %}
<h2>{{ period.name }}</h2>
<table>
<thead><tr><th>Service</th><th>Report</th><th>File</th><th>Size</th><th>Modified (UTC)</th></tr></thead>
<tbody>
{% for service in period.services %}{% for report in service.reports %}{% for file in report.files %}
<tr><td>{{ service.name }}</td><td>{{ report.kind }}</td>
<td><a href="{{ file.href }}">{{ file.name }}</a></td>
<td class="size">{{ file.size }}</td><td>{{ file.modified }}</td></tr>
{% endfor %}{% endfor %}{% endfor %}
</tbody>
</table>
{% endfor %}
</body>
</html>
"""


def write_index(reports_dir: Path) -> Path:
    """Write ``reports_dir/index.html`` listing every artefact and return its path.

    Artefacts are the ``.html``/``.pdf`` files directly inside ``<period>/<service>/``; the report type
    is the file's stem, so ``report.html`` and ``report.pdf`` share a row group. Working files
    (``data/``, the executed notebook) and symlinks are left out: the index must only ever point
    inside ``reports_dir``. Names are HTML-escaped (Jinja autoescape) and links are relative and
    percent-encoded per path segment, so a folder called ``<script>`` or ``a#b?c`` is shown and
    linked as itself. Newest period first. The page has no external references.
    """
    root = reports_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    periods, count = _scan(root)
    env = Environment(autoescape=True, keep_trailing_newline=True)
    page = env.from_string(_INDEX_TEMPLATE).render(
        periods=periods, count=count, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    )
    target = root / INDEX_NAME
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{INDEX_NAME}.", suffix=".tmp", dir=root)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide the index from a web server
        os.replace(tmp_name, target)
    except OSError as exc:  # a full or read-only disk: say which file could not be written
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    return reports_dir / INDEX_NAME


def _scan(root: Path) -> tuple[list[_Period], int]:
    periods: list[_Period] = []
    count = 0
    for period_dir in sorted(_dirs(root), key=lambda p: p.name, reverse=True):
        period = _Period(period_dir.name)
        for service_dir in sorted(_dirs(period_dir), key=lambda p: p.name):
            reports: dict[str, _Report] = {}
            files = sorted(
                (p for p in service_dir.iterdir() if p.suffix.lower() in ARTEFACT_SUFFIXES),
                key=lambda p: (p.stem, ARTEFACT_SUFFIXES.index(p.suffix.lower()), p.name),
            )
            for path in files:
                if path.is_symlink() or not path.is_file():
                    continue
                stat = path.stat()
                href = "/".join(
                    quote(part, safe="") for part in (period_dir.name, service_dir.name, path.name)
                )
                reports.setdefault(path.stem, _Report(path.stem)).files.append(
                    _File(
                        name=path.name,
                        href=href,
                        size=_human_size(stat.st_size),
                        modified=datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d %H:%M"),
                    )
                )
                count += 1
            if reports:
                period.services.append(_Service(service_dir.name, list(reports.values())))
        if period.services:
            periods.append(period)
    return periods, count


def _dirs(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} MiB"  # unreachable; keeps type checkers content
