"""Time-locked multi-subject data (people watching one movie): a simulator and a loader."""

import numbers
import zipfile
import zlib
from pathlib import Path

import numpy as np
from scipy.signal import lfilter
from scipy.stats import zscore
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from sklearn_tcssl._input.validation import check_fits_in_memory
from sklearn_tcssl._utils.exceptions import DamagedFileError


def _smooth_response(rng, n_timepoints, n_components, smoothness):
    """AR(1) shared response (T, k), unit variance per component."""
    noise = rng.normal(size=(n_timepoints, n_components))
    a, b = [1.0, -smoothness], [np.sqrt(1 - smoothness**2)]
    rest, _ = lfilter(b, a, noise[1:], axis=0, zi=smoothness * noise[:1])
    return np.vstack([noise[:1], rest])


def _scene_bounds(rng, n_timepoints, n_scenes, min_length):
    free = n_timepoints - n_scenes * min_length
    cuts = np.sort(rng.choice(free + 1, size=n_scenes - 1, replace=True))
    lengths = np.diff(np.concatenate([[0], cuts, [free]])) + min_length
    stops = np.cumsum(lengths)
    return np.stack([stops - lengths, stops], axis=1)


@validate_params(
    {
        "n_subjects": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_timepoints": [Interval(numbers.Integral, 30, None, closed="left")],
        "n_features": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_scenes": [Interval(numbers.Integral, 2, None, closed="left")],
        "noise": [Interval(numbers.Real, 0, 1e6, closed="both")],
        "smoothness": [Interval(numbers.Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_time_locked_fmri(
    n_subjects=8,
    *,
    n_timepoints=300,
    n_features=60,
    # the shared response, the scenes and the noise
    n_components=8,
    n_scenes=10,
    noise=1.0,
    smoothness=0.9,
    random_state=None,
):
    """Simulate people watching the same movie twice: an unlabeled run and labelled scenes.

    Each subject's data are ``S W_s^T + noise``: a smooth shared response ``S`` (time x
    ``n_components``) seen through a random orthonormal map ``W_s`` of that subject
    (``n_features x n_components``), so the same voxel means different things in different
    people, as after anatomical normalisation of real brains. The first scan is returned as
    one unlabeled run per subject; the second scan is cut into ``n_scenes`` scenes (the same
    boundaries for everyone), each a labelled block. Every run is z-scored per feature.

    Parameters
    ----------
    n_subjects : int, default=8
        People.
    n_timepoints : int, default=300
        Time points of each scan.
    n_features : int, default=60
        Voxels per person.
    n_components : int, default=8
        Dimension of the shared response.
    n_scenes : int, default=10
        Labelled scenes in the second scan (at least 3 time points each).
    noise : float, default=1.0
        Standard deviation of the independent noise (the signal has unit variance per
        component before mixing).
    smoothness : float, default=0.9
        AR(1) coefficient of the shared response.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``runs``: list of ``n_subjects`` float32 arrays ``(n_timepoints, n_features)``
        (scan 1, unlabeled); ``blocks``: list of ``n_subjects * n_scenes`` arrays (scan 2's
        scenes, subject by subject); ``y``: scene of each block; ``groups``: subject of each
        block; ``scenes``: ``(n_scenes, 2)`` [start, stop) time points in scan 2;
        ``subjects``: ``0 .. n_subjects - 1``.

    Examples
    --------
    >>> from sklearn_tcssl.datasets import make_time_locked_fmri
    >>> data = make_time_locked_fmri(4, n_timepoints=60, n_features=20, random_state=0)
    >>> len(data.runs), data.runs[0].shape, len(data.blocks)
    (4, (60, 20), 40)
    """
    if n_components > n_features:
        raise ValueError(
            f"make_time_locked_fmri: n_components={n_components} is more than "
            f"n_features={n_features}; use n_components <= n_features."
        )
    if 3 * n_scenes > n_timepoints:
        raise ValueError(
            f"make_time_locked_fmri: n_scenes={n_scenes} scenes of at least 3 time points "
            f"do not fit in n_timepoints={n_timepoints}; lower n_scenes or raise n_timepoints."
        )
    check_fits_in_memory(
        # two scans of float64 noise and their float32 records, per subject
        3 * 2 * n_subjects * n_timepoints * n_features * 8,
        owner="make_time_locked_fmri",
        what=f"2 scans x {n_subjects} subjects of {n_timepoints} x {n_features} values",
        fix="Lower n_subjects, n_timepoints or n_features.",
    )
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31))
    maps = [
        np.linalg.qr(rng.normal(size=(n_features, n_components)))[0] for _ in range(n_subjects)
    ]
    scans = [_smooth_response(rng, n_timepoints, n_components, smoothness) for _ in range(2)]

    def record(shared, w):
        signal = shared @ w.T + noise * rng.normal(size=(n_timepoints, n_features))
        return zscore(signal).astype(np.float32)

    runs = [record(scans[0], w) for w in maps]
    second = [record(scans[1], w) for w in maps]
    scenes = _scene_bounds(rng, n_timepoints, n_scenes, 3)
    blocks = [run[a:b] for run in second for a, b in scenes]
    return Bunch(
        runs=runs,
        blocks=blocks,
        y=np.tile(np.arange(n_scenes), n_subjects),
        groups=np.repeat(np.arange(n_subjects), n_scenes),
        scenes=scenes,
        subjects=np.arange(n_subjects),
    )


def load_sherlock_pmc(path):
    """Load the Sherlock posterior-medial-cortex file (17 people, the same movie).

    The file ``sherlock_pmc_movie.npz`` holds the 481-voxel PMC time series that Chen et al.
    (2017, *Nat Neurosci* 20:115) shared with their tutorial kit (the raw data are
    OpenNeuro ds001132, CC0). It is not downloaded by this package: pass its local path.
    Each scan is z-scored per voxel and subject here.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.npz`` file: arrays ``movie`` (subjects, time points, voxels), ``scenes``
        (subjects, scenes, 2) [start, stop) time points in increasing order (the first
        subject's are used), ``scan_starts`` (first time point of each scan, increasing, the
        first 0), ``t_r`` (seconds) and ``subjects`` (one id per subject).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``scans``: list of 2 float32 arrays ``(n_subjects, n_timepoints_scan, 481)``;
        ``scenes``: list of 2 int arrays ``(n_scenes_scan, 2)`` of [start, stop) time points
        within each scan (scenes that cross the scan boundary are dropped); ``t_r``: 1.5;
        ``subjects``: subject numbers.

    Raises
    ------
    sklearn_tcssl.DamagedFileError
        If the file is truncated, not an ``.npz`` archive, or lacks an array, or an array
        has the wrong shape or values (each message names the array and what was found).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"load_sherlock_pmc: {str(path)!r} does not exist. Pass the path of "
            "sherlock_pmc_movie.npz (this package does not download it)."
        )
    movie, scenes, starts, t_r, subjects = _read_sherlock(path)
    scans, scan_scenes = [], []
    for begin, end in zip(starts[:-1], starts[1:]):
        scan = movie[:, begin:end].astype(np.float32)
        scan -= scan.mean(axis=1, keepdims=True)
        scan /= np.maximum(scan.std(axis=1, keepdims=True), 1e-8)
        scans.append(scan)
        inside = (scenes[:, 0] >= begin) & (scenes[:, 1] <= end)
        scan_scenes.append(scenes[inside] - begin)
    return Bunch(scans=scans, scenes=scan_scenes, t_r=t_r, subjects=subjects)


_SHERLOCK_ARRAYS = ("movie", "scenes", "scan_starts", "t_r", "subjects")


def _read_sherlock(path):
    """Read and check the arrays of the Sherlock archive; any problem names the array."""
    where = f"load_sherlock_pmc: {str(path)!r}"
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DamagedFileError(
                f"{where} is a single .npy array, not an .npz archive of the arrays "
                f"{', '.join(_SHERLOCK_ARRAYS)}. Pass the original sherlock_pmc_movie.npz."
            )
        with archive:
            missing = [name for name in _SHERLOCK_ARRAYS if name not in archive.files]
            if missing:
                raise DamagedFileError(
                    f"{where} lacks the array(s) {missing} (it holds {archive.files}); the "
                    f"file needs {list(_SHERLOCK_ARRAYS)}. Pass the original file."
                )
            arrays = {name: archive[name] for name in _SHERLOCK_ARRAYS}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        if isinstance(exc, DamagedFileError):
            raise
        raise DamagedFileError(
            f"{where} cannot be read as an .npz archive ({type(exc).__name__}: {exc}); it is "
            "truncated or not the Sherlock file. Copy sherlock_pmc_movie.npz again."
        ) from exc
    return _check_sherlock(arrays, where)


def _check_sherlock(arrays, where):
    movie, scenes, starts = arrays["movie"], arrays["scenes"], arrays["scan_starts"]
    if movie.ndim != 3 or not np.issubdtype(movie.dtype, np.floating):
        raise DamagedFileError(
            f"{where}: 'movie' has shape {movie.shape} and dtype {movie.dtype}; it must be a "
            "floating (subjects, time points, voxels) array."
        )
    n_subjects, n_timepoints = movie.shape[:2]
    if scenes.ndim != 3 or scenes.shape[0] < 1 or scenes.shape[2] != 2:
        raise DamagedFileError(
            f"{where}: 'scenes' has shape {scenes.shape}; it must be (subjects, scenes, 2) "
            "[start, stop) time points."
        )
    scenes = scenes[0]
    if not np.issubdtype(scenes.dtype, np.integer) or not (
        (scenes[:, 0] < scenes[:, 1]).all() and (scenes >= 0).all()
    ):
        raise DamagedFileError(
            f"{where}: 'scenes' must hold integer [start, stop) pairs with start < stop; "
            f"found {scenes[:3].tolist()}... (reversed or negative scenes)."
        )
    if (
        starts.ndim != 1
        or not np.issubdtype(starts.dtype, np.integer)
        or len(starts) < 1
        or starts[0] != 0
        or (np.diff(starts) <= 0).any()
        or starts[-1] >= n_timepoints
    ):
        raise DamagedFileError(
            f"{where}: 'scan_starts'={starts.tolist()} must be increasing integer time points "
            f"starting at 0 and before the end of the movie ({n_timepoints} time points)."
        )
    t_r = arrays["t_r"]
    if t_r.shape != () or not np.issubdtype(t_r.dtype, np.number) or not 0 < float(t_r) < 1e3:
        raise DamagedFileError(
            f"{where}: 't_r'={t_r.tolist()!r} must be one finite positive number of seconds."
        )
    subjects = arrays["subjects"]
    if subjects.shape != (n_subjects,):
        raise DamagedFileError(
            f"{where}: 'subjects' has shape {subjects.shape}; it must give one id for each "
            f"of the {n_subjects} subjects in 'movie'."
        )
    starts = [int(s) for s in starts] + [n_timepoints]
    return movie, scenes, starts, float(t_r), subjects.copy()
