"""Private bases of the estimators: what the embedder, the classifier and the aligners share."""

import inspect
import os
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from sklearn_tcssl._input.adapters import INPUT_KINDS, INPUTS, fit_input, fitted_input
from sklearn_tcssl._input.sequences import check_finite_embeddings
from sklearn_tcssl._input.validation import check_fits_in_memory, check_fitted, resolve_device
from sklearn_tcssl._training.callbacks import StepCounter
from sklearn_tcssl._training.checkpoint import (
    TrainingCheckpoint,
    check_checkpoint_dir,
    fit_or_resume,
    run_fingerprint,
)
from sklearn_tcssl._training.net import (
    PRECISIONS,
    TemporalContrastiveNet,
    autocast_of,
    check_monitored_scores,
    compute_options,
)
from sklearn_tcssl._training.seeding import seeded_torch
from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl._utils.params import validates_params
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.io._model_file import SaveMixin
from sklearn_tcssl.io._pretrained import check_pretrained_features, pretrained_encoder
from sklearn_tcssl.io._registry import build_encoder
from sklearn_tcssl.nn.losses import NEGATIVES, TemporalContrastiveLoss

ARCHITECTURE = {"kernel_size": 3, "n_blocks": 1, "projection_dim": 64}  # encoder defaults
EVAL_BATCH = 256
_PATH = [str, os.PathLike, None]
_SIZE = Interval(Integral, 1, None, closed="left")

PARAMETER_CONSTRAINTS = {
    "n_components": [_SIZE],
    "segment_length": [_SIZE],
    "negatives": [StrOptions(set(NEGATIVES))],
    "temperature": [Interval(Real, 1e-3, 100.0, closed="both")],
    "max_epochs": [Interval(Integral, 0, None, closed="left")],
    "batch_size": [_SIZE],
    "lr": [Interval(Real, 0.0, 10.0, closed="right")],
    "weight_decay": [Interval(Real, 0.0, 100.0, closed="both")],
    "init": [StrOptions({"pca", "random"})],
    "standardize": ["boolean", StrOptions({"pretrained"})],
    "validation_fraction": [Interval(Real, 0.0, 0.5, closed="right"), None],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "callbacks": [list, tuple, None],
    "checkpoint_dir": _PATH,
    "checkpoint_every": [_SIZE],
    "init_from": [str, os.PathLike, HasMethods(["fit"]), None],
    "input": [StrOptions(set(INPUTS))],
    "target_voxel_size": [Interval(Real, 0.0, 100.0, closed="right")],
    "cache_dir": _PATH,
    "kernel_size": [_SIZE, None],
    "n_blocks": [Interval(Integral, 0, None, closed="left"), None],
    "projection_dim": [_SIZE, None],
    "precision": [StrOptions(set(PRECISIONS))],
    "num_workers": [Interval(Integral, 0, None, closed="left")],
    "compile": ["boolean"],
    "accelerator": "no_validation",
}


def constraints_for(init, /, **own):
    """Return the constraints of ``init``'s parameters: ``own`` ones, else the shared ones.

    The keys are exactly the parameters (as scikit-learn's ``check_param_validation`` asks).
    """
    allowed = {**PARAMETER_CONSTRAINTS, **own}
    names = list(inspect.signature(init).parameters)[1:]  # without self
    return {name: allowed[name] for name in names}


