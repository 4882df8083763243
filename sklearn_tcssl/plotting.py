"""Plots: training history, embeddings, network masks, accuracy, weights as brain maps.

Every function draws on matplotlib axes (created when none are given) and returns them;
matplotlib and nilearn's plotting are imported only when a function is called.
:func:`sklearn_tcssl.report.plot_network_report` is re-exported here.
"""

import numpy as np
import pandas as pd

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl.report import plot_network_report

__all__ = [
    "coef_img",
    "embed_2d",
    "plot_accuracy_vs_subjects",
    "plot_embeddings",
    "plot_network_masks",
    "plot_network_report",
    "plot_training_history",
]

_EMBEDDING_METHODS = ("pca", "tsne")


def _history_records(history):
    """Per-epoch dicts from an estimator with ``history_``, a skorch History or a list."""
    if hasattr(history, "history_"):
        history = history.history_
    elif hasattr(history, "history") and not isinstance(history, (list, tuple)):
        history = history.history  # a skorch net
    records = [dict(row) for row in history]
    if not records:
        raise ValueError(
            "history is empty: the estimator was trained for 0 epochs. Fit it with "
            "max_epochs >= 1 before plotting its training history."
        )
    return records


def _panels(axes, n, what, figsize):
    """Return ``axes`` as a flat array of ``n`` Axes (checked), or those of a new 1 x n figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, n, figsize=figsize, squeeze=False)
    axes = np.atleast_1d(np.asarray(axes, dtype=object)).ravel()
    if len(axes) != n:
        raise ValueError(f"axes must hold {n} Axes ({what}); got {len(axes)}.")
    return axes


def _chance_line(ax, chance):
    ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label="chance")


def plot_training_history(history, *, axes=None, chance=0.5, title=None):
    """Plot the loss and the pretext (or task) accuracy per epoch.

    Every per-epoch entry ending in ``_loss`` is drawn on the first axes, every entry ending
    in ``_acc`` (``train_pretext_acc``, ``valid_acc`` of a classifier...) on the second.

    Parameters
    ----------
    history : estimator, skorch.History or list of dict
        A fitted estimator (its ``history_``), a skorch net or History, or a list of
        per-epoch dicts.
    axes : sequence of two matplotlib Axes or None, default=None
        Axes for the loss and the accuracy; a new 1 x 2 figure when None.
    chance : float or None, default=0.5
        Draws a dashed chance line on the accuracy axes (0.5 is chance for the pretext task).
    title : str or None, default=None
        Figure title.

    Returns
    -------
    axes : ndarray of matplotlib Axes
        The loss and accuracy axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_tcssl import TemporalContrastiveEmbedder
    >>> from sklearn_tcssl.plotting import plot_training_history
    >>> X = np.random.default_rng(0).normal(size=(20, 12, 30)).astype("float32")
    >>> embedder = TemporalContrastiveEmbedder(n_components=8, max_epochs=3, random_state=0)
    >>> axes = plot_training_history(embedder.fit(X))
    >>> [ax.get_ylabel() for ax in axes]
    ['loss', 'accuracy']
    """
    records = _history_records(history)
    keys = [k for k in records[-1] if not k.endswith("_best")]
    loss_keys = [k for k in keys if k.endswith("_loss")]
    acc_keys = [k for k in keys if k.endswith("_acc")]
    if not loss_keys and not acc_keys:
        raise ValueError(
            f"history has no entry ending in '_loss' or '_acc' (entries: {keys}); pass the "
            "history_ of a fitted sklearn_tcssl estimator or of a skorch net."
        )
    axes = _panels(axes, 2, "loss, accuracy", (9, 3.5))
    table = pd.DataFrame(records)  # an entry missing from an epoch is NaN
    epochs = table["epoch"] if "epoch" in table else np.arange(1, len(records) + 1)
    for ax, group, ylabel in ((axes[0], loss_keys, "loss"), (axes[1], acc_keys, "accuracy")):
        for key in group:
            ax.plot(epochs.astype(float), table[key].astype(float), marker=".", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
    if chance is not None and acc_keys:
        _chance_line(axes[1], chance)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if title:
        axes[0].figure.suptitle(title)
    return axes


def embed_2d(embeddings, *, method="pca", random_state=None, perplexity=None):
    """Project embeddings (or any features) to 2D with PCA or t-SNE.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        E.g. the output of ``TemporalContrastiveEmbedder.transform``.
    method : {"pca", "tsne"}, default="pca"
        Linear PCA (fast, keeps global structure) or t-SNE (local neighbourhoods).
    random_state : int or None, default=None
        Seed of the projection.
    perplexity : float or None, default=None
        Perplexity of t-SNE; ``None`` uses ``min(30, (n_samples - 1) / 3)``.

    Returns
    -------
    coords : ndarray of shape (n_samples, 2)
        The 2D coordinates.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method not in _EMBEDDING_METHODS:
        raise ValueError(
            f"method={method!r} is not valid: pass one of {list(_EMBEDDING_METHODS)}."
        )
    X = np.asarray(embeddings, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(
            f"embeddings must be a 2D array with at least 3 rows; got shape {X.shape}. "
            "Pass the output of transform (one row per block)."
        )
    if X.shape[1] == 1:
        X = np.hstack([X, np.zeros_like(X)])
    if method == "pca":
        return PCA(n_components=2, random_state=random_state).fit_transform(X)
    if perplexity is None:
        perplexity = min(30.0, (X.shape[0] - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state)
    return tsne.fit_transform(X)


def _scatter_by(ax, coords, values, title):
    import matplotlib.pyplot as plt

    values = pd.Series(np.asarray(values)).astype(str).to_numpy()
    levels = sorted(set(values), key=lambda text: (len(text), text))  # "2" before "10"
    cmap = plt.get_cmap("tab10" if len(levels) <= 10 else "tab20")
    for k, level in enumerate(levels):
        keep = values == level
        ax.scatter(*coords[keep].T, s=14, color=cmap(k % cmap.N), label=level, alpha=0.8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(levels) <= 12:
        ax.legend(fontsize="x-small", markerscale=0.8, loc="best")


def plot_embeddings(
    embeddings,
    labels=None,
    groups=None,
    *,
    method="pca",
    axes=None,
    random_state=None,
    title=None,
):
    """Scatter embeddings in 2D, coloured by task and by subject side by side.

    A useful embedding groups blocks by task rather than by subject: clusters per subject
    mean the embedding mostly encodes who was scanned.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        One row per block, e.g. ``embedder.transform(masked_blocks)``.
    labels : array-like of shape (n_samples,) or None, default=None
        Task of each block; a panel coloured by task when given.
    groups : array-like of shape (n_samples,) or None, default=None
        Subject of each block; a panel coloured by subject when given.
    method : {"pca", "tsne"}, default="pca"
        2D projection, see :func:`embed_2d`.
    axes : matplotlib Axes, sequence of Axes or None, default=None
        One Axes per panel (task, subject, in that order); new ones when None.
    random_state : int or None, default=None
        Seed of the projection.
    title : str or None, default=None
        Figure title.

    Returns
    -------
    axes : ndarray of matplotlib Axes
        One Axes per panel.
    """
    coords = embed_2d(embeddings, method=method, random_state=random_state)
    panels = []
    for values, name, what in ((labels, "labels", "task"), (groups, "groups", "subject")):
        if values is None:
            continue
        if len(values) != len(coords):
            raise ValueError(
                f"{name} has {len(values)} entries but embeddings has {len(coords)} rows; "
                "pass one entry per block."
            )
        panels.append((values, f"coloured by {what}"))
    if not panels:
        panels.append((np.zeros(len(coords), dtype=int), "embeddings"))
    n = len(panels)
    axes = _panels(axes, n, "one per panel", (4.2 * n, 4))
    label = {"pca": "PCA", "tsne": "t-SNE"}[method]
    for ax, (values, what) in zip(axes, panels):
        _scatter_by(ax, coords, values, f"{label}, {what}")
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_network_masks(masker, *, bg_img=None, axes=None, title=None, **kwargs):
    """Draw a network mask (or a network label image) on a brain with nilearn.

    Parameters
    ----------
    masker : NetworkMasker, masker or Niimg-like
        A fitted :class:`~sklearn_tcssl.NetworkMasker` (its networks are named in the
        title), any fitted nilearn masker (its ``mask_img_``), or a 3D binary mask or
        7-network label image (``0..7``, one colour per network).
    bg_img : Niimg-like or None, default=None
        Background; nilearn's MNI152 template (offline) when None.
    axes : matplotlib Axes or None, default=None
        Axes to draw into; a new figure when None.
    title : str or None, default=None
        Title; by default the networks and their number of voxels for a NetworkMasker.
    **kwargs
        Passed to :func:`nilearn.plotting.plot_roi` (e.g. ``display_mode``,
        ``cut_coords``, ``cmap``).

    Returns
    -------
    display : nilearn.plotting.displays.OrthoSlicer
        The nilearn display object (``display.frame_axes.figure`` is the figure).
    """
    from nilearn import datasets, plotting

    if hasattr(masker, "get_params") and not hasattr(masker, "mask_img_"):
        raise ValueError(
            f"{type(masker).__name__} is not fitted: call fit(imgs) first, or pass a 3D "
            "mask or label image."
        )
    roi_img = getattr(masker, "mask_img_", masker)  # a masker's mask, or the image itself
    if title is None and hasattr(masker, "networks_"):
        names = masker.networks_
        what = "whole brain: 7 networks" if len(names) == 7 else ", ".join(names)
        title = f"{what} ({masker.n_voxels_['total']} voxels)"
    if bg_img is None:
        bg_img = datasets.load_mni152_template(resolution=2)
    kwargs.setdefault("draw_cross", False)
    kwargs.setdefault("cmap", "tab10")
    return plotting.plot_roi(roi_img, bg_img=bg_img, axes=axes, title=title, **kwargs)


@fill_doc
def plot_accuracy_vs_subjects(
    scores,
    *,
    x="n_subjects",
    y="accuracy",
    hue="method",
    ax=None,
    chance=None,
    title=None,
):
    """Mean accuracy (± sd over repeats or folds) against the number of training subjects.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per measurement, with columns ``x``, ``y`` and ``hue``; several rows per
        (``x``, ``hue``) pair (folds, repeats) give the error bars.
    x : str, default="n_subjects"
        Column of the number of (training or pretraining) subjects.
    y : str, default="accuracy"
        Column of the score.
    hue : str, default="method"
        Column naming the method; one line per method.
    %(plot_axes)s

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_tcssl.plotting import plot_accuracy_vs_subjects
    >>> scores = pd.DataFrame(
    ...     {"n_subjects": [2, 2, 4, 4], "method": ["a", "b", "a", "b"],
    ...      "accuracy": [0.5, 0.4, 0.7, 0.6]}
    ... )
    >>> plot_accuracy_vs_subjects(scores).get_xlabel()
    'n_subjects'
    """
    missing = [c for c in (x, y, hue) if c not in scores]
    if missing:
        raise ValueError(
            f"scores lacks the column(s) {missing}; it has {list(scores.columns)}. Pass a "
            f"DataFrame with one row per measurement and columns {x!r}, {y!r} and {hue!r} "
            "(or name yours with x=, y=, hue=)."
        )
    if ax is None:
        (ax,) = _panels(None, 1, "", (5.5, 4))
    grouped = scores.groupby([hue, x], sort=False)[y]
    summary = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=0)}).reset_index()
    for method in dict.fromkeys(summary[hue]):
        rows = summary[summary[hue] == method].sort_values(x)
        ax.errorbar(
            rows[x].to_numpy(dtype=float),
            rows["mean"].to_numpy(dtype=float),
            yerr=rows["sd"].to_numpy(dtype=float),
            marker="o",
            capsize=3,
            label=method,
        )
    if chance is not None:
        _chance_line(ax, chance)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (mean ± sd)")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def _final_linear(pipeline):
    """Return the last step's linear weights ``(n_maps, n_inputs)`` on its raw input."""
    clf = pipeline.steps[-1][1]
    scale = 1.0
    if hasattr(clf, "steps"):  # e.g. StandardScaler -> LogisticRegression
        for _, step in clf.steps[:-1]:
            scale = scale * getattr(step, "scale_", 1.0)
        clf = clf.steps[-1][1]
    if not hasattr(clf, "coef_"):
        raise ValueError(
            f"the final step {type(clf).__name__} has no coef_: coef_img needs a linear "
            "classifier (shrinkage LDA, logistic regression, linear SVM)."
        )
    return np.atleast_2d(clf.coef_) / scale


