"""Helpers shared by the test modules: synthetic sequences and the paths of the shared data.

Test modules import them with ``from _helpers import ...`` (pytest puts ``tests/`` on the path,
as for ``conftest.py``); fixtures stay in ``conftest.py``.
"""

from pathlib import Path

import numpy as np

#: ``../shared/data`` beside the project root: real files for tests, absent on a user's machine.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YEO_ATLAS = (
    SHARED_DATA / "yeo2011" / "Yeo2011_7Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz"
)
SHERLOCK = SHARED_DATA / "sherlock" / "sherlock_pmc_movie.npz"


def smooth_sequences(n_sequences, n_timepoints, n_features, *, seed=0, n_latent=6, noise=1.0):
    """Sequences driven by slow latent random walks (neighbouring time points are alike).

    ``n_timepoints`` may be an int or a list of lengths.
    """
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(n_latent, n_features))
    lengths = [n_timepoints] * n_sequences if np.isscalar(n_timepoints) else list(n_timepoints)
    sequences = []
    for length in lengths:
        latent = np.cumsum(rng.normal(size=(length, n_latent)), axis=0) * 0.4
        sequences.append(latent @ mixing + noise * rng.normal(size=(length, n_features)))
    return [s.astype(np.float32) for s in sequences]


def fast_slow_sequences(n_sequences, n_timepoints, n_features, *, seed=0, mixing_seed=0):
    """Slow latent drifts hidden under stronger fast, spatially correlated noise.

    The leading principal axes of such data are the fast noise, so an untrained encoder
    barely solves the pretext task; training must find the slow subspace.
    """
    rng = np.random.default_rng(seed)
    mixing_rng = np.random.default_rng(mixing_seed)
    slow_mixing = mixing_rng.normal(size=(3, n_features))
    fast_mixing = mixing_rng.normal(size=(6, n_features))
    sequences = []
    for _ in range(n_sequences):
        slow = np.cumsum(rng.normal(size=(n_timepoints, 3)), axis=0) * 0.5
        fast = rng.normal(size=(n_timepoints, 6)) * 3
        noise = rng.normal(size=(n_timepoints, n_features))
        sequences.append(slow @ slow_mixing + fast @ fast_mixing + noise)
    return [s.astype(np.float32) for s in sequences]
