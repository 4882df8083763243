"""The model card's schema: a model file is data, checked before any of it is used.

:func:`check_card` checks every field the package reads against the schema of the card's
family (:data:`SCHEMA` for the embedder and the classifier, :data:`ALIGNER_SCHEMA` for the
aligners), then the tensors (whose bytes safetensors has checked to lie in the file): their
dtypes, and shapes that agree with the card (an encoder's sizes are derived from the shapes;
an aligner's card implies every tensor's shape, its encoder's computed on torch's ``meta``
device). Every size is thus bounded by the file's own content before anything is built.
:func:`model_params` reads back only the parameters that describe the model (:data:`MODEL_PARAMS`).
"""

import math
import re

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl.io._registry import config_n_features
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
_DTYPES = ("BF16", "BOOL", "F16", "F32", "F64", "I32", "I64", "U8")
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


def _optional(spec):
    check, text = spec
    return (lambda value: value is None or check(value)), f"{text} or null"


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
_BOOL = _of_type(bool, "true or false")
_ROW = _numbers(4)[0]


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


#: (field path, required, spec) for every card field the package reads; a spec is
#: ``(check, description)`` or a function of the card returning one.
SCHEMA = [
    ("format_version", True, _int(1)),
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
    ("input.affine", False, _list_of(_ROW, 4, "a 4 x 4 list of numbers")),
    ("input.voxel_size", False, _numbers(3)),
    ("input.n_voxels", False, _int(0)),
    ("training", False, _OBJECT),
    ("training.n_sequences", False, _int(0)),
    ("training.n_timepoints", False, _int(0)),
    ("training.init_from", False, _optional(_OBJECT)),
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
    ("validation_scores", False, _optional(_OBJECT)),
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
    fields = ENCODER_FIELDS.get(card["architecture"]["name"])
    if fields is not None:  # an unknown encoder is refused by name when it is built
        _check_architecture(card["architecture"], fields, where, common=_COMMON_KEYS)
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
    constraints = estimator_class._parameter_constraints
    for key in [key for key in params if key in constraints]:
        try:
            validate_parameter_constraints(
                {key: constraints[key]}, {key: params[key]}, estimator_class.__name__
            )
        except InvalidParameterError as exc:
            raise _refuse(
                where, f"the model card's field 'params.{key}' is invalid: {exc}"
            ) from None
    return params


# ------------------------------------------------------------------ the tensors
def check_card(card, header, *, where):
    """Check a card (:func:`validate_card`), then the file's tensors against it.

    Parameters
    ----------
    card : dict
        The parsed card.
    header : dict
        The file's tensor index (name to ``{"dtype", "shape"}``), as read by safetensors.
    where : str
        The file, for error messages.
    """
    validate_card(card, where=where)
    for name, entry in header.items():
        if entry["dtype"] not in _DTYPES:
            raise _refuse(
                where,
                f"the tensor {name!r} has dtype {entry['dtype']}; model tensors are "
                f"{list(_DTYPES)}.",
            )
    shapes = {name: tuple(entry["shape"]) for name, entry in header.items()}
    if card["estimator"] in ALIGNERS:
        _check_aligner_tensors(card, header, shapes, where)
    elif card["architecture"]["name"] in ENCODER_FIELDS:  # else refused when it is built
        _check_encoder_tensors(card, header, shapes, where)


def _shape(shapes, name, ndim, where):
    if name not in shapes:
        raise _refuse(
            where, f"the model file's encoder tensors do not match its card (missing {name!r})."
        )
    if len(shapes[name]) != ndim:
        raise _refuse(where, f"the tensor {name!r} has shape {shapes[name]}, not {ndim}D.")
    return shapes[name]


def derive_architecture(shapes, name, *, where):
    """Return the sizes of encoder ``name`` that the tensor shapes (``{name: shape}``) give.

    The keys are the architecture's fields of :data:`SCHEMA` and :data:`ENCODER_FIELDS` that
    the tensors determine (all but a VolumeEncoder's ``grid_shape``).
    """
    n_components = _shape(shapes, "encoder.head.layers.0.weight", 2, where)[1]
    n_blocks = 0
    while f"encoder.temporal.{n_blocks}.conv_in.weight" in shapes:
        n_blocks += 1
    kernel_size = 3
    if n_blocks:
        kernel_size = _shape(shapes, "encoder.temporal.0.conv_in.weight", 3, where)[2]
    sizes = {
        "n_components": n_components,
        "kernel_size": kernel_size,
        "n_blocks": n_blocks,
        "projection_dim": _shape(shapes, "encoder.head.layers.2.weight", 2, where)[0],
    }
    if name == "TimeSeriesEncoder":
        width, sizes["n_features"] = _shape(shapes, "encoder.spatial.weight", 2, where)
    else:  # VolumeEncoder
        sizes["channels"] = _shape(shapes, "encoder.spatial.features.0.weight", 5, where)[0]
        width, n_pooled = _shape(shapes, "encoder.spatial.linear.weight", 2, where)
        last = max(
            (k for k in shapes if k.startswith("encoder.spatial.features.")),
            key=lambda k: int(k.split(".")[-2]),
        )
        cells = n_pooled / shapes[last][0]
        sizes["pool_size"] = round(cells ** (1 / 3))
    if width != n_components:
        raise _refuse(where, f"the spatial part gives width {width}, the head {n_components}.")
    return sizes


def _check_encoder_tensors(card, header, shapes, where):
    """Refuse an encoder card whose sizes disagree with the tensors of its file."""
    derived = derive_architecture(shapes, card["architecture"]["name"], where=where)
    for key, value in derived.items():
        if card["architecture"][key] != value:
            raise _refuse(
                where,
                f"the model card says architecture.{key}={card['architecture'][key]}, but the "
                f"file's tensors give {value}.",
            )
    n_features = card["n_features_in"]
    if n_features != config_n_features(card["architecture"]):
        raise _refuse(
            where,
            f"the model card says n_features_in={n_features}, but its encoder takes "
            f"{config_n_features(card['architecture'])} features.",
        )
    for name in ("standardization.mean", "standardization.scale"):  # bounds a grid too
        shape = _shape(shapes, name, 1, where)
        if shape != (n_features,) or header[name]["dtype"] not in _FLOAT_DTYPES:
            raise _refuse(
                where,
                f"the tensor {name!r} has shape {shape} ({header[name]['dtype']}); the model "
                f"has {n_features} features, so it must be a float vector of length "
                f"{n_features}.",
            )
    if "classes" in card:
        n_classes, width = _shape(shapes, "head.weight", 2, where)
        if (n_classes, width) != (len(card["classes"]), derived["n_components"]):
            raise _refuse(
                where,
                f"the classification head has shape {(n_classes, width)}, but the card lists "
                f"{len(card['classes'])} classes for an embedding of width "
                f"{derived['n_components']}.",
            )


def _aligner_encoder_shapes(card, n_tensors, where):
    """Check the contrastive aligner's architecture; return its encoder's tensor shapes."""
    arch = check_field(card, "architecture", _OBJECT, where)
    fitted = card["n_features"][: card["n_fitted_subjects"]]
    fields = {
        "name": (lambda v: v == "SubjectAlignedEncoder", "'SubjectAlignedEncoder'"),
        "n_features": (lambda v: v == fitted, f"the fitted subjects' n_features {fitted}"),
        "n_components": (
            lambda v: v == card["n_components"],
            f"the card's n_components ({card['n_components']})",
        ),
        "orthonormal": _BOOL,
        "kernel_size": (lambda v: _is_number(v, True, 1) and v % 2 == 1, "an odd integer >= 1"),
        "n_blocks": (lambda v: _is_number(v, True, 0) and v <= n_tensors, "an integer >= 0"),
        "projection_dim": _int(1),
    }
    _check_architecture(arch, fields, where)
    with torch.device("meta"):  # shapes only, nothing allocated
        module = SubjectAlignedEncoder(**{k: v for k, v in arch.items() if k != "name"})
    return {f"encoder.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


def _check_aligner_tensors(card, header, shapes, where):
    """Refuse an aligner file without exactly the float tensors its card implies."""
    k = card["n_components"]
    expected = {"shared_response": (card["n_timepoints"], k)}
    for i, n_features in enumerate(card["n_features"]):
        expected[f"maps.{i}"] = (n_features, k)
        if card["standardized"]:
            expected[f"mean.{i}"] = expected[f"scale.{i}"] = (n_features,)
    if card["estimator"] == "TemporalContrastiveAligner":
        expected.update(_aligner_encoder_shapes(card, len(shapes), where))
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
