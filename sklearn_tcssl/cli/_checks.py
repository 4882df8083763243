"""Checks of the ``tcssl`` inputs and outputs, run before the first fold, and the brain mask.

Each check reads headers or small files only, so that a bad input fails in seconds.
"""

import os
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import voxel_sizes

from sklearn_tcssl._input.files import load_image_file
from sklearn_tcssl.cli._parser import MIN_MASK_VOXELS


# ------------------------------------------------------------------ outputs
def check_output_folder(option, folder):
    """Check that ``folder`` can be created and written, without creating it (yet)."""
    folder = Path(folder)
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    if not existing.is_dir():  # the folder itself or one of its parents
        raise NotADirectoryError(
            f"{option} {folder}: {existing} is an existing file, so the results folder cannot "
            "be created there. Pass a folder path (created if needed) whose parents are folders."
        )
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".tcssl_write_test"):
            pass
    except OSError as exc:
        raise PermissionError(
            f"{option} {folder}: cannot write there ({exc.strerror or exc}). "
            "Pass a folder you can write to."
        ) from None
    return folder


def check_output_file(option, path):
    """Check that a model file can be written at ``path`` (its folder must exist)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{option} {path} is a folder; pass the model file to write, e.g. "
            f"{path / 'encoder.safetensors'}."
        )
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(
            f"{option} {path}: the folder {parent} does not exist. Create it first."
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"{option} {path}: cannot write there. Pass a writable place.")
    return path


# ------------------------------------------------------------------ grids
def _grid_text(img):
    zooms = tuple(round(float(z), 2) for z in voxel_sizes(img.affine))
    return f"shape {tuple(img.shape[:3])}, voxel size {zooms} mm"


def check_same_grid(option, img, reference, reference_name):
    """Refuse an image whose grid (shape and affine) differs from the runs' grid."""
    same_shape = tuple(img.shape[:3]) == tuple(reference.shape[:3])
    if not (same_shape and np.allclose(img.affine, reference.affine, atol=1e-3)):
        raise ValueError(
            f"{option} is on another grid ({_grid_text(img)}) than the runs "
            f"({reference_name}: {_grid_text(reference)}). Resampling every run "
            "silently would give wrong voxels; resample the mask to the BOLD grid yourself "
            "(nilearn.image.resample_to_img(mask, bold, interpolation='nearest')) or pass "
            "a mask made on these runs."
        )


