"""Aligners in model files: identical outputs after load, and the same checks as other models."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from sklearn_tcssl import (
    IncompatibleModelError,
    SharedResponseAligner,
    TemporalContrastiveAligner,
    load,
    save,
)
from sklearn_tcssl.datasets import make_time_locked_fmri
from sklearn_tcssl.io import read_card

FAST = dict(n_components=5, segment_length=4, max_epochs=2, batch_size=16, random_state=0)
NAMES = ["sub-01", "sub-02", 3, "sub-04", 5]


@pytest.fixture(scope="module")
def data():
    return make_time_locked_fmri(
        6, n_timepoints=120, n_features=24, n_components=5, n_scenes=4, noise=1.0, random_state=0
    )


def _aligners():
    return [
        SharedResponseAligner(5, random_state=0, validation_fraction=0.2),
        TemporalContrastiveAligner(**FAST),
    ]


@pytest.fixture(scope="module", params=[0, 1], ids=["srm", "contrastive"])
def fitted(request, data):
    aligner = _aligners()[request.param]
    aligner.fit(data.runs[:5], subjects=NAMES)
    aligner.add_subjects(data.runs[5:], subjects=["late"])  # saved too
    return aligner


def test_round_trip_gives_identical_outputs(tmp_path, data, fitted):
    loaded = load(save(fitted, tmp_path / "aligner.safetensors"))
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.subjects_ == fitted.subjects_ == NAMES
    subjects = ["late", 3, "sub-01"]
    blocks = data.blocks[:3]
    for a, b in zip(
        fitted.transform(blocks, subjects=subjects), loaded.transform(blocks, subjects=subjects)
    ):
        np.testing.assert_array_equal(a, b)
    if hasattr(fitted, "embed"):
        np.testing.assert_array_equal(
            fitted.embed(blocks, subjects=subjects), loaded.embed(blocks, subjects=subjects)
        )
    for aligner in (fitted, loaded):
        aligner.add_subjects([data.runs[0]], subjects=["new"])
    np.testing.assert_array_equal(fitted.weights_["new"], loaded.weights_["new"])
    assert fitted.score(data.runs[:5], subjects=NAMES) == loaded.score(
        data.runs[:5], subjects=NAMES
    )
    for aligner in (fitted, loaded):
        del aligner.weights_["new"], aligner._stats_["new"]


def test_card_describes_the_aligner(tmp_path, fitted):
    path = save(fitted, tmp_path / "a.safetensors", t_r=1.5, input_info={"space": "MNI"})
    card = read_card(path)
    assert card["estimator"] == type(fitted).__name__
    assert card["subjects"] == [*NAMES, "late"] and card["n_fitted_subjects"] == 5
    assert card["n_features"] == [24] * 6 and card["input"]["t_r"] == 1.5
    assert (card.get("validation_scores") is not None) == (fitted.validation_fraction is not None)


def test_unfitted_aligner_and_mask_are_refused(tmp_path, fitted):
    with pytest.raises(Exception, match="not fitted"):
        save(SharedResponseAligner(), tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="mask= is not recorded"):
        save(fitted, tmp_path / "x.safetensors", mask="mask.nii.gz")


def _rewrite(path, edit_card=None, edit_tensors=None):
    from safetensors.numpy import load_file
    from safetensors.numpy import save as save_numpy

    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    card = json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["tcssl_card"])
    tensors = load_file(str(path))
    if edit_card:
        edit_card(card)
    if edit_tensors:
        edit_tensors(tensors)
    path.write_bytes(save_numpy(tensors, metadata={"tcssl_card": json.dumps(card)}))
    return path


def _set(key, value):
    return lambda card: card.__setitem__(key, value)


@pytest.mark.parametrize(
    "edit_card, edit_tensors, match",
    [
        (_set("n_components", 500), None, "n_components|shape"),
        (_set("n_fitted_subjects", 9), None, "n_fitted_subjects"),
        (_set("subjects", ["a", "a", 3, 4, 5, 6]), None, "repeats a subject"),
        (_set("n_features", [24, 24]), None, "n_features"),
        (_set("n_timepoints", 10**12), None, "shared_response"),
        (_set("standardized", "yes"), None, "standardized"),
        (None, lambda t: t.pop("maps.2"), r"missing \['maps.2'\]"),
        (None, lambda t: t.__setitem__("scale.1", -t["scale.1"]), "scales <= 0"),
        (None, lambda t: t.__setitem__("maps.0", t["maps.0"] * np.nan), "non-finite"),
        (None, lambda t: t.__setitem__("extra", np.zeros(2, np.float32)), "unexpected"),
    ],
)
def test_edited_files_are_refused(tmp_path, fitted, edit_card, edit_tensors, match):
    path = _rewrite(save(fitted, tmp_path / "a.safetensors"), edit_card, edit_tensors)
    with pytest.raises(IncompatibleModelError, match=match):
        load(path)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.__setitem__("kernel_size", 4), "odd integer"),
        (lambda a: a.__setitem__("n_blocks", 10**9), "n_blocks"),
        (lambda a: a.__setitem__("n_features", [1]), "n_features"),
        (lambda a: a.__setitem__("projection_dim", 7), "encoder.head"),
    ],
)
def test_edited_contrastive_architecture_is_refused(tmp_path, data, edit, match):
    aligner = TemporalContrastiveAligner(**FAST).fit(data.runs[:3])
    path = save(aligner, tmp_path / "a.safetensors")
    _rewrite(path, lambda card: edit(card["architecture"]))
    with pytest.raises(IncompatibleModelError, match=match):
        load(path)


def test_model_files_written_before_aligners_were_saveable_still_load():
    # written by the previous release's save() (same data as below), before this format change
    folder = Path(__file__).resolve().parents[1] / "data"
    X = np.random.default_rng(0).normal(size=(12, 9, 5)).astype("float32")
    expected = np.load(folder / "format1_outputs.npy")
    embedder = load(folder / "embedder_format1.safetensors")
    classifier = load(folder / "classifier_format1.safetensors")
    np.testing.assert_allclose(embedder.transform(X), expected[:, :9], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(classifier.predict_proba(X), expected[:, 9:], rtol=1e-6, atol=1e-7)


def test_srm_model_files_from_before_the_canonical_basis_still_load():
    # written by the previous release's save(): maps in the basis the random start gave
    folder = Path(__file__).resolve().parents[1] / "data"
    rng = np.random.default_rng(0)
    runs = [rng.normal(size=(40, 8)).astype("float32") for _ in range(3)]
    subjects = ["sub-01", "sub-02", "sub-03"]
    aligner = load(folder / "srm_fitted_basis.safetensors")
    expected = np.load(folder / "srm_fitted_basis_outputs.npy")
    np.testing.assert_allclose(np.stack(aligner.transform(runs, subjects)), expected, atol=1e-6)


def test_srm_basis_is_read_back_from_the_model_file(tmp_path, data):
    aligner = SharedResponseAligner(5, basis="dominant", random_state=0).fit(data.runs[:3])
    loaded = load(save(aligner, tmp_path / "srm.safetensors"))
    assert loaded.get_params()["basis"] == "dominant"
    np.testing.assert_array_equal(
        loaded.transform(data.runs[:1], [0])[0], aligner.transform(data.runs[:1], [0])[0]
    )
