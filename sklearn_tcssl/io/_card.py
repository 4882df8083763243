"""The model card's schema: a model file is data, checked before any of it is used.

A model file (see :mod:`sklearn_tcssl.io`) holds a JSON card and a safetensors tensor index.
Neither is trusted:

* :func:`validate_card` checks every field the package reads against :data:`SCHEMA` (type
  and range); a missing or mistyped field raises
  :class:`~sklearn_tcssl.IncompatibleModelError` naming it.
* safetensors has checked that every tensor's bytes lie in the file, so every size derived
  from the tensors is bounded by the file's own content; :func:`check_tensor_index` checks
  that their dtypes are ones a model is made of.
* :func:`check_architecture` derives the architecture from the tensor shapes and refuses a
  card that disagrees (e.g. ``n_components=30000`` in a 4 kB file, or a mean of length 1 for
  5 features), before any module is built.
* :func:`model_params` returns only the constructor parameters that describe the model or
  its training (:data:`MODEL_PARAMS`); paths, devices, callbacks and other settings of the
  machine that saved the file are never read back.
"""

import re

import numpy as np

from sklearn_tcssl._utils.docs import fill_doc
from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl.io._registry import config_n_features

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

_FIX = "The file is damaged or was edited; save the model again with sklearn_tcssl.io.save."
_DTYPES = ("BF16", "BOOL", "F16", "F32", "F64", "I32", "I64", "U8")
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_CLASSES_DTYPE = re.compile(r"^(object|[<>|=]?[biufU]\d{1,3})$")


