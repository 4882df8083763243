"""scikit-learn's estimator checks over every public estimator.

Every expected failure and its reason live here, in ``EXPECTED_FAILED_CHECKS`` (one table).

The aligners take a list of time-locked runs, one per subject, and subject identifiers; the
checks pass one 2D array. :class:`RowsAsTimePoints` adapts them the plain way: the rows of X
are time points, ``fit`` splits them into two subjects' runs of equal length (the two halves
of the table), ``transform`` maps X as subject 0's data. Everything the checks test then runs
through the aligner's own ``fit``/``transform`` (validation, dtype, read-only input,
idempotence, pickling). ``NetworkMasker`` and ``NilearnDecoderBaseline`` take 4D images, which
the checks cannot generate (as nilearn's maskers); they are checked as they are, and the
checks that need array input are listed with that reason.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted, validate_data

from sklearn_tcssl import (
    NetworkMasker,
    SharedResponseAligner,
    TemporalContrastiveAligner,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
)
from sklearn_tcssl.baselines import BlockMeanPattern, NilearnDecoderBaseline, ShrinkageLDA


class RowsAsTimePoints(TransformerMixin, BaseEstimator):
    """Present an aligner to the checks: rows of X are time points of two subjects.

    Parameters
    ----------
    aligner : SharedResponseAligner or TemporalContrastiveAligner
        The aligner checked (cloned in ``fit``).
    """

    def __init__(self, aligner=None):
        self.aligner = aligner

    def fit(self, X, y=None):
        """Fit the aligner on the two halves of X's rows, as two subjects' runs."""
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        half = len(X) // 2
        self.aligner_ = clone(self.aligner).fit([X[:half], X[half : 2 * half]], subjects=[0, 1])
        return self

    def transform(self, X):
        """Map X, as subject 0's time points, into the shared space."""
        check_is_fitted(self, "aligner_")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        return self.aligner_.transform([X], subjects=[0])[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class NetworkMaskerAsTable(NetworkMasker):
    """NetworkMasker declaring 2D input, so that the checks run instead of being skipped.

    The masker declares no 2D input (its X is a list of 4D images); with that tag the
    checks skip the whole suite. Declared here, they run: the API checks pass and those
    that fit on arrays are expected failures (``_IMAGES``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


# scikit-learn's checks feed 2D arrays (n_samples, n_columns); the embedder reads them as
# univariate series of n_columns time points. The checks below use 1 or 2 columns, i.e.
# series of 1 or 2 time points, shorter than the 3 segments the objective needs, so fit
# raises the documented "segment_length=... needs sequences of at least 3 time points" error.
# tests/test_embedder.py covers the same properties (fit returns self, idempotence,
# n_features_in_, unchanged params, read-only input) on real sequences.
_TOO_SHORT = (
    "check data has 1-2 columns = univariate series shorter than the 3 segments of the "
    "objective (segment_length=1 needs 3 time points); fit raises the documented error"
)
_IMAGES = (
    "X is a list of 4D images (as for nilearn's maskers); the check passes a 2D array, "
    "refused with a message naming the image input (tests/networks/test_networks.py and "
    "tests/test_bad_inputs.py cover clone, pickle, Pipeline/CV use and the errors on images)"
)
_ONE_ROW = (
    "one row cannot be split into two subjects' runs: the aligner refuses the empty run, "
    "naming X[0] and the 2 time points a run needs, not the words '1 sample'"
)
EXPECTED_FAILED_CHECKS = {
    "TemporalContrastiveEmbedder": {
        "check_estimators_overwrite_params": _TOO_SHORT,
        "check_estimators_fit_returns_self": _TOO_SHORT,
        "check_readonly_memmap_input": _TOO_SHORT,
        "check_fit_idempotent": _TOO_SHORT,
        "check_fit_check_is_fitted": _TOO_SHORT,
        "check_n_features_in": _TOO_SHORT,
        "check_fit2d_1feature": (
            _TOO_SHORT + "; its message names the time points, not '1 feature(s)'"
        ),
    },
    "TemporalContrastiveClassifier": {
        "check_classifiers_train": (
            "the check's 2D blobs are read as univariate series of 2 time points; the encoder "
            "averages over time, so classes that differ in the order of the columns look "
            "alike and training accuracy stays under the 0.83 required (tests/"
            "test_classifier.py checks training and held-out accuracy on real sequences)"
        ),
    },
    "SharedResponseAligner": {"check_fit2d_1sample": _ONE_ROW},
    "TemporalContrastiveAligner": {"check_fit2d_1sample": _ONE_ROW},
    "NetworkMaskerAsTable": dict.fromkeys(
        [
            "check_complex_data",
            "check_dict_unchanged",
            "check_dont_overwrite_parameters",
            "check_dtype_object",
            "check_estimator_sparse_array",
            "check_estimator_sparse_matrix",
            "check_estimator_sparse_tag",
            "check_estimators_dtypes",
            "check_estimators_empty_data_messages",
            "check_estimators_fit_returns_self",
            "check_estimators_nan_inf",
            "check_estimators_overwrite_params",
            "check_estimators_pickle",
            "check_estimators_pickle(readonly_memmap=True)",
            "check_f_contiguous_array_estimator",
            "check_fit2d_1feature",
            "check_fit2d_1sample",
            "check_fit2d_predict1d",
            "check_fit_check_is_fitted",
            "check_fit_idempotent",
            "check_fit_score_takes_y",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_n_features_in",
            "check_n_features_in_after_fitting",
            "check_pipeline_consistency",
            "check_positive_only_tag_during_fit",
            "check_readonly_memmap_input",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_general(readonly_memmap=True)",
        ],
        _IMAGES,
    ),
    "NilearnDecoderBaseline": dict.fromkeys(
        [
            "check_classifier_data_not_an_array",
            "check_classifiers_classes",
            "check_classifiers_one_label",
            "check_classifiers_regression_target",
            "check_classifiers_train",
            "check_classifiers_train(readonly_memmap=True)",
            "check_classifiers_train(readonly_memmap=True,X_dtype=float32)",
            "check_complex_data",
            "check_dict_unchanged",
            "check_dont_overwrite_parameters",
            "check_dtype_object",
            "check_estimator_sparse_array",
            "check_estimator_sparse_matrix",
            "check_estimator_sparse_tag",
            "check_estimators_dtypes",
            "check_estimators_empty_data_messages",
            "check_estimators_fit_returns_self",
            "check_estimators_nan_inf",
            "check_estimators_overwrite_params",
            "check_estimators_pickle",
            "check_estimators_pickle(readonly_memmap=True)",
            "check_f_contiguous_array_estimator",
            "check_fit1d",
            "check_fit2d_1feature",
            "check_fit2d_1sample",
            "check_fit2d_predict1d",
            "check_fit_check_is_fitted",
            "check_fit_idempotent",
            "check_fit_score_takes_y",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_n_features_in",
            "check_n_features_in_after_fitting",
            "check_pipeline_consistency",
            "check_positive_only_tag_during_fit",
            "check_readonly_memmap_input",
            "check_requires_y_none",
            "check_supervised_y_2d",
            "check_supervised_y_no_nan",
        ],
        _IMAGES,
    ),
}

ESTIMATORS = [
    TemporalContrastiveEmbedder(
        n_components=4, segment_length=1, max_epochs=2, batch_size=8, random_state=0
    ),
    TemporalContrastiveClassifier(n_components=4, max_epochs=2, batch_size=64, random_state=0),
    RowsAsTimePoints(SharedResponseAligner(n_components=1, n_iter=2, random_state=0)),
    RowsAsTimePoints(
        TemporalContrastiveAligner(
            n_components=1,
            segment_length=1,
            cross_subject=True,
            max_epochs=1,
            batch_size=4,
            n_blocks=1,
            projection_dim=4,
            random_state=0,
        )
    ),
    BlockMeanPattern(),
    ShrinkageLDA(solver="eigen"),
    NetworkMaskerAsTable(),
    NilearnDecoderBaseline(),
]


def _name(estimator):
    if isinstance(estimator, RowsAsTimePoints):
        return type(estimator.aligner).__name__
    return type(estimator).__name__


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(_name(estimator), {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
