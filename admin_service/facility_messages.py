"""The strings of the facility pages that facility managers use (admin_service.facility_pages), Japanese first;
merged into admin_service.i18n.MESSAGES."""
from __future__ import annotations

FACILITY_MESSAGES: dict[str, dict[str, str]] = {
    "role_FACILITY_MANAGER": {"ja": "施設管理者", "en": "facility manager"},
    "error_admin_only": {
        "ja": "このページは管理者だけが使えます。施設管理者は担当施設のページ(施設・端末・予約・入室記録・セッション)を使ってください。この試みは記録されました。",
        "en": "Only administrators may use this page; facility managers use their facilities' pages (facilities, terminals, "
              "bookings, entry log, sessions). This attempt was recorded.",
    },
    "managing": {"ja": "担当施設: {names}", "en": "Your facilities: {names}"},
    "col_seats": {"ja": "座席数", "en": "Seats"},
    "seats_unlimited": {"ja": "制限なし", "en": "not limited"},
    "seats_hint": {"ja": "0〜10000。空欄: 変更しない、- : 制限しない", "en": "0-10000; empty: leave as it is; - : not limited"},
    "col_managers": {"ja": "施設管理者", "en": "Managers"},
    "col_state_now": {"ja": "状態", "en": "State"},
    "state_open": {"ja": "通常", "en": "normal"},
    "state_emergency": {"ja": "緊急閉鎖中({when}〜): {reason}", "en": "closed for an emergency since {when}: {reason}"},
    "facility_holidays": {"ja": "祝日を休室日にする", "en": "Close on public holidays"},
    "holidays_year": {"ja": "年", "en": "Year"},
    "holidays_hint": {
        "ja": "その年の国民の祝日(振替休日を含む)をすべて休室日にし、祝日名を備考に記録します。",
        "en": "Closes the facility on every Japanese public holiday of the year (substitute holidays included), noted "
              "with the holiday's Japanese name.",
    },
    "close_holidays": {"ja": "祝日を休室日にする", "en": "Close on the holidays"},
    "facility_emergency": {"ja": "緊急閉鎖", "en": "Emergency closure"},
    "emergency_note": {
        "ja": "閉鎖すると、再開するまで誰も入室できず、施設の端末で利用中のセッションはすべて終了します(保存されていない作業は失われます)。理由は記録され、終了したセッションに伝えられます。",
        "en": "Closing stops anyone from entering until it is reopened, and ends every session running at the "
              "facility's terminals (unsaved work is lost). The reason is recorded and given to the sessions ended.",
    },
    "emergency_reason": {"ja": "理由", "en": "Reason"},
    "emergency_close": {"ja": "今すぐ閉鎖する", "en": "Close now"},
    "emergency_reopen": {"ja": "閉鎖を解除する", "en": "Reopen"},
    "emergency_hub_unavailable": {
        "ja": "施設は閉鎖しましたが、JupyterHub の API が応答しないためセッションを終了できませんでした({detail})。セッションは次回の入室確認で停止します。",
        "en": "The facility is closed, but the JupyterHub API did not answer, so no session was ended ({detail}); "
              "they stop at their next entry re-check.",
    },
    "col_override": {"ja": "広域", "en": "Broad"},
    "override_flag": {"ja": "広域ネットワーク(オーバーライド)", "en": "broad network (override)"},
    "override_label": {"ja": "/24(IPv6 は /56)より広いネットワークを登録する", "en": "Register a network broader than /24 (IPv6: /56)"},
    "override_hint": {
        "ja": "多数の機器が入室できるようになります。意図した場合だけ選び、登録は記録されます。",
        "en": "It lets many machines in: choose it only when this is meant; it is recorded.",
    },
    "seats_heading": {"ja": "空席(日ごと)", "en": "Free seats per day"},
    "seats_note": {
        "ja": "予約数: その日に同時に予約されている最大数。空席: そのときの残りの席数。",
        "en": "Booked: the most bookings at one moment of the day. Free: the seats left then.",
    },
    "col_booked": {"ja": "予約数", "en": "Booked"},
    "col_free": {"ja": "空席", "en": "Free"},
    "day_closed": {"ja": "休室", "en": "closed"},
    "booking_username_hint": {"ja": "予約する利用者のユーザー名", "en": "The user name of the person to book"},
}
