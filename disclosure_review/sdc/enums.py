"""Enums of the disclosure-control library.

Values are stored in request JSON and in the workflow's database: changing a
value is a data migration.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable


class Verdict(enum.Enum):
    """Outcome of a check, of an output, of a cell."""

    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"

    @classmethod
    def combine(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """Fail if any fails, else review if any reviews, else pass.

        An empty set could not be decided, so it is review, never pass.
        """
        seen = set(verdicts)
        if not seen:
            return cls.REVIEW
        if cls.FAIL in seen:
            return cls.FAIL
        if cls.REVIEW in seen:
            return cls.REVIEW
        return cls.PASS


class TableKind(enum.Enum):
    """Frequency tables count records; magnitude tables aggregate a value variable."""

    FREQUENCY = "frequency"
    MAGNITUDE = "magnitude"


class Statistic(enum.Enum):
    """The statistic a table releases per cell."""

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    MEDIAN = "median"
    P10 = "p10"
    P25 = "p25"
    P75 = "p75"
    P90 = "p90"
    MIN = "min"
    MAX = "max"
    MODE = "mode"
    STD = "std"
    VAR = "var"

    @property
    def is_dominance(self) -> bool:
        """Totals and means: a large contributor can be estimated from them."""
        return self in (Statistic.SUM, Statistic.MEAN)

    @property
    def is_single_unit_value(self) -> bool:
        """Order statistics: the released number is (or may be) one unit's own value."""
        return self in (Statistic.MEDIAN, Statistic.MIN, Statistic.MAX, Statistic.MODE, *PERCENTILES)

    @property
    def quantile(self) -> float | None:
        """The fraction of a quantile statistic (median 0.5, p25 0.25, …), else None."""
        if self is Statistic.MEDIAN:
            return 0.5
        return int(self.value[1:]) / 100 if self in PERCENTILES else None

    @property
    def is_spread(self) -> bool:
        return self in (Statistic.STD, Statistic.VAR)

    @property
    def weightable(self) -> bool:
        """Statistics that the shadow computation can weight by a sampling weight."""
        return self in (Statistic.COUNT, Statistic.SUM, Statistic.MEAN)


PERCENTILES = (Statistic.P10, Statistic.P25, Statistic.P75, Statistic.P90)


class ProtectionMethod(enum.Enum):
    """How a table is protected before release (TableSpec.protection)."""

    SUPPRESS = "suppress"  # failing cells blank, secondary cells so the margins cannot recompute them
    ROUND = "round"  # interior cells rounded to a base, margins summed from them
    # cells failing a check blank, the other interior cells rounded, margins summed from those shown
    # (redact-then-round: OpenSAFELY's "redact <= 7, then round to 5", issue 12's "Australian DataLab style")
    REDACT_ROUND = "redact_round"
    DELETE_RECORDS = "delete_records"  # records of failing cells deleted and the query re-run (ACRO #198)

    @property
    def rounds(self) -> bool:
        """Methods that round to a base (and take `base`)."""
        return self in (ProtectionMethod.ROUND, ProtectionMethod.REDACT_ROUND)


class SecondaryMethod(enum.Enum):
    """Secondary suppression algorithm (sdc.protection)."""

    HYPERCUBE = "hypercube"  # fast heuristic
    OPTIMAL = "optimal"  # mixed-integer programme, fewest cells / smallest total
    HIERARCHICAL = "hierarchical"  # large hierarchical tables: hypercubes of flows, certified audit
