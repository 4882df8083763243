import numpy as np
import pytest
import torch
from _helpers import smooth_sequences
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_tcssl import (
    IncompatibleModelError,
    NotFittedError,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    load,
)

EMBEDDER = {"n_components": 8, "max_epochs": 2, "random_state": 0}
FAST = {"max_epochs": 10, "random_state": 0}


def _labelled(n=48, n_features=30, seed=0, labels=("face", "house", "tool")):
    X = smooth_sequences(n, 9, n_features, seed=seed)
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)[np.arange(n) % len(labels)]
    patterns = rng.normal(size=(len(labels), n_features)).astype(np.float32) * 3
    for s, label in zip(X, y):
        s += patterns[list(labels).index(label)]
    return X, y


@pytest.fixture(scope="module")
def pretrained():
    X, _ = _labelled(seed=1)
    return TemporalContrastiveEmbedder(**EMBEDDER).fit(X)


def _encoder_state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_fit_predict_string_labels_and_proba():
    X, y = _labelled()
    clf = TemporalContrastiveClassifier(n_components=8, **FAST).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["face", "house", "tool"])
    proba = clf.predict_proba(X)
    assert proba.shape == (48, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.score(X, y) > 0.9
    assert clf.embed(X).shape == (48, 8)
    assert clf.n_features_in_ == 30 and clf.n_sequences_ == 48


def test_integer_labels_and_three_d_array_and_variable_lengths():
    X, y = _labelled(labels=(3, 7))
    clf = TemporalContrastiveClassifier(n_components=8, **FAST).fit(np.stack(X), y)
    assert clf.predict(np.stack(X)).dtype == np.asarray(y).dtype
    ragged = [s[: 6 + i % 4] for i, s in enumerate(X)]
    clf = TemporalContrastiveClassifier(n_components=8, **FAST).fit(ragged, y)
    assert clf.predict(ragged).shape == (48,)


def test_init_from_embedder_copies_encoder_and_uses_param_groups(pretrained):
    X, y = _labelled()
    clf = TemporalContrastiveClassifier(
        init_from=pretrained, standardize="pretrained", max_epochs=0
    ).fit(X, y)
    for key, value in pretrained.net_.module_.state_dict().items():
        torch.testing.assert_close(clf.net_.module_.encoder.state_dict()[key], value)
    assert clf.init_card_["estimator"] == "TemporalContrastiveEmbedder"
    learned = pretrained.transform(X)[:, : pretrained.n_components]  # without the mean pattern
    np.testing.assert_allclose(clf.embed(X), learned, rtol=1e-5, atol=1e-6)
    clf = TemporalContrastiveClassifier(init_from=pretrained, max_epochs=1).fit(X, y)
    lrs = sorted(group["lr"] for group in clf.net_.optimizer_.param_groups)
    assert lrs == pytest.approx([1e-3, 1e-2])
    # the pretrained embedder itself is never modified
    assert pretrained.net_.module_.spatial.weight.requires_grad


def test_freeze_encoder_keeps_weights(pretrained):
    X, y = _labelled()
    before = _encoder_state(pretrained.net_.module_)
    clf = TemporalContrastiveClassifier(init_from=pretrained, freeze_encoder=True, **FAST)
    clf.fit(X, y)
    for key, value in clf.net_.module_.encoder.state_dict().items():
        torch.testing.assert_close(value, before[key])
    head_before = clf.net_.module_.head.weight.detach().clone()
    assert clf.score(X, y) > 0.8
    tuned = TemporalContrastiveClassifier(init_from=pretrained, **FAST).fit(X, y)
    changed = tuned.net_.module_.encoder.spatial.weight
    assert not torch.allclose(changed, before["spatial.weight"])
    assert head_before.shape == (3, 8)


def test_standardize_pretrained_keeps_statistics(pretrained):
    X, y = _labelled(seed=3)
    shifted = [s + 5.0 for s in X]
    kept = TemporalContrastiveClassifier(
        init_from=pretrained, standardize="pretrained", max_epochs=0
    ).fit(shifted, y)
    np.testing.assert_array_equal(kept.mean_, pretrained.mean_)
    refit = TemporalContrastiveClassifier(init_from=pretrained, max_epochs=0).fit(shifted, y)
    np.testing.assert_allclose(refit.mean_, np.concatenate(shifted).mean(axis=0), rtol=1e-5)


def test_embedder_init_from_continues_training(pretrained, tmp_path):
    X, _ = _labelled(seed=5)
    embedder = TemporalContrastiveEmbedder(init_from=pretrained, **{**EMBEDDER, "max_epochs": 0})
    np.testing.assert_allclose(
        embedder.fit(X).net_.module_.spatial.weight.detach(),
        pretrained.net_.module_.spatial.weight.detach(),
    )
    # clone() copies a bare estimator parameter unfitted; FrozenEstimator is kept as is
    frozen = embedder.set_params(init_from=FrozenEstimator(pretrained))
    continued = clone(frozen).set_params(max_epochs=2).fit(X)
    assert len(continued.history_) == 2
    assert continued.init_card_["training"]["n_sequences"] == 48
    assert load(continued.save(tmp_path / "e.safetensors")).init_card_ == continued.init_card_
    assert not torch.allclose(
        continued.net_.module_.spatial.weight, pretrained.net_.module_.spatial.weight
    )


@pytest.mark.parametrize("Estimator", [TemporalContrastiveClassifier, TemporalContrastiveEmbedder])
def test_init_from_feature_mismatch(pretrained, Estimator):
    X, y = _labelled(n_features=31)
    with pytest.raises(IncompatibleModelError, match="expects 30 features.*X has 31"):
        Estimator(init_from=pretrained, n_components=8, max_epochs=1).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"init_from": "not a model"}, "not found"),
        ({"init_from": 3}, "init_from=3 is not allowed"),
        ({"init_from": TemporalContrastiveEmbedder()}, "not fitted"),
        ({"n_components": 4, "init_from": "PRETRAINED"}, "n_components=4 but init_from"),
        ({"standardize": "pretrained"}, "needs init_from"),
        ({"standardize": "yes"}, "standardize='yes' is not allowed"),
        ({"freeze_encoder": "no"}, "freeze_encoder='no'"),
        ({"encoder_lr_scale": -1}, "encoder_lr_scale=-1"),
        ({"lr": 0}, "lr=0 is not allowed"),
    ],
)
def test_clear_errors(pretrained, params, match):
    X, y = _labelled()
    if params.get("init_from") == "PRETRAINED":
        params["init_from"] = pretrained
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=match):
        TemporalContrastiveClassifier(**params).fit(X, y)


