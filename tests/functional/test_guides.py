"""Every code block of the researcher, reviewer and administrator guides runs as written (#19).

One hub seeded as `make up` seeds it (the demo dataset `lfs_demo`, project
`p-demo`, researcher tanaka, reviewers sato and suzuki). The researcher guide's
python blocks run in order in one real kernel of tanaka's server; the sh blocks
of the guides run with bash, in guide order, against the same store with the
hub running (`onsite admin sessions` needs it). The conventions of the blocks
(`ignore`, `file=`, `after=ingress-approved`, expected refusals) are in
`functional.guides`. A test reports every block that failed, not only the first.
"""
from __future__ import annotations

import html
import os
import re
import subprocess

import pytest

from functional.guides import Block, blocks, commands
from functional.hubtools import ROOT, HubUser, RunningHub
from functional.seeding import seed_demo
from functional.test_end_to_end import upload_to_intake

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]  # the administrator guide runs ~60 onsite commands

GUIDES = ROOT / "docs" / "how-to"
REVIEW = "/services/onsite-review"
# Passwords the administrator guide's commands are given (prompts and $PASSWORD).
GUIDE_PASSWORD = "Guide-test-password-2026"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("onsite-guides")
    settings, logins = seed_demo(home, rows=3000)
    with RunningHub(home) as hub:
        yield hub, settings, logins


def guide_blocks(name: str) -> list[Block]:
    return blocks(GUIDES / name)


def test_the_conventions_are_kept():
    """Few blocks are left out, each guide has code that runs, and every option is one the test knows."""
    ignored = []
    for name in ("researcher.md", "reviewer.md", "administrator.md"):
        found = guide_blocks(name)
        ignored += [b.where for b in found if b.language in ("python", "sh") and "ignore" in b.words]
        for block in found:
            assert set(block.options) <= {"file", "after"}, f"{block.where}: unknown option {block.options}"
            assert block.options.get("after") in (None, "ingress-approved"), block.where
            assert not block.words - {"ignore"}, f"{block.where}: unknown word {set(block.words)}"
    assert [b for b in guide_blocks("researcher.md") if b.runs and b.language == "python"]
    assert [b for b in guide_blocks("administrator.md") if b.runs and b.language == "sh"]
    assert len(ignored) <= 5, f"too many blocks left out of the test: {ignored}"


def approve_waiting_ingress(hub: RunningHub, logins) -> list[int]:
    """Both demo reviewers approve every ingress request waiting on the Reference data page."""
    approved = []
    for name in ("sato", "suzuki"):
        reviewer = HubUser(hub, name)
        assert reviewer.login(logins[name].password).status_code == 302
        listing = reviewer.http.get(f"{hub.url}{REVIEW}/ingress", timeout=30).content.decode("utf-8")
        queue = re.search(r'id="ingress-queue".*?</table>', listing, re.S)
        for request_id in sorted({int(i) for i in re.findall(r"ingress/(\d+)", queue.group(0))} if queue else ()):
            page = reviewer.http.get(f"{hub.url}{REVIEW}/ingress/{request_id}", timeout=30).content.decode("utf-8")
            xsrf = html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page).group(1))
            voted = reviewer.http.post(f"{hub.url}{REVIEW}/ingress/{request_id}/vote",
                                       data={"_xsrf": xsrf, "decision": "APPROVE"}, timeout=30)
            assert voted.status_code == 200, voted.text[:300]
            approved.append(request_id)
    return approved


def last_lines(text: str, n: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def test_researcher_guide_runs_as_written(demo):
    hub, _, logins = demo
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    assert researcher.start_server().status_code in (201, 202)
    assert researcher.open_server().status_code == 200
    kernel = researcher.start_kernel()
    failures, ran, printed = [], 0, []
    for block in guide_blocks("researcher.md"):
        if block.options.get("file", "").startswith("intake/"):
            uploaded = upload_to_intake(researcher, block.options["file"].removeprefix("intake/"), block.code)
            assert uploaded.status_code == 201, f"{block.where}: {uploaded.text[:300]}"
        if not block.runs:
            continue
        assert block.language == "python", f"{block.where}: the researcher works in a notebook"
        if block.options.get("after") == "ingress-approved" and not approve_waiting_ingress(hub, logins):
            failures.append(f"{block.where}: no ingress request waited for the reviewers")
        result = researcher.execute(kernel, block.code, timeout=240)
        ran += 1
        printed.append(result.stdout)
        if result.error:
            failures.append(f"{block.where}:\n{block.code}{last_lines(result.error)}")
    assert not failures, "\n\n".join(failures)
    assert ran >= 10
    # What the notebook printed has no warning a newcomer would trip over (extract_output's progress bar).
    assert "TqdmWarning" not in "".join(printed) and "IProgress" not in "".join(printed)


def run_sh_blocks(name: str, hub: RunningHub, workdir) -> tuple[int, list[str]]:
    env = {**hub.env, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PASSWORD": GUIDE_PASSWORD, "LANG": "C.UTF-8"}
    failures, ran = [], 0
    for block in guide_blocks(name):
        if "file" in block.options and not block.options["file"].startswith("intake/"):
            (workdir / block.options["file"]).write_text(block.code, encoding="utf-8")
        if not block.runs:
            continue
        assert block.language == "sh", f"{block.where}: python blocks of this guide would need a kernel"
        for command in commands(block):
            done = subprocess.run(["bash", "-c", command.text], cwd=workdir, env=env, capture_output=True, text=True,
                                  input=f"{GUIDE_PASSWORD}\n{GUIDE_PASSWORD}\n", timeout=120)
            ran += 1
            if command.expected_error is None and done.returncode != 0:
                failures.append(f"{block.where}: `{command.text}` exited {done.returncode}:\n{last_lines(done.stderr)}")
            elif command.expected_error is not None and (done.returncode != 2
                                                          or command.expected_error not in done.stderr):
                failures.append(f"{block.where}: `{command.text}` should be refused with "
                                f"{command.expected_error!r}; exited {done.returncode}:\n{last_lines(done.stderr)}")
    return ran, failures


def test_reviewer_and_administrator_guides_run_as_written(demo, tmp_path):
    """After the researcher's guide (its session is the one `onsite admin sessions` lists and ends)."""
    hub, _, _ = demo
    results = {name: run_sh_blocks(name, hub, tmp_path) for name in ("reviewer.md", "administrator.md")}
    failures = [f for _, found in results.values() for f in found]
    assert not failures, f"{len(failures)} commands failed:\n\n" + "\n\n".join(failures)
    assert results["administrator.md"][0] >= 40
