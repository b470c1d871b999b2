"""JupyterLab's translations with Onsite's own entries merged in, served without a JavaScript build.

The installed language pack (jupyterlab-language-pack-ja-JP 4.5.post3) was cut
for an older JupyterLab than the one Onsite runs: some strings of the
researcher's path have no entry in it ("%1 File" of the launcher's "Python
File", "Duplicate %1"), some it leaves in English ("Notebook"), and some put
the object first ("%1 を保存"), which JupyterLab fills with an empty label when
the current tab is no document, leaving "を保存". `lab_translations_<locale>.json`
beside this module holds Onsite's entries for JupyterLab's `jupyterlab` domain,
each with where it is shown and why the pack's entry does not do.

JupyterLab fetches its translations from the page option `translationsApiUrl`;
Onsite's `labconfig/page_config.json` points it at `URL` here, whose handler
answers with JupyterLab's own bundle (`jupyterlab_server`'s `get_language_pack`)
and the catalogue's entries over it. Locales without a catalogue, and the list
of installed languages, are redirected to JupyterLab's own handler.
(JupyterLab's documented way for a package to ship translations, the
`jupyterlab.locale` entry point, compares versions with the pack's metadata,
whose version "jupyterlab" is no version: the whole bundle would fail.)
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from jupyterlab_server.translation_utils import get_language_pack, translator
from tornado import web
from tornado.ioloop import IOLoop

URL = "/onsite/api/translations"
"""Where JupyterLab asks for its translations (`translationsApiUrl` in labconfig/page_config.json)."""
LAB_URL = "/lab/api/translations"
DOMAIN = "jupyterlab"
CATALOGUE_PREFIX = "lab_translations_"
CATALOGUES = {path.stem.removeprefix(CATALOGUE_PREFIX): path
              for path in Path(__file__).parent.glob(CATALOGUE_PREFIX + "*.json")}
"""Locale (as JupyterLab names it, ja_JP) -> Onsite's catalogue for it."""


@cache
def catalogue(locale: str) -> dict[str, dict[str, str]]:
    """Onsite's entries for `locale`: msgid (with `context\\x04` when JupyterLab gives one) -> its fields."""
    data = json.loads(CATALOGUES[locale].read_text(encoding="utf-8"))
    return data["entries"]


def merged(bundle: dict[str, Any], locale: str) -> dict[str, Any]:
    """`bundle` (domain -> Jed data, as `get_language_pack` returns it) with Onsite's entries over JupyterLab's domain.

    Nothing is added when the language pack itself is missing: JupyterLab then speaks English throughout.
    """
    if locale not in CATALOGUES or DOMAIN not in bundle:
        return bundle
    ours = {msgid: [entry["translation"]] for msgid, entry in catalogue(locale).items()}
    return {**bundle, DOMAIN: {**bundle[DOMAIN], **ours}}


class LabTranslationsHandler(APIHandler):
    """`GET URL/<locale>`: JupyterLab's bundle for the locale with Onsite's entries (see the module doc)."""

    @web.authenticated
    async def get(self, locale: str = "") -> None:
        if locale not in CATALOGUES:
            self.redirect(url_path_join(self.base_url, LAB_URL, locale))
            return
        data, message = await IOLoop.current().run_in_executor(None, get_language_pack, locale)
        if data:
            translator.set_locale(locale)  # as JupyterLab's handler does: the server's own strings follow
        self.finish(json.dumps({"data": merged(data, locale), "message": message}))


def handlers(base_url: str) -> list[tuple[str, type[APIHandler]]]:
    return [(url_path_join(base_url, URL, "?(?P<locale>[A-Za-z_-]*)"), LabTranslationsHandler)]
