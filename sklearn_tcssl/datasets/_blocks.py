"""Cut task blocks out of a 4D fMRI run: cleaned over the whole run, then sliced."""

import functools
import warnings
from numbers import Real
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.image import load_img
from nilearn.signal import clean
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_tcssl._input.files import (
    check_finite_image_data,
    check_image_file,
    image_name,
    load_image_file,
    missing_file_error,
)
from sklearn_tcssl._utils.params import validate_params

__all__ = ["extract_blocks"]

_EVENT_COLUMNS = ("onset", "duration", "trial_type")
_MAX_T_R = 100.0  # seconds; a larger "repetition time" is almost surely in milliseconds
T_R_HINT = (
    "Pass the time between two volumes in seconds (e.g. t_r=2.0); a value in milliseconds "
    "must be divided by 1000."
)
HRF_DELAY_HINT = (
    "Pass a delay in seconds (about 4-6 s for the BOLD response; 0 cuts at the onsets)."
)
#: Constraints shared with load_bids_blocks.
BLOCK_CONSTRAINTS = {
    "hrf_delay": [Interval(Real, 0, 60, closed="both")],
    "standardize": ["boolean", None, StrOptions({"zscore_sample", "zscore", "psc"})],
    "detrend": ["boolean"],
    "high_pass": [None, Interval(Real, 0, None, closed="neither")],
    "trial_types": [None, str, "array-like"],
    "min_duration": [None, Interval(Real, 0, None, closed="left")],
}
BLOCK_HINTS = {"t_r": T_R_HINT, "hrf_delay": HRF_DELAY_HINT}


def _check_t_r(t_r, source=None):
    """Return ``t_r`` as a float in (0, 100] s; ``source`` names the file it was read from."""
    where = f"t_r={t_r!r}" if source is None else f"RepetitionTime={t_r!r} in {source}"
    if isinstance(t_r, bool) or not isinstance(t_r, Real) or not 0 < t_r < np.inf:
        raise ValueError(
            f"{where} is not a valid repetition time: pass the time between two volumes in "
            "seconds, a number > 0 (e.g. 2.0)."
        )
    if t_r > _MAX_T_R:
        raise ValueError(
            f"{where} is not a valid repetition time: {t_r:g} s is longer than {_MAX_T_R:g} s, "
            f"so it is probably in milliseconds. BIDS and this package use seconds: write "
            f"{t_r / 1000:g}."
        )
    return float(t_r)


def _load_run(img):
    """Load a run, with clear errors for a missing or unreadable file."""
    if isinstance(img, (str, Path)):
        if not Path(img).exists():
            fix = "Pass the path of an existing 4D run (.nii or .nii.gz) or a nibabel image."
            raise missing_file_error(img, "img", fix)
        img = load_image_file(img, "img")
    img = load_img(img)
    check_image_file(img)  # gzip CRC and length: an error naming the file
    return img


def _read_events(events):
    """Return the checked events sorted by onset; ``attrs["source"]`` names them in errors."""
    source = "events"
    if isinstance(events, (str, Path)):
        source = f"events={str(events)!r}"
        events = _read_events_file(Path(events))
    if not isinstance(events, pd.DataFrame):
        raise TypeError(
            f"events must be a pandas DataFrame or the path to a BIDS events.tsv file; "
            f"got {type(events).__name__}."
        )
    source = events.attrs.get("source", source)
    missing = [col for col in _EVENT_COLUMNS if col not in events.columns]
    if missing:
        raise ValueError(
            f"{source} lacks the column(s) {missing}; it has {list(events.columns)}. "
            "A BIDS events table needs 'onset' and 'duration' in seconds and a "
            "'trial_type' naming the condition of each block."
        )
    events = _numeric_times(events, source)
    events = events.sort_values("onset", kind="stable").reset_index(drop=True)
    events.attrs["source"] = source
    return events


def _read_events_file(path):
    if not path.is_file():
        raise missing_file_error(path, "events", "Pass a BIDS events.tsv or a DataFrame.")
    try:
        return pd.read_csv(path, sep="\t", na_values=["n/a"], encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"events={str(path)!r} is empty. A BIDS events.tsv starts with the header row "
            "'onset<TAB>duration<TAB>trial_type', then one row per block: write them, or "
            "pass the events as a DataFrame."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"events={str(path)!r} is not a tab-separated table ({exc}). Write it as BIDS "
            "asks: tab-separated, a header row, 'n/a' for missing values."
        ) from None


