"""Rule presets: the numbers the checks use, from versioned YAML files.

A number a preset does not set is `None`: the checks that need it cannot decide
and say `review` (never `pass`). Switches that a preset leaves out take their
stricter setting.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .enums import Verdict

PRESET_VERSION = 1
DEFAULT_PRESET = "acro-default"


class InvalidPreset(ValueError):
    """A preset file or override that cannot be used; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Rules:
    """Typed, validated rule numbers. See docs/reference/sdc-rules.md for each rule."""

    name: str = "custom"
    # Minimum number of contributors (records, or units when the table declares a unit) per cell.
    threshold: int | None = None
    # Whether a cell of count 0 (or a magnitude cell whose contributions are all 0) is disclosive.
    zeros_disclosive: bool = True
    # NK dominance: a cell fails when its nk_n largest contributions make up >= nk_k of its total.
    nk_n: int | None = None
    nk_k: float | None = None
    # p% rule: a cell fails when (total - largest - second) < p_ratio * largest.
    p_ratio: float | None = None
    # Minimum residual degrees of freedom for models, and n - 1 for standard deviations.
    dof_threshold: int | None = None
    # Models: a model fails when its parameters exceed max_parameter_ratio x its observations
    # (DataSHIELD's nfilter.glm test for over-saturated models; 0.33 is roughly 3 observations per parameter).
    max_parameter_ratio: float | None = None
    # Base for rounding protection (used by sdc.protection).
    round_base: int | None = None
    # Cells with missing values are sent to review (ACRO's own default leaves them unchecked).
    check_missing: bool = True
    # Verdict for statistics that are (or may be) one unit's own value: min, max, median, mode.
    single_unit_stats_verdict: Verdict = Verdict.FAIL
    # Verdict when all of a row or column group falls in one category (group attribute disclosure).
    class_disclosure_verdict: Verdict = Verdict.FAIL
    # Verdict when a new table differenced with a released one reveals a cell below threshold.
    differencing_verdict: Verdict = Verdict.FAIL
    # Suppression patterns must pass the feasible-interval audit (sdc.protection).
    interval_audit: bool = True

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise InvalidPreset(f"rules {self.name!r}: " + "; ".join(problems))

    @property
    def top_n(self) -> int:
        """How many largest contributions the shadow statistics must keep for these rules."""
        return max(2, self.nk_n or 2)

    def replace(self, **changes: Any) -> Rules:
        """A copy with some numbers changed (operators edit presets); validated like a preset."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InvalidPreset(f"unknown rule(s) {unknown}; known rules are {sorted(RULE_FIELDS)}")
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: (v.value if isinstance(v, Verdict) else v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rules:
        unknown = sorted(set(data) - set(RULE_FIELDS) - {"name"})
        if unknown:
            raise InvalidPreset(f"unknown rule(s) {unknown}; known rules are {sorted(RULE_FIELDS)}")
        return cls(**{k: _coerce(k, v) for k, v in data.items()})


RULE_FIELDS = {f.name: f for f in dataclasses.fields(Rules) if f.name != "name"}
_INT_MIN = {"threshold": 1, "nk_n": 1, "dof_threshold": 1, "round_base": 1}
_FRACTIONS = {"nk_k": (0.0, 1.0, "0 < nk_k <= 1"), "p_ratio": (0.0, 1.0, "0 < p_ratio < 1"),
              "max_parameter_ratio": (0.0, 1.0, "0 < max_parameter_ratio <= 1")}
_VERDICT_FIELDS = ("single_unit_stats_verdict", "class_disclosure_verdict", "differencing_verdict")
_BOOL_FIELDS = ("zeros_disclosive", "check_missing", "interval_audit")


def _coerce(key: str, value: Any) -> Any:
    if key in _VERDICT_FIELDS and isinstance(value, str):
        try:
            return Verdict(value)
        except ValueError:
            raise InvalidPreset(f"{key}: {value!r} is not 'fail' or 'review'") from None
    return value


def _problems(rules: Rules) -> Any:
    for key, minimum in _INT_MIN.items():
        value = getattr(rules, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            yield f"{key} must be a whole number >= {minimum} (got {value!r})"
    for key, (low, high, text) in _FRACTIONS.items():
        value = getattr(rules, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            yield f"{key} must be a number with {text} (got {value!r})"
        elif not (low < value < high if key == "p_ratio" else low < value <= high):
            yield f"{key} must satisfy {text} (got {value!r})"
    if (rules.nk_n is None) != (rules.nk_k is None):
        yield "nk_n and nk_k are set together or not at all"
    for key in _BOOL_FIELDS:
        if not isinstance(getattr(rules, key), bool):
            yield f"{key} must be true or false (got {getattr(rules, key)!r})"
    for key in _VERDICT_FIELDS:
        if getattr(rules, key) not in (Verdict.FAIL, Verdict.REVIEW):
            yield f"{key} must be 'fail' or 'review' (got {getattr(rules, key)!r})"


def preset_names() -> list[str]:
    folder = resources.files(__package__) / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name_or_path: str | Path, **overrides: Any) -> Rules:
    """Rules from a bundled preset name (`acro-default`, `sdc-handbook`, `jp-onsite`) or a YAML path.

    File layout: ``version: 1``, ``name``, ``description``, ``sources`` (list) and
    ``rules`` (mapping of rule → value). `overrides` change single rules afterwards.
    """
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in preset_names():
        text = (resources.files(__package__) / "presets" / f"{name_or_path}.yaml").read_text("utf-8")
    elif path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text("utf-8")
    else:
        raise InvalidPreset(
            f"no preset {str(name_or_path)!r}: give one of {preset_names()} or the path of a .yaml preset file"
        )
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPreset(f"preset {str(name_or_path)!r} is not valid YAML: {exc}") from None
    rules = rules_from_document(document, str(name_or_path))
    return rules.replace(**overrides) if overrides else rules


def rules_from_document(document: Any, origin: str) -> Rules:
    if not isinstance(document, Mapping):
        raise InvalidPreset(f"preset {origin!r} must be a YAML mapping")
    unknown = sorted(set(document) - {"version", "name", "description", "sources", "rules", "omitted", "record_level"})
    # `omitted` names numbers the preset's sources do not give: they stay unset (checks say review).
    # `record_level` holds the record-level (extract) rules, read by sdc.microdata.record_level_rules.
    if unknown:
        raise InvalidPreset(f"preset {origin!r}: unknown key(s) {unknown}")
    if document.get("version") != PRESET_VERSION:
        raise InvalidPreset(f"preset {origin!r}: version must be {PRESET_VERSION} (got {document.get('version')!r})")
    if not isinstance(document.get("name"), str) or not isinstance(document.get("rules"), Mapping):
        raise InvalidPreset(f"preset {origin!r} needs a 'name' (text) and 'rules' (mapping)")
    omitted = document.get("omitted", [])
    if not isinstance(omitted, list) or not set(omitted) <= set(RULE_FIELDS) or set(omitted) & set(document["rules"]):
        raise InvalidPreset(
            f"preset {origin!r}: 'omitted' must list rule names that the preset does not set (got {omitted!r})"
        )
    try:
        return Rules.from_dict({"name": document["name"], **document["rules"]})
    except InvalidPreset as exc:
        raise InvalidPreset(f"preset {origin!r}: {exc}") from None
