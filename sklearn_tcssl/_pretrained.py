"""Start a model from a pretrained encoder: the ``init_from`` parameter of the estimators.

Turns a fitted estimator or a model file into the encoder's architecture, weights and
standardisation statistics, and rebuilds encoders from them. Model files themselves are read
by :mod:`sklearn_tcssl.io`.
"""

import os

import numpy as np

from sklearn_tcssl._exceptions import IncompatibleModelError


def encoder_config(module):
    """Return the constructor arguments of a :class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder`.

    Parameters
    ----------
    module : TimeSeriesEncoder

    Returns
    -------
    config : dict
        ``name`` plus the constructor arguments that rebuild the same architecture.
    """
    block = module.temporal[0] if len(module.temporal) else None
    return {
        "name": type(module).__name__,
        "n_features": module.spatial.in_features,
        "n_components": module.spatial.out_features,
        "kernel_size": block.conv_in.kernel_size[0] if block is not None else 3,
        "n_blocks": len(module.temporal),
        "projection_dim": module.head.layers[-1].out_features,
    }


def build_encoder(config, state=None):
    """Rebuild a :class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder` from its config.

    Parameters
    ----------
    config : dict
        As returned by :func:`encoder_config`.
    state : dict of str to torch.Tensor or None, default=None
        Weights to load (strictly).

    Returns
    -------
    module : TimeSeriesEncoder
    """
    from sklearn_tcssl.nn.encoders import TimeSeriesEncoder

    if config.get("name") != "TimeSeriesEncoder":
        raise IncompatibleModelError(
            f"The model's encoder is {config.get('name')!r}; this sklearn-tcssl can only "
            "rebuild a TimeSeriesEncoder. Upgrade sklearn-tcssl."
        )
    kwargs = {k: v for k, v in config.items() if k != "name"}
    module = TimeSeriesEncoder(**kwargs)
    if state is not None:
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
            raise IncompatibleModelError(
                f"The model file's encoder tensors do not match its card ({exc}). The file "
                "is damaged or was edited; save the model again with sklearn_tcssl.io.save."
            ) from exc
    return module


def uncompiled(module):
    """Return the module that ``torch.compile`` wrapped (or the module itself)."""
    return getattr(module, "_orig_mod", module)  # torch.compile wraps the module


def encoder_of(estimator):
    """Return the fitted estimator's TimeSeriesEncoder (an embedder's or a classifier's)."""
    module = uncompiled(estimator.net_.module_)
    return uncompiled(getattr(module, "encoder", module))


def pretrained_encoder(init_from, *, owner):
    """Resolve an ``init_from`` value into the pieces needed to start from it.

    Parameters
    ----------
    init_from : fitted estimator, str or pathlib.Path
        A fitted TemporalContrastiveEmbedder / TemporalContrastiveClassifier or a model file.
    owner : str
        Name of the estimator, for error messages.

    Returns
    -------
    source : dict
        ``config`` (encoder architecture), ``state`` (encoder weights, CPU copies), ``mean``,
        ``scale`` (standardisation) and ``card`` (a short description of the source).
    """
    if type(init_from).__name__ == "FrozenEstimator":  # survives clone() as it is
        init_from = init_from.estimator
    from sklearn_tcssl.io import _is_tcssl_estimator, _training_summary, read_model

    if isinstance(init_from, (str, os.PathLike)):
        card, tensors = read_model(init_from)
        prefix = "encoder."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        mean = tensors["standardization.mean"].numpy()
        scale = tensors["standardization.scale"].numpy()
        config = card["architecture"]
        summary = {"file": str(init_from), "estimator": card["estimator"]}
        summary.update({k: card[k] for k in ("created", "training", "input") if k in card})
    elif _is_tcssl_estimator(init_from):
        if not hasattr(init_from, "net_"):
            raise ValueError(
                f"{owner}: init_from={type(init_from).__name__}(...) is not fitted. Fit it "
                "first. Note that clone() (used by cross_val_score, GridSearchCV...) copies "
                "an estimator parameter unfitted: pass FrozenEstimator(pretrained) or the "
                "path of a saved model file to keep the pretrained weights."
            )
        if getattr(init_from, "_volumes_", False):
            raise ValueError(
                f"{owner}: init_from was fitted on 4D images; only encoders of masked time "
                "series can start another model for now."
            )
        encoder = encoder_of(init_from)
        state = {k: v.detach().to("cpu", copy=True) for k, v in encoder.state_dict().items()}
        mean, scale = np.asarray(init_from.mean_), np.asarray(init_from.scale_)
        config = encoder_config(encoder)
        summary = {"estimator": type(init_from).__name__}
        if hasattr(init_from, "model_card_"):
            summary["training"] = init_from.model_card_.get("training")
        else:
            summary["training"] = _training_summary(init_from)
    else:
        raise TypeError(
            f"{owner}: init_from={init_from!r} is not allowed; pass a fitted "
            "TemporalContrastiveEmbedder or TemporalContrastiveClassifier, a path to a model "
            "file saved with sklearn_tcssl.io.save, or None (random/PCA initialisation)."
        )
    return {"config": config, "state": state, "mean": mean, "scale": scale, "card": summary}


def check_pretrained_features(source, n_features, *, owner):
    """Raise IncompatibleModelError if the data's features differ from the source's."""
    from sklearn_tcssl.io import _mask_text

    expected = source["config"]["n_features"]
    if n_features != expected:
        recorded = (source["card"].get("input") or {}) if source["card"] else {}
        raise IncompatibleModelError(
            f"{owner}: init_from expects {expected} features per time point "
            f"({_mask_text(recorded)}), but X has {n_features}. Mask your images with the "
            "pretrained model's mask, or use init_from=None to train from scratch."
        )
