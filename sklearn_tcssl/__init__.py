"""Temporal-contrastive self-supervised pretraining for fMRI decoding, the scikit-learn way.

Public names are imported on first use (PEP 562), so that ``tcssl --help`` and
``import sklearn_tcssl`` answer without loading torch.
"""

import importlib

from sklearn_tcssl._utils.threads import prefer_passive_openmp
from sklearn_tcssl._version import __version__  # noqa: F401 (public)

# before torch loads: idle OpenMP threads sleep instead of spinning against other processes
prefer_passive_openmp()

_LOCATIONS = {
    "TemporalContrastiveAligner": "sklearn_tcssl.alignment._contrastive",
    "SharedResponseAligner": "sklearn_tcssl.alignment._shared_response",
    "TemporalContrastiveClassifier": "sklearn_tcssl.embedding._classifier",
    "TemporalContrastiveEmbedder": "sklearn_tcssl.embedding._embedder",
    "CheckpointInUseError": "sklearn_tcssl._utils.exceptions",
    "AlignmentWarning": "sklearn_tcssl._utils.exceptions",
    "DamagedFileError": "sklearn_tcssl._utils.exceptions",
    "IncompatibleModelError": "sklearn_tcssl._utils.exceptions",
    "NotFittedError": "sklearn_tcssl._utils.exceptions",
    "TCSSLError": "sklearn_tcssl._utils.exceptions",
    "TrainingDivergedError": "sklearn_tcssl._utils.exceptions",
    "config_context": "sklearn_tcssl._utils.threads",
    "get_config": "sklearn_tcssl._utils.threads",
    "set_config": "sklearn_tcssl._utils.threads",
    "load": "sklearn_tcssl.io",
    "save": "sklearn_tcssl.io",
    "YEO7_NETWORKS": "sklearn_tcssl.networks",
    "NetworkMasker": "sklearn_tcssl.networks",
    "network_mask": "sklearn_tcssl.networks",
    "network_names": "sklearn_tcssl.networks",
    "compare_decoders": "sklearn_tcssl.report",
    "network_decoding_report": "sklearn_tcssl.report",
    "plot_network_report": "sklearn_tcssl.report",
    "summarize": "sklearn_tcssl.report",
}

_SUBMODULES = (
    "alignment",
    "baselines",
    "cli",
    "datasets",
    "embedding",
    "io",
    "networks",
    "nn",
    "plotting",
    "report",
)

__all__ = sorted([*_LOCATIONS, "__version__"], key=str.lower)


def __getattr__(name):
    if name in _SUBMODULES:  # ``import sklearn_tcssl; sklearn_tcssl.io.load(...)`` works
        return importlib.import_module(f"sklearn_tcssl.{name}")
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'sklearn_tcssl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LOCATIONS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LOCATIONS])
