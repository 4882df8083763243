"""The ``tcssl`` command (demo, decode, pretrain), its input checks and progress lines.

Layer: the top (imports the rest; nothing imports it). Heavy modules load only when a
subcommand runs, so ``tcssl --help`` answers without torch.
"""

from sklearn_tcssl.cli._main import main
from sklearn_tcssl.cli._parser import build_parser

__all__ = ["build_parser", "main"]
