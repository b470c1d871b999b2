"""The extract section of the request page: the swap report for reviewers only, and pages of extracts
without swapping still render (the templates are strict: a missing key is an error)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from disclosure_review.sdc.enums import Verdict
from review_service.app import make_jinja
from review_service.i18n import translator

SWAP = {"households": 400, "target_swapped_households": 40, "swapped_households": 44, "swap_rate": 0.11,
        "risky_households": {"pref": 0, "muni": 3}, "risky_unswapped": 0, "seed": 11, "pairs_shown": 1,
        "pairs": [{"household": 17, "partner": 230, "level": "muni", "risky": True, "area": "P1 > 1-2",
                   "partner_area": "P3 > 3-1"}]}


def page(report: dict, reviewer_view: bool) -> str:
    output = SimpleNamespace(id=1, report=report, recomputed={"records": 10, "columns": ["hid", "pref"]},
                             spec={"query": "SELECT hid, pref FROM census"}, mismatch=[], claimed=None)
    return make_jinja().get_template("_extract.html").render(
        o=output, item={"labels": {}}, reviewer_view=reviewer_view, t=translator("en"), lang="en",
        Verdict=Verdict, check_text=lambda r, lang: "", stored_text=lambda m, lang, what: "",
    )


BASE = {"roles": {"keys": ["pref"], "weight": None, "undeclared": []}, "risk": None, "results": []}


@pytest.mark.parametrize("reviewer_view", [True, False])
def test_an_extract_without_swapping_renders(reviewer_view: bool) -> None:
    assert "Record swapping" not in page(BASE, reviewer_view)


def test_reviewers_see_what_was_swapped_and_requesters_do_not() -> None:
    report = {**BASE, "swapping": SWAP}
    reviewer = page(report, reviewer_view=True)
    assert "Record swapping (reviewers only)" in reviewer and "P3 &gt; 3-1" in reviewer and ">230<" in reviewer
    requester = page(report, reviewer_view=False)
    assert "Record swapping" not in requester and "230" not in requester and "P3" not in requester
