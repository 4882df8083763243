import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold

from sklearn_tcssl.baselines import (
    BlockMeanPattern,
    NilearnDecoderBaseline,
    make_classical_decoder,
    make_tcssl_decoder,
)
from sklearn_tcssl.datasets import make_task_fmri
from sklearn_tcssl.report import (
    CLASSICAL,
    TCSSL,
    TCSSL_LDA,
    compare_decoders,
    network_decoding_report,
    plot_network_report,
    summarize,
    tcssl_decoders,
)

FAST_EMBEDDER = {"n_components": 8, "max_epochs": 2, "random_state": 0}


@pytest.fixture(scope="module")
def small_data():
    return make_task_fmri(4, n_runs=1, n_tasks=2, n_blocks=3, voxel_size=10.0, random_state=0)


def test_block_mean_pattern():
    X = [np.arange(6, dtype=float).reshape(3, 2), np.ones((5, 2))]
    out = BlockMeanPattern().fit(X).transform(X)
    np.testing.assert_allclose(out, [[2.0, 3.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="has 3 features per time point"):
        BlockMeanPattern().fit(X).transform([np.ones((4, 3))])


def test_make_tcssl_decoder_rejects_two_embedders():
    from sklearn_tcssl import TemporalContrastiveEmbedder

    with pytest.raises(ValueError, match="set the parameters on the embedder"):
        make_tcssl_decoder(embedder=TemporalContrastiveEmbedder(), max_epochs=3)


def test_compare_decoders_same_folds(small_data):
    from nilearn.maskers import MultiNiftiMasker

    masker = MultiNiftiMasker(mask_img=small_data.mask_img, standardize=None, reports=False)
    decoders = {
        CLASSICAL: make_classical_decoder(masker),
        TCSSL: make_tcssl_decoder(masker, **FAST_EMBEDDER),
    }
    cv = GroupKFold(2)
    scores = compare_decoders(
        small_data.imgs, small_data.y, small_data.groups, decoders=decoders, cv=cv
    )
    assert set(scores["decoder"]) == {CLASSICAL, TCSSL}
    assert len(scores) == 4
    # the same test sets for both decoders
    sizes = scores.pivot(index="fold", columns="decoder", values="n_test")
    assert (sizes[CLASSICAL] == sizes[TCSSL]).all()
    summary = summarize(scores)
    assert list(summary.columns) == ["mean", "sd", "n_folds", "time_s"]
    assert ((summary["mean"] >= 0) & (summary["mean"] <= 1)).all()


def test_compare_decoders_runs_folds_in_parallel(small_data):
    from nilearn.maskers import MultiNiftiMasker

    masker = MultiNiftiMasker(mask_img=small_data.mask_img, standardize=None, reports=False)
    decoders = {CLASSICAL: make_classical_decoder(masker)}
    args = (small_data.imgs, small_data.y, small_data.groups)
    messages = []
    serial = compare_decoders(*args, decoders=decoders, cv=GroupKFold(2), progress=messages.append)
    parallel = compare_decoders(*args, decoders=decoders, cv=GroupKFold(2), n_jobs=2)
    np.testing.assert_allclose(parallel["accuracy"], serial["accuracy"])
    assert messages == [f"{CLASSICAL}: 2 folds"]


def test_compare_decoders_needs_groups(small_data):
    with pytest.raises(ValueError, match="groups=None"):
        compare_decoders(small_data.imgs, small_data.y, decoders={})
    with pytest.raises(ValueError, match="y has 3 labels"):
        compare_decoders(small_data.imgs, small_data.y[:3], small_data.groups, decoders={})


def test_network_report_and_plot(small_data):
    scores = network_decoding_report(
        small_data.imgs,
        small_data.y,
        small_data.groups,
        networks=["visual", "limbic"],
        atlas=small_data.networks_img,
        mask_img=small_data.mask_img,
        cv=GroupKFold(2),
        **FAST_EMBEDDER,
    )
    assert set(scores["network"]) == {"visual", "limbic"}
    assert len(scores) == 2 * 4 * 2  # networks x decoders (2 references, 2 ours) x folds
    summary = summarize(scores, by=("network", "decoder"))
    assert summary.index.nlevels == 2
    ax = plot_network_report(scores, chance=0.5)
    assert len(ax.patches) == 8
    import matplotlib.pyplot as plt

    plt.close("all")


def test_network_report_leaves_lda_out_when_a_fold_has_too_few_blocks(small_data):
    y = np.asarray(small_data.y)
    rare = np.flatnonzero(y == y[0])  # one block of this class for training
    train = np.r_[np.flatnonzero(y != y[0]), rare[0]]
    with pytest.warns(UserWarning, match="shrinkage LDA left out"):
        scores = network_decoding_report(
            small_data.imgs,
            y,
            small_data.groups,
            networks="visual",
            atlas=small_data.networks_img,
            mask_img=small_data.mask_img,
            cv=[(train, rare[1:])],
            **FAST_EMBEDDER,
        )
    assert list(scores["decoder"]) == [CLASSICAL, TCSSL]


def test_nilearn_decoder_baseline(small_data):
    baseline = NilearnDecoderBaseline(small_data.mask_img, cv=2)
    train = small_data.groups < 3
    baseline.fit([i for i, t in zip(small_data.imgs, train) if t], small_data.y[train])
    pred = baseline.predict([i for i, t in zip(small_data.imgs, train) if not t])
    assert pred.shape == ((~train).sum(),)
    assert isinstance(scores_frame := pd.DataFrame({"p": pred}), pd.DataFrame)
    assert set(scores_frame["p"]) <= set(small_data.y)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("n_features", [12, 300])
def test_shrinkage_lda_matches_scikit_learn(n_classes, n_features):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from sklearn_tcssl.baselines import shrinkage_lda

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), 40 // n_classes)
    X = rng.normal(size=(40, n_features)) + rng.normal(size=(n_classes, n_features))[y] * 0.3
    X[:, 3] = 1.0  # a constant voxel
    ours = shrinkage_lda().fit(X, y)
    reference = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-10)


