"""Texts the review workflow stores for the review pages, in English and Japanese: one catalogue keyed by id.

The same mechanism as the check messages (`disclosure_review.sdc.messages`):
the workflow stores a message id and its arguments (`msg(code, **args)`, JSON)
beside the English text, and a page renders it in its language with `text`.
English is what JSON, the CLI, audit events and manifests carry. Rows stored
before a text had an id fall back to their stored English. A text that quotes
an error raised elsewhere (DuckDB, a spec) keeps that quotation as it was raised.

Refusals (`WorkflowError.key`) are not stored: the reviewer app translates them
from its own catalogue (`review_service.i18n`, `err_<key>`).
"""
from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from disclosure_review.sdc import messages as sdc_messages

OWN: dict[str, dict[str, str]] = {
    # -- claimed by the session vs recomputed by the service: the "what" of a difference ------
    "claimed_verdict": {"en": "verdict", "ja": "判定"},
    "claimed_released_cell": {"en": "released {cell}", "ja": "公表されるセル {cell}"},
    "claimed_shadow_figure": {"en": "{cell}: {figure}", "ja": "{cell} の{figure}"},
    "claimed_shadow_unreadable": {"en": "shadow statistics: unreadable", "ja": "影統計: 読み取れません"},
    "claimed_more": {"en": "{count} more differing figures", "ja": "ほかに異なる値 {count} 件"},
    "figure_sdc_records": {"en": "sdc_records", "ja": "レコード数"},
    "figure_sdc_value": {"en": "sdc_value", "ja": "値"},
    "figure_records": {"en": "records", "ja": "レコード数"},
    "figure_expected_reidentifications": {"en": "expected_reidentifications", "ja": "期待再識別数"},
    "figure_max_individual_risk": {"en": "max_individual_risk", "ja": "最大個別リスク"},
    # -- why an output could not be recomputed (it fails) ------------------------------------
    "preset_unloadable": {"en": "rule preset {preset!r}: {error}", "ja": "審査基準「{preset}」を読み込めません: {error}"},
    "reference_refused": {"en": "{error}", "ja": "承認済みの持込みデータを使えません: {error}"},
    "datasets_unopened": {"en": "the datasets could not be opened: {error}", "ja": "データセットを開けませんでした: {error}"},
    "cell_key_statistic": {
        "en": "the cell key method perturbs counts and sums, not {statistic}: this table cannot be released from a "
              "dataset released perturbed",
        "ja": "セルキー法で攪乱できるのは度数と合計で、{statistic} は攪乱できません。攪乱して公表するデータセットからはこの表を公表できません",
    },
    "cell_key_rounding": {
        "en": "the cell key method replaces rounding on this dataset: choose no rounding",
        "ja": "このデータセットではセルキー法が丸めに代わります。丸めを選ばないでください",
    },
    "cell_key_untraced": {
        "en": "the cell key method needs each cell's records, and this query's rows cannot be traced to them (one "
              "dataset, one row per record): the table is not released unperturbed",
        "ja": "セルキー法には各セルのレコードが必要ですが、このクエリの行をレコードにたどれません(1 つのデータセット、"
              "1 レコード 1 行)。攪乱なしでは公表しません",
    },
    "cell_key_keys": {
        "en": "the cell key method could not read the record keys: {error}",
        "ja": "セルキー法のレコードキーを読めませんでした: {error}",
    },
    "query_timeout": {
        "en": "the query ran longer than {seconds:g} s and was stopped",
        "ja": "クエリの実行が {seconds:g} 秒を超えたため停止しました",
    },
    "recompute_failed": {"en": "{error}", "ja": "実行時のエラー: {error}"},
    "time_budget_spent": {
        "en": "the submission's time budget ({seconds:g} s) was spent before this query could run: "
              "submit fewer or faster tables",
        "ja": "申請全体の制限時間({seconds:g} 秒)を使い切ったため、このクエリは実行されませんでした。"
              "表を減らすか、より速いクエリで申請してください",
    },
    "swapping_needs_household": {
        "en": "record swapping needs the household id: the extract has no column the datasets declare as one",
        "ja": "レコードスワッピングには世帯番号が必要ですが、データセットで世帯番号と宣言された列が個票データにありません",
    },
    "swapping_invalid": {
        "en": "record swapping could not be applied: {error}",
        "ja": "レコードスワッピングを適用できませんでした: {error}",
    },
    "extract_too_many_records": {
        "en": "the extract has more than {limit:,} records: release a sample or a table",
        "ja": "個票データが {limit:,} レコードを超えています。標本か集計表にして申請してください",
    },
    "extract_too_large": {
        "en": "the extract is {size:,} bytes as CSV; the limit is {limit:,}",
        "ja": "個票データは CSV にすると {size:,} バイトで、上限の {limit:,} バイトを超えています",
    },
}

MESSAGES = ChainMap(OWN, sdc_messages.MESSAGES)
"""The workflow's texts, then the check messages (a workflow text may take one as an argument)."""


def msg(code: str, **args: Any) -> dict[str, Any]:
    """A message to store ({"code", "args"}, JSON)."""
    if code not in MESSAGES:
        raise KeyError(f"no message {code!r} in workflow.messages or sdc.messages")
    return {"code": code, "args": args}


def text(message: Mapping[str, Any] | None, lang: str = "en", fallback: str | None = None) -> str:
    """A stored message in `lang`; `fallback` (the stored English) for a row stored without an id."""
    return sdc_messages.message_text(message, lang, fallback, MESSAGES)
