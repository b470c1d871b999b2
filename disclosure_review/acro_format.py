"""ACRO's vocabulary and its `results.json`, for outputs made with ACRO's notebook API (`analysis_kernel.acro`).

The kernel names Onsite's checks as ACRO names them in its outcome tables; a table it sends carries what ACRO
records of it (command, comments, exception request) under `claimed["acro"]`; the release package of such a
request holds a `results.json` in ACRO 1.0's format (acro.record.Records.finalise_json), so SACRO-Viewer opens
it: "version", and "results" whose every output has "files", each with a "name" (SACRO-Viewer's
sacro/models.py ACROOutputs), and `checksums/<file>.txt` beside them. Everything in it but the researcher's
command, comments and exception comes from the service's own recomputation and decisions.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

CLAIM = "acro"
"""Key of a table payload's `claimed` dict holding {"uid", "method", "command", "comments", "exception"}."""
ACRO_VERSION = "1.0.2"
"""The ACRO version whose results.json format is written (SACRO-Viewer accepts 0.4 and later)."""
ACRO_CHECKS = {"threshold": "MinimumThresholdCheck", "nk_dominance": "NKCheck", "p_percent": "PPercentCheck",
               "degrees_of_freedom": "MinimumDoFCheck", "negatives": "negative", "missing": "missing",
               "residual_dof": "MinimumDoFCheck", "zeros": "PresenceOfZeroCheck"}
"""Onsite rule -> the name ACRO 1.0 gives the same check in its outcome tables."""
DIFFERENCES = {"negatives": "D1", "missing": "D2", "class_disclosure": "D3", "single_unit": "D6, D7",
               "empty_bins": "D11", "extreme_edges": "D11", "parameters": "D12", "categorical_levels": "D12",
               "outcome_classes": "D12", "differencing": "D13"}
"""Onsite rule -> the row of docs/acro-differences.md that explains where Onsite differs from ACRO."""


def check_name(rule: str) -> str:
    """ACRO's name of an Onsite check, or `onsite:<rule>` for one ACRO does not make (or makes differently)."""
    return ACRO_CHECKS.get(rule) or f"onsite:{rule}"


def tag(rule: str, review: bool) -> str:
    """One check in an outcome table cell, as ACRO writes it ("NKCheck; "), with Onsite's D-number and review."""
    extra = ([DIFFERENCES[rule]] if rule in DIFFERENCES else []) + (["review"] if review else [])
    return check_name(rule) + (f" ({', '.join(extra)})" if extra else "") + "; "


def summary(verdict: str, results: Sequence[tuple[str, str, int]]) -> str:
    """ACRO's one-line summary of an output: its verdict, then each check that did not pass with its verdict and
    flagged cells (`results`: (rule, verdict, cells))."""
    failing = [f"{check_name(rule)}: {v}" + (f" - {n} cells" if n else "") for rule, v, n in results if v != "pass"]
    return f"{verdict}; " + ("; ".join(failing) if failing else "every check passed")


def _label(value: Any) -> str:
    return str(value)


def table_entry(uid: str, *, status: str, file_name: str, recomputed: Mapping[str, Any] | None,
                report: Mapping[str, Any] | None, method: str, command: str, summary: str, timestamp: str | None,
                comments: Sequence[str], exception: str) -> dict[str, Any]:
    """One output of results.json for a released table. Its CSV has one row per cell (labels, then the value):
    `sdc.cells` and `outcome` point at the value column of each flagged cell's row."""
    rows = (recomputed or {}).get("rows") or []
    value_column = max(len((recomputed or {}).get("columns") or []) - 1, 0)
    where = {tuple(_label(v) for v in row[:-1]): i for i, row in enumerate(rows)}
    cells: dict[str, list[list[int]]] = {}
    outcome: dict[str, str] = {str(i): "ok" for i in range(len(rows))}
    for result in (report or {}).get("results", []):
        if result.get("verdict") == "pass":
            continue
        name = check_name(str(result.get("rule")))
        for labels in result.get("cells") or []:
            row = where.get(tuple(_label(v) for v in labels))
            if row is None:
                continue
            cells.setdefault(name, []).append([row, value_column])
            previous = "" if outcome[str(row)] == "ok" else outcome[str(row)]
            outcome[str(row)] = previous + tag(str(result.get("rule")), result.get("verdict") == "review")
    value_name = ((recomputed or {}).get("columns") or ["value"])[-1]
    return {"uid": uid, "status": status, "type": "table", "properties": {"method": method},
            "files": [{"name": file_name, "sdc": {"summary": {k: len(v) for k, v in cells.items()}, "cells": cells}}],
            "outcome": {value_name: outcome}, "command": command, "summary": summary, "timestamp": timestamp,
            "comments": list(comments), "exception": exception}


def file_entry(uid: str, *, status: str, file_name: str, command: str, summary: str, timestamp: str | None,
               comments: Sequence[str]) -> dict[str, Any]:
    """One output of results.json for a released file (a figure, a model's summary, a custom output)."""
    return {"uid": uid, "status": status, "type": "custom", "properties": {"method": "custom"},
            "files": [{"name": file_name, "sdc": {}}], "outcome": {}, "command": command, "summary": summary,
            "timestamp": timestamp, "comments": list(comments), "exception": ""}


def results_json(entries: Sequence[Mapping[str, Any]]) -> bytes:
    """ACRO's results.json holding `entries` (one per released output)."""
    document = {"version": ACRO_VERSION,
                "tool": {"@type": "SoftwareApplication", "name": "Onsite (ACRO API)",
                         "url": "https://github.com/AI-SDC/ACRO", "version": ACRO_VERSION},
                "results": {entry["uid"]: dict(entry) for entry in entries}}
    return json.dumps(document, ensure_ascii=False, indent=4).encode("utf-8")
