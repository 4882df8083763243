"""The Yeo et al. (2011) 7 networks: names, labels, the errors and the check of names."""

import re
from collections.abc import Iterable

from sklearn_tcssl._utils.exceptions import TCSSLError

# Labels of the Yeo et al. (2011) 7-network atlas (``fetch_atlas_yeo_2011(n_networks=7)``);
# nilearn only calls them ``7Networks_1..7``.
YEO7_NETWORKS = {
    "visual": 1,
    "somatomotor": 2,
    "dorsal_attention": 3,
    "ventral_attention": 4,
    "limbic": 5,
    "frontoparietal": 6,
    "default": 7,
}

#: Name that selects the union of the 7 networks (the atlas's cortical coverage).
WHOLE_BRAIN = "whole_brain"

MAX_LABEL = max(YEO7_NETWORKS.values())
FETCHER = "nilearn.datasets.fetch_atlas_yeo_2011(n_networks=7, thickness='thick')"


class NetworkMaskError(TCSSLError, ValueError):
    """Raised when networks, atlas, mask or images cannot give a network mask."""


class AtlasUnavailableError(NetworkMaskError, OSError):
    """Raised when the default Yeo atlas cannot be fetched (no network, no local copy)."""


def network_names():
    """Return the names of the Yeo 7 networks, in label order.

    Returns
    -------
    names : list of str
        ``["visual", "somatomotor", "dorsal_attention", "ventral_attention", "limbic",
        "frontoparietal", "default"]``; labels 1 to 7 of the atlas. ``"whole_brain"``
        (:data:`WHOLE_BRAIN`) is also accepted wherever networks are requested.

    Examples
    --------
    >>> from sklearn_tcssl.networks import network_names
    >>> network_names()[:2]
    ['visual', 'somatomotor']
    """
    return list(YEO7_NETWORKS)


def _allowed_text():
    return ", ".join(repr(n) for n in [*YEO7_NETWORKS, WHOLE_BRAIN])


def validate_networks(networks):
    """Return (all network names, names that must keep voxels), canonical and deduplicated.

    ``"whole_brain"`` expands to the 7 networks; only explicitly named networks must keep
    voxels in the field of view.
    """
    given = [networks] if isinstance(networks, str) else networks
    if not isinstance(given, Iterable) or isinstance(given, dict):
        raise NetworkMaskError(
            f"networks={networks!r} must be a network name or a list of names; allowed names "
            f"are {_allowed_text()}. Pass e.g. networks='visual' or ['visual', 'default']."
        )
    given = list(given)
    if not given:
        raise NetworkMaskError(
            f"networks={networks!r} is empty; pass at least one of {_allowed_text()}."
        )
    names, required = [], []
    for name in given:
        key = re.sub("[ -]", "_", name.strip().lower()) if isinstance(name, str) else name
        if key == WHOLE_BRAIN:
            names.extend(YEO7_NETWORKS)
        elif key in YEO7_NETWORKS:
            names.append(key)
            required.append(key)
        else:
            raise NetworkMaskError(
                f"networks={networks!r}: {name!r} is not a Yeo 7-network name. Allowed names "
                f"are {_allowed_text()}. Fix the spelling or pick one of these."
            )
    ordered = [n for n in YEO7_NETWORKS if n in names]
    return ordered, [n for n in ordered if n in required]
