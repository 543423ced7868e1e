"""Sphinx configuration: MyST markdown, the furo theme, API reference from docstrings."""

from __future__ import annotations

from importlib.metadata import version as _version

project = "mlboot"
author = "The mlboot developers"
copyright = "2026, The mlboot developers"
release = _version("mlboot")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "conftest.py"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "mlboot"
# Code blocks wrap long lines (see _static/mlboot.css).
html_static_path = ["_static"]
html_css_files = ["mlboot.css"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = []

# No network during builds: intersphinx inventories are not fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
