"""Datasets: their metadata, ingest into one DuckDB file each, and the guarded connection.

A dataset file `<datasets_dir>/<id>.duckdb` holds table `microdata` (direct
identifiers already dropped, declared types enforced) and table
`onsite_metadata` (one row: the metadata as JSON). `guarded_connection()` is
the one way both the kernel and the review service open dataset files.

Metadata YAML (every source column must be described, so nothing slips through
without a role)::

    id: lfs_2020
    title: {ja: 労働力調査, en: Labour Force Survey}
    unit: {ja: 個人, en: person}            # optional; a plain string is used for both
    identifiers: [person_id]               # optional; variables that identify units (household ids do anyway)
    variables:
      - name: age
        label: {ja: 年齢, en: Age}
        role: key                          # direct_identifier | key | sensitive | weight | household | other
        type: SMALLINT                     # optional DuckDB type, enforced at ingest
        codes: {1: {ja: 男, en: Male}}     # optional code list
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml
from tqdm import tqdm

from dataplane.ids import DatasetIdInvalid, check_dataset_id, is_dataset_id
from dataplane.reference import attach_references
from dataplane import record_keys
from onsite_base.errors import UserError

log = logging.getLogger(__name__)

VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Types are spliced into CAST(...) so only this closed list is accepted.
DUCKDB_TYPE_RE = re.compile(
    r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT"
    r"|FLOAT|REAL|DOUBLE|VARCHAR|DATE|TIME|TIMESTAMP|DECIMAL\(\s*\d{1,2}\s*,\s*\d{1,2}\s*\))$",
    re.IGNORECASE,
)
SOURCE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DATASET_FILE_MODE = 0o640
MICRODATA_TABLE = "microdata"
METADATA_TABLE = "onsite_metadata"


class VariableRole(enum.Enum):
    """How disclosure control treats a variable. Stored by name in dataset files."""

    DIRECT_IDENTIFIER = "DIRECT_IDENTIFIER"
    """Names a person outright (name, phone): dropped at ingest, never reaches a session."""
    KEY = "KEY"
    """Key variable (quasi-identifier): an intruder may know it and match on it."""
    SENSITIVE = "SENSITIVE"
    """A value to protect (income, health); dominance rules look at it."""
    WEIGHT = "WEIGHT"
    """The sampling weight; at most one per dataset."""
    HOUSEHOLD = "HOUSEHOLD"
    """Household or cluster id: records sharing it are linked."""
    OTHER = "OTHER"


class MetadataInvalid(UserError):
    """The metadata file is malformed or breaks a rule; the message names the field."""


class DatasetExists(UserError):
    pass


class DatasetNotFound(UserError):
    pass


class SourceInvalid(UserError):
    """The source file cannot be read, or does not match its metadata."""


@dataclass(frozen=True)
class Label:
    ja: str
    en: str


@dataclass(frozen=True)
class VariableMeta:
    name: str
    label: Label
    role: VariableRole
    type: str | None = None
    """DuckDB type; declared ones are enforced at ingest, stored files record the actual type."""
    codes: Mapping[str, Label] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetMetadata:
    id: str
    title: Label
    variables: tuple[VariableMeta, ...]
    unit: Label | None = None
    dropped_identifiers: tuple[str, ...] = ()
    """Names of direct identifiers removed at ingest (set in stored files only)."""
    identifiers: tuple[str, ...] = ()
    """Variables that identify a unit (a person or record id): a query that filters or computes on one
    addresses individual records (the tracker check)."""

    def variable(self, name: str) -> VariableMeta:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    def names(self, role: VariableRole) -> list[str]:
        return [v.name for v in self.variables if v.role is role]

    @property
    def key_variables(self) -> list[str]:
        return self.names(VariableRole.KEY)

    @property
    def identifying(self) -> list[str]:
        """The variables that identify units: `identifiers` and the household ids."""
        return list(dict.fromkeys([*self.identifiers, *self.names(VariableRole.HOUSEHOLD)]))

    @property
    def weight(self) -> str | None:
        weights = self.names(VariableRole.WEIGHT)
        return weights[0] if weights else None

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "metadata") -> DatasetMetadata:
        """Validate `data` (parsed YAML or stored JSON); raise `MetadataInvalid` naming the field."""
        return _parse_metadata(data, source)

    def to_dict(self) -> dict[str, Any]:
        def label(value: Label) -> dict[str, str]:
            return {"ja": value.ja, "en": value.en}

        out: dict[str, Any] = {"id": self.id, "title": label(self.title)}
        if self.unit:
            out["unit"] = label(self.unit)
        if self.identifiers:
            out["identifiers"] = list(self.identifiers)
        out["variables"] = [
            {"name": v.name, "label": label(v.label), "role": v.role.name.lower(),
             **({"type": v.type} if v.type else {}),
             **({"codes": {code: label(text) for code, text in v.codes.items()}} if v.codes else {})}
            for v in self.variables
        ]
        if self.dropped_identifiers:
            out["dropped_identifiers"] = list(self.dropped_identifiers)
        return out


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    path: Path
    rows: int
    source_sha256: str
    metadata: DatasetMetadata


def load_metadata(path: Path) -> DatasetMetadata:
    """Read and validate a metadata YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise MetadataInvalid(f"cannot read metadata file {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise MetadataInvalid(f"{path} is not valid YAML: {e}") from e
    return DatasetMetadata.from_dict(data, source=str(path))


def _parse_label(value: Any, where: str, *, allow_plain: bool = False) -> Label:
    if allow_plain and isinstance(value, str) and value.strip():
        return Label(ja=value, en=value)
    if not isinstance(value, Mapping) or set(value) != {"ja", "en"}:
        raise MetadataInvalid(f"{where} must be a mapping with exactly the keys ja and en, got {value!r}")
    for lang in ("ja", "en"):
        if not isinstance(value[lang], str) or not value[lang].strip():
            raise MetadataInvalid(f"{where}.{lang} must be non-empty text")
    return Label(ja=value["ja"], en=value["en"])


def _parse_metadata(data: Any, source: str) -> DatasetMetadata:
    if not isinstance(data, Mapping):
        raise MetadataInvalid(f"{source}: expected a mapping with id, title and variables")
    unknown = set(data) - {"id", "title", "unit", "identifiers", "variables", "dropped_identifiers"}
    if unknown:
        raise MetadataInvalid(f"{source}: unknown top-level field(s) {', '.join(sorted(map(str, unknown)))}")
    for required in ("id", "title", "variables"):
        if required not in data:
            raise MetadataInvalid(f"{source}: the field {required!r} is missing")
    try:
        dataset_id = check_dataset_id(data["id"])
    except DatasetIdInvalid as e:
        raise MetadataInvalid(f"{source}: id: {e}") from None
    title = _parse_label(data["title"], f"{source}: title")
    unit = _parse_label(data["unit"], f"{source}: unit", allow_plain=True) if data.get("unit") else None
    raw_variables = data["variables"]
    if not isinstance(raw_variables, list) or not raw_variables:
        raise MetadataInvalid(f"{source}: variables must be a non-empty list")
    variables = [_parse_variable(raw, f"{source}: variables[{i}]") for i, raw in enumerate(raw_variables)]
    seen: dict[str, str] = {}
    for v in variables:
        # DuckDB names are case-insensitive: `Age` and `age` would collide.
        if v.name.lower() in seen:
            raise MetadataInvalid(f"{source}: variable {v.name!r} is declared twice (as {seen[v.name.lower()]!r})")
        seen[v.name.lower()] = v.name
    kept = [v for v in variables if v.role is not VariableRole.DIRECT_IDENTIFIER]
    if not any(v.role is VariableRole.KEY for v in kept):
        raise MetadataInvalid(
            f"{source}: no key variable declared: mark the variables an intruder could know "
            "(age, sex, region, ...) with role: key"
        )
    weights = [v.name for v in kept if v.role is VariableRole.WEIGHT]
    if len(weights) > 1:
        raise MetadataInvalid(f"{source}: more than one weight ({', '.join(weights)}): keep one with role: weight")
    dropped = data.get("dropped_identifiers") or []
    if not isinstance(dropped, list) or not all(isinstance(name, str) for name in dropped):
        raise MetadataInvalid(f"{source}: dropped_identifiers must be a list of names")
    return DatasetMetadata(id=dataset_id, title=title, unit=unit, variables=tuple(variables),
                           dropped_identifiers=tuple(dropped), identifiers=_parse_identifiers(data, kept, source))


def _parse_identifiers(data: Mapping[str, Any], kept: Sequence[VariableMeta], source: str) -> tuple[str, ...]:
    identifiers = data.get("identifiers") or []
    if not isinstance(identifiers, list) or not all(isinstance(name, str) for name in identifiers):
        raise MetadataInvalid(f"{source}: identifiers must be a list of variable names, e.g. [person_id]")
    unknown = sorted(set(identifiers) - {v.name for v in kept})
    if unknown:
        raise MetadataInvalid(f"{source}: identifiers {', '.join(unknown)} are no declared variables kept at ingest "
                              "(a direct identifier is dropped: list only the ids that stay, e.g. person_id)")
    return tuple(dict.fromkeys(identifiers))


def _parse_variable(raw: Any, where: str) -> VariableMeta:
    if not isinstance(raw, Mapping):
        raise MetadataInvalid(f"{where} must be a mapping with name, label and role")
    name = raw.get("name")
    if not isinstance(name, str) or not VARIABLE_NAME_RE.match(name):
        raise MetadataInvalid(
            f"{where}: name {name!r} is invalid: use letters, digits and _ (rename the source column if needed)"
        )
    where = f"{where} ({name})"
    unknown = set(raw) - {"name", "label", "role", "type", "codes"}
    if unknown:
        raise MetadataInvalid(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if "label" not in raw or "role" not in raw:
        raise MetadataInvalid(f"{where}: label and role are required")
    label = _parse_label(raw["label"], f"{where}: label")
    role_name = raw["role"]
    roles = ", ".join(r.name.lower() for r in VariableRole)
    if not isinstance(role_name, str) or role_name.upper() not in VariableRole.__members__:
        raise MetadataInvalid(f"{where}: role {role_name!r} is not one of {roles}")
    role = VariableRole[role_name.upper()]
    type_ = raw.get("type")
    if type_ is not None:
        if not isinstance(type_, str) or not DUCKDB_TYPE_RE.match(type_.strip()):
            raise MetadataInvalid(
                f"{where}: type {type_!r} is not supported; use one of BOOLEAN, TINYINT, SMALLINT, INTEGER, "
                "BIGINT, DOUBLE, DECIMAL(p,s), VARCHAR, DATE, TIMESTAMP, ..."
            )
        type_ = re.sub(r"\s+", "", type_).upper()
    raw_codes = raw.get("codes") or {}
    if not isinstance(raw_codes, Mapping):
        raise MetadataInvalid(f"{where}: codes must be a mapping code -> {{ja, en}}")
    codes = {str(code): _parse_label(text, f"{where}: codes[{code}]") for code, text in raw_codes.items()}
    return VariableMeta(name=name, label=label, role=role, type=type_, codes=codes)


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, read to its end: DuckDB 2 refuses further work on a connection
    while an `execute()` result is only partly fetched."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _sql_string(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_relation(source: Path, varchar_columns: Sequence[str] = ()) -> str:
    """SQL for a scan of `source`; CSV columns in `varchar_columns` are read as text and cast later."""
    kind = SOURCE_SUFFIXES.get(source.suffix.lower())
    if kind == "parquet":
        return f"read_parquet({_sql_string(source)})"
    types = ", ".join(f"{_sql_string(c)}: 'VARCHAR'" for c in varchar_columns)
    return f"read_csv({_sql_string(source)}, header = true{', types = {' + types + '}' if types else ''})"


def _run_with_progress(con: duckdb.DuckDBPyConnection, sql: str, desc: str, progress: bool) -> list[tuple]:
    """Run `sql`, showing DuckDB's own query progress in a tqdm bar."""
    if not progress:
        return con.execute(sql).fetchall()
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["rows"] = con.execute(sql).fetchall()
        except BaseException as e:  # re-raised in the caller's thread
            result["error"] = e

    worker = threading.Thread(target=work, daemon=True)
    with tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| {elapsed}") as bar:
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
                done = con.query_progress()
                if done > bar.n:
                    bar.update(min(done, 100) - bar.n)
        except BaseException:  # Ctrl-C: stop the query before the caller removes the file
            con.interrupt()
            worker.join()
            raise
        bar.update(100 - bar.n)
    if "error" in result:
        raise result["error"]
    return result["rows"]


def sha256_file(path: Path, *, progress: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="sha256",
                                     disable=not progress) as bar:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def ingest(
    source: Path,
    metadata: DatasetMetadata,
    dataset_id: str,
    datasets_dir: Path,
    *,
    replace: bool = False,
    progress: bool = True,
    before_commit: Callable[[DatasetInfo], None] | None = None,
) -> DatasetInfo:
    """Load a CSV or Parquet file into `datasets_dir/<dataset_id>.duckdb`.

    Every source column must be described in `metadata`; direct identifiers are
    dropped, declared types enforced. The file is built under a temporary name in
    the same directory and renamed into place at the end, so on any error nothing
    is left behind. `before_commit(info)` runs just before the rename (the CLI
    registers the dataset in the policy store there); if it raises, nothing is kept.
    """
    check_dataset_id(dataset_id)
    source = Path(source)
    datasets_dir = Path(datasets_dir)
    target = datasets_dir / f"{dataset_id}.duckdb"
    if target.exists() and not replace:
        raise DatasetExists(f"dataset {dataset_id!r} already exists at {target}; pass --replace to overwrite it")
    if source.suffix.lower() not in SOURCE_SUFFIXES:
        raise SourceInvalid(f"{source}: not a CSV or Parquet file (the name must end in .csv, .parquet or .pq)")
    if not source.is_file() or not os.access(source, os.R_OK):
        raise SourceInvalid(f"{source}: file not found or not readable")
    metadata = dataclasses.replace(metadata, id=dataset_id)

    datasets_dir.mkdir(parents=True, exist_ok=True)
    tmp = datasets_dir / f".{dataset_id}.{uuid.uuid4().hex}.tmp.duckdb"
    keys_tmp: Path | None = None
    log.info("ingesting %s as dataset %s", source, dataset_id)
    try:
        with duckdb.connect(str(tmp)) as con:
            con.execute("SET enable_progress_bar_print = false")  # our tqdm bars show its progress
            info = _build(con, source, metadata, target, progress)
        # The cell key method's record keys: kept apart from the file sessions read (dataplane.record_keys),
        # drawn once per source file.
        if not record_keys.kept(datasets_dir, dataset_id, info.rows, info.source_sha256):
            keys_tmp = record_keys.write_keys(datasets_dir, dataset_id, info.rows, info.source_sha256,
                                              progress=progress)
        os.chmod(tmp, DATASET_FILE_MODE)
        if before_commit is not None:
            before_commit(info)
        if keys_tmp is not None:
            record_keys.commit_keys(keys_tmp, datasets_dir, dataset_id)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal"), keys_tmp):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
    log.info("dataset %s ingested: %d rows, %d variables", dataset_id, info.rows, len(info.metadata.variables))
    return info


def _build(con: duckdb.DuckDBPyConnection, source: Path, metadata: DatasetMetadata, target: Path,
           progress: bool) -> DatasetInfo:
    try:
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {_source_relation(source)}").fetchall()]
    except duckdb.Error as e:
        raise SourceInvalid(f"{source}: cannot read it as {SOURCE_SUFFIXES[source.suffix.lower()]}: {e}") from e
    declared = [v.name for v in metadata.variables]
    missing = [name for name in declared if name not in columns]
    if missing:
        raise SourceInvalid(
            f"{source}: the metadata describes column(s) not in the file: {', '.join(missing)} "
            f"(the file has: {', '.join(columns)})"
        )
    undescribed = [name for name in columns if name not in declared]
    if undescribed:
        raise SourceInvalid(
            f"{source}: column(s) not described in the metadata: {', '.join(undescribed)}; every column needs a "
            "role (use role: direct_identifier to drop one at ingest)"
        )
    kept = [v for v in metadata.variables if v.role is not VariableRole.DIRECT_IDENTIFIER]
    typed = [v for v in kept if v.type]
    scan = _source_relation(source, [v.name for v in typed])

    if typed:
        # One pass finds, per declared column, a value that does not convert.
        probes = ", ".join(
            f"any_value({_ident(v.name)}::VARCHAR) FILTER (WHERE {_ident(v.name)} IS NOT NULL "
            f"AND TRY_CAST({_ident(v.name)} AS {v.type}) IS NULL)"
            for v in typed
        )
        try:
            (bad_values,) = _run_with_progress(con, f"SELECT {probes} FROM {scan}", "checking types", progress)
        except duckdb.Error as e:
            raise SourceInvalid(f"{source}: cannot read it: {e}") from e
        for variable, bad in zip(typed, bad_values):
            if bad is not None:
                raise SourceInvalid(
                    f"{source}: column {variable.name} does not match its declared type {variable.type}: "
                    f"for example the value {bad!r}; fix the data or the type in the metadata"
                )

    select = ", ".join(
        f"CAST({_ident(v.name)} AS {v.type}) AS {_ident(v.name)}" if v.type else _ident(v.name) for v in kept
    )
    try:
        _run_with_progress(con, f"CREATE TABLE {MICRODATA_TABLE} AS SELECT {select} FROM {scan}", "copying", progress)
    except duckdb.Error as e:
        raise SourceInvalid(f"{source}: cannot load it: {e}") from e
    (rows,) = first_row(con, f"SELECT count(*) FROM {MICRODATA_TABLE}")
    if rows == 0:
        raise SourceInvalid(f"{source}: the file has no rows")
    actual_types = dict(con.execute(f"SELECT column_name, data_type FROM duckdb_columns() "
                                    f"WHERE table_name = '{MICRODATA_TABLE}'").fetchall())
    stored = dataclasses.replace(
        metadata,
        variables=tuple(dataclasses.replace(v, type=actual_types[v.name]) for v in kept),
        dropped_identifiers=tuple(v.name for v in metadata.variables if v.role is VariableRole.DIRECT_IDENTIFIER),
    )
    digest = sha256_file(source, progress=progress)
    write_metadata_table(con, stored, rows=rows, source_sha256=digest)
    con.execute("CHECKPOINT")
    return DatasetInfo(id=metadata.id, path=target, rows=rows, source_sha256=digest, metadata=stored)


def write_metadata_table(con: duckdb.DuckDBPyConnection, metadata: DatasetMetadata, *, rows: int,
                         source_sha256: str) -> None:
    """The `onsite_metadata` table of a dataset file, as ingest writes it (tests build small files with it)."""
    con.execute(f"CREATE TABLE {METADATA_TABLE} (metadata VARCHAR, source_sha256 VARCHAR, rows BIGINT, "
                "ingested_at TIMESTAMPTZ)")
    con.execute(f"INSERT INTO {METADATA_TABLE} VALUES (?, ?, ?, ?)",
                [json.dumps(metadata.to_dict(), ensure_ascii=False), source_sha256, rows, datetime.now(UTC)])


def read_dataset_info(path: Path) -> DatasetInfo:
    """Metadata and ingest facts of a dataset file (opened read-only)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFound(f"no dataset file at {path}")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = first_row(con, f"SELECT metadata, source_sha256, rows FROM {METADATA_TABLE}")
    except duckdb.Error as e:
        raise DatasetNotFound(f"{path} is not an Onsite dataset file: {e}") from e
    return _info_from_row(path, row)


def _info_from_row(path: Path, row: tuple | None) -> DatasetInfo:
    if row is None:
        raise DatasetNotFound(f"{path} has no metadata row")
    metadata_json, digest, rows = row
    metadata = DatasetMetadata.from_dict(json.loads(metadata_json), source=str(path))
    return DatasetInfo(id=metadata.id, path=Path(path), rows=rows, source_sha256=digest, metadata=metadata)


def read_metadata(path: Path) -> DatasetMetadata:
    return read_dataset_info(path).metadata


def list_datasets(datasets_dir: Path) -> list[DatasetInfo]:
    """Every dataset file in `datasets_dir`, by id."""
    paths = sorted(Path(datasets_dir).glob("*.duckdb")) if Path(datasets_dir).is_dir() else []
    return [read_dataset_info(p) for p in paths if is_dataset_id(p.stem)]


def attached_name(dataset_id: str) -> str:
    """Catalog name a dataset file is attached under; its view `<dataset_id>` reads from it."""
    return f"onsite_{dataset_id}"


def guarded_connection(
    datasets: Mapping[str, Path], *, memory_limit: str = "4GB", threads: int | None = None,
    references: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that can read only `datasets` ({id: file}) and `references`.

    `references`: approved reference data, {name: Arrow table}, shown as read-only views
    `reference.<name>` (`dataplane.reference`).

    Each file is attached READ_ONLY with a view `<id>` over its microdata in the
    main schema; then external access (files, network, extensions, Python
    objects) is disabled and the configuration locked, so researcher SQL cannot
    read, write or attach anything else. This is a convenience inside the kernel
    (OS permissions are the boundary) and the sandbox the review service runs
    recorded queries in.
    """
    config: dict[str, Any] = {"memory_limit": memory_limit, "autoinstall_known_extensions": False,
                              "autoload_known_extensions": False}
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    try:
        for dataset_id, path in datasets.items():
            check_dataset_id(dataset_id)
            path = Path(path)
            if not path.is_file():
                raise DatasetNotFound(f"dataset {dataset_id!r}: no file at {path}")
            catalog = attached_name(dataset_id)
            try:
                con.execute(f"ATTACH {_sql_string(path)} AS {_ident(catalog)} (READ_ONLY)")
            except duckdb.Error as e:
                raise DatasetNotFound(f"dataset {dataset_id!r}: cannot open {path}: {e}") from e
            con.execute(f"CREATE VIEW main.{_ident(dataset_id)} AS SELECT * FROM {_ident(catalog)}.{MICRODATA_TABLE}")
        attach_references(con, references or {})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def attached_metadata(con: duckdb.DuckDBPyConnection, dataset_id: str) -> DatasetInfo:
    """Metadata of a dataset attached by `guarded_connection` (read through the open connection)."""
    catalog = attached_name(check_dataset_id(dataset_id))
    row = first_row(con, f"SELECT metadata, source_sha256, rows FROM {_ident(catalog)}.{METADATA_TABLE}")
    path = first_row(con, "SELECT path FROM duckdb_databases() WHERE database_name = ?", [catalog])
    return _info_from_row(Path(path[0]) if path and path[0] else Path(catalog), row)
