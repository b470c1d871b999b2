"""The one place where the public parameters of sdc.microdata are checked.

Each checker refuses what the measures cannot use (bools, NaN, text, numbers out
of range) with an InvalidMicrodataInput that names the parameter and what to
give instead, and returns the value in the type the measures use.
"""
from __future__ import annotations

import enum
import math
from numbers import Integral, Real
from typing import Any, TypeVar

E = TypeVar("E", bound=enum.Enum)


class InvalidMicrodataInput(ValueError):
    """The data or a parameter cannot be used; the message says what to fix."""


def whole_number(value: Any, name: str, minimum: int = 1) -> int:
    """A whole number >= minimum (k, sizes, counts): 2.5 or NaN is refused, not rounded."""
    if isinstance(value, bool) or not isinstance(value, Real) or not _whole(value) or value < minimum:
        raise InvalidMicrodataInput(f"{name} must be at least {minimum} and a whole number (got {value!r})")
    return int(value)


def number_in(value: Any, name: str, low: float, high: float = math.inf, *, low_open: bool = False,
              high_open: bool = False) -> float:
    """A finite number in [low, high] (an end excluded when open)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        if high == math.inf:
            wanted = f"greater than {low:g}" if low_open else f"at least {low:g}"
        else:
            excluded = [f"{end:g}" for end, is_open in ((low, low_open), (high, high_open)) if is_open]
            wanted = f"between {low:g} and {high:g}" + (f" ({' and '.join(excluded)} excluded)" if excluded else "")
        raise InvalidMicrodataInput(f"{name} must be a number {wanted} (got {value!r})")
    return float(value)


def member(value: Any, kind: type[E], name: str) -> E:
    """One of the enum `kind`, given as a member or its value ("exact" for RiskMethod.EXACT); a name that is no
    member is refused, never read as another method."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in {m.value for m in kind}:
        return kind(value)
    choices = ", ".join(repr(m.value) for m in kind)
    raise InvalidMicrodataInput(f"{name} must be one of {choices} (got {value!r})")


def measure_of(values: dict[str, Any], measure: Any, l: Any) -> Any:
    """The l-diversity measure named `measure` and `l` as a number >= 1 (NaN would count no record below it)."""
    if measure not in values:
        raise InvalidMicrodataInput(f"measure must be one of {', '.join(map(repr, values))} (got {measure!r})")
    number_in(l, "l", 1.0)
    return values[measure]


def check_k(k: Any, *, weighted: bool = False) -> float:
    """k of k-anonymity: a whole number of records >= 1 (f_k counts records, so 2.5 has no meaning);
    compared with weighted frequencies F_k (sums of weights) any number >= 1."""
    return number_in(k, "weighted k", 1.0) if weighted else whole_number(k, "k")


def check_alpha(alpha: Any) -> float:
    return number_in(alpha, "alpha", 0.0, 1.0)


def unique_names(names: Any, what: str) -> None:
    """Refuse data whose columns repeat a name: a variable must name one column."""
    seen: set[Any] = set()
    repeated = sorted({str(n) for n in names if n in seen or seen.add(n)})
    if repeated:
        raise InvalidMicrodataInput(
            f"{what} has more than one column named {', '.join(map(repr, repeated))}: rename them so that each "
            "variable names one column"
        )


def _whole(value: Real) -> bool:
    return isinstance(value, Integral) or (math.isfinite(value) and float(value).is_integer())
