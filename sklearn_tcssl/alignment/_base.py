"""The base of both aligners: run and subject checks, transform, add_subjects, score."""

import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._input.standardize import Standardizer
from sklearn_tcssl._input.validation import check_fits_in_memory, check_fitted, check_sequence
from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.exceptions import AlignmentWarning, IncompatibleModelError
from sklearn_tcssl._utils.threads import with_thread_budget
from sklearn_tcssl.alignment._scoring import compare_with_unaligned, segment_matching
from sklearn_tcssl.alignment._srm import procrustes_map, shared_response
from sklearn_tcssl.embedding._base import TrainedEstimator, check_integer, python_scalar

_SUBJECT_TYPES = (str, int, float)  # what a model card can hold (bool is an int)
WINDOW = 9  # time points per segment in the label-free score (Chen et al. 2015)
_RUNS = ("fit", "add_subjects", "score")  # methods taking one time-locked run per subject

# the aligners' own constraints, over the shared ones (see ``constraints_for``)
ALIGNER_CONSTRAINTS = {
    "standardize": ["boolean"],
    "validation_fraction": [Interval(Real, 0.0, 0.5, closed="neither"), None],
}


class _BaseAligner(TransformerMixin, TrainedEstimator):
    """Shared machinery: run checks, subject bookkeeping, transform, add_subjects, score."""

    _fitted_attribute = "shared_response_"

    # ------------------------------------------------------------ checking
    def _check_input(self, X, subjects, what):
        """Return X as float32 (T, V) arrays (V per subject), their column names, the subjects.

        One pass for method ``what``: ``_RUNS`` methods take one time-locked run per subject;
        transform and score take known subjects only.
        """
        if what != "fit":
            check_fitted(self, self._fitted_attribute)
        if getattr(X, "ndim", None) == 3:
            X = list(X)
        if not isinstance(X, (list, tuple)) or len(X) == 0:
            raise ValueError(
                f"{self._name}.{what}: X must be a non-empty list of (n_timepoints, "
                f"n_features) arrays (one per run or block); got {type(X).__name__}."
            )
        sequences = [
            check_sequence(x, where=f"X[{i}]", estimator_name=f"{self._name}.{what}")
            for i, x in enumerate(X)
        ]
        minimum = 2 if what in _RUNS else 1
        for i, seq in enumerate(sequences):
            if len(seq) < minimum:
                kind = "run" if minimum == 2 else "sequence"
                raise ValueError(
                    f"{self._name}.{what}: X[{i}] has {len(seq)} time point(s); a {kind} needs "
                    f"at least {minimum}. Pass whole runs (blocks cut from them for transform)."
                )
        names = [_column_names(x) for x in X]
        subjects = self._check_subjects(subjects, len(sequences), what=what)
        if what in _RUNS:
            self._check_time_locked(sequences, subjects, what)
        if what in ("transform", "score"):
            self._check_known(sequences, names, subjects, what)
        return sequences, names, subjects

    def _check_time_locked(self, runs, subjects, what):
        for i, s in enumerate(subjects):
            if subjects.index(s) != i:
                raise ValueError(
                    f"{self._name}.{what}: subjects[{i}]={s!r} repeats "
                    f"subjects[{subjects.index(s)}]; each subject must appear once (one "
                    "time-locked run per subject): concatenate a subject's runs in time first."
                )
        lengths = [len(r) for r in runs]
        if len(set(lengths)) != 1:
            odd = next(i for i, n in enumerate(lengths) if n != lengths[0])
            raise ValueError(
                f"{self._name}.{what}: the runs must be time-locked (the same stimulus "
                f"clock), hence of equal length; X[0] has {lengths[0]} time points but "
                f"X[{odd}] (subjects[{odd}]={subjects[odd]!r}) has {lengths[odd]}. Cut every "
                "run to the common stimulus time first."
            )
        if what == "score":
            return
        for i, run in enumerate(runs):
            if not np.ptp(run, axis=0).any():  # runs have >= 2 time points
                raise ValueError(
                    f"{self._name}.{what}: X[{i}] (subjects[{i}]={subjects[i]!r}) is constant "
                    "over time (every feature has zero variance): a failed or empty scan "
                    "cannot be aligned (its map would be arbitrary). Leave this run out, or "
                    "check its preprocessing."
                )

    def _check_subjects(self, subjects, n, *, what):
        if subjects is None:
            if what == "fit":
                return list(range(n))
            raise ValueError(
                f"{self._name}.{what} needs subjects=: the subject of each sequence, so that "
                "it gets its own map (e.g. subjects=groups)."
            )
        if isinstance(subjects, (str, bytes)) or not hasattr(subjects, "__len__"):
            raise ValueError(
                f"{self._name}.{what}: subjects={subjects!r} is not a list; pass one subject "
                "identifier per sequence, e.g. subjects=[0, 0, 1]."
            )
        if np.ndim(subjects) > 1:
            raise ValueError(
                f"{self._name}.{what}: subjects has shape {np.shape(subjects)}; pass a 1D list "
                "with one subject per sequence."
            )
        subjects = [_subject_id(s, i, self._name, what) for i, s in enumerate(list(subjects))]
        if len(subjects) != n:
            raise ValueError(
                f"{self._name}.{what}: subjects has {len(subjects)} entries for {n} sequences; "
                "pass one subject per sequence."
            )
        return subjects

    def _check_known(self, sequences, names, subjects, what):
        for i, (seq, name, subject) in enumerate(zip(sequences, names, subjects)):
            if subject not in self._stats_:
                raise ValueError(
                    f"{self._name}.{what}: subjects[{i}]={subject!r} has no map. Fitted "
                    f"subjects: {self.subjects_[:5]}{'...' if len(self.subjects_) > 5 else ''}; "
                    "give a new subject a map with add_subjects(its unlabeled time-locked "
                    "run, [subject]) first."
                )
            expected = self.n_features_per_subject_[subject]
            if seq.shape[1] != expected:
                raise ValueError(
                    f"{self._name}.{what}: X[{i}] (subjects[{i}]={subject!r}) has "
                    f"{seq.shape[1]} features, but that subject's map has {expected}."
                )
            _check_column_order(self._feature_names_.get(subject), name, i, subject, self._name)

    def _check_sizes(self, runs, n_timepoints):
        """Refuse ``n_components`` beyond the features, the time points or the memory."""
        k = self._param("n_components")
        i = min(range(len(runs)), key=lambda j: runs[j].shape[1])
        smallest = runs[i].shape[1]
        if k > smallest:
            raise ValueError(
                f"{self._name}: n_components={k} is more than the {smallest} features of "
                f"X[{i}]; use n_components <= {smallest}."
            )
        if k > n_timepoints:
            raise ValueError(
                f"{self._name}: n_components={k} is more than the {n_timepoints} time points "
                "the maps are fitted on: the extra components would be arbitrary. Use "
                f"n_components <= {n_timepoints} or pass longer runs."
            )
        n_values = sum(r.shape[1] for r in runs) * k
        check_fits_in_memory(
            n_values * 8 * 4,  # float64 maps during the SVDs, a few copies
            owner=self._name,
            what=f"n_components={k} ({n_values:.3g} map values)",
            fix="Lower n_components.",
        )

    # ------------------------------------------------------------- fitting
    def _start_fit(self, X, subjects):
        """Return the standardised runs, the subjects and the seed (statistics: training part).

        Validates the runs and forgets an earlier fit first.
        """
        runs, names, subjects = self._check_input(X, subjects, "fit")
        n_train = self._n_train(len(runs[0]))
        self._check_sizes(runs, n_train)
        self._check_fit_runs(len(runs), n_train)
        for fitted in ("net_", "history_", "weights_", "shared_response_", "validation_scores_"):
            self.__dict__.pop(fitted, None)  # an interrupted refit must not look fitted
        self.subjects_ = list(subjects)
        self._stats_, self._feature_names_, self.n_features_per_subject_ = {}, {}, {}
        for run, name, subject in zip(runs, names, subjects):
            self._learn_subject(run[:n_train], name, subject)
        self.n_timepoints_ = len(runs[0])
        return [self._scaled(r, s) for r, s in zip(runs, subjects)], subjects, self._seed()

    def _fit_part(self, scaled):
        """Return the time points of the runs the maps are fitted on."""
        return [s[: self._n_train(self.n_timepoints_)] for s in scaled]

    def _n_train(self, n_timepoints):
        """Time points the maps are fitted on (the rest is held out for the check)."""
        return n_timepoints - int(np.ceil(float(self.validation_fraction or 0) * n_timepoints))

    def _check_fit_runs(self, n_runs, n_timepoints):
        """Refuse runs too few or too short for the estimator (before an earlier fit is lost)."""

    def _learn_subject(self, run, names, subject):
        stats = None
        if self.standardize:  # (mean, scale) of this subject's run
            standardizer = Standardizer.fit([run])
            stats = (standardizer.mean, standardizer.scale)
        self._stats_[subject] = stats
        self._feature_names_[subject] = names
        self.n_features_per_subject_[subject] = run.shape[1]

    def _finish_fit(self, scaled, subjects, weights):
        """Store the maps, the shared response over the whole clock and the held-out check."""
        self.weights_ = dict(zip(subjects, weights))
        self.shared_response_ = shared_response(scaled, weights)
        self.validation_scores_ = self._held_out_check(scaled, subjects)
        return self

    def _held_out_check(self, scaled, subjects):
        """Segment matching on the held-out end of the runs, aligned and unaligned."""
        n_train = self._n_train(self.n_timepoints_)
        held = [s[n_train:] for s in scaled]
        window = min(WINDOW, len(held[0]) // 3)
        if self.validation_fraction is None or len(held) < 2 or window < 2:
            return None
        aligned = [h @ self.weights_[s] for h, s in zip(held, subjects)]
        scores = compare_with_unaligned(aligned, held, window)
        if scores["unaligned"] is not None and scores["aligned"] < scores["unaligned"]:
            warnings.warn(
                f"{self._name}: on the held-out last {len(held[0])} time points of the runs, "
                f"time-segment matching is {scores['aligned']:.3f} after alignment but "
                f"{scores['unaligned']:.3f} without (chance {scores['chance']:.3f}): aligning "
                "does not pay on these data. Compare decoders with and without the aligner, "
                "try fewer n_components, or use more (longer) runs.",
                AlignmentWarning,
                stacklevel=6,
            )
        return scores

    def _scaled(self, x, subject):
        stats = self._stats_[subject]
        if stats is None:
            return x
        return (x - stats[0]) / stats[1]

    @with_thread_budget
    def add_subjects(self, X, subjects):
        """Give subjects unseen in ``fit`` a map from their own unlabeled time-locked runs.

        Each new map is the orthonormal Procrustes map of the subject's standardised run onto
        :attr:`shared_response_`; the model itself is not changed.

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
        runs, names, subjects = self._check_input(X, subjects, "add_subjects")
        for i, s in enumerate(subjects):
            if s in self._stats_:
                raise ValueError(
                    f"{self._name}.add_subjects: subjects[{i}]={s!r} is already known; pass "
                    "only new subjects (refit to change a fitted subject's map)."
                )
        if len(runs[0]) != self.n_timepoints_:
            raise ValueError(
                f"{self._name}.add_subjects: the runs have {len(runs[0])} time points but the "
                f"shared response has {self.n_timepoints_}; a new subject's run must follow the "
                "same stimulus clock as the runs given to fit."
            )
        self._check_sizes(runs, self.n_timepoints_)
        for run, name, subject in zip(runs, names, subjects):
            self._learn_subject(run, name, subject)
            self.weights_[subject] = procrustes_map(
                self._scaled(run, subject), self.shared_response_
            )
        return self

    # ----------------------------------------------------------- transform
    @with_thread_budget
    @fill_doc
    def transform(self, X, subjects=None):
        """Map each sequence into the shared space with its subject's map.

        Parameters
        ----------
        %(known_X)s

        Returns
        -------
        shared : list of ndarray of shape (n_timepoints_i, n_components), float32
            Each sequence in the shared space, time kept (average it for block patterns,
            e.g. with :class:`~sklearn_tcssl.baselines.BlockMeanPattern`).
        """
        sequences, _, subjects = self._check_input(X, subjects, "transform")
        return self._shared(sequences, subjects)

    def _shared(self, sequences, subjects):
        return [
            (self._scaled(s, subject) @ self.weights_[subject]).astype(np.float32)
            for s, subject in zip(sequences, subjects)
        ]

    @fill_doc
    def fit_transform(self, X, y=None, subjects=None):
        """Fit on the runs and return them in the shared space.

        Parameters
        ----------
        %(aligner_fit)s

        Returns
        -------
        shared : list of ndarray of shape (n_timepoints, n_components)
            The runs in the shared space.
        """
        self.fit(X, y, subjects=subjects)
        return self.transform(X, subjects=self.subjects_)

    @with_thread_budget
    def score(self, X, y=None, *, subjects=None, window=WINDOW):
        """Time-segment matching accuracy of held-out time-locked runs in the shared space.

        Each person's segments of ``window`` time points are matched, by correlation in the
        shared space, against the average of the other people (Chen et al. 2015). Pass runs
        *not* used in ``fit``, e.g. a second scan; compare with
        :func:`~sklearn_tcssl.alignment.segment_matching` on the unaligned runs.

        Parameters
        ----------
        X : list of array-like of shape (n_timepoints, n_features_s)
            One time-locked run per known subject (at least 2 subjects, ``3 * window``
            time points).
        y : None
            Ignored.
        subjects : array-like of shape (n_runs,)
            Their subjects (required; each once).
        window : int, default=9
            Time points per segment.

        Returns
        -------
        accuracy : float
            Mean fraction of segments matched to the right time (chance is about one over
            the number of segments).
        """
        window = check_integer(window, "window", f"{self._name}.score", minimum=2)
        runs, _, subjects = self._check_input(X, subjects, "score")
        return float(segment_matching(self._shared(runs, subjects), window).mean())

    # ------------------------------------------------------ model files (io)
    def _model_file_parts(self):
        """Card entries and tensors every aligner's model file holds (see ``io.save``)."""
        subjects = list(self.weights_)
        card = {
            "subjects": [python_scalar(s) for s in subjects],
            "n_fitted_subjects": len(self.subjects_),
            "n_components": self._param("n_components"),
            "n_timepoints": int(self.n_timepoints_),
            "n_features": [int(self.n_features_per_subject_[s]) for s in subjects],
            "feature_names": [self._feature_names_.get(s) for s in subjects],
            "standardized": bool(self.standardize),
            "validation_scores": self.validation_scores_,
        }
        tensors = {"shared_response": torch.from_numpy(np.array(self.shared_response_))}
        for i, s in enumerate(subjects):
            tensors[f"maps.{i}"] = torch.from_numpy(np.array(self.weights_[s]))
            if self._stats_[s] is not None:
                tensors[f"mean.{i}"] = torch.from_numpy(np.array(self._stats_[s][0]))
                tensors[f"scale.{i}"] = torch.from_numpy(np.array(self._stats_[s][1]))
        return card, tensors

    def _restore_from_model(self, card, tensors):
        """Set every fitted attribute from a checked model file (called by ``io.load``)."""
        self.model_card_ = card
        subjects = list(card["subjects"])
        self.subjects_ = subjects[: card["n_fitted_subjects"]]
        self.n_timepoints_ = int(card["n_timepoints"])
        self.shared_response_ = tensors["shared_response"].numpy()
        self.weights_, self._stats_, self._feature_names_ = {}, {}, {}
        self.n_features_per_subject_ = {}
        for i, s in enumerate(subjects):
            self.weights_[s] = tensors[f"maps.{i}"].numpy()
            stats = None
            if card["standardized"]:
                stats = (tensors[f"mean.{i}"].numpy(), tensors[f"scale.{i}"].numpy())
            self._stats_[s] = stats
            self._feature_names_[s] = card["feature_names"][i]
            self.n_features_per_subject_[s] = int(card["n_features"][i])
        self.validation_scores_ = card.get("validation_scores")
        _check_restored_values(self, tensors)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _column_names(x):
    columns = getattr(x, "columns", None)
    return None if columns is None else [str(c) for c in columns]


def _check_column_order(fitted, given, i, subject, owner):
    if fitted is None or given is None or fitted == given:
        return
    j = next((j for j, (a, b) in enumerate(zip(fitted, given)) if a != b), min(len(fitted), 3))
    raise ValueError(
        f"{owner}: X[{i}] (subjects[{i}]={subject!r}) has columns {given[:3]}... but that "
        f"subject's run in fit had {fitted[:3]}...; column {j} is {given[j]!r}, not "
        f"{fitted[j]!r}. Reorder it as in fit: X[{i}][fitted_columns]."
    )


def _subject_id(value, i, owner, what):
    value = python_scalar(value)
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        raise ValueError(
            f"{owner}.{what}: subjects[{i}] is {value!r}; every sequence needs a real subject "
            "identifier (a string or an integer). Fill the missing subject ids first."
        )
    if not isinstance(value, _SUBJECT_TYPES):
        raise TypeError(
            f"{owner}.{what}: subjects[{i}] is a {type(value).__name__} ({value!r}); subject "
            "identifiers must be strings or integers (e.g. 'sub-01' or 1)."
        )
    return value


def _check_restored_values(aligner, tensors):
    """Refuse non-finite maps or statistics, or scales that are not positive."""
    for name, tensor in tensors.items():
        values, scale = tensor.float(), name.startswith("scale.")
        if not torch.isfinite(values).all() or (scale and not (values > 0).all()):
            raise IncompatibleModelError(
                f"{aligner._name}: the model file's tensor {name!r} has non-finite values"
                f"{' or scales <= 0' if scale else ''}. The file is damaged "
                "or was edited; save the model again with sklearn_tcssl.io.save."
            )
