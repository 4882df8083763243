"""SharedResponseAligner: the deterministic shared response model, the classical reference."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl.alignment._base import ALIGNER_CONSTRAINTS, _BaseAligner
from sklearn_tcssl.alignment._srm import BASES, fit_srm
from sklearn_tcssl.embedding._base import constraints_for, fit_method
from sklearn_tcssl.io._registry import register_estimator


@register_estimator
@fill_doc
class SharedResponseAligner(_BaseAligner):
    """Deterministic shared response model (SRM) fitted on unlabeled time-locked runs.

    Each subject's standardised run ``X_s`` (time x features) is modelled as ``S W_s^T``
    with an orthonormal map ``W_s`` and a response ``S`` shared by everyone (Chen et al.
    2015, the deterministic form; see also brainiak's ``DetSRM`` and fmralign). It is the
    classical reference whenever people saw the same stimulus.

    Parameters
    ----------
    n_components : int, default=50
        Dimension of the shared space (at most the features of the smallest run and the
        time points the maps are fitted on).
    n_iter : int, default=10
        Alternating (shared response, Procrustes) updates.
    basis : {"fitted", "dominant"}, default="fitted"
        The basis of the shared space: the model is the same in any rotation of it, but
        whatever scales each dimension on its own downstream (a ``StandardScaler``,
        shrinkage LDA, the z-scoring of time-segment matching) is not. ``"fitted"``: the
        basis the updates end in from the random start. ``"dominant"``: the same whatever
        the start, the axis of largest shared variance (on region data, the global signal)
        alone as dimension 0, as in the basis brainiak's SRM ends in. On Sherlock,
        ``"dominant"`` matches brainiak's SRM on time-segment matching (0.26 against 0.15)
        but decodes scenes worse with standardisation + logistic regression (0.05-0.07
        lower); see the alignment benchmark in the docs.
    standardize : bool, default=True
        Z-score each subject's features over its run in ``fit`` (statistics kept per
        subject and applied to that subject's data in ``transform``).
    %(aligner_validation)s
    random_state : int, RandomState instance or None, default=None
        Seeds the random initial maps (``basis="dominant"`` does not depend on them).

    Attributes
    ----------
    %(aligner_attributes)s

    See Also
    --------
    TemporalContrastiveAligner : The same maps, then a shared temporal encoder.

    Notes
    -----
    The SRM is closed-form (numpy, no training loop): the options of the trained estimators
    about training (``max_epochs``, ``lr``, ``device``, checkpoints, precision, workers) do
    not apply.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tcssl import SharedResponseAligner
    >>> rng = np.random.default_rng(0)
    >>> runs = [rng.normal(size=(40, 12)) for _ in range(3)]
    >>> aligner = SharedResponseAligner(n_components=4, random_state=0).fit(runs)
    >>> aligner.transform(runs[:1], subjects=[0])[0].shape
    (40, 4)
    """

    def __init__(
        self,
        n_components=50,
        *,
        n_iter=10,
        basis="fitted",
        standardize=True,
        validation_fraction=None,
        random_state=None,
    ):
        self.n_components = n_components
        self.n_iter = n_iter
        self.basis = basis
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    _parameter_constraints = constraints_for(
        __init__,
        **ALIGNER_CONSTRAINTS,
        n_iter=[Interval(Integral, 0, None, closed="left")],
        basis=[StrOptions(set(BASES))],
    )

    @fit_method
    def fit(self, X, y=None, *, subjects=None):
        """Fit the maps and the shared response; ``y`` is ignored.

        Parameters
        ----------
        %(aligner_fit)s

        Returns
        -------
        self : SharedResponseAligner
            The fitted aligner.
        """
        scaled, subjects, seed = self._start_fit(X, subjects)
        weights, _ = fit_srm(
            self._fit_part(scaled),
            self._param("n_components"),
            n_iter=self._param("n_iter"),
            random_state=seed,
            basis=self.basis,
        )
        return self._finish_fit(scaled, subjects, weights)
