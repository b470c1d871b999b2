"""Onsite's catalogue over JupyterLab's Japanese language pack (#19); in Chromium in
tests/integration/test_researcher_lab_browser.py::test_jupyterlab_speaks_the_sites_language."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import singleuser

PAGE_CONFIG = Path(singleuser.__file__).parent / "jupyter_config" / "labconfig" / "page_config.json"
PLACEHOLDER = re.compile(r"%\d")


@pytest.fixture(scope="module")
def lab():
    """singleuser.lab_translations."""
    # heavy: it loads jupyter_server and JupyterLab's server, with jupyter_events and jsonschema (2-3 CPU-s):
    # imported by these tests, not by every process that collects this file
    from singleuser import lab_translations

    return lab_translations


@pytest.fixture(scope="module")
def lab_sources(lab) -> str:
    """JupyterLab's built JavaScript and settings schemas, where every msgid it translates is written."""
    from jupyterlab.commands import get_app_dir  # heavy, as lab_translations (above)

    installed = Path(get_app_dir())  # the installed JupyterLab build
    files = [*(installed / "static").glob("*.js"), *(installed / "schemas").rglob("*.json")]
    assert files, f"no JupyterLab build under {installed}"
    return "".join(path.read_text(encoding="utf-8", errors="replace") for path in files)


def test_every_entry_is_a_string_jupyterlab_translates(lab, lab_sources):
    for msgid in lab.catalogue("ja_JP"):
        text = msgid.rpartition("\x04")[2]
        assert json.dumps(text, ensure_ascii=False) in lab_sources, f"{msgid!r} is not in the installed JupyterLab"


def test_every_entry_says_where_and_why_and_invents_no_placeholder(lab):
    for msgid, entry in lab.catalogue("ja_JP").items():
        assert entry["translation"].strip() and entry["shown"].strip() and entry["why"].strip(), msgid
        assert set(PLACEHOLDER.findall(entry["translation"])) <= set(PLACEHOLDER.findall(msgid)), msgid
        assert not re.match(r"\s*[をのにへ]", entry["translation"]), f"{msgid!r}: a label must not start with a particle"


def test_the_pack_lacks_or_misreads_each_entry(lab):
    pack = lab.get_language_pack("ja_JP")[0][lab.DOMAIN]
    for msgid, entry in lab.catalogue("ja_JP").items():
        if entry["why"] == "not in the pack":
            assert msgid not in pack, f"{msgid!r} is in the pack now: drop it or say why ours is better"
        else:
            assert pack[msgid][0] != entry["translation"], f"{msgid!r} reads the same in the pack: drop it"


def test_onsite_entries_go_over_the_pack_of_the_same_locale_only(lab):
    DOMAIN, merged = lab.DOMAIN, lab.merged
    bundle, message = lab.get_language_pack("ja_JP")
    assert not message
    ours = merged(bundle, "ja_JP")
    assert ours[DOMAIN]["%1 File"] == ["%1ファイル"] and ours[DOMAIN]["Notebook"] == ["ノートブック"]
    assert ours[DOMAIN]["Save %1"] == ["保存"] and ours[DOMAIN]["menu\x04Split Tab"] == ["タブを分割"]
    assert ours[DOMAIN]["Open"] == bundle[DOMAIN]["Open"] and ours[DOMAIN][""] == bundle[DOMAIN][""]
    assert {k: v for k, v in ours.items() if k != DOMAIN} == {k: v for k, v in bundle.items() if k != DOMAIN}
    assert merged({}, "ja_JP") == {}  # no pack installed: JupyterLab stays English, no half-Japanese menu
    assert merged(bundle, "fr_FR") is bundle and set(lab.CATALOGUES) == {"ja_JP"}


def test_jupyterlab_asks_onsite_for_its_translations(lab):
    assert json.loads(PAGE_CONFIG.read_text())["translationsApiUrl"] == lab.URL
    [(route, _)] = lab.handlers("/user/tanaka/")
    assert re.fullmatch(route, "/user/tanaka/onsite/api/translations/ja_JP").group("locale") == "ja_JP"
    assert re.fullmatch(route, "/user/tanaka/onsite/api/translations").group("locale") == ""
    assert not re.fullmatch(route, "/user/tanaka/onsite/api/translations/../../api/contents")
