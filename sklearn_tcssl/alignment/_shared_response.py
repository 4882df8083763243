"""SharedResponseAligner: the deterministic shared response model, the classical reference."""

import numbers

from sklearn.utils._param_validation import Interval

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.alignment._base import _BaseAligner
from sklearn_tcssl.alignment._srm import fit_srm


class SharedResponseAligner(_BaseAligner):
    """Deterministic shared response model (SRM) fitted on unlabeled time-locked runs.

    Each subject's standardised run ``X_s`` (time x features) is modelled as ``S W_s^T``
    with an orthonormal map ``W_s`` and a response ``S`` shared by everyone (Chen et al.
    2015, the deterministic form; see also brainiak's ``DetSRM`` and fmralign). It is the
    classical reference whenever people saw the same stimulus.

    Parameters
    ----------
    n_components : int, default=50
        Dimension of the shared space.
    n_iter : int, default=10
        Alternating (shared response, Procrustes) updates.
    standardize : bool, default=True
        Z-score each subject's features over its run in ``fit`` (statistics kept per
        subject and applied to that subject's data in ``transform``).
    random_state : int, RandomState instance or None, default=None
        Seeds the random initial maps.

    Attributes
    ----------
    subjects_ : list
        Subjects of the runs given to ``fit``.
    weights_ : dict
        ``{subject: ndarray of shape (n_features_s, n_components)}``, orthonormal maps
        (including subjects added with ``add_subjects``).
    shared_response_ : ndarray of shape (n_timepoints_, n_components)
        The shared response of the fitted runs.
    n_timepoints_ : int
        Time points of the stimulus clock.

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

    _parameter_constraints = {
        **_BaseAligner._parameter_constraints,
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=50, *, n_iter=10, standardize=True, random_state=None):
        self.n_components = n_components
        self.n_iter = n_iter
        self.standardize = standardize
        self.random_state = random_state

    @with_thread_budget
    @fill_doc
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
        weights, self.shared_response_ = fit_srm(
            scaled, self.n_components, n_iter=self.n_iter, random_state=seed
        )
        self.weights_ = dict(zip(subjects, weights))
        return self
