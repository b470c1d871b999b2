"""Commands: `onsite demo-data` and `onsite admin dataset ingest|list|show|risk`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from access_control.policy import register_dataset
from dataplane.catalogue import (
    DatasetInfo,
    DatasetNotFound,
    VariableRole,
    attached_metadata,
    guarded_connection,
    ingest,
    list_datasets,
    load_metadata,
    read_dataset_info,
)
from dataplane.ids import check_dataset_id
from disclosure_review.sdc.microdata import InvalidMicrodataInput, risk_report
from onsite.commands.admin import admin_actor, in_transaction, print_json, print_rows, require_administrator
from onsite.demo_data import METADATA_PATH, generate
from onsite_base.errors import UserError
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_DEMO_ROWS = 200_000
DEFAULT_DEMO_SEED = 20260401


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite demo-data` or `onsite admin dataset …` (the table of `onsite.cli`)."""
    (demo_data_arguments if name == "demo-data" else dataset_actions)(parser)


def demo_data_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write a synthetic household survey modelled on Japanese official surveys (one row per person: "
        "household, prefecture, municipality, sex, age, nationality, occupation, income, weight, and two direct "
        "identifiers that ingest drops). The same --rows and --seed always give the same file. Ingest it with "
        "`onsite admin dataset ingest OUT --metadata <printed metadata path>`.")
    p.add_argument("--rows", type=int, default=DEFAULT_DEMO_ROWS, help=f"number of persons (default {DEFAULT_DEMO_ROWS:,})")
    p.add_argument("--seed", type=int, default=DEFAULT_DEMO_SEED, help=f"random seed (default {DEFAULT_DEMO_SEED})")
    p.add_argument("--out", type=Path, help="output file, .parquet or .csv (default $ONSITE_HOME/demo/demo_household.parquet)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_demo_data)


def dataset_actions(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "ingest",
        help="load a CSV or Parquet file as a dataset and register it",
        description="Load FILE into $ONSITE_HOME/datasets/<ID>.duckdb (mode 0640) and register it in the policy "
        "store. Every column of FILE must be described in the metadata YAML with a role; direct identifiers are "
        "dropped, declared types enforced; list the unit ids that stay (person or record ids) under identifiers, "
        "so that queries singling out records by them go to review. Anything wrong (unreadable file, undescribed or missing column, no key "
        "variable, two weights, a value that does not fit its type) is refused with the reason and leaves nothing "
        "behind. The metadata format is documented in dataplane/catalogue.py; see "
        "onsite/demo_metadata.yaml for a full example.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="source data: .csv (with a header row) or .parquet")
    p.add_argument("--metadata", type=Path, required=True, metavar="META.yaml", help="variable labels, roles, types, codes, identifiers")
    p.add_argument("--id", dest="dataset_id", metavar="ID",
                   help="dataset id, a-z 0-9 _ (default: the id in the metadata); queries name it: SELECT ... FROM ID")
    p.add_argument("--replace", action="store_true", help="overwrite an existing dataset with the same id")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_ingest)
    p = sub.add_parser("list", help="the dataset files in $ONSITE_HOME/datasets")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_list)
    p = sub.add_parser("show", help="a dataset's variables with labels, roles, types and code lists")
    p.add_argument("dataset_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print the stored metadata as JSON")
    p.set_defaults(run=run_show)
    p = sub.add_parser(
        "risk",
        help="record-level disclosure risk of a dataset (k-anonymity, individual risk, riskiest key combinations)",
        description="Open dataset ID read-only and print its record-level risk report: records in key combinations "
        "of fewer than k records (missing key values match any value, as sdcMicro), individual re-identification "
        "risk (Benedetti-Franconi with the declared sampling weight, else 1/f_k), expected re-identifications, "
        "household risk when a household id is declared, l-diversity of sensitive variables, and the riskiest key "
        "combinations. Key, weight, household and sensitive variables come from the dataset's metadata; --keys "
        "replaces the key variables. Formulas: docs/reference/record-level-risk.md. Reading 10M records takes "
        "seconds; --suda (SUDA2) takes about a minute per million records with 7 key variables.",
    )
    p.add_argument("dataset_id", metavar="ID")
    p.add_argument("--keys", metavar="A,B,C", help="key variables, comma-separated (default: the declared ones)")
    p.add_argument("--k", type=int, default=3, help="k of k-anonymity for the counts and combinations (default 3)")
    p.add_argument("--suda", action="store_true", help="also compute SUDA2 (minimal sample uniques, DIS-SUDA)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="write a PNG: risk distribution and records per f_k")
    p.add_argument("--lang", choices=("ja", "en"), default="en", help="language of the plot's labels (default en)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_risk)


def run_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    out = args.out or settings.home / "demo" / "demo_household.parquet"
    generate(args.rows, args.seed, out, progress=not args.quiet)
    print(f"wrote {args.rows:,} rows to {out}\nmetadata: {METADATA_PATH}")
    return 0


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    metadata = load_metadata(args.metadata)
    dataset_id = check_dataset_id(args.dataset_id or metadata.id)
    target = settings.datasets_dir / f"{dataset_id}.duckdb"
    existed = target.exists()
    ingested: list[DatasetInfo] = []

    def work(session) -> int:
        require_administrator(session)  # before the file is written

        def register(info: DatasetInfo) -> None:
            register_dataset(
                session, dataset_id=info.id, title_ja=info.metadata.title.ja, title_en=info.metadata.title.en,
                path=str(info.path), rows=info.rows, source_sha256=info.source_sha256, actor=admin_actor(),
                replace=args.replace,
            )

        ingested.append(ingest(args.file, metadata, dataset_id, settings.datasets_dir, replace=args.replace,
                               progress=not args.quiet, before_commit=register))
        return 0

    try:
        in_transaction(settings, work)
    except BaseException:
        # The file was renamed into place but the registration did not commit: take it back out.
        if ingested and not existed:
            ingested[0].path.unlink(missing_ok=True)
        elif ingested:
            log.error("dataset %s was replaced on disk but its registration failed; re-run the ingest", dataset_id)
        raise
    info = ingested[0]
    dropped = ", ".join(info.metadata.dropped_identifiers) or "none"
    print(f"dataset {info.id}: {info.rows:,} rows, {len(info.metadata.variables)} variables -> {info.path}\n"
          f"direct identifiers dropped: {dropped}\nsource sha256: {info.source_sha256}")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = [
        {"id": i.id, "rows": i.rows, "variables": len(i.metadata.variables), "title_en": i.metadata.title.en,
         "title_ja": i.metadata.title.ja, "path": str(i.path)}
        for i in list_datasets(settings.datasets_dir)
    ]
    if args.json:
        print_json(rows)
    else:
        print_rows(rows, ["id", "rows", "variables", "title_en", "title_ja"])
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    info = read_dataset_info(settings.datasets_dir / f"{check_dataset_id(args.dataset_id)}.duckdb")
    if args.json:
        print_json({**info.metadata.to_dict(), "rows": info.rows, "source_sha256": info.source_sha256,
                    "path": str(info.path)})
        return 0
    meta = info.metadata
    print(f"{meta.id}: {meta.title.en} / {meta.title.ja}\n{info.rows:,} rows; file {info.path}\n"
          f"direct identifiers dropped at ingest: {', '.join(meta.dropped_identifiers) or 'none'}\n")
    print_rows(
        [{"name": v.name, "role": v.role.name.lower(), "type": v.type or "", "label_en": v.label.en,
          "label_ja": v.label.ja, "codes": len(v.codes) or ""} for v in meta.variables],
        ["name", "role", "type", "label_en", "label_ja", "codes"],
    )
    return 0


def run_risk(args: argparse.Namespace, settings: Settings) -> int:
    dataset_id = check_dataset_id(args.dataset_id)
    path = settings.datasets_dir / f"{dataset_id}.duckdb"
    if not path.is_file():
        raise DatasetNotFound(f"no dataset {dataset_id!r} in {settings.datasets_dir}; see `onsite admin dataset list`")
    if args.k < 1:
        raise UserError(f"--k must be at least 1 (got {args.k})")
    con = guarded_connection({dataset_id: path}, memory_limit="4GB")
    try:
        meta = attached_metadata(con, dataset_id).metadata
        keys = [k.strip() for k in args.keys.split(",") if k.strip()] if args.keys else meta.key_variables
        households = meta.names(VariableRole.HOUSEHOLD)
        sensitive = [s for s in meta.names(VariableRole.SENSITIVE) if s not in keys]
        try:
            report = risk_report(con.table(dataset_id), keys=keys, weight=meta.weight,
                                 household=households[0] if len(households) == 1 else None,
                                 sensitive=sensitive, k=args.k, suda=args.suda, progress=not args.quiet)
        except InvalidMicrodataInput as exc:
            raise UserError(f"dataset {dataset_id}: {exc}") from None
    finally:
        con.close()
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.to_text(), end="")
    if args.plot:
        report.plot(args.plot, lang=args.lang)
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0
