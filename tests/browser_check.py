"""Open built book pages in headless Chromium (Debian's ``chromium``, driven by Playwright) and
list what a reader would find broken: console errors, images that do not decode, claims rows
whose verdict lies outside a 1400x900 viewport or needs horizontal scrolling, a search that finds
nothing. Used by tests/test_smoke_book.py; the checker itself is tested (tests/test_book.py) on a
deliberately broken site."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import re
import shutil
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import relustudy.sources  # noqa: F401  (registers the experiments and claims)
from relustudy.activations import ACTIVATIONS
from relustudy.book.figures import TEXT_SIZE_KEY
from relustudy.claims import CLAIMS
from relustudy.data import DATASETS
from relustudy.experiments import EXPERIMENTS
from relustudy.metrics import METRICS
from relustudy.models import MODELS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium keeps dialling out on this closed network.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1400, "height": 900}
# Failed loads that are not the book's fault (the browser asks every site for one).
CONSOLE_ALLOW = ("favicon.ico",)
# Console errors of Jupyter Book 1.x's theme itself, on every page of any book it builds (not ours):
# sphinx-thebe's script declares THEBE_JS_URL twice, and pydata-sphinx-theme reads an unset
# theme mode from localStorage before resetting it to auto.
THEME_CONSOLE_ALLOW = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")


def unavailable() -> str | None:
    """Why the browser check cannot run here ("" -> it can)."""
    try:
        import playwright.sync_api  # noqa: F401, PLC0415 (optional dependency)
    except ImportError:
        return "playwright is not installed (pip install playwright; see requirements.lock)"
    if CHROMIUM is None:
        return "no Chromium on this machine (Debian: apt-get install chromium)"
    return None


def browser_or_skip():
    """This module, or the test skipped saying why the browser check cannot run here."""
    why = unavailable()
    if why:
        pytest.skip(f"browser check skipped: {why}")
    return sys.modules[__name__]


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free localhost port for the duration; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_LAYOUT_JS = """() => {
  const vw = window.innerWidth;
  const out = {scrollWidth: document.scrollingElement.scrollWidth, vw: vw, images: [], verdicts: []};
  for (const img of document.images) {
    out.images.push({src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0});
  }
  for (const row of document.querySelectorAll('table.relustudy-claims tbody tr')) {
    const cell = row.lastElementChild;
    const r = cell.getBoundingClientRect();
    let clipped = false;  // an ancestor that scrolls or hides overflow and cuts the cell off
    for (let el = cell.parentElement; el; el = el.parentElement) {
      const style = getComputedStyle(el);
      if (/(auto|scroll|hidden)/.test(style.overflowX)) {
        const box = el.getBoundingClientRect();
        if (r.right > box.right + 1) { clipped = true; break; }
      }
    }
    out.verdicts.push({text: cell.innerText.trim(), right: r.right, clipped: clipped});
  }
  return out;
}"""


def check_pages(
    base_url: str, pages: list[str], screenshots: Path | None = None, search: str | None = None
) -> list[str]:
    """Problems found on ``pages`` (paths under ``base_url``), one line each; screenshots of each
    page go to ``screenshots`` when given. ``search``: a term the site's search must find."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dependency)

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport=VIEWPORT)
            console: list[str] = []
            failed: list[str] = []
            # a failed load is reported once, by its URL (its console line names none)
            page.on(
                "console",
                lambda m: (
                    console.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )
            page.on("pageerror", lambda e: console.append(str(e)))
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            for path in pages:
                console.clear()
                failed.clear()
                page.goto(f"{base_url}/{path}", wait_until="load")
                page.wait_for_timeout(200)
                info = page.evaluate(_LAYOUT_JS)
                for msg in console:
                    if not any(a in msg for a in THEME_CONSOLE_ALLOW):
                        problems.append(f"{path}: console error: {msg[:200]}")
                for what in failed:
                    if not any(a in what for a in CONSOLE_ALLOW):
                        problems.append(f"{path}: failed to load {what.replace(base_url + '/', '')}")
                for img in info["images"]:
                    if not img["ok"]:
                        problems.append(f"{path}: image does not load: {img['src']}")
                if info["scrollWidth"] > info["vw"] + 1:
                    problems.append(
                        f"{path}: the page scrolls sideways ({info['scrollWidth']} px wide at {info['vw']})"
                    )
                for v in info["verdicts"]:
                    if v["right"] > info["vw"] or v["clipped"]:
                        problems.append(f"{path}: verdict {v['text']!r} is off-screen at {VIEWPORT['width']} px")
                if screenshots is not None:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshots / (path.replace("/", "_") + ".png")), full_page=False)
            if search:
                page.goto(f"{base_url}/search.html?q={search}", wait_until="load")
                try:
                    page.wait_for_selector("#search-results li, ul.search li", timeout=10_000)
                except Exception:
                    problems.append(f"search.html: searching {search!r} found nothing")
        finally:
            browser.close()
    return problems


