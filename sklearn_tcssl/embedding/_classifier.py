"""TemporalContrastiveClassifier: the pretrained encoder plus a linear head, fine-tuned."""

from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from sklearn_tcssl._training.checkpoint import data_digest
from sklearn_tcssl._training.interrupt import InterruptibleMixin
from sklearn_tcssl._training.net import PrecisionMixin
from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.exceptions import TrainingDivergedError
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.embedding._base import (
    PARAMETER_CONSTRAINTS,
    EncoderEstimator,
    constraints_for,
    fit_method,
)
from sklearn_tcssl.io._registry import build_encoder, load_module_state, register_estimator


@register_estimator
@fill_doc
class TemporalContrastiveClassifier(ClassifierMixin, EncoderEstimator):
    """Classify fMRI sequences with a (pretrained) encoder and a linear head.

    The model is the encoder of :class:`TemporalContrastiveEmbedder`
    (:class:`~sklearn_tcssl.nn.encoders.TimeSeriesEncoder`, or, on 4D images,
    :class:`~sklearn_tcssl.nn.volume.VolumeEncoder`) followed by a linear layer on the
    embedding, trained with the cross-entropy. The encoder starts from a pretrained model
    (``init_from``) or from scratch; it can be frozen (only the head is trained) or
    fine-tuned with a smaller learning rate.

    Parameters
    ----------
    n_components : int or None, default=None
        Width of the embedding. ``None`` takes the pretrained encoder's width, or 128 when
        ``init_from=None``. With ``init_from``, a different value is an error.
    init_from : estimator, str, pathlib.Path or None, default=None
        A fitted :class:`TemporalContrastiveEmbedder` or classifier (wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to survive ``clone``, as in
        ``cross_val_score``), or the path of a model file (:func:`sklearn_tcssl.io.save`),
        whose encoder weights start the training (a new head is trained for ``y``). The data
        must have the pretrained number of features; a whole-brain model (fitted on 4D
        images) is fine-tuned on 4D images, resampled onto its grid.
    freeze_encoder : bool, default=False
        Train only the linear head; the encoder keeps its initial weights.
    encoder_lr_scale : float, default=0.1
        The encoder learns with ``lr * encoder_lr_scale``, the head with ``lr``: by default
        the encoder moves at the embedder's pretraining rate (1e-3), slowly enough not to
        wash out what pretraining learnt. Ignored with ``freeze_encoder=True``.
    %(init)s
    max_epochs : int, default=50
        Passes over the training sequences.
    batch_size : int, default=32
        Sequences per batch (sequences of different lengths go to different batches).
    lr : float, default=1e-2
        AdamW learning rate of the head (the encoder's is ``lr * encoder_lr_scale``).
    %(weight_decay)s
    %(architecture)s
    %(standardize)s
    validation_fraction : float or None, default=None
        If set, this stratified fraction of the sequences is held out to report
        ``valid_loss`` and ``valid_acc`` in the history (e.g. for ``EarlyStopping``).
    %(volumes)s
    %(training_options)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (any type ``numpy.unique`` sorts: strings, integers...).
    net_ : skorch.NeuralNetClassifier
        The trained network; ``net_.module_.encoder`` is the encoder, ``net_.module_.head``
        the linear head.
    history_ : skorch.History
        Per-epoch ``train_loss`` (and validation entries).
    %(fitted_attributes)s

    See Also
    --------
    TemporalContrastiveEmbedder : Pretrain the encoder without labels.
    sklearn_tcssl.io.save, sklearn_tcssl.load : Model files.

    Notes
    -----
    The embedder's ``accelerator`` (Hugging Face Accelerate) is not offered: its multi-GPU
    path shares the contrastive loss's in-batch negatives across processes, which a
    cross-entropy fine-tuning does not have; fine-tune on one device from an encoder
    pretrained with Accelerate. ``segment_length``, ``negatives``, ``temperature`` and
    ``keep_mean_pattern`` belong to the contrastive objective and the embedding.

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
        kernel_size=None,
        n_blocks=None,
        projection_dim=None,
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
        self.kernel_size = kernel_size
        self.n_blocks = n_blocks
        self.projection_dim = projection_dim
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

    _parameter_constraints = constraints_for(
        __init__,
        n_components=[*PARAMETER_CONSTRAINTS["n_components"], None],
        freeze_encoder=["boolean"],
        encoder_lr_scale=[Interval(Real, 0.0, 100.0, closed="right")],
    )

    @fit_method
    def fit(self, X, y):
        """Train the encoder and the head on labelled sequences.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features), ndarray or list of 4D images
            Training sequences (the forms accepted by :class:`TemporalContrastiveEmbedder`).
        y : array-like of shape (n_samples,)
            Labels, one per sequence, of any type ``numpy.unique`` can sort.

        Returns
        -------
        self : TemporalContrastiveClassifier
            The fitted classifier.
        """
        if y is None:
            raise ValueError(f"{self._name} requires y to be passed, but the target y is None.")
        return self._fit(X, y)

    def _training(self, data, y, source, device, seed):
        y = self._encode_labels(y, len(data))
        encoder = self._new_encoder(data, source, seed)
        if self.freeze_encoder:
            encoder.requires_grad_(False)
        module = EncoderClassifierModule(encoder, len(self.classes_))
        net = self._build_net(module, device, seed, {"inputs": data_digest([*data.sequences, y])})
        return net, _LabelledSequences(data, y), {"y": y}

    def _encode_labels(self, y, n_samples):
        """Check y against X; set ``classes_``; return the integer-coded labels."""
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(
                f"{self._name}.fit got y with {len(y)} labels for {n_samples} sequences "
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
        return y_encoded

    def _build_net(self, module, device, seed, run=None):
        train_split = None
        if self.validation_fraction is not None:
            fraction = self._param("validation_fraction")
            train_split = ValidSplit(fraction, stratified=True, random_state=seed)
        return self._new_net(
            _ClassifierNet,
            module,
            device,
            seed,
            train_split=train_split,
            extra=run,
            criterion=nn.CrossEntropyLoss,
            classes=np.arange(len(self.classes_)),
            optimizer__param_groups=[
                ("encoder.*", {"lr": float(self.lr) * float(self.encoder_lr_scale)})
            ],
            batch_size=self._param("batch_size"),
            iterator_train=_length_bucketed_loader,
            iterator_valid=_length_bucketed_loader,
        )

    def _restore_from_model(self, card, tensors):
        """Rebuild ``net_`` from a model file's card and tensors (called by ``io.load``)."""
        self._restore_common(card, tensors)
        dtype = card.get("classes_dtype", "object")
        self.classes_ = np.asarray(card["classes"], dtype=object if dtype == "object" else dtype)
        encoder = build_encoder(card["architecture"])
        module = EncoderClassifierModule(encoder, len(self.classes_))
        state = {k: v for k, v in tensors.items() if not k.startswith("standardization.")}
        load_module_state(module, state)
        self._set_net(self._build_net(module, torch.device("cpu"), 0).initialize())

    # -------------------------------------------------------------- predict
    @with_thread_budget
    def predict_proba(self, X):
        """Class probabilities of each sequence.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features), ndarray or list of 4D images
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
        X : list of array-like of shape (n_timepoints_i, n_features), ndarray or list of 4D images
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
        X : list of array-like, ndarray or list of 4D images
            Sequences with the features seen in ``fit``.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_components)
            One row per sequence.
        """
        return self._forward(X, lambda module, batch: module.encoder.embed(batch))

    def _forward(self, X, function):
        return self._infer(X, function, dtype=np.float64, what="predict")[0]


