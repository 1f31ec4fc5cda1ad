"""The book is cite-able: a bibliography from the source registry, each source cited where its
chapter names it, a "how to cite" block for the build, and a footer with the build's stamp."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
import yaml

from relustudy import book
from relustudy.book.build import BIB_FILE, BIB_HEADER, write_bibliography, write_build_config
from relustudy.provenance import build_stamp
from relustudy.reference import SOURCES, Source, bibliography_bibtex, bibtex_entry

ROOT = Path(__file__).resolve().parents[1]
CITE = re.compile(r"\{cite:[pt]\}`([^`]+)`")


def test_every_source_has_one_entry_and_the_committed_file_is_current():
    keys = [SOURCES.get(k).bib_key for k in SOURCES.names()]
    assert all(keys) and len(set(keys)) == len(keys)
    text = bibliography_bibtex()
    assert sorted(re.findall(r"^@\w+\{([^,]+),", text, flags=re.M)) == sorted(keys)
    # the committed copy is what the build would write (a raw jupyter-book build reads it)
    assert (ROOT / BIB_FILE).read_text() == BIB_HEADER + text
    he = SOURCES.get("he2015")
    assert "eprint = {1502.01852}" in bibtex_entry(he) and "archiveprefix = {arXiv}" in bibtex_entry(he)


def test_an_entry_lists_its_fields_in_order_and_a_source_without_a_key_is_refused():
    src = Source(
        key="toy", citation="x", label="Toy", bib_key="toy1", bib_fields={"year": "2020", "title": "T", "zz": "z"}
    )
    assert bibtex_entry(src) == "@misc{toy1,\n  title = {T},\n  year = {2020},\n  zz = {z}\n}\n"
    with pytest.raises(ValueError, match="no bibliography key"):
        bibtex_entry(Source(key="toy", citation="x", label="Toy"))


def test_each_chapter_cites_its_sources_and_the_intro_cites_all():
    by_chapter: dict[str, set[str]] = {}
    for key in SOURCES.names():
        src = SOURCES.get(key)
        if src.chapter:
            by_chapter.setdefault(src.chapter, set()).add(src.bib_key)
    by_chapter.setdefault("he2015", set()).add(SOURCES.get("he2015").bib_key)
    for chapter, keys in by_chapter.items():
        cited = set(CITE.findall((ROOT / "notebooks" / f"{chapter}.ipynb").read_text()))
        assert keys <= cited, (chapter, keys - cited)
    intro = set(CITE.findall((ROOT / "book" / "intro.md").read_text()))
    assert intro == {SOURCES.get(k).bib_key for k in SOURCES.names()}
    toc = (ROOT / "_toc.yml").read_text()
    assert "book/bibliography" in toc and "book/chapters/cite" in toc
    assert "bibliography" in (ROOT / "book" / "bibliography.md").read_text()


def test_the_build_config_carries_the_year_and_a_footer_stamp(tmp_path, monkeypatch):
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    when = datetime.datetime(2031, 5, 6, tzinfo=datetime.UTC)
    monkeypatch.setattr("relustudy.provenance.git_info", lambda: {"git_commit": "abcdef1234", "git_dirty": True})
    config = yaml.safe_load(write_build_config(tmp_path, "quick", when).read_text())
    assert config["copyright"] == "2031"
    footer = config["html"]["extra_footer"]
    assert "Built 2031-05-06 from commit abcdef1 with uncommitted changes" in footer and "quick profile" in footer
    assert config["bibtex_bibfiles"] == [BIB_FILE] and config["title"] == "relu-study"  # the rest kept
    path = write_bibliography(tmp_path)
    assert path.read_text() == BIB_HEADER + bibliography_bibtex()


def test_the_cite_block_names_this_build(monkeypatch):
    monkeypatch.setattr("relustudy.provenance.git_info", lambda: {"git_commit": "0123456789", "git_dirty": False})
    text = book.cite_markdown("paper")
    stamp = build_stamp("paper")
    assert stamp["commit"] == "0123456" and "with uncommitted" not in text
    assert "@misc{relustudy," in text and f"year = {{{stamp['year']}}}" in text
    assert "commit 0123456, paper profile" in text and "@inproceedings{he2015delving," in text
