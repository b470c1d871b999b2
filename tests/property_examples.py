"""How many examples a property test (hypothesis) tries: `examples(n)` in its `@settings(max_examples=...)`.

`make test` tries each test's own count. `make check`, the inner loop, tries a share of it
(`ONSITE_PROPERTY_EXAMPLES`, set to 0.5 by scripts/check.sh; at least MIN_EXAMPLES): the same properties on fewer
random inputs, so a counterexample a smaller run misses is still looked for in every CI run (tests/README.md).
"""
from __future__ import annotations

import os

MIN_EXAMPLES = 5
_VALUE = os.environ.get("ONSITE_PROPERTY_EXAMPLES", "1")
try:
    SHARE = float(_VALUE)
except ValueError:
    SHARE = -1.0
if not 0 < SHARE <= 1:
    raise ValueError(f"ONSITE_PROPERTY_EXAMPLES must be a number above 0 and at most 1 (the share of each property "
                     f"test's examples to try), not {_VALUE!r}")


def examples(count: int) -> int:
    """`count` examples, or the share of them this run tries (never fewer than MIN_EXAMPLES, nor more than `count`)."""
    return min(count, max(MIN_EXAMPLES, round(count * SHARE)))
