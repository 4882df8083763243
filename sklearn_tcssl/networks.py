"""The Yeo 2011 7-network parcellation: names, labels and a network masker.

:class:`NetworkMasker` restricts 4D fMRI runs to the voxels of one or more Yeo et al. (2011)
cortical networks. The atlas lives on a 1 mm grid; the network mask is resampled (nearest
neighbour) to the grid of the data, never the data to the atlas grid, which would blow up
memory (nilearn issue #1883).
"""

import os
from collections.abc import Iterable
from numbers import Integral, Real
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nilearn import datasets
from nilearn.image import load_img, resample_img
from nilearn.maskers import MultiNiftiMasker
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_memory

from sklearn_tcssl._input.files import (
    check_finite_image,
    check_image_file,
    image_name,
    load_image_file,
)
from sklearn_tcssl._utils.exceptions import NotFittedError, TCSSLError

__all__ = [
    "YEO7_NETWORKS",
    "WHOLE_BRAIN",
    "NetworkMaskError",
    "AtlasUnavailableError",
    "NetworkMasker",
    "network_mask",
    "network_names",
]

# Labels of the Yeo et al. (2011) 7-network atlas (``fetch_atlas_yeo_2011(n_networks=7)``);
# nilearn only calls them ``7Networks_1..7``.
YEO7_NETWORKS = {
    "visual": 1,
    "somatomotor": 2,
    "dorsal_attention": 3,
    "ventral_attention": 4,
    "limbic": 5,
    "frontoparietal": 6,
    "default": 7,
}

#: Name that selects the union of the 7 networks (the atlas's cortical coverage).
WHOLE_BRAIN = "whole_brain"

_MAX_LABEL = max(YEO7_NETWORKS.values())
_FETCHER = "nilearn.datasets.fetch_atlas_yeo_2011(n_networks=7, thickness='thick')"


class NetworkMaskError(TCSSLError, ValueError):
    """Raised when networks, atlas, mask or images cannot give a network mask."""


class AtlasUnavailableError(NetworkMaskError, OSError):
    """Raised when the default Yeo atlas cannot be fetched (no network, no local copy)."""


def network_names():
    """Return the names of the Yeo 7 networks, in label order.

    Returns
    -------
    names : list of str
        ``["visual", "somatomotor", "dorsal_attention", "ventral_attention", "limbic",
        "frontoparietal", "default"]``; labels 1 to 7 of the atlas. ``"whole_brain"``
        (:data:`WHOLE_BRAIN`) is also accepted wherever networks are requested.

    Examples
    --------
    >>> from sklearn_tcssl.networks import network_names
    >>> network_names()[:2]
    ['visual', 'somatomotor']
    """
    return list(YEO7_NETWORKS)


# --------------------------------------------------------------------------- validation
def _allowed_text():
    return ", ".join(repr(n) for n in [*YEO7_NETWORKS, WHOLE_BRAIN])


def _validate_networks(networks):
    """Return (all network names, names that must keep voxels), canonical and deduplicated.

    ``"whole_brain"`` expands to the 7 networks; only explicitly named networks must keep
    voxels in the field of view.
    """
    given = [networks] if isinstance(networks, str) else networks
    if not isinstance(given, Iterable) or isinstance(given, dict):
        raise NetworkMaskError(
            f"networks={networks!r} must be a network name or a list of names; allowed names "
            f"are {_allowed_text()}. Pass e.g. networks='visual' or ['visual', 'default']."
        )
    given = list(given)
    if not given:
        raise NetworkMaskError(
            f"networks={networks!r} is empty; pass at least one of {_allowed_text()}."
        )
    names, required = [], []
    for name in given:
        key = (
            name.strip().lower().replace(" ", "_").replace("-", "_")
            if isinstance(name, str)
            else name
        )
        if key == WHOLE_BRAIN:
            names.extend(YEO7_NETWORKS)
        elif key in YEO7_NETWORKS:
            names.append(key)
            required.append(key)
        else:
            raise NetworkMaskError(
                f"networks={networks!r}: {name!r} is not a Yeo 7-network name. Allowed names "
                f"are {_allowed_text()}. Fix the spelling or pick one of these."
            )
    ordered = [n for n in YEO7_NETWORKS if n in names]
    return ordered, [n for n in ordered if n in required]


