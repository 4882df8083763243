"""Model files: ``save`` / ``load`` / ``read_card`` (safetensors + a JSON card), the registry.

Layer: io (above ``nn/`` and ``_utils/``; below the estimators, which it rebuilds by name).
"""

from sklearn_tcssl.io._model_file import (
    FORMAT_VERSION,
    check_input,
    describe_mask,
    load,
    read_card,
    save,
)

__all__ = ["FORMAT_VERSION", "check_input", "describe_mask", "load", "read_card", "save"]
