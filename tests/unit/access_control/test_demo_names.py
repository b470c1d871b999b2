"""The demo's facility and terminals are named in Japanese, as an administrator of a Japanese facility reads them
in `onsite admin` and on the admin pages (#19: they were named in English)."""
from __future__ import annotations

import json
import re

from onsite.demo import DEMO_TERMINALS, ensure_facility
from onsite_base.settings import Settings
from test_access_cli import factory, onsite  # noqa: F401  (fixtures)

LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def test_the_demo_facility_and_its_terminals_are_named_in_japanese(onsite, factory, db_url, tmp_path):
    ensure_facility(Settings(home=tmp_path, db_url=db_url), factory)
    facilities = json.loads(onsite("admin", "facility", "list", "--json")[1])
    terminals = json.loads(onsite("admin", "terminal", "list", "--json")[1])
    assert [f["terminals"] for f in facilities] == [len(DEMO_TERMINALS)]
    names = [facilities[0]["name"], *(t["facility"] for t in terminals), *(t["label"] for t in terminals)]
    assert all(re.search(r"[ぁ-んァ-ヶ一-龯]", name) and not LATIN_WORD.search(name) for name in names), names
