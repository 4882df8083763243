"""The network masker: 4D runs restricted to Yeo networks, for Pipelines."""

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
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
from sklearn_tcssl._input.validation import check_fitted
from sklearn_tcssl.networks._atlas import brain_of_image, image_grid, network_mask_data
from sklearn_tcssl.networks._yeo import WHOLE_BRAIN, NetworkMaskError, validate_networks


def _is_single_image(imgs):
    return isinstance(imgs, str | Path) or hasattr(imgs, "affine")


def _check_4d(imgs, owner, grid=None):
    """Return the images as a list and their grid, checking that all are 4D and on one grid.

    The grid, ``(affine, shape)``, is ``grid`` if given, else the first image's.
    """
    listed = [imgs] if _is_single_image(imgs) else list(imgs)
    if not listed:
        raise NetworkMaskError(f"{owner} got imgs=[]; pass a list of 4D images or paths.")
    grids = [image_grid(img, f"imgs[{i}]") for i, img in enumerate(listed)]
    for i, (_, shape) in enumerate(grids):
        if len(shape) != 4:
            raise NetworkMaskError(
                f"imgs[{i}] has shape {shape} ({len(shape)}D); {owner} expects 4D images "
                "(x, y, z, time), one per run. Pass 4D runs; a 3D volume can be made 4D with "
                "nilearn.image.concat_imgs([img])."
            )
    affine, mask_shape = grid or grids[0]
    for i, (img_affine, shape) in enumerate(grids):  # no silent resampling
        if shape[:3] != mask_shape[:3] or not np.allclose(img_affine, affine, atol=1e-3):
            raise NetworkMaskError(
                f"imgs[{i}] has grid shape {shape[:3]} and affine "
                f"{np.round(img_affine, 2).tolist()}, but {owner} was fitted on grid shape "
                f"{tuple(mask_shape[:3])} and affine {np.round(affine, 2).tolist()}. Images "
                "with different affines cannot be mixed: resample them to one grid first (e.g. "
                "nilearn.image.resample_to_img(img, reference_img)), or fit the masker on "
                "images of that grid."
            )
    return listed, (affine, mask_shape)


def _check_runs_readable(listed, mask):
    """Refuse damaged files and NaN/inf in-mask voxels (nilearn would turn them into 0)."""
    for i, img in enumerate(listed):
        img = load_image_file(img, f"imgs[{i}]") if isinstance(img, str | Path) else img
        check_image_file(img)
        filename = image_name(img, "")
        name = f"imgs[{i}]" + (f" ({filename})" if filename else "")
        check_finite_image(img, name, mask=mask)


# --------------------------------------------------------------------------- estimator
class NetworkMasker(TransformerMixin, BaseEstimator):
    """Mask 4D fMRI runs to one or more Yeo (2011) 7-network cortical networks.

    A thin wrapper around :class:`nilearn.maskers.MultiNiftiMasker`: ``fit`` builds the mask
    of the networks on the grid of the first image (the atlas is resampled, nearest
    neighbour; never the data) and fits the inner masker with it. X is a Python list of 4D
    images or paths, e.g. in a :class:`~sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    networks : str or list of str, default="whole_brain"
        Network name(s) among :func:`network_names` (case, spaces and hyphens ignored), or
        ``"whole_brain"``: the union of the 7 networks, the atlas's cortex (no subcortex or
        cerebellum: for them use a ``MultiNiftiMasker`` with a brain mask).
    atlas : str, pathlib.Path, Nifti image or None, default=None
        As in :func:`network_mask`, in the images' (MNI152) space; fetching needs network
        access the first time.
    data_dir : str, pathlib.Path or None, default=None
        Passed to the fetcher when ``atlas`` is None.
    mask_img : str, pathlib.Path, Nifti image or None, default=None
        Optional brain mask intersected with the networks; resampled (nearest) to the data.
    standardize : {None, "zscore_sample", "psc"}, default=None
        Passed to ``MultiNiftiMasker``. None: normalise whole runs before cutting blocks;
        z-scoring each block would zero its mean pattern.
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
    in_brain_ : dict of str to float
        Share of each network's voxels (and of all, ``"total"``) inside the brain
        (``mask_img``, or the non-zero voxels of ``imgs[0]``'s first volume): about 0.99 in
        MNI152 space; see :func:`network_mask` for the limits. Empty when the brain cannot
        be told (raw runs with noise everywhere and no ``mask_img``).

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
        "networks": "no_validation",  # names are checked by validate_networks (its message)
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
            4D runs in MNI152 space, all on the first one's grid (shape and affine); others
            raise a ``NetworkMaskError`` rather than being resampled silently.
        y : None
            Ignored.

        Returns
        -------
        self : NetworkMasker
            The fitted masker.
        """
        names, required = validate_networks(self.networks)
        listed, grid = _check_4d(imgs, type(self).__name__)
        memory = check_memory(self.memory if self.memory_level >= 1 else None)
        brain = None if self.mask_img is not None else brain_of_image(listed[0])
        self.mask_img_, self.n_voxels_, self.in_brain_ = memory.cache(network_mask_data)(
            names, required, self.atlas, grid, self.mask_img, brain, self.data_dir, self.verbose
        )
        self.networks_ = names
        self.masker_ = MultiNiftiMasker(
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
        ).fit()  # the mask is given: no image needed
        if self.verbose:
            print(
                f"[{type(self).__name__}] networks {names}: {self.n_voxels_} voxels; share "
                f"inside the brain: {self.in_brain_ or 'not measured (no background)'}"
            )
        return self

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
        check_fitted(self, "masker_")
        single = _is_single_image(imgs)
        grid = (self.mask_img_.affine, self.mask_img_.shape)
        listed, _ = _check_4d(imgs, type(self).__name__, grid=grid)
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
        check_fitted(self, "masker_")
        return self.masker_.inverse_transform(signals)

    def __sklearn_tags__(self):
        """Declare that X is a list of images, not a 2D array."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.transformer_tags.preserves_dtype = []
        return tags
