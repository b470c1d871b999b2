"""Perturbation tables (sdc.ckm.ptable) against the R packages' own examples and test expectations.

Figures from ptable 1.0's tests (tests/testthat/test-functions.R: pt_ex_cnts()'s probabilities,
pt_create_pParams' refusals) and cellKey 1.0.2's tests (test_countvars.R: the table of
create_cnt_ptable(D = 5, V = 3, js = 2, pstay = 0.5); test_numvars.R: pt_ex_nums())."""
from __future__ import annotations

import numpy as np
import pytest

from disclosure_review.sdc.ckm.ptable import (COLUMNS, PTableInvalid, PTableParams, create_cnt_ptable,
                                              create_num_ptable, create_ptable, read_csv)

# ptable's test-functions.R: pt_ex_cnts()@pTable$p, i.e. create_cnt_ptable(D = 2, V = 1.05, js = 1, mono = c(T, T, F, T))
PT_EX_CNTS_P = [1.00000000, 0.50833333, 0.47500000, 0.01666667, 0.16155827, 0.55565037, 0.24246618, 0.04032518,
                0.41231301, 0.28806097, 0.18693903, 0.11268699, 0.07012498, 0.24450007, 0.37074990, 0.24450007,
                0.07012498]


@pytest.fixture(scope="module")
def cellkey_counts():
    return create_cnt_ptable(D=5, V=3, js=2, pstay=0.5, optim=1, mono=True)


@pytest.fixture(scope="module")
def pt_ex_nums():
    return create_num_ptable(D=10, V=3, step=2, optim=(4, 1, 1), icat=(1, 5, 10))


def test_ptables_example_count_table_has_its_probabilities() -> None:
    table = create_cnt_ptable(D=2, V=1.05, js=1, mono=(True, True, False, True))
    # ptable's own optimiser stops at a relative tolerance of 1e-7
    np.testing.assert_allclose(table.p, PT_EX_CNTS_P, atol=2e-7)
    assert list(table.i) == [0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4]
    assert 1 not in set(table.j[table.i > 0])  # js = 1: a count is never released as 1


def test_cellkeys_count_table_has_the_figures_its_tests_expect(cellkey_counts) -> None:
    table = cellkey_counts
    assert len(table.i) == 66 and table.i.max() == 8  # dim(ptab) == c(66, 7), max(ptab$i) == 8
    assert round(table.p.mean(), 3) == 0.136
    assert round(table.p_int_lb.mean(), 3) == 0.562
    assert round(table.p_int_ub.mean(), 3) == 0.698
    assert round(table.v.mean(), 3) == 1.045


def test_every_row_keeps_ptables_constraints(cellkey_counts) -> None:
    table = cellkey_counts
    for i in table.classes[1:]:
        at = table.i == i
        p, v, j = table.p[at], table.v[at], table.j[at]
        assert p.sum() == pytest.approx(1, abs=1e-8)
        assert p @ v == pytest.approx(0, abs=1e-6)  # unbiased
        assert p @ v**2 <= 3 + 1e-6  # variance V at most
        assert np.abs(v).max() <= 5 and not set(j) & {1, 2}  # D, js
        assert (p >= 1e-8 - 1e-12).all()
        zero = np.flatnonzero(v == 0)
        if len(zero):  # mono: rising towards v = 0 from below
            assert (np.diff(p[: zero[0] + 1]) >= -1e-7).all()
    # the symmetry row (counts >= 8) reaches the variance and keeps at least pstay
    at = table.i == 8
    assert table.p[at] @ table.v[at] ** 2 == pytest.approx(3, abs=1e-3)
    assert table.p[at][table.v[at] == 0][0] >= 0.5 - 1e-7


def test_pt_ex_nums_has_its_rows(pt_ex_nums) -> None:
    assert len(pt_ex_nums.i) == 96 and round(pt_ex_nums.p.mean(), 3) == 0.042  # cellKey's test_numvars.R
    assert pt_ex_nums.p.sum() == pytest.approx(4)  # ptable's test: sum(pt_ex_nums()@pTable$p) == 4
    at = pt_ex_nums.i == 1  # optim 4: the variance exactly V
    assert pt_ex_nums.p[at] @ pt_ex_nums.v[at] ** 2 == pytest.approx(3, abs=1e-6)
    assert set(np.round(np.diff(np.unique(pt_ex_nums.j)), 4)) == {0.5}  # step 2


