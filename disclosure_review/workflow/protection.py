"""Protection chosen by a reviewer for a table output, and the table spec the service recomputes with it.

A reviewer picks a protection method (`sdc.Protection`: suppression with a
secondary algorithm, rounding to a base, record deletion), none, or the one
the researcher declared, and may merge levels of one row or column variable
(recoding). The service never edits cells: merging rewrites the recorded
query (a CASE over the variable) and the protection goes into the spec, so
the table is recomputed from the source data and checked again exactly as
a submitted one (`recompute.recompute_table`).

For a record-level extract the one choice is targeted record swapping
(`SWAP`, `sdc.microdata.SwapOptions`): the service re-runs the extract and
swaps its households (`extracts.recompute_extract`). Its parameters, above all
the seed, would let the researcher replay the swap on the data they hold: they
stay with reviewers (`public_choice` is what the researcher and the package get).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from disclosure_review.sdc.enums import ProtectionMethod, SecondaryMethod
from disclosure_review.sdc.microdata import SwapOptions
from disclosure_review.sdc.shadow import MARGIN_LABEL
from disclosure_review.sdc.spec import MAX_ROUND_BASE, InvalidSpec, Protection, TableSpec, quote_identifier
from disclosure_review.workflow.exceptions import ProtectionInvalid

CHOICE_VERSION = 1
SUBMITTED = "submitted"  # the protection the researcher declared (or none), as submitted
NONE = "none"
METHODS = (SUBMITTED, NONE, *(m.value for m in ProtectionMethod))
"""Choices for a table."""
SWAP = "record_swap"
EXTRACT_METHODS = (NONE, SWAP)
"""Choices for a record-level extract: as submitted, or with targeted record swapping."""
MAX_SWAP_VARIABLES = 20
MAX_SEED = 2**63 - 1
MAX_LABEL = 100
MAX_MERGED_LEVELS = 1000


@dataclasses.dataclass(frozen=True)
class Merge:
    """Levels of one row or column variable released as one level named `label`."""

    variable: str
    levels: tuple[str, ...]
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "levels": list(self.levels), "label": self.label}


@dataclasses.dataclass(frozen=True)
class ProtectionChoice:
    """What a reviewer chose: `method` is one of METHODS; `protection` is set for the sdc methods."""

    method: str
    protection: Protection | None = None
    merge: Merge | None = None
    swapping: SwapOptions | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CHOICE_VERSION,
            "method": self.method,
            "protection": None if self.protection is None else self.protection.to_dict(),
            "merge": None if self.merge is None else self.merge.to_dict(),
            "swapping": None if self.swapping is None else self.swapping.to_dict(),
        }


def public_choice(choice: Mapping[str, Any]) -> dict[str, Any]:
    """A stored choice as the researcher and the release package may see it: record swapping without its
    parameters (with the seed and the variables, the swap could be replayed on the data the researcher holds)."""
    return {key: value for key, value in choice.items() if key != "swapping"}


def parse_choice(method: str, *, base: str = "", secondary: str = "", merge_variable: str = "",
                 merge_levels: str | Sequence[str] = "", merge_label: str = "", swap_hierarchy: str = "",
                 swap_similar: str = "", swap_rate: str = "", swap_seed: str = "") -> ProtectionChoice:
    """A choice from form text. Parameters of other methods are ignored; bad ones raise `ProtectionInvalid`."""
    method = (method or "").strip()
    if method == SWAP:
        return ProtectionChoice(SWAP, swapping=parse_swapping(swap_hierarchy, swap_similar, swap_rate, swap_seed))
    if method not in METHODS:
        raise ProtectionInvalid(f"choose a protection method: one of {', '.join(METHODS)}", key="protection_method",
                                methods=", ".join(METHODS))
    protection = None
    if method in (ProtectionMethod.ROUND.value, ProtectionMethod.REDACT_ROUND.value):
        protection = Protection(ProtectionMethod(method), base=_base(base))
    elif method == ProtectionMethod.SUPPRESS.value:
        try:
            algorithm = SecondaryMethod((secondary or SecondaryMethod.HYPERCUBE.value).strip())
        except ValueError:
            names = ", ".join(m.value for m in SecondaryMethod)
            raise ProtectionInvalid(f"secondary suppression must be one of {names}", key="protection_secondary",
                                    methods=names) from None
        protection = Protection(ProtectionMethod.SUPPRESS, secondary=algorithm)
    elif method == ProtectionMethod.DELETE_RECORDS.value:
        protection = Protection(ProtectionMethod.DELETE_RECORDS)
    return ProtectionChoice(method, protection, _merge(merge_variable, merge_levels, merge_label))


def parse_swapping(hierarchy: str, similar: str, rate: str, seed: str) -> SwapOptions:
    """Record swapping from form text: variable names separated by commas or lines (hierarchy highest level first),
    the share of households to swap (0 to 1) and a whole-number seed."""
    levels, profile = _variable_names(hierarchy), _variable_names(similar)
    if not levels:
        raise ProtectionInvalid("name the geographic hierarchy to swap along, highest level first",
                                key="swap_hierarchy_missing")
    if len(levels) + len(profile) > MAX_SWAP_VARIABLES:
        raise ProtectionInvalid(f"name at most {MAX_SWAP_VARIABLES} hierarchy and similarity variables",
                                key="swap_too_many", limit=MAX_SWAP_VARIABLES)
    both = [v for v in profile if v in levels]
    if both:
        raise ProtectionInvalid(f"{', '.join(both)}: a hierarchy variable cannot also be a similarity variable",
                                key="swap_variable_twice", variables=", ".join(both))
    try:
        share = float((rate or "").strip())
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:  # also refuses nan
        raise ProtectionInvalid(f"the swap rate must be a number above 0 and at most 1 (got {rate!r})",
                                key="swap_rate", value=rate)
    text = (seed or "").strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEED:
        raise ProtectionInvalid(f"the seed must be a whole number from 0 to {MAX_SEED} (got {seed!r})",
                                key="swap_seed", limit=MAX_SEED, value=seed)
    return SwapOptions(hierarchy=levels, seed=int(text), swap_rate=share, similar=(profile,) if profile else ())


def _variable_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for n in (text or "").replace(",", "\n").splitlines() if n.strip()))


def check_swap_variables(options: SwapOptions, columns: Sequence[str]) -> None:
    """Refuse hierarchy or similarity variables that are no column of the extract."""
    named = [*options.hierarchy, *(v for profile in options.similar for v in profile)]
    unknown = [v for v in named if v not in columns]
    if unknown:
        raise ProtectionInvalid(
            f"{', '.join(unknown)}: not a variable of this extract (its variables: {', '.join(columns)})",
            key="swap_variable_unknown", variables=", ".join(unknown), known=", ".join(columns))


def _base(text: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None  # the preset's round_base
    try:
        base = int(text)
    except ValueError:
        base = 0
    if not 1 <= base <= MAX_ROUND_BASE:
        raise ProtectionInvalid(f"the rounding base must be a whole number from 1 to {MAX_ROUND_BASE} (got {text!r})",
                                key="protection_base", limit=MAX_ROUND_BASE, value=text)
    return base


def _merge(variable: str, levels: str | Sequence[str], label: str) -> Merge | None:
    variable = (variable or "").strip()
    if isinstance(levels, str):
        levels = levels.splitlines()
    names = tuple(dict.fromkeys(level.strip() for level in levels if level.strip()))
    label = (label or "").strip()
    if not variable:
        if names or label:
            raise ProtectionInvalid("choose the variable whose levels are merged", key="merge_variable_missing")
        return None
    if len(names) < 2 or len(names) > MAX_MERGED_LEVELS:
        raise ProtectionInvalid(f"name 2 to {MAX_MERGED_LEVELS} levels of {variable} to merge, one per line",
                                key="merge_levels_few", variable=variable, limit=MAX_MERGED_LEVELS)
    if not label or len(label) > MAX_LABEL or label == MARGIN_LABEL:
        raise ProtectionInvalid(
            f"name the merged level: 1 to {MAX_LABEL} characters, not {MARGIN_LABEL!r} (the margins' label)",
            key="merge_label", limit=MAX_LABEL, total=MARGIN_LABEL)
    return Merge(variable, names, label)


def dimension_levels(recomputed: Mapping[str, Any] | None, dimensions: Sequence[str]) -> dict[str, list[str]]:
    """The levels of each dimension in a released view (margins and missing levels left out).

    A margin is not known by the text "Total" (a level can be named so): the view's last row is its grand total,
    whose label in every dimension is the table's margin label (`ShadowTable.margin_label`)."""
    levels: dict[str, list[str]] = {d: [] for d in dimensions}
    rows = list(recomputed.get("rows", [])) if recomputed else []
    if not rows:
        return levels
    columns = list(recomputed.get("columns", []))
    for dim in dimensions:
        if dim not in columns:
            continue
        index = columns.index(dim)
        margin = rows[-1][index]
        seen = dict.fromkeys(row[index] for row in rows)
        levels[dim] = [str(v) for v in seen if v is not None and v != margin]
    return levels


