"""Functional alignment across people from unlabeled time-locked runs.

Layer: estimators (beside ``embedding/``). ``SharedResponseAligner`` (the SRM of Chen et al.
2015) and ``TemporalContrastiveAligner`` (per-person maps + the shared temporal encoder).
"""

from sklearn_tcssl.alignment._contrastive import TemporalContrastiveAligner
from sklearn_tcssl.alignment._shared_response import SharedResponseAligner

__all__ = ["SharedResponseAligner", "TemporalContrastiveAligner"]