def _numeric_times(events, source):
    """Check 'onset' and 'duration': numbers, finite onsets, durations >= 0 or n/a."""
    events = events.copy()
    for column in ("onset", "duration"):
        values = pd.to_numeric(events[column], errors="coerce")
        text = values.isna() & events[column].notna()
        if text.any():
            row = int(np.flatnonzero(text)[0])
            raise ValueError(
                f"{source}: column {column!r} holds {events[column].iloc[row]!r} in row {row}, "
                "not a number of seconds. Write numbers in seconds ('n/a' for a missing "
                "duration)."
            )
        events[column] = values.astype(float)
    refuse, durations = functools.partial(_refuse_rows, events, source), events["duration"]
    refuse(
        "onset",
        ~np.isfinite(events["onset"]),
        "Every block needs a finite onset in seconds from the first volume: fill it in or "
        "delete the row.",
    )
    refuse(
        "duration", durations < 0, "Durations are seconds >= 0: fix the value or delete the row."
    )
    refuse("duration", np.isinf(durations), "Write the block's duration in seconds.")
    return events


def _refuse_rows(events, source, column, bad, fix):
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    shown = ", ".join(
        f"row {i} (trial_type={events['trial_type'].iloc[i]!r}): {events[column].iloc[i]:g}"
        for i in rows[:3]
    ) + (f" and {len(rows) - 3} more" if len(rows) > 3 else "")
    raise ValueError(f"{source}: invalid {column!r} in {shown}. {fix}")


def _select_events(events, trial_types):
    source = events.attrs.get("source", "events")
    n_missing = int(events["trial_type"].isna().sum())
    if n_missing:
        warnings.warn(
            f"Dropped {n_missing} event(s) without a trial_type (n/a) from {source}.",
            UserWarning,
            stacklevel=3,
        )
        events = events[events["trial_type"].notna()]
    if trial_types is not None:
        trial_types = [trial_types] if isinstance(trial_types, str) else list(trial_types)
        present = events["trial_type"].unique().tolist()
        events = events[events["trial_type"].isin(trial_types)]
        if events.empty and present:
            raise ValueError(
                f"trial_types={trial_types!r} ({_type_names(trial_types)}) matches none "
                f"of the trial types in {source}: {sorted(present, key=str)!r} "
                f"({_type_names(present)}). Pass some of those, of the same type."
            )
    if events.empty:
        raise ValueError(
            f"No events to cut: the events table ({source}) is empty. Pass an events table "
            "with at least one block."
        )
    missing = events["duration"].isna()
    if missing.all():
        raise ValueError(
            f"{source}: column 'duration' is n/a in every one of the {len(events)} events "
            "kept, so no block can be cut. Fill in each block's duration in seconds."
        )
    if missing.any():
        warnings.warn(
            f"Dropped {int(missing.sum())} event(s) whose duration is n/a from {source}.",
            UserWarning,
            stacklevel=3,
        )
        events = events[~missing]
    events = events.reset_index(drop=True)
    events.attrs["source"] = source
    return events


def _type_names(values):
    return "of type " + "/".join(sorted({type(v).__name__ for v in values}))


def _cleaning_mask(mask_img, img):
    """Return the voxels of ``mask_img`` (on the run's grid, not empty) as a boolean array."""
    mask_img = load_img(mask_img)
    check_image_file(mask_img)
    if mask_img.shape[:3] != img.shape[:3] or not np.allclose(mask_img.affine, img.affine):
        raise ValueError(
            f"mask_img (shape {mask_img.shape[:3]}) is not on the run's grid (shape "
            f"{img.shape[:3]}); resample it with nilearn.image.resample_to_img("
            "mask_img, img, interpolation='nearest')."
        )
    mask = np.asarray(mask_img.dataobj).astype(bool).reshape(img.shape[:3])
    if not mask.any():
        raise ValueError(
            f"mask_img={image_name(mask_img, '(in memory)')} has no non-zero voxel: "
            "no block would hold any data. Pass a brain mask of the run (e.g. "
            "nilearn.masking.compute_epi_mask(img)), or mask_img=None."
        )
    return mask


