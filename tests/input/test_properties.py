"""Property-based tests (hypothesis) for input conversion and window sampling.

Any input either converts to the documented form or raises one of the documented errors;
window draws always have the right shape and come from contiguous time points.
"""

import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sklearn_tcssl._input.validation import check_sequences
from sklearn_tcssl.nn.windows import TripletWindowDataset, windows_per_sequence

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME = "Estimator"
DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.bool_,
]
# Messages check_sequences may raise: anything else is a bug.
DOCUMENTED = (
    r"contains NaN or infinity|has values up to|features per time point|time points, but"
    r"|empty list|0 samples|dimension\(s\)|is ragged|cannot be converted to float"
    r"|complex values|expects a list of 2D arrays|is a sparse matrix|not an array"
)


@st.composite
def sequence_lists(draw, *, finite=True):
    """A list of 1-5 arrays (T_i, V) sharing V, of one dtype; values finite and moderate."""
    dtype = draw(st.sampled_from(DTYPES))
    n_features = draw(st.integers(1, 6))
    lengths = draw(st.lists(st.integers(1, 20), min_size=1, max_size=5))
    if np.dtype(dtype).kind == "f":
        elements = st.floats(-1e4, 1e4, width=16)
        if not finite:
            elements = st.one_of(elements, st.sampled_from([np.nan, np.inf, -np.inf]))
    else:
        elements = None  # the dtype's full range
    arrays = [
        draw(hnp.arrays(dtype, (length, n_features), elements=elements)) for length in lengths
    ]
    return arrays


@SETTINGS
@given(sequence_lists())
def test_list_converts_to_float32_with_same_shapes_and_values(arrays):
    largest = max(float(np.abs(a.astype(np.float64)).max()) for a in arrays)
    if largest > 1e15:  # e.g. int64 extremes: refused, float32 training would overflow
        with pytest.raises(ValueError, match=r"X\[\d+\] has values up to .*Rescale"):
            check_sequences(arrays, estimator_name=NAME)
        return
    out = check_sequences(arrays, estimator_name=NAME)
    assert len(out) == len(arrays)
    for array, sequence in zip(arrays, out):
        assert sequence.dtype == np.float32
        assert sequence.flags.c_contiguous
        assert sequence.shape == array.shape
        np.testing.assert_array_equal(sequence, array.astype(np.float32))
        assert np.isfinite(sequence).all()


@SETTINGS
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int32]),
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=8),
        elements=st.integers(-100, 100),
    )
)
def test_3d_array_gives_one_sequence_per_sample(X):
    out = check_sequences(X, estimator_name=NAME)
    assert len(out) == X.shape[0]
    assert all(s.shape == X.shape[1:] and s.dtype == np.float32 for s in out)
    np.testing.assert_array_equal(np.stack(out), X.astype(np.float32))


@SETTINGS
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=10),
        elements=st.floats(-10, 10),
    )
)
def test_2d_array_gives_univariate_series(X):
    out = check_sequences(X, estimator_name=NAME)
    assert len(out) == X.shape[0]
    assert all(s.shape == (X.shape[1], 1) for s in out)


@SETTINGS
@given(sequence_lists(finite=False))
def test_non_finite_values_raise_the_documented_error(arrays):
    bad = any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in arrays)
    if bad:
        with pytest.raises(ValueError, match=r"X\[\d+\] contains NaN or infinity"):
            check_sequences(arrays, estimator_name=NAME)
    else:
        largest = max(float(np.abs(a.astype(np.float64)).max()) for a in arrays)
        assume(largest <= 1e15)
        assert len(check_sequences(arrays, estimator_name=NAME)) == len(arrays)


@SETTINGS
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=5),
    st.integers(1, 10),
    st.one_of(st.none(), st.integers(1, 5)),
    st.integers(1, 8),
)
def test_feature_counts_and_lengths(feature_counts, length, n_features, min_length):
    arrays = [np.zeros((length, v), dtype=np.float32) for v in feature_counts]
    reference = feature_counts[0] if n_features is None else n_features
    if any(v != reference for v in feature_counts):
        with pytest.raises(ValueError, match=r"features per time point.*same mask"):
            check_sequences(arrays, estimator_name=NAME, n_features=n_features)
    elif length < min_length:
        with pytest.raises(ValueError, match=rf"has {length} time points, but {NAME} needs"):
            check_sequences(arrays, estimator_name=NAME, min_length=min_length)
    else:
        out = check_sequences(arrays, estimator_name=NAME, n_features=n_features)
        assert [s.shape for s in out] == [(length, v) for v in feature_counts]


_junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
    ),
    lambda children: st.lists(children, max_size=4),
    max_leaves=12,
)


@SETTINGS
@given(_junk)
def test_arbitrary_input_converts_or_raises_a_documented_error(X):
    try:
        out = check_sequences(X, estimator_name=NAME)
    except (ValueError, TypeError) as exc:
        assert re.search(DOCUMENTED, str(exc)), str(exc)
    else:
        assert all(s.ndim == 2 and s.dtype == np.float32 for s in out)
        assert all(np.isfinite(s).all() for s in out)


# ----------------------------------------------------------------------------- windows
@st.composite
def window_problems(draw):
    segment_length = draw(st.integers(1, 6))
    n_features = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(3 * segment_length, 40), min_size=1, max_size=5))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16]))
    return segment_length, n_features, lengths, dtype


def _time_coded(length, n_features, dtype, shift=0):
    """A sequence whose value at time t is t + shift, in every feature."""
    times = torch.arange(shift, shift + length, dtype=torch.float64)[:, None]
    return times.repeat(1, n_features).to(dtype)


@SETTINGS
@given(window_problems(), st.integers(0, 2**31 - 1))
def test_windows_have_the_right_shape_and_are_contiguous(problem, seed):
    segment_length, n_features, lengths, dtype = problem
    sequences = [_time_coded(t, n_features, dtype, 100 * i) for i, t in enumerate(lengths)]
    dataset = TripletWindowDataset(sequences, segment_length)
    sampler = dataset.sampler(4, generator=torch.Generator().manual_seed(seed))
    counts = windows_per_sequence(lengths, 3 * segment_length)  # windows of each sequence
    assert len(dataset) == counts.sum() == sampler.n_windows
    seen = []
    for draws in sampler:
        windows, targets = dataset[draws]
        assert (targets == 0).all()
        assert windows.shape == (len(draws), 3, segment_length, n_features)
        assert windows.dtype == dtype
        for (i, _), window in zip(draws, windows):
            seen.append(i)
            times = window[..., 0].flatten().double() - 100 * i
            start = int(times[0])
            assert 0 <= start <= lengths[i] - 3 * segment_length
            expected = torch.arange(start, start + 3 * segment_length, dtype=torch.float64)
            torch.testing.assert_close(times, expected, rtol=0, atol=0.5)  # float16 rounds
            assert bool((window == window[..., :1]).all())  # every feature: one time point
    assert np.bincount(seen, minlength=len(lengths)).tolist() == counts.tolist()


@SETTINGS
@given(window_problems(), st.integers(0, 2**31 - 1))
def test_seeded_windows_are_reproducible(problem, seed):
    segment_length, n_features, lengths, dtype = problem
    sequences = [torch.randn(t, n_features).to(dtype) for t in lengths]
    dataset = TripletWindowDataset(sequences, segment_length)

    def draw():
        sampler = dataset.sampler(3, generator=torch.Generator().manual_seed(seed))
        return [dataset[draws][0] for draws in sampler]

    assert all(torch.equal(a, b) for a, b in zip(draw(), draw()))


@SETTINGS
@given(
    st.integers(1, 6),
    st.lists(st.integers(1, 30), min_size=1, max_size=5),
)
def test_too_short_sequences_raise_exactly_when_shorter_than_the_window(segment_length, lengths):
    sequences = [torch.zeros(t, 2) for t in lengths]
    window = 3 * segment_length
    short = [i for i, t in enumerate(lengths) if t < window]
    if short:
        match = rf"Sequence {short[0]} has {lengths[short[0]]} time points, fewer than the window"
        with pytest.raises(ValueError, match=match):
            TripletWindowDataset(sequences, segment_length)
    else:
        dataset = TripletWindowDataset(sequences, segment_length)
        draws = torch.tensor([[len(lengths) - 1, 0]])
        assert dataset[draws][0].shape == (1, 3, segment_length, 2)
