"""Numerics on lists of ``(n_timepoints, n_features)`` sequences shared by the estimators.

PCA axes, batching by length, one-buffer views, and checks of lengths and outputs.
"""

import warnings

import numpy as np
import torch

from sklearn_tcssl._input.standardize import CHUNK_BYTES
from sklearn_tcssl._utils.exceptions import TrainingDivergedError

PCA_MAX_ROWS = 20_000  # time points sampled to compute the PCA initialisation
PCA_POWER_ITERATIONS = 2  # subspace quality measured in the compute docs
PCA_OVERSAMPLES = 10  # as scikit-learn's randomized_svd
PCA_BLOCK_BYTES = 4 * CHUNK_BYTES  # rows per product of the PCA initialisation (float32 bytes)


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


def common_buffer(arrays):
    """Return the arrays as one read-only ``(rows, n_features)`` view, or None.

    Only arrays lying end to end in one buffer (the rows of a C-contiguous 3D array, which
    validation splits into views) have one; a batch is then gathered with one index.
    """
    first = arrays[0]
    if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays):
        return None
    root = _root(first)
    address = first.__array_interface__["data"][0]
    for a in arrays:
        same = a.dtype == first.dtype and a.shape[1:] == first.shape[1:] and _root(a) is root
        if not same or a.__array_interface__["data"][0] != address:
            return None
        address += a.nbytes
    n_rows = sum(len(a) for a in arrays)
    return np.lib.stride_tricks.as_strided(first, (n_rows, *first.shape[1:]), writeable=False)


