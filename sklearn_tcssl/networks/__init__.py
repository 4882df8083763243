"""The Yeo 2011 7-network parcellation: names, labels, masks and a network masker.

Layer: beside the estimators (imports ``_input`` and ``_utils``). :class:`NetworkMasker`
restricts 4D fMRI runs to the voxels of one or more Yeo et al. (2011) cortical networks;
:func:`network_mask` builds such a mask on the images' grid. ``_yeo`` holds the names and
errors, ``_atlas`` the fetching, resampling and space checks, ``_masker`` the estimator.
"""

from sklearn_tcssl.networks._atlas import network_mask
from sklearn_tcssl.networks._masker import NetworkMasker
from sklearn_tcssl.networks._yeo import (
    WHOLE_BRAIN,
    YEO7_NETWORKS,
    AtlasUnavailableError,
    NetworkMaskError,
    network_names,
)

__all__ = [
    "YEO7_NETWORKS",
    "WHOLE_BRAIN",
    "NetworkMaskError",
    "AtlasUnavailableError",
    "NetworkMasker",
    "network_mask",
    "network_names",
]
