"""Embedding estimators: the shared trained-estimator base, the embedder and the classifier.

Layer: estimators (above ``nn/``, ``_input/``, ``_training/``, ``_utils/`` and ``io/``).
"""

from sklearn_tcssl.embedding._classifier import TemporalContrastiveClassifier
from sklearn_tcssl.embedding._embedder import TemporalContrastiveEmbedder

__all__ = ["TemporalContrastiveClassifier", "TemporalContrastiveEmbedder"]
