"""Decoders to compare: the classical block-mean decoders, nilearn's Decoder, and ours.

The strongest classical decoder on small real datasets is shrinkage LDA
(:func:`shrinkage_lda`; 0.84 on real 8-way single-subject data, against 0.69-0.73 for
logistic regression and a linear SVM and 0.78 for nilearn's ``Decoder``): it leads every report.
"""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context, clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from sklearn_tcssl._input.validation import check_estimator_input, check_fitted
from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.embedding._embedder import TemporalContrastiveEmbedder

__all__ = [
    "BlockMeanPattern",
    "NilearnDecoderBaseline",
    "ShrinkageLDA",
    "default_classifier",
    "make_classical_decoder",
    "make_tcssl_decoder",
    "shrinkage_lda",
]


class BlockMeanPattern(TransformerMixin, BaseEstimator):
    """Mean over time of each sequence: the input of the classical block decoder.

    Attributes
    ----------
    n_features_in_ : int
        Features per time point seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl.baselines import BlockMeanPattern
    >>> BlockMeanPattern().fit_transform([np.ones((4, 3)), np.zeros((6, 3))])
    array([[1., 1., 1.],
           [0., 0., 0.]], dtype=float32)
    """

    _parameter_constraints = {}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the number of features.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or 3D ndarray
            Sequences.
        y : None
            Ignored.

        Returns
        -------
        self : BlockMeanPattern
            The fitted transformer.
        """
        check_estimator_input(self, X, reset=True)
        return self

    def transform(self, X):
        """Return the mean pattern of each sequence.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or 3D ndarray
            Sequences.

        Returns
        -------
        patterns : ndarray of shape (n_samples, n_features)
            Mean over time of each sequence.
        """
        check_fitted(self, "n_features_in_")
        sequences = check_estimator_input(self, X, reset=False)
        return np.stack([s.mean(axis=0) for s in sequences])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def default_classifier():
    """Return the default readout of the decoders here: standardise, then logistic regression.

    Returns
    -------
    classifier : sklearn.pipeline.Pipeline
        ``StandardScaler()`` then ``LogisticRegression(max_iter=2000)``.
    """
    return Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(max_iter=2000))])


class ShrinkageLDA(LinearDiscriminantAnalysis):
    """Linear discriminant analysis with Ledoit-Wolf shrinkage, refusing too few samples.

    :class:`sklearn.discriminant_analysis.LinearDiscriminantAnalysis` with
    ``solver="lsqr", shrinkage="auto"`` by default, whose ``fit`` refuses a class with
    fewer than 2 training samples (scikit-learn fits silently on its undefined covariance).
    With more features than samples, the same weights come from the ``n_samples x
    n_samples`` Gram matrices (Woodbury identity): 40,000 voxels need no 13 GB covariance.

    Parameters
    ----------
    solver : {"lsqr", "eigen"}, default="lsqr"
        Solver (both support shrinkage).
    shrinkage : "auto", float or None, default="auto"
        ``"auto"``: Ledoit-Wolf shrinkage of the within-class covariance.
    priors : array-like of shape (n_classes,) or None, default=None
        Class priors; ``None``: the class frequencies.
    n_components : int or None, default=None
        Unused by these solvers for prediction (kept for API compatibility).
    store_covariance : bool, default=False
        Store the within-class covariance as ``covariance_``.
    tol : float, default=1e-4
        Threshold of the SVD solver (unused here).
    covariance_estimator : estimator or None, default=None
        A covariance estimator instead of ``shrinkage``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Weights (one map per class; see :func:`sklearn_tcssl.plotting.coef_img`).
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl.baselines import ShrinkageLDA
    >>> X = np.r_[np.zeros((3, 4)), np.ones((3, 4))] + np.arange(24).reshape(6, 4) % 5 / 10
    >>> ShrinkageLDA().fit(X, [0, 0, 0, 1, 1, 1]).predict(X[:1])
    array([0])
    """

    def __init__(
        self,
        solver="lsqr",
        shrinkage="auto",
        priors=None,
        n_components=None,
        store_covariance=False,
        tol=1e-4,
        covariance_estimator=None,
    ):
        super().__init__(
            solver=solver,
            shrinkage=shrinkage,
            priors=priors,
            n_components=n_components,
            store_covariance=store_covariance,
            tol=tol,
            covariance_estimator=covariance_estimator,
        )

    @with_thread_budget
    def fit(self, X, y):
        """Check there are at least 2 samples per class, then fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training patterns (e.g. block means).
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : ShrinkageLDA
            The fitted classifier.
        """
        self._validate_params()  # the wide-data path below bypasses LDA's own fit
        check_classification_targets(y)
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        if len(labels) == 1:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class "
                f"({labels[0]!r}). Pass blocks of several conditions."
            )
        if counts.min() < 2:
            few = [str(label) for label, count in zip(labels, counts) if count < 2]
            raise ValueError(
                f"{type(self).__name__} needs at least 2 training samples per class; "
                f"class(es) {', '.join(few)} have 1 in this training set. Use folds that "
                "leave more blocks of each class for training, or the logistic-regression "
                "decoder (make_classical_decoder(classifier=None))."
            )
        if self._dual_applies(X):
            return _fit_dual_lda(self, X, y)
        return super().fit(X, y)

    def _dual_applies(self, X):
        return (
            self.solver == "lsqr"
            and self.shrinkage == "auto"
            and self.covariance_estimator is None
            and not self.store_covariance
            and getattr(X, "ndim", None) == 2
            and X.shape[1] > X.shape[0]
        )


def _ledoit_wolf_dual(Z):
    """Return ``sklearn.covariance.ledoit_wolf_shrinkage`` and ``mu`` of centred ``Z`` (n, p).

    Its ``beta_`` (sum of ``X2.T @ X2``) is the sum of squared row norms squared, its
    ``delta_`` the squared Frobenius norm of the Gram matrix ``Z @ Z.T``.
    """
    n, p = Z.shape
    row_sq = np.einsum("ij,ij->i", Z, Z)
    trace = row_sq.sum() / n
    mu = trace / p
    delta_ = np.sum((Z @ Z.T) ** 2) / n**2
    beta = (np.sum(row_sq**2) / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * trace + p * mu**2) / p
    beta = min(beta, delta)
    return (0.0 if beta == 0 else beta / delta), mu


def _fit_dual_lda(lda, X, y):
    """Fit shrinkage LDA (lsqr, auto) for n_features > n_samples, as scikit-learn does.

    Within-class covariance: sum over classes of prior * D (1 - s) Z.T Z / n D + diagonal,
    i.e. ``U.T @ U + diag(lam)``; its inverse applied to the class means by Woodbury.
    """
    X, y = validate_data(lda, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
    lda.classes_, counts = np.unique(y, return_counts=True)
    n_samples, n_features = X.shape
    priors = counts / n_samples if lda.priors is None else np.asarray(lda.priors, float)
    lda.priors_ = priors / priors.sum()
    rows, lam, means = [], np.zeros(n_features), []
    for k, label in enumerate(lda.classes_):
        Xg = X[y == label].astype(np.float64)
        mean, scale = Xg.mean(axis=0), Xg.std(axis=0)
        scale[scale < 10 * np.finfo(np.float64).eps] = 1.0  # as StandardScaler
        Z = (Xg - mean) / scale
        shrink, mu = _ledoit_wolf_dual(Z)
        rows.append(np.sqrt(lda.priors_[k] * (1 - shrink) / len(Xg)) * Z * scale)
        lam += lda.priors_[k] * shrink * mu * scale**2
        means.append(mean)
    if np.any(lam <= 0):  # no shrinkage at all: the primal solver handles the singular case
        return LinearDiscriminantAnalysis.fit(lda, X, y)
    U, M = np.vstack(rows), np.asarray(means)
    A = U / lam  # U @ diag(1 / lam)
    inner = np.eye(len(U)) + A @ U.T
    weights = M.T / lam[:, None] - A.T @ np.linalg.solve(inner, A @ M.T)  # (p, K)
    coef = weights.T
    intercept = -0.5 * np.sum(M * coef, axis=1) + np.log(lda.priors_)
    if len(lda.classes_) == 2:
        coef, intercept = (coef[1] - coef[0])[None, :], np.array([intercept[1] - intercept[0]])
    lda.means_, lda.coef_ = M.astype(X.dtype), coef.astype(X.dtype)
    lda.intercept_ = intercept.astype(X.dtype)
    lda._max_components = min(len(lda.classes_) - 1, n_features)
    lda._n_features_out = lda._max_components
    return lda


def shrinkage_lda():
    """Return shrinkage LDA, the strongest classical readout of block means measured here.

    Returns
    -------
    classifier : ShrinkageLDA
        Needs no scaling step: the within-class covariance whitens the features.

    Examples
    --------
    >>> from sklearn_tcssl.baselines import make_classical_decoder, shrinkage_lda
    >>> make_classical_decoder(classifier=shrinkage_lda()).steps[-1][1]
    ShrinkageLDA()
    """
    return ShrinkageLDA()


class FitCache:
    """In-memory Pipeline ``memory``: pipelines that share it fit a transformer once.

    Pipelines that differ only in their final classifier reuse one fitted embedder per
    training fold: a fit is reused when the transformer's parameters are equal and its
    inputs are the very same objects (the items of the list ``X``, as cross-validation
    passes them) with equal labels. ``clone`` keeps the cache shared; nothing is written.

    Examples
    --------
    >>> from sklearn_tcssl.baselines import FitCache, make_tcssl_decoder, shrinkage_lda
    >>> cache = FitCache()
    >>> a = make_tcssl_decoder(classifier=shrinkage_lda(), memory=cache, max_epochs=1)
    >>> b = make_tcssl_decoder(memory=cache, max_epochs=1)
    """

    def __init__(self):
        self._fits = {}

    def __sklearn_clone__(self):
        """Stay shared: ``clone`` would otherwise deep-copy a pipeline's ``memory`` per fold."""
        return self

    def cache(self, func, **kwargs):
        """Wrap sklearn's ``_fit_transform_one`` so that equal fits are done once."""
        from joblib import hash as joblib_hash

        def cached(transformer, X, y, *args, **kw):
            inputs = tuple(map(id, X)) if isinstance(X, list) else joblib_hash(X)
            labels = None if y is None else joblib_hash(np.asarray(y))
            key = (type(transformer).__name__, joblib_hash(transformer.get_params()), inputs)
            key = (*key, labels)
            if key not in self._fits:
                self._fits[key] = func(transformer, X, y, *args, **kw)
            return self._fits[key]

        return cached


