import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_tcssl import SharedResponseAligner, TemporalContrastiveAligner
from sklearn_tcssl.alignment._srm import canonical_rotation, fit_srm, procrustes_map
from sklearn_tcssl.baselines import BlockMeanPattern
from sklearn_tcssl.datasets import make_time_locked_fmri

FAST = dict(n_components=6, segment_length=4, max_epochs=3, batch_size=16, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_time_locked_fmri(
        6, n_timepoints=240, n_features=40, n_components=6, n_scenes=8, noise=1.5, random_state=0
    )


def _decode(blocks, data):
    clf = make_pipeline(BlockMeanPattern(), LogisticRegression(max_iter=2000))
    return cross_val_score(clf, blocks, data.y, groups=data.groups, cv=GroupKFold(3)).mean()


def _aligned_blocks(aligner, data):
    return aligner.transform(data.blocks, subjects=data.groups)


def test_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(100, 5))
    w = np.linalg.qr(rng.normal(size=(20, 5)))[0]
    estimate = procrustes_map(shared @ w.T, shared)
    np.testing.assert_allclose(estimate, w, atol=1e-5)
    np.testing.assert_allclose(estimate.T @ estimate, np.eye(5), atol=1e-5)


def test_srm_maps_are_orthonormal_and_shared_response_is_their_mean(data):
    weights, shared = fit_srm(data.runs, 6, n_iter=5, random_state=0)
    for w in weights:
        np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-4)
    mean = np.mean([r @ w for r, w in zip(data.runs, weights)], axis=0)
    np.testing.assert_allclose(shared, mean, atol=1e-4)


def _distinct_shared_variances(seed=0, n_people=4, n_timepoints=200, n_features=30):
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n_timepoints, 5)) * np.array([4.0, 2.5, 1.8, 1.2, 0.8])
    maps = [np.linalg.qr(rng.normal(size=(n_features, 5)))[0] for _ in range(n_people)]
    noise = [0.3 * rng.normal(size=(n_timepoints, n_features)) for _ in range(n_people)]
    return shared, [shared @ w.T + e for w, e in zip(maps, noise)]


def test_canonical_rotation_ignores_the_basis_it_is_given():
    shared, _ = _distinct_shared_variances()
    rotated = shared @ np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))[0]
    canonical = shared @ canonical_rotation(shared)
    np.testing.assert_allclose(rotated @ canonical_rotation(rotated), canonical, atol=1e-8)
    rotation = canonical_rotation(shared)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(5), atol=1e-12)


def test_dominant_basis_puts_the_largest_shared_variance_alone_on_the_first_axis():
    shared, _ = _distinct_shared_variances()
    variances = np.linalg.svd(shared, compute_uv=False) ** 2
    energy = ((shared @ canonical_rotation(shared)) ** 2).sum(axis=0)
    np.testing.assert_allclose(energy[0], variances[0], rtol=1e-6)
    # the others mix the remaining principal axes: none carries the second one alone
    assert energy[1:].max() < 0.9 * variances[1]


def test_dominant_basis_does_not_depend_on_the_random_start():
    _, runs = _distinct_shared_variances()
    outputs = [
        SharedResponseAligner(5, basis="dominant", random_state=seed)
        .fit(runs)
        .transform(runs[:2], subjects=[0, 1])
        for seed in (0, 1, 2)
    ]
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            np.testing.assert_allclose(a, b, atol=1e-4)
    # the fitted basis does depend on it: the option is what makes the output canonical
    fitted = [
        SharedResponseAligner(5, random_state=seed).fit(runs).transform(runs[:1], subjects=[0])
        for seed in (0, 1)
    ]
    assert np.abs(fitted[0][0] - fitted[1][0]).max() > 0.1


def test_srm_basis_is_checked():
    _, runs = _distinct_shared_variances()
    with pytest.raises(ValueError, match="'basis' parameter of SharedResponseAligner"):
        SharedResponseAligner(5, basis="pca").fit(runs)


def test_srm_alignment_beats_unaligned_voxels(data):
    raw = _decode(data.blocks, data)
    aligner = SharedResponseAligner(6, random_state=0).fit(data.runs)
    aligned = _decode(_aligned_blocks(aligner, data), data)
    assert aligned > raw + 0.2, (raw, aligned)