def _image_grid(img, what):
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


def _is_single_image(imgs):
    return isinstance(imgs, str | Path) or hasattr(imgs, "affine")


def _check_4d(imgs, owner, grid=None):
    """Check that every image is 4D (and on ``grid`` = (affine, shape) if given).

    Return the images as a list.
    """
    listed = [imgs] if _is_single_image(imgs) else list(imgs)
    if not listed:
        raise NetworkMaskError(f"{owner} got imgs=[]; pass a list of 4D images or paths.")
    for i, img in enumerate(listed):
        _, shape = _image_grid(img, f"imgs[{i}]")
        if len(shape) != 4:
            raise NetworkMaskError(
                f"imgs[{i}] has shape {shape} ({len(shape)}D); {owner} expects 4D images "
                "(x, y, z, time), one per run. Pass 4D runs; a 3D volume can be made 4D with "
                "nilearn.image.concat_imgs([img])."
            )
        if grid is not None:
            _check_grid(f"imgs[{i}]", img, shape, grid, owner)
    return listed


def _check_grid(what, img, shape, grid, owner):
    """Refuse an image whose grid differs from the fitted one (no silent resampling)."""
    affine, mask_shape = grid
    img_affine = _image_grid(img, what)[0]
    if tuple(shape[:3]) == tuple(mask_shape[:3]) and np.allclose(img_affine, affine, atol=1e-3):
        return
    raise NetworkMaskError(
        f"{what} has grid shape {tuple(shape[:3])} and affine {np.round(img_affine, 2).tolist()}, "
        f"but {owner} was fitted on grid shape {tuple(mask_shape[:3])} and affine "
        f"{np.round(affine, 2).tolist()}. Images with different affines cannot be mixed: "
        "resample them to one grid first (e.g. nilearn.image.resample_to_img(img, "
        "reference_img)), or fit the masker on images of that grid."
    )


def _check_runs_readable(listed, mask):
    """Refuse damaged files and NaN/inf in-mask voxels (nilearn would turn them into 0)."""
    for i, img in enumerate(listed):
        img = load_image_file(img, f"imgs[{i}]") if isinstance(img, str | Path) else img
        check_image_file(img)
        filename = image_name(img, "")
        name = f"imgs[{i}]" + (f" ({filename})" if filename else "")
        check_finite_image(img, name, mask=mask)


# --------------------------------------------------------------------------- atlas and masks
def _volume_data(img, what):
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


def _fetch_atlas(data_dir, verbose):
    """Return the path of the Yeo 7-network volume from nilearn's fetcher."""
    try:
        atlas = datasets.fetch_atlas_yeo_2011(
            n_networks=7, thickness="thick", data_dir=data_dir, verbose=verbose
        )
    except Exception as err:  # URLError, OSError, requests errors, ...: all mean "unavailable"
        raise AtlasUnavailableError(
            f"atlas=None: the Yeo 2011 atlas could not be fetched with {_FETCHER} "
            f"(data_dir={data_dir!r}): {type(err).__name__}: {err}. Without network access, "
            "pass atlas= a local file path of the Yeo 2011 7-network volume "
            "(Yeo2011_7Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz), or point "
            "data_dir= to a folder where nilearn already downloaded it."
        ) from err
    return atlas.maps


