"""How the benchmarks time a call: the median of enough calls, after a warm-up."""

from __future__ import annotations

import statistics
import time


def median_ms(fn, repeats: int = 7, min_seconds: float = 1.0) -> float:
    """Median milliseconds of ``fn()`` over at least ``repeats`` calls and ``min_seconds`` of calls
    (a sub-millisecond call's median of 50 moved by 20% from run to run), after one warm-up call
    (compilation and first-call allocation excluded)."""
    fn()
    times = []
    while len(times) < repeats or sum(times) < min_seconds * 1e3:
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
