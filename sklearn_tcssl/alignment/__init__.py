"""Functional alignment across people from unlabeled time-locked runs.

Layer: estimators (beside ``embedding/``). ``SharedResponseAligner`` (the SRM of Chen et al.
2015), ``TemporalContrastiveAligner`` (per-person maps + the shared temporal encoder) and
their label-free score, time-segment matching (``segment_matching``).
"""

from sklearn_tcssl.alignment._contrastive import TemporalContrastiveAligner
from sklearn_tcssl.alignment._scoring import (
    compare_with_unaligned,
    segment_matching,
    unaligned_runs,
)
from sklearn_tcssl.alignment._shared_response import SharedResponseAligner

__all__ = [
    "SharedResponseAligner",
    "TemporalContrastiveAligner",
    "compare_with_unaligned",
    "segment_matching",
    "unaligned_runs",
]
