"""Record-level disclosure risk and protection with sdcMicro's results, at census scale.

See docs/reference/record-level-risk.md for every formula and its sdcMicro counterpart.
"""
from __future__ import annotations

from ._data import InvalidMicrodataInput
from ._result import ProtectionMethod, ProtectionResult
from .check import RecordLevelCheck, RecordLevelFinding, RecordLevelRules, check_record_level
from .combinations import KeyCombinations, key_combinations
from .extract import DeclaredRoles, ExtractCheck, ExtractSpec, check_extract, declared_roles, record_level_rules
from .frequencies import Frequencies, KAnonymity, frequencies, k_anonymity
from .infoloss import InformationLoss, il1s, il_correl, information_loss
from .ldiversity import LDiversity, MultiLDiversity, l_diversity, multi_l_diversity
from .perturbation import NoiseMethod, add_noise, microaggregation, pram
from .recoding import CodingSide, RecodeMethod, global_recode, recode_categories, top_bottom_code
from .report import RiskReport, RiskyCombination, risk_report
from .risk import GlobalRisk, RiskMethod, global_risk, household_risk, individual_risk
from .subsets import SubsetKAnonymity, SubsetViolation, subset_k_anonymity
from .suda2 import Suda2Result, suda2
from .suppression import SuppressionMethod, local_suppression
from .swapping import SwapOptions, SwapResult, record_swap

__all__ = [
    "CodingSide",
    "DeclaredRoles",
    "ExtractCheck",
    "ExtractSpec",
    "check_extract",
    "Frequencies",
    "GlobalRisk",
    "InformationLoss",
    "InvalidMicrodataInput",
    "KAnonymity",
    "KeyCombinations",
    "LDiversity",
    "MultiLDiversity",
    "NoiseMethod",
    "ProtectionMethod",
    "ProtectionResult",
    "RecodeMethod",
    "RecordLevelCheck",
    "RecordLevelFinding",
    "RecordLevelRules",
    "RiskMethod",
    "RiskReport",
    "RiskyCombination",
    "SubsetKAnonymity",
    "SubsetViolation",
    "Suda2Result",
    "SuppressionMethod",
    "SwapOptions",
    "SwapResult",
    "add_noise",
    "check_record_level",
    "declared_roles",
    "frequencies",
    "global_recode",
    "global_risk",
    "household_risk",
    "il1s",
    "il_correl",
    "individual_risk",
    "information_loss",
    "k_anonymity",
    "key_combinations",
    "l_diversity",
    "local_suppression",
    "microaggregation",
    "multi_l_diversity",
    "pram",
    "record_level_rules",
    "recode_categories",
    "record_swap",
    "risk_report",
    "subset_k_anonymity",
    "suda2",
    "top_bottom_code",
]
