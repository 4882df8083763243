"""The Yeo atlas on the images' grid: fetching, loading, resampling and the space check.

The atlas's labels are resampled (nearest) to the data's grid, never the data to the 1 mm
atlas grid (a memory blow-up). Images in another space than MNI152 put the networks outside
the brain: :func:`check_in_brain` refuses them rather than let a decoder sit at chance.
"""

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nilearn import datasets
from nilearn.image import load_img, resample_img

from sklearn_tcssl._input.files import check_image_file
from sklearn_tcssl.networks._yeo import (
    FETCHER,
    MAX_LABEL,
    YEO7_NETWORKS,
    AtlasUnavailableError,
    NetworkMaskError,
    validate_networks,
)

#: A network with a smaller share of its voxels inside the brain is refused: the images are
#: not in the atlas's space. The MNI152 brain mask holds 99% of the atlas's voxels.
MIN_IN_BRAIN = 0.2
#: Below this share a warning says the images may be misaligned with the atlas.
WARN_IN_BRAIN = 0.6


# --------------------------------------------------------------------------- images and grids
def image_grid(img, what):
    """Return (affine, shape) of an image or image path without loading its data."""
    if isinstance(img, str | Path):
        try:
            img = nib.load(img)
        except (OSError, ValueError, ImageFileError) as err:
            raise NetworkMaskError(
                f"{what}={str(img)!r} cannot be read as a Nifti image ({err}). "
                "Pass an existing .nii/.nii.gz path or a nibabel image."
            ) from err
    if not hasattr(img, "affine") or not hasattr(img, "shape"):
        raise NetworkMaskError(
            f"{what} is a {type(img).__name__}; expected a Nifti image or a path to one. "
            "Pass a nibabel image, a str or a pathlib.Path."
        )
    return img.affine, tuple(img.shape)


def volume_data(img, what):
    """Load a 3D image, or a 4D one with a single volume, as (3D array, affine)."""
    try:
        img = load_img(img)
    except Exception as err:  # nilearn raises ValueError, TypeError, OSError, DimensionError
        raise NetworkMaskError(
            f"{what}={img!r} cannot be loaded as a Nifti image ({err}). "
            "Pass an existing .nii/.nii.gz path or a nibabel image."
        ) from err
    check_image_file(img)  # a corrupted .nii.gz atlas would give wrong labels silently
    shape = img.shape
    if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1)):
        raise NetworkMaskError(
            f"{what} has shape {shape}; expected one 3D volume (or 4D with a single volume). "
            "Pass a single label volume, e.g. nilearn.image.index_img(img, 0)."
        )
    return np.asarray(img.dataobj).reshape(shape[:3]), img.affine


def on_grid(img, affine, shape):
    """Nearest-neighbour resample a 3D image to (affine, shape); return its data."""
    if np.allclose(img.affine, affine) and img.shape[:3] == shape:
        return np.asarray(img.dataobj)
    out = resample_img(
        img,
        target_affine=affine,
        target_shape=shape,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    return np.asarray(out.dataobj).reshape(shape)


def brain_of_image(img):
    """Non-background voxels of the first volume of ``img``; None when there is no background.

    Preprocessed runs (fMRIPrep, or masked by any tool) are zero outside the brain. Raw
    scanner runs have noise everywhere: their brain cannot be told from one volume here
    (pass ``mask_img``), and None is returned.
    """
    img = nib.load(img) if isinstance(img, str | Path) else img
    data = np.asarray(img.dataobj[..., 0] if len(img.shape) == 4 else img.dataobj)
    brain = np.isfinite(data) & (data != 0)
    return brain if 0 < brain.mean() < 0.9 else None


# --------------------------------------------------------------------------- the atlas
def _created_folders(data_dir):
    """Return the absent folders that nilearn's fetcher would create for the Yeo atlas."""
    folders = []
    for base in datasets.get_data_dirs(data_dir):
        folders += [Path(base) / "yeo_2011", Path(base)]
    return [folder for folder in folders if not folder.exists()]


def _remove_if_empty(folders):
    """Remove folders (created by a failed fetch) that hold no file, deepest first."""
    for folder in folders:
        if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)


def fetch_atlas(data_dir, verbose):
    """Return the path of the Yeo 7-network volume from nilearn's fetcher.

    A failed fetch leaves no empty data folder behind.
    """
    absent = _created_folders(data_dir)
    try:
        atlas = datasets.fetch_atlas_yeo_2011(
            n_networks=7, thickness="thick", data_dir=data_dir, verbose=verbose
        )
    except Exception as err:  # URLError, OSError, requests errors, ...: all mean "unavailable"
        _remove_if_empty(absent)
        # "from None": the socket traceback would bury this message (its text is in it)
        raise AtlasUnavailableError(
            f"atlas=None: the Yeo 2011 atlas could not be fetched with {FETCHER} "
            f"(data_dir={data_dir!r}): {type(err).__name__}: {err}. Without network access, "
            "pass atlas= a local file path of the Yeo 2011 7-network volume "
            "(Yeo2011_7Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz), or point "
            "data_dir= to a folder where nilearn already downloaded it."
        ) from None
    return atlas.maps


