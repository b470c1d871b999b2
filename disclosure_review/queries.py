"""The tracker check of a recorded query, the same in the kernel and the review service.

`dataplane.sql` parses the query and says what it does to records; the
datasets' metadata says which columns identify units; `sdc.tracker` judges.
Here because `sdc` imports nothing of Onsite's and `dataplane` knows no checks.
"""
from __future__ import annotations

from collections.abc import Iterable

import duckdb

from dataplane.catalogue import attached_metadata
from dataplane.sql import query_constructs, tables_read
from onsite_base.errors import UserError
from disclosure_review.sdc.results import CheckResult
from disclosure_review.sdc.tracker import check_tracker


def tracker_check(con: duckdb.DuckDBPyConnection, query: str, dataset_ids: Iterable[str]) -> CheckResult:
    """Review when `query` addresses individual records; `dataset_ids`: the datasets attached to `con`
    (`guarded_connection`), whose metadata names the identifying columns of those the query reads."""
    identifiers: list[str] = []
    undescribed: list[str] = []
    read = tables_read(query)
    for dataset_id in sorted(read & set(dataset_ids)):
        try:
            identifiers += attached_metadata(con, dataset_id).metadata.identifying
        except (duckdb.Error, UserError):  # not an ingested dataset: its identifying columns are unknown
            undescribed.append(dataset_id)
    return check_tracker(query_constructs(query), identifiers, undescribed=undescribed,
                         references=read - set(dataset_ids))
