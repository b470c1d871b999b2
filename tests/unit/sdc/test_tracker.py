"""Tracker queries: every shape that addresses individual records gets `review` with its reason, ordinary
aggregate queries pass, and the list of shapes in docs/reference/tracker-queries.md is this one.

The queries are parsed by DuckDB's own parser (`dataplane.sql.query_constructs`) and judged by
`sdc.tracker.check_tracker` against the demo dataset's identifying columns.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dataplane.sql import query_constructs, tables_read
from disclosure_review.sdc import Verdict
from disclosure_review.sdc.tracker import check_tracker

DOC = Path(__file__).resolve().parents[3] / "docs" / "reference" / "tracker-queries.md"
IDENTIFIERS = ("household_id", "person_id")

# (shape, query, the reason's message id): each must get review
TRACKERS = [
    ("one person by id", "SELECT * FROM survey WHERE person_id = 17", "tracker_identifier"),
    ("everyone but one", "SELECT * FROM survey WHERE person_id <> 17", "tracker_identifier"),
    ("everyone but one, negated", "SELECT * FROM survey WHERE NOT (person_id = 17)", "tracker_identifier"),
    ("IN list", "SELECT * FROM survey WHERE person_id IN (3, 5, 8)", "tracker_identifier"),
    ("NOT IN list", "SELECT * FROM survey WHERE person_id NOT IN (17)", "tracker_identifier"),
    ("narrow range", "SELECT * FROM survey WHERE person_id BETWEEN 100 AND 101", "tracker_identifier"),
    ("range on an id", "SELECT * FROM survey WHERE person_id < 1000", "tracker_identifier"),
    ("household id", "SELECT * FROM survey WHERE household_id = 5", "tracker_identifier"),
    ("null-safe equality", "SELECT * FROM survey WHERE person_id IS NOT DISTINCT FROM 17", "tracker_identifier"),
    ("parameter", "SELECT * FROM survey WHERE person_id = ?", "tracker_identifier"),
    ("arithmetic on an id", "SELECT * FROM survey WHERE person_id % 100 = 7", "tracker_identifier"),
    ("id as text", "SELECT * FROM survey WHERE person_id::VARCHAR LIKE '17%'", "tracker_identifier"),
    ("id cast", "SELECT * FROM survey WHERE CAST(person_id AS VARCHAR) = '17'", "tracker_identifier"),
    ("id in a list function", "SELECT * FROM survey WHERE list_contains([17, 18], person_id)", "tracker_identifier"),
    ("regular expression", "SELECT * FROM survey WHERE regexp_matches(person_id::VARCHAR, '^17$')",
     "tracker_identifier"),
    ("lambda", "SELECT * FROM survey WHERE len(list_filter([person_id], x -> x = 17)) > 0", "tracker_identifier"),
    ("value set to 0 for one", "SELECT area, CASE WHEN person_id = 17 THEN 0 ELSE income END AS income FROM survey",
     "tracker_identifier"),
    ("value set to NULL for one",
     "SELECT area, CASE WHEN person_id = 17 THEN NULL ELSE income END AS income FROM survey", "tracker_identifier"),
    ("simple CASE on an id", "SELECT area, CASE person_id WHEN 17 THEN 0 ELSE income END AS income FROM survey",
     "tracker_identifier"),
    ("value times a test", "SELECT area, income * (person_id <> 17)::INTEGER AS income FROM survey",
     "tracker_identifier"),
    ("aggregate FILTER", "SELECT area, sum(income) FILTER (WHERE person_id <> 17) AS income FROM survey GROUP BY area",
     "tracker_identifier"),
    ("HAVING on an id", "SELECT area, count(*) AS n FROM survey GROUP BY area HAVING min(person_id) = 17",
     "tracker_identifier"),
    ("row id", "SELECT area, income FROM survey WHERE rowid = 0", "tracker_identifier"),
    ("row id range", "SELECT * FROM survey WHERE rowid < 1000", "tracker_identifier"),
    ("file row number", "SELECT * FROM survey WHERE file_row_number = 3", "tracker_identifier"),
    ("renamed in a CTE", "WITH t AS (SELECT person_id AS pid, area, income FROM survey) SELECT * FROM t WHERE pid <> 17",
     "tracker_identifier"),
    ("renamed by position",
     "SELECT * FROM (SELECT person_id, area, income FROM survey) t(p, a, i) WHERE p <> 17", "tracker_identifier"),
    ("renamed by a CTE's column list",
     "WITH t(p, a) AS (SELECT person_id, area FROM survey) SELECT * FROM t WHERE p = 17", "tracker_identifier"),
    ("renamed by RENAME", "SELECT * FROM (SELECT * RENAME (person_id AS p) FROM survey) WHERE p = 17",
     "tracker_identifier"),
    ("twice renamed", "WITH a AS (SELECT person_id AS x FROM survey), b AS (SELECT x AS y FROM a) "
     "SELECT * FROM b WHERE y = 1", "tracker_identifier"),
    ("table columns renamed by position", "SELECT * FROM survey AS s(a, b) WHERE a = 17", "tracker_unknown"),
    ("id matched with a literal table", "SELECT s.* FROM survey s JOIN (VALUES (17)) v(id) ON s.person_id = v.id",
     "tracker_identifier_matched"),
    ("id matched with a constant column",
     "SELECT s.* FROM survey s, (SELECT 17 AS k) c WHERE s.person_id = c.k", "tracker_identifier_matched"),
    ("id matched with another variable", "SELECT * FROM survey WHERE person_id = age", "tracker_identifier_matched"),
    ("ids from a constant named like the id",
     "SELECT * FROM survey JOIN (SELECT 17 AS person_id) USING (person_id)", "tracker_identifier_named"),
    ("NATURAL JOIN with a constant", "SELECT * FROM survey NATURAL JOIN (SELECT 17 AS person_id)",
     "tracker_identifier_named"),
    ("ids listed in reference data", "SELECT s.* FROM survey s JOIN reference.targets t ON s.person_id = t.person_id",
     "tracker_identifier_reference"),
    ("ids listed in reference data, USING", "SELECT * FROM survey JOIN reference.targets USING (person_id)",
     "tracker_identifier_reference"),
    ("ids listed in reference data, IN", "SELECT * FROM survey WHERE person_id IN (SELECT person_id FROM "
     "reference.targets)", "tracker_identifier_reference"),
    ("NATURAL JOIN with reference data", "SELECT * FROM survey NATURAL JOIN reference.targets",
     "tracker_identifier_reference"),
    ("id renamed by a union", "SELECT * FROM (SELECT area FROM survey UNION ALL SELECT person_id FROM survey) "
     "WHERE area = 17", "tracker_identifier"),
    ("columns of a union by position", "SELECT * FROM (SELECT * FROM survey UNION ALL SELECT * FROM survey) "
     "WHERE area = 'x'", "tracker_unknown"),
    ("first column by position", "WITH t AS (SELECT #1 AS p, * FROM survey) SELECT * FROM t WHERE p = 17",
     "tracker_unknown"),
    ("IN a constant subquery", "SELECT * FROM survey WHERE person_id IN (SELECT 17)", "tracker_identifier"),
    ("households of one person",
     "SELECT * FROM survey WHERE household_id IN (SELECT household_id FROM survey WHERE person_id = 17)",
     "tracker_identifier"),
    ("every column compared", "SELECT * FROM survey WHERE COLUMNS('person_id') = 17", "tracker_star"),
    ("row_number", "SELECT * FROM survey QUALIFY row_number() OVER (ORDER BY income DESC) > 1", "tracker_window"),
    ("rank", "SELECT *, rank() OVER (PARTITION BY area ORDER BY income) AS r FROM survey", "tracker_window"),
    ("lag", "SELECT area, income - lag(income) OVER (ORDER BY age) AS income FROM survey", "tracker_window"),
    ("running sum", "SELECT area, sum(income) OVER (ORDER BY age) AS income FROM survey", "tracker_window"),
    ("one-row frame",
     "SELECT area, sum(income) OVER (PARTITION BY area ROWS BETWEEN CURRENT ROW AND CURRENT ROW) AS income "
     "FROM survey", "tracker_window"),
    ("hash", "SELECT * FROM survey WHERE hash(person_id) % 10 = 3", "tracker_hash"),
    ("md5", "SELECT * FROM survey WHERE md5(household_id::VARCHAR) LIKE 'a%'", "tracker_hash"),
    ("sha256 of an id as a label", "SELECT area, sha256(person_id::VARCHAR) AS who, income FROM survey",
     "tracker_hash"),
    ("hash of another variable", "SELECT * FROM survey WHERE hash(income) % 100 = 0", "tracker_hash"),
    ("LIMIT", "SELECT * FROM survey LIMIT 10", "tracker_limit"),
    ("OFFSET", "SELECT * FROM survey ORDER BY income DESC OFFSET 1", "tracker_limit"),
    ("LIMIT percent", "SELECT * FROM survey LIMIT 10%", "tracker_limit"),
    ("LIMIT in a subquery",
     "SELECT area, count(*) AS n FROM (SELECT * FROM survey ORDER BY income DESC LIMIT 1) GROUP BY area",
     "tracker_limit"),
    ("OFFSET over groups of one person", "SELECT person_id, area, sum(income) AS income FROM survey "
     "GROUP BY person_id, area ORDER BY income DESC OFFSET 1", "tracker_limit"),
    ("LIMIT on a union", "SELECT * FROM survey UNION ALL SELECT * FROM survey LIMIT 3", "tracker_limit"),
    ("USING SAMPLE", "SELECT * FROM survey USING SAMPLE 10%", "tracker_sample"),
    ("TABLESAMPLE", "SELECT * FROM survey TABLESAMPLE 5 ROWS", "tracker_sample"),
    ("random()", "SELECT * FROM survey WHERE random() < 0.5", "tracker_random"),
    ("DISTINCT ON", "SELECT DISTINCT ON (area) * FROM survey ORDER BY income DESC", "tracker_distinct_on"),
    ("arg_max", "SELECT area, arg_max(income, age) AS income FROM survey GROUP BY area", "tracker_record_function"),
    ("first", "SELECT area, first(income ORDER BY age) AS income FROM survey GROUP BY area",
     "tracker_record_function"),
    ("list of values", "SELECT area, list(income) AS incomes FROM survey GROUP BY area", "tracker_record_function"),
    ("string_agg of ids", "SELECT area, string_agg(person_id::VARCHAR, ',') AS ids FROM survey GROUP BY area",
     "tracker_record_function"),
    ("top values", "SELECT area, max(income, 2) AS top FROM survey GROUP BY area", "tracker_record_function"),
    ("all but the largest", "SELECT * FROM survey WHERE income < (SELECT max(income) FROM survey)",
     "tracker_extreme"),
    ("the smallest", "SELECT * FROM survey WHERE income = (SELECT min(income) FROM survey)", "tracker_extreme"),
    ("all but the largest, disguised", "SELECT * FROM survey WHERE income < (SELECT max(income) - 0 FROM survey)",
     "tracker_extreme"),
    ("all but the largest, from a CTE", "WITH m AS (SELECT max(income) AS top FROM survey) "
     "SELECT s.* FROM survey s, m WHERE s.income < m.top", "tracker_extreme_column"),
    ("the largest set to 0, from a CTE", "WITH m AS (SELECT max(income) AS top FROM survey) SELECT s.area, "
     "CASE WHEN s.income = m.top THEN 0 ELSE s.income END AS income FROM survey s, m", "tracker_extreme_column"),
    ("all but the largest, by a window", "SELECT * FROM (SELECT *, max(income) OVER () AS top FROM survey) "
     "WHERE income < top", "tracker_extreme_column"),
    ("a generated row number", "SELECT * FROM (SELECT *, row_number() OVER () AS n FROM survey) WHERE n <> 5",
     "tracker_window"),
    ("id inside a struct", "SELECT * FROM (SELECT {'p': person_id} AS s, income FROM survey) WHERE s.p = 17",
     "tracker_identifier"),
    ("correlated EXISTS", "SELECT * FROM survey WHERE EXISTS "
     "(SELECT 1 FROM survey t WHERE t.person_id = survey.person_id AND t.person_id = 17)", "tracker_identifier"),
    ("qualified and quoted", 'SELECT * FROM survey s WHERE s."PERSON_ID" <> 17', "tracker_identifier"),
    ("positional join", "SELECT * FROM survey POSITIONAL JOIN (SELECT 1 AS flag FROM survey)",
     "tracker_positional_join"),
    ("a query hidden in a string", "SELECT * FROM query('SELECT * FROM survey WHERE person_id <> 17')",
     "tracker_table_function"),
    ("a table named in a string", "SELECT * FROM query_table('survey')", "tracker_table_function"),
    ("not SQL", "this is not SQL", "tracker_unparsed"),
    ("two statements", "SELECT * FROM survey; SELECT * FROM survey", "tracker_unparsed"),
    ("not a SELECT", "PIVOT survey ON person_id USING sum(income)", "tracker_unparsed"),
]

ORDINARY = [
    "SELECT * FROM survey",
    "SELECT area, sex, income FROM survey",
    "SELECT * FROM survey WHERE sex = 'F'",
    "SELECT * FROM survey WHERE age >= 65 AND area <> 'C'",
    "SELECT * FROM survey WHERE income > 1000000",
    "SELECT * FROM survey WHERE income IS NOT NULL AND person_id IS NOT NULL",
    "SELECT area, sex, count(*) AS n FROM survey GROUP BY area, sex",
    "SELECT area, sum(income) AS income FROM survey GROUP BY area HAVING count(*) >= 10",
    "SELECT area, sum(income) AS income FROM survey GROUP BY ALL",
    "SELECT area, count(*) AS n FROM survey GROUP BY area ORDER BY n DESC LIMIT 5",
    "SELECT s.*, r.label FROM survey s JOIN reference.codes r ON s.area = r.code",
    "SELECT * FROM survey JOIN reference.codes USING (area)",
    "SELECT area, income FROM survey WHERE sex = 'F' UNION ALL SELECT area, income FROM survey WHERE age > 80",
    "SELECT * FROM survey WHERE area IN (SELECT code FROM reference.codes WHERE label LIKE '%shi')",
    "SELECT household_id, person_id, area, income FROM survey",
    "SELECT area, count(DISTINCT household_id) AS households FROM survey GROUP BY area",
    "SELECT p.*, h.size FROM survey p JOIN (SELECT household_id, count(*) AS size FROM survey GROUP BY household_id) h "
    "ON p.household_id = h.household_id",
    "SELECT * FROM survey WHERE household_id IN (SELECT household_id FROM survey WHERE age < 6)",
    "SELECT *, CASE WHEN age < 20 THEN 'young' ELSE 'adult' END AS age_group FROM survey",
    "SELECT *, avg(income) OVER (PARTITION BY area) AS area_mean FROM survey",
    "SELECT *, count(*) OVER (PARTITION BY household_id) AS household_size FROM survey",
    "WITH adults AS (SELECT * FROM survey WHERE age >= 20) SELECT area, sex FROM adults",
    "SELECT CAST(area AS VARCHAR) AS area_code, income FROM survey ORDER BY area",
    "SELECT area, avg(income) AS mean, median(age) AS age FROM survey WHERE sex = 'M' GROUP BY area",
    "SELECT * FROM survey WHERE income > (SELECT avg(income) FROM survey)",
    "WITH m AS (SELECT avg(income) AS mean FROM survey) SELECT s.*, s.income - m.mean AS gap FROM survey s, m",
    "SELECT area, max(income) AS top, min(age) AS youngest FROM survey GROUP BY area",
    "SELECT s.*, r.range AS wave FROM survey s, range(2) r",
    "SELECT * FROM survey s WHERE EXISTS (SELECT 1 FROM survey t WHERE t.household_id = s.household_id AND t.age < 6)",
]


def judged(sql: str):
    return check_tracker(query_constructs(sql), IDENTIFIERS, references={"codes", "targets"} & tables_read(sql))


@pytest.mark.parametrize(("shape", "sql", "code"), TRACKERS, ids=[t[0] for t in TRACKERS])
def test_a_tracker_shape_gets_review_with_its_reason(shape, sql, code) -> None:
    result = judged(sql)
    assert result.verdict is Verdict.REVIEW, (shape, result.message)
    assert result.code == "tracker_review"
    assert code in {finding["code"] for finding in result.args["findings"]}, result.message
    assert "tracker" in result.message and "トラッカー" in result.text("ja")


@pytest.mark.parametrize("sql", ORDINARY)
def test_an_ordinary_query_passes(sql) -> None:
    result = judged(sql)
    assert result.verdict is Verdict.PASS, result.message
    assert "household_id, person_id, rowid" in result.message


def test_the_reason_names_the_column_and_clause_in_both_languages() -> None:
    result = judged("SELECT area, CASE WHEN person_id = 17 THEN 0 ELSE income END AS income FROM survey")
    assert result.message.endswith("identifying column person_id used in SELECT")
    assert result.text("ja").endswith("SELECT で識別列 person_id を使用")


def test_without_the_metadata_a_column_is_not_known_to_identify() -> None:
    """The identifying columns come from the datasets' metadata: another dataset's ids are other names."""
    sql = "SELECT * FROM survey WHERE person_id <> 17"
    assert check_tracker(query_constructs(sql), ("hh",)).verdict is Verdict.PASS
    assert check_tracker(query_constructs("SELECT * FROM survey WHERE rowid <> 17"), ()).verdict is Verdict.REVIEW


def test_a_dataset_without_metadata_goes_to_review() -> None:
    result = check_tracker(query_constructs("SELECT * FROM survey"), (), undescribed=["survey"])
    assert result.verdict is Verdict.REVIEW
    assert "survey has no metadata" in result.message


def test_many_reasons_are_listed_up_to_a_limit() -> None:
    columns = [f"id{i}" for i in range(20)]
    result = check_tracker(query_constructs("SELECT * FROM survey WHERE " + " OR ".join(f"{c} = 0" for c in columns)),
                           columns)
    assert len(result.args["findings"]) == 11 and result.message.endswith("id9 used in WHERE; … 10 more")
    assert result.text("ja").endswith("ほか 10 件")


def test_the_docs_list_every_shape_tried() -> None:
    """docs/reference/tracker-queries.md: one table row per shape, with its query and reason."""
    rows = re.findall(r"^\| (.+?) \| `(.+?)` \| `(tracker_\w+)` \|$", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert [(shape, sql.replace("\\|", "|"), code) for shape, sql, code in rows] == TRACKERS
    listed = re.findall(r"^- `(.+?)`$", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert listed == ORDINARY
