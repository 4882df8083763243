"""Shared fixtures: fixed seeds and small synthetic sequences."""

import random

import numpy as np
import pytest
import torch
from _helpers import smooth_sequences


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (code under test may use the legacy global RNG)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _one_thread():
    """Fits use one thread, so refits are identical whatever else runs on the machine.

    The automatic policy (tests/test_threads.py) leaves out CPUs that other processes keep
    busy, which can change the thread count, and so the last digits, between two fits.
    """
    from sklearn_tcssl import config_context  # here: helper scripts import this module too

    with config_context(n_threads=1):
        yield


@pytest.fixture
def sequences():
    """40 sequences of 18 time points and 30 features."""
    return smooth_sequences(40, 18, 30)
