import pickle

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import fast_slow_sequences, smooth_sequences
from nilearn.maskers import MultiNiftiMasker
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.pipeline import Pipeline

from sklearn_tcssl import NotFittedError, TemporalContrastiveEmbedder

FAST = {"n_components": 8, "max_epochs": 3, "random_state": 0, "keep_mean_pattern": False}


def test_fit_transform_shapes_and_dtype(sequences):
    embedder = TemporalContrastiveEmbedder(**FAST)
    Z = embedder.fit_transform(sequences)
    assert Z.shape == (len(sequences), 8)
    assert Z.dtype == np.float32
    assert embedder.n_features_in_ == 30
    assert embedder.n_sequences_ == 40
    assert embedder.n_timepoints_ == 40 * 18
    assert len(embedder.history_) == 3
    assert embedder.net_.module_.spatial.in_features == 30


def test_three_d_array_equals_list(sequences):
    as_list = TemporalContrastiveEmbedder(**FAST).fit(sequences).transform(sequences)
    as_array = TemporalContrastiveEmbedder(**FAST).fit(np.stack(sequences))
    np.testing.assert_array_equal(as_array.transform(np.stack(sequences)), as_list)


def test_variable_lengths():
    sequences = smooth_sequences(12, [9, 15, 30, 12, 9, 40, 21, 10, 11, 17, 9, 25], 20)
    embedder = TemporalContrastiveEmbedder(**FAST).fit(sequences)
    Z = embedder.transform(sequences)
    assert Z.shape == (12, 8)
    # each sequence is embedded on its own, whatever the others' lengths
    np.testing.assert_allclose(embedder.transform(sequences[5:6])[0], Z[5], rtol=1e-5, atol=1e-6)
    # transform accepts sequences shorter than the training window
    assert embedder.transform([sequences[0][:4]]).shape == (1, 8)


def test_same_seed_same_embeddings_and_global_rng_untouched(sequences):
    state = torch.get_rng_state()
    first = TemporalContrastiveEmbedder(**FAST).fit_transform(sequences)
    assert torch.equal(torch.get_rng_state(), state)
    second = TemporalContrastiveEmbedder(**FAST).fit_transform(sequences)
    np.testing.assert_array_equal(first, second)
    other = TemporalContrastiveEmbedder(**{**FAST, "random_state": 1}).fit_transform(sequences)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("negatives", ["batch", "pair"])