# How to fix a value outside its constraint, appended to scikit-learn's message
# (sklearn_tcssl._utils.params.validates_params).
FIX_HINTS = {
    "n_components": "an integer >= 1 such as 128 (None, in the classifier, takes the pretrained "
    "width).",
    "max_epochs": "an integer >= 0 such as 50.",
    "batch_size": "an integer >= 1 such as 32.",
    "segment_length": "an integer >= 1 such as 3 (time points per segment).",
    "temperature": "0.1 is the usual InfoNCE value; stay within [0.001, 100].",
    "lr": "a finite learning rate such as 1e-3 (embedder) or 1e-2 (classifier head).",
    "weight_decay": "a number in [0, 100] such as 1e-4.",
    "standardize": "True (z-score with training statistics), False, or 'pretrained'.",
    "validation_fraction": "a fraction such as 0.2 (aligners: under 0.5), or None.",
    "verbose": "0 (silent) or 1 (the skorch training log).",
    "device": "'auto', 'cpu', 'cuda' or 'cuda:N'.",
    "callbacks": "a list of skorch callbacks, or None.",
    "init_from": "a fitted estimator, FrozenEstimator(fitted), the path of a model file, or None.",
    "target_voxel_size": "a voxel edge in mm such as 4.0.",
    "keep_mean_pattern": "'auto', True or False.",
    "encoder_lr_scale": "a positive factor such as 0.1.",
    "n_iter": "an integer >= 0 such as 10 (SRM iterations).",
    "srm_iter": "an integer >= 0 such as 10 (SRM iterations of the initial maps).",
    "init": "'pca' or 'random' (embedder, classifier); 'srm' or 'random' (aligner).",
    "checkpoint_every": "an integer >= 1 (epochs between checkpoints).",
    "precision": "'auto', '32' or 'bf16'.",
    "num_workers": "an integer >= 0 (DataLoader workers).",
}


def python_scalar(value):
    """``value`` with numpy scalars turned into Python numbers (``np.int64(4)`` -> ``4``)."""
    return value.item() if isinstance(value, np.generic) else value


def check_integer(value, name, owner, minimum=1, example=""):
    """Refuse a non-integer or too small ``value`` for a method argument, naming the fix."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(
            f"{owner}: {name}={value!r} is not allowed; pass an integer >= {minimum}{example}."
        )
    return int(value)


def fit_method(fit):
    """Decorate a trained estimator's ``fit``: thread budget, parameter checks, docdict."""
    fit = _fit_context(prefer_skip_nested_validation=True)(fill_doc(fit))
    return with_thread_budget(validates_params(fit))  # our checks before scikit-learn's


