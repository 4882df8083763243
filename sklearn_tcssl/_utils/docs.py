"""Shared parameter and attribute docs (a small ``docdict``, as nilearn's).

A docstring names an entry as ``%(name)s`` on a line of its own, indented like the other
parameters; :func:`fill_doc` replaces it with the entry, indented alike. Each entry is written
once here, so the embedder's and the classifier's docs of a shared parameter cannot drift.
"""

import re
import textwrap

docdict = {}

# Plots.
docdict["plot_axes"] = """
ax : matplotlib Axes or None, default=None
    Axes to draw on; a new figure when None.
chance : float or None, default=None
    Draws a dashed chance line when given.
title : str or None, default=None
    Axes title."""

# The torch layer's building blocks.
docdict["segment_projections"] = """
z_begin, z_middle, z_end : torch.Tensor of shape (batch, dim)
    Projections of the three segments of each window."""

docdict["loss_options"] = """
temperature : float, default=0.1
    Softmax temperature applied to cosine similarities.
negatives : {"batch", "pair"}, default="batch"
    ``"pair"``: the paper's form, one positive (the middle) and one negative (the beginning)
    per anchor (the end). ``"batch"``: InfoNCE over the batch, every other window's middle and
    every beginning are negatives too.
gather : callable or None, default=None
    ``"batch"`` only, with data-parallel training: ``gather(z) -> (z_all, offset)`` stacks
    every process's ``z`` (this process's rows at ``offset``, keeping their gradients), so the
    candidates are those of the whole batch."""

docdict["temporal_part"] = """
kernel_size : int, default=3
    Temporal kernel width in time points.
n_blocks : int, default=1
    Number of residual temporal convolution blocks.
projection_dim : int, default=64
    Output width of the projection head."""

docdict["subject_sequences"] = """
x : torch.Tensor of shape (batch, time, n_features_s)
    Sequences of the subject.
subject : int
    Index of the subject."""

# The estimators and the aligners.

docdict["aligner_fit"] = """
X : list of array-like of shape (n_timepoints, n_features_s)
    One unlabeled run per subject, all on the same stimulus clock.
y : None
    Ignored.
subjects : array-like or None, default=None
    Subject identifiers (default ``0 .. n_runs - 1``)."""

docdict["aligner_validation"] = """
validation_fraction : float in (0, 0.5) or None, default=None
    If set, the last fraction of every run's time points is held out: the maps are fitted
    on the rest, and time-segment matching (windows of 9 time points, fewer for short
    held-out parts) is measured on the held-out part in the shared space and on the
    unaligned runs (when every subject has the same features), kept in
    ``validation_scores_``. ``fit`` warns (``AlignmentWarning``) when aligning does worse
    than not aligning there: a label-free check that alignment pays on your data. The
    shared response still covers the whole clock."""

docdict["aligner_attributes"] = """
subjects_ : list
    Subjects of the runs given to ``fit``.
weights_ : dict
    ``{subject: ndarray of shape (n_features_s, n_components)}``, orthonormal maps
    (including subjects added with ``add_subjects``).
shared_response_ : ndarray of shape (n_timepoints_, n_components)
    Mean over the fitted subjects of their whole runs in the shared space; new subjects
    are aligned to it.
n_timepoints_ : int
    Time points of the stimulus clock.
n_features_per_subject_ : dict
    ``{subject: n_features_s}``.
validation_scores_ : dict or None
    With ``validation_fraction``: ``aligned`` and ``unaligned`` (None when subjects differ
    in features) segment-matching accuracies on the held-out time points, the ``window``
    and the ``chance`` level; None otherwise."""

docdict["weight_decay"] = """
weight_decay : float, default=1e-4
    AdamW weight decay."""

