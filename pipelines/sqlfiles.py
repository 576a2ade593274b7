"""Loads SQL from the repository's ``sql/`` folder.

Values always travel as bound ``$named`` parameters. The only text ever substituted into SQL is an
internal table name (``{source}``, ``{target}``), and only from the fixed allow-list below: names from
configuration never reach SQL text.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pipelines.settings import REPO_ROOT

SQL_DIR = REPO_ROOT / "sql"

_INTERNAL_TABLES = frozenset(
    {
        "sli_counts_minute",
        "sli_counts_hour",
        "sli_counts_day",
        "sli_threshold_minute",
        "sli_threshold_hour",
        "sli_threshold_day",
        "latency_histogram_minute",
        "latency_histogram_hour",
        "latency_histogram_day",
        "sli_ratio_minute",
        "sli_ratio_hour",
    }
)
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def _read(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8")


def statements(name: str, **tables: str) -> list[str]:
    """The statements of ``sql/<name>.sql`` (split on ``;`` at line ends), with table slots filled."""
    for slot, table in tables.items():
        if table not in _INTERNAL_TABLES:
            raise ValueError(f"{slot}={table!r} is not an internal table name")
    text = _COMMENT.sub("", _read(name))
    if tables:
        text = text.format(**tables)
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", text) if part.strip()]


def sql(name: str, **tables: str) -> str:
    """A file holding exactly one statement."""
    found = statements(name, **tables)
    if len(found) != 1:
        raise ValueError(f"sql/{name}.sql holds {len(found)} statements, expected 1")
    return found[0]


def params_for(statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters a statement names (DuckDB rejects unused named parameters)."""
    names = set(_PARAM.findall(statement))
    missing = names - params.keys()
    if missing:
        raise KeyError(f"missing SQL parameters: {sorted(missing)}")
    return {key: params[key] for key in names}


def run(con: Any, name: str, params: dict[str, Any] | None = None, **tables: str) -> None:
    """Execute every statement of a file, each with the parameters it names."""
    for statement in statements(name, **tables):
        con.execute(statement, params_for(statement, params or {}))
