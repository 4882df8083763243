"""Cross-validated decoding reports: decoders side by side on the same folds, per network."""

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, check_cv, cross_validate

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl.baselines import (
    FitCache,
    make_classical_decoder,
    make_tcssl_decoder,
    shrinkage_lda,
)
from sklearn_tcssl.networks import WHOLE_BRAIN, NetworkMasker, network_names

__all__ = [
    "CLASSICAL",
    "LDA",
    "TCSSL",
    "TCSSL_LDA",
    "compare_decoders",
    "network_decoding_report",
    "plot_network_report",
    "reference_decoders",
    "summarize",
    "tcssl_decoders",
]

LDA = "classical (block mean + shrinkage LDA)"
CLASSICAL = "classical (block mean + logistic)"
TCSSL_LDA = "TCSSL embedder + shrinkage LDA"
TCSSL = "TCSSL embedder + logistic"


@fill_doc
def reference_decoders(masker=None):
    """Return the classical references, strongest first: shrinkage LDA, then logistic.

    Parameters
    ----------
    %(decoder_masker)s

    Returns
    -------
    decoders : dict of str -> sklearn.pipeline.Pipeline
        ``{LDA: ..., CLASSICAL: ...}``.
    """
    return {
        LDA: make_classical_decoder(masker, classifier=shrinkage_lda()),
        CLASSICAL: make_classical_decoder(masker),
    }


@fill_doc
def tcssl_decoders(masker=None, *, embedder=None, memory=None, **embedder_params):
    """Return our pipeline with the same two readouts as :func:`reference_decoders`.

    Parameters
    ----------
    %(decoder_masker)s
    %(decoder_embedder)s

    Returns
    -------
    decoders : dict of str -> sklearn.pipeline.Pipeline
        ``{TCSSL_LDA: ..., TCSSL: ...}``.
    """
    common = {"embedder": embedder, "memory": memory, **embedder_params}
    return {
        TCSSL_LDA: make_tcssl_decoder(masker, classifier=shrinkage_lda(), **common),
        TCSSL: make_tcssl_decoder(masker, **common),
    }


def _resolve_cv(cv, y, groups):
    if cv is None:
        if groups is None:
            raise ValueError(
                "groups=None: a subject-wise cross-validation needs the subject of each "
                "block. Pass groups=subjects, or pass cv= explicitly."
            )
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError(
                f"groups has {n_groups} distinct value; subject-wise cross-validation needs "
                "at least 2 subjects. Pass cv= (e.g. a run-wise split) for one subject."
            )
        cv = GroupKFold(min(5, n_groups))
    return check_cv(cv, y, classifier=True)


def _check_inputs(imgs, y, groups):
    y = np.asarray(y)
    if len(imgs) != len(y):
        raise ValueError(
            f"y has {len(y)} labels but imgs has {len(imgs)} images; pass one label per block."
        )
    if groups is not None and len(groups) != len(y):
        raise ValueError(
            f"groups has {len(groups)} entries but imgs has {len(imgs)} images; pass one "
            "subject id per block."
        )
    return y, None if groups is None else np.asarray(groups)


def _drop_lda_if_too_few(decoders, y, folds, say):
    """Shrinkage LDA needs 2 training samples per class in every fold; else leave it out."""
    y = np.asarray(y)
    fewest = min(np.unique(y[train], return_counts=True)[1].min() for train, _ in folds)
    if fewest >= 2 and all(len(np.unique(y[train])) == len(np.unique(y)) for train, _ in folds):
        return decoders
    say(
        "shrinkage LDA left out: a training fold has a class with fewer than 2 blocks "
        "(use fewer folds to include it)"
    )
    return {k: v for k, v in decoders.items() if k not in (LDA, TCSSL_LDA)}