def _read_mask(path):
    """Return ``--mask`` as a binary uint8 3D image (a one-volume 4D image counts) and its size."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--mask {path} does not exist.")
    img = load_image_file(path, "--mask")  # a file that is not NIfTI: a usage error (exit 2)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise ValueError(f"--mask {path} has shape {img.shape}; pass a 3D mask image.")
    inside = np.asarray(img.dataobj) != 0
    return nib.Nifti1Image(inside.astype(np.uint8), img.affine), int(inside.sum())


def load_mask(path, first_run, min_voxels=MIN_MASK_VOXELS):
    """Load ``--mask``, check it is a 3D image on the grid of ``first_run``."""
    img, n_voxels = _read_mask(path)
    check_same_grid(f"--mask {path}", img, nib.load(str(first_run)), Path(first_run).name)
    if n_voxels < min_voxels:
        raise ValueError(
            f"--mask {path} has {n_voxels} voxels, fewer than the {min_voxels} expected of a "
            "brain mask (--min-mask-voxels). Pass a brain mask, or, to decode this small "
            f"region on purpose, lower the minimum: --min-mask-voxels {max(n_voxels, 1)}."
        )
    return img


def check_mask_voxels(path, sequences):
    """Load the ``--mask`` of ``.npy`` runs: a 3D image with one voxel per feature."""
    img, n_voxels = _read_mask(path)
    n_features = int(sequences[0].shape[1])
    if n_voxels != n_features:
        raise ValueError(
            f"--mask {path} has {n_voxels} voxels, but the .npy runs have {n_features} "
            "features per time point. Pass the mask the runs were masked with, or leave "
            "out --mask."
        )
    return img


# ------------------------------------------------------------------ brain mask
def _mean_and_std(run_paths):
    """Voxel-wise mean and temporal standard deviation over all runs (one read each)."""
    first = nib.load(str(run_paths[0]))
    total = sq = 0.0
    n_frames = 0
    for path in run_paths:
        img = nib.load(str(path))
        check_same_grid(Path(path).name, img, first, Path(run_paths[0]).name)
        data = np.asarray(img.dataobj, dtype=np.float64)
        data = data.reshape(*data.shape[:3], -1)
        total = total + data.sum(axis=-1)
        sq = sq + (data**2).sum(axis=-1)
        n_frames += data.shape[-1]
    mean = total / n_frames
    std = np.sqrt(np.maximum(sq / n_frames - mean**2, 0))
    return first.affine, mean, std


def compute_brain_mask(run_paths, say=None, min_voxels=MIN_MASK_VOXELS):
    """Return the uint8 brain mask of raw runs on one grid: the EPI mask of their mean image.

    Raw scanner runs have a dark background, which ``nilearn.masking.compute_epi_mask``
    finds; runs without one fall back to the voxels whose signal varies in time. ``say``
    receives progress messages; a mask needs at least ``min_voxels`` voxels.
    """
    from nilearn.masking import compute_epi_mask

    say = say or (lambda message: None)
    say(f"computing a brain mask from the mean image of {len(run_paths)} run(s)")
    affine, mean, std = _mean_and_std(run_paths)
    # zeros excluded from the histogram: resliced or defaced runs pad the brain with zeros
    with warnings.catch_warnings():  # an empty EPI mask is handled below
        warnings.simplefilter("ignore")
        epi = compute_epi_mask(nib.Nifti1Image(mean, affine), exclude_zeros=True)
    mask = np.asarray(epi.dataobj) != 0
    how = "EPI mask of the mean image"
    if not min_voxels <= mask.sum() < 0.9 * mask.size:
        mask, how = std > 1e-6 * max(float(std.max()), 1e-30), "voxels that vary in time"
    n_voxels = int(mask.sum())
    if not min_voxels <= n_voxels < mask.size:
        why = _why_no_mask(mean, n_voxels, mask.size, min_voxels)
        raise ValueError(
            f"could not compute a brain mask from the runs: {why} "
            "Pass --mask with a brain mask on the BOLD grid (for example fMRIPrep's "
            "desc-brain_mask file, or nilearn.masking.compute_epi_mask run on a mean image "
            "you checked)."
        )
    say(f"brain mask: {n_voxels} voxels ({how})")
    return nib.Nifti1Image(mask.astype(np.uint8), affine)


def _why_no_mask(mean, n_voxels, n_grid, min_voxels):
    found = (
        f"nilearn's compute_epi_mask found no dark background in the mean image (values "
        f"{mean.min():.3g} to {mean.max():.3g}), and"
    )
    if n_voxels == n_grid:
        return (
            f"{found} all {n_grid} voxels of the grid vary in time, so brain cannot be told "
            "from background (typical of coarse or cropped runs whose field of view is all "
            "brain, or of runs already processed without zeros outside the brain)."
        )
    return (
        f"{found} only {n_voxels} voxels vary in time, fewer than the {min_voxels} of a brain "
        "mask (--min-mask-voxels)."
    )


# ------------------------------------------------------------------ inputs
def check_networks(args, networks, mask_img, runs, say):
    """Refuse ``--network`` without a reachable Yeo atlas, or mostly outside the runs' brain.

    The brain is ``--mask``, else computed from the first run (no space check when none can
    be); runs not in MNI152 space leave networks outside it. Says the in-brain shares.
    """
    from sklearn_tcssl.networks import AtlasUnavailableError, network_names
    from sklearn_tcssl.networks._atlas import network_mask_data
    from sklearn_tcssl.networks._yeo import validate_networks

    source = f"--mask {args.mask}"
    if mask_img is None:
        source = f"brain mask computed from {Path(runs[0]).name}"
        try:
            mask_img = compute_brain_mask(runs[:1], min_voxels=args.min_mask_voxels)
        except ValueError as exc:
            say(f"space check skipped: no brain mask could be computed ({exc})")
    brain = None if mask_img is None else np.asarray(mask_img.dataobj) != 0
    names, required = validate_networks(network_names() if networks == "all" else networks)
    run = nib.load(str(runs[0]))
    grid = (run.affine, run.shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            *_, shares = network_mask_data(
                names, required, args.atlas, grid, None, brain, None, 0, source=source
            )
        except AtlasUnavailableError as exc:
            raise AtlasUnavailableError(
                f"--network needs the Yeo 2011 7-network atlas, which could not be fetched "
                f"({exc}). Pass --atlas with a local copy, or leave out --network to decode "
                "from a whole-brain mask computed from the runs."
            ) from None
    if shares:
        text = ", ".join(f"{n} {s:.0%}" for n, s in shares.items() if n != "total")
        say(f"network voxels inside the brain ({source}): {text}")
    for warning in caught:
        say(f"warning: {warning.message}")
