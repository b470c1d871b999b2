"""Targeted record swapping: recordSwapping's own test expectations (tests/testthat/test_recordSwap_outputs.R,
v1.0.1), and what the swap must keep: swap rate, similarity, risky households first, area marginals."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc.microdata import InvalidMicrodataInput, record_swap

HIERARCHY = ["pref", "muni", "district"]
N_HOUSEHOLDS = 10_000


def census(n: int = N_HOUSEHOLDS, seed: int = 2021, rare: float = 0.0) -> pl.DataFrame:
    """Households of 1-6 persons in 3 prefectures > 5 municipalities > 15 districts (recordSwapping's
    test data has this shape); `rare`: share of persons with a rare nationality (risky at the top level)."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 7, n)
    pref = rng.integers(1, 4, n)
    muni = pref * 10 + rng.integers(1, 6, n)
    district = muni * 100 + rng.integers(1, 16, n)
    persons = int(size.sum())
    nationality = rng.integers(1, 6, persons)
    nationality[rng.random(persons) < rare] = 99
    per_household = {"pref": pref, "muni": muni, "district": district, "hsize": size,
                     "htype": rng.integers(1, 11, n), "income": rng.integers(1, 11, n)}
    return pl.DataFrame({
        "hid": np.repeat(np.arange(1, n + 1), size),
        **{name: np.repeat(values, size) for name, values in per_household.items()},
        "age_group": rng.integers(1, 8, persons),
        "sex": rng.integers(1, 3, persons),
        "nationality": nationality,
    })


def households(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.unique("hid", keep="first", maintain_order=True)


def swap(frame: pl.DataFrame, **options: object):
    params = {"household": "hid", "hierarchy": HIERARCHY, "similar": ["hsize"], "swap_rate": 0.05,
              "risk_variables": ["age_group", "nationality"], "k_anonymity": 0, "seed": 2021} | options
    return record_swap(frame, **params)


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return census()


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.25])
def test_swap_rate_is_met_exactly_without_risky_households(data: pl.DataFrame, rate: float) -> None:
    result = swap(data, swap_rate=rate)
    assert result.swapped_households == result.target_households == round(rate * N_HOUSEHOLDS)
    changed = households(data).join(households(result.data), on="hid").filter(
        pl.col("district") != pl.col("district_right")
    )
    assert changed.height == result.swapped_households  # every swap moves both households to another district


def test_households_take_their_partners_geography_and_nothing_else_changes(data: pl.DataFrame) -> None:
    result = swap(data)
    out = result.data
    assert out.select(pl.col(HIERARCHY).n_unique().over("hid").max()).row(0) == (1, 1, 1)
    before = households(data).select("hid", *HIERARCHY)
    after = households(out).select("hid", *HIERARCHY)
    moved = result.pairs.select(pl.col("household").alias("hid"), pl.col("partner").alias("from"))
    moved = pl.concat([moved, moved.select(pl.col("from").alias("hid"), pl.col("hid").alias("from"))])
    expected = moved.join(before.rename({"hid": "from"}), on="from").drop("from").sort("hid")
    assert after.filter(pl.col("hid").is_in(moved["hid"].implode())).sort("hid").equals(expected)
    untouched = before.filter(~pl.col("hid").is_in(moved["hid"].implode()))
    assert untouched.join(after, on="hid").filter(pl.col("pref") != pl.col("pref_right")).height == 0
    assert out.drop(HIERARCHY).equals(data.drop(HIERARCHY))  # row order and every other value kept


