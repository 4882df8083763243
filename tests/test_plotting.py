import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from _helpers import smooth_sequences

from sklearn_tcssl import NetworkMasker, TemporalContrastiveEmbedder
from sklearn_tcssl.datasets import make_network_atlas
from sklearn_tcssl.plotting import (
    embed_2d,
    plot_accuracy_vs_subjects,
    plot_embeddings,
    plot_network_masks,
    plot_network_report,
    plot_training_history,
)

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted_embedder():
    X = smooth_sequences(16, 12, 20)
    embedder = TemporalContrastiveEmbedder(
        n_components=4, max_epochs=3, batch_size=8, validation_fraction=0.25, random_state=0
    )
    return embedder.fit(X), X


def test_training_history_from_embedder(fitted_embedder):
    embedder, _ = fitted_embedder
    axes = plot_training_history(embedder, title="history")
    loss_ax, acc_ax = axes
    loss_labels = {line.get_label() for line in loss_ax.get_lines()}
    acc_labels = {line.get_label() for line in acc_ax.get_lines()}
    assert {"train_loss", "valid_loss"} <= loss_labels
    assert {"train_pretext_acc", "valid_pretext_acc", "chance"} <= acc_labels
    train = next(line for line in loss_ax.get_lines() if line.get_label() == "train_loss")
    np.testing.assert_allclose(train.get_ydata(), embedder.history_[:, "train_loss"])
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])


def test_training_history_accepts_lists_and_axes():
    records = [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.5}]
    _, given = plt.subplots(1, 2)
    axes = plot_training_history(records, axes=given, chance=None)
    assert axes[0] is given[0]
    assert len(axes[1].get_lines()) == 0


@pytest.mark.parametrize(
    ("history", "match"),
    [([], "history is empty"), ([{"epoch": 1, "dur": 0.1}], "no entry ending in '_loss'")],
)
def test_training_history_errors(history, match):
    with pytest.raises(ValueError, match=match):
        plot_training_history(history)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d(method):
    X = np.random.default_rng(0).normal(size=(12, 5))
    coords = embed_2d(X, method=method, random_state=0)
    assert coords.shape == (12, 2)
    assert np.isfinite(coords).all()


def test_embed_2d_errors():
    with pytest.raises(ValueError, match="method='umap' is not valid"):
        embed_2d(np.zeros((5, 3)), method="umap")
    with pytest.raises(ValueError, match="at least 3 rows"):
        embed_2d(np.zeros((2, 3)))


def test_plot_embeddings_by_task_and_subject(fitted_embedder):
    embedder, X = fitted_embedder
    Z = embedder.transform(X)
    labels = np.repeat(["a", "b"], 8)
    groups = np.tile([0, 1, 2, 3], 4)
    axes = plot_embeddings(Z, labels, groups, random_state=0, title="embeddings")
    assert len(axes) == 2
    assert "task" in axes[0].get_title() and "subject" in axes[1].get_title()
    assert len(axes[0].collections) == 2  # one scatter per task
    assert len(axes[1].collections) == 4  # one per subject
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["0", "1", "2", "3"]


def test_plot_embeddings_single_panel_and_errors():
    Z = np.random.default_rng(0).normal(size=(10, 3))
    assert len(plot_embeddings(Z)) == 1
    assert len(plot_embeddings(Z, labels=np.arange(10) % 2)) == 1
    with pytest.raises(ValueError, match="groups has 3 entries"):
        plot_embeddings(Z, groups=[0, 1, 2])
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="axes must hold 2 Axes"):
        plot_embeddings(Z, np.zeros(10), np.zeros(10), axes=[ax])


@pytest.fixture(scope="module")
def atlas():
    return make_network_atlas(voxel_size=12.0)


def test_plot_network_masks_from_masker(atlas):
    import nibabel as nib

    grid = atlas.maps
    run = nib.Nifti1Image(np.zeros((*grid.shape, 2), dtype=np.float32), grid.affine)
    masker = NetworkMasker("visual", atlas=atlas.maps).fit([run])
    display = plot_network_masks(masker, display_mode="z", cut_coords=2)
    texts = [t.get_text() for ax in display.frame_axes.figure.axes for t in ax.texts]
    assert any("visual" in t and "voxels" in t for t in texts)


