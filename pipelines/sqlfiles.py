"""Loads SQL from the repository's ``sql/`` folder.

Values always travel as bound ``$named`` parameters. The only text ever substituted into SQL is an
internal table name (``{source}``, ``{target}``), and only from the fixed allow-list below: names from
configuration never reach SQL text.

A line ``-- include: <name>`` alone on its line is replaced by the text of ``sql/<name>.sql`` (for SQL
shared by several files, e.g. the CTEs of ``objective_batch_matched.sql``). Names are literal in the
files, ``[a-z0-9_]`` only, so an include can only ever read another file of ``sql/``. Included files may
include others; a cycle, an unknown file or a malformed name is an error naming the files involved.
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
_INCLUDE = re.compile(r"^[ \t]*--[ \t]*include:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_INCLUDE_NAME = re.compile(r"[a-z0-9_]+")


@cache
def _read(name: str) -> str:
    return _expand(name, ())


def _expand(name: str, chain: tuple[str, ...]) -> str:
    """The text of ``sql/<name>.sql`` with its includes spliced in; ``chain``: the including files."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        where = f" (included from sql/{chain[-1]}.sql)" if chain else ""
        raise FileNotFoundError(f"no SQL file {path}{where}")
    return _INCLUDE.sub(lambda m: _included(m.group(1), (*chain, name)), path.read_text(encoding="utf-8"))


def _included(name: str, chain: tuple[str, ...]) -> str:
    if not _INCLUDE_NAME.fullmatch(name):
        raise ValueError(f"sql/{chain[-1]}.sql: bad include name {name!r} (only [a-z0-9_], no .sql)")
    if name in chain:
        cycle = " -> ".join(f"sql/{n}.sql" for n in (*chain[chain.index(name) :], name))
        raise ValueError(f"SQL include cycle: {cycle}")
    return _expand(name, chain).rstrip("\n")


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
