"""Deterministic shared response model (Chen et al. 2015), in numpy.

Each subject's standardised run ``X_s`` (time x voxels) is modelled as ``X_s ~ S W_s^T`` with
an orthonormal map ``W_s`` (voxels x k) and a response ``S`` (time x k) shared by everyone.
Fitting alternates two closed-form steps: ``S`` is the mean of the subjects' projections
``X_s W_s``, and each ``W_s`` is the orthogonal Procrustes solution that best maps ``X_s``
onto ``S``. A new subject's map is one Procrustes step against the fitted ``S``.
"""

import numpy as np


def procrustes_map(run, shared):
    """Orthonormal map ``W`` (voxels x k) maximising ``trace(W^T run^T shared)``.

    Parameters
    ----------
    run : ndarray of shape (n_timepoints, n_features)
        A subject's standardised run.
    shared : ndarray of shape (n_timepoints, n_components)
        The shared response at the same stimulus times.

    Returns
    -------
    weights : ndarray of shape (n_features, n_components), float32
        Columns are orthonormal when ``n_features >= n_components``.
    """
    cross = run.astype(np.float64, copy=False).T @ shared.astype(np.float64, copy=False)
    u, _, vt = np.linalg.svd(cross, full_matrices=False)  # (V, k), (k,), (k, k)
    return (u @ vt).astype(np.float32)


def random_orthonormal(n_features, n_components, rng):
    """Draw a random ``(n_features, n_components)`` matrix with orthonormal columns.

    Parameters
    ----------
    n_features, n_components : int
        Shape; ``n_components <= n_features``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    weights : ndarray of shape (n_features, n_components), float32
    """
    q, r = np.linalg.qr(rng.normal(size=(n_features, n_components)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def fit_srm(runs, n_components, *, n_iter=10, random_state=0):
    """Fit a deterministic SRM to time-locked runs.

    Parameters
    ----------
    runs : list of ndarray of shape (n_timepoints, n_features_s)
        One standardised run per subject, on the same stimulus clock.
    n_components : int
        Dimension ``k`` of the shared space (at most the smallest ``n_features_s``).
    n_iter : int, default=10
        Alternating updates after the random initialisation.
    random_state : int, default=0
        Seed of the random orthonormal initial maps.

    Returns
    -------
    weights : list of ndarray of shape (n_features_s, n_components)
        Orthonormal per-subject maps.
    shared : ndarray of shape (n_timepoints, n_components)
        The shared response ``mean_s(X_s W_s)``.
    """
    rng = np.random.default_rng(random_state)
    weights = [random_orthonormal(run.shape[1], n_components, rng) for run in runs]
    for _ in range(n_iter):
        shared = shared_response(runs, weights)
        weights = [procrustes_map(run, shared) for run in runs]
    return weights, shared_response(runs, weights)


def shared_response(runs, weights):
    """Mean projection ``mean_s(X_s W_s)`` of the runs, ``(n_timepoints, k)`` float32.

    Parameters
    ----------
    runs : list of ndarray of shape (n_timepoints, n_features_s)
        Time-locked runs.
    weights : list of ndarray of shape (n_features_s, n_components)
        Their maps.

    Returns
    -------
    shared : ndarray of shape (n_timepoints, n_components), float32
    """
    total = sum(run.astype(np.float64, copy=False) @ w for run, w in zip(runs, weights))
    return (total / len(runs)).astype(np.float32)
