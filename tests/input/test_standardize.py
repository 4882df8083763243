"""The one standardisation rule, the PCA initialisation and the one-buffer view."""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from sklearn_tcssl._input.sequences import common_buffer, principal_axes
from sklearn_tcssl._input.standardize import Standardizer


def _data(seed=0, n=(40, 7, 55), v=6):
    rng = np.random.default_rng(seed)
    X = [rng.normal(3.0, 2.0, size=(t, v)).astype(np.float32) for t in n]
    for x in X:
        x[:, 2] = 5.0  # constant feature
        x[:, 4] *= 1e-12  # tiny but not constant
    return X


def test_statistics_match_standard_scaler_in_chunks():
    X = _data()
    reference = StandardScaler().fit(np.concatenate(X).astype(np.float64))
    ours = Standardizer.fit(X, chunk_bytes=4 * 6 * 3)  # 3 rows per chunk: many merges
    np.testing.assert_allclose(ours.mean, reference.mean_, rtol=1e-6)
    np.testing.assert_allclose(ours.scale, reference.scale_, rtol=1e-5)
    assert ours.scale[2] == 1.0  # scikit-learn's zero-scale rule


def test_numpy_and_torch_in_place_agree_and_never_write_the_input():
    X = _data()
    st = Standardizer.fit(X)
    before = X[0].copy()
    out = st.transform(X[0])
    assert np.array_equal(X[0], before)
    tensor = torch.from_numpy(X[0].copy())
    st.apply_(tensor)
    array = X[0].copy()
    st.apply_(array)
    assert np.array_equal(out, tensor.numpy()) and np.array_equal(out, array)
    np.testing.assert_allclose(st.transform(np.concatenate(X))[:, [0, 1]].std(0), 1, rtol=1e-4)


def test_identity_changes_nothing():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(Standardizer.identity(3).transform(x), x)


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="at least one time point"):
        Standardizer.fit([])


def test_common_buffer_is_a_view_of_a_3d_array_only():
    X = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    flat = common_buffer(list(X))
    assert flat is not None and np.shares_memory(flat, X)
    assert np.array_equal(flat, X.reshape(-1, 3))
    assert common_buffer([x.copy() for x in X]) is None
    assert common_buffer([X[0], X[2]]) is None  # not consecutive


def _low_rank(seed, n_rows=3000, n_features=400, rank=30, low=1.0):
    rng = np.random.default_rng(seed)
    spectrum = np.linspace(10, low, rank)
    basis = np.linalg.qr(rng.normal(size=(n_features, rank)))[0]
    latent = rng.normal(size=(n_rows, rank)) * spectrum
    data = latent @ basis.T + 0.5 * rng.normal(size=(n_rows, n_features))
    return [part.astype(np.float32) for part in np.array_split(data, 30)]


def _exact_axes(X, st, k):
    A = np.concatenate(X).astype(np.float64)
    if st is not None:
        A = (A - st.mean) / st.scale
    A -= A.mean(axis=0)
    return np.linalg.svd(A, full_matrices=False)[2][:k]


@pytest.mark.parametrize("standardize", [True, False])
def test_principal_axes_span_the_exact_subspace(standardize):
    X = _low_rank(0)
    st = Standardizer.fit(X) if standardize else None
    ours = principal_axes(X, 10, seed=0, standardizer=st)
    exact = _exact_axes(X, st, 10)
    cosines = np.linalg.svd(ours.astype(np.float64) @ exact.T, compute_uv=False)
    assert ours.shape == (10, 400) and ours.dtype == np.float32
    assert cosines.min() > 0.99
    np.testing.assert_allclose(ours @ ours.T, np.eye(10), atol=1e-4)


def test_principal_axes_do_not_depend_on_how_rows_are_packed_into_blocks(monkeypatch):
    import sklearn_tcssl._input.sequences as sequences

    X = _low_rank(2)
    st = Standardizer.fit(X)
    whole = principal_axes(X, 10, seed=0, standardizer=st)
    monkeypatch.setattr(sequences, "PCA_BLOCK_BYTES", 4 * 400 * 7)  # 7 rows: packed, split
    packed = principal_axes(X, 10, seed=0, standardizer=st)
    np.testing.assert_allclose(packed, whole, atol=2e-4)  # same axes, same signs


def test_principal_axes_sample_rows_beyond_the_limit_and_are_seeded():
    X = _low_rank(1, rank=5, low=5.0)  # a clear gap after the 5th axis
    a = principal_axes(X, 5, seed=3, max_rows=1000)
    assert np.array_equal(a, principal_axes(X, 5, seed=3, max_rows=1000))
    exact = _exact_axes(X, None, 5)
    assert np.linalg.svd(a.astype(np.float64) @ exact.T, compute_uv=False).min() > 0.95


def test_validation_makes_no_copy_of_float32_data():
    import tracemalloc

    from sklearn_tcssl._input.validation import check_sequences

    X = np.random.default_rng(0).normal(size=(20, 100, 500)).astype(np.float32)  # 4 MB
    tracemalloc.start()
    sequences = check_sequences(X, estimator_name="test")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert all(np.shares_memory(s, X) for s in sequences)
    assert peak < 0.05 * X.nbytes  # no float64, absolute-value or boolean copy


def test_non_finite_values_are_still_found():
    from sklearn_tcssl._input.validation import check_sequences

    X = np.ones((2, 5, 3), dtype=np.float64)
    X[1, 2, 0] = np.inf
    with pytest.raises(ValueError, match=r"0 NaN, 1 inf"):
        check_sequences(X, estimator_name="test")
    huge = np.full((2, 5, 3), 1e300)  # a float64 sum overflows, the values are finite
    with pytest.raises(ValueError, match="beyond 1e\\+15"):
        check_sequences(huge, estimator_name="test")