def test_add_subjects_aligns_a_person_unseen_in_fit(data):
    fitted = SharedResponseAligner(6, random_state=0).fit(data.runs[:5], subjects=range(5))
    fitted.add_subjects(data.runs[5:], subjects=[5])
    assert set(fitted.weights_) == set(range(6))
    train = data.groups < 5
    features = BlockMeanPattern().fit_transform(_aligned_blocks(fitted, data))
    pattern = BlockMeanPattern().fit(data.blocks)
    clf = LogisticRegression(max_iter=2000).fit(features[train], data.y[train])
    accuracy = clf.score(features[~train], data.y[~train])
    unaligned = (
        LogisticRegression(max_iter=2000)
        .fit(pattern.transform(data.blocks)[train], data.y[train])
        .score(pattern.transform(data.blocks)[~train], data.y[~train])
    )
    assert accuracy > unaligned + 0.2, (accuracy, unaligned)


def test_untrained_contrastive_aligner_is_the_srm(data):
    srm = SharedResponseAligner(6, random_state=3).fit(data.runs)
    tc = TemporalContrastiveAligner(**{**FAST, "max_epochs": 0, "random_state": 3}).fit(data.runs)
    for s in srm.subjects_:
        np.testing.assert_allclose(tc.weights_[s], srm.weights_[s], atol=1e-4)
    blocks = data.blocks[:4]
    np.testing.assert_allclose(
        tc.embed(blocks, subjects=data.groups[:4]),
        np.stack([b.mean(0) for b in srm.transform(blocks, subjects=data.groups[:4])]),
        atol=1e-4,
    )


def test_contrastive_aligner_trains_and_records_steps(data):
    tc = TemporalContrastiveAligner(**{**FAST, "init": "random", "max_epochs": 6}).fit(data.runs)
    # 6 runs x (240 // 12) = 120 windows an epoch -> 7 full batches of 16
    assert tc.history_[:, "n_steps"] == [7, 14, 21, 28, 35, 42]
    assert np.mean(tc.history_[-2:, "train_loss"]) < np.mean(tc.history_[:2, "train_loss"])
    for w in tc.weights_.values():
        np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-4)
    embeddings = tc.embed(data.blocks, subjects=data.groups)
    assert embeddings.shape == (len(data.blocks), 6)
    assert _decode(_aligned_blocks(tc, data), data) > _decode(data.blocks, data)


@pytest.mark.parametrize("cross_subject", [True, False])
def test_contrastive_aligner_is_reproducible(data, cross_subject):
    params = {**FAST, "cross_subject": cross_subject, "max_epochs": 2}
    a = TemporalContrastiveAligner(**params).fit(data.runs)
    b = TemporalContrastiveAligner(**params).fit(data.runs)
    np.testing.assert_allclose(a.weights_[0], b.weights_[0], atol=1e-6)


def test_subjects_with_different_voxel_counts():
    rng = np.random.default_rng(0)
    runs = [rng.normal(size=(60, v)).astype("float32") for v in (10, 14, 12)]
    tc = TemporalContrastiveAligner(
        n_components=3, segment_length=4, max_epochs=1, random_state=0
    ).fit(runs, subjects=["a", "b", "c"])
    out = tc.transform([runs[1][:9]], subjects=["b"])
    assert out[0].shape == (9, 3)


def test_aligned_features_in_subject_wise_cross_validation(data):
    # documented protocol: the aligner sees unlabeled runs only, outside the decoder's CV
    aligner = TemporalContrastiveAligner(**FAST).fit(data.runs)
    X = aligner.embed(data.blocks, subjects=data.groups)
    scores = cross_val_score(
        LogisticRegression(max_iter=2000), X, data.y, groups=data.groups, cv=GroupKFold(3)
    )
    assert scores.mean() > 1.5 / 8


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda a, d: a.transform(d.blocks[:1], subjects=[99]), r"subjects\[0\]=99 has no map"),
        (lambda a, d: a.transform(d.blocks[:1]), "needs subjects="),
        (lambda a, d: a.transform(d.blocks[:2], subjects=[0]), "1 entries for 2 sequences"),
        (lambda a, d: a.add_subjects(d.runs[:1], subjects=[0]), "already known"),
        (lambda a, d: a.add_subjects([d.runs[0][:50]], subjects=[9]), "same stimulus clock"),
        (lambda a, d: a.transform([d.blocks[0][:, :5]], subjects=[0]), "has 5 features"),
    ],
)
def test_clear_errors(data, call, match):
    aligner = SharedResponseAligner(6, random_state=0).fit(data.runs)
    with pytest.raises(ValueError, match=match):
        call(aligner, data)


