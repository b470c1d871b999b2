"""Invisible and control characters in released text (disclosure_review.sdc.text), and the wire's field rule."""
from __future__ import annotations

import base64

import pytest

from disclosure_review import wire
from disclosure_review.sdc import text

# person 12345 income 98765, in Unicode tag characters: invisible wherever it is shown
HIDDEN = "".join(chr(0xE0000 + ord(c)) for c in "person 12345 income 98765")


@pytest.mark.parametrize("ch", [
    "\U000E0041", "\U000E007F",  # tags
    "\u202A", "\u202E", "\u2066", "\u2069",  # bidirectional embeddings, overrides, isolates
    "\u200B", "\u200F", "\u2060", "\u2064", "\uFEFF", "\u00AD",  # zero-width, marks, BOM, soft hyphen
    "\x00", "\x1b", "\x7f", "\x85",  # C0, DEL, C1
    "\uE000", "\U000F0000",  # private use
    "\u2028", "\u2029",  # line and paragraph separators
    "\uFE0F", "\U000E0100", "\u180B",  # variation selectors
    "\u3164", "\u115F", "\u034F",  # fillers, the grapheme joiner
    "\U0010FFFE",  # unassigned (a noncharacter)
])
def test_invisible_characters_are_found(ch):
    found = text.find_invisible(f"ab{ch}c")
    assert found is not None and found.char == ch and found.column == 3


@pytest.mark.parametrize("visible", ["東京都 男性", "Ａ　ｂ", "naïve café", "é", "x\u00a0y", "🙂", "-12.5e3", ""])
def test_visible_text_passes(visible):
    assert text.find_invisible(visible) is None
    assert text.check_text(visible, "x") == visible


def test_line_breaks_only_where_lines_belong():
    assert text.find_invisible("a\tb\r\nc", multiline=True) is None
    assert text.find_invisible("a\nb").char == "\n"
    found = text.find_invisible("first\nsec\u200bond", multiline=True)
    assert (found.line, found.column) == (2, 4)


def test_the_refusal_names_where_which_and_position_in_both_languages():
    with pytest.raises(text.InvisibleCharacter) as caught:
        text.check_text("Tokyo" + HIDDEN, "output 'income': row 3")
    message = str(caught.value)
    assert "output 'income': row 3" in message and "U+E0070 TAG LATIN SMALL LETTER P" in message
    assert "character 6" in message and "6 文字目" in message and "見えない文字" in message
    assert HIDDEN not in message  # the hidden text itself is never quoted


def test_a_table_is_checked_header_and_cells():
    text.check_table({"columns": ["sex", "count"], "rows": [["M", 3], [None, 5.0]]}, "t")
    with pytest.raises(text.InvisibleCharacter, match="row 2, value 1"):
        text.check_table({"columns": ["sex", "count"], "rows": [["M", 3], ["F" + HIDDEN, 5]]}, "t")
    with pytest.raises(text.InvisibleCharacter, match="header, value 2"):
        text.check_table({"columns": ["sex", "n\u202e"], "rows": []}, "t")


def test_escape_makes_each_character_visible():
    assert text.escape("F\U000E0041\u202e\n\t") == "F\\u{E0041}\\u{202E}\n\t"


def _payload(**changes):
    output = {"kind": "file", "name": "notes", "filename": "notes.md", "code": "print(1)\n",
              "content_b64": base64.b64encode(b"# notes\n").decode(), "explanation": "a note"}
    body = {"project": "p1", "title": "Income", "purpose": "paper\nsection 2", "outputs": [output]}
    for key, value in changes.items():
        (output if key in output else body)[key] = value
    return body


@pytest.mark.parametrize("field, value", [
    ("title", "Income" + HIDDEN), ("purpose", "paper \u202eetats"), ("project", "p1\u200b"),
    ("filename", "notes\u2066.md"), ("explanation", "x\uFEFF"), ("code", "x = 1  # \u202e"), ("name", "notes\u3164"),
    ("title", "two\nlines"),
])
def test_the_wire_refuses_invisible_characters_in_every_text_field(field, value):
    wire.ReleasePayload.from_json(_payload())  # the payload without them is fine
    with pytest.raises(wire.PayloadInvalid, match="invisible or control character"):
        wire.ReleasePayload.from_json(_payload(**{field: value}))
