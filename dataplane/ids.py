"""Dataset ids: the one pattern for every name a query reads a table by.

A dataset id is the name of its view in sessions and in the review service's
recompute connection (`SELECT … FROM lfs_2020`); reference data brought in is
read as `reference.<name>` and its names follow the same pattern. The policy
store, the catalogue, reference data and the wire format all check names here.
"""
from __future__ import annotations

import re
from typing import Any

from onsite_base.errors import UserError

DATASET_ID_PATTERN = r"[a-z][a-z0-9_]{0,62}"
"""1-63 lower-case letters, digits and _, starting with a letter (unanchored; match it whole)."""
_DATASET_ID = re.compile(DATASET_ID_PATTERN)


class DatasetIdInvalid(UserError):
    """Not a dataset id; the message gives the pattern."""


def is_dataset_id(value: Any) -> bool:
    return isinstance(value, str) and _DATASET_ID.fullmatch(value) is not None


def check_dataset_id(value: Any) -> str:
    if not is_dataset_id(value):
        raise DatasetIdInvalid(
            f"dataset id {value!r} is invalid: use 1-63 characters, lower-case letters, digits "
            "and _, starting with a letter (it becomes an SQL name, e.g. lfs_2020)"
        )
    return value
