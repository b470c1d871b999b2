"""The configuration tree: one file, then the environment; wrong values refused naming the setting."""
from __future__ import annotations

import pytest
from traitlets.config import Config

from disclosure_review.workflow.policies import ReviewPolicy
from hub_config.authenticator import OnsiteAuthenticator
from hub_config.settings import HubSettings, load_hub_settings
from onsite.cli import main
from onsite.commands.settings import REFERENCE_PAGE, reference_page
from onsite_base.config import SettingInvalid, load_config
from onsite_base.settings import Settings


def test_the_committed_reference_page_is_current():
    assert REFERENCE_PAGE.read_text() == reference_page(), (
        "docs/reference/settings.md is stale: run `onsite settings --markdown > docs/reference/settings.md`")


def test_every_setting_has_help_and_every_variable_one_setting():
    from onsite.commands.settings import reference_classes

    variables = []
    for cls in reference_classes():
        for name, trait in cls.class_own_traits(config=True).items():
            assert trait.help.strip(), f"{cls.__name__}.{name} has no help"
            variables += [trait.metadata["env"]] if "env" in trait.metadata else []
    assert len(variables) == len(set(variables))


def test_the_environment_overrides_the_file(tmp_path):
    (tmp_path / "onsite_config.py").write_text(
        "c.Settings.language = 'en'\nc.HubSettings.idle_timeout_s = 600\nc.ReviewPolicy.required_approvals = 1\n")
    env = {"ONSITE_HOME": str(tmp_path), "ONSITE_IDLE_TIMEOUT_S": "120"}
    config = load_config([Settings, HubSettings, ReviewPolicy], env)
    assert Settings(config=config).language == "en"
    assert Settings(config=config).config_file == tmp_path / "onsite_config.py"
    assert HubSettings(config=config).idle_timeout_s == 120
    assert ReviewPolicy(config=config).required_approvals == 1
    assert Settings(config=config).environ()["ONSITE_CONFIG"] == str(tmp_path / "onsite_config.py")


def test_onsite_config_names_the_file_and_a_missing_one_is_refused(tmp_path):
    elsewhere = tmp_path / "etc" / "site.py"
    elsewhere.parent.mkdir()
    elsewhere.write_text("c.Settings.db_url = 'postgresql://onsite@db/onsite'\n")
    env = {"ONSITE_HOME": str(tmp_path / "home"), "ONSITE_CONFIG": str(elsewhere)}
    settings = Settings.load(env)
    assert settings.db_url == "postgresql://onsite@db/onsite" and settings.home == tmp_path / "home"
    with pytest.raises(SettingInvalid, match=r"\$ONSITE_CONFIG=.*missing.py does not exist"):
        Settings.load({**env, "ONSITE_CONFIG": str(tmp_path / "missing.py")})


@pytest.mark.parametrize(
    ("file", "env", "message"),
    [
        ("", {"ONSITE_LANGUAGE": "fr"}, r"Settings.language \(\$ONSITE_LANGUAGE\): 'fr' is not a session language"),
        ("", {"ONSITE_IDLE_TIMEOUT_S": "0"}, r"HubSettings.idle_timeout_s \(\$ONSITE_IDLE_TIMEOUT_S\): .*at least 1"),
        ("", {"ONSITE_HUB_PORT": "eighty"}, r"\$ONSITE_HUB_PORT='eighty' \(HubSettings.port\): expected an int"),
        ("c.HubSettings.idle_timout_s = 5\n", {}, r"HubSettings.idle_timout_s is not a setting; did you mean idle_timeout_s"),
        ("c.ReviewPolicy.required_approvals = 0\n", {}, r"ReviewPolicy.required_approvals: required_approvals must be at least 1"),
        ("c.ReviewPolicy.submission_budget_s = 300\n", {}, r"submission_budget_s must be positive and below 120 s"),
        ("c.ReviewPolicy.query_memory_limit = 'lots'\n", {}, r"'lots' is not a memory size"),
        ("c.HubSettings.port = 'x'\n", {}, r"HubSettings.port \(\$ONSITE_HUB_PORT\): .*expected an int"),
        ("c.HubSettings.production = True\n", {}, r"production profile .*ONSITE_HUB_DB_URL.* PostgreSQL .*ONSITE_SSL_CERT"),
        ("c.LdapSettings.server_uris = ['ldap://x']\nc.LdapSettings.pepole_base = 'ou=p'\n", {},
         r"LdapSettings.pepole_base is not a setting; did you mean people_base"),
        ("c.Settings.language = 'en\n", {}, r"the config file .*onsite_config.py could not be read: SyntaxError"),
    ],
)
def test_a_wrong_setting_stops_the_cli_naming_it(tmp_path, monkeypatch, capsys, file, env, message):
    """Every process reads the tree the same way; the CLI shows the refusal as `onsite: error:` and exits 2."""
    if file:
        (tmp_path / "onsite_config.py").write_text(file)
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingInvalid, match=message):
        load_hub_settings()
        ReviewPolicy.load()
    assert main(["settings"]) == 2
    assert "onsite: error: " in capsys.readouterr().err


def test_the_cli_settings_command_shows_values_without_passwords(tmp_path, monkeypatch, capsys):
    (tmp_path / "onsite_config.py").write_text("c.Settings.db_url = 'postgresql://onsite:s3cret@db/onsite'\n")
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path))
    monkeypatch.setenv("ONSITE_MAX_SESSION_S", "7200")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "Settings.db_url = 'postgresql://onsite:***@db/onsite'" in out and "s3cret" not in out
    assert "HubSettings.max_session_s = 7200" in out and "ReviewPolicy.required_approvals = 2" in out


def test_the_services_get_the_same_state_and_config_file(tmp_path):
    (tmp_path / "onsite_config.py").write_text("c.HubSettings.max_session_s = 0\n")
    # heavy: hub_config.config loads jupyterhub.app and with it jsonschema (2-3 CPU-s): imported by the one test
    # that builds a hub's configuration, not by every process that collects this file
    from hub_config.config import configure

    settings, hub, ldap = load_hub_settings({"ONSITE_HOME": str(tmp_path)})
    c = Config()
    configure(c, settings, hub, ldap)
    review = c.JupyterHub.services[0]
    assert review["environment"] == settings.environ()
    assert Settings.load(review["environment"]).config_file == tmp_path / "onsite_config.py"
    culler = c.JupyterHub.services[2]
    assert "--max-age=0" in culler["command"] and ldap is None


def test_keyword_construction_stays_as_before(tmp_path):
    settings = Settings(home=tmp_path, db_url="sqlite://")
    assert (settings.runtime_dir, settings.language, settings.config_file) == (tmp_path / "run", "ja", None)
    assert Settings(home=tmp_path).db_url == f"sqlite:///{tmp_path / 'onsite.sqlite'}"
    assert ReviewPolicy(required_approvals=1).required_approvals == 1
    c = Config()
    c.OnsiteAuthenticator.settings = settings
    assert OnsiteAuthenticator(config=c).settings is settings  # handed on, not copied
    with pytest.raises(ValueError, match="at least 1"):
        ReviewPolicy(required_approvals=0)
