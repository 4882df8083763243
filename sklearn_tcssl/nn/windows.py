"""Torch datasets that draw (beginning, middle, end) windows from sequences.

Offsets are drawn with torch's random number generator, which the DataLoader seeds
differently in each worker process (a numpy Generator stored on the dataset would be copied
into every worker and give the same windows everywhere).
"""

import torch
from torch.utils.data import Dataset


class TripletWindowDataset(Dataset):
    """Random windows of ``3 * segment_length`` time points, one per sequence per epoch.

    Each item is a ``(3, segment_length, n_features)`` tensor holding the beginning, middle and
    end segments of a window at a random offset in sequence ``i``, and a dummy target ``0``
    (skorch expects ``(X, y)`` pairs). A new offset is drawn at every access, so every epoch
    sees fresh windows.

    Parameters
    ----------
    sequences : list of torch.Tensor of shape (n_timepoints_i, n_features)
        The sequences; each must have at least ``3 * segment_length`` time points. Any object
        with a ``shape`` whose slices along time are tensors works too, e.g. runs read lazily
        from disk, of which only the window drawn is read.
    segment_length : int
        Number of time points in each of the three segments.
    generator : torch.Generator or None, default=None
        Source of the offsets. ``None`` uses torch's global generator (seeded per DataLoader
        worker); pass a seeded generator for reproducible evaluation windows in one process.
    mean, scale : torch.Tensor of shape (n_features,) or None, default=None
        If given, each window is standardised as ``(window - mean) / scale`` when drawn, so
        no standardised copy of the whole data set is kept in memory.
    """

    def __init__(self, sequences, segment_length, generator=None, mean=None, scale=None):
        self.sequences = sequences
        self.segment_length = int(segment_length)
        self.generator = generator
        self.mean = mean
        self.scale = scale
        window = 3 * self.segment_length
        short = [i for i, s in enumerate(sequences) if s.shape[0] < window]
        if short:
            raise ValueError(
                f"Sequence {short[0]} has {sequences[short[0]].shape[0]} time points, fewer "
                f"than the window of 3 * segment_length = {window}."
            )

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, i):
        sequence = self.sequences[i]  # (T, V)
        window = 3 * self.segment_length
        n_offsets = sequence.shape[0] - window + 1
        offset = int(torch.randint(n_offsets, (1,), generator=self.generator))
        segments = sequence[offset : offset + window]  # (3L, V)
        if self.mean is not None:
            segments = (segments - self.mean) / self.scale
        return segments.reshape(3, self.segment_length, -1), 0  # (3, L, V)
