"""The torch layer: encoders, losses and window datasets (no scikit-learn or nilearn)."""

from sklearn_tcssl.nn.encoders import ProjectionHead, TemporalConvBlock, TimeSeriesEncoder
from sklearn_tcssl.nn.losses import (
    TemporalContrastiveLoss,
    pretext_accuracy,
    temporal_contrastive_logits,
    temporal_contrastive_loss,
)
from sklearn_tcssl.nn.subjects import SubjectAlignedEncoder, SubjectMaps
from sklearn_tcssl.nn.volume import VolumeEncoder
from sklearn_tcssl.nn.windows import TimeLockedWindowDataset, TripletWindowDataset

__all__ = [
    "ProjectionHead",
    "SubjectAlignedEncoder",
    "SubjectMaps",
    "TemporalConvBlock",
    "TemporalContrastiveLoss",
    "TimeLockedWindowDataset",
    "TimeSeriesEncoder",
    "TripletWindowDataset",
    "VolumeEncoder",
    "pretext_accuracy",
    "temporal_contrastive_logits",
    "temporal_contrastive_loss",
]
