"""Real Chromium for the browser tests: where it is, how it starts, and running a JupyterLab cell
the way a researcher does (click, type, Shift+Enter) with the checks a loaded machine needs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium at /usr/bin/chromium")

STARTED = re.compile(r"\[(\*|\d+)\]")  # the cell's prompt once it is queued or has run; "[ ]:" before
LONG = 120_000  # ms: a first kernel, or a first connect(), on two busy cores


def _bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def run_cell(page, expect_text: str, code: str | None = None, index: int = -1) -> str:
    """Run the notebook's cell at `index` (-1: the last), typing `code` into it first if given, and
    wait for an output holding `expect_text`; returns the cell's text.

    On a loaded machine a click can land before the editor takes focus (typed text and Shift+Enter
    then go nowhere, or Shift+Enter runs the cell empty): the text is checked to be in the editor
    before the cell is run, and a cell whose prompt has not changed within 30 s is run again.
    A failure quotes the cell, so an error inside it is seen rather than a time-out."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    # Pinned by position: running a cell appends a new last one.
    cell = cells.nth(index if index >= 0 else cells.count() + index)
    editor = cell.locator(".cm-content")
    prompt = cell.locator(".jp-InputArea-prompt")
    for attempt in range(3):
        editor.click()
        if code is not None and _bare(editor.inner_text()) != _bare(code):
            page.keyboard.press("ControlOrMeta+a")
            page.keyboard.insert_text(code)
            if _bare(editor.inner_text()) != _bare(code):
                continue  # the editor did not have focus
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).to_have_text(STARTED, timeout=30_000)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError(f"the cell did not start after 3 tries; it reads: {cell.inner_text()[:2000]}")
    try:
        cell.locator(".jp-OutputArea-output", has_text=expect_text).last.wait_for(timeout=LONG)
    except PlaywrightTimeout:
        raise AssertionError(f"the cell did not print {expect_text!r}; it reads: {cell.inner_text()[:2000]}") from None
    return cell.inner_text()
