"""Whole-brain 4D images as lazily read sequences on a common grid (nibabel/nilearn side).

The torch layer (:mod:`sklearn_tcssl.nn`) knows nothing of images: this module turns a list of
4D images (``Nifti1Image`` objects or paths) into :class:`VolumeRun` objects that behave like
``(n_frames, n_voxels)`` float32 tensors for slicing along time, so the ordinary
:class:`~sklearn_tcssl.nn.windows.TripletWindowDataset` draws windows from them.

Design, in short:

* **Common grid.** ``fit`` computes, from the image headers only, the bounding box (in world
  millimetres) of the centres of all training voxels and lays an axis-aligned grid of
  ``target_voxel_size`` mm over it. Every image, at fit and transform, is resampled onto that
  grid with :func:`nilearn.image.resample_img` (linear interpolation; voxels outside an image's
  field of view are 0). Images of any shape, voxel size or orientation can thus be mixed;
  parts of a later image outside the training box are cropped.
* **Lazy reading.** A window reads only its frames, through nibabel's array proxy
  (``img.dataobj[..., start:stop]``), then resamples just those frames; a dataset larger than
  RAM trains. Uncompressed ``.nii`` files are read by offset; ``.nii.gz`` files must be
  decompressed up to the window, which is slower (use ``cache_dir``).
* **Cache.** With ``cache_dir``, the first read of a run resamples the whole run once, in
  chunks, into ``cache_dir/<hash>.npy`` (float32, ``(n_frames, n_voxels)``); later windows are
  slices of a memory map of that file. The key hashes the file's content identity
  (:func:`sklearn_tcssl._input.files.file_identity`: robust to ``cp -p``/``rsync -a``; or, for
  in-memory images, their data) with the grid, so a changed file or grid is never served
  stale; a damaged entry is rebuilt. This pays from the second epoch on and costs the disk
  space of the resampled data.
* **Damaged or non-finite data** is an error naming the image: files are verified (gzip CRC,
  length) before use, and every frame read is checked for NaN and infinity.
* **Standardisation** mirrors the masked-sequence case: one mean and standard deviation per
  grid voxel over all training frames, computed in one streaming pass over the runs
  (:class:`~sklearn_tcssl._input.standardize.Standardizer`). A run applies it to the frames
  it has just read, never to the image's own data.

The estimators reach these runs through :class:`sklearn_tcssl._input.adapters.VolumeInput`; this
module only reads images (no torch model, no inference).
"""

import math
import os
from pathlib import Path

import joblib
import nibabel as nib
import numpy as np
import torch
from nibabel.spatialimages import SpatialImage
from nilearn.image import resample_img

from sklearn_tcssl._input.files import (
    check_finite_image_data,
    check_image_file,
    file_identity,
    image_name,
    load_image_file,
    open_cached_array,
)

_CHUNK = 32  # frames resampled at once by the statistics pass and the cache writer
_CACHE_VERSION = 2


def reads_volumes(X, input_kind):
    """Whether X is to be read as 4D images rather than arrays.

    ``"auto"`` reads X as images when it is a non-empty list or tuple whose every item is a
    nibabel image or a path to an existing file other than a ``.npy`` array (``.npy`` runs
    are arrays of sequences, read as memory maps).

    Parameters
    ----------
    X : object
        The input given to ``fit``.
    input_kind : {"auto", "sequences", "volumes"}
        The estimator's ``input`` parameter.

    Returns
    -------
    volumes : bool
    """
    if input_kind != "auto":
        return input_kind == "volumes"
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    return all(
        isinstance(item, SpatialImage)
        or (
            isinstance(item, (str, os.PathLike))
            and Path(item).is_file()
            and not os.fspath(item).endswith(".npy")
        )
        for item in X
    )


def check_images(X, *, estimator_name):
    """Validate a list of 4D images; return the images (paths loaded lazily by nibabel).

    Parameters
    ----------
    X : list of Nifti1Image or path-like
        4D images ``(x, y, z, time)``.
    estimator_name : str
        Name used in error messages.

    Returns
    -------
    images : list of SpatialImage
        Images whose data is not read yet (file-backed images keep their array proxy).
    """
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        raise TypeError(
            f"{estimator_name} with input='volumes' expects a non-empty list of 4D images "
            f"(Nifti1Image objects or paths); got {type(X).__name__}."
        )
    images = []
    for i, item in enumerate(X):
        if isinstance(item, (str, os.PathLike)):
            if not Path(item).is_file():
                raise FileNotFoundError(
                    f"X[{i}] = {str(item)!r} is not an existing file. Pass paths to 4D NIfTI "
                    "images (or Nifti1Image objects), relative to the working directory "
                    f"{os.getcwd()!r} or absolute."
                )
            item = load_image_file(item, f"X[{i}]")
        if not isinstance(item, SpatialImage):
            raise TypeError(
                f"X[{i}] is a {type(item).__name__}; with input='volumes' {estimator_name} "
                "expects 4D images (Nifti1Image objects or paths). For arrays, use "
                "input='sequences'."
            )
        if len(item.shape) != 4:
            raise ValueError(
                f"X[{i}] has shape {item.shape}; {estimator_name} needs 4D images "
                "(x, y, z, time). Concatenate 3D frames first (nilearn.image.concat_imgs)."
            )
        check_image_file(item)  # truncated or corrupted files: an error naming the file
        if item.get_filename() is None:
            check_finite_image_data(np.asarray(item.dataobj), f"X[{i}]")
        images.append(item)
    return images


