"""The preset table of docs/reference/sdc-rules.md matches the presets."""
from __future__ import annotations

from pathlib import Path

from disclosure_review.sdc import Verdict, load_preset, preset_names
from disclosure_review.sdc.rules import RULE_FIELDS

DOC = Path(__file__).resolve().parents[3] / "docs" / "reference" / "sdc-rules.md"


def shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Verdict):
        return value.value
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_preset_table_matches_the_presets() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| rule | acro-default"))
    names = [c.strip() for c in lines[header].strip("|").split("|")][1:]
    assert sorted(names) == preset_names()
    rows = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(names, cells[1:]))
    assert set(rows) == set(RULE_FIELDS)
    for name in names:
        rules = load_preset(name)
        for rule, by_preset in rows.items():
            assert by_preset[name] == shown(getattr(rules, rule)), (name, rule)
