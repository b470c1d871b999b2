"""Protection of additive tables: cell suppression, the feasible-interval audit, rounding, recoding.

Pure library (numpy, scipy, highspy, polars). Build a `LinkedTable` from a
frame of cells (`LinkedTable.from_frame`, or `from_shadow` for shadow
tables), choose `ProtectionLevels`, then `suppress_optimal` /
`suppress_hypercube` (or `suppress_hierarchical` for large hierarchical tables,
judged by `certified_audit`) and `audit` any pattern; `round_to_base`,
`controlled_round` and `merge_small_categories` are the other protections.
See docs/reference/protection.md.
"""
from __future__ import annotations

from .audit import AuditReport, CellInterval, IntervalSolver, IntervalStatus, audit
from .errors import InvalidProtectionLevel, InvalidTable, SolverFailure, SuppressionInfeasible
from .hierarchical import certified_audit
from .levels import ProtectionLevels
from .recode import Recoding, merge_small_categories
from .rounding import RoundingInfeasible, RoundingMode, controlled_round, round_to_base
from .suppression import (
    CellStatus,
    CostFunction,
    SuppressionMethod,
    SuppressionResult,
    secondary_suppression,
    suppress_hierarchical,
    suppress_hypercube,
    suppress_optimal,
)
from .table import TOTAL, LinkedTable, from_shadow, with_margins

__all__ = [
    "TOTAL",
    "AuditReport",
    "CellInterval",
    "CellStatus",
    "CostFunction",
    "IntervalSolver",
    "IntervalStatus",
    "InvalidProtectionLevel",
    "InvalidTable",
    "LinkedTable",
    "ProtectionLevels",
    "Recoding",
    "RoundingInfeasible",
    "RoundingMode",
    "SolverFailure",
    "SuppressionInfeasible",
    "SuppressionMethod",
    "SuppressionResult",
    "audit",
    "certified_audit",
    "controlled_round",
    "from_shadow",
    "merge_small_categories",
    "round_to_base",
    "secondary_suppression",
    "suppress_hierarchical",
    "suppress_hypercube",
    "suppress_optimal",
    "with_margins",
]
