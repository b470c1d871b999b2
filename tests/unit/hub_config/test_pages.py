"""JupyterHub's pages in Japanese and English: every string has both, every patch still fits JupyterHub."""
from __future__ import annotations

import re

import pytest

from hub_config.pages import (
    ERROR_HEADINGS,
    JUPYTERHUB_TEMPLATES,
    LOGIN_ERRORS,
    MESSAGES,
    SOURCE_PATCHES,
    TEMPLATES_DIR,
    patch_source,
)


@pytest.mark.parametrize("name", sorted(SOURCE_PATCHES))
def test_each_patch_matches_the_installed_jupyterhub_once(name):
    source = (JUPYTERHUB_TEMPLATES / name).read_text()
    for english, _ in SOURCE_PATCHES[name]:
        assert source.count(english) == 1, f"JupyterHub's {name} changed: {english!r} is no longer there once"
    patched = patch_source(name, source)
    assert all(english not in patched for english, _ in SOURCE_PATCHES[name])


def test_every_patched_template_is_extended_so_the_patch_applies():
    for name in SOURCE_PATCHES:
        ours = TEMPLATES_DIR / name
        assert f'{{% extends "templates/{name}" %}}' in ours.read_text(), f"{ours} must extend JupyterHub's {name}"


def test_every_key_used_has_japanese_and_english():
    used = set(ERROR_HEADINGS.values()) | set(LOGIN_ERRORS.values())
    texts = [p.read_text() for p in TEMPLATES_DIR.glob("*.html")]
    texts += [ours for patches in SOURCE_PATCHES.values() for _, ours in patches]
    for text in texts:
        used |= set(re.findall(r"\bt\('([a-z_]+)'\)", text))
    assert "login" in used and "starting" in used  # the scan finds the keys
    for key in used:
        assert MESSAGES[key]["ja"] and MESSAGES[key]["en"], key


def test_no_template_copies_a_whole_jupyterhub_page():
    for ours in TEMPLATES_DIR.glob("*.html"):
        assert re.search(r'{% extends "(templates/)?[a-z_0-9]+\.html" %}', ours.read_text()), ours


def test_a_patch_that_no_longer_fits_leaves_the_text_and_says_so(caplog):
    changed = "<h1>Log on</h1>"  # as if an upgrade reworded JupyterHub's heading
    with caplog.at_level("WARNING", logger="hub_config.pages"):
        assert patch_source("login.html", changed) == changed
    assert "<h1>Sign in</h1>" in caplog.text and "stays English" in caplog.text
