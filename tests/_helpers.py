"""Helpers shared by the test modules: synthetic sequences and the paths of the shared data.

Test modules import them with ``from _helpers import ...`` (pytest puts ``tests/`` on the path,
as for ``conftest.py``); fixtures stay in ``conftest.py``.
"""

from pathlib import Path

import nibabel as nib
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


#: Fast embedder parameters for tests on 4D volumes.
VOLUME_FAST = {
    "n_components": 8,
    "max_epochs": 2,
    "batch_size": 4,
    "segment_length": 3,
    "target_voxel_size": 8.0,
    "random_state": 0,
}


def volume_image(shape, voxel_size, n_frames, *, seed, origin=(-30.0, -36.0, -24.0)):
    """A 4D NIfTI image with slow drifts on top of a fixed spatial pattern."""
    rng = np.random.default_rng(seed)
    pattern = rng.normal(size=shape)
    drift = np.cumsum(rng.normal(size=n_frames)) * 0.3
    data = 100 + 5 * pattern[..., None] * (1 + drift) + rng.normal(size=(*shape, n_frames))
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = origin
    return nib.Nifti1Image(data.astype(np.float32), affine)


def mixed_volume_images(tmp_path, n_each=4):
    """Runs of two grids: (10, 12, 8) at 6 mm as files and (16, 18, 12) at 4 mm in memory."""
    images = []
    for i in range(n_each):
        path = tmp_path / f"sub-{i:02d}_bold.nii"
        nib.save(volume_image((10, 12, 8), 6.0, 14, seed=i), path)
        images.append(str(path))
        images.append(
            volume_image((16, 18, 12), 4.0, 16 + i, seed=100 + i, origin=(-34, -40, -20))
        )
    return images