@pytest.mark.parametrize("init", ["pca", "random"])
def test_pretext_learning_generalises(negatives, init):
    train = fast_slow_sequences(200, 18, 40, seed=0)
    test = fast_slow_sequences(60, 18, 40, seed=1)
    params = {"n_components": 16, "negatives": negatives, "init": init, "random_state": 0}
    untrained = TemporalContrastiveEmbedder(max_epochs=0, **params).fit(train)
    trained = TemporalContrastiveEmbedder(max_epochs=20, **params).fit(train)
    losses = trained.history_[:, "train_loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert untrained.score(test) < 0.65
    assert trained.score(test) > 0.7
    assert trained.history_[-1, "train_pretext_acc"] > 0.7


def test_validation_fraction_records_valid_scores(sequences):
    embedder = TemporalContrastiveEmbedder(validation_fraction=0.25, **FAST).fit(sequences)
    last = embedder.history_[-1]
    assert {"valid_loss", "valid_pretext_acc", "train_pretext_acc"} <= set(last)


def test_pandas_output_and_feature_names(sequences):
    embedder = TemporalContrastiveEmbedder(**FAST).set_output(transform="pandas")
    frame = embedder.fit_transform(sequences)
    assert isinstance(frame, pd.DataFrame)
    names = [f"temporalcontrastiveembedder{i}" for i in range(8)]
    assert list(frame.columns) == names
    assert list(embedder.get_feature_names_out()) == names


def test_clone_pickle_and_grid_search(sequences):
    embedder = TemporalContrastiveEmbedder(**FAST).fit(sequences)
    assert clone(embedder).get_params() == embedder.get_params()
    restored = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_array_equal(restored.transform(sequences), embedder.transform(sequences))
    search = GridSearchCV(
        TemporalContrastiveEmbedder(**FAST), {"segment_length": [2, 3]}, cv=2
    ).fit(sequences)
    assert search.best_params_["segment_length"] in (2, 3)
    assert 0 <= search.best_score_ <= 1


def test_not_fitted(sequences):
    with pytest.raises(NotFittedError, match="not fitted"):
        TemporalContrastiveEmbedder().transform(sequences)


def test_callbacks_are_used(sequences):
    from skorch.callbacks import EarlyStopping

    stopper = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    embedder = TemporalContrastiveEmbedder(**{**FAST, "max_epochs": 20}, callbacks=[stopper]).fit(
        sequences
    )
    assert len(embedder.history_) < 20


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("X", "params", "match"),
    [
        (
            smooth_sequences(4, 8, 5),
            {"segment_length": 3},
            r"segment_length=3 needs sequences of at least 9 time points .* has 8\. Lower "
            r"segment_length",
        ),
        (
            [np.zeros((12, 5)), np.zeros((12, 6))],
            {},
            r"X\[1\] has 6 features per time point, but .* X\[0\] has 5",
        ),
        ([np.full((12, 5), np.nan)], {}, r"X\[0\] contains NaN or infinity \(60 NaN, 0 inf"),
        ([np.full((12, 5), np.inf)], {}, r"contains NaN or infinity \(0 NaN, 60 inf"),
        ([np.zeros((12, 5, 2))], {}, r"X\[0\] has 3 dimension\(s\) .* must be 2D"),
        (np.zeros((2, 12, 5, 2)), {}, r"X has 4 dimension\(s\)"),
        (np.zeros(12), {}, r"X has 1 dimension\(s\).*Reshape your data"),
        ([], {}, r"empty list"),
        (smooth_sequences(4, 12, 5), {"device": "tpu9"}, r"device='tpu9' is not a device"),
        (smooth_sequences(4, 12, 5), {"negatives": "all"}, r"negatives='all' is not allowed"),
        (smooth_sequences(4, 12, 5), {"n_components": 0}, r"n_components=0 is not allowed"),
        (smooth_sequences(4, 12, 5), {"temperature": -1}, r"temperature=-1 is not allowed"),
        (smooth_sequences(4, 12, 5), {"init": "zeros"}, r"init='zeros' is not allowed"),
        ([np.full((12, 5), 1e30)], {}, r"values up to 1e\+30.*Rescale"),
    ],
)
def test_clear_errors(X, params, match):
    with pytest.raises(ValueError, match=match):
        TemporalContrastiveEmbedder(**{**FAST, **params}).fit(X)


def test_image_instead_of_array_points_to_maskers():
    with pytest.raises(TypeError, match="put a masker"):
        TemporalContrastiveEmbedder(**FAST).fit(["sub-01_bold.nii.gz"])


def test_transform_feature_mismatch(sequences):
    embedder = TemporalContrastiveEmbedder(**FAST).fit(sequences)
    with pytest.raises(ValueError, match="has 29 features per time point, but .* fitted with 30"):
        embedder.transform([s[:, :29] for s in sequences])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_gpu(sequences, device):
    with pytest.raises(ValueError, match=f"device='{device}' was requested but torch sees no"):
        TemporalContrastiveEmbedder(device=device, **FAST).fit(sequences)


def test_auto_device_is_cpu_here(sequences):
    embedder = TemporalContrastiveEmbedder(**FAST).fit(sequences)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert embedder.device_.type == expected