def _block_frames(events, t_r, hrf_delay, n_scans, min_duration):
    """Return (start, stop) volume indices of each block and a keep mask (refused if empty)."""
    onsets = events["onset"].to_numpy(dtype=float)
    durations = events["duration"].to_numpy(dtype=float)
    # Round half up (not to even), so that a fixed delay shifts every block alike.
    starts = np.floor((onsets + hrf_delay) / t_r + 0.5).astype(int)
    lengths = np.floor(durations / t_r + 0.5).astype(int)
    for i in np.flatnonzero((starts < 0) | (starts >= n_scans)):
        raise ValueError(
            f"Block {i} (trial_type={events['trial_type'].iloc[i]!r}, onset={onsets[i]:g} s) "
            f"starts at volume {starts[i]} after the hrf_delay={hrf_delay:g} s shift, outside "
            f"the run's {n_scans} volumes ({n_scans * t_r:g} s at t_r={t_r:g}). Check that the "
            "events belong to this run, that t_r is right, or lower hrf_delay."
        )
    stops = np.minimum(starts + lengths, n_scans)
    clipped = stops < starts + lengths
    if clipped.any():
        warnings.warn(
            f"{int(clipped.sum())} block(s) run past the end of the run ({n_scans} volumes) "
            f"after the hrf_delay={hrf_delay:g} s shift and were clipped to it.",
            UserWarning,
            stacklevel=3,
        )
    min_volumes = 1 if min_duration is None else max(1, int(np.ceil(min_duration / t_r - 1e-9)))
    keep = (stops - starts) >= min_volumes
    if not keep.all():
        warnings.warn(
            f"Dropped {int((~keep).sum())} block(s) shorter than {min_volumes} volume(s) "
            f"(min_duration={min_duration}, t_r={t_r:g}): trial types "
            f"{sorted(map(str, set(events['trial_type'][~keep])))}.",
            UserWarning,
            stacklevel=3,
        )
    if not keep.any():
        durations = sorted(set(events["duration"].round(3)))
        limit = f"min_duration={min_duration} s" if min_duration is not None else "one volume"
        raise ValueError(
            f"Every block of {events.attrs.get('source', 'events')} is shorter than {limit} at "
            f"t_r={t_r:g} s (durations: {durations[:5]} s). Check that 'duration' and t_r are "
            "in seconds, or lower min_duration."
        )
    return np.column_stack([starts, stops]), keep


def _cut_blocks(data, affine, header, frames):
    """One float32 image per (start, stop) row of ``frames``: views of ``data`` (X, Y, Z, T)."""
    header = header.copy()
    header.set_data_dtype(np.float32)
    return [nib.Nifti1Image(data[..., start:stop], affine, header) for start, stop in frames]


