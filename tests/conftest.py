"""Fixtures for every test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for the whole test run (2 CPUs, a small object store), as a batch job starts it."""
    import logging

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
             logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()
