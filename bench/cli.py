"""`python -m bench` and `onsite bench`: run benchmarks and print the comparison table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import DATA_DIR, DEFAULT_ROWS, Context
from bench.harness import format_table, run
from onsite_base.errors import UserError
from onsite_base.settings import Settings

DESCRIPTION = (
    "Run side-by-side benchmarks (modules bench/bench_<topic>.py) and print, per case, the peer's and our median "
    "wall time and their ratio (ours / peer; 1.05 means 5 % slower). Demo data of --rows rows is generated and "
    "ingested into --data-dir on first use and reused afterwards. Other work on the machine disturbs timings: "
    "record results only from a quiet machine."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmark topics, i.e. modules bench/bench_<topic>.py (e.g. groupby); default: all")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows of demo data (default {DEFAULT_ROWS:,})")
    parser.add_argument("--repeat", type=int, help="timed runs per case (default: each case's own, usually 5)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"where demo data is cached (default {DATA_DIR})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars while generating data")


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite bench` (the table of `onsite.cli`)."""
    parser.description = DESCRIPTION
    add_arguments(parser)
    parser.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace, settings: Settings | None = None) -> int:
    if args.rows < 1 or (args.repeat is not None and args.repeat < 1):
        raise UserError("--rows and --repeat must be at least 1")
    ctx = Context(rows=args.rows, data_dir=args.data_dir, progress=not args.quiet)
    results = run(args.names, ctx, args.repeat)
    print(format_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_bench(args)
    except UserError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
