"""The simulated noise: spatially smooth AR(1) noise with a global signal, and slow drifts."""

import numpy as np
from scipy import sparse
from scipy.signal import lfilter


def _smoothing_operator(mask, sigma):
    """Sparse Gaussian kernel (n_voxels_in_mask, n_sources) and the source count.

    White noise drawn on the sources (the mask and its neighbours within 3 sigma) and
    multiplied by this operator equals ``gaussian_filter`` restricted to the mask, at a
    fraction of the cost.
    """
    radius = max(int(np.ceil(3 * sigma)), 0)
    ijk = np.argwhere(mask)
    rows, cols, weights = [], [], []
    for d in np.ndindex((2 * radius + 1,) * 3):
        offset = np.asarray(d) - radius
        weight = (
            np.exp(-(offset**2).sum() / (2 * sigma**2)) if sigma > 0 else float(not offset.any())
        )
        if weight < 1e-3:
            continue
        neighbours = ijk + offset
        rows.append(np.arange(len(ijk)))
        cols.append(np.ravel_multi_index(neighbours.T, mask.shape, mode="clip"))
        weights.append(np.full(len(ijk), weight))
    rows, cols, weights = map(np.concatenate, (rows, cols, weights))
    sources, cols = np.unique(cols, return_inverse=True)
    kernel = sparse.csr_matrix((weights, (rows, cols)), shape=(len(ijk), len(sources)))
    norm = np.sqrt(np.asarray(kernel.multiply(kernel).sum(axis=1)).ravel())
    return (sparse.diags(1.0 / norm) @ kernel).astype(np.float32).tocsr()


def _noise(rng, n_scans, kernel, *, ar, global_sd):
    """AR(1), spatially smooth noise of unit variance, (n_scans, n_voxels_in_mask)."""
    white = rng.standard_normal((kernel.shape[1], n_scans), dtype=np.float32)
    noise = lfilter([np.sqrt(1 - ar**2)], [1.0, -ar], kernel @ white, axis=1).T  # (T, V)
    glob = lfilter([np.sqrt(1 - ar**2)], [1.0, -ar], rng.standard_normal(n_scans))
    loading = 1 + 0.2 * rng.standard_normal(kernel.shape[0])
    return noise + global_sd * glob[:, None] * loading


def _drift(rng, frame_times, n_voxels, amplitude):
    """Slow drift per voxel: a linear trend and cosines of periods >= 128 s."""
    duration = frame_times[-1] + frame_times[1]
    basis = [frame_times / duration - 0.5]
    n_cos = int(np.floor(2 * duration / 128.0))
    basis += [
        np.cos(np.pi * (frame_times / duration + 0.5 / len(frame_times)) * j)
        for j in range(1, n_cos + 1)
    ]
    basis = np.column_stack(basis)
    coefs = rng.normal(0.0, 1.0, size=(basis.shape[1], n_voxels))
    coefs /= np.sqrt(np.arange(1, basis.shape[1] + 1))[:, None]
    return amplitude * basis @ coefs
