"""The book's build pipeline: the table of contents, executing the chapter notebooks with papermill
(sanitised for nbval and the published pages), Jupyter Book 1.x, and the local-link and offline-asset
checks. The helpers the notebooks call are in the package's other modules (see :mod:`relustudy.book`)."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nbformat
import yaml

from ..experiments import project_root
from ..notebook_params import validate
from ..provenance import build_stamp
from ..reference import bibliography_bibtex
from .base import TRAIN_ENV

CHAPTERS_DIR = "book/chapters"  # executed copies (gitignored)
NOTEBOOKS_DIR = "notebooks"  # sources, stored without outputs
KERNEL = "python3"
PARAMETER_NAMES = ("profile", "seeds", "device", "data_dir", "results_dir")
BIB_FILE = "book/references.bib"  # written from the source registry before every build
BIB_HEADER = "% Written by relustudy from the source registry (relustudy.sources); edit the sources, not this file.\n\n"


class BookError(RuntimeError):
    """The book could not be built: a notebook failed, Sphinx warned, or a link is broken."""


# ---------------------------------------------------------------------------------------------
# The table of contents
# ---------------------------------------------------------------------------------------------
def toc_files(root: Path | str) -> list[str]:
    """Every document of ``_toc.yml`` (root first), as written there: paths without suffix."""

    toc_path = Path(root) / "_toc.yml"
    if not toc_path.is_file():
        raise BookError(f"no _toc.yml in {root}")
    toc = yaml.safe_load(toc_path.read_text()) or {}
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                out.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    if "root" in toc:
        out.append(str(toc["root"]))
    walk(toc)
    return [_strip_suffix(f) for f in out]


def _strip_suffix(path: str) -> str:
    for suffix in (".ipynb", ".md"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def chapter_notebooks(root: Path | str) -> list[str]:
    """Names of the notebooks the toc lists under ``book/chapters/``, in toc order."""
    prefix = CHAPTERS_DIR + "/"
    return [f[len(prefix) :] for f in toc_files(root) if f.startswith(prefix)]


# ---------------------------------------------------------------------------------------------
# Output sanitising
# ---------------------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# A tqdm bar: "42%|####      | 21/50 [00:01<00:02, 9.9it/s]" (any prefix, ascii or unicode bar).
_TQDM = re.compile(r"\d+%\|.*\|\s*\d+(\.\d+)?[kMG]?/\d+(\.\d+)?[kMG]?\s*\[|\|\s*\d+(\.\d+)?[kMG]?/\d*\??\s*\[\d+:\d+")
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def strip_progress(text: str) -> str:
    """Remove ANSI escapes, carriage-return overwrites and tqdm progress lines from stream text.

    Each line keeps only what a terminal would finally show (the text after its last ``\\r``);
    lines that are tqdm bars are dropped entirely.
    """
    text = _ANSI.sub("", text)
    kept = []
    for line in text.split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p.strip()]
            line = parts[-1] if parts else ""
        if _TQDM.search(line):
            continue
        kept.append(line)
    return "\n".join(kept)


def _clean_output(out: dict[str, Any]) -> bool:
    """Clean one output in place; False when nothing is left to publish (an empty stream, a
    widget with no fallback but its repr)."""
    kind = out.get("output_type")
    if kind == "stream":
        text = out.get("text", "")
        text = strip_progress("".join(text) if isinstance(text, list) else text)
        out["text"] = text
        return bool(text.strip())
    if kind in ("display_data", "execute_result"):
        data = out.get("data", {})
        if _WIDGET_MIME in data:
            data.pop(_WIDGET_MIME)
            if not data or set(data) == {"text/plain"} and _looks_like_widget_repr(data["text/plain"]):
                return False
    elif kind == "error":
        out["traceback"] = [_ANSI.sub("", line) for line in out.get("traceback", [])]
    return True


def sanitize_notebook(nb: Any) -> Any:
    """Clean an executed notebook in place (and return it) for publishing.

    Stream outputs lose ANSI codes and progress bars (an output left empty is dropped);
    ipywidgets outputs (tqdm.auto bars) are replaced by their plain-text fallback, since a
    widget needs JavaScript from a CDN; error tracebacks lose their ANSI colour codes. When
    papermill injected parameters, the notebook's default ``parameters`` cell is tagged
    ``remove-cell`` so the book shows only the values actually used; the injected cell itself and
    hidden-code cells without output are removed from the page too (the banner states the values).
    """
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = [out for out in cell.get("outputs", []) if _clean_output(out)]
    nb.get("metadata", {}).pop("widgets", None)
    # With papermill's injected-parameters cell present, the notebook's own defaults cell only
    # repeats (different) values: hide it from the book, keep it in the file.
    cells = nb.get("cells", [])
    if any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells):
        for c in cells:
            tags = c.get("metadata", {}).get("tags", [])
            if "parameters" in tags and "remove-cell" not in tags:
                c["metadata"]["tags"] = [*tags, "remove-cell"]
    nb["cells"] = cells = _split_figure_cells(cells)
    # A page opens with results, not set-up: the injected values (the page's banner and reproduce box
    # state them) and hidden-code cells that show nothing are left out of the page, kept in the file.
    for c in cells:
        tags = c.get("metadata", {}).get("tags", [])
        silent = c.get("cell_type") == "code" and not c.get("outputs") and "hide-input" in tags
        if ("injected-parameters" in tags or silent) and "remove-cell" not in tags:
            c.setdefault("metadata", {})["tags"] = [*tags, "remove-cell"]
    return nb


_IMAGE_MIMES = ("image/png", "image/svg+xml", "image/jpeg")


def _split_figure_cells(cells: list[Any]) -> list[Any]:
    """A cell with a figure caption (``mystnb.figure``) and other outputs besides its one image
    (a paragraph, a table) would number and caption every output as a figure: its other outputs
    move into output-only cells before and after it, so the caption stays on the image; a caption
    with no image (nothing drawn) is dropped. The figure's image gets its caption's first sentence
    as alt text (else the file path is read out)."""
    out = []
    for cell in cells:
        meta = cell.get("metadata", {})
        figure = (meta.get("mystnb") or {}).get("figure")
        outputs = cell.get("outputs", []) if cell.get("cell_type") == "code" else []
        images = [i for i, o in enumerate(outputs) if any(m in o.get("data", {}) for m in _IMAGE_MIMES)]
        if figure and not images:  # no figure drawn (no records for it): nothing to number or caption
            del meta["mystnb"]["figure"]
        if not figure or len(images) != 1:
            out.append(cell)
            continue
        caption = str(figure.get("caption", ""))
        image_meta = meta["mystnb"].setdefault("image", {})
        image_meta.setdefault("alt", caption.split(". ")[0].rstrip(".") if caption else "figure")
        k = images[0]

        # a collapsed cell's parts stay collapsed, under the same prompt
        folded = "hide-output" in meta.get("tags", [])
        prompts = {k: v for k, v in meta["mystnb"].items() if k.startswith("code_prompt")} if folded else {}

        def outputs_only(part: list[Any], cell: dict = cell, folded: bool = folded, prompts: dict = prompts) -> Any:
            return nbformat.from_dict(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {
                        "tags": ["remove-input", *(["hide-output"] if folded else [])],
                        **({"mystnb": dict(prompts)} if prompts else {}),
                    },
                    "outputs": part,
                    "source": "# outputs of the figure cell beside this one",  # myst-nb skips empty cells
                    **({"id": f"{cell['id']}-{len(out)}"} if "id" in cell else {}),
                }
            )

        if outputs[:k]:
            out.append(outputs_only(outputs[:k]))
        cell["outputs"] = [outputs[k]]
        out.append(cell)
        if outputs[k + 1 :]:
            out.append(outputs_only(outputs[k + 1 :]))
    return out


def _looks_like_widget_repr(text: Any) -> bool:
    text = "".join(text) if isinstance(text, list) else str(text)
    return "Box(" in text or "Progress(" in text or _TQDM.search(text) is not None or not text.strip()


# ---------------------------------------------------------------------------------------------
# Link checking
# ---------------------------------------------------------------------------------------------
_LINK_ATTRS = {
    "a": "href",
    "link": "href",
    "area": "href",
    "img": "src",
    "script": "src",
    "iframe": "src",
    "source": "src",
    "embed": "src",
    "video": "src",
    "audio": "src",
}
# Tags whose URL the browser *loads* when it shows the page (a plain <a> is only a link out).
_LOADED = {"img", "script", "iframe", "source", "embed", "video", "audio"}
_LOADED_LINK_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "manifest", "prefetch"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, bool]] = []  # (tag, url, loaded)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = _LINK_ATTRS.get(tag)
        if attr is None:
            return
        values = dict(attrs)
        url = values.get(attr)
        if url is None:
            return
        loaded = tag in _LOADED or (
            tag == "link" and bool(set((values.get("rel") or "").lower().split()) & _LOADED_LINK_RELS)
        )
        self.refs.append((tag, url.strip(), loaded))

    handle_startendtag = handle_starttag


def _is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


# Folders of a Sphinx site that hold assets, not pages (themes copy Jinja macro templates named
# *.html into _static/; they are never served as pages).
_NOT_PAGES = ("_static", "_sources", ".doctrees")


def _html_files(html_dir: Path) -> list[Path]:
    return sorted(
        p for p in html_dir.rglob("*.html") if p.is_file() and p.relative_to(html_dir).parts[0] not in _NOT_PAGES
    )


def _parse(page: Path) -> list[tuple[str, str, bool]]:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.refs


def find_broken_links(html_dir: Path | str) -> list[str]:
    """Local ``href``/``src`` targets of the HTML files under ``html_dir`` that do not exist.

    Links with a scheme (http, https, mailto, data, ...) and pure ``#anchor`` links are skipped;
    ``page.html#x`` and ``page.html?v=1`` are checked for ``page.html``. A link to a folder needs
    an ``index.html`` in it. Returns ``"page.html: url"`` strings, sorted.
    """
    html_dir = Path(html_dir).resolve()
    broken = []
    for page in _html_files(html_dir):
        for _tag, url, _loaded in _parse(page):
            if not url or url.startswith("#") or _is_external(url):
                continue
            path = unquote(urlsplit(url).path)
            if not path:
                continue
            target = (html_dir / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(html_dir)}: {url}")
    return sorted(set(broken))


_CSS_REMOTE = re.compile(r"""(@import\s+(url\()?\s*["']?\s*(https?:)?//)|(url\(\s*["']?\s*(https?:)?//)""", re.I)


def find_external_assets(html_dir: Path | str) -> list[str]:
    """Assets the built site would fetch from the internet: scripts, stylesheets, images,
    frames with an absolute URL, and ``@import``/``url()`` of remote files in its CSS.
    (Plain links out, ``<a href="https://...">``, are fine and not reported.)"""
    html_dir = Path(html_dir).resolve()
    found = []
    for page in _html_files(html_dir):
        for tag, url, loaded in _parse(page):
            if loaded and _is_external(url) and not url.startswith("data:"):
                found.append(f"{page.relative_to(html_dir)}: <{tag}> {url}")
    for css in sorted(html_dir.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for m in _CSS_REMOTE.finditer(text):
            snippet = text[m.start() : m.start() + 80].split(")")[0]
            found.append(f"{css.relative_to(html_dir)}: {snippet}")
    return sorted(set(found))


def check_links(html_dir: Path | str) -> None:
    """Raise :class:`BookError` listing every broken local link or image under ``html_dir``."""
    html_dir = Path(html_dir)
    if not html_dir.is_dir():
        raise BookError(f"no built HTML at {html_dir}")
    broken = find_broken_links(html_dir)
    if broken:
        raise BookError(f"{len(broken)} broken local link(s) in {html_dir}:\n  " + "\n  ".join(broken))


# ---------------------------------------------------------------------------------------------
# Execution and build
# ---------------------------------------------------------------------------------------------
def _tail(text: str, n: int) -> str:
    lines = [line for line in _ANSI.sub("", text).rstrip().splitlines()]
    return "\n".join(lines[-n:])


def execute_chapter(source: Path, target: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """Run one notebook through papermill into ``target`` and sanitise the executed copy.

    A failing cell raises :class:`BookError` naming the notebook, the executed copy (papermill
    writes it, error included) and the error's last lines.
    """
    import papermill as pm  # noqa: PLC0415 (optional dependency)
    from papermill.exceptions import PapermillExecutionError  # noqa: PLC0415 (optional dependency)

    from .kernel import QuietShutdownKernelManager  # noqa: PLC0415 (needs the optional jupyter_client)

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(source),
            str(target),
            parameters=parameters,
            kernel_name=KERNEL,
            kernel_manager_class=QuietShutdownKernelManager,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            report_mode=False,
            # ipykernel warns on every start about TCP without CurveZMQ keys (local kernel): noise
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as e:
        tb = _tail("\n".join(e.traceback or []), 8)
        raise BookError(
            f"notebook {source} failed in cell {e.cell_index} (In [{e.exec_count}]): {e.ename}: {e.evalue}\n"
            f"executed copy with the error: {target}\nlast lines of the traceback:\n{tb}"
        ) from None
    except Exception as e:  # kernel died, bad notebook JSON, missing kernel, ...
        raise BookError(
            f"notebook {source} could not be executed ({type(e).__name__}: {_tail(str(e), 8)}); "
            f"executed copy (if any): {target}"
        ) from None
    nb = nbformat.read(str(target), as_version=4)
    nbformat.write(sanitize_notebook(nb), str(target))


def write_bibliography(root: Path) -> Path:
    """``<root>/book/references.bib`` from the source registry (rewritten only when it differs)."""
    path = root / BIB_FILE
    text = BIB_HEADER + bibliography_bibtex()
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


PDF_NAME_IN_BOOK = "relustudy.pdf"  # where the introduction links the PDF (beside book/intro.md)


def write_build_config(
    root: Path, profile: str, when: datetime.datetime | None = None, *, for_pdf: bool = False
) -> Path:
    """``_config.yml`` with this build's stamp (:func:`build_stamp`): the copyright year and a
    footer line with the date, commit, version and profile; written to
    ``<root>/_build/_config.build.yml`` (the file ``jupyter-book build --config`` reads)."""

    stamp = build_stamp(profile, when)
    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    config["copyright"] = stamp["year"]
    html = config.setdefault("html", {})
    html["extra_footer"] = (
        f'<p class="build-stamp">Built {stamp["date"]} from commit {html_escape(stamp["commit"])}, relustudy '
        f"{html_escape(stamp['version'])}, {html_escape(stamp['profile'])} profile.</p>"
    )
    # the introduction's link to the PDF, where this build made one (relustudy book --pdf); the
    # PDF itself (``for_pdf``) says nothing about it
    pdf = (root / "book" / PDF_NAME_IN_BOOK).is_file()
    parse = config.setdefault("parse", {})
    parse.setdefault("myst_substitutions", {})["pdf_link"] = (
        ""
        if for_pdf
        else f"[Download the whole book as one PDF]({PDF_NAME_IN_BOOK})."
        if pdf
        else "`make pdf` builds the whole book as one PDF."
    )
    path = root / "_build" / "_config.build.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def _sphinx_problems(output: str) -> str:
    lines = _ANSI.sub("", output).splitlines()
    hits = [line for line in lines if re.search(r"WARNING|ERROR|Error|error:|Exception", line)]
    return "\n".join(hits[-15:]) if hits else _tail(output, 25)


def build_book(
    profile: str = "quick",
    *,
    seeds: Sequence[int] | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    root: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    pdf: bool = False,
) -> Path:
    """Execute every chapter notebook of the toc for ``profile`` and build the HTML book (with
    ``pdf``, first the whole book as one PDF, which the introduction then links:
    :mod:`relustudy.book.pdf`).

    Returns the folder of the built site (``<root>/_build/html``). Runs that already have a
    complete record in the results store are reused, not retrained. Raises :class:`BookError`
    (one clear message) when a notebook fails, Sphinx emits a warning, a local link is broken or
    a page would load an asset from the internet; bad parameters raise ``ValueError`` first.
    """

    say = log or (lambda _msg: None)
    root = Path(root).resolve() if root is not None else project_root()
    if not (root / "_toc.yml").is_file() or not (root / "_config.yml").is_file():
        raise BookError(f"{root} is not the project root (no _toc.yml/_config.yml)")
    parameters = _book_parameters(profile, seeds, device, data_dir, results_dir)
    names = chapter_notebooks(root)
    missing = [n for n in names if not (root / NOTEBOOKS_DIR / f"{n}.ipynb").is_file()]
    if missing:
        raise BookError("the toc lists chapter(s) without a notebook in notebooks/: " + ", ".join(missing))
    t_all = time.perf_counter()
    _execute_chapters(root, names, parameters, say)
    t0 = time.perf_counter()
    if pdf:
        shutil.copy2(build_pdf(root, parameters["profile"], say), root / "book" / PDF_NAME_IN_BOOK)
    else:
        (root / "book" / PDF_NAME_IN_BOOK).unlink(missing_ok=True)  # a PDF of an earlier build is not this one
    html = _build_html(root, parameters["profile"], say)
    say(
        f"book: HTML built in {time.perf_counter() - t0:.0f} s; total {time.perf_counter() - t_all:.0f} s -> {html / 'index.html'}"
    )
    return html


def _book_parameters(
    profile: str, seeds: Sequence[int] | None, device: str, data_dir: str | Path | None, results_dir: str | Path | None
) -> dict[str, Any]:
    """The chapters' papermill parameters, validated now, so that a bad value fails before any
    kernel starts; relative paths are taken from the caller's cwd (the notebooks run in the root)."""
    validated = validate(
        profile=profile,
        seeds=list(seeds) if seeds is not None else None,
        device=device,
        data_dir=data_dir,
        results_dir=results_dir,
    )
    parameters = {
        "profile": validated.profile,
        "seeds": list(validated.seeds) if validated.seeds is not None else None,
        "device": validated.device,
        "data_dir": str(validated.data_dir) if validated.data_dir is not None else None,
        # None keeps the published parameter cell free of machine paths; the kernel resolves it
        # to the same default_results_dir(profile), since it runs in root.
        "results_dir": str(validated.results_dir) if results_dir is not None else None,
    }
    assert tuple(parameters) == PARAMETER_NAMES
    json.dumps(parameters)  # plain JSON values only
    return parameters


def _execute_chapters(root: Path, names: list[str], parameters: dict[str, Any], say: Callable[[str], None]) -> None:
    """Execute each chapter notebook into book/chapters/. The book is asked for: its kernels may
    train what the profile lacks (a notebook run by hand stops first and says what it would train)."""
    before = os.environ.get(TRAIN_ENV)
    os.environ[TRAIN_ENV] = "1"
    try:
        for name in names:
            source = root / NOTEBOOKS_DIR / f"{name}.ipynb"
            target = root / CHAPTERS_DIR / f"{name}.ipynb"
            t0 = time.perf_counter()
            say(
                f"book: executing {source.relative_to(root)} -> {target.relative_to(root)} (profile {parameters['profile']})"
            )
            execute_chapter(source, target, parameters, cwd=root)
            say(f"book: {name} done in {time.perf_counter() - t0:.0f} s")
    finally:
        if before is None:
            os.environ.pop(TRAIN_ENV, None)
        else:
            os.environ[TRAIN_ENV] = before


def _build_html(root: Path, profile: str, say: Callable[[str], None]) -> Path:
    """jupyter-book's HTML build of the executed chapters, with warnings as errors, then the
    checks of the built site (local links, no asset from the internet)."""
    write_bibliography(root)
    config = write_build_config(root, profile)
    say("book: jupyter-book build --warningiserror --builder html")
    cmd = [
        *_jupyter_book_command(),
        "build",
        str(root),
        "--config",
        str(config),
        "--warningiserror",
        "--builder",
        "html",
    ]
    env = {**os.environ, "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning")}
    proc = subprocess.run(cmd, cwd=str(root), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise BookError(
            f"jupyter-book build failed (exit {proc.returncode}):\n{_sphinx_problems(proc.stdout + proc.stderr)}"
        )
    html = root / "_build" / "html"
    check_links(html)
    remote = find_external_assets(html)
    if remote:
        raise BookError(
            f"{len(remote)} asset(s) of the built book would be fetched from the internet:\n  " + "\n  ".join(remote)
        )
    return html


# ------------------------------------------------------------------ the PDF
# The whole book as one PDF: Jupyter Book's single-page HTML build of the executed chapters,
# printed by Chromium (Debian's chromium, driven by Playwright) on A4. Before printing, the page is
# laid out as print lays it out (print media, the A4 page's printable width) and every table and
# figure is measured: one that would run past the margin is a BookError naming it, not a clipped page.
# A4 at CSS's 96 px an inch is 794 px wide; 12 mm margins leave 703 px for the page's content.
A4_PRINTABLE_PX = 703
MARGIN = "12mm"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking")

# Folded blocks on a page (details elements; sphinx-togglebutton's dropdowns) opened for print.
_UNFOLD_JS = """() => {
  for (const d of document.querySelectorAll('details')) d.open = true;
  for (const el of document.querySelectorAll('.toggle-hidden')) el.classList.remove('toggle-hidden');
  for (const img of document.images) img.loading = 'eager';
}"""

# What runs past the printable width, measured under print media (the theme's print styles hide its
# navigation): tables, figures and code blocks wider than the page's content box.
_OVERFLOW_JS = """(width) => {
  const out = [];
  for (const el of document.querySelectorAll('table, img, pre, figure')) {
    if (el.offsetParent === null) continue;
    const r = el.getBoundingClientRect();
    if (r.right > width + 1) {
      const cap = el.querySelector && el.querySelector('caption');
      const what = el.tagName.toLowerCase() + ' ' + ((cap ? cap.innerText : el.alt || el.innerText || '') + '').slice(0, 60);
      out.push({what: what, right: Math.round(r.right)});
    }
  }
  return out;
}"""


def chromium() -> str:
    """The Chromium the PDF is printed with; one clear error where there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BookError(
            "the PDF needs Chromium: install Debian's chromium (apt-get install chromium), as make pdf does"
        )
    return found


def print_pdf(page: Path, out: Path) -> int:
    """Print the HTML file ``page`` to ``out`` (A4, backgrounds, the theme's print styles) after
    checking that nothing runs past the printable width; returns the number of images on the page."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dependency)

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=list(CHROMIUM_ARGS))
        try:
            view = browser.new_page(viewport={"width": A4_PRINTABLE_PX, "height": 1000})
            view.goto(page.resolve().as_uri(), wait_until="load")
            view.emulate_media(media="print")
            view.evaluate(_UNFOLD_JS)  # paper cannot be clicked open: every folded block prints open
            wide = view.evaluate(_OVERFLOW_JS, A4_PRINTABLE_PX)
            if wide:
                lines = "\n  ".join(f"{w['what']!r} reaches {w['right']} px" for w in wide[:10])
                raise BookError(
                    f"{len(wide)} element(s) would run past the PDF's {A4_PRINTABLE_PX} px margin:\n  {lines}"
                )
            view.wait_for_load_state("load")
            view.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
            images = view.evaluate("() => [...document.images].filter(i => i.naturalWidth > 0).length")
            margins = dict.fromkeys(("top", "bottom", "left", "right"), MARGIN)
            view.pdf(path=str(out), format="A4", print_background=True, margin=margins)
        finally:
            browser.close()
    return int(images)


def build_pdf(root: Path, profile: str, say: Callable[[str], None]) -> Path:
    """The book's executed chapters as one PDF, ``<root>/_build/pdf/relustudy.pdf``."""
    config = write_build_config(root, profile, for_pdf=True)
    say("book: jupyter-book build --builder singlehtml (for the PDF)")
    cmd = [*_jupyter_book_command(), "build", str(root), "--config", str(config), "--builder", "singlehtml"]
    proc = subprocess.run(cmd, cwd=str(root), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookError(
            f"the single-page build failed (exit {proc.returncode}):\n{_sphinx_problems(proc.stdout + proc.stderr)}"
        )
    site = root / "_build" / "singlehtml"
    page = site / "book" / "intro.html"  # the whole book (index.html redirects to it)
    if not page.is_file():
        raise BookError(f"the single-page build wrote no {page}")
    # The page sits in book/ but names some assets as if it sat at the site's root (_static/...,
    # _images/...) and others from book/ (../_images/...): both resolve once book/ sees the root's.
    for name in ("_static", "_images", "_downloads"):
        link = page.parent / name
        if (site / name).is_dir() and not link.exists():
            link.symlink_to(Path("..") / name, target_is_directory=True)
    out = root / "_build" / "pdf" / PDF_NAME_IN_BOOK
    images = print_pdf(page, out)
    say(f"book: PDF printed ({images} images) -> {out}")
    return out
