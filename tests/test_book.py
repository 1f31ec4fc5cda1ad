"""The book builder: link checker, output sanitiser, notebook hygiene, toc coverage, the helpers
the chapters call (the end-to-end smoke build of the real book is tests/test_smoke_book.py)."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from browser_check import browser_or_skip
from conftest import xdist_unit
from PIL import Image
from synthetic_records import long_records

import relustudy.book.runs as chapter
from relustudy import book
from relustudy import microbench as mb
from relustudy.book import (
    FAMILY_COLOURS,
    BookError,
    activation_colour,
    arm_palette,
    check_links,
    curve_palette,
    find_broken_links,
    find_external_assets,
    sanitize_notebook,
    strip_progress,
)
from relustudy.claim_tables import paper_vs_ours
from relustudy.claims import evaluate_claims
from relustudy.data import DATASETS, DataError
from relustudy.experiments import EXPERIMENTS, get_experiment
from relustudy.models import MODELS, model_display_name
from relustudy.notebook_params import NotebookParameterError, check_namespace, validate
from relustudy.reference import printed_decimals, source_label
from relustudy.store import ResultsStore
from relustudy.verdict_rules import VERDICTS, deciding_effect

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PARAMETERS = ("profile", "seeds", "device", "data_dir", "results_dir")


# ------------------------------------------------------------------------------- link checker
def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    html = tmp_path / "html"
    for rel, body in pages.items():
        p = html / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return html


GOOD_PAGES = {
    "index.html": '<html><head><link rel="stylesheet" href="_static/style.css?v=1"><script src="_static/app.js"></script></head>'
    '<body><a href="chapters/smith.html#table-2">Smith</a> <a href="#top">top</a> '
    '<a href="https://example.org/paper.pdf">out</a> <a href="mailto:a@b.c">mail</a> '
    '<img src="_images/fig%201.png" alt="f"> <a href="chapters/">folder</a></body></html>',
    "chapters/smith.html": '<a href="../index.html">home</a><img src="../_images/fig 1.png"/>',
    "chapters/index.html": "<p>index</p>",
    "_static/style.css": "body {}",
    "_static/app.js": "",
    "_images/fig 1.png": "png",
}


def test_link_checker_passes_a_good_tree(tmp_path):
    html = _site(tmp_path, GOOD_PAGES)
    assert find_broken_links(html) == []
    check_links(html)  # no exception
    assert find_external_assets(html) == []


def test_link_checker_finds_a_broken_link_and_a_missing_image(tmp_path):
    pages = dict(GOOD_PAGES)
    pages["chapters/smith.html"] = (
        '<a href="../methods.html#datasets">methods</a><img src="../_images/missing.png"><a href="../index.html">ok</a>'
    )
    html = _site(tmp_path, pages)
    broken = find_broken_links(html)
    assert broken == ["chapters/smith.html: ../_images/missing.png", "chapters/smith.html: ../methods.html#datasets"]
    with pytest.raises(BookError) as err:
        check_links(html)
    msg = str(err.value)
    assert "2 broken" in msg and "missing.png" in msg and "methods.html#datasets" in msg


def test_link_checker_checks_absolute_site_paths_and_missing_folder_index(tmp_path):
    html = _site(tmp_path, {"index.html": '<a href="/nope.html">x</a><a href="sub/">y</a>', "sub/page.html": ""})
    assert find_broken_links(html) == ["index.html: /nope.html", "index.html: sub/"]


def test_external_assets_are_reported_but_links_out_are_not(tmp_path):
    html = _site(
        tmp_path,
        {
            "index.html": '<a href="https://example.org">fine</a>'
            '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
            '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">',
            "_static/x.css": '@import url("https://fonts.googleapis.com/css2?family=Roboto");',
        },
    )
    found = find_external_assets(html)
    assert len(found) == 3
    assert any("mathjax" in f for f in found) and any("index.html: <link>" in f for f in found)
    assert any(f.startswith("_static/x.css") for f in found)


def test_check_links_without_a_site_is_an_error(tmp_path):
    with pytest.raises(BookError, match="no built HTML"):
        check_links(tmp_path / "nothing")


# ------------------------------------------------------------------------------- sanitiser
TQDM_STREAM = (
    "training smith_cnn\n"
    "\r  0%|          | 0/8 [00:00<?, ?it/s]\r 50%|#####     | 4/8 [00:01<00:01,  3.9it/s]"
    "\r100%|##########| 8/8 [00:02<00:00,  3.9it/s]\n"
    "epoch 1:  62%|██████▎   | 5/8 [00:01<00:00, 4.01batch/s, loss=0.52]\n"
    "\x1b[32mdone\x1b[0m\n"
)


def test_strip_progress_removes_tqdm_lines_and_ansi():
    assert strip_progress(TQDM_STREAM) == "training smith_cnn\ndone\n"
    assert strip_progress("a\rb\n") == "b\n"  # what a terminal would finally show
    assert strip_progress("accuracy 93% | n=5 [ok]\n") == "accuracy 93% | n=5 [ok]\n"  # not a bar


def test_sanitize_notebook_cleans_streams_and_drops_widgets():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=TQDM_STREAM),
        nbformat.v4.new_output("stream", name="stderr", text="\r 10%|#         | 1/10 [00:00<00:01]\r"),
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
                "text/plain": "HBox(children=(FloatProgress(value=0.0, max=8.0), HTML(value='')))",
            },
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=["\x1b[31mValueError\x1b[0m: bad"]),
    ]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    out = sanitize_notebook(nb).cells[0].outputs
    assert [o["output_type"] for o in out] == ["stream", "execute_result", "error"]
    assert out[0]["text"] == "training smith_cnn\ndone\n"
    assert out[2]["traceback"] == ["ValueError: bad"]
    assert "widgets" not in nb.metadata


def test_a_page_opens_with_results_not_set_up():
    nb = nbformat.v4.new_notebook()
    defaults = nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["injected-parameters"]})
    setup = nbformat.v4.new_code_cell("params = validate()", metadata={"tags": ["hide-input"]})
    shown = nbformat.v4.new_code_cell("table()", metadata={"tags": ["hide-input"]})
    shown.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "a table"}, execution_count=1)]
    visible = nbformat.v4.new_code_cell("x = 1")  # code the page shows on purpose stays
    nb.cells = [defaults, injected, setup, shown, visible]
    tags = [c.metadata.get("tags", []) for c in sanitize_notebook(nb).cells]
    removed = ["remove-cell" in t for t in tags]
    assert removed == [True, True, True, False, False]


def test_a_figure_caption_stays_on_its_image_and_gives_its_alt_text():
    nb = nbformat.v4.new_notebook()
    caption = "Test accuracy by epoch. Mean over seeds."
    cell = nbformat.v4.new_code_cell(
        "plot()", metadata={"tags": ["hide-input"], "mystnb": {"figure": {"caption": caption}}}
    )
    md = nbformat.v4.new_output("display_data", data={"text/markdown": "**In the paper's regime:** yes."})
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    table = nbformat.v4.new_output("execute_result", data={"text/html": "<table></table>"}, execution_count=1)
    cell.outputs = [md, png, table]
    nb.cells = [cell]
    cells = sanitize_notebook(nb).cells
    assert [len(c["outputs"]) for c in cells] == [1, 1, 1]
    before, figure, after = cells
    assert "figure" in figure["metadata"]["mystnb"] and "image/png" in figure["outputs"][0]["data"]
    assert figure["metadata"]["mystnb"]["image"]["alt"] == "Test accuracy by epoch"
    assert "mystnb" not in before["metadata"] and "remove-input" in before["metadata"]["tags"]
    assert before["source"].strip()  # myst-nb drops a code cell with no source, outputs and all
    assert "text/html" in after["outputs"][0]["data"]
    lone = nbformat.v4.new_code_cell("plot()", metadata={"mystnb": {"figure": {"caption": caption}}})
    lone.outputs = [png]
    nb.cells = [lone]
    assert len(sanitize_notebook(nb).cells) == 1  # nothing to move
    empty = nbformat.v4.new_code_cell("plot()", metadata={"mystnb": {"figure": {"caption": caption}}})
    empty.outputs = [md]  # no records: a sentence, no image
    nb.cells = [empty]
    assert "figure" not in sanitize_notebook(nb).cells[0]["metadata"]["mystnb"]


# ------------------------------------------------------------------------------- notebooks & toc
def test_there_are_chapter_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"smith", "summary"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_the_five_parameters_then_validates_them(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    ns: dict = {}
    exec(code[tagged[0]].source, ns)  # plain assignments only
    assert {k: ns[k] for k in PARAMETERS} == {
        "profile": "smoke",
        "seeds": None,
        "device": "cpu",
        "data_dir": None,
        "results_dir": None,
    }
    after = code[tagged[0] + 1].source
    assert "validate(" in after and all(f"{p}={p}" in after for p in PARAMETERS)
    assert "namespace=globals()" in after  # a misspelled papermill parameter fails too


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_compiles(path):
    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            compile(cell.source, f"{path.name}[{i}]", "exec")  # a SyntaxError fails here, not in the build


def test_toc_lists_every_notebook_and_every_page():
    files = book.toc_files(ROOT)
    assert files[0] == "book/intro"
    chapters = set(book.chapter_notebooks(ROOT))
    assert chapters == {p.stem for p in NOTEBOOKS}
    pages = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.md")}
    assert pages <= set(files), sorted(pages - set(files))
    assert len(files) == len(set(files))
    order = book.chapter_notebooks(ROOT)
    assert order.index("smith") < order.index("summary")  # the summary runs last


def test_config_is_offline_and_does_not_execute():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["title"] == "relu-study"
    assert cfg["execute"]["execute_notebooks"] == "off"
    for pattern in ("notebooks", "_build", ".venv", "results", "tests", "docs"):
        assert pattern in cfg["exclude_patterns"]
    assert not cfg["launch_buttons"].get("thebe")
    assert not any(
        cfg["launch_buttons"].get(k) for k in ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url")
    )
    assert not any(cfg["html"]["comments"].values())
    assert not cfg["html"].get("use_repository_button") and not cfg["html"].get("use_issues_button")


def test_toc_without_notebook_is_a_clear_error(tmp_path):
    (tmp_path / "_config.yml").write_text("title: x\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapters/ghost\n")
    with pytest.raises(BookError, match="ghost"):
        book.build_book("smoke", root=tmp_path, log=None)


# ------------------------------------------------------------------------------- helpers
def _fake_store(root: Path, seeds=(0, 1), profile: str = "smoke", names=None, shift: float = 0.0) -> list:
    """Records for the three Smith experiments (``profile``, default smoke), written through the
    real store; ``shift`` is added to every test accuracy."""

    store = ResultsStore(root)
    configs = []
    for name in names or ("smith_fmnist_cnn", "smith_cifar10_cnn", "smith_cifar10_vgg3"):
        for cfg in get_experiment(name).configs(profile, seeds=seeds, device="cpu"):
            bump = {"tanh": 0.0, "ReLU": 0.01, "LReLU": 0.02, "PReLU": 0.03}[cfg.arm]
            acc = 0.8 + bump + 0.001 * cfg.seed + shift
            curve = sorted([0.9 - 0.1 * i - bump for i in range(8)], reverse=True)
            store.begin(cfg)
            store.write_stats(
                cfg,
                [
                    {
                        "epoch": 1,
                        "layer": "last_conv",
                        "module": "act3",
                        "sparsity": sum(curve) / 8,
                        "dispersion": 0.2,
                        "n_units": 8,
                        "curve": curve,
                    }
                ],
            )
            store.write_result(
                cfg,
                status="complete",
                metrics={
                    "test_accuracy": acc,
                    "last_conv.sparsity": sum(curve) / 8,
                    "last_conv.dispersion": 0.2 + bump,
                },
                provenance={
                    "device": "cpu: 2 threads, Test CPU",
                    "torch_version": "9.9.9",
                    "wall_seconds": 30.0,
                    "git_commit": "0123456789abcdef",
                    "git_dirty": False,
                    "data_caveats": list(DATASETS.get(cfg.dataset).caveats),
                },
            )
            configs.append(cfg)
    return configs


@pytest.fixture()
def fake_runs(tmp_path):
    _fake_store(tmp_path / "res")
    params = validate(profile="smoke", seeds=None, device="cpu", results_dir=str(tmp_path / "res"))
    return book.ensure_runs(["smith_fmnist_cnn", "smith_cifar10_cnn", "smith_cifar10_vgg3"], params, train=False)


def test_ensure_runs_loads_only_the_configured_seeds(tmp_path):
    _fake_store(tmp_path / "res", seeds=(0, 1, 7))
    params = validate(profile="smoke", seeds=[0, 1], device="cpu", results_dir=str(tmp_path / "res"))
    runs = book.ensure_runs(["smith_fmnist_cnn"], params, train=False)
    assert sorted(runs.results["seed"].unique()) == [0, 1]
    assert len(runs.records) == runs.expected == 8 and runs.missing() == 0
    assert set(runs.stats["seed"]) == {0, 1}


def test_provenance_sentence(fake_runs):
    text = fake_runs.provenance()
    assert text == (
        "profile smoke, 24 runs on cpu: 2 threads, Test CPU, torch 9.9.9, total wall time 12.0 min, commit 0123456."
    )
    # From the tidy frame: runs counted once although there is one row per metric.
    from_frame = book.provenance(fake_runs.results)
    assert from_frame.startswith("profile smoke, 24 runs on cpu: 2 threads, Test CPU, ")
    assert "total wall time 12.0 min, commit 0123456." in from_frame
    assert book.provenance([]) == "no runs recorded yet."
    rec = {"profile": "quick", "provenance": {"device": "NVIDIA H100", "wall_seconds": 90, "git_commit": "unknown"}}
    assert (
        book.provenance([rec])
        == "profile quick, 1 run on NVIDIA H100, total wall time 1.5 min, commit unknown (records made outside a git commit)."
    )
    named = {
        "profile": "quick",
        "provenance": {
            "device": "cpu",
            "wall_seconds": 60,
            "git_commit": "abcdef12",
            "cpu_identity": "X (family 1 model 2), torch CPU capability AVX2",
        },
    }
    assert ", CPU X (family 1 model 2), torch CPU capability AVX2 (1 older runs: not recorded), " in book.provenance(
        [named, rec]
    )


def test_paired_table_prelu_vs_relu(fake_runs):
    t = book.paired_table(
        fake_runs.results,
        ["smith_fmnist_cnn", "smith_cifar10_vgg3"],
        "PReLU",
        "ReLU",
        ["test_accuracy", "last_conv.dispersion"],
    )
    assert list(t.index.get_level_values("table")) == ["Table 2", "Table 2", "Table 4", "Table 4"]
    row = t.iloc[0]
    assert row["metric"] == "test accuracy" and row["n pairs"] == 2
    assert row["difference (PReLU - ReLU)"] == "+0.020"  # 0.03 - 0.01 on every seed
    assert row["95% CI"] == "[+0.020, +0.020]"  # zero spread: the interval is the point
    assert row["p (sign-flip)"] == "0.500"  # 2 of the 4 sign patterns are as extreme


def test_curve_frame_resamples_each_run_on_a_common_grid(fake_runs):
    cf = book.curve_frame(fake_runs.stats, points=11)
    assert set(cf.columns) >= {"experiment", "arm", "seed", "rank", "probability"}
    one = cf[(cf.experiment == "smith_fmnist_cnn") & (cf.arm == "ReLU") & (cf.seed == 0)]
    assert len(one) == 11
    assert one["probability"].iloc[0] == pytest.approx(0.89) and one["probability"].iloc[-1] == pytest.approx(0.19)
    assert one["probability"].is_monotonic_decreasing
    assert book.curve_frame(fake_runs.stats, layer="no_such_layer").empty


def test_profile_and_notes_come_from_the_registry():
    exp = get_experiment("smith_cifar10_cnn")
    text = book.profile_markdown("smith_cifar10_cnn", "quick")
    assert text.startswith("**Smith Table 3, ")
    assert book.profile_markdown("theano_mnist_radford", "quick").startswith("**Theano blog Results and conclusions, ")
    for line in exp.profile("quick").scale_downs + exp.notes:
        assert line in text
    notes = book.notes_markdown()
    assert "JPEG quality 75" in notes and "test-set order" in notes  # every caveat, in full
    assert all(n in notes for n in exp.notes)
    table = book.profiles_table("quick")
    assert set(table["profile"].str.split().str[0]) == {"smoke", "quick", "regime", "paper"}
    regime = book.profile_markdown("xu_cifar10_nin", "regime")
    assert "Regime criterion: eval-mode training error at or below 0.01 for every arm and seed" in regime
    assert (table["profile"] == "quick (this build)").sum() == table["experiment"].nunique()


def test_caveats_and_banner(fake_runs):
    assert book.caveats_markdown(["smith_fmnist_cnn"]) == ""
    both = book.caveats_markdown(["smith_cifar10_cnn", "smith_cifar10_vgg3"])
    assert both.count("CIFAR-10 data caveat") == 1 and "JPEG quality 75" in both
    # From the records: the caveats of the copy each run was trained on.
    assert book.caveats_markdown(["smith_cifar10_cnn"], fake_runs) == both
    lossless = {**fake_runs.records[8], "provenance": {**fake_runs.records[8]["provenance"], "data_caveats": []}}
    assert lossless["experiment"] == "smith_cifar10_cnn"
    fake_runs.records = [r for r in fake_runs.records if r["experiment"] != "smith_cifar10_cnn"] + [lossless]
    assert book.caveats_markdown(["smith_cifar10_cnn"], fake_runs) == ""
    assert (
        "JPEG"
        in book.paper_vs_ours_table(
            paper_vs_ours(fake_runs.results, "smith_cifar10_vgg3", "smoke"),
            "smith_cifar10_vgg3",
            fake_runs,
        ).to_html()
    )
    assert "{warning}" in book.profile_banner("smoke") and "{warning}" not in book.profile_banner("quick")


# ------------------------------------------------------------------------------- end to end
def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_theme_templates_in_static_are_not_pages(tmp_path):
    html = _site(
        tmp_path,
        {
            "index.html": "<p>x</p>",
            "_static/webpack-macros.html": "<script src=\"{{ pathto('_static/x.js', 1) }}\"></script>",
        },
    )
    assert find_broken_links(html) == []


def test_paper_vs_ours_in_the_sources_layout(fake_runs):
    wide = book.paper_vs_ours_wide(paper_vs_ours(fake_runs.results, "smith_fmnist_cnn", "smoke"))
    assert list(wide.index) == ["tanh", "ReLU", "LReLU", "PReLU"]
    assert wide.shape == (4, 9)
    assert list(wide.columns.get_level_values(0).unique()) == ["accuracy", "lifetime sparsity", "dispersion"]
    relu = wide.loc["ReLU"]
    assert relu[("accuracy", "paper")] == "0.906"  # Smith Table 2, from the reference data
    # one decimal more than Smith prints (3); seeds 0, 1: 0.810, 0.811
    assert relu[("accuracy", "ours (mean ± sd)")] == "0.8105 ± 0.0007 (n=2)"
    # the difference carries the cell's value verdict: 0.906 is far outside the 2-seed interval
    assert relu[("accuracy", "ours − paper")] == "-0.0955 ✗"
    fixed = book.paper_vs_ours_wide(paper_vs_ours(fake_runs.results, "smith_fmnist_cnn", "smoke"), digits=2)
    assert fixed.loc["ReLU", ("accuracy", "ours − paper")] == "-0.10 ✗"


def test_paper_vs_ours_digits_follow_what_the_source_printed():
    assert [printed_decimals(t) for t in ("0.00318", "0.1245", "0.429", "12", "1.5e-3")] == [5, 4, 3, 0, 1]
    exp = "xu_cifar10_nin"
    pvo = paper_vs_ours(
        long_records(exp, {"ReLU": {"test_error": 0.1250, "train_error": 0.0032}}, offset=lambda i, *_: 1e-4 * i),
        exp,
        "quick",
    )
    wide = book.paper_vs_ours_wide(pvo)
    relu = wide.loc["ReLU"]
    assert relu[("train error", "paper")] == "0.00318" and relu[("test error", "paper")] == "0.1245"
    # ours at one decimal more than the paper's cell: 6 for 0.00318, 5 for 0.1245
    assert relu[("train error", "ours (mean ± sd)")] == "0.003400 ± 0.000158 (n=5)"
    assert relu[("test error", "ours (mean ± sd)")] == "0.12520 ± 0.00016 (n=5)"
    # 0.1245 lies outside ours (sd 0.00016), 0.00318 inside (0.0034 ± about 0.0005 for one run)
    assert relu[("test error", "ours − paper")] == "+0.00070 ✗"
    assert relu[("train error", "ours − paper")] == "+0.000220 ✓"
    assert wide.loc["PReLU", ("test error", "ours (mean ± sd)")] == "n/a (n=0)"  # an arm without runs


def test_claim_tables_are_computed_from_the_runs(fake_runs):
    claims = evaluate_claims(fake_runs.results, "smoke", source="smith")
    counts = book.verdict_counts_markdown(claims)
    assert counts.startswith(f"**{len(claims)} claims** evaluated on the smoke profile:")
    assert sum(int(w) for w in counts.split(":")[1].replace(".", "").split(",") for w in [w.split()[0]]) == len(claims)
    html = book.claims_table(claims).to_html()
    assert all(cid in html for cid in claims["claim_id"])
    # fits the column: four columns at fixed widths, the long detail folded away per claim
    assert "table-layout: fixed; width: 100%" in html and html.count("<th>") == 4
    assert html.count("<details>") == len(claims) == html.count("<tr>") - 1
    assert "&lt;" not in claims["tested"].str.cat() or "&lt;" in html  # text is escaped
    quotes = book.claim_quotes_markdown(claims)
    assert quotes.count("> ") == claims["claim"].nunique()
    assert book.verdict_counts_markdown(claims.iloc[0:0]) == "No claims are registered yet."


def test_ensure_runs_can_skip_experiments_without_data(tmp_path, monkeypatch):
    def no_data(name, profile, **kwargs):
        raise DataError("dataset 'cifar100' not found; set RELUSTUDY_DATA or use --download\nmore detail")

    monkeypatch.setattr(chapter, "run_experiment", no_data)
    params = validate(profile="smoke", results_dir=str(tmp_path / "empty"))
    with pytest.raises(DataError):
        book.ensure_runs(["smith_fmnist_cnn"], params)
    runs = book.ensure_runs(["smith_fmnist_cnn"], params, skip_unavailable=True)
    assert runs.skipped == {"smith_fmnist_cnn": "dataset 'cifar100' not found; set RELUSTUDY_DATA or use --download"}
    assert "Smith, Table 2 (3-layer CNN on Fashion-MNIST)" in runs.skipped_markdown()  # a name, not the key
    assert runs.records == [] and runs.missing() == 8
    assert runs.provenance() == "no runs recorded yet."


def test_bad_papermill_parameter_fails_the_first_cell_clearly(tmp_path):
    """A notebook run with a bad parameter fails in the validation cell; the BookError names the
    notebook, the executed copy and the parameter, in a few lines rather than a traceback."""
    target = tmp_path / "chapters" / "profiles.ipynb"
    params = {"profile": "fast", "seeds": None, "device": "cpu", "data_dir": None, "results_dir": None}
    with pytest.raises(BookError) as err:
        book.execute_chapter(ROOT / "notebooks" / "profiles.ipynb", target, params, cwd=ROOT)
    msg = str(err.value)
    assert "notebooks/profiles.ipynb failed" in msg and str(target) in msg
    assert "invalid notebook parameter profile='fast'" in msg
    assert len(msg.splitlines()) <= 12
    executed = nbformat.read(str(target), as_version=4)  # papermill kept the copy, error included
    errors = [
        o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert errors and errors[0]["ename"] == "NotebookParameterError"
    assert errors[0]["traceback"] == [f"NotebookParameterError: {errors[0]['evalue']}"]  # one line, no stack


def _signals_sent_running_a_notebook(tmp_path, monkeypatch, manager_class) -> list[int]:
    """The signals the kernel manager sends while one finished notebook's kernel runs and shuts down."""
    from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415 (optional dependency)

    sent: list[int] = []
    send = AsyncKernelManager._async_signal_kernel

    async def recording_signal(self, signum):
        sent.append(signum)
        await send(self, signum)

    monkeypatch.setattr(AsyncKernelManager, "_async_signal_kernel", recording_signal)
    monkeypatch.setattr("relustudy.book.kernel.QuietShutdownKernelManager", manager_class)
    tmp_path.mkdir()
    source = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")]), str(source))
    book.execute_chapter(source, tmp_path / "out" / "tiny.ipynb", {}, cwd=tmp_path)
    return sent


