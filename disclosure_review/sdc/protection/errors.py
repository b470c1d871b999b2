"""Exceptions of the protection methods; each message says what to fix."""
from __future__ import annotations


class InvalidTable(ValueError):
    """A table that protection cannot work on (not additive, incomplete, bad mask)."""


class InvalidProtectionLevel(ValueError):
    """Protection levels that are negative, not finite or do not match the table."""


class SuppressionInfeasible(RuntimeError):
    """No suppression pattern can give a cell its protection level (even suppressing all)."""


class SolverFailure(RuntimeError):
    """HiGHS stopped without an answer (time limit, numerical trouble)."""