@pytest.mark.parametrize(
    "runs, params, match",
    [
        (lambda d: [d.runs[0], d.runs[1][:100]], {}, "time-locked"),
        (lambda d: d.runs, {"n_components": 80}, "n_components=80"),
        (lambda d: d.runs, {"segment_length": 100}, "segment_length=100"),
        (lambda d: d.runs, {"temperature": 0.0}, "temperature"),
    ],
)
def test_fit_errors(data, runs, params, match):
    with pytest.raises(ValueError, match=match):
        TemporalContrastiveAligner(**{**FAST, **params}).fit(runs(data))


def test_a_refused_refit_keeps_the_earlier_fit(data):
    aligner = TemporalContrastiveAligner(**FAST).fit(data.runs, subjects=data.subjects)
    shared = aligner.transform(data.runs, subjects=data.subjects)
    with pytest.raises(ValueError, match="at least 2 subjects; got 1"):
        aligner.fit(data.runs[:1], subjects=data.subjects[:1])
    for before, after in zip(shared, aligner.transform(data.runs, subjects=data.subjects)):
        np.testing.assert_array_equal(before, after)


def test_numpy_scalars_are_accepted(data):
    TemporalContrastiveAligner(
        n_components=np.int64(6),
        segment_length=np.int64(4),
        max_epochs=np.int64(1),
        lr=np.float64(1e-3),
        temperature=np.float32(0.1),
        random_state=0,
    ).fit(data.runs)


@pytest.mark.parametrize(
    "make",
    [lambda: SharedResponseAligner(6, random_state=0), lambda: TemporalContrastiveAligner(**FAST)],
)
def test_clone_pickle_and_params(data, make):
    import pickle

    from sklearn.base import clone

    aligner = make()
    assert clone(aligner).get_params() == aligner.get_params()
    fitted = aligner.fit(data.runs)
    restored = pickle.loads(pickle.dumps(fitted))
    a = fitted.transform(data.blocks[:3], subjects=data.groups[:3])
    b = restored.transform(data.blocks[:3], subjects=data.groups[:3])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert fitted.fit_transform(data.runs)[0].shape == (240, 6)


def test_inputs_are_not_modified(data):
    runs = [r.copy() for r in data.runs]
    for r in runs:
        r.setflags(write=False)
    aligner = TemporalContrastiveAligner(**{**FAST, "max_epochs": 1}).fit(runs)
    aligner.transform(runs[:1], subjects=[0])
    for r, original in zip(runs, data.runs):
        np.testing.assert_array_equal(r, original)


def test_score_is_label_free_segment_matching_above_unaligned(data):
    from sklearn_tcssl.alignment import segment_matching

    aligner = SharedResponseAligner(6, random_state=0).fit([r[:160] for r in data.runs])
    held = [r[160:] for r in data.runs]  # time points not seen in fit
    aligned = aligner.score(held, subjects=aligner.subjects_)
    unaligned = segment_matching(held).mean()
    # 80 held-out time points, windows of 9: 72 segments, chance about 1/58
    assert aligned > unaligned + 0.15 and aligned > 5 / 58, (aligned, unaligned)


