"""Sphinx configuration for the skfocal documentation.

Build with ``make -C docs html SPHINXOPTS="-W --keep-going"`` (warnings are errors). The
sphinx-gallery examples in ``examples/`` are executed during the build; a failing example
fails the build.
"""

import os
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import skfocal  # noqa: E402

# -- Project ----------------------------------------------------------------------------------
project = "skfocal"
author = "skfocal developers"
copyright = "skfocal developers"
release = skfocal.__version__
version = ".".join(release.split(".")[:2])

# -- General ----------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_scripts", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
default_role = "literal"
nitpicky = False

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skfocal {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
}
html_sidebars = {"install": [], "quickstart": [], "changelog": []}
html_show_sourcelink = False

# -- sphinx-gallery ---------------------------------------------------------------------------
# Examples run at build time; any exception in an example fails the build (sphinx-gallery's
# default; ``only_warn_on_example_error`` stays False).
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # only the plot_*.py scripts belong to the gallery (examples/ also holds the README demo)
    "ignore_pattern": r"(^|[\\/])(?!plot_)[^\\/]+\.py$",
    "doc_module": ("skfocal",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skfocal": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "show_memory": False,
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
}
# Keep the gallery fast and quiet: two CPU cores in CI, no progress bars.
os.environ.setdefault("OMP_NUM_THREADS", "2")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg", category=UserWarning)


# -- API coverage ------------------------------------------------------------------------------
# api.rst lists the public names by hand, grouped by topic. A public name missing from it is
# reported as a warning, which -W turns into a build error.
def _check_api_coverage(app):
    from sphinx.util import logging

    import skfocal.datasets
    import skfocal.losses

    public = {n for n in skfocal.__all__ if n not in {"__version__", "losses", "datasets"}}
    public |= set(skfocal.losses.__all__) | set(skfocal.datasets.__all__)
    text = (DOCS / "api.rst").read_text()
    listed = {line.strip() for line in text.splitlines() if line.startswith("   ")}
    missing = sorted(public - listed)
    if missing:
        logging.getLogger(__name__).warning(
            "public names missing from docs/api.rst: %s", ", ".join(missing)
        )


# -- Numbers computed at build time ------------------------------------------------------------
def _write_generated_tables(app):
    sys.path.insert(0, str(DOCS / "_scripts"))
    import weighting_numbers

    weighting_numbers.write_all(DOCS / "generated")


# -- Docstring adjustments ------------------------------------------------------------------
# scikit-learn generates ``set_{method}_request`` methods for metadata routing; their
# docstrings point into scikit-learn's own glossary, so they are left out of this API page.
def _skip_metadata_requests(app, what, name, obj, skip, options):
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


# numpydoc shape specs such as "of shape (n_features_in_,)" would make docutils read
# ``n_features_in_`` as a link target; quote such names as literals.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z][A-Za-z0-9_]*_)(?=[,)])")


def _quote_fitted_names(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "of shape (" in line:
            lines[i] = _TRAILING_UNDERSCORE.sub(r"``\1``", line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
    app.connect("autodoc-process-docstring", _quote_fitted_names)
    app.connect("builder-inited", _write_generated_tables)
    app.connect("builder-inited", _check_api_coverage)
