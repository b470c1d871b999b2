"""The workflow's stored texts: one catalogue in English and Japanese, rendered like the check messages."""
from __future__ import annotations

import re
import string

import pytest

from disclosure_review.sdc import messages as sdc_messages
from disclosure_review.workflow import messages
from disclosure_review.workflow.recompute import QueryTimeout, not_run, recomputation_failed

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_message_has_english_and_japanese_with_the_same_placeholders() -> None:
    for code, texts in messages.OWN.items():
        assert set(texts) == set(sdc_messages.LANGUAGES), code
        assert placeholders(texts["en"]) == placeholders(texts["ja"]), code
        assert JAPANESE.search(texts["ja"]) and texts["ja"] != texts["en"], code


def test_no_workflow_id_hides_a_check_message() -> None:
    assert not set(messages.OWN) & set(sdc_messages.MESSAGES)


def test_a_stored_message_renders_in_either_language_nested_messages_too() -> None:
    stored = messages.msg("claimed_shadow_figure", cell="C / F", figure=messages.msg("figure_sdc_records"))
    assert messages.text(stored) == "C / F: sdc_records"
    assert messages.text(stored, "ja") == "C / F のレコード数"
    with pytest.raises(KeyError):
        messages.msg("no_such_message")


def test_rows_stored_without_an_id_or_with_other_arguments_show_their_english() -> None:
    assert messages.text(None, "ja", "the datasets could not be opened: gone") == "the datasets could not be opened: gone"
    assert messages.text({"code": "query_timeout", "args": {}}, "ja", "stored text") == "stored text"


def test_a_failed_recomputation_keeps_english_and_its_message() -> None:
    failed = recomputation_failed(QueryTimeout(2.5))
    assert failed.error == "the query ran longer than 2.5 s and was stopped"
    assert messages.text(failed.error_message, "ja") == "クエリの実行が 2.5 秒を超えたため停止しました"
    budget = not_run("time_budget_spent", seconds=90.0)
    assert budget.error.startswith("the submission's time budget (90 s)") and not budget.verified
    assert "制限時間(90 秒)" in messages.text(budget.error_message, "ja")