@pytest.mark.parametrize("params, code, named", [
    (dict(D=5, V=3, js=3), "ptable_v_too_small", "V = 3"),  # ptable's test: create_cnt_ptable(D=5, V=3, js=3) errors
    (dict(D=3, V=1, pstay=2), "ptable_param_range", "pstay"),
    (dict(D=-2, V=3, js=2), "ptable_param_whole", "D"),
    (dict(D=2, V=3, js=-2), "ptable_param_whole", "js"),
    (dict(D=3, V=1, pstay=(0.5,) * 5), "ptable_param_length", "pstay"),
    (dict(D=3, V=1, optim=(1,) * 8), "ptable_param_length", "optim"),
    (dict(D=5, V=3, table="nums", step=20, icat=(1, 5)), "ptable_nums_points", "D × step"),
    (dict(D=5, V=3, table="nums", step=2, icat=(1, 4)), "ptable_icat", "icat"),
    (dict(D=5, V=3, table="nums", step=2, icat=(1, 5, 10)), "ptable_icat", "icat"),
    (dict(D=5, V=0, js=1), "ptable_param_positive", "V"),
])
def test_parameter_sets_without_a_table_are_refused_naming_the_parameter(params, code, named) -> None:
    with pytest.raises(PTableInvalid) as caught:
        create_ptable(PTableParams(**params))
    assert caught.value.code == code and named in str(caught.value)
    assert named.split()[0] in caught.value.text("ja") and caught.value.text("ja") != str(caught.value)


def test_a_pstay_that_keeps_the_variance_below_v_is_lowered_as_ptable_does() -> None:
    table = create_cnt_ptable(D=1, V=0.5, pstay=0.99)
    at = table.i == 1
    assert table.p[at] @ table.v[at] ** 2 == pytest.approx(0.5, abs=1e-3)
    assert table.p[at][table.v[at] == 0][0] == pytest.approx(0.5, abs=1e-4)


def test_csv_round_trip_and_a_table_written_by_r(cellkey_counts) -> None:
    again = read_csv(cellkey_counts.to_csv())
    np.testing.assert_allclose(again.p_int_ub, cellkey_counts.p_int_ub)
    assert cellkey_counts.to_csv().splitlines()[0] == ",".join(COLUMNS)
    # write.csv(pt_ex_cnts()@pTable): quoted names and an unnamed column of row names first
    rows = [f'"{n}",{i},{j},{p},{j - i},{lb},{ub},"all"' for n, (i, j, p, lb, ub) in enumerate([
        (0, 0, 1, 0, 1), (1, 0, 0.50833333, 0, 0.50833333), (1, 2, 0.475, 0.50833333, 0.98333333),
        (1, 3, 0.01666667, 0.98333333, 1)], start=1)]
    table = read_csv('"","i","j","p","v","p_int_lb","p_int_ub","type"\n' + "\n".join(rows) + "\n")
    assert list(table.v) == [0, -1, 1, 2] and table.type == ("all",) * 4


@pytest.mark.parametrize("text, code", [
    ("i,j,p,v,type\n0,0,1,0,all\n", "ptable_csv_columns"),
    ("i,j,p,v,p_int_lb,p_int_ub,type\n1,0,0.5,-1,0,0.5,all\n1,2,0.4,1,0.5,0.9,all\n", "ptable_csv_intervals"),
    ("i,j,p,v,p_int_lb,p_int_ub,type\n1,0,x,-1,0,1,all\n", "ptable_csv_value"),
    ("i,j,p,v,p_int_lb,p_int_ub,type\n", "ptable_csv_empty"),
    ("i,j,p,v,p_int_lb,p_int_ub,type\n1,1,1,0,0,1,other\n", "ptable_param_choice"),
])
def test_a_damaged_csv_is_refused(text, code) -> None:
    with pytest.raises(PTableInvalid) as caught:
        read_csv(text)
    assert caught.value.code == code


def test_settings_from_json_name_an_unknown_parameter() -> None:
    assert PTableParams.from_dict({"D": 2, "V": 1.05, "js": 1, "mono": [True, True, False, True]}).mono == (
        True, True, False, True)
    with pytest.raises(PTableInvalid) as caught:
        PTableParams.from_dict({"D": 5, "V": 3, "varaince": 2})
    assert caught.value.code == "ptable_param_unknown" and "varaince" in str(caught.value)
