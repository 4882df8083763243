"""Seeded, thread-safe use of torch's global random number generator."""

import contextlib
import threading

import torch

# torch's CPU generator is global to the process: two fits running in threads (joblib's
# threading or dask backends) would draw from it in turn and lose reproducibility. Seeded
# sections therefore run one at a time; process-based parallelism is unaffected.
_SEEDED_SECTION = threading.RLock()


@contextlib.contextmanager
def seeded_torch(seed):
    """Run a block with torch's global RNG seeded to ``seed``, restoring it afterwards.

    Parameters
    ----------
    seed : int
        Seed for ``torch.manual_seed``.

    Yields
    ------
    None
        Weight initialisation, shuffling and window draws inside the block are reproducible,
        even when other threads fit estimators at the same time.
    """
    with _SEEDED_SECTION, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