def _load_atlas(atlas, data_dir=None, verbose=0):
    """Load and validate a Yeo 7-network label volume; return a 3D int8 image."""
    if atlas is None:
        atlas = _fetch_atlas(data_dir, verbose)
    atlas = getattr(atlas, "maps", atlas)  # accept the fetcher's Atlas bunch itself
    data, affine = _volume_data(atlas, "atlas")
    finite = np.isfinite(data).all()
    if not finite or data.min() < 0 or data.max() > _MAX_LABEL or np.any(data != np.rint(data)):
        found = np.unique(data[np.isfinite(data)])[:10] if data.size else data
        raise NetworkMaskError(
            f"atlas={_short(atlas)} is not a Yeo 7-network label volume: expected integer labels "
            f"0..{_MAX_LABEL} (0 background), found values such as {found.tolist()}"
            f"{'' if finite else ' and NaN/inf'}. Pass the 7-network volume of "
            f"{_FETCHER} (n_networks=17 and probability maps are not supported)."
        )
    return nib.Nifti1Image(data.astype(np.int8), affine)


def _short(obj):
    return repr(str(obj)) if isinstance(obj, str | Path) else f"<{type(obj).__name__}>"


def _on_grid(img, affine, shape):
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


def _network_mask_data(names, required, atlas, grid, mask_img, data_dir, verbose):
    """Compute the network mask on ``grid`` = (affine, shape) or None.

    ``None`` means the grid of ``mask_img``, or of the atlas. Returns (mask image, counts).
    """
    atlas_img = _load_atlas(atlas, data_dir, verbose)
    if grid is None:
        grid = _image_grid(mask_img if mask_img is not None else atlas_img, "mask_img")
    affine, shape = grid[0], tuple(grid[1][:3])
    labels = _on_grid(atlas_img, affine, shape)
    if mask_img is not None:
        mask_data, mask_affine = _volume_data(mask_img, "mask_img")
        brain = (np.nan_to_num(mask_data) != 0).astype(np.int8)
        brain = _on_grid(nib.Nifti1Image(brain, mask_affine), affine, shape)
        labels = np.where(brain != 0, labels, 0)
    counts = {n: int(np.count_nonzero(labels == YEO7_NETWORKS[n])) for n in names}
    counts["total"] = sum(counts.values())
    empty = [n for n in required if counts[n] == 0]
    if empty or counts["total"] == 0:
        _raise_out_of_view(names, empty or names, atlas_img, (affine, shape), mask_img is not None)
    selected = np.isin(labels, [YEO7_NETWORKS[n] for n in names])
    return nib.Nifti1Image(selected.astype(np.int8), affine), counts


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
            f"{labels or 'all 0 (an empty atlas)'}. Pass the Yeo 7-network volume of {_FETCHER}."
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
        Image whose grid (affine and first 3 dimensions) the mask is resampled to, with
        nearest-neighbour interpolation; only its header is read. ``None`` uses the grid of
        ``mask_img``, or of the atlas when ``mask_img`` is None too.
    mask_img : str, pathlib.Path, Nifti image or None, default=None
        Brain mask intersected with the networks (non-zero voxels are kept); resampled to the
        target grid with nearest-neighbour interpolation.
    data_dir : str, pathlib.Path or None, default=None
        Where the fetcher looks for / stores the atlas when ``atlas`` is None.

    Returns
    -------
    mask : nibabel.Nifti1Image
        3D int8 image of 0 and 1 on the target grid.

    Raises
    ------
    NetworkMaskError
        For an unknown network name, an atlas that is not a 0..7 label volume, or a requested
        network with no voxel on the target grid.
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
    names, required = _validate_networks(networks)
    grid = None if target_img is None else _image_grid(target_img, "target_img")
    mask, _ = _network_mask_data(names, required, atlas, grid, mask_img, data_dir, 0)
    return mask


