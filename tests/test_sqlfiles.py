"""The SQL loader's ``-- include: <name>`` lines (pipelines/sqlfiles.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines import sqlfiles


@pytest.fixture
def sql_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty ``sql/`` folder in place of the repository's (the loader's cache cleared around it)."""
    sqlfiles._read.cache_clear()
    monkeypatch.setattr(sqlfiles, "SQL_DIR", tmp_path)
    yield tmp_path
    sqlfiles._read.cache_clear()


def write(folder: Path, **files: str) -> None:
    for name, text in files.items():
        (folder / f"{name}.sql").write_text(text, encoding="utf-8")


def test_include_is_spliced_in_place(sql_dir: Path) -> None:
    write(
        sql_dir,
        main="WITH a AS (SELECT $x AS v),\n-- include: part\nSELECT v FROM b;\n",
        part="-- the shared CTE\nb AS (SELECT v FROM a)\n",
    )
    assert sqlfiles.sql("main") == "WITH a AS (SELECT $x AS v),\n\nb AS (SELECT v FROM a)\nSELECT v FROM b"
    assert sqlfiles.params_for(sqlfiles.sql("main"), {"x": 1, "unused": 2}) == {"x": 1}


def test_nested_includes_expand_and_one_file_may_be_included_twice(sql_dir: Path) -> None:
    write(
        sql_dir,
        main="SELECT\n  -- include: outer\n, 3;\n",
        outer="-- include: inner\n, 2, \n-- include: inner\n",
        inner="1",
    )
    assert " ".join(sqlfiles.sql("main").split()) == "SELECT 1 , 2, 1 , 3"


def test_unknown_include_names_the_missing_and_the_including_file(sql_dir: Path) -> None:
    write(sql_dir, main="SELECT 1 FROM t\n-- include: nosuch_fragment\n;\n")
    with pytest.raises(FileNotFoundError, match=r"nosuch_fragment\.sql.*included from sql/main\.sql"):
        sqlfiles.sql("main")


def test_include_cycle_is_an_error_naming_the_cycle(sql_dir: Path) -> None:
    write(sql_dir, main="-- include: a\n", a="-- include: b\n", b="-- include: a\n")
    with pytest.raises(ValueError, match=r"cycle: sql/a\.sql -> sql/b\.sql -> sql/a\.sql"):
        sqlfiles.sql("main")
    write(sql_dir, itself="SELECT 1\n-- include: itself\n")
    with pytest.raises(ValueError, match=r"cycle: sql/itself\.sql -> sql/itself\.sql"):
        sqlfiles.sql("itself")


@pytest.mark.parametrize("name", ["../schema", "part.sql", "/etc/passwd", "Part", "", "a b"])
def test_include_names_are_plain_file_names_of_the_sql_folder(sql_dir: Path, name: str) -> None:
    write(sql_dir, main=f"SELECT 1\n-- include: {name}\n", part="2")
    with pytest.raises(ValueError, match=r"sql/main\.sql: bad include name"):
        sqlfiles.sql("main")


def test_only_a_line_of_its_own_includes(sql_dir: Path) -> None:
    write(sql_dir, main="SELECT 1 -- include: nosuch\n-- see `-- include: nosuch` in other files\n;\n")
    assert sqlfiles.sql("main") == "SELECT 1"


def test_table_slots_of_an_included_file_are_filled() -> None:
    query = sqlfiles.sql("objective_counts", counts="sli_counts_hour", thresholds="sli_threshold_hour")
    assert "sli_counts_hour" in query and "{" not in query


@pytest.mark.parametrize(
    ("name", "tables", "fragment"),
    [
        (
            "objective_counts",
            {"counts": "sli_counts_minute", "thresholds": "sli_threshold_minute"},
            "matched AS (",
        ),
        ("objective_causes", {}, "matched AS ("),
        (
            "objective_window_sums",
            {"counts": "sli_counts_day", "thresholds": "sli_threshold_day"},
            "contributions AS (",
        ),
        ("objective_minute_series", {}, "contributions AS ("),
    ],
)
def test_objective_queries_hold_their_shared_ctes_once(
    name: str, tables: dict[str, str], fragment: str
) -> None:
    query = sqlfiles.sql(name, **tables)
    assert query.count(fragment) == 1
    assert "include" not in query
