"""Targeted record swapping (sdcMicro's recordSwap, formerly the recordSwapping package, v1.0.1).

Households exchange their geography (the `hierarchy` variables, top level
first, plus any `carry_along` variables) with a household of another area;
everything else about them stays. The steps are recordSwap's:

1. Risk. For each hierarchy level h, a record's count is the number of
   records with the same `risk_variables` in the same area at level h (the
   area is the combination of the hierarchy variables down to h); a
   household's risk at h is the largest 1/count among its members. A
   household is risky at level h when some member's count is below
   `k_anonymity` there (h is the highest such level; k = 0: none is risky).
2. Draws. ``round(households * swap_rate / 2)`` swaps (each moves two
   households; rounded up or down at random), shared among the lowest-level
   areas in proportion to their households, remainders to areas drawn at
   random.
3. Swaps, from the top level down. At each level every household risky at
   that level (and not yet swapped) is swapped with a donor outside its area
   at that level. At the lowest level each area also draws, with probability
   proportional to risk (Efraimidis-Spirakis keys risk / Exp(1)), as many
   further households as its share still lacks (households of the area
   already swapped as the initiating side count against the share).
4. Donors: not yet swapped, outside the area at the level of the swap, with
   the same values of the first similarity profile (`similar`), else of the
   next one; among those the one with the largest key risk / Exp(1) at that
   level. A household with no donor is not swapped and not tried again.

So the number of households per area at every level is unchanged, and so is
the joint distribution of area and the similarity variables used. Missing
values (null, NaN) are a value of their own here.

The result keeps the data's row order and columns. `SwapResult.pairs` and
`report()` say what was swapped: for the reviewer, never for the researcher.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ._data import InvalidMicrodataInput, encode, stack_codes
from ._params import number_in, unique_names, whole_number
from ._result import require_columns, to_polars
from .frequencies import _dense_rows

NOT_RISKY = -1


@dataclasses.dataclass(frozen=True, eq=False)
class SwapResult:
    """Swapped data (same rows, same columns, same order) and what the swap did.

    `pairs`: one row per swap, the initiating household, its donor, the
    hierarchy level at which they were swapped (outside each other's area at
    that level), whether the initiator was risky there, and the area (top to
    bottom) each had before. `unswapped`: risky households for which no donor
    was found.
    """

    data: pl.DataFrame
    pairs: pl.DataFrame
    unswapped: pl.DataFrame
    households: int
    target_households: int
    risky_households: dict[str, int]
    hierarchy: tuple[str, ...]
    seed: int

    @property
    def swapped_households(self) -> int:
        return 2 * self.pairs.height

    @property
    def swap_rate(self) -> float:
        return self.swapped_households / self.households if self.households else 0.0

    def report(self, *, max_pairs: int | None = 1000) -> dict[str, Any]:
        """JSON-ready summary for the reviewer, with the first `max_pairs` swaps (None: all)."""
        pairs = self.pairs if max_pairs is None else self.pairs.head(max_pairs)
        by_level = self.pairs.group_by("level").len()
        per_level = {row["level"]: row["len"] for row in by_level.iter_rows(named=True)}
        return {
            "method": "record_swap",
            "households": self.households,
            "target_swapped_households": self.target_households,
            "swapped_households": self.swapped_households,
            "swap_rate": self.swap_rate,
            "swaps_per_level": {h: int(per_level.get(h, 0)) for h in self.hierarchy},
            "risky_households": dict(self.risky_households),
            "risky_unswapped": self.unswapped.height,
            "seed": self.seed,
            "pairs": _jsonable(pairs.to_dicts()),
            "pairs_shown": pairs.height,
        }


@dataclasses.dataclass(frozen=True)
class SwapOptions:
    """A reviewer's record swapping of an extract, as stored (`to_dict` / `from_dict`).

    The household variable is the one the datasets declare; empty
    `risk_variables` means the extract's key variables outside the hierarchy.
    """

    hierarchy: tuple[str, ...]
    seed: int
    swap_rate: float = 0.05
    similar: tuple[tuple[str, ...], ...] = ()
    risk_variables: tuple[str, ...] = ()
    k_anonymity: int = 3
    carry_along: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"hierarchy": list(self.hierarchy), "seed": self.seed, "swap_rate": self.swap_rate,
                "similar": [list(p) for p in self.similar], "risk_variables": list(self.risk_variables),
                "k_anonymity": self.k_anonymity, "carry_along": list(self.carry_along)}

    @classmethod
    def from_dict(cls, data: Any) -> SwapOptions:
        if not isinstance(data, dict):
            raise InvalidMicrodataInput("record swapping options must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidMicrodataInput(f"unknown record swapping option(s) {unknown}; known: {sorted(known)}")
        missing = sorted({"hierarchy", "seed"} - set(data))
        if missing:
            raise InvalidMicrodataInput(f"record swapping needs {missing}")
        return cls(
            hierarchy=_names(data["hierarchy"], "hierarchy", minimum=1),
            seed=whole_number(data["seed"], "seed", minimum=0),
            swap_rate=number_in(data.get("swap_rate", 0.05), "swap_rate", 0.0, 1.0),
            similar=tuple(p for p in _profiles(data.get("similar", [])) if p),
            risk_variables=_names(data.get("risk_variables", []), "risk_variables"),
            k_anonymity=whole_number(data.get("k_anonymity", 3), "k_anonymity", minimum=0),
            carry_along=_names(data.get("carry_along", []), "carry_along"),
        )

    def apply(self, data: Any, household: str, keys: Sequence[str] = ()) -> SwapResult:
        """`record_swap` of `data` with these options; `keys`: the risk variables when none are given."""
        risk = self.risk_variables or tuple(k for k in keys if k not in self.hierarchy)
        return record_swap(data, household=household, hierarchy=self.hierarchy, swap_rate=self.swap_rate,
                           similar=list(self.similar), risk_variables=risk, k_anonymity=self.k_anonymity,
                           carry_along=self.carry_along, seed=self.seed)


def record_swap(
    data: Any,
    *,
    household: str,
    hierarchy: Sequence[str],
    swap_rate: float = 0.05,
    similar: Sequence[str] | Sequence[Sequence[str]] = (),
    risk_variables: Sequence[str] = (),
    k_anonymity: int = 3,
    carry_along: Sequence[str] = (),
    seed: int,
) -> SwapResult:
    """Targeted record swapping of the households of `data` (see the module docstring).

    `hierarchy`: geographic variables, highest level first (prefecture,
    municipality). `similar`: one profile (a list of variable names) or a list
    of profiles tried in turn; they, the hierarchy and `carry_along` must be
    household variables (one value per household). `seed`: a whole number;
    the same data and parameters with the same seed give the same swaps.
    """
    hierarchy = _names(hierarchy, "hierarchy", minimum=1)
    profiles = _profiles(similar)
    risk_variables = _names(risk_variables, "risk_variables")
    carry_along = _names(carry_along, "carry_along")
    rate = number_in(swap_rate, "swap_rate", 0.0, 1.0)
    k = whole_number(k_anonymity, "k_anonymity", minimum=0)
    seed = whole_number(seed, "seed", minimum=0)
    if not isinstance(household, str):
        raise InvalidMicrodataInput(f"household must name the household id variable (got {household!r})")
    if household in (*hierarchy, *carry_along):
        raise InvalidMicrodataInput(f"{household!r} is the household id: it cannot be swapped")
    overlap = set(carry_along) & {*hierarchy, *(v for p in profiles for v in p)}
    if overlap:
        raise InvalidMicrodataInput(
            f"carry_along variable(s) {sorted(overlap)} are hierarchy or similarity variables: name each once"
        )
    frame = to_polars(data)
    require_columns(frame, [household, *hierarchy, *risk_variables, *carry_along, *(v for p in profiles for v in p)])
    rng = np.random.default_rng(seed)

    raw_ids = encode(frame[household].to_arrow())[0]
    if (raw_ids < 0).any():
        raise InvalidMicrodataInput(f"household id {household!r} is missing for some records: every record needs one")
    hh_of_record = _dense_rows(stack_codes([raw_ids]))  # 0, 1, ... in order of first appearance
    n_hh = int(hh_of_record.max()) + 1
    first = np.flatnonzero(np.r_[True, hh_of_record[1:] > np.maximum.accumulate(hh_of_record)[:-1]])
    household_vars = list(dict.fromkeys([*hierarchy, *carry_along, *(v for p in profiles for v in p)]))
    codes = {v: encode(frame[v].to_arrow())[0] for v in dict.fromkeys([*household_vars, *risk_variables])}
    for v in household_vars:
        if (codes[v] != codes[v][first][hh_of_record]).any():
            raise InvalidMicrodataInput(
                f"{v!r} differs between members of one household: hierarchy, similarity and carry_along "
                "variables must be household variables"
            )

    # Areas: dense id of the hierarchy values down to each level, per household.
    areas = [_dense_rows(stack_codes([codes[v][first] for v in hierarchy[: h + 1]])) for h in range(len(hierarchy))]
    # Risk per level: the largest 1/count among the household's members.
    risk = np.zeros((len(hierarchy), n_hh))
    level = np.full(n_hh, NOT_RISKY, dtype=np.int64)
    for h in range(len(hierarchy)):
        group = _dense_rows(stack_codes([codes[v] for v in (*risk_variables, *hierarchy[: h + 1])]))
        count = np.bincount(group)[group]
        smallest = np.full(n_hh, np.iinfo(np.int64).max)
        np.minimum.at(smallest, hh_of_record, count)
        risk[h] = 1.0 / smallest
        if k > 0:
            level[(level == NOT_RISKY) & (smallest < k)] = h
    similarity = [
        _dense_rows(stack_codes([codes[v][first] for v in profile])) if profile else np.zeros(n_hh, dtype=np.int64)
        for profile in profiles
    ]

    total = n_hh * rate / 2
    swaps_total = math.ceil(total) if rng.integers(2) == 0 else math.floor(total)
    draws = _share(np.bincount(areas[-1]), swaps_total, rng)

    used = np.zeros(n_hh, dtype=bool)
    failed = np.zeros(n_hh, dtype=bool)
    pairs: list[tuple[int, int, int]] = []

    def swap(todo: np.ndarray, h: int, donors: _DonorPool) -> None:
        for hh in todo.tolist():
            if used[hh]:
                continue  # taken as another household's donor meanwhile: swapped out of its area already
            donor = donors.take(hh)
            if donor < 0:
                failed[hh] = True
            else:
                used[hh] = used[donor] = True
                pairs.append((hh, donor, h))

    lowest = len(hierarchy) - 1
    for h in range(lowest):
        todo = np.flatnonzero((level == h) & ~used & ~failed)
        swap(todo[np.argsort(areas[h][todo], kind="stable")], h, _DonorPool(similarity, risk[h], areas[h], used, rng))
    # Lowest level, area by area: its risky households, then the rest of its share, drawn with
    # probability proportional to risk among the households still free when the area's turn comes.
    donors = _DonorPool(similarity, risk[lowest], areas[lowest], used, rng)
    area = areas[lowest]
    done = np.bincount(area[[p[0] for p in pairs]], minlength=draws.size)
    risky = _by_area(np.flatnonzero(level == lowest), area, np.zeros(n_hh), draws.size)
    rest = _by_area(np.flatnonzero(level != lowest), area, risk[lowest] / rng.exponential(size=n_hh), draws.size)
    for a in range(draws.size):
        must = risky[a][~used[risky[a]] & ~failed[risky[a]]]
        free = rest[a][~used[rest[a]] & ~failed[rest[a]]]
        swap(np.concatenate([must, free[: max(0, draws[a] - done[a] - must.size)]]), lowest, donors)

    source = np.arange(n_hh)
    initiators = np.array([p[0] for p in pairs], dtype=np.int64)
    partners = np.array([p[1] for p in pairs], dtype=np.int64)
    source[initiators], source[partners] = partners, initiators
    from_record = first[source[hh_of_record]]
    swapped = frame.with_columns(frame[v].gather(from_record) for v in (*hierarchy, *carry_along))

    ids = frame[household].gather(first)
    geography = frame.select(hierarchy).gather(first)
    levels = np.array([p[2] for p in pairs], dtype=np.int64)
    pair_frame = pl.DataFrame({
        "household": ids.gather(initiators),
        "partner": ids.gather(partners),
        "level": pl.Series([hierarchy[h] for h in levels], dtype=pl.String),
        "risky": pl.Series(level[initiators] == levels, dtype=pl.Boolean),
        "area": _area_labels(geography, initiators),
        "partner_area": _area_labels(geography, partners),
    })
    risky_left = np.flatnonzero(failed & (level != NOT_RISKY))
    unswapped = pl.DataFrame({
        "household": ids.gather(risky_left),
        "level": pl.Series([hierarchy[h] for h in level[risky_left]], dtype=pl.String),
        "area": _area_labels(geography, risky_left),
    })
    return SwapResult(
        data=swapped,
        pairs=pair_frame,
        unswapped=unswapped,
        households=n_hh,
        target_households=2 * swaps_total,
        risky_households={name: int((level == h).sum()) for h, name in enumerate(hierarchy)},
        hierarchy=hierarchy,
        seed=seed,
    )


class _DonorPool:
    """Donors per similarity group, best key first; `take` finds the first one outside the household's area."""

    def __init__(
        self, similarity: list[np.ndarray], risk: np.ndarray, area: np.ndarray, used: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self.area, self.used = area, used
        key = risk / rng.exponential(size=risk.size)
        free = np.flatnonzero(~used)
        # Per profile: each household's group, the donors in group order (best key first), where each group
        # starts, and its first donor not yet known to be used (Python lists: read one item at a time).
        self.queues: list[tuple[np.ndarray, list[int], list[int], list[int]]] = []
        for groups in similarity:
            order = free[np.lexsort((-key[free], groups[free]))]
            starts = np.searchsorted(groups[order], np.arange(int(groups.max()) + 2)).tolist()
            self.queues.append((groups, order.tolist(), starts, starts[:-1]))

    def take(self, hh: int) -> int:
        used, area = self.used, self.area
        for groups, order, starts, heads in self.queues:
            g = int(groups[hh])
            end = starts[g + 1]
            while heads[g] < end and used[order[heads[g]]]:
                heads[g] += 1  # swapped since: never a donor again
            for i in range(heads[g], end):
                donor = order[i]
                if not used[donor] and area[donor] != area[hh]:
                    return donor
        return -1


def _by_area(households: np.ndarray, area: np.ndarray, key: np.ndarray, n_areas: int) -> list[np.ndarray]:
    """`households` split by area, each part in decreasing `key`."""
    order = households[np.lexsort((-key[households], area[households]))]
    return np.split(order, np.searchsorted(area[order], np.arange(1, n_areas)))


def _share(sizes: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """`total` split in proportion to `sizes`, remainders to areas drawn at random (sums to `total`)."""
    exact = sizes / sizes.sum() * total
    share = np.floor(exact).astype(np.int64)
    extra = int(round(float((exact - share).sum())))
    share[rng.choice(sizes.size, size=extra, replace=False)] += 1
    return share


def _area_labels(geography: pl.DataFrame, rows: np.ndarray) -> pl.Series:
    picked = geography.gather(rows)
    return picked.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("<missing>") for c in picked.columns], separator=" > ")
    ).to_series()


def _names(value: Any, name: str, *, minimum: int = 0) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise InvalidMicrodataInput(f"{name} must be a list of variable names (got {value!r})")
    if len(value) < minimum:
        raise InvalidMicrodataInput(f"{name} needs at least {minimum} variable")
    unique_names(value, name)
    return tuple(value)


def _profiles(similar: Any) -> list[tuple[str, ...]]:
    """One profile or a list of them; no profile means any household may be a donor."""
    if isinstance(similar, Sequence) and not isinstance(similar, str) and all(isinstance(v, str) for v in similar):
        similar = [similar]
    if isinstance(similar, str) or not isinstance(similar, Sequence):
        raise InvalidMicrodataInput(f"similar must be a list of variable names or a list of such lists (got {similar!r})")
    profiles = [_names(p, "a similarity profile") for p in similar]
    return [p for p in profiles if p] or [()]


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v if v is None or isinstance(v, (bool, int, float, str)) else str(v) for k, v in r.items()}
            for r in rows]
