"""One standardisation rule: per-feature ``(x - mean) / scale``, learned once, applied anywhere.

The statistics come from one streaming float64 pass over bounded chunks (Chan et al.'s
pairwise update), so no float64 or stacked copy of the data is made; a (near) constant
feature keeps a scale of 1, by scikit-learn's rule (``StandardScaler``). The adapters, the
window datasets, the volume runs and the aligners all use :class:`Standardizer`.
"""

import math

import numpy as np
import torch
from sklearn.preprocessing._data import _is_constant_feature

CHUNK_BYTES = 8 * 2**20  # rows read at once by the statistics pass (float32 bytes)


def row_chunks(sequences, chunk_bytes=CHUNK_BYTES):
    """Yield row blocks (views of arrays) of each sequence, of at most ``chunk_bytes`` float32."""
    for sequence in sequences:
        row_bytes = 4 * max(math.prod(sequence.shape[1:]), 1)
        n_rows = max(1, int(chunk_bytes) // row_bytes)
        for start in range(0, len(sequence), n_rows):
            yield sequence[start : start + n_rows]


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
        """Statistics over every time point of ``sequences`` (sliced along time, in chunks)."""
        count, mean, m2 = 0, None, None
        for chunk in row_chunks(sequences, chunk_bytes):
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
        var = m2 / count
        scale = np.sqrt(var)  # StandardScaler's rule: 1 for (near) constant features
        scale[_is_constant_feature(var, mean, count) | (scale < 10 * np.finfo(float).eps)] = 1.0
        return cls(mean, scale)

    def transform(self, x):
        """``(x - mean) / scale`` as a new float32 array; ``x`` is never written."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.scale).astype(
            np.float32, copy=False
        )

    def apply_(self, x):
        """Standardise, in place, a float32 array or tensor (any device) this code owns."""
        if isinstance(x, torch.Tensor):
            key = str(x.device)
            if key not in self._tensors:  # the statistics, cached per device
                self._tensors[key] = (
                    torch.from_numpy(self.mean).to(x.device),
                    torch.from_numpy(self.scale).to(x.device),
                )
            mean, scale = self._tensors[key]
            return x.sub_(mean).div_(scale)
        x -= self.mean
        x /= self.scale
        return x

    def __getstate__(self):
        return {"mean": self.mean, "scale": self.scale, "_tensors": {}}
