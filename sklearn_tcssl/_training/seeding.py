"""Seeded, thread-safe use of torch's global random number generator."""

import contextlib
import threading

import torch

# torch's CPU generator is global to the process: fits in threads take turns
_SEEDED_SECTION = threading.RLock()


@contextlib.contextmanager
def seeded_torch(seed):
    """Run a block with torch's global RNG seeded to ``seed``, one thread at a time."""
    with _SEEDED_SECTION, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
