"""Every experiment of every source expands into valid configs whose names resolve; arm labels match
the source's published rows; every source with a chapter has its notebook and toc entry; --jobs
gives the records a sequential run gives."""

from __future__ import annotations

import difflib
import importlib
import json
import pkgutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SCHEDULED_SLICE

from relustudy import sources
from relustudy.activations import build_activation
from relustudy.config import PROFILES, REQUIRED_PROFILES, ConfigError
from relustudy.data import DATASETS, dataset_available
from relustudy.experiments import EXPERIMENTS, get_experiment, run_experiment
from relustudy.models import build_model
from relustudy.reference import SOURCES, paper_values
from relustudy.store import CLAIM_FILE, ResultsStore
from relustudy.trainer import TIMING_METRICS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", EXPERIMENTS.names())
def test_every_profile_expands_and_every_arm_builds(name):
    exp = get_experiment(name)
    spec = DATASETS.get(exp.dataset)
    assert set(exp.required_profiles) <= set(exp.profiles) <= set(PROFILES)
    assert exp.diagnostic or set(REQUIRED_PROFILES) <= set(exp.profiles)
    built = set()
    for profile in exp.profiles:
        configs = exp.configs(profile)
        assert len(configs) == len(exp.arms) * len(exp.profile(profile).seeds)
        assert len({c.run_id() for c in configs}) == len(configs)  # no two runs share a record
        for c in configs:
            key = (
                c.activation,
                json.dumps(c.activation_params, sort_keys=True),
                json.dumps(c.model_params, sort_keys=True),
            )
            if key in built:
                continue
            built.add(key)
            build_activation(c.activation, 4, **c.activation_params)
            model = build_model(
                c.model, c.activation, c.activation_params, spec.in_shape, spec.num_classes, **c.model_params
            )
            with torch.no_grad():
                out = model.eval()(torch.zeros(2, *spec.in_shape))
            assert out.shape == (2, spec.num_classes)


def test_arm_labels_match_the_published_rows():
    """An arm label one character off its reference row would give two half-empty table rows."""
    for name in EXPERIMENTS.names():
        exp = get_experiment(name)
        pv = paper_values(exp.source)
        pv = pv[pv["table"] == exp.table]
        if pv.empty:  # sources that publish figures only (the blogs)
            continue
        rows = set(pv["row"])
        for label in (a.label for a in exp.arms):
            if label in rows:
                continue
            # an arm of ours without a published row must not be a near-miss of one
            near = difflib.get_close_matches(label, rows, n=1, cutoff=0.8)
            assert not near and label.lower() not in {r.lower() for r in rows}, (name, label, near)
        if exp.source in ("smith", "xu2015"):  # these run every published row
            assert {a.label for a in exp.arms} <= rows


def test_every_source_is_registered_once_with_its_chapter():
    toc = (ROOT / "_toc.yml").read_text()
    modules = [importlib.import_module(f"{sources.__name__}.{m.name}") for m in pkgutil.iter_modules(sources.__path__)]
    keys = [m.SOURCE.key for m in modules]
    assert sorted(keys) == SOURCES.names()  # one module per source, each registered once
    for module in modules:
        src = module.SOURCE
        assert src.label and src.citation
        if src.chapter:
            assert (ROOT / "notebooks" / f"{src.chapter}.ipynb").is_file(), src.chapter
            assert f"book/chapters/{src.chapter}" in toc, src.chapter
    for name in EXPERIMENTS.names():
        assert get_experiment(name).source in SOURCES


def test_xu_grid_keeps_one_subset_and_names_its_evaluations():
    exp = get_experiment("xu_cifar10_nin")
    quick = exp.configs("quick")
    assert {c.train_subset for c in quick} == {2000} and {c.subset_seed for c in quick} == {0}
    rrelu = [c for c in quick if c.arm == "RReLU"]
    assert rrelu and all(c.evals == ("rrelu_rules", "train_set") for c in rrelu)
    assert all(c.evals == ("train_set",) for c in quick if c.arm != "RReLU")
    prelu = next(c for c in exp.configs("paper") if c.arm == "PReLU")
    assert prelu.optimizer == "sgd" and prelu.weight_decay > 0  # the decay group excludes a (trainer test)
    assert [a.label for a in exp.arms] == ["ReLU", "Leaky ReLU, a=100", "Leaky ReLU, a=5.5", "PReLU", "RReLU"]


