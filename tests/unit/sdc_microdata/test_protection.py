"""Recoding, top/bottom coding, PRAM, MDAV, noise and information loss.

Reference numbers exist in sdcMicro's tests only for topBotCoding (test_topBotCoding.R, data
from set.seed(3)/runif, rebuilt with r_rng) and for globalRecode on the same data (commented
out there: class patterns). PRAM, MDAV and noise draw random numbers, so they are checked by
their defining properties (PRAM with a user's matrix: sdcMicro's test_pram.R identity case and
its manual's example, and a chi-square test of the drawn transitions against the matrix); IL1s and IL_correl against plain numpy written from sdcMicro's
R/dUtility.R.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from r_rng import RRandom
from scipy.stats import chisquare

from disclosure_review.sdc.microdata import (
    CodingSide,
    InvalidMicrodataInput,
    NoiseMethod,
    RecodeMethod,
    add_noise,
    global_recode,
    information_loss,
    microaggregation,
    pram,
    recode_categories,
    top_bottom_code,
)
from disclosure_review.sdc.microdata.perturbation import invariant_transition_matrix, mdav_groups


def var1(with_missing: bool = False) -> pl.DataFrame:
    x = RRandom(3).runif(30, 1, 100)[:10]
    if with_missing:
        x[[0, 1, 6]] = np.nan
    return pl.DataFrame({"Var1": x}).with_columns(pl.col("Var1").fill_nan(None))


@pytest.mark.parametrize("with_missing", [False, True])
def test_top_bottom_coding_reference(with_missing):
    """topBotCoding(sample_Data[,1], value=35, replacement=0, kind='top'|'bottom'), tolerance 0.001."""
    top = [17.63611, 0, 0, 33.44570, 0, 0, 13.33871, 30.16549, 0, 0]
    bottom = [0, 80.94412, 39.10929, 0, 60.60797, 60.83501, 0, 0, 58.18338, 63.46695]
    if with_missing:
        top = [np.nan, np.nan, 0, 33.44570, 0, 0, np.nan, 30.16549, 0, 0]
        bottom = [np.nan, np.nan, 39.10929, 0, 60.60797, 60.83501, np.nan, 0, 58.18338, 63.46695]
    data = var1(with_missing)
    t = top_bottom_code(data, "Var1", bound=35, replacement=0, side=CodingSide.TOP)
    b = top_bottom_code(data, "Var1", bound=35, replacement=0, side=CodingSide.BOTTOM)
    np.testing.assert_allclose(t.data["Var1"].fill_null(np.nan).to_numpy(), top, atol=1e-3)
    np.testing.assert_allclose(b.data["Var1"].fill_null(np.nan).to_numpy(), bottom, atol=1e-3)
    assert t.changed["Var1"] == sum(1 for v in top if v == 0)


def classes(res) -> list:
    """Class pattern A, B, C… in order of the intervals (as the R tests compare levels)."""
    labels = res.details["labels"]
    return ["ABC"[labels.index(v)] if v is not None else None for v in res.data["Var1"].to_list()]


def test_global_recode_patterns():
    """globalRecode(sample_Data[,1], breaks=3, method=...) class patterns from test_globalRecode.R."""
    data = var1()
    assert classes(global_recode(data, "Var1", breaks=3)) == list("ACBACCAABC")
    assert classes(global_recode(data, "Var1", breaks=3, method=RecodeMethod.QUANTILES)) == list("ACBABCAABC")
    assert classes(global_recode(data, "Var1", breaks=3, method=RecodeMethod.LOG_EQUAL_WIDTH)) == list("BCBBBBABBC")
    assert classes(global_recode(data, "Var1", breaks=[0, 30, 60, 90])) == list("ACBBCCABBC")
    res = global_recode(data, "Var1", breaks=[0, 30, 60, 90], labels=["low", "mid", "high"])
    assert res.data["Var1"].to_list()[:3] == ["low", "high", "mid"]
    assert res.changed_records == 10 and res.details["categories_after"] == 3


def test_global_recode_breaks_and_errors():
    data = var1()
    res = global_recode(data, "Var1", breaks=[0, 2, 3, 4])  # every value outside: missing (R: all NA)
    assert res.data["Var1"].null_count() == 10
    with pytest.raises(InvalidMicrodataInput, match="labels"):
        global_recode(data, "Var1", breaks=3, labels=["a"])
    with pytest.raises(InvalidMicrodataInput, match="numeric"):
        global_recode(pl.DataFrame({"c": ["a"]}), "c", breaks=2)


def test_recode_categories(testdata):
    res = recode_categories(testdata, "roof", {5: 9, 6: 9})
    assert res.changed["roof"] == testdata["roof"].is_in([5, 6]).sum() == 53
    assert sorted(res.data["roof"].unique().to_list()) == [2, 4, 9]
    assert res.data.filter(pl.col("roof") == 9).height == 16 + 53
    with pytest.raises(InvalidMicrodataInput, match="not found"):
        recode_categories(testdata, "roof", {3: 1})


def test_invariant_matrix_keeps_distribution():
    rng = np.random.default_rng(0)
    counts = np.array([50.0, 30.0, 15.0, 5.0])
    matrix = invariant_transition_matrix(counts, pd=0.8, alpha=0.5, rng=rng)
    p = counts / counts.sum()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(p @ matrix, p, atol=1e-12)  # invariance: p R = p
    assert (np.diag(matrix) >= 0.5 * 0.8).all()


def test_pram_on_testdata(testdata):
    res = pram(testdata, ["roof"], seed=1)
    before = testdata["roof"].value_counts().sort("roof")["count"].to_numpy().astype(np.int64)
    after = res.data["roof"].value_counts().sort("roof")["count"].to_numpy().astype(np.int64)
    assert 0 < res.changed["roof"] < testdata.height * 0.3
    # invariant: category counts stay within sampling noise (±4 standard errors of a binomial)
    n = testdata.height
    assert (np.abs(after - before) <= 4 * np.sqrt(n * (before / n) * (1 - before / n)) + 2).all()
    assert (testdata.drop("roof").equals(res.data.drop("roof")))
    same = pram(testdata, ["roof"], seed=1)
    assert same.data["roof"].equals(res.data["roof"])
    identity = pram(testdata, ["roof"], pd=1.0, alpha=0.5, seed=2)
    assert identity.changed["roof"] == 0


def test_mdav(testdata):
    res = microaggregation(testdata, ["expend", "income"], k=3)
    sizes = np.bincount(mdav_groups(testdata.select("expend", "income").to_numpy().astype(float), 3))
    assert sizes.min() >= 3 and sizes.max() <= 5
    for v in ("expend", "income"):
        assert abs(res.data[v].mean() - testdata[v].cast(pl.Float64).mean()) < 1e-6 * abs(testdata[v].mean())
    # every record shares its (expend, income) pair with at least 2 others
    counts = res.data.group_by("expend", "income").len()["len"]
    assert counts.min() >= 3


def test_mdav_matches_plain_implementation():
    """A plain-loop MDAV written from Domingo-Ferrer & Mateo-Sanz (2002) on 40 random points."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 2))
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    left = list(range(40))
    groups = {}
    gid = 0

    def nearest(anchor, pool):
        return sorted(pool, key=lambda i: (float(((z[i] - z[anchor]) ** 2).sum()), pool.index(i)))[:3]

    while len(left) >= 9:
        c = z[left].mean(0)
        r = max(left, key=lambda i: (float(((z[i] - c) ** 2).sum()), -left.index(i)))
        s = max(left, key=lambda i: (float(((z[i] - z[r]) ** 2).sum()), -left.index(i)))
        for a in (r, s):
            for i in nearest(a, left):
                groups[i] = gid
            gid += 1
            left = [i for i in left if i not in groups]
    if len(left) >= 6:
        c = z[left].mean(0)
        r = max(left, key=lambda i: (float(((z[i] - c) ** 2).sum()), -left.index(i)))
        for i in nearest(r, left):
            groups[i] = gid
        gid += 1
        left = [i for i in left if i not in groups]
    for i in left:
        groups[i] = gid
    np.testing.assert_array_equal(mdav_groups(x, 3), [groups[i] for i in range(40)])


