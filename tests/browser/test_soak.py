"""Soak: Play for many steps in one session; the server's memory must not grow with them.
CI plays 1,000 steps and compares the memory after the second CartPole episode with that after the
first (the same point of an episode); the full-size run (3,000 steps) is
`python benchmarks/soak.py`, recorded in RELIABILITY.md."""

import os

import pytest

from benchmarks.soak import soak

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEPS = int(os.environ.get("SOAK_STEPS", 1000))
WARM_UP = 500  # memory grows while the first episode (500 steps) fills the caches
MAX_GROWTH_MB = 40  # the sawtooth of one episode's history is about 25 MB (RELIABILITY.md)


def test_memory_does_not_grow_with_steps(browser, server_url):
    readings = soak(browser, server_url, STEPS, "CartPole-v1")  # raises on any browser console error
    assert readings[-1][0] >= STEPS
    after_warm_up = next(mb for steps, _, mb, _ in readings if steps >= WARM_UP)
    assert readings[-1][2] - after_warm_up < MAX_GROWTH_MB, readings