def test_a_finished_notebooks_kernel_is_shut_down_without_an_interrupt(tmp_path, monkeypatch):
    """jupyter_client's manager sends SIGINT before every shutdown (ipykernel may then log
    "KeyboardInterrupt caught in kernel" at ERROR in a clean build); the book's manager does not.
    The control run with jupyter_client's own manager shows the check sees the signal."""
    import signal  # noqa: PLC0415

    from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415 (optional dependency)

    from relustudy.book.kernel import QuietShutdownKernelManager  # noqa: PLC0415

    assert signal.SIGINT in _signals_sent_running_a_notebook(tmp_path / "plain", monkeypatch, AsyncKernelManager)
    assert signal.SIGINT not in _signals_sent_running_a_notebook(
        tmp_path / "quiet", monkeypatch, QuietShutdownKernelManager
    )


def test_a_misspelled_papermill_parameter_fails_naming_the_valid_ones(tmp_path):
    import papermill as pm  # noqa: PLC0415 (optional dependency)

    target = tmp_path / "profiles.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(ROOT / "notebooks" / "profiles.ipynb"),
            str(target),
            parameters={"profle": "quick"},
            cwd=str(ROOT),
            progress_bar=False,
            log_output=False,
        )
    assert err.value.ename == "NotebookParameterError"
    assert "unknown notebook parameter(s) profle; valid parameters: profile, seeds, device" in err.value.evalue


