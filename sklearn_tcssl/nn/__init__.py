"""The torch layer: encoders, losses, the window sampler and datasets (no scikit-learn)."""

from sklearn_tcssl.nn.encoders import ProjectionHead, TemporalConvBlock, TimeSeriesEncoder
from sklearn_tcssl.nn.losses import (
    TemporalContrastiveLoss,
    pretext_accuracy,
    temporal_contrastive_logits,
    temporal_contrastive_loss,
)
from sklearn_tcssl.nn.subjects import SubjectAlignedEncoder, SubjectMaps
from sklearn_tcssl.nn.volume import VolumeEncoder
from sklearn_tcssl.nn.windows import (
    TimeLockedWindowDataset,
    TripletWindowDataset,
    WindowSampler,
    window_loader,
)

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
    "WindowSampler",
    "pretext_accuracy",
    "temporal_contrastive_logits",
    "temporal_contrastive_loss",
    "window_loader",
]
