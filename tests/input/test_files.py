"""Damaged image files and the volume cache (sklearn_tcssl._input.files)."""

import os
import shutil
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sklearn_tcssl import DamagedFileError, TemporalContrastiveEmbedder
from sklearn_tcssl._input.files import check_image_file, file_identity
from sklearn_tcssl.datasets import extract_blocks

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
FAST = {"n_components": 4, "max_epochs": 2, "batch_size": 2, "random_state": 0}


def _save(path, seed=0, shape=(5, 5, 5, 60)):
    data = np.random.default_rng(seed).normal(100, 5, size=shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    return path


def _events():
    return pd.DataFrame(
        {"onset": [10.0, 60.0], "duration": [20.0, 20.0], "trial_type": ["a", "b"]}
    )


def test_corrupted_deflate_stream_is_refused_not_read_as_wrong_values(tmp_path):
    path = _save(tmp_path / "bold.nii.gz")
    raw = bytearray(path.read_bytes())
    for offset in range(len(raw) // 2, len(raw) // 2 + 64, 8):  # damage the middle
        raw[offset] ^= 0x55
    path.write_bytes(bytes(raw))
    with pytest.raises(DamagedFileError, match=r"bold\.nii\.gz' is damaged: the gzip"):
        extract_blocks(path, _events(), 2.0)


def test_intact_files_pass_and_are_verified_once(tmp_path, monkeypatch):
    path = _save(tmp_path / "bold.nii.gz")
    img = nib.load(path)
    check_image_file(img)
    calls = []
    monkeypatch.setattr("sklearn_tcssl._input.files._verify_gzip", lambda p: calls.append(p))
    check_image_file(img)
    assert calls == []  # remembered for this file identity
    blocks, labels = extract_blocks(path, _events(), 2.0)
    assert len(blocks) == 2


def test_file_identity_changes_when_cp_p_replaces_a_file(tmp_path):
    a, b = _save(tmp_path / "a.nii", seed=0), _save(tmp_path / "b.nii", seed=1)
    os.utime(b, ns=(os.stat(a).st_atime_ns, os.stat(a).st_mtime_ns))
    before = file_identity(a)
    assert os.stat(a).st_size == os.stat(b).st_size
    shutil.copy2(b, a)  # cp -p: same size, same modification time, other content
    assert os.stat(a).st_mtime_ns == os.stat(b).st_mtime_ns
    assert file_identity(a) != before


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_volume_cache_is_not_stale_after_cp_p(tmp_path, suffix):
    a = _save(tmp_path / f"a{suffix}", seed=0, shape=(5, 5, 5, 12))
    b = _save(tmp_path / f"b{suffix}", seed=1, shape=(5, 5, 5, 12))
    mtime = os.stat(a).st_mtime_ns
    cache = tmp_path / "cache"
    embedder = TemporalContrastiveEmbedder(**FAST, input="volumes", cache_dir=cache).fit([a, b])
    first = embedder.transform([a])
    shutil.copy2(b, a)
    os.utime(a, ns=(mtime, mtime))  # as rsync -a of a file with the same times
    np.testing.assert_array_equal(embedder.transform([a]), embedder.transform([b]))
    assert not np.allclose(embedder.transform([a]), first)


def test_damaged_cache_entry_is_rebuilt_with_the_same_result(tmp_path):
    path = _save(tmp_path / "bold.nii", shape=(5, 5, 5, 12))
    cache = tmp_path / "cache"
    params = {**FAST, "input": "volumes", "cache_dir": cache}
    reference = TemporalContrastiveEmbedder(**params).fit([path]).transform([path])
    (entry,) = cache.glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:200])
    with pytest.warns(UserWarning, match="cache entry .* is damaged .*rebuilt"):
        again = TemporalContrastiveEmbedder(**params).fit([path]).transform([path])
    np.testing.assert_array_equal(again, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TemporalContrastiveEmbedder(**params).fit([path])  # the rebuilt entry is fine
