"""Registries of encoders and estimators: how a model file names what it holds.

A card names its encoder (``architecture["name"]``, a key of :data:`ENCODERS`, rebuilt from its
``get_config()``) and its estimator (``estimator``, registered by :func:`register_estimator`
where the class is defined and imported by :func:`estimator_class` on first use), so that
:mod:`sklearn_tcssl.io` never imports the estimator modules (which import it).
"""

import importlib
import math

from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.volume import VolumeEncoder

ENCODERS = {cls.__name__: cls for cls in (TimeSeriesEncoder, VolumeEncoder)}
ESTIMATORS = {}
# where each saveable estimator is defined (imported by name on first use, not at import)
ESTIMATOR_MODULES = {
    "TemporalContrastiveEmbedder": "sklearn_tcssl.embedding._embedder",
    "TemporalContrastiveClassifier": "sklearn_tcssl.embedding._classifier",
    "SharedResponseAligner": "sklearn_tcssl.alignment._shared_response",
    "TemporalContrastiveAligner": "sklearn_tcssl.alignment._contrastive",
}


def register_estimator(cls):
    """Class decorator: make ``cls`` loadable from model files by its name."""
    ESTIMATORS[cls.__name__] = cls
    return cls


def estimator_class(name):
    """Return the registered estimator class called ``name`` (None if there is none)."""
    if name not in ESTIMATORS and name in ESTIMATOR_MODULES:
        importlib.import_module(ESTIMATOR_MODULES[name])  # registers the class
    return ESTIMATORS.get(name)


def is_tcssl_estimator(obj):
    """Whether ``obj`` is an instance of a registered (saveable) estimator."""
    return isinstance(obj, tuple(ESTIMATORS.values()))


def uncompiled(module):
    """Return the module that ``torch.compile`` wrapped (or the module itself)."""
    return getattr(module, "_orig_mod", module)


def encoder_of(estimator):
    """Return the fitted estimator's encoder (an embedder's or a classifier's)."""
    module = uncompiled(estimator.net_.module_)
    return uncompiled(getattr(module, "encoder", module))


def encoder_config(module):
    """Return the name and constructor arguments (JSON) that rebuild an encoder of ENCODERS."""
    return {"name": type(module).__name__, **module.get_config()}


def config_n_features(config):
    """Features per time point an encoder config expects (grid voxels for volumes)."""
    if "n_features" in config:
        return int(config["n_features"])
    return math.prod(int(s) for s in config["grid_shape"])


def build_encoder(config, state=None):
    """Rebuild an encoder from :func:`encoder_config`'s ``config`` and load ``state`` strictly.

    A model file's ``config`` has been checked with its card (:mod:`sklearn_tcssl.io._card`).
    """
    module = ENCODERS[config["name"]](**{k: v for k, v in config.items() if k != "name"})
    if state is not None:
        load_module_state(module, state, "encoder tensors")
    return module


def load_module_state(module, state, what="tensors"):
    """Load ``state`` into ``module`` strictly; a mismatch means a damaged model file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
        raise IncompatibleModelError(
            f"The model file's {what} do not match its card ({exc}). The file is "
            "damaged or was edited; save the model again with sklearn_tcssl.io.save."
        ) from exc
    return module
