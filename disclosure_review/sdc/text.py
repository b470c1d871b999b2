"""Invisible and control characters in text that is released or shown to a reviewer.

A release carries text a person reads: CSV cells and headers, text files, titles,
labels, file names, comments. Characters that render as nothing (or reorder what
is around them) can carry data past a reviewer: Unicode tag characters spelling
"person 12345 income 98765" after a harmless label, a right-to-left override, a
run of zero-width spaces. Onsite's policy is one rule, applied wherever text
enters or leaves: such text is refused, naming where and which character; it is
never stripped silently. For the pages, `escape` shows each such character as a
visible marker (`\\u{E0041}`).

Which characters: chosen by Unicode general category, not by a hand list —
control (Cc, but tab and line feed where lines belong), format (Cf: tags,
bidirectional overrides and isolates, zero-width characters, the BOM, soft
hyphen, …), private use (Co), surrogates (Cs), unassigned (Cn), line and
paragraph separators (Zl, Zp) — plus the marks and letters Unicode declares
default-ignorable by name (variation selectors, fillers, the grapheme joiner,
Khmer inherent vowels), which render as nothing in the categories Mn and Lo.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
IGNORABLE_NAMES = re.compile(r"VARIATION SELECTOR|FILLER|GRAPHEME JOINER|VOWEL INHERENT")
"""Default-ignorable characters outside the categories above (Mn, Lo): they render as nothing."""
LINE_BREAKS = "\t\n\r"
"""Allowed in multi-line text (a purpose, code, a text file); CR only as part of a line end."""


def is_invisible(ch: str) -> bool:
    """True for a character that renders as nothing or changes how its neighbours render (see the module doc)."""
    category = unicodedata.category(ch)
    if category in INVISIBLE_CATEGORIES:
        return True
    return category in ("Mn", "Lo") and bool(IGNORABLE_NAMES.search(unicodedata.name(ch, "")))


def describe(ch: str) -> str:
    """'U+E0041 TAG LATIN CAPITAL LETTER A'."""
    name = unicodedata.name(ch, "") or f"unnamed, category {unicodedata.category(ch)}"
    return f"U+{ord(ch):04X} {name}"


@dataclass(frozen=True)
class Found:
    """The first invisible character of a text: the character, its line and column (1-based)."""

    char: str
    line: int
    column: int

    def position(self, multiline: bool) -> str:
        return f"line {self.line}, column {self.column}" if multiline else f"character {self.column}"

    def position_ja(self, multiline: bool) -> str:
        return f"{self.line} 行目 {self.column} 文字目" if multiline else f"{self.column} 文字目"


def find_invisible(text: str, *, multiline: bool = False) -> Found | None:
    """The first invisible character of `text`, or None. `multiline`: tab and line ends are allowed."""
    line, column = 1, 0
    for ch in text:
        column += 1
        if ch == "\n" and multiline:
            line, column = line + 1, 0
            continue
        if multiline and ch in LINE_BREAKS:
            continue
        if is_invisible(ch):
            return Found(ch, line, column)
    return None


class InvisibleCharacter(ValueError):
    """Text with an invisible or control character: the message says where (English, then Japanese)."""

    def __init__(self, where: str, found: Found, multiline: bool) -> None:
        self.where, self.found = where, found
        self.char = describe(found.char)
        self.position = found.position(multiline)
        super().__init__(
            f"{where}: invisible or control character {self.char} at {self.position}: remove it and send again "
            f"（{where}: {found.position_ja(multiline)}に見えない文字・制御文字 {self.char} があります。"
            "取り除いてから申請し直してください）"
        )


def check_text(text: str, where: str, *, multiline: bool = False) -> str:
    """`text` unchanged, or `InvisibleCharacter` naming `where` and the position."""
    found = find_invisible(text, multiline=multiline)
    if found is not None:
        raise InvisibleCharacter(where, found, multiline)
    return text


def check_values(values: Iterable[Any], where: str) -> None:
    """Every text among `values` (e.g. a row of cells) is free of invisible characters; others are not text."""
    for index, value in enumerate(values, 1):
        if isinstance(value, str):
            check_text(value, f"{where}, value {index}")


def check_table(table: Mapping[str, Any], where: str) -> None:
    """A table's headers and cells ({"columns", "rows"}, as released): refused at the first invisible character."""
    check_values(table.get("columns") or [], f"{where}, header")
    for number, row in enumerate(table.get("rows") or [], 1):
        check_values(row, f"{where}, row {number}")


def escape(text: str) -> str:
    """`text` with each invisible character shown as `\\u{XXXX}` (tab and line feed kept): for pages."""
    return "".join(f"\\u{{{ord(ch):04X}}}" if ch not in "\t\n" and is_invisible(ch) else ch for ch in text)
