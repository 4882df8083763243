"""Subject alignment from unlabeled time-locked runs: SRM and subject-aligned temporal contrast.

Two estimators learn one map per subject into a space shared by everyone, from runs that
follow the same stimulus clock (a movie, a fixed-timing paradigm) and carry no labels:

* :class:`SharedResponseAligner`: the deterministic shared response model (SRM, Chen et al.
  2015), the classical reference for this kind of data;
* :class:`TemporalContrastiveAligner`: per-subject maps and a shared temporal encoder trained
  with the beginning/middle/end objective, the middle taken from another person at the
  same stimulus time.

Both then map any sequence of a known subject into the shared space (``transform``), and
give a subject unseen in ``fit`` a map from that person's own unlabeled time-locked run
(``add_subjects``, a Procrustes step against the learned shared response). They use no
labels, so fitting them on unlabeled runs cannot leak labels into a decoder; see the user
guide for the cross-validation protocols.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._input.validation import check_fitted, check_sequences
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.alignment._srm import procrustes_map


def _standardize_run(run):
    """Per-feature mean and scale of one run (a constant feature gets scale 1)."""
    mean = run.mean(axis=0, dtype=np.float64).astype(np.float32)
    scale = run.std(axis=0, dtype=np.float64).astype(np.float32)
    scale[scale < 1e-8] = 1.0
    return mean, scale


class _BaseAligner(TransformerMixin, BaseEstimator):
    """Shared machinery: run checks, subject bookkeeping, transform and add_subjects."""

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
    }

    @property
    def _name(self):
        return type(self).__name__

    # ------------------------------------------------------------ checking
    def _sequences(self, X, what):
        """Each item of X as a float32 (T, V) array; subjects may differ in V."""
        if getattr(X, "ndim", None) == 3:
            X = list(X)
        if not isinstance(X, (list, tuple)) or len(X) == 0:
            raise ValueError(
                f"{self._name}.{what}: X must be a non-empty list of (n_timepoints, "
                f"n_features) arrays (one per run or block); got {type(X).__name__}."
            )
        return [check_sequences([x], estimator_name=self._name)[0] for x in X]

    def _check_runs(self, X, subjects, *, what):
        runs = self._sequences(X, what)
        subjects = self._check_subjects(subjects, len(runs), what=what)
        lengths = sorted({len(r) for r in runs})
        if len(lengths) != 1:
            raise ValueError(
                f"{self._name}.{what}: the runs must be time-locked (the same stimulus "
                f"clock), hence of equal length; got lengths {lengths}. Cut every run to the "
                "common stimulus time before fitting."
            )
        return runs, subjects

    def _check_subjects(self, subjects, n, *, what):
        if subjects is None:
            if what == "fit":
                return list(range(n))
            raise ValueError(
                f"{self._name}.{what} needs subjects=: the subject of each sequence, so that "
                "it gets its own map (e.g. subjects=groups)."
            )
        subjects = list(np.asarray(subjects, dtype=object).ravel())
        if len(subjects) != n:
            raise ValueError(
                f"{self._name}.{what}: subjects has {len(subjects)} entries for {n} sequences; "
                "pass one subject per sequence."
            )
        if what in ("fit", "add_subjects") and len(set(subjects)) != n:
            raise ValueError(
                f"{self._name}.{what}: each subject must appear once (one time-locked run "
                "per subject); concatenate a subject's runs in time first."
            )
        return subjects

    def _check_minimum(self, runs):
        smallest = min(r.shape[1] for r in runs)
        if self.n_components > smallest:
            raise ValueError(
                f"{self._name}: n_components={self.n_components} is more than the "
                f"{smallest} features of the smallest run; use n_components <= {smallest}."
            )

    # ------------------------------------------------------------- fitting
    def _start_fit(self, X, subjects):
        """Validate parameters and runs, forget an earlier fit, learn the statistics.

        Returns the standardised runs, the subjects and the seed of this fit.
        """
        self._validate_params()
        runs, subjects = self._check_runs(X, subjects, what="fit")
        self._check_minimum(runs)
        self._check_run_length(len(runs[0]))
        for fitted in ("net_", "history_", "weights_", "shared_response_"):
            self.__dict__.pop(fitted, None)  # an interrupted refit must not look fitted
        self._set_subjects(runs, subjects)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        return self._scaled_runs(runs, subjects), subjects, seed

    def _check_run_length(self, n_timepoints):
        """Refuse runs too short for the estimator (none are, by default)."""

    def _set_subjects(self, runs, subjects):
        self.subjects_ = list(subjects)
        stats = [_standardize_run(r) if self.standardize else None for r in runs]
        self._stats_ = dict(zip(subjects, stats))
        self.n_timepoints_ = len(runs[0])
        self.n_features_per_subject_ = {s: r.shape[1] for s, r in zip(subjects, runs)}

    def _scaled(self, x, subject):
        stats = self._stats_[subject]
        if stats is None:
            return x
        return (x - stats[0]) / stats[1]

    def _map(self, subject):
        return self.weights_[subject]

    def _store_map(self, subject, weights):
        self.weights_[subject] = weights

    def _scaled_runs(self, runs, subjects):
        return [self._scaled(r, s) for r, s in zip(runs, subjects)]

    @with_thread_budget
    def add_subjects(self, X, subjects):
        """Give subjects unseen in ``fit`` a map from their own unlabeled time-locked runs.

        Each new map is the orthonormal Procrustes map of the subject's standardised run onto
        :attr:`shared_response_` (the model itself is not changed), as the shared response
        model does for new subjects. No labels are used.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_, n_features_s)
            One run per new subject, on the stimulus clock of the runs given to ``fit``.
        subjects : array-like of shape (n_runs,)
            Their subject identifiers (not already known).

        Returns
        -------
        self : estimator
            The aligner, now able to transform these subjects' data.
        """
        check_fitted(self, "shared_response_")
        runs, subjects = self._check_runs(X, subjects, what="add_subjects")
        known = [s for s in subjects if s in self._stats_]
        if known:
            raise ValueError(
                f"{self._name}.add_subjects: subject {known[0]!r} is already known; pass only "
                "new subjects (refit to change a fitted subject's map)."
            )
        if len(runs[0]) != self.n_timepoints_:
            raise ValueError(
                f"{self._name}.add_subjects: the runs have {len(runs[0])} time points but the "
                f"shared response has {self.n_timepoints_}; a new subject's run must follow the "
                "same stimulus clock as the runs given to fit."
            )
        self._check_minimum(runs)
        for run, subject in zip(runs, subjects):
            self._stats_[subject] = _standardize_run(run) if self.standardize else None
            self.n_features_per_subject_[subject] = run.shape[1]
            self._store_map(
                subject, procrustes_map(self._scaled(run, subject), self.shared_response_)
            )
        return self

    # ----------------------------------------------------------- transform
    def _check_known(self, X, subjects, what):
        check_fitted(self, "shared_response_")
        sequences = self._sequences(X, what)
        subjects = self._check_subjects(subjects, len(sequences), what=what)
        for seq, subject in zip(sequences, subjects):
            if subject not in self._stats_:
                raise ValueError(
                    f"{self._name}.{what}: subject {subject!r} has no map. Fitted subjects: "
                    f"{self.subjects_[:5]}{'...' if len(self.subjects_) > 5 else ''}; give a "
                    "new subject a map with add_subjects(its unlabeled time-locked run, "
                    "[subject]) first."
                )
            expected = self.n_features_per_subject_[subject]
            if seq.shape[1] != expected:
                raise ValueError(
                    f"{self._name}.{what}: a sequence of subject {subject!r} has "
                    f"{seq.shape[1]} features, but that subject's map has {expected}."
                )
        return sequences, subjects

    @with_thread_budget
    def transform(self, X, subjects=None):
        """Map each sequence into the shared space with its subject's map.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints_i, n_features_s)
            Sequences (blocks or runs) of known subjects; any lengths.
        subjects : array-like of shape (n_sequences,)
            The subject of each sequence (required).

        Returns
        -------
        shared : list of ndarray of shape (n_timepoints_i, n_components), float32
            Each sequence in the shared space, time kept (average it for block patterns,
            e.g. with :class:`~sklearn_tcssl.baselines.BlockMeanPattern`).
        """
        sequences, subjects = self._check_known(X, subjects, "transform")
        return [
            (self._scaled(s, subject) @ self._map(subject)).astype(np.float32)
            for s, subject in zip(sequences, subjects)
        ]

    def fit_transform(self, X, y=None, subjects=None):
        """Fit on the runs and return them in the shared space.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints, n_features_s)
            Time-locked runs, one per subject.
        y : None
            Ignored.
        subjects : array-like or None, default=None
            Subject identifiers (default ``0 .. n_runs - 1``).

        Returns
        -------
        shared : list of ndarray of shape (n_timepoints, n_components)
            The runs in the shared space.
        """
        self.fit(X, y, subjects=subjects)
        return self.transform(X, subjects=self.subjects_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
