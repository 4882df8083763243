"""A block-design task-fMRI simulator with task information placed in the Yeo 7 networks."""

import time
from numbers import Integral, Real

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.glm.first_level import compute_regressor
from nilearn.image import load_img, resample_img
from nilearn.signal import clean
from scipy import sparse
from scipy.ndimage import gaussian_filter, shift
from scipy.signal import lfilter
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._input.validation import check_fits_in_memory
from sklearn_tcssl._utils.params import validate_params
from sklearn_tcssl.datasets._blocks import _block_frames, _cut_blocks
from sklearn_tcssl.networks import YEO7_NETWORKS

__all__ = ["make_network_atlas", "make_task_fmri"]

_NETWORK_NAMES = tuple(sorted(YEO7_NETWORKS, key=YEO7_NETWORKS.get))
# MNI bounding box of the simulated grid (mm) and the brain ellipsoid in it.
_BOX_MIN = np.array([-72.0, -108.0, -54.0])
_BOX_MAX = np.array([72.0, 72.0, 84.0])
_CENTER = np.array([0.0, -18.0, 14.0])
_SEMI_AXES = np.array([68.0, 88.0, 64.0])
_CORTEX_THICKNESS = 0.19  # outer fraction of the ellipsoid's radius that is "cortex"
# Seeds (right hemisphere, mirrored to the left) of the synthetic networks, roughly where
# Yeo et al. (2011) place them; each cortex voxel joins the network of its nearest seed.
_SEEDS = {
    "visual": [(15, -95, 5), (35, -82, -8), (8, -75, 15)],
    "somatomotor": [(38, -25, 60), (58, -15, 25), (8, -25, 72), (50, -10, 42)],
    "dorsal_attention": [(25, -62, 58), (48, -65, 0), (28, -5, 58)],
    "ventral_attention": [(58, -40, 30), (40, 12, 2), (6, 18, 40)],
    "limbic": [(20, 35, -22), (40, 12, -38), (40, -15, -35)],
    "frontoparietal": [(44, 38, 20), (48, -52, 46), (30, 55, 5)],
    "default": [(6, 55, 8), (6, -55, 30), (58, -22, -12), (46, -70, 32), (22, 30, 48)],
}
# Task-general (non-discriminative) response of each network, in units of effect_size:
# visual and attention networks switch on during every task, the default network off.
_COMMON_RESPONSE = {"visual": 1.0, "dorsal_attention": 0.5, "somatomotor": 0.3, "default": -0.5}
# Relative strength of the task-specific patterns: visual carries every task, strongly.
_NETWORK_GAIN = {"visual": 1.0}
_OTHER_GAIN = 0.45
_PREPROCESSING = {
    True: "cleaned runs (detrended, z-scored per voxel)",
    False: "runs in scanner units, blocks uncleaned",
}


def _positive_int(minimum):
    return [Interval(Integral, minimum, None, closed="left")]


def _real(low, high, closed="both"):
    return [Interval(Real, low, high, closed=closed)]


#: Bounds of make_task_fmri's parameters (finite: inf and nan are refused).
_SIMULATE_CONSTRAINTS = {
    "n_subjects": _positive_int(1),
    "n_runs": _positive_int(1),
    "n_tasks": _positive_int(2),
    "n_blocks": _positive_int(1),
    "block_duration": _positive_int(1),
    "rest_duration": _positive_int(0),
    "t_r": _real(0, 100, "right"),
    "voxel_size": _real(2, 30),
    "effect_size": _real(0, 100),
    "noise_ar": _real(0, 1, "left"),
    "noise_fwhm": _real(0, 100),
    "pattern_fwhm": _real(0, 100),
    "drift": _real(0, 100),
    "subject_variability": _real(0, 1),
    "jitter": _real(0, 100),
    "task_networks": [None, dict],
    "atlas": "no_validation",
    "preprocessed": ["boolean"],
    "hrf_model": [str, callable, None],
    "hrf_delay": _real(0, 60),
    "random_state": ["random_state"],
}
_HINTS = {
    "voxel_size": "Finer grids need far more memory; 6 mm (the default) runs in seconds.",
    "t_r": "Pass the time between two volumes in seconds (e.g. t_r=2.0).",
}


