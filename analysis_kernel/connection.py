"""`connect()`: the researcher's entry point to the datasets their project grants.

    import analysis_kernel
    db = analysis_kernel.connect()
    db.datasets()                                  # what this project may read
    db.sql("SELECT sex, count(*) FROM lfs_demo GROUP BY sex").pl()
    db.references()                                # reference data brought in and approved for the project
    db.reference("municipality_codes")             # attach it: queries then read reference.municipality_codes

Queries go straight to DuckDB (`.sql()` and `.table()` return its lazy
relations), so there is no per-query overhead beyond DuckDB's own.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from analysis_kernel.ingress import approved_references, fetch_reference
from dataplane.catalogue import DatasetInfo, DatasetMetadata, attached_metadata, guarded_connection
from dataplane.manifest import SessionManifest
from dataplane.reference import SCHEMA, attach_references
from onsite_base.errors import UserError
from onsite_base.i18n import make_translator


class ProjectNotChosen(UserError):
    """The session has several projects (or none matching) and connect() was not told which."""


class DatasetNotGranted(UserError):
    pass


def connect(
    project: str | None = None,
    *,
    manifest: SessionManifest | Path | None = None,
    memory_limit: str = "4GB",
    threads: int | None = None,
) -> AnalysisConnection:
    """Open the datasets granted to `project` (the only project of the session if omitted), read-only.

    `manifest` defaults to the session manifest at `$ONSITE_SESSION`. Datasets of
    other projects are not attached at all.
    """
    if not isinstance(manifest, SessionManifest):
        manifest = SessionManifest.load(manifest)
    project_id = choose_project(manifest, project)
    con = guarded_connection(manifest.projects[project_id].datasets, memory_limit=memory_limit, threads=threads)
    return AnalysisConnection(con, project_id, manifest)


def choose_project(manifest: SessionManifest, project: str | None) -> str:
    choices = ", ".join(f"{pid!r} ({grant.title})" for pid, grant in manifest.projects.items())
    if project is None:
        if len(manifest.projects) == 1:
            return next(iter(manifest.projects))
        if not manifest.projects:
            raise ProjectNotChosen(f"user {manifest.user} has no active project in this session")
        raise ProjectNotChosen(f"this session has several projects; choose one: connect(project=...) with {choices}")
    if project not in manifest.projects:
        raise ProjectNotChosen(f"project {project!r} is not active in this session; active: {choices or 'none'}")
    return project


class AnalysisConnection:
    """A read-only DuckDB connection over one project's granted datasets, plus their metadata."""

    def __init__(self, con: duckdb.DuckDBPyConnection, project: str, manifest: SessionManifest) -> None:
        self._con = con
        self.project = project
        self.manifest = manifest
        self._info: dict[str, DatasetInfo] = {}
        self._references: set[str] = set()

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The raw (guarded) DuckDB connection."""
        return self._con

    @property
    def project_title(self) -> str:
        return self.manifest.projects[self.project].title

    @property
    def preset(self) -> str:
        """The project's disclosure-control rule preset."""
        return self.manifest.projects[self.project].preset

    @property
    def dataset_ids(self) -> list[str]:
        return list(self.manifest.projects[self.project].datasets)

    def sql(self, query: str, *, params: object = None) -> duckdb.DuckDBPyRelation:
        """Run SQL over the granted datasets (each is a view named by its id); returns a lazy relation."""
        return self._con.sql(query, params=params)

    def table(self, dataset_id: str) -> duckdb.DuckDBPyRelation:
        self._check_granted(dataset_id)
        return self._con.table(dataset_id)

    def info(self, dataset_id: str) -> DatasetInfo:
        self._check_granted(dataset_id)
        if dataset_id not in self._info:
            self._info[dataset_id] = attached_metadata(self._con, dataset_id)
        return self._info[dataset_id]

    def metadata(self, dataset_id: str) -> DatasetMetadata:
        return self.info(dataset_id).metadata

    def datasets(self) -> pl.DataFrame:
        """The granted datasets: id, titles, rows and number of variables."""
        infos = [self.info(d) for d in self.dataset_ids]
        return pl.DataFrame(
            {
                "dataset": self.dataset_ids,  # the view names; a file may have been ingested under another id
                "title_ja": [i.metadata.title.ja for i in infos],
                "title_en": [i.metadata.title.en for i in infos],
                "rows": [i.rows for i in infos],
                "variables": [len(i.metadata.variables) for i in infos],
            },
            schema={"dataset": pl.String, "title_ja": pl.String, "title_en": pl.String, "rows": pl.Int64,
                    "variables": pl.Int64},
        )

    def variables(self, dataset_id: str) -> pl.DataFrame:
        """One row per variable: name, labels, role, DuckDB type and code list."""
        variables = self.metadata(dataset_id).variables
        return pl.DataFrame(
            {
                "name": [v.name for v in variables],
                "label_ja": [v.label.ja for v in variables],
                "label_en": [v.label.en for v in variables],
                "role": [v.role.name.lower() for v in variables],
                "type": [v.type for v in variables],
                "codes": [[{"code": c, "ja": t.ja, "en": t.en} for c, t in v.codes.items()] for v in variables],
            },
            schema={"name": pl.String, "label_ja": pl.String, "label_en": pl.String, "role": pl.String,
                    "type": pl.String,
                    "codes": pl.List(pl.Struct({"code": pl.String, "ja": pl.String, "en": pl.String}))},
        )

    @property
    def reference_names(self) -> list[str]:
        """Approved reference data attached in this connection (`reference(name)`)."""
        return sorted(self._references)

    def references(self) -> pl.DataFrame:
        """The project's approved reference data (asked of the review service): name, rows, description, SHA-256."""
        listed = approved_references(self.project, self.manifest.outbox)
        return pl.DataFrame(
            {key: [r.get(key) for r in listed] for key in ("name", "rows", "description", "filename", "sha256", "approved_at")},
            schema={"name": pl.String, "rows": pl.Int64, "description": pl.String, "filename": pl.String,
                    "sha256": pl.String, "approved_at": pl.String},
        )

    def reference(self, name: str) -> duckdb.DuckDBPyRelation:
        """Approved reference data `name` of this project, read-only as `reference.<name>` in every query.

        The review service sends its approved copy, which is checked against the approved SHA-256 here; the
        service attaches the same copy when it recomputes an output that names it. Not approved yet, rejected,
        retired or another project's: refused, saying so; data retired since it was attached here is detached.
        """
        if name in self._references and name not in {
                r.get("name") for r in approved_references(self.project, self.manifest.outbox)}:
            self._con.execute(f'DROP VIEW IF EXISTS {SCHEMA}."{name}"')
            self._references.discard(name)
        if name not in self._references:
            attach_references(self._con, {name: fetch_reference(self.project, name, self.manifest.outbox)})
            self._references.add(name)
        return self._con.sql(f'SELECT * FROM reference."{name}"')

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> AnalysisConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_granted(self, dataset_id: str) -> None:
        if dataset_id not in self.manifest.projects[self.project].datasets:
            granted = ", ".join(self.dataset_ids) or "none"
            raise DatasetNotGranted(
                f"dataset {dataset_id!r} is not granted to project {self.project!r} (granted: {granted})"
            )

    def __repr__(self) -> str:
        return f"<AnalysisConnection project={self.project!r} user={self.manifest.user!r} datasets={self.dataset_ids}>"

    def _repr_html_(self) -> str:
        esc, t = html.escape, summary_text(self.manifest.language)
        rows = "".join(
            f"<tr><td><code>{esc(d)}</code></td><td>{esc(i.metadata.title.ja)}<br>{esc(i.metadata.title.en)}</td>"
            f"<td style='text-align:right'>{i.rows:,}</td><td style='text-align:right'>{len(i.metadata.variables)}</td></tr>"
            for d, i in ((d, self.info(d)) for d in self.dataset_ids)
        )
        return (
            "<div><b>Onsite</b> — "
            + t("heading", project=f"<code>{esc(self.project)}</code> ({esc(self.project_title)})",
                user=f"<code>{esc(self.manifest.user)}</code>", preset=f"<code>{esc(self.preset)}</code>")
            + f"<table><thead><tr><th>{t('dataset')}</th><th>{t('title')}</th><th>{t('rows')}</th>"
            f"<th>{t('variables')}</th></tr></thead><tbody>{rows}</tbody></table><small>{t('hint')}</small></div>"
        )


# The summary `db` shows in a notebook, in the session's language (the manifest's, set by the hub).
SUMMARY = {
    "heading": {"en": "project {project}, user {user}, rule preset {preset}",
                "ja": "プロジェクト {project}、利用者 {user}、ルールプリセット {preset}"},
    "dataset": {"en": "dataset", "ja": "データセット"},
    "title": {"en": "title", "ja": "名称"},
    "rows": {"en": "rows", "ja": "行数"},
    "variables": {"en": "variables", "ja": "変数の数"},
    "hint": {"en": "Query with <code>db.sql(\"SELECT … FROM &lt;dataset&gt;\")</code>; "
                   "<code>db.variables(\"&lt;dataset&gt;\")</code> lists labels, roles and codes.",
             "ja": "<code>db.sql(\"SELECT … FROM &lt;データセット&gt;\")</code> で集計します。"
                   "<code>db.variables(\"&lt;データセット&gt;\")</code> で変数のラベル・役割・コードを確認できます。"},
}
summary_text = make_translator(SUMMARY)