def _pipeline(masker, features, classifier, memory=None):
    """Pipeline ``[masker,] features, clf`` with a clone of ``masker`` and a default readout."""
    head = [] if masker is None else [("masker", clone(masker))]
    clf = classifier if classifier is not None else default_classifier()
    return Pipeline([*head, features, ("clf", clf)], memory=memory)


@fill_doc
def make_classical_decoder(masker=None, *, classifier=None):
    """Build the classical decoder: masker -> block-mean pattern -> linear classifier.

    Parameters
    ----------
    %(decoder_masker)s
    %(decoder_classifier)s

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``masker`` (unless None), ``mean``, ``clf``.

    Examples
    --------
    >>> from sklearn_tcssl.baselines import make_classical_decoder, shrinkage_lda
    >>> [name for name, _ in make_classical_decoder(classifier=shrinkage_lda()).steps]
    ['mean', 'clf']
    """
    return _pipeline(masker, ("mean", BlockMeanPattern()), classifier)


@fill_doc
def make_tcssl_decoder(
    masker=None, *, classifier=None, embedder=None, memory=None, **embedder_params
):
    """Build our decoder: masker -> TemporalContrastiveEmbedder -> linear classifier.

    Parameters
    ----------
    %(decoder_masker)s
    %(decoder_classifier)s
    %(decoder_embedder)s

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``masker`` (unless None), ``embed``, ``clf``.
    """
    if embedder is None:
        embedder = TemporalContrastiveEmbedder(**embedder_params)
    elif embedder_params:
        raise ValueError(
            f"make_tcssl_decoder got embedder={embedder!r} and embedder parameters "
            f"{sorted(embedder_params)}; set the parameters on the embedder you pass instead."
        )
    return _pipeline(masker, ("embed", embedder), classifier, memory)


