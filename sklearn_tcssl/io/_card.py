"""The model card's schema: a model file is data, checked before any of it is used.

:func:`check_card` checks every field the package reads against the schema of the card's
family (:data:`SCHEMA` for the embedder and the classifier, :data:`ALIGNER_SCHEMA` for the
aligners), then the tensors (whose bytes safetensors has checked to lie in the file): the
file must hold exactly the float tensors the card implies, an encoder's shapes computed by
building it on torch's ``meta`` device. Every size is thus bounded by the file's own content
before anything is built.
:func:`model_params` reads back only the parameters that describe the model (:data:`MODEL_PARAMS`).
"""

import math
import re

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl.io._registry import ENCODERS, config_n_features
from sklearn_tcssl.nn.subjects import SubjectAlignedEncoder

#: Constructor parameters read back from a card; all others keep their defaults.
MODEL_PARAMS = frozenset(
    {
        # both estimators
        "n_components",
        "init",
        "max_epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "standardize",
        "validation_fraction",
        "random_state",
        # embedder
        "segment_length",
        "negatives",
        "keep_mean_pattern",
        "temperature",
        "input",
        "target_voxel_size",
        # classifier
        "freeze_encoder",
        "encoder_lr_scale",
        # aligners (their architecture parameters are read from the architecture)
        "n_iter",
        "basis",
        "cross_subject",
        "freeze_maps",
        "srm_iter",
    }
)
ALIGNERS = ("SharedResponseAligner", "TemporalContrastiveAligner")

_FIX = "The file is damaged or was edited; save the model again with sklearn_tcssl.io.save."
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_CLASSES_DTYPE = re.compile(r"^(object|[<>|=]?[biufU]\d{1,3})$")
_SCALARS = (str, int, float, bool)


# ------------------------------------------------- field specs: (check, description)
def _is_number(value, integer=False, minimum=None):
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    return ok and (minimum is None or value >= minimum)


def _int(minimum):
    return (lambda value: _is_number(value, True, minimum)), f"an integer >= {minimum}"


def _of_type(kind, text):
    return (lambda value: isinstance(value, kind)), text


def _list_of(check, length, text):
    def is_list(value):
        return (
            isinstance(value, list)
            and (length is None or len(value) == length)
            and all(map(check, value))
        )

    return is_list, text


def _numbers(length, *, integer=False, minimum=None):
    return _list_of(
        lambda v: _is_number(v, integer, minimum),
        length,
        f"a list of {length} {'integers' if integer else 'numbers'}",
    )


_OBJECT = _of_type(dict, "an object")
_OBJECT_OR_NULL = _of_type((dict, type(None)), "an object or null")
_BOOL = _of_type(bool, "true or false")


def _is_str(value):
    return isinstance(value, str)


def _is_subject(value):
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int))


def _n_fitted_spec(card):
    n = len(card["subjects"])
    return (lambda v: _is_number(v, True, 1) and v <= n), f"an integer from 1 to {n}"


def _n_features_spec(card):
    n = len(card["subjects"])
    return _list_of(lambda v: _is_number(v, True, 1), n, f"a list of {n} integers >= 1")


def _feature_names_spec(card):
    n = len(card["subjects"])

    def check(value):
        return (
            isinstance(value, list)
            and len(value) == n
            and all(
                names is None or _list_of(_is_str, n_features, "")[0](names)
                for names, n_features in zip(value, card["n_features"])
            )
        )

    return check, f"a list of {n} null or lists of column names (one per feature)"


#: (field path, required, spec) for every card field the package reads but ``format_version``
#: (checked first, by the reader); a spec is ``(check, description)`` or a function of the card
#: returning one.
SCHEMA = [
    ("estimator", True, _of_type(str, "a string")),
    ("params", True, _OBJECT),
    ("architecture", True, _OBJECT),
    ("architecture.name", True, _of_type(str, "a string")),
    ("architecture.n_components", True, _int(1)),
    ("architecture.kernel_size", True, _int(1)),
    ("architecture.n_blocks", True, _int(0)),
    ("architecture.projection_dim", True, _int(1)),
    ("n_features_in", True, _int(1)),
    ("univariate", True, _BOOL),
    ("input", False, _OBJECT),
    ("input.mask_sha256", False, _of_type(str, "a string")),
    ("input.mask_shape", False, _numbers(3, integer=True)),
    ("input.affine", False, _list_of(_numbers(4)[0], 4, "a 4 x 4 list of numbers")),
    ("input.voxel_size", False, _numbers(3)),
    ("input.n_voxels", False, _int(0)),
    ("training", False, _OBJECT),
    ("training.n_sequences", False, _int(0)),
    ("training.n_timepoints", False, _int(0)),
    ("training.init_from", False, _OBJECT_OR_NULL),
    ("feature_names_in", False, _list_of(_is_str, None, "a list of strings")),
    (
        "classes",
        False,
        _list_of(lambda v: isinstance(v, _SCALARS), None, "a list of strings or numbers"),
    ),
    (
        "classes_dtype",
        False,
        (
            lambda v: isinstance(v, str) and bool(_CLASSES_DTYPE.match(v)),
            "'object' or a numpy dtype of strings, integers, floats or booleans (e.g. '<U5')",
        ),
    ),
]

