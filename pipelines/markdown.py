"""Markdown tables for asset metadata shown in the Dagster UI (cells are escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _cell(value: Any) -> str:
    text = "—" if value is None else str(value)
    # A pipe or newline in a service name must not break the table; angle brackets must not become HTML.
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\r", " ")
        .replace("\n", " ")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)
    if len(lines) == 2:
        lines.append("| " + " | ".join(["(none)"] + [""] * (len(header) - 1)) + " |")
    return "\n".join(lines)
