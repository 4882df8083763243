"""A block-design task-fMRI simulator with task information placed in the Yeo 7 networks."""

import time
from numbers import Integral, Real

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.glm.first_level import compute_regressor
from nilearn.signal import clean
from scipy.ndimage import gaussian_filter, shift
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._input.validation import check_fits_in_memory
from sklearn_tcssl._utils.params import validate_params
from sklearn_tcssl.datasets._blocks import BLOCK_HINTS, _block_frames, _cut_blocks
from sklearn_tcssl.datasets._layout import (
    _NETWORK_NAMES,
    VOXEL_SIZE,
    VOXEL_SIZE_HINT,
    _grid,
    make_network_atlas,
)
from sklearn_tcssl.datasets._noise import _drift, _noise, _smoothing_operator
from sklearn_tcssl.networks import YEO7_NETWORKS

__all__ = ["make_task_fmri"]

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
    "voxel_size": VOXEL_SIZE,
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
_HINTS = {"voxel_size": VOXEL_SIZE_HINT, **BLOCK_HINTS}


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
    if set(task_networks) != set(task_names):
        raise ValueError(
            f"task_networks must be a dict with one key per task {task_names}; got "
            f"{task_networks!r}."
        )
    out = {}
    for task in task_names:
        nets = task_networks[task]
        out[task] = (nets,) if isinstance(nets, str) else tuple(nets)
        unknown = [n for n in out[task] if n not in YEO7_NETWORKS]
        if unknown:
            raise ValueError(
                f"task_networks[{task!r}] names unknown network(s) {unknown}; use names "
                f"from {list(_NETWORK_NAMES)}."
            )
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


def _run_events(rng, design):
    order = rng.permutation(np.repeat(np.arange(design.n_tasks), design.n_blocks))
    block_s, rest_s = design.block_duration * design.t_r, design.rest_duration * design.t_r
    onsets = rest_s + np.arange(len(order)) * (block_s + rest_s)
    return pd.DataFrame(
        {
            "onset": onsets,
            "duration": np.full(len(order), block_s),
            "trial_type": np.asarray(design.task_names, dtype=object)[order],
        }
    )


def _regressors(rng, events, design, block_gain_sd=0.15):
    """HRF-convolved block regressors (n_scans, n_tasks), with a random gain per block."""
    regs = np.zeros((design.n_scans, design.n_tasks))
    for k, task in enumerate(design.task_names):
        ev = events[events["trial_type"] == task]
        gains = np.clip(rng.normal(1.0, block_gain_sd, size=len(ev)), 0.2, None)
        condition = np.vstack([ev["onset"], ev["duration"], gains])
        regs[:, k] = compute_regressor(condition, design.hrf_model, design.frame_times)[0][:, 0]
    return regs


# ---------------------------------------------------------------- the simulation's parts
def _design(**params):
    """Return the design (subjects, runs, blocks, timing), its task names, run length, times.

    A rest shorter than ``hrf_delay`` is refused (the last block would leave the run).
    """
    design = Bunch(**params)
    rest_s = design.rest_duration * design.t_r
    if rest_s < design.hrf_delay:
        raise ValueError(
            f"rest_duration={design.rest_duration} volumes ({rest_s:g} s) is shorter "
            f"than hrf_delay={design.hrf_delay:g} s: the last block would run past the end "
            "of the run. Raise rest_duration or lower hrf_delay."
        )
    design.task_names = [f"task{k}" for k in range(design.n_tasks)]
    # rest, then each block followed by rest
    design.n_scans = design.rest_duration + design.n_tasks * design.n_blocks * (
        design.block_duration + design.rest_duration
    )
    design.frame_times = np.arange(design.n_scans) * design.t_r
    return design


def _check_memory(design, voxel_size):
    """Refuse a dataset whose runs (and their cleaned copies) cannot fit in memory."""
    n_voxels = int(np.prod(_grid(voxel_size)[0]))
    n_runs = design.n_subjects * design.n_runs
    check_fits_in_memory(
        2 * n_runs * design.n_scans * n_voxels * 4,  # float32 runs + cleaned copies
        owner="make_task_fmri",
        what=f"{n_runs} runs of {design.n_scans} volumes x {n_voxels} voxels",
        fix="Lower n_subjects, n_runs, n_tasks or n_blocks, or raise voxel_size.",
    )


def _brain(voxel_size, atlas, pattern_fwhm, noise_fwhm):
    """Return the grid, its network labels, the smoothing widths and the noise operator."""
    network_atlas = make_network_atlas(voxel_size, atlas=atlas)
    labels = np.asarray(network_atlas.maps.dataobj)  # 0..7 on the grid
    fwhm_to_sigma = 1.0 / voxel_size / np.sqrt(8 * np.log(2))  # mm FWHM -> voxels sd
    return Bunch(
        atlas=network_atlas,
        labels=labels,
        mask=labels > 0,  # the simulated (cortical) voxels
        affine=network_atlas.maps.affine,
        voxel_size=voxel_size,
        sigma=pattern_fwhm * fwhm_to_sigma,  # of the activation patterns
        kernel=_smoothing_operator(labels > 0, noise_fwhm * fwhm_to_sigma),
    )


