"""sdc: statistical disclosure control of research outputs (a pure library).

Shadow statistics in, verdicts out. The kernel (immediate feedback) and the review
service (the verdict that counts) call the same functions:

    rules = load_preset("acro-default")
    spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM survey", rows=("pref",), columns=("sex",))
    shadow = compute_shadow(con, spec, top_n=rules.top_n)
    report = check_table(shadow, rules)
"""
from __future__ import annotations

from .checks import CHECKS, CheckReport, CheckResult, check_table, checks_for
from .differencing import check_differencing
from .enums import Statistic, TableKind, Verdict
from .histogram import data_range, equal_width_edges, histogram_table_spec
from .models import check_model
from .rules import DEFAULT_PRESET, InvalidPreset, Rules, load_preset, preset_names
from .shadow import MARGIN_LABEL, ShadowError, ShadowTable, compute_shadow, shadow_from_frame
from .spec import InvalidSpec, TableSpec

__all__ = [
    "CHECKS", "CheckReport", "CheckResult", "DEFAULT_PRESET", "InvalidPreset", "InvalidSpec", "MARGIN_LABEL",
    "Rules", "ShadowError", "ShadowTable", "Statistic", "TableKind", "TableSpec", "Verdict", "check_table",
    "check_differencing", "check_model", "checks_for", "compute_shadow", "data_range",
    "equal_width_edges", "histogram_table_spec", "load_preset", "preset_names", "shadow_from_frame",
]
