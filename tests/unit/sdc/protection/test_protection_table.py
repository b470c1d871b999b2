"""Building linked tables from frames of cells (the shadow-table adapter) and refusing bad ones."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from disclosure_review.sdc.protection import (
    InvalidProtectionLevel,
    InvalidTable,
    LinkedTable,
    ProtectionLevels,
    from_shadow,
    with_margins,
)


def shadow_frame() -> pl.DataFrame:
    """sex x region counts with margins; margins marked by null (sex) and "Total" (region)."""
    return pl.DataFrame(
        {
            "sex": ["F", "F", "F", "M", "M", "M", None, None, None],
            "region": ["N", "S", "Total", "N", "S", "Total", "N", "S", "Total"],
            "n": [3, 12, 15, 7, 9, 16, 10, 21, 31],
            "fails": [True, False, False, False, False, False, False, False, False],
        }
    )


def test_from_shadow_reads_cells_margins_and_the_unsafe_mask() -> None:
    table = from_shadow(shadow_frame(), ["sex", "region"], "n", "fails")
    assert table.levels == (("F", "M"), ("N", "S"))
    assert table.array().tolist() == [[3, 12, 15], [7, 9, 16], [10, 21, 31]]
    assert [table.key(int(c)) for c in np.flatnonzero(table.unsafe)] == [
        {"sex": "F", "region": "N"}
    ]
    # The additivity rows hold for the true values.
    assert np.allclose(table.constraints() @ table.values, 0)
    assert table.constraints().shape == (3 + 3, 9)


def test_row_order_does_not_matter_and_a_vector_mask_works() -> None:
    frame = shadow_frame().reverse()
    table = from_shadow(frame, ["sex", "region"], "n", frame["fails"].to_numpy())
    assert table.key(int(np.flatnonzero(table.unsafe)[0])) == {"sex": "F", "region": "N"}
    # Levels in order of first appearance of the reversed frame.
    assert table.levels == (("M", "F"), ("S", "N"))


def test_missing_cells_are_refused_unless_filled() -> None:
    frame = shadow_frame().filter(~((pl.col("sex") == "M") & (pl.col("region") == "S")))
    with pytest.raises(InvalidTable, match="missing"):
        from_shadow(frame, ["sex", "region"], "n", "fails")
    # Filling treats the absent interior cell as 0: then the margins no longer add up.
    with pytest.raises(InvalidTable, match="not the sums"):
        from_shadow(frame, ["sex", "region"], "n", "fails", fill_missing=True)
    interior_only = shadow_frame().filter(
        pl.col("sex").is_not_null() & (pl.col("region") != "Total")
    )
    table = from_shadow(interior_only, ["sex", "region"], "n", "fails", fill_missing=True)
    assert table.array().tolist() == [[3, 12, 15], [7, 9, 16], [10, 21, 31]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.with_columns(pl.when(pl.col("n") == 31).then(30).otherwise(pl.col("n")).alias("n")), "not the sums"),
        (lambda f: pl.concat([f, f.head(1)]), "more than once"),
        (lambda f: f.with_columns(pl.lit(None, pl.Int64).alias("n")), "missing values"),
        (lambda f: f.with_columns(pl.lit("x").alias("fails")), "boolean"),
        (lambda f: f.drop("region"), "not in the table"),
    ],
)
def test_bad_tables_are_refused_with_the_reason(change, message: str) -> None:
    with pytest.raises(InvalidTable, match=message):
        from_shadow(change(shadow_frame()), ["sex", "region"], "n", "fails")


def test_negative_values_need_an_explicit_lower_bound() -> None:
    values = with_margins(np.array([[-3.0, 5.0], [2.0, 1.0]]))
    with pytest.raises(InvalidTable, match="lower_bound=-inf"):
        LinkedTable.from_array(values)
    table = LinkedTable.from_array(values, lower_bound=-np.inf)
    assert table.values[0] == -3.0


def test_3d_constraints_cover_every_line() -> None:
    interior = np.arange(24).reshape(2, 3, 4)
    table = LinkedTable.from_array(with_margins(interior))
    assert table.shape == (3, 4, 5)
    # lines along each axis: 4*5 + 3*5 + 3*4
    assert table.constraints().shape[0] == 20 + 15 + 12
    assert np.allclose(table.constraints() @ table.values, 0)
    assert table.is_interior().sum() == 24


def test_protection_levels_from_rules() -> None:
    table = from_shadow(shadow_frame(), ["sex", "region"], "n", "fails")
    fraction = ProtectionLevels.fraction(table, 0.5, minimum=2.0)
    assert fraction.upper[0] == 2.0 and fraction.upper[1:].sum() == 0  # only the unsafe cell
    threshold = ProtectionLevels.threshold(table, 10)
    assert (threshold.upper[0], threshold.lower[0]) == (7.0, 1.0)
    # p% rule, p = 10: X = 3, x1 = 2, x2 = 1 -> 0.1 * 2 - 0 = 0.2
    largest = np.where(table.unsafe, 2.0, table.values)
    second = np.where(table.unsafe, 1.0, 0.0)
    p_rule = ProtectionLevels.p_percent(table, largest, second, 10)
    assert p_rule.upper[0] == pytest.approx(0.2)
    with pytest.raises(InvalidProtectionLevel):
        ProtectionLevels.explicit(table, upper=-1.0)
    with pytest.raises(InvalidProtectionLevel):
        ProtectionLevels.explicit(table, upper=np.ones(3))


def test_null_as_a_missing_level_is_kept_apart_from_the_margin() -> None:
    """Shadow tables label margins "Total" and keep null for a missing level of the variable."""
    frame = pl.DataFrame(
        {
            "sex": ["F", "F", None, None, "Total", "Total"],
            "n": [4, 4, 5, 5, 9, 9],
            "region": ["N", "Total", "N", "Total", "N", "Total"],
        }
    )
    with pytest.raises(InvalidTable, match="null_level"):
        from_shadow(frame, ["sex", "region"], "n", np.zeros(6, bool))
    table = from_shadow(frame, ["sex", "region"], "n", np.zeros(6, bool), null_level="(missing)")
    assert table.levels == (("F", "(missing)"), ("N",))
    assert table.array().tolist() == [[4, 4], [5, 5], [9, 9]]


def test_adapter_takes_a_real_shadow_table() -> None:
    """The connection the review service makes: shadow statistics -> labelled frame -> LinkedTable."""
    from disclosure_review.sdc.enums import TableKind
    from disclosure_review.sdc.shadow import shadow_from_frame
    from disclosure_review.sdc.spec import TableSpec

    records = pl.DataFrame(
        {
            "region": ["N"] * 12 + ["S"] * 9 + ["W"] * 3 + [None] * 2,
            "age": (["y", "o"] * 13)[:26],
        }
    )
    spec = TableSpec(kind=TableKind.FREQUENCY, query="SELECT * FROM data", rows=("region",), columns=("age",))
    shadow = shadow_from_frame(records, spec)
    labelled = shadow.frame.with_columns(shadow.label_exprs())
    unsafe = (labelled["sdc_records"] < 5) & (labelled["sdc_grouping"] == 0)
    table = from_shadow(labelled, ["region", "age"], "sdc_value", unsafe, null_level="(missing)")
    assert set(table.levels[0]) == {"N", "S", "W", "(missing)"}
    assert table.values.sum() == pytest.approx(26 * 4)  # cells, two margins, grand total
    counts = {tuple(table.key(int(c)).values()): table.values[c] for c in np.flatnonzero(table.unsafe)}
    # ages alternate y, o over the 26 records: S has 5 y and 4 o, W 1 y and 2 o
    assert counts == {
        ("S", "o"): 4, ("W", "y"): 1, ("W", "o"): 2, ("(missing)", "y"): 1, ("(missing)", "o"): 1
    }


def test_a_researchers_pattern_is_read_from_their_published_frame() -> None:
    """Suppressed cells published as null: the mask lines up with the recomputed table."""
    table = from_shadow(shadow_frame(), ["sex", "region"], "n", "fails")
    published = shadow_frame().with_columns(
        pl.when(pl.col("n").is_in([3, 12, 7, 9])).then(None).otherwise(pl.col("n")).alias("n")
    ).sample(fraction=1.0, shuffle=True, seed=3)
    mask = table.mask_from(published, published["n"].is_null())
    assert [tuple(table.key(int(c)).values()) for c in np.flatnonzero(mask)] == [
        ("F", "N"), ("F", "S"), ("M", "N"), ("M", "S")
    ]
    with pytest.raises(InvalidTable, match="levels"):
        table.mask_from(published.with_columns(pl.lit("X").alias("sex")), published["n"].is_null())


def regions_with_a_level_named_total() -> pl.DataFrame:
    """A shadow frame of counts by region whose data hold a region named "Total" and a missing one (null); the
    margin is known by its GROUPING bit (its label is null, as DuckDB gives it)."""
    return pl.DataFrame({"region": ["N", "Total", None, None], "n": [12, 3, 5, 20], "g": [0, 0, 0, 1]})


def test_margins_known_by_grouping_keep_a_level_named_total_and_a_missing_level() -> None:
    frame = regions_with_a_level_named_total()
    unsafe = np.array([False, True, False, False])
    with pytest.raises(InvalidTable, match="null_level"):  # null is a level here, never the margin
        from_shadow(frame, ["region"], "n", unsafe, grouping="g")
    table = from_shadow(frame, ["region"], "n", unsafe, grouping="g", null_level="(missing)")
    assert table.levels == (("N", "Total", "(missing)"),) and table.total_label == "[Total]"
    assert table.array().tolist() == [12, 3, 5, 20]
    assert [table.key(int(c)) for c in np.flatnonzero(table.unsafe)] == [{"region": "Total"}]
    assert table.mask_from(frame, unsafe, grouping="g", null_level="(missing)").tolist() == unsafe.tolist()
    # by label, the level named "Total" would be the margin: the table is refused, never misread
    labelled = frame.with_columns(pl.when(pl.col("g") == 1).then(pl.lit("Total")).otherwise(pl.col("region"))
                                  .alias("region"))
    with pytest.raises(InvalidTable, match="more than once"):
        from_shadow(labelled, ["region"], "n", unsafe, null_level="(missing)")


def test_a_bad_grouping_column_is_refused() -> None:
    frame = regions_with_a_level_named_total().with_columns(pl.col("g").cast(pl.String))
    with pytest.raises(InvalidTable, match="grouping column 'g' must be integers"):
        from_shadow(frame, ["region"], "n", np.zeros(4, bool), grouping="g", null_level="(missing)")
