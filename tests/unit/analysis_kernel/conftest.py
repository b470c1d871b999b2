"""Fixtures for the notebook side: small demo data, its metadata, an ingested dataset, manifests.

The data is generated here (seconds), never copied in: the same generator the
demo uses, at a few thousand rows.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dataplane.catalogue import DatasetMetadata, ingest, load_metadata
from onsite.demo_data import METADATA_PATH, generate
from dataplane.manifest import ProjectGrant, SessionManifest

DEMO_ROWS = 3000
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_parquet(tmp_path_factory) -> Path:
    """3,000 demo persons as Parquet (generated in chunks of 1,000 to cross chunk boundaries)."""
    return generate(DEMO_ROWS, DEMO_SEED, tmp_path_factory.mktemp("demo") / "demo.parquet", chunk_rows=1000,
                    progress=False)


@pytest.fixture(scope="session")
def demo_metadata() -> DatasetMetadata:
    return load_metadata(METADATA_PATH)


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory, demo_parquet, demo_metadata) -> Path:
    """The demo parquet ingested as dataset `demo_household`; treat it as read-only."""
    info = ingest(demo_parquet, demo_metadata, "demo_household", tmp_path_factory.mktemp("datasets"), progress=False)
    return info.path


@pytest.fixture
def write_manifest(tmp_path) -> Callable[..., Path]:
    """write_manifest({project id: {dataset id: path}}) -> path of a session manifest granting them."""

    def write(projects: Mapping[str, Mapping[str, Path]], user: str = "r.tanaka") -> Path:
        manifest = SessionManifest(
            user=user,
            projects={pid: ProjectGrant(title=f"Project {pid}", preset="acro-default", datasets=dict(datasets))
                      for pid, datasets in projects.items()},
            outbox=tmp_path / "outbox",
        )
        return manifest.write(tmp_path / "session.json")

    return write
