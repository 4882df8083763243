"""Model files of the aligners: their card fields and tensors, checked before any use.

An aligner's model file (see :mod:`sklearn_tcssl.io._model_file`) holds, besides the common
card fields (format, versions, ``params``):

* ``subjects`` (every subject with a map, fitted ones first), ``n_fitted_subjects``,
  ``n_components``, ``n_timepoints``, ``n_features`` and ``feature_names`` (per subject),
  ``standardized``, ``validation_scores``, ``input`` (``t_r``, ``input_info``);
* for the contrastive aligner, ``architecture``: the
  :class:`~sklearn_tcssl.nn.subjects.SubjectAlignedEncoder` arguments;

and the tensors ``shared_response`` ``(n_timepoints, n_components)``, ``maps.<i>``
``(n_features[i], n_components)``, ``mean.<i>`` and ``scale.<i>`` ``(n_features[i],)``
(with ``standardized``) and, for the contrastive aligner, ``encoder.<name>``: the encoder's
state dict.

:func:`validate_aligner_file` checks each field's type and range, that the tensor index lies
in the file, and that the file holds exactly the tensors the card implies, with the shapes
it implies (the encoder's are computed on torch's ``meta`` device: nothing is allocated),
so that every size is bounded by the file's own content before anything is built.
"""

import math

import torch

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl.io._card import (
    _FLOAT_DTYPES,
    _int,
    _of_type,
    _optional,
    _refuse,
    check_field,
    check_tensor_index,
)
from sklearn_tcssl.nn.subjects import SubjectAlignedEncoder

ALIGNERS = ("SharedResponseAligner", "TemporalContrastiveAligner")


def _is_int(value, minimum):
    return _int(minimum)[0](value)


def _is_subject(value):
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int))


def _names_per_subject(card, n):
    def check(value):
        return (
            isinstance(value, list)
            and len(value) == n
            and all(
                names is None
                or (
                    isinstance(names, list)
                    and len(names) == card["n_features"][i]
                    and all(isinstance(x, str) for x in names)
                )
                for i, names in enumerate(value)
            )
        )

    return check, f"a list of {n} null or lists of column names (one per feature)"


def _check_fields(card, where):
    check_field(card, "params", _of_type(dict, "an object"), where)
    subjects = check_field(
        card,
        "subjects",
        (
            lambda v: isinstance(v, list) and v and all(_is_subject(s) for s in v),
            "a non-empty list of subject identifiers (strings or numbers)",
        ),
        where,
    )
    if len(set(subjects)) != len(subjects):
        raise _refuse(where, "the model card's 'subjects' repeats a subject.")
    n = len(subjects)
    fitted = (lambda v: _is_int(v, 1) and v <= n, f"an integer from 1 to {n}")
    check_field(card, "n_fitted_subjects", fitted, where)
    check_field(card, "n_components", _int(1), where)
    check_field(card, "n_timepoints", _int(1), where)
    n_features = (
        lambda v: isinstance(v, list) and len(v) == n and all(_is_int(f, 1) for f in v),
        f"a list of {n} integers >= 1",
    )
    check_field(card, "n_features", n_features, where)
    check_field(card, "feature_names", _names_per_subject(card, n), where)
    check_field(card, "standardized", _of_type(bool, "true or false"), where)
    scores = _optional(_of_type(dict, "an object"))
    check_field(card, "validation_scores", scores, where, required=False)


def _check_architecture(card, n_tensors, where):
    arch = check_field(card, "architecture", _of_type(dict, "an object"), where)
    fitted = card["n_features"][: card["n_fitted_subjects"]]
    checks = {
        "name": (lambda v: v == "SubjectAlignedEncoder", "'SubjectAlignedEncoder'"),
        "n_features": (lambda v: v == fitted, f"the fitted subjects' n_features {fitted}"),
        "n_components": (
            lambda v: v == card["n_components"],
            f"the card's n_components ({card['n_components']})",
        ),
        "orthonormal": _of_type(bool, "true or false"),
        "kernel_size": (lambda v: _is_int(v, 1) and v % 2 == 1, "an odd integer >= 1"),
        "n_blocks": (lambda v: _is_int(v, 0) and v <= n_tensors, "an integer >= 0"),
        "projection_dim": _int(1),
    }
    unknown = sorted(set(arch) - set(checks))
    if unknown:
        raise _refuse(where, f"the model card's architecture has unknown field(s) {unknown}.")
    for key, spec in checks.items():
        check_field(arch, key, spec, where, name=f"architecture.{key}")
    with torch.device("meta"):  # shapes only, nothing allocated
        module = SubjectAlignedEncoder(**{k: v for k, v in arch.items() if k != "name"})
    return {f"encoder.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


def _expected_shapes(card, n_tensors, where):
    """Every tensor the checked card implies, with its shape (``n_tensors`` bounds the blocks)."""
    k = card["n_components"]
    shapes = {"shared_response": (card["n_timepoints"], k)}
    for i, n_features in enumerate(card["n_features"]):
        shapes[f"maps.{i}"] = (n_features, k)
        if card["standardized"]:
            shapes[f"mean.{i}"] = shapes[f"scale.{i}"] = (n_features,)
    if card["estimator"] == "TemporalContrastiveAligner":
        shapes.update(_check_architecture(card, n_tensors, where))
    return shapes


@fill_doc
def validate_aligner_file(card, header, *, where):
    """Check an aligner's card and the file's tensors against each other.

    Parameters
    ----------
    %(card_and_header)s

    Raises
    ------
    IncompatibleModelError
        Naming the first field or tensor that is missing, mistyped or of the wrong shape.
    """
    _check_fields(card, where)
    shapes = check_tensor_index(header, where=where)
    expected = _expected_shapes(card, len(shapes), where)
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        raise _refuse(
            where,
            f"the file's tensors do not match its card (missing {missing[:3]}, unexpected "
            f"{extra[:3]}).",
        )
    for name, shape in expected.items():
        if shapes[name] != shape or header[name]["dtype"] not in _FLOAT_DTYPES:
            raise _refuse(
                where,
                f"the tensor {name!r} has shape {shapes[name]} ({header[name]['dtype']}); the "
                f"card implies a float tensor of shape {shape}.",
            )