PHONE = {"width": 390, "height": 844}

_READER_JS = r"""() => {
  // a redirect page (the site's index.html) may have no body yet when it navigates on
  const main = document.querySelector('main') || document.body || document.documentElement;
  const column = (main.querySelector('article') || main).getBoundingClientRect().width;
  // visible prose: commands (pre blocks) must name things by their keys, so they are left out
  const prose = main.cloneNode(true);
  for (const el of prose.querySelectorAll('pre, details:not([open]) > :not(summary)')) el.remove();
  for (const el of prose.querySelectorAll('code')) if (/\s/.test(el.textContent.trim())) el.remove();  // a command
  (document.body || document.documentElement).appendChild(prose);
  prose.style.position = 'absolute'; prose.style.left = '-99999px';
  const text = prose.innerText;
  prose.remove();
  const out = {vw: window.innerWidth, scrollWidth: document.scrollingElement.scrollWidth, column: column,
               text: text, height: document.scrollingElement.scrollHeight, wideTables: [], scrollingTables: [],
               bareFigures: [], images: []};
  // the first screen, as the page opens: its text, and whether it shows code
  const first = [...main.querySelectorAll('h1, h2, h3, p, li, td, th, pre')].filter(
    el => el.checkVisibility() && el.getBoundingClientRect().top < window.innerHeight);
  out.firstText = first.filter(el => el.tagName !== 'PRE').map(el => el.innerText).join(' ');
  out.firstCode = first.some(el => el.tagName === 'PRE' && el.closest('.cell_input'));  // code, not an output
  // tables and figures are measured as a reader who opens every collapsed block sees them
  const closed = [...main.querySelectorAll('details:not([open])')];
  for (const d of closed) d.open = true;
  for (const img of main.querySelectorAll('img')) {
    if (img.offsetParent === null || !img.checkVisibility() || !img.naturalWidth) continue;  // closed details, or not decoded
    out.images.push({src: img.currentSrc || img.src, natural: img.naturalWidth,
                     shown: img.getBoundingClientRect().width, alt: img.alt || ''});
  }
  for (const t of main.querySelectorAll('table')) {
    if (t.offsetParent === null || !t.checkVisibility()) continue;  // inside a closed details block: not on the screen
    const w = t.getBoundingClientRect().width;
    const cap = t.querySelector('caption');
    const caption = (cap ? cap.innerText : t.innerText).slice(0, 60);
    if (w > column + 1) out.wideTables.push({width: Math.round(w), caption: caption});
    // a table whose box fits but whose content scrolls inside it (the page's tables are scroll boxes)
    else if (t.scrollWidth > t.clientWidth + 1) out.scrollingTables.push({width: t.scrollWidth, caption: caption});
  }
  for (const cap of main.querySelectorAll('figcaption, .caption')) {
    const number = cap.querySelector('.caption-number');
    if (!number) continue;
    const fig = cap.closest('figure, div.figure');
    if (!fig || !fig.querySelector('img, svg')) out.bareFigures.push(number.innerText.trim());
  }
  for (const d of closed) d.open = false;
  return out;
}"""


def reader_problems(base_url: str, pages: list[str], keys: set[str]) -> list[str]:
    """What a reader meets on ``pages`` at 1400x900 and on a phone (390x844), one line each:
    tables wider than the content column, pages that scroll sideways; at 1400 px also tables whose
    content scrolls inside their box (collapsed blocks opened), figures whose smallest text renders
    below 9 px, a first screen that shows code (or, on the introduction and the summary, no
    number), chapters longer than 10 screens, numbered figure captions without an image, and any of ``keys`` (registry names: snake_case or dotted) in the visible
    text (closed details blocks, code blocks and inline commands -- code with a space -- do not
    count: a command names things by their keys)."""

    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dependency)

    pattern = re.compile(
        r"(?<![\w./-])(" + "|".join(sorted(map(re.escape, keys), key=len, reverse=True)) + r")(?![\w-])"
    )
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
        try:
            for viewport, name in ((VIEWPORT, "1400 px"), (PHONE, "phone")):
                page = browser.new_page(viewport=viewport)
                for path in pages:
                    page.goto(f"{base_url}/{path}", wait_until="load")
                    page.wait_for_timeout(100)
                    page.wait_for_load_state("load")  # where a redirect moved on to another page
                    info = page.evaluate(_READER_JS)
                    if info["scrollWidth"] > info["vw"] + 1:
                        problems.append(f"{path} ({name}): the page scrolls sideways ({info['scrollWidth']} px)")
                    for t in info["wideTables"]:
                        problems.append(
                            f"{path} ({name}): table {t['width']} px wide in a {info['column']:.0f} px column: "
                            f"{t['caption']!r}"
                        )
                    if name == "1400 px":
                        problems += _first_screen_and_length(path, info)
                        for t in info["scrollingTables"]:
                            problems.append(
                                f"{path} ({name}): table scrolls inside its box ({t['width']} px of content in a "
                                f"{info['column']:.0f} px column): {t['caption']!r}"
                            )
                        for number in info["bareFigures"]:
                            problems.append(f"{path}: {number} has no image")
                        problems += _small_figure_text(path, info["images"])
                        found = sorted(set(pattern.findall(info["text"])))
                        if found:
                            problems.append(f"{path}: registry keys in visible text: {', '.join(found)}")
                page.close()
        finally:
            browser.close()
    return problems


