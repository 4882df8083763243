"""Per-subject linear maps ``W_s`` into a shared space, then one shared temporal encoder.

Orthonormal maps (a QR parametrisation), as in the shared response model, can rotate a
subject's data into the shared space but not inflate noise directions.
"""

import torch
from torch import nn

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl.nn.encoders import SegmentEncoder


class SubjectMaps(nn.Module):
    """One linear map per subject into a shared ``n_components``-dimensional space.

    Parameters
    ----------
    n_features : list of int
        Features (voxels) of each subject; they may differ.
    n_components : int
        Width of the shared space.
    orthonormal : bool, default=True
        Keep each map's columns orthonormal (QR parametrisation).
    """

    def __init__(self, n_features, n_components, orthonormal=True):
        super().__init__()
        self.n_features = [int(v) for v in n_features]
        self.n_components = int(n_components)
        self.orthonormal = bool(orthonormal)
        self.maps = nn.ParameterList(
            nn.init.orthogonal_(torch.empty(v, self.n_components)) for v in self.n_features
        )

    @torch.no_grad()
    def set_weights(self, weights):
        """Replace the maps by given tensors.

        Parameters
        ----------
        weights : list of torch.Tensor of shape (n_features_s, n_components)
            One map per subject, in the order of ``n_features``.
        """
        for p, w in zip(self.maps, weights):
            p.copy_(torch.as_tensor(w, dtype=p.dtype))

    def weight(self, subject):
        """Return the map of one subject.

        Parameters
        ----------
        subject : int
            Index of the subject.

        Returns
        -------
        weight : torch.Tensor of shape (n_features_s, n_components)
            Orthonormal columns when ``orthonormal=True``.
        """
        p = self.maps[subject]
        if not self.orthonormal:
            return p
        q, r = torch.linalg.qr(p)
        return q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # the signs make W_s continuous

    def forward(self, x, subject):
        """Map one subject's data into the shared space.

        Parameters
        ----------
        x : torch.Tensor of shape (..., n_features_s)
            Data of the subject.
        subject : int
            Index of the subject.

        Returns
        -------
        shared : torch.Tensor of shape (..., n_components)
            ``x @ W_s``.
        """
        return x @ self.weight(subject)


@fill_doc
class SubjectAlignedEncoder(SegmentEncoder):
    """Per-subject maps into a shared space, then the shared temporal encoder.

    The temporal blocks start as the identity, so before training a sequence's embedding is
    its mean pattern in the shared space (the SRM block feature when the maps come from an
    SRM); :meth:`forward` adds the projection head used by the loss.

    Parameters
    ----------
    n_features : list of int
        Features of each subject.
    n_components : int, default=50
        Width of the shared space and of the embedding.
    orthonormal : bool, default=True
        Orthonormal subject maps.
    %(temporal_part)s
    """

    def __init__(
        self,
        n_features,
        n_components=50,
        orthonormal=True,
        kernel_size=3,
        n_blocks=1,
        projection_dim=64,
    ):
        super().__init__()
        self.subject_maps = SubjectMaps(n_features, n_components, orthonormal)
        self._config = {
            "n_features": list(self.subject_maps.n_features),
            "orthonormal": bool(orthonormal),
        }
        self._build_temporal(n_components, kernel_size, n_blocks, projection_dim)

    @property
    def shared(self):
        """The subject maps: ``shared(x, subject)`` is ``x @ W_subject`` (:class:`SubjectMaps`)."""
        return self.subject_maps

    def embed_shared(self, h):
        """Embed sequences that are already in the shared space.

        Parameters
        ----------
        h : torch.Tensor of shape (batch, time, n_components)
            Shared-space sequences.

        Returns
        -------
        embeddings : torch.Tensor of shape (batch, n_components)
            Temporal blocks, then the mean over time.
        """
        return self.temporal(h).mean(dim=1)  # (B, C)

    @fill_doc
    def embed(self, x, subject):
        """Embed one subject's sequences: ``embed_shared(shared(x, subject))``.

        Parameters
        ----------
        %(subject_sequences)s

        Returns
        -------
        embeddings : torch.Tensor of shape (batch, n_components)
            One embedding per sequence.
        """
        return self.embed_shared(self.shared(x, subject))

    def forward(self, segments, subjects):
        """Project the segments of a batch of windows to ``(batch, 3, projection_dim)``.

        Parameters
        ----------
        segments : torch.Tensor of shape (batch, 3, segment_length, max_features)
            Beginning, middle and end of each window, zero-padded to the largest subject.
        subjects : torch.Tensor of shape (batch, 3)
            Subject index of each segment.

        Returns
        -------
        projections : torch.Tensor of shape (batch, 3, projection_dim)
            Projection-head outputs of the beginning, middle and end of each window.
        """
        n, n_segments, length, _ = segments.shape
        flat = segments.reshape(n * n_segments, length, -1)  # (3B, L, Vmax)
        owners = subjects.reshape(-1)  # (3B,)
        shared = flat.new_zeros((len(owners), length, self.subject_maps.n_components))
        for subject in torch.unique(owners).tolist():  # one matmul per subject in the batch
            rows = owners == subject
            width = self.subject_maps.n_features[subject]
            shared = shared.index_put((rows,), self.shared(flat[rows, :, :width], subject))
        z = self.embed_shared(shared)  # (3B, C)
        return self.head(z).reshape(n, n_segments, -1)  # (B, 3, P)
