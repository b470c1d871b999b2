"""Every string of the reviewer app in Japanese and English (Japanese first).

Language negotiation and the strings of the page frame and HTTP errors are
shared with the admin pages (onsite_base.i18n).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onsite_base.i18n import DEFAULT_LANGUAGE, LANGUAGES, SHARED_MESSAGES, make_translator, negotiate

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "MESSAGES", "negotiate", "parameter_items", "translator"]

MESSAGES: dict[str, dict[str, str]] = {
    **SHARED_MESSAGES,
    "app_title": {"ja": "Onsite 出力審査", "en": "Onsite disclosure review"},
    "nav_queue": {"ja": "審査待ち一覧", "en": "Review queue"},
    "nav_mine": {"ja": "自分の申請", "en": "My requests"},
    "queue_heading": {"ja": "審査待ちの公表申請", "en": "Release requests waiting for review"},
    "queue_empty": {"ja": "審査待ちの申請はありません。", "en": "No release request is waiting for you."},
    "queue_note": {
        "ja": "自分の申請と、自分が参加しているプロジェクトの申請は表示されません。",
        "en": "Your own requests and those of projects you belong to are not shown.",
    },
    "mine_heading": {"ja": "自分の公表申請", "en": "My release requests"},
    "mine_empty": {"ja": "公表申請はまだありません。", "en": "You have no release requests yet."},
    "col_id": {"ja": "番号", "en": "No."},
    "col_project": {"ja": "プロジェクト", "en": "Project"},
    "col_title": {"ja": "件名", "en": "Title"},
    "col_requester": {"ja": "申請者", "en": "Requester"},
    "col_submitted": {"ja": "申請日時", "en": "Submitted"},
    "col_status": {"ja": "状態", "en": "Status"},
    "col_outputs": {"ja": "出力", "en": "Outputs"},
    "col_verdicts": {"ja": "自動判定", "en": "Verdicts"},
    "col_your_votes": {"ja": "未投票の出力", "en": "Outputs awaiting your vote"},
    "request_heading": {"ja": "公表申請", "en": "Release request"},
    "purpose": {"ja": "目的", "en": "Purpose"},
    "preset": {"ja": "審査基準", "en": "Rule preset"},
    "required_approvals": {"ja": "必要な承認数(出力ごと)", "en": "Approvals needed per output"},
    "return_comment": {"ja": "差し戻しの理由", "en": "Reason for return"},
    "output": {"ja": "出力", "en": "Output"},
    "kind_TABLE": {"ja": "集計表(サービスが再計算)", "en": "Table (recomputed by the service)"},
    "kind_FILE": {"ja": "ファイル(再計算不可)", "en": "File (cannot be recomputed)"},
    "kind_EXTRACT": {"ja": "個票データ(サービスが再抽出)", "en": "Record-level extract (re-run by the service)"},
    "extract_summary": {"ja": "リスクの要約", "en": "Risk summary"},
    "extract_note": {
        "ja": "個票そのものはここには表示しません。公表されるのはサービスが再抽出した CSV です。",
        "en": "The records themselves are not shown here; the CSV released is the one the service re-ran.",
    },
    "extract_records": {"ja": "レコード数", "en": "Records"},
    "extract_columns": {"ja": "変数", "en": "Variables"},
    "extract_keys": {"ja": "キー変数", "en": "Key variables"},
    "extract_weight": {"ja": "ウェイト", "en": "Sampling weight"},
    "extract_undeclared": {"ja": "宣言されていない変数(改名・加工)", "en": "Undeclared (renamed or derived) variables"},
    "extract_below_k": {"ja": "k 未満の組合せに属するレコード", "en": "Records in key combinations below k"},
    "extract_combinations_below_k": {"ja": "k 未満のキーの組合せ", "en": "Key combinations below k"},
    "extract_er": {"ja": "期待再識別数", "en": "Expected re-identifications"},
    "extract_max_risk": {"ja": "最大個別リスク", "en": "Highest individual risk"},
    "extract_risky": {"ja": "リスクの高いレコード(中央値+2MAD かつ 0.1 超)", "en": "Risky records (above median + 2 MAD and 0.1)"},
    "extract_top": {"ja": "リスクの高いキーの組合せ(上位)", "en": "Riskiest key combinations"},
    "extract_no_report": {"ja": "リスクを計算できませんでした。", "en": "The risk could not be computed."},
    "swap_title": {"ja": "レコードスワッピング(審査者のみ)", "en": "Record swapping (reviewers only)"},
    "swap_note": {
        "ja": "どの世帯をどの世帯と入れ替えたかは審査者だけに表示され、申請者には表示されません。",
        "en": "Which household was swapped with which is shown to reviewers only, never to the requester.",
    },
    "swap_households": {"ja": "世帯数", "en": "Households"},
    "swap_swapped": {"ja": "入れ替えた世帯(目標)", "en": "Households swapped (target)"},
    "swap_rate": {"ja": "スワップ率", "en": "Swap rate"},
    "swap_risky": {"ja": "リスクの高い世帯(階層別)", "en": "Risky households (by level)"},
    "swap_unswapped": {"ja": "相手の見つからなかったリスクの高い世帯", "en": "Risky households without a donor"},
    "swap_seed": {"ja": "乱数シード", "en": "Seed"},
    "swap_pairs": {"ja": "入れ替えた世帯の組(先頭)", "en": "Swapped pairs (first ones)"},
    "swap_household": {"ja": "世帯", "en": "Household"},
    "swap_partner": {"ja": "相手", "en": "Partner"},
    "swap_level": {"ja": "階層", "en": "Level"},
    "swap_area": {"ja": "元の地域", "en": "Area before"},
    "swap_partner_area": {"ja": "相手の元の地域", "en": "Partner's area before"},
    "swap_heading": {"ja": "レコードスワッピングを適用する", "en": "Apply record swapping"},
    "swap_form_note": {
        "ja": "サービスが個票データを元データから再抽出し、地域の階層に沿って世帯を入れ替えます(リスクの高い世帯から)。"
              "プレビューを確認してから保存してください。パラメータと入れ替えの内容は審査者だけに表示されます。",
        "en": "The service re-runs the extract from the source data and swaps households between areas along the "
              "hierarchy, risky households first. Preview it, then save. The parameters and what was swapped are "
              "shown to reviewers only.",
    },
    "swap_hierarchy": {"ja": "地域の階層", "en": "Geographic hierarchy"},
    "swap_hierarchy_hint": {
        "ja": "変数名をカンマ区切りで、上位の階層から(例: 都道府県, 市区町村)。世帯内で同じ値の変数にしてください。",
        "en": "Variable names separated by commas, highest level first (e.g. prefecture, municipality); "
              "one value per household.",
    },
    "swap_similar": {"ja": "一致させる変数", "en": "Similarity variables"},
    "swap_similar_hint": {
        "ja": "入れ替える世帯どうしで値が一致しなければならない変数(例: 世帯人員)。カンマ区切り、空欄可。",
        "en": "Variables that must match between swapped households (e.g. household size); commas, may be empty.",
    },
    "swap_rate_hint": {
        "ja": "入れ替える世帯の割合(0 より大きく 1 以下、例: 0.05 は 5%)。",
        "en": "Share of households to swap: above 0 and at most 1 (0.05 is 5 %).",
    },
    "swap_seed_hint": {
        "ja": "乱数シード(0 以上の整数)。同じデータとシードからは同じ入れ替えになります。",
        "en": "A whole number from 0: the same data and seed give the same swaps.",
    },
    "method_record_swap": {"ja": "レコードスワッピング", "en": "Record swapping"},
    "none": {"ja": "なし", "en": "none"},
    "verdict": {"ja": "自動判定", "en": "Verdict"},
    "verdict_pass": {"ja": "合格", "en": "pass"},
    "verdict_fail": {"ja": "不合格", "en": "fail"},
    "verdict_review": {"ja": "要審査", "en": "review"},
    "verified": {"ja": "検証済み:元データから再計算しました", "en": "Verified: recomputed from the source data"},
    "unverified": {
        "ja": "未検証:研究者のコードで作られたファイルです。審査者が内容を判断してください。",
        "en": "Unverified: a file made by researcher code. A reviewer must judge its content.",
    },
    "decision": {"ja": "決定", "en": "Decision"},
    "undecided": {"ja": "未決定", "en": "undecided"},
    "decision_APPROVE": {"ja": "承認", "en": "approve"},
    "decision_REJECT": {"ja": "却下", "en": "reject"},
    "decision_RETURN": {"ja": "差し戻し", "en": "return"},
    "recomputed_table": {"ja": "再計算した表(公表される内容)", "en": "Recomputed table (what would be released)"},
    "protection_heading": {"ja": "秘匿処理(サービスが再適用)", "en": "Protection (re-applied by the service)"},
    "protection_method": {"ja": "方法", "en": "Method"},
    "protection_note": {
        "ja": "空欄のセルは公表されません。秘匿パターンは研究者の送ったものではなく、サービスが再計算した表に自ら適用したものです。",
        "en": "Blank cells are not released. The pattern is the one the service applied to its own recomputation, never the researcher's.",
    },
    "protection_deleted": {"ja": "レコードを削除したセル", "en": "Cells whose records were deleted"},
    "protection_intervals": {"ja": "秘匿セルの存在範囲(秘匿インターバル)", "en": "Feasible intervals of the suppressed cells"},
    "col_cell_role": {"ja": "種別", "en": "Role"},
    "col_value": {"ja": "真の値", "en": "True value"},
    "col_interval": {"ja": "存在範囲 [下限, 上限]", "en": "Interval [low, high]"},
    "cell_primary": {"ja": "一次秘匿", "en": "primary"},
    "cell_secondary": {"ja": "二次秘匿", "en": "secondary"},
    "interval_protected": {"ja": "保護されている", "en": "protected"},
    "interval_too_narrow": {"ja": "範囲が狭すぎる", "en": "too narrow"},
    "interval_recomputable": {"ja": "値を復元できる", "en": "recomputable"},
    "interval_undecided": {"ja": "判定できず(要確認)", "en": "undecided (look at it)"},
    "suppressed_cells": {"ja": "秘匿セル {n} 個", "en": "{n} suppressed cells"},
    "published_unsafe_cells": {"ja": "基準を満たさないまま公表されるセル {n} 個", "en": "{n} unsafe cells published"},
    "protection_note_round": {"ja": "合計は丸めた後のセルの和です", "en": "totals are sums of the rounded cells"},
    "protection_note_delete_records": {
        "ja": "合計には削除したセルのレコードを含みません", "en": "totals exclude the records of the deleted cells",
    },
    "spec_as_submitted": {"ja": "研究者が申請した仕様:", "en": "The spec as the researcher submitted it:"},
    # protection applied by reviewers
    "protect_heading": {"ja": "秘匿処理を適用する", "en": "Apply protection"},
    "protect_note": {
        "ja": "選んだ方法で、サービスが元データから表を再計算し、再判定します。研究者の分析環境から送られた値は使いません。プレビューを確認してから保存してください。",
        "en": "The service recomputes the table from the source data with the protection you choose and checks it again; "
              "nothing the researcher's session sent is used. Look at the preview, then save it.",
    },
    "cannot_protect": {"ja": "秘匿処理を適用できません", "en": "The protection cannot be applied"},
    "protect_method_legend": {"ja": "秘匿の方法", "en": "Protection method"},
    "method_submitted": {"ja": "研究者の申請どおり", "en": "As the researcher submitted it"},
    "method_none": {"ja": "秘匿なし", "en": "No protection"},
    "method_suppress": {"ja": "セル秘匿(一次・二次秘匿)", "en": "Cell suppression (primary and secondary)"},
    "method_round": {"ja": "丸め", "en": "Rounding"},
    "method_delete_records": {"ja": "該当レコードの削除", "en": "Deleting the records of failing cells"},
    "method_redact_round": {"ja": "不合格セルの秘匿と丸め", "en": "Blanking failing cells, then rounding"},
    "round_base": {"ja": "丸めの基数", "en": "Rounding base"},
    "round_base_hint": {
        "ja": "丸めのときだけ使います。1 以上の整数。空欄なら審査基準の値を使います。",
        "en": "Used for rounding only: a whole number of at least 1. Empty: the rule preset's base.",
    },
    "secondary_method": {"ja": "二次秘匿の方法", "en": "Secondary suppression"},
    "secondary_hypercube": {"ja": "ハイパーキューブ法(高速)", "en": "hypercube (fast)"},
    "secondary_optimal": {"ja": "最適化(秘匿セル最少)", "en": "optimal (fewest cells)"},
    "secondary_hierarchical": {"ja": "階層表向けハイパーキューブ法(大規模表)", "en": "hierarchical hypercubes (large tables)"},
    "merge_legend": {"ja": "カテゴリの統合(リコード)", "en": "Merging categories (recoding)"},
    "merge_variable": {"ja": "統合する変数", "en": "Variable whose levels are merged"},
    "merge_none": {"ja": "統合しない", "en": "no merging"},
    "merge_levels": {"ja": "統合するカテゴリ(1 行に 1 つ)", "en": "Levels to merge (one per line)"},
    "merge_levels_hint": {
        "ja": "2 つ以上のカテゴリを 1 つにまとめ、元データから集計し直します。各変数のカテゴリ:",
        "en": "Two or more levels become one, and the table is recomputed from the source data. Levels of each variable:",
    },
    "levels_unknown": {"ja": "(不明)", "en": "(unknown)"},
    "merge_label": {"ja": "統合後のカテゴリ名", "en": "Name of the merged level"},
    "merged_levels": {"ja": "{variable} の {levels} を「{label}」に統合", "en": "{variable}: {levels} merged into “{label}”"},
    "protect_preview": {"ja": "プレビュー(再計算)", "en": "Preview (recompute)"},
    "preview_heading": {"ja": "プレビュー:この秘匿処理で公表される表", "en": "Preview: the table as it would be released with this protection"},
    "save_withdraws_approvals": {
        "ja": "保存すると、この出力への承認は取り消されます。承認は同じ内容に対してそろう必要があります。",
        "en": "Saving withdraws the approvals of this output: all approvals must be of the same content.",
    },
    "protect_save": {"ja": "この秘匿処理を保存する", "en": "Save this protection"},
    "protection_saved": {
        "ja": "秘匿処理を保存しました。公表されるのは再計算した秘匿後の表です。",
        "en": "The protection was saved. The recomputed, protected table is what would be released.",
    },
    "ckm_heading": {"ja": "セルキー法による攪乱", "en": "Perturbed by the cell key method"},
    "ckm_note": {
        "ja": "公表される値は、集計値にセルのレコードで決まる小さな雑音を加えたものです。同じレコードの集合は、どの表でも同じ値になります。"
              "合計欄もそれ自体で攪乱されるため、内訳の和と一致するとは限りません(非加法性)。",
        "en": "The released values are the computed ones plus a small noise chosen by each cell's records: the same "
              "records give the same value in every table. Totals are perturbed as cells of their own, so they need "
              "not equal the sum of the cells they cover (non-additivity).",
    },
    "ckm_changed": {"ja": "変更されたセル", "en": "Cells changed"},
    "ckm_mad": {"ja": "平均絶対偏差", "en": "Mean absolute deviation"},
    "ckm_mrd": {"ja": "平均相対偏差", "en": "Mean relative deviation"},
    "ckm_max": {"ja": "最大絶対偏差", "en": "Largest absolute deviation"},
    "ckm_total_minus_cells": {"ja": "総計 − 内訳セルの和", "en": "Grand total minus the sum of the cells"},
    "applied_heading": {"ja": "審査者が適用した秘匿処理", "en": "Protection applied by reviewers"},
    "applied_note": {
        "ja": "最新のものが公表されます。変更すると、それまでの承認は取り消されます。",
        "en": "The latest one is released. Changing it withdraws the approvals given before.",
    },
    "col_revision": {"ja": "版", "en": "Revision"},
    "col_applied_by": {"ja": "適用した審査者", "en": "Applied by"},
    "col_invalidated": {"ja": "取り消された承認", "en": "Approvals withdrawn"},
    "current": {"ja": "現在", "en": "current"},
    "was": {"ja": "変更前:", "en": "was"},
    "failing_cell": {"ja": "不合格のセル", "en": "failing cell"},
    "review_cell": {"ja": "要審査のセル", "en": "cell needing review"},
    "pager_cells": {"ja": "セルのページ", "en": "Pages of cells"},
    "pager_outputs": {"ja": "出力のページ", "en": "Pages of outputs"},
    "pager_position_cells": {"ja": "全 {total} セル中 {first}–{last}（{page}/{pages} ページ）",
                             "en": "cells {first}–{last} of {total} (page {page} of {pages})"},
    "pager_position_outputs": {"ja": "全 {total} 出力中 {first}–{last}（{page}/{pages} ページ）",
                               "en": "outputs {first}–{last} of {total} (page {page} of {pages})"},
    "pager_previous": {"ja": "前へ", "en": "Previous"},
    "pager_next": {"ja": "次へ", "en": "Next"},
    "legend": {
        "ja": "✗ 印のセルは審査基準を満たしていません。△ 印は判断が必要なセルです。",
        "en": "Cells marked ✗ fail a check; cells marked △ need judgement.",
    },
    "checks": {"ja": "チェック結果", "en": "Checks"},
    "col_rule": {"ja": "規則", "en": "Rule"},
    "col_result": {"ja": "結果", "en": "Result"},
    "col_message": {"ja": "内容", "en": "Detail"},
    "col_parameters": {"ja": "パラメータ", "en": "Parameters"},
    "col_cells": {"ja": "該当セル数", "en": "Cells flagged"},
    "query": {"ja": "集計クエリ(SQL)", "en": "Query (SQL)"},
    "error": {"ja": "再計算できませんでした", "en": "Could not be recomputed"},
    "shadow": {"ja": "影統計(審査者のみ・公表されません)", "en": "Shadow statistics (reviewers only; never released)"},
    "claimed": {"ja": "セッションが申告した値", "en": "Claimed by the session"},
    "claimed_note": {
        "ja": "分析環境から送られた値です。判定には使いません。",
        "en": "Sent by the analysis session; never used for the verdict.",
    },
    "mismatch": {"ja": "再計算と一致しない申告値", "en": "Claimed figures that differ from the recomputation"},
    "no_mismatch": {"ja": "申告値は再計算と一致しています。", "en": "The claimed figures match the recomputation."},
    "col_what": {"ja": "項目", "en": "Item"},
    "col_claimed": {"ja": "申告値", "en": "Claimed"},
    "col_recomputed": {"ja": "再計算値", "en": "Recomputed"},
    "file": {"ja": "ファイル", "en": "File"},
    "explanation": {"ja": "研究者の説明", "en": "Researcher's explanation"},
    "code": {"ja": "ファイルを作成したコード", "en": "Code that made the file"},
    "votes": {"ja": "投票", "en": "Votes"},
    "no_votes": {"ja": "まだ投票はありません。", "en": "No votes yet."},
    "error_conflict": {"ja": "受け付けられません", "en": "Refused"},
    "votes_count": {"ja": "投票 {n} 件", "en": "{n} vote(s)"},
    "withheld_mark": {"ja": "(非表示)", "en": "(not shown)"},
    "withheld_no_session": {
        "ja": "未公表の内容(集計結果・レコード・プレビュー・エラーの詳細・コメント)は、このプロジェクトのセッション中に"
              "その施設の端末からだけ表示されます。ここでは状態だけを表示しています。公表された出力は公表パッケージで受け取れます。",
        "en": "Unreleased content (cells, records, previews, error details, comments) is shown only inside a session "
              "of this project, at the terminal it runs on. Here only the status is shown; released outputs are "
              "collected as the release package.",
    },
    "withheld_grant_revoked": {
        "ja": "この出力が読むデータセットの利用許可が現在ないため、内容は表示されません。",
        "en": "The project holds no grant today for a dataset this output reads, so its content is not shown.",
    },
    "withheld_hub_unavailable": {
        "ja": "セッション中かどうかを確認できないため、未公表の内容は表示されません。しばらくしてから再度お試しください。",
        "en": "Whether you are in a session could not be checked, so unreleased content is not shown. Try again in a moment.",
    },
    "votes_hidden": {
        "ja": "他の審査者の投票 {n} 件は、あなたが投票するまで表示されません(独立審査)。",
        "en": "{n} vote(s) by other reviewers are hidden until you vote (independent review).",
    },
    "col_reviewer": {"ja": "審査者", "en": "Reviewer"},
    "col_comment": {"ja": "コメント", "en": "Comment"},
    "col_override": {"ja": "例外承認の理由", "en": "Override reason"},
    "col_when": {"ja": "日時", "en": "When"},
    "vote_heading": {"ja": "この出力に投票する", "en": "Vote on this output"},
    "comment": {"ja": "コメント(研究者に表示されます)", "en": "Comment (shown to the researcher)"},
    "comment_hint": {
        "ja": "却下・差し戻し、および要審査の出力の承認にはコメントが必要です。",
        "en": "Required to reject, to return, and to approve an output whose verdict is review.",
    },
    "override_reason": {"ja": "例外承認の理由", "en": "Override reason"},
    "override_hint": {
        "ja": "この出力は自動判定で不合格です。承認するには理由を書いてください。",
        "en": "This output failed its checks: approving it needs a written reason.",
    },
    "submit_vote": {"ja": "投票する", "en": "Cast vote"},
    "vote_recorded": {"ja": "投票を記録しました。", "en": "Your vote was recorded."},
    "cannot_vote": {"ja": "この出力には投票できません", "en": "You cannot vote on this output"},
    "reference_retired_warning": {
        "ja": "この出力のクエリが読む持込みデータ reference.{name} は、{when} に {by} が利用を終了しました(理由: {reason})。"
              "この出力は承認できません(却下はできます)。",
        "en": "The query of this output reads reference data reference.{name}, retired on {when} by {by} (reason: "
              "{reason}). This output can no longer be approved; it can still be rejected.",
    },
    "approve_unavailable_retired": {
        "ja": "承認: できません。この出力は利用終了した持込みデータを読んでいます(上の警告を参照)。",
        "en": "Approve: not possible. This output reads retired reference data (see the warning above).",
    },
    "withdraw": {"ja": "申請を取り下げる", "en": "Withdraw this request"},
    "withdrawn_done": {"ja": "申請を取り下げました。", "en": "The request was withdrawn."},
    "download": {"ja": "公表パッケージをダウンロード(zip)", "en": "Download the release package (zip)"},
    "package_note": {
        "ja": "ダウンロードは記録されます。ファイルは manifest.json の SHA-256 で確認できます。",
        "en": "Downloads are recorded. Check the files against the SHA-256 in manifest.json.",
    },
    "status_SUBMITTED": {"ja": "審査待ち", "en": "submitted"},
    "status_PARTIALLY_REVIEWED": {"ja": "審査中", "en": "partially reviewed"},
    "status_REVIEWED": {"ja": "審査完了", "en": "reviewed"},
    "status_RETURNED": {"ja": "差し戻し", "en": "returned"},
    "status_APPROVED": {"ja": "承認(パッケージ作成中)", "en": "approved (packaging)"},
    "status_REJECTED": {"ja": "却下", "en": "rejected"},
    "status_RELEASED": {"ja": "公表済み", "en": "released"},
    "status_WITHDRAWN": {"ja": "取り下げ", "en": "withdrawn"},
    # refusals from the workflow (WorkflowError.key); other refusals are shown as the service wrote them
    "err_not_reviewer": {
        "ja": "{user} さんは審査者ではありません。審査待ち一覧は審査者だけが見られます。",
        "en": "{user} is not a reviewer: only reviewers see the review queue.",
    },
    "err_own_request": {"ja": "自分の申請は審査できません。", "en": "You cannot review your own release request."},
    "err_ingress_own_request": {
        "ja": "自分の持込みデータ申請は審査できません。", "en": "You cannot review your own ingress request.",
    },
    "err_ingress_already_voted": {
        "ja": "持込みデータ {name} にはすでに投票しています。投票は一人一回です。",
        "en": "You have already voted on ingress request {name}: each reviewer votes once.",
    },
    "err_no_release_request": {"ja": "公表申請 {id} はありません。", "en": "There is no release request {id}."},
    "err_no_ingress_request": {"ja": "持込みデータ申請 {id} はありません。", "en": "There is no ingress request {id}."},
    "err_no_output": {"ja": "この申請に出力 {id} はありません。", "en": "This request has no output {id}."},
    "err_invalid_transition": {
        "ja": "この申請は「{status}」から「{new}」には進めません。ページを読み込み直してください。",
        "en": "This request cannot go from {status} to {new}: reload the page.",
    },
    "err_choose_decision": {"ja": "承認・却下・差し戻しのいずれかを選んでください。", "en": "Choose approve, reject or return."},
    "err_choose_ingress_decision": {"ja": "承認か却下を選んでください。", "en": "Choose approve or reject."},
    "err_revision": {
        "ja": "フォームの版番号が整数ではありません。ページを読み込み直してください。",
        "en": "The form's revision must be a whole number: reload the page.",
    },
    "err_protection_action": {
        "ja": "プレビューか保存のどちらかを選んでください。", "en": "Choose preview or save.",
    },
    "err_project_member": {
        "ja": "あなたはプロジェクト {project} のメンバーです。その申請はプロジェクト外の審査者が審査します。",
        "en": "You are a member of project {project}: its requests must be reviewed by someone outside it.",
    },
    "err_no_more_votes": {
        "ja": "この申請は「{status}」のため、これ以上投票できません。",
        "en": "This request is {status}: it takes no more votes.",
    },
    "err_already_decided": {"ja": "出力 {output} はすでに決定済みです。", "en": "Output {output} is already decided."},
    "err_already_voted": {
        "ja": "出力 {output} にはすでに投票しています。投票は一人一回です。",
        "en": "You have already voted on output {output}: each reviewer votes once.",
    },
    "err_only_requester": {"ja": "申請者本人だけができる操作です。", "en": "Only the requester can do this."},
    "err_not_withdrawable": {
        "ja": "この申請は「{status}」のため、取り下げられません。",
        "en": "This request is {status}: it can no longer be withdrawn.",
    },
    "err_nothing_to_collect": {
        "ja": "この申請は「{status}」のため、受け取れる公表パッケージはありません。",
        "en": "This request is {status}: there is no release package to collect.",
    },
    "err_not_protectable_status": {
        "ja": "この申請は「{status}」のため、秘匿処理を変更できません。",
        "en": "This request is {status}: its outputs can no longer be protected.",
    },
    "err_not_a_table": {
        "ja": "出力 {output} は集計表でも個票データでもないため、ここでは秘匿処理できません。",
        "en": "Output {output} is neither a table nor an extract: it cannot be protected here.",
    },
    "err_extract_method": {
        "ja": "個票データの秘匿処理はレコードスワッピングか秘匿なしです({methods})。",
        "en": "An extract is protected by record swapping or none ({methods}).",
    },
    "err_swap_table": {
        "ja": "レコードスワッピングは個票データにだけ適用できます。集計表には使えません。",
        "en": "Record swapping applies to record-level extracts, not tables.",
    },
    "err_swap_hierarchy_missing": {
        "ja": "入れ替えに使う地域の階層の変数を、上位から書いてください。",
        "en": "Name the geographic hierarchy to swap along, highest level first.",
    },
    "err_swap_too_many": {
        "ja": "階層と一致させる変数は合わせて {limit} 個までです。",
        "en": "Name at most {limit} hierarchy and similarity variables.",
    },
    "err_swap_variable_twice": {
        "ja": "{variables} は階層の変数です。一致させる変数には書けません。",
        "en": "{variables}: a hierarchy variable cannot also be a similarity variable.",
    },
    "err_swap_rate": {
        "ja": "スワップ率は 0 より大きく 1 以下の数にしてください(入力値: {value})。",
        "en": "The swap rate must be a number above 0 and at most 1 (you gave: {value}).",
    },
    "err_swap_seed": {
        "ja": "乱数シードは 0 から {limit} までの整数にしてください(入力値: {value})。",
        "en": "The seed must be a whole number from 0 to {limit} (you gave: {value}).",
    },
    "err_swap_variable_unknown": {
        "ja": "{variables} はこの個票データの変数ではありません(変数: {known})。",
        "en": "{variables}: not a variable of this extract (its variables: {known}).",
    },
    "err_protection_method": {"ja": "秘匿の方法を選んでください({methods})。", "en": "Choose a protection method ({methods})."},
    "err_protection_base": {
        "ja": "丸めの基数は 1 から {limit} までの整数にしてください(入力値: {value})。",
        "en": "The rounding base must be a whole number from 1 to {limit} (you gave: {value}).",
    },
    "err_protection_secondary": {
        "ja": "二次秘匿の方法は {methods} のいずれかです。",
        "en": "Secondary suppression must be one of {methods}.",
    },
    "err_merge_variable_missing": {
        "ja": "カテゴリを統合する変数を選んでください。",
        "en": "Choose the variable whose levels are merged.",
    },
    "err_merge_levels_few": {
        "ja": "{variable} の統合するカテゴリを 2 つ以上({limit} まで)、1 行に 1 つずつ書いてください。",
        "en": "Name 2 to {limit} levels of {variable} to merge, one per line.",
    },
    "err_merge_label": {
        "ja": "統合後のカテゴリ名を 1〜{limit} 文字で付けてください(合計の表示名「{total}」は使えません)。",
        "en": "Name the merged level: 1 to {limit} characters, not “{total}” (the margins' label).",
    },
    "err_merge_variable_unknown": {
        "ja": "{variable} はこの表の行・列の変数ではありません(変数: {variables})。",
        "en": "{variable} is not a row or column variable of this table (variables: {variables}).",
    },
    "err_merge_histogram": {
        "ja": "ヒストグラムの階級は統合できません。研究者が階級の境界を選び直してください。",
        "en": "A histogram's bins cannot be merged: the researcher chooses other bin edges.",
    },
    "err_merge_level_unknown": {
        "ja": "{levels} は {variable} のカテゴリではありません(カテゴリ: {known})。",
        "en": "{levels}: not a level of {variable} (its levels: {known}).",
    },
    "err_merge_label_taken": {
        "ja": "「{label}」は {variable} の別のカテゴリ名です。別の名前にしてください。",
        "en": "“{label}” is already another level of {variable}: choose another name.",
    },
    "err_merge_unmatched": {
        "ja": "{variable} のカテゴリ {levels} がデータと一致しませんでした。綴りを確認してください。",
        "en": "Level(s) {levels} of {variable} could not be matched in the data: check their spelling.",
    },
    "err_protection_statistic": {
        "ja": "秘匿処理(秘匿・丸め・削除)は件数と合計の表だけに使えます。この表の統計量は {statistic} です。カテゴリの統合は使えます。",
        "en": "Suppression, rounding and deletion work on counts and sums only; this table's statistic is {statistic}. "
              "Merging categories works.",
    },
    "err_protection_spec": {
        "ja": "この秘匿処理は表の仕様に合いません: {detail}",
        "en": "This protection does not fit the table spec: {detail}",
    },
    "err_round_base_required": {
        "ja": "審査基準 {preset} には丸めの基数がありません。基数を入力してください。",
        "en": "Rule preset {preset} sets no rounding base: give the base.",
    },
    "err_protection_changed": {
        "ja": "出力 {output} の秘匿処理は、その間に別の審査者が変更しました。表を確認し直してください。",
        "en": "Another reviewer changed the protection of output {output} meanwhile: look at it again.",
    },
    "err_protection_failed": {
        "ja": "この秘匿処理では表を再計算できませんでした: {detail}",
        "en": "The table could not be recomputed with this protection: {detail}",
    },
    "err_preview_stale": {
        "ja": "再計算した表がプレビューと異なります(データまたは利用許可が変わりました)。もう一度プレビューしてください。",
        "en": "The recomputed table differs from the preview (the data or grants changed): preview it again.",
    },
    "err_preview_first": {
        "ja": "保存する前にプレビューで確認してください。",
        "en": "Preview the protection before saving it.",
    },
    "err_content_changed": {
        "ja": "このページを開いた後に、出力 {output} の秘匿処理が変更されました。表を確認し直してから投票してください。",
        "en": "A reviewer changed the protection of output {output} after you opened the page: look at the table again before voting.",
    },
    "err_discloses_with_approved": {
        "ja": "出力 {output} を承認すると、確認後に承認・公表された出力との差し引きでレコードが分かります。秘匿処理をするか却下してください: {findings}",
        "en": "Approving output {output} would disclose records together with outputs approved or released since it was checked; protect it or reject it: {findings}",
    },
    "err_override_required": {
        "ja": "この出力は自動判定で不合格です。承認するには例外承認の理由を書いてください。",
        "en": "This output failed its disclosure checks: approving it needs a written override reason.",
    },
    "err_comment_required_review": {
        "ja": "この出力は人による判断が必要です(要審査)。公表して安全な理由をコメントに書いてください。",
        "en": "This output needs human judgement (verdict review): say in a comment why it is safe to release.",
    },
    "err_comment_required": {
        "ja": "「{decision}」には、研究者への理由のコメントが必要です。",
        "en": "Choosing {decision} needs a comment telling the researcher why.",
    },
    "err_invisible_text": {
        "ja": "{where}({position})に見えない文字・制御文字 {char} があります。取り除いてください。",
        "en": "{where}: invisible or control character {char} at {position}: remove it.",
    },
    "err_package_tampered": {
        "ja": "公表パッケージ(申請 {request})は公表後に変更されたため、お渡しできません。{file} の SHA-256 が記録と一致しません"
              "(記録 {expected}、現在 {found})。この拒否は監査ログに記録されました。管理者に連絡してください。",
        "en": "The release package of request {request} was changed after release and is not given out: the SHA-256 of "
              "{file} does not match the record (recorded {expected}, found {found}). This refusal is in the audit "
              "ledger; contact an administrator.",
    },
    "err_comment_too_long": {
        "ja": "コメントは {limit} 文字までです。",
        "en": "Comments are limited to {limit} characters.",
    },
}


# ---------------------------------------------------------------- ingress requests (reference data brought in)
MESSAGES.update({
    "nav_ingress": {"ja": "持込みデータ", "en": "Reference data"},
    "ingress_heading": {"ja": "持込みデータの申請", "en": "Ingress requests (reference data)"},
    "ingress_required_approvals": {"ja": "必要な承認数", "en": "Approvals needed"},
    "ingress_queue_heading": {"ja": "審査待ちの持込みデータ", "en": "Ingress requests waiting for review"},
    "ingress_queue_empty": {"ja": "審査待ちの持込みデータはありません。", "en": "No ingress request is waiting for you."},
    "ingress_waiting": {"ja": "持込みデータの申請 {n} 件が審査を待っています。", "en": "{n} ingress request(s) (reference data) wait for review."},
    "ingress_mine_heading": {"ja": "自分の持込みデータ申請", "en": "My ingress requests"},
    "ingress_mine_empty": {"ja": "持込みデータの申請はまだありません。", "en": "You have no ingress requests yet."},
    "ingress_intro": {
        "ja": "研究者が持ち込む参照データ(公表された分類表、市区町村コード表、物価指数など)です。"
              "承認されると、そのプロジェクトの中だけで reference.<名前> として読み取り専用で使えます。",
        "en": "Reference data researchers bring in (a published classification, a municipality code list, a price "
              "index). Once approved it is readable, read-only, as reference.<name> within that project only.",
    },
    "ingress_request_heading": {"ja": "持込みデータ申請", "en": "Ingress request"},
    "col_name": {"ja": "名前", "en": "Name"},
    "col_file": {"ja": "ファイル", "en": "File"},
    "col_rows": {"ja": "行数", "en": "Rows"},
    "col_type": {"ja": "型", "en": "Type"},
    "col_column": {"ja": "列", "en": "Column"},
    "ingress_description": {"ja": "内容と出典", "en": "What it is and its source"},
    "ingress_query_name": {"ja": "クエリでの名前", "en": "Name in queries"},
    "ingress_sha256": {"ja": "SHA-256(保管された写し)", "en": "SHA-256 (of the stored copy)"},
    "ingress_size": {"ja": "大きさ", "en": "Size"},
    "ingress_bytes": {"ja": "{n} バイト", "en": "{n} bytes"},
    "ingress_format": {"ja": "形式", "en": "Format"},
    "ingress_schema": {"ja": "列と型", "en": "Columns and types"},
    "ingress_preview": {"ja": "先頭 {n} 行", "en": "First {n} rows"},
    "ingress_preview_note": {
        "ja": "サービスが自ら読み取った内容です。承認されるのは、この SHA-256 の写しだけです。",
        "en": "As the service read the file itself. Only the copy with this SHA-256 is approved and ever used.",
    },
    "ingress_decided": {"ja": "決定日時", "en": "Decided"},
    "ingress_vote_heading": {"ja": "承認または却下", "en": "Approve or reject"},
    "ingress_comment_help": {
        "ja": "却下には、研究者への理由(何を直せばよいか)が必要です。",
        "en": "A rejection needs a comment telling the researcher why (what to change).",
    },
    "ingress_vote_recorded": {"ja": "投票を記録しました。", "en": "Your vote is recorded."},
    "ingress_status_SUBMITTED": {"ja": "審査待ち", "en": "waiting for review"},
    "ingress_status_APPROVED": {"ja": "承認済み(利用可能)", "en": "approved (usable)"},
    "ingress_status_REJECTED": {"ja": "却下", "en": "rejected"},
    "err_ingress_no_return": {
        "ja": "持込みデータは承認か却下のどちらかです(直してほしい点は却下のコメントに書いてください)。",
        "en": "An ingress request is approved or rejected (reject it with a comment saying what to change).",
    },
})


# ---------------------------------------------------------------- ingress: withdrawal and retirement
MESSAGES.update({
    "ingress_status_WITHDRAWN": {"ja": "取り下げ", "en": "withdrawn"},
    "ingress_status_RETIRED": {"ja": "利用終了", "en": "retired (no longer usable)"},
    "ingress_withdraw": {"ja": "申請を取り下げる", "en": "Withdraw this request"},
    "ingress_withdrawn_done": {"ja": "申請を取り下げました。", "en": "The request was withdrawn."},
    "ingress_retired": {"ja": "利用終了日時", "en": "Retired"},
    "ingress_retired_reason": {"ja": "利用終了の理由", "en": "Reason for retiring"},
    "ingress_retire_heading": {"ja": "利用を終了する", "en": "Retire this reference data"},
    "ingress_retire_help": {
        "ja": "利用を終了すると、このプロジェクトの新しいクエリ・申請・再計算では使えなくなります。"
              "公開済みの出力はそのままです。理由はプロジェクトの研究者にも表示されます。",
        "en": "Once retired, no new query, release request or recomputation of the project can use it. Outputs "
              "already released stay as they are. The project's researchers see the reason.",
    },
    "ingress_retire_button": {"ja": "利用を終了する", "en": "Retire"},
    "ingress_retired_done": {"ja": "利用を終了しました。", "en": "The reference data is retired."},
    "ingress_in_use_heading": {"ja": "利用中の持込みデータ", "en": "Reference data in use"},
    "ingress_in_use_note": {
        "ja": "承認済みで各プロジェクトが使っている持込みデータです。利用終了はそれぞれのページからできます。",
        "en": "Approved reference data the projects use. Retire one from its page.",
    },
    "err_not_retirable": {
        "ja": "この持込みデータは {status} です。利用終了できるのは承認済みのものだけです。",
        "en": "This reference data is {status}: only approved reference data can be retired.",
    },
    "err_retire_reason_required": {
        "ja": "利用終了の理由を書いてください(プロジェクトの研究者にも表示されます)。",
        "en": "Give the reason for retiring this reference data (the project's researchers see it).",
    },
    "err_reference_retired": {
        "ja": "持込みデータ reference.{name} は利用終了しています(理由: {reason})。これを読む出力は承認も再計算もできません。",
        "en": "Reference data reference.{name} is retired (reason: {reason}): an output reading it can no longer be "
              "approved or recomputed.",
    },
})

# a check's parameters (`parameters` of a stored check result), by name; a name not listed is shown as stored
PARAMETER_NAMES: dict[str, dict[str, str]] = {
    "threshold": {"ja": "しきい値", "en": "threshold"},
    "counted": {"ja": "数える単位", "en": "counted"},
    "n": {"ja": "n(上位の寄与数・件数)", "en": "n"},
    "k": {"ja": "k", "en": "k"},
    "p": {"ja": "p", "en": "p"},
    "contributions": {"ja": "寄与の単位", "en": "contributions"},
    "zeros_disclosive": {"ja": "ゼロを開示リスクとみなす", "en": "zeros are disclosive"},
    "check_missing": {"ja": "欠測を確認する", "en": "check missing values"},
    "statistic": {"ja": "統計量", "en": "statistic"},
    "verdict": {"ja": "該当時の判定", "en": "verdict when found"},
    "released": {"ja": "比較した公表済み出力", "en": "released outputs compared"},
    "compared": {"ja": "比較した出力", "en": "outputs compared"},  # the differencing check's
    "dof_threshold": {"ja": "残差自由度のしきい値", "en": "residual degrees of freedom threshold"},
    "df_resid": {"ja": "残差自由度", "en": "residual degrees of freedom"},
    "model": {"ja": "モデル", "en": "model"},
    "levels": {"ja": "カテゴリ別の件数", "en": "records per level"},
    "classes": {"ja": "クラス別の件数", "en": "records per class"},
    "empty_tail_bins": {"ja": "端の空の階級", "en": "empty tail bins"},
    "lowest_edge": {"ja": "最小の境界", "en": "lowest edge"},
    "highest_edge": {"ja": "最大の境界", "en": "highest edge"},
    "records": {"ja": "該当レコード数", "en": "records"},
    "combinations": {"ja": "該当するキーの組合せ", "en": "key combinations"},
    "weighted_k": {"ja": "重み付き k", "en": "weighted k"},
    "max_risk": {"ja": "最大個別リスク", "en": "highest individual risk"},
    "global_risk": {"ja": "全体リスク", "en": "global risk"},
    "household_risk": {"ja": "世帯リスク", "en": "household risk"},
    "missing": {"ja": "データにないキー変数", "en": "key variables not in the data"},
    "identifiers": {"ja": "識別列", "en": "identifying columns"},  # the tracker check's
}
MESSAGES.update({
    "package_heading": {"ja": "公表パッケージ", "en": "Release package"},
    "package_view_note": {
        "ja": "ダウンロードする zip の内容です。各ファイルは manifest.json の SHA-256 で確認できます。審査者は仮名で記載されます。",
        "en": "What the zip holds. Check each file against its SHA-256 in manifest.json. Reviewers are named by pseudonym.",
    },
    "package_view_note_reviewer": {
        "ja": "エグレス領域に書き出されたパッケージを、manifest.json と照合して表示しています。研究者に渡る manifest では"
              "審査者は仮名(reviewer-1 など)で記載され、氏名は監査ログとこの画面にだけ残ります。",
        "en": "The package as written in the egress store, checked against its manifest.json. The researcher's manifest "
              "names reviewers by pseudonym (reviewer-1, …); names stay in the ledger and on this page.",
    },
    "package_released_at": {"ja": "公表日時", "en": "Released"},
    "package_manifest_sha256": {"ja": "manifest.json の SHA-256", "en": "SHA-256 of manifest.json"},
    "package_signing_key": {"ja": "署名鍵のフィンガープリント(Ed25519)", "en": "Signing key fingerprint (Ed25519)"},
    "package_signing_note": {
        "ja": "審査サービスが manifest.json に署名しています(manifest.sig)。施設の公開鍵があれば、"
              "`onsite release verify` でオフラインでも署名とファイルを確認できます。フィンガープリントが施設の公表する鍵と一致することを確かめてください。",
        "en": "The review service signed manifest.json (manifest.sig). With the facility's public key, "
              "`onsite release verify` checks the signature and the files offline. Check that the fingerprint is one "
              "the facility publishes.",
    },
    "col_bytes": {"ja": "バイト数", "en": "Bytes"},
    "released_heading": {"ja": "最近公表された申請(公表パッケージ)", "en": "Recently released requests (their packages)"},
    "param_yes": {"ja": "はい", "en": "yes"},
    "param_no": {"ja": "いいえ", "en": "no"},
    "no_parameters": {"ja": "なし", "en": "none"},
    "flagged_more": {"ja": "ほか {n} セル", "en": "and {n} more"},
})

translator = make_translator(MESSAGES)


def parameter_items(parameters: Mapping[str, Any] | None, lang: str) -> list[tuple[str, str]]:
    """A check's parameters as (name, value) in `lang`: named from PARAMETER_NAMES, yes/no for flags, lists
    joined, a verdict as the page names it."""
    t = translator(lang)

    def value_text(name: str, value: Any) -> str:
        if isinstance(value, bool):
            return t("param_yes" if value else "param_no")
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, Mapping):
            return ", ".join(f"{key} ({value_text(name, item)})" for key, item in value.items())
        if isinstance(value, (list, tuple)):
            return ", ".join(value_text(name, item) for item in value) or t("no_parameters")
        if name == "verdict" and value in ("pass", "fail", "review"):
            return t(f"verdict_{value}")
        return str(value)

    return [(PARAMETER_NAMES.get(name, {}).get(lang, name), value_text(name, value)) for name, value in (parameters or {}).items()]
