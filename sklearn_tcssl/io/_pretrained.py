"""Start a model from a pretrained encoder: the ``init_from`` parameter of the estimators.

A fitted estimator or a model file becomes the encoder's architecture, weights, standardisation
statistics and input kind (with the grid of a volume model).
"""

import os

import numpy as np

from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl.io import _model_file
from sklearn_tcssl.io._registry import config_n_features, encoder_config, encoder_of
from sklearn_tcssl.io._registry import is_tcssl_estimator as _is_tcssl_estimator


def _grid(info):
    """``(affine, shape)`` of a volume model's card ``input`` entries, else None."""
    if info.get("form") != "volumes":
        return None
    return np.asarray(info["grid_affine"], dtype=float), tuple(info["grid_shape"])


def _from_file(path):
    card, tensors = _model_file.read_model(path)
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    info = card.get("input") or {}
    summary = {"file": str(path), "estimator": card["estimator"]}
    summary.update({k: card[k] for k in ("created", "training", "input") if k in card})
    return {
        "config": card["architecture"],
        "state": state,
        "mean": tensors["standardization.mean"].numpy(),
        "scale": tensors["standardization.scale"].numpy(),
        "kind": info.get("form", "sequences"),
        "grid": _grid(info),
        "card": summary,
    }


def _from_estimator(estimator, owner):
    if not hasattr(estimator, "net_"):
        raise ValueError(
            f"{owner}: init_from={type(estimator).__name__}(...) is not fitted. Fit it "
            "first. Note that clone() (used by cross_val_score, GridSearchCV...) copies "
            "an estimator parameter unfitted: pass FrozenEstimator(pretrained) or the "
            "path of a saved model file to keep the pretrained weights."
        )
    encoder = encoder_of(estimator)
    state = {k: v.detach().to("cpu", copy=True) for k, v in encoder.state_dict().items()}
    info = estimator._card_input()
    summary = {
        "estimator": type(estimator).__name__,
        "training": _model_file._training_summary(estimator),  # as io.save writes it
    }
    return {
        "config": encoder_config(encoder),
        "state": state,
        "mean": np.asarray(estimator.mean_),
        "scale": np.asarray(estimator.scale_),
        "kind": info["form"],
        "grid": _grid(info),
        "card": summary,
    }


def pretrained_encoder(init_from, *, owner):
    """Resolve ``init_from`` into the pieces needed to start from it.

    ``init_from`` is a fitted embedder or classifier (maybe in a FrozenEstimator) or a model
    file; ``owner`` names the estimator in errors. Returns a dict: ``config`` (encoder
    architecture), ``state`` (encoder weights, CPU copies), ``mean`` and ``scale``
    (standardisation), ``kind`` (``"sequences"`` or ``"volumes"``), ``grid`` (``(affine,
    shape)`` of a volume model, else None) and ``card`` (a short description of the source).
    """
    if type(init_from).__name__ == "FrozenEstimator":  # survives clone() as it is
        init_from = init_from.estimator
    if isinstance(init_from, (str, os.PathLike)):
        return _from_file(init_from)
    if _is_tcssl_estimator(init_from):
        return _from_estimator(init_from, owner)
    raise TypeError(
        f"{owner}: init_from={init_from!r} is not allowed; pass a fitted "
        "TemporalContrastiveEmbedder or TemporalContrastiveClassifier, a path to a model "
        "file saved with sklearn_tcssl.io.save, or None (random/PCA initialisation)."
    )


def check_pretrained_features(source, n_features, *, owner):
    """Raise IncompatibleModelError if the data's features differ from the source's."""
    expected = config_n_features(source["config"])
    if n_features != expected:
        recorded = source["card"].get("input") or {}
        raise IncompatibleModelError(
            f"{owner}: init_from expects {expected} features per time point "
            f"({_model_file._mask_text(recorded)}), but X has {n_features}. Mask your images with "
            "the pretrained model's mask, or use init_from=None to train from scratch."
        )
