"""Training from memory-mapped and ``.npy`` runs: used in place, same results as in memory."""

import tracemalloc
import warnings

import numpy as np
import pytest

from sklearn_tcssl import TemporalContrastiveEmbedder
from sklearn_tcssl._input import validation
from sklearn_tcssl._input.validation import check_sequences, is_memory_mapped
from sklearn_tcssl._input.volumes import reads_volumes
from sklearn_tcssl._training.checkpoint import data_digest
from sklearn_tcssl._utils.exceptions import DamagedFileError


def _runs(n_runs=3, n_timepoints=40, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((n_timepoints + 3 * i, n_features)).astype(np.float32)
        for i in range(n_runs)
    ]


@pytest.fixture
def saved_runs(tmp_path):
    runs = _runs()
    paths = []
    for i, run in enumerate(runs):
        paths.append(tmp_path / f"run-{i}.npy")
        np.save(paths[-1], run)
    return runs, paths


def _fit(X):
    params = {"n_components": 4, "max_epochs": 2, "batch_size": 8, "random_state": 0}
    return TemporalContrastiveEmbedder(**params).fit(X)


def test_paths_and_memmaps_train_exactly_as_arrays_in_memory(saved_runs):
    runs, paths = saved_runs
    expected = _fit(runs).transform(runs)
    maps = [np.load(p, mmap_mode="r") for p in paths]
    np.testing.assert_array_equal(_fit(maps).transform(maps), expected)
    np.testing.assert_array_equal(_fit([str(p) for p in paths]).transform(paths), expected)


def test_memmaps_train_alike_where_the_platform_has_no_preadv(saved_runs, monkeypatch):
    runs, paths = saved_runs
    expected = _fit(runs).transform(runs)
    monkeypatch.delattr("os.preadv")  # Windows, some macOS builds: rows read through the map
    maps = [np.load(p, mmap_mode="r") for p in paths]
    np.testing.assert_array_equal(_fit(maps).transform(maps), expected)


def test_float32_memmaps_are_used_in_place(saved_runs):
    _, paths = saved_runs
    maps = [np.load(p, mmap_mode="r") for p in paths]
    assert all(is_memory_mapped(s) for s in check_sequences(paths, estimator_name="E"))
    for given, checked in zip(maps, check_sequences(maps, estimator_name="E")):
        assert np.shares_memory(given, checked)
    assert not is_memory_mapped(np.zeros(3))


def test_fit_on_memmaps_never_copies_the_corpus(tmp_path):
    # 16 MiB of runs on disk; numpy allocations (traced) stay far below one copy of them
    paths = []
    for i, run in enumerate(_runs(n_runs=8, n_timepoints=1000, n_features=512)):
        paths.append(tmp_path / f"run-{i}.npy")
        np.save(paths[-1], run)
    corpus = sum(p.stat().st_size for p in paths)
    tracemalloc.start()
    try:
        TemporalContrastiveEmbedder(n_components=8, max_epochs=1, random_state=0).fit(paths)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < corpus / 2, f"numpy peak {peak / 2**20:.1f} MiB for {corpus / 2**20:.1f} MiB"


def test_npy_paths_are_sequences_not_images(saved_runs):
    _, paths = saved_runs
    assert not reads_volumes(paths, "auto")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (np.zeros((5, 3)), "holds float64; .npy runs are read from disk"),
        (np.zeros((5, 3), np.float32, order="F"), "float32 in Fortran order"),
        (np.zeros((2, 5, 3), np.float32), r"shape \(2, 5, 3\); a .npy run must be 2D"),
    ],
)
def test_npy_run_that_would_need_a_copy_is_refused(tmp_path, content, match):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(ValueError, match=match) as info:
        check_sequences([path], estimator_name="E")
    assert "X[0]=" in str(info.value) and str(path) in str(info.value)


def test_missing_or_damaged_npy_run_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"X\[0\]=.*nope.npy' does not exist"):
        check_sequences([tmp_path / "nope.npy"], estimator_name="E")
    damaged = tmp_path / "damaged.npy"
    damaged.write_bytes(b"not numpy")
    with pytest.raises(DamagedFileError, match="cannot be read as a .npy array"):
        check_sequences([damaged], estimator_name="E")


def test_memmap_that_needs_converting_warns_with_the_fix(saved_runs, tmp_path):
    path = tmp_path / "float64.npy"
    np.save(path, saved_runs[0][0].astype(np.float64))
    with pytest.warns(UserWarning, match="memory map of float64 data: it was copied"):
        (checked,) = check_sequences([np.load(path, mmap_mode="r")], estimator_name="E")
    assert checked.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sequences([saved_runs[0][0].astype(np.float64)], estimator_name="E")


def test_values_are_checked_across_blocks(monkeypatch):
    monkeypatch.setattr(validation, "CHUNK_BYTES", 64)  # 4 rows of 4 float32 per block
    run = np.zeros((40, 4), np.float32)
    run[1, 0], run[37, 2], run[38, 1] = np.nan, np.inf, np.nan
    with pytest.raises(ValueError, match=r"X\[0\] contains NaN or infinity \(2 NaN, 1 inf"):
        check_sequences([run], estimator_name="E")
    run = np.zeros((40, 4), np.float32)
    run[39, 3] = -1e20
    with pytest.raises(ValueError, match=r"X\[0\] has values up to 1e\+20"):
        check_sequences([run], estimator_name="E")


def test_data_digest_of_a_memmap_is_that_of_its_array(saved_runs):
    runs, paths = saved_runs
    assert data_digest([np.load(p, mmap_mode="r") for p in paths]) == data_digest(runs)


def test_file_rows_read_the_arrays_own_bytes(saved_runs):
    import pickle

    from sklearn_tcssl._input.files import FileRows, file_position

    runs, paths = saved_runs
    whole = np.load(paths[2], mmap_mode="r")
    for view, expected in [(whole, runs[2]), (whole[5:17], runs[2][5:17])]:
        rows = FileRows(np.ascontiguousarray(view))
        np.testing.assert_array_equal(rows[2:9].numpy(), expected[2:9])
        np.testing.assert_array_equal(rows[np.array([0, 3, 3, 7])].numpy(), expected[[0, 3, 3, 7]])
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(rows))[:].numpy(), expected)
    assert file_position(runs[0]) is None and file_position(whole[:, :2]) is None
    assert data_digest([FileRows(whole)]) == data_digest([runs[2]])