class NilearnDecoderBaseline(ClassifierMixin, BaseEstimator):
    """Run nilearn's ``Decoder`` on block-mean images, refit with its own inner CV in ``fit``.

    Inside an outer cross-validation its ``predict`` gives a multiclass accuracy
    (``Decoder.cv_scores_`` are one-vs-rest scores).

    Parameters
    ----------
    mask_img : Niimg-like or None, default=None
        Brain mask; ``None`` lets the Decoder compute one from the training images.
    estimator : str, default="svc"
        Name of the nilearn Decoder's estimator.
    cv : int, default=5
        Inner cross-validation folds (stratified; they only select the regularisation).
    screening_percentile : float, default=100
        Percentile of voxels kept by the Decoder's univariate screening.

    Attributes
    ----------
    decoder_ : nilearn.decoding.Decoder
        The fitted decoder.
    classes_ : ndarray
        Class labels.
    """

    _parameter_constraints = {
        "mask_img": "no_validation",  # Niimg-like or None: nilearn checks it
        "estimator": [str],
        "cv": [Interval(Integral, 2, None, closed="left"), "cv_object"],
        "screening_percentile": [Interval(Real, 0, 100, closed="right")],
    }

    def __init__(self, mask_img=None, *, estimator="svc", cv=5, screening_percentile=100):
        self.mask_img = mask_img
        self.estimator = estimator
        self.cv = cv
        self.screening_percentile = screening_percentile

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, imgs, y):
        """Fit the Decoder on the block-mean images of ``imgs``.

        Parameters
        ----------
        imgs : list of 4D Niimg-like
            One image per block.
        y : array-like of shape (n_blocks,)
            Task labels.

        Returns
        -------
        self : NilearnDecoderBaseline
            The fitted baseline.
        """
        from nilearn.decoding import Decoder

        imgs = _block_images(imgs, type(self).__name__)
        y = column_or_1d(y)
        check_classification_targets(y)
        if len(y) != len(imgs):
            raise ValueError(
                f"{type(self).__name__}.fit got {len(y)} labels for {len(imgs)} block images; "
                "pass one label per block image."
            )
        self.decoder_ = Decoder(
            estimator=self.estimator,
            mask=self.mask_img,
            cv=self.cv,
            screening_percentile=self.screening_percentile,
            standardize="zscore_sample",
            n_jobs=1,
        )
        self.decoder_.fit(_mean_images(imgs), np.asarray(y))
        self.classes_ = self.decoder_.classes_
        return self

    def predict(self, imgs):
        """Predict the task of each block image.

        Parameters
        ----------
        imgs : list of 4D Niimg-like
            One image per block.

        Returns
        -------
        y_pred : ndarray of shape (n_blocks,)
            Predicted labels.
        """
        check_fitted(self, "decoder_")
        return self.decoder_.predict(_mean_images(_block_images(imgs, type(self).__name__)))


def _block_images(imgs, owner):
    """Return ``imgs`` as a list of images or paths; refuse arrays and other objects."""
    if isinstance(imgs, (str, os.PathLike)) or hasattr(imgs, "affine"):
        imgs = [imgs]
    if not isinstance(imgs, (list, tuple)) or not imgs:
        raise TypeError(
            f"{owner} takes a non-empty list of 4D block images (nibabel images or paths); "
            f"got {type(imgs).__name__}. For arrays of block means use "
            "make_classical_decoder() instead."
        )
    for i, img in enumerate(imgs):
        if not (isinstance(img, (str, os.PathLike)) or hasattr(img, "affine")):
            raise TypeError(
                f"{owner}: imgs[{i}] is a {type(img).__name__}, not a 4D image or a path; pass "
                "one nibabel image (or .nii/.nii.gz path) per block."
            )
    return list(imgs)


def _mean_images(imgs):
    from nilearn.image import concat_imgs, mean_img

    return concat_imgs([mean_img(img, copy_header=True) for img in imgs])
