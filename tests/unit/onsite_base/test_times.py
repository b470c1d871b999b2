"""One rule for times (#19): shown in the facility's zone with the zone, typed in the same zone."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from access_control import forms
from access_control.errors import InputInvalid
from onsite_base import times
from onsite_base.config import SettingInvalid
from onsite_base.settings import Settings
from review_service.app import make_app

MOMENT = datetime(2026, 12, 7, 5, 3, 9, tzinfo=timezone.utc)


def test_a_time_is_shown_in_the_zone_with_the_zone():
    assert times.shown(MOMENT) == "2026-12-07 14:03 JST"  # Asia/Tokyo by default
    assert times.shown(MOMENT, seconds=True) == "2026-12-07 14:03:09 JST"
    assert times.shown(MOMENT, "Europe/London") == "2026-12-07 05:03 GMT"
    assert times.shown(datetime(2026, 7, 1, 12, tzinfo=timezone.utc), "Europe/London") == "2026-07-01 13:00 BST"
    assert times.shown(MOMENT, "Asia/Bangkok") == "2026-12-07 12:03 +07"  # a zone without an abbreviation: its offset
    assert times.shown(None) == ""
    with pytest.raises(ValueError, match="timezone-aware"):
        times.shown(MOMENT.replace(tzinfo=None))  # a naive time would be shown as whatever zone it happened to be in


def test_a_time_typed_without_an_offset_is_in_the_zone_shown():
    typed = forms.parse_moment("2026-12-07 14:03", "field_since", "Asia/Tokyo")
    assert typed == MOMENT.replace(second=0) and times.shown(typed) == "2026-12-07 14:03 JST"  # reads back as typed
    assert forms.parse_moment("2026-12-07", "field_since", "Europe/London") == datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert forms.parse_moment("2026-12-07T14:03+00:00", "field_since", "Asia/Tokyo").utcoffset() == timedelta(0)
    assert times.midnight(date(2026, 12, 7)) == datetime(2026, 12, 6, 15, tzinfo=timezone.utc)
    with pytest.raises(InputInvalid) as bad:
        forms.parse_moment("yesterday", "field_since", "Asia/Tokyo")
    assert "yesterday" in bad.value.text("ja") and "yesterday" in str(bad.value)


def test_the_zone_is_a_setting_and_reaches_the_pages(tmp_path):
    assert Settings(home=tmp_path).timezone == "Asia/Tokyo"
    assert Settings.load({"ONSITE_HOME": str(tmp_path), "ONSITE_TIMEZONE": "America/New_York"}).timezone == "America/New_York"
    with pytest.raises(SettingInvalid, match="Mars/Olympus.*IANA name such as Asia/Tokyo"):
        Settings(home=tmp_path, timezone="Mars/Olympus")
    settings = Settings(home=tmp_path, timezone="America/New_York")
    assert settings.environ()["ONSITE_TIMEZONE"] == "America/New_York"  # the services the hub starts read the same
    when = make_app(settings).settings["jinja"].filters["when"]
    assert when(MOMENT) == "2026-12-07 00:03 EST" and when(MOMENT, "Asia/Tokyo") == "2026-12-07 14:03 JST"
