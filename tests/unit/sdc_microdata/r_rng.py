"""R's default random number generator, to rebuild the data of sdcMicro's tests.

sdcMicro's tests make their data with `set.seed(s); runif(...)`. R's default is
Mersenne-Twister seeded by `set.seed` through a linear congruential scramble
(R's RNG.c: 50 rounds of seed = 69069 * seed + 1, then 625 more to fill the
state, whose first word is the position, reset to 624). numpy's MT19937 runs the
same generator once given that state.
"""
from __future__ import annotations

import numpy as np

_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1), R's fixup bound


class RRandom:
    """`RRandom(3).runif(30, 1, 100)` equals R's `set.seed(3); runif(30, 1, 100)`."""

    def __init__(self, seed: int) -> None:
        s = seed & 0xFFFFFFFF
        for _ in range(50):
            s = (69069 * s + 1) & 0xFFFFFFFF
        words = []
        for _ in range(625):
            s = (69069 * s + 1) & 0xFFFFFFFF
            words.append(s)
        self._bits = np.random.MT19937()
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": np.array(words[1:], dtype=np.uint32), "pos": 624},
        }

    def unif_rand(self, n: int) -> np.ndarray:
        u = self._bits.random_raw(n).astype(np.float64) * 2.3283064365386963e-10
        u = np.where(u <= 0.0, 0.5 * _I2_32M1, u)
        return np.where(1.0 - u <= 0.0, 1.0 - 0.5 * _I2_32M1, u)

    def runif(self, n: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        return low + (high - low) * self.unif_rand(n)


def r_round(x: np.ndarray) -> np.ndarray:
    """R's round(x, 0): halves go to the even neighbour, as numpy's."""
    return np.round(x)
