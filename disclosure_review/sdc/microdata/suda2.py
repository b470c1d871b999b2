"""SUDA2: minimal sample uniques (MSUs), SUDA scores, DIS-SUDA, variable contributions.

An MSU of a record is a set S of its (variable, value) items that no other record
shares (a sample unique on S) while every proper subset is shared. Missing values
are never part of an item set (as in sdcMicro's Suda2.h). A record's SUDA score
adds up a weight per MSU, by MSU size s among M key variables:

- original (Elliot et al., sdcMicro original_scores=TRUE, default): (M − s)!
- IHSN variant (original_scores=FALSE): (2^(M−s) − 1) · s! (M − s)! / M!

Algorithm: a depth-first walk over the key subsets (each subset extends its
prefix by one higher-numbered variable, so at most M code arrays are alive);
per subset one hash factorisation and one bincount over all records give which
records are unique on it. Uniqueness is monotone, so S is an MSU of record r
exactly when r is unique on S and on none of the |S| subsets S minus one
variable. Only records unique on all their non-missing items can have an MSU;
the unique flags are kept for those records only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._data import MISSING, InvalidMicrodataInput, KeyData, load_keys
from ._params import number_in, whole_number
from .frequencies import _dense_rows


MAX_FLAG_BYTES = 4e9  # unique flags: candidate records × 2^(key variables) bytes


@dataclass(frozen=True)
class Suda2Result:
    """Per-record SUDA and DIS-SUDA scores, MSU counts and variable contributions."""

    keys: tuple[str, ...]
    score: np.ndarray
    dis_score: np.ndarray
    contribution: np.ndarray  # n × p: share of each key variable in the record's score (0..1)
    msu_count: np.ndarray  # n × max size: MSUs of each size per record
    attribute_contributions: dict[str, float]  # percent of the total score, per key variable
    value_contributions: dict[str, dict[Any, float]]  # per key variable: percent of its contribution per value
    original_scores: bool
    dis_fraction: float

    @property
    def records_with_msu(self) -> int:
        return int(np.sum(self.score > 0))


def _weights(m: int, original: bool) -> np.ndarray:
    """Score weight by MSU size s = 1..m (index s-1), as Suda2.h g_ab."""
    if original:
        return np.array([float(math.factorial(m - s)) for s in range(1, m + 1)])
    return np.array(
        [(2.0 ** (m - s) - 1) * math.factorial(s) * math.factorial(m - s) / math.factorial(m) for s in range(1, m + 1)]
    )


def _densify(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes (-1 kept for invalid item sets) and per record how many records share its code."""
    dense = pd.factorize(code)[0]
    invalid = code < 0
    counts = np.bincount(dense)[dense]
    counts[invalid] = 0
    dense[invalid] = -1
    return dense, counts


def _combine(prefix: np.ndarray | None, x: np.ndarray, card: int) -> np.ndarray:
    if prefix is None:
        return x.copy()
    out = prefix * (card + 1) + x
    out[(prefix < 0) | (x < 0)] = -1
    return out


def _candidates(codes: np.ndarray) -> np.ndarray:
    """Records unique on all their non-missing items (only these can have an MSU)."""
    n, p = codes.shape
    present = codes != MISSING
    masks = (present * (1 << np.arange(p))).sum(axis=1)
    unique = np.zeros(n, dtype=bool)
    for mask in np.unique(masks):
        if mask == 0:
            continue
        code = None
        for v in range(p):
            if mask >> v & 1:
                code, counts = _densify(_combine(code, codes[:, v], int(codes[:, v].max()) + 1))
        rows = masks == mask
        unique[rows] = counts[rows] == 1
    return np.flatnonzero(unique)


