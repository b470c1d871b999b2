"""What the review service shows and releases (issue 14, items 2, 6, 7), attacked through a real hub as root.

A researcher (tanaka) submits, from a real kernel, a table whose category labels are whole records (every
column of a record concatenated): it fails its checks, and its request page then held every record. They
try to read those records where no session of theirs runs at a terminal: from another address with the
cookies copied, with the server stopped, after the grant was revoked. They try to release hidden text:
Unicode tag characters in a CSV file and in labels computed from the data. And a package changed in the
egress store after release is collected: refused cleanly and recorded.
"""
from __future__ import annotations

import html
import re
import time

import duckdb
import pytest

from functional.hubtools import HubUser
from functional.seeding import audit_events, revoke_grant
from onsite.demo import DEMO_DATASET, DEMO_PROJECT
from security._isolation_fixtures import isolated_hub, researcher_session, server_token  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REVIEW = "/services/onsite-review"
OTHER_ADDRESS = "127.0.0.2"  # this machine, not a registered terminal (those are 127.0.0.1 and ::1)
HIDDEN = "".join(chr(0xE0000 + ord(c)) for c in "person 12345 income 98765")  # Unicode tags: invisible


def columns_of(settings) -> list[str]:
    with duckdb.connect(str(settings.datasets_dir / f"{DEMO_DATASET}.duckdb"), read_only=True) as con:
        return [row[0] for row in con.execute("DESCRIBE microdata").fetchall()]


def record_label_sql(columns: list[str], table: str) -> str:
    return f"SELECT concat_ws('|', {', '.join(columns)}) AS rec FROM {table}"


def known_records(settings, columns: list[str]) -> list[str]:
    """Every record as the table's labels give it, read from the dataset file without any Onsite code."""
    with duckdb.connect(str(settings.datasets_dir / f"{DEMO_DATASET}.duckdb"), read_only=True) as con:
        return [row[0] for row in con.execute(record_label_sql(columns, "microdata")).fetchall()]


def run(user: HubUser, kernel: str, code: str) -> str:
    result = user.execute(kernel, code, timeout=240)
    assert result.error is None, result.error
    return result.stdout


SUBMIT = """
import json
import analysis_kernel
from analysis_kernel import outputs

db = analysis_kernel.connect()
records = outputs.frequency_table(db, {records_sql!r}, rows="rec", name="records")
by_sex = outputs.frequency_table(db, "SELECT * FROM {dataset}", rows="sex", name="persons_by_sex")
leak = analysis_kernel.request_release([records], title="Records", purpose="all of them")
ok = analysis_kernel.request_release([by_sex], title="Persons by sex", purpose="Table 1")
print("IDS", json.dumps([leak["id"], ok["id"]]))
"""


@pytest.fixture(scope="module")
def world(isolated_hub):
    """tanaka in a session at the registered terminal 127.0.0.1, with two requests: the records table (fails)
    and a passing table, which two reviewers approve through the review pages (so it is released)."""
    hub = isolated_hub
    tanaka, kernel = researcher_session(hub, "tanaka")
    columns = columns_of(hub.settings)
    out = run(tanaka, kernel, SUBMIT.format(records_sql=record_label_sql(columns, DEMO_DATASET), dataset=DEMO_DATASET))
    leak_id, ok_id = (int(i) for i in re.search(r"IDS \[(\d+), (\d+)\]", out).groups())
    for name in ("sato", "suzuki"):
        reviewer = HubUser(hub.hub, name)
        assert reviewer.login(hub.logins[name].password).status_code == 302
        page = reviewer.http.get(f"{hub.hub.url}{REVIEW}/requests/{ok_id}", timeout=30).text
        action = html.unescape(re.search(rf'action="([^"]*requests/{ok_id}/outputs/\d+/vote)"', page).group(1))
        xsrf = html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page).group(1))
        assert reviewer.http.post(f"{hub.hub.url}{action}", data={"_xsrf": xsrf, "decision": "APPROVE"},
                                  timeout=60).status_code == 200
    return hub, tanaka, kernel, leak_id, ok_id, known_records(hub.settings, columns)


def served(user: HubUser, path: str) -> bytes:
    """Every byte the review service answers `user` at `path` (a refusal's body included)."""
    return user.http.get(f"{user.hub.url}{REVIEW}/{path}", timeout=60).content


def leaked(body: bytes, records: list[str]) -> list[str]:
    text = html.unescape(body.decode("utf-8", "replace"))
    return [r for r in records if r in text]


def thief_of(hub, victim: HubUser) -> HubUser:
    thief = HubUser(hub.hub, victim.username, source_address=OTHER_ADDRESS)
    thief.http.cookies.update(victim.http.cookies)
    return thief


def test_a_tampered_package_is_refused_cleanly_and_recorded(world):
    hub, tanaka, _, _, ok_id, _ = world
    released = hub.settings.egress_dir / str(ok_id) / "persons_by_sex.csv"
    assert tanaka.http.get(f"{hub.hub.url}{REVIEW}/requests/{ok_id}/package.zip", timeout=60).status_code == 200
    original = released.read_bytes()
    released.write_bytes(original + b"9,1\n")  # one more row, as an insider might add
    try:
        r = tanaka.http.get(f"{hub.hub.url}{REVIEW}/requests/{ok_id}/package.zip", timeout=60)
        english = tanaka.http.get(f"{hub.hub.url}{REVIEW}/requests/{ok_id}/package.zip?lang=en", timeout=60)
    finally:
        released.write_bytes(original)
    assert r.status_code == 409 and r.headers["Content-Type"].startswith("text/html"), (r.status_code, r.text[:300])
    assert "persons_by_sex.csv" in r.text and "SHA-256" in r.text and "監査ログに記録" in r.text
    assert "was changed after release" in english.text and "PK" not in r.text[:2]
    denied = [e for e in audit_events(hub.settings, "RELEASE_COLLECT", "tanaka") if e["outcome"] == "DENIED"]
    assert denied and denied[-1]["details"]["file"] == "persons_by_sex.csv"
    assert denied[-1]["details"]["found_sha256"] != denied[-1]["details"]["expected_sha256"]
    hub.record("review service", "collect a release package changed after release (a row added to its CSV)",
               f"HTTP {r.status_code}, ja/en page naming the file's SHA-256; RELEASE_COLLECT DENIED in the ledger")


