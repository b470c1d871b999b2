"""The one path, end to end, through real processes.

`onsite hub` with the embedded defaults (SQLite, local identity store) on a
free port; the researcher logs in over HTTP, starts a server, and runs code in
a real kernel that queries the granted dataset and asks for the release of
three tables: one that passes, one with a small cell, and one whose figures
the researcher's code forged. Two reviewers approve the passing one through
the review service's pages; the release package is checked against the
dataset counted independently with DuckDB.
"""
from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import subprocess
import zipfile

import duckdb
import pytest

from functional.hubtools import ONSITE, ROOT, HubUser, RunningHub
from functional.seeding import audit_events, seed_demo
from onsite.demo import DEMO_DATASET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REVIEW = "/services/onsite-review"

KERNEL_CODE = f"""
import json
import analysis_kernel
from analysis_kernel import outputs

db = analysis_kernel.connect()
passing = outputs.frequency_table(db, "SELECT * FROM {DEMO_DATASET}", rows="sex", name="persons_by_sex")
small = outputs.frequency_table(db, "SELECT * FROM {DEMO_DATASET}", rows="prefecture", columns="nationality",
                                name="prefecture_by_nationality")
oldest = outputs.frequency_table(db, "SELECT * FROM {DEMO_DATASET} WHERE age >= 85", rows="prefecture",
                                 name="oldest_by_prefecture")


class Forged:
    # What researcher code can send: the real query, with made-up figures that look safe.
    def __init__(self, table):
        self.table = table

    def to_request(self):
        request = self.table.to_request()
        claimed = request.claimed  # a plain dict in the wire dataclass: researcher code can change it
        claimed["verdict"] = "pass"
        shadow = claimed["shadow"]
        for column in ("sdc_records", "sdc_values", "sdc_units"):
            index = shadow["columns"].index(column)
            for row in shadow["rows"]:
                row[index] = 1000
        for row in claimed["cells"]["rows"]:
            row[-1] = 1000.0
        return request


kernel_verdicts = {{t.name: t.verdict.value for t in (passing, small, oldest)}}
answers = {{
    "pass": analysis_kernel.request_release([passing], title="Persons by sex", purpose="Table 1 of the paper"),
    "small": analysis_kernel.request_release([small], title="Prefecture by nationality", purpose="Appendix"),
    "forged": analysis_kernel.request_release([Forged(oldest)], title="Oldest by prefecture", purpose="Appendix"),
}}
print("RESULT " + json.dumps({{"kernel_verdicts": kernel_verdicts, "answers": answers}}))
"""


def independent_counts(dataset_file, column: str) -> dict[str, int]:
    """Counts straight from the dataset file, without any Onsite code."""
    with duckdb.connect(str(dataset_file), read_only=True) as con:
        return {str(k): n for k, n in con.execute(f"SELECT {column}, count(*) FROM microdata GROUP BY {column}").fetchall()}


def vote_form(page: str, request_id: int) -> tuple[str, str]:
    """The vote form's action and its _xsrf value on a request page (one output per request here)."""
    action = re.search(rf'action="([^"]*requests/{request_id}/outputs/\d+/vote)"', page).group(1)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    return html.unescape(action), html.unescape(xsrf)


def vote(reviewer: HubUser, request_id: int, decision: str, **fields: str):
    page = reviewer.http.get(f"{reviewer.hub.url}{REVIEW}/requests/{request_id}", timeout=30)
    assert page.status_code == 200, page.text[:500]
    action, xsrf = vote_form(page.content.decode("utf-8"), request_id)
    return reviewer.http.post(f"{reviewer.hub.url}{action}", data={"_xsrf": xsrf, "decision": decision, **fields}, timeout=60)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    home = tmp_path_factory.mktemp("onsite-e2e")
    settings, logins = seed_demo(home, rows=3000)
    with RunningHub(home) as hub:
        yield hub, settings, logins