def coef_img(pipeline, masker=None):
    """Return a fitted decoder's weights as a brain map: one volume per class (1 if binary).

    Works for the classical decoders and for ours where the weights live on voxels: the
    embedding's mean-pattern part (``keep_mean_pattern``), its weights divided by the
    embedder's feature scale. The learned features have no voxel map and are left out.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted, from :func:`~sklearn_tcssl.baselines.make_classical_decoder` or
        :func:`~sklearn_tcssl.baselines.make_tcssl_decoder`.
    masker : fitted nilearn masker or None, default=None
        Maps voxels back to images; ``None`` uses the pipeline's first step.

    Returns
    -------
    img : nibabel.Nifti1Image
        4D image of shape ``(*grid, n_maps)``, weights in the units of the input voxels
        (plot one with ``nilearn.plotting.plot_stat_map(index_img(img, 0))``).
    """
    from nilearn.image import new_img_like

    masker = masker if masker is not None else pipeline.steps[0][1]
    if not hasattr(masker, "inverse_transform"):
        raise ValueError("coef_img needs the masker: pass masker= (fitted) for array pipelines.")
    weights = _final_linear(pipeline)
    features = pipeline.steps[-2][1]
    if type(features).__name__ == "FrozenEstimator":
        features = features.estimator
    if hasattr(features, "net_"):  # TemporalContrastiveEmbedder: the mean-pattern part
        if not features._keeps_mean_pattern:
            raise ValueError(
                "this embedder has keep_mean_pattern=False: its features have no voxel map."
            )
        weights = weights[:, features.n_components :]
        if features.standardize:
            weights = weights / features.scale_
    img = masker.inverse_transform(weights.astype(np.float32))
    data = np.asarray(img.dataobj)
    return new_img_like(img, data if data.ndim == 4 else data[..., None], copy_header=True)
