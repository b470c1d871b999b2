"""The one reading of admin input (access_control.forms), the refusal catalogue, the CLI's language
and the lock-out state: what both admin faces rely on to agree. Pure: no database."""
from __future__ import annotations

import string
from datetime import date, datetime, timedelta, timezone

import pytest

from access_control import forms
from access_control.accounts import AccountState, account_state
from access_control.errors import InputInvalid, Label, PolicyError, RecordNotFound, error_text
from access_control.messages import MESSAGES
from access_control.models import Person
from onsite.commands.admin import cli_language
from onsite_base.errors import UserError

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_refusal_has_japanese_and_english_with_the_same_placeholders():
    assert [k for k, v in MESSAGES.items() if set(v) != {"ja", "en"} or not all(v.values())] == []
    assert [k for k, v in MESSAGES.items() if placeholders(v["ja"]) - placeholders(v["en"])] == []
    with pytest.raises(KeyError):
        PolicyError("no_such_message")


def test_a_refusal_speaks_each_language_with_its_labels_and_nested_refusals():
    inner = InputInvalid("dates_reversed", what=Label("field_grant_end"), end="2026-01-01", start="2026-06-01")
    outer = InputInvalid("import_line", line=3, error=inner)
    assert str(outer) == "line 3: grant end 2026-01-01 is before the start 2026-06-01: swap or correct them; nothing was imported"
    assert outer.text("ja") == "3 行目: 利用許可の終了日 2026-01-01 が開始日 2026-06-01 より前です。入れ替えるか訂正してください。何も取り込んでいません"
    assert isinstance(outer, UserError) and error_text(outer, "ja") == outer.text("ja")
    assert error_text(UserError("as written"), "ja") == "as written"


@pytest.mark.parametrize("typed, expected", [(None, None), ("", None), ("  ", None), ("-", ""), ("－", ""), (" new ", "new")])
def test_a_changed_field_is_left_cleared_or_set(typed, expected):
    assert forms.parse_change(typed) == expected


def test_dates_times_and_numbers_read_full_width_input_and_refuse_with_the_field_named():
    assert forms.parse_date("２０２６-０４-０１", "field_start_date") == date(2026, 4, 1)
    assert forms.parse_date("", "field_start_date") is None
    with pytest.raises(InputInvalid) as missing:
        forms.parse_date(" ", "field_expiry", required=True)
    assert (str(missing.value), missing.value.text("ja")) == ("expiry is required: use YYYY-MM-DD", "有効期限を入力してください(YYYY-MM-DD)")
    with pytest.raises(InputInvalid) as bad:
        forms.parse_date("1 April", "field_start_date")
    assert "開始日「1 April」は日付ではありません" in bad.value.text("ja") and "start date '1 April' is not a date" in str(bad.value)
    assert forms.parse_time("2026-12-01 09:00", "field_booking_start").tzinfo is None  # facility time, decided by policy
    assert forms.parse_time("2026-12-01T09:00+00:00", "field_booking_start").utcoffset() == timedelta(0)
    assert forms.parse_moment("2026-12-01", "field_since", "Asia/Tokyo").utcoffset() == timedelta(hours=9)
    assert forms.parse_row_number("１２", "grant") == 12
    for typed in ("99999999999", "-1", "x"):
        with pytest.raises(RecordNotFound, match="unknown grant"):
            forms.parse_row_number(typed, "grant")


def test_opening_hours_always_and_empty_mean_always_open():
    assert forms.parse_opening_hours("always") == forms.parse_opening_hours("") == []
    assert forms.format_hours(forms.parse_opening_hours("MON-tue 09:00-12:00")) == "mon 09:00-12:00, tue 09:00-12:00"


