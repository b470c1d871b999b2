"""The ledger's own times follow the one rule (#19): `onsite audit head`, `heads` and `witnesses` show them in
the facility's zone with the zone, as `audit list` does; --json keeps the signed ISO 8601 text."""
from __future__ import annotations

import json
import re
from datetime import datetime

from test_access_cli import onsite  # noqa: F401  (fixture)

def zoned(zone: str) -> str:
    return r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? " + zone


def test_head_heads_and_witnesses_are_shown_in_the_facility_zone(onsite, db_url, tmp_path, monkeypatch):
    assert onsite("admin", "person", "add", "hanako", "--name", "Hanako", "--no-password")[0] == 0
    code, out, _ = onsite("audit", "head")
    assert code == 0 and re.search(r" at " + zoned("JST") + r"\n$", out), out
    public = tmp_path / "log.pub"
    public.write_text(onsite("audit", "public-key")[1])
    assert onsite("audit", "witness", db_url, "--log-key", str(public), "--key", str(tmp_path / "w" / "key.pem"),
                  "--state", str(tmp_path / "w" / "head.json"), "--name", "osaka")[0] == 0

    code, heads, _ = onsite("audit", "heads")
    assert code == 0 and re.search(zoned("JST"), heads.splitlines()[1]) and "+00:00" not in heads, heads
    code, seen, _ = onsite("audit", "witnesses")
    assert code == 0 and len(re.findall(zoned("JST"), seen.splitlines()[1])) == 2 and "+00:00" not in seen

    # --json: the ISO text that was signed, with its offset
    signed = json.loads(onsite("audit", "heads", "--json")[1])[0]["timestamp"]
    assert datetime.fromisoformat(signed).utcoffset() is not None
    # another facility zone shows another zone
    monkeypatch.setenv("ONSITE_TIMEZONE", "Europe/Berlin")
    code, heads, _ = onsite("audit", "heads")
    assert code == 0 and re.search(zoned("CES?T"), heads.splitlines()[1]), heads
