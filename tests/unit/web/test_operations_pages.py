"""The operations pages' own pieces: every string in both languages and none shadowing another page's, the
server-made chart, and CSV cells a spreadsheet would run as formulas."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from admin_service.i18n import MESSAGES
from admin_service.operations import chart_svg, csv_cell
from admin_service.operations_messages import OPERATIONS_MESSAGES


def test_every_operations_string_is_in_both_languages_and_shadows_no_other():
    assert all(set(texts) == {"ja", "en"} and all(texts.values()) for texts in OPERATIONS_MESSAGES.values())
    assert all(MESSAGES[key] is texts for key, texts in OPERATIONS_MESSAGES.items())  # no other page's key replaced it


def test_the_chart_is_well_formed_svg_with_a_bar_a_month_and_escaped_text():
    rows = [{"month": f"2026-{m:02d}", "sessions": m, "hours": 2.5 * m} for m in range(1, 13)]
    svg = chart_svg(rows + rows, "<script>alert(1)</script>", "Sessions & more", "Hours")
    tree = ET.fromstring(svg)  # well-formed: the title was escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert tree.find("s:title", ns).text == "<script>alert(1)</script>"
    bars = tree.findall("s:rect[@class='bar']", ns)
    assert len(bars) == 12 and bars[-1].find("s:title", ns).text == "2026-12: 24"  # two facilities' rows summed
    heights = [float(b.get("height")) for b in bars]
    assert heights == sorted(heights) and heights[0] > 0
    assert chart_svg([], "empty", "s", "h").startswith("<svg")


def test_csv_cells_that_a_spreadsheet_would_run_are_text():
    assert [csv_cell(v) for v in ("=1+1", "+81", "-x", "@SUM(A1)", "東京", 3, None)] == ["'=1+1", "'+81", "'-x", "'@SUM(A1)", "東京", 3, ""]