HIDDEN_FILE = """
import analysis_kernel
from analysis_kernel import outputs

open("hidden.csv", "w", encoding="utf-8").write("prefecture,count\\nTokyo{hidden},12\\n")
note = outputs.file_output("hidden.csv", explanation="a published count", code="df.to_csv('hidden.csv')")
try:
    analysis_kernel.request_release([note], title="Hidden file", purpose="test")
    print("ACCEPTED")
except Exception as exc:
    print("REFUSED", exc)
"""

HIDDEN_LABELS = """
import analysis_kernel
from analysis_kernel import outputs

db = analysis_kernel.connect()
table = outputs.frequency_table(db, "SELECT sex || chr({tag}) AS sex_tagged FROM {dataset}", rows="sex_tagged",
                                name="tagged")
try:
    analysis_kernel.request_release([table], title="Tagged labels", purpose="test")
    print("ACCEPTED")
except Exception as exc:
    print("REFUSED", exc)
"""


@pytest.mark.parametrize("channel, code, attempt", [
    ("file", HIDDEN_FILE.format(hidden=HIDDEN),
     "release a CSV file whose cell carries 'person 12345 income 98765' in invisible Unicode tag characters"),
    ("labels", HIDDEN_LABELS.format(tag=0xE0041, dataset=DEMO_DATASET),
     "release a table whose labels the query appends an invisible tag character to (labels from the data)"),
])
def test_hidden_characters_are_never_released(world, channel, code, attempt):
    hub, tanaka, kernel, _, _, _ = world
    before = len(audit_events(hub.settings, "RELEASE_SUBMIT", "tanaka"))
    out = run(tanaka, kernel, code)
    assert "REFUSED" in out and "invisible or control character U+E00" in out, out
    assert "見えない文字" in out
    events = audit_events(hub.settings, "RELEASE_SUBMIT", "tanaka")[before:]
    assert [e["outcome"] for e in events] == ["DENIED"]  # refused and recorded, nothing stored
    for package in hub.settings.egress_dir.glob("*/*"):
        assert HIDDEN not in package.read_bytes().decode("utf-8", "replace") and "\U000E0041" not in \
            package.read_bytes().decode("utf-8", "replace")
    hub.record("review service", attempt, "refused at submission naming the output, position and U+E00xx "
               "(ja/en); RELEASE_SUBMIT DENIED; nothing stored or released")


def test_records_are_seen_only_at_the_terminal_of_a_running_session(world):
    hub, tanaka, _, leak_id, _, records = world
    page = f"requests/{leak_id}"
    # In the session, at its terminal: the researcher reviews their own failing table (the control).
    assert leaked(served(tanaka, page), records)

    # Another address, the cookies copied: no record in any byte served (page, list, API, English page).
    thief = thief_of(hub, tanaka)
    for path in (page, f"{page}?lang=en", "mine", f"api/requests/{leak_id}"):
        body = served(thief, path)
        assert not leaked(body, records), path
    hub.record("review service", f"read the whole-records table's request page from {OTHER_ADDRESS} "
               "with the researcher's cookies", "no record in any byte served")

    # The server token, as the researcher's own code can read it, used from the other address on the API.
    token_user = HubUser(hub.hub, "tanaka", source_address=OTHER_ADDRESS).http.get(
        f"{hub.hub.url}{REVIEW}/api/requests/{leak_id}", timeout=30, headers={"Authorization": f"token {server_token(hub, 'tanaka')}"})
    assert not leaked(token_user.content, records)
    hub.record("review service", f"read the request through the API from {OTHER_ADDRESS} with the session's "
               "server token",
               f"HTTP {token_user.status_code}: status and codes only, no record")

    # The server stopped: at the terminal, but no session.
    stop = tanaka.http.delete(f"{hub.hub.url}/hub/api/users/tanaka/server", headers=tanaka._hub_xsrf(), timeout=60)
    assert stop.status_code in (202, 204)
    wait_for(lambda: not tanaka.http.get(f"{hub.hub.url}/hub/api/users/tanaka", headers=tanaka._hub_xsrf(),
                                         timeout=30).json().get("servers"))
    body = served(tanaka, page)
    assert not leaked(body, records) and b'id="request-withheld"' in body
    hub.record("review service", "read the whole-records table's request page at the terminal with no session "
               "running", "status only: no record")

    # A session again, then the grant revoked while it runs: at once no record, whether the re-check has
    # ended the session yet or not.
    tanaka.start_server()
    assert tanaka.open_server().status_code == 200
    assert leaked(served(tanaka, page), records)  # the same page, in a session again
    revoke_grant(hub.settings, DEMO_PROJECT, DEMO_DATASET)
    body = served(tanaka, page)
    assert not leaked(body, records)
    hub.record("review service", "read the whole-records table's request page at the terminal right after the "
               "project's grant was revoked", "no record")


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
