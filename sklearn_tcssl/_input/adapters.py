"""One adapter per input kind (:class:`SequenceInput`, :class:`VolumeInput`), before torch.

An adapter owns, for its kind of X, the validation and the input sizes, the standardisation,
the training windows and the inference batches, so the estimators never branch on the kind
of input; it never writes to the user's data. The data path: X -> adapter -> window dataset
(:mod:`sklearn_tcssl.nn.windows`) -> encoder -> loss.
"""

import math
import os

import numpy as np
import torch

from sklearn_tcssl._input.files import FileRows, file_position
from sklearn_tcssl._input.sequences import (
    batches_of_equal_length,
    common_buffer,
    mean_patterns,
    principal_axes,
    read_only_tensor,
)
from sklearn_tcssl._input.standardize import Standardizer
from sklearn_tcssl._input.validation import check_estimator_input, check_fits_in_memory
from sklearn_tcssl._input.volumes import VolumeRun, bounding_grid, check_images, reads_volumes
from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.volume import VolumeEncoder
from sklearn_tcssl.nn.windows import TripletWindowDataset

INPUTS = ("auto", "sequences", "volumes")
EVAL_BATCH_BYTES = 16 * 2**20  # bound on one evaluation batch (float32 bytes)


def _fit_statistics(estimator, sequences, n_features, source):
    """Set ``mean_`` and ``scale_`` as ``standardize`` asks (the source's with "pretrained")."""
    if estimator.standardize == "pretrained":
        standardizer = Standardizer(source["mean"], source["scale"])
    elif not estimator.standardize:
        standardizer = Standardizer.identity(n_features)
    else:
        standardizer = Standardizer.fit(sequences)
    estimator.mean_, estimator.scale_ = standardizer.mean, standardizer.scale


def fitted_standardizer(estimator):
    """Return the fitted estimator's :class:`Standardizer` (None with ``standardize=False``)."""
    if not estimator.standardize:
        return None
    return Standardizer(estimator.mean_, estimator.scale_)


class SequenceInput:
    """Arrays of sequences: validated float32 ``(n_timepoints_i, n_features)`` arrays.

    Parameters
    ----------
    sequences : list of ndarray
        Validated float32 sequences (possibly views of the user's arrays: never written).
    standardizer : Standardizer or None, default=None
        Standardisation applied when data are read (none when ``None``).
    """

    kind = "sequences"
    has_mean_pattern = True

    def __init__(self, sequences, standardizer=None):
        self.sequences = sequences
        self.standardizer = standardizer

    @classmethod
    def fit(cls, estimator, X, source=None):
        """Validate training X, set the input sizes and ``mean_``/``scale_``; return the input."""
        sequences = check_estimator_input(estimator, X, reset=True)
        _fit_statistics(estimator, sequences, estimator.n_features_per_timepoint_, source)
        return cls(sequences, fitted_standardizer(estimator))

    @classmethod
    def apply(cls, estimator, X):
        """Validate X against the fitted sizes; return the input, standardised as read."""
        sequences = check_estimator_input(estimator, X, reset=False)
        return cls(sequences, fitted_standardizer(estimator))

    def __len__(self):
        return len(self.sequences)

    @property
    def n_timepoints(self):
        """Total time points."""
        return int(sum(len(s) for s in self.sequences))

    @property
    def lengths(self):
        """Time points of each sequence."""
        return np.array([len(s) for s in self.sequences])

    def _scaled(self, array):
        if self.standardizer is None:
            return array
        return self.standardizer.transform(array)  # a new array: X is never written

    def _row_sources(self):
        """Return the sequences to read rows from: memory maps through :class:`FileRows`.

        Without ``os.preadv`` (Windows, some macOS builds) the maps themselves: the same
        values, with the read-ahead.
        """
        if not hasattr(os, "preadv"):
            return list(self.sequences)
        return [FileRows(s) if file_position(s) is not None else s for s in self.sequences]

    def window_dataset(self, segment_length):
        """Triplet windows of the raw sequences, each batch standardised as it is gathered."""
        flat = common_buffer(self.sequences)  # all arrays when not None
        sources = self._row_sources() if flat is None else self.sequences
        return TripletWindowDataset(
            [read_only_tensor(s) if isinstance(s, np.ndarray) else s for s in sources],
            segment_length,
            standardizer=self.standardizer,
            flat=None if flat is None else read_only_tensor(flat),
        )

    def tensor(self, i):
        """Sequence ``i``, standardised, as a float32 tensor ``(T, V)`` (read-only use)."""
        return read_only_tensor(np.ascontiguousarray(self._scaled(self.sequences[i])))

    def batches(self, batch_size, max_bytes=EVAL_BATCH_BYTES):
        """Yield ``(indices, batch)``: standardised ``(B, T, V)`` arrays of equal length.

        A batch holds at most ``batch_size`` sequences and about ``max_bytes`` (at least one
        sequence); it is a new array, standardised in place.
        """
        for indices in batches_of_equal_length(self.sequences, batch_size, max_bytes):
            batch = np.stack([self.sequences[i] for i in indices])  # a copy, float32
            if self.standardizer is not None:
                self.standardizer.apply_(batch)
            yield indices, batch

    def mean_patterns(self):
        """Standardised mean pattern of each sequence, ``(n_sequences, n_features)``."""
        return self._scaled(mean_patterns(self.sequences))

    def new_encoder(self, arguments, *, init, seed):
        """Build a :class:`TimeSeriesEncoder` for these features, PCA-initialised if asked."""
        n_features = self.sequences[0].shape[1]
        module = TimeSeriesEncoder(n_features, **arguments)
        if init == "pca":
            components = principal_axes(
                self._row_sources(),
                arguments["n_components"],
                seed,
                standardizer=self.standardizer,
            )
            module.initialize_spatial(torch.from_numpy(components))
        return module

    @staticmethod
    def card_entries(estimator):
        """Describe this input kind for the model card (nothing beyond the sizes)."""
        return {"form": "sequences"}

    @staticmethod
    def restore(estimator, card, tensors):
        """Set the input sizes of a loaded estimator."""
        if not estimator._univariate_:
            estimator.n_features_in_ = estimator.n_features_per_timepoint_

    @property
    def spatial_inputs(self):
        """Inputs of the encoder's per-frame linear layer (for the memory estimate)."""
        return int(self.sequences[0].shape[1])


