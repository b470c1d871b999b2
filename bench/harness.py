"""Find benchmark modules, time their cases, print the comparison table."""
from __future__ import annotations

import importlib
import logging
import pkgutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import bench
from bench import Case, Context
from onsite_base.errors import UserError

log = logging.getLogger(__name__)
MODULE_PREFIX = "bench_"


@dataclass(frozen=True)
class Result:
    case: Case
    ours_median: float
    peer_median: float

    @property
    def ratio(self) -> float:
        return self.ours_median / self.peer_median if self.peer_median else float("inf")


def available_modules() -> list[str]:
    """Topics of the `bench/bench_<topic>.py` modules."""
    return sorted(m.name[len(MODULE_PREFIX):] for m in pkgutil.iter_modules(bench.__path__)
                  if m.name.startswith(MODULE_PREFIX))


def load(topic: str) -> ModuleType:
    return importlib.import_module(f"bench.{MODULE_PREFIX}{topic}")


def select_cases(names: Sequence[str], ctx: Context) -> list[Case]:
    """Cases of the modules named by topic (e.g. `groupby`), of every module when no name is given."""
    topics = available_modules()
    wanted = [n.removeprefix(MODULE_PREFIX) for n in names]
    unknown = [n for n in wanted if n not in topics]
    if unknown:
        raise UserError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(topics)}")
    return [c for t in (wanted or topics) for c in load(t).cases(ctx)]


def time_case(case: Case, repeat: int | None = None) -> Result:
    """Median wall time of `ours` and `peer`, after one warm-up each, alternating which goes first."""
    runs = repeat or case.repeat
    timings: dict[str, list[float]] = {"ours": [], "peer": []}

    def timed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    case.ours(), case.peer()
    for i in range(runs):
        order = [("ours", case.ours), ("peer", case.peer)]
        for label, fn in order if i % 2 == 0 else reversed(order):
            timings[label].append(timed(fn))
    log.debug("case %s timings %s", case.name, timings)
    return Result(case, statistics.median(timings["ours"]), statistics.median(timings["peer"]))


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def format_table(results: Sequence[Result]) -> str:
    """A Markdown table (readable in a terminal, pasteable into RESULTS.md)."""
    header = ["benchmark", "peer", "peer median", "ours median", "ratio", "note"]
    rows = [[r.case.name, r.case.peer_name, format_seconds(r.peer_median), format_seconds(r.ours_median),
             f"{r.ratio:.3f}", r.case.note] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def run(names: Sequence[str], ctx: Context, repeat: int | None = None) -> list[Result]:
    try:
        cases = select_cases(names, ctx)
        return [time_case(case, repeat) for case in cases]
    finally:
        ctx.close()
