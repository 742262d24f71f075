"""Sphinx configuration. Built by `tox -e docs` with warnings as errors."""

from __future__ import annotations

import re
from pathlib import Path

_init = Path(__file__).parent.parent / "src" / "django_imagekit_storage" / "__init__.py"
_match = re.search(r'^__version__ = "([^"]+)"', _init.read_text(), re.MULTILINE)
assert _match is not None

project = "django-imagekit-storage"
copyright = "django-imagekit-storage contributors"
release = _match.group(1)
version = release

extensions = ["myst_parser"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

html_theme = "furo"
html_title = f"django-imagekit-storage {release}"
