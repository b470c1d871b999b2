"""Check messages: one catalogue in English and Japanese, every check's result readable in both."""
from __future__ import annotations

import json
import re
import string
import sys
from pathlib import Path

import pytest

from disclosure_review.sdc import CheckResult, Verdict
from disclosure_review.sdc.messages import LANGUAGES, MESSAGES, render, result_text
from disclosure_review.sdc.protect import wrapped

sys.path.insert(0, str(Path(__file__).parent))
from message_corpus import all_results  # noqa: E402

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
ENGLISH_PHRASE = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,}){2}\b")  # three English words in a row
QUOTES_AN_ERROR = {"input_unusable", "risk_not_computed"}  # they quote the input error as it was raised
NOT_PRODUCED = {"interval_undecided", "verdict_review",  # only when the interval solver gives no answer
                "differencing_undecided"}  # only when peeling a difference sticks (test_differencing_records.py)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def codes(value) -> set[str]:
    """Message ids in a result's args (messages nested as arguments)."""
    if isinstance(value, dict) and "code" in value:
        return {value["code"]} | codes(list(value.get("args", {}).values()))
    if isinstance(value, list):
        return set().union(*map(codes, value)) if value else set()
    return set()


@pytest.fixture(scope="module")
def results() -> list:
    return all_results()


def test_every_message_has_english_and_japanese_with_the_same_placeholders() -> None:
    for code, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), code
        assert placeholders(texts["en"]) == placeholders(texts["ja"]), code
        assert JAPANESE.search(texts["ja"]) and texts["ja"] != texts["en"], code


def test_the_checks_use_every_message(results) -> None:
    used = set().union(*({r.code} | codes(list(r.args.values())) for r in results))
    assert set(MESSAGES) - used == NOT_PRODUCED
    assert {r.verdict for r in results} == set(Verdict)


def test_every_result_reads_in_japanese_with_its_numbers(results) -> None:
    for result in results:
        english, japanese = result.message, result.text("ja")
        assert JAPANESE.search(japanese), (result.rule, japanese)
        assert set(NUMBER.findall(english)) <= set(NUMBER.findall(japanese)), (english, japanese)
        if result.code not in QUOTES_AN_ERROR:
            assert not ENGLISH_PHRASE.search(japanese), (result.rule, japanese)


def test_protection_translates_the_wrapped_message_as_a_whole(results) -> None:
    rounded = next(r for r in results if r.code == "rounded")
    inner = rounded.args["message"]
    assert rounded.text("ja") == render(inner["code"], inner["args"], "ja") + "(基数 5 で丸めました。丸めでこれらのセルが保護されるかは審査者が判断します)"
    assert rounded.message == render(inner["code"], inner["args"]) + (
        " (rounded to base 5: a reviewer judges whether rounding protects these cells)")
    excused = {r.code for r in results if r.code and r.code.startswith("excused_")}
    assert excused == {f"excused_{n}_{how}" for n in ("some", "all") for how in ("suppressed", "deleted", "redacted")}


def test_interval_audit_english_is_the_audit_summary(results) -> None:
    audits = {r.message for r in results if r.rule == "interval_audit"}
    assert "pass: 6 suppressed cells (6 protected) (protection levels: threshold 10)" in audits
    assert "fail: 2 suppressed cells (2 too_narrow) (protection levels: threshold 10)" in audits
    assert "fail: 1 suppressed cells (1 recomputable); 1 unsafe cells published (protection levels: threshold 10)" \
        in audits
    assert "pass: 6 suppressed cells (6 protected) (protection levels: not required by the preset)" in audits
    assert "pass: 0 suppressed cells (none) (protection levels: none set by the preset: only exact recomputation is " \
           "refused)" in audits


def test_results_round_trip_as_json_with_their_code_and_args(results) -> None:
    for result in results:
        stored = json.loads(json.dumps(result.to_dict()))
        assert stored["code"] == result.code and stored["args"] == result.args and stored["message"] == result.message
        assert result_text(stored, "ja") == result.text("ja")
        if isinstance(result, CheckResult):
            again = CheckResult.from_dict(stored)
            assert again == result and again.text("ja") == result.text("ja")


def test_a_result_stored_without_a_code_shows_its_stored_text() -> None:
    stored = {"rule": "threshold", "verdict": "fail", "message": "1 of 4 cells: fewer than 10 contributing records",
              "parameters": {"threshold": 10}, "cells": [["c"]]}
    result = CheckResult.from_dict(stored)
    assert result.code is None and result.message == result.text("ja") == stored["message"]
    assert result.to_dict() | {"code": None, "args": {}} == result.to_dict() and result.to_dict()["message"] == stored["message"]
    assert result_text(stored, "ja") == stored["message"]
    # an id this version does not know, or arguments that no longer fit it: the stored text too
    assert result_text(stored | {"code": "renamed_since", "args": {}}, "ja") == stored["message"]
    assert result_text(stored | {"code": "threshold_fail", "args": {"threshold": 10}}, "ja") == stored["message"]
    # protection of a stored result: the wrapper is translated around the stored text
    assert wrapped(result, "rounded", base=5).text("ja").startswith(stored["message"] + "(基数 5 で丸めました")