def test_noise(testdata):
    res = add_noise(testdata, ["income", "expend"], noise=50, seed=3)
    diff = res.data["income"].to_numpy() - testdata["income"].cast(pl.Float64).to_numpy()
    sd = testdata["income"].cast(pl.Float64).std()
    assert abs(diff.std() / (0.5 * sd) - 1) < 0.05
    corr = add_noise(testdata, ["income", "expend"], noise=20, method=NoiseMethod.CORRELATED, seed=3)
    assert corr.changed_records == testdata.height
    with pytest.raises(InvalidMicrodataInput, match="'nothere'"):
        add_noise(testdata, ["nothere"])


def test_information_loss_against_numpy(testdata):
    protected = add_noise(testdata, ["income", "expend", "savings"], noise=30, seed=4).data
    loss = information_loss(testdata, protected, variables=["roof"], continuous=["income", "expend", "savings"])
    x = testdata.select("income", "expend", "savings").to_numpy().astype(float)
    xm = protected.select("income", "expend", "savings").to_numpy()
    expected_il1s = np.sum(np.abs(x - xm) / (x.std(0, ddof=1) * np.sqrt(2)))
    assert abs(loss.il1s - expected_il1s) < 1e-9 * expected_il1s

    def diag(m):
        d = np.diag(np.linalg.inv(np.corrcoef(m.T)))
        return d / np.linalg.norm(d)

    assert abs(loss.correlation_loss - np.linalg.norm(diag(x) - diag(xm)) / np.sqrt(2)) < 1e-12
    assert loss.changed_values["roof"] == 0 and loss.changed_values["income"] == testdata.height
    none = information_loss(testdata, testdata, variables=["roof"], continuous=["income", "expend"])
    assert none.il1s == 0 and none.correlation_loss < 1e-12 and none.changed_records == 0


