"""Files this package reads: NIfTI images that may be damaged, ``.npy`` runs, the volume cache.

Every check names the file; images are verified once per process and file identity.
"""

import gzip
import hashlib
import math
import mmap
import os
import zlib
from pathlib import Path

import numpy as np

from sklearn_tcssl._utils.exceptions import DamagedFileError

_BLOCK = 2**20  # bytes read at a time, and the size of the head/tail chunks hashed
_VERIFIED = {}  # stat identity -> sha256 of the verified file (this process)
_FINITE = set()  # (stat identity, mask digest) of files checked for NaN and inf


def load_image_file(path, what):
    """``nibabel.load(path)``; a file it cannot read is a DamagedFileError naming ``what``."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        return nib.load(path)
    except (ImageFileError, OSError, EOFError, ValueError) as exc:
        raise DamagedFileError(
            f"{what}={str(path)!r} cannot be read as a NIfTI image ({exc}). The file is "
            "damaged or not NIfTI: copy it again, or re-export it as .nii/.nii.gz."
        ) from None


def missing_file_error(path, what, fix):
    """Return the FileNotFoundError for ``what=path``; ``fix`` ends the plain-absence message.

    A dangling link (DataLad/git-annex content not fetched yet) is named as such.
    """
    path = Path(path)
    if not path.is_symlink():
        return FileNotFoundError(f"{what}={str(path)!r} does not exist. {fix}")
    target = os.readlink(path)
    start = f"{what}={str(path)!r} is a symbolic link to {target!r}, which does not exist"
    if "annex" in target:
        return FileNotFoundError(
            f"{start}: a DataLad/git-annex file whose content was not downloaded. Run "
            f"`datalad get {str(path)!r}` (or `git annex get`) in the dataset, then retry."
        )
    return FileNotFoundError(f"{start}. Restore the file it points to, or pass the file itself.")


def image_name(img, default="an in-memory image"):
    """Return ``repr(filename)`` of a file-backed image, else ``default``."""
    filename = getattr(img, "get_filename", lambda: None)()
    return repr(str(filename)) if filename else default


def _stat_identity(path):
    stat = os.stat(path)
    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    return (os.path.abspath(path), *identity)


def _damaged(path, reason):
    return DamagedFileError(
        f"The image file {str(path)!r} is damaged: {reason}. Copy or download it again (or "
        "re-export it from the original data)."
    )


def _verify_gzip(path):
    """Decompress a whole gzip file (CRC checked); return its bytes' SHA-256 and its length."""
    digest, n_bytes = hashlib.sha256(), 0
    with open(path, "rb") as raw:
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                while chunk := stream.read(_BLOCK):
                    n_bytes += len(chunk)
        except EOFError:
            raise _damaged(path, "the gzip stream ends early (the file is truncated)") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise _damaged(path, f"the gzip data is corrupted ({exc})") from None
        raw.seek(0)  # the bytes again, from the page cache
        while chunk := raw.read(_BLOCK):
            digest.update(chunk)
    return digest.hexdigest(), n_bytes


def _expected_data_bytes(img):
    """Bytes the header announces (data offset + voxels x item size); None if unknown."""
    proxy = getattr(img, "dataobj", None)
    offset = getattr(proxy, "offset", None)
    dtype = getattr(proxy, "dtype", None)
    if offset is None or dtype is None:
        return None
    return int(offset) + math.prod(img.shape) * np.dtype(dtype).itemsize


def check_image_file(img):
    """Raise DamagedFileError if a file-backed image's file is truncated or corrupted.

    A ``.gz`` file is decompressed in full once (nibabel stops before the CRC, so a corrupted
    stream would load as wrong numbers); every file must be as long as its header announces.
    In-memory images are not checked.
    """
    filename = getattr(img, "get_filename", lambda: None)()
    if not filename:
        return
    key = _stat_identity(filename)
    if key in _VERIFIED:
        return
    expected = _expected_data_bytes(img)
    gz = str(filename).endswith(".gz")
    digest, n_bytes = _verify_gzip(filename) if gz else (None, key[3])
    if expected is not None and n_bytes < expected:
        raise _damaged(
            filename,
            f"its header announces {expected} bytes of image data but it holds {n_bytes} "
            "(the file is truncated)",
        )
    _VERIFIED[key] = digest


def file_identity(path):
    """Return a cache key that changes whenever the file's content may have changed.

    ``cp -p`` and ``rsync -a`` keep size and modification time, so the key also holds the
    inode and its change time (set on every write, impossible to copy) and the SHA-256 of
    the first and last MiB; a ``.gz`` file is keyed by the SHA-256 of all its bytes.
    """
    key = _stat_identity(path)
    if str(path).endswith(".gz"):
        if _VERIFIED.get(key) is None:
            _VERIFIED[key] = _verify_gzip(path)[0]
        return ("sha256", _VERIFIED[key])
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_BLOCK))
        if key[3] > _BLOCK:
            handle.seek(max(_BLOCK, key[3] - _BLOCK))
            digest.update(handle.read(_BLOCK))
    return (*key, digest.hexdigest())