def test_check_namespace_ignores_functions_and_kernel_names():
    check_namespace({"profile": "smoke", "validate": validate, "In": [], "_": None, "get_ipython": print})
    with pytest.raises(NotebookParameterError, match="unknown notebook parameter.*seed; valid"):
        check_namespace({"profile": "smoke", "seed": 3})


def test_choices_are_listed_once():
    names = ["smith_fmnist_cnn", "smith_cifar10_cnn", "smith_cifar10_vgg3"]
    text = book.choices_markdown(names)
    every = {n for name in names for n in get_experiment(name).notes}
    for note in every:
        assert text.count(note) == 1, note
    assert "seeds 0, 3, chosen for this build" in book.profile_markdown("smith_fmnist_cnn", "quick", seeds=[0, 3])


def test_display_helpers_do_not_truncate_or_show_reprs(capsys):
    table = book.profiles_table("smoke")
    longest = max(table["departs from the source by"], key=len)
    assert len(longest) > 50 and longest in book.table_style(table, hide_index=True).to_html()
    book.show_markdown("   ")  # nothing displayed, not "<IPython.core.display.Markdown object>"
    assert capsys.readouterr().out == ""


def test_timing_table_from_records(fake_runs):
    t = book.timing_table(fake_runs)
    assert list(t.index) == [
        "Table 2: 3-layer CNN on Fashion-MNIST",
        "Table 3: 3-layer CNN on CIFAR-10",
        "Table 4: 3-VGG-block CNN on CIFAR-10",
        "total",
    ]
    assert t.loc["total", "runs"] == 24 and t.loc["total", "wall time (min)"] == "12.0"  # 24 x 30 s
    assert t.loc["Table 2: 3-layer CNN on Fashion-MNIST", "wall time (min)"] == "4.0"
    assert float(t.loc["total", "paper profile, estimated (min)"]) > float(t.loc["total", "wall time (min)"])
    assert t.loc["Table 2: 3-layer CNN on Fashion-MNIST", "device"] == "cpu: 2 threads, Test CPU"


