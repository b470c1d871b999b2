"""Record swapping stored as an extract's protection through the service layer (preview, then save)."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pandas as pd
import pytest
from test_extract_swapping import HOUSEHOLDS, METADATA, census_frame
from test_extracts import extract
from workflow_factories import ADMIN, protect, submit

from access_control import policy
from dataplane.catalogue import DatasetMetadata, ingest
from disclosure_review.workflow import protection, service
from disclosure_review.workflow.exceptions import ProtectionInvalid, ReleasePermissionDenied
from onsite_base.db import transaction

SWAP = {"method": "record_swap", "swap_hierarchy": "pref, muni", "swap_similar": "hsize", "swap_rate": "0.1",
        "swap_seed": "11"}


def test_swapping_saved_as_the_extracts_protection(world):
    source = world.settings.home / "census.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    census_frame().to_csv(source, index=False)
    info = ingest(source, DatasetMetadata.from_dict(METADATA), "census", world.settings.datasets_dir, progress=False)
    with transaction(world.factory) as s:
        policy.register_dataset(s, dataset_id="census", title_ja="c", title_en="c", path=str(info.path),
                                rows=info.rows, source_sha256=info.source_sha256, actor=ADMIN)
        policy.add_grant(s, project_id="p1", dataset_id="census", valid_from=date.today() - timedelta(days=1),
                         valid_until=date.today() + timedelta(days=30), actor=ADMIN)
    request_id = submit(world, extract("households", "SELECT hid, pref, muni, hsize, age_group FROM census ORDER BY hid"))
    with transaction(world.factory) as s:
        output_id = service.view(s, request_id, "alice").outputs[0].id
    with pytest.raises(ReleasePermissionDenied):
        service.preview_protection(world.factory, request_id, output_id, "alice", SWAP)
    with pytest.raises(ProtectionInvalid) as refused:
        service.preview_protection(world.factory, request_id, output_id, "bob", {**SWAP, "swap_similar": "size"})
    assert refused.value.key == "swap_variable_unknown"
    with pytest.raises(ProtectionInvalid) as refused:
        service.preview_protection(world.factory, request_id, output_id, "bob", {"method": "suppress"})
    assert refused.value.key == "extract_method"
    record = protect(world, request_id, output_id, "bob", **SWAP)
    assert record.choice["swapping"]["seed"] == 11
    assert protection.public_choice(record.choice) == {k: v for k, v in record.choice.items() if k != "swapping"}
    with transaction(world.factory) as s:
        output = service.view(s, request_id, "bob").outputs[0]
        report, content = output.report["swapping"], output.content
    after = pd.DataFrame(list(csv.DictReader(io.StringIO(content.decode())))).astype({"hid": int})
    moved = after.loc[after["muni"].values != census_frame()["muni"].values, "hid"].nunique()
    assert moved == report["swapped_households"] >= 0.1 * HOUSEHOLDS
