"""CLI: user mistakes give one clear stderr line and exit status 2, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import relustudy.store as store_mod
from relustudy import cli, experiments
from relustudy.cli import INCOMPLETE_EXIT, IO_ERROR_EXIT, USER_ERROR_EXIT, main
from relustudy.experiments import EXPERIMENTS, get_experiment
from relustudy.store import CLAIM_FILE, ResultsStore, process_identity


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relustudy.cli", *args], capture_output=True, text=True, timeout=120)


def test_list_shows_every_experiment_and_profile(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS.names():
        for profile in EXPERIMENTS.get(name).profiles:  # a diagnostic has no paper profile
            assert any(line.startswith(name) and f" {profile} " in line for line in out.splitlines()), (name, profile)


def test_unknown_experiment_is_one_line_error():
    proc = run_cli("run", "no_such_experiment", "--profile", "smoke")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown experiment 'no_such_experiment'" in lines[0]
    assert "smith_fmnist_cnn" in lines[0]  # lists the valid names
    assert "Traceback" not in proc.stderr


def test_bad_profile_is_rejected_by_the_parser():
    proc = run_cli("run", "smith_fmnist_cnn", "--profile", "fast")
    assert proc.returncode == 2
    assert "invalid choice: 'fast'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_results_without_records_says_how_to_make_them(tmp_path):
    proc = run_cli("results", "smith_fmnist_cnn", "--profile", "smoke", "--results-dir", str(tmp_path))
    assert proc.returncode == 1
    assert "relustudy run smith_fmnist_cnn --profile smoke" in proc.stderr


def test_missing_data_is_one_line_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    env_cache = tmp_path / "cache"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "relustudy.cli",
            "run",
            "smith_fmnist_cnn",
            "--profile",
            "smoke",
            "--data-dir",
            str(empty),
            "--results-dir",
            str(tmp_path / "res"),
            "--seeds",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **__import__("os").environ,
            "RELUSTUDY_DATA": str(empty),
            "RELUSTUDY_CACHE": str(env_cache),
            "XDG_CACHE_HOME": str(env_cache),
        },
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("relustudy: error:")
    assert "RELUSTUDY_DATA" in err and "--download" in err


def test_run_twice_recomputes_nothing(tmp_path, capsys):
    args = [
        "run",
        "smith_fmnist_cnn",
        "--profile",
        "smoke",
        "--seeds",
        "0",
        "--results-dir",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.count("complete in") == 4  # one seed x four activations, all trained
    records = sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("result.json"))
    assert len(records) == 4
    assert main(args) == 0
    second = capsys.readouterr().out
    assert second.count(": cached") == 4 and "complete in" not in second
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("result.json")) == records  # nothing rewritten
    # and the tidy CSV has the documented columns
    assert (
        main(["results", "smith_fmnist_cnn", "--profile", "smoke", "--results-dir", str(tmp_path), "--format", "csv"])
        == 0
    )
    header = capsys.readouterr().out.splitlines()[0].split(",")
    for col in ("experiment", "dataset", "model", "activation", "seed", "metric", "value"):
        assert col in header


def test_data_check_exits_nonzero_on_a_corrupt_file(tmp_path):
    good = {
        "x_train": np.zeros((2, 28, 28), np.uint8),
        "y_train": np.zeros(2, np.uint8),
        "x_test": np.zeros((2, 28, 28), np.uint8),
        "y_test": np.zeros(2, np.uint8),
        "classes": np.array([str(i) for i in range(10)]),
    }
    np.savez(tmp_path / "mnist.npz", **good)  # arrays that do not match the MANIFEST checksums
    cache = tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, "-m", "relustudy.cli", "data", "check", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "RELUSTUDY_DATA": str(tmp_path), "RELUSTUDY_CACHE": str(cache)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("mnist"))
    assert "corrupt" in line
    assert "Traceback" not in proc.stderr


def test_missing_gpu_missing_data_dir_and_repeated_seeds_are_one_line_errors(tmp_path, capsys):
    cases = [["--seeds", "0", "0"], ["--data-dir", str(tmp_path / "nowhere")]]
    if not torch.cuda.is_available():
        cases.append(["--device", "cuda"])
    for extra in cases:
        rc = main(["run", "tf_rrelu_mnist_bn", "--profile", "smoke", "--results-dir", str(tmp_path / "r"), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0 and len(err) == 1 and err[0].startswith("relustudy: error:"), (extra, err)
    assert not (tmp_path / "r").exists()  # nothing was trained or written


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_naming_the_file_and_keeps_complete_records(tmp_path, capsys, monkeypatch):
    results = tmp_path / "r"
    args = ["run", "tf_rrelu_mnist_bn", "--profile", "smoke", "--results-dir", str(results)]
    assert main([*args, "--seeds", "0"]) == 0  # seed 0 complete before the disk fills
    before = sorted(p.read_bytes() for p in results.rglob("result.json"))
    capsys.readouterr()
    real_mkstemp = tempfile.mkstemp

    def full_disk_for_checkpoints(*a, **kw):
        fd, name = real_mkstemp(*a, **kw)
        if "checkpoint" in Path(name).name:  # writes to this file fail as on a full disk
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, name

    monkeypatch.setattr(store_mod.tempfile, "mkstemp", full_disk_for_checkpoints)
    rc = main([*args, "--seeds", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == IO_ERROR_EXIT and len(err) == 1, err
    assert err[0].startswith("relustudy: error: cannot write ") and "checkpoint.pt" in err[0]
    assert "No space left on device" in err[0] and "the disk is full" in err[0]
    assert sorted(p.read_bytes() for p in results.rglob("result.json")) == before  # nothing complete lost
    assert not list(results.rglob("*.tmp"))  # no temporary file left behind


def test_thread_counts_zero_is_a_one_line_error_and_too_many_is_said(tmp_path, capsys, monkeypatch):
    base = ["run", "tf_rrelu_mnist_bn", "--profile", "smoke", "--results-dir", str(tmp_path / "r")]
    assert main([*base, "--threads-per-job", "0"]) == cli.USER_ERROR_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["relustudy: error: --threads-per-job must be >= 1, got 0"]
    monkeypatch.setattr(experiments, "run_experiment", lambda *a, **k: [])  # the note, not the training
    assert main([*base, "--threads-per-job", "99"]) == cli.INCOMPLETE_EXIT  # nothing was recorded
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if "99 threads on" in line and "contend" in line]) == 1


def test_bench_profiles_without_a_benchmark_are_one_line_errors(tmp_path, capsys):
    for what in ([], ["train"]):
        assert main(["bench", *what, "--profile", "regime", "--results-dir", str(tmp_path)]) == USER_ERROR_EXIT
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "valid: smoke, quick, paper" in err[0], err
    assert not any(tmp_path.iterdir())  # nothing measured, nothing written


def test_run_held_by_another_process_ends_with_a_summary_and_exit_3(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    cfg = get_experiment("tf_rrelu_mnist_bn").configs("smoke", seeds=[0])[0]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        claim = store.path(cfg, CLAIM_FILE)
        claim.parent.mkdir(parents=True)
        claim.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": "then"}))
        args = ["run", "tf_rrelu_mnist_bn", "--profile", "smoke", "--seeds", "0", "--results-dir", str(tmp_path)]
        assert main(args) == INCOMPLETE_EXIT
        out, err = capsys.readouterr()
        assert "6 of 7 runs recorded: 6 trained, 0 already recorded, 1 not recorded" in out
        assert f"exit status {INCOMPLETE_EXIT}" in err.strip().splitlines()[-1]
    finally:
        holder.kill()
        holder.wait()
    claim.unlink()
    assert main(args) == 0  # the held run trains once nobody holds it
    assert "7 of 7 runs recorded: 1 trained, 6 already recorded, 0 not recorded" in capsys.readouterr().out


def test_a_results_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    afile = tmp_path / "results"
    afile.write_text("not a folder")
    rc = main(["run", "tf_rrelu_mnist_bn", "--profile", "smoke", "--seeds", "0", "--results-dir", str(afile)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == IO_ERROR_EXIT and len(err) == 1 and "is a file, not a folder" in err[0], err
    assert afile.read_text() == "not a folder"


def test_force_through_a_linked_run_folder_is_one_line_and_deletes_nothing_outside(tmp_path, capsys):
    cfg = get_experiment("tf_rrelu_mnist_bn").configs("smoke", seeds=[0])[0]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    files = {"result.json": b"{}", "history.csv": b"epoch\n1\n", "checkpoint.pt": b"x", "activation_stats.json": b"{}"}
    for name, data in files.items():
        (outside / name).write_bytes(data)
    store = ResultsStore(tmp_path / "results")
    store.run_dir(cfg).parent.mkdir(parents=True)
    store.run_dir(cfg).symlink_to(outside, target_is_directory=True)
    args = [
        "run",
        "tf_rrelu_mnist_bn",
        "--profile",
        "smoke",
        "--seeds",
        "0",
        "--force",
        "--results-dir",
        str(store.root),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("is a symbolic link" in line for line in err) and not any("Traceback" in line for line in err)
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == files  # the outside record is untouched


def test_wait_takes_over_a_held_run_once_its_holder_ends(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    cfg = get_experiment("tf_rrelu_mnist_bn").configs("smoke", seeds=[0])[0]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])  # ends by itself
    claim = store.path(cfg, CLAIM_FILE)
    claim.parent.mkdir(parents=True)
    claim.write_text(
        json.dumps({"pid": holder.pid, "process": process_identity(holder.pid), "host": socket.gethostname()})
    )
    args = ["run", "tf_rrelu_mnist_bn", "--profile", "smoke", "--seeds", "0", "--results-dir", str(tmp_path)]
    try:
        assert main([*args, "--wait", "0.5"]) == 0
    finally:
        holder.kill()
        holder.wait()
    out = capsys.readouterr().out
    assert "skipped, " in out and "7 of 7 runs recorded: 7 trained, 0 already recorded, 0 not recorded" in out
    assert store.is_complete(cfg)
    assert main([*args, "--wait", "0"]) == 2  # not a number of seconds > 0: one line, exit 2


def test_the_command_line_parses_before_it_loads_torch_and_registries_fill_on_first_lookup():
    probe = (
        "import sys, relustudy.cli\n"
        "assert 'torch' not in sys.modules and 'relustudy.sources' not in sys.modules, sorted(sys.modules)\n"
        "from relustudy.experiments import EXPERIMENTS\n"
        "assert 'xu_cifar10_nin' in EXPERIMENTS and 'relustudy.sources' in sys.modules\n"
        "from relustudy.claims import CLAIMS\n"
        "assert len(CLAIMS) > 50\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)


def test_a_reader_that_goes_away_is_no_traceback():
    """`relustudy list | head -1`: the pipe's reader is gone before the listing is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "relustudy.cli", "list"], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0
    assert proc.stderr == ""
