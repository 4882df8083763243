"""Torch datasets that draw (beginning, middle, end) windows from sequences.

Offsets are drawn with torch's random number generator, which the DataLoader seeds
differently in each worker process (a numpy Generator stored on the dataset would be copied
into every worker and give the same windows everywhere).

An epoch covers the data: a sequence of ``T`` time points contributes
``max(1, T // (3 * segment_length))`` windows to each epoch (as many as fit side by side),
so a short block gives one window and a 946-volume run gives 31 windows of 30 volumes.
"""

import numpy as np
import torch
from torch.utils.data import Dataset


def windows_per_sequence(lengths, window):
    """Windows each sequence contributes to an epoch: ``max(1, length // window)``.

    Parameters
    ----------
    lengths : sequence of int
        Time points of each sequence.
    window : int
        Window length (``3 * segment_length``).

    Returns
    -------
    counts : ndarray of int64, shape (n_sequences,)
        Windows of each sequence in one epoch.
    """
    return np.maximum(1, np.asarray(lengths, dtype=np.int64) // int(window))


def _check_lengths(lengths, window):
    short = [i for i, n in enumerate(lengths) if n < window]
    if short:
        raise ValueError(
            f"Sequence {short[0]} has {lengths[short[0]]} time points, fewer "
            f"than the window of 3 * segment_length = {window}."
        )


class TripletWindowDataset(Dataset):
    """Random windows of ``3 * segment_length`` time points, covering every sequence.

    Each item is a ``(3, segment_length, n_features)`` tensor holding the beginning, middle and
    end segments of a window at a random offset in one sequence, and a dummy target ``0``
    (skorch expects ``(X, y)`` pairs). Sequence ``i`` owns ``max(1, T_i // (3 *
    segment_length))`` consecutive items (see :func:`windows_per_sequence`), so long runs are
    seen in proportion to their length. A new offset is drawn at every access, so every
    epoch sees fresh windows.

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
        lengths = [int(s.shape[0]) for s in sequences]
        _check_lengths(lengths, window)
        counts = windows_per_sequence(lengths, window)
        self._owner = np.repeat(np.arange(len(sequences)), counts)  # item -> sequence

    def __len__(self):
        return len(self._owner)

    def __getitem__(self, i):
        sequence = self.sequences[int(self._owner[i])]  # (T, V)
        window = 3 * self.segment_length
        n_offsets = sequence.shape[0] - window + 1
        offset = int(torch.randint(n_offsets, (1,), generator=self.generator))
        segments = sequence[offset : offset + window]  # (3L, V)
        if self.mean is not None:
            segments = (segments - self.mean) / self.scale
        return segments.reshape(3, self.segment_length, -1), 0  # (3, L, V)


class TimeLockedWindowDataset(Dataset):
    """(beginning, middle, end) windows from runs that share one stimulus clock.

    For runs recorded on the same stimulus (a movie, a fixed-timing paradigm), time point
    ``t`` of every run is the same moment of the stimulus. Each item draws a window start
    ``t`` and two different subjects ``a`` (the anchor's subject) and ``b``:

    * ``cross_subject=True``: the end is ``a``'s segment ``[t + 2L, t + 3L)``, the middle
      (positive) is ``b``'s segment at the *same* stimulus time ``[t + 2L, t + 3L)``, the
      beginning (negative) is ``b``'s segment ``[t, t + L)``, ``2L`` earlier;
    * ``cross_subject=False``: the paper's within-subject form, all three segments from
      subject ``a`` at ``[t, t + L)``, ``[t + L, t + 2L)`` and ``[t + 2L, t + 3L)``.

    An epoch has ``n_subjects * (n_timepoints // (3 * segment_length))`` items, so it covers
    the data.

    Parameters
    ----------
    runs : list of torch.Tensor of shape (n_timepoints, n_features_s)
        One run per subject, all with the same number of time points; the feature counts may
        differ between subjects.
    segment_length : int
        Time points per segment ``L``.
    cross_subject : bool, default=True
        Draw the positive from another subject at the same stimulus time (needs >= 2 runs).
    generator : torch.Generator or None, default=None
        Source of the draws (``None``: torch's global generator, seeded per worker).

    Notes
    -----
    An item is ``({"windows": list of 3 tensors (L, n_features_s), "subjects": (3,) int64},
    0)``; because subjects may have different feature counts, batches are collated by
    :func:`collate_time_locked` into per-subject groups.
    """

    def __init__(self, runs, segment_length, *, cross_subject=True, generator=None):
        self.runs = runs
        self.segment_length = int(segment_length)
        self.cross_subject = bool(cross_subject)
        self.generator = generator
        lengths = {int(r.shape[0]) for r in runs}
        if len(lengths) != 1:
            raise ValueError(
                f"Time-locked runs must all have the same number of time points; got "
                f"{sorted(lengths)}. Cut them to the common stimulus time first."
            )
        if self.cross_subject and len(runs) < 2:
            raise ValueError("cross_subject=True needs runs of at least 2 subjects.")
        self.n_timepoints = lengths.pop()
        _check_lengths([self.n_timepoints], 3 * self.segment_length)
        self._per_run = int(windows_per_sequence([self.n_timepoints], 3 * self.segment_length)[0])

    def __len__(self):
        return len(self.runs) * self._per_run

    def _draw(self, high):
        return int(torch.randint(high, (1,), generator=self.generator))

    def __getitem__(self, i):
        length = self.segment_length
        a = int(i) // self._per_run
        t = self._draw(self.n_timepoints - 3 * length + 1)
        if self.cross_subject:
            b = (a + 1 + self._draw(len(self.runs) - 1)) % len(self.runs)
            owners = (b, b, a)  # beginning, middle (same time as the end), end
            starts = (t, t + 2 * length, t + 2 * length)
        else:
            owners = (a, a, a)
            starts = (t, t + length, t + 2 * length)
        windows = [self.runs[s][start : start + length] for s, start in zip(owners, starts)]
        return {"windows": windows, "subjects": torch.tensor(owners)}, 0


def collate_time_locked(items):
    """Collate :class:`TimeLockedWindowDataset` items into a batch.

    Subjects may have different feature counts: segments are zero-padded to the largest
    count (each subject's map reads only its own first ``n_features_s`` columns).

    Parameters
    ----------
    items : list of (dict, int)
        Dataset items.

    Returns
    -------
    batch : dict
        ``"segments"``: ``(batch, 3, L, max_features)`` float tensor (beginning, middle,
        end), ``"subjects"``: ``(batch, 3)`` int64.
    targets : torch.Tensor of shape (batch,)
        Dummy targets.
    """
    width = max(w.shape[1] for item, _ in items for w in item["windows"])
    length = items[0][0]["windows"][0].shape[0]
    segments = torch.zeros(len(items), 3, length, width)
    for i, (item, _) in enumerate(items):
        for j, window in enumerate(item["windows"]):
            segments[i, j, :, : window.shape[1]] = window
    subjects = torch.stack([item["subjects"] for item, _ in items])
    return {"segments": segments, "subjects": subjects}, torch.zeros(len(items))