# ------------------------------------------------- pipeline on 4D images
def _block_images(n_subjects=6, blocks_per_class=6, n_timepoints=18, seed=0):
    """Small 4D block images: 2 classes with distinct spatial patterns + fast/slow noise."""
    rng = np.random.default_rng(seed)
    shape = (6, 6, 5)
    n_voxels = int(np.prod(shape))
    patterns = rng.normal(size=(2, n_voxels))
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    imgs, y, groups = [], [], []
    for subject in range(n_subjects):
        noise = fast_slow_sequences(
            2 * blocks_per_class, n_timepoints, n_voxels, seed=seed + 1 + subject
        )
        for block, series in enumerate(noise):
            label = block % 2
            data = series + 2.0 * patterns[label]
            imgs.append(nib.Nifti1Image(data.T.reshape(*shape, n_timepoints), affine))
            y.append(label)
            groups.append(subject)
    mask = nib.Nifti1Image(np.ones(shape, dtype=np.int8), affine)
    return imgs, np.array(y), np.array(groups), mask


def test_pipeline_with_multiniftimasker_under_group_cv():
    imgs, y, groups, mask = _block_images()
    pipe = Pipeline(
        [
            ("masker", MultiNiftiMasker(mask_img=mask, standardize=None, reports=False)),
            (
                "embed",
                TemporalContrastiveEmbedder(
                    n_components=16, max_epochs=40, batch_size=16, random_state=0
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    cv = GroupKFold(3)
    result = cross_validate(pipe, imgs, y, groups=groups, cv=cv, return_estimator=True)
    assert result["test_score"].mean() > 0.6
    for estimator, (train, test) in zip(result["estimator"], cv.split(imgs, y, groups)):
        embedder = estimator.named_steps["embed"]
        # trained on the training fold only
        assert embedder.n_sequences_ == len(train)
        losses = embedder.history_[:, "train_loss"]
        assert losses[-1] < losses[0]
        # the held-out pretext accuracy rises well above chance and above the untrained encoder
        masker = estimator.named_steps["masker"]
        held_out = masker.transform([imgs[i] for i in test])
        untrained = clone(embedder).set_params(max_epochs=0)
        untrained.fit(masker.transform([imgs[i] for i in train]))
        assert embedder.score(held_out) > 0.6
        assert embedder.score(held_out) > untrained.score(held_out) + 0.05


# ----------- properties the sklearn checks cannot test on sequences (see test_common.py)
def test_fit_returns_self_is_idempotent_and_keeps_params(sequences):
    embedder = TemporalContrastiveEmbedder(**FAST)
    params = embedder.get_params()
    assert embedder.fit(sequences) is embedder
    assert embedder.get_params() == params
    first = embedder.transform(sequences)
    np.testing.assert_array_equal(embedder.fit(sequences).transform(sequences), first)


def test_read_only_input(sequences):
    frozen = np.stack(sequences)
    frozen.setflags(write=False)
    embedder = TemporalContrastiveEmbedder(**FAST).fit(frozen)
    assert embedder.transform(frozen).shape == (40, 8)
    assert embedder.n_features_in_ == 30


def test_mean_pattern_is_appended_by_default(sequences):
    embedder = TemporalContrastiveEmbedder(n_components=8, max_epochs=2, random_state=0)
    out = embedder.fit_transform(sequences)
    assert out.shape == (40, 8 + 30)
    expected = np.stack([((s - embedder.mean_) / embedder.scale_).mean(0) for s in sequences])
    np.testing.assert_allclose(out[:, 8:], expected, rtol=1e-5, atol=1e-5)
    names = embedder.get_feature_names_out()
    assert names[7] == "temporalcontrastiveembedder7"
    assert names[8] == "temporalcontrastiveembedder_mean0"
    assert len(names) == 38
    frame = embedder.set_output(transform="pandas").transform(sequences)
    assert list(frame.columns) == list(names)
    with pytest.raises(ValueError, match="keep_mean_pattern='yes' is not allowed"):
        TemporalContrastiveEmbedder(keep_mean_pattern="yes").fit(sequences)


def test_early_stopping_without_validation_names_the_fix(sequences):
    from skorch.callbacks import EarlyStopping

    embedder = TemporalContrastiveEmbedder(max_epochs=2, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="valid_loss.*validation_fraction"):
        embedder.fit(sequences)
    monitored = TemporalContrastiveEmbedder(
        max_epochs=2, callbacks=[EarlyStopping(monitor="train_loss")]
    )
    assert len(monitored.fit(sequences).history_) >= 1
