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