class VolumeInput(SequenceInput):
    """4D images read lazily on a common grid: ``sequences`` holds a :class:`VolumeRun` each."""

    kind = "volumes"
    has_mean_pattern = False

    @classmethod
    def fit(cls, estimator, X, source=None):
        """Validate images, fix the grid (the source's, if any) and the statistics."""
        images = check_images(X, estimator_name=type(estimator).__name__)
        grid = None if source is None else source.get("grid")
        if grid is None:
            grid = bounding_grid(images, float(estimator.target_voxel_size))
            _check_grid_fits(estimator, grid[1])
        affine, shape = np.asarray(grid[0], dtype=float), tuple(int(n) for n in grid[1])
        estimator.grid_affine_, estimator.grid_shape_ = affine, shape
        estimator.n_features_per_timepoint_ = n_voxels = math.prod(shape)
        estimator._univariate_ = False
        for stale in ("n_features_in_", "feature_names_in_"):  # from a fit on arrays
            if hasattr(estimator, stale):
                delattr(estimator, stale)
        _fit_statistics(estimator, cls._runs(estimator, images, None), n_voxels, source)
        return cls(cls._runs(estimator, images, fitted_standardizer(estimator)))

    @classmethod
    def apply(cls, estimator, X):
        """Lazy standardised runs of images X on the grid fixed in ``fit``."""
        images = check_images(X, estimator_name=type(estimator).__name__)
        return cls(cls._runs(estimator, images, fitted_standardizer(estimator)))

    @staticmethod
    def _runs(estimator, images, standardizer):
        """One :class:`VolumeRun` per image on the fitted grid."""
        return [
            VolumeRun(
                img,
                estimator.grid_affine_,
                estimator.grid_shape_,
                cache_dir=estimator.cache_dir,
                standardizer=standardizer,
            )
            for img in images
        ]

    @property
    def spatial_inputs(self):
        """Inputs of the per-frame linear layer after the 3D CNN (32 channels x 4**3)."""
        return 32 * 4**3

    def window_dataset(self, segment_length):
        """Triplet windows read from the runs (only the windows' frames are read)."""
        return TripletWindowDataset(self.sequences, segment_length)

    def tensor(self, i):
        """Run ``i``, read whole and standardised, as a float32 tensor ``(T, V)``."""
        return torch.from_numpy(self.sequences[i].read())

    def batches(self, batch_size):
        """Yield ``([i], run)`` one run at a time (a whole run is a large read)."""
        for i, run in enumerate(self.sequences):
            yield np.array([i]), run.read()[None]  # (1, T, V)

    def mean_patterns(self):
        """Not available: a grid has too many voxels to append them to an embedding."""
        raise ValueError(
            "keep_mean_pattern=True is not available with 4D images (input='volumes'): a "
            "grid has too many voxels to append them to the embedding. Use "
            "keep_mean_pattern='auto' or False, or mask the images into arrays first."
        )

    def new_encoder(self, arguments, *, init, seed):
        """Build a :class:`VolumeEncoder` for the grid (``init`` does not apply)."""
        return VolumeEncoder(self.sequences[0].grid_shape, **arguments)

    @staticmethod
    def card_entries(estimator):
        """Describe the grid: ``grid_affine`` (4 x 4 list) and ``grid_shape``."""
        return {
            "form": "volumes",
            "grid_affine": np.asarray(estimator.grid_affine_, dtype=float).tolist(),
            "grid_shape": [int(n) for n in estimator.grid_shape_],
        }

    @staticmethod
    def restore(estimator, card, tensors):
        """Set the grid of a loaded estimator, checked against the encoder and tensors."""
        info = card.get("input", {})
        shape = tuple(int(n) for n in info.get("grid_shape", ()))
        affine = np.asarray(info.get("grid_affine", np.eye(4)), dtype=float)
        encoder_grid = tuple(card["architecture"].get("grid_shape", ()))
        n_mean = int(tensors["standardization.mean"].numel())
        if len(shape) != 3 or shape != encoder_grid or math.prod(shape) != n_mean:
            raise IncompatibleModelError(
                f"The model's grid {shape} disagrees with its encoder's grid {encoder_grid} "
                f"or its {n_mean} standardisation values. The file is damaged or was edited; "
                "save the model again with sklearn_tcssl.io.save."
            )
        if affine.shape != (4, 4) or not np.isfinite(affine).all():
            raise IncompatibleModelError("The model's grid_affine is not a finite 4 x 4 matrix.")
        estimator.grid_affine_, estimator.grid_shape_ = affine, shape


