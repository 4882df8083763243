"""Parameters validated the scikit-learn way; numpy scalars work and are stored as numbers."""

import json

import numpy as np
import pytest
from _helpers import smooth_sequences
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_tcssl import (
    IncompatibleModelError,
    NetworkMasker,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    load,
)
from sklearn_tcssl.baselines import BlockMeanPattern, NilearnDecoderBaseline, default_classifier
from sklearn_tcssl.io import read_card

FAST = {"n_components": 4, "max_epochs": 2, "batch_size": 4, "random_state": 0}
NUMPY = {
    "n_components": np.int64(4),
    "max_epochs": np.int64(2),
    "batch_size": np.int64(4),
    "lr": np.float64(1e-3),
    "weight_decay": np.float32(1e-4),
    "random_state": 0,
}


@pytest.fixture
def X():
    return smooth_sequences(8, 12, 5)


def test_numpy_scalars_train_like_python_numbers(X):
    params = {
        **NUMPY,
        "temperature": np.float32(0.1),
        "segment_length": np.int64(3),
        "num_workers": np.int64(0),
        "checkpoint_every": np.int64(1),
        "validation_fraction": np.float32(0.25),
        "verbose": np.int64(0),
        "kernel_size": np.int64(3),
    }
    with_numpy = TemporalContrastiveEmbedder(**params).fit(X)
    python = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
    reference = TemporalContrastiveEmbedder(**python).fit(X)
    np.testing.assert_allclose(with_numpy.transform(X), reference.transform(X), rtol=1e-5)
    assert type(with_numpy.net_.batch_size) is int and type(with_numpy.net_.lr) is float


def test_numpy_scalars_are_python_numbers_in_the_card(X, tmp_path):
    path = TemporalContrastiveEmbedder(**NUMPY).fit(X).save(tmp_path / "m.safetensors")
    params = read_card(path)["params"]
    assert params["batch_size"] == 4 and type(params["batch_size"]) is int
    assert type(params["lr"]) is float and params["n_components"] == 4
    assert load(path).get_params()["batch_size"] == 4


def test_checkpoint_with_numpy_lr_resumes(X, tmp_path):
    params = {**NUMPY, "checkpoint_dir": tmp_path}
    first = TemporalContrastiveEmbedder(**params).fit(X)
    again = TemporalContrastiveEmbedder(**{**params, "max_epochs": np.int64(3)}).fit(X)
    assert len(again.history_) == 3
    meta = json.loads(next(tmp_path.glob("epoch-000003")).joinpath("meta.json").read_text())
    assert meta["fingerprint"]["lr"] == 1e-3
    assert len(first.history_) == 2


def test_fingerprint_records_numpy_values_not_types(X, tmp_path):
    TemporalContrastiveEmbedder(**FAST, temperature=np.float32(0.1), checkpoint_dir=tmp_path).fit(
        X
    )
    with pytest.raises(IncompatibleModelError, match=r"temperature 0\.1.* -> 5\.0"):
        TemporalContrastiveEmbedder(
            **FAST, temperature=np.float32(5.0), checkpoint_dir=tmp_path
        ).fit(X)


def test_classifier_accepts_numpy_scalars(X):
    y = np.arange(8) % 2
    clf = TemporalContrastiveClassifier(**NUMPY, encoder_lr_scale=np.float64(0.5)).fit(X, y)
    assert clf.predict(X).shape == (8,)


@pytest.mark.parametrize(
    "Estimator, params, match",
    [
        (TemporalContrastiveEmbedder, {"batch_size": 2.5}, r"batch_size=2\.5 is not allowed"),
        (TemporalContrastiveEmbedder, {"compile": "yes"}, r"compile='yes' is not allowed"),
        (TemporalContrastiveEmbedder, {"callbacks": "x"}, r"callbacks='x' is not allowed"),
        (TemporalContrastiveEmbedder, {"validation_fraction": 0.9}, r"validation_fraction=0\.9"),
        (TemporalContrastiveEmbedder, {"device": 3}, r"device=3 is not allowed"),
        (TemporalContrastiveClassifier, {"n_components": -1}, r"n_components=-1 is not allowed"),
        (TemporalContrastiveClassifier, {"encoder_lr_scale": 0}, r"encoder_lr_scale=0 is not"),
    ],
)
def test_constraint_errors_name_parameter_and_value(X, Estimator, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        Estimator(**{**FAST, **params}).fit(X, np.arange(8) % 2)


def test_masker_and_baselines_validate_parameters():
    with pytest.raises(InvalidParameterError, match="memory_level"):
        NetworkMasker(memory_level=-1).fit([])
    with pytest.raises(InvalidParameterError, match="detrend"):
        NetworkMasker(detrend="yes").fit([])
    with pytest.raises(InvalidParameterError, match="screening_percentile"):
        NilearnDecoderBaseline(screening_percentile=300).fit([], [])
    assert BlockMeanPattern().fit([np.ones((3, 2))]).n_features_in_ == 2


@pytest.mark.parametrize("Estimator", [TemporalContrastiveEmbedder, TemporalContrastiveClassifier])
def test_architecture_parameters_reach_the_encoder(X, Estimator):
    model = Estimator(**FAST, kernel_size=5, n_blocks=2, projection_dim=16)
    model.fit(X, np.arange(8) % 2)
    module = model.net_.module_
    encoder = getattr(module, "encoder", module)
    assert encoder.get_config() == {
        "n_features": 5,
        "n_components": 4,
        "kernel_size": 5,
        "n_blocks": 2,
        "projection_dim": 16,
    }


def test_grid_search_over_an_encoder_hyperparameter():
    X = smooth_sequences(16, 12, 5)
    y = np.arange(16) % 2
    for x, label in zip(X, y):
        x[:, 0] += 2.0 * label
    pipeline = make_pipeline(
        TemporalContrastiveEmbedder(**FAST, keep_mean_pattern=False), default_classifier()
    )
    search = GridSearchCV(
        pipeline, {"temporalcontrastiveembedder__kernel_size": [1, 3]}, cv=2, error_score="raise"
    )
    search.fit(X, y)
    assert search.best_params_["temporalcontrastiveembedder__kernel_size"] in (1, 3)
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_architecture_must_match_init_from(X):
    pretrained = TemporalContrastiveEmbedder(**FAST, kernel_size=5).fit(X)
    with pytest.raises(ValueError, match=r"kernel_size=3 but init_from has kernel_size=5"):
        TemporalContrastiveEmbedder(**FAST, init_from=pretrained, kernel_size=3).fit(X)
    continued = TemporalContrastiveEmbedder(**FAST, init_from=pretrained).fit(X)
    assert continued.net_.module_.get_config()["kernel_size"] == 5