def _grid(voxel_size):
    shape = tuple(int(n) for n in np.floor((_BOX_MAX - _BOX_MIN) / voxel_size).astype(int) + 1)
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = _BOX_MIN
    return shape, affine


def _synthetic_networks(shape, affine, voxel_size):
    """Labels 0..7 on a cortical shell (plus medial wall) of a brain-shaped ellipsoid."""
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    radius = np.sqrt((((xyz - _CENTER) / _SEMI_AXES) ** 2).sum(axis=1))
    medial_wall = (np.abs(xyz[:, 0]) < voxel_size) & (radius > 0.4) & (xyz[:, 2] > -20)
    cortex = (radius <= 1.0) & ((radius > 1.0 - _CORTEX_THICKNESS) | medial_wall)
    seeds, seed_labels = [], []
    for name, points in _SEEDS.items():
        for x, y, z in points:
            seeds += [(x, y, z), (-x, y, z)]
            seed_labels += [YEO7_NETWORKS[name]] * 2
    seeds = np.asarray(seeds, dtype=float)
    dist = ((xyz[cortex, None, :] - seeds[None]) ** 2).sum(axis=2)
    labels = np.zeros(len(xyz), dtype=np.int16)
    labels[cortex] = np.asarray(seed_labels)[dist.argmin(axis=1)]
    return labels.reshape(shape)