def test_arm_summary_table(fake_runs):
    t = book.arm_summary_table(fake_runs.results, "smith_fmnist_cnn", ["test_accuracy", "median_images_per_second"])
    assert list(t.index) == ["tanh", "ReLU", "LReLU", "PReLU"]
    assert t.loc["PReLU", "test accuracy"] == "0.831 ± 0.001 (n=2)"
    assert t.loc["ReLU", "training throughput (median over epochs) (images/s)"] == "n/a (n=0)"  # not recorded


def test_benchmark_table_pivots_directions():
    rows = [
        dict(
            name="copy",
            kind="bound",
            direction="copy",
            median_ms=1.0,
            iqr_ms=0.1,
            gbps=20.0,
            bound_ratio=1.0,
            compiled_matches_eager=None,
            error="",
        )
    ]
    for name, kind, ok in (("relu_max", "variant", None), ("relu_max", "compiled", False)):
        for direction, med in (("forward", 2.0), ("backward", 3.0)):
            rows.append(
                dict(
                    name=name,
                    kind=kind,
                    direction=direction,
                    median_ms=med,
                    iqr_ms=0.2,
                    gbps=5.0,
                    bound_ratio=med,
                    compiled_matches_eager=ok,
                    error="",
                )
            )
    t = book.benchmark_table(mb.pd.DataFrame(rows))
    assert t.loc[("ReLU (max)", "variant"), "forward median ms"] == "2.000"  # display names, not keys
    assert t.loc[("ReLU (max)", "variant"), "backward x copy bound"] == "3.000"
    assert t.loc[("copy (bound)", "bound"), "copy GB/s"] == "20.000"
    assert t.loc[("ReLU (max)", "compiled"), "note"] == "compiled differs from eager"
    assert t.loc[("ReLU (max)", "variant"), "note"] == ""
    narrow = book.benchmark_table(mb.pd.DataFrame(rows), metrics=("median ms",))  # a few metrics at a time
    assert list(narrow.columns) == ["copy median ms", "forward median ms", "backward median ms", "note"]


def test_spread_across_arms(fake_runs):
    t = book.spread_across_arms(fake_runs.results, "smith_fmnist_cnn", ["ReLU", "PReLU"])
    assert list(t.index) == [0, 1] and (t["arms"] == 2).all()
    assert t["max - min test accuracy"].tolist() == pytest.approx([0.02, 0.02])  # PReLU 0.03 vs ReLU 0.01 bump
    same = book.spread_across_arms(fake_runs.results, "smith_fmnist_cnn", ["ReLU"])
    assert (same["max - min test accuracy"] == 0).all()
    assert book.spread_across_arms(fake_runs.results, "nothing", ["ReLU"]).empty


def test_kernel_table_holds_each_trained_activation_to_its_limit_at_each_tensor_size():
    rows = []
    for shape, scale in (("128x32x30x30", 1.0), ("128x64x30x30", 0.5)):
        for layout in ("contiguous", "channels_last"):
            for name, kind, impl in (
                ("prelu", "variant", "fused CPU kernel (x)"),
                ("F.prelu", "builtin", "PyTorch"),
                ("elu", "module", "PyTorch"),
            ):
                for direction, ratio in (("forward", 1.2), ("backward", 3.4)):
                    rows.append(
                        dict(
                            name=name,
                            kind=kind,
                            direction=direction,
                            layout=layout,
                            shape=shape,
                            implementation=impl,
                            limit_ratio=scale * (ratio if name != "F.prelu" else 30.0),
                            # the copy alone: 10% over the limit's ratio where a larger limit applies
                            bound_ratio=scale * (ratio if name != "F.prelu" else 30.0) * 1.1,
                        )
                    )
    df = pd.DataFrame(rows)
    df.attrs["record"] = {
        "settings": {"shape": [128, 32, 30, 30], "memory_shape": [128, 64, 30, 30]},
        "provenance": {"last_level_cache": "32768K"},
    }
    t = book.kernel_table(df)
    cached = "128 x 32 x 30 x 30 (28 MiB per copy; L3 32 MiB: partly in cache)"
    memory = "128 x 64 x 30 x 30 (56 MiB per copy; L3 32 MiB: from memory)"
    assert t.loc[("PReLU", cached, "channels_last", "ours"), "forward x limit"] == "1.20"
    assert t.loc[("PReLU", memory, "channels_last", "ours"), "forward x limit"] == "0.60"
    assert t.loc[("PReLU", cached, "contiguous", "PyTorch stock"), "backward x limit"] == "30.00"
    assert t.loc[("PReLU", cached, "contiguous", "ours"), "implementation"].startswith("fused")
    assert t.loc[("PReLU", cached, "contiguous", "ours"), "forward x copy"] == "1.32"
    assert ("ELU", memory, "contiguous", "ours") in t.index and (
        "RReLU (Xu)",
        cached,
        "contiguous",
        "ours",
    ) not in t.index
    assert list(dict.fromkeys(t.index.get_level_values("activation"))) == [
        "PReLU",
        "ELU",
    ]  # the study's order, display names
    goal = book.kernel_goal_markdown(t).splitlines()
    assert goal[0] == (
        f"- {cached}: 4 of 8 of our cells within 2x of the limit; above it: PReLU backward (contiguous) 3.40, "
        "PReLU backward (channels_last) 3.40, ELU backward (contiguous) 3.40, ELU backward (channels_last) 3.40."
    )
    assert goal[1] == f"- {memory}: 8 of 8 of our cells within 2x of the limit."
    copy_goal = book.kernel_goal_markdown(t, goal=1.25, against="copy").splitlines()
    assert copy_goal[1] == (
        f"- {memory}: 4 of 8 of our cells within 1.25x of the copy bound alone; above it: PReLU backward "
        "(contiguous) 1.87, PReLU backward (channels_last) 1.87, ELU backward (contiguous) 1.87, "
        "ELU backward (channels_last) 1.87."
    )
    with pytest.raises(ValueError, match="against"):
        book.kernel_goal_markdown(t, against="exp")
    failed = df.copy()
    failed.loc[(failed["name"] == "elu") & (failed["shape"] == "128x64x30x30"), "limit_ratio"] = float("nan")
    goal = book.kernel_goal_markdown(book.kernel_table(failed)).splitlines()
    assert goal[1] == (
        f"- {memory}: 4 of 8 of our cells within 2x of the limit; not measured: ELU forward (contiguous), "
        "ELU backward (contiguous), ELU forward (channels_last), ELU backward (channels_last)."
    )
    df.attrs["record"] = {"settings": {"shape": [128, 32, 30, 30]}}  # a record with one size, no cache named
    t = book.kernel_table(df)
    assert set(t.index.get_level_values("tensors")) == {"128 x 32 x 30 x 30 (28 MiB per copy)"}
    assert book.kernel_table(df.drop(columns=["limit_ratio"])).empty  # an old record
    old = book.kernel_table(df.drop(columns=["bound_ratio"]))  # a table without the copy column
    assert "forward x limit" in old.columns and "forward x copy" not in old.columns


