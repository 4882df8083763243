"""Datasets: a task-fMRI simulator and block extraction from 4D runs and BIDS datasets."""

from sklearn_tcssl.datasets._bids import load_bids_blocks
from sklearn_tcssl.datasets._blocks import extract_blocks
from sklearn_tcssl.datasets._simulate import make_network_atlas, make_task_fmri

__all__ = ["extract_blocks", "load_bids_blocks", "make_network_atlas", "make_task_fmri"]
