"""TemporalContrastiveEmbedder: self-supervised pretraining of an fMRI time-series encoder."""

import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from skorch.callbacks import PassthroughScoring
from skorch.dataset import ValidSplit

from sklearn_tcssl import io
from sklearn_tcssl._callbacks import StepCounter
from sklearn_tcssl._checkpoint import TrainingCheckpoint, check_checkpoint_dir, fit_or_resume
from sklearn_tcssl._net import (
    PRECISIONS,
    autocast_of,
    check_monitored_scores,
    net_class_and_options,
)
from sklearn_tcssl._params import check_choice, check_float, check_int
from sklearn_tcssl._random import seeded_torch
from sklearn_tcssl._sequences import (
    as_tensor,
    batches_of_equal_length,
    check_finite_embeddings,
    check_n_draws,
    check_segment_length,
    check_y_length,
    mean_patterns,
    principal_axes,
    standardization_stats,
)
from sklearn_tcssl._threads import with_thread_budget
from sklearn_tcssl._validation import check_estimator_input, check_fitted, resolve_device
from sklearn_tcssl._volumes import INPUTS, embed_runs, fit_volumes, reads_volumes, volume_runs
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.losses import NEGATIVES, TemporalContrastiveLoss, pretext_accuracy
from sklearn_tcssl.nn.volume import VolumeEncoder
from sklearn_tcssl.nn.windows import TripletWindowDataset, windows_per_sequence

INITS = ("pca", "random")
_EVAL_BATCH = 256