def _atlas_networks(atlas, shape, affine):
    """Resample a Yeo 7-network label image (MNI) to the grid, nearest neighbour."""
    img = load_img(atlas)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine)
    if len(img.shape) != 3:
        raise ValueError(
            f"atlas must be a 3D label image (or 4D with one volume); got shape {img.shape}."
        )
    img = resample_img(
        img,
        target_affine=affine,
        target_shape=shape,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    labels = np.rint(np.asarray(img.dataobj)).astype(np.int16)
    values = set(np.unique(labels)) - {0}
    if not values or not values <= set(range(1, 8)):
        raise ValueError(
            f"atlas must hold the Yeo 7-network labels 0..7 (in MNI space); after resampling "
            f"to the grid it holds {sorted(int(v) for v in values)}. Pass the 7-network "
            "volume of nilearn.datasets.fetch_atlas_yeo_2011(n_networks=7), or atlas=None."
        )
    return labels


@validate_params(
    {"voxel_size": _SIMULATE_CONSTRAINTS["voxel_size"], "atlas": "no_validation"}, hints=_HINTS
)
def make_network_atlas(voxel_size=6.0, *, atlas=None):
    """Return the 7-network label image used by :func:`make_task_fmri` on its grid.

    Parameters
    ----------
    voxel_size : float, default=6.0
        Isotropic voxel size of the grid in mm (MNI space), in [2, 30].
    atlas : Niimg-like or str or pathlib.Path or None, default=None
        None builds a synthetic layout of the 7 networks on the cortical shell of a
        brain-shaped ellipsoid (visual posterior, somatomotor central, limbic
        inferior-anterior, default medial and lateral-temporal, ...). A Yeo 2011 7-network
        image in MNI space (labels 0..7, e.g. ``fetch_atlas_yeo_2011(n_networks=7).maps``)
        is resampled to the grid instead (nearest neighbour).

    Returns
    -------
    atlas : sklearn.utils.Bunch
        ``maps`` (3D int16 label image, 0 outside the networks), ``mask_img`` (the voxels
        with a label > 0), ``labels`` (dict name -> label, see
        :data:`sklearn_tcssl.networks.YEO7_NETWORKS`) and ``names`` (names in label order).

    Examples
    --------
    >>> from sklearn_tcssl.datasets import make_network_atlas
    >>> atlas = make_network_atlas()
    >>> atlas.names[0], atlas.maps.shape
    ('visual', (25, 31, 24))
    """
    voxel_size = float(voxel_size)
    shape, affine = _grid(voxel_size)
    if atlas is None:
        labels = _synthetic_networks(shape, affine, voxel_size)
    else:
        labels = _atlas_networks(atlas, shape, affine)
    return Bunch(
        maps=nib.Nifti1Image(labels, affine),
        mask_img=nib.Nifti1Image((labels > 0).astype(np.uint8), affine),
        labels=dict(YEO7_NETWORKS),
        names=list(_NETWORK_NAMES),
    )


def _default_task_networks(task_names):
    """Visual carries every task, limbic none, each other network two tasks in three."""
    others = [n for n in _NETWORK_NAMES if n not in ("visual", "limbic")]
    return {
        task: ("visual",) + tuple(n for j, n in enumerate(others) if (k + j) % 3 != 0)
        for k, task in enumerate(task_names)
    }


def _check_task_networks(task_networks, task_names):
    if task_networks is None:
        return _default_task_networks(task_names)
    if not isinstance(task_networks, dict) or set(task_networks) != set(task_names):
        raise ValueError(
            f"task_networks must be a dict with one key per task {task_names}; got "
            f"{task_networks!r}."
        )
    out = {}
    for task in task_names:
        nets = (
            (task_networks[task],) if isinstance(task_networks[task], str) else task_networks[task]
        )
        unknown = [n for n in nets if n not in YEO7_NETWORKS]
        if unknown:
            raise ValueError(
                f"task_networks[{task!r}] names unknown network(s) {unknown}; use names "
                f"from {list(_NETWORK_NAMES)}."
            )
        out[task] = tuple(nets)
    return out


def _smooth_field(rng, shape, sigma):
    field = gaussian_filter(rng.standard_normal(shape), sigma)
    return field / field.std()


def _patterns(rng, labels, task_networks, sigma):
    """Return the task-specific patterns, their gain maps and the task-general pattern.

    The first two are (n_tasks, X, Y, Z), the last (X, Y, Z).
    """
    patterns = np.zeros((len(task_networks),) + labels.shape)
    gains = np.zeros_like(patterns)
    for k, nets in enumerate(task_networks.values()):
        for name in nets:
            in_net = labels == YEO7_NETWORKS[name]
            gains[k][in_net] = _NETWORK_GAIN.get(name, _OTHER_GAIN)
            patterns[k][in_net] = _smooth_field(rng, labels.shape, sigma)[in_net]
    common = np.zeros(labels.shape)
    for name, weight in _COMMON_RESPONSE.items():
        in_net = labels == YEO7_NETWORKS[name]
        common[in_net] = weight * (1.0 + 0.3 * _smooth_field(rng, labels.shape, sigma)[in_net])
    return patterns * gains, gains, common


def _subject_patterns(rng, patterns, gains, common, *, variability, jitter_vox, sigma):
    """Shift the group patterns by a subject-specific offset and mix in a subject field."""
    direction = rng.standard_normal(3)
    offset = rng.uniform(0.0, jitter_vox) * direction / np.linalg.norm(direction)
    out = np.empty_like(patterns)
    for k, (pattern, gain) in enumerate(zip(patterns, gains, strict=True)):
        own = gain * _smooth_field(rng, pattern.shape, sigma)
        out[k] = np.sqrt(1 - variability) * shift(pattern, offset, order=1)
        out[k] += np.sqrt(variability) * own
    return out, shift(common, offset, order=1)


def _run_events(rng, task_names, n_blocks, block_s, rest_s):
    order = rng.permutation(np.repeat(np.arange(len(task_names)), n_blocks))
    onsets = rest_s + np.arange(len(order)) * (block_s + rest_s)
    return pd.DataFrame(
        {
            "onset": onsets,
            "duration": np.full(len(order), block_s),
            "trial_type": np.asarray(task_names, dtype=object)[order],
        }
    )


def _regressors(rng, events, task_names, frame_times, hrf_model, block_gain_sd):
    """HRF-convolved block regressors (n_scans, n_tasks), with a random gain per block."""
    regs = np.zeros((len(frame_times), len(task_names)))
    for k, task in enumerate(task_names):
        ev = events[events["trial_type"] == task]
        gains = np.clip(rng.normal(1.0, block_gain_sd, size=len(ev)), 0.2, None)
        condition = np.vstack([ev["onset"], ev["duration"], gains])
        regs[:, k] = compute_regressor(condition, hrf_model, frame_times)[0][:, 0]
    return regs


def _smoothing_operator(mask, sigma):
    """Sparse Gaussian kernel (n_voxels_in_mask, n_sources) and the source count.

    White noise drawn on the sources (the mask and its neighbours within 3 sigma) and
    multiplied by this operator equals ``gaussian_filter`` restricted to the mask, at a
    fraction of the cost.
    """
    radius = max(int(np.ceil(3 * sigma)), 0)
    ijk = np.argwhere(mask)
    rows, cols, weights = [], [], []
    for d in np.ndindex((2 * radius + 1,) * 3):
        offset = np.asarray(d) - radius
        weight = (
            np.exp(-(offset**2).sum() / (2 * sigma**2)) if sigma > 0 else float(not offset.any())
        )
        if weight < 1e-3:
            continue
        neighbours = ijk + offset
        rows.append(np.arange(len(ijk)))
        cols.append(np.ravel_multi_index(neighbours.T, mask.shape, mode="clip"))
        weights.append(np.full(len(ijk), weight))
    rows, cols, weights = map(np.concatenate, (rows, cols, weights))
    sources, cols = np.unique(cols, return_inverse=True)
    kernel = sparse.csr_matrix((weights, (rows, cols)), shape=(len(ijk), len(sources)))
    norm = np.sqrt(np.asarray(kernel.multiply(kernel).sum(axis=1)).ravel())
    return (sparse.diags(1.0 / norm) @ kernel).astype(np.float32).tocsr()


def _noise(rng, n_scans, kernel, *, ar, global_sd):
    """AR(1), spatially smooth noise of unit variance, (n_scans, n_voxels_in_mask)."""
    white = rng.standard_normal((kernel.shape[1], n_scans), dtype=np.float32)
    noise = lfilter([np.sqrt(1 - ar**2)], [1.0, -ar], kernel @ white, axis=1).T  # (T, V)
    glob = lfilter([np.sqrt(1 - ar**2)], [1.0, -ar], rng.standard_normal(n_scans))
    loading = 1 + 0.2 * rng.standard_normal(kernel.shape[0])
    return noise + global_sd * glob[:, None] * loading


def _drift(rng, frame_times, n_voxels, amplitude):
    """Slow drift per voxel: a linear trend and cosines of periods >= 128 s."""
    duration = frame_times[-1] + frame_times[1]
    basis = [frame_times / duration - 0.5]
    n_cos = int(np.floor(2 * duration / 128.0))
    basis += [
        np.cos(np.pi * (frame_times / duration + 0.5 / len(frame_times)) * j)
        for j in range(1, n_cos + 1)
    ]
    basis = np.column_stack(basis)
    coefs = rng.normal(0.0, 1.0, size=(basis.shape[1], n_voxels))
    coefs /= np.sqrt(np.arange(1, basis.shape[1] + 1))[:, None]
    return amplitude * basis @ coefs


@validate_params(_SIMULATE_CONSTRAINTS, hints=_HINTS)
def make_task_fmri(
    n_subjects=12,
    *,
    n_runs=2,
    n_tasks=4,
    n_blocks=3,
    block_duration=12,
    rest_duration=8,
    t_r=2.0,
    voxel_size=6.0,
    effect_size=0.25,
    noise_ar=0.5,
    noise_fwhm=8.0,
    pattern_fwhm=12.0,
    drift=1.0,
    subject_variability=0.5,
    jitter=6.0,
    task_networks=None,
    atlas=None,
    preprocessed=True,
    hrf_model="glover",
    hrf_delay=5.0,
    random_state=None,
):
    """Simulate a block-design task-fMRI dataset with task information in chosen networks.

    Each subject performs ``n_runs`` runs; a run alternates rest and task blocks, every
    task ``n_blocks`` times in a random order. A task block evokes, through an HRF, a
    task-specific spatial pattern in the networks that carry that task (``task_networks``)
    plus a task-general response (visual and attention networks on, default network off).
    Patterns vary across subjects (a subject-specific field and a small spatial shift);
    noise is spatially smooth and AR(1) in time, with a global signal and slow drifts. All
    amplitudes are in percent signal change of a voxel's baseline (noise sd = 1 %).

    The runs are then cleaned (each voxel detrended and z-scored over the whole run) and
    the blocks cut with :func:`~sklearn_tcssl.datasets.extract_blocks`, shifted by
    ``hrf_delay`` seconds; so ``imgs`` are ready for a masker with ``standardize=None``.

    Parameters
    ----------
    n_subjects : int, default=12
        Number of subjects.
    n_runs : int, default=2
        Runs per subject.
    n_tasks : int, default=4
        Number of tasks (classes), labelled ``"task0"``, ``"task1"``, ...
    n_blocks : int, default=3
        Blocks of each task per run.
    block_duration : int, default=12
        Length of a task block, in volumes (TRs).
    rest_duration : int, default=8
        Rest before the first block, between blocks and after the last one, in volumes.
    t_r : float, default=2.0
        Repetition time in seconds.
    voxel_size : float, default=6.0
        Isotropic voxel size in mm of the MNI-space grid. The default grid is
        25 x 31 x 24 with about 2.9k cortical voxels (in ``mask_img``) for the synthetic
        layout, 4.8k with the real Yeo atlas.
    effect_size : float, default=0.25
        Amplitude (percent signal change, noise sd = 1) of the task-specific patterns in
        the visual network; other carrying networks get 0.45 times it.
    noise_ar : float, default=0.5
        AR(1) coefficient of the noise, in [0, 1).
    noise_fwhm : float, default=8.0
        Spatial smoothness (FWHM, mm) of the noise.
    pattern_fwhm : float, default=12.0
        Spatial smoothness (FWHM, mm) of the activation patterns (group and subject).
    drift : float, default=1.0
        Amplitude (percent signal change) of each voxel's slow drift.
    subject_variability : float, default=0.5
        Share, in [0, 1], of each subject's pattern variance that is subject-specific.
    jitter : float, default=6.0
        Largest shift (mm) of a subject's patterns: each subject's patterns move by a
        random vector whose length is uniform in [0, jitter] (3 mm on average).
    task_networks : dict or None, default=None
        Task name -> names of the networks carrying that task's specific pattern. Default:
        visual carries every task, limbic none, and somatomotor, dorsal_attention,
        ventral_attention, frontoparietal and default each carry two tasks in three.
    atlas : Niimg-like or str or pathlib.Path or None, default=None
        The 7-network layout (see :func:`make_network_atlas`): None for a synthetic one, or
        a Yeo 2011 7-network image in MNI space, resampled to the grid.
    preprocessed : bool, default=True
        True returns cleaned runs and blocks (detrended, z-scored per voxel over the run).
        False returns the runs in scanner units (voxel-wise baselines in the hundreds to
        thousands, with drifts) and blocks cut from them without any cleaning.
    hrf_model : str, default="glover"
        HRF of ``nilearn.glm.first_level.compute_regressor`` (``"glover"``, ``"spm"``, ...).
    hrf_delay : float, default=5.0
        Delay in seconds added to each onset when cutting the blocks.
    random_state : int, numpy.random.RandomState or None, default=None
        Seed for reproducible datasets.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields:

        - ``imgs``: list of 4D Nifti1Image (float32), one per block (``block_duration``
          volumes), in subject, run and onset order.
        - ``y``: numpy.ndarray of str, the task of each block.
        - ``groups``: numpy.ndarray of int, the subject of each block.
        - ``block_runs``: numpy.ndarray of int, the run (0 .. n_subjects * n_runs - 1) of
          each block.
        - ``runs`` (and its alias ``run_imgs``): list of the continuous 4D runs, e.g. for
          unlabeled pretraining; ``run_groups`` gives their subjects.
        - ``events``: list of pandas.DataFrame (onset, duration, trial_type), one per run.
        - ``networks_img``: 3D label image (0..7) of the networks; ``network_names``.
        - ``mask_img``: mask of the simulated (cortical) voxels.
        - ``t_r``, ``task_networks`` (task -> carrying networks), ``description``.

    Raises
    ------
    ValueError
        If a parameter is out of range, ``task_networks`` names an unknown network or task,
        or ``atlas`` does not hold the labels 0..7.

    See Also
    --------
    extract_blocks : Cut the blocks of a real run.
    make_network_atlas : The networks image alone.

    Notes
    -----
    Calibration. The classical decoder, the mean over time of each block's masked voxels
    (``MultiNiftiMasker(mask_img=data.mask_img, standardize=None)``) fed to
    ``LogisticRegression(max_iter=2000)`` with ``GroupKFold(5)`` over subjects, scores on
    the default dataset (4 tasks, chance 0.25; mean +- sd over the 5 folds):
    0.80 +- 0.08 (``random_state=0``), 0.69 +- 0.10 (1) and 0.68 +- 0.08 (2), so 0.72 on
    average; ``LinearSVC()`` gives 0.79, 0.69 and 0.68. Each network alone (logistic
    regression, seeds 0-2 averaged): visual 0.71, somatomotor 0.30, dorsal_attention 0.37,
    ventral_attention 0.33, limbic 0.22, frontoparietal 0.30, default 0.40; so visual is
    about as good as the whole brain and limbic is at chance, as in Shi et al. (2023).
    ``effect_size=0.5`` gives 0.98, ``subject_variability=0.8`` 0.53 (seed 0). Measured
    with ``benchmarks/simulator_calibration.py``. The default dataset takes about 2 s of
    CPU time to generate.

    Most of the information is in each block's mean pattern, as in real data; the only
    temporal structure within a block is the HRF's rise and plateau, the noise and the
    drifts, so a method that wins here by exploiting simulation artefacts would not
    generalise to real scans.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl.datasets import make_task_fmri
    >>> data = make_task_fmri(n_subjects=2, n_runs=1, random_state=0)
    >>> len(data.imgs), data.imgs[0].shape  # 2 subjects x 4 tasks x 3 blocks
    (24, (25, 31, 24, 12))
    >>> np.unique(data.y).tolist(), len(data.runs), data.runs[0].shape
    (['task0', 'task1', 'task2', 'task3'], 2, (25, 31, 24, 248))
    """
    start_time = time.perf_counter()
    # validated by the decorator; numpy scalars become Python numbers
    n_subjects, n_runs, n_tasks = int(n_subjects), int(n_runs), int(n_tasks)
    n_blocks, block_duration, rest_duration = (
        int(n_blocks),
        int(block_duration),
        int(rest_duration),
    )
    t_r, voxel_size, effect_size = float(t_r), float(voxel_size), float(effect_size)
    noise_ar, noise_fwhm, pattern_fwhm = float(noise_ar), float(noise_fwhm), float(pattern_fwhm)
    drift, subject_variability = float(drift), float(subject_variability)
    jitter, hrf_delay = float(jitter), float(hrf_delay)
    if rest_duration * t_r < hrf_delay:
        raise ValueError(
            f"rest_duration={rest_duration} volumes ({rest_duration * t_r:g} s) is shorter "
            f"than hrf_delay={hrf_delay:g} s: the last block would run past the end of the "
            "run. Raise rest_duration or lower hrf_delay."
        )
    n_scans = rest_duration + n_tasks * n_blocks * (block_duration + rest_duration)
    n_voxels = int(np.prod(_grid(voxel_size)[0]))
    check_fits_in_memory(
        2 * n_subjects * n_runs * n_scans * n_voxels * 4,  # float32 runs + cleaned copies
        owner="make_task_fmri",
        what=f"{n_subjects * n_runs} runs of {n_scans} volumes x {n_voxels} voxels",
        fix="Lower n_subjects, n_runs, n_tasks or n_blocks, or raise voxel_size.",
    )
    rng = check_random_state(random_state)
    gen = np.random.default_rng(rng.randint(2**31))

    task_names = [f"task{k}" for k in range(n_tasks)]
    task_networks = _check_task_networks(task_networks, task_names)
    network_atlas = make_network_atlas(voxel_size, atlas=atlas)
    labels = np.asarray(network_atlas.maps.dataobj)
    mask = labels > 0
    shape, affine = labels.shape, network_atlas.maps.affine
    fwhm_to_sigma = 1.0 / voxel_size / np.sqrt(8 * np.log(2))  # mm FWHM -> voxels sd
    sigma = pattern_fwhm * fwhm_to_sigma
    patterns, gains, common = _patterns(gen, labels, task_networks, sigma)
    kernel = _smoothing_operator(mask, noise_fwhm * fwhm_to_sigma)
    block_s, rest_s = block_duration * t_r, rest_duration * t_r
    frame_times = np.arange(n_scans) * t_r
    if not preprocessed:
        # voxel-wise baseline intensity: a smooth field of a few hundred to ~2000
        baseline = np.clip(900.0 + 350.0 * _smooth_field(gen, shape, 2 * sigma)[mask], 150, None)

    out = {k: [] for k in ("imgs", "y", "groups", "block_runs", "runs", "run_groups", "events")}
    for subject in range(n_subjects):
        subj_patterns, subj_common = _subject_patterns(
            gen,
            patterns,
            gains,
            common,
            variability=subject_variability,
            jitter_vox=jitter / voxel_size,
            sigma=sigma,
        )
        amplitudes = effect_size * np.vstack(
            [subj_patterns.reshape(n_tasks, -1)[:, mask.ravel()], subj_common[mask]]
        )  # (n_tasks + 1, n_voxels)
        for _ in range(n_runs):
            events = _run_events(gen, task_names, n_blocks, block_s, rest_s)
            regs = _regressors(gen, events, task_names, frame_times, hrf_model, 0.15)
            design = np.column_stack([regs, regs.sum(axis=1)])
            signal = design @ amplitudes + _drift(gen, frame_times, mask.sum(), drift)
            signal += _noise(gen, n_scans, kernel, ar=noise_ar, global_sd=0.5)
            if preprocessed:
                signal = clean(signal, detrend=True, standardize="zscore_sample", filter=False)
            else:
                signal = baseline * (1.0 + signal / 100.0)
            data = np.zeros(shape + (n_scans,), dtype=np.float32)
            data[mask] = signal.T
            run_img = nib.Nifti1Image(data, affine)
            run_img.header.set_xyzt_units("mm", "sec")
            run_img.header["pixdim"][4] = t_r
            # extract_blocks' own cutting, without its defensive copy of the run
            frames, _ = _block_frames(events, t_r, hrf_delay, n_scans, None)
            blocks = _cut_blocks(data, affine, run_img.header, frames)
            block_labels = events["trial_type"].to_numpy()
            out["imgs"] += blocks
            out["y"] += list(block_labels)
            out["groups"] += [subject] * len(blocks)
            out["block_runs"] += [len(out["runs"])] * len(blocks)
            out["runs"].append(run_img)
            out["run_groups"].append(subject)
            out["events"].append(events)

    for key in ("y", "groups", "block_runs", "run_groups"):
        out[key] = np.asarray(out[key])
    out["y"] = out["y"].astype(str)
    elapsed = time.perf_counter() - start_time
    return Bunch(
        **out,
        run_imgs=out["runs"],
        networks_img=network_atlas.maps,
        network_names=network_atlas.names,
        mask_img=network_atlas.mask_img,
        t_r=t_r,
        task_networks=task_networks,
        description=(
            f"Simulated block-design task fMRI: {n_subjects} subjects x {n_runs} runs x "
            f"{n_tasks} tasks x {n_blocks} blocks of {block_duration} volumes (t_r={t_r:g} s, "
            f"{int(mask.sum())} voxels of {voxel_size:g} mm, "
            f"{'synthetic' if atlas is None else 'atlas'} 7-network layout); "
            f"{_PREPROCESSING[preprocessed]}; "
            f"blocks cut {hrf_delay:g} s after onset. Generated in {elapsed:.1f} s."
        ),
    )
