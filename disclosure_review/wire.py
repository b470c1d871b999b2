"""The wire format: everything a session sends to the review service, one module for both sides.

The kernel runs researcher code and holds no Hub token, so it writes each payload
into the session outbox; the single-user server's forwarder (`singleuser.serverext`)
checks the file against the payload's JSON Schema and posts it with the server's token:

| payload            | outbox file                    | endpoint      | built by                              |
|--------------------|--------------------------------|---------------|---------------------------------------|
| `ReleasePayload`   | `<hex>.request.json`           | api/requests  | `analysis_kernel.request_release`     |
| `IngressPayload`   | `<hex>.ingress.request.json`   | api/ingress   | `analysis_kernel.request_ingress`     |
| `ReferencePayload` | `<hex>.reference.request.json` | api/reference | `db.references()`, `db.reference()`   |

Each payload is a frozen dataclass whose fields declare how they travel (`_Text`,
`_Base64`, `_Spec`, …). That one declaration gives `to_json()` (the kernel),
`from_json()` (the review service) and `json_schema()` (the forwarder). The
service never trusts the kernel: `from_json` checks exact keys, types, lengths and
limits again, whatever the forwarder did, with messages that name the field and
what to fix; then what JSON Schema cannot say (valid base64, the sdc spec, the file
type, output names used twice). The schema's patterns are Python regular
expressions (the forwarder validates with `jsonschema` in Python).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dataplane import reference
from dataplane.ids import DATASET_ID_PATTERN
from disclosure_review.sdc.microdata import ExtractSpec
from disclosure_review.sdc import text
from disclosure_review.sdc.spec import InvalidSpec, TableSpec
from onsite_base.errors import UserError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REQUEST_SUFFIX = ".request.json"
"""Outbox files: `<hex>[.<kind>].request.json` from the kernel; the forwarder answers beside it with the service's
answer (`.response.json`) or its refusal (`.error.json`: {"status": HTTP status or 0, "message"})."""
RESPONSE_SUFFIX = ".response.json"
ERROR_SUFFIX = ".error.json"
FORWARDER_TIMEOUT_S = 120.0
"""Seconds the single-user server's forwarder waits for the review service's answer to one payload."""
MAX_OUTPUTS = 50
MAX_TEXT = 20_000
"""Characters in a title, purpose, explanation or description (and a reviewer's comment)."""
MAX_CODE = MAX_TEXT * 5
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_CELLS_PER_OUTPUT = 100_000
"""Cells of one output (a table's cells with its margins; an extract's records × columns). The ceiling of
`ReviewPolicy.max_cells_per_output` (a site may set less, never more): the kernel and the forwarder check this."""
MAX_CELLS_PER_REQUEST = 250_000
"""Cells of all the outputs of one release request; the ceiling of `ReviewPolicy.max_cells_per_request`."""
MAX_OUTPUT_BYTES = 24 * 1024 * 1024
"""Bytes of one output as sent (its JSON: a file's base64, a table's claimed cells and shadow statistics);
room for a `MAX_FILE_BYTES` file in base64. The ceiling of `ReviewPolicy.max_bytes_per_output`."""
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Bytes of one request file / HTTP body (every payload kind); the ceiling of `ReviewPolicy.max_bytes_per_request`.
The forwarder does not read a larger outbox file, the review service does not keep a larger body."""
OUTPUT_NAME = r"\w[\w .()-]{0,119}"
"""Output names (as sdc table names) become file names in the release package: no '/' (matched whole)."""
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
TEXT_TYPES = {".txt": "text/plain", ".csv": "text/csv", ".md": "text/markdown"}
ALLOWED_FILE_TYPES = IMAGE_TYPES | TEXT_TYPES
"""Opaque file types the service can re-render (never released byte for byte)."""
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Padded standard base64, as `base64.b64decode(validate=True)` takes it."""


class PayloadInvalid(UserError):
    """A payload that breaks the wire format; the message names the field and what to fix."""


# ---------------------------------------------------------------- output limits

LIMIT_MESSAGES: dict[str, dict[str, str]] = {
    "output_cells": {
        "en": "output {name} has {size:,} cells (margins included), more than the {limit:,} one output may have "
              "({setting}): aggregate it (fewer or coarser row and column variables, fewer records or variables "
              "in an extract) or split it into several outputs",
        "ja": "出力 {name} のセル数は {size:,}（周辺度数を含む）で、1 つの出力の上限 {limit:,}（{setting}）を超えています。"
              "集計を粗くする（行・列の変数やカテゴリ、抽出ではレコードや変数を減らす）か、複数の出力に分けてください",
    },
    "request_cells": {
        "en": "this release request has {size:,} cells in all, more than the {limit:,} one request may have "
              "({setting}): split it into several requests",
        "ja": "この公表申請のセル数は合計 {size:,} で、1 件の申請の上限 {limit:,}（{setting}）を超えています。"
              "申請を複数に分けてください",
    },
    "project_cells": {
        "en": "project {name} already has {waiting:,} cells waiting for review; with this request's {size:,} it "
              "would pass the {limit:,} a project may have waiting ({setting}): wait for reviewers' decisions or "
              "withdraw a request, and make this one smaller",
        "ja": "プロジェクト {name} には審査待ちのセルがすでに {waiting:,} あり、この申請の {size:,} を加えると"
              "審査待ちの上限 {limit:,}（{setting}）を超えます。審査の結果を待つか申請を取り下げ、この申請を小さくしてください",
    },
    "output_bytes": {
        "en": "output {name} is {size:,} bytes, more than the {limit:,} bytes one output may have ({setting}): "
              "aggregate it, or split it into several outputs",
        "ja": "出力 {name} の大きさは {size:,} バイトで、1 つの出力の上限 {limit:,} バイト（{setting}）を超えています。"
              "集計を粗くするか、複数の出力に分けてください",
    },
    "request_bytes": {
        "en": "this request is {size:,} bytes, more than the {limit:,} bytes one request may have ({setting}): "
              "split it into several requests, and aggregate large tables",
        "ja": "この申請の大きさは {size:,} バイトで、1 件の申請の上限 {limit:,} バイト（{setting}）を超えています。"
              "申請を複数に分け、大きな表は集計を粗くしてください",
    },
    "project_bytes": {
        "en": "project {name} already has {waiting:,} bytes waiting for review; with this request's {size:,} it "
              "would pass the {limit:,} a project may have waiting ({setting}): wait for reviewers' decisions or "
              "withdraw a request, and make this one smaller",
        "ja": "プロジェクト {name} には審査待ちのデータがすでに {waiting:,} バイトあり、この申請の {size:,} バイトを加えると"
              "審査待ちの上限 {limit:,} バイト（{setting}）を超えます。審査の結果を待つか申請を取り下げ、この申請を小さくしてください",
    },
}
"""Refusals of an output limit, one per kind of limit: the kernel, the forwarder and the service say the same."""
LIMIT_SETTINGS = {"output_cells": "max_cells_per_output", "request_cells": "max_cells_per_request",
                  "project_cells": "max_cells_per_project", "output_bytes": "max_bytes_per_output",
                  "request_bytes": "max_bytes_per_request", "project_bytes": "max_bytes_per_project"}
"""Kind of limit -> the `ReviewPolicy` setting that holds it."""


class LimitExceeded(PayloadInvalid):
    """An output limit passed: `code` (a `LIMIT_MESSAGES` key), the setting, the size and the limit."""

    def __init__(self, code: str, *, size: int, limit: int, name: str = "", waiting: int = 0) -> None:
        self.code, self.setting = code, f"ReviewPolicy.{LIMIT_SETTINGS[code]}"
        self.args_ = {"name": name, "size": size, "limit": limit, "waiting": waiting, "setting": self.setting}
        super().__init__(self.text("en"))

    def text(self, lang: str) -> str:
        return limit_text(self.code, self.args_, lang)

    def to_json(self) -> dict[str, Any]:
        """The refusal as the service answers it and the forwarder writes it: the kernel shows it in its language."""
        return {"message": self.text("en"), "limit": self.setting, "code": self.code, "args": self.args_}


def limit_text(code: str, args: Mapping[str, Any], lang: str) -> str:
    """A limit refusal (`LimitExceeded.to_json()`'s code and args) in `lang` (ja or en)."""
    return LIMIT_MESSAGES[code]["ja" if lang == "ja" else "en"].format(**args)


def check_limit(code: str, size: int, limit: int, **args: Any) -> None:
    """Raise `LimitExceeded` when `size` is over `limit`."""
    if size > limit:
        raise LimitExceeded(code, size=size, limit=limit, **args)


def json_size(value: Any) -> int:
    """Bytes of `value` as JSON on the wire (UTF-8; how outputs and requests are measured on both sides)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


# ---------------------------------------------------------------- how a field travels


class _Rule:
    """One field's JSON key, its JSON Schema, and the checks that turn its JSON value into the field's value."""

    def key(self, name: str) -> str:
        return name

    def parse(self, value: Any, key: str, where: str) -> Any:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        return value

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class _Text(_Rule):
    """Text, not blank, at most `limit` characters; stripped. No invisible or control character
    (`sdc.text`: tab and line ends only where `multiline`). `check(value, where)` may refuse more."""

    limit: int
    check: Callable[[str, str], str] | None = None
    multiline: bool = False

    def parse(self, value: Any, key: str, where: str) -> str:
        if not isinstance(value, str):
            raise PayloadInvalid(f"{where}: {key} must be text")
        if not value.strip():
            raise PayloadInvalid(f"{where}: {key} is required")
        if len(value) > self.limit:
            raise PayloadInvalid(f"{where}: {key} is longer than {self.limit} characters")
        try:
            text.check_text(value.strip(), f"{where}: {key}", multiline=self.multiline)
        except text.InvisibleCharacter as exc:
            raise PayloadInvalid(str(exc)) from None
        return self.check(value.strip(), where) if self.check else value.strip()

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.limit, "pattern": r"\S"}


@dataclass(frozen=True)
class _Name(_Rule):
    """A name matched whole by `pattern`; `check(value, where)` refuses anything else, saying what a name is."""

    pattern: str
    check: Callable[[Any, str], str]

    def parse(self, value: Any, key: str, where: str) -> str:
        return self.check(value, where)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^(?:{self.pattern})$"}


@dataclass(frozen=True)
class _Base64(_Rule):
    """Bytes, sent as base64 text under `<name>_b64`; `max_bytes` (if set) bounds the decoded size from 1 byte."""

    max_bytes: int | None = None

    def key(self, name: str) -> str:
        return f"{name}_b64"

    def parse(self, value: Any, key: str, where: str) -> bytes:
        if not isinstance(value, str):
            raise PayloadInvalid(f"{where}: {key} must be base64 text")
        try:
            content = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadInvalid(f"{where}: {key} is not valid base64") from None
        if self.max_bytes is not None and not 0 < len(content) <= self.max_bytes:
            raise PayloadInvalid(f"{where}: the file must hold 1 byte to {self.max_bytes} bytes")
        return content

    def dump(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    def schema(self) -> dict[str, Any]:
        schema = {"type": "string", "contentEncoding": "base64", "pattern": BASE64}
        if self.max_bytes is not None:
            schema |= {"minLength": 4, "maxLength": 4 * math.ceil(self.max_bytes / 3)}
        return schema


@dataclass(frozen=True)
class _Spec(_Rule):
    """A declarative spec (`TableSpec`, `ExtractSpec`): its own `from_dict` checks it strictly."""

    spec_class: type

    def parse(self, value: Any, key: str, where: str) -> Any:
        try:
            return self.spec_class.from_dict(value)
        except InvalidSpec as exc:
            raise PayloadInvalid(f"{where}: {exc}") from None

    def dump(self, value: Any) -> dict[str, Any]:
        return value.to_dict()

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "description": f"{self.spec_class.__module__}.{self.spec_class.__name__}.to_dict()"}


class _Claims(_Rule):
    """What the session computed (cells, shadow statistics, verdict): shown beside the service's, never used."""

    def parse(self, value: Any, key: str, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise PayloadInvalid(f"{where}: {key} must be a JSON object")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}


class _Outputs(_Rule):
    """1 to MAX_OUTPUTS outputs, each named once."""

    def parse(self, value: Any, key: str, where: str) -> tuple[OutputPayload, ...]:
        if not isinstance(value, list) or not value:
            raise PayloadInvalid(f"{where} needs a non-empty list of outputs")
        if len(value) > MAX_OUTPUTS:
            raise PayloadInvalid(f"at most {MAX_OUTPUTS} outputs per release request")
        outputs = tuple(_parse_output(item, index) for index, item in enumerate(value))
        names = [o.name for o in outputs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PayloadInvalid(f"output name(s) {twice} used twice; each output needs its own name")
        return outputs

    def dump(self, value: tuple[OutputPayload, ...]) -> list[dict[str, Any]]:
        return [output.to_json() for output in value]

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "minItems": 1, "maxItems": MAX_OUTPUTS,
                "items": {"oneOf": [_object_schema(c) for c in OUTPUT_KINDS.values()]}}


def _rule(rule: _Rule, **kwargs: Any) -> Any:
    return field(metadata={"wire": rule}, **kwargs)


# ---------------------------------------------------------------- the checks JSON Schema cannot make


def _output_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(OUTPUT_NAME, value):
        raise PayloadInvalid(
            f"{where}: name {value!r} must be 1-120 letters, digits, spaces or _ . - ( ), "
            "starting with a letter or digit (it becomes a file name)"
        )
    try:  # \w takes letters that render as nothing (a Hangul filler)
        return text.check_text(value, f"{where}: name")
    except text.InvisibleCharacter as exc:
        raise PayloadInvalid(str(exc)) from None


def _reference_name(value: Any, where: str) -> str:
    try:
        return reference.check_name(value)
    except reference.ReferenceInvalid as exc:
        raise PayloadInvalid(str(exc)) from None


def _release_filename(filename: str, where: str) -> str:
    if media_type(filename) is None or "/" in filename or "\\" in filename:
        raise PayloadInvalid(
            f"{where}: file type of {filename!r} cannot be released; allowed: "
            f"{', '.join(sorted(ALLOWED_FILE_TYPES))} (tables go as declarative table outputs)"
        )
    return filename


def _reference_filename(filename: str, where: str) -> str:
    filename = filename.replace("\\", "/").rsplit("/", 1)[-1]  # the name only, never a path
    try:
        reference.file_format(filename)
    except reference.ReferenceInvalid as exc:
        raise PayloadInvalid(str(exc)) from None
    return filename


def media_type(filename: str) -> str | None:
    """The media type a released file of this name is re-rendered as; None when it cannot be released."""
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ALLOWED_FILE_TYPES.get(suffix)


# ---------------------------------------------------------------- payloads


class _Payload:
    """Conversion to and from JSON, from the fields' rules."""

    KIND: ClassVar[str | None] = None
    """An output's `kind` on the wire (outputs only)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.KIND is None else {"kind": self.KIND}
        for f, rule in _rules(type(self)):
            value = getattr(self, f.name)
            if value is not None or not _optional(f):
                out[rule.key(f.name)] = rule.dump(value)
        return out

    @classmethod
    def _from_json(cls, data: Any, where: str) -> Any:
        if not isinstance(data, dict):
            raise PayloadInvalid(f"{where} must be a JSON object")
        required, optional = _keys(cls)
        unknown = sorted(set(data) - required - optional)
        if unknown:
            raise PayloadInvalid(f"{where}: unknown key(s) {unknown}; allowed: {sorted(required | optional)}")
        missing = sorted(required - set(data))
        if missing:
            raise PayloadInvalid(f"{where}: missing key(s) {missing}")
        values = {}
        for f, rule in _rules(cls):
            key = rule.key(f.name)
            given = data.get(key)
            values[f.name] = None if given is None and _optional(f) else rule.parse(given, key, where)
        return cls(**values)


@dataclass(frozen=True)
class TablePayload(_Payload):
    """A declarative table: the service re-runs its spec's query and checks what it computed itself."""

    KIND: ClassVar[str] = "table"
    name: str = _rule(_Name(OUTPUT_NAME, _output_name))
    spec: TableSpec = _rule(_Spec(TableSpec))
    claimed: dict[str, Any] | None = _rule(_Claims(), default=None)


@dataclass(frozen=True)
class ExtractPayload(_Payload):
    """A declarative record-level output: the service re-runs the query and checks the records itself."""

    KIND: ClassVar[str] = "extract"
    name: str = _rule(_Name(OUTPUT_NAME, _output_name))
    spec: ExtractSpec = _rule(_Spec(ExtractSpec))
    claimed: dict[str, Any] | None = _rule(_Claims(), default=None)


@dataclass(frozen=True)
class FilePayload(_Payload):
    """An opaque file made by researcher code: verdict review, judged by a person with its code."""

    KIND: ClassVar[str] = "file"
    name: str = _rule(_Name(OUTPUT_NAME, _output_name))
    filename: str = _rule(_Text(200, _release_filename))
    content: bytes = _rule(_Base64(MAX_FILE_BYTES))
    code: str = _rule(_Text(MAX_CODE, multiline=True))
    explanation: str = _rule(_Text(MAX_TEXT, multiline=True))

    @property
    def media_type(self) -> str:
        return media_type(self.filename) or "application/octet-stream"


OutputPayload = TablePayload | ExtractPayload | FilePayload
OUTPUT_KINDS: dict[str, type[OutputPayload]] = {c.KIND: c for c in (TablePayload, ExtractPayload, FilePayload)}


def _parse_output(data: Any, index: int) -> OutputPayload:
    where = f"output {index + 1}"
    if not isinstance(data, dict):
        raise PayloadInvalid(f"{where} must be a JSON object")
    where = f"output {_output_name(data.get('name'), where)!r}"
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in OUTPUT_KINDS:
        choices = ", ".join(repr(k) for k in list(OUTPUT_KINDS)[:-1]) + f" or {list(OUTPUT_KINDS)[-1]!r}"
        raise PayloadInvalid(f"{where}: kind must be {choices}, not {kind!r}")
    return OUTPUT_KINDS[kind]._from_json(data, where)


class _Message(_Payload):
    """A payload the outbox carries on its own: where it goes and how the outbox names it."""

    OUTBOX_KIND: ClassVar[str]
    """The part of an outbox file's id after the dot ("" for none): `<hex>[.<kind>].request.json`."""
    ENDPOINT: ClassVar[str]
    """Path under the review service's URL."""
    WHERE: ClassVar[str]
    """How messages name the payload."""

    @classmethod
    def from_json(cls, data: Any) -> Any:
        """Check `data` (parsed JSON) strictly; raise `PayloadInvalid` naming the field and what to fix."""
        return cls._from_json(data, cls.WHERE)


@dataclass(frozen=True)
class ReleasePayload(_Message):
    """A release request: outputs for disclosure review, with why they should leave the facility."""

    OUTBOX_KIND: ClassVar[str] = ""
    ENDPOINT: ClassVar[str] = "api/requests"
    WHERE: ClassVar[str] = "the release request"
    project: str = _rule(_Text(64))
    title: str = _rule(_Text(200))
    purpose: str = _rule(_Text(MAX_TEXT, multiline=True))
    outputs: tuple[OutputPayload, ...] = _rule(_Outputs())


@dataclass(frozen=True)
class IngressPayload(_Message):
    """An ingress request: a table (CSV or Parquet) to bring in as reference data `reference.<name>`."""

    OUTBOX_KIND: ClassVar[str] = "ingress"
    ENDPOINT: ClassVar[str] = "api/ingress"
    WHERE: ClassVar[str] = "the ingress request"
    project: str = _rule(_Text(64))
    name: str = _rule(_Name(DATASET_ID_PATTERN, _reference_name))
    description: str = _rule(_Text(MAX_TEXT, multiline=True))
    filename: str = _rule(_Text(200, _reference_filename))
    content: bytes = _rule(_Base64())
    """Size limits are the reference reader's (`dataplane.reference.read_reference`), which says what to fix."""


@dataclass(frozen=True)
class ReferencePayload(_Message):
    """A read of the project's approved reference data: the list, or with `name` its approved copy."""

    OUTBOX_KIND: ClassVar[str] = "reference"
    ENDPOINT: ClassVar[str] = "api/reference"
    WHERE: ClassVar[str] = "the reference data read"
    project: str = _rule(_Text(64))
    name: str | None = _rule(_Name(DATASET_ID_PATTERN, _reference_name), default=None)


MESSAGES: dict[str, type[ReleasePayload | IngressPayload | ReferencePayload]] = {
    c.OUTBOX_KIND: c for c in (ReleasePayload, IngressPayload, ReferencePayload)
}
"""Outbox kind -> payload class."""


# ---------------------------------------------------------------- schema


def _rules(cls: type) -> list[tuple[dataclasses.Field, _Rule]]:
    return [(f, f.metadata["wire"]) for f in dataclasses.fields(cls)]


def _optional(f: dataclasses.Field) -> bool:
    return f.default is None


def _keys(cls: type) -> tuple[set[str], set[str]]:
    """(required, optional) JSON keys of a payload class."""
    required = {"kind"} if cls.KIND is not None else set()
    optional = set()
    for f, rule in _rules(cls):
        (optional if _optional(f) else required).add(rule.key(f.name))
    return required, optional


def _object_schema(cls: type) -> dict[str, Any]:
    properties: dict[str, Any] = {} if cls.KIND is None else {"kind": {"const": cls.KIND}}
    for f, rule in _rules(cls):
        schema = rule.schema()
        properties[rule.key(f.name)] = {"anyOf": [schema, {"type": "null"}]} if _optional(f) else schema
    return {"title": cls.__name__, "description": " ".join((cls.__doc__ or "").split()), "type": "object",
            "properties": properties, "required": sorted(_keys(cls)[0]), "additionalProperties": False}


def json_schema(cls: type[ReleasePayload | IngressPayload | ReferencePayload]) -> dict[str, Any]:
    """The JSON Schema of a payload, from its fields' rules (what `from_json` checks, less what a schema cannot say)."""
    return {"$schema": SCHEMA_DIALECT, "$id": f"onsite:wire:{cls.__name__}", **_object_schema(cls)}


def schemas() -> Mapping[str, dict[str, Any]]:
    """Outbox kind -> JSON Schema of its payload."""
    return {kind: json_schema(cls) for kind, cls in MESSAGES.items()}