def suda2_codes(
    data: KeyData, *, max_size: int | None = None, original_scores: bool = True, dis_fraction: float = 0.01
) -> Suda2Result:
    codes = data.codes
    n, p = codes.shape
    keys = data.keys
    m = max(p, 3)  # sdcMicro pads fewer than 3 key variables with constant ones
    dis_fraction = number_in(dis_fraction, "dis_fraction (the sampling fraction)", 0.0, 1.0, low_open=True)
    max_size = p if max_size is None else whole_number(max_size, "max_size")
    if not 1 <= max_size <= p:
        raise InvalidMicrodataInput(f"max_size must be between 1 and the number of key variables ({p})")
    cards = [int(codes[:, v].max()) + 1 for v in range(p)]
    cand = _candidates(codes)
    if cand.size * (1 << p) > MAX_FLAG_BYTES:
        raise InvalidMicrodataInput(
            f"SUDA2 on {p} key variables with {cand.size:,} candidate records needs more than "
            f"{MAX_FLAG_BYTES / 1e9:.0f} GB; use fewer key variables"
        )
    unique = np.zeros((cand.size, 1 << p), dtype=bool)  # unique[:, S]: candidate unique on subset S

    def walk(prefix: np.ndarray | None, mask: int, start: int, size: int) -> None:
        for v in range(start, p):
            code, counts = _densify(_combine(prefix, codes[:, v], cards[v]))
            sub = mask | (1 << v)
            unique[:, sub] = counts[cand] == 1
            if size + 1 < max_size:
                walk(code, sub, v + 1, size + 1)

    if cand.size:
        walk(None, 0, 0, 0)
    weights = _weights(m, original_scores)
    score_c = np.zeros(cand.size)
    contrib_c = np.zeros((cand.size, p))
    msu_c = np.zeros((cand.size, max_size), dtype=np.int64)
    for sub in range(1, 1 << p):
        size = bin(sub).count("1")
        if size > max_size:
            continue
        is_msu = unique[:, sub].copy()
        for v in range(p):
            if sub >> v & 1 and size > 1:
                is_msu &= ~unique[:, sub ^ (1 << v)]
        if not is_msu.any():
            continue
        w = weights[size - 1]
        score_c[is_msu] += w
        msu_c[is_msu, size - 1] += 1
        for v in range(p):
            if sub >> v & 1:
                contrib_c[is_msu, v] += w
    score = np.zeros(n)
    score[cand] = score_c
    raw_contrib = np.zeros((n, p))
    raw_contrib[cand] = contrib_c
    msu_count = np.zeros((n, max_size), dtype=np.int64)
    msu_count[cand] = msu_c
    total = score.sum()
    attribute = {k: (100.0 * raw_contrib[:, j].sum() / total if total else 0.0) for j, k in enumerate(keys)}
    with np.errstate(invalid="ignore", divide="ignore"):
        contribution = np.where(score[:, None] > 0, raw_contrib / score[:, None], 0.0)
    by_value: dict[str, dict[Any, float]] = {}
    for j, k in enumerate(keys):  # sdcMicro's attribute_level_contributions
        present = codes[:, j] != MISSING
        sums = np.bincount(codes[present, j], weights=raw_contrib[present, j], minlength=cards[j])
        total_j = raw_contrib[:, j].sum()
        by_value[k] = {data.levels[j][c].as_py(): (100.0 * sums[c] / total_j if total_j else 0.0)
                       for c in np.unique(codes[present, j])}
    return Suda2Result(
        keys, score, _dis_suda(codes, score, m, dis_fraction), contribution, msu_count, attribute, by_value,
        original_scores, dis_fraction,
    )


def _dis_suda(codes: np.ndarray, score: np.ndarray, m: int, dis_fraction: float) -> np.ndarray:
    """DIS-SUDA in sdcMicro's single-precision arithmetic (Suda2.h)."""
    scored = score > 0
    if not scored.any():  # no MSU, so no sample unique either
        return np.zeros_like(score)
    counts = np.bincount(_dense_rows(codes))  # missing is a value of its own here
    uniques = int(np.sum(counts == 1))  # missing counts as a value here, as Suda2.h's hash check
    pairs = 2 * int(np.sum(counts == 2))
    f = np.float32(dis_fraction)
    dis = np.float32(uniques) * f / (np.float32(uniques) * f + np.float32(pairs) * (np.float32(1) - f))
    q = float(np.float32(1) + (np.float32(8) - np.float32(m)) / np.float32(20))
    adj = float(np.sum(1.0 / score[scored] ** q))
    gap = float(np.float32(np.float32(uniques) / dis) - np.float32(uniques))
    out = np.zeros_like(score)
    out[scored] = 1.0 / (1.0 + gap / (score[scored] ** q * adj))
    return out


def suda2(
    data: Any,
    keys: Sequence[str],
    *,
    max_size: int | None = None,
    original_scores: bool = True,
    dis_fraction: float = 0.01,
) -> Suda2Result:
    """SUDA2 on `data`; sdcMicro: suda2(data, variables=keys, DisFraction=dis_fraction, original_scores)."""
    key_data = load_keys(data, keys)
    return suda2_codes(key_data, max_size=max_size, original_scores=original_scores, dis_fraction=dis_fraction)
