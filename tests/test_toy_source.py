"""Adding a source as docs/CONTRIBUTING.md says: one module and one notebook give a chapter.

A toy source (an MNIST CNN, ReLU against PReLU, one claim) is written into a fresh book root next
to a one-chapter toc; the smoke book is built from it, training its runs into a fresh store.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from relustudy import book
from relustudy.data import dataset_available

ROOT = Path(__file__).resolve().parents[1]

TOY_MODULE = '''
"""A toy source: what a source module holds (see docs/CONTRIBUTING.md)."""
from relustudy.claims import ClaimSet
from relustudy.experiments import EXPERIMENTS, SMOKE, Arm, Experiment, Profile
from relustudy.reference import SOURCES, Source

if "toy" not in SOURCES:  # a notebook kernel may import it twice
    SOURCE = SOURCES.register("toy", Source(key="toy", citation="A. Toy, 'A toy paper'", label="Toy et al.",
                                            chapter="toy"))
    EXPERIMENTS.register("toy_mnist", Experiment(
        name="toy_mnist", source="toy", table="Table 1", title="a small CNN on MNIST", dataset="mnist",
        model="smith_cnn", arms=(Arm("ReLU", "relu"), Arm("PReLU", "prelu")),
        common=dict(optimizer="adam", lr=1e-3, normalize="scale01"),
        profiles={p: Profile((0, 1), {**SMOKE, "train_subset": 256, "test_subset": 200}, ("256 images",))
                  for p in ("smoke", "quick", "paper")}))
    ClaimSet("toy", "toy_mnist", "1").non_inferior(
        "table1.prelu_not_worse", quote="PReLU is not worse.", arm="PReLU", others=("ReLU",),
        statement="PReLU's test accuracy is non-inferior to ReLU's.", paper_says="a sentence (no numbers)")
'''

TOY_CELLS = [
    ("markdown", [], "# Toy et al.: a toy chapter"),
    ("code", ["parameters"], 'profile = "smoke"\nseeds = None\ndevice = "cpu"\ndata_dir = None\nresults_dir = None'),
    (
        "code",
        [],
        "from relustudy.notebook_params import validate\n\n"
        "params = validate(profile=profile, seeds=seeds, device=device, data_dir=data_dir, results_dir=results_dir, "
        "namespace=globals())",
    ),
    (
        "code",
        [],
        "import toy_source  # noqa: F401  (registers the source)\nfrom relustudy import book\n\n"
        "runs = book.ensure_runs(['toy_mnist'], params)\n"
        "book.chapter_header(runs, 'Where each setting comes from')\n"
        "claims = book.chapter_takeaways(runs, 'toy', 'toy')",
    ),
    ("code", [], "display(book.arm_summary_table(runs.results, 'toy_mnist', ['test_accuracy']))"),
    ("code", [], "book.claims_section(claims)"),
]


def _notebook() -> dict:
    cells = [
        {
            "cell_type": kind,
            "id": f"toy-{i}",
            "metadata": {"tags": tags},
            "source": src,
            **({"execution_count": None, "outputs": []} if kind == "code" else {}),
        }
        for i, (kind, tags, src) in enumerate(TOY_CELLS)
    ]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.mark.slow
@pytest.mark.skipif(not dataset_available("mnist"), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_a_toy_source_module_and_notebook_build_a_chapter(tmp_path):
    root = tmp_path / "toybook"
    (root / "book").mkdir(parents=True)
    (root / "notebooks").mkdir()
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "book" / "_static", root / "book" / "_static")  # the stylesheet _config.yml names
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapters/toy\n")
    (root / "book" / "intro.md").write_text("# Toy book\n\nOne chapter.\n")
    (root / "toy_source.py").write_text(textwrap.dedent(TOY_MODULE))
    (root / "notebooks" / "toy.ipynb").write_text(json.dumps(_notebook()))
    html = book.build_book("smoke", device="cpu", root=root, results_dir=tmp_path / "res", log=None)
    page = (html / "book" / "chapters" / "toy.html").read_text()
    assert "Toy et al." in page and "toy.table1.prelu_not_worse" in page
    assert "test accuracy" in page  # the registry's label, not the raw key
    assert "The runs shown" in page and "Reproduce this page" in page  # the shared header and findings
    assert len(list((tmp_path / "res" / "toy_mnist" / "smoke").glob("*/result.json"))) == 4