def test_duplicate_seeds_and_bad_jobs_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="must not repeat"):
        run_experiment("tf_rrelu_mnist_bn", "smoke", seeds=[0, 0], results_dir=tmp_path, log=None)
    with pytest.raises(ConfigError, match="jobs"):
        run_experiment("tf_rrelu_mnist_bn", "smoke", jobs=0, results_dir=tmp_path, log=None)


def _mnist_available() -> bool:
    return dataset_available("mnist")


@pytest.mark.skipif(not _mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_jobs_give_the_records_of_a_sequential_run(tmp_path, sequential_slice):
    kw = dict(SCHEDULED_SLICE)
    par = run_experiment(kw.pop("name"), kw.pop("profile"), results_dir=tmp_path / "par", jobs=2, log=None, **kw)
    seq = sequential_slice
    assert [r["run_id"] for r in par] == [r["run_id"] for r in seq]
    for a, b in zip(par, seq, strict=True):
        assert {k: v for k, v in a["metrics"].items() if k not in TIMING_METRICS} == {
            k: v for k, v in b["metrics"].items() if k not in TIMING_METRICS
        }


def _spawned_workers(parent: int) -> list[int]:
    """Pids of the multiprocessing workers whose parent is ``parent`` (from /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.skipif(not _mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_workers_stop_when_the_driver_is_killed(tmp_path):
    code = (
        "from relustudy.experiments import run_experiment; "
        f"run_experiment('theano_mnist_radford', 'smoke', results_dir={str(tmp_path)!r}, jobs=2, num_threads=1, log=None)"
    )
    driver = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 120
        while len(_spawned_workers(driver.pid)) < 2 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
        workers = _spawned_workers(driver.pid)
        assert len(workers) == 2, "the driver never started its two workers"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        # a worker still importing torch reaches its parent watch only afterwards: on a loaded
        # machine that took over 20 s, so the test waits up to 90 s
        deadline = time.monotonic() + 90
        while any(Path(f"/proc/{p}").exists() for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = [
            p
            for p in workers
            if Path(f"/proc/{p}").exists()
            and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        ]
        assert not alive, f"workers {alive} kept training after their driver was killed"
    finally:
        if driver.poll() is None:
            driver.kill()


@pytest.mark.skipif(not _mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_a_run_claimed_by_a_live_process_is_skipped_and_a_dead_ones_claim_taken_over(tmp_path):
    store = ResultsStore(tmp_path)
    cfg = get_experiment("tf_rrelu_mnist_bn").configs("smoke", seeds=[0])[0]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = store.path(cfg, CLAIM_FILE)
        claim.parent.mkdir(parents=True)
        claim.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": "then"}))
        lines = []
        records = run_experiment("tf_rrelu_mnist_bn", "smoke", seeds=[0], results_dir=tmp_path, log=lines.append)
        assert len(records) == 6 and not store.is_complete(cfg)  # the other 6 runs trained, this one left alone
        skipped = [line for line in lines if "skipped" in line]
        assert len(skipped) == 1 and f"being trained by pid {holder.pid}" in skipped[0]
        trained = [line for line in lines if "complete in" in line]
        assert "| done 2, running 1, left 4, ETA " in trained[0]  # the skipped run counts as done
        assert trained[-1].endswith("| done 7, running 0, left 0")
    finally:
        holder.kill()
        holder.wait()
    records = run_experiment("tf_rrelu_mnist_bn", "smoke", seeds=[0], results_dir=tmp_path, log=None)
    assert len(records) == 7 and store.is_complete(cfg)  # the dead holder's claim was taken over
    assert not claim.exists()  # released after training


@pytest.mark.skipif(not _mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_two_concurrent_runs_on_one_store_train_every_run_exactly_once(tmp_path):
    code = (
        "from relustudy.experiments import run_experiment; "
        f"run_experiment('tf_rrelu_mnist_bn', 'smoke', results_dir={str(tmp_path)!r}, num_threads=1)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trained = [line.split(": ")[0] for out in outs for line in out.splitlines() if ": complete in" in line]
    configs = get_experiment("tf_rrelu_mnist_bn").configs("smoke")
    assert len(trained) == len(set(trained)) <= len(configs)  # no run trained twice
    store = ResultsStore(tmp_path)
    # each run is complete once the second pass (which waits for nothing) has collected the rest
    rest = run_experiment("tf_rrelu_mnist_bn", "smoke", results_dir=tmp_path, num_threads=1, log=None)
    assert len(rest) == len(configs) and all(store.is_complete(c) for c in configs)
    assert not list(tmp_path.rglob("claim.json")) and not list(tmp_path.rglob("*.tmp"))
