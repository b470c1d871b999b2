"""Helpers to build a workflow world: people, a project, datasets with real DuckDB files, requests."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from access_control import policy
from dataplane.catalogue import DatasetMetadata, write_metadata_table
from onsite_base.db import transaction
from access_control.enums import Role
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.policies import ReviewPolicy
from onsite_base.settings import Settings
from disclosure_review.sdc.rules import preset_names

# region -> number of records; "C" is the small cell a threshold of 10 must catch.
REGION_COUNTS = {"A": 30, "B": 25, "C": 2}
ADMIN = "admin"


def write_dataset(path: Path, counts: dict[str, int]) -> None:
    """A `microdata` table: one row per person, region, sex alternating, income = 100 * row number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    n = 0
    for region, count in counts.items():
        for i in range(count):
            n += 1
            rows.append((n, region, "F" if i % 2 else "M", 100.0 * n))
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE microdata (person_id INTEGER, region VARCHAR, sex VARCHAR, income DOUBLE)")
    con.executemany("INSERT INTO microdata VALUES (?, ?, ?, ?)", rows)
    # the metadata ingest writes: the tracker check takes the identifying columns (person_id) from it
    write_metadata_table(con, DatasetMetadata.from_dict(dataset_metadata(path.stem)), rows=len(rows),
                         source_sha256="0" * 64)
    con.close()


def dataset_metadata(dataset_id: str) -> dict:
    """Metadata of a `write_dataset` file: person_id identifies a person."""
    roles = {"person_id": "other", "region": "key", "sex": "key", "income": "sensitive"}
    return {"id": dataset_id, "title": {"ja": dataset_id, "en": dataset_id}, "identifiers": ["person_id"],
            "variables": [{"name": n, "label": {"ja": n, "en": n}, "role": r} for n, r in roles.items()]}


@dataclass
class World:
    factory: object
    settings: Settings
    project: str = "p1"
    researcher: str = "alice"
    reviewers: tuple[str, str] = ("bob", "carol")
    member_reviewer: str = "dave"  # a reviewer who is also a member of p1


WORLD_DATASETS = {"survey": REGION_COUNTS, "secret": {"X": 50}}


def write_world_datasets(folder: Path) -> None:
    for name, counts in WORLD_DATASETS.items():
        write_dataset(folder / f"{name}.duckdb", counts)


def make_world(db, settings: Settings, datasets: Path | None = None) -> World:
    """The world of the workflow tests; `datasets`: a folder written by write_world_datasets to copy its files
    from (writing them costs ~0.1 CPU-s a world), else they are written here."""
    today = date.today()
    survey = settings.datasets_dir / "survey.duckdb"
    secret = settings.datasets_dir / "secret.duckdb"
    if datasets is None:
        write_world_datasets(settings.datasets_dir)
    else:
        settings.datasets_dir.mkdir(parents=True, exist_ok=True)
        for path in (survey, secret):
            shutil.copyfile(datasets / path.name, path)
    with transaction(db) as s:
        policy.add_person(s, username="alice", display_name="Alice", actor=ADMIN, roles=[Role.RESEARCHER])
        policy.add_person(s, username="bob", display_name="Bob", actor=ADMIN, roles=[Role.REVIEWER])
        policy.add_person(s, username="carol", display_name="Carol", actor=ADMIN, roles=[Role.REVIEWER])
        policy.add_person(s, username="dave", display_name="Dave", actor=ADMIN, roles=[Role.REVIEWER, Role.RESEARCHER])
        policy.add_person(s, username="erin", display_name="Erin", actor=ADMIN, roles=[Role.RESEARCHER])
        policy.add_project(s, presets=preset_names(), project_id="p1", title="Income", start_date=today - timedelta(days=1),
            end_date=today + timedelta(days=30), actor=ADMIN, preset="acro-default",
        )
        policy.add_member(s, "p1", "alice", actor=ADMIN)
        policy.add_member(s, "p1", "dave", actor=ADMIN)
        for dataset_id, path, rows in (("survey", survey, 57), ("secret", secret, 50)):
            policy.register_dataset(
                s, dataset_id=dataset_id, title_ja=dataset_id, title_en=dataset_id, path=str(path),
                rows=rows, source_sha256="0" * 64, actor=ADMIN,
            )
        policy.add_grant(
            s, project_id="p1", dataset_id="survey", valid_from=today - timedelta(days=1),
            valid_until=today + timedelta(days=30), actor=ADMIN,
        )
    return World(factory=db, settings=settings)


def table_output(name: str = "by_region", query: str = "SELECT * FROM survey", rows=("region",), claimed=None) -> dict:
    spec = {"version": 1, "name": name, "kind": "frequency", "query": query, "rows": list(rows), "columns": []}
    out = {"name": name, "kind": "table", "spec": spec}
    if claimed is not None:
        out["claimed"] = claimed
    return out


def payload(*outputs: dict, project: str = "p1") -> dict:
    return {"project": project, "title": "Income by region", "purpose": "Paper on regional income", "outputs": list(outputs)}


def submit(world: World, *outputs: dict, requester: str = "alice", policy_: ReviewPolicy | None = None):
    return service.submit(world.factory, payload(*outputs), requester, policy=policy_).id


def protect(world: World, request_id: int, output_id: int, reviewer: str, **form: str):
    """A reviewer's protection as the review page makes it: previewed, then saved with the preview's digest."""
    preview = service.preview_protection(world.factory, request_id, output_id, reviewer, form)
    return service.protect(world.factory, request_id, output_id, reviewer, form, previewed=preview.digest)


def vote(world: World, request_id: int, reviewer: str, decision: Decision, position: int = 0, **kwargs):
    with transaction(world.factory) as s:
        request = service.view(s, request_id, reviewer)
        output = request.outputs[position]
        service.vote(s, output.id, reviewer, decision, settings=world.settings, **kwargs)
        return request.status


def status_of(world: World, request_id: int) -> ReleaseStatus:
    with transaction(world.factory) as s:
        return service.view(s, request_id, "alice").status


def create_request_at_status(world: World, status: ReleaseStatus) -> int:
    """A release request brought to `status` through the real service steps (never by setting it)."""
    passing = table_output(query="SELECT * FROM survey WHERE region <> 'C'")
    if status is ReleaseStatus.SUBMITTED:
        return submit(world, passing)
    if status is ReleaseStatus.WITHDRAWN:
        request_id = submit(world, passing)
        with transaction(world.factory) as s:
            service.withdraw(s, request_id, world.researcher)
        return request_id
    if status is ReleaseStatus.RETURNED:
        request_id = submit(world, passing)
        vote(world, request_id, "bob", Decision.RETURN, comment="explain the purpose of each table")
        return request_id
    if status is ReleaseStatus.PARTIALLY_REVIEWED:
        request_id = submit(world, passing)
        vote(world, request_id, "bob", Decision.APPROVE)
        return request_id
    if status is ReleaseStatus.REJECTED:
        request_id = submit(world, passing)
        vote(world, request_id, "bob", Decision.REJECT, comment="not needed for the stated purpose")
        return request_id
    request_id = submit(world, passing, policy_=ReviewPolicy(required_approvals=1))
    if status is ReleaseStatus.APPROVED:
        # A package that cannot be written leaves the request APPROVED (for `onsite review release`).
        world.settings.egress_dir.parent.mkdir(parents=True, exist_ok=True)
        world.settings.egress_dir.write_text("not a directory")
    vote(world, request_id, "bob", Decision.APPROVE)
    if status is ReleaseStatus.APPROVED:
        world.settings.egress_dir.unlink()
    return request_id