def test_kernel_limits_markdown_names_the_limits_the_record_measured():
    def bounds(*names):
        return pd.DataFrame({"name": list(names), "kind": "bound"})

    text = book.kernel_limits_markdown(bounds("copy", "add", "expm1", "tanh"))
    assert "`torch.add(src, g, out=dst)`" in text and "ELU forward also `torch.expm1(src, out=dst)`" in text
    assert "tanh forward also `torch.tanh(src, out=dst)`" in text and "predates" not in text
    old = book.kernel_limits_markdown(bounds("copy", "exp", "tanh"))  # a record before add and expm1
    assert "backward passes the copy alone (this record predates" in old
    assert "ELU forward: this record predates the `expm1` limit" in old


def test_a_quick_book_shows_an_experiment_in_paper_profile_once_all_its_records_exist(tmp_path):
    root = tmp_path / "res"
    _fake_store(root, seeds=(0, 1, 2, 3, 4), profile="quick", names=("smith_cifar10_cnn", "smith_fmnist_cnn"))
    paper = _fake_store(root, seeds=(0, 1, 2, 3, 4), profile="paper", names=("smith_cifar10_cnn",), shift=0.05)
    _fake_store(root, seeds=(0, 1), profile="paper", names=("smith_fmnist_cnn",))  # incomplete: 8 of 20
    params = validate(profile="quick", device="cpu", results_dir=str(root))
    runs = book.ensure_runs(["smith_cifar10_cnn", "smith_fmnist_cnn"], params, train=False)
    assert runs.profiles == {"smith_cifar10_cnn": "paper", "smith_fmnist_cnn": "quick"}
    assert set(runs.results.groupby("experiment")["profile"].unique().map(tuple)) == {("paper",), ("quick",)}
    assert runs.expected == len(paper) + 20 and runs.missing() == 0
    assert "smith_cifar10_cnn" not in runs.profiles_markdown() and "profile `paper`" in runs.profiles_markdown()
    # the claims of the paper-profile experiment are evaluated on its paper records
    claims = evaluate_claims(runs.results, "quick", source="smith", shown=runs.profiles).set_index("claim_id")
    assert claims.loc["smith.table3.prelu_better_than_relu_and_lrelu", "profile"] == "paper"
    assert claims.loc["smith.table2.prelu_better_than_relu_and_lrelu", "profile"] == "quick"
    # faithful=False keeps the book's profile
    assert book.ensure_runs(["smith_cifar10_cnn"], params, train=False, faithful=False).profiles == {
        "smith_cifar10_cnn": "quick"
    }
    # what the scale-down moved: paper - quick = the shift, with an interval
    shift = book.profile_shift_table(root, "smith_cifar10_cnn", ["test_accuracy"])
    cell = shift.loc[("PReLU", "test accuracy"), "paper - quick (Welch 95% CI)"]
    assert cell.startswith("+0.050 [") and "(n=5)" in shift.loc[("PReLU", "test accuracy"), "paper profile"]
    assert len(book.profile_shift_table(root, "smith_cifar10_vgg3", ["test_accuracy"])) == 0  # no records


def test_a_smoke_book_never_switches_profile(tmp_path):
    root = tmp_path / "res"
    _fake_store(root, seeds=(0, 1, 2, 3, 4), profile="paper", names=("smith_cifar10_cnn",))
    _fake_store(root, names=("smith_cifar10_cnn",))
    params = validate(profile="smoke", device="cpu", results_dir=str(root))
    assert book.ensure_runs(["smith_cifar10_cnn"], params, train=False).profiles == {"smith_cifar10_cnn": "smoke"}


def test_verdicts_at_a_glance_and_takeaways():
    claims = pd.DataFrame(
        {
            "source": ["smith", "smith", "xu2015", "xu2015", "he2015"],
            "profile": "quick",
            "verdict": ["replicated", "inconclusive", "not replicated", "not obtainable", "replicated"],
            "tested": ["A beats B.", "C ties D.", "E beats F.", "NDSB.", "G beats H."],
        }
    )
    m = book.verdict_matrix(claims)
    assert list(m.columns) == [*VERDICTS, "total"]
    assert m.loc["all sources", "total"] == 5 and m.loc["all sources", "replicated"] == 2
    assert m.loc[source_label("xu2015"), "not replicated"] == 1 and m.loc[source_label("he2015"), "not run"] == 0
    box = book.takeaways_markdown(claims[claims["source"] == "smith"])
    assert box.startswith(":::{admonition} What this chapter found") and box.endswith(":::")
    assert "- A beats B." in box and "C ties D." not in box and "1 inconclusive" in box
    assert book.takeaways_markdown(claims.iloc[0:0]) == ""
    many = pd.DataFrame(
        {"source": "smith", "profile": "quick", "verdict": "replicated", "tested": [f"s{i}" for i in range(9)]}
    )
    assert "... and 3 more" in book.takeaways_markdown(many)


def _claims_with_effects():
    """Four claims of three units evaluated on synthetic records: one replicated, one not
    replicated, one inconclusive, one not run."""

    exp = "he_cifar10_prelu"
    arms = ("ReLU", "PReLU", "PReLU (channel-shared)", "LReLU (slope 0.25)", "PReLU (weight decay on a)")
    values = {a: {"test_error": 0.40 - 0.02 * (a == "PReLU"), "log_median_images_per_second": 7.0} for a in arms}
    recs = long_records(exp, values, offset=lambda i, seed, k, m: 0.004 * ((-1) ** i) * (k == 0) + 0.01 * i * (k == 1))
    claims = evaluate_claims(recs, "quick", source="he2015")
    return claims


def test_the_verdict_csv_holds_each_claims_deciding_effect():
    frame = book.verdict_csv_frame(_claims_with_effects())
    for col in ("claim_id", "verdict", "effect", "ci_low", "ci_high", "n", "rule", "thresholds", "scale", "parts"):
        assert col in frame.columns
    top1 = frame.set_index("claim_id").loc["he2015.prelu_beats_relu_top1"]
    # PReLU's error is 0.02 lower: the effect is positive on the claimed (better) side, in fractions
    assert top1["verdict"] == "replicated" and top1["effect"] == pytest.approx(0.02)
    assert top1["ci_low"] > 0 and top1["thresholds"] == "0" and top1["n"] == 5 and top1["parts"] == 1
    assert top1["scale"] == "accuracy or error difference (percentage points)"
    speed = frame.set_index("claim_id").loc["he2015.prelu_nearly_free"]
    assert speed["thresholds"] == "-0.1" and speed["rule"].startswith("non-inferiority with margin 0.1")
    init = frame[frame["experiment"] == "he_cifar10_init"]
    assert (init["verdict"] == "not run").all() and init["effect"].isna().all() and (init["parts"] == 0).all()
    assert book.verdict_csv_frame(pd.DataFrame()).empty


def test_the_forest_plot_draws_every_claim_with_numbers():
    claims = _claims_with_effects()
    fig = book.verdict_forest(claims)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]

    decided = [deciding_effect(c.effects, c.verdict) for c in claims.itertuples()]
    with_numbers = [e for e in decided if e is not None and math.isfinite(e.estimate)]
    # not run, and the coefficient claims (these records hold no coefficients, n = 0): no row; the
    # PReLU-vs-LReLU and gain-ratio claims have numbers
    assert len(labels) == len(with_numbers) == 6 < len(claims)
    units = [ax.get_xlabel() for ax in fig.axes]
    assert "accuracy or error difference (percentage points)" in units
    assert "throughput, log ratio (0.1 ≈ 10% faster)" in units
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "replicated" in legend and "the rule's threshold(s)" in legend
    assert book.verdict_forest(claims[claims["verdict"] == "not run"]) is None
    bars = book.verdict_bars(claims)
    assert bars is not None and book.verdict_bars(claims.iloc[0:0]) is None