def recoding_query(query: str, merge: Merge) -> str:
    """`query` with the merged levels of `merge.variable` replaced by `merge.label` (the variable becomes text)."""
    column = quote_identifier(merge.variable)
    levels = ", ".join(_text_literal(level) for level in merge.levels)
    return (f"SELECT * REPLACE (CASE WHEN CAST({column} AS VARCHAR) IN ({levels}) THEN {_text_literal(merge.label)} "
            f"ELSE CAST({column} AS VARCHAR) END AS {column}) FROM (\n{query}\n) AS recoded")


def _text_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def protected_spec(submitted: TableSpec, choice: ProtectionChoice, known_levels: Mapping[str, Sequence[str]]) -> TableSpec:
    """The researcher's spec with the reviewer's choice: the spec the service recomputes and releases.

    `known_levels`: the levels of each dimension in the table as submitted (empty when it
    could not be computed), to refuse merging a level that does not exist.
    """
    protection = submitted.protection if choice.method == SUBMITTED else choice.protection
    query = submitted.query
    merge = choice.merge
    if merge is not None:
        if merge.variable not in submitted.dimensions:
            raise ProtectionInvalid(
                f"{merge.variable!r} is not a row or column variable of this table ({', '.join(submitted.dimensions)})",
                key="merge_variable_unknown", variable=merge.variable, variables=", ".join(submitted.dimensions))
        if submitted.is_histogram:
            raise ProtectionInvalid("a histogram's bins cannot be merged: the researcher chooses other bin edges",
                                    key="merge_histogram")
        known = list(known_levels.get(merge.variable) or [])
        if known:
            unknown = [level for level in merge.levels if level not in known]
            if unknown:
                raise ProtectionInvalid(
                    f"{', '.join(unknown)}: not a level of {merge.variable} (its levels: {', '.join(known)})",
                    key="merge_level_unknown", levels=", ".join(unknown), variable=merge.variable,
                    known=", ".join(known))
            if merge.label in known and merge.label not in merge.levels:
                raise ProtectionInvalid(
                    f"{merge.label!r} is already another level of {merge.variable}: choose another name",
                    key="merge_label_taken", label=merge.label, variable=merge.variable)
        query = recoding_query(query, merge)
    try:
        return dataclasses.replace(submitted, query=query, protection=protection)
    except InvalidSpec as exc:
        if protection is not None and submitted.statistic.value not in ("count", "sum"):
            raise ProtectionInvalid(str(exc), key="protection_statistic", statistic=submitted.statistic.value) from None
        raise ProtectionInvalid(str(exc), key="protection_spec", detail=str(exc)) from None


def check_merged(recomputed: Mapping[str, Any] | None, merge: Merge | None) -> None:
    """After recomputation: no merged level is left (else the CASE did not match its text in the data)."""
    if merge is None or not recomputed:
        return
    levels = set(dimension_levels(recomputed, [merge.variable])[merge.variable])
    left = [level for level in merge.levels if level in levels and level != merge.label]
    if left:
        raise ProtectionInvalid(
            f"level(s) {', '.join(left)} of {merge.variable} could not be matched in the data: check their spelling",
            key="merge_unmatched", levels=", ".join(left), variable=merge.variable)