def _check_grid_fits(estimator, shape):
    """Refuse a grid whose training batch cannot fit in memory (before any allocation)."""
    n_voxels = math.prod(shape)
    frames = int(estimator.batch_size) * 3 * int(getattr(estimator, "segment_length", 3))
    n_bytes = n_voxels * 4 * (2 * frames + 8)  # float32 windows, activations, statistics
    check_fits_in_memory(
        n_bytes,
        owner=type(estimator).__name__,
        what=(
            f"target_voxel_size={estimator.target_voxel_size!r} gives a grid of "
            f"{' x '.join(map(str, shape))} = {n_voxels:.3g} voxels; a training batch"
        ),
        fix="Raise target_voxel_size (4.0 mm suits whole-brain fMRI) or lower batch_size.",
    )


INPUT_KINDS = {cls.kind: cls for cls in (SequenceInput, VolumeInput)}


def fit_input(estimator, X, source=None):
    """Return the adapter of training X (``estimator.input``), validated and standardised.

    Sets ``_input_kind_`` and the input sizes on ``estimator``. The pretrained ``source``
    (:func:`sklearn_tcssl.io._pretrained.pretrained_encoder`), if any, must be of X's input
    kind; its grid and, with ``standardize="pretrained"``, its statistics are used.
    """
    kind = "volumes" if reads_volumes(X, estimator.input) else "sequences"
    if source is not None and source["kind"] != kind:
        raise IncompatibleModelError(
            f"{type(estimator).__name__}: init_from is an encoder of {_FORMS[source['kind']]}, "
            f"but X is {_FORMS[kind]}. Pass the same kind of input as the pretrained model, "
            "or use init_from=None."
        )
    estimator._input_kind_ = kind
    return INPUT_KINDS[kind].fit(estimator, X, source)


def fitted_input(estimator, X):
    """Return the adapter of a fitted estimator for X, which must be the form seen in ``fit``."""
    kind = estimator._input_kind_
    given = "volumes" if reads_volumes(X, estimator.input) else "sequences"
    if given != kind and not (kind == "volumes" and _names_files(X)):  # missing files: say so
        raise ValueError(
            f"{type(estimator).__name__} was fitted on {_FORMS[kind]} and must be given the "
            "same form of X."
        )
    return INPUT_KINDS[kind].apply(estimator, X)


def _names_files(X):
    return isinstance(X, (list, tuple)) and any(isinstance(i, (str, os.PathLike)) for i in X)


_FORMS = {"volumes": "4D images", "sequences": "arrays of sequences"}
