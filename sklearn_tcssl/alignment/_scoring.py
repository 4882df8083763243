"""Label-free scores of an alignment: time-segment matching on time-locked runs.

The field's standard protocol (Haxby et al. 2011; Chen et al. 2015): for each person, cut
their run into every segment of ``window`` consecutive time points; correlate each segment
with the average, over the *other* people, of every segment of the same length; it is
matched when the best correlation is the segment at the same stimulus time. Candidates that
overlap the true segment (but are not it) are excluded, as in Chen et al. (2015). Chance is
about one over the number of candidates. No label is used: it measures how well people's
data line up in time, which is what an alignment is for.
"""

import numpy as np

__all__ = ["compare_with_unaligned", "segment_matching", "unaligned_runs"]


def _zscore(run):
    run = np.asarray(run, dtype=np.float64)
    scale = run.std(axis=0)
    scale[scale == 0] = 1.0
    return (run - run.mean(axis=0)) / scale


def _segments(run, window):
    # (T, k) -> (T - window + 1, window * k): every segment, flattened in time order
    view = np.lib.stride_tricks.sliding_window_view(run, window, axis=0)  # (n, k, window)
    return view.transpose(0, 2, 1).reshape(view.shape[0], -1)


def _row_normalised(segments):
    centred = segments - segments.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return centred / norm


def segment_matching(runs, window=9):
    """Time-segment matching accuracy of each person against the mean of the others.

    Parameters
    ----------
    runs : list of array-like of shape (n_timepoints, n_components)
        At least two runs on the same stimulus clock, in one common space (each is
        z-scored over time here).
    window : int, default=9
        Time points per segment (9 TRs in Chen et al. 2015).

    Returns
    -------
    accuracy : ndarray of shape (n_runs,)
        Fraction of each person's segments matched to the right stimulus time.

    Raises
    ------
    ValueError
        With fewer than two runs, runs of different shapes, or runs too short to leave
        candidates (fewer than ``3 * window`` time points).
    """
    window = int(window)
    if len(runs) < 2:
        raise ValueError(
            f"segment matching needs the runs of at least 2 people; got {len(runs)}. Pass "
            "the time-locked runs of several people."
        )
    shapes = {np.shape(r) for r in runs}
    if len(shapes) != 1:
        raise ValueError(
            f"segment matching needs runs of one shape (same clock, same space); got "
            f"{sorted(shapes)}."
        )
    n_timepoints = next(iter(shapes))[0]
    if window < 1 or n_timepoints < 3 * window:
        raise ValueError(
            f"segment matching with window={window} needs runs of at least {3 * window} time "
            f"points; these have {n_timepoints}. Lower window or pass longer runs."
        )
    segments = np.stack([_segments(_zscore(r), window) for r in runs])  # (S, n, w * k)
    total = segments.sum(axis=0)
    offsets = np.arange(segments.shape[1])
    overlapping = np.abs(offsets[:, None] - offsets[None, :]) < window
    np.fill_diagonal(overlapping, False)  # the true segment stays a candidate
    accuracy = np.empty(len(runs))
    for s, own in enumerate(segments):
        others = (total - own) / (len(runs) - 1)
        correlation = _row_normalised(own) @ _row_normalised(others).T  # (n, n)
        correlation[overlapping] = -np.inf
        accuracy[s] = np.mean(correlation.argmax(axis=1) == offsets)
    return accuracy


def unaligned_runs(runs):
    """Return the runs as they are (no alignment), or None if people differ in features.

    Parameters
    ----------
    runs : list of array-like of shape (n_timepoints, n_features_s)
        Time-locked runs.

    Returns
    -------
    runs : list of ndarray or None
        The runs when every person has the same features (one mask: the reference is then
        defined), else None.
    """
    if len({np.shape(r)[1] for r in runs}) != 1:
        return None
    return [np.asarray(r) for r in runs]


def compare_with_unaligned(aligned, raw, window=9):
    """Segment matching in the shared space and, when defined, on the unaligned runs.

    Parameters
    ----------
    aligned : list of ndarray of shape (n_timepoints, n_components)
        The runs in the shared space.
    raw : list of ndarray of shape (n_timepoints, n_features_s)
        The same runs before alignment.
    window : int, default=9
        Time points per segment.

    Returns
    -------
    scores : dict
        ``"aligned"`` and ``"unaligned"`` (None when people have different features),
        mean accuracies; ``"window"``; ``"chance"``, one over the candidates of a segment.
    """
    reference = unaligned_runs(raw)
    unaligned = None if reference is None else float(segment_matching(reference, window).mean())
    n_segments = len(aligned[0]) - window + 1
    return {
        "aligned": float(segment_matching(aligned, window).mean()),
        "unaligned": unaligned,
        "window": int(window),
        "chance": 1.0 / max(n_segments - 2 * (window - 1), 1),
    }