@validate_params(
    {
        "img": "no_validation",
        "events": "no_validation",
        "t_r": [Interval(Real, 0, _MAX_T_R, closed="right")],
        **BLOCK_CONSTRAINTS,
        "mask_img": "no_validation",
        "return_frames": ["boolean"],
    },
    hints=BLOCK_HINTS,
)
def extract_blocks(
    img,
    events,
    t_r,
    *,
    hrf_delay=5.0,
    standardize=True,
    detrend=True,
    high_pass=None,
    mask_img=None,
    trial_types=None,
    min_duration=None,
    return_frames=False,
):
    """Cut the task blocks of one 4D fMRI run into one 4D image per block.

    The run is cleaned as a whole (``nilearn.signal.clean``), then the blocks are cut, each
    ``hrf_delay`` seconds after its onset.

    .. warning::
       Do not z-score each block on its own afterwards (for instance with a masker built
       with ``standardize="zscore_sample"`` applied to the block images): that sets every
       block's mean pattern to zero, and the mean pattern carries most of the task
       information. Mask the blocks with ``standardize=None``; normalise whole runs only.

    Parameters
    ----------
    img : Niimg-like or str or pathlib.Path
        The 4D run (image or path).
    events : pandas.DataFrame or str or pathlib.Path
        The run's events, or the path to a BIDS ``events.tsv`` file, with columns ``onset``
        and ``duration`` (seconds from the first volume) and ``trial_type`` (the label).
        Rows without a ``trial_type`` are dropped with a warning.
    t_r : float
        Repetition time in seconds, in (0, 100] (larger values are milliseconds: refused).
    hrf_delay : float, default=5.0
        Haemodynamic delay in seconds, in [0, 60].
    standardize : bool or {"zscore_sample", "zscore", "psc"}, default=True
        True z-scores each voxel over the whole run (``"zscore_sample"``); a string is
        passed to ``nilearn.signal.clean``; False (or None) keeps the scale.
    detrend : bool, default=True
        Remove each voxel's linear trend over the whole run.
    high_pass : float or None, default=None
        High-pass cutoff in Hz (cosine drift basis) applied over the whole run, e.g. 0.008.
    mask_img : Niimg-like or None, default=None
        Voxels to clean, on the run's grid; others become 0. By default the voxels that vary
        over the run. Ignored without cleaning.
    trial_types : list of str or None, default=None
        Keep only these trial types (e.g. to leave out ``"rest"``). Default keeps all.
    min_duration : float or None, default=None
        Blocks shorter than this (seconds, after rounding to volumes and clipping to the run)
        are dropped with a warning; by default only blocks of no volume.
    return_frames : bool, default=False
        Also return the (start, stop) volume indices of each block in the run.

    Returns
    -------
    block_imgs : list of nibabel.Nifti1Image
        One float32 4D image per block, in onset order: volumes ``round((onset + hrf_delay)
        / t_r)`` (half up) to that plus ``round(duration / t_r)``, clipped to the run (with a
        warning). They share memory with the cleaned run: copy one before writing into it.
    labels : numpy.ndarray of shape (n_blocks,)
        The ``trial_type`` of each block.
    frames : numpy.ndarray of shape (n_blocks, 2)
        [start, stop) volume of each block; only with ``return_frames=True``.

    Raises
    ------
    ValueError
        If ``t_r`` is not > 0, the image is not 4D, ``events`` lacks a required column or
        holds no event, or a block starts outside the run.

    See Also
    --------
    load_bids_blocks : Cut the blocks of every run of a BIDS dataset.

    Examples
    --------
    >>> import numpy as np, nibabel as nib, pandas as pd
    >>> from sklearn_tcssl.datasets import extract_blocks
    >>> rng = np.random.default_rng(0)
    >>> run = nib.Nifti1Image(rng.normal(size=(4, 4, 4, 40)).astype("float32"), np.eye(4))
    >>> events = pd.DataFrame(
    ...     {"onset": [10.0, 40.0], "duration": [16.0, 16.0], "trial_type": ["a", "b"]}
    ... )
    >>> blocks, labels = extract_blocks(run, events, t_r=2.0)
    >>> [b.shape for b in blocks], list(labels)
    ([(4, 4, 4, 8), (4, 4, 4, 8)], ['a', 'b'])
    """
    t_r, hrf_delay = _check_t_r(t_r), float(hrf_delay)
    if not isinstance(standardize, str):
        standardize = "zscore_sample" if standardize else None
    events = _select_events(_read_events(events), trial_types)

    img = _load_run(img)
    if len(img.shape) != 4:
        raise ValueError(
            f"img must be a 4D image (x, y, z, time); got shape {img.shape}. Pass a whole "
            "run, not a single volume or a mask."
        )
    n_scans = img.shape[3]
    frames, keep = _block_frames(events, t_r, hrf_delay, n_scans, min_duration)

    data = np.asarray(img.dataobj).astype(np.float32)  # a copy: blocks are views of it
    where = f"img={image_name(img, '(in memory)')}"
    cleaning = detrend or standardize is not None or high_pass is not None
    if mask_img is None or not cleaning:  # the default mask would drop NaN voxels silently
        check_finite_image_data(data, where)
    if cleaning:
        if mask_img is None:
            mask = data.std(axis=3) > 0
        else:
            mask = _cleaning_mask(mask_img, img)
            check_finite_image_data(data[mask], f"{where} (inside mask_img)")
        signals = clean(  # each voxel of the mask over the whole run; 0 outside
            data[mask].T,
            detrend=detrend,
            standardize=standardize,
            t_r=t_r,
            filter="cosine" if high_pass is not None else False,
            high_pass=high_pass,
            standardize_confounds=False,
        )
        data[~mask] = 0.0
        data[mask] = signals.T

    frames = frames[keep]
    block_imgs = _cut_blocks(data, img.affine, img.header, frames)
    labels = events["trial_type"].to_numpy()[keep]
    if return_frames:
        return block_imgs, labels, frames
    return block_imgs, labels
