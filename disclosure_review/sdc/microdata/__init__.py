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

from .infoloss import InformationLoss, il1s, il_correl, information_loss  # noqa: E402
from .perturbation import NoiseMethod, add_noise, microaggregation, pram  # noqa: E402
from .recoding import CodingSide, RecodeMethod, global_recode, recode_categories, top_bottom_code  # noqa: E402

__all__ += [
    "CodingSide",
    "InformationLoss",
    "NoiseMethod",
    "RecodeMethod",
    "add_noise",
    "global_recode",
    "il1s",
    "il_correl",
    "information_loss",
    "microaggregation",
    "pram",
    "recode_categories",
    "top_bottom_code",
]

from .check import RecordLevelCheck, RecordLevelFinding, RecordLevelRules, check_record_level  # noqa: E402
from .report import RiskReport, RiskyCombination, risk_report  # noqa: E402

__all__ += [
    "RecordLevelCheck",
    "RecordLevelFinding",
    "RecordLevelRules",
    "RiskReport",
    "RiskyCombination",
    "check_record_level",
    "risk_report",
]