# ----------------------------------------------------------------------------- in a browser
def test_the_browser_check_finds_a_too_wide_table_and_a_missing_image(tmp_path):
    bc = browser_or_skip()
    claims = pd.DataFrame(
        {
            "claim_id": ["x.a"],
            "source": ["smith"],
            "table": ["Table 3"],
            "tested": ["A beats B."],
            "paper": ["0.9"],
            "ours": ["0.8"],
            "verdict": ["replicated"],
            "detail": ["Rule: r. | a - b: +0.1"],
            "note": [""],
        }
    )
    table = book.claims_table(claims).to_html()
    (tmp_path / "good.html").write_text(f"<html><body style='max-width: 772px'>{table}</body></html>")
    wide = table.replace("width: 100%;", "width: 2400px;")
    (tmp_path / "wide.html").write_text(f"<html><body><div style='overflow-x: auto'>{wide}</div></body></html>")
    (tmp_path / "img.html").write_text("<html><body><img src='missing.png'></body></html>")
    with bc.serve(tmp_path) as url:
        assert bc.check_pages(url, ["good.html"]) == []
        wide_problems = bc.check_pages(url, ["wide.html"])
        assert any("verdict 'replicated' is off-screen" in p for p in wide_problems), wide_problems
        img_problems = bc.check_pages(url, ["img.html"])
        assert any("image does not load: missing.png" in p for p in img_problems), img_problems


def test_reproduce_box_and_downloads(fake_runs, tmp_path):
    box = book.reproduce_markdown(fake_runs, "smith")
    assert box.startswith(":::{admonition} Reproduce this page") and box.endswith(":::")
    assert "relustudy run smith_cifar10_cnn --profile smoke" in box
    assert ".venv/bin/papermill notebooks/smith.ipynb /tmp/smith.ipynb -p profile smoke" in box
    assert "Fashion-MNIST" in box and "CIFAR-10" in box
    assert "bench steps" not in box  # no step timing registered for Smith's experiments
    fake_runs.experiments = [*fake_runs.experiments, "theano_mnist_radford_timing"]
    fake_runs.profiles["theano_mnist_radford_timing"] = "smoke"
    box = book.reproduce_markdown(fake_runs, "smith")
    assert "relustudy bench steps --experiment theano_mnist_radford_timing --profile smoke --threads 1" in box
    # written only at a book's root, never from elsewhere (nbval runs in notebooks/)
    assert book.downloads_markdown({"records": fake_runs.results}, "smith", root=tmp_path) == ""
    (tmp_path / "_toc.yml").write_text("root: x\n")
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    md = book.downloads_markdown({"records": fake_runs.results, "empty": pd.DataFrame()}, "smith", root=tmp_path)
    assert md == "**Download:** {download}`records (CSV) <data/smith-records.csv>`"
    back = pd.read_csv(tmp_path / "book" / "chapters" / "data" / "smith-records.csv")
    assert len(back) == len(fake_runs.results)


def test_activation_curves_known_values():
    f = book.activation_curves(points=7)  # x = -3, -2, ..., 3
    at = {a: g.set_index("x") for a, g in f.groupby("activation")}
    assert at["ReLU"].loc[-1.0, "y"] == 0.0 and at["ReLU"].loc[2.0, "dy/dx"] == 1.0
    assert at["LReLU (slope = 0.1)"].loc[-2.0, "y"] == pytest.approx(-0.2)
    # RReLU at test time is x / 5.5: the same function as LReLU with a = 5.5, so one curve for both
    assert at["LReLU (a = 5.5) ≡ RReLU (Xu) (lower = 3, upper = 8)"].loc[-1.0, "dy/dx"] == pytest.approx(1 / 5.5)
    assert at["ELU"].loc[-1.0, "y"] == pytest.approx(np.exp(-1) - 1)
    assert at["ELU"].loc[-1.0, "dy/dx"] == pytest.approx(np.exp(-1))
    assert at["tanh"].loc[1.0, "dy/dx"] == pytest.approx(1 - np.tanh(1) ** 2)
    # every activation an experiment trains is drawn, each function once, each with a colour
    labels = {label for label, _, _ in book.study_activations()}
    drawn = book.CURVE_JOIN.join(f["activation"].unique()).split(book.CURVE_JOIN)
    assert sorted(drawn) == sorted(labels) and len(drawn) == len(set(drawn))
    assert set(book.curve_palette()) == set(f["activation"])
    assert not any(label.startswith(("ReLU (", "PReLU (max")) for label in labels)  # written forms as their family


def test_a_notebook_run_by_hand_does_not_start_a_long_grid_unasked(tmp_path, monkeypatch):
    monkeypatch.delenv(book.TRAIN_ENV, raising=False)
    params = validate(profile="quick", device="cpu", results_dir=str(tmp_path / "empty"))
    with pytest.raises(book.TrainingNotAllowed) as err:
        book.ensure_runs(["smith_cifar10_cnn"], params)
    msg = str(err.value)
    assert "20 of 20 runs of smith_cifar10_cnn (quick) have no record" in msg and "CPU-minutes" in msg
    assert "results_dir" in msg and f"{book.TRAIN_ENV}=1" in msg and "\n" not in msg
    assert err.value._render_traceback_() == [f"TrainingNotAllowed: {msg}"]
    assert not (tmp_path / "empty").exists()  # nothing trained or written
    # reading only (the summary) never asks
    assert book.ensure_runs(["smith_cifar10_cnn"], params, train=False).records == []


def test_the_fault_suite_record_becomes_a_table_and_a_sentence(tmp_path):
    assert book.fault_suite_table(tmp_path) is None
    assert "make faults" in book.fault_suite_markdown(tmp_path)
    by_fault = {
        "random_kill": {"survived": 5, "lost": 0, "wrong_complete": 0, "mismatch": 1, "leftover": 0},
        "record_byte": {"survived": 3, "lost": 0, "wrong_complete": 1, "mismatch": 0, "leftover": 0},
    }
    record = {
        "faults": {"random_kill": "SIGKILL at random moments", "record_byte": "a byte flipped"},
        "by_fault": by_fault,
        "trials": 10,
        "total": {"survived": 8, "lost": 0, "wrong_complete": 1, "mismatch": 1, "leftover": 0},
        "provenance": {
            "git": {"git_commit": "abcdef1234567", "git_dirty": False},
            "cpu": "x86",
            "torch": "2",
            "finished": "2026-12-01T00:00:00Z",
            "wall_seconds": 120,
            "child_run_seconds": 9,
            "file_writes_per_run": 11,
        },
    }
    (tmp_path / book.FAULT_RECORD).parent.mkdir(parents=True)
    (tmp_path / book.FAULT_RECORD).write_text(json.dumps(record))
    table = book.fault_suite_table(tmp_path)
    assert list(table.index) == ["SIGKILL at random moments", "a byte flipped", "all faults"]
    assert table.loc["all faults", "trials"] == 10 and table.loc["a byte flipped", "wrong record counted complete"] == 1
    text = book.fault_suite_markdown(tmp_path)
    assert "**10 trials**" in text and "**0 records lost**" in text and "**1 wrong records counted complete**" in text
    assert "commit abcdef1234" in text and "wrote 11 files" in text
    # pasted into the methods page as HTML (a Markdown object would paste as its repr)
    assert "<strong>10 trials</strong>" in book.markdown_html(text).data
    assert "outside" not in text  # a record made before the containment faults says nothing of them
    record["total"].update(escaped=1, blocked=0)
    record["files_outside_changed"] = 2
    (tmp_path / book.FAULT_RECORD).write_text(json.dumps(record))
    text = book.fault_suite_markdown(tmp_path)
    assert "**1 that changed or trusted anything outside the store**" in text and "**2 files changed**" in text
    assert book.fault_suite_table(tmp_path).loc["all faults", "touched outside the store"] == 0


