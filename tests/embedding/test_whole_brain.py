"""Whole-brain models end to end: save/load with the grid, fine-tuning on 4D images."""

import json
import struct

import nibabel as nib
import numpy as np
import pytest
import torch
from _helpers import VOLUME_FAST, mixed_volume_images, volume_image
from sklearn.frozen import FrozenEstimator

from sklearn_tcssl import (
    IncompatibleModelError,
    NetworkMasker,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    load,
)
from sklearn_tcssl.baselines import BlockMeanPattern
from sklearn_tcssl.io import read_card
from sklearn_tcssl.nn.volume import VolumeEncoder

CLF = {k: v for k, v in VOLUME_FAST.items() if k != "segment_length"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return mixed_volume_images(tmp_path_factory.mktemp("runs"), n_each=3)


@pytest.fixture(scope="module")
def pretrained(images):
    return TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)


def _labels(n):
    return np.array(["faces", "houses"])[np.arange(n) % 2]


def test_volume_model_round_trip_gives_identical_embeddings(images, pretrained, tmp_path):
    path = pretrained.save(tmp_path / "brain.safetensors")
    card = read_card(path)
    assert card["architecture"]["name"] == "VolumeEncoder"
    assert card["input"]["form"] == "volumes"
    assert card["input"]["grid_shape"] == list(pretrained.grid_shape_)
    assert "cache_dir" not in card["params"] or card["params"]["cache_dir"] is None
    loaded = load(path)
    assert isinstance(loaded.net_.module_, VolumeEncoder)
    np.testing.assert_array_equal(loaded.grid_affine_, pretrained.grid_affine_)
    np.testing.assert_array_equal(loaded.transform(images), pretrained.transform(images))


def _edit_card(path, edit):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    card = json.loads(header["__metadata__"]["tcssl_card"])
    edit(card)
    header["__metadata__"]["tcssl_card"] = json.dumps(card)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + n :])


def test_grid_is_checked_on_load(pretrained, tmp_path):
    path = pretrained.save(tmp_path / "brain.safetensors")

    def wrong_grid(card):
        card["input"]["grid_shape"] = [2, 2, 2]

    _edit_card(path, wrong_grid)
    with pytest.raises(IncompatibleModelError, match=r"grid \(2, 2, 2\) disagrees"):
        load(path)


def test_classifier_on_4d_images_from_scratch(images):
    y = _labels(len(images))
    clf = TemporalContrastiveClassifier(**CLF).fit(images, y)
    assert isinstance(clf.net_.module_.encoder, VolumeEncoder)
    proba = clf.predict_proba(images)
    assert proba.shape == (len(images), 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(images)) <= {"faces", "houses"}
    assert clf.embed(images).shape == (len(images), 8)


@pytest.mark.parametrize("freeze", [True, False])
def test_classifier_fine_tunes_a_pretrained_volume_encoder(images, pretrained, tmp_path, freeze):
    path = pretrained.save(tmp_path / "brain.safetensors")
    y = _labels(len(images))
    start = {k: v.clone() for k, v in pretrained.net_.module_.state_dict().items()}
    for init_from in (FrozenEstimator(pretrained), path):
        clf = TemporalContrastiveClassifier(init_from=init_from, freeze_encoder=freeze, **CLF)
        clf.fit(images, y)
        np.testing.assert_array_equal(clf.grid_affine_, pretrained.grid_affine_)
        after = clf.net_.module_.encoder.state_dict()
        same = all(torch.equal(start[k], after[k]) for k in start)
        assert same == freeze
        assert clf.predict(images).shape == (len(images),)
    # a classifier fitted on volumes saves and loads too
    again = load(clf.save(tmp_path / "clf.safetensors"))
    np.testing.assert_allclose(again.predict_proba(images), clf.predict_proba(images), atol=1e-6)


def test_pretrained_grid_is_used_for_new_images(pretrained):
    other = [volume_image((7, 8, 6), 8.0, 12, seed=s) for s in range(4)]
    clf = TemporalContrastiveClassifier(init_from=FrozenEstimator(pretrained), **CLF)
    clf.fit(other, _labels(4))
    assert clf.grid_shape_ == pretrained.grid_shape_