def tensors_under(tensors, prefix):
    """Return the tensors whose names start with ``prefix``, the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


class TrainedEstimator(SaveMixin, BaseEstimator):
    """What every trained estimator shares: parameter checks, seed, device, skorch nets."""

    @property
    def _name(self):
        return type(self).__name__

    _fix_hints = {key: f"pass {hint}" for key, hint in FIX_HINTS.items()}  # validates_params

    def _check_param_combinations(self):
        init_from = getattr(self, "init_from", None)
        if getattr(self, "standardize", None) == "pretrained" and init_from is None:
            raise ValueError(
                f"{self._name}: standardize='pretrained' needs init_from (a pretrained "
                "model); pass init_from or use standardize=True."
            )
        kernel_size = getattr(self, "kernel_size", None)
        if kernel_size is not None and kernel_size % 2 == 0:
            raise ValueError(
                f"{self._name}: kernel_size={kernel_size} must be odd (so that the "
                f"temporal convolution keeps the length); use {kernel_size + 1}."
            )

    def _param(self, name):
        """Return a parameter's value as a Python number (torch and JSON reject numpy scalars)."""
        return python_scalar(getattr(self, name))

    def _seed(self):
        """Draw this fit's seed from ``random_state`` (one integer seeds everything)."""
        return check_random_state(self.random_state).randint(np.iinfo(np.int32).max)

    def _device(self):
        """Return the training device, checked before any work."""
        return resolve_device(self.device, estimator_name=self._name)

    def _check_checkpoint_dir(self):
        """Refuse a bad or busy ``checkpoint_dir`` before any data is read or trained."""
        if self.checkpoint_dir is not None:
            check_checkpoint_dir(self.checkpoint_dir, owner=self._name)

    def _checkpoint_callbacks(self, seed, extra=None):
        """Return a :class:`TrainingCheckpoint` callback when ``checkpoint_dir`` is set.

        ``extra`` (JSON values; key ``"data"`` reserved) joins the parameters and the seed in
        the fingerprint a resumed run must match.
        """
        if self.checkpoint_dir is None:
            return []
        skipped = {"max_epochs", "verbose", "callbacks", "checkpoint_dir", "checkpoint_every"}
        params = {k: v for k, v in self.get_params().items() if k not in skipped}
        fingerprint = run_fingerprint(params, seed)
        fingerprint.update(extra or {})
        checkpoint = TrainingCheckpoint(
            self.checkpoint_dir, every=self._param("checkpoint_every"), fingerprint=fingerprint
        )
        return [("checkpoint", checkpoint)]

    def _new_net(
        self, net_class, module, device, seed, *, train_split=None, extra=None, callbacks=(), **kw
    ):
        """Build a skorch net: AdamW, the training parameters, checkpoints, compute options.

        ``extra`` joins the checkpoint fingerprint; ``callbacks`` go before the checkpoint and
        the user's; ``kw`` are the net's own arguments. ``accelerator`` swaps the net class.
        """
        check_monitored_scores(
            self.callbacks, has_validation=train_split is not None, owner=self._name
        )
        callbacks = [*callbacks, *self._checkpoint_callbacks(seed, extra), *(self.callbacks or [])]
        kw["device"] = str(device)
        kw.update(
            compute_options(
                device=device,
                precision=self.precision,
                num_workers=self._param("num_workers"),
                compile=self.compile,
            )
        )
        if getattr(self, "accelerator", None) is not None:
            from sklearn_tcssl._training.accelerate import accelerated_net_kwargs  # optional

            net_class, kw = accelerated_net_kwargs(self.accelerator, kw)
        return net_class(
            module=module,
            optimizer=torch.optim.AdamW,
            lr=float(self.lr),
            optimizer__weight_decay=float(self.weight_decay),
            max_epochs=self._param("max_epochs"),
            train_split=train_split,
            iterator_train__shuffle=True,
            callbacks=callbacks,
            verbose=int(self.verbose),
            **kw,
        )

    def _contrastive_net(self, module, device, seed, n_windows, **kwargs):
        """Build the net of the beginning/middle/end objective (step counter first).

        ``n_windows`` (training windows per epoch) caps the batch size.
        """
        batch_size = min(self._param("batch_size"), n_windows)
        return self._new_net(
            TemporalContrastiveNet,
            module,
            device,
            seed,
            criterion=TemporalContrastiveLoss,
            criterion__temperature=float(self.temperature),
            criterion__negatives=self.negatives,
            batch_size=batch_size,
            # in-batch negatives: avoid a tiny last batch with almost no candidates
            iterator_train__drop_last=n_windows > batch_size,
            callbacks=[("n_steps", StepCounter())],
            **kwargs,
        )

    def _train(self, net, dataset, **fit_params):
        """Fit ``net``, resuming its checkpoint; the estimator is fitted only once trained."""
        vars(self).pop("net_", None)  # a refit stopped half way (Ctrl-C) is not fitted
        fit_or_resume(net, dataset, owner=self._name, **fit_params)
        self._set_net(net)

    def _set_net(self, net):
        self.net_ = net
        self.history_ = net.history

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def run_batches(net, batches, function, n_rows, *, dtype=np.float32):
    """Apply ``function(module, batch)`` to each ``(indices, batch)``; stack the rows.

    The evaluation rules of every estimator: the module in eval mode, no gradients, the
    net's autocast precision; ``function`` maps a float32 batch tensor to ``(batch, width)``
    and the ``(n_rows, width)`` output is gathered as ``dtype`` on the CPU.
    """
    module = net.module_
    device = next(module.parameters()).device
    out = None
    module.eval()
    with torch.no_grad(), autocast_of(net):
        for indices, batch in batches:
            values = function(module, torch.from_numpy(batch).to(device))
            values = values.float().cpu().numpy().astype(dtype)
            if out is None:
                out = np.empty((n_rows, values.shape[1]), dtype=dtype)
            out[indices] = values
    return out


