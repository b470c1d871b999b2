"""The site's session language ($ONSITE_LANGUAGE) picks JupyterLab's default locale, read the way JupyterLab reads it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hub_config.spawner import singleuser_config_path
from onsite_base.errors import UserError
from onsite_base.settings import Settings

TRANSLATION_PLUGIN = "@jupyterlab/translation-extension:plugin"


def lab_locale_default(monkeypatch, language: str) -> str:
    """The translation plugin's default locale as the single-user server's settings API would serve it."""
    # heavy: JupyterLab's server loads jupyter_server and jupyter_events, with jsonschema (2-3 CPU-s): imported by
    # the tests that use it, not by every process that collects this file
    from jupyterlab.commands import get_app_dir
    from jupyterlab_server.settings_utils import _get_overrides, get_settings

    monkeypatch.setenv("JUPYTER_CONFIG_PATH", os.pathsep.join(str(d) for d in singleuser_config_path(language)))
    app_settings = Path(get_app_dir()) / "settings"
    overrides, error = _get_overrides(str(app_settings))
    assert error == ""
    with tempfile.TemporaryDirectory() as user_settings:
        result, _ = get_settings(str(app_settings), str(Path(get_app_dir()) / "schemas"), user_settings,
                                 TRANSLATION_PLUGIN, overrides=overrides)
    return result["schema"]["properties"]["locale"]["default"]


def test_settings_language_defaults_to_japanese_and_may_be_english(tmp_path):
    assert Settings.load({"ONSITE_HOME": str(tmp_path)}).language == "ja"
    english = Settings.load({"ONSITE_HOME": str(tmp_path), "ONSITE_LANGUAGE": "en"})
    assert english.language == "en" and english.environ()["ONSITE_LANGUAGE"] == "en"
    with pytest.raises(UserError, match=r"Settings.language \(\$ONSITE_LANGUAGE\): 'fr' is not a session language: set it to one of ja, en"):
        Settings.load({"ONSITE_HOME": str(tmp_path), "ONSITE_LANGUAGE": "fr"})


@pytest.mark.parametrize(("language", "locale"), [("ja", "ja_JP"), ("en", "en")])
def test_jupyterlab_default_locale_follows_the_site_language(monkeypatch, language, locale):
    assert lab_locale_default(monkeypatch, language) == locale


def test_japanese_language_pack_is_installed_and_translates_jupyterlab():
    from importlib.metadata import version

    # heavy: JupyterLab's server loads jupyter_server and jupyter_events, with jsonschema (2-3 CPU-s): imported by
    # the tests that use it, not by every process that collects this file
    from jupyterlab_server.translation_utils import get_language_pack

    assert version("jupyterlab-language-pack-ja-JP").split(".")[0] == version("jupyterlab").split(".")[0]
    data, message = get_language_pack("ja_JP")
    assert message == ""
    assert data["jupyterlab"][""]["language"] == "ja-JP"
    assert any("ファイル" in str(v) for v in data["jupyterlab"].values())  # e.g. the File menu
