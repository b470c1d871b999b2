"""Every string of the admin pages in Japanese and English (Japanese first).

Language negotiation (?lang=, the `lang` cookie, Accept-Language, else
Japanese) and the strings both services show alike (page frame, HTTP errors)
are the reviewer app's, imported as is.
"""
from __future__ import annotations

from collections.abc import Callable

from disclosure_review.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate
from disclosure_review.web.i18n import MESSAGES as REVIEW_MESSAGES

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "MESSAGES", "negotiate", "translator"]

SHARED_KEYS = ("skip", "signed_in_as", "language", "error_heading", "error_forbidden", "error_not_found",
               "error_bad_request", "error_xsrf", "error_server", "back")

MESSAGES: dict[str, dict[str, str]] = {
    **{key: REVIEW_MESSAGES[key] for key in SHARED_KEYS},
    "app_title": {"ja": "Onsite 管理", "en": "Onsite administration"},
    "nav_people": {"ja": "利用者", "en": "People"},
    "nav_projects": {"ja": "プロジェクト", "en": "Projects"},
    "nav_datasets": {"ja": "データセットと利用許可", "en": "Datasets and grants"},
    "nav_facilities": {"ja": "施設", "en": "Facilities"},
    "nav_terminals": {"ja": "端末", "en": "Terminals"},
    "nav_entries": {"ja": "入室記録", "en": "Entry log"},
    "nav_sessions": {"ja": "利用中のセッション", "en": "Live sessions"},
    "none": {"ja": "ありません。", "en": "None."},
    "input_problem": {"ja": "入力に問題があります。何も変更していません。", "en": "There is a problem with the input; nothing was changed."},
    "required": {"ja": "必須", "en": "required"},
    "optional": {"ja": "任意", "en": "optional"},
    "date_hint": {"ja": "例: 2026-04-01", "en": "e.g. 2026-04-01"},
    "yes": {"ja": "はい", "en": "yes"},
    "no": {"ja": "いいえ", "en": "no"},
    # people
    "people_heading": {"ja": "利用者", "en": "People"},
    "col_username": {"ja": "ユーザー名", "en": "User name"},
    "col_display_name": {"ja": "氏名", "en": "Display name"},
    "col_email": {"ja": "メールアドレス", "en": "E-mail"},
    "col_roles": {"ja": "役割", "en": "Roles"},
    "col_state": {"ja": "状態", "en": "State"},
    "col_projects": {"ja": "プロジェクト", "en": "Projects"},
    "state_ok": {"ja": "有効", "en": "ok"},
    "state_disabled": {"ja": "無効化", "en": "disabled"},
    "state_locked": {"ja": "ロック中", "en": "locked"},
    "role_RESEARCHER": {"ja": "研究者", "en": "researcher"},
    "role_REVIEWER": {"ja": "審査者", "en": "reviewer"},
    "role_ADMINISTRATOR": {"ja": "管理者", "en": "administrator"},
    "person_add": {"ja": "利用者を登録する", "en": "Register a person"},
    "username_hint": {
        "ja": "半角英小文字・数字・「.」「_」「-」で1〜32文字(OS のアカウント名になります)",
        "en": "1-32 of a-z 0-9 . _ -, starting with a letter or _ (it becomes an OS account name)",
    },
    "password": {"ja": "初期パスワード", "en": "Initial password"},
    "password_hint": {
        "ja": "10文字以上。空欄ならパスワードなし(設定するまでログインできません)。",
        "en": "At least 10 characters. Leave empty for none (the person cannot log in until one is set).",
    },
    "add": {"ja": "登録する", "en": "Add"},
    "person_heading": {"ja": "利用者 {name}", "en": "Person {name}"},
    "failed_logins": {"ja": "連続ログイン失敗回数", "en": "Failed logins in a row"},
    "locked_until": {"ja": "ロック期限", "en": "Locked until"},
    "has_password": {"ja": "パスワード設定済み", "en": "Password set"},
    "created_at": {"ja": "登録日時", "en": "Registered"},
    "account": {"ja": "アカウント", "en": "Account"},
    "disable": {"ja": "無効化する(以後の入室を拒否)", "en": "Disable (refuse entry from now on)"},
    "enable": {"ja": "有効にする", "en": "Enable"},
    "unlock": {"ja": "ロックを解除する", "en": "Unlock"},
    "new_password": {"ja": "新しいパスワード", "en": "New password"},
    "new_password_hint": {
        "ja": "10文字以上、4種類以上の文字、ユーザー名を含まないこと。失敗回数もリセットされます。",
        "en": "At least 10 characters, 4 different ones, not containing the user name. Also resets the failed logins.",
    },
    "set_password": {"ja": "パスワードを設定する", "en": "Set password"},
    "roles_heading": {"ja": "役割", "en": "Roles"},
    "role": {"ja": "役割", "en": "Role"},
    "grant_role": {"ja": "役割を付与する", "en": "Grant role"},
    "revoke_role": {"ja": "役割を取り消す", "en": "Revoke role"},
    # projects
    "projects_heading": {"ja": "プロジェクト", "en": "Projects"},
    "col_project_id": {"ja": "プロジェクト ID", "en": "Project id"},
    "col_title": {"ja": "名称", "en": "Title"},
    "col_status": {"ja": "状態", "en": "Status"},
    "col_start": {"ja": "開始日", "en": "Start"},
    "col_end": {"ja": "終了日(この日まで有効)", "en": "End (last valid day)"},
    "col_purpose": {"ja": "利用目的", "en": "Purpose"},
    "col_legal_basis": {"ja": "根拠(承認番号・条項)", "en": "Legal basis"},
    "col_preset": {"ja": "審査基準", "en": "Rule preset"},
    "status_ACTIVE": {"ja": "有効", "en": "active"},
    "status_SUSPENDED": {"ja": "停止中", "en": "suspended"},
    "status_CLOSED": {"ja": "終了", "en": "closed"},
    "project_id_hint": {"ja": "例: p2026-001(a-z、0-9、「-」)", "en": "e.g. p2026-001 (a-z, 0-9, '-')"},
    "project_add": {"ja": "プロジェクトを登録する", "en": "Register a project"},
    "project_heading": {"ja": "プロジェクト {id}", "en": "Project {id}"},
    "project_change": {"ja": "プロジェクトを変更する", "en": "Change the project"},
    "save": {"ja": "変更する", "en": "Save changes"},
    "members_heading": {"ja": "メンバー", "en": "Members"},
    "member_add": {"ja": "メンバーを追加する", "en": "Add a member"},
    "remove": {"ja": "外す", "en": "Remove"},
    # datasets and grants
    "datasets_heading": {"ja": "データセット", "en": "Datasets"},
    "col_dataset": {"ja": "データセット", "en": "Dataset"},
    "col_rows": {"ja": "レコード数", "en": "Rows"},
    "col_ingested": {"ja": "取り込み日時", "en": "Ingested"},
    "datasets_note": {
        "ja": "データセットの取り込みは `onsite admin dataset ingest` で行います。",
        "en": "Datasets are ingested with `onsite admin dataset ingest`.",
    },
    "grants_heading": {"ja": "利用許可(プロジェクトへのデータセット提供)", "en": "Grants (datasets granted to projects)"},
    "col_grant": {"ja": "番号", "en": "No."},
    "col_valid_from": {"ja": "有効開始日", "en": "Valid from"},
    "col_valid_until": {"ja": "有効終了日(この日まで)", "en": "Valid until (inclusive)"},
    "col_revoked": {"ja": "取り消し", "en": "Revoked"},
    "col_created_by": {"ja": "登録者", "en": "Granted by"},
    "grant_add": {"ja": "データセットの利用を許可する", "en": "Grant a dataset to a project"},
    "grant_dates_hint": {"ja": "空欄ならプロジェクトの期間", "en": "Empty: the project's dates"},
    "revoke": {"ja": "取り消す", "en": "Revoke"},
    "valid": {"ja": "有効", "en": "valid"},
    # facilities and terminals
    "facilities_heading": {"ja": "施設", "en": "Facilities"},
    "col_name": {"ja": "名称", "en": "Name"},
    "col_address": {"ja": "所在地", "en": "Address"},
    "col_timezone": {"ja": "タイムゾーン", "en": "Time zone"},
    "col_terminals": {"ja": "端末数", "en": "Terminals"},
    "timezone_hint": {
        "ja": "プロジェクトの日付をこのタイムゾーンで判定します(IANA 名、例: Asia/Tokyo)",
        "en": "Project dates are read in this zone (IANA name, e.g. Asia/Tokyo)",
    },
    "facility_add": {"ja": "施設を登録する", "en": "Register a facility"},
    "facility_change": {"ja": "施設を変更する", "en": "Change a facility"},
    "facility": {"ja": "施設", "en": "Facility"},
    "terminals_heading": {"ja": "端末", "en": "Terminals"},
    "col_terminal_address": {"ja": "IP アドレスまたはネットワーク", "en": "IP address or network"},
    "col_label": {"ja": "ラベル(席番号など)", "en": "Label (e.g. seat)"},
    "terminal_add": {"ja": "端末を登録する", "en": "Register a terminal"},
    "terminal_hint": {
        "ja": "IPv4/IPv6 アドレスまたは CIDR(例: 192.0.2.10、2001:db8::/64)。登録した端末からだけログインできます。",
        "en": "IPv4/IPv6 address or CIDR (e.g. 192.0.2.10, 2001:db8::/64). Only registered terminals may log in.",
    },
    "facility_none": {"ja": "先に施設を登録してください。", "en": "Register a facility first."},
    # entry log
    "entries_heading": {"ja": "入室記録(入室判定)", "en": "Entry log (entry decisions)"},
    "filter": {"ja": "絞り込み", "en": "Filter"},
    "apply_filter": {"ja": "絞り込む", "en": "Apply"},
    "clear_filter": {"ja": "条件を消す", "en": "Clear"},
    "person": {"ja": "利用者", "en": "Person"},
    "outcome": {"ja": "結果", "en": "Outcome"},
    "any": {"ja": "すべて", "en": "any"},
    "outcome_OK": {"ja": "許可", "en": "allowed"},
    "outcome_DENIED": {"ja": "拒否", "en": "denied"},
    "outcome_FAILED": {"ja": "失敗", "en": "failed"},
    "since": {"ja": "開始日", "en": "From"},
    "until": {"ja": "終了日(この日を含む)", "en": "To (inclusive)"},
    "client_address": {"ja": "接続元アドレス", "en": "Client address"},
    "dates_tokyo": {"ja": "日付は日本時間(Asia/Tokyo)です。", "en": "Dates are in Japan time (Asia/Tokyo)."},
    "col_when": {"ja": "日時", "en": "When"},
    "col_stage": {"ja": "段階", "en": "Stage"},
    "col_reasons": {"ja": "理由", "en": "Reasons"},
    "col_active_projects": {"ja": "有効なプロジェクト", "en": "Active projects"},
    "stage_login": {"ja": "ログイン", "en": "login"},
    "stage_spawn": {"ja": "サーバー起動", "en": "server start"},
    "stage_recheck": {"ja": "定期確認", "en": "periodic re-check"},
    "entries_count": {"ja": "{first}〜{last} 件目", "en": "events {first} to {last}"},
    "previous": {"ja": "前へ", "en": "Previous"},
    "next": {"ja": "次へ", "en": "Next"},
    "bad_filter_date": {"ja": "{value!r} は日付ではありません。YYYY-MM-DD で入力してください。", "en": "{value!r} is not a date: use YYYY-MM-DD."},
    "bad_filter_range": {"ja": "終了日が開始日より前です。", "en": "The end date is before the start date."},
    # sessions
    "sessions_heading": {"ja": "利用中のセッション", "en": "Who is in a session now"},
    "col_user": {"ja": "利用者", "en": "Person"},
    "col_since": {"ja": "開始", "en": "Since"},
    "col_last_activity": {"ja": "最終操作", "en": "Last activity"},
    "col_server": {"ja": "サーバー", "en": "Server"},
    "server_ready": {"ja": "稼働中", "en": "running"},
    "server_pending": {"ja": "処理中({what})", "en": "pending ({what})"},
    "end_session": {"ja": "セッションを終了する", "en": "End session"},
    "end_session_note": {
        "ja": "終了すると利用者のサーバーとカーネルが停止します。保存されていない作業は失われます。",
        "en": "Ending a session stops the person's server and kernels; unsaved work is lost.",
    },
    "sessions_empty": {"ja": "利用中のセッションはありません。", "en": "Nobody is in a session now."},
    "hub_unavailable": {
        "ja": "JupyterHub の API が応答しないか、要求を拒否しました: {detail}",
        "en": "The JupyterHub API did not answer or refused the request: {detail}",
    },
    # done messages (after a successful form)
    "done_person_added": {"ja": "利用者を登録しました。", "en": "The person was registered."},
    "done_person_changed": {"ja": "利用者を変更しました。", "en": "The person was changed."},
    "done_project_added": {"ja": "プロジェクトを登録しました。", "en": "The project was registered."},
    "done_project_changed": {"ja": "プロジェクトを変更しました。", "en": "The project was changed."},
    "done_grant_added": {"ja": "利用許可を登録しました。", "en": "The grant was added."},
    "done_grant_revoked": {"ja": "利用許可を取り消しました。", "en": "The grant was revoked."},
    "done_facility_added": {"ja": "施設を登録しました。", "en": "The facility was registered."},
    "done_facility_changed": {"ja": "施設を変更しました。", "en": "The facility was changed."},
    "done_terminal_added": {"ja": "端末を登録しました。", "en": "The terminal was registered."},
    "done_terminal_removed": {"ja": "端末の登録を削除しました。", "en": "The terminal was removed."},
    "done_session_ended": {"ja": "セッションの終了を要求しました。", "en": "The session was asked to end."},
    # errors
    "error_not_admin": {
        "ja": "管理画面は管理者だけが使えます。この試みは記録されました。",
        "en": "Only administrators may use these pages. This attempt was recorded.",
    },
}


def translator(language: str) -> Callable[..., str]:
    """`t(key, **values)` for one language; an unknown key raises KeyError."""

    def t(key: str, **values: object) -> str:
        text = MESSAGES[key][language]
        return text.format(**values) if values else text

    return t
