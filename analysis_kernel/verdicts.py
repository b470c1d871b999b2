"""Verdicts as a researcher sees them, in the session's language: words, badges, reasons and the texts around them.

The check messages and the verdict words come from the sdc catalogue
(`disclosure_review.sdc.messages`); the texts outputs and release summaries
add around them are here.
"""
from __future__ import annotations

import html

from disclosure_review.sdc import CheckReport, CheckResult, Verdict
from disclosure_review.sdc.messages import render_text
from onsite_base.i18n import make_translator

VERDICT_COLOURS = {Verdict.PASS: "#1a7f37", Verdict.REVIEW: "#9a6700", Verdict.FAIL: "#cf222e"}

# What outputs say around their check messages, in the session's language (the
# messages themselves and the verdict words come from the sdc catalogue).
MESSAGES = {
    "every_check_passed": {"en": "every check passed", "ja": "すべてのチェックに合格"},
    "under_preset": {"en": "under preset {preset}", "ja": "ルールプリセット {preset}"},
    "feedback": {"en": "(feedback: the review service recomputes the table and decides)",
                 "ja": "（参考表示: 審査サービスが表を再計算して判定します）"},
    "protection": {"en": "protection: {method} — blank cells are not released; {note}",
                   "ja": "保護: {method} — 空欄のセルは公表されません。{note}"},
    "intervals": {"en": "feasible intervals of the suppressed cells (秘匿インターバル): {intervals}",
                  "ja": "秘匿セルの取りうる範囲（秘匿インターバル）: {intervals}"},
    "more_cells": {"en": "… {n} more cells (all are checked; see .report)",
                   "ja": "… ほか {n} セル（すべてチェック済み。.report を参照）"},
    "contributors": {"en": "contributors", "ja": "寄与数"},
    "checks": {"en": "checks", "ja": "チェック"},
    "bytes": {"en": "{n} bytes", "ja": "{n} バイト"},
    "file_unverified": {"en": "<i>unverified</i>: made by code, so a reviewer judges it with the code and your explanation.",
                        "ja": "<i>未検証</i>: コードで作られたファイルなので、審査者がコードと説明をもとに判断します。"},
    "model_unverified": {"en": "<i>unverified</i> (a reviewer judges the model with your code)",
                         "ja": "<i>未検証</i>（審査者がコードとともにモデルを判断します）"},
    "release_request": {"en": "release request {id}: {status}", "ja": "公表申請 {id}: {status}"},
    "cell_key_loss": {"en": "released perturbed (cell key method): {changed} of {cells} cells changed, mean absolute "
                            "deviation {mad:.3g}, mean relative deviation {mrd}; the released cells are on the "
                            "request's page",
                      "ja": "セルキー法で攪乱して公表: {cells} セル中 {changed} セルが変更、平均絶対偏差 {mad:.3g}、"
                            "平均相対偏差 {mrd}。公表されるセルは申請のページで確認できます"},
    "perturbed_heading": {"en": "{name}: computed here, and as it will be released (perturbed by the cell key "
                                "method in the review service)",
                          "ja": "{name}: ここで計算した値と、公表される値（審査サービスがセルキー法で攪乱）"},
    "computed": {"en": "computed", "ja": "計算値"},
    "released": {"en": "released", "ja": "公表値"},
    "perturbed_loss": {"en": "information loss: {changed} of {cells} cells changed, mean absolute deviation {mad:.3g}, "
                             "mean relative deviation {mrd}, largest deviation {max:.3g}. Margins are perturbed on "
                             "their own: rows and columns need not add up to their totals.",
                       "ja": "情報損失: {cells} セル中 {changed} セルが変更、平均絶対偏差 {mad:.3g}、平均相対偏差 {mrd}、"
                             "最大偏差 {max:.3g}。合計欄もそれ自体で攪乱されるため、行・列の和は合計と一致しないことが"
                             "あります。"},
    "service_only": {"en": "Checked only by the review service: {checks} (this table against the project's "
                           "other tables, pending, approved or released, which a session cannot read). A pass "
                           "here may still be review or fail there.",
                     "ja": "審査サービスだけが行うチェック: {checks}（このプロジェクトの他の表（審査中・承認済み・"
                           "公表済み）との照合。セッションからはそれらを読めません）。ここで合格でも、審査サービスでは"
                           "要審査・不合格になることがあります。"},
}
# Checks a session cannot run: differencing needs the record states of the project's other outputs
# (`disclosure_review.sdc.differencing`), which only the service holds.
SERVICE_ONLY_CHECKS = ("differencing",)
translator = make_translator(MESSAGES)


def verdict_word(verdict: Verdict | str, lang: str) -> str:
    """pass / review / fail in `lang` (合格 / 要審査 / 不合格); an unknown verdict as it is."""
    value = str(getattr(verdict, "value", verdict))
    return render_text(f"verdict_{value.lower()}", {}, lang, value)


def reason(result: CheckResult, lang: str) -> str:
    return f"{result.rule} ({verdict_word(result.verdict, lang)}): {result.text(lang)}"


def reasons_in(report: CheckReport, lang: str) -> list[str]:
    """`report.reasons()` (one line per check that did not pass) in `lang`."""
    return [reason(r, lang) for r in report.results if r.verdict is not Verdict.PASS]


def service_only_note(lang: str) -> str:
    """What the verdict shown in the session cannot include, in `lang`."""
    return translator(lang)("service_only", checks=", ".join(SERVICE_ONLY_CHECKS))


def perturbed_loss(loss: dict, lang: str) -> str:
    """The information loss of a table released perturbed (the service's figures), in `lang`."""
    mrd = loss.get("mean_relative_deviation")
    return translator(lang)("perturbed_loss", changed=loss.get("changed"), cells=loss.get("cells"),
                            mad=loss.get("mean_absolute_deviation") or 0.0, max=loss.get("max_absolute_deviation") or 0.0,
                            mrd="—" if mrd is None else f"{100 * mrd:.2f} %")


def badge(verdict: Verdict, lang: str = "en") -> str:
    colour = VERDICT_COLOURS[verdict]
    return (f"<span style='background:{colour};color:white;padding:1px 6px;border-radius:3px;"
            f"font-weight:bold'>{html.escape(verdict_word(verdict, lang))}</span>")