@pytest.mark.parametrize("environ, language", [
    ({}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({"LANG": "ja_JP.UTF-8"}, "ja"), ({"LANG": "ja_JP.UTF-8", "LC_ALL": "C"}, "en"),
    ({"LANG": "C", "LC_MESSAGES": "ja_JP.UTF-8"}, "ja"), ({"LC_ALL": "", "LANG": "ja"}, "ja"), ({"ONSITE_LANGUAGE": "ja"}, "en"),
])
def test_the_cli_speaks_the_locale_language(environ, language):
    assert cli_language(environ) == language


@pytest.mark.parametrize("disabled, locked_until, state", [
    (False, None, AccountState.OK),
    (False, NOW - timedelta(seconds=1), AccountState.OK),  # the lock-out has run out
    (False, NOW, AccountState.OK),  # it ends at that moment
    (False, NOW + timedelta(minutes=1), AccountState.LOCKED),
    (True, NOW + timedelta(minutes=1), AccountState.DISABLED),
])
def test_account_state(disabled, locked_until, state):
    assert account_state(Person(username="x", display_name="X", disabled=disabled, locked_until=locked_until), NOW) is state


@pytest.mark.parametrize("typed, key", [
    ("fe80::1%eth0", "network_zone"),
    ("fe80::1", "network_unusable"),
    ("fe80::/64", "network_unusable"),
    ("169.254.10.1", "network_unusable"),
    ("224.0.0.1", "network_unusable"),
    ("ff02::1", "network_unusable"),
    ("0.0.0.0", "network_unusable"),
    ("::", "network_unusable"),
    ("255.255.255.255", "network_unusable"),
    ("fec0::1", "network_unusable"),
    ("::ffff:192.0.2.1", "network_mapped"),
    ("0.0.0.0/0", "network_everything"),
    ("::/0", "network_everything"),
    ("192.0.0.0/2", "network_unusable"),  # a network that reaches into multicast space
])
def test_a_terminal_address_no_client_can_have_is_refused_naming_what_to_give(typed, key):
    with pytest.raises(InputInvalid) as refused:
        forms.parse_network(typed)
    assert refused.value.key == key
    assert typed in str(refused.value) and "terminal address" in str(refused.value)
    assert f"端末アドレス「{typed}」" in refused.value.text("ja")


def test_terminal_addresses_clients_can_have_are_kept_and_a_stored_odd_one_can_still_be_named():
    assert [str(forms.parse_network(t)) for t in ("127.0.0.1", "::1", "192.0.2.0/28", "2001:db8::/64", "fd12::5", "10.0.0.0/8")] == [
        "127.0.0.1/32", "::1/128", "192.0.2.0/28", "2001:db8::/64", "fd12::5/128", "10.0.0.0/8"]
    assert str(forms.parse_network("fe80::1%eth0", registering=False)) == "fe80::1%eth0/128"


def test_a_rule_preset_is_one_the_review_service_knows():
    from disclosure_review.sdc.rules import preset_names

    assert forms.parse_preset(" acro-default ", preset_names()) == "acro-default"
    with pytest.raises(InputInvalid) as refused:
        forms.parse_preset("strict", preset_names())
    assert "unknown rule preset 'strict'" in str(refused.value) and "jp-onsite" in str(refused.value)
    assert "審査基準「strict」はありません" in refused.value.text("ja")


def test_free_text_fields_have_limits_naming_the_field():
    assert forms.text_field("  x  ", "field_purpose", 5) == "x"
    with pytest.raises(InputInvalid) as long:
        forms.text_field("x" * 6, "field_terminal_label", 5)
    assert str(long.value) == "terminal label is too long: at most 5 characters"
    assert long.value.text("ja") == "端末のラベルが長すぎます。5 文字以内にしてください"
    with pytest.raises(InputInvalid, match="must not be empty"):
        forms.text_field(" ", "field_display_name", 5, required=True)


def test_a_refusal_points_to_the_page_and_the_command_but_its_text_names_neither():
    from access_control.errors import Done, cli_text

    exists = InputInvalid("person_exists", name="hanako")
    assert "onsite" not in str(exists) and "onsite" not in exists.text("ja")
    assert exists.page() == "people/hanako" and exists.command() == "onsite admin person show hanako"
    assert cli_text(exists, "ja") == "利用者「hanako」はすでに登録されています (`onsite admin person show hanako`)"
    assert InputInvalid("person_exists", name="a/b?").page() == "people/a%2Fb%3F"  # a path segment, whatever was typed
    assert InputInvalid("empty", what=Label("field_note")).page() == ""
    assert Done("done_member_added", name="hanako", id="p1").text("ja") == "hanako をプロジェクト p1 のメンバーに追加しました"
    assert Done("done_role_granted", name="hanako", role=Label("role_REVIEWER")).text("en") == "granted role reviewer to hanako"
