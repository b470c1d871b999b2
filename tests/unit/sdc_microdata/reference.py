"""Independent, deliberately plain implementations used as test oracles."""
from __future__ import annotations

import numpy as np


def brute_force_fk(rows: list[tuple], alpha: float = 1.0) -> np.ndarray:
    """sdcMicro freqCalc's f_k by comparing every pair of records (None = missing).

    Read from sdcMicro R/freqCalc.r: a missing value matches any value; a record with all
    keys missing has f_k = n; a complete record is not matched by an all-missing one
    (unless there is one key); matches other than the record's own pattern that involve a
    missing value count alpha when the record itself has missing values or the other one does.
    """
    n, p = len(rows), len(rows[0])
    out = np.zeros(n)
    for i, a in enumerate(rows):
        if all(v is None for v in a):
            out[i] = n
            continue
        a_complete = all(v is not None for v in a)
        total = 0.0
        for b in rows:
            if not all(x is None or y is None or x == y for x, y in zip(a, b)):
                continue
            if b == a:
                total += 1
            elif a_complete:
                if all(v is None for v in b):
                    total += alpha if p == 1 else 0.0
                else:
                    total += alpha
            else:
                total += 1.0 if all(v is not None for v in b) else alpha
        out[i] = total
    return out
