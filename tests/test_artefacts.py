"""pipelines.slo.artefacts: PDFs printed by the real headless Chromium, and the reports index."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipelines.slo.artefacts import ArtefactError, find_chromium, html_to_pdf, write_index

HAS_CHROMIUM = any(shutil.which(name) for name in ("chromium", "chromium-browser"))
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")

PAGE = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>Prüfbericht</title>
<style>body { font-family: sans-serif; }</style></head>
<body>
<h1>Zahlungsdienst: Verfügbarkeit</h1>
<p>Größe über 99,9 %</p>
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="80" viewBox="0 0 200 80">
  <rect x="0" y="0" width="200" height="80" fill="#1e7b34"/>
  <text x="10" y="45" fill="#fff">Übersicht</text>
</svg>
</body></html>
"""


def pdf_pages(data: bytes) -> int:
    # Page objects are "/Type /Page" (or "/Type/Page"); "/Type /Pages" is the page tree, not a page.
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


@needs_chromium
def test_html_to_pdf_prints_a_self_contained_page(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    pdf = tmp_path / "out" / "report.pdf"

    assert html_to_pdf(html, pdf) == pdf

    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert pdf_pages(data) == 1  # one short page of A4/Letter
    assert not [p for p in pdf.parent.iterdir() if p.name != "report.pdf"]  # no temporary left behind
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
        assert "Zahlungsdienst: Verfügbarkeit" in text
        assert "Größe über 99,9 %" in text


@needs_chromium
def test_html_to_pdf_replaces_an_existing_pdf(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"stale")
    html_to_pdf(html, pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_missing_chromium_is_an_artefact_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("SLOSCOPE_CHROMIUM", raising=False)
    with pytest.raises(ArtefactError, match="install Debian's chromium"):
        html_to_pdf(html, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_override_naming_a_missing_binary_is_an_artefact_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOSCOPE_CHROMIUM", "no-such-chromium-binary")
    with pytest.raises(ArtefactError, match="no-such-chromium-binary"):
        find_chromium()


def fake_browser(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def test_failing_chromium_reports_its_status_and_last_words(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    browser = fake_browser(tmp_path, 'echo "noise" >&2; echo "FATAL: cannot open display" >&2; exit 3')
    with pytest.raises(ArtefactError, match=r"status 3 .*FATAL: cannot open display"):
        html_to_pdf(html, tmp_path / "report.pdf", browser=browser)
    assert not (tmp_path / "report.pdf").exists()


def test_chromium_that_writes_no_pdf_is_an_error(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    with pytest.raises(ArtefactError, match="no PDF"):
        html_to_pdf(html, tmp_path / "report.pdf", browser=fake_browser(tmp_path, "exit 0"))


def test_hanging_chromium_times_out_and_is_killed(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    pid_file = tmp_path / "child.pid"
    # The child stands in for Chromium's renderer: it must die with the group, not linger.
    browser = fake_browser(tmp_path, f"sleep 30 & echo $! > {pid_file}; wait")
    with pytest.raises(ArtefactError, match=r"within 0\.5s"):
        html_to_pdf(html, tmp_path / "report.pdf", timeout_s=0.5, browser=browser)
    child = int(pid_file.read_text())
    assert child_is_gone(child)


def child_is_gone(pid: int) -> bool:
    """Killed, even if left a zombie: a container's PID 1 does not always reap orphans."""
    time.sleep(0.2)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def test_missing_html_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="no such file"):
        html_to_pdf(tmp_path / "nope.html", tmp_path / "nope.pdf", browser="/bin/true")


# --------------------------------------------------------------------------------------------------
# Index


def touch(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (1_790_000_000, 1_790_000_000))  # 2026-09-21 14:13:20 UTC
    return path


HOSTILE = '<script>alert("x")<\\script> a#b?c%20&d é'  # no "/": that would make two folders


def test_index_lists_every_artefact_escaped_and_percent_encoded(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    touch(reports / "2026-10-31" / "checkout" / "report.html", b"x" * 2048)
    touch(reports / "2026-10-31" / "checkout" / "report.pdf", b"%PDF-" + b"x" * 95)
    touch(reports / "2026-10-31" / "checkout" / "data" / "hourly.html", b"not an artefact")
    touch(reports / "2026-10-31" / "checkout" / "report.ipynb", b"{}")
    touch(reports / "2026-09-30" / HOSTILE / "monthly.html", b"hi")

    index = write_index(reports)

    assert index == reports / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;\\script&gt; a#b?c%20&amp;d é" in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == [
        "2026-10-31/checkout/report.html",
        "2026-10-31/checkout/report.pdf",
        "2026-09-30/%3Cscript%3Ealert%28%22x%22%29%3C%5Cscript%3E%20a%23b%3Fc%2520%26d%20%C3%A9/monthly.html",
    ]
    # Every link resolves (relative to the index) to the file it names.
    for href in hrefs:
        assert (reports / unquote(href)).is_file()
    # 2048 bytes = 2.0 KiB; 100 bytes stay bytes; mtime set above.
    assert "2.0 KiB" in page and "100 B" in page and "2 B" in page
    assert "2026-09-21 14:13" in page
    assert "3 artefacts" in page
    assert "hourly.html" not in page and "report.ipynb" not in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_index_is_regenerated_and_handles_an_empty_tree(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    assert "No reports yet." in write_index(reports).read_text(encoding="utf-8")
    touch(reports / "2026-10-31" / "checkout" / "report.html", b"x")
    page = write_index(reports).read_text(encoding="utf-8")
    assert "2026-10-31/checkout/report.html" in page
    assert sorted(p.name for p in reports.iterdir()) == ["2026-10-31", "index.html"]  # no temp files


def test_index_ignores_symlinks_leading_outside(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    secret = touch(tmp_path / "secret.html", b"secret")
    (reports / "2026-10-31" / "checkout").mkdir(parents=True)
    (reports / "2026-10-31" / "checkout" / "leak.html").symlink_to(secret)
    (reports / "2026-10-31" / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    assert "leak.html" not in write_index(reports).read_text(encoding="utf-8")
