"""Sphinx extension: files generated at build time for the pages.

When the builder starts, it draws the beginning/middle/end window figure
(``docs/generated/figures/windows.png``) and writes the ``--help`` text of each ``tcssl``
command (``docs/generated/cli/*.txt``), so the pages always show the current code. Both
folders are outside version control.
"""

from pathlib import Path

import numpy as np

FIGURE = Path("generated") / "figures" / "windows.png"
CLI_DIR = Path("generated") / "cli"
COLORS = {"beginning": "#4C72B0", "middle": "#55A868", "end": "#C44E52"}


def draw_windows(path, *, segment_length=4, n_timepoints=40, offset=14, seed=0):
    """Draw a toy fMRI sequence with one (beginning, middle, end) window and save it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    t = np.arange(n_timepoints)
    slow = np.cumsum(rng.normal(size=(n_timepoints, 3)), axis=0) * 0.35
    traces = slow + 0.35 * rng.normal(size=slow.shape)

    fig, (ax, ax_text) = plt.subplots(
        2, 1, figsize=(8, 3.6), gridspec_kw={"height_ratios": [3, 1.1]}
    )
    traces = traces - traces.mean(axis=0) + 3 * np.arange(traces.shape[1])
    top = traces.max() + 0.8
    for k in range(traces.shape[1]):
        ax.plot(t, traces[:, k], color="0.35", linewidth=1)
    spans = {}
    for j, name in enumerate(COLORS):
        start = offset + j * segment_length
        stop = start + segment_length
        spans[name] = (start, stop)
        ax.axvspan(start - 0.5, stop - 0.5, color=COLORS[name], alpha=0.25)
        ax.text(
            (start + stop - 1) / 2,
            top,
            name,
            ha="center",
            va="bottom",
            color=COLORS[name],
            fontsize=10,
            fontweight="bold",
        )
    ax.set_xlim(-0.5, n_timepoints - 0.5)
    ax.set_ylim(traces.min() - 0.5, top + 1.2)
    ax.set_yticks([])
    ax.set_xlabel("time (volumes); window of 3 x segment_length drawn at a random offset")
    ax.set_title("one sequence (a block or a run), three voxels shown", fontsize=10)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)

    ax_text.axis("off")
    ax_text.text(
        0.5,
        0.75,
        "encoder(middle) <-> encoder(end): pulled together (neighbours in time)",
        ha="center",
        color=COLORS["middle"],
        fontsize=10,
        transform=ax_text.transAxes,
    )
    ax_text.text(
        0.5,
        0.25,
        "encoder(beginning) <-> encoder(end): pushed apart (farther in time)",
        ha="center",
        color=COLORS["beginning"],
        fontsize=10,
        transform=ax_text.transAxes,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_cli_help(folder):
    """Write the help of ``tcssl`` and of each subcommand to ``folder/<name>.txt``."""
    import argparse
    import os

    from sklearn_tcssl.cli import build_parser

    os.environ.setdefault("COLUMNS", "90")  # argparse wraps to the terminal width
    folder.mkdir(parents=True, exist_ok=True)
    parser = build_parser()
    helps = {"tcssl": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                helps[name] = sub.format_help()
    sections = []
    for name, text in helps.items():
        (folder / f"{name}.txt").write_text(text)
        if name != "tcssl":
            title = f"``tcssl {name}``"
            block = "\n".join("   " + line if line else "" for line in text.splitlines())
            sections.append(f"{title}\n{'-' * len(title)}\n\n.. code-block:: text\n\n{block}\n")
    (folder / "commands.rst.inc").write_text("\n".join(sections))
    return sorted(helps)


# Modules whose ``__all__`` the API page must cover, and names deliberately left out.
API_MODULES = (
    "sklearn_tcssl",
    "sklearn_tcssl.datasets",
    "sklearn_tcssl.plotting",
    "sklearn_tcssl.nn",
    "sklearn_tcssl.io",
)
API_SKIPPED = {"__version__", "FORMAT_VERSION"}


def missing_from_api(api_text):
    """Public names (``__all__`` of ``API_MODULES``) that ``api.rst`` does not mention."""
    import importlib
    import re

    mentioned = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", api_text))
    missing = []
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            if name not in API_SKIPPED and name not in mentioned:
                missing.append(f"{module_name}.{name}")
    return missing


def _on_builder_inited(app):
    from sphinx.util import logging

    srcdir = Path(app.srcdir)
    draw_windows(srcdir / FIGURE)
    write_cli_help(srcdir / CLI_DIR)
    missing = missing_from_api((srcdir / "api.rst").read_text())
    if missing:
        logging.getLogger(__name__).warning(
            "api.rst does not list these public names: %s; add them to docs/api.rst.",
            ", ".join(missing),
        )


def _skip_member(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated metadata-routing setters (``set_fit_request``...)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def escape_trailing_underscores(lines):
    """Escape ``name_`` before ``,`` or ``)`` in parentheses outside literals.

    In reStructuredText a word ending in ``_`` is a reference; numpydoc shapes such as
    ``ndarray of shape (n_features_in_,)`` would otherwise be broken links.
    """
    import re

    out = []
    for line in lines:
        parts = line.split("``")
        for k in range(0, len(parts), 2):  # even parts are outside ``literals``
            parts[k] = re.sub(
                r"\([^()]*\)",  # only inside parentheses: shapes, not parameter names
                lambda m: re.sub(r"(?<=\w)_(?=[,)])", r"\\_", m.group()),
                parts[k],
            )
        out.append("``".join(parts))
    return out


def _process_docstring(app, what, name, obj, options, lines):
    if name.startswith("sklearn_tcssl"):
        lines[:] = escape_trailing_underscores(lines)


def setup(app):
    """Register the generated files and the docstring fixes with Sphinx."""
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