def test_the_scheduling_measurement_becomes_a_sentence(tmp_path):
    assert "bench_jobs.py" in book.scheduling_markdown(tmp_path)
    record = {
        "what": "smith_cifar10_cnn quick seeds [0, 1]: sequential with 2 threads per run vs --jobs 2",
        "runs_per_way": 8,
        "ratio_jobs_over_sequential": [0.8],
        "identical_numbers": False,
        "runs_whose_numbers_differ": 8,
        "provenance": {"cpu": "AMD EPYC", "cpus": 2, "finished": "2026-12-01T17:00:00Z", "git_commit": "abc"},
    }
    (tmp_path / book.SCHEDULING_RECORD).parent.mkdir(parents=True)
    (tmp_path / book.SCHEDULING_RECORD).write_text(json.dumps(record))
    text = book.scheduling_markdown(tmp_path)
    assert "over sequential 0.80 (1 paired measurement), so `--jobs` was faster" in text
    assert "did not give the same numbers: 8 of 8 runs differ" in text
    record.update(ratio_jobs_over_sequential=[1.1, 1.2], identical_numbers=True)
    (tmp_path / book.SCHEDULING_RECORD).write_text(json.dumps(record))
    assert "was slower; the two schedules gave the same numbers" in book.scheduling_markdown(tmp_path)


def test_kernel_variants_table_reads_its_record_and_refuses_a_damaged_one(tmp_path):
    where = tmp_path / "microbench" / "quick" / "cpu"
    assert book.kernel_variants_table(tmp_path, "quick") is None  # no record
    where.mkdir(parents=True)
    rows = [
        {"case": "copy", "pass": "copy", "median_ms": 1.0, "min_ms": 0.9, "bound_ratio": 1.0},
        {
            "case": "rrelu forward, current",
            "pass": "forward",
            "median_ms": 1.23456,
            "min_ms": 1.1,
            "bound_ratio": 1.23456,
        },
    ]
    (where / book.KERNEL_VARIANTS_RECORD).write_text(json.dumps({"shape": [2, 3], "threads": 2, "rows": rows}))
    table = book.kernel_variants_table(tmp_path, "quick")
    assert list(table.columns) == ["pass", "median (ms)", "x copy bound"]
    assert table.loc["rrelu forward, current", "x copy bound"] == "1.23"
    assert table.loc["rrelu forward, current", "median (ms)"] == "1.235"
    assert table.attrs["record"]["threads"] == 2
    (where / book.KERNEL_VARIANTS_RECORD).write_text('{"rows": [')  # cut short
    assert book.kernel_variants_table(tmp_path, "quick") is None


def test_overhead_table_shows_the_paired_intervals_and_refuses_an_earlier_design_or_a_damaged_record(tmp_path):
    where = tmp_path / "microbench" / "quick" / "cpu"
    assert book.overhead_table(tmp_path, "quick").empty  # no record
    where.mkdir(parents=True)
    paired = {
        "median_step_ms": {"relu": 10.0, "prelu": 10.3},
        "overhead_vs_relu": {"prelu": 0.031},
        "overhead_ci95": {"prelu": [0.021, 0.040]},
        "overhead_quartiles": {"prelu": [0.012, 0.045]},
        "cycles": 240,
    }
    no_interval = {**paired, "overhead_vs_relu": {"prelu": 0.5}, "overhead_ci95": {}}
    design = "step-interleaved cycles"
    record = {
        "fused": {"threads": 2, "design": design, "models": {"smith_cnn": paired}},
        "torch": {"design": design, "models": {"nin": no_interval}},
    }
    (where / book.OVERHEAD_RECORD).write_text(json.dumps(record))
    table = book.overhead_table(tmp_path, "quick")
    assert table.loc[("Smith's CNN", "fused kernels"), "PReLU vs ReLU"] == "+3.1% (95% CI +2.1 to +4.0)"
    assert table.loc[("Network in Network", "PyTorch forms"), "PReLU vs ReLU"] == "+50.0% (quartiles +1.2 to +4.5)"
    assert table.loc[("Smith's CNN", "fused kernels"), "ReLU step (ms)"] == "10.0"
    assert table.loc[("Smith's CNN", "fused kernels"), "paired samples"] == 240
    assert table.attrs["design"] == design
    del paired["cycles"]  # a record of the earlier design (rounds, no paired cycles): no table
    (where / book.OVERHEAD_RECORD).write_text(json.dumps(record))
    assert book.overhead_table(tmp_path, "quick").empty
    (where / book.OVERHEAD_RECORD).write_text('{"fused": {')  # cut short
    assert book.overhead_table(tmp_path, "quick").empty
    assert book.overhead_goal_markdown(tmp_path, "quick") == ""


def test_overhead_goal_returns_each_verdict(tmp_path):
    where = tmp_path / "microbench" / "quick" / "cpu"
    where.mkdir(parents=True)

    def model(prelu, prelu_ci, rrelu=0.0, rrelu_ci=None):
        m = {"median_step_ms": {"relu": 10.0}, "overhead_vs_relu": {"prelu": prelu, "rrelu": rrelu, "elu": 0.3}}
        m["overhead_ci95"] = {"prelu": prelu_ci, **({"rrelu": rrelu_ci} if rrelu_ci else {})}
        return m

    models = {
        "within": model(0.01, [-0.01, 0.05], 0.02, [0.0, 0.04]),  # upper end at the goal counts as within
        "over": model(0.09, [0.06, 0.12]),
        "spans": model(0.04, [0.02, 0.07]),
        "tiny": model(0.03, [float("nan"), float("nan")]),  # too few cycles for an interval
    }
    (where / book.OVERHEAD_RECORD).write_text(json.dumps({"fused": {"models": models}}))
    lines = book.overhead_goal_markdown(tmp_path, "quick").splitlines()
    assert lines[0] == (
        "- within: PReLU +1.0% against a goal of 5%: within it (95% CI up to +5.0%); "
        "RReLU (Xu) +2.0% against a goal of 10%: within it (95% CI up to +4.0%)."
    )
    assert lines[1].startswith("- over: PReLU +9.0% against a goal of 5%: over it (95% CI from +6.0%); RReLU (Xu)")
    assert "no 95% interval" in lines[1]  # rrelu has no interval there
    assert lines[2].startswith(
        "- spans: PReLU +4.0% against a goal of 5%: not resolved (95% CI +2.0 to +7.0% contains it)"
    )
    assert lines[3].startswith("- tiny: PReLU +3.0% against a goal of 5%: not resolved (no 95% interval")
    assert not any("ELU" in line for line in lines)  # ELU has no goal


def test_allocator_markdown_reads_its_record(tmp_path):
    assert "No allocator measurement" in book.allocator_markdown(tmp_path)
    path = tmp_path / book.ALLOCATOR_RECORD
    path.parent.mkdir(parents=True)
    median = {
        "glibc default": {"wall_s": 60.0, "user_s": 30.0, "sys_s": 12.04, "minor_faults": 2000000},
        "kept": {"wall_s": 50.0, "user_s": 30.0, "sys_s": 4.0, "minor_faults": 300000},
    }
    path.write_text(
        json.dumps({"experiment": "x", "profile": "smoke", "rounds": 1, "median": median, "provenance": {}})
    )
    text = book.allocator_markdown(tmp_path)
    assert "with glibc default it took 60.0 s (12.0 s of it in the kernel, 2,000,000 minor page faults)" in text
    assert "kept 50.0 s (4.0 s, 300,000)" in text


def test_the_smoke_book_and_the_notebooks_are_one_unit_of_work_for_xdist():
    book_test, cells = (
        "tests/test_smoke_book.py::test_smoke_book_build",
        ("notebooks/smith.ipynb::Cell 3", "notebooks/summary.ipynb::Cell 0"),
    )
    assert {xdist_unit(book_test), *map(xdist_unit, cells)} == {"smoke store"}
    assert (
        xdist_unit("tests/test_book.py::test_x") == "tests/test_book.py" != xdist_unit("tests/test_trainer.py::test_y")
    )
    # the fixture that trains into the smoke store lives only in the module the unit names
    users = [p.name for p in (ROOT / "tests").glob("test_*.py") if "\ndef smoke_book(" in p.read_text()]
    assert users == ["test_smoke_book.py"]


