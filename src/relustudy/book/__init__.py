"""Build the book: execute the chapter notebooks with papermill, then Jupyter Book 1.x.

``build_book(profile)`` runs every chapter notebook that ``_toc.yml`` lists under
``book/chapters/`` (sources in ``notebooks/<name>.ipynb``, in toc order) with the profile's
parameters injected, writes the executed copies to ``book/chapters/<name>.ipynb`` (not in git),
strips progress-bar noise from their outputs, builds the HTML with
``jupyter-book build --warningiserror`` and checks that every local link and image of the built
site resolves and that no page loads an asset from the internet.

The helpers the chapter notebooks call live in modules by purpose, each with its ``__all__``:
:mod:`.base` (names, caveats, palette, table styling), :mod:`.runs` (which runs a chapter shows,
provenance, profiles, reproduce/download/cite boxes), :mod:`.tables` (result tables),
:mod:`.figures` (figure frames), :mod:`.verdicts` (claims tables and figures) and
:mod:`.engineering` (benchmarks, overhead, faults, scheduling) and :mod:`.page` (the header, findings
and verdicts every chapter page shares). Notebooks use ``book.<name>``.
"""

from __future__ import annotations

from . import base, engineering, figures, page, runs, tables, verdicts
from .base import *  # noqa: F403  (each helper module's __all__, listed below)

# The one public interface the notebooks and the CLI use (`from relustudy import book`).
from .build import (
    CHAPTERS_DIR,
    NOTEBOOKS_DIR,
    PARAMETER_NAMES,
    PDF_NAME_IN_BOOK,
    BookError,
    build_book,
    build_pdf,
    chapter_notebooks,
    check_links,
    execute_chapter,
    find_broken_links,
    find_external_assets,
    print_pdf,
    sanitize_notebook,
    strip_progress,
    toc_files,
)
from .engineering import *  # noqa: F403
from .figures import *  # noqa: F403
from .page import *  # noqa: F403
from .runs import *  # noqa: F403
from .tables import *  # noqa: F403
from .verdicts import *  # noqa: F403

__all__ = [
    "BookError",
    "CHAPTERS_DIR",
    "NOTEBOOKS_DIR",
    "PARAMETER_NAMES",
    "PDF_NAME_IN_BOOK",
    "build_book",
    "build_pdf",
    "print_pdf",
    "chapter_notebooks",
    "check_links",
    "execute_chapter",
    "find_broken_links",
    "find_external_assets",
    "sanitize_notebook",
    "strip_progress",
    "toc_files",
    *base.__all__,
    *runs.__all__,
    *tables.__all__,
    *figures.__all__,
    *verdicts.__all__,
    *page.__all__,
    *engineering.__all__,
]

# A page's figures record their smallest text (the reader check's legibility test).
figures.show_figures_with_text_size()
