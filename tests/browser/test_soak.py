"""Soak: Play for many steps in one session; the server's memory must not grow with them.
3,000 steps, as CI runs it and RELIABILITY.md records it; `SOAK_STEPS=600` for a quick local run."""

import os

import pytest

from benchmarks.soak import soak

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEPS = int(os.environ.get("SOAK_STEPS", 3000))
WARM_UP = 500 if STEPS >= 1500 else 250  # memory grows while the first episode fills the caches


def test_memory_does_not_grow_with_steps(browser, server_url):
    readings = soak(browser, server_url, STEPS, "CartPole-v1")  # raises on any browser console error
    assert readings[-1][0] >= STEPS
    after_warm_up = next(mb for steps, _, mb in readings if steps >= WARM_UP)
    assert readings[-1][2] - after_warm_up < 100, readings
