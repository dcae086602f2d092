"""Sphinx configuration of the documentation site (`make docs`: docs/_build/html).

Sphinx rather than MkDocs: autodoc imports the package and reads the docstrings of the
compiled extension (PyO3 turns the Rust doc comments into ``__doc__``) the same way as those
of the Python modules, MyST lets the existing Markdown pages (API.md, stores.md, ...) be used
as they are, and ``-W --keep-going`` makes every warning (a broken reference, a malformed
docstring) fail the build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import textsecure

project = "textsecure"
author = "the textsecure authors"
copyright = "the textsecure authors; MIT OR Apache-2.0"
release = textsecure.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"


html_theme = "alabaster"
html_title = f"textsecure {release}"
html_theme_options = {"description": "The Signal protocol for Python, with a Rust core"}


def _list_benchmarks(app: Any, docname: str, source: list[str]) -> None:
    """docs/benchmarks-*.md are written by `make bench-stores` and may be absent: the
    development page lists those that exist (a toctree glob matching nothing would warn)."""
    if docname == "development":
        found = sorted(p.stem for p in Path(__file__).parent.glob("benchmarks-*.md"))
        if found:
            entries = "\n".join(found)
            source[0] += f"\n```{{toctree}}\n:maxdepth: 1\n:caption: Benchmarks\n\n{entries}\n```\n"


def _reread_development(app: Any, env: Any, added: Any, changed: Any, removed: Any) -> list[str]:
    """An incremental build reads the development page again: a benchmarks file may have
    appeared since."""
    return ["development"]


def setup(app: Any) -> None:
    app.connect("source-read", _list_benchmarks)
    app.connect("env-get-outdated", _reread_development)