def identity(categories: list) -> pd.DataFrame:
    return pd.DataFrame(np.eye(len(categories)), index=categories, columns=categories)


def test_pram_identity_matrix_changes_nothing(testdata):
    """test_pram.R: pram(testdata, variables='roof', pd=mat_id) leaves roof unchanged; with
    pd=list(mat_id, 0.5), alpha=c(NA, 0.5) on c('roof', 'walls') roof stays and walls changes."""
    roofs = sorted(testdata["roof"].unique().to_list())
    res = pram(testdata, ["roof"], pd=identity(roofs), seed=1)
    assert res.changed["roof"] == 0 and res.details["transitions"]["roof"] == []
    both = pram(testdata, ["roof", "walls"], pd={"roof": identity(roofs), "walls": 0.5}, alpha=0.5, seed=1)
    assert both.changed["roof"] == 0 and both.changed["walls"] > 0


def test_pram_manual_matrix(testdata2):
    """The pram manual's example on testdata2: mat <- diag(5) over the roof levels 2, 4, 5, 6, 9 and
    mat[1,] <- c(0.9, 0, 0, 0.05, 0.05): only roof 2 moves, and only to 6 or 9."""
    mat = np.eye(5)
    mat[0] = [0.9, 0, 0, 0.05, 0.05]
    res = pram(testdata2, ["roof"], pd=mat, seed=7)
    before, after = testdata2["roof"].to_numpy(), res.data["roof"].to_numpy()
    moved = before != after
    assert moved.any() and (before[moved] == 2).all() and set(after[moved]) <= {6, 9}
    assert res.details["categories"]["roof"] == [2, 4, 5, 6, 9]
    assert res.details["transition_matrices"]["roof"] == mat.tolist()
    assert sum(t["records"] for t in res.details["transitions"]["roof"]) == res.changed["roof"] == int(moved.sum())
    assert {(t["from"], t["to"]) for t in res.details["transitions"]["roof"]} <= {(2, 6), (2, 9)}


def transition_counts(before: np.ndarray, after: np.ndarray, cats: list) -> np.ndarray:
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((len(cats), len(cats)), dtype=np.int64)
    np.add.at(counts, ([index[x] for x in before], [index[x] for x in after]), 1)
    return counts


MATRIX = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.0, 0.25, 0.75]])


def large_sample(n: int = 300_000) -> pl.DataFrame:
    rng = np.random.default_rng(11)
    return pl.DataFrame({"v": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]),
                         "s": rng.integers(0, 3, size=n)})


def test_pram_matrix_transitions_follow_the_matrix():
    """On 300,000 records each category's new values follow its row of the matrix (chi-square per
    row, p > 0.001); zero-probability transitions never happen; the same counts reject a matrix
    only 0.02 away (the test can fail)."""
    data = large_sample()
    res = pram(data, ["v"], pd=MATRIX, seed=3)
    counts = transition_counts(data["v"].to_numpy(), res.data["v"].to_numpy(), ["a", "b", "c"])
    assert counts[2, 0] == 0
    for i, row in enumerate(counts):
        positive = MATRIX[i] > 0
        assert chisquare(row[positive], row.sum() * MATRIX[i][positive]).pvalue > 1e-3
    off = MATRIX[0] + [-0.02, 0.02, 0.0]
    assert chisquare(counts[0], counts[0].sum() * off).pvalue < 1e-6
    # strata: the same matrix in every stratum
    by_stratum = pram(data, ["v"], pd=MATRIX, strata=["s"], seed=4)
    assert by_stratum.details["transition_matrices"]["v"] == MATRIX.tolist()
    counts = transition_counts(data["v"].to_numpy(), by_stratum.data["v"].to_numpy(), ["a", "b", "c"])
    assert all(chisquare(r[MATRIX[i] > 0], r.sum() * MATRIX[i][MATRIX[i] > 0]).pvalue > 1e-3
               for i, r in enumerate(counts))


