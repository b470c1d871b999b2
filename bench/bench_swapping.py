"""Targeted record swapping of 1M households, against recordSwapping's published timings.

The data and parameters are those of recordSwapping's own benchmark
(tests/testthat/RUN_benchmark.R at 4147efd, version 0.3.1, results in
data/benchmark_cpp.RData): N households of 1-6 persons (uniform), geography
nuts1..nuts4 drawn uniformly from 5, 10, 15 and 25 values (an area at level
h is the combination of the first h), household size, type and income, and
per person age group (7), sex (2) and nationality (5); hierarchy the first
2, 3 or 4 geography variables, risk variables hsize, ageGroup, gender,
national, k_anonymity 3, swap rate 5 %, similarity hsize.

- ours: `record_swap` on a polars frame of the records (3.5M at 1M households).
- peer: the simplest correct swap, untargeted: 5 % of the households drawn at
  random, paired within household size, geography exchanged (numpy). The note
  gives recordSwapping's published median for the same N and depth (its C++
  core called from R, 100 runs each, on its authors' machine) and our ratio to it.
"""
from __future__ import annotations

import time

import numpy as np
import polars as pl

from bench import Case, Context
from disclosure_review.sdc.microdata import record_swap

HOUSEHOLDS = 1_000_000
GEOGRAPHY = {"nuts1": 5, "nuts2": 10, "nuts3": 15, "nuts4": 25}
# recordSwapping 0.3.1, data/benchmark_cpp.RData: median seconds at 1e6 households by hierarchy depth.
PUBLISHED_MEDIAN_S = {2: 10.220, 3: 321.997, 4: 5460.065}


def benchmark_data(households: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 7, households)
    persons = int(size.sum())
    per_household = {name: rng.integers(1, m + 1, households) for name, m in GEOGRAPHY.items()}
    per_household |= {"hsize": size, "htype": rng.integers(1, 11, households),
                      "hincome": rng.integers(1, 11, households)}
    return pl.DataFrame({
        "hid": np.repeat(np.arange(1, households + 1), size),
        **{name: np.repeat(values, size) for name, values in per_household.items()},
        "ageGroup": rng.integers(1, 8, persons),
        "gender": rng.integers(1, 3, persons),
        "national": rng.integers(1, 6, persons),
    })


def targeted(data: pl.DataFrame, depth: int, seed: int):
    return record_swap(data, household="hid", hierarchy=list(GEOGRAPHY)[:depth], similar=["hsize"],
                       swap_rate=0.05, risk_variables=["hsize", "ageGroup", "gender", "national"],
                       k_anonymity=3, seed=seed)


def untargeted(data: pl.DataFrame, depth: int, seed: int) -> pl.DataFrame:
    """5 % of households, paired at random within household size (partners in different areas), geography swapped."""
    rng = np.random.default_rng(seed)
    hierarchy = list(GEOGRAPHY)[:depth]
    first = np.flatnonzero(np.r_[True, np.diff(data["hid"].to_numpy()) != 0])
    households = first.size
    size = data["hsize"].to_numpy()[first]
    area = data.select(hierarchy).to_numpy()[first] @ (100 ** np.arange(depth)[::-1])
    drawn = rng.choice(households, size=round(households * 0.05 / 2) * 2, replace=False)
    drawn = drawn[np.lexsort((rng.random(drawn.size), size[drawn]))]
    source = np.arange(households)
    a, b = drawn[0::2], drawn[1::2]
    ok = (size[a] == size[b]) & (area[a] != area[b])
    source[a[ok]], source[b[ok]] = b[ok], a[ok]
    household_of = np.repeat(np.arange(households), np.diff(np.r_[first, data.height]))
    rows = first[source[household_of]]
    return data.with_columns(data[c].gather(rows) for c in hierarchy)


def cases(ctx: Context) -> list[Case]:
    data = benchmark_data(HOUSEHOLDS, ctx.seed)
    out = []
    for depth in (2, 3, 4):
        started = time.perf_counter()
        result = targeted(data, depth, ctx.seed)
        seconds = time.perf_counter() - started
        published = PUBLISHED_MEDIAN_S[depth]
        out.append(Case(
            name=f"record swapping {HOUSEHOLDS:,} households ({data.height:,} records), {depth} levels",
            ours=lambda depth=depth: targeted(data, depth, ctx.seed),
            peer_name="untargeted random swap (numpy)",
            peer=lambda depth=depth: untargeted(data, depth, ctx.seed),
            repeat=3,
            note=(f"{result.swapped_households:,} households swapped (target {result.target_households:,}), "
                  f"risky per level {result.risky_households}, {result.unswapped.height} risky without donor; "
                  f"first run {seconds:.1f} s; recordSwapping 0.3.1 published median {published:g} s "
                  f"(ours/published {seconds / published:.3f})"),
        ))
    return out