def bounding_grid(images, voxel_size):
    """Axis-aligned grid of ``voxel_size`` mm covering every image's voxel centres.

    Parameters
    ----------
    images : list of SpatialImage
        The training images (only headers are used).
    voxel_size : float
        Edge of the grid's cubic voxels in mm.

    Returns
    -------
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine of the grid.
    shape : tuple of 3 int
        Grid shape.
    """
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1)
    points = []
    for img in images:
        extent = (np.array(img.shape[:3]) - 1)[:, None] * corners  # (3, 8) voxel indices
        points.append(img.affine[:3, :3] @ extent + img.affine[:3, 3:])  # (3, 8) mm
    points = np.concatenate(points, axis=1)
    low, high = points.min(axis=1), points.max(axis=1)
    shape = tuple(int(n) for n in np.floor((high - low) / voxel_size + 1e-6).astype(int) + 1)
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = low
    return affine, shape


class VolumeRun:
    """One 4D image seen as a lazily read ``(n_frames, n_voxels)`` float32 sequence.

    Slicing along time (``run[start:stop]``) reads and resamples only those frames and returns
    a ``torch.Tensor``; :meth:`read` returns the numpy array. Picklable (DataLoader workers
    reopen file-backed images themselves).

    Parameters
    ----------
    image : SpatialImage
        A 4D image (file-backed images are read through their array proxy).
    grid_affine : ndarray of shape (4, 4)
        Affine of the common grid.
    grid_shape : tuple of 3 int
        Shape of the common grid.
    standardizer : Standardizer or None, default=None
        Standardisation applied to every frame read (none when ``None``).
    cache_dir : path-like or None, default=None
        Where the resampled run is cached (see the module docstring).
    """

    def __init__(self, image, grid_affine, grid_shape, *, standardizer=None, cache_dir=None):
        self.image = image
        self.grid_affine = np.asarray(grid_affine, dtype=float)
        self.grid_shape = tuple(grid_shape)
        self.standardizer = standardizer
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._cached = None
        self._key = None

    @property
    def shape(self):
        """``(n_frames, n_voxels)``."""
        return (self.image.shape[3], math.prod(self.grid_shape))

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cached"] = None  # memory maps are reopened in the receiving process
        return state

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("VolumeRun supports only contiguous slices along time.")
        start, stop, _ = index.indices(len(self))
        return torch.from_numpy(self.read(start, stop))

    def read(self, start=0, stop=None):
        """Frames ``start:stop`` on the grid, standardised, as float32 ``(t, n_voxels)``."""
        stop = len(self) if stop is None else stop
        if self.cache_dir is not None:
            frames = np.array(self._cache()[start:stop], dtype=np.float32)
        else:
            frames = self._resample(start, stop)
        if self.standardizer is not None:  # frames is a new array (a copy of what was read)
            self.standardizer.apply_(frames)
        return frames

    def _resample(self, start, stop):
        data = np.asarray(self.image.dataobj[..., start:stop], dtype=np.float32)  # (x,y,z,t)
        check_finite_image_data(data, image_name(self.image), frames=(start, stop))
        same_grid = data.shape[:3] == self.grid_shape and np.allclose(
            self.image.affine, self.grid_affine
        )
        if not same_grid:
            chunk = nib.Nifti1Image(data, self.image.affine)
            resampled = resample_img(
                chunk,
                target_affine=self.grid_affine,
                target_shape=self.grid_shape,
                interpolation="linear",
                force_resample=True,
                copy_header=True,
            )
            data = np.asarray(resampled.dataobj, dtype=np.float32)
        # always a new array (callers standardise it in place; data may be the image's)
        return np.array(np.moveaxis(data, -1, 0).reshape(stop - start, -1), order="C")

    def _cache(self):
        if self._cached is None:
            path = self.cache_dir / f"{self._cache_key()}.npy"
            self._cached = open_cached_array(path, self.shape, self._write_cache)
        return self._cached

    def _write_cache(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=self.shape)
        for start in range(0, len(self), _CHUNK):
            stop = min(start + _CHUNK, len(self))
            out[start:stop] = self._resample(start, stop)
        out.flush()
        del out
        os.replace(tmp, path)  # atomic: concurrent workers never see a partial file

    def _cache_key(self):
        if self._key is None:
            self._key = self._compute_cache_key()
        return self._key

    def _compute_cache_key(self):
        filename = self.image.get_filename()
        if filename is not None:
            source = file_identity(filename)  # content, not only size and mtime
        else:
            source = (self.image.affine, np.asarray(self.image.dataobj))
        return joblib.hash((_CACHE_VERSION, source, self.grid_affine, self.grid_shape))