def _baseline(rng, brain):
    """Voxel-wise baseline intensity: a smooth field of a few hundred to ~2000."""
    field = _smooth_field(rng, brain.labels.shape, 2 * brain.sigma)[brain.mask]
    return np.clip(900.0 + 350.0 * field, 150, None)


def _subject_amplitudes(rng, group, brain, *, effect_size, variability, jitter):
    """One subject's response amplitudes (n_tasks + 1, n_voxels): tasks, then task-general.

    The group patterns move by a subject-specific offset; a subject field is mixed in.
    """
    patterns, gains, common = group
    direction = rng.standard_normal(3)
    offset = rng.uniform(0.0, jitter / brain.voxel_size) * direction / np.linalg.norm(direction)
    rows = []
    for pattern, gain in zip(patterns, gains, strict=True):
        own = gain * _smooth_field(rng, pattern.shape, brain.sigma)
        shifted = np.sqrt(1 - variability) * shift(pattern, offset, order=1)
        rows.append((shifted + np.sqrt(variability) * own)[brain.mask])
    rows.append(shift(common, offset, order=1)[brain.mask])
    return effect_size * np.vstack(rows)


def _run_signal(rng, design, events, amplitudes, brain, *, ar, drift):
    """One run's signal (n_scans, n_voxels) in percent signal change: responses, drift, noise."""
    regs = _regressors(rng, events, design)
    responses = np.column_stack([regs, regs.sum(axis=1)])
    signal = responses @ amplitudes + _drift(rng, design.frame_times, brain.mask.sum(), drift)
    signal += _noise(rng, design.n_scans, brain.kernel, ar=ar, global_sd=0.5)
    return signal


def _to_output_units(signal, baseline):
    """Clean the signal (detrend, z-score per voxel), or, with a ``baseline``, scale it to it."""
    if baseline is None:
        return clean(signal, detrend=True, standardize="zscore_sample", filter=False)
    return baseline * (1.0 + signal / 100.0)


def _cut_run(events, design, brain, signal):
    """Return the run's image and its blocks, cut as ``extract_blocks`` does (without its copy)."""
    data = np.zeros(brain.mask.shape + (design.n_scans,), dtype=np.float32)
    data[brain.mask] = signal.T
    run_img = nib.Nifti1Image(data, brain.affine)
    run_img.header.set_xyzt_units("mm", "sec")
    run_img.header["pixdim"][4] = design.t_r
    frames, _ = _block_frames(events, design.t_r, design.hrf_delay, design.n_scans, None)
    return run_img, _cut_blocks(data, brain.affine, run_img.header, frames)


def _describe(design, brain, atlas, preprocessed, elapsed):
    return (
        f"Simulated block-design task fMRI: {design.n_subjects} subjects x {design.n_runs} "
        f"runs x {design.n_tasks} tasks x {design.n_blocks} blocks of "
        f"{design.block_duration} volumes (t_r={design.t_r:g} s, {int(brain.mask.sum())} "
        f"voxels of {brain.voxel_size:g} mm, "
        f"{'synthetic' if atlas is None else 'atlas'} 7-network layout); "
        f"{_PREPROCESSING[preprocessed]}; "
        f"blocks cut {design.hrf_delay:g} s after onset. Generated in {elapsed:.1f} s."
    )


def _assemble(runs, design, brain, task_networks, description):
    """Return the Bunch from the runs' (subject, events, image, blocks), and the layout."""
    subjects, events, run_imgs, blocks = (list(field) for field in zip(*runs, strict=True))
    n_blocks = [len(run_blocks) for run_blocks in blocks]
    return Bunch(
        imgs=[img for run_blocks in blocks for img in run_blocks],
        y=np.concatenate([run_events["trial_type"] for run_events in events]).astype(str),
        groups=np.repeat(subjects, n_blocks),
        block_runs=np.repeat(np.arange(len(runs)), n_blocks),
        runs=run_imgs,
        run_groups=np.asarray(subjects),
        events=events,
        run_imgs=run_imgs,
        networks_img=brain.atlas.maps,
        network_names=brain.atlas.names,
        mask_img=brain.atlas.mask_img,
        t_r=design.t_r,
        task_networks=task_networks,
        description=description,
    )


