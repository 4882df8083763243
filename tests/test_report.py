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
    compare_decoders,
    network_decoding_report,
    plot_network_report,
    summarize,
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
    assert len(scores) == 2 * 2 * 2
    summary = summarize(scores, by=("network", "decoder"))
    assert summary.index.nlevels == 2
    ax = plot_network_report(scores, chance=0.5)
    assert len(ax.patches) == 4
    import matplotlib.pyplot as plt

    plt.close("all")


def test_nilearn_decoder_baseline(small_data):
    baseline = NilearnDecoderBaseline(small_data.mask_img, cv=2)
    train = small_data.groups < 3
    baseline.fit([i for i, t in zip(small_data.imgs, train) if t], small_data.y[train])
    pred = baseline.predict([i for i, t in zip(small_data.imgs, train) if not t])
    assert pred.shape == ((~train).sum(),)
    assert isinstance(scores_frame := pd.DataFrame({"p": pred}), pd.DataFrame)
    assert set(scores_frame["p"]) <= set(small_data.y)
