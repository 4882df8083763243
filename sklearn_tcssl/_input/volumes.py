"""Whole-brain 4D images as lazily read ``(n_frames, n_voxels)`` sequences on a common grid.

* **Common grid.** ``fit`` lays an axis-aligned grid of ``target_voxel_size`` mm over the
  bounding box of all training voxel centres (headers only); every image is resampled onto
  it (:func:`nilearn.image.resample_img`, linear, 0 outside its field of view), so any
  shapes, voxel sizes and orientations mix.
* **Lazy reading.** A window reads and resamples only its frames (nibabel's array proxy),
  so a dataset larger than RAM trains; ``.nii.gz`` is decompressed up to the window.
* **Cache.** With ``cache_dir``, a run is resampled once into ``cache_dir/<hash>.npy``, keyed
  by the file's content identity and the grid, then read as a memory map.
* **Checks.** Files are verified before use, every frame read is checked for NaN and
  infinity, and the standardisation is applied to the frames just read.
"""

import functools
import math
import os
import warnings
from pathlib import Path

import joblib
import nibabel as nib
import numpy as np
import torch
from nibabel.spatialimages import SpatialImage
from nilearn.image import resample_img
from nilearn.image.resampling import get_bounds

from sklearn_tcssl._input.files import (
    check_finite_image_data,
    check_image_file,
    file_identity,
    image_name,
    load_image_file,
)

_CHUNK = 32  # frames resampled at once by the cache writer
_CACHE_VERSION = 2


def reads_volumes(X, input_kind):
    """Whether X is read as 4D images for the estimator's ``input=input_kind``.

    ``"auto"`` reads images from a non-empty list or tuple of nibabel images or paths to
    existing files other than ``.npy`` runs (arrays of sequences).
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
    """Validate a list of 4D images or paths; return the images, their data not read yet."""
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
    """``(affine, shape)`` of the axis-aligned ``voxel_size`` mm grid over all voxel centres."""
    bounds = np.array([get_bounds(img.shape[:3], img.affine) for img in images])  # (n, 3, 2)
    low, high = bounds[..., 0].min(axis=0), bounds[..., 1].max(axis=0)
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
    grid_affine, grid_shape : ndarray of shape (4, 4), tuple of 3 int
        The common grid.
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

    @property
    def shape(self):
        """``(n_frames, n_voxels)``."""
        return (self.image.shape[3], math.prod(self.grid_shape))

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}  # the map is reopened

    def __getitem__(self, index):  # a contiguous slice along time
        start, stop, _ = index.indices(len(self))
        return torch.from_numpy(self.read(start, stop))

    def read(self, start=0, stop=None):
        """Frames ``start:stop`` on the grid, standardised, as float32 ``(t, n_voxels)``."""
        stop = len(self) if stop is None else stop
        if self.cache_dir is not None:
            frames = np.array(self._cache[start:stop], dtype=np.float32)
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

    @functools.cached_property
    def _cache(self):
        """The cache entry as a memory map: written if missing, rebuilt if damaged."""
        path = self.cache_dir / f"{self._cache_key}.npy"
        try:
            cached = np.load(path, mmap_mode="r")
            if cached.shape == self.shape and cached.dtype == np.float32:
                return cached
            raise ValueError(f"shape {cached.shape}, dtype {cached.dtype}, not {self.shape}")
        except FileNotFoundError:
            pass
        except (ValueError, OSError, EOFError) as exc:
            warnings.warn(
                f"The cache entry {str(path)!r} is damaged ({exc}); it is rebuilt.",
                UserWarning,
                stacklevel=3,
            )
        return self._write_cache(path)

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
        return np.load(path, mmap_mode="r")

    @functools.cached_property
    def _cache_key(self):
        filename = self.image.get_filename()
        if filename is not None:
            source = file_identity(filename)  # content, not only size and mtime
        else:
            source = (self.image.affine, np.asarray(self.image.dataobj))
        return joblib.hash((_CACHE_VERSION, source, self.grid_affine, self.grid_shape))