@validate_params(_SIMULATE_CONSTRAINTS, hints=_HINTS)
def make_task_fmri(
    n_subjects=12,
    *,
    # the design
    n_runs=2,
    n_tasks=4,
    n_blocks=3,
    block_duration=12,
    rest_duration=8,
    t_r=2.0,
    hrf_model="glover",
    hrf_delay=5.0,
    # the brain
    voxel_size=6.0,
    atlas=None,
    task_networks=None,
    # the signal and its subject effects
    effect_size=0.25,
    pattern_fwhm=12.0,
    subject_variability=0.5,
    jitter=6.0,
    # the noise
    noise_ar=0.5,
    noise_fwhm=8.0,
    drift=1.0,
    # the output
    preprocessed=True,
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

    The blocks are cut as :func:`~sklearn_tcssl.datasets.extract_blocks` does, ready for a
    masker with ``standardize=None``. The parameters come in groups: the design
    (``n_subjects`` to ``hrf_delay``), the brain (``voxel_size`` to ``task_networks``), the
    signal (``effect_size`` to ``jitter``), the noise (``noise_ar`` to ``drift``), the output.

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
    hrf_model : str, default="glover"
        HRF of ``nilearn.glm.first_level.compute_regressor`` (``"glover"``, ``"spm"``, ...).
    hrf_delay : float, default=5.0
        Delay in seconds added to each onset when cutting the blocks.
    voxel_size : float, default=6.0
        Isotropic voxel size in mm of the MNI-space grid: by default 25 x 31 x 24, with
        about 2.9k cortical voxels (4.8k with the real Yeo atlas).
    atlas : Niimg-like or str or pathlib.Path or None, default=None
        The 7-network layout, as in :func:`make_network_atlas`.
    task_networks : dict or None, default=None
        Task name -> names of the networks carrying its specific pattern. Default: visual
        carries every task, limbic none, each other network two tasks in three.
    effect_size : float, default=0.25
        Amplitude (percent signal change, noise sd = 1) of the task-specific patterns in
        the visual network; other carrying networks get 0.45 times it.
    pattern_fwhm : float, default=12.0
        Spatial smoothness (FWHM, mm) of the activation patterns (group and subject).
    subject_variability : float, default=0.5
        Share, in [0, 1], of each subject's pattern variance that is subject-specific.
    jitter : float, default=6.0
        Largest shift (mm) of a subject's patterns (a random length in [0, jitter]).
    noise_ar : float, default=0.5
        AR(1) coefficient of the noise, in [0, 1).
    noise_fwhm : float, default=8.0
        Spatial smoothness (FWHM, mm) of the noise.
    drift : float, default=1.0
        Amplitude (percent signal change) of each voxel's slow drift.
    preprocessed : bool, default=True
        True cleans the runs (each voxel detrended and z-scored over the run) before the
        blocks are cut; False keeps scanner units (baselines of hundreds to thousands).
    random_state : int, numpy.random.RandomState or None, default=None
        Seed for reproducible datasets.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields:

        - ``imgs``: list of 4D float32 Nifti1Image, one per block, in subject, run and
          onset order.
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
    Calibration (``benchmarks/simulator_calibration.py``): the block-mean decoder
    (``MultiNiftiMasker(mask_img=data.mask_img, standardize=None)``, then
    ``LogisticRegression``, ``GroupKFold(5)`` over subjects) scores 0.72 on the default
    dataset (seeds 0-2; chance 0.25). Each network alone: visual 0.71, somatomotor 0.30,
    dorsal_attention 0.37, ventral_attention 0.33, limbic 0.22, frontoparietal 0.30,
    default 0.40, as in Shi et al. (2023). ``effect_size=0.5`` gives 0.98,
    ``subject_variability=0.8`` 0.53 (seed 0).

    Most of the information is in each block's mean pattern, as in real data; within a
    block there is only the HRF's rise and plateau, the noise and the drifts.

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
    design = _design(  # validated by the decorator; numpy scalars become Python numbers
        n_subjects=int(n_subjects),
        n_runs=int(n_runs),
        n_tasks=int(n_tasks),
        n_blocks=int(n_blocks),
        block_duration=int(block_duration),
        rest_duration=int(rest_duration),
        t_r=float(t_r),
        hrf_model=hrf_model,
        hrf_delay=float(hrf_delay),
    )
    voxel_size = float(voxel_size)
    _check_memory(design, voxel_size)
    rng = check_random_state(random_state)
    gen = np.random.default_rng(rng.randint(2**31))
    task_networks = _check_task_networks(task_networks, design.task_names)
    brain = _brain(voxel_size, atlas, float(pattern_fwhm), float(noise_fwhm))
    group = _patterns(gen, brain.labels, task_networks, brain.sigma)
    baseline = None if preprocessed else _baseline(gen, brain)

    runs = []  # (subject, events, run image, blocks)
    for subject in range(design.n_subjects):
        amplitudes = _subject_amplitudes(
            gen,
            group,
            brain,
            effect_size=float(effect_size),
            variability=float(subject_variability),
            jitter=float(jitter),
        )
        for _ in range(design.n_runs):
            events = _run_events(gen, design)
            signal = _run_signal(
                gen, design, events, amplitudes, brain, ar=float(noise_ar), drift=float(drift)
            )
            signal = _to_output_units(signal, baseline)
            runs.append((subject, events, *_cut_run(events, design, brain, signal)))

    description = _describe(design, brain, atlas, preprocessed, time.perf_counter() - start_time)
    return _assemble(runs, design, brain, task_networks, description)
