"""Datasets: simulators, block extraction from 4D runs and BIDS datasets, loaders."""

from sklearn_tcssl.datasets._bids import load_bids_blocks
from sklearn_tcssl.datasets._blocks import extract_blocks
from sklearn_tcssl.datasets._layout import make_network_atlas
from sklearn_tcssl.datasets._scenes import scene_blocks
from sklearn_tcssl.datasets._simulate import make_task_fmri
from sklearn_tcssl.datasets._timelocked import load_sherlock_pmc, make_time_locked_fmri

__all__ = [
    "extract_blocks",
    "load_bids_blocks",
    "load_sherlock_pmc",
    "make_network_atlas",
    "make_task_fmri",
    "make_time_locked_fmri",
    "scene_blocks",
]