class EncoderClassifierModule(nn.Module):
    """An encoder (time series or volumes) and a linear head on its embedding.

    The encoder's projection head is kept (for saving) but not used.
    """

    def __init__(self, encoder, n_classes):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.spatial.out_features, n_classes)

    def forward(self, x):
        """Map ``(batch, time, features)`` sequences to ``(batch, n_classes)`` logits."""
        return self.head(self.encoder.embed(x))  # (B, K)


class _ClassifierNet(InterruptibleMixin, PrecisionMixin, NeuralNetClassifier):
    """skorch classifier under ``precision`` whose non-finite loss stops training clearly."""

    def __init__(self, module, *, precision="32", **kwargs):
        super().__init__(module, **kwargs)
        self.precision = precision

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
    """The standardised float32 sequences of an input adapter (read when accessed), with labels."""

    def __init__(self, data, y):
        self.data = data
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.lengths = data.lengths

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data.tensor(i), self.y[i]


class _LengthBatchSampler:
    """Batches of indices whose sequences share one length, reshuffled (torch's RNG) per epoch.

    The batches are drawn when iteration starts (skorch iterates one loader every epoch).
    """

    def __init__(self, lengths, batch_size, shuffle):
        self.lengths, self.batch_size, self.shuffle = lengths, batch_size, shuffle

    def __iter__(self):
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
        return iter(batches)

    def __len__(self):
        counts = np.unique(self.lengths, return_counts=True)[1]
        return int(sum(-(-c // self.batch_size) for c in counts))


def _length_bucketed_loader(dataset, batch_size, shuffle=False, **kwargs):
    """Build a skorch iterator: a DataLoader whose batches hold sequences of one length."""
    if isinstance(dataset, Subset):  # skorch's validation split
        lengths = dataset.dataset.lengths[np.asarray(dataset.indices)]
    else:
        lengths = dataset.lengths
    sampler = _LengthBatchSampler(lengths, batch_size, shuffle)
    return DataLoader(dataset, batch_sampler=sampler, **kwargs)