def test_every_arm_of_a_family_has_its_familys_colour_in_every_chapter():
    relu_blue = FAMILY_COLOURS["relu"]
    for name in ("smith_cifar10_cnn", "xu_cifar10_nin", "he_cifar10_prelu", "tf_rrelu_mnist_bn"):
        assert arm_palette(name)["ReLU"] == relu_blue  # the same ReLU colour on every page
    xu = arm_palette("xu_cifar10_nin")
    assert xu["Leaky ReLU, a=100"] != xu["Leaky ReLU, a=5.5"]  # two arms of one family: two shades of it
    assert curve_palette()["ReLU"] == relu_blue
    # one arm, one colour, on every page: the same activation and parameters, wherever an experiment trains it
    seen: dict[tuple, set] = {}
    for name in EXPERIMENTS.names():
        palette = arm_palette(name)
        arms = get_experiment(name).arms
        for arm in arms:
            seen.setdefault((arm.activation, json.dumps(arm.params, sort_keys=True)), set()).add(palette[arm.label])
        kinds = {(a.activation, json.dumps(a.params, sort_keys=True)) for a in arms}
        assert len({palette[a.label] for a in arms}) == len(kinds), name  # two kinds never share a colour
    assert all(len(colours) == 1 for colours in seen.values())

    # a family's kinds are shades of its colour (its colour mixed with white): never another family's
    def is_shade_of(colour: str, base: str) -> bool:
        c, b = ([int(x[i : i + 2], 16) for i in (1, 3, 5)] for x in (colour, base))
        shares = {round((ci - bi) / (255 - bi), 1) for ci, bi in zip(c, b, strict=True) if bi < 255}
        return len(shares) == 1 and 0 <= shares.pop() < 1

    theano = arm_palette("theano_mnist_radford")
    assert is_shade_of(theano["ReLU (switch)"], relu_blue) and theano["ReLU (switch)"] != relu_blue
    prelu = activation_colour("prelu", {"mode": "channel", "init": 0.25})
    assert is_shade_of(prelu, FAMILY_COLOURS["prelu"]) and not is_shade_of(prelu, relu_blue)


def test_forest_labels_name_what_was_compared_and_never_repeat():
    claims = _claims_with_effects()
    fig = book.verdict_forest(claims)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert len(labels) == len(set(labels))
    assert any("PReLU − ReLU" in lab and lab.endswith("(> 0)") for lab in labels)  # the arms and the test
    assert any("(margin 0.1)" in lab for lab in labels)  # the speed claims' non-inferiority margin


def test_pages_name_cases_experiments_and_models_not_their_keys():
    assert book.case_display_name("relu_max[as written]") == "ReLU (max), as written"
    assert book.case_display_name("prelu[shared]") == "PReLU (channel-shared)"
    assert book.case_display_name("F.relu") == "F.relu"  # PyTorch's own functions keep their code names
    assert book.experiment_name("smith_cifar10_cnn") == "Smith, Table 3 (3-layer CNN on CIFAR-10)"

    assert all(model_display_name(m) != m for m in MODELS.names())  # every network has a name for pages
    claims = pd.DataFrame({"claim": ["A beats B.", "A beats B."], "claim_id": ["x.first", "x.second"]})
    text = book.claim_quotes_markdown(claims)
    assert "x.first" not in text and "tested by 2 claims" in text  # ids stay in the row details and the CSV
    assert "`" not in book.choices_markdown(["smith_fmnist_cnn", "smith_cifar10_cnn"])


def test_the_reader_check_finds_wide_tables_bare_figures_keys_and_sideways_pages(tmp_path):
    bc = browser_or_skip()
    article = "<html><body><main><article style='max-width: 700px'>{}</article></main></body></html>"
    (tmp_path / "good.html").write_text(
        article.format(
            "<p>PReLU beats ReLU (commands may name keys:)</p><pre>relustudy run smith_cifar10_cnn</pre>"
            "<details><summary>more</summary>claim smith.table3.prelu_best</details>"
            "<figure><img src='x.png' alt='a chart'><figcaption><span class='caption-number'>Fig. 1 </span>"
            "a chart</figcaption></figure><table><tr><td>narrow</td></tr></table>"
        )
    )
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1])
    ax.tick_params(labelsize=7)  # 9.7 px at its natural size, too small at half of it
    (tmp_path / "x.png").write_bytes(book.figure_png(fig))
    plt.close(fig)
    (tmp_path / "bad.html").write_text(
        article.format(
            "<p>tested as smith.table3.prelu_best on smith_cifar10_cnn</p>"
            "<figure><figcaption><span class='caption-number'>Fig. 2 </span>no image</figcaption></figure>"
            "<img src='x.png' alt='a shrunk chart' style='width: 140px'>"
            "<table style='width: 1200px'><caption>too wide</caption><tr><td>x</td></tr></table>"
            "<table style='display: block; max-width: 100%; overflow-x: auto'><caption>scrolls</caption>"
            "<tr><td style='white-space: nowrap'>" + "a long cell that does not wrap " * 8 + "</td></tr></table>"
        )
    )
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "intro.html").write_text(
        article.format(
            "<p>No answer here.</p><div class='cell'><div class='cell_input'><pre>import x</pre></div></div>"
        )
    )
    (tmp_path / "book" / "chapters" / "long.html").write_text(
        article.format("<p>1 claim</p><div style='height: 12000px'></div>")
    )
    keys = {"smith.table3.prelu_best", "smith_cifar10_cnn"}
    with bc.serve(tmp_path) as url:
        assert bc.reader_problems(url, ["good.html"], keys) == []
        bad = bc.reader_problems(url, ["bad.html", "book/intro.html", "book/chapters/long.html"], keys)
    assert any("registry keys in visible text: smith.table3.prelu_best, smith_cifar10_cnn" in p for p in bad), bad
    assert any("Fig. 2 has no image" in p for p in bad), bad
    assert any("(1400 px): table 1200 px wide in a 700 px column: 'too wide'" in p for p in bad), bad
    assert any("(phone): the page scrolls sideways" in p for p in bad), bad
    assert any("figure 'a shrunk chart': smallest text 4." in p for p in bad), bad
    assert any("(1400 px): table scrolls inside its box" in p and "'scrolls" in p for p in bad), bad
    assert (
        "book/intro.html: its first screen shows code" in bad
        and "book/intro.html: its first screen holds no number" in bad
    )
    assert any(p.startswith("book/chapters/long.html: 13.") and "screens long" in p for p in bad), bad


def test_a_figure_records_its_smallest_text():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
    ax.plot([0, 1])
    ax.set_title("title", fontsize=14)
    ax.tick_params(labelsize=6)
    assert book.smallest_text_points(fig) == 6
    png = Image.open(io.BytesIO(book.figure_png(fig)))
    assert float(png.info[book.TEXT_SIZE_KEY]) == pytest.approx(6 * 100 / 72, abs=0.01)  # in its own pixels
    ax.xaxis.set_visible(False), ax.yaxis.set_visible(False)
    assert book.smallest_text_points(fig) == 14  # hidden text does not count
    plt.close(fig)
    fig, axes = book.panels(3, height=2.0)
    assert len(axes) == 3 and fig.get_figwidth() == book.COLUMN_INCHES and fig.get_figheight() == 4.0
    assert [ax.get_visible() for ax in fig.axes] == [True, True, True, False]
    plt.close(fig)


def test_elu_forward_line_reads_its_record_and_judges_the_goal(tmp_path):
    folder = tmp_path / "microbench" / "quick" / "cpu"
    folder.mkdir(parents=True)
    assert book.elu_forward_markdown(tmp_path, "quick") == ""  # no record: nothing on the page
    record = {"cpu": "Test CPU", "threads": 1, "numel": 4_000_000, "rounds": 7, "fused implementation": "fused CPU kernel",
              "copy_ms": 1.0, "over_copy": {"copy": 1.0, "fused": 1.31, "F.elu": 3.9}, "provenance": {"git_commit": "abc1234x"}}  # fmt: skip
    (folder / book.ELU_FORWARD_RECORD).write_text(json.dumps(record))
    line = book.elu_forward_markdown(tmp_path, "quick")
    assert "1.31x the time of a copy" in line and "(within the goal of 1.5x)" in line and "F.elu 3.90x" in line
    assert "other paths" not in line  # a record without them (made before the kernel had several)
    record["over_copy"] |= {"fused": 1.62, "fused, expm1 in float32, AVX2 (8 lanes)": 2.345}
    (folder / book.ELU_FORWARD_RECORD).write_text(json.dumps(record))
    line = book.elu_forward_markdown(tmp_path, "quick")
    assert (
        "(over the goal of 1.5x)" in line and "other paths on this CPU: expm1 in float32, AVX2 (8 lanes) 2.35x." in line
    )


def test_the_pdf_refuses_a_table_that_would_run_past_its_margin(tmp_path):
    browser_or_skip()
    page, out = tmp_path / "page.html", tmp_path / "book.pdf"
    page.write_text("<html><body><table style='width: 1200px'><caption>too wide</caption><tr><td>x</td></tr></table>")
    with pytest.raises(book.BookError, match="1 element.* past the PDF's 703 px margin:\n  'table too wide' reaches"):
        book.print_pdf(page, out)
    assert not out.exists()
    page.write_text("<html><body><table><caption>fits</caption><tr><td>x</td></tr></table>")
    assert book.print_pdf(page, out) == 0  # no images on that page
    assert out.read_bytes().startswith(b"%PDF")
