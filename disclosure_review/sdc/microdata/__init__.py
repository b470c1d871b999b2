"""Record-level disclosure risk and protection (sdcMicro parity), computed in DuckDB and numpy."""
from __future__ import annotations

from ._data import InvalidMicrodataInput
from .frequencies import Frequencies, frequencies
from .ldiversity import LDiversity, l_diversity
from .suda2 import Suda2Result, suda2
from .suppression import SuppressionMethod, local_suppression
from ._result import ProtectionMethod, ProtectionResult
from .risk import GlobalRisk, RiskMethod, global_risk, household_risk, individual_risk

__all__ = [
    "Frequencies",
    "LDiversity",
    "GlobalRisk",
    "InvalidMicrodataInput",
    "RiskMethod",
    "Suda2Result",
    "SuppressionMethod",
    "ProtectionMethod",
    "ProtectionResult",
    "frequencies",
    "global_risk",
    "household_risk",
    "individual_risk",
    "l_diversity",
    "local_suppression",
    "suda2",
]