ALIGNER_SCHEMA = [
    ("params", True, _OBJECT),
    (
        "subjects",
        True,
        (
            lambda v: isinstance(v, list) and v and all(_is_subject(s) for s in v),
            "a non-empty list of subject identifiers (strings or numbers)",
        ),
    ),
    ("n_fitted_subjects", True, _n_fitted_spec),
    ("n_components", True, _int(1)),
    ("n_timepoints", True, _int(1)),
    ("n_features", True, _n_features_spec),
    ("feature_names", True, _feature_names_spec),
    ("standardized", True, _BOOL),
    ("validation_scores", False, _OBJECT_OR_NULL),
]

#: Encoder-specific architecture fields, by encoder name (the temporal part is shared).
ENCODER_FIELDS = {
    "TimeSeriesEncoder": {"n_features": _int(1)},
    "VolumeEncoder": {
        "grid_shape": (_numbers(3, integer=True, minimum=1)[0], "a list of 3 integers >= 1"),
        "channels": _int(1),
        "pool_size": _int(1),
    },
}

_COMMON_KEYS = [p.split(".")[1] for p, _, _ in SCHEMA if p.startswith("architecture.")]


def _refuse(where, message):
    return IncompatibleModelError(f"{where}: {message} {_FIX}")


def check_field(mapping, key, spec, where, *, name=None, required=True):
    """Return ``mapping[key]`` if it passes ``spec``, else refuse the file naming ``name``.

    ``name`` is the field's path in the card (default ``key``); a missing field is None unless
    ``required``.
    """
    check, text = spec
    name = name or key
    if not isinstance(mapping, dict) or key not in mapping:
        if required:
            raise _refuse(where, f"the model card has no field {name!r} ({text}).")
        return None
    value = mapping[key]
    if not check(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise _refuse(
            where,
            f"the model card's field {name!r} is {shown} ({type(value).__name__}); it "
            f"must be {text}.",
        )
    return value


def _check_architecture(architecture, fields, where, *, common=()):
    """Check the ``fields`` (``{key: spec}``) of an architecture; refuse keys but ``common``."""
    for key, spec in fields.items():
        check_field(architecture, key, spec, where, name=f"architecture.{key}")
    unknown = sorted(set(architecture) - set(fields) - set(common))
    if unknown:
        raise _refuse(where, f"the model card's architecture has unknown field(s) {unknown}.")


def validate_card(card, *, where):
    """Check every field of a card against its family's schema, and their consistency."""
    aligner = card.get("estimator") in ALIGNERS
    for path, required, spec in ALIGNER_SCHEMA if aligner else SCHEMA:  # parents first
        parent, _, key = path.rpartition(".")
        mapping = card.get(parent) if parent else card
        if mapping is not None:
            spec = spec(card) if callable(spec) else spec
            check_field(mapping, key, spec, where, name=path, required=required)
    if aligner:
        if len(set(card["subjects"])) != len(card["subjects"]):
            raise _refuse(where, "the model card's 'subjects' repeats a subject.")
        return
    name = card["architecture"]["name"]
    if name not in ENCODER_FIELDS:
        raise IncompatibleModelError(
            f"{where}: the model's encoder is {name!r}; this sklearn-tcssl rebuilds "
            f"{sorted(ENCODER_FIELDS)}. Upgrade sklearn-tcssl."
        )
    _check_architecture(card["architecture"], ENCODER_FIELDS[name], where, common=_COMMON_KEYS)
    if card["estimator"] == "TemporalContrastiveClassifier" and "classes" not in card:
        raise _refuse(where, "the model card of a classifier has no field 'classes'.")
    dtype = card.get("classes_dtype", "object")
    if "classes" in card and dtype != "object":
        try:
            np.asarray(card["classes"], dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _refuse(
                where, f"the model card's classes do not fit classes_dtype={dtype!r} ({exc})."
            ) from exc
    names = card.get("feature_names_in")
    if names is not None and len(names) != card["n_features_in"]:
        raise _refuse(
            where,
            f"the model card's 'feature_names_in' has {len(names)} names for "
            f"n_features_in={card['n_features_in']}.",
        )


def model_params(card, estimator_class, *, where):
    """Return the card's constructor parameters that describe the model (:data:`MODEL_PARAMS`).

    Values must be JSON scalars, ``n_components`` the width of the encoder in the file, and
    every value must satisfy the class's scikit-learn ``_parameter_constraints``.
    """
    known = estimator_class().get_params(deep=False)
    params = {}
    for key, value in card["params"].items():
        if key not in MODEL_PARAMS or key not in known:
            continue
        if value is not None and not isinstance(value, _SCALARS):
            raise _refuse(
                where,
                f"the model card's field 'params.{key}' is a {type(value).__name__}; it must "
                "be a string, a number, true/false or null.",
            )
        params[key] = value
    width = card.get("n_components") or card["architecture"]["n_components"]
    if params.get("n_components") not in (None, width):
        raise _refuse(
            where,
            f"the model card's field 'params.n_components' is {params['n_components']!r}, but "
            f"the encoder in the file has width {width}.",
        )
    try:  # every parameter that has constraints; the error names the first invalid one
        validate_parameter_constraints(
            estimator_class._parameter_constraints, params, estimator_class.__name__
        )
    except InvalidParameterError as exc:
        raise _refuse(where, f"the model card's field 'params' is invalid: {exc}") from None
    return params


# ------------------------------------------------------------------ the tensors
def check_card(card, header, *, where):
    """Check a card (:func:`validate_card`), then the file's tensors against it.

    ``header`` is the file's tensor index (name to ``{"dtype", "shape"}``, as safetensors
    reads it): it must hold exactly the tensors the card implies, each a float tensor of the
    implied shape. ``where`` names the file in errors.
    """
    validate_card(card, where=where)
    if card["estimator"] in ALIGNERS:
        expected = _aligner_shapes(card, len(header), where)
    else:
        expected = _encoder_model_shapes(card, len(header), where)
    shapes = {name: tuple(entry["shape"]) for name, entry in header.items()}
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


def _encoder_shapes(cls, architecture, n_tensors, where):
    """Return ``{"encoder.<name>": shape}`` of ``cls`` built from a checked ``architecture``.

    It is built on torch's ``meta`` device: shapes only, nothing allocated.
    """
    kwargs = {k: v for k, v in architecture.items() if k != "name"}
    if kwargs["n_blocks"] > n_tensors:  # every block has tensors: bounds what is built
        raise _refuse(
            where,
            f"the model card's architecture.n_blocks={kwargs['n_blocks']} is more than the "
            f"file's {n_tensors} tensors.",
        )
    try:
        with torch.device("meta"):
            module = cls(**kwargs)
    except (TypeError, RuntimeError) as exc:  # sizes beyond what torch can describe
        raise _refuse(
            where,
            f"the model card's architecture {kwargs} builds no {cls.__name__} "
            f"({str(exc).splitlines()[0]}).",
        ) from None
    return {f"encoder.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


def _encoder_model_shapes(card, n_tensors, where):
    """Return the tensor shapes an embedder's or a classifier's card implies."""
    architecture = card["architecture"]
    cls = ENCODERS[architecture["name"]]
    expected = _encoder_shapes(cls, architecture, n_tensors, where)
    n_features = card["n_features_in"]
    if n_features != config_n_features(architecture):
        raise _refuse(
            where,
            f"the model card says n_features_in={n_features}, but its encoder takes "
            f"{config_n_features(architecture)} features.",
        )
    expected["standardization.mean"] = expected["standardization.scale"] = (n_features,)
    if "classes" in card:
        n_classes = len(card["classes"])
        expected["head.weight"] = (n_classes, architecture["n_components"])
        expected["head.bias"] = (n_classes,)
    return expected


def _aligner_shapes(card, n_tensors, where):
    """Return the tensor shapes an aligner's card implies (with the contrastive one's encoder)."""
    k = card["n_components"]
    expected = {"shared_response": (card["n_timepoints"], k)}
    for i, n_features in enumerate(card["n_features"]):
        expected[f"maps.{i}"] = (n_features, k)
        if card["standardized"]:
            expected[f"mean.{i}"] = expected[f"scale.{i}"] = (n_features,)
    if card["estimator"] == "TemporalContrastiveAligner":
        architecture = check_field(card, "architecture", _OBJECT, where)
        fitted = card["n_features"][: card["n_fitted_subjects"]]
        fields = {
            "name": (lambda v: v == "SubjectAlignedEncoder", "'SubjectAlignedEncoder'"),
            "n_features": (lambda v: v == fitted, f"the fitted subjects' n_features {fitted}"),
            "n_components": (lambda v: v == k, f"the card's n_components ({k})"),
            "orthonormal": _BOOL,
            "kernel_size": (
                lambda v: _is_number(v, True, 1) and v % 2 == 1,
                "an odd integer >= 1",
            ),
            "n_blocks": _int(0),
            "projection_dim": _int(1),
        }
        _check_architecture(architecture, fields, where)
        expected.update(_encoder_shapes(SubjectAlignedEncoder, architecture, n_tensors, where))
    return expected