docdict["architecture"] = """
kernel_size : int or None, default=None
    Width (time points, odd) of the temporal convolutions; ``None`` is 3, or the
    pretrained encoder's value with ``init_from``.
n_blocks : int or None, default=None
    Residual temporal convolution blocks; ``None`` is 1 (or the pretrained value).
projection_dim : int or None, default=None
    Output width of the projection head used by the contrastive loss (kept, unused, by
    the classifier); ``None`` is 64 (or the pretrained value)."""

docdict["init"] = """
init : {"pca", "random"}, default="pca"
    Initialisation of the spatial projection when ``init_from=None`` (arrays of sequences;
    not used for 4D images). ``"pca"`` uses the leading principal axes of the
    (standardised) training time points, so that before any training the embedding is the
    PCA projection of each sequence's mean pattern, the input of the classical block-mean
    decoder; training then adds temporal structure. ``"random"`` keeps torch's default
    initialisation."""

docdict["standardize"] = """
standardize : bool or "pretrained", default=True
    ``True`` z-scores each feature with the mean and standard deviation of all training
    time points (learnt in ``fit``, kept in ``mean_`` and ``scale_``; a feature with zero
    variance is only centred), never sequence by sequence (that would erase each block's
    mean pattern). ``"pretrained"`` keeps the
    statistics of ``init_from`` (which it needs), the right choice when the new data are few
    or come from the same scanner and preprocessing. ``False`` leaves the data as they are."""

docdict["volumes"] = """
input : {"auto", "sequences", "volumes"}, default="auto"
    ``"volumes"``: X is a list of 4D images (``Nifti1Image`` or paths), used without a
    masker, read lazily and encoded by a small 3D CNN per frame
    (:class:`~sklearn_tcssl.nn.volume.VolumeEncoder`) with the same temporal part;
    ``standardize`` is then per grid voxel and ``init`` unused. ``"auto"``: volumes when
    every item of a list is an image or an existing file, else sequences.
target_voxel_size : float, default=4.0
    Volumes without ``init_from``: voxel edge (mm) of the common grid laid over the
    bounding box of the training images; every image is resampled onto it (linear), so
    shapes, voxel sizes and orientations may differ. With ``init_from`` the pretrained
    model's grid is used. A grid too large for memory is refused in ``fit``.
cache_dir : str, pathlib.Path or None, default=None
    Volumes: if set, each run is resampled once into a float32 ``.npy`` memory map there
    (keyed by content and grid; rebuilt if damaged); otherwise every read is resampled."""

docdict["fitted_attributes"] = """
mean_, scale_ : ndarray of shape (n_features_in_,)
    Standardisation statistics (zeros and ones when ``standardize=False``).
n_features_in_ : int
    Features per time point seen in ``fit`` (arrays of sequences only).
n_sequences_, n_timepoints_ : int
    Training sequences and their total time points.
device_ : torch.device
    Device used for training.
init_card_ : dict or None
    Description of the model given as ``init_from`` (None without it).
grid_affine_, grid_shape_ : ndarray of shape (4, 4), tuple of 3 int
    Volumes only: the common grid (``mean_``, ``scale_`` then have one value per grid
    voxel, in C order). Saved in model files and checked when they are loaded.
fit_time_ : float
    Seconds spent training in the last ``fit``."""

docdict["known_X"] = """
X : list of array-like of shape (n_timepoints_i, n_features_s)
    Sequences (blocks or runs) of known subjects; any lengths. DataFrames must have the
    columns of that subject's run in ``fit``, in the same order.
subjects : array-like of shape (n_sequences,)
    The subject of each sequence (required)."""

