"""The simulated brain: an MNI-space grid and the Yeo 7-network layout on it."""

from numbers import Real

import nibabel as nib
import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._utils.params import validate_params
from sklearn_tcssl.networks import YEO7_NETWORKS, NetworkMaskError
from sklearn_tcssl.networks._atlas import load_atlas, on_grid

__all__ = ["make_network_atlas"]

_NETWORK_NAMES = tuple(sorted(YEO7_NETWORKS, key=YEO7_NETWORKS.get))
# MNI bounding box of the simulated grid (mm) and the brain ellipsoid in it.
_BOX_MIN = np.array([-72.0, -108.0, -54.0])
_BOX_MAX = np.array([72.0, 72.0, 84.0])
_CENTER = np.array([0.0, -18.0, 14.0])
_SEMI_AXES = np.array([68.0, 88.0, 64.0])
_CORTEX_THICKNESS = 0.19  # outer fraction of the ellipsoid's radius that is "cortex"
# Seeds (right hemisphere, mirrored to the left) of the synthetic networks, roughly where
# Yeo et al. (2011) place them; each cortex voxel joins the network of its nearest seed.
_SEEDS = {
    "visual": [(15, -95, 5), (35, -82, -8), (8, -75, 15)],
    "somatomotor": [(38, -25, 60), (58, -15, 25), (8, -25, 72), (50, -10, 42)],
    "dorsal_attention": [(25, -62, 58), (48, -65, 0), (28, -5, 58)],
    "ventral_attention": [(58, -40, 30), (40, 12, 2), (6, 18, 40)],
    "limbic": [(20, 35, -22), (40, 12, -38), (40, -15, -35)],
    "frontoparietal": [(44, 38, 20), (48, -52, 46), (30, 55, 5)],
    "default": [(6, 55, 8), (6, -55, 30), (58, -22, -12), (46, -70, 32), (22, 30, 48)],
}

#: Bounds and hint of the grid's voxel size (mm), shared with make_task_fmri.
VOXEL_SIZE = [Interval(Real, 2, 30, closed="both")]
VOXEL_SIZE_HINT = "Finer grids need far more memory; 6 mm (the default) runs in seconds."


def _grid(voxel_size):
    shape = tuple(int(n) for n in np.floor((_BOX_MAX - _BOX_MIN) / voxel_size).astype(int) + 1)
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = _BOX_MIN
    return shape, affine


def _synthetic_networks(shape, affine, voxel_size):
    """Labels 0..7 on a cortical shell (plus medial wall) of a brain-shaped ellipsoid."""
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    radius = np.sqrt((((xyz - _CENTER) / _SEMI_AXES) ** 2).sum(axis=1))
    medial_wall = (np.abs(xyz[:, 0]) < voxel_size) & (radius > 0.4) & (xyz[:, 2] > -20)
    cortex = (radius <= 1.0) & ((radius > 1.0 - _CORTEX_THICKNESS) | medial_wall)
    seeds, seed_labels = [], []
    for name, points in _SEEDS.items():
        for x, y, z in points:
            seeds += [(x, y, z), (-x, y, z)]
            seed_labels += [YEO7_NETWORKS[name]] * 2
    seeds = np.asarray(seeds, dtype=float)
    dist = ((xyz[cortex, None, :] - seeds[None]) ** 2).sum(axis=2)
    labels = np.zeros(len(xyz), dtype=np.int16)
    labels[cortex] = np.asarray(seed_labels)[dist.argmin(axis=1)]
    return labels.reshape(shape)


def _atlas_networks(atlas, shape, affine):
    """Resample a Yeo 7-network label volume (MNI, labels 0..7) to the grid, nearest."""
    labels = on_grid(load_atlas(atlas), affine, tuple(shape)).astype(np.int16)
    if not labels.any():
        raise NetworkMaskError(
            "atlas has no network voxel on the simulated MNI grid: it is not in MNI space. "
            "Pass the 7-network volume of nilearn.datasets.fetch_atlas_yeo_2011(n_networks=7), "
            "or atlas=None."
        )
    return labels


@validate_params(
    {"voxel_size": VOXEL_SIZE, "atlas": "no_validation"},
    hints={"voxel_size": VOXEL_SIZE_HINT},
)
def make_network_atlas(voxel_size=6.0, *, atlas=None):
    """Return the 7-network label image used by :func:`make_task_fmri` on its grid.

    Parameters
    ----------
    voxel_size : float, default=6.0
        Isotropic voxel size of the grid in mm (MNI space), in [2, 30].
    atlas : Niimg-like or str or pathlib.Path or None, default=None
        None builds a synthetic layout of the 7 networks on the cortical shell of a
        brain-shaped ellipsoid (visual posterior, somatomotor central, limbic
        inferior-anterior, default medial and lateral-temporal, ...). A Yeo 2011 7-network
        image in MNI space (labels 0..7, e.g. ``fetch_atlas_yeo_2011(n_networks=7).maps``)
        is resampled to the grid instead (nearest neighbour).

    Returns
    -------
    atlas : sklearn.utils.Bunch
        ``maps`` (3D int16 label image, 0 outside the networks), ``mask_img`` (the voxels
        with a label > 0), ``labels`` (dict name -> label, see
        :data:`sklearn_tcssl.networks.YEO7_NETWORKS`) and ``names`` (names in label order).

    Examples
    --------
    >>> from sklearn_tcssl.datasets import make_network_atlas
    >>> atlas = make_network_atlas()
    >>> atlas.names[0], atlas.maps.shape
    ('visual', (25, 31, 24))
    """
    voxel_size = float(voxel_size)
    shape, affine = _grid(voxel_size)
    if atlas is None:
        labels = _synthetic_networks(shape, affine, voxel_size)
    else:
        labels = _atlas_networks(atlas, shape, affine)
    return Bunch(
        maps=nib.Nifti1Image(labels, affine),
        mask_img=nib.Nifti1Image((labels > 0).astype(np.uint8), affine),
        labels=dict(YEO7_NETWORKS),
        names=list(_NETWORK_NAMES),
    )
