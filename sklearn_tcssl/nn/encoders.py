"""Encoders for masked fMRI time series.

A linear spatial projection of every time point, residual temporal convolutions whose
output layer starts at zero, then the mean over time: before training the embedding is the
projection of the sequence's mean pattern (the classical block-mean decoder's input), so it
keeps what a linear decoder needs; training adds temporal structure on top.
"""

import torch
from torch import nn

from sklearn_tcssl._utils.docs import fill_doc


class TemporalConvBlock(nn.Module):
    """Residual temporal convolution: ``h + conv(gelu(conv(h)))`` over the time axis.

    Parameters
    ----------
    n_channels : int
        Number of channels (embedding width).
    kernel_size : int, default=3
        Width of the temporal kernels (time points); odd, so the length is preserved.
    """

    def __init__(self, n_channels, kernel_size=3):
        super().__init__()
        padding = kernel_size // 2
        self.conv_in = nn.Conv1d(n_channels, n_channels, kernel_size, padding=padding)
        self.conv_out = nn.Conv1d(n_channels, n_channels, kernel_size, padding=padding)
        self.activation = nn.GELU()
        nn.init.zeros_(self.conv_out.weight)  # the block starts as the identity
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, h):
        """Apply the residual block along time.

        Parameters
        ----------
        h : torch.Tensor of shape (batch, time, channels)
            Input sequence of features.

        Returns
        -------
        out : torch.Tensor of shape (batch, time, channels)
            ``h`` plus the block's output.
        """
        x = h.transpose(1, 2)  # (B, C, T)
        x = self.conv_out(self.activation(self.conv_in(x)))  # (B, C, T)
        return h + x.transpose(1, 2)  # (B, T, C)


class ProjectionHead(nn.Module):
    """Two-layer MLP used only by the contrastive loss (SimCLR-style).

    Parameters
    ----------
    n_components : int
        Width of the embedding it receives.
    projection_dim : int
        Width of its output.
    """

    def __init__(self, n_components, projection_dim):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_components, n_components),
            nn.GELU(),
            nn.Linear(n_components, projection_dim),
        )

    def forward(self, z):
        """Project embeddings for the loss.

        Parameters
        ----------
        z : torch.Tensor of shape (batch, n_components)
            Embeddings.

        Returns
        -------
        projections : torch.Tensor of shape (batch, projection_dim)
            Inputs of the contrastive loss.
        """
        return self.layers(z)


class SegmentEncoder(nn.Module):
    """Base of the encoders: subclasses build ``self.spatial``, then call :meth:`_build_temporal`.

    ``spatial`` maps ``(batch, time, features)`` to ``(batch, time, n_components)``.
    """

    def _build_temporal(self, n_components, kernel_size, n_blocks, projection_dim):
        self._config = {  # subclasses put their own arguments in _config first
            **getattr(self, "_config", {}),
            "n_components": int(n_components),
            "kernel_size": int(kernel_size),
            "n_blocks": int(n_blocks),
            "projection_dim": int(projection_dim),
        }
        self.temporal = nn.Sequential(
            *[TemporalConvBlock(n_components, kernel_size) for _ in range(n_blocks)]
        )
        self.head = ProjectionHead(n_components, projection_dim)

    def get_config(self):
        """Return the constructor arguments that rebuild this architecture (JSON types)."""
        return dict(self._config)

    def embed(self, x):
        """Embed ``(batch, time, features)`` sequences into ``(batch, n_components)``."""
        h = self.spatial(x)  # (B, T, C)
        h = self.temporal(h)  # (B, T, C)
        return h.mean(dim=1)  # (B, C)

    def forward(self, windows):
        """Project windows ``(batch, 3, segment_length, features)`` to ``(batch, 3, dim)``."""
        n, n_segments, length, n_features = windows.shape
        z = self.embed(windows.reshape(n * n_segments, length, n_features))  # (3B, C)
        return self.head(z).reshape(n, n_segments, -1)  # (B, 3, P)


@fill_doc
class TimeSeriesEncoder(SegmentEncoder):
    """Encoder of masked time series ``(batch, time, features)`` into ``(batch, n_components)``.

    ``Linear(n_features, n_components)`` per time point -> ``n_blocks``
    :class:`TemporalConvBlock` -> mean over time; :meth:`forward` adds the
    :class:`ProjectionHead` used by the loss.

    Parameters
    ----------
    n_features : int
        Features (voxels, regions) per time point.
    n_components : int, default=128
        Width of the embedding.
    %(temporal_part)s
    """

    def __init__(self, n_features, n_components=128, kernel_size=3, n_blocks=1, projection_dim=64):
        super().__init__()
        self._config = {"n_features": int(n_features)}
        self.spatial = nn.Linear(n_features, n_components)
        self._build_temporal(n_components, kernel_size, n_blocks, projection_dim)

    @torch.no_grad()
    def initialize_spatial(self, components, mean=None):
        """Set the spatial projection's rows to given components (e.g. PCA axes).

        Parameters
        ----------
        components : torch.Tensor of shape (k, n_features)
            Orthonormal rows; the first ``min(k, n_components)`` replace the weights' rows.
        mean : torch.Tensor of shape (n_features,) or None
            If given, the bias maps ``mean`` to zero (otherwise the bias is zero).
        """
        k = min(components.shape[0], self.spatial.out_features)
        self.spatial.weight[:k] = components[:k].to(self.spatial.weight)
        if mean is None:
            self.spatial.bias.zero_()
        else:
            self.spatial.bias.copy_(-(self.spatial.weight @ mean.to(self.spatial.weight)))
