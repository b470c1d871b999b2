"""Reference data a researcher brings in (an ingress request): reading it, and the `reference` schema.

The review service reads every file itself with `read_reference` (CSV or
Parquet tables only, within the size, row and column limits; CSV types are
inferred, but a column of codes with leading zeros stays text) and keeps the
approved copy with its SHA-256. Both the service's recompute connection and the
kernel's connection show approved reference data as read-only views
`reference.<name>` over the same parsed table (`attach_references`); a copy
whose SHA-256 is not the approved one is never attached (`verified_table`).
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dataplane.ids import is_dataset_id
from onsite_base.errors import UserError

SCHEMA = "reference"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_BYTES = 16 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_COLUMNS = 200
MAX_PARQUET_UNCOMPRESSED = 512 * 1024 * 1024
"""A small Parquet file may expand enormously: its declared size is checked before it is read."""
PREVIEW_ROWS = 20


class ReferenceInvalid(UserError):
    """The file is not a table Onsite accepts as reference data; the message says what to fix."""


@dataclass(frozen=True)
class ReferenceFile:
    """An approved copy as the review service stores it."""

    name: str
    filename: str
    sha256: str
    content: bytes


def check_name(name: Any) -> str:
    if not is_dataset_id(name):  # an SQL name, as a dataset id
        raise ReferenceInvalid(
            f"reference name {name!r} is invalid: use 1-63 lower-case letters, digits and _, starting with a "
            "letter (queries read it as reference.<name>, e.g. reference.municipality_codes)"
        )
    return name


def file_format(filename: str) -> str:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in FORMATS:
        raise ReferenceInvalid(
            f"{filename!r} cannot be brought in: only tables as CSV (.csv) or Parquet (.parquet, .pq) are accepted; "
            "save a spreadsheet as CSV (UTF-8) first"
        )
    return FORMATS[suffix]


def read_reference(content: bytes, filename: str) -> pa.Table:
    """Parse `content` as the table `filename` names (CSV as UTF-8 with a header row, or Parquet).

    Raises `ReferenceInvalid` for another format, an unreadable file, an empty or too large table,
    or columns that are not plain values (lists, structs, binary).
    """
    fmt = file_format(filename)
    if not content:
        raise ReferenceInvalid(f"{filename!r} is empty")
    if len(content) > MAX_BYTES:
        raise ReferenceInvalid(f"{filename!r} is {len(content):,} bytes; reference data is limited to {MAX_BYTES:,} bytes")
    table = _read_parquet(content, filename) if fmt == "parquet" else _read_csv(content, filename)
    if table.num_rows == 0:
        raise ReferenceInvalid(f"{filename!r} has a header but no rows")
    if table.num_rows > MAX_ROWS:
        raise ReferenceInvalid(f"{filename!r} has {table.num_rows:,} rows; reference data is limited to {MAX_ROWS:,}")
    _check_columns(table, filename)
    return table


def _read_csv(content: bytes, filename: str) -> pa.Table:
    if content.startswith(b"PAR1") or b"\x00" in content[:4096]:
        raise ReferenceInvalid(f"{filename!r} is not a text CSV file (it holds binary data)")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReferenceInvalid(
            f"{filename!r} is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8, not Shift_JIS"
        ) from None
    def read(text_columns: list[str]) -> pa.Table:
        return pacsv.read_csv(io.BytesIO(content.removeprefix(b"\xef\xbb\xbf")),
                              read_options=pacsv.ReadOptions(block_size=1 << 22),
                              convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in text_columns}))

    try:
        table = read([])
        # Codes such as "01" or "01100" (prefecture, municipality) stay text: as numbers they lose their zeros.
        numbers = [f.name for f in table.schema if pa.types.is_integer(f.type)]
        if numbers and len(set(table.column_names)) == table.num_columns:  # (duplicate names are refused below)
            as_text = read(numbers)
            for column in numbers:
                if pc.any(pc.match_substring_regex(as_text[column], r"^[+-]?0\d")).as_py():
                    table = table.set_column(table.schema.get_field_index(column), column, as_text[column])
        return table
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ReferenceInvalid(f"{filename!r} could not be read as CSV (UTF-8, comma-separated, header row): {exc}") from None


def _read_parquet(content: bytes, filename: str) -> pa.Table:
    try:
        parquet = pq.ParquetFile(io.BytesIO(content))
        meta = parquet.metadata
        if meta.num_rows > MAX_ROWS:
            raise ReferenceInvalid(f"{filename!r} has {meta.num_rows:,} rows; reference data is limited to {MAX_ROWS:,}")
        if meta.num_columns > MAX_COLUMNS:
            raise ReferenceInvalid(f"{filename!r} has {meta.num_columns} columns; the limit is {MAX_COLUMNS}")
        expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if expanded > MAX_PARQUET_UNCOMPRESSED:
            raise ReferenceInvalid(f"{filename!r} expands to {expanded:,} bytes; the limit is {MAX_PARQUET_UNCOMPRESSED:,}")
        return parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise ReferenceInvalid(f"{filename!r} could not be read as Parquet: {exc}") from None


def _check_columns(table: pa.Table, filename: str) -> None:
    names = table.column_names
    if len(names) > MAX_COLUMNS:
        raise ReferenceInvalid(f"{filename!r} has {len(names)} columns; the limit is {MAX_COLUMNS}")
    blank = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise ReferenceInvalid(f"{filename!r}: column(s) {blank} have no name; give every column a header")
    lowered = [n.lower() for n in names]
    twice = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if twice:
        raise ReferenceInvalid(f"{filename!r}: column name(s) {twice} appear twice (SQL names ignore case)")
    for field in table.schema:
        kind = field.type
        plain = (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
                 or pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
                 or pa.types.is_temporal(kind) or pa.types.is_null(kind) or pa.types.is_dictionary(kind))
        if not plain:
            raise ReferenceInvalid(
                f"{filename!r}: column {field.name!r} has type {kind}; reference data holds plain values only "
                "(numbers, text, dates, true/false)"
            )


def describe(table: pa.Table) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Columns as queries see them ([{"name", "type"}], DuckDB types) and the first rows as JSON values."""
    con = duckdb.connect(":memory:")
    try:
        con.register("t", table)
        columns = [{"name": row[0], "type": row[1]} for row in con.execute("DESCRIBE SELECT * FROM t").fetchall()]
        rows = con.execute(f"SELECT * FROM t LIMIT {PREVIEW_ROWS}").fetchall()
    finally:
        con.close()
    return columns, {"columns": [c["name"] for c in columns], "rows": [[_jsonable(v) for v in row] for row in rows]}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def verified_table(reference: ReferenceFile) -> pa.Table:
    """The approved copy parsed, after checking it is byte for byte the one approved."""
    actual = sha256(reference.content)
    if actual != reference.sha256:
        raise ReferenceInvalid(
            f"reference data {reference.name!r} does not match its approved SHA-256 "
            f"({actual[:12]}… instead of {reference.sha256[:12]}…): it is not used"
        )
    return read_reference(reference.content, reference.filename)


def attach_references(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> None:
    """Show each table as the read-only view `reference.<name>` (a view over an Arrow table: no INSERT,
    UPDATE or DELETE reaches it)."""
    if not tables:
        return
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name, table in tables.items():
        check_name(name)
        source = f"onsite_reference_{name}"
        con.register(source, table)
        con.execute(f'CREATE OR REPLACE VIEW {SCHEMA}."{name}" AS SELECT * FROM "{source}"')
