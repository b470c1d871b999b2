"""What a check says: one result per rule and the report of an output. Shared by the
table checks and the differencing check, which compares an output with others."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .enums import Verdict
from .messages import Described

REPORT_VERSION = 1
CellKey = tuple[str | None, ...]


@dataclasses.dataclass(frozen=True)
class CheckResult(Described):
    """One check's verdict on one output, with the cells it flagged.

    Its message is `code` (an id of `sdc.messages`) with `args`: `message` is the
    English text, `text(lang)` any language.
    """

    rule: str
    verdict: Verdict
    code: str | None
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    cells: tuple[CellKey, ...] = ()
    fallback: str | None = dataclasses.field(default=None, compare=False, repr=False)  # stored English text

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "verdict": self.verdict.value,
            "message": self.message,
            "code": self.code,
            "args": dict(self.args),
            "parameters": dict(self.parameters),
            "cells": [list(c) for c in self.cells],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """A stored result; one stored before messages had ids keeps its English text."""
        return cls(
            rule=str(data["rule"]),
            verdict=Verdict(data["verdict"]),
            code=data.get("code"),
            args=dict(data.get("args") or {}),
            parameters=dict(data.get("parameters", {})),
            cells=tuple(tuple(c) for c in data.get("cells", [])),
            fallback=str(data["message"]),
        )


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """All checks of one output and the output's verdict (fail > review > pass)."""

    output: str
    preset: str
    verdict: Verdict
    results: tuple[CheckResult, ...]

    @classmethod
    def from_results(cls, output: str, preset: str, results: list[CheckResult]) -> CheckReport:
        return cls(output, preset, Verdict.combine(r.verdict for r in results), tuple(results))

    def result(self, rule: str) -> CheckResult:
        for result in self.results:
            if result.rule == rule:
                return result
        raise KeyError(f"no result for rule {rule!r} in the report of {self.output!r}")

    def cell_verdicts(self) -> dict[CellKey, Verdict]:
        """Flagged cells only, each with the combined verdict of the checks that flagged it."""
        flagged: dict[CellKey, list[Verdict]] = {}
        for result in self.results:
            for cell in result.cells:
                flagged.setdefault(cell, []).append(result.verdict)
        return {cell: Verdict.combine(verdicts) for cell, verdicts in flagged.items()}

    def reasons(self) -> list[str]:
        """One line per check that did not pass."""
        return [f"{r.rule} ({r.verdict.value}): {r.message}" for r in self.results if r.verdict is not Verdict.PASS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "output": self.output,
            "preset": self.preset,
            "verdict": self.verdict.value,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckReport:
        if data.get("version") != REPORT_VERSION:
            raise ValueError(f"check report version {data.get('version')!r} is not supported")
        results = tuple(CheckResult.from_dict(r) for r in data["results"])
        return cls(str(data["output"]), str(data["preset"]), Verdict(data["verdict"]), results)
