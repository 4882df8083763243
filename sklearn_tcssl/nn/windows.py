"""Windows of (beginning, middle, end) segments: a sampler that draws, datasets that gather.

An epoch holds as many windows of each sequence as fit side by side (at least one).
"""

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, get_worker_info


def windows_per_sequence(lengths, window):
    """Return the windows of each sequence in one epoch, ``max(1, length // window)`` (int64)."""
    return np.maximum(1, np.asarray(lengths, dtype=np.int64) // int(window))


def _check_lengths(lengths, window):
    short = [i for i, n in enumerate(lengths) if n < window]
    if short:
        raise ValueError(
            f"Sequence {short[0]} has {lengths[short[0]]} time points, fewer "
            f"than the window of 3 * segment_length = {window}."
        )


class WindowSampler(Sampler):
    """Batch sampler of ``[sequence, offset]`` draws: where training windows get their randomness.

    An epoch holds ``windows_per_sequence(lengths, window)`` windows of each sequence, their
    offsets drawn at once in the main process (by default from torch's global generator, so
    ``torch.manual_seed`` fixes them whatever ``num_workers`` is).

    Parameters
    ----------
    lengths : sequence of int
        Time points of each sequence (each at least ``window``).
    window : int
        Window length, ``3 * segment_length``.
    batch_size : int
        Windows per batch.
    shuffle : bool, default=True
        Shuffle the windows of an epoch (otherwise sequence by sequence).
    drop_last : bool, default=False
        Drop a last batch smaller than ``batch_size``.
    seed : int or None, default=None
        Draw every epoch from a generator seeded with ``seed`` (the same windows each epoch).
    generator : torch.Generator or None, default=None
        Draw from this generator, continuing from epoch to epoch; ``None``: torch's global one.
    """

    def __init__(
        self,
        lengths,
        window,
        batch_size,
        *,
        shuffle=True,
        drop_last=False,
        seed=None,
        generator=None,
    ):
        lengths = np.asarray(lengths, dtype=np.int64)
        self.window, self.batch_size = int(window), int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.seed, self.generator = seed, generator
        counts = windows_per_sequence(lengths, self.window)
        self._owner = torch.from_numpy(np.repeat(np.arange(len(lengths)), counts))
        self._n_offsets = torch.from_numpy(lengths - self.window + 1)

    @property
    def n_windows(self):
        """Windows in one epoch."""
        return len(self._owner)

    def __len__(self):
        return len(BatchSampler(self._owner, self.batch_size, self.drop_last))

    def draw(self):
        """Draw the windows of one epoch.

        Returns
        -------
        draws : torch.Tensor of shape (n_windows, 2), int64
            ``(sequence, offset)`` pairs, in the order of the epoch.
        """
        generator = self.generator
        if self.seed is not None:
            generator = torch.Generator().manual_seed(int(self.seed))
        owner = self._owner
        if self.shuffle:
            owner = owner[torch.randperm(len(owner), generator=generator)]
        uniform = torch.rand(len(owner), generator=generator, dtype=torch.float64)
        offsets = (uniform * self._n_offsets[owner]).long()  # in [0, n_offsets)
        return torch.stack([owner, offsets], dim=1)

    def __iter__(self):
        # a generator: the epoch is drawn at the first batch, after the DataLoader's seed
        yield from BatchSampler(self.draw().tolist(), self.batch_size, self.drop_last)


class TripletWindowDataset(Dataset):
    """(beginning, middle, end) windows of ``3 * segment_length`` time points, by batch.

    Indexing with ``(batch, 2)`` ``(sequence, offset)`` draws is :meth:`gather`.

    Parameters
    ----------
    sequences : list of torch.Tensor of shape (n_timepoints_i, n_features)
        Each at least ``3 * segment_length`` long (or any object whose time slices are
        tensors, e.g. runs read lazily from disk).
    segment_length : int
        Number of time points in each of the three segments.
    standardizer : object with ``apply_(tensor)`` or None, default=None
        Applied in place to each batch.
    flat : torch.Tensor of shape (sum(n_timepoints_i), n_features) or None, default=None
        The sequences concatenated: a batch is then one ``index_select`` from it.
    """

    def __init__(self, sequences, segment_length, *, standardizer=None, flat=None):
        self.sequences = sequences
        self.segment_length = int(segment_length)
        self.standardizer = standardizer
        self.flat = flat
        self.lengths = np.array([int(s.shape[0]) for s in sequences], dtype=np.int64)
        _check_lengths(self.lengths.tolist(), self.window)
        self._starts = torch.from_numpy(np.cumsum(self.lengths) - self.lengths)
        self._steps = torch.arange(self.window)

    @property
    def window(self):
        """Window length, ``3 * segment_length``."""
        return 3 * self.segment_length

    def __len__(self):
        return int(windows_per_sequence(self.lengths, self.window).sum())

    def sampler(self, batch_size, **kwargs):
        """Return a :class:`WindowSampler` over these sequences.

        Parameters
        ----------
        batch_size : int
            Windows per batch.
        **kwargs
            The sampler's other parameters (``shuffle``, ``drop_last``, ``seed``).

        Returns
        -------
        sampler : WindowSampler
            Draws the windows of each epoch, in batches.
        """
        return WindowSampler(self.lengths, self.window, batch_size, **kwargs)

    def subset(self, indices):
        """Return the dataset of some of the sequences (same standardizer, no copy).

        Parameters
        ----------
        indices : sequence of int
            Positions of the sequences kept.

        Returns
        -------
        dataset : TripletWindowDataset
            The kept sequences.
        """
        return type(self)(
            [self.sequences[int(i)] for i in indices],
            self.segment_length,
            standardizer=self.standardizer,
        )

    def gather(self, draws, out=None):
        """Return the batch of ``draws``, written into ``out`` when given.

        Parameters
        ----------
        draws : list or torch.Tensor of ``(sequence, offset)`` pairs, shape (batch, 2)
            Windows to gather (from a :class:`WindowSampler`).
        out : torch.Tensor of shape (batch, window, n_features) or None, default=None
            Float32 buffer to write the batch into; ``None`` allocates a new tensor.

        Returns
        -------
        windows : torch.Tensor of shape (batch, 3, segment_length, n_features)
            The standardised beginning, middle and end segments (a view of ``out``).
        targets : torch.Tensor of shape (batch,)
            Dummy zeros (skorch expects ``(X, y)`` pairs).
        """
        draws = torch.as_tensor(draws, dtype=torch.int64).reshape(-1, 2)
        if self.flat is not None:  # one gather: (B, W) row indices into the buffer
            rows = (self._starts[draws[:, 0]] + draws[:, 1])[:, None] + self._steps
            flat_out = None if out is None else out.view(-1, out.shape[-1])
            batch = torch.index_select(self.flat, 0, rows.reshape(-1), out=flat_out)
        else:
            window = self.window
            pairs = draws.tolist()
            batch = torch.stack([self.sequences[s][o : o + window] for s, o in pairs], out=out)
        if self.standardizer is not None:
            self.standardizer.apply_(batch)  # in place: batch is a new tensor or the buffer
        n = len(draws)
        return batch.view(n, 3, self.segment_length, -1), torch.zeros(n)  # (B, 3, L, V)

    __getitem__ = __getitems__ = gather  # a DataLoader with a batch sampler asks for batches

    def reused_buffer(self, batch_size):
        """Return the next of two buffers of ``batch_size`` windows, alternately.

        Saves the page faults of fresh large batches; a batch stays valid until the next but one.

        Parameters
        ----------
        batch_size : int
            Windows in the batch.

        Returns
        -------
        buffer : torch.Tensor of shape (batch_size, window, n_features)
            Float32 buffer for :meth:`gather` (``out``).
        """
        shape = (int(batch_size), self.window, int(self.sequences[0].shape[1]))
        ring = vars(self).setdefault("_buffers", {}).setdefault(shape, [])
        if len(ring) < 2:
            ring.append(torch.empty(shape))
        else:
            ring.append(ring.pop(0))  # the one handed out goes last
        return ring[-1]

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_buffers", None)  # copies (DataLoader workers) gather into fresh tensors
        return state


class _ReusedBuffers(Dataset):
    """Batches gathered into the dataset's two reused buffers (fresh ones in workers)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitems__(self, draws):
        if get_worker_info() is not None:  # worker batches travel through shared memory
            return self.dataset[draws]
        return self.dataset.gather(draws, out=self.dataset.reused_buffer(len(draws)))


def window_loader(
    dataset,
    batch_size,
    *,
    shuffle=False,
    drop_last=False,
    seed=None,
    reuse_buffers=False,
    **kwargs,
):
    """Return a DataLoader of batches of a :class:`TripletWindowDataset` (skorch's iterators).

    Parameters
    ----------
    dataset : TripletWindowDataset
        The windows' sequences.
    batch_size : int
        Windows per batch.
    shuffle : bool, default=False
        Shuffle the windows each epoch.
    drop_last : bool, default=False
        Drop the last incomplete batch.
    seed : int or None, default=None
        Seed of the windows' generator; ``None``: torch's global generator.
    reuse_buffers : bool, default=False
        Gather the batches into the dataset's two :meth:`~TripletWindowDataset.reused_buffer`
        in turn (for a loop done with a batch before the next but one, e.g. skorch's).
    **kwargs
        Passed to :class:`torch.utils.data.DataLoader` (``num_workers``, ``pin_memory``...).

    Returns
    -------
    loader : torch.utils.data.DataLoader
        Yields one ``(windows, targets)`` batch per draw of the sampler.
    """
    sampler = dataset.sampler(batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    source = _ReusedBuffers(dataset) if reuse_buffers else dataset
    return DataLoader(source, batch_sampler=sampler, collate_fn=_as_is, **kwargs)


def _as_is(batch):
    """Collate function of :func:`window_loader`: the dataset already returns whole batches."""
    return batch


class TimeLockedWindowDataset(Dataset):
    """(beginning, middle, end) windows from runs that share one stimulus clock.

    Item ``i`` is subject ``a = i // (n_timepoints // (3 * L))``'s; it draws a start ``t``
    and, with ``cross_subject=True``, a subject ``b`` other than ``a``: the end is ``a``'s
    segment ``[t + 2L, t + 3L)``, the middle (positive) ``b``'s segment at the same time,
    the beginning (negative) ``b``'s segment ``[t, t + L)``. Otherwise they are the three
    consecutive segments of ``a`` from ``t``. An item is
    ``({"windows": 3 tensors (L, n_features_s), "subjects": (3,) int64}, 0)``
    (:func:`collate_time_locked` batches them); an epoch has ``n_timepoints // (3 * L)``
    items per subject.

    Parameters
    ----------
    runs : list of torch.Tensor of shape (n_timepoints, n_features_s)
        One run per subject, all with the same number of time points.
    segment_length : int
        Time points per segment ``L``.
    cross_subject : bool, default=True
        Draw the positive from another subject at the same stimulus time (needs >= 2 runs).
    generator : torch.Generator or None, default=None
        Source of the draws (``None``: torch's global generator, seeded per worker).
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
    """Collate :class:`TimeLockedWindowDataset` items, zero-padding to the widest subject.

    Parameters
    ----------
    items : list of (dict, int)
        Dataset items.

    Returns
    -------
    batch : dict
        ``"segments"``: ``(batch, 3, L, max_features)`` float tensor (beginning, middle,
        end; each subject's map reads its own first ``n_features_s`` columns),
        ``"subjects"``: ``(batch, 3)`` int64.
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
