"""Perturbing cells by their record keys (sdc.ckm.cellkey): cellKey's lookup rule, consistency, and the differencing
attack it exists to defeat."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from property_examples import examples

from disclosure_review.sdc.ckm.cellkey import (KEY_SCALE, MagnitudeParams, cell_keys, draw_record_keys,
                                               information_loss, kth_keys, perturb_counts, perturb_magnitudes)
from disclosure_review.sdc.ckm.ptable import PTableInvalid, create_cnt_ptable, create_num_ptable, read_csv

D, V, JS = 5, 3.0, 2


@pytest.fixture(scope="module")
def table():
    return create_cnt_ptable(D=D, V=V, js=JS, pstay=0.5)


@pytest.fixture(scope="module")
def nums():
    return create_num_ptable(D=10, V=3, step=2, optim=(4, 1, 1), icat=(1, 5, 10))


def test_the_deviation_is_the_one_whose_interval_holds_the_cell_key(table) -> None:
    # cellKey's lookup_freq: the first row of the cell's count (the last row above it) with cell key < p_int_ub
    for count in (1, 3, 8, 40):
        row = table.i == min(count, 8)
        for lb, ub, v in zip(table.p_int_lb[row], table.p_int_ub[row], table.v[row]):
            for key in (lb, (lb + ub) / 2):
                if ub > lb:
                    assert perturb_counts(np.array([count]), np.array([key]), table)[0] == v
    assert perturb_counts(np.array([0, 0]), np.array([0.3, 0.99]), table).tolist() == [0, 0]  # empty stays empty


def test_released_counts_keep_the_tables_promises(table) -> None:
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 60, 200_000)
    released = counts + perturb_counts(counts, rng.random(len(counts)), table)
    assert released.min() >= 0 and not set(released[counts > 0]) & set(range(1, JS + 1))
    assert np.abs(released - counts).max() <= D
    large = counts >= 8
    assert abs((released - counts)[large].mean()) < 0.02  # unbiased
    assert (released - counts)[large].var() == pytest.approx(V, rel=0.03)


def test_a_cell_key_depends_on_its_records_only_not_their_order_or_grouping() -> None:
    keys = draw_record_keys(1000).astype(np.uint64)
    members = np.random.default_rng(1).permutation(1000)[:137]
    whole = keys[members].sum()
    parts = keys[members[:50]].sum() + keys[members[50:]].sum()  # a margin from two cells
    assert cell_keys(np.array([whole]))[0] == cell_keys(np.array([parts]))[0]
    assert cell_keys(np.array([whole]))[0] == (int(whole) % KEY_SCALE) / KEY_SCALE
    assert 0 <= cell_keys(np.array([whole]))[0] < 1


def test_record_keys_are_uniform_and_fresh() -> None:
    a, b = draw_record_keys(100_000), draw_record_keys(100_000)
    assert (a != b).mean() > 0.999
    assert (a / KEY_SCALE).mean() == pytest.approx(0.5, abs=0.01)


def test_magnitudes_perturbed_by_their_top_contributions(nums) -> None:
    rng = np.random.default_rng(3)
    top = np.sort(rng.lognormal(7, 1.5, (5000, 3)), axis=1)[:, ::-1]
    values = top.sum(axis=1) + rng.lognormal(8, 1, 5000)
    sums = rng.integers(0, 2**40, 5000).astype(np.uint64)
    params = MagnitudeParams()
    deviation = perturb_magnitudes(values, top, kth_keys(sums, 3), nums, params)
    again = perturb_magnitudes(values, top, kth_keys(sums, 3), nums, params)
    assert np.array_equal(deviation, again)  # the same cell, the same noise
    assert (values + deviation > 0).all()  # never past zero
    # noise scales with the largest contribution, not with the cell's total
    assert np.abs(deviation).max() <= (10 * 0.2 * top.sum(axis=1)).max()
    assert abs(np.mean(deviation / top[:, 0])) < 0.05
    assert perturb_magnitudes(np.zeros(2), np.full((2, 3), np.nan), kth_keys(sums[:2], 3), nums, params).tolist() == [0, 0]


def test_the_first_key_of_a_cell_is_its_cell_key() -> None:
    sums = np.array([123456789012, 5], dtype=np.uint64)
    keys = kth_keys(sums, 3)
    assert keys[:, 0].tolist() == cell_keys(sums).tolist()
    assert len(set(keys[0])) == 3


@pytest.mark.parametrize("params, code", [
    (dict(top_k=0), "ptable_param_whole"),
    (dict(p_small=0.01, p_large=0.2), "ckm_p_large"),
    (dict(epsilon=(1.0, 0.5)), "ckm_epsilon"),
    (dict(epsilon=(0.5, 0.5, 0.3)), "ckm_epsilon"),
    (dict(mu_c=-1), "ckm_param_nonnegative"),
])
def test_bad_magnitude_parameters_are_named(params, code) -> None:
    with pytest.raises(PTableInvalid) as caught:
        MagnitudeParams(**params)
    assert caught.value.code == code


def test_information_loss() -> None:
    loss = information_loss([10, 20, 0, 40], [11, 20, 0, 37])
    assert loss.changed == 2 and loss.share_changed == 0.5
    assert loss.mean_absolute_deviation == 1.0 and loss.max_absolute_deviation == 3
    assert loss.mean_relative_deviation == pytest.approx((0.1 + 0 + 3 / 40) / 3)


# -- the differencing attack -----------------------------------------------------------------------

@settings(max_examples=examples(25), deadline=None)
@given(others=st.integers(min_value=JS + 1, max_value=500), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_differencing_two_releases_recovers_the_target_no_better_than_the_noise_allows(table, others, seed) -> None:
    """Two published cells: everyone (the target and `others` more) and everyone but the target. Their difference
    is the target's presence (1). With perturbation, the attacker's best estimate is the released difference; over
    fresh populations (new record keys) it is exactly right no more often than two independent draws from the table
    agree, and its error has the variance of two noises."""
    rng = np.random.default_rng(seed)
    trials = 400
    row = table.i == 8
    p = table.p[row]
    agree = float(p @ p)  # P(two independent deviations are equal): the best an attacker can be exactly right
    hits, errors = 0, []
    for _ in range(trials):
        keys = rng.integers(0, KEY_SCALE, others + 1, dtype=np.uint64)  # a fresh population's record keys
        everyone, but_target = keys.sum(), keys[1:].sum()
        counts = np.array([others + 1, others])
        released = counts + perturb_counts(counts, cell_keys(np.array([everyone, but_target])), table)
        estimate = int(released[0] - released[1])
        hits += estimate == 1
        errors.append(estimate - 1)
    # exact recovery no likelier than two independent noises agreeing (4 standard errors of slack)
    assert hits / trials <= agree + 4 * np.sqrt(agree * (1 - agree) / trials)
    if others >= 8:  # both cells on the table's last row: each noise has variance V
        assert np.var(errors) >= 2 * V * 0.6


def test_a_table_of_several_types_is_refused(table) -> None:
    odd = table.to_csv().replace(",all\n", ",odd\n").splitlines()[1:]
    mixed = read_csv(table.to_csv() + "\n".join(odd) + "\n")
    with pytest.raises(PTableInvalid) as caught:
        perturb_counts(np.array([3]), np.array([0.5]), mixed)
    assert caught.value.code == "ckm_one_type"


def test_sensitive_cells_get_mu_c_more(nums) -> None:
    rng = np.random.default_rng(11)
    top = np.minimum(rng.lognormal(6, 0.5, (2000, 1)), 999.0)  # below the flex point (1000): a unit is 0.2 x
    values = top[:, 0] * 3
    keys = kth_keys(rng.integers(0, 2**40, 2000).astype(np.uint64), 1)
    one = {"top_k": 1, "epsilon": (1.0,)}
    plain = perturb_magnitudes(values, top, keys, nums, MagnitudeParams(**one))
    extra = perturb_magnitudes(values, top, keys, nums, MagnitudeParams(mu_c=2.0, **one), np.arange(2000) < 1000)
    assert np.array_equal(plain[1000:], extra[1000:])  # not marked: unchanged
    # marked: at least mu_c units away, in the direction of their noise (v = 0 counts as up)
    assert (np.abs(extra[:1000]) >= 2.0 * 0.2 * top[:1000, 0] * (1 - 1e-9)).all()
    assert (np.abs(extra[:1000]) - np.abs(plain[:1000]) >= 2.0 * 0.2 * top[:1000, 0] * (1 - 1e-9)).all()