def test_plot_network_masks_label_image_and_unfitted(atlas):
    display = plot_network_masks(atlas.maps, title="7 networks", display_mode="x", cut_coords=1)
    assert display.frame_axes.figure is not None
    with pytest.raises(ValueError, match="NetworkMasker is not fitted"):
        plot_network_masks(NetworkMasker("visual"))


def test_plot_accuracy_vs_subjects():
    scores = pd.DataFrame(
        {
            "n_subjects": [2, 2, 4, 4, 2, 2, 4, 4],
            "method": ["ours"] * 4 + ["classical"] * 4,
            "accuracy": [0.4, 0.6, 0.7, 0.7, 0.5, 0.5, 0.8, 0.6],
        }
    )
    ax = plot_accuracy_vs_subjects(scores, chance=0.25, title="curve")
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["chance"].get_ydata(), [0.25, 0.25])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"ours", "classical", "chance"} == set(legend)
    ours = ax.containers[0]  # errorbar container of the first method
    np.testing.assert_allclose(ours.lines[0].get_ydata(), [0.5, 0.7])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['method'\]"):
        plot_accuracy_vs_subjects(scores.drop(columns="method"))


def test_plot_network_report_reexported():
    from sklearn_tcssl import report

    assert plot_network_report is report.plot_network_report


@pytest.mark.parametrize("readout", ["lda", "logistic"])
def test_coef_img_maps_the_classical_weights_to_the_brain(readout):
    from nilearn.maskers import MultiNiftiMasker

    from sklearn_tcssl.baselines import make_classical_decoder, shrinkage_lda
    from sklearn_tcssl.datasets import make_task_fmri
    from sklearn_tcssl.plotting import coef_img

    data = make_task_fmri(3, n_runs=1, n_tasks=3, n_blocks=3, voxel_size=10.0, random_state=0)
    masker = MultiNiftiMasker(mask_img=data.mask_img, standardize=None, reports=False)
    classifier = shrinkage_lda() if readout == "lda" else None
    decoder = make_classical_decoder(masker, classifier=classifier).fit(data.imgs, data.y)
    img = coef_img(decoder)
    assert img.shape == (*data.mask_img.shape, 3)
    inside = np.asarray(data.mask_img.dataobj) > 0
    values = np.asarray(img.dataobj)
    assert np.all(values[~inside] == 0) and np.any(values[inside] != 0)
    # the map reproduces the decision function on block means
    means = np.stack([m.mean(axis=0) for m in decoder[0].transform(data.imgs)])
    weights = decoder[0].transform(img)[:, :]  # (3 maps, voxels)
    scores = decoder.decision_function(data.imgs)
    centred = scores - scores.mean(axis=0)
    np.testing.assert_allclose(
        means @ weights.T - (means @ weights.T).mean(axis=0), centred, rtol=1e-3, atol=1e-3
    )


def test_coef_img_of_our_pipeline_uses_the_mean_pattern_part():
    from nilearn.maskers import MultiNiftiMasker

    from sklearn_tcssl.baselines import make_tcssl_decoder, shrinkage_lda
    from sklearn_tcssl.datasets import make_task_fmri
    from sklearn_tcssl.plotting import coef_img

    data = make_task_fmri(3, n_runs=1, n_tasks=2, n_blocks=3, voxel_size=10.0, random_state=0)
    masker = MultiNiftiMasker(mask_img=data.mask_img, standardize=None, reports=False)
    decoder = make_tcssl_decoder(
        masker, classifier=shrinkage_lda(), n_components=4, max_epochs=1, random_state=0
    ).fit(data.imgs, data.y)
    img = coef_img(decoder)
    assert img.shape == (*data.mask_img.shape, 1)


def test_epoch_progress_writes_control_codes_only_on_a_terminal():
    import io

    from sklearn_tcssl._training.callbacks import EpochProgress
    from sklearn_tcssl._utils.progress import NORMAL, Reporter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    X = smooth_sequences(8, 12, 5)
    for stream, has_codes in [(io.StringIO(), False), (Terminal(), True)]:
        progress = EpochProgress(Reporter(NORMAL, stream=stream))
        TemporalContrastiveEmbedder(
            n_components=4, segment_length=3, max_epochs=5, callbacks=[progress]
        ).fit(X)
        text = stream.getvalue()
        assert "epoch 5/5" in text and "ETA" in text
        assert ("\x1b" in text) == has_codes
