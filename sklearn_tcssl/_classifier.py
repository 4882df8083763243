"""TemporalContrastiveClassifier: the pretrained encoder plus a linear head, fine-tuned."""

import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from sklearn_tcssl import io
from sklearn_tcssl._embedder import INITS, TemporalContrastiveEmbedder
from sklearn_tcssl._exceptions import TrainingDivergedError
from sklearn_tcssl._interrupt import InterruptibleMixin
from sklearn_tcssl._net import check_monitored_scores
from sklearn_tcssl._params import check_choice, check_float, check_int
from sklearn_tcssl._random import seeded_torch
from sklearn_tcssl._sequences import (
    batches_of_equal_length,
    check_finite_embeddings,
    principal_axes,
)
from sklearn_tcssl._threads import with_thread_budget
from sklearn_tcssl._validation import (
    check_estimator_input,
    check_fitted,
    resolve_device,
)
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder

STANDARDIZE = (True, False, "pretrained")
_EVAL_BATCH = 256


class TemporalContrastiveClassifier(io.SaveMixin, ClassifierMixin, BaseEstimator):
    """Classify fMRI sequences with a (pretrained) time-series encoder and a linear head.

    The model is the encoder of :class:`TemporalContrastiveEmbedder`
    (:class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder`: linear spatial projection,
    residual temporal convolution, mean over time) followed by a linear layer on the
    embedding, trained with the cross-entropy. The encoder starts from a pretrained model
    (``init_from``: a fitted embedder or classifier, or a model file) or from scratch; it can
    be frozen (only the head is trained) or fine-tuned with a smaller learning rate.

    Parameters
    ----------
    n_components : int or None, default=None
        Width of the embedding. ``None`` takes the pretrained encoder's width, or 128 when
        ``init_from=None``. With ``init_from``, a different value is an error.
    init_from : estimator, str, pathlib.Path or None, default=None
        A fitted :class:`TemporalContrastiveEmbedder` or classifier (wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to survive ``clone``, as in
        ``cross_val_score``), or the path of a model file (:func:`sklearn_tcssl.io.save`),
        whose encoder weights start the training. Its
        classification head, if any, is not used: a new head is trained for ``y``. The data
        must have the same number of features (voxels) as the pretrained model.
    freeze_encoder : bool, default=False
        Train only the linear head; the encoder keeps its initial weights.
    encoder_lr_scale : float, default=0.1
        The encoder learns with ``lr * encoder_lr_scale`` (skorch param groups), the head
        with ``lr``: by default the encoder moves at the embedder's pretraining rate
        (1e-3), slowly enough that fine-tuning does not wash out what pretraining learnt,
        and the randomly initialised head ten times faster. Ignored with
        ``freeze_encoder=True``.
    init : {"pca", "random"}, default="pca"
        Initialisation of the spatial projection when ``init_from=None`` (see
        :class:`TemporalContrastiveEmbedder`); ignored otherwise.
    max_epochs : int, default=50
        Passes over the training sequences.
    batch_size : int, default=32
        Sequences per batch (sequences of different lengths go to different batches).
    lr : float, default=1e-2
        AdamW learning rate of the head (the encoder's is ``lr * encoder_lr_scale``).
    weight_decay : float, default=1e-4
        AdamW weight decay.
    standardize : bool or "pretrained", default=True
        ``True`` z-scores each feature with statistics of the training time points (learnt
        in ``fit``, kept in ``mean_`` and ``scale_``); ``"pretrained"`` keeps the pretrained
        model's statistics (needs ``init_from``), the right choice when the new data are
        few or come from the same scanner and preprocessing; ``False`` leaves data as is.
    validation_fraction : float or None, default=None
        If set, this stratified fraction of the sequences is held out to report
        ``valid_loss`` and ``valid_acc`` in the history (e.g. for ``EarlyStopping``).
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the head, PCA sampling and batch order.
    verbose : int, default=0
        1 prints the skorch training log.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (any type ``numpy.unique`` sorts: strings, integers...).
    net_ : skorch.NeuralNetClassifier
        The trained network; ``net_.module_.encoder`` is the encoder, ``net_.module_.head``
        the linear head.
    history_ : skorch.History
        Per-epoch ``train_loss`` (and validation entries).
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Standardisation statistics.
    n_features_in_ : int
        Features per time point seen in ``fit``.
    n_sequences_, n_timepoints_ : int
        Training sequences and their total time points.
    device_ : torch.device
        Device used for training.
    init_card_ : dict or None
        Description of the model given as ``init_from`` (None without it).

    See Also
    --------
    TemporalContrastiveEmbedder : Pretrain the encoder without labels.
    sklearn_tcssl.io.save, sklearn_tcssl.load : Model files.

    Notes
    -----
    Input forms and normalisation are those of :class:`TemporalContrastiveEmbedder`. To use
    a pretrained encoder frozen with another classifier, wrap the embedder in
    :class:`sklearn.frozen.FrozenEstimator` inside a Pipeline instead.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl import TemporalContrastiveClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 9, 20)).astype("float32")
    >>> y = np.repeat(["face", "house"], 20)
    >>> X[y == "face", :, 0] += 2.0
    >>> clf = TemporalContrastiveClassifier(n_components=8, max_epochs=20, random_state=0)
    >>> clf.fit(X, y).predict(X[:2])
    array(['face', 'face'], dtype='<U5')
    """

    def __init__(
        self,
        n_components=None,
        *,
        init_from=None,
        freeze_encoder=False,
        encoder_lr_scale=0.1,
        init="pca",
        max_epochs=50,
        batch_size=32,
        lr=1e-2,
        weight_decay=1e-4,
        standardize=True,
        validation_fraction=None,
        device="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.n_components = n_components
        self.init_from = init_from
        self.freeze_encoder = freeze_encoder
        self.encoder_lr_scale = encoder_lr_scale
        self.init = init
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # Standardisation is the embedder's, shared rather than copied (arrays only: the
    # classifier does not read 4D images).
    _on_volumes = False
    _fit_standardization = TemporalContrastiveEmbedder._fit_standardization
    _standardize = TemporalContrastiveEmbedder._standardize

    def _check_X(self, X, *, reset):
        """Validate X (arrays, as for the embedder); set or check the input sizes."""
        return check_estimator_input(self, X, reset=reset)

    @property
    def _name(self):
        return type(self).__name__

    # ------------------------------------------------------------------ fit
    @with_thread_budget
    def fit(self, X, y):
        """Train the encoder and the head on labelled sequences.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or ndarray
            Training sequences (the forms accepted by :class:`TemporalContrastiveEmbedder`).
        y : array-like of shape (n_samples,)
            Labels, one per sequence, of any type ``numpy.unique`` can sort.

        Returns
        -------
        self : TemporalContrastiveClassifier
            The fitted classifier.
        """
        self._validate_params()
        device = resolve_device(self.device, estimator_name=self._name)
        if y is None:
            raise ValueError(f"{self._name} requires y to be passed, but the target y is None.")
        sequences = self._check_X(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(sequences):
            raise ValueError(
                f"{self._name}.fit got y with {len(y)} labels for {len(sequences)} sequences "
                "in X (inconsistent numbers of samples): pass one label per sequence (block), "
                "in the order of X."
            )
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{self._name} needs at least 2 classes in y; got 1 class "
                f"({self.classes_[0]!r}). Pass sequences of several conditions."
            )
        source = self._pretrained_source()
        self._fit_standardization(sequences)
        if self.standardize == "pretrained":
            self.mean_, self.scale_ = source["mean"].copy(), source["scale"].copy()
        sequences = self._standardize(sequences)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        start = time.perf_counter()
        with seeded_torch(seed):
            module = self._build_module(sequences, source, seed)
            net = self._build_net(module, device, seed)
            vars(self).pop("net_", None)  # a refit stopped half way is not fitted
            net.fit(_LabelledSequences(sequences, y_encoded), y_encoded)
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
        if self.n_components is not None:
            check_int("n_components", self.n_components, owner=owner)
        if not isinstance(self.freeze_encoder, (bool, np.bool_)):
            raise ValueError(
                f"{owner}: freeze_encoder={self.freeze_encoder!r} must be True or False."
            )
        check_float("encoder_lr_scale", self.encoder_lr_scale, owner=owner)
        check_choice("init", self.init, INITS, owner=owner)
        check_int("max_epochs", self.max_epochs, owner=owner, minimum=0)
        check_int("batch_size", self.batch_size, owner=owner)
        check_float("lr", self.lr, owner=owner)
        check_float("weight_decay", self.weight_decay, owner=owner, low_inclusive=True)
        if not any(self.standardize is v or self.standardize == v for v in STANDARDIZE):
            raise ValueError(
                f"{owner}: standardize={self.standardize!r} is not allowed; use True, False "
                "or 'pretrained'."
            )
        if self.standardize == "pretrained" and self.init_from is None:
            raise ValueError(
                f"{owner}: standardize='pretrained' needs init_from (a pretrained model); "
                "pass init_from or use standardize=True."
            )
        if self.validation_fraction is not None:
            check_float("validation_fraction", self.validation_fraction, owner=owner, high=0.5)
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise ValueError(
                f"{owner}: callbacks={self.callbacks!r} must be a list of skorch callbacks "
                "or None."
            )

    def _pretrained_source(self):
        if self.init_from is None:
            return None
        source = io.pretrained_encoder(self.init_from, owner=self._name)
        io.check_pretrained_features(source, self.n_features_per_timepoint_, owner=self._name)
        width = source["config"]["n_components"]
        if self.n_components is not None and self.n_components != width:
            raise ValueError(
                f"{self._name}: n_components={self.n_components} but init_from has an "
                f"embedding of width {width}. Use n_components=None (or {width})."
            )
        return source

    def _build_module(self, sequences, source, seed):
        if source is not None:
            encoder = io.build_encoder(source["config"], source["state"])
        else:
            width = 128 if self.n_components is None else self.n_components
            encoder = TimeSeriesEncoder(self.n_features_per_timepoint_, width)
            if self.init == "pca":
                components = principal_axes(sequences, width, seed)
                encoder.initialize_spatial(torch.from_numpy(components))
        if self.freeze_encoder:
            encoder.requires_grad_(False)
        return EncoderClassifierModule(encoder, len(self.classes_))

    def _build_net(self, module, device, seed):
        scale = self.encoder_lr_scale
        has_validation = self.validation_fraction is not None
        check_monitored_scores(self.callbacks, has_validation=has_validation, owner=self._name)
        train_split = None
        if self.validation_fraction is not None:
            train_split = ValidSplit(self.validation_fraction, stratified=True, random_state=seed)
        return _ClassifierNet(
            module=module,
            criterion=nn.CrossEntropyLoss,
            classes=np.arange(len(self.classes_)),
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=[("encoder.*", {"lr": self.lr * scale})],
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            iterator_train=_length_bucketed_loader,
            iterator_train__shuffle=True,
            iterator_valid=_length_bucketed_loader,
            callbacks=list(self.callbacks or []),
            device=str(device),
            verbose=self.verbose,
        )

    def _restore_from_model(self, card, tensors):
        """Rebuild ``net_`` from a model file's card and tensors (used by ``io.load``)."""
        dtype = card.get("classes_dtype", "object")
        self.classes_ = np.asarray(card["classes"], dtype=object if dtype == "object" else dtype)
        encoder = io.build_encoder(card["architecture"])
        module = EncoderClassifierModule(encoder, len(self.classes_))
        try:
            module.load_state_dict(tensors_without_standardization(tensors), strict=True)
        except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
            raise io.IncompatibleModelError(
                f"The model file's tensors do not match its card ({exc}). The file is "
                "damaged or was edited; save the model again with sklearn_tcssl.io.save."
            ) from exc
        self.net_ = self._build_net(module, torch.device("cpu"), 0).initialize()
        self.history_ = self.net_.history
        self.init_card_ = card.get("training", {}).get("init_from")

    # -------------------------------------------------------------- predict
    @with_thread_budget
    def predict_proba(self, X):
        """Class probabilities of each sequence.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or ndarray
            Sequences with the features seen in ``fit``; any length >= 1.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._forward(X, lambda module, batch: torch.softmax(module(batch), dim=1))

    @with_thread_budget
    def predict(self, X):
        """Predict the class of each sequence.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or ndarray
            Sequences with the features seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    @with_thread_budget
    def embed(self, X):
        """Embed each sequence with the (fine-tuned) encoder, before the head.

        Named ``embed`` rather than ``transform`` so that scikit-learn treats the estimator
        as a classifier only.

        Parameters
        ----------
        X : list of array-like or ndarray
            Sequences with the features seen in ``fit``.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_components)
        """
        return self._forward(X, lambda module, batch: module.encoder.embed(batch))

    def _forward(self, X, function):
        check_fitted(self, "net_")
        sequences = self._standardize(self._check_X(X, reset=False))
        module = self.net_.module_
        device = next(module.parameters()).device
        out = [None] * len(sequences)
        module.eval()
        with torch.no_grad():
            for indices in batches_of_equal_length(sequences, _EVAL_BATCH):
                batch = torch.from_numpy(np.stack([sequences[i] for i in indices])).to(device)
                values = function(module, batch).double().cpu().numpy()
                for i, row in zip(indices, values):
                    out[i] = row
        out = np.stack(out)
        check_finite_embeddings(out, module, self._name, what="predict")
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class EncoderClassifierModule(nn.Module):
    """A :class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder` followed by a linear head.

    Parameters
    ----------
    encoder : TimeSeriesEncoder
        The encoder; its projection head is kept (for saving) but not used.
    n_classes : int
        Number of classes.
    """

    def __init__(self, encoder, n_classes):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.spatial.out_features, n_classes)

    def forward(self, x):
        """Map ``(batch, time, features)`` sequences to ``(batch, n_classes)`` logits."""
        return self.head(self.encoder.embed(x))  # (B, K)


