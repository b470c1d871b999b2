"""ACRO 1.0.x's public API, method by method: each exists on Onsite's ACRO with ACRO's parameters (names, order,
kinds, defaults); Onsite adds keyword-only parameters only. Checked against the installed `acro` package when it
is there (the list below must then be its list), and against the list alone when it is not."""
from __future__ import annotations

import inspect
import logging

import pandas as pd
import pytest

import analysis_kernel.acro as onsite_acro
from analysis_kernel.acro import ACRO
from disclosure_review.sdc import load_preset

ACRO_1_0_METHODS = (
    "add_comments", "add_exception", "crosstab", "custom_output", "disable_rounding", "disable_suppression",
    "enable_rounding", "enable_suppression", "finalise", "hist", "logit", "logitr", "ols", "olsr", "pie",
    "pivot_table", "print_outputs", "probit", "probitr", "remove_output", "rename_output", "show_fair_summaries",
    "surv_func",
)
"""ACRO 1.0.2's public methods of acro.ACRO (its own and those of acro_tables.Tables, acro_regression.Regression)."""
ACRO_1_0_SETTINGS = ("mitigation", "round_base", "suppress", "results")
ACRO_1_0_FUNCTIONS = ("add_constant", "add_to_acro")
"""What `from acro import ...` offers besides ACRO (the old nursery notebook imports both)."""


def _public_methods(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member) and not isinstance(inspect.getattr_static(cls, name),
                                                                                   property)}


def test_every_acro_method_exists_and_settings_are_there(tmp_path) -> None:
    assert set(ACRO_1_0_METHODS) <= _public_methods(ACRO)
    acro = ACRO(db=object())  # no connection needed to look at the settings
    for name in ACRO_1_0_SETTINGS:
        assert hasattr(acro, name), name
    for name in ACRO_1_0_FUNCTIONS:
        assert callable(getattr(onsite_acro, name)), name


def test_signatures_are_acros() -> None:
    acro = pytest.importorskip("acro")
    assert _public_methods(acro.ACRO) == set(ACRO_1_0_METHODS), "acro's public methods changed: update the list"
    for name in ("__init__", *ACRO_1_0_METHODS):
        theirs = list(inspect.signature(getattr(acro.ACRO, name)).parameters.values())
        ours = list(inspect.signature(getattr(ACRO, name)).parameters.values())
        assert [(p.name, p.kind, repr(p.default)) for p in ours[:len(theirs)]] == [
            (p.name, p.kind, repr(p.default)) for p in theirs], name
        extra = ours[len(theirs):]
        assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in extra), (name, extra)
    for name in ACRO_1_0_FUNCTIONS:
        theirs, ours = (inspect.signature(getattr(m, name)).parameters.values() for m in (acro, onsite_acro))
        assert [(p.name, repr(p.default)) for p in theirs] == [(p.name, repr(p.default)) for p in ours], name


def test_config_is_acros_keys_with_the_presets_values() -> None:
    """`acro.config` has ACRO's keys; the values are the project's preset (here acro-default, ACRO's own numbers),
    and it cannot be changed to loosen a check."""
    ours = ACRO(db=_Offline())
    acro_module = pytest.importorskip("acro")
    logging.disable(logging.INFO)
    try:
        theirs = acro_module.ACRO().config
    finally:
        logging.disable(logging.NOTSET)
    shared = {k: v for k, v in theirs.items() if k in ours.config}
    assert set(ours.config) <= set(theirs) and len(shared) == 10
    assert dict(ours.config) == shared | {"check_missing_values": True}  # Onsite reviews cells with missing values
    with pytest.raises(TypeError):
        ours.config["safe_threshold"] = 1
    strict = _Offline()
    strict.preset = "jp-onsite"
    rules, config = load_preset("jp-onsite"), ACRO(db=strict).config
    assert (config["safe_nk_n"], config["safe_pratio_p"]) == (rules.nk_n, rules.p_ratio) == (None, None)  # no such rule


def test_fair_summaries_read_as_acros() -> None:
    """The same lines as ACRO's show_fair_summaries for each output: its uid, each check with its verdict, the
    dependent and independent variables (checks named as ACRO names them, Onsite's own as onsite:<rule>)."""
    acro_module = pytest.importorskip("acro")
    frame = pd.DataFrame({"area": ["a", "b"] * 20, "grp": ["x"] * 20 + ["y"] * 20, "income": range(1, 41)})
    logging.disable(logging.INFO)
    try:
        theirs = acro_module.ACRO()
        theirs.crosstab(frame.area, frame.grp, values=frame.income, aggfunc="mean")
        their_text = theirs.show_fair_summaries()
    finally:
        logging.disable(logging.NOTSET)
    ours = ACRO(db=_Offline())
    ours.crosstab(frame.area, frame.grp, values=frame.income, aggfunc="mean")
    text = ours.show_fair_summaries()
    assert text.startswith("output_0\n") and text.endswith("\n\n") and their_text.endswith("\n\n")
    lines = set(text.splitlines())
    for line in ("dependent:income", "independent:['area', 'grp']", "MinimumThresholdCheck : pass",
                 "NKCheck : pass", "PPercentCheck : pass"):
        assert line in lines and line in their_text.splitlines(), line


class _Offline:
    """A session without datasets: tables made from plain frames are checked under acro-default, unverified."""

    preset = "acro-default"
    manifest = None