def load_atlas(atlas, data_dir=None, verbose=0):
    """Load and validate a Yeo 7-network label volume; return a 3D int8 image."""
    if atlas is None:
        atlas = fetch_atlas(data_dir, verbose)
    atlas = getattr(atlas, "maps", atlas)  # accept the fetcher's Atlas bunch itself
    data, affine = volume_data(atlas, "atlas")
    finite = np.isfinite(data).all()
    if not finite or data.min() < 0 or data.max() > MAX_LABEL or np.any(data != np.rint(data)):
        found = np.unique(data[np.isfinite(data)])[:10] if data.size else data
        raise NetworkMaskError(
            f"atlas={_short(atlas)} is not a Yeo 7-network label volume: expected integer labels "
            f"0..{MAX_LABEL} (0 background), found values such as {found.tolist()}"
            f"{'' if finite else ' and NaN/inf'}. Pass the 7-network volume of "
            f"{FETCHER} (n_networks=17 and probability maps are not supported)."
        )
    return nib.Nifti1Image(data.astype(np.int8), affine)


def _short(obj):
    return repr(str(obj)) if isinstance(obj, str | Path) else f"<{type(obj).__name__}>"


# --------------------------------------------------------------------------- the space check
def check_in_brain(names, required, labels, brain, source):
    """Share of the networks' voxels (atlas ``labels`` on the grid) inside ``brain``.

    Each of the explicitly named networks (``required``) and their union are checked;
    ``source`` names where ``brain`` comes from. Returns ``{network or "total": share}``
    (networks with no voxel on the grid left out), empty when ``brain`` is None.
    """
    if brain is None:
        return {}
    values = {n: YEO7_NETWORKS[n] for n in names}
    counts = {n: _inside(np.isin(labels, [v]), brain) for n, v in values.items()}
    counts["total"] = _inside(np.isin(labels, list(values.values())), brain)
    shares = {n: inside / on for n, (inside, on) in counts.items() if on}
    low = [n for n in [*required, "total"] if n in shares and shares[n] < MIN_IN_BRAIN]
    if low:
        raise NetworkMaskError(_in_brain_text(names, low, counts, source, refused=True))
    doubtful = [n for n in [*required, "total"] if n in shares and shares[n] < WARN_IN_BRAIN]
    if doubtful and source != "mask_img":  # a given mask may leave out cortex on purpose
        warnings.warn(_in_brain_text(names, doubtful, counts, source, refused=False), stacklevel=4)
    return {n: round(s, 3) for n, s in shares.items()}


def _inside(selected, brain):
    return int(np.count_nonzero(selected & brain)), int(np.count_nonzero(selected))


def _in_brain_text(names, which, counts, source, *, refused):
    parts = "; ".join(
        f"{'all selected networks' if n == 'total' else repr(n)}: {counts[n][0]} of "
        f"{counts[n][1]} voxels ({counts[n][0] / counts[n][1]:.0%})"
        for n in which
    )
    verdict = (
        f"fewer than {MIN_IN_BRAIN:.0%} is refused: the decoder would see no brain signal"
        if refused
        else f"below {WARN_IN_BRAIN:.0%}: the network voxels are probably misplaced"
    )
    return (
        f"networks={names!r}: only part of the network voxels on the images' grid lie inside "
        f"the brain ({source}): {parts}; {verdict}. The atlas is in MNI152 space (the MNI152 "
        "brain mask holds 99% of its voxels), so the images are probably in another space "
        "(native/scanner space or another origin). Use runs registered to MNI152 (e.g. "
        "fMRIPrep derivatives in an MNI152 space), or pass the images' own brain (mask_img; "
        "--mask in tcssl) if this one is wrong."
    )