class TemporalContrastiveEmbedder(
    io.SaveMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Embed fMRI sequences with an encoder pretrained by temporal contrast (no labels).

    ``fit`` trains an encoder with the objective of Shi et al. (2023): windows of
    ``3 * segment_length`` time points are drawn at random (afresh each epoch), each sequence
    giving ``max(1, n_timepoints // (3 * segment_length))`` windows per epoch so that an
    epoch covers long runs as well as short blocks, and each window is cut into a beginning,
    a middle and an end segment; the embeddings of (middle, end), neighbours
    in time, are pulled together, and those of (beginning, end) pushed apart. ``transform``
    returns one embedding per sequence, computed on the whole sequence.

    The encoder (:class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder`) is: a learned linear
    projection of the features of each time point to ``n_components`` channels, a residual
    temporal convolution (kernel 3, starting as the identity), the mean over time (any length
    works), and, for the loss only, a two-layer projection head. The embedding is taken before
    the head.

    Parameters
    ----------
    n_components : int, default=128
        Width of the embedding. 128 keeps most of the variance of block patterns from a few
        thousand voxels while staying cheap for a linear classifier on tens of subjects.
    segment_length : int, default=3
        Time points per segment; sequences need at least ``3 * segment_length`` time points.
        3 (6 s at TR = 2 s) fits blocks as short as 9 volumes; for runs or long blocks,
        longer segments (10-20 s) let the pretext task see slower dynamics.
    negatives : {"batch", "pair"}, default="batch"
        ``"pair"`` is the paper's pure form: one negative (the beginning) per anchor.
        ``"batch"`` also uses the middles and beginnings of the other sequences of the batch
        as negatives (InfoNCE); on real task fMRI it kept more task information than the pure
        form (0.62 vs 0.55 decoding accuracy, see the user guide), so it is the default.
    keep_mean_pattern : {"auto", True, False}, default="auto"
        Append each sequence's mean pattern (after standardisation; the input of the classical
        block-mean decoder) to the learned embedding, so that a linear decoder on the output
        never has less information than the classical decoder, and the temporal-contrastive
        features come on top. On small data the pretext task alone loses task information
        (see the user guide), which is why this is on by default. ``"auto"`` is True; with
        ``input="volumes"`` the mean pattern is never appended (a grid has too many voxels).
    temperature : float, default=0.1
        Softmax temperature of the cosine similarities (a common value for InfoNCE).
    max_epochs : int, default=50
        Passes over the data; each pass draws new windows, ``max(1, n_timepoints // (3 *
        segment_length))`` per sequence (one per 9-volume block; 105 per 946-volume run at
        ``segment_length=3``). The cumulative number of optimizer steps is recorded in the
        history as ``n_steps``.
    batch_size : int, default=32
        Sequences per batch (and, with ``negatives="batch"``, the number of candidates).
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-4
        AdamW weight decay.
    init : {"pca", "random"}, default="pca"
        Initialisation of the spatial projection. ``"pca"`` uses the leading principal axes
        of the (standardised) training time points, so that before any training the
        embedding is the PCA projection of each sequence's mean pattern, the input of the
        classical block-mean decoder; training then adds temporal structure. ``"random"``
        keeps torch's default initialisation.
    standardize : bool, default=True
        Z-score each feature with the mean and standard deviation of all training time
        points (one value per feature, learnt in ``fit``, kept in ``mean_`` and ``scale_``).
        Sequences are never z-scored one by one: that would erase each block's mean pattern.
    validation_fraction : float or None, default=None
        If set, this fraction of the sequences is held out to report ``valid_loss`` and
        ``valid_pretext_acc`` in the history.
    device : str, default="auto"
        ``"auto"`` trains on CUDA when available and on the CPU otherwise; or ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, PCA sampling and windows. The same integer on the CPU gives identical
        embeddings.
    verbose : int, default=0
        1 prints the skorch training log.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks (e.g. ``skorch.callbacks.EarlyStopping``, ``Checkpoint``).
    checkpoint_dir : str, pathlib.Path or None, default=None
        If set, a complete checkpoint (weights, optimizer, history, torch random state) is
        written there atomically every ``checkpoint_every`` epochs, and ``fit`` resumes from
        the latest one it finds (same parameters and data required), training only the
        remaining epochs. On the CPU the resumed run ends in the same state as an
        uninterrupted one. Use one directory per training run.
    checkpoint_every : int, default=1
        Epochs between checkpoints (the last epoch is always saved).
    init_from : estimator, str, pathlib.Path or None, default=None
        Continue pretraining from a fitted embedder or classifier (wrapped in
        :class:`sklearn.frozen.FrozenEstimator` to survive ``clone``), or from a model file
        (:func:`sklearn_tcssl.io.save`): its encoder weights replace the ``init``
        initialisation, and self-supervised training goes on for ``max_epochs`` on the new
        data. The data must have the pretrained number of features and ``n_components``
        must equal its width. Standardisation statistics are re-estimated on the new data
        (``standardize=True``, the usual case for a new cohort or scanner); pass
        ``standardize="pretrained"`` to keep the pretrained ``mean_`` and ``scale_``.

    input : {"auto", "sequences", "volumes"}, default="auto"
        ``"volumes"``: X is a list of 4D images (``Nifti1Image`` or paths), used without a
        masker, read lazily window by window and encoded by a small 3D CNN per frame
        (:class:`~sklearn_tcssl.nn.volume.VolumeEncoder`) with the same temporal part and
        objective; ``standardize`` is then per grid voxel and ``init`` unused. ``"auto"``:
        volumes when every item of a list is an image or an existing file, else sequences.
    target_voxel_size : float, default=4.0
        Volumes: voxel edge (mm) of the common grid laid over the bounding box of the
        training images; every image is resampled onto it (linear), so shapes, voxel sizes
        and orientations may differ.
    cache_dir : str, pathlib.Path or None, default=None
        Volumes: if set, each run is resampled once into a float32 ``.npy`` memory map there
        (keyed by content and grid; rebuilt if damaged); otherwise every window is resampled.
    precision : {"auto", "32", "bf16"}, default="auto"
        Forward-pass precision; ``"auto"`` is bfloat16 autocast on CUDA GPUs that support it,
        float32 elsewhere. Weights and loss stay float32.
    num_workers : int, default=0
        DataLoader workers (each draws its own windows; results stay reproducible). On CUDA,
        batches are pinned and copied without blocking.
    compile : bool, default=False
        Compile the encoder with ``torch.compile`` (original module: ``_orig_mod``).
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate (multi-GPU/node, ``accelerate launch``), which
        then owns ``device`` and precision. See the scale-out guide.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` is the encoder.
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_pretext_acc``, cumulative ``n_steps`` (and
        validation entries).
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Standardisation statistics (zeros and ones when ``standardize=False``).
    n_features_in_ : int
        Features per time point seen in ``fit`` (columns for 2D array input).
    n_sequences_ : int
        Number of training sequences.
    n_timepoints_ : int
        Total number of training time points.
    device_ : torch.device
        Device used for training.
    init_card_ : dict or None
        Description of the model given as ``init_from`` (None without it).
    grid_affine_, grid_shape_ : ndarray of shape (4, 4), tuple of 3 int
        Volumes only: the common grid (``mean_``, ``scale_`` then have one value per grid
        voxel, in C order).

    Notes
    -----
    Input normalisation, exactly: (1) your preprocessing should detrend and z-score each voxel
    over the whole run before blocks are cut (see :func:`sklearn_tcssl.datasets.extract_blocks`);
    (2) with ``standardize=True`` each feature is then centred and scaled with statistics of
    the training time points (a feature with zero variance is only centred); (3) nothing else.

    X may be a list of ``(n_timepoints_i, n_features)`` arrays (lengths may differ), a 3D
    array ``(n_samples, n_timepoints, n_features)``, or, for scikit-learn compatibility, a 2D
    array ``(n_samples, n_timepoints)`` of univariate series.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl import TemporalContrastiveEmbedder
    >>> X = np.random.default_rng(0).normal(size=(20, 12, 50)).astype("float32")
    >>> embedder = TemporalContrastiveEmbedder(n_components=8, max_epochs=2, random_state=0)
    >>> embedder.fit_transform(X).shape
    (20, 8)
    """

    def __init__(
        self,
        n_components=128,
        *,
        segment_length=3,
        negatives="batch",
        keep_mean_pattern="auto",
        temperature=0.1,
        max_epochs=50,
        batch_size=32,
        lr=1e-3,
        weight_decay=1e-4,
        init="pca",
        standardize=True,
        validation_fraction=None,
        device="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
        checkpoint_dir=None,
        checkpoint_every=1,
        init_from=None,
        input="auto",
        target_voxel_size=4.0,
        cache_dir=None,
        precision="auto",
        num_workers=0,
        compile=False,
        accelerator=None,
    ):
        self.n_components = n_components
        self.segment_length = segment_length
        self.negatives = negatives
        self.keep_mean_pattern = keep_mean_pattern
        self.temperature = temperature
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.init = init
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.init_from = init_from
        self.input = input
        self.target_voxel_size = target_voxel_size
        self.cache_dir = cache_dir
        self.precision = precision
        self.num_workers = num_workers
        self.compile = compile
        self.accelerator = accelerator

    # ------------------------------------------------------------------ fit
    @with_thread_budget
    def fit(self, X, y=None):
        """Pretrain the encoder on the sequences in X; ``y`` is ignored.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or ndarray
            Training sequences (see Notes for the accepted forms).
        y : None
            Ignored; accepted for Pipeline compatibility.

        Returns
        -------
        self : TemporalContrastiveEmbedder
            The fitted embedder.
        """
        self._validate_params()
        device = resolve_device(self.device, estimator_name=self._name)
        if self.checkpoint_dir is not None:  # before reading any data or training
            check_checkpoint_dir(self.checkpoint_dir, owner=self._name)
        sequences = self._check_X(X, reset=True)
        check_y_length(y, len(sequences), self._name)
        self._check_segment_length(sequences)
        source = self._pretrained_source()
        self._fit_standardization(sequences)
        if source is not None and self.standardize == "pretrained":
            self.mean_, self.scale_ = source["mean"].copy(), source["scale"].copy()
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        start = time.perf_counter()
        with seeded_torch(seed):
            module = self._build_module(sequences, seed, source)
            windows = windows_per_sequence([len(s) for s in sequences], 3 * self.segment_length)
            net = self._build_net(module, device, len(sequences), seed, windows=windows)
            vars(self).pop("net_", None)  # a refit stopped half way is not fitted
            fit_or_resume(net, self._window_dataset(sequences), owner=self._name)
        self.net_ = net  # only once trained: a Ctrl-C leaves the estimator unfitted
        self.history_ = self.net_.history
        self.device_ = device
        self.n_sequences_ = len(sequences)
        self.n_timepoints_ = int(sum(len(s) for s in sequences))
        self.init_card_ = None if source is None else source["card"]
        self.fit_time_ = time.perf_counter() - start
        return self

    def _validate_params(self):
        owner = self._name
        check_int("n_components", self.n_components, owner=owner)
        check_int("segment_length", self.segment_length, owner=owner)
        check_choice("negatives", self.negatives, NEGATIVES, owner=owner)
        if self.keep_mean_pattern not in ("auto", True, False):
            raise ValueError(
                f"{owner}: keep_mean_pattern={self.keep_mean_pattern!r} is not allowed; use "
                "'auto', True or False."
            )
        check_float("temperature", self.temperature, owner=owner)
        check_int("max_epochs", self.max_epochs, owner=owner, minimum=0)
        check_int("batch_size", self.batch_size, owner=owner)
        check_float("lr", self.lr, owner=owner)
        check_float("weight_decay", self.weight_decay, owner=owner, low_inclusive=True)
        check_choice("init", self.init, INITS, owner=owner)
        check_choice("input", self.input, INPUTS, owner=owner)
        check_float("target_voxel_size", self.target_voxel_size, owner=owner)
        check_choice("precision", self.precision, PRECISIONS, owner=owner)
        check_int("num_workers", self.num_workers, owner=owner, minimum=0)
        if not isinstance(self.compile, bool):
            raise ValueError(f"{owner}: compile={self.compile!r} must be True or False.")
        check_int("checkpoint_every", self.checkpoint_every, owner=owner)
        if self.validation_fraction is not None:
            check_float("validation_fraction", self.validation_fraction, owner=owner, high=0.5)
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise ValueError(
                f"{owner}: callbacks={self.callbacks!r} must be a list of skorch callbacks "
                "or None."
            )

    @property
    def _name(self):
        return type(self).__name__

    def _check_segment_length(self, sequences):
        check_segment_length(sequences, self.segment_length, owner=self._name)

    @property
    def _on_volumes(self):
        return getattr(self, "_volumes_", False)

    def _fit_standardization(self, sequences):
        if self._on_volumes:
            return  # streamed over the runs by fit_volumes
        self.mean_, self.scale_ = standardization_stats(sequences, self.standardize)

    def _standardize(self, sequences):
        if not self.standardize or self._on_volumes:  # runs standardise as they read
            return sequences
        return [(s - self.mean_) / self.scale_ for s in sequences]

    def _scaled(self, array, *, in_place=False):
        """Standardise an array of time points or patterns (sequences input only)."""
        if not self.standardize or self._on_volumes:
            return array
        if not in_place:
            return (array - self.mean_) / self.scale_
        array -= self.mean_
        array /= self.scale_
        return array

    def _window_dataset(self, sequences, generator=None):
        """Windows of the raw sequences, standardised as they are drawn (no data copy)."""
        stats = {}
        if self.standardize and not self._on_volumes:
            stats = {"mean": torch.from_numpy(self.mean_), "scale": torch.from_numpy(self.scale_)}
        tensors = [as_tensor(s) for s in sequences]
        return TripletWindowDataset(tensors, self.segment_length, generator=generator, **stats)

    def _pretrained_source(self):
        """Return the checked weights and statistics of ``init_from`` (None without it)."""
        if self.init_from is None:
            if self.standardize == "pretrained":
                raise ValueError(
                    f"{self._name}: standardize='pretrained' needs init_from (a pretrained "
                    "model); pass init_from or use standardize=True."
                )
            return None
        source = io.pretrained_encoder(self.init_from, owner=self._name)
        io.check_pretrained_features(source, self.n_features_per_timepoint_, owner=self._name)
        width = source["config"]["n_components"]
        if self.n_components != width:
            raise ValueError(
                f"{self._name}: n_components={self.n_components} but init_from has an "
                f"embedding of width {width}. Set n_components={width}."
            )
        return source

    def _build_module(self, sequences, seed, source=None):
        if source is not None:
            return io.build_encoder(source["config"], source["state"])
        if self._on_volumes:
            return VolumeEncoder(self.grid_shape_, self.n_components)
        module = TimeSeriesEncoder(self.n_features_per_timepoint_, self.n_components)
        if self.init == "pca":
            stats = {"mean": self.mean_, "scale": self.scale_} if self.standardize else {}
            components = principal_axes(sequences, self.n_components, seed, **stats)
            module.initialize_spatial(torch.from_numpy(components))
        return module

    def _build_net(self, module, device, n_sequences, seed, windows=None):
        n_train = n_sequences
        if self.validation_fraction is not None:
            n_train -= int(np.ceil(self.validation_fraction * n_sequences))
            if n_train < 1:
                raise ValueError(
                    f"{self._name}: validation_fraction={self.validation_fraction} leaves no "
                    f"training sequence out of {n_sequences}; lower it or pass more sequences."
                )
        # windows of the training sequences in an epoch (a lower bound with validation)
        n_train = n_train if windows is None else int(np.sort(windows)[:n_train].sum())
        batch_size = min(self.batch_size, n_train)
        has_validation = self.validation_fraction is not None
        check_monitored_scores(self.callbacks, has_validation=has_validation, owner=self._name)
        callbacks = [
            ("train_pretext_acc", _pretext_scoring(on_train=True)),
            ("valid_pretext_acc", _pretext_scoring(on_train=False)),
            ("n_steps", StepCounter()),
            *self._checkpoint_callbacks(seed),
            *list(self.callbacks or []),
        ]
        train_split = None
        if self.validation_fraction is not None:
            train_split = ValidSplit(self.validation_fraction, random_state=seed)
        net_class, compute = net_class_and_options(self, device)
        return net_class(
            module=module,
            criterion=TemporalContrastiveLoss,
            criterion__temperature=self.temperature,
            criterion__negatives=self.negatives,
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            iterator_train__shuffle=True,
            # in-batch negatives: avoid a tiny last batch with almost no candidates
            iterator_train__drop_last=n_train > batch_size,
            callbacks=callbacks,
            verbose=self.verbose,
            **compute,
        )

    def _checkpoint_callbacks(self, seed):
        if self.checkpoint_dir is None:
            return []
        skipped = {"max_epochs", "verbose", "callbacks", "checkpoint_dir", "checkpoint_every"}
        fingerprint = {
            key: value
            if isinstance(value, (str, int, float, bool, type(None)))
            else repr(type(value))
            for key, value in self.get_params().items()
            if key not in skipped
        }
        fingerprint["seed"] = int(seed)
        checkpoint = TrainingCheckpoint(
            self.checkpoint_dir, every=self.checkpoint_every, fingerprint=fingerprint
        )
        return [("checkpoint", checkpoint)]

    def _check_X(self, X, *, reset):
        """Validate X; return a list of float32 (T, V) arrays and set/check input sizes."""
        volumes = reads_volumes(X, self.input)
        if reset:
            self._volumes_ = volumes
        elif volumes != self._on_volumes:
            form = "4D images" if self._on_volumes else "arrays of sequences"
            raise ValueError(
                f"{self._name} was fitted on {form} and must be given the same form of X."
            )
        if volumes:  # lazy (n_frames, n_voxels) runs on the common grid
            return fit_volumes(self, X) if reset else volume_runs(self, X)
        return check_estimator_input(self, X, reset=reset)

    # ------------------------------------------------------------ transform
    @with_thread_budget
    def transform(self, X):
        """Embed each sequence of X.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or ndarray
            Sequences with the features seen in ``fit``; any length >= 1.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features_out), dtype float32
            One row per sequence: the ``n_components`` learned features, followed, with
            ``keep_mean_pattern``, by the ``n_features_in_`` standardised mean pattern.
        """
        check_fitted(self, "net_")
        sequences = self._check_X(X, reset=False)  # standardised batch by batch below
        module = self.net_.module_
        device = next(module.parameters()).device
        if self._on_volumes:
            out = embed_runs(self.net_, sequences, self.n_components)
            check_finite_embeddings(out, module, self._name)
            return out
        out = np.empty((len(sequences), self.n_components), dtype=np.float32)
        module.eval()
        with torch.no_grad(), autocast_of(self.net_):
            for indices in batches_of_equal_length(sequences, _EVAL_BATCH):
                batch = self._scaled(np.stack([sequences[i] for i in indices]), in_place=True)
                embedded = module.embed(torch.from_numpy(batch).to(device))
                out[indices] = embedded.float().cpu().numpy()
        check_finite_embeddings(out, module, self._name)
        if self._keeps_mean_pattern:
            out = np.hstack([out, self._scaled(mean_patterns(sequences))])
        return out

    @property
    def _keeps_mean_pattern(self):
        return self.keep_mean_pattern in ("auto", True) and not self._on_volumes

    @with_thread_budget
    def score(self, X, y=None, *, n_draws=5):
        """Held-out pretext accuracy: how often the end is closer to the middle than the start.

        Windows are drawn with a fixed seed so that repeated calls agree; 0.5 is chance.

        Parameters
        ----------
        X : list of array-like or ndarray
            Sequences of at least ``3 * segment_length`` time points.
        y : None
            Ignored.
        n_draws : int, default=5
            Windows drawn per sequence.

        Returns
        -------
        accuracy : float
            Fraction of windows where the pretext task is solved.
        """
        check_fitted(self, "net_")
        n_draws = check_n_draws(n_draws, owner=f"{self._name}.score")
        sequences = self._check_X(X, reset=False)
        self._check_segment_length(sequences)
        dataset = self._window_dataset(sequences, generator=torch.Generator().manual_seed(0))
        module = self.net_.module_
        device = next(module.parameters()).device
        correct, total = 0.0, 0
        module.eval()
        with torch.no_grad():
            for _ in range(n_draws):
                windows = torch.stack([dataset[i][0] for i in range(len(dataset))]).to(device)
                z = module(windows)  # (N, 3, P)
                correct += pretext_accuracy(*z.unbind(dim=1)).item() * len(dataset)
                total += len(dataset)
        return correct / total

    @property
    def _n_features_out(self):
        if self._keeps_mean_pattern:
            return self.n_components + self.n_features_per_timepoint_
        return self.n_components

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored except for validation; the names are built from the class name.

        Returns
        -------
        names : ndarray of str
            ``<prefix>0 ... <prefix>{n_components-1}`` for the learned features, then
            ``<prefix>_mean0 ...`` for the mean pattern (with ``keep_mean_pattern``).
        """
        check_fitted(self, "net_")
        prefix = type(self).__name__.lower()
        names = [f"{prefix}{i}" for i in range(self.n_components)]
        if self._keeps_mean_pattern:
            names += [f"{prefix}_mean{j}" for j in range(self.n_features_per_timepoint_)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.three_d_array = True
        return tags


def _pretext_scoring(*, on_train):
    name = "train_pretext_acc" if on_train else "valid_pretext_acc"
    return PassthroughScoring(name=name, lower_is_better=False, on_train=on_train)