# --------------------------------------------------------------------------- estimator
class NetworkMasker(TransformerMixin, BaseEstimator):
    """Mask 4D fMRI runs to one or more Yeo (2011) 7-network cortical networks.

    A thin wrapper around :class:`nilearn.maskers.MultiNiftiMasker`: ``fit`` builds the mask
    of the requested networks on the grid of the first image (the atlas mask is resampled
    with nearest-neighbour interpolation; the data are never resampled to the 1 mm atlas
    grid) and fits the inner masker with it. Usable as the first step of a
    :class:`~sklearn.pipeline.Pipeline`, with X a Python list of 4D images or paths.

    Parameters
    ----------
    networks : str or list of str, default="whole_brain"
        Network name(s): ``"visual"``, ``"somatomotor"``, ``"dorsal_attention"``,
        ``"ventral_attention"``, ``"limbic"``, ``"frontoparietal"``, ``"default"`` (case,
        spaces and hyphens are ignored), or ``"whole_brain"``: the union of the 7 networks,
        i.e. the cortex covered by the atlas, intersected with ``mask_img`` when one is given
        (subcortex and cerebellum are not included; for them use a ``MultiNiftiMasker`` with
        a brain mask directly).
    atlas : str, pathlib.Path, Nifti image or None, default=None
        Yeo-style 7-network label volume (integer labels 0..7, 3D or 4D with one volume), in
        the same (MNI152) space as the images. ``None`` fetches it with
        ``nilearn.datasets.fetch_atlas_yeo_2011(n_networks=7, thickness="thick",
        data_dir=data_dir)``, which needs network access the first time.
    data_dir : str, pathlib.Path or None, default=None
        Passed to the fetcher when ``atlas`` is None.
    mask_img : str, pathlib.Path, Nifti image or None, default=None
        Optional brain mask intersected with the networks; resampled (nearest) to the data.
    standardize : {None, "zscore_sample", "psc"}, default=None
        Passed to ``MultiNiftiMasker``. None because runs are expected to be normalised
        before blocks are cut; z-scoring each block would zero its mean pattern.
    detrend : bool, default=False
        Passed to ``MultiNiftiMasker``.
    smoothing_fwhm : float or None, default=None
        Passed to ``MultiNiftiMasker``.
    t_r : float or None, default=None
        Repetition time in seconds, passed to ``MultiNiftiMasker``.
    memory : str, joblib.Memory or None, default=None
        Cache. With ``memory_level >= 1`` the network mask computation is cached too.
    memory_level : int, default=1
        Passed to ``MultiNiftiMasker``.
    n_jobs : int, default=1
        Passed to ``MultiNiftiMasker``.
    verbose : int, default=0
        Passed to ``MultiNiftiMasker`` and to the atlas fetcher.

    Attributes
    ----------
    networks_ : list of str
        Validated network names in label order (``"whole_brain"`` expanded to the 7).
    mask_img_ : nibabel.Nifti1Image
        Binary (int8) network mask on the grid of the first image given to ``fit``.
    masker_ : nilearn.maskers.MultiNiftiMasker
        The fitted inner masker, built with ``mask_img=mask_img_`` and ``reports=False``.
    n_voxels_ : dict of str to int
        Voxels of each network in ``mask_img_``, and their sum under the key ``"total"``
        (the number of output columns).

    See Also
    --------
    network_mask : The function that builds ``mask_img_``.
    nilearn.maskers.MultiNiftiMasker : The masker doing the work.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> from sklearn_tcssl import networks
    >>> labels = np.zeros((8, 8, 8), dtype=np.int8)
    >>> labels[:4] = 1
    >>> labels[4:] = 7
    >>> atlas = nib.Nifti1Image(labels, np.eye(4))
    >>> run = np.random.rand(4, 4, 4, 10).astype("float32")
    >>> runs = [nib.Nifti1Image(run, np.diag([2, 2, 2, 1]))]
    >>> masker = networks.NetworkMasker("visual", atlas=atlas)
    >>> [x.shape for x in masker.fit_transform(runs)]
    [(10, 32)]
    >>> masker.n_voxels_
    {'visual': 32, 'total': 32}
    """

    _parameter_constraints = {
        "networks": "no_validation",  # names are checked by _validate_networks (its message)
        "atlas": "no_validation",  # path, image or None: read by nilearn/nibabel
        "data_dir": [str, os.PathLike, None],
        "mask_img": "no_validation",
        "standardize": [None, StrOptions({"zscore_sample", "psc"})],
        "detrend": ["boolean"],
        "smoothing_fwhm": [Interval(Real, 0, None, closed="left"), None],
        "t_r": [Interval(Real, 0, None, closed="neither"), None],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "memory_level": [Interval(Integral, 0, None, closed="left")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        networks=WHOLE_BRAIN,
        *,
        atlas=None,
        data_dir=None,
        mask_img=None,
        standardize=None,
        detrend=False,
        smoothing_fwhm=None,
        t_r=None,
        memory=None,
        memory_level=1,
        n_jobs=1,
        verbose=0,
    ):
        self.networks = networks
        self.atlas = atlas
        self.data_dir = data_dir
        self.mask_img = mask_img
        self.standardize = standardize
        self.detrend = detrend
        self.smoothing_fwhm = smoothing_fwhm
        self.t_r = t_r
        self.memory = memory
        self.memory_level = memory_level
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, imgs, y=None):
        """Build the network mask on the grid of ``imgs[0]`` and fit the inner masker.

        Parameters
        ----------
        imgs : list of (str, pathlib.Path or Nifti image), or one 4D image
            4D runs in MNI152 space, all on one grid (shape and affine); the first one's
            header fixes the grid. Images on another grid raise a ``NetworkMaskError``
            rather than being resampled silently: resample them first
            (``nilearn.image.resample_to_img``).
        y : None
            Ignored.

        Returns
        -------
        self : NetworkMasker
            The fitted masker.
        """
        names, required = _validate_networks(self.networks)
        listed = _check_4d(imgs, type(self).__name__)
        compute = _network_mask_data
        if self.memory is not None and self.memory_level >= 1:
            compute = check_memory(self.memory).cache(_network_mask_data)
        grid = _image_grid(listed[0], "imgs[0]")
        _check_4d(listed, type(self).__name__, grid=grid)  # one grid for all images
        self.mask_img_, self.n_voxels_ = compute(
            names, required, self.atlas, grid, self.mask_img, self.data_dir, self.verbose
        )
        self.networks_ = names
        self.masker_ = self._make_masker().fit()  # the mask is given: no image needed
        if self.verbose:
            print(f"[{type(self).__name__}] networks {names}: {self.n_voxels_}")
        return self

    def _make_masker(self):
        return MultiNiftiMasker(
            mask_img=self.mask_img_,
            standardize=self.standardize,
            detrend=self.detrend,
            smoothing_fwhm=self.smoothing_fwhm,
            t_r=self.t_r,
            memory=self.memory,
            memory_level=self.memory_level,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            reports=False,
        )

    def transform(self, imgs):
        """Extract the network voxels' time series of each run.

        Parameters
        ----------
        imgs : list of (str, pathlib.Path or Nifti image), or one 4D image
            4D runs on the grid of the images given to ``fit``.

        Returns
        -------
        signals : list of ndarray of shape (n_timepoints, n_voxels), or one such array
            Float32 time series, one array per run (a single array for a single image, like
            ``MultiNiftiMasker``).
        """
        self._check_fitted()
        single = _is_single_image(imgs)
        grid = (self.mask_img_.affine, self.mask_img_.shape)
        listed = _check_4d(imgs, type(self).__name__, grid=grid)
        _check_runs_readable(listed, np.asarray(self.mask_img_.dataobj) != 0)
        signals = self.masker_.transform(listed)
        signals = [np.asarray(s, dtype=np.float32) for s in signals]
        return signals[0] if single else signals

    def inverse_transform(self, signals):
        """Turn voxel signals back into images on the mask's grid.

        Parameters
        ----------
        signals : ndarray of shape (n_timepoints, n_voxels) or (n_voxels,)
            Signals, e.g. one output of :meth:`transform` or a weight map.

        Returns
        -------
        img : nibabel.Nifti1Image
            4D (or 3D for a 1D input) image, zero outside the mask.
        """
        self._check_fitted()
        return self.masker_.inverse_transform(signals)

    def _check_fitted(self):
        if not hasattr(self, "masker_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(imgs) first."
            )

    def __sklearn_tags__(self):
        """Declare that X is a list of images, not a 2D array."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
