"""Encoder of whole-brain 4D volumes: a small 3D CNN per frame, then the temporal part.

Frames arrive flattened in C order, ``(batch, time, prod(grid_shape))``, so the window
datasets and the loss are those of masked time series. Pooling keeps a coarse layout
(``pool_size`` cells per axis): a global average would throw away *where* activity is.
"""

import torch
from torch import nn

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl.nn.encoders import SegmentEncoder


class FrameEncoder3d(nn.Module):
    """Small 3D CNN mapping frames ``(..., n_voxels)`` to ``(..., n_components)``.

    ``n_layers`` blocks of ``Conv3d(kernel 3, stride 2) -> GELU`` (channels doubling from
    ``channels``; stride 2 keeps whole-brain activations small), adaptive average pooling to
    ``pool_size ** 3`` cells, then a linear layer.

    Parameters
    ----------
    grid_shape : tuple of 3 int
        Shape of one frame on the common grid.
    n_components : int
        Output width per frame.
    channels : int, default=8
        Channels of the first convolution.
    n_layers : int, default=3
        Number of strided convolution blocks.
    pool_size : int, default=4
        Cells per axis kept by the adaptive pooling (1: global average).
    frame_batch : int, default=512
        Frames sent through the CNN at once (bounds inference memory).
    """

    def __init__(
        self, grid_shape, n_components, channels=8, n_layers=3, pool_size=4, frame_batch=512
    ):
        super().__init__()
        self.grid_shape = tuple(int(s) for s in grid_shape)
        self.frame_batch = int(frame_batch)
        layers, c_in = [], 1
        for k in range(n_layers):
            c_out = channels * 2**k
            layers += [nn.Conv3d(c_in, c_out, 3, stride=2, padding=1), nn.GELU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(pool_size)
        self.linear = nn.Linear(c_in * pool_size**3, n_components)
        self.out_features = n_components

    def forward(self, x):
        """Map ``(..., n_voxels)`` frames to ``(..., n_components)``."""
        frames = x.reshape(-1, 1, *self.grid_shape).split(self.frame_batch)  # (n, 1, X, Y, Z)
        h = [self.linear(self.pool(self.features(f)).flatten(1)) for f in frames]  # (n, C)
        return torch.cat(h).reshape(*x.shape[:-1], -1)  # (..., C)


@fill_doc
class VolumeEncoder(SegmentEncoder):
    """Encoder of 4D volumes ``(batch, time, n_voxels)`` into ``(batch, n_components)``.

    :class:`FrameEncoder3d` per frame, then the temporal part and interface of
    :class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder` (same objective, datasets and net).

    Parameters
    ----------
    grid_shape : tuple of 3 int
        Shape of one frame on the common grid.
    n_components : int, default=128
        Width of the embedding.
    channels : int, default=8
        Channels of the first 3D convolution.
    pool_size : int, default=4
        Spatial cells per axis kept before the per-frame linear layer.
    %(temporal_part)s
    """

    def __init__(
        self,
        grid_shape,
        n_components=128,
        channels=8,
        pool_size=4,
        kernel_size=3,
        n_blocks=1,
        projection_dim=64,
    ):
        super().__init__()
        self._config = {
            "grid_shape": [int(n) for n in grid_shape],
            "channels": int(channels),
            "pool_size": int(pool_size),
        }
        self.spatial = FrameEncoder3d(grid_shape, n_components, channels, pool_size=pool_size)
        self._build_temporal(n_components, kernel_size, n_blocks, projection_dim)