def _int(minimum):
    def check(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

    return check, f"an integer >= {minimum}"


def _of_type(kind, text):
    return (lambda value: isinstance(value, kind)), text


def _optional(spec):
    check, text = spec
    return (lambda value: value is None or check(value)), f"{text} or null"


_SCALARS = (str, int, float, bool)


def _list_of(kind, text):
    return (
        lambda value: isinstance(value, list) and all(isinstance(v, kind) for v in value)
    ), text


def _is_number(value, integer=False):
    kind = int if integer else (int, float)
    return isinstance(value, kind) and not isinstance(value, bool)


def _numbers(length, *, integer=False):
    def check(value):
        return (
            isinstance(value, list)
            and len(value) == length
            and all(_is_number(v, integer) for v in value)
        )

    return check, f"a list of {length} {'integers' if integer else 'numbers'}"


def _is_matrix(value, size):
    return (
        isinstance(value, list)
        and len(value) == size
        and all(
            isinstance(row, list) and len(row) == size and all(_is_number(v) for v in row)
            for row in value
        )
    )


#: (field path, required, (check, description)) for every card field the package reads.
SCHEMA = [
    ("format_version", True, _int(1)),
    ("estimator", True, _of_type(str, "a string")),
    ("params", True, _of_type(dict, "an object")),
    ("architecture", True, _of_type(dict, "an object")),
    ("architecture.name", True, _of_type(str, "a string")),
    ("architecture.n_components", True, _int(1)),
    ("architecture.kernel_size", True, _int(1)),
    ("architecture.n_blocks", True, _int(0)),
    ("architecture.projection_dim", True, _int(1)),
    ("n_features_in", True, _int(1)),
    ("univariate", True, _of_type(bool, "true or false")),
    ("input", False, _of_type(dict, "an object")),
    ("input.mask_sha256", False, _of_type(str, "a string")),
    ("input.mask_shape", False, _numbers(3, integer=True)),
    ("input.affine", False, (lambda v: _is_matrix(v, 4), "a 4 x 4 list of numbers")),
    ("input.voxel_size", False, _numbers(3)),
    ("input.n_voxels", False, _int(0)),
    ("training", False, _of_type(dict, "an object")),
    ("training.n_sequences", False, _int(0)),
    ("training.n_timepoints", False, _int(0)),
    ("training.init_from", False, _optional(_of_type(dict, "an object"))),
    ("feature_names_in", False, _list_of(str, "a list of strings")),
    ("classes", False, _list_of(_SCALARS, "a list of strings or numbers")),
    (
        "classes_dtype",
        False,
        (
            lambda v: isinstance(v, str) and bool(_CLASSES_DTYPE.match(v)),
            "'object' or a numpy dtype of strings, integers, floats or booleans (e.g. '<U5')",
        ),
    ),
]

#: Encoder-specific architecture fields, by encoder name (the temporal part is shared).
ENCODER_FIELDS = {
    "TimeSeriesEncoder": {"n_features": _int(1)},
    "VolumeEncoder": {
        "grid_shape": (
            lambda v: _numbers(3, integer=True)[0](v) and min(v) >= 1,
            "a list of 3 integers >= 1",
        ),
        "channels": _int(1),
        "pool_size": _int(1),
    },
}

_COMMON_KEYS = [p.split(".")[1] for p, _, _ in SCHEMA if p.startswith("architecture.")]


def _refuse(where, message):
    return IncompatibleModelError(f"{where}: {message} {_FIX}")


def check_field(mapping, key, spec, where, *, name=None, required=True):
    """Return ``mapping[key]`` if it passes ``spec``; otherwise refuse the file, naming the field.

    Parameters
    ----------
    mapping : dict
        The card or one of its objects.
    key : str
        The field.
    spec : tuple of (callable, str)
        The check and the description of what the field must be.
    where : str
        The file, for error messages.
    name : str or None, default=None
        The field's path in the card, for error messages (default ``key``).
    required : bool, default=True
        Whether a missing field is refused (else it is returned as ``None``).

    Returns
    -------
    value : object
        The field's value.
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


def validate_card(card, *, where):
    """Check the fields of a model card against :data:`SCHEMA` and their consistency.

    Parameters
    ----------
    card : dict
        The parsed card.
    where : str
        The file, for error messages.

    Returns
    -------
    card : dict
        The same card.

    Raises
    ------
    IncompatibleModelError
        Naming the first missing or mistyped field.
    """
    for path, required, spec in SCHEMA:  # a parent is checked before its fields
        parent, _, key = path.rpartition(".")
        mapping = card.get(parent) if parent else card
        if mapping is not None:
            check_field(mapping, key, spec, where, name=path, required=required)
    _validate_encoder_fields(card["architecture"], where)
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
    return card


def _validate_encoder_fields(architecture, where):
    """Check the fields of a known encoder; an unknown one is refused when it is built."""
    fields = ENCODER_FIELDS.get(architecture["name"])
    if fields is None:
        return
    for key, spec in fields.items():
        check_field(architecture, key, spec, where, name=f"architecture.{key}")
    unknown = sorted(set(architecture) - set(_COMMON_KEYS) - set(fields))
    if unknown:
        raise _refuse(where, f"the model card's architecture has unknown field(s) {unknown}.")


def model_params(card, estimator_class, *, where):
    """Return the card's constructor parameters that describe the model (:data:`MODEL_PARAMS`).

    Values must be JSON scalars; ``n_components`` must be the width of the encoder in the
    file; when the class declares scikit-learn ``_parameter_constraints``, every value must
    satisfy them.

    Parameters
    ----------
    card : dict
        A validated card.
    estimator_class : type
        The estimator class being built.
    where : str
        The file, for error messages.

    Returns
    -------
    params : dict
        Paths, devices, callbacks and other settings of the saving machine are never
        returned: those parameters keep their defaults.
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
    _check_constraints(params, estimator_class, where)
    return params


def _check_constraints(params, estimator_class, where):
    """Check the values with the class's scikit-learn ``_parameter_constraints``."""
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    constraints = estimator_class._parameter_constraints
    for key, value in params.items():
        try:
            validate_parameter_constraints(
                {key: constraints[key]} if key in constraints else {},
                {key: value},
                estimator_class.__name__,
            )
        except InvalidParameterError as exc:
            raise _refuse(
                where, f"the model card's field 'params.{key}' is invalid: {exc}"
            ) from None


def check_tensor_index(header, *, where):
    """Check the dtype and shape of every tensor of a file, as read by safetensors.

    safetensors has already checked that each tensor's bytes lie in the file; this checks
    that the dtypes are ones a model is made of.

    Parameters
    ----------
    header : dict
        Tensor name to ``{"dtype": str, "shape": list of int}`` (and ``"__metadata__"``).
    where : str
        The file, for error messages.

    Returns
    -------
    shapes : dict of str to tuple of int
        The shape of every tensor.
    """
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in _DTYPES:
            raise _refuse(
                where,
                f"the tensor {name!r} has dtype {entry['dtype']}; model tensors are "
                f"{list(_DTYPES)}.",
            )
        shapes[name] = tuple(entry["shape"])
    return shapes


def _shape(shapes, name, ndim, where):
    if name not in shapes:
        raise _refuse(
            where, f"the model file's encoder tensors do not match its card (missing {name!r})."
        )
    if len(shapes[name]) != ndim:
        raise _refuse(where, f"the tensor {name!r} has shape {shapes[name]}, not {ndim}D.")
    return shapes[name]


def derive_architecture(shapes, name, *, where, prefix="encoder."):
    """Return the encoder's sizes as given by the tensor shapes of a model file.

    Parameters
    ----------
    shapes : dict of str to tuple of int
        From :func:`check_tensor_index`.
    name : str
        The encoder's name (a key of :data:`ENCODER_FIELDS`).
    where : str
        The file, for error messages.
    prefix : str, default="encoder."
        Prefix of the encoder's tensors.

    Returns
    -------
    sizes : dict
        ``n_components``, ``kernel_size``, ``n_blocks``, ``projection_dim`` and the
        encoder-specific sizes that the tensors determine (``n_features`` of a
        TimeSeriesEncoder; ``channels`` and ``pool_size`` of a VolumeEncoder).
    """
    n_components = _shape(shapes, f"{prefix}head.layers.0.weight", 2, where)[1]
    n_blocks = 0
    while f"{prefix}temporal.{n_blocks}.conv_in.weight" in shapes:
        n_blocks += 1
    kernel_size = 3
    if n_blocks:
        kernel_size = _shape(shapes, f"{prefix}temporal.0.conv_in.weight", 3, where)[2]
    sizes = {
        "n_components": n_components,
        "kernel_size": kernel_size,
        "n_blocks": n_blocks,
        "projection_dim": _shape(shapes, f"{prefix}head.layers.2.weight", 2, where)[0],
    }
    if name == "TimeSeriesEncoder":
        width, sizes["n_features"] = _shape(shapes, f"{prefix}spatial.weight", 2, where)
    else:  # VolumeEncoder
        sizes["channels"] = _shape(shapes, f"{prefix}spatial.features.0.weight", 5, where)[0]
        width, n_pooled = _shape(shapes, f"{prefix}spatial.linear.weight", 2, where)
        last = max(
            (k for k in shapes if k.startswith(f"{prefix}spatial.features.")),
            key=lambda k: int(k.split(".")[-2]),
        )
        cells = n_pooled / shapes[last][0]
        sizes["pool_size"] = round(cells ** (1 / 3))
    if width != n_components:
        raise _refuse(where, f"the spatial part gives width {width}, the head {n_components}.")
    return sizes


@fill_doc
def check_architecture(card, header, *, where):
    """Refuse a card whose sizes disagree with the tensors of its file.

    The card was checked by :func:`validate_card`; the index is checked with
    :func:`check_tensor_index` first.

    Parameters
    ----------
    %(card_and_header)s
    """
    shapes = check_tensor_index(header, where=where)
    name = card["architecture"]["name"]
    if name not in ENCODER_FIELDS:
        return  # refused by name when the encoder is built, before any allocation
    derived = derive_architecture(shapes, name, where=where)
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
    for tensor in ("standardization.mean", "standardization.scale"):
        _check_statistics(shapes, header, tensor, n_features, where)
    if "classes" in card:
        n_classes, width = _shape(shapes, "head.weight", 2, where)
        if (n_classes, width) != (len(card["classes"]), derived["n_components"]):
            raise _refuse(
                where,
                f"the classification head has shape {(n_classes, width)}, but the card lists "
                f"{len(card['classes'])} classes for an embedding of width "
                f"{derived['n_components']}.",
            )


def _check_statistics(shapes, header, name, n_features, where):
    """Refuse mean/scale vectors that are not one float per feature (bounds a grid too)."""
    shape = _shape(shapes, name, 1, where)
    if shape != (n_features,) or header[name]["dtype"] not in _FLOAT_DTYPES:
        raise _refuse(
            where,
            f"the tensor {name!r} has shape {shape} ({header[name]['dtype']}); the model has "
            f"{n_features} features, so it must be a float vector of length {n_features}.",
        )
