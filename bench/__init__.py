"""Side-by-side benchmarks: each case runs our way and a peer's way of doing the same work.

Contract for benchmark modules: `bench/bench_<topic>.py` defines
`cases(ctx: Context) -> list[Case]`. Set-up (generating data, opening
connections) happens in `cases()`; `ours` and `peer` are the timed calls.
Run with `python -m bench [NAME ...] [--rows N] [--repeat R]` or `onsite bench`.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dataplane.manifest import ProjectGrant, SessionManifest

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ROWS = 10_000_000
DEMO_DATASET_ID = "demo_household"


@dataclass
class Case:
    name: str
    ours: Callable[[], object]
    peer_name: str
    peer: Callable[[], object]
    repeat: int = 5
    note: str = ""


@dataclass
class Context:
    """What benchmark modules share: cached demo data and a scratch directory."""

    rows: int = DEFAULT_ROWS
    data_dir: Path = DATA_DIR
    seed: int = 20260401
    progress: bool = True
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def demo_parquet(self, rows: int | None = None) -> Path:
        """The demo survey as Parquet (generated on first use, then reused)."""
        from onsite.demo_data import generate  # heavy (numpy, polars, pyarrow): only the cases that need demo data load it

        rows = rows or self.rows
        path = self.data_dir / f"demo_{rows}_s{self.seed}.parquet"
        if not path.exists():
            generate(rows, self.seed, path, progress=self.progress)
        return path

    def demo_dataset(self, rows: int | None = None) -> Path:
        """The demo survey ingested as a dataset file `<data_dir>/demo_<rows>_s<seed>.duckdb`."""
        from dataplane.catalogue import ingest, load_metadata  # duckdb: as in demo_parquet
        from onsite.demo_data import METADATA_PATH

        rows = rows or self.rows
        dataset_id = f"demo_{rows}_s{self.seed}"
        path = self.data_dir / f"{dataset_id}.duckdb"
        if not path.exists():
            ingest(self.demo_parquet(rows), load_metadata(METADATA_PATH), dataset_id, self.data_dir,
                   progress=self.progress)
        return path

    @property
    def tmp_dir(self) -> Path:
        """A scratch directory removed when the run ends."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="onsite-bench-")
        return Path(self._tmp.name)

    def session_manifest(self, datasets: Mapping[str, Path], *, project: str = "bench") -> Path:
        """Write a session manifest granting `datasets` to one project; returns its path."""
        manifest = SessionManifest(
            user="bench",
            projects={project: ProjectGrant(title="Benchmark", preset="default", datasets=dict(datasets))},
            outbox=self.tmp_dir / "outbox",
        )
        return manifest.write(self.tmp_dir / f"session-{project}.json")

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
