"""Temporal-contrastive self-supervised pretraining for fMRI decoding, the scikit-learn way."""

from sklearn_tcssl._aligner import TemporalContrastiveAligner
from sklearn_tcssl._classifier import TemporalContrastiveClassifier
from sklearn_tcssl._embedder import TemporalContrastiveEmbedder
from sklearn_tcssl._exceptions import (
    IncompatibleModelError,
    NotFittedError,
    TCSSLError,
    TrainingDivergedError,
)
from sklearn_tcssl._shared_response import SharedResponseAligner
from sklearn_tcssl._version import __version__
from sklearn_tcssl.io import load, save
from sklearn_tcssl.networks import YEO7_NETWORKS, NetworkMasker, network_mask, network_names
from sklearn_tcssl.report import (
    compare_decoders,
    network_decoding_report,
    plot_network_report,
    summarize,
)

__all__ = [
    "IncompatibleModelError",
    "NetworkMasker",
    "NotFittedError",
    "SharedResponseAligner",
    "TCSSLError",
    "TemporalContrastiveAligner",
    "TemporalContrastiveClassifier",
    "TemporalContrastiveEmbedder",
    "TrainingDivergedError",
    "YEO7_NETWORKS",
    "__version__",
    "compare_decoders",
    "load",
    "network_decoding_report",
    "network_mask",
    "network_names",
    "plot_network_report",
    "save",
    "summarize",
]