def check_finite_image_data(data, where, *, frames=None):
    """Raise a ValueError naming image ``where`` (and ``frames=(start, stop)``) on NaN or inf."""
    if np.issubdtype(data.dtype, np.integer) or np.isfinite(data).all():
        return
    n_nan = int(np.isnan(data).sum())
    n_inf = int(np.isinf(data).sum())
    span = "" if frames is None else f" (frames {frames[0]} to {frames[1] - 1})"
    raise ValueError(
        f"The image {where}{span} contains NaN or infinite voxel values ({n_nan} NaN, {n_inf} "
        "inf). Fix the preprocessing, or replace them, e.g. nilearn.image.math_img("
        "'np.nan_to_num(img)', img=img), and pass a brain mask that excludes those voxels."
    )


def check_finite_image(img, where, *, mask=None):
    """Refuse NaN or infinite voxels of ``img`` inside the spatial ``mask`` (all if None).

    A file-backed image is read once per file identity and mask in this process.
    """
    filename = getattr(img, "get_filename", lambda: None)()
    key = None
    if filename:
        mask_digest = None if mask is None else hashlib.sha256(np.packbits(mask)).hexdigest()
        key = (_stat_identity(filename), mask_digest)
        if key in _FINITE:
            return
    data = np.asarray(img.dataobj)
    check_finite_image_data(data if mask is None else data[mask], where)
    if key is not None:
        _FINITE.add(key)


def open_npy_run(path, what):
    """Open the ``.npy`` run ``what=path`` as a read-only ``(n_timepoints, n_features)`` map.

    Only the header is read, so a corpus larger than memory trains from disk; the file must
    hold C-ordered 2D float32 already, because a conversion would be a copy in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path, what, "Pass paths to existing .npy files.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DamagedFileError(
            f"{what}={str(path)!r} cannot be read as a .npy array ({exc}). The file is "
            "damaged or not written by numpy.save: write it again."
        ) from None
    convert = (
        "Convert it once on disk, e.g. np.save(path, np.ascontiguousarray(np.load(path), "
        "dtype=np.float32)), or load it into memory yourself and pass the array."
    )
    if array.ndim != 2:
        raise ValueError(
            f"{what}={str(path)!r} holds an array of shape {array.shape}; a .npy run must "
            "be 2D (n_timepoints, n_features), one masked run per file."
        )
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        layout = "" if array.flags.c_contiguous else " in Fortran order"
        raise ValueError(
            f"{what}={str(path)!r} holds {array.dtype}{layout}; .npy runs are read from "
            f"disk as they are and must be C-ordered float32. {convert}"
        )
    return array


def memmap_base(array):
    """Return the first :class:`numpy.memmap` among ``array`` and its bases, else the last."""
    while isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        array = array.base
    return array


def file_position(array):
    """``(path, offset of the first byte)`` of a C-contiguous view of a memmap, else None."""
    base = memmap_base(array)
    mapped = getattr(base, "_mmap", None)
    if mapped is None or getattr(base, "filename", None) is None:
        return None
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        return None
    start = np.frombuffer(mapped, np.uint8).__array_interface__["data"][0]  # the map's start
    mapped_from = base.offset - base.offset % mmap.ALLOCATIONGRANULARITY  # its file offset
    return base.filename, array.__array_interface__["data"][0] - start + mapped_from


class FileRows:
    """Rows of a memory-mapped 2D array, read from its file with ``pread`` (as tensors).

    A page fault on a memory map reads the read-ahead window around it (often MB), so random
    windows of a corpus larger than memory would read the disk many times over; this reads
    just the rows asked for (``POSIX_FADV_RANDOM``), with the same bytes. It takes contiguous
    slices along time and integer index arrays, and is picklable (the file is reopened).

    Parameters
    ----------
    array : numpy.ndarray
        A C-contiguous 2D view of a memory-mapped file (see :func:`file_position`); kept as
        ``array`` (what a checkpoint's data digest hashes), not pickled.
    """

    def __init__(self, array):
        self.array = array
        self.path, self.offset = file_position(array)
        self.shape, self.dtype = tuple(array.shape), array.dtype
        self._row_bytes = int(array.shape[1]) * array.itemsize
        self._fd = None

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "array": None}

    def __del__(self):
        if self._fd is not None:
            os.close(self._fd)

    def _file(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
        return self._fd

    def _read_into(self, out, first_row):
        view, position = memoryview(out).cast("B"), self.offset + first_row * self._row_bytes
        while len(view):
            n = os.preadv(self._file(), [view], position)
            if n == 0:
                raise DamagedFileError(f"{self.path!r} ended before row {first_row} was read.")
            view, position = view[n:], position + n

    def __getitem__(self, index):
        import torch

        if isinstance(index, slice):  # a contiguous slice along time
            start, stop, _ = index.indices(len(self))
            out = np.empty((max(stop - start, 0), self.shape[1]), self.dtype)
            if len(out):
                self._read_into(out, start)
            return torch.from_numpy(out)
        rows = np.asarray(index, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        for j, row in enumerate(rows):  # one read per row (PCA samples rows)
            self._read_into(out[j], int(row))
        return torch.from_numpy(out)