def test_missing_file_at_transform_is_named(pretrained):
    with pytest.raises(FileNotFoundError, match=r"X\[0\] = 'gone\.nii' is not an existing file"):
        pretrained.transform(["gone.nii"])


def test_volume_encoder_cannot_start_a_sequence_model(pretrained):
    X = [np.zeros((12, 5), dtype=np.float32)] * 4
    with pytest.raises(IncompatibleModelError, match="init_from is an encoder of 4D images"):
        TemporalContrastiveClassifier(init_from=FrozenEstimator(pretrained), **CLF).fit(
            X, _labels(4)
        )


def _on_grid_image(n_frames, value=105.0):
    data = np.full((4, 4, 4, n_frames), value, dtype=np.float32)
    data += np.arange(n_frames, dtype=np.float32)
    return nib.Nifti1Image(data, np.diag([8.0, 8.0, 8.0, 1.0]))


def test_inputs_are_never_written():
    images = [_on_grid_image(12) for _ in range(3)]
    for img in images:
        img.dataobj.setflags(write=False)  # writing would raise
    before = [np.array(img.dataobj) for img in images]
    embedder = TemporalContrastiveEmbedder(**VOLUME_FAST).fit(images)
    one_frame = _on_grid_image(1)
    one_frame.dataobj.setflags(write=False)
    embedder.transform([one_frame])
    clf = TemporalContrastiveClassifier(**CLF).fit(images, _labels(3))
    clf.predict(images)
    for img, data in zip(images, before):
        np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    assert float(np.asarray(one_frame.dataobj).mean()) == 105.0


def test_writable_in_memory_image_is_not_standardised_in_place():
    image = _on_grid_image(12)
    embedder = TemporalContrastiveEmbedder(**VOLUME_FAST).fit([image, _on_grid_image(12, 50.0)])
    single = _on_grid_image(1)
    embedder.transform([single])
    assert float(np.asarray(single.dataobj).mean()) == 105.0
    assert float(np.asarray(image.dataobj).mean()) == pytest.approx(105.0 + 5.5)


def test_read_only_arrays_at_every_entry_point():
    from _helpers import smooth_sequences

    X = smooth_sequences(6, 12, 5)
    for x in X:
        x.setflags(write=False)
    copies = [x.copy() for x in X]
    y = np.arange(6) % 2
    embedder = TemporalContrastiveEmbedder(**{**VOLUME_FAST, "n_components": 4}).fit(X)
    embedder.transform(X)
    embedder.score(X, n_draws=1)
    clf = TemporalContrastiveClassifier(**{**CLF, "n_components": 4}).fit(X, y)
    clf.predict_proba(X)
    clf.embed(X)
    BlockMeanPattern().fit(X).transform(X)
    for x, copy in zip(X, copies):
        np.testing.assert_array_equal(x, copy)


def test_network_masker_never_writes_the_images():
    labels = np.zeros((8, 8, 8), dtype=np.int8)
    labels[:4], labels[4:] = 1, 7
    atlas = nib.Nifti1Image(labels, np.eye(4))
    data = np.random.default_rng(0).random((4, 4, 4, 10)).astype(np.float32)
    data.setflags(write=False)
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    before = np.array(image.dataobj)
    NetworkMasker("visual", atlas=atlas).fit_transform([image])
    np.testing.assert_array_equal(np.asarray(image.dataobj), before)


def test_embedder_continues_pretraining_on_images(images, pretrained, tmp_path):
    path = pretrained.save(tmp_path / "brain.safetensors")
    continued = TemporalContrastiveEmbedder(
        **{**VOLUME_FAST, "max_epochs": 1}, init_from=path, standardize="pretrained"
    ).fit(images[:3])
    np.testing.assert_array_equal(continued.mean_, pretrained.mean_)
    assert continued.grid_shape_ == pretrained.grid_shape_
    assert continued.init_card_["file"] == str(path)
    assert continued.transform(images[:2]).shape == (2, 8)
