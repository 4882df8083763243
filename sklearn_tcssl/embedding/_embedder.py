"""TemporalContrastiveEmbedder: self-supervised pretraining of an fMRI time-series encoder."""

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_feature_names_in

from sklearn_tcssl._input.adapters import INPUT_KINDS, fitted_input
from sklearn_tcssl._input.sequences import check_segment_length, check_y_length
from sklearn_tcssl._input.validation import check_fitted
from sklearn_tcssl._training.net import SequenceValidSplit
from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.embedding._base import (
    EncoderEstimator,
    check_integer,
    constraints_for,
    fit_method,
    tensors_under,
)
from sklearn_tcssl.io._registry import build_encoder, register_estimator
from sklearn_tcssl.nn.losses import pretext_accuracy
from sklearn_tcssl.nn.windows import window_loader, windows_per_sequence


@register_estimator
@fill_doc
class TemporalContrastiveEmbedder(TransformerMixin, EncoderEstimator):
    """Embed fMRI sequences with an encoder pretrained by temporal contrast (no labels).

    ``fit`` trains an encoder with the objective of Shi et al. (2023): each epoch draws,
    afresh, ``max(1, n_timepoints // (3 * segment_length))`` windows of ``3 *
    segment_length`` time points per sequence, and cuts each into a beginning, a middle and
    an end segment; the embeddings of (middle, end), neighbours in time, are pulled
    together, and those of (beginning, end) pushed apart. ``transform`` returns one
    embedding per sequence, computed on the whole sequence.

    The encoder (:class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder`) is: a learned linear
    projection of the features of each time point to ``n_components`` channels, a residual
    temporal convolution (kernel ``kernel_size``, starting as the identity), the mean over
    time (any length works), and, for the loss only, a two-layer projection head. The
    embedding is taken before the head.

    Parameters
    ----------
    n_components : int, default=128
        Width of the embedding.
    init_from : estimator, str, pathlib.Path or None, default=None
        Continue pretraining, for ``max_epochs`` on the new data, from a fitted embedder or
        classifier (wrapped in :class:`sklearn.frozen.FrozenEstimator` to survive
        ``clone``) or a model file (:func:`sklearn_tcssl.io.save`): its encoder weights
        replace the ``init`` initialisation. The data must have its number of features and
        ``n_components`` its width (``None`` architecture parameters take its values); a
        whole-brain model continues on 4D images, on its grid. Standardisation statistics
        are re-estimated unless ``standardize="pretrained"``.
    segment_length : int, default=3
        Time points per segment; sequences need at least ``3 * segment_length`` time points.
        3 (6 s at TR = 2 s) fits blocks as short as 9 volumes; for runs or long blocks,
        longer segments (10-20 s) let the pretext task see slower dynamics.
    negatives : {"batch", "pair"}, default="batch"
        ``"pair"`` is the paper's pure form: one negative (the beginning) per anchor.
        ``"batch"`` also uses the middles and beginnings of the other sequences of the batch
        as negatives (InfoNCE); on real task fMRI it kept more task information than the pure
        form (see the user guide).
    keep_mean_pattern : {"auto", True, False}, default="auto"
        Append each sequence's mean pattern (after standardisation; the input of the classical
        block-mean decoder) to the learned embedding, so that a linear decoder on the output
        never has less information than the classical decoder. ``"auto"`` is True, except
        with ``input="volumes"`` (a grid has too many voxels).
    temperature : float, default=0.1
        Softmax temperature of the cosine similarities (a common value for InfoNCE).
    max_epochs : int, default=50
        Passes over the data, each with new windows (one per 9-volume block; 105 per
        946-volume run at ``segment_length=3``). The history records the cumulative
        optimizer steps as ``n_steps``.
    batch_size : int, default=32
        Sequences per batch (and, with ``negatives="batch"``, the number of candidates).
    lr : float, default=1e-3
        AdamW learning rate.
    %(weight_decay)s
    %(architecture)s
    %(init)s
    %(standardize)s
    validation_fraction : float or None, default=None
        If set, this fraction of the sequences is held out to report ``valid_loss`` and
        ``valid_pretext_acc`` in the history, on windows drawn once (seeded).
    %(volumes)s
    %(training_options)s
    %(accelerator)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` is the encoder.
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_pretext_acc``, cumulative ``n_steps`` (and
        validation entries).
    %(fitted_attributes)s

    See Also
    --------
    TemporalContrastiveClassifier : Fine-tune the encoder with labels.
    sklearn_tcssl.io.save, sklearn_tcssl.load : Model files.

    Notes
    -----
    Input normalisation, exactly: (1) your preprocessing should detrend and z-score each voxel
    over the whole run before blocks are cut (see :func:`sklearn_tcssl.datasets.extract_blocks`);
    (2) with ``standardize=True`` each feature is then centred and scaled with statistics of
    the training time points; (3) nothing else.

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
        init_from=None,
        segment_length=3,
        negatives="batch",
        keep_mean_pattern="auto",
        temperature=0.1,
        max_epochs=50,
        batch_size=32,
        lr=1e-3,
        weight_decay=1e-4,
        kernel_size=None,
        n_blocks=None,
        projection_dim=None,
        init="pca",
        standardize=True,
        validation_fraction=None,
        input="auto",
        target_voxel_size=4.0,
        cache_dir=None,
        device="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
        checkpoint_dir=None,
        checkpoint_every=1,
        precision="auto",
        num_workers=0,
        compile=False,
        accelerator=None,
    ):
        self.n_components = n_components
        self.init_from = init_from
        self.segment_length = segment_length
        self.negatives = negatives
        self.keep_mean_pattern = keep_mean_pattern
        self.temperature = temperature
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.kernel_size = kernel_size
        self.n_blocks = n_blocks
        self.projection_dim = projection_dim
        self.init = init
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.input = input
        self.target_voxel_size = target_voxel_size
        self.cache_dir = cache_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.precision = precision
        self.num_workers = num_workers
        self.compile = compile
        self.accelerator = accelerator

    _parameter_constraints = constraints_for(
        __init__, keep_mean_pattern=[StrOptions({"auto"}), "boolean"]
    )

    @fit_method
    def fit(self, X, y=None):
        """Pretrain the encoder on the sequences in X; ``y`` is ignored.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features), ndarray or list of 4D images
            Training sequences (see Notes for the accepted forms).
        y : None
            Ignored; accepted for Pipeline compatibility.

        Returns
        -------
        self : TemporalContrastiveEmbedder
            The fitted embedder.
        """
        return self._fit(X, y)

    def _training(self, data, y, source, device, seed):
        check_y_length(y, len(data), self._name)
        check_segment_length(data.sequences, self._param("segment_length"), owner=self._name)
        module = self._new_encoder(data, source, seed)
        dataset = data.window_dataset(self._param("segment_length"))
        windows = windows_per_sequence(dataset.lengths, dataset.window)
        return self._build_net(module, device, len(data), seed, windows=windows), dataset, {}

    def _build_net(self, module, device, n_sequences, seed, windows=None):
        n_train = n_sequences
        train_split = None
        if self.validation_fraction is not None:
            n_train -= int(np.ceil(self.validation_fraction * n_sequences))
            if n_train < 1:
                raise ValueError(
                    f"{self._name}: validation_fraction={self.validation_fraction} leaves no "
                    f"training sequence out of {n_sequences}; lower it or pass more sequences."
                )
            train_split = SequenceValidSplit(self._param("validation_fraction"), seed=seed)
        # windows of the training sequences in an epoch (a lower bound with validation)
        n_train = n_train if windows is None else int(np.sort(windows)[:n_train].sum())
        return self._contrastive_net(
            module,
            device,
            seed,
            n_train,
            train_split=train_split,
            iterator_train=window_loader,
            iterator_valid=window_loader,
            iterator_valid__seed=seed,  # the same validation windows every epoch
            iterator_train__reuse_buffers=True,  # skorch is done with a batch two batches on
            iterator_valid__reuse_buffers=True,
        )

    def _restore_from_model(self, card, tensors):
        """Rebuild ``net_`` from a model file's card and tensors (called by ``io.load``)."""
        self._restore_common(card, tensors)
        module = build_encoder(card["architecture"], tensors_under(tensors, "encoder."))
        net = self._build_net(module, torch.device("cpu"), max(self.n_sequences_, 2), 0)
        self._set_net(net.initialize())

    # ------------------------------------------------------------ transform
    @with_thread_budget
    def transform(self, X):
        """Embed each sequence of X.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features), ndarray or list of 4D images
            Sequences with the features seen in ``fit`` (or images, for a whole-brain
            model); any length >= 1.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features_out), dtype float32
            One row per sequence: the ``n_components`` learned features, followed, with
            ``keep_mean_pattern``, by the ``n_features_in_`` standardised mean pattern.
        """
        out, data = self._infer(X, lambda module, batch: module.embed(batch))
        if self._keeps_mean_pattern:
            out = np.hstack([out, data.mean_patterns()])
        return out

    @property
    def _keeps_mean_pattern(self):
        has_pattern = INPUT_KINDS[getattr(self, "_input_kind_", "sequences")].has_mean_pattern
        return self.keep_mean_pattern in ("auto", True) and has_pattern

    @with_thread_budget
    def score(self, X, y=None, *, n_draws=5):
        """Held-out pretext accuracy: how often the end is closer to the middle than the start.

        Windows are drawn with a fixed seed so that repeated calls agree; 0.5 is chance.

        Parameters
        ----------
        X : list of array-like, ndarray or list of 4D images
            Sequences of at least ``3 * segment_length`` time points.
        y : None
            Ignored.
        n_draws : int, default=5
            Windows drawn per sequence (at least 1).

        Returns
        -------
        accuracy : float
            Fraction of windows where the pretext task is solved.
        """
        check_fitted(self, "net_")
        example = " (windows drawn per sequence, e.g. 5)"
        n_draws = check_integer(n_draws, "n_draws", f"{self._name}.score", example=example)
        data = fitted_input(self, X)
        check_segment_length(data.sequences, self._param("segment_length"), owner=self._name)
        dataset = data.window_dataset(self._param("segment_length"))
        sampler = dataset.sampler(
            self._param("batch_size"), shuffle=False, generator=torch.Generator().manual_seed(0)
        )
        module = self.net_.module_
        device = next(module.parameters()).device
        correct, total = 0.0, 0
        module.eval()
        with torch.no_grad():
            for _ in range(n_draws):
                for draws in sampler:
                    z = module(dataset[draws][0].to(device))  # (B, 3, P)
                    correct += pretext_accuracy(*z.unbind(dim=1)) * len(z)
                    total += len(z)
        return float(correct) / total

    def get_feature_names_out(self, input_features=None):
        """Return the names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked (the length ``n_features_in_``, and the names seen in ``fit`` if
            any); the output names are built from the class name.

        Returns
        -------
        names : ndarray of str
            ``<prefix>0 ... <prefix>{n_components-1}`` for the learned features, then
            ``<prefix>_mean0 ...`` for the mean pattern (with ``keep_mean_pattern``).
        """
        check_fitted(self, "net_")
        _check_feature_names_in(self, input_features)  # wrong length or names: an error
        prefix = type(self).__name__.lower()
        names = [f"{prefix}{i}" for i in range(self.n_components)]
        if self._keeps_mean_pattern:
            names += [f"{prefix}_mean{j}" for j in range(self.n_features_per_timepoint_)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
