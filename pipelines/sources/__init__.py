"""Source plugins: how data other than sloscope's own CSV/Parquet/NDJSON schemas gets in.

Two kinds, both registered under the ``sloscope.sources`` entry point group (see pyproject.toml; a
third-party package registers the same way) and both ending in the one ingestion path, so every record is
validated, loaded or quarantined with a reason, and re-reading the same input is a no-op:

* a **file source** reads files with its own suffixes found in the landing folder (access logs). It turns
  the bytes into :class:`StagedRecords`: text values in one of the input schemas (events, counts, counters,
  ratios; see README "Input data"), with each record's line number, raw text, and a reason when it is
  unusable before validation (a malformed log line);
* a **pull source** fetches from a system (Prometheus) and lands what it fetched as ordinary data files in
  the landing folder, remembering how far it got, so a pull is incremental and the landing sensor and
  ingestion take it from there.

The interface is deliberately small: a file source is any object with ``name``, ``suffixes`` and
``read(raw, path)``; a pull source is any object with ``name`` and ``pull(landing, until)``, built by a
registered *pull source kind* (``name`` and ``build(entries, catalog, where)``) from its section of the
sources file. The built-in access-log reader and Prometheus kind register exactly like a plugin would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)
GROUP = "sloscope.sources"
# The formats sloscope reads itself (pipelines.slo.ingest.BUILT_IN_FORMATS); a plugin cannot take them over.
BUILT_IN_SUFFIXES = frozenset({".csv", ".parquet", ".pq", ".ndjson", ".jsonl"})


@dataclass
class StagedRecords:
    """One input's records as text, in one of the input schemas.

    ``columns`` maps each schema column (``timestamp``, ``service``, ...) to one text value per record
    (None = missing). ``row_numbers`` say where each record starts in the input (1-based line numbers),
    ``raw`` holds the original text (kept in the quarantine), ``problems`` a reason per record that makes
    it unusable before validation (None for a record to validate). ``file_problem`` quarantines all.
    """

    columns: dict[str, list[str | None]]
    row_numbers: list[int]
    raw: list[str | None]
    problems: list[str | None]
    file_problem: str | None = None

    def __post_init__(self) -> None:
        sizes = {len(self.row_numbers), len(self.raw), len(self.problems)} | {
            len(v) for v in self.columns.values()
        }
        if len(sizes) > 1:
            raise ValueError(f"StagedRecords columns have different lengths: {sorted(sizes)}")


@runtime_checkable
class FileSource(Protocol):
    name: str
    suffixes: tuple[str, ...]  # lower-case, with the dot: (".log",)

    def read(self, raw: bytes, path: Path) -> StagedRecords: ...


@runtime_checkable
class PullSource(Protocol):
    name: str

    def pull(self, landing: Path, until: datetime) -> list[Path]: ...


@runtime_checkable
class PullSourceKind(Protocol):
    """Builds pull sources from the entries under its ``name`` in the sources file (``data/sources.yaml``);
    ``catalog`` holds the SLO folder's documents (DataSource connections), ``where`` names the place for
    error messages. Raise ValueError listing what is wrong."""

    name: str

    def build(self, entries: Any, catalog: Any, where: str) -> list[PullSource]: ...


@dataclass
class Registry:
    file_sources: dict[str, FileSource] = field(default_factory=dict)  # suffix -> source
    pull_kinds: dict[str, PullSourceKind] = field(default_factory=dict)  # sources-file key -> kind
    problems: list[str] = field(default_factory=list)


def load_registry() -> Registry:
    """Every file source registered under the entry point group; a broken plugin is reported, not fatal
    (the built-in formats keep working)."""
    registry = Registry()
    for entry in entry_points(group=GROUP):
        try:
            source = entry.load()
        except Exception as exc:  # a third-party plugin may fail in any way on import
            registry.problems.append(f"source plugin {entry.name!r} ({entry.value}) failed to load: {exc}")
            continue
        if isinstance(source, PullSourceKind) and not isinstance(source, FileSource):
            registry.pull_kinds[source.name] = source
            continue
        if isinstance(source, FileSource):
            for suffix in source.suffixes:
                suffix = suffix.lower()
                if suffix in BUILT_IN_SUFFIXES:
                    registry.problems.append(
                        f"source plugin {entry.name!r}: suffix {suffix} is a built-in format; ignored"
                    )
                    continue
                if suffix in registry.file_sources:
                    registry.problems.append(
                        f"source plugin {entry.name!r}: suffix {suffix} is already read by "
                        f"{registry.file_sources[suffix].name!r}; ignored"
                    )
                    continue
                registry.file_sources[suffix] = source
    for problem in registry.problems:
        log.warning(problem)
    return registry
