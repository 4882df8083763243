"""TemporalContrastiveAligner: subject-aligned temporal contrast on time-locked runs."""

import time
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_tcssl._input.sequences import batches_of_equal_length, check_finite_embeddings
from sklearn_tcssl._training.checkpoint import data_digest
from sklearn_tcssl._training.seeding import seeded_torch
from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.exceptions import AlignmentWarning
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.alignment._base import ALIGNER_CONSTRAINTS, _BaseAligner
from sklearn_tcssl.alignment._srm import fit_srm, random_orthonormal
from sklearn_tcssl.embedding._base import (
    EVAL_BATCH,
    constraints_for,
    fit_method,
    run_batches,
    tensors_under,
)
from sklearn_tcssl.io._registry import (
    encoder_config,
    load_module_state,
    register_estimator,
    uncompiled,
)
from sklearn_tcssl.nn.subjects import SubjectAlignedEncoder
from sklearn_tcssl.nn.windows import (
    TimeLockedWindowDataset,
    collate_time_locked,
    windows_per_sequence,
)

__all__ = ["TemporalContrastiveAligner"]


@register_estimator
@fill_doc
class TemporalContrastiveAligner(_BaseAligner):
    """Subject-aligned temporal contrast: per-subject maps + a shared temporal encoder.

    Pretrains, without labels, on runs that share one stimulus clock (one run per subject):
    each subject's data go through its own linear map into a shared space, then through the
    shared temporal encoder and, for the loss, a projection head
    (:class:`~sklearn_tcssl.nn.subjects.SubjectAlignedEncoder`). Training uses the
    beginning/middle/end objective of Shi et al. (2023) on windows of ``3 * segment_length``
    time points; with ``cross_subject=True`` the middle (positive) is *another person's*
    segment at the same stimulus time as the end
    (:class:`~sklearn_tcssl.nn.windows.TimeLockedWindowDataset`). The maps start from a
    shared response model (``init="srm"``), so before training the embedding is the SRM
    block pattern.

    Parameters
    ----------
    n_components : int, default=50
        Width of the shared space and of the embedding.
    segment_length : int, default=10
        Time points per segment (15 s at TR = 1.5 s).
    cross_subject : bool, default=True
        Positive from another person at the same stimulus time (needs >= 2 subjects);
        ``False`` is the paper's within-subject form, in the shared space.
    negatives : {"batch", "pair"}, default="batch"
        ``"pair"``: the beginning only; ``"batch"``: also the other windows of the batch.
    temperature : float, default=0.1
        Softmax temperature of the cosine similarities.
    init : {"srm", "random"}, default="srm"
        Initial maps: a deterministic SRM fitted on the same runs, or random orthonormal.
    freeze_maps : bool, default=False
        Keep the maps at their initial value and train only the shared temporal encoder.
    orthonormal : bool, default=True
        Keep each map's columns orthonormal during training.
    max_epochs : int, default=50
        Passes over the runs; an epoch has ``n_subjects * (n_timepoints // (3 *
        segment_length))`` windows (17 runs of 946 time points: 527 windows, 8 steps of 64).
    batch_size : int, default=64
        Windows per optimizer step.
    lr : float, default=1e-4
        AdamW learning rate, chosen on held-out scenes of the Sherlock scan 1: 1e-3 moved the
        maps away from the SRM optimum and lowered cross-subject decoding by 0.01-0.04.
        ``fit`` warns when training ends at the chance level of the pretext task or with
        exploding embeddings (too high a rate).
    %(weight_decay)s
    %(temporal_part)s
    standardize : bool, default=True
        Z-score each subject's features over its run (statistics kept per subject).
    srm_iter : int, default=10
        SRM iterations for ``init="srm"``.
    %(aligner_validation)s
    %(training_options)s
    %(accelerator)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` is the encoder.
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_pretext_acc`` and cumulative ``n_steps``.
    %(aligner_attributes)s
    fit_time_ : float
        Seconds spent training in the last ``fit``.

    See Also
    --------
    SharedResponseAligner : The classical reference, and this aligner's initial maps.

    Notes
    -----
    Options of the embedder that do not exist here, and why: ``init_from`` (a pretrained
    embedder's spatial projection is one map for everyone, while an aligner learns one map
    per person; its temporal encoder could be reused, but that was not measured to help);
    ``input="volumes"``, ``target_voxel_size`` and ``cache_dir`` (the maps are per-voxel
    matrices of arrays after a masker, and 4D images of different people have no common
    voxels to map); ``init="pca"`` (``init="srm"`` is the aligned counterpart);
    ``keep_mean_pattern`` (the block mean in the shared space is ``transform`` averaged
    over time). ``validation_fraction`` holds out time points, not sequences: every
    person's run is needed to fit that person's map.
    """

    _fitted_attribute = "net_"

    def __init__(
        self,
        n_components=50,
        *,
        segment_length=10,
        cross_subject=True,
        negatives="batch",
        temperature=0.1,
        init="srm",
        freeze_maps=False,
        orthonormal=True,
        max_epochs=50,
        batch_size=64,
        lr=1e-4,
        weight_decay=1e-4,
        kernel_size=3,
        n_blocks=1,
        projection_dim=64,
        standardize=True,
        srm_iter=10,
        validation_fraction=None,
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
        self.segment_length = segment_length
        self.cross_subject = cross_subject
        self.negatives = negatives
        self.temperature = temperature
        self.init = init
        self.freeze_maps = freeze_maps
        self.orthonormal = orthonormal
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.kernel_size = kernel_size
        self.n_blocks = n_blocks
        self.projection_dim = projection_dim
        self.standardize = standardize
        self.srm_iter = srm_iter
        self.validation_fraction = validation_fraction
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
        __init__,
        **ALIGNER_CONSTRAINTS,
        cross_subject=["boolean"],
        init=[StrOptions({"srm", "random"})],
        freeze_maps=["boolean"],
        orthonormal=["boolean"],
        batch_size=[Interval(Integral, 2, None, closed="left")],
        kernel_size=[Interval(Integral, 1, None, closed="left")],
        n_blocks=[Interval(Integral, 0, None, closed="left")],
        projection_dim=[Interval(Integral, 1, None, closed="left")],
        srm_iter=[Interval(Integral, 0, None, closed="left")],
    )

    @fit_method
    def fit(self, X, y=None, *, subjects=None):
        """Pretrain the maps and the shared temporal encoder; ``y`` is ignored.

        Parameters
        ----------
        %(aligner_fit)s

        Returns
        -------
        self : TemporalContrastiveAligner
            The fitted aligner.
        """
        self._check_checkpoint_dir()
        device = self._device()
        scaled, subjects, seed = self._start_fit(X, subjects)
        train = self._fit_part(scaled)
        start = time.perf_counter()
        extra = {"inputs": data_digest(train), "subjects": [repr(s) for s in subjects]}
        with seeded_torch(seed):
            module = self._build_module(train, seed)
            net = self._build_net(module, device, len(train), seed, extra)
            dataset = TimeLockedWindowDataset(
                [torch.from_numpy(r) for r in train],
                self._param("segment_length"),
                cross_subject=bool(self.cross_subject),
            )
            self._train(net, dataset)
        self.device_ = device
        maps = self.net_.module_.subject_maps
        weights = [maps.weight(i).detach().float().cpu().numpy() for i in range(len(subjects))]
        self._finish_fit(scaled, subjects, weights)
        self._check_training(train)
        self.fit_time_ = time.perf_counter() - start
        return self

    def _check_fit_runs(self, n_runs, n_timepoints):
        if self.cross_subject and n_runs < 2:
            raise ValueError(
                f"{self._name}: cross_subject=True takes the positive from another person, so "
                f"it needs the runs of at least 2 subjects; got {n_runs}. Pass more runs or set "
                "cross_subject=False."
            )
        segment_length = self._param("segment_length")
        if 3 * segment_length > n_timepoints:
            raise ValueError(
                f"{self._name}: segment_length={segment_length} needs runs of at least "
                f"{3 * segment_length} time points (3 segments); the runs have "
                f"{n_timepoints} (for fitting). Lower segment_length."
            )

    def _build_module(self, scaled, seed):
        n_features = [r.shape[1] for r in scaled]
        k = self._param("n_components")
        module = SubjectAlignedEncoder(
            n_features,
            k,
            orthonormal=bool(self.orthonormal),
            kernel_size=self._param("kernel_size"),
            n_blocks=self._param("n_blocks"),
            projection_dim=self._param("projection_dim"),
        )
        if self.init == "srm":
            weights, _ = fit_srm(scaled, k, n_iter=self._param("srm_iter"), random_state=seed)
        else:
            rng = np.random.default_rng(seed)
            weights = [random_orthonormal(v, k, rng) for v in n_features]
        module.subject_maps.set_weights([torch.from_numpy(w) for w in weights])
        module.subject_maps.requires_grad_(not self.freeze_maps)
        return module

    def _build_net(self, module, device, n_runs, seed, extra=None):
        n_timepoints = self._n_train(int(self.n_timepoints_))
        window = 3 * self._param("segment_length")
        n_windows = n_runs * int(windows_per_sequence([n_timepoints], window)[0])
        return self._contrastive_net(
            module,
            device,
            seed,
            n_windows,
            extra=extra,
            iterator_train__collate_fn=collate_time_locked,
        )

    def _check_training(self, scaled):
        """Warn when training ended at the loss of uniform guessing or with huge embeddings.

        Equal similarities (collapsed or saturated embeddings: too high a learning rate) give
        the loss ``log(n_candidates)``.
        """
        if not len(self.history_) or self._param("max_epochs") == 0:
            return
        n_candidates = 2 if self.negatives == "pair" else 2 * self.net_.batch_size
        chance, loss = float(np.log(n_candidates)), float(self.history_[-1, "train_loss"])
        embeddings = self._embed_shared([s @ w for s, w in zip(scaled, self.weights_.values())])
        size = float(np.abs(embeddings).max())
        shared_size = float(np.abs(self.shared_response_).max()) or 1.0
        problems = []
        if abs(loss - chance) < 0.01 * chance:
            problems.append(
                f"the loss ends at {loss:.3f}, that of uniform guessing (log {n_candidates})"
            )
        if size > 100 * shared_size:
            problems.append(
                f"the embeddings reach {size:.3g}, {size / shared_size:.0f} times the shared "
                "response"
            )
        if problems:
            causes = (
                f"lr={self.lr!r} is too high (divide it by 10; 1e-4 is the default) or the "
                "runs share no time-locked signal"
                if self.lr > 1e-4
                else "the runs share no time-locked signal, or they are too short for "
                f"segments of {self._param('segment_length')} time points, or max_epochs="
                f"{self.max_epochs} is too few"
            )
            warnings.warn(
                f"{self._name}: training did not learn: {' and '.join(problems)}. Either "
                f"{causes}; compare with SharedResponseAligner.",
                AlignmentWarning,
                stacklevel=5,
            )

    @with_thread_budget
    @fill_doc
    def embed(self, X, subjects=None):
        """One embedding per sequence: shared space, then the trained temporal encoder.

        Sequences of one length are embedded together, in batches, with the precision of
        training (as the embedder's ``transform``).

        Parameters
        ----------
        %(known_X)s

        Returns
        -------
        embeddings : ndarray of shape (n_sequences, n_components), float32
            One row per sequence.
        """
        return self._embed_shared(self.transform(X, subjects=subjects))

    def _embed_shared(self, shared):
        batches = (
            (indices, np.stack([shared[i] for i in indices]))
            for indices in batches_of_equal_length(shared, EVAL_BATCH)
        )
        out = run_batches(
            self.net_, batches, lambda module, h: module.embed_shared(h), len(shared)
        )
        check_finite_embeddings(out, self.net_.module_, self._name, what="embed")
        return out

    # ------------------------------------------------------ model files (io)
    def _model_file_parts(self):
        card, tensors = super()._model_file_parts()
        module = uncompiled(self.net_.module_)
        card["architecture"] = encoder_config(module)
        card["training"] = {
            "epochs": len(self.history_),
            "fit_time_s": round(float(getattr(self, "fit_time_", 0.0)), 3),
        }
        tensors.update({f"encoder.{k}": v for k, v in module.state_dict().items()})
        return card, tensors  # io.save copies the tensors to the CPU

    def _restore_from_model(self, card, tensors):
        super()._restore_from_model(card, tensors)
        config = {k: v for k, v in card["architecture"].items() if k != "name"}
        module = SubjectAlignedEncoder(**config)
        load_module_state(module, tensors_under(tensors, "encoder."), what="encoder tensors")
        architecture = ("kernel_size", "n_blocks", "projection_dim", "orthonormal")
        self.set_params(**{key: config[key] for key in architecture})
        net = self._build_net(module, torch.device("cpu"), len(self.subjects_), 0)
        self._set_net(net.initialize())
        self.device_ = torch.device("cpu")