class EncoderEstimator(TrainedEstimator):
    """The embedder's and classifier's base: ``init_from``, input adapter, fit, io hooks."""

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y):
        """Fit: validate X and the pretrained source, then train what ``_training`` builds.

        ``_training(data, y, source, device, seed)``, called seeded, returns the net, its
        dataset and the keyword arguments of its ``fit``.
        """
        self._check_checkpoint_dir()
        device = self._device()
        source = None
        if self.init_from is not None:
            source = pretrained_encoder(self.init_from, owner=self._name)
        data = fit_input(self, X, source)
        if source is not None:
            check_pretrained_features(source, self.n_features_per_timepoint_, owner=self._name)
        self._architecture_ = self._encoder_arguments(source)
        self._check_model_fits(data)
        seed = self._seed()
        start = time.perf_counter()
        with seeded_torch(seed):
            net, dataset, fit_params = self._training(data, y, source, device, seed)
            self._train(net, dataset, **fit_params)
        self.device_ = device
        self.n_sequences_ = len(data)
        self.n_timepoints_ = data.n_timepoints
        self.init_card_ = None if source is None else source["card"]
        self.fit_time_ = time.perf_counter() - start
        return self

    def _encoder_arguments(self, source):
        """``n_components`` and the architecture parameters, checked against the source."""
        wanted = {key: self._param(key) for key in ("n_components", *ARCHITECTURE)}
        if source is None:
            defaults = {"n_components": 128, **ARCHITECTURE}
            return {k: defaults[k] if v is None else v for k, v in wanted.items()}
        config = source["config"]
        for key, value in wanted.items():
            if value is not None and value != config.get(key, value):
                takes_none = None in self._parameter_constraints[key]
                or_none = " (or None to take the pretrained value)" if takes_none else ""
                raise ValueError(
                    f"{self._name}: {key}={value} but init_from has {key}={config[key]}. "
                    f"Set {key}={config[key]}{or_none}."
                )
        return {k: config.get(k, ARCHITECTURE.get(k)) for k in wanted}

    def _check_model_fits(self, data):
        """Refuse, before allocating, an encoder whose training state exceeds memory."""
        args = self._architecture_
        width, n_inputs = args["n_components"], data.spatial_inputs
        temporal = args["n_blocks"] * 2 * (width * width * args["kernel_size"] + width)
        head = width * width + width + width * args["projection_dim"]
        n_parameters = n_inputs * width + width + temporal + head
        check_fits_in_memory(
            n_parameters * 4 * 4,  # float32 weights, gradients and two AdamW moments
            owner=self._name,
            what=f"n_components={width} ({n_parameters:.3g} encoder parameters) for training",
            fix="Lower n_components (128 is the default) or n_blocks.",
        )

    def _new_encoder(self, data, source, seed):
        if source is not None:
            return build_encoder(source["config"], source["state"])
        return data.new_encoder(self._architecture_, init=self.init, seed=seed)

    # ------------------------------------------------------------ inference
    def _infer(self, X, function, *, dtype=np.float32, what="transform"):
        """Apply ``function(module, batch)`` to X in evaluation batches; stack the rows."""
        check_fitted(self, "net_")
        data = fitted_input(self, X)
        out = run_batches(self.net_, data.batches(EVAL_BATCH), function, len(data), dtype=dtype)
        check_finite_embeddings(out, self.net_.module_, self._name, what=what)
        return out, data

    # ------------------------------------------------------ model files (io)
    def _card_input(self):
        """Describe the input kind for the model card (e.g. a volume model's grid)."""
        return INPUT_KINDS[self._input_kind_].card_entries(self)

    def _restore_common(self, card, tensors):
        """Set the fitted attributes every loaded estimator has (called by ``io.load``)."""
        self.model_card_ = card
        self.mean_ = tensors["standardization.mean"].numpy()
        self.scale_ = tensors["standardization.scale"].numpy()
        self.n_features_per_timepoint_ = int(card["n_features_in"])
        self._univariate_ = bool(card["univariate"])
        self._input_kind_ = (card.get("input") or {}).get("form", "sequences")
        if self._input_kind_ not in INPUT_KINDS:
            raise IncompatibleModelError(
                f"The model's input kind {self._input_kind_!r} is not one of "
                f"{sorted(INPUT_KINDS)}; upgrade sklearn-tcssl."
            )
        INPUT_KINDS[self._input_kind_].restore(self, card, tensors)
        if "feature_names_in" in card:
            self.feature_names_in_ = np.asarray(card["feature_names_in"], dtype=object)
        training = card.get("training", {})
        self.n_sequences_ = int(training.get("n_sequences", 0))
        self.n_timepoints_ = int(training.get("n_timepoints", 0))
        self.init_card_ = training.get("init_from")
        self.device_ = torch.device("cpu")