# --------------------------------------------------------------------------- the mask
def network_mask_data(
    names, required, atlas, grid, mask_img, brain, data_dir, verbose, source=None
):
    """Return the network mask on ``grid`` (affine, shape), its voxel counts and in-brain shares.

    A ``grid`` of None is that of ``mask_img``, else of the atlas. Without ``mask_img``,
    ``brain`` (boolean, on the grid, or None) from ``source`` serves the space check.
    """
    atlas_img = load_atlas(atlas, data_dir, verbose)
    if grid is None:
        grid = image_grid(mask_img if mask_img is not None else atlas_img, "mask_img")
    affine, shape = grid[0], tuple(grid[1][:3])
    labels = on_grid(atlas_img, affine, shape)
    source = source or "the images' non-background voxels"
    if mask_img is not None:
        mask_data, mask_affine = volume_data(mask_img, "mask_img")
        brain = (np.nan_to_num(mask_data) != 0).astype(np.int8)
        brain = on_grid(nib.Nifti1Image(brain, mask_affine), affine, shape) != 0
        source = "mask_img"
    kept = labels if mask_img is None else np.where(brain, labels, 0)
    counts = {n: int(np.count_nonzero(kept == YEO7_NETWORKS[n])) for n in names}
    counts["total"] = sum(counts.values())
    empty = [n for n in required if counts[n] == 0]
    if empty or counts["total"] == 0:
        _raise_out_of_view(names, empty or names, atlas_img, (affine, shape), mask_img is not None)
    in_brain = check_in_brain(names, required, labels, brain, source)
    selected = np.isin(kept, [YEO7_NETWORKS[n] for n in names])
    return nib.Nifti1Image(selected.astype(np.int8), affine), counts, in_brain


def _raise_out_of_view(names, empty, atlas_img, grid, masked):
    atlas_data = np.asarray(atlas_img.dataobj)
    which = ", ".join(
        f"{n!r} has {np.count_nonzero(atlas_data == YEO7_NETWORKS[n])} voxels in the atlas"
        for n in empty
    )
    affine, shape = grid
    absent = [n for n in empty if not np.any(atlas_data == YEO7_NETWORKS[n])]
    if absent:
        labels = sorted(int(v) for v in np.unique(atlas_data) if v)
        raise NetworkMaskError(
            f"networks={names!r}: the atlas has no voxel labelled "
            f"{', '.join(f'{YEO7_NETWORKS[n]} ({n!r})' for n in absent)}; its labels are "
            f"{labels or 'all 0 (an empty atlas)'}. Pass the Yeo 7-network volume of {FETCHER}."
        )
    zooms = tuple(float(z) for z in np.round(np.linalg.norm(affine[:3, :3], axis=0), 2))
    where = "the images' field of view" + (" intersected with mask_img" if masked else "")
    raise NetworkMaskError(
        f"networks={names!r}: {which} but none in {where} (grid {shape}, voxel size {zooms} mm). "
        "Choose another network, check that the images are in MNI152 space (the atlas's space) "
        "and cover the cortex, or check mask_img."
    )


def network_mask(networks, atlas=None, target_img=None, mask_img=None, *, data_dir=None):
    """Build the binary mask of Yeo networks, on the grid of ``target_img``.

    Parameters
    ----------
    networks : str or list of str
        Network name(s) among :func:`network_names`, or ``"whole_brain"`` for the union of
        the 7 networks (the atlas's cortex).
    atlas : str, pathlib.Path, Nifti image or None, default=None
        Yeo-style 7-network label volume (labels 0..7, 3D or 4D with one volume). ``None``
        fetches it with ``nilearn.datasets.fetch_atlas_yeo_2011(n_networks=7,
        thickness="thick", data_dir=data_dir)``.
    target_img : str, pathlib.Path, Nifti image or None, default=None
        Image whose grid (affine, first 3 dimensions) the atlas is resampled to (nearest);
        its first volume gives the brain of the space check below. ``None``: the grid of
        ``mask_img``, else of the atlas.
    mask_img : str, pathlib.Path, Nifti image or None, default=None
        Brain mask (non-zero voxels) intersected with the networks, resampled (nearest).
    data_dir : str, pathlib.Path or None, default=None
        Where the fetcher looks for and stores the atlas when ``atlas`` is None.

    Returns
    -------
    mask : nibabel.Nifti1Image
        3D int8 image of 0 and 1 on the target grid.

    Raises
    ------
    NetworkMaskError
        For an unknown network name, an atlas that is not a 0..7 label volume, a requested
        network with no voxel on the grid or with less than 20% of its voxels inside the
        brain (``mask_img``, or the non-zero voxels of ``target_img``): images in another
        space than MNI152. Below 60% (without ``mask_img``) a warning is given.
    AtlasUnavailableError
        When ``atlas`` is None and the fetcher fails.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> labels = np.zeros((4, 4, 4), dtype=np.int8)
    >>> labels[:2] = 1  # visual
    >>> labels[2:] = 7  # default
    >>> mask = network_mask("visual", atlas=nib.Nifti1Image(labels, np.eye(4)))
    >>> int(mask.get_fdata().sum())
    32
    """
    names, required = validate_networks(networks)
    grid = brain = None
    if target_img is not None:
        grid = image_grid(target_img, "target_img")
        brain = brain_of_image(target_img)
    mask, _, _ = network_mask_data(names, required, atlas, grid, mask_img, brain, data_dir, 0)
    return mask
