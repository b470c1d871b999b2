"""The code blocks of the how-to guides, as `test_guides` runs them.

A fenced block's info string is its language, then optional words:

    ```python                  run in the researcher's kernel, in order
    ```sh                      each command run by bash against the same store
    ```sh ignore               shown, never run (say why in the text around it)
    ```csv file=people.csv     a file the next blocks use: written into the shell's folder, or
                               uploaded through JupyterLab when the path starts with intake/
    ```python after=approved   first, two reviewers approve (on the review pages) what waits

Blocks of any other language (text, csv without file=, none) are examples of
output or input, not code. In a sh block a command followed by a comment
`# onsite: error: …` is expected to be refused: exit status 2 and that text
(up to its first `…` or `(`) on stderr.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CODE_LANGUAGES = {"python", "sh"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
EXPECTED_ERROR = "# onsite: error: "


@dataclass(frozen=True)
class Block:
    guide: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    words: frozenset[str] = frozenset()
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.guide}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in CODE_LANGUAGES and "ignore" not in self.words


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, indented ones (in list items) too."""
    found, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, info = len(opening["indent"]), opening["info"].split()
        body, i = [], i + 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i].lstrip())
            i += 1
        words = [w for w in info[1:] if "=" not in w]
        options = dict(w.split("=", 1) for w in info[1:] if "=" in w)
        found.append(Block(path.name, i - len(body), info[0] if info else "", "\n".join(body) + "\n",
                           frozenset(words), options))
        i += 1
    return found


@dataclass(frozen=True)
class Command:
    text: str
    expected_error: str | None  # the start of the refusal the guide shows, if it shows one


def commands(block: Block) -> list[Command]:
    """The commands of a sh block: continuation lines joined, comments dropped, expected refusals attached."""
    found: list[Command] = []
    pending = ""
    for raw in block.code.splitlines():
        line = raw.strip()
        if line.startswith(EXPECTED_ERROR) and found and found[-1].expected_error is None:
            shown = re.split(r"…|\(", line[len(EXPECTED_ERROR):], maxsplit=1)[0].strip()
            found[-1] = Command(found[-1].text, shown)
            continue
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        found.append(Command(pending + line, None))
        pending = ""
    return found
