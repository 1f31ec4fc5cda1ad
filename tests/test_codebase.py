"""The shape of the code: the framework holds no source's data, and no module or function grows
past what one reader can hold (800 lines a module, 60 a function)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from relustudy.experiments import EXPERIMENTS
from relustudy.reference import SOURCES

SRC = Path(__file__).resolve().parents[1] / "src" / "relustudy"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 60
# Where a source's data may live: its own module, and the network families (a family is named by
# the paper that defined it). Everything else is the framework.
SOURCE_OWNED = ("sources", "models")


def framework_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if not set(p.relative_to(SRC).parts[:-1]) & set(SOURCE_OWNED))


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def source_words() -> dict[str, str]:
    """Each source's key, label and experiment names -> the source they belong to."""
    words = {}
    for key in SOURCES.names():
        words[key] = key
        words[SOURCES.get(key).label] = key
    for name in EXPERIMENTS.names():
        words[name] = EXPERIMENTS.get(name).source
    return words


def source_hits(tree: ast.AST, words: dict[str, str]) -> list[tuple[int, str]]:
    """(line, what) for every string literal (not a docstring) that names a source, its label or
    one of its experiments, and every identifier named after a source (``SMITH_LRELU_SLOPE``)."""
    skip = _docstrings(tree)
    patterns = {w: re.compile(r"(?<![A-Za-z0-9_])" + re.escape(w) + r"(?![A-Za-z0-9_])") for w in words}
    prefixes = {k.split("_")[0].rstrip("0123456789").upper() for k in words.values()}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            hits += [
                (node.lineno, f"{node.value!r} names {words[w]}") for w, p in patterns.items() if p.search(node.value)
            ]
        name = getattr(node, "id", None) or getattr(node, "name", None) or getattr(node, "attr", None)
        if isinstance(name, str) and set(name.upper().split("_")) & prefixes:
            hits.append((node.lineno, f"identifier {name}"))
    return hits


def test_the_framework_modules_name_no_source():
    words = source_words()
    found = [
        f"{p.relative_to(SRC)}:{line}: {what}"
        for p in framework_modules()
        for line, what in source_hits(ast.parse(p.read_text()), words)
    ]
    assert not found, "source data in the framework:\n" + "\n".join(found)


def test_the_source_check_finds_a_planted_constant_and_label():
    planted = ast.parse('"""Docstrings may cite Xu et al."""\nXU_RRELU_BOUNDS = (3, 8)\nLABEL = "Smith"\n')
    hits = source_hits(planted, source_words())
    assert [line for line, _ in hits] == [2, 3]


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


@pytest.mark.parametrize("limit", ["module", "function"])
def test_no_module_or_function_is_too_long(limit):
    paths = sorted(SRC.rglob("*.py"))
    if limit == "module":
        long = [
            f"{p.relative_to(SRC)} ({n} lines)"
            for p in paths
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
        ]
    else:
        long = [f for p in paths for f in _long_functions(p)]
    assert not long, f"over {MAX_MODULE_LINES if limit == 'module' else MAX_FUNCTION_LINES} lines: " + ", ".join(long)