def test_carry_along_moves_with_the_hierarchy(data: pl.DataFrame) -> None:
    result = swap(data, hierarchy=["pref", "muni"], carry_along=["district"])
    after = households(result.data)
    # district codes embed their municipality: still consistent after the swap.
    assert (after["district"] // 100 == after["muni"]).all()
    assert result.swapped_households == result.target_households


def test_similarity_variables_match_between_partners(data: pl.DataFrame) -> None:
    result = swap(data, similar=[["hsize", "htype"], ["hsize"]], swap_rate=0.25)
    hh = households(data).select("hid", "hsize", "htype")
    pairs = result.pairs.join(hh, left_on="household", right_on="hid").join(
        hh, left_on="partner", right_on="hid", suffix="_partner"
    )
    assert pairs.height == result.pairs.height > 0
    assert (pairs["hsize"] == pairs["hsize_partner"]).all()
    # The first profile wins where it can: most pairs share htype too.
    assert (pairs["htype"] == pairs["htype_partner"]).mean() > 0.9


def test_area_marginals_are_unchanged(data: pl.DataFrame) -> None:
    result = swap(data, swap_rate=0.25, k_anonymity=3)
    for depth in range(1, len(HIERARCHY) + 1):
        area = HIERARCHY[:depth]
        for frame_of in (households, lambda f: f):  # households and persons per area and household size
            counts = [frame_of(f).group_by([*area, "hsize"]).len().sort([*area, "hsize"]) for f in (data, result.data)]
            assert counts[0].equals(counts[1])
    # Person variables at the top level: identical distributions (only geography moves).
    for variable in ("age_group", "sex", "nationality", "income"):
        assert data[variable].value_counts(sort=True).equals(result.data[variable].value_counts(sort=True))


def test_risky_households_are_swapped_first_and_across_their_level() -> None:
    data = census(rare=0.002)
    result = swap(data, risk_variables=["age_group", "sex", "nationality"], k_anonymity=3)
    assert result.risky_households["pref"] > 0 and result.unswapped.height == 0
    swapped = set(result.pairs["household"]) | set(result.pairs["partner"])
    risky_top = set(result.pairs.filter(pl.col("risky") & (pl.col("level") == "pref"))["household"])
    assert len(risky_top) == result.risky_households["pref"]
    # Risky at the prefecture level: swapped into another prefecture.
    top = result.pairs.filter(pl.col("level") == "pref")
    assert (top["area"].str.split(" > ").list.first() != top["partner_area"].str.split(" > ").list.first()).all()
    # Every household with a member unique in its district (counts < 3) is swapped.
    counts = data.with_columns(
        n=pl.len().over(["age_group", "sex", "nationality", *HIERARCHY])
    ).group_by("hid").agg(pl.col("n").min())
    assert set(counts.filter(pl.col("n") < 3)["hid"]) <= swapped
    assert result.swapped_households >= result.target_households


def test_larger_k_swaps_at_least_as_many(data: pl.DataFrame) -> None:
    options = {"hierarchy": ["pref", "muni"], "risk_variables": ["age_group", "nationality", "hsize"]}
    k1, k3 = (swap(data, k_anonymity=k, **options) for k in (1, 3))
    assert k3.swapped_households >= k1.swapped_households >= k1.target_households


def test_same_seed_same_swaps_other_seed_other_swaps(data: pl.DataFrame) -> None:
    assert swap(data).pairs.equals(swap(data).pairs)
    assert not swap(data).pairs.equals(swap(data, seed=7).pairs)


def test_household_without_a_donor_is_reported_not_swapped() -> None:
    data = census(n=200)
    # Household 1 alone has a person of nationality 77 (risky) and 9 members: no donor has hsize 9.
    data = data.with_columns(
        hsize=pl.when(pl.col("hid") == 1).then(9).otherwise(pl.col("hsize")),
        nationality=pl.when(pl.col("hid") == 1).then(77).otherwise(pl.col("nationality")),
    )
    result = swap(data, hierarchy=["pref"], risk_variables=["nationality"], k_anonymity=10)
    assert result.risky_households == {"pref": 1}
    assert result.unswapped["household"].to_list() == [1]
    assert 1 not in set(result.pairs["household"]) | set(result.pairs["partner"])
    report = result.report()
    assert report["risky_unswapped"] == 1 and report["swapped_households"] == result.swapped_households


def test_report_is_json_ready_and_counts_levels(data: pl.DataFrame) -> None:
    report = swap(data, k_anonymity=3).report(max_pairs=5)
    assert len(report["pairs"]) == report["pairs_shown"] == 5
    assert sum(report["swaps_per_level"].values()) * 2 == report["swapped_households"]
    json.dumps(report)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"swap_rate": 1.5}, "swap_rate must be a number between 0 and 1"),
        ({"hierarchy": []}, "hierarchy needs at least 1"),
        ({"hierarchy": ["prefecture"]}, "'prefecture' not in the data"),
        ({"carry_along": ["hid"]}, "is the household id"),
        ({"similar": ["age_group"]}, "'age_group' differs between members of one household"),
        ({"k_anonymity": -1}, "k_anonymity must be at least 0"),
        ({"seed": 1.5}, "seed must be at least 0 and a whole number"),
    ],
)
def test_bad_parameters_say_what_to_fix(data: pl.DataFrame, options: dict, message: str) -> None:
    with pytest.raises(InvalidMicrodataInput, match=message):
        swap(data, **options)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(20, 400),
    seed=st.integers(0, 2**16),
    rate=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    k=st.integers(0, 4),
    depth=st.integers(1, 3),
    rare=st.sampled_from([0.0, 0.05]),
)
def test_every_swap_is_a_clean_exchange(n: int, seed: int, rate: float, k: int, depth: int, rare: float) -> None:
    """Whatever the data and parameters: each household in at most one pair, partners from different areas
    at the pair's level with the same household size, each taking the other's geography; per area (every level)
    and household size, the households are those of before."""
    data = census(n=n, seed=seed, rare=rare)
    hierarchy = HIERARCHY[:depth]
    result = swap(data, hierarchy=hierarchy, swap_rate=rate, k_anonymity=k, seed=seed,
                  risk_variables=["age_group", "nationality"])
    pairs = result.pairs
    members = pairs["household"].to_list() + pairs["partner"].to_list()
    assert len(members) == len(set(members)) == result.swapped_households
    before = households(data).select("hid", "hsize", *hierarchy)
    after = households(result.data).select("hid", *hierarchy)
    for row in pairs.iter_rows(named=True):
        a, b = (before.filter(pl.col("hid") == h).row(0, named=True) for h in (row["household"], row["partner"]))
        depth_of_level = hierarchy.index(row["level"]) + 1
        assert a["hsize"] == b["hsize"]
        assert tuple(a[c] for c in hierarchy[:depth_of_level]) != tuple(b[c] for c in hierarchy[:depth_of_level])
        assert after.filter(pl.col("hid") == row["household"]).row(0) == (row["household"], *(b[c] for c in hierarchy))
    for level in range(1, depth + 1):
        counts = [
            f.join(before.select("hid", "hsize"), on="hid", how="left", suffix="_b")
            .group_by([*hierarchy[:level], "hsize"]).len().sort([*hierarchy[:level], "hsize"])
            for f in (before.drop("hsize"), after)
        ]
        assert counts[0].equals(counts[1])
    if k == 0 and rate > 0:
        assert result.swapped_households <= result.target_households