@fill_doc
def compare_decoders(imgs, y, groups=None, *, decoders, cv=None, progress=None, n_jobs=None):
    """Cross-validate several decoders on the same folds (``cross_validate`` per decoder).

    Parameters
    ----------
    imgs : list
        One item per block: 4D images for pipelines that start with a masker.
    %(report_labels)s
    decoders : dict of str -> estimator
        Named decoders (cloned for each fold).
    %(report_folds)s

    Returns
    -------
    scores : pandas.DataFrame
        One row per decoder and fold: ``decoder``, ``fold``, ``accuracy``, ``fit_time``
        (seconds, fit + predict), ``n_train``, ``n_test``.
    """
    y, groups = _check_inputs(imgs, y, groups)
    folds = list(_resolve_cv(cv, y, groups).split(np.zeros(len(y)), y, groups))
    sizes = {"n_train": [len(train) for train, _ in folds], "n_test": [len(t) for _, t in folds]}
    frames = []
    for name, decoder in decoders.items():
        if progress is not None:
            progress(f"{name}: {len(folds)} folds")
        result = cross_validate(
            decoder,
            list(imgs),
            y,
            groups=groups,
            cv=folds,
            scoring="accuracy",
            n_jobs=n_jobs,
            error_score="raise",
        )
        frame = {
            "decoder": name,
            "fold": range(len(folds)),
            "accuracy": result["test_score"],
            "fit_time": result["fit_time"] + result["score_time"],
        }
        frames.append(pd.DataFrame({**frame, **sizes}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarize(scores, by=("decoder",)):
    """Mean and standard deviation of accuracy (and total time) over folds.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`compare_decoders` or :func:`network_decoding_report`.
    by : sequence of str, default=("decoder",)
        Columns to group by.

    Returns
    -------
    summary : pandas.DataFrame
        Columns ``mean``, ``sd``, ``n_folds``, ``time_s``, indexed by ``by``.
    """
    grouped = scores.groupby(list(by), sort=False)
    return pd.DataFrame(
        {
            "mean": grouped["accuracy"].mean(),
            "sd": grouped["accuracy"].std(ddof=0),
            "n_folds": grouped["accuracy"].size(),
            "time_s": grouped["fit_time"].sum(),
        }
    )


@fill_doc
def network_decoding_report(
    imgs,
    y,
    groups=None,
    *,
    networks="all",
    atlas=None,
    mask_img=None,
    estimator=None,
    include_classical=True,
    cv=None,
    progress=None,
    n_jobs=None,
    **embedder_params,
):
    """Cross-validated accuracy per Yeo network and for the whole brain, ours and classical.

    Each network's :class:`~sklearn_tcssl.NetworkMasker` masks the blocks once (it learns
    nothing from them); :func:`reference_decoders` and :func:`tcssl_decoders` (one embedder
    fit per fold for both readouts) are scored on the same folds. Shrinkage LDA needs 2
    training blocks of every class in every fold; when a fold has fewer, its rows are left
    out with a message (``progress``, else a warning).

    Parameters
    ----------
    imgs : list of 4D Niimg-like
        One image per block (runs z-scored per voxel before blocks were cut).
    %(report_labels)s
    networks : "all", str or list of str, default="all"
        Networks to report; ``"all"`` is the 7 networks plus ``"whole_brain"``.
    atlas : Niimg-like, str or None, default=None
        7-network label image (see :class:`~sklearn_tcssl.NetworkMasker`).
    mask_img : Niimg-like or None, default=None
        Brain mask intersected with each network.
    estimator : estimator or None, default=None
        Our decoder's embedding step; ``None`` builds a
        :class:`~sklearn_tcssl.TemporalContrastiveEmbedder` with ``embedder_params``.
    include_classical : bool, default=True
        Also score the classical references.
    %(report_folds)s
    **embedder_params
        Parameters of the default embedder.

    Returns
    -------
    scores : pandas.DataFrame
        The rows of :func:`compare_decoders` with a first column ``network``; summarise
        with ``summarize(scores, by=("network", "decoder"))``, plot with
        :func:`plot_network_report`.
    """
    y, groups = _check_inputs(imgs, y, groups)
    folds = list(_resolve_cv(cv, y, groups).split(np.zeros(len(y)), y, groups))
    names = [*network_names(), WHOLE_BRAIN] if networks == "all" else networks
    names = [names] if isinstance(names, str) else list(names)
    frames = []
    for network in names:
        masker = NetworkMasker(network, atlas=atlas, mask_img=mask_img)
        features = masker.fit_transform(list(imgs))
        decoders = tcssl_decoders(embedder=estimator, memory=FitCache(), **embedder_params)
        if include_classical:
            decoders = {**reference_decoders(), **decoders}
        say = None if progress is None else (lambda m, n=network: progress(f"[{n}] {m}"))
        decoders = _drop_lda_if_too_few(decoders, y, folds, say or warnings.warn)
        frame = compare_decoders(
            features, y, groups, decoders=decoders, cv=folds, progress=say, n_jobs=n_jobs
        )
        frame.insert(0, "network", network)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@fill_doc
def plot_network_report(scores, *, ax=None, chance=None, title=None):
    """Bar chart of mean accuracy (± sd over folds) per network and decoder.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`network_decoding_report` (or of :func:`compare_decoders`, which
        has no ``network`` column: one group of bars).
    %(plot_axes)s

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.
    """
    import matplotlib.pyplot as plt

    if "network" not in scores:
        scores = scores.assign(network="all")
    summary = summarize(scores, by=("network", "decoder"))
    networks, decoders = scores["network"].unique(), scores["decoder"].unique()
    mean = summary["mean"].unstack().loc[networks, decoders]  # a group of bars per network
    sd = summary["sd"].unstack().loc[networks, decoders]
    if ax is None:  # at most 10 x 4.8 in, legible when a page shrinks it
        _, ax = plt.subplots(figsize=(min(10, max(5, 1.5 + 1.05 * len(networks))), 4.8))
    mean.plot.bar(ax=ax, yerr=sd, capsize=3, width=0.8, rot=0, xlabel="")
    ax.set_xticklabels([n.replace("_", "\n") for n in networks])
    ax.set_ylabel("accuracy (mean ± sd over folds)")
    ax.set_ylim(0, 1)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label="chance")
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16 if len(networks) > 1 else -0.06),
        ncol=min(3, len(decoders) + (chance is not None)),
        fontsize="small",
        frameon=False,
    )
    if title:
        ax.set_title(title)
    return ax