def test_pram_matrix_invariant_option():
    """invariant=True: the matrix applied is alpha·P·Q + (1 − alpha)·I built from the user's P, so the
    category distribution p stays (p R = p, counts within 4 standard errors), while P itself moves
    it to p·P."""
    data = large_sample()
    n = data.height
    before = data["v"].value_counts().sort("v")["count"].to_numpy().astype(np.int64)
    p = before / n
    kept = pram(data, ["v"], pd=MATRIX, invariant=True, alpha=0.7, seed=5)
    applied = np.array(kept.details["transition_matrices"]["v"])
    np.testing.assert_allclose(p @ applied, p, atol=1e-12)
    np.testing.assert_allclose(applied.sum(axis=1), 1.0)
    after = kept.data["v"].value_counts().sort("v")["count"].to_numpy().astype(np.int64)
    se = np.sqrt(n * p * (1 - p))
    assert (np.abs(after - before) < 4 * se).all() and kept.changed["v"] > 0.1 * n
    plain = pram(data, ["v"], pd=MATRIX, seed=5)
    moved = plain.data["v"].value_counts().sort("v")["count"].to_numpy().astype(np.int64)
    assert (np.abs(moved - n * p @ MATRIX) < 4 * se).all() and (np.abs(moved - before) > 20 * se).any()
    # per stratum: p R = p within each stratum
    strat = pram(data, ["v"], pd=MATRIX, invariant=True, strata=["s"], seed=6)
    assert "v" not in strat.details["transition_matrices"]  # differs per stratum
    for _, part in data.with_columns(new=strat.data["v"]).group_by("s"):
        b = part["v"].value_counts().sort("v")["count"].to_numpy().astype(np.int64)
        a = part["new"].value_counts().sort("new")["count"].to_numpy().astype(np.int64)
        assert (np.abs(a - b) < 4 * np.sqrt(part.height * (b / part.height) * (1 - b / part.height))).all()


def test_pram_labelled_matrix_any_order(testdata2):
    """A pandas DataFrame labelled by the categories in any order equals the array in sorted order."""
    mat = np.full((3, 3), 0.1) + np.eye(3) * 0.7
    labelled = pd.DataFrame(mat, index=[2, 3, 9], columns=[2, 3, 9]).loc[[9, 2, 3], [3, 9, 2]]
    a = pram(testdata2, ["walls"], pd=mat, seed=9)
    b = pram(testdata2, ["walls"], pd=labelled, seed=9)
    assert a.data["walls"].equals(b.data["walls"]) and a.changed["walls"] > 0
    text = pram(pl.DataFrame({"c": ["y", "x", None, "z", "x"]}), ["c"],
                pd=pd.DataFrame(np.eye(3), index=["x", "y", "z"], columns=["z", "y", "x"]), seed=1)
    assert text.data["c"].to_list() == ["y", "z", None, "x", "z"]  # x ↔ z swap, missing stays


def test_pram_matrix_errors(testdata2):
    cats = [2, 3, 9]
    good = np.eye(3)
    cases = [
        (np.ones((3, 2)) / 2, "square"),
        (np.eye(4), "has 3 categories"),
        (np.array([[0.9, 0.0, 0.0], [0, 1, 0], [0, 0, 1]]), "row 2 of .* sums to 0.9, not 1"),
        (np.array([[1.2, -0.2, 0.0], [0, 1, 0], [0, 0, 1]]), "negative probability"),
        (np.array([[np.nan, 1, 0], [0, 1, 0], [0, 0, 1]]), "missing or infinite"),
        ([["a", "b", "c"]] * 3, "numbers only"),
        (pd.DataFrame(good, index=[2, 3, 4], columns=cats), "row labels .* missing 9; not categories of 'walls': 4"),
        (pd.DataFrame(good, index=cats, columns=["2", "3", "9"]), "column labels"),
        (pd.DataFrame(good, index=[2, 2, 9], columns=cats), "repeated row labels"),
        (pl.DataFrame(good), "no row labels"),
    ]
    for matrix, message in cases:
        with pytest.raises(InvalidMicrodataInput, match=message):
            pram(testdata2, ["walls"], pd=matrix)
    within = good.copy()
    within[0] = [1 - 1e-10, 1e-10 / 2, 1e-10 / 4]  # sums to 1 within 1e-8: accepted
    pram(testdata2, ["walls"], pd=within, seed=1)
    with pytest.raises(InvalidMicrodataInput, match="pd must give a spec for each"):
        pram(testdata2, ["walls", "roof"], pd={"walls": good})
    with pytest.raises(InvalidMicrodataInput, match="always gives sdcMicro's invariant"):
        pram(testdata2, ["walls"], pd=0.8, invariant=False)
    with pytest.raises(InvalidMicrodataInput, match="between 0 and 1"):
        pram(testdata2, ["walls"], pd=1.5)
    with pytest.raises(InvalidMicrodataInput, match="'nothere'"):
        pram(testdata2, ["nothere"], pd=good)
