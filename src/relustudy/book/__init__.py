"""Build the book: execute the chapter notebooks with papermill, then Jupyter Book 1.x.

``build_book(profile)`` runs every chapter notebook that ``_toc.yml`` lists under
``book/chapters/`` (sources in ``notebooks/<name>.ipynb``, in toc order) with the profile's
parameters injected, writes the executed copies to ``book/chapters/<name>.ipynb`` (not in git),
strips progress-bar noise from their outputs, builds the HTML with
``jupyter-book build --warningiserror`` and checks that every local link and image of the built
site resolves and that no page loads an asset from the internet.

The second half of the module holds the small helpers the chapter notebooks call (provenance
sentence, paper-vs-ours display, activation curves on a common grid, dataset caveats), so the
notebooks stay glue and the helpers are tested.
"""

from __future__ import annotations

# The one public interface the notebooks and the CLI use (`from relustudy import book`).
from .build import (
    CHAPTERS_DIR,
    NOTEBOOKS_DIR,
    PARAMETER_NAMES,
    BookError,
    build_book,
    chapter_notebooks,
    check_links,
    execute_chapter,
    find_broken_links,
    find_external_assets,
    sanitize_notebook,
    strip_progress,
    toc_files,
)
from .chapter import *  # noqa: F403  (the helpers; their __all__ below)
from .chapter import __all__ as _chapter_all

__all__ = [
    "BookError",
    "CHAPTERS_DIR",
    "NOTEBOOKS_DIR",
    "PARAMETER_NAMES",
    "build_book",
    "chapter_notebooks",
    "check_links",
    "execute_chapter",
    "find_broken_links",
    "find_external_assets",
    "sanitize_notebook",
    "strip_progress",
    "toc_files",
    *_chapter_all,
]
