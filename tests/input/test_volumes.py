import pickle

import nibabel as nib
import numpy as np
import pytest
import torch
from _helpers import VOLUME_FAST, mixed_volume_images, volume_image

from sklearn_tcssl import TemporalContrastiveEmbedder
from sklearn_tcssl._input.volumes import VolumeRun, bounding_grid, reads_volumes
from sklearn_tcssl.nn.volume import VolumeEncoder


def test_two_grids_train_and_embed_without_masker(tmp_path):
    images = mixed_volume_images(tmp_path)
    assert reads_volumes(images, "auto")
    embedder = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    Z = embedder.transform(images)
    assert Z.shape == (8, 8)
    assert Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert len(embedder.history_) == 2
    assert isinstance(embedder.net_.module_, VolumeEncoder)
    assert embedder.mean_.shape == (int(np.prod(embedder.grid_shape_)),)
    assert not hasattr(embedder, "n_features_in_")
    assert embedder.n_sequences_ == 8
    assert embedder.n_timepoints_ == 4 * 14 + sum(16 + i for i in range(4))
    assert 0 <= embedder.score(images, n_draws=1) <= 1
    # a new image of a third grid is resampled onto the training grid
    other = volume_image((7, 8, 6), 8.0, 10, seed=7)
    assert embedder.transform([other]).shape == (1, 8)


def test_same_seed_same_embeddings_and_pickle(tmp_path):
    images = mixed_volume_images(tmp_path, n_each=2)
    first = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    second = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    np.testing.assert_array_equal(first.transform(images), second.transform(images))
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.transform(images), first.transform(images))


def test_training_reads_only_the_windows(tmp_path, monkeypatch):
    images = mixed_volume_images(tmp_path, n_each=2)
    reads = []
    original = VolumeRun._resample

    def spy(self, start, stop):
        reads.append(stop - start)
        return original(self, start, stop)

    monkeypatch.setattr(VolumeRun, "_resample", spy)
    TemporalContrastiveEmbedder(standardize=False, **VOLUME_FAST).fit(images)
    # 2 epochs x 4 runs, each one window of 3 segments x 3 frames; nothing else is read
    assert reads == [9] * 8
    reads.clear()
    TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    # the standardisation pass streams each run once in chunks, then windows only
    assert max(reads) <= 32
    assert sum(reads[:-8]) == 2 * 14 + 16 + 17


def test_run_slices_match_whole_run_and_cache(tmp_path):
    image = volume_image((10, 12, 8), 6.0, 20, seed=0)
    path = tmp_path / "run.nii"
    nib.save(image, path)
    affine, shape = bounding_grid([image], 4.0)
    run = VolumeRun(nib.load(path), affine, shape)
    whole = run.read()
    assert whole.shape == (20, int(np.prod(shape)))
    np.testing.assert_allclose(run.read(5, 11), whole[5:11], rtol=1e-5, atol=1e-4)
    assert torch.equal(run[5:11], torch.from_numpy(run.read(5, 11)))

    cache = tmp_path / "cache"
    cached = VolumeRun(nib.load(path), affine, shape, cache_dir=cache)
    np.testing.assert_allclose(cached.read(5, 11), whole[5:11], rtol=1e-5, atol=1e-4)
    files = list(cache.glob("*.npy"))
    assert len(files) == 1
    # a second run object (or a DataLoader worker) reuses the cached file
    again = pickle.loads(pickle.dumps(VolumeRun(nib.load(path), affine, shape, cache_dir=cache)))
    np.testing.assert_array_equal(again.read(0, 20), cached.read(0, 20))
    assert list(cache.glob("*.npy")) == files
    # a modified file gets a new key, never a stale cache
    nib.save(volume_image((10, 12, 8), 6.0, 20, seed=1), path)
    VolumeRun(nib.load(path), affine, shape, cache_dir=cache).read(0, 1)
    assert len(list(cache.glob("*.npy"))) == 2


def test_image_on_the_grid_is_not_resampled():
    image = volume_image((5, 6, 4), 6.0, 9, seed=0)
    run = VolumeRun(image, image.affine, image.shape[:3])
    expected = np.moveaxis(image.get_fdata(dtype=np.float32), -1, 0).reshape(9, -1)
    np.testing.assert_array_equal(run.read(), expected)


def test_bounding_grid_covers_every_image():
    small = volume_image((10, 12, 8), 6.0, 2, seed=0, origin=(0, 0, 0))
    shifted = volume_image((5, 5, 5), 3.0, 2, seed=0, origin=(-12, 60, 3))
    affine, shape = bounding_grid([small, shifted], 3.0)
    assert np.allclose(np.diag(affine)[:3], 3.0)
    assert np.allclose(affine[:3, 3], [-12, 0, 0])
    assert shape == (1 + (54 + 12) // 3, 1 + 72 // 3, 1 + 42 // 3)


def test_cache_dir_gives_the_same_embeddings(tmp_path):
    images = mixed_volume_images(tmp_path, n_each=2)
    plain = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    cached = TemporalContrastiveEmbedder(cache_dir=tmp_path / "cache", **VOLUME_FAST).fit(images)
    np.testing.assert_allclose(cached.transform(images), plain.transform(images), atol=1e-4)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4


def test_volume_encoder_shapes():
    encoder = VolumeEncoder((9, 10, 7), n_components=6, projection_dim=5)
    windows = torch.randn(4, 3, 2, 9 * 10 * 7)
    assert encoder(windows).shape == (4, 3, 5)
    assert encoder.embed(torch.randn(2, 11, 630)).shape == (2, 6)


# ---------------------------------------------------------------- errors
def test_volume_errors(tmp_path):
    flat = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.float32), np.eye(4))
    with pytest.raises(ValueError, match=r"X\[0\] has shape \(4, 4, 4\); .* needs 4D"):
        TemporalContrastiveEmbedder(**VOLUME_FAST).fit([flat])
    with pytest.raises(FileNotFoundError, match=r"X\[0\] = 'missing.nii' is not an existing"):
        TemporalContrastiveEmbedder(input="volumes", **VOLUME_FAST).fit(["missing.nii"])
    with pytest.raises(TypeError, match=r"X\[0\] is a ndarray; with input='volumes'"):
        TemporalContrastiveEmbedder(input="volumes", **VOLUME_FAST).fit([np.zeros((12, 5))])
    with pytest.raises(ValueError, match="target_voxel_size=0 is not allowed"):
        TemporalContrastiveEmbedder(**{**VOLUME_FAST, "target_voxel_size": 0}).fit([flat])
    with pytest.raises(ValueError, match="input='images' is not allowed"):
        TemporalContrastiveEmbedder(input="images", **VOLUME_FAST).fit([flat])


def test_form_mismatch_between_fit_and_transform(tmp_path):
    images = mixed_volume_images(tmp_path, n_each=1)
    embedder = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    with pytest.raises(ValueError, match="was fitted on 4D images and must be given the same"):
        embedder.transform([np.zeros((12, 5), dtype=np.float32)])
    rng = np.random.default_rng(0)
    arrays = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(
        [rng.normal(size=(12, 5)) for _ in range(4)]
    )
    with pytest.raises(ValueError, match="fitted on arrays of sequences"):
        arrays.transform(images)


def test_input_sequences_keeps_images_out():
    image = volume_image((4, 4, 4), 6.0, 12, seed=0)
    with pytest.raises(TypeError, match="put a masker"):
        TemporalContrastiveEmbedder(input="sequences", **VOLUME_FAST).fit([image])