def _root(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array if array.base is None else array.base


def principal_axes(
    sequences,
    n_components,
    seed,
    *,
    standardizer=None,
    max_rows=PCA_MAX_ROWS,
):
    """Return the leading principal axes ``(k, n_features)`` of all time points, float32.

    A randomized SVD (Halko et al. 2011, as :func:`sklearn.utils.extmath.randomized_svd`,
    ``PCA_POWER_ITERATIONS`` power iterations, seeded by ``seed``) of the time points
    standardised by ``standardizer`` and centred: each product with the data is taken block
    by block from the sequences (never copied whole, never written), with the
    standardisation and centring folded into the small factor. Beyond ``max_rows`` time
    points, a seeded sample of ``max_rows`` rows is used. The rows are orthonormal, leading
    first, and ``k = min(n_components, n_rows, n_features)``.
    """
    rng = np.random.RandomState(seed)
    lengths = np.array([len(s) for s in sequences])
    rows = None
    if lengths.sum() > max_rows:
        rows = np.sort(rng.choice(int(lengths.sum()), int(max_rows), replace=False))
    data = _CentredRows(sequences, rows, standardizer)
    k = min(int(n_components), data.n_rows, data.n_features)
    sample = rng.normal(size=(data.n_features, k + PCA_OVERSAMPLES)).astype(np.float32)
    basis = data @ torch.from_numpy(sample)  # (rows, l)
    for _ in range(PCA_POWER_ITERATIONS):  # float32 QR (numpy's would copy the factors in float64)
        basis = data.rmatmul(torch.linalg.qr(basis).Q)  # (V, l)
        basis = data @ torch.linalg.qr(basis).Q  # (rows, l)
    basis = torch.linalg.qr(basis).Q
    # SVD of B = (A.T @ basis).T (l, V) through B.T = Q R: B = W S (Q U).T for R = U S W.T,
    # an (l, l) SVD instead of an (l, V) one (exact; 10x faster at 50,000 features)
    q, r = torch.linalg.qr(data.rmatmul(basis))  # (V, l), (l, l)
    u_r, _, w_t = torch.linalg.svd(r)
    vt = (q @ u_r[:, :k]).T  # (k, V)
    u = basis @ w_t.T[:, :k]  # (rows, k): signs as scikit-learn's svd_flip (u-based)
    signs = torch.sign(u[u.abs().argmax(dim=0), torch.arange(k)])
    return (vt[:k] * signs[:, None]).numpy().astype(np.float32)


class _CentredRows:
    """The rows of sequences, standardised and centred, as a matrix known by its products.

    ``A = (X - c) * d`` with ``c`` the rows' mean and ``d = 1 / scale``: ``A @ Q`` is
    ``X @ (d * Q) - (c * d) @ Q`` and ``A.T @ Y`` is ``d * (X.T @ Y - c * sum(Y))``, taken
    block by block with torch's float32 products (views of the sequences, no copy), so no
    standardised copy exists.
    """

    def __init__(self, sequences, rows, standardizer):
        self.sequences, self.n_features = sequences, int(sequences[0].shape[1])
        self._block_rows = max(1, PCA_BLOCK_BYTES // (4 * self.n_features))
        self._pieces = _row_pieces([len(s) for s in sequences], rows, self.n_features)
        inverse = np.ones(self.n_features, np.float32)
        if standardizer is not None:
            inverse = (1.0 / standardizer.scale).astype(np.float32)
        self._inverse = torch.from_numpy(inverse)
        total, self.n_rows = np.zeros(self.n_features), 0
        for block in self._blocks():
            total += block.sum(dim=0, dtype=torch.float64).numpy()
            self.n_rows += len(block)
        self._centre = torch.from_numpy((total / self.n_rows).astype(np.float32))

    def _blocks(self):
        """Yield blocks of about ``PCA_BLOCK_BYTES``, short pieces packed into one buffer.

        Each product reads and writes the whole ``(n_features, l)`` factor, so blocks of a
        few rows would make it memory-bound; pieces as large as the buffer are views.
        """
        buffer, filled = None, 0
        for i, index in self._pieces:
            piece = np.asarray(self.sequences[i][index], dtype=np.float32)
            if len(piece) >= self._block_rows:
                yield read_only_tensor(piece)
                continue
            if buffer is None:
                buffer = torch.empty(self._block_rows, self.n_features)
            if filled + len(piece) > self._block_rows:
                yield buffer[:filled]
                filled = 0
            buffer[filled : filled + len(piece)] = read_only_tensor(piece)
            filled += len(piece)
        if filled:
            yield buffer[:filled]

    def __matmul__(self, q):
        scaled = self._inverse[:, None] * q
        shift = self._centre @ scaled
        return torch.cat([block @ scaled - shift for block in self._blocks()])

    def rmatmul(self, y):
        out, start = torch.zeros(self.n_features, y.shape[1]), 0
        for block in self._blocks():
            out.addmm_(block.T, y[start : start + len(block)])
            start += len(block)
        out -= self._centre[:, None] * y.sum(dim=0)
        return out * self._inverse[:, None]


def read_only_tensor(array):
    """Return a tensor sharing ``array``'s memory, only read (torch warns on read-only arrays)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _row_pieces(lengths, rows, n_features):
    """``(sequence, index)`` pieces of at most ``CHUNK_BYTES``: slices, or sampled row arrays."""
    step = max(1, CHUNK_BYTES // (4 * n_features))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    pieces = []
    for i, length in enumerate(lengths):
        if rows is None:
            pieces += [(i, slice(a, min(a + step, length))) for a in range(0, length, step)]
            continue
        mine = rows[(rows >= starts[i]) & (rows < starts[i + 1])] - starts[i]
        pieces += [(i, mine[a : a + step]) for a in range(0, len(mine), step)]
    return pieces


def batches_of_equal_length(sequences, batch_size, max_bytes=None):
    """Yield index arrays of sequences that share a length, at most ``batch_size`` each.

    With ``max_bytes``, a batch also holds at most about ``max_bytes`` of float32 values
    (at least one sequence).
    """
    lengths = np.array([len(s) for s in sequences])
    n_features = int(sequences[0].shape[1])
    for length in np.unique(lengths):
        size = int(batch_size)
        if max_bytes is not None:
            size = max(1, min(size, int(max_bytes) // max(4 * int(length) * n_features, 1)))
        indices = np.flatnonzero(lengths == length)
        for start in range(0, len(indices), size):
            yield indices[start : start + size]


def check_segment_length(sequences, segment_length, *, owner):
    """Raise a ValueError naming ``owner`` if a sequence is shorter than 3 segments."""
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
