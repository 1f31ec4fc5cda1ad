"""The smoke book, built once from a copy of the book's sources, and what the reader must find in
it: every page, its tables and figures, no broken link, and pages that read well in a browser.
Its runs go to the checkout's smoke store (``_build/smoke-results``), which nbval's run over
notebooks/ reads next; ``make test`` keeps this module and the notebooks in one xdist worker
(``tests/conftest.py``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser_check import browser_or_skip, unavailable
from PIL import Image

from relustudy import book
from relustudy.book import find_broken_links, find_external_assets

ROOT = Path(__file__).resolve().parents[1]
# The PDF is printed by Chromium and checked with poppler's pdftoppm and pdfimages (make pdf installs both).
PDF_TOOLS_MISSING = unavailable() or (
    None if shutil.which("pdftoppm") and shutil.which("pdfimages") else "no poppler-utils"
)


def _book_sources_copy(dest: Path) -> Path:
    """The files a book build reads (config, toc, pages, notebooks), copied to ``dest``: the test
    builds there, so a user's ``_build/html`` and ``book/chapters`` are never replaced."""
    dest.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("chapters"))
    shutil.copytree(ROOT / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


@contextlib.contextmanager
def _output_to(path: Path):
    """This process's stdout and stderr, and so its children's (the notebooks' kernels), into ``path``."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 1), os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    """The smoke book, built once per module in a copy of the book's sources (runs are cached in
    the checkout's ``_build/smoke-results``, shared with the nbval run over notebooks/); the
    checkout's own built book is left as it was."""
    shared = ROOT.parent / "shared" / "data"  # the workplace's offline copies (the Makefile's default)
    data_dir = None if os.environ.get("RELUSTUDY_DATA") or not shared.is_dir() else str(shared)
    user_book = ROOT / "_build" / "html" / "index.html"
    before = user_book.stat().st_mtime_ns if user_book.exists() else None
    root = _book_sources_copy(tmp_path_factory.mktemp("book") / "checkout")
    with _output_to(root / "build.log"):  # what `make book` would print
        html = book.build_book(
            "smoke",
            device="cpu",
            data_dir=data_dir,
            results_dir=ROOT / "_build" / "smoke-results",
            root=root,
            log=lambda line: os.write(1, f"{line}\n".encode()),  # to the file descriptor, as a terminal sees it
            pdf=PDF_TOOLS_MISSING is None,
        )
    assert html == root / "_build" / "html"
    assert (user_book.stat().st_mtime_ns if user_book.exists() else None) == before  # the user's book untouched
    return html


@pytest.mark.slow
def test_smoke_book_build(smoke_book):
    html = smoke_book
    index = html / "index.html"
    smith = html / "book" / "chapters" / "smith.html"
    assert index.is_file() and smith.is_file()
    page = smith.read_text()
    assert "<table" in page
    assert "Table 2" in page and "Table 4" in page and "JPEG" in page
    assert "<img" in page  # the activation-probability figure
    summary = (html / "book" / "chapters" / "summary.html").read_text()
    assert "<table" in summary
    assert "summary-verdicts.csv" in summary and list((html / "_downloads").rglob("summary-verdicts.csv"))
    # the summary opens with the verdicts at a glance: counts, bars and the forest plot before any claim row
    glance, rows = summary.index('id="at-a-glance"'), summary.index("relustudy-claims")
    assert summary.count("<img", glance, rows) >= 2 and "Every claim with numbers" in summary[glance:rows]
    # the introduction pastes the summary's counts and bars (glue), and the methods page the fault suite's line
    intro = (html / "book" / "intro.html").read_text()
    at = intro.index('id="at-a-glance"')
    assert "not replicated" in intro[at:] and "<img" in intro[at : intro.index('id="what-is-replicated"')]
    assert "Markdown object" not in intro
    methods = (html / "book" / "methods.html").read_text()
    assert "fault-suite record" in methods or "trials</strong>" in methods
    assert "smith-records.csv" in page and "Reproduce this page" in page
    assert "<figcaption" in page and "Fig. " in page  # numbered, captioned figures
    assert find_broken_links(html) == [] and find_external_assets(html) == []


@pytest.mark.slow
def test_a_successful_build_prints_no_error_line(smoke_book):
    log = (smoke_book.parents[1] / "build.log").read_text(errors="replace").splitlines()
    assert any(line.startswith("book: ") for line in log)  # the log was captured
    errors = [line for line in log if "ERROR" in line or "Traceback" in line or "KeyboardInterrupt" in line]
    assert errors == [], "\n".join(errors)


@pytest.mark.slow
def test_the_smoke_book_reads_well_in_a_browser(smoke_book):
    bc = browser_or_skip()
    pages = [str(p.relative_to(smoke_book)) for p in sorted(smoke_book.rglob("*.html")) if "_static" not in p.parts]
    pages = [p for p in pages if p not in ("search.html", "genindex.html")]
    assert "book/chapters/summary.html" in pages
    with bc.serve(smoke_book) as url:
        problems = bc.check_pages(url, pages, screenshots=ROOT / "_build" / "browser", search="PReLU")
        problems += bc.reader_problems(url, pages, bc.registry_keys())
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
@pytest.mark.skipif(
    PDF_TOOLS_MISSING is not None, reason=f"the PDF cannot be printed and checked here: {PDF_TOOLS_MISSING}"
)
def test_the_book_is_one_pdf_that_the_intro_links(smoke_book, tmp_path):
    intro = (smoke_book / "book" / "intro.html").read_text()
    assert "Download the whole book as one PDF" in intro
    linked = list((smoke_book / "_downloads").rglob(book.PDF_NAME_IN_BOOK))
    assert len(linked) == 1
    pages = subprocess.run(["pdftoppm", "-r", "20", "-png", str(linked[0]), str(tmp_path / "p")], check=True)
    assert pages.returncode == 0 and len(list(tmp_path.glob("p-*.png"))) >= 10  # every chapter, rendered
    listed = subprocess.run(["pdfimages", "-list", str(linked[0])], capture_output=True, text=True, check=True)
    in_pdf = {(int(line.split()[3]), int(line.split()[4])) for line in listed.stdout.splitlines()[2:]}
    shown = {  # the images the HTML pages show
        (page.parent / src).resolve()
        for page in smoke_book.rglob("*.html")
        for src in re.findall(r'<img[^>]*src="([^"]+\.png)"', page.read_text())
    }
    figures = {  # the pages' figures (each records its smallest text), by their pixel size
        im.size for im in (Image.open(f) for f in shown if f.is_file()) if book.TEXT_SIZE_KEY in im.info
    }
    assert figures and figures <= in_pdf, sorted(figures - in_pdf)
