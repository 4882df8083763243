"""One standardisation rule: per-feature ``(x - mean) / scale``, learned once, applied anywhere.

:class:`Standardizer` holds the statistics of the training time points and applies them to
numpy arrays or torch tensors, out of place (the user's data is never written) or in place
(on a batch this package has just built). The statistics come from one streaming pass in
float64 over chunks of bounded size (Chan et al.'s pairwise update), so no float64 or
stacked copy of the data is made. A feature with (near) zero variance keeps a scale of 1,
so it is only centred, by scikit-learn's rule (``StandardScaler``'s constant-feature test
and ``_handle_zeros_in_scale``).

The input adapters, the window datasets (which receive it as an object with
:meth:`Standardizer.apply_`), the volume runs and the aligners use this one class.
"""

import numpy as np
import torch

CHUNK_BYTES = 8 * 2**20  # rows read at once by the statistics pass (float32 bytes)
_EPS = np.finfo(np.float64).eps


def row_chunks(sequences, chunk_bytes=CHUNK_BYTES):
    """Yield consecutive row blocks of each sequence, each at most ``chunk_bytes`` (float32).

    Parameters
    ----------
    sequences : list of array-like of shape (n_timepoints_i, n_features)
        Arrays, memory maps or lazily read runs (anything sliced along time).
    chunk_bytes : int, default=CHUNK_BYTES
        Size bound of one block.

    Yields
    ------
    chunk : ndarray of shape (n_rows, n_features)
        A view where the sequence is an array (no copy).
    """
    for sequence in sequences:
        n_rows = max(1, int(chunk_bytes) // (4 * max(int(sequence.shape[1]), 1)))
        for start in range(0, len(sequence), n_rows):
            yield sequence[start : start + n_rows]


def zero_scale_rule(var, mean, n_samples):
    """Scale ``sqrt(var)``, with 1 for constant features (scikit-learn's rule).

    A feature is constant when its variance is within float64 rounding of 0
    (``var <= n * eps * var + (n * mean * eps) ** 2``, as ``StandardScaler``), or when its
    scale is below ``10 * eps``.

    Parameters
    ----------
    var, mean : ndarray of shape (n_features,), float64
        Variance and mean over ``n_samples`` time points.
    n_samples : int
        Number of time points.

    Returns
    -------
    scale : ndarray of shape (n_features,), float64
    """
    constant = var <= n_samples * _EPS * var + (n_samples * mean * _EPS) ** 2
    scale = np.sqrt(var)
    scale[constant | (scale < 10 * _EPS)] = 1.0
    return scale


class Standardizer:
    """Per-feature mean and scale, applied as ``(x - mean) / scale`` in numpy or torch.

    Parameters
    ----------
    mean, scale : array-like of shape (n_features,)
        Statistics (stored as float32).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(12, dtype=np.float32).reshape(6, 2)
    >>> st = Standardizer.fit([X])
    >>> np.allclose(st.transform(X).std(axis=0), 1.0)
    True
    """

    def __init__(self, mean, scale):
        self.mean = np.ascontiguousarray(mean, dtype=np.float32)
        self.scale = np.ascontiguousarray(scale, dtype=np.float32)
        self._tensors = {}

    @classmethod
    def identity(cls, n_features):
        """Return the standardizer that changes nothing (mean 0, scale 1)."""
        return cls(np.zeros(n_features, np.float32), np.ones(n_features, np.float32))

    @classmethod
    def fit(cls, sequences, chunk_bytes=CHUNK_BYTES):
        """Statistics over every time point of ``sequences``, in one streaming pass.

        Parameters
        ----------
        sequences : list of array-like of shape (n_timepoints_i, n_features)
            Arrays, memory maps or runs read lazily (sliced along time, chunk by chunk).
        chunk_bytes : int, default=CHUNK_BYTES
            Bound on the rows read at once.

        Returns
        -------
        standardizer : Standardizer
        """
        return cls.from_chunks(row_chunks(sequences, chunk_bytes))

    @classmethod
    def from_chunks(cls, chunks):
        """Statistics over the rows of an iterable of ``(n_rows, n_features)`` blocks."""
        count, mean, m2 = 0, None, None
        for chunk in chunks:
            chunk = np.asarray(chunk)
            n = len(chunk)
            if n == 0:
                continue
            chunk_mean = chunk.sum(axis=0, dtype=np.float64) / n
            centred = chunk - chunk_mean.astype(np.float32)  # one chunk-sized temporary
            np.square(centred, out=centred)
            chunk_m2 = centred.sum(axis=0, dtype=np.float64)
            if mean is None:
                count, mean, m2 = n, chunk_mean, chunk_m2
                continue
            delta = chunk_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + chunk_m2 + delta**2 * (count * n / total)
            count = total
        if mean is None:
            raise ValueError("Standardizer.fit needs at least one time point.")
        return cls(mean, zero_scale_rule(m2 / count, mean, count))

    @property
    def n_features(self):
        """Number of features."""
        return len(self.mean)

    def transform(self, x):
        """``(x - mean) / scale`` as a new float32 array; ``x`` is never written."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.scale).astype(
            np.float32, copy=False
        )

    def apply_(self, x):
        """Standardise ``x`` in place and return it (a float32 array or tensor this code owns).

        Parameters
        ----------
        x : ndarray or torch.Tensor of shape (..., n_features)
            Writable; on any device for tensors.

        Returns
        -------
        x : same object
        """
        if isinstance(x, torch.Tensor):
            mean, scale = self.tensors(x.device)
            return x.sub_(mean).div_(scale)
        x -= self.mean
        x /= self.scale
        return x

    def tensors(self, device="cpu"):
        """``(mean, scale)`` as float32 tensors on ``device`` (cached)."""
        key = str(device)
        if key not in self._tensors:
            self._tensors[key] = (
                torch.from_numpy(self.mean).to(device),
                torch.from_numpy(self.scale).to(device),
            )
        return self._tensors[key]

    def __getstate__(self):
        return {"mean": self.mean, "scale": self.scale, "_tensors": {}}
