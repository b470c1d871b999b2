"""Differencing against released tables: total minus a subgroup reveals a small group."""
from __future__ import annotations

import polars as pl

from disclosure_review.sdc import MARGIN_LABEL, ShadowTable, TableKind, TableSpec, Verdict, load_preset, shadow_from_frame
from disclosure_review.sdc.differencing import check_differencing

ACRO = load_preset("acro-default")
# 30 people in area a, 40 in b; 3 of area a are over 80.
PEOPLE = pl.DataFrame({"area": ["a"] * 30 + ["b"] * 40, "sex": ["f", "m"] * 35, "age": [85] * 3 + [40] * 67})


def table(query: str, rows: tuple[str, ...], columns: tuple[str, ...] = (), name: str = "t") -> ShadowTable:
    return shadow_from_frame(PEOPLE, TableSpec(TableKind.FREQUENCY, query, rows=rows, columns=columns, name=name))


def test_total_minus_subgroup_reveals_small_group() -> None:
    everyone = table("SELECT * FROM data", ("area",), name="all_people")
    under_80 = table("SELECT * FROM data WHERE age < 80", ("area",), ("sex",), name="under_80")
    result = check_differencing(under_80, [everyone], ACRO)
    assert result.verdict is Verdict.REVIEW  # acro-default: differencing -> review
    assert result.cells == (("a", MARGIN_LABEL),)
    assert "area=a: 3 records" in result.message and "'all_people'" in result.message
    assert check_differencing(under_80, [everyone], load_preset("jp-onsite")).verdict is Verdict.FAIL


def test_same_population_and_large_differences_pass() -> None:
    everyone = table("SELECT * FROM data", ("area",), name="all_people")
    by_sex = table("SELECT * FROM data", ("area",), ("sex",), name="by_sex")
    assert check_differencing(by_sex, [everyone], ACRO).verdict is Verdict.PASS
    women = table("SELECT * FROM data WHERE sex = 'f'", ("area",), name="women")
    assert check_differencing(women, [everyone], ACRO).verdict is Verdict.PASS  # differences 15 and 20


def test_no_shared_variables_compares_grand_totals() -> None:
    by_area = table("SELECT * FROM data", ("area",), name="by_area")
    by_sex_young = table("SELECT * FROM data WHERE age < 80", ("sex",), name="by_sex_young")
    result = check_differencing(by_sex_young, [by_area], ACRO)
    assert "grand total: 3 records" in result.message


def test_released_tables_from_json_and_nothing_released() -> None:
    everyone = ShadowTable.from_dict(table("SELECT * FROM data", ("area",), name="all_people").to_dict())
    under_80 = table("SELECT * FROM data WHERE age < 80", ("area",), name="under_80")
    assert check_differencing(under_80, [everyone], ACRO).cells == (("a",),)
    assert check_differencing(under_80, [], ACRO).verdict is Verdict.PASS
    assert check_differencing(under_80, [everyone], load_preset("sdc-handbook")).verdict is Verdict.REVIEW


def test_check_table_includes_differencing_when_released_tables_are_given() -> None:
    from disclosure_review.sdc import check_table

    everyone = table("SELECT * FROM data", ("area",), name="all_people")
    under_80 = table("SELECT * FROM data WHERE age < 80", ("area",), name="under_80")
    report = check_table(under_80, ACRO.replace(zeros_disclosive=False), released=[everyone])
    assert report.result("differencing").verdict is Verdict.REVIEW
    assert "differencing" not in [r.rule for r in check_table(under_80, ACRO).results]


def test_many_findings_list_the_smallest_differences_first_in_a_stable_order() -> None:
    # 30 districts of 50 people; the new table leaves out each district's 1..9 over-80s, so every
    # district is a finding (30 > the 20 listed).
    over_80 = {f"d{i:02d}": i % 9 + 1 for i in range(30)}
    people = pl.DataFrame({
        "district": [d for d in over_80 for _ in range(50)],
        "age": [85 if j < n else 40 for n in over_80.values() for j in range(50)],
    }).sample(fraction=1.0, shuffle=True, seed=7)
    spec = lambda query, name: TableSpec(TableKind.FREQUENCY, query, rows=("district",), name=name)  # noqa: E731
    everyone = shadow_from_frame(people, spec("SELECT * FROM data", "everyone"))
    under_80 = shadow_from_frame(people, spec("SELECT * FROM data WHERE age < 80", "under_80"))
    results = [check_differencing(under_80, [everyone], ACRO) for _ in range(5)]
    assert len({r.message for r in results}) == 1 and len({r.cells for r in results}) == 1
    expected = sorted(over_80, key=lambda d: (over_80[d], d))
    assert results[0].cells == tuple((d,) for d in expected)
    listed = results[0].args["findings"]
    assert len(listed) == 21  # 20 findings and "10 more"
    assert "district=d00: 1 records" in results[0].message and "district=d26: 9 records" not in results[0].message