class _ClassifierNet(InterruptibleMixin, NeuralNetClassifier):
    """skorch classifier: a non-finite loss is a clear error, Ctrl-C propagates."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Cross-entropy of the batch; raises TrainingDivergedError on NaN or infinity."""
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"The classification loss became {loss.item()} at epoch {len(self.history)}. "
                "Try a lower lr (e.g. divide it by 10) and check the input for huge values."
            )
        return loss


class _LabelledSequences(Dataset):
    """Float32 sequences ``(T_i, V)`` with integer labels; ``lengths`` for batching."""

    def __init__(self, sequences, y):
        self.sequences = [torch.from_numpy(s) for s in sequences]
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.lengths = np.array([len(s) for s in sequences])

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, i):
        return self.sequences[i], self.y[i]


def _dataset_lengths(dataset):
    if isinstance(dataset, Subset):
        return _dataset_lengths(dataset.dataset)[np.asarray(dataset.indices)]
    return dataset.lengths


class _LengthBatchSampler:
    """Batches of indices whose sequences share one length, shuffled with torch's RNG."""

    def __init__(self, lengths, batch_size, shuffle):
        self.lengths, self.batch_size, self.shuffle = lengths, batch_size, shuffle

    def _batches(self):
        batches = []
        for length in np.unique(self.lengths):
            indices = np.flatnonzero(self.lengths == length)
            if self.shuffle:
                indices = indices[torch.randperm(len(indices)).numpy()]
            batches += [
                indices[i : i + self.batch_size].tolist()
                for i in range(0, len(indices), self.batch_size)
            ]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self):
        counts = np.unique(self.lengths, return_counts=True)[1]
        return int(sum(-(-c // self.batch_size) for c in counts))


def _length_bucketed_loader(dataset, batch_size, shuffle=False, **kwargs):
    """Build a skorch iterator: a DataLoader whose batches hold sequences of one length."""
    sampler = _LengthBatchSampler(_dataset_lengths(dataset), batch_size, shuffle)
    return DataLoader(dataset, batch_sampler=sampler, **kwargs)


def tensors_without_standardization(tensors):
    """Model-file tensors minus the standardisation statistics."""
    return {k: v for k, v in tensors.items() if not k.startswith("standardization.")}