def test_validation_fraction_records_held_out_scores_without_warning(data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner = SharedResponseAligner(6, random_state=0, validation_fraction=0.2).fit(data.runs)
    scores = aligner.validation_scores_
    assert scores["window"] == 9 and scores["aligned"] > scores["unaligned"] + 0.1
    assert aligner.shared_response_.shape == (240, 6)  # the whole clock
    assert SharedResponseAligner(6).fit(data.runs).validation_scores_ is None


def test_fitted_aligner_in_a_pipeline_with_metadata_routing(data):
    import sklearn
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import cross_validate

    from sklearn_tcssl.baselines import ShrinkageLDA

    aligner = SharedResponseAligner(6, random_state=0).fit(data.runs)
    manual = cross_val_score(
        make_pipeline(BlockMeanPattern(), ShrinkageLDA()),
        aligner.transform(data.blocks, subjects=data.groups),
        data.y,
        groups=data.groups,
        cv=GroupKFold(3),
    )
    with sklearn.config_context(enable_metadata_routing=True):
        aligner.set_fit_request(subjects=True).set_transform_request(subjects=True)
        pipe = make_pipeline(FrozenEstimator(aligner), BlockMeanPattern(), ShrinkageLDA())
        routed = cross_validate(
            pipe,
            data.blocks,
            data.y,
            cv=GroupKFold(3),
            params={"groups": data.groups, "subjects": data.groups},
        )
        pipe.fit(data.blocks, data.y, subjects=data.groups)
        predicted = pipe.predict(data.blocks[:4], subjects=data.groups[:4])
    np.testing.assert_array_equal(routed["test_score"], manual)
    assert predicted.shape == (4,)


def test_contrastive_aligner_resumes_from_its_checkpoint(data, tmp_path):
    params = {**FAST, "max_epochs": 3}
    whole = TemporalContrastiveAligner(**params).fit(data.runs)
    TemporalContrastiveAligner(**{**params, "max_epochs": 2}, checkpoint_dir=tmp_path).fit(
        data.runs
    )
    resumed = TemporalContrastiveAligner(**params, checkpoint_dir=tmp_path).fit(data.runs)
    assert len(resumed.history_) == 3
    for s in whole.subjects_:
        np.testing.assert_allclose(resumed.weights_[s], whole.weights_[s], atol=1e-6)
    other_subjects = TemporalContrastiveAligner(**params, checkpoint_dir=tmp_path)
    with pytest.raises(Exception, match="checkpoint"):
        other_subjects.fit(data.runs, subjects=list("abcdef"))


def test_embed_in_batches_equals_one_sequence_at_a_time(data):
    aligner = TemporalContrastiveAligner(**FAST).fit(data.runs)
    blocks = [data.blocks[0], data.blocks[1][:7], data.blocks[2], data.blocks[3][:7]]
    subjects = list(data.groups[:4])
    batched = aligner.embed(blocks, subjects=subjects)
    single = np.vstack([aligner.embed([b], subjects=[s]) for b, s in zip(blocks, subjects)])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


# Options of the embedder that the contrastive aligner lacks, each explained in its Notes.
NOT_ON_ALIGNER = {"init_from", "input", "target_voxel_size", "cache_dir", "keep_mean_pattern"}


def test_the_aligner_has_every_training_option_of_the_embedder():
    from sklearn_tcssl import TemporalContrastiveEmbedder

    embedder = set(TemporalContrastiveEmbedder().get_params())
    aligner = set(TemporalContrastiveAligner().get_params())
    assert embedder - aligner == NOT_ON_ALIGNER
    notes = TemporalContrastiveAligner.__doc__.split("Notes")[1]
    for name in NOT_ON_ALIGNER:
        assert f"``{name}" in notes, name


def test_classifier_has_the_compute_and_checkpoint_options(tmp_path):
    from sklearn_tcssl import TemporalContrastiveClassifier, TemporalContrastiveEmbedder

    missing = set(TemporalContrastiveEmbedder().get_params()) - set(
        TemporalContrastiveClassifier().get_params()
    )
    assert missing == {"accelerator", "segment_length", "negatives", "temperature"} | {
        "keep_mean_pattern"
    }
    notes = TemporalContrastiveClassifier.__doc__.split("Notes")[1]
    assert all(f"``{name}``" in notes for name in missing)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 9, 6)).astype("float32")
    y = np.repeat([0, 1], 12)
    X[y == 1, :, 0] += 1.0
    params = dict(n_components=4, batch_size=8, random_state=0, precision="32")
    whole = TemporalContrastiveClassifier(max_epochs=3, **params).fit(X, y)
    TemporalContrastiveClassifier(max_epochs=2, checkpoint_dir=tmp_path, **params).fit(X, y)
    resumed = TemporalContrastiveClassifier(max_epochs=3, checkpoint_dir=tmp_path, **params)
    resumed.fit(X, y)
    assert len(resumed.history_) == 3
    np.testing.assert_allclose(resumed.predict_proba(X), whole.predict_proba(X), atol=1e-6)
    with pytest.raises(Exception, match="checkpoint"):  # other labels: another run
        TemporalContrastiveClassifier(max_epochs=3, checkpoint_dir=tmp_path, **params).fit(
            X, y[::-1]
        )


def test_contrastive_aligner_checkpoint_of_other_runs_is_refused(data, tmp_path):
    TemporalContrastiveAligner(**FAST, checkpoint_dir=tmp_path).fit(data.runs)
    other = [r[::-1].copy() for r in data.runs]  # same shapes and subjects, other data
    with pytest.raises(Exception, match="another training run"):
        TemporalContrastiveAligner(**FAST, checkpoint_dir=tmp_path).fit(other)
