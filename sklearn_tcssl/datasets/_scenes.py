"""Labelled blocks from time-locked runs: each person's run cut at the scenes (or events)."""

from numbers import Real

import numpy as np
from sklearn.utils import Bunch


def _check_runs(runs):
    """Return the runs as a list of 2D float arrays of one feature count."""
    listed = list(runs) if getattr(runs, "ndim", 3) == 3 else None
    if listed is None or not listed:
        raise ValueError(
            f"runs has shape {np.shape(runs)}; scene_blocks expects one run per person: a "
            "3D array (n_subjects, n_timepoints, n_features) or a list of 2D arrays, e.g. "
            "load_sherlock_pmc(path).scans[1]."
        )
    listed = [np.asarray(run) for run in listed]
    bad = [i for i, run in enumerate(listed) if run.ndim != 2]
    if bad:
        raise ValueError(
            f"runs[{bad[0]}] has shape {listed[bad[0]].shape}; each run must be 2D "
            "(n_timepoints, n_features). Pass one 2D array per person."
        )
    return listed


def _bounds_from_events(events, t_r):
    """[start, stop) time points and labels of an events table (onset, duration in s)."""
    missing = {"onset", "duration"} - set(events.columns)
    if missing:
        raise ValueError(
            f"scenes is a table without the column(s) {sorted(missing)}; pass an events "
            "table with 'onset' and 'duration' in seconds, or an (n_scenes, 2) array of "
            "[start, stop) time points."
        )
    if not isinstance(t_r, Real) or t_r <= 0:
        raise ValueError(
            f"t_r={t_r!r}: scenes given as events (seconds) need the repetition time to find "
            "their time points; pass t_r= in seconds, e.g. t_r=1.5."
        )
    onset = np.asarray(events["onset"], dtype=float)
    stop = onset + np.asarray(events["duration"], dtype=float)
    bounds = np.stack([np.rint(onset / t_r), np.rint(stop / t_r)], axis=1).astype(int)
    labels = events["trial_type"].to_numpy() if "trial_type" in events else None
    return bounds, labels


def _check_bounds(bounds, n_timepoints):
    bounds = np.asarray(bounds)
    if bounds.ndim != 2 or bounds.shape[1] != 2 or not len(bounds):
        raise ValueError(
            f"scenes has shape {bounds.shape}; expected (n_scenes, 2) [start, stop) time "
            "points, as load_sherlock_pmc(path).scenes[1]."
        )
    if not np.issubdtype(bounds.dtype, np.integer):
        raise ValueError(
            f"scenes holds {bounds.dtype} values; [start, stop) time points are integers "
            "(time points, not seconds: pass an events table with t_r for seconds)."
        )
    bad = np.flatnonzero((bounds[:, 0] < 0) | (bounds[:, 1] <= bounds[:, 0]))
    bad = bad if len(bad) else np.flatnonzero(bounds[:, 1] > n_timepoints)
    if len(bad):
        raise ValueError(
            f"scenes[{bad[0]}] = {bounds[bad[0]].tolist()} is not a [start, stop) range inside "
            f"the shortest run (0 to {n_timepoints} time points). Pass scenes of these runs "
            "(the scenes of scan 2 go with scan 2)."
        )
    return bounds


def scene_blocks(runs, scenes, *, subjects=None, labels=None, t_r=None):
    """Cut the scenes of time-locked runs into labelled blocks, person by person.

    When people watched the same movie, every run has the same scenes at the same time
    points; each scene of each person becomes one labelled block, ready for the aligners'
    ``transform`` / ``embed`` and for cross-validation across people (``groups``).

    Parameters
    ----------
    runs : ndarray of shape (n_subjects, n_timepoints, n_features) or list of 2D arrays
        One run per person on the same clock, e.g. ``load_sherlock_pmc(path).scans[1]``.
    scenes : array-like of shape (n_scenes, 2), or pandas.DataFrame
        The [start, stop) time points of each scene (stop excluded), e.g.
        ``load_sherlock_pmc(path).scenes[1]``; or an events table with ``onset`` and
        ``duration`` in seconds (and ``trial_type`` for the labels), which needs ``t_r``.
    subjects : array-like of shape (n_subjects,) or None, default=None
        The id of each person; ``None`` numbers them 0, 1, ...
    labels : array-like of shape (n_scenes,) or None, default=None
        The label of each scene; ``None`` is the scene's index (or the events'
        ``trial_type``).
    t_r : float or None, default=None
        Repetition time in seconds, for scenes given as events.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``blocks``: list of ``(stop - start, n_features)`` arrays, person after person, scenes
        in order; ``y``: the label of each block; ``groups``: the person of each block.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl.datasets import scene_blocks
    >>> runs = np.zeros((3, 20, 5))  # 3 people, 20 time points, 5 voxels
    >>> cut = scene_blocks(runs, [[0, 8], [8, 20]])
    >>> [b.shape for b in cut.blocks[:2]], cut.y.tolist(), cut.groups.tolist()
    ([(8, 5), (12, 5)], [0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 2, 2])
    """
    listed = _check_runs(runs)
    event_labels = None
    if hasattr(scenes, "columns"):
        scenes, event_labels = _bounds_from_events(scenes, t_r)
    bounds = _check_bounds(scenes, min(len(run) for run in listed))
    labels = labels if labels is not None else event_labels
    labels = np.arange(len(bounds)) if labels is None else np.asarray(labels)
    if len(labels) != len(bounds):
        raise ValueError(
            f"labels has {len(labels)} entries for {len(bounds)} scenes; pass one label per "
            "scene, or leave labels=None (the scene index)."
        )
    subjects = np.arange(len(listed)) if subjects is None else np.asarray(subjects)
    if len(subjects) != len(listed):
        raise ValueError(
            f"subjects has {len(subjects)} entries for {len(listed)} runs; pass one id per "
            "person's run, or leave subjects=None."
        )
    blocks = [run[start:stop] for run in listed for start, stop in bounds]
    return Bunch(
        blocks=blocks,
        y=np.tile(labels, len(listed)),
        groups=np.repeat(subjects, len(bounds)),
    )
