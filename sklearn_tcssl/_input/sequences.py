"""Operations on lists of ``(n_timepoints, n_features)`` sequences shared by the estimators.

Standardisation, PCA axes, batching by length, and output checks: the numerical plumbing
around the encoder that both :class:`~sklearn_tcssl.TemporalContrastiveEmbedder` and
:class:`~sklearn_tcssl.TemporalContrastiveClassifier` need.
"""

import numbers

import numpy as np
import torch
from sklearn.utils.extmath import randomized_svd

from sklearn_tcssl._utils.exceptions import TrainingDivergedError

PCA_MAX_ROWS = 20_000  # time points sampled to compute the PCA initialisation


def standardization_stats(sequences, standardize):
    """Per-feature mean and scale over all time points of all sequences.

    Two passes, no stacked copy of the data. A feature with (near) zero variance gets a
    scale of 1, so it is only centred.

    Parameters
    ----------
    sequences : list of ndarray of shape (n_timepoints_i, n_features)
        Training sequences.
    standardize : bool
        False returns zeros and ones (no standardisation).

    Returns
    -------
    mean, scale : ndarray of shape (n_features,), float32
        Statistics to apply as ``(x - mean) / scale``.
    """
    n_features = sequences[0].shape[1]
    if not standardize:
        return np.zeros(n_features, dtype=np.float32), np.ones(n_features, dtype=np.float32)
    count = sum(len(s) for s in sequences)
    mean = sum(s.sum(axis=0, dtype=np.float64) for s in sequences) / count
    var = sum(np.square(s - mean).sum(axis=0) for s in sequences) / count
    scale = np.sqrt(var).astype(np.float32)
    scale[scale < 1e-8 * max(float(scale.max(initial=0.0)), 1.0)] = 1.0
    return mean.astype(np.float32), scale


def mean_patterns(sequences):
    """Mean over time of each sequence, ``(n_sequences, n_features)`` float32."""
    return np.stack([np.asarray(s, dtype=np.float32).mean(axis=0) for s in sequences])


def check_finite_embeddings(out, module, owner, what="transform"):
    """Raise instead of returning NaN or infinite embeddings (or predictions)."""
    bad = ~np.isfinite(out).all(axis=1)
    if not bad.any():
        return
    broken = [name for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    cause = (
        f"the encoder's weights {broken[:3]} contain NaN or infinity (training diverged "
        "or the model was damaged); refit with a lower lr"
        if broken
        else "the input is too large for float32; rescale it (z-score each voxel over the run)"
    )
    raise TrainingDivergedError(
        f"{owner}.{what} produced non-finite outputs for {int(bad.sum())} of "
        f"{len(out)} sequences (first: X[{int(np.flatnonzero(bad)[0])}]): {cause}."
    )


def check_y_length(y, n_samples, owner):
    """``y`` is ignored, but one of another length is almost surely a mix-up: say so early."""
    if y is not None and hasattr(y, "__len__") and len(y) != n_samples:
        raise ValueError(
            f"{owner}.fit got y with {len(y)} labels for {n_samples} sequences in X. y is "
            "ignored by the embedder, but in a Pipeline it must match X: pass one label per "
            "sequence (block), in the order of X."
        )


def is_2d_table(X):
    """Whether X is a 2D table (array, DataFrame or list of rows) rather than sequences."""
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(is_row(item) for item in X)
    return getattr(X, "ndim", None) == 2


def is_row(item):
    if isinstance(item, numbers.Number):
        return True
    if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
        return False
    try:
        return np.ndim(item) == 1
    except ValueError:  # ragged nested lists: not a row; check_sequences explains
        return False


def principal_axes(sequences, n_components, seed, *, mean=None, scale=None):
    """Leading principal axes ``(k, n_features)`` of the time points of all sequences.

    With ``mean`` and ``scale``, the time points are standardised first (only the stacked
    sample is, never a copy of the sequences).
    """
    rng = np.random.RandomState(seed)
    lengths = [len(s) for s in sequences]
    if sum(lengths) > PCA_MAX_ROWS:  # gather the sampled rows only (no copy of all data)
        rows = np.sort(rng.choice(sum(lengths), PCA_MAX_ROWS, replace=False))
        owner = np.searchsorted(np.cumsum(lengths), rows, side="right")
        starts = np.cumsum([0, *lengths[:-1]])
        stacked = np.stack([sequences[o][r - starts[o]] for o, r in zip(owner, rows)])
    else:
        stacked = np.concatenate(sequences, axis=0)
    if mean is not None:  # in place: stacked is a fresh array
        stacked -= mean
        stacked /= scale
    stacked -= stacked.mean(axis=0)
    k = min(n_components, *stacked.shape)
    _, _, components = randomized_svd(stacked, k, random_state=rng)
    return components.astype(np.float32)


def batches_of_equal_length(sequences, batch_size):
    """Yield index arrays of sequences that share a length, at most ``batch_size`` each."""
    lengths = np.array([len(s) for s in sequences])
    for length in np.unique(lengths):
        indices = np.flatnonzero(lengths == length)
        for start in range(0, len(indices), batch_size):
            yield indices[start : start + batch_size]


def check_segment_length(sequences, segment_length, *, owner):
    """Raise a clear ValueError if a sequence is shorter than three segments.

    Parameters
    ----------
    sequences : list of array-like
        Sequences (anything with ``len``).
    segment_length : int
        Time points per segment.
    owner : str
        Name used in the message.
    """
    window = 3 * segment_length
    lengths = [len(s) for s in sequences]
    shortest = min(lengths)
    if shortest < window:
        raise ValueError(
            f"{owner}: segment_length={segment_length} needs sequences of at "
            f"least {window} time points (3 segments); the shortest sequence (X"
            f"[{lengths.index(shortest)}]) has {shortest}. Lower segment_length to "
            f"{max(shortest // 3, 1)} or less, or pass longer sequences (whole runs or "
            "longer blocks)."
        )
