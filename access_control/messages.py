"""Every refusal of an administrative action or input, in Japanese and English, keyed by id.

`access_control.errors.PolicyError(key, **params)` names one of these; the CLI
prints it in the administrator's language, the admin pages in the page's. A
parameter that is a `Label` is itself a key here (a field's or a role's name),
shown in the same language. English is what logs and `str(error)` carry.
"""
from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # -- names of fields and values quoted in the texts below ----------------------------------
    "field_display_name": {"ja": "氏名", "en": "display name"},
    "field_project_title": {"ja": "プロジェクトの名称", "en": "project title"},
    "field_preset": {"ja": "審査基準", "en": "rule preset"},
    "field_title_ja": {"ja": "日本語の名称", "en": "Japanese title"},
    "field_title_en": {"ja": "英語の名称", "en": "English title"},
    "field_dataset_path": {"ja": "データセットのパス", "en": "dataset path"},
    "field_facility_name": {"ja": "施設名", "en": "facility name"},
    "field_note": {"ja": "備考", "en": "note"},
    "field_start_date": {"ja": "開始日", "en": "start date"},
    "field_end_date": {"ja": "終了日", "en": "end date"},
    "field_valid_from": {"ja": "有効開始日", "en": "first valid day"},
    "field_valid_until": {"ja": "有効終了日", "en": "last valid day"},
    "field_grant_end": {"ja": "利用許可の終了日", "en": "grant end"},
    "field_issued": {"ja": "発行日", "en": "issue date"},
    "field_expiry": {"ja": "有効期限", "en": "expiry"},
    "field_closed_day": {"ja": "休室日", "en": "closed day"},
    "field_booking_start": {"ja": "予約の開始", "en": "booking start"},
    "field_booking_end": {"ja": "予約の終了", "en": "booking end"},
    "field_since": {"ja": "開始日時", "en": "since"},
    "field_until": {"ja": "終了日時", "en": "until"},
    "field_purpose": {"ja": "利用目的", "en": "purpose"},
    "field_legal_basis": {"ja": "根拠(承認番号・条項)", "en": "legal basis"},
    "field_email": {"ja": "メールアドレス", "en": "e-mail address"},
    "field_facility_address": {"ja": "施設の所在地", "en": "facility address"},
    "field_terminal_label": {"ja": "端末のラベル", "en": "terminal label"},
    "field_terminal_address": {"ja": "端末アドレス", "en": "terminal address"},
    "range_unspecified": {"ja": "未指定アドレス", "en": "unspecified addresses"},
    "range_link_local": {"ja": "リンクローカルアドレス", "en": "link-local addresses"},
    "range_multicast": {"ja": "マルチキャストアドレス", "en": "multicast addresses"},
    "range_reserved": {"ja": "予約済み・ブロードキャストアドレス", "en": "reserved or broadcast addresses"},
    "range_site_local": {"ja": "廃止されたサイトローカルアドレス", "en": "deprecated site-local addresses"},
    "range_ipv4_mapped": {"ja": "IPv4 射影アドレス", "en": "IPv4-mapped addresses"},
    "role_RESEARCHER": {"ja": "研究者", "en": "researcher"},
    "role_REVIEWER": {"ja": "審査者", "en": "reviewer"},
    "role_ADMINISTRATOR": {"ja": "管理者", "en": "administrator"},
    "role_FACILITY_MANAGER": {"ja": "施設管理者", "en": "facility manager"},
    "field_closure_reason": {"ja": "閉鎖の理由", "en": "closure reason"},
    "always_open": {"ja": "常時開室", "en": "always open"},
    # -- input that cannot be read (access_control.forms, names) --------------------------------
    "username_invalid": {
        "ja": "ユーザー名「{raw}」は使えません。半角英小文字・数字・「.」「_」「-」で1〜32文字、先頭は英字か「_」にしてください"
              "(OS のアカウント名になります)",
        "en": "user name {raw!r} is not allowed: use 1-32 characters a-z, 0-9, '.', '_' or '-', starting with a letter or '_' "
              "(it becomes an OS account name)",
    },
    "username_too_long": {"ja": "ユーザー名が長すぎます({length} 文字)。ユーザー名は32文字以内です",
                          "en": "user name too long ({length} characters): user names have at most 32"},
    "username_compatibility": {"ja": "ユーザー名「{raw}」に全角文字などの互換文字が含まれています。半角英数字で入力してください",
                               "en": "user name {raw!r} contains full-width or other compatibility characters: type it in "
                                     "plain ASCII letters and digits"},
    "empty": {"ja": "{what}が空です", "en": "{what} must not be empty"},
    "too_long": {"ja": "{what}が長すぎます。{limit} 文字以内にしてください", "en": "{what} is too long: at most {limit} characters"},
    "date_invalid": {"ja": "{what}「{text}」は日付ではありません。YYYY-MM-DD で入力してください",
                     "en": "{what} {text!r} is not a date: use YYYY-MM-DD"},
    "date_required": {"ja": "{what}を入力してください(YYYY-MM-DD)", "en": "{what} is required: use YYYY-MM-DD"},
    "time_invalid": {
        "ja": "{what}「{text}」は日時ではありません。YYYY-MM-DD HH:MM(施設のタイムゾーン)で入力するか、+09:00 のように時差を付けてください",
        "en": "{what} {text!r} is not a date-time: use YYYY-MM-DD HH:MM (facility time) or add an offset, +09:00",
    },
    "moment_invalid": {
        "ja": "{what}「{text}」は日付・日時ではありません。YYYY-MM-DD か YYYY-MM-DDTHH:MM+09:00 で入力してください",
        "en": "{what} {text!r} is not a date or date-time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+09:00",
    },
    "dates_reversed": {"ja": "{what} {end} が開始日 {start} より前です。入れ替えるか訂正してください",
                       "en": "{what} {end} is before the start {start}: swap or correct them"},
    "role_unknown": {"ja": "役割「{text}」はありません。{choices} のいずれかにしてください",
                     "en": "unknown role {text!r}: use {choices}"},
    "status_unknown": {"ja": "プロジェクトの状態「{text}」はありません。active(有効)、suspended(停止中)、closed(終了)から選んでください",
                       "en": "unknown project status {text!r}: choose active, suspended or closed"},
    "email_malformed": {"ja": "メールアドレス「{email}」の形式が正しくありません", "en": "malformed e-mail address {email!r}"},
    "project_id_invalid": {
        "ja": "プロジェクト ID「{id}」は使えません。半角英小文字・数字・「-」で1〜32文字にしてください(例: p2026-001)",
        "en": "project id {id!r} is not allowed: use 1-32 characters a-z, 0-9 and '-', e.g. p2026-001",
    },
    "dataset_id_invalid": {
        "ja": "データセット ID「{id}」は使えません。半角英小文字・数字・「_」で、英字で始まる63文字以内にしてください",
        "en": "dataset id {id!r} is not allowed: use a-z, 0-9 and '_', starting with a letter (at most 63)",
    },
    "row_count_invalid": {"ja": "レコード数は 0 以上の整数にしてください({rows!r} ではなく)",
                          "en": "row count must be a whole number ≥ 0, not {rows!r}"},
    "sha256_malformed": {"ja": "元ファイルの SHA-256「{value}」の形式が正しくありません(16進数64桁)",
                         "en": "source SHA-256 {value!r} is malformed: 64 hex digits expected"},
    "accreditation_kind_invalid": {
        "ja": "認定の種類「{kind}」は使えません。半角英小文字・数字・「.」「_」「-」で1〜64文字にしてください(例: onsite-training)",
        "en": "accreditation kind {kind!r} is not allowed: use 1-64 characters a-z, 0-9, '.', '_' and '-', e.g. onsite-training",
    },
    "timezone_unknown": {"ja": "タイムゾーン「{name}」はありません。Asia/Tokyo のような IANA 名にしてください",
                         "en": "unknown time zone {name!r}: use an IANA name such as Asia/Tokyo"},
    "network_malformed": {
        "ja": "端末アドレス「{text}」が正しくありません。IP アドレスか CIDR 形式のネットワークで指定してください({error})",
        "en": "malformed terminal address {text!r}: give an IP address or CIDR network; {error}",
    },
    "network_zone": {
        "ja": "端末アドレス「{text}」にゾーン ID(「%」以降)が付いています。接続元アドレスにはゾーン ID が付かないため一致しません。"
              "ゾーン ID を付けず、端末のグローバルアドレスか ULA(fd00::/8)を指定してください",
        "en": "terminal address {text!r} carries a zone id (after '%'), which a client address never has, so it would match nothing: "
              "give the terminal's global or unique-local (fd00::/8) address without a zone",
    },
    "network_unusable": {
        "ja": "端末アドレス「{text}」には{kind}({range})が含まれます。接続元として端末を特定できないため登録できません。"
              "端末の IPv4 アドレスか、グローバルまたは ULA の IPv6 アドレスを指定してください",
        "en": "terminal address {text!r} includes {kind} ({range}), which cannot identify a terminal as a client: "
              "give the terminal's IPv4 address or its global or unique-local IPv6 address",
    },
    "network_mapped": {
        "ja": "端末アドレス「{text}」は IPv4 射影アドレスです。接続元は IPv4 として判定されるので {suggestion} を指定してください",
        "en": "terminal address {text!r} is IPv4-mapped; clients are matched as IPv4, so give {suggestion}",
    },
    "network_everything": {
        "ja": "端末アドレス「{text}」はすべてのアドレスを含みます。施設の端末のアドレスかネットワークだけを指定してください",
        "en": "terminal address {text!r} covers every address: give only the addresses of the facility's terminals",
    },
    "network_host_bits": {
        "ja": "端末アドレス「{text}」はホスト部が 0 ではありません。{suggestion} のことですか?",
        "en": "malformed terminal address {text!r}: give an IP address or CIDR network (did you mean {suggestion}?); {error}",
    },
    "time_of_day_invalid": {"ja": "「{text}」は時刻ではありません。00:00〜24:00 の HH:MM で入力してください",
                            "en": "{text!r} is not a time of day: use HH:MM from 00:00 to 24:00"},
    "hours_not_understood": {
        "ja": "開室時間「{entry}」を読み取れません。例: mon-fri 09:00-17:30(曜日は mon, tue, wed, thu, fri, sat, sun)",
        "en": "opening hours {entry!r} not understood: write e.g. 'mon-fri 09:00-17:30' (days mon, tue, wed, thu, fri, sat, sun)",
    },
    "hours_backwards": {"ja": "開室時間「{entry}」: 曜日の範囲が逆です(fri-mon ではなく mon-fri)",
                        "en": "opening hours {entry!r}: the day range runs backwards (write mon-fri, not fri-mon)"},
    "hours_closing_first": {
        "ja": "開室時間「{entry}」: 閉室時刻は開室時刻より後にしてください(日付をまたぐ時間帯は指定できません)",
        "en": "opening hours {entry!r}: closing time must be after opening time (intervals cannot pass midnight)",
    },
    "hours_overlap": {"ja": "{day} の開室時間が重なっています: {first} と {second}",
                      "en": "opening hours overlap on {day}: {first} and {second}"},
    "preset_unknown": {
        "ja": "審査基準「{text}」はありません。{choices} のいずれかにしてください(審査サービスが読めない基準では出力を作れません)",
        "en": "unknown rule preset {text!r}: choose one of {choices} (with a preset the review service cannot load, no output could be built)",
    },
    "project_past": {
        "ja": "{what} {end} はすでに過ぎています(今日は {today})。プロジェクトの期間は今日以降に終わるようにしてください",
        "en": "{what} {end} is already past (today is {today}): a project must end today or later",
    },
    "project_end_past": {
        "ja": "{what} {end} はすでに過ぎています(今日は {today})。今すぐ終えるには状態を「終了」(closed)にしてください",
        "en": "{what} {end} is already past (today is {today}): to end the project now, set its status to closed",
    },
    "grant_past": {
        "ja": "{what} {end} はすでに過ぎています(今日は {today})。利用許可は今日以降に終わるようにしてください",
        "en": "{what} {end} is already past (today is {today}): a grant must end today or later",
    },
    "grant_outside_project": {
        "ja": "利用許可の期間 {start}〜{end} がプロジェクト「{project}」の期間 {project_start}〜{project_end} からはみ出しています。"
              "プロジェクトの期間内にしてください(空欄ならプロジェクトの期間)",
        "en": "the grant's dates {start} to {end} fall outside project {project!r} ({project_start} to {project_end}): "
              "keep them within the project's dates (leave them empty for the project's own)",
    },
    "reason_length": {"ja": "理由は1〜{limit}文字にしてください。何も変更していません",
                      "en": "--reason must be 1 to {limit} characters; nothing changed"},
    # -- passwords (access_control.identity) ---------------------------------------------------
    "password_too_short": {"ja": "パスワードが短すぎます。{limit} 文字以上にしてください",
                           "en": "password too short: use at least {limit} characters"},
    "password_too_long": {"ja": "パスワードが長すぎます。{limit} 文字以内にしてください",
                          "en": "password too long: use at most {limit} characters"},
    "password_has_username": {"ja": "パスワードにユーザー名を含めないでください", "en": "password must not contain the user name"},
    "password_too_simple": {"ja": "パスワードが単純すぎます。4種類以上の文字を使ってください",
                            "en": "password too simple: use at least 4 different characters"},
    "password_stdin_empty": {"ja": "--password-stdin: 標準入力にパスワードがありません",
                             "en": "--password-stdin: no password on standard input"},
    "passwords_differ": {"ja": "2回入力したパスワードが異なります。何も変更していません",
                         "en": "the two passwords differ: nothing changed"},
    # -- what is not there ----------------------------------------------------------------------
    "unknown_person": {"ja": "利用者「{name}」は登録されていません。先に登録してください", "en": "unknown person {name!r}: add them first"},
    "unknown_project": {"ja": "プロジェクト「{id}」はありません。プロジェクトの一覧を確認してください", "en": "unknown project {id!r}: see the list of projects"},
    "unknown_dataset": {"ja": "データセット「{id}」はありません。先に取り込んでください", "en": "unknown dataset {id!r}: ingest it first"},
    "unknown_facility": {"ja": "施設「{name}」はありません。施設の一覧を確認してください", "en": "unknown facility {name!r}: see the list of facilities"},
    "unknown_grant": {"ja": "利用許可 {id} はありません。一覧で番号を確認してください", "en": "unknown grant {id}: see the list of grants"},
    "unknown_accreditation": {"ja": "認定 {id} はありません。一覧で番号を確認してください", "en": "unknown accreditation {id}: see the list of accreditations"},
    "unknown_booking": {"ja": "予約 {id} はありません。一覧で番号を確認してください", "en": "unknown booking {id}: see the list of bookings"},
    "unknown_terminal": {"ja": "端末 {network} は登録されていません。端末の一覧を確認してください", "en": "no terminal {network} is registered: see the list of terminals"},
    # -- changes the stored state does not allow ------------------------------------------------
    "person_exists": {"ja": "利用者「{name}」はすでに登録されています", "en": "person {name!r} already exists"},
    "already_disabled": {"ja": "利用者「{name}」はすでに無効化されています", "en": "person {name!r} is already disabled"},
    "already_enabled": {"ja": "利用者「{name}」はすでに有効です", "en": "person {name!r} is already enabled"},
    "not_locked": {"ja": "利用者「{name}」はロックされていません", "en": "person {name!r} is not locked"},
    "role_held": {"ja": "利用者「{name}」はすでに{role}の役割を持っています", "en": "person {name!r} already has role {role}"},
    "role_not_held": {"ja": "利用者「{name}」は{role}の役割を持っていません", "en": "person {name!r} does not have role {role}"},
    "project_exists": {"ja": "プロジェクト「{id}」はすでにあります。変更はプロジェクトの変更でしてください",
                       "en": "project {id!r} already exists: change it instead"},
    "project_unchanged": {"ja": "プロジェクト「{id}」に変更がありません。新しい値を1つ以上指定してください",
                          "en": "nothing to change for project {id!r}: give at least one new value"},
    "member_exists": {"ja": "「{name}」はすでにプロジェクト「{id}」のメンバーです", "en": "{name!r} is already a member of project {id!r}"},
    "member_missing": {"ja": "「{name}」はプロジェクト「{id}」のメンバーではありません", "en": "{name!r} is not a member of project {id!r}"},
    "dataset_exists": {"ja": "データセット「{id}」はすでに登録されています。別の ID にするか、取り込み直して置き換えてください",
                       "en": "dataset {id!r} is already registered: choose another id or re-ingest to replace it"},
    "grant_overlaps": {
        "ja": "データセット「{dataset}」は期間の重なる利用許可 {grant} でプロジェクト「{project}」にすでに許可されています。"
              "その利用許可を取り消すか、別の期間にしてください",
        "en": "dataset {dataset!r} is already granted to project {project!r} for overlapping dates (grant {grant}): "
              "revoke that grant first or choose other dates",
    },
    "grant_revoked": {"ja": "利用許可 {id} は {when} に取り消し済みです", "en": "grant {id} was already revoked at {when}"},
    # -- facility managers, seats, holidays, emergency closures (issue 16) ---------------------
    "not_admin": {"ja": "「{name}」は管理者でも施設管理者でもないため、管理の操作はできません",
                  "en": "{name!r} is neither an administrator nor a facility manager: no administrative action is allowed"},
    "administrators_only": {"ja": "この操作は管理者だけが行えます。施設管理者は担当施設の端末・開室時間・休室日・座席・予約・入室記録・セッションだけを扱えます",
                            "en": "only administrators may do this: a facility manager handles only their facilities' terminals, "
                                  "hours, closed days, seats, bookings, entry log and sessions"},
    "manager_needs_facility": {"ja": "施設管理者の役割は施設ごとに付与します。施設を指定してください(「{name}」に担当施設を付与)",
                               "en": "the facility manager role is granted per facility: name the facility {name!r} is to manage"},
    "no_session_here": {"ja": "{name} のセッションは担当施設では実行されていません", "en": "{name} has no session running at your facilities"},
    "manager_exists": {"ja": "「{name}」はすでに施設「{facility}」の施設管理者です", "en": "{name!r} already manages facility {facility!r}"},
    "manager_missing": {"ja": "「{name}」は施設「{facility}」の施設管理者ではありません", "en": "{name!r} does not manage facility {facility!r}"},
    "seats_invalid": {"ja": "座席数「{text}」は使えません。0〜{limit} の整数を入力してください(制限しない場合は「-」)",
                      "en": "seats {text!r} not understood: give a whole number from 0 to {limit} ('-' for not limited)"},
    "booking_no_seat": {
        "ja": "施設「{name}」の座席({seats} 席)は {start}〜{end} の間に満席になる時間があります。別の時間帯を予約してください",
        "en": "facility {name!r} has no seat free for all of {start} to {end} (it has {seats}): choose another slot",
    },
    "booking_clash_elsewhere": {"ja": "「{name}」にはこの時間帯に別の施設の予約があります。本人またはその施設に確認してください",
                                "en": "{name!r} already has a booking at another facility for an overlapping time: ask them or that facility"},
    "terminal_taken": {"ja": "端末 {network} は他の施設の端末と重なるため登録できません。管理者に確認してください",
                       "en": "terminal {network} overlaps a terminal of another facility: ask an administrator"},
    "network_broad": {
        "ja": "端末アドレス「{text}」({network})は /24(IPv6 は /56)より広いネットワークです。端末ごとのアドレスを登録するか、"
              "意図したものであれば広域ネットワークの登録(オーバーライド)を明示してください(記録されます)",
        "en": "terminal address {text!r} ({network}) is broader than a /24 (IPv6: /56): register each terminal's address, or, "
              "if this is meant, ask for the broad-network override explicitly (it is recorded)",
    },
    "year_invalid": {"ja": "「{text}」は年ではありません。例: 2027", "en": "{text!r} is not a year: write e.g. 2027"},
    "holiday_year": {"ja": "{year} 年の祝日は登録できません。{first}〜{last} 年を指定してください",
                     "en": "no public holidays for {year}: give a year from {first} to {last}"},
    "holidays_closed_already": {"ja": "施設「{name}」は {year} 年の祝日をすべて休室日にしています",
                                "en": "facility {name!r} is already closed on every public holiday of {year}"},
    "closed_for_emergency_already": {"ja": "施設「{name}」はすでに緊急閉鎖中です(理由: {reason})",
                                     "en": "facility {name!r} is already closed for an emergency ({reason})"},
    "emergency_closed_hub_unavailable": {
        "ja": "施設「{name}」を緊急閉鎖しましたが、ハブに接続できないためセッションを終了できませんでした({error})。セッションは次回の入室確認で停止します",
        "en": "facility {name!r} is closed for an emergency, but no session was ended: the hub did not answer ({error}); "
              "they stop at their next entry re-check",
    },
    "not_closed_for_emergency": {"ja": "施設「{name}」は緊急閉鎖されていません", "en": "facility {name!r} is not closed for an emergency"},
    "facility_exists": {"ja": "施設「{name}」はすでに登録されています", "en": "facility {name!r} already exists"},
    "facility_unchanged": {
        "ja": "施設「{name}」に変更がありません。所在地、タイムゾーン、予約の要否、必要な認定、座席数のいずれかに新しい値を指定してください",
        "en": "nothing to change for facility {name!r}: give a new address, time zone, booking rule, accreditation kind or number of seats",
    },
    "terminal_exists": {"ja": "端末 {network} はすでに施設「{facility}」に登録されています",
                        "en": "terminal {network} is already registered at facility {facility!r}"},
    "terminal_overlaps": {"ja": "端末 {network} は施設「{facility}」の {other} と重なっています",
                          "en": "terminal {network} overlaps {other} of facility {facility!r}"},
    "hours_unchanged": {"ja": "施設「{name}」の開室時間はすでにこのとおりです({hours})",
                        "en": "facility {name!r} already has these opening hours ({hours})"},
    "closed_already": {"ja": "施設「{name}」は {day} をすでに休室日にしています", "en": "facility {name!r} is already closed on {day}"},
    "not_closed": {"ja": "施設「{name}」は {day} を休室日にしていません", "en": "facility {name!r} is not closed on {day}"},
    "accreditation_duplicate": {"ja": "「{name}」はこの {kind} の認定をすでに持っています(番号 {id})",
                                "en": "{name!r} already holds this {kind} accreditation (number {id})"},
    "accreditation_revoked": {"ja": "認定 {id} は {when} に取り消し済みです", "en": "accreditation {id} was already revoked at {when}"},
    "booking_reversed": {"ja": "予約の終了 {end} が開始 {start} より後ではありません。入れ替えるか訂正してください",
                         "en": "booking end {end} is not after its start {start}: swap or correct them"},
    "booking_past": {"ja": "予約の終了 {end} はすでに過ぎています。これからの時間帯を予約してください",
                     "en": "booking end {end} is already past: book a slot in the future"},
    "booking_too_long": {"ja": "1件の予約は24時間までです。日ごとに予約してください",
                         "en": "a booking may last at most 24 hours: book each day separately"},
    "booking_outside_hours": {
        "ja": "その時間帯は施設「{name}」の開室時間外({hours}、タイムゾーン {zone})か休室日です。施設の設定を確認してください",
        "en": "the slot is outside the opening hours of {name!r} ({hours}, time zone {zone}) or on a closed day: "
              "see the facility's settings",
    },
    "booking_clash": {
        "ja": "「{name}」には施設「{facility}」の予約 {id}({start}〜{end})があり、時間が重なっています。先に取り消すか別の時間帯にしてください",
        "en": "{name!r} already has booking {id} at {facility!r} from {start} to {end}, which overlaps: "
              "cancel it first or choose another slot",
    },
    "booking_cancelled": {"ja": "予約 {id} は {when} に取り消し済みです", "en": "booking {id} was already cancelled at {when}"},
    # -- bulk import ----------------------------------------------------------------------------
    "import_empty_column": {"ja": "列 {columns} が空です", "en": "column {columns} is empty"},
    "import_line": {"ja": "{line} 行目: {error}。何も取り込んでいません", "en": "line {line}: {error}; nothing was imported"},
    "csv_unreadable": {"ja": "{path} を読めません: {error}", "en": "cannot read {path}: {error}"},
    "csv_header": {
        "ja": "{path}: 見出し行の列名は {columns} から選んでください(username と display_name は必須)。見つかった列: {found}",
        "en": "{path}: the header must name columns from {columns} (username and display_name required); found {found}",
    },
    # -- the transaction, the directory and the hub ---------------------------------------------
    "conflict": {"ja": "保存されているデータと衝突しました({error})。何も変更していません。現在の状態を確認してやり直してください",
                 "en": "the change conflicts with the stored data ({error}); nothing changed: look at the current state and retry"},
    "ldap_settings_invalid": {"ja": "LDAP の設定が正しくありません: {error}。何も変更していません",
                              "en": "the LDAP settings are invalid: {error}; nothing changed"},
    "ldap_refused": {"ja": "LDAP ディレクトリが変更を受け付けませんでした: {error}。何も変更していません",
                     "en": "the LDAP directory did not take the change: {error}; nothing changed"},
    # the LDAP directory (access_control.ldap): what happened and which settings to check
    "ldap_tls_failed": {
        "ja": "{uris} との TLS 接続に失敗しました: {error}(ca_file と tls を確認してください: ディレクトリの証明書に署名した CA と、"
              "URI のホスト名)",
        "en": "TLS with {uris} failed: {error} (check ca_file and tls (the CA that signed the directory's certificate, and the "
              "host name in the URI))",
    },
    "ldap_timeout": {"ja": "{uris} が時間内に応答しませんでした: {error}(connect_timeout/receive_timeout とディレクトリの負荷を確認してください)",
                     "en": "{uris} did not answer in time: {error} (check connect_timeout/receive_timeout and the directory's load)"},
    "ldap_unreachable": {
        "ja": "{uris} に接続できません: {error}(server_uris を確認してください: ディレクトリは起動していて、このホストから接続できますか?)",
        "en": "cannot reach {uris}: {error} (check server_uris (is the directory running and reachable from this host?))",
    },
    "ldap_service_bind_refused": {"ja": "サービスアカウントのバインドが拒否されました(service_dn と service_password を確認してください)",
                                  "en": "the service account's bind was refused (check service_dn and service_password)"},
    "ldap_group_create_refused": {
        "ja": "ディレクトリがグループ {dn} の作成を拒否しました: {description}(サービスアカウントの groups_base への書き込み権限を確認してください)",
        "en": "the directory refused to create group {dn}: {description} (check the service account's write access to groups_base)",
    },
    "ldap_group_members_refused": {
        "ja": "ディレクトリがグループ {dn} のメンバー変更を拒否しました: {description}"
              "(サービスアカウントの groups_base への書き込み権限を確認してください)",
        "en": "the directory refused to change members of {dn}: {description} (check the service account's write access to "
              "groups_base)",
    },
    "ldap_no_person": {"ja": "{base} の下に利用者「{name}」がいません", "en": "no person {name!r} under {base}"},
    "ldap_no_group": {"ja": "{base} の下にグループ「{cn}」がありません。ensure_group で作成してください",
                      "en": "no group {cn!r} under {base}: create it with ensure_group"},
    "ldap_not_onsite_group": {"ja": "グループ「{cn}」は Onsite のグループではありません({roles}<役割> か {projects}<ID>)",
                              "en": "group {cn!r} is not an Onsite group ({roles}<role> or {projects}<id>)"},
    "hub_not_running": {"ja": "{path} がありません。ハブは起動していますか? `make up` か `onsite hub` で起動してください",
                        "en": "{path} does not exist: is the hub running? start it with `make up` or `onsite hub`"},
    "hub_refused": {"ja": "ハブの API が応答しませんでした({error})。ハブは起動していますか? `make up` か `onsite hub` で起動してください",
                    "en": "the hub API did not answer ({error}): is the hub running? start it with `make up` or `onsite hub`"},
    "store_missing": {
        "ja": "Onsite のストアが見つかりません: {store}(ONSITE_HOME={home})。別のフォルダーで実行していませんか? "
              "既存のストアを使うには ONSITE_HOME か ONSITE_DB_URL(または設定ファイル {config})で指定してください。"
              "新しく作るには `onsite init`(デモなら `onsite up`)を実行してください。何も作成していません",
        "en": "no Onsite store at {store} (ONSITE_HOME={home}): are you in another folder? Point at the existing store with "
              "ONSITE_HOME or ONSITE_DB_URL (or the config file {config}), or create one with `onsite init` (`onsite up` for the demo); "
              "nothing was created",
    },
    "store_unreachable": {
        "ja": "Onsite のストア {store} に接続できません({error})。データベースサーバーが起動していて、このホストから"
              "接続できるか、URL のホスト・ポート・データベース名・利用者・パスワード(ONSITE_DB_URL または設定ファイル)を"
              "確認してください。何も変更していません",
        "en": "cannot connect to the Onsite store {store} ({error}): check that the database server is running and "
              "reachable from this host, and the URL's host, port, database, user and password (ONSITE_DB_URL or the "
              "config file); nothing was changed",
    },
    "store_unreadable": {
        "ja": "Onsite のストア {store} を読めません({error})。Onsite のデータベースではないか、壊れているか、ディスクに"
              "障害があります。ONSITE_DB_URL(または設定ファイル)が正しいストアを指しているか確認し、壊れている場合は"
              "バックアップから戻してください。何も変更していません",
        "en": "cannot read the Onsite store {store} ({error}): it is not an Onsite database, it is damaged, or its disk "
              "is failing. Check that ONSITE_DB_URL (or the config file) names the right store, and restore a damaged "
              "one from its backup; nothing was changed",
    },
    # -- the ledger's tree, keys and proofs (access_control.ledger) ----------------------------
    "ledger_key_unsafe": {
        "ja": "署名鍵 {path}(鍵ファイルまたはそのフォルダー)は他のアカウントが読み書きできるか、このアカウントのものではありません"
              "(所有者 uid {uid}、モード {mode})。所有者をこのアカウントにし、ファイルは chmod 600、フォルダーは chmod 700 "
              "にしてください。使用しません",
        "en": "the signing key {path} (the key file or its folder) can be read or changed by other accounts, or is not this "
              "account's (owner uid {uid}, mode {mode}): make this account its owner, chmod 600 the file and 700 the "
              "folder; not used",
    },
    "ledger_key_unreadable": {
        "ja": "鍵ファイル {path} を読めません({error})",
        "en": "cannot read the key file {path} ({error})",
    },
    "ledger_no_head": {
        "ja": "署名付きツリーヘッドがまだありません。`onsite audit head` で作成してください",
        "en": "there is no signed tree head yet: make one with `onsite audit head`",
    },
    "ledger_no_event": {"ja": "監査イベント {seq} はありません", "en": "there is no audit event {seq}"},
    "ledger_event_after_head": {
        "ja": "監査イベント {seq} は最新の署名付きヘッド({size} 件)より後です。`onsite audit head` の後にもう一度実行してください",
        "en": "audit event {seq} is newer than the newest signed head ({size} events): run `onsite audit head`, then again",
    },
    "ledger_no_head_of_size": {
        "ja": "{size} 件の署名付きヘッドはありません(`onsite audit heads` で一覧できます)",
        "en": "there is no signed head of {size} events (`onsite audit heads` lists them)",
    },
    "ledger_sizes_backwards": {
        "ja": "整合性の証明は古いヘッドから新しいヘッドへ: {old} は 1 以上 {new} 以下にしてください",
        "en": "a consistency proof goes from an older head to a newer one: {old} must be at least 1 and at most {new}",
    },
    "ledger_witness_state_unreadable": {
        "ja": "ウィットネスの状態ファイル {path} を読めません({error})。何も署名していません",
        "en": "cannot read the witness state file {path} ({error}); nothing was co-signed",
    },
    "ledger_cosignature_invalid": {
        "ja": "ウィットネス {witness} の連署の署名が検証できません。保存しません",
        "en": "the cosignature of witness {witness} does not verify; not stored",
    },
    "ledger_cosignature_unknown_head": {
        "ja": "ウィットネス {witness} の連署は、このログが署名していない {size} 件のヘッドに対するものです。保存しません",
        "en": "the cosignature of witness {witness} is of a head of {size} events this log did not sign; not stored",
    },
    "ledger_cosignature_other_key": {
        "ja": "ウィットネス {witness} は以前と別の鍵で連署しています。保存しません(鍵を替えたなら別の名前で)",
        "en": "witness {witness} co-signed with another key than before; not stored (a new key goes with a new name)",
    },
    "ledger_cosignature_unreadable": {
        "ja": "連署を読めません({error})",
        "en": "the cosignature cannot be read ({error})",
    },
    "ledger_witness_name": {
        "ja": "ウィットネスの名前「{name}」は使えません。1〜{limit} 文字の、改行や制御文字を含まない名前にしてください",
        "en": "the witness name {name!r} cannot be used: give 1 to {limit} characters without line breaks or control "
              "characters",
    },
    "ledger_witness_unknown": {
        "ja": "ウィットネス {name} には有効な資格情報がありません(`onsite audit witness-list` で確認してください)",
        "en": "witness {name} holds no credential (see `onsite audit witness-list`)",
    },
    "ledger_unwritable": {
        "ja": "監査台帳に記録できないため、この操作を拒否しました({error})。何も変更していません。"
              "ディスクの空き容量とデータベースの状態を確認してください",
        "en": "refused: the audit ledger cannot record this action ({error}); nothing was changed. "
              "Check the disk space and the database",
    },
    # -- what an action did (both faces answer with these) --------------------------------------
    "done_person_added": {"ja": "利用者 {name} を登録しました", "en": "added person {name}"},
    "done_people_imported": {"ja": "{people} 人を登録し、既存の利用者に役割を {roles} 件、メンバーシップを {memberships} 件追加しました({rows} 行)",
                             "en": "added {people} people, {roles} roles to existing people, {memberships} memberships ({rows} rows)"},
    "done_people_checked": {"ja": "確認のみ: {people} 人の登録、既存の利用者への役割 {roles} 件、メンバーシップ {memberships} 件を追加することになります"
                                  "({rows} 行)。何も変更していません",
                            "en": "would add {people} people, {roles} roles to existing people, {memberships} memberships ({rows} rows); "
                                  "nothing changed"},
    "done_people_need_password": {"ja": "新しい利用者にはまだパスワードがありません。`onsite admin person passwd USERNAME` で設定してください",
                                  "en": "new people have no password yet: set one with `onsite admin person passwd USERNAME`"},
    "done_person_disabled": {"ja": "利用者 {name} を無効化しました(以後の入室を拒否します)", "en": "disabled {name} (entry refused from now on)"},
    "done_person_enabled": {"ja": "利用者 {name} を有効にしました", "en": "enabled {name}"},
    "done_password_set": {"ja": "利用者 {name} のパスワードを設定しました", "en": "password set for {name}"},
    "done_person_unlocked": {"ja": "利用者 {name} のロックを解除しました", "en": "unlocked {name}"},
    "done_role_granted": {"ja": "利用者 {name} に{role}の役割を付与しました", "en": "granted role {role} to {name}"},
    "done_role_revoked": {"ja": "利用者 {name} の{role}の役割を取り消しました", "en": "revoked role {role} from {name}"},
    "done_project_added": {"ja": "プロジェクト {id}({start}〜{end})を登録しました", "en": "added project {id} ({start} to {end})"},
    "done_project_changed": {"ja": "プロジェクト {id} を変更しました", "en": "changed project {id}"},
    "done_member_added": {"ja": "{name} をプロジェクト {id} のメンバーに追加しました", "en": "added {name} to project {id}"},
    "done_member_removed": {"ja": "{name} をプロジェクト {id} のメンバーから外しました", "en": "removed {name} from project {id}"},
    "done_grant_added": {"ja": "利用許可 {grant}: データセット {dataset} をプロジェクト {project} に {start}〜{end} の期間許可しました",
                         "en": "grant {grant}: {dataset} to project {project} from {start} until {end}"},
    "done_grant_revoked": {"ja": "利用許可 {grant}(データセット {dataset}、プロジェクト {project})を取り消しました",
                           "en": "revoked grant {grant} ({dataset} to project {project})"},
    "done_facility_added": {"ja": "施設 {name}(タイムゾーン {zone})を登録しました", "en": "added facility {name} ({zone})"},
    "done_facility_changed": {"ja": "施設 {name} を変更しました", "en": "changed facility {name}"},
    "done_hours_set": {"ja": "施設 {name} の開室時間を設定しました: {hours}(タイムゾーン {zone})",
                       "en": "opening hours of {name} ({zone}): {hours}"},
    "done_day_closed": {"ja": "施設 {name} の {day} を休室日にしました", "en": "{name} is closed on {day}"},
    "done_day_reopened": {"ja": "施設 {name} の {day} の休室日を取り消しました", "en": "{name} is no longer closed on {day}"},
    "done_manager_granted": {"ja": "{name} を施設 {facility} の施設管理者にしました", "en": "{name} now manages {facility}"},
    "done_manager_revoked": {"ja": "{name} を施設 {facility} の施設管理者から外しました", "en": "{name} no longer manages {facility}"},
    "done_holidays_closed": {"ja": "施設 {name} の {year} 年の祝日 {count} 日を休室日にしました",
                             "en": "{name} is closed on {count} public holidays of {year}"},
    "done_emergency_closed": {"ja": "施設 {name} を緊急閉鎖しました(理由: {reason})。終了したセッション: {ended}",
                              "en": "{name} is closed for an emergency ({reason}); sessions ended: {ended}"},
    "done_emergency_reopened": {"ja": "施設 {name} の緊急閉鎖を解除しました", "en": "{name} is open again after the emergency closure"},
    "done_terminal_added": {"ja": "端末 {network} を施設 {facility} に登録しました", "en": "added terminal {network} at {facility}"},
    "done_terminal_removed": {"ja": "端末 {network} の登録を削除しました", "en": "removed terminal {network}"},
    "done_accreditation_added": {"ja": "認定 {id}: {name} の {kind}({start}〜{end})を登録しました",
                                 "en": "accreditation {id}: {kind} for {name} from {start} through {end}"},
    "done_accreditation_revoked": {"ja": "認定 {id}({name} の {kind})を取り消しました", "en": "revoked accreditation {id} ({kind} of {name})"},
    "done_booking_added": {"ja": "予約 {id}: {name} の施設 {facility} の席を {start}〜{end} で予約しました",
                           "en": "booking {id}: {name} at {facility} from {start} until {end}"},
    "done_booking_cancelled": {"ja": "予約 {id}({name}、施設 {facility})を取り消しました",
                               "en": "cancelled booking {id} ({name} at {facility})"},
    "done_store_created": {"ja": "ストアを作成しました: {store}(ONSITE_HOME={home})", "en": "created the store {store} (ONSITE_HOME={home})"},
    "done_store_current": {"ja": "ストア {store} は最新のスキーマです(ONSITE_HOME={home})",
                           "en": "the store {store} is at the newest schema (ONSITE_HOME={home})"},
    "done_session_ended": {"ja": "{name} のセッションの終了をハブに要求しました", "en": "asked the hub to end the session of {name}"},
}

