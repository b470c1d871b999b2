"""Differencing a new 1,000-cell table against 200 earlier outputs of a project (issue 12).

The data: the demo dataset (`Context.demo_dataset()`, 10M rows by default;
`--rows` for a smaller one), opened as the review service opens it (guarded
connection). The new table: persons by prefecture x five-year age band with
margins (47 x 21 + 47 + 21 + 1 = 1,056 cells), over everyone. The project's 200
earlier outputs, each a table of about 1,000 cells with margins:

- 190 over one twentieth of the households each (`household_id % 20 = k`), under
  ten different cross-classifications (prefecture x age band, prefecture x
  occupation, industry x age band, ...);
- 10 over nearly everyone with the new table's cells (everyone, adults, people
  with an income, ... and everyone but one person: the bench checks that this
  one, and only it, is found before timing).

- ours: what the review service does for a new table: read the 200 stored
  record states (bytes, as in the store) and run `check_differencing`.
- peer: recompute the 200 earlier outputs from the data (their shadow
  statistics, `compute_shadow`), the least a checker without stored state must
  do before it can compare anything; the comparison itself is not even counted.

The note gives the record state's size per cell (stored bytes and in memory).
Goal: ours at least 20x faster (ratio <= 0.05), under 1 KB a cell on average.
"""
from __future__ import annotations

from bench import Case, Context
from dataplane.catalogue import guarded_connection
from disclosure_review.sdc import TableKind, TableSpec, compute_shadow, load_preset
from disclosure_review.sdc.differencing import OtherOutput, check_differencing
from disclosure_review.sdc.protect import evaluate_table
from disclosure_review.sdc.records import RecordState
from disclosure_review.workflow.recompute import record_state

DATASET = "demo"
SHARES = 20
AGE_BAND = "age // 5 AS age_band"
# (rows, columns, derived columns): about 1,000 cells each with margins
CLASSIFICATIONS = [
    ("prefecture", "age_band", AGE_BAND),
    ("prefecture", "occupation", ""),
    ("prefecture", "industry", ""),
    ("industry", "age_band", AGE_BAND),
    ("occupation", "age_band", AGE_BAND),
    ("prefecture", "marital_status", ""),
    ("prefecture", "household_size", ""),
    ("municipality", "sex", ""),
    ("prefecture", "employment_status", ""),
    ("nationality", "age_band", AGE_BAND),
]
NEARLY_EVERYONE = ["true", "age >= 1", "age >= 15", "annual_income IS NOT NULL", "sex IN (1, 2)",
                   "hours_worked IS NOT NULL OR true", "weight > 0", "household_size >= 1", "age < 100"]


def _spec(where: str, rows: str, columns: str, derived: str, name: str) -> TableSpec:
    select = "*" + (f", {derived}" if derived else "")
    return TableSpec(TableKind.FREQUENCY, f"SELECT {select} FROM {DATASET} WHERE {where}", rows=(rows,),
                     columns=(columns,), name=name)


def cases(ctx: Context) -> list[Case]:
    dataset = ctx.demo_dataset()
    datasets = {DATASET: str(dataset)}
    con = guarded_connection(datasets, memory_limit="4GB")
    rules = load_preset("jp-onsite")

    def state(spec: TableSpec) -> RecordState:
        found = record_state(con, evaluate_table(con, spec, rules), datasets, rules.threshold)
        assert found is not None, spec.query
        return found

    [(one,)] = con.execute(f"SELECT annual_income FROM {DATASET} WHERE annual_income IS NOT NULL GROUP BY 1 "
                           "HAVING count(*) = 1 ORDER BY 1 LIMIT 1").fetchall()
    earlier = [_spec(f"household_id % {SHARES} = {i % SHARES}", *CLASSIFICATIONS[i // SHARES], f"share_{i}")
               for i in range(190)]
    earlier += [_spec(where, *CLASSIFICATIONS[0], f"nearly_{i}") for i, where in enumerate(NEARLY_EVERYONE)]
    earlier.append(_spec(f"annual_income IS DISTINCT FROM {one}", *CLASSIFICATIONS[0], "but_one"))
    new_spec = _spec("true", *CLASSIFICATIONS[0], "new")
    new = state(new_spec)
    stored = [(spec.name, state(spec).to_bytes()) for spec in earlier]

    def ours():
        others = [OtherOutput(name, RecordState.from_bytes(data)) for name, data in stored]
        return check_differencing(new, "new", others, rules)

    def peer():
        return [compute_shadow(con, spec).frame.height for spec in earlier]

    result = ours()
    flagged = {f["args"]["other"] for f in result.args.get("findings", []) if f.get("code") == "differencing_cells"}
    assert result.verdict.value == "fail" and flagged == {"but_one"}, result.message[:500]
    cells = sum(len(RecordState.from_bytes(data).labels) for _, data in stored)
    stored_bytes = sum(len(data) for _, data in stored)
    in_memory = (new.elements.nbytes + new.checks.nbytes + new.counts.nbytes) / len(new.labels)
    note = (f"{ctx.rows:,} rows; new {len(new.labels):,} cells vs {len(stored)} outputs, {cells:,} cells; state "
            f"{stored_bytes / cells:.0f} B/cell stored, {in_memory:.0f} B/cell in memory ({stored_bytes / 2**20:.1f} MiB)")
    return [Case("difference_new_table_vs_200_outputs", ours, "recompute the 200 outputs", peer, repeat=1, note=note)]
