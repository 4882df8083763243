"""Deterministic shared response model (Chen et al. 2015), in numpy.

Each subject's standardised run ``X_s`` (time x voxels) is modelled as ``X_s ~ S W_s^T`` with
an orthonormal map ``W_s`` (voxels x k) and a response ``S`` (time x k) shared by everyone.
Fitting alternates two closed-form steps: ``S`` is the mean of the subjects' projections
``X_s W_s``, and each ``W_s`` is the orthogonal Procrustes solution that best maps ``X_s``
onto ``S``. A new subject's map is one Procrustes step against the fitted ``S``. The random
start decides the basis of the shared space; :func:`canonical_rotation` gives one no start
changes.
"""

import numpy as np
from scipy.fft import dct
from sklearn.utils.extmath import svd_flip


def procrustes_map(run, shared):
    """Return the float32 orthonormal ``W`` (voxels x k) maximising ``trace(W^T run^T shared)``.

    ``run`` is ``(n_timepoints, n_features)``, ``shared`` ``(n_timepoints, n_components)``;
    the columns of ``W`` are orthonormal when ``n_features >= n_components``.
    """
    cross = run.astype(np.float64, copy=False).T @ shared.astype(np.float64, copy=False)
    u, _, vt = np.linalg.svd(cross, full_matrices=False)  # (V, k), (k,), (k, k)
    return (u @ vt).astype(np.float32)


def random_orthonormal(n_features, n_components, rng):
    """Draw a float32 ``(n_features, n_components)`` matrix with orthonormal columns."""
    q, r = np.linalg.qr(rng.normal(size=(n_features, n_components)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


BASES = ("fitted", "dominant")


def fit_srm(runs, n_components, *, n_iter=10, random_state=0, basis="fitted"):
    """Return the float32 orthonormal maps ``W_s`` (one per run) and the shared ``S``.

    ``runs`` are the standardised runs, one per subject on one clock; ``n_iter`` alternating
    updates follow a random orthonormal start seeded by ``random_state``; ``basis="dominant"``
    turns the result into the basis of :func:`canonical_rotation`.
    """
    rng = np.random.default_rng(random_state)
    weights = [random_orthonormal(run.shape[1], n_components, rng) for run in runs]
    for _ in range(n_iter):
        shared = shared_response(runs, weights)
        weights = [procrustes_map(run, shared) for run in runs]
    if basis == "dominant":
        rotation = canonical_rotation(shared_response(runs, weights))
        weights = [(w.astype(np.float64) @ rotation).astype(np.float32) for w in weights]
    return weights, shared_response(runs, weights)


def canonical_rotation(shared):
    """Rotation of the shared space onto its ``"dominant"`` basis, whatever basis it is in.

    The first axis is the principal axis of largest shared variance, alone (on region data,
    where the voxels move together, the region's global signal); the other axes mix the
    remaining principal axes with the orthonormal DCT-II, so that each carries a share of
    many components: a per-dimension scaling downstream (a ``StandardScaler``, shrinkage LDA)
    then damps the dominant component alone, instead of whitening the bare principal axes
    (weighting the noisiest components as much as the strongest). It is the basis brainiak's
    SRM happens to end in. Signs follow ``sklearn.utils.extmath.svd_flip``.

    ``shared`` is ``(n_timepoints, k)`` with ``k <= n_timepoints``; the float64 ``(k, k)``
    rotation gives the maps ``W_s @ rotation`` and the response ``shared @ rotation``.
    """
    shared = np.asarray(shared, dtype=np.float64)
    u, _, vt = np.linalg.svd(shared, full_matrices=False)  # (T, k), (k,), (k, k)
    _, vt = svd_flip(u, vt)  # deterministic signs
    axes = vt.T  # (k, k): principal axes as columns, by decreasing shared variance
    if axes.shape[1] < 3:
        return axes  # nothing to mix
    mix = dct(np.eye(axes.shape[1] - 1), norm="ortho", axis=0).T  # (k-1, k-1) orthogonal
    return np.concatenate([axes[:, :1], axes[:, 1:] @ mix], axis=1)


def shared_response(runs, weights):
    """Return the mean projection ``mean_s(X_s W_s)`` of the runs, float32 ``(T, k)``."""
    total = sum(run.astype(np.float64, copy=False) @ w for run, w in zip(runs, weights))
    return (total / len(runs)).astype(np.float32)