MIN_FIGURE_TEXT_PX = 9.0  # at its rendered size at 1400 px (the publication issue)
MAX_CHAPTER_SCREENS = 10  # a chapter's length at 1400x900 with its collapsed blocks closed
# Pages whose first screen must hold a number (the book's answer): the introduction and the summary.
ANSWER_PAGES = ("book/intro.html", "book/chapters/summary.html")


def _first_screen_and_length(path: str, info: dict) -> list[str]:
    """A page's first screen shows no code (and, on the answer pages, a number); a chapter is at
    most MAX_CHAPTER_SCREENS screens long."""
    out = []
    if info["firstCode"]:
        out.append(f"{path}: its first screen shows code")
    if path in ANSWER_PAGES and not re.search(r"\d", info["firstText"]):
        out.append(f"{path}: its first screen holds no number")
    screens = info["height"] / VIEWPORT["height"]
    if path.startswith("book/chapters/") and screens > MAX_CHAPTER_SCREENS:
        out.append(
            f"{path}: {screens:.1f} screens long at 1400x900 with its collapsed blocks closed (at most {MAX_CHAPTER_SCREENS})"
        )
    return out


@functools.cache
def _recorded_text_px(src: str) -> float | None:
    """The smallest text a figure's PNG records (in its own pixels; :func:`relustudy.book.figure_png`),
    or None for an image that records none."""
    with urllib.request.urlopen(src) as response:
        data = response.read()
    try:
        value = Image.open(io.BytesIO(data)).info.get(TEXT_SIZE_KEY)
    except OSError:  # not a raster image (an SVG logo)
        return None
    return float(value) if value not in (None, "nan") else None


def _small_figure_text(path: str, images: list[dict]) -> list[str]:
    """One line per figure whose smallest text renders below MIN_FIGURE_TEXT_PX on the page."""
    out = []
    for img in images:
        px = _recorded_text_px(img["src"])
        if px is None:
            continue
        shown = px * img["shown"] / img["natural"]
        if shown < MIN_FIGURE_TEXT_PX - 0.05:
            what = img["alt"] or img["src"].rsplit("/", 1)[-1]
            out.append(
                f"{path}: figure {what!r}: smallest text {shown:.1f} px at its rendered size "
                f"({img['shown']:.0f} of {img['natural']} px wide)"
            )
    return out


def registry_keys() -> set[str]:
    """Every registry name a reader should never see (snake_case or dotted: plain words such as
    "relu" or "nin" are also ordinary words on a page): experiments, claims, metrics,
    activations, models, datasets."""

    return {
        k
        for reg in (EXPERIMENTS, CLAIMS, METRICS, ACTIVATIONS, MODELS, DATASETS)
        for k in reg.names()
        if "_" in k or "." in k
    }


FIRST_SCREEN_PAGES = ("book/intro.html", "book/chapters/summary.html")


def first_screens(site: Path, out: Path) -> list[Path]:
    """The first screen of the introduction, the summary and every chapter of the built book in
    ``site``, at 1400x900 and on a phone, as PNG files in ``out`` (``make screenshots``)."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dependency)

    chapters = sorted(str(p.relative_to(site)) for p in (site / "book" / "chapters").glob("*.html"))
    pages = [*FIRST_SCREEN_PAGES, *(p for p in chapters if p not in FIRST_SCREEN_PAGES)]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with serve(site) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
        try:
            for viewport, tag in ((VIEWPORT, "1400"), (PHONE, "phone")):
                page = browser.new_page(viewport=viewport)
                for path in pages:
                    page.goto(f"{url}/{path}", wait_until="load")
                    page.wait_for_timeout(300)
                    target = out / f"{Path(path).stem}-{tag}.png"
                    page.screenshot(path=str(target))
                    written.append(target)
                page.close()
        finally:
            browser.close()
    return written


if __name__ == "__main__":  # make screenshots: python tests/browser_check.py SITE OUT
    for path in first_screens(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