def test_shrinkage_lda_needs_two_samples_per_class():
    from sklearn_tcssl.baselines import shrinkage_lda

    X = np.random.default_rng(0).normal(size=(5, 8))
    with pytest.raises(ValueError, match="at least 2 training samples per class.*class"):
        shrinkage_lda().fit(X, [0, 0, 1, 1, 2])


@pytest.mark.parametrize("n_features", [12, 300])  # the primal and the wide (dual) path
def test_shrinkage_lda_validates_its_parameters_on_both_paths(n_features):
    from sklearn.utils._param_validation import InvalidParameterError

    from sklearn_tcssl.baselines import ShrinkageLDA

    X = np.random.default_rng(0).normal(size=(20, n_features))
    with pytest.raises(InvalidParameterError, match="tol"):
        ShrinkageLDA(tol=-1.0).fit(X, np.repeat([0, 1], 10))


def test_reference_decoders_lead_with_lda():
    from sklearn_tcssl.report import LDA, reference_decoders

    assert list(reference_decoders())[0] == LDA
    assert list(tcssl_decoders(max_epochs=1))[0] == TCSSL_LDA


def test_fit_cache_fits_the_embedder_once_for_both_readouts():
    from _helpers import smooth_sequences

    from sklearn_tcssl.baselines import FitCache

    X, y = smooth_sequences(12, 10, 6), np.arange(12) % 2
    decoders = tcssl_decoders(memory=FitCache(), n_components=4, max_epochs=1, random_state=0)
    lda, logistic = (decoder.fit(list(X), y) for decoder in decoders.values())
    assert lda.named_steps["embed"] is logistic.named_steps["embed"]
    other = make_tcssl_decoder(memory=FitCache(), n_components=4, max_epochs=1, random_state=0)
    assert other.fit(list(X), y).named_steps["embed"] is not lda.named_steps["embed"]


def test_fit_cache_survives_the_clones_of_cross_validation(monkeypatch):
    from _helpers import smooth_sequences

    from sklearn_tcssl import TemporalContrastiveEmbedder
    from sklearn_tcssl.baselines import FitCache

    fits = []
    original = TemporalContrastiveEmbedder.fit

    def counted(self, X, y=None):
        fits.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(TemporalContrastiveEmbedder, "fit", counted)
    X, y = smooth_sequences(12, 10, 6), np.arange(12) % 2
    decoders = tcssl_decoders(memory=FitCache(), n_components=4, max_epochs=1, random_state=0)
    compare_decoders(X, y, np.arange(12) // 3, decoders=decoders, cv=GroupKFold(2))
    assert len(fits) == 2  # one embedder fit per fold, shared by both readouts
