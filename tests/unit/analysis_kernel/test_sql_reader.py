"""dataplane.sql.tables_read: the one answer to "which tables does this query read", by DuckDB's parser."""
from __future__ import annotations

import pytest

from dataplane.sql import tables_read


@pytest.mark.parametrize(("sql", "tables"), [
    ("SELECT * FROM survey WHERE region <> 'C'", {"survey"}),
    ("SELECT s.*, r.label FROM survey s JOIN reference.codes r ON s.code = r.code", {"survey", "codes"}),
    # USING needs the columns bound: a reader that binds refuses it when the tables are not there
    ("SELECT * FROM survey JOIN reference.codes USING (code)", {"survey", "codes"}),
    ("SELECT * FROM survey WHERE code IN (SELECT code FROM reference.codes)", {"survey", "codes"}),
    ("SELECT (SELECT max(income) FROM other) AS m FROM survey", {"survey", "other"}),
    ("WITH small AS (SELECT * FROM survey WHERE age < 20) SELECT * FROM small", {"survey"}),
    # a CTE body still reads the table it is named after; a qualified name is never a CTE
    ("WITH survey AS (SELECT * FROM survey WHERE age < 20) SELECT * FROM survey", {"survey"}),
    ("WITH codes AS (SELECT * FROM reference.codes) SELECT * FROM codes", {"codes"}),
    ("WITH a AS (SELECT * FROM survey), b AS (SELECT * FROM a) SELECT * FROM b, other", {"survey", "other"}),
    ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t, survey",
     {"survey"}),
    ("SELECT * FROM read_csv('/etc/passwd')", set()),  # a table function is no table: the sandbox refuses it
    ("SELECT * FROM survey WHERE age > ?", {"survey"}),
    ("this is not SQL", set()),
    ("SELECT 1; DROP TABLE survey", set()),
])
def test_tables_read(sql, tables):
    assert tables_read(sql) == tables
