"""Every string of the reviewer app in Japanese and English (Japanese first).

The language comes from `?lang=` (remembered in the `lang` cookie), else the
cookie, else Accept-Language, else Japanese.
"""
from __future__ import annotations

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"

MESSAGES: dict[str, dict[str, str]] = {
    "app_title": {"ja": "Onsite 出力審査", "en": "Onsite disclosure review"},
    "skip": {"ja": "本文へ移動", "en": "Skip to content"},
    "nav_queue": {"ja": "審査待ち一覧", "en": "Review queue"},
    "nav_mine": {"ja": "自分の申請", "en": "My requests"},
    "signed_in_as": {"ja": "ログイン中", "en": "Signed in as"},
    "language": {"ja": "言語", "en": "Language"},
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
    "failing_cell": {"ja": "不合格のセル", "en": "failing cell"},
    "review_cell": {"ja": "要審査のセル", "en": "cell needing review"},
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
    "error_heading": {"ja": "エラー", "en": "Error"},
    "error_forbidden": {"ja": "この操作は許可されていません", "en": "This is not allowed"},
    "error_not_found": {"ja": "見つかりません", "en": "Not found"},
    "error_bad_request": {"ja": "入力に問題があります", "en": "There is a problem with the input"},
    "error_xsrf": {
        "ja": "フォームの確認トークンがありません。ページを再読み込みしてやり直してください。",
        "en": "The form's check token is missing or wrong. Reload the page and try again.",
    },
    "error_server": {"ja": "サーバーエラーが発生しました", "en": "The server hit an error"},
    "back": {"ja": "戻る", "en": "Back"},
    # refusals from the workflow (WorkflowError.key); other refusals are shown as the service wrote them
    "err_not_reviewer": {
        "ja": "{user} さんは審査者ではありません。審査待ち一覧は審査者だけが見られます。",
        "en": "{user} is not a reviewer: only reviewers see the review queue.",
    },
    "err_own_request": {"ja": "自分の申請は審査できません。", "en": "You cannot review your own release request."},
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
    "err_override_required": {
        "ja": "この出力は自動判定で不合格です。承認するには例外承認の理由を書いてください。",
        "en": "This output failed its disclosure checks: approving it needs a written override reason.",
    },
    "err_comment_required_review": {
        "ja": "この出力は人による判断が必要です(要審査)。公表して安全な理由をコメントに書いてください。",
        "en": "This output needs human judgement (verdict review): say in a comment why it is safe to release.",
    },
    "err_comment_required": {
        "ja": "却下・差し戻しには、研究者への理由のコメントが必要です。",
        "en": "Rejecting or returning needs a comment telling the researcher why.",
    },
    "err_comment_too_long": {
        "ja": "コメントは {limit} 文字までです。",
        "en": "Comments are limited to {limit} characters.",
    },
}


def translator(language: str):
    """`t(key, **values)` for one language; an unknown key raises KeyError (caught by the test)."""

    def t(key: str, **values: object) -> str:
        text = MESSAGES[key][language]
        return text.format(**values) if values else text

    return t


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    ranked = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE
