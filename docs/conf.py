"""Sphinx configuration of the sklearn-tcssl documentation (offline build)."""

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import sklearn_tcssl  # noqa: E402

# -- project --------------------------------------------------------------------------
project = "sklearn-tcssl"
author = "sklearn-tcssl developers"
copyright = "2026, sklearn-tcssl developers"  # noqa: A001
release = sklearn_tcssl.__version__
version = release

# -- general --------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
    "tcssl_docs",
    "tcssl_bad_inputs",
    "tcssl_layout",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md5"]
root_doc = "index"
default_role = "py:obj"
nitpicky = False
# intersphinx is deliberately not enabled: the build must not touch the network.

# third-party docstrings (torch, skorch, scikit-learn) rendered through inheritance or
# autosummary are not ours to fix
suppress_warnings = ["autosummary.import_cycle"]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
autodoc_mock_imports = []

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc validation: every check except the sections this API documents on purpose only
# where they help (See Also, Examples, an extended summary on each method) and the Returns
# type-only first line (we write "name : type"). A failing check fails the build.
numpydoc_validation_checks = {"all", "SA01", "EX01", "ES01", "RT02", "GL08"}
# load_bids_blocks documents its cleaning parameters as one group (see its docstring);
# YEO7_NETWORKS is a dict (documented in api.rst); private objects are not public API.
numpydoc_validation_exclude = {
    r"\.load_bids_blocks$",
    r"\.YEO7_NETWORKS$",
    r"\._[a-z]",
    r"\.__",
}

# figures drawn from stored benchmark rows (``.. plot::``): the code is not shown
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]

# -- sphinx-gallery -------------------------------------------------------------------
# Run every example in the build, offline, on 2 CPU cores in a few minutes.
# ``make html-noplot`` (sphinx-build -D plot_gallery=0) builds the pages without running them.
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "plot_gallery": "True",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "reference_url": {"sklearn_tcssl": None},
    "doc_module": ("sklearn_tcssl",),
    "backreferences_dir": "generated/backreferences",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "capture_repr": ("_repr_html_", "__repr__"),
    "write_computation_times": True,
}

# nilearn and torch emit deprecation chatter while the examples run
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings(
    "ignore", message="Matplotlib is currently using agg", category=UserWarning
)

# -- HTML -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-tcssl {release}"
html_static_path = []  # no custom static files (an empty folder is not kept by git)
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "icon_links": [],
}
html_show_sourcelink = False