def test_the_one_path(running):
    hub, settings, logins = running

    # 1-3. The researcher logs in at a registered terminal; the server starts.
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    assert researcher.start_server().status_code in (201, 202)
    assert researcher.open_server().status_code == 200

    # 4-6. Queries, outputs and release requests in a real kernel.
    kernel = researcher.start_kernel()
    result = researcher.execute(kernel, KERNEL_CODE, timeout=180)
    assert result.error is None, result.error
    line = next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))
    seen = json.loads(line[len("RESULT "):])
    assert seen["kernel_verdicts"] == {"persons_by_sex": "pass", "prefecture_by_nationality": "fail",
                                       "oldest_by_prefecture": "fail"}
    answers = seen["answers"]
    service_verdict = {k: a["outputs"][0]["verdict"].lower() for k, a in answers.items()}
    assert service_verdict["pass"] == "pass"
    assert service_verdict["small"] == "fail"
    # The forged figures claimed "pass"; the service recomputed the table and failed it on its own counts.
    assert service_verdict["forged"] == "fail"

    # 7. Two reviewers approve the passing table through the review service's pages.
    first, second = HubUser(hub, "sato"), HubUser(hub, "suzuki")
    for reviewer in (first, second):
        assert reviewer.login(logins[reviewer.username].password).status_code == 302
    passing_id, small_id = answers["pass"]["id"], answers["small"]["id"]
    assert vote(first, passing_id, "APPROVE").status_code == 200
    assert not (settings.egress_dir / str(passing_id)).exists()  # one approval is not enough
    assert vote(second, passing_id, "APPROVE").status_code == 200

    # The release package: files as the manifest says, the table as DuckDB counts it.
    package = settings.egress_dir / str(passing_id)
    manifest = json.loads((package / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == ["persons_by_sex.csv"]
    for entry in manifest["files"]:
        assert hashlib.sha256((package / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    rows = list(csv.reader(io.StringIO((package / "persons_by_sex.csv").read_text())))
    released = {row[0]: float(row[-1]) for row in rows[1:]}
    expected = independent_counts(settings.datasets_dir / f"{DEMO_DATASET}.duckdb", "sex")
    assert {k: v for k, v in released.items() if k in expected} == {k: float(n) for k, n in expected.items()}
    assert sum(expected.values()) == 3000 and 3000.0 in released.values()  # the total margin
    assert {v["reviewer"] for o in manifest["outputs"] for v in o["votes"]} == {"reviewer-1", "reviewer-2"}  # not named

    # The table with a small cell cannot be approved without a written override.
    refused = vote(first, small_id, "APPROVE")
    assert refused.status_code == 400
    assert 'id="vote-error"' in refused.content.decode("utf-8")  # the page says why, next to the form
    assert not (settings.egress_dir / str(small_id)).exists()
    accepted = vote(first, small_id, "APPROVE", override_reason="Cells below 10 are structural zeros in the published census.")
    assert accepted.status_code == 200
    assert not (settings.egress_dir / str(small_id)).exists()  # still needs the second reviewer

    # The second reviewer suppresses the small cells instead (the protection form under the Hub's XSRF): the
    # service recomputes the table itself, and the first approval, given to the unprotected table, is withdrawn.
    page = second.http.get(f"{hub.url}{REVIEW}/requests/{small_id}", timeout=30).content.decode("utf-8")
    action = html.unescape(re.search(rf'action="([^"]*requests/{small_id}/outputs/\d+/protection)"', page).group(1))
    form = {"_xsrf": html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)), "method": "suppress",
            "revision": "0"}
    preview = second.http.post(f"{hub.url}{action}", data={**form, "action": "preview"}, timeout=120)
    assert preview.status_code == 200, preview.text[:500]
    previewed = re.search(r'name="previewed" value="([0-9a-f]{64})"', preview.text).group(1)
    saved = second.http.post(f"{hub.url}{action}", data={**form, "previewed": previewed, "action": "save"}, timeout=120)
    assert saved.status_code == 200 and '<td class="invalidated">sato</td>' in saved.text, saved.text[:500]
    applied = [e for e in audit_events(settings, "OUTPUT_PROTECT", "suzuki") if "protection" in e["details"]]
    assert [e["details"]["invalidated_approvals"] for e in applied] == [["sato"]]

    # The researcher collects the release package: exactly the released files and the manifest.
    collected = researcher.http.get(f"{hub.url}{REVIEW}/requests/{passing_id}/package.zip", timeout=60)
    assert collected.status_code == 200, collected.text[:500]
    with zipfile.ZipFile(io.BytesIO(collected.content)) as archive:
        contents = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    assert contents == {name: (package / name).read_bytes()
                        for name in ("persons_by_sex.csv", "manifest.json", "manifest.sig")}
    # ... and checks it offline with the keyring the operator publishes (the key the review service made at start).
    zipped = settings.home / "collected.zip"
    zipped.write_bytes(collected.content)
    keyring = settings.home / "published-keys.json"
    export = subprocess.run([*ONSITE, "release", "key", "export"], cwd=ROOT, env=hub.env, capture_output=True, text=True,
                            timeout=60)
    keyring.write_text(export.stdout)
    checked = subprocess.run([*ONSITE, "release", "verify", str(zipped), "--public-key", str(keyring)], cwd=ROOT,
                             env=hub.env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout.startswith("OK:"), checked.stdout + checked.stderr

    # 8. Every step is in the ledger, and the ledger verifies.
    for action, actor in [("ENTRY_DECIDE", "tanaka"), ("SESSION_START", "tanaka"), ("RELEASE_SUBMIT", "tanaka"),
                          ("OUTPUT_DECIDE", "sato"), ("OUTPUT_DECIDE", "suzuki"), ("RELEASE_PACKAGE", None)]:
        assert audit_events(settings, action, actor), f"no {action} by {actor} in the ledger"
    verify = subprocess.run([*ONSITE, "audit", "verify"], cwd=ROOT, env=hub.env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stdout.startswith("ok"), verify.stdout + verify.stderr


REGIONS_CSV = "code,region\n" + "".join(f"{i:02d},{'north' if i <= 7 else 'rest'}\n" for i in range(1, 48))
JOIN_CODE = f"""
import json
import analysis_kernel
from analysis_kernel import outputs

db = analysis_kernel.connect()
regions = dict(db.reference("pref_regions").fetchall())
table = outputs.frequency_table(
    db, "SELECT r.region FROM {DEMO_DATASET} d JOIN reference.pref_regions r ON d.prefecture = r.code",
    rows="region", name="persons_by_macro_region")
answer = analysis_kernel.request_release([table], title="Persons by macro-region", purpose="Table 2")
print("RESULT " + json.dumps({{"region_08": regions["08"], "answer": answer}}))
"""


def upload_to_intake(researcher: HubUser, name: str, content: str):
    """What JupyterLab's upload does: the contents API, base64, into intake/ (singleuser.contents checks it)."""
    import base64

    body = {"type": "file", "format": "base64", "content": base64.b64encode(content.encode()).decode()}
    return researcher.http.put(f"{researcher.server_url}/api/contents/intake/{name}", json=body,
                               headers=researcher._server_xsrf(), timeout=30)


def test_reference_data_brought_in_reviewed_and_joined(running):
    """Ingress: upload into intake/, request_ingress in the kernel, two reviewers approve on the review pages,
    then a table joining the dataset with the approved reference data is recomputed by the service."""
    hub, settings, logins = running
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    assert researcher.start_server().status_code in (201, 202, 400)  # 400: still running from the test above
    assert researcher.open_server().status_code == 200
    assert upload_to_intake(researcher, "regions.csv", REGIONS_CSV).status_code == 201

    kernel = researcher.start_kernel()
    result = researcher.execute(kernel, 'import json, analysis_kernel\nprint("RESULT " + json.dumps('
                                'analysis_kernel.request_ingress("regions.csv", name="pref_regions", '
                                'description="Macro-regions of the prefectures (Statistics Bureau)")))', timeout=120)
    assert result.error is None, result.error
    asked = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    assert asked["status"] == "SUBMITTED" and asked["rows"] == 47
    assert asked["sha256"] == hashlib.sha256(REGIONS_CSV.encode()).hexdigest()
    # The file in intake/ is replaced after the request: what was sent for review is what is used.
    assert upload_to_intake(researcher, "regions.csv", REGIONS_CSV.replace("rest", "north")).status_code in (200, 201)

    for name in ("sato", "suzuki"):
        reviewer = HubUser(hub, name)
        assert reviewer.login(logins[name].password).status_code == 302
        page = reviewer.http.get(f"{hub.url}{REVIEW}/ingress/{asked['id']}", timeout=30)
        assert page.status_code == 200 and asked["sha256"] in page.text and "pref_regions" in page.text
        xsrf = html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1))
        voted = reviewer.http.post(f"{hub.url}{REVIEW}/ingress/{asked['id']}/vote",
                                   data={"_xsrf": xsrf, "decision": "APPROVE"}, timeout=30)
        assert voted.status_code == 200, voted.text[:500]

    result = researcher.execute(kernel, JOIN_CODE, timeout=180)
    assert result.error is None, result.error
    seen = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    assert seen["region_08"] == "rest"  # the approved copy, not the replaced file
    [output] = seen["answer"]["outputs"]
    assert output["verified"] and output["error"] is None and output["verdict"].lower() == "pass"
    for action, actor in [("INGRESS_SUBMIT", "tanaka"), ("INGRESS_DECIDE", "sato"), ("INGRESS_DECIDE", "suzuki"),
                          ("INGRESS_COLLECT", "tanaka")]:
        assert audit_events(settings, action, actor), f"no {action} by {actor} in the ledger"