docdict["training_options"] = """
device : str or torch.device, default="auto"
    ``"auto"`` trains on CUDA when available and on the CPU otherwise; or ``"cpu"``,
    ``"cuda"``, ``"cuda:N"`` (``"mps"`` where available). Checked at the start of ``fit``.
random_state : int, RandomState instance or None, default=None
    Seeds the initial weights, windows and batch order. The same integer on the CPU gives
    identical results.
verbose : int, default=0
    1 prints the skorch training log.
callbacks : list of skorch callbacks or None, default=None
    Extra callbacks (e.g. ``skorch.callbacks.EarlyStopping``).
checkpoint_dir : str, pathlib.Path or None, default=None
    If set, a complete checkpoint (weights, optimizer, history, torch random state) is
    written there atomically every ``checkpoint_every`` epochs, and ``fit`` resumes from
    the latest one of the same run (same parameters and data, labels and subjects
    included), training only the remaining epochs; on the CPU it ends in the state of an
    uninterrupted run. Use one directory per training run.
checkpoint_every : int, default=1
    Epochs between checkpoints (the last epoch is always saved).
precision : {"auto", "32", "bf16"}, default="auto"
    Forward-pass precision, in training and inference; ``"auto"`` is bfloat16 autocast on
    CUDA GPUs that support it, float32 elsewhere. Weights and loss stay float32.
num_workers : int, default=0
    DataLoader workers (results stay reproducible). On CUDA, batches are pinned and
    copied without blocking.
compile : bool, default=False
    Compile the network with ``torch.compile`` (original module: ``_orig_mod``)."""

docdict["accelerator"] = """
accelerator : accelerate.Accelerator or None, default=None
    Train through Hugging Face Accelerate (multi-GPU/node, ``accelerate launch``), which
    then owns ``device`` and precision. See the scale-out guide."""

# Decoders and reports.

docdict["report_labels"] = """
y : array-like of shape (n_blocks,)
    Task labels.
groups : array-like of shape (n_blocks,) or None, default=None
    Subject of each block; with ``cv=None`` the folds are ``GroupKFold`` over subjects."""

docdict["report_folds"] = """
cv : int, cross-validation generator or None, default=None
    Folds shared by every decoder; ``None`` is ``GroupKFold(min(5, n_subjects))``.
progress : callable or None, default=None
    Called with a message before each decoder is cross-validated (e.g. ``print``).
n_jobs : int or None, default=None
    Folds fitted in parallel (``cross_validate``'s ``n_jobs``; ``-1`` uses every core)."""

docdict["loss_inputs"] = docdict["segment_projections"] + docdict["loss_options"]

docdict["decoder_masker"] = """
masker : nilearn masker, NetworkMasker or None, default=None
    First step (cloned), e.g. ``MultiNiftiMasker(mask_img=brain_mask, standardize=None)``;
    ``None`` for array input (a list of ``(n_timepoints, n_features)`` arrays). Compute a
    mask from the raw runs, not from z-scored blocks (they no longer show the brain's edge)."""

docdict["decoder_classifier"] = """
classifier : estimator or None, default=None
    Final step; ``None`` uses :func:`~sklearn_tcssl.baselines.default_classifier`
    (logistic regression). Pass :func:`~sklearn_tcssl.baselines.shrinkage_lda` for the
    strongest classical reference."""

docdict["decoder_embedder"] = """
embedder : estimator or None, default=None
    The embedding step (e.g. a ``FrozenEstimator`` of a pretrained embedder); ``None``
    builds a :class:`~sklearn_tcssl.TemporalContrastiveEmbedder` from ``embedder_params``.
memory : FitCache, str, joblib.Memory or None, default=None
    Pipeline cache: decoders that differ only in ``classifier`` and share a
    :class:`~sklearn_tcssl.baselines.FitCache` fit the embedder once per training fold.
**embedder_params
    Parameters of the new embedder when ``embedder`` is None."""

docdict = {key: text.strip("\n") for key, text in docdict.items()}


def fill_doc(obj):
    """Replace each ``%(name)s`` line of ``obj``'s docstring by ``docdict[name]``, indented alike.

    Return ``obj`` (a decorator of classes and functions).
    """

    def entry(match):
        return textwrap.indent(docdict[match[2]], match[1])

    obj.__doc__ = re.sub(r"^( *)%\((\w+)\)s$", entry, obj.__doc__, flags=re.MULTILINE)
    return obj
