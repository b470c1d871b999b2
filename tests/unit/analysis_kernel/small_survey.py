"""A 40-person dataset file for the output builders' tests, with the metadata ingest writes.

Area "big" has 30 people, "tiny" 10 with 3 in group "rare" (a threshold failure); person 5's income dominates.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from dataplane.catalogue import DatasetMetadata, write_metadata_table

ROLES = {"person_id": "other", "household_id": "household", "area": "key", "grp": "key", "income": "sensitive"}


def write_small_survey(path: Path) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("""
            CREATE TABLE microdata AS
            SELECT i AS person_id, i // 2 AS household_id, CASE WHEN i < 30 THEN 'big' ELSE 'tiny' END AS area,
                   CASE WHEN i >= 37 THEN 'rare' WHEN i % 2 = 0 THEN 'f' ELSE 'm' END AS grp,
                   CASE WHEN i = 5 THEN 1000000.0 ELSE 100.0 + i END AS income
            FROM range(40) t(i)""")
        metadata = DatasetMetadata.from_dict({
            "id": path.stem, "title": {"ja": "調査", "en": "Survey"}, "identifiers": ["person_id"],
            "variables": [{"name": n, "label": {"ja": n, "en": n}, "role": r} for n, r in ROLES.items()]})
        write_metadata_table(con, metadata, rows=40, source_sha256="0" * 64)
    finally:
        con.close()
    return path
