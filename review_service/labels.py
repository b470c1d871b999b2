"""Code labels on the review pages: "19 山梨県" rather than "19", from the metadata of the datasets an output reads.

A column is labelled when it is named like a variable with a code list in a dataset the output's query
reads, and every such dataset gives it the same list. The code is always shown with its label, so a
column that reuses a variable's name for something else (a derived value) still shows what was computed.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control.models import Dataset
from dataplane.catalogue import DatasetMetadata, DatasetNotFound, MetadataInvalid, read_metadata
from dataplane.sql import tables_read

log = logging.getLogger(__name__)

CodeLabels = Mapping[str, Mapping[str, str]]
"""{column: {code: label}} in one language."""


@functools.lru_cache(maxsize=64)
def _metadata(path: str, modified_ns: int) -> DatasetMetadata | None:
    """A dataset file's metadata, read once per version of the file (`modified_ns`)."""
    try:
        return read_metadata(Path(path))
    except (DatasetNotFound, MetadataInvalid) as exc:  # a file without Onsite metadata: codes shown bare
        log.info("no code labels from %s: %s", path, exc)
        return None


def _read(path: str) -> DatasetMetadata | None:
    try:
        return _metadata(path, Path(path).stat().st_mtime_ns)
    except OSError:
        return None


def code_labels(session: Session, spec: Mapping[str, Any] | None, lang: str) -> CodeLabels:
    """The code labels, in `lang`, of the variables the output with `spec` (its recorded query) reads."""
    if not spec or not spec.get("query"):
        return {}
    read = tables_read(spec["query"])
    paths = session.scalars(select(Dataset.path).where(Dataset.id.in_(read))) if read else []
    lists: dict[str, list[Mapping[str, str]]] = {}
    for metadata in filter(None, map(_read, paths)):
        for variable in metadata.variables:
            if variable.codes:
                lists.setdefault(variable.name, []).append(
                    {code: getattr(label, lang) for code, label in variable.codes.items()})
    return {name: found[0] for name, found in lists.items() if all(codes == found[0] for codes in found)}


def labelled(value: Any, codes: Mapping[str, str] | None) -> Any:
    """`value` as "code label" when `codes` names it, else as it is."""
    label = codes.get(str(value)) if codes and value is not None else None
    return f"{value} {label}" if label else value
