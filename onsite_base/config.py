"""The one configuration tree: every setting a trait, read from one file, then the environment.

Each layer owns its settings as a `Section` (a traitlets `Configurable`):
`onsite_base.settings.Settings`, `hub_config.settings.HubSettings`,
`access_control.ldap.LdapSettings`, `disclosure_review.workflow.policies.ReviewPolicy`.
Every process (the hub, both web services, the `onsite` command) builds the
ones it needs from `load_config(classes)`:

1. the config file, a traitlets Python file (`c.Settings.db_url = "postgresql://..."`):
   `$ONSITE_CONFIG`, else `$ONSITE_HOME/onsite_config.py` (home default ./var),
   absent by default. The hub also applies it over its own JupyterHub
   configuration, so `c.JupyterHub.*`, `c.OnsiteSpawner.*` ... belong there too;
2. then the environment: a trait tagged `env="ONSITE_..."` is set from that
   variable when it is non-empty. The environment overrides the file.

A wrong value is refused when the section is built (`SettingInvalid`, a
`UserError`): the message names the setting, its variable, and what to fix.
The reference page docs/reference/settings.md is generated from the same
traits (`settings_reference`, `onsite settings --markdown`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from traitlets import Container, TraitError, TraitType, Undefined
from traitlets.traitlets import DefaultHandler
from traitlets.config import Config, Configurable, LazyConfigValue, PyFileConfigLoader

from onsite_base.errors import UserError

CONFIG_ENV = "ONSITE_CONFIG"
HOME_ENV = "ONSITE_HOME"
CONFIG_FILE_NAME = "onsite_config.py"


class SettingInvalid(UserError, ValueError):
    """A setting has a value Onsite cannot run with; the message names it and says what to fix."""


def default_home(environ: Mapping[str, str]) -> Path:
    """$ONSITE_HOME, else ./var (the checkout's state directory)."""
    return Path(environ.get(HOME_ENV) or Path.cwd() / "var").resolve()


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The config file every process reads: $ONSITE_CONFIG, else $ONSITE_HOME/onsite_config.py."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV)
    return Path(named).resolve() if named else default_home(env) / CONFIG_FILE_NAME


def read_config_file(path: Path) -> Config:
    """The traitlets config in `path`; an error in it is refused naming the file."""
    try:
        return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    except Exception as error:  # noqa: BLE001 - any error in the site's Python: show it, start nothing
        raise SettingInvalid(f"the config file {path} could not be read: {type(error).__name__}: {error}") from None


def env_name(cls: type[Configurable], name: str) -> str | None:
    """The environment variable of trait `name`, if it has one."""
    return cls.class_traits()[name].metadata.get("env")


def setting_name(cls: type[Configurable], name: str) -> str:
    """`Class.trait ($VARIABLE)`: how errors and docs name a setting."""
    variable = env_name(cls, name)
    return f"{cls.__name__}.{name}" + (f" (${variable})" if variable else "")


def from_environment(classes: Iterable[type[Configurable]], environ: Mapping[str, str]) -> Config:
    """The settings of `classes` given by non-empty environment variables (lists: separated by spaces)."""
    config = Config()
    for cls in classes:
        for name, trait in cls.class_traits(config=True).items():
            variable = trait.metadata.get("env")
            value = environ.get(variable) if variable else None
            if not value:
                continue
            try:
                parsed = trait.from_string_list(value.split()) if isinstance(trait, Container) else trait.from_string(value)
            except ValueError as error:
                raise SettingInvalid(f"${variable}={value!r} ({cls.__name__}.{name}): expected {trait.info()}; "
                                     f"{error}") from None
            config[cls.__name__][name] = parsed
    return config


def load_config(classes: Iterable[type[Configurable]], environ: Mapping[str, str] | None = None) -> Config:
    """The config file, then the environment variables of `classes` over it.

    A file named by $ONSITE_CONFIG must exist; the default one may be absent.
    The file read is recorded as `Settings.config_file` so child processes read it too.
    """
    env = os.environ if environ is None else environ
    path = config_file(env)
    config = Config()
    if path.is_file():
        config.merge(read_config_file(path))
    elif env.get(CONFIG_ENV):
        raise SettingInvalid(f"${CONFIG_ENV}={env[CONFIG_ENV]} does not exist: create it or unset ${CONFIG_ENV}")
    config.merge(from_environment(classes, env))
    if path.is_file():
        config.Settings.config_file = path
    return config


class Section(Configurable):
    """A class of the configuration tree. Built from a `Config` and keywords (keywords win).

    Unlike a plain `Configurable` it refuses, naming the setting, what would
    otherwise run wrong: an unknown option (a typo), a value of the wrong type
    or one its `@validate` rejects, and, in `check()`, a combination of settings.
    """

    invalid: ClassVar[type[SettingInvalid]] = SettingInvalid
    """What a refused setting raises (a section may name its own subclass)."""

    def __init__(self, config: Config | None = None, **kwargs: Any) -> None:
        super().__init__()
        cls = type(self)
        settable = self.traits(config=True)
        values: dict[str, Any] = dict(self._find_my_config(config or Config()))
        for name, value in values.items():
            if name not in settable and not isinstance(value, Config):
                close = get_close_matches(name, settable)
                hint = f"; did you mean {close[0]}?" if close else f"; the settings are {', '.join(sorted(settable))}"
                raise self.invalid(f"{cls.__name__}.{name} is not a setting{hint}")
        for name, value in {**values, **kwargs}.items():
            if isinstance(value, Config):
                continue
            if isinstance(value, LazyConfigValue):  # c.X.items.append(...) in the file
                value = value.get_value(getattr(self, name))
            try:
                setattr(self, name, value)
            except TraitError as error:
                raise self.invalid(f"{setting_name(cls, name)}: {error}") from None
        self.check()

    def check(self) -> None:
        """Refuse (SettingInvalid) a combination of settings that cannot work. Subclasses override."""

    def __deepcopy__(self, memo: dict) -> Section:
        # traitlets deep-copies config values: a section handed on through a Config
        # (c.OnsiteSpawner.settings = settings) stays the one object the process read.
        return self

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None):
        """This section from the config file and the environment (default `os.environ`)."""
        return cls(config=load_config([cls], environ))


def _default_text(cls: type[Configurable], name: str, trait: TraitType) -> str:
    dynamic = any(isinstance(v, DefaultHandler) and v.trait_name == name for c in cls.mro() for v in vars(c).values())
    value = Undefined if dynamic else trait.default()
    if value is Undefined:
        return "computed (see below)"
    if isinstance(value, Enum):
        return f"`{value.name}`"
    return f"`{value!r}`"


def settings_reference(classes: Iterable[type[Configurable]], title: str, intro: str) -> str:
    """Markdown reference of the settings each class defines itself (not those it inherits)."""
    lines = [f"# {title}", "", intro.strip(), ""]
    for cls in classes:
        own = dict(sorted(cls.class_own_traits(config=True).items()))
        if not own:
            continue
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        lines += [f"## {cls.__name__}", "", f"`{cls.__module__}.{cls.__name__}`: {summary}", "",
                  "| setting | type | default | environment |", "|---|---|---|---|"]
        for name, trait in own.items():
            variable = trait.metadata.get("env")
            lines.append(f"| `{name}` | {type(trait).__name__} | {_default_text(cls, name, trait)} "
                         f"| {f'`{variable}`' if variable else ''} |")
        lines.append("")
        for name, trait in own.items():
            lines += [f"### {cls.__name__}.{name}", "", " ".join((trait.help or "(no help)").split()), ""]
    return "\n".join(lines).rstrip() + "\n"