SEE: dict[str, tuple[str, str]] = {
    "unknown_person": ("people", "onsite admin person list"),
    "unknown_project": ("projects", "onsite admin project list"),
    "unknown_dataset": ("datasets", "onsite admin dataset ingest"),
    "unknown_facility": ("facilities", "onsite admin facility list"),
    "unknown_grant": ("datasets", "onsite admin grant list"),
    "unknown_accreditation": ("accreditations", "onsite admin accreditation list"),
    "unknown_booking": ("bookings", "onsite admin booking list"),
    "unknown_terminal": ("terminals", "onsite admin terminal list"),
    "person_exists": ("people/{name}", "onsite admin person show {name}"),
    "project_exists": ("projects/{id}", "onsite admin project change {id}"),
    "grant_overlaps": ("datasets", "onsite admin grant list --project {project}"),
    "grant_outside_project": ("projects/{project}", "onsite admin project show {project}"),
    "booking_outside_hours": ("facilities", "onsite admin facility show {name}"),
    "booking_clash": ("bookings", "onsite admin booking list --person {name}"),
    "terminal_overlaps": ("terminals", "onsite admin terminal list"),
    "terminal_exists": ("terminals", "onsite admin terminal list"),
    "booking_no_seat": ("bookings", "onsite admin booking seats {name}"),
}
"""Where to look for what a refusal names: (the admin page, under the service; the command). The admin
pages link the page after the text, `onsite admin` names the command; the texts themselves name neither."""
