"""Record-level outputs (extracts) as declarative specs, and the preset's record-level rules.

An extract is a query over granted datasets whose result is released record by
record. Its spec names the key, weight, household and sensitive variables the
kernel used; the review service adds the datasets' declared variables itself
and never lets the spec remove one (see `declared_roles`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from disclosure_review.sdc.rules import InvalidPreset, preset_names
from disclosure_review.sdc.spec import NAME_RE, InvalidSpec, check_identifier, check_query

from disclosure_review.sdc.enums import Verdict

from .check import RecordLevelCheck, RecordLevelFinding, RecordLevelRules, check_record_level

EXTRACT_SPEC_VERSION = 1
EXTRACT_KIND = "extract"


@dataclasses.dataclass(frozen=True)
class ExtractSpec:
    """A record-level output: every record of `query`'s result, checked on its key variables."""

    query: str
    name: str = "extract"
    keys: tuple[str, ...] = ()
    weight: str | None = None
    household: str | None = None
    sensitive: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "query", check_query(self.query))
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise InvalidSpec(f"name {self.name!r}: use 1-100 letters, digits, _ . - (starting with a letter or "
                              "digit); it becomes a file name")
        for field in ("keys", "sensitive"):
            values = getattr(self, field)
            if isinstance(values, str) or not isinstance(values, Sequence):
                raise InvalidSpec(f"{field} must be a list of variable names")
            object.__setattr__(self, field, tuple(check_identifier(v, f"{field} variable") for v in values))
        for field in ("weight", "household"):
            if getattr(self, field) is not None:
                check_identifier(getattr(self, field), field)

    def to_dict(self) -> dict[str, Any]:
        return {"version": EXTRACT_SPEC_VERSION, "kind": EXTRACT_KIND, "name": self.name, "query": self.query,
                "keys": list(self.keys), "weight": self.weight, "household": self.household,
                "sensitive": list(self.sensitive)}

    @classmethod
    def from_dict(cls, data: Any) -> ExtractSpec:
        if not isinstance(data, Mapping):
            raise InvalidSpec("an extract spec must be a JSON object")
        known = {"version", "kind", "name", "query", "keys", "weight", "household", "sensitive"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidSpec(f"unknown key(s) {unknown} in extract spec; known keys are {sorted(known)}")
        missing = sorted({"version", "name", "query"} - set(data))
        if missing:
            raise InvalidSpec(f"extract spec lacks {missing}")
        if data["version"] != EXTRACT_SPEC_VERSION:
            raise InvalidSpec(f"extract spec version {data['version']!r} is not supported "
                              f"(expected {EXTRACT_SPEC_VERSION})")
        if data.get("kind", EXTRACT_KIND) != EXTRACT_KIND:
            raise InvalidSpec(f"extract spec kind must be {EXTRACT_KIND!r}")
        for field in ("keys", "sensitive"):
            if field in data and not isinstance(data[field], list):
                raise InvalidSpec(f"{field} must be a list of variable names")
        return cls(query=data["query"], name=data["name"], keys=tuple(data.get("keys", [])),
                   weight=data.get("weight"), household=data.get("household"),
                   sensitive=tuple(data.get("sensitive", [])))


@dataclasses.dataclass(frozen=True)
class DeclaredRoles:
    """The variables of an extract's result by role, as the source datasets declare them."""

    keys: tuple[str, ...]
    weight: str | None
    household: str | None
    sensitive: tuple[str, ...]
    undeclared: tuple[str, ...]  # result columns that are no declared variable (renamed or derived)


def declared_roles(columns: Sequence[str], datasets: Sequence[Any], extra_keys: Sequence[str] = ()) -> DeclaredRoles:
    """Roles of `columns` from the datasets' metadata (`key_variables`, `weight`, `names(role)`).

    `extra_keys` (the researcher's own choice) are added, never used to drop a
    declared key variable. A column declared with different roles in two
    datasets takes the riskier one (key before sensitive before anything else).
    """
    from_role: dict[str, set[str]] = {"KEY": set(), "WEIGHT": set(), "HOUSEHOLD": set(), "SENSITIVE": set()}
    declared: set[str] = set()
    for meta in datasets:
        for variable in meta.variables:
            declared.add(variable.name)
            role = getattr(variable.role, "name", str(variable.role))
            if role in from_role:
                from_role[role].add(variable.name)
    cols = list(columns)
    keys = [c for c in cols if c in from_role["KEY"] or c in extra_keys]
    weights = [c for c in cols if c in from_role["WEIGHT"] and c not in keys]
    households = [c for c in cols if c in from_role["HOUSEHOLD"] and c not in keys]
    sensitive = [c for c in cols if c in from_role["SENSITIVE"] and c not in keys]
    return DeclaredRoles(
        tuple(keys),
        weights[0] if len(weights) == 1 else None,  # two weights: no one weight applies, so risk is unweighted
        households[0] if len(households) == 1 else None,
        tuple(sensitive),
        tuple(c for c in cols if c not in declared),
    )


def _preset_document(preset: str | Path) -> Mapping[str, Any]:
    path = Path(preset)
    if isinstance(preset, str) and preset in preset_names():
        text = (resources.files("disclosure_review.sdc") / "presets" / f"{preset}.yaml").read_text("utf-8")
    elif path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text("utf-8")
    else:
        raise InvalidPreset(f"no preset {str(preset)!r}: give one of {preset_names()} or a .yaml preset file")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPreset(f"preset {str(preset)!r} is not valid YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise InvalidPreset(f"preset {str(preset)!r} must be a YAML mapping")
    return document


def record_level_rules(preset: str | Path) -> RecordLevelRules:
    """The `record_level:` rules of a preset; a preset without that section switches every rule off.

    With every rule off `check_record_level` says review: nothing passes unchecked.
    """
    section = _preset_document(preset).get("record_level")
    if section is None:
        return RecordLevelRules(**{f.name: None for f in dataclasses.fields(RecordLevelRules)})
    if not isinstance(section, Mapping):
        raise InvalidPreset(f"preset {str(preset)!r}: record_level must be a mapping of rule → value")
    try:
        rules = RecordLevelRules.from_mapping(section)
    except ValueError as exc:
        raise InvalidPreset(f"preset {str(preset)!r}: {exc}") from None
    return rules


@dataclasses.dataclass(frozen=True)
class ExtractCheck:
    """An extract's check, the same in the kernel and in the review service."""

    roles: DeclaredRoles
    check: RecordLevelCheck
    verdict: Verdict
    findings: tuple[RecordLevelFinding, ...]


def check_extract(table: Any, datasets: Sequence[Any], extra_keys: Sequence[str], rules: RecordLevelRules) -> ExtractCheck:
    """Roles from the datasets' metadata, the record-level rules, and review for
    result columns no dataset declares (renamed or derived: a person must judge them)."""
    roles = declared_roles(table.column_names, datasets, extra_keys)
    check = check_record_level(table, keys=roles.keys, weight=roles.weight, household=roles.household,
                               sensitive=roles.sensitive, rules=rules)
    findings = tuple(check.findings)
    if roles.undeclared:
        findings += (RecordLevelFinding(
            "undeclared_variables", Verdict.REVIEW, "undeclared_variables", {"count": len(roles.undeclared)},
            {"columns": list(roles.undeclared)},
        ),)
    verdict = Verdict.combine([check.verdict, Verdict.REVIEW]) if roles.undeclared else check.verdict
    return ExtractCheck(roles, check, verdict, findings)
