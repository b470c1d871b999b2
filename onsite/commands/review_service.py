"""`onsite review-service`: the reviewer web app (its own module: it loads tornado and JupyterHub's service
auth, which `onsite review …` does not need)."""
from __future__ import annotations

import argparse

from onsite_base.settings import Settings
from review_service.__main__ import main as run_review_service


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite review-service` (the table of `onsite.cli`)."""
    parser.description = ("Same as `python -m review_service`: listens where $JUPYTERHUB_SERVICE_URL says, "
                          "under $JUPYTERHUB_SERVICE_PREFIX, and authenticates people through the Hub.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return run_review_service()