def test_one_class_and_not_fitted():
    X, y = _labelled()
    with pytest.raises(ValueError, match="at least 2 classes"):
        TemporalContrastiveClassifier(max_epochs=1).fit(X, ["a"] * len(X))
    with pytest.raises(NotFittedError):
        TemporalContrastiveClassifier().predict(X)


def test_frozen_embedder_in_pipeline_under_group_cv(pretrained):
    X, y = _labelled(n=60)
    groups = np.arange(60) % 5
    before = _encoder_state(pretrained.net_.module_)
    mean = pretrained.mean_.copy()
    pipeline = make_pipeline(FrozenEstimator(pretrained), LogisticRegression(max_iter=500))
    scores = cross_val_score(pipeline, X, y, groups=groups, cv=GroupKFold(5))
    assert scores.mean() > 0.8
    for key, value in pretrained.net_.module_.state_dict().items():
        torch.testing.assert_close(value, before[key])
    np.testing.assert_array_equal(pretrained.mean_, mean)


def test_classifier_under_group_cv_with_pretrained_init(pretrained):
    X, y = _labelled(n=36)
    groups = np.arange(36) // 12  # every subject has every class
    # clone() would copy a bare fitted estimator unfitted: FrozenEstimator keeps it as is
    clf = TemporalContrastiveClassifier(init_from=FrozenEstimator(pretrained), **FAST)
    scores = cross_val_score(clf, X, y, groups=groups, cv=GroupKFold(3))
    assert scores.mean() > 0.8


def test_same_seed_same_predictions():
    X, y = _labelled()
    params = {"n_components": 8, "max_epochs": 3, "random_state": 0}
    first = TemporalContrastiveClassifier(**params).fit(X, y).predict_proba(X)
    second = TemporalContrastiveClassifier(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
