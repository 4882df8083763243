"""Decoders to compare: the classical block-mean decoder, nilearn's Decoder, and ours.

Every comparison in this package puts our pipeline beside the classical decoder (each
block's mean pattern + a linear classifier), cross-validated on the same folds.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._embedder import TemporalContrastiveEmbedder

__all__ = [
    "BlockMeanPattern",
    "NilearnDecoderBaseline",
    "default_classifier",
    "make_classical_decoder",
    "make_tcssl_decoder",
]
from sklearn_tcssl._validation import check_fitted, check_sequences


class BlockMeanPattern(TransformerMixin, BaseEstimator):
    """Mean over time of each sequence: the input of the classical block decoder.

    Maps a list of ``(n_timepoints_i, n_features)`` arrays (or a 3D array) to an
    ``(n_samples, n_features)`` array. Stateless apart from remembering ``n_features_in_``.

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
        """Record the number of features; ``y`` is ignored.

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
        sequences = check_sequences(X, estimator_name=type(self).__name__)
        self.n_features_in_ = sequences[0].shape[1]
        return self

    def transform(self, X):
        """Return the mean pattern of each sequence, ``(n_samples, n_features)``.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features) or 3D ndarray
            Sequences with the features seen in ``fit``.

        Returns
        -------
        patterns : ndarray of shape (n_samples, n_features)
            Mean over time of each sequence.
        """
        check_fitted(self, "n_features_in_")
        sequences = check_sequences(
            X, estimator_name=type(self).__name__, n_features=self.n_features_in_
        )
        return np.stack([s.mean(axis=0) for s in sequences])


def default_classifier():
    """Linear classifier used by every decoder here: standardise, then logistic regression.

    Returns
    -------
    classifier : sklearn.pipeline.Pipeline
        ``StandardScaler()`` then ``LogisticRegression(max_iter=2000)``.
    """
    return Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(max_iter=2000))])


def _steps(masker, *steps):
    """Pipeline steps, starting with a clone of ``masker`` unless it is None (arrays in)."""
    head = [] if masker is None else [("masker", clone(masker))]
    return Pipeline([*head, *steps])


def make_classical_decoder(masker=None, *, classifier=None):
    """Build the classical decoder: masker -> block-mean pattern -> linear classifier.

    Parameters
    ----------
    masker : nilearn masker, NetworkMasker or None, default=None
        First step (cloned), e.g. ``MultiNiftiMasker(mask_img=brain_mask, standardize=None)``.
        ``None``: no masker, X is already a list of ``(n_timepoints, n_features)`` arrays.
        Do not let a masker compute its mask from z-scored blocks (nothing marks the
        brain's edge in them any more): compute it from the raw runs.
    classifier : estimator or None, default=None
        Final step; ``None`` uses :func:`default_classifier`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``masker`` (unless None), ``mean``, ``clf``.
    """
    clf = classifier if classifier is not None else default_classifier()
    return _steps(masker, ("mean", BlockMeanPattern()), ("clf", clf))


def make_tcssl_decoder(masker=None, *, classifier=None, embedder=None, **embedder_params):
    """Build our decoder: masker -> TemporalContrastiveEmbedder -> linear classifier.

    Parameters
    ----------
    masker : nilearn masker, NetworkMasker or None, default=None
        First step (cloned); ``None`` for array input. See :func:`make_classical_decoder`.
    classifier : estimator or None, default=None
        Final step; ``None`` uses :func:`default_classifier`.
    embedder : estimator or None, default=None
        The embedding step (e.g. a ``FrozenEstimator`` of a pretrained embedder); ``None``
        builds a :class:`~sklearn_tcssl.TemporalContrastiveEmbedder`.
    **embedder_params
        Parameters of the new embedder when ``embedder`` is None.

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
    clf = classifier if classifier is not None else default_classifier()
    return _steps(masker, ("embed", embedder), ("clf", clf))


class NilearnDecoderBaseline(ClassifierMixin, BaseEstimator):
    """Run nilearn's ``Decoder`` on block-mean images, refit with its own inner CV in ``fit``.

    Each 4D block image is averaged over time; ``nilearn.decoding.Decoder`` (linear SVC
    with an inner cross-validation of its regularisation) is fitted on those 3D images.
    Used inside an outer cross-validation, its ``predict`` gives a proper multiclass
    accuracy (``Decoder.cv_scores_`` are one-vs-rest scores, not that).

    Parameters
    ----------
    mask_img : Niimg-like or None, default=None
        Brain mask; ``None`` lets the Decoder compute one from the training images.
    estimator : str, default="svc"
        Name of the nilearn Decoder's estimator.
    cv : int, default=5
        Inner cross-validation folds (stratified, not grouped: inner folds only select
        the regularisation; the outer folds are what is reported).
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
        return self.decoder_.predict(_mean_images(imgs))


def _mean_images(imgs):
    from nilearn.image import concat_imgs, mean_img

    return concat_imgs([mean_img(img, copy_header=True) for img in imgs])
