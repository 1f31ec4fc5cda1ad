"""Results store: atomic writes, completeness, provenance, tidy loaders."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from relustudy import provenance as prov_mod
from relustudy import store as store_mod
from relustudy.config import RunConfig
from relustudy.provenance import provenance, utc_now
from relustudy.results import load_activation_stats, load_histories, load_results
from relustudy.store import CLAIM_FILE, ResultsStore, RunClaimed, StoreError, atomic_write, process_identity

BASE = dict(experiment="exp", profile="smoke", dataset="mnist", model="smith_cnn", activation="relu", epochs=2)


def cfg(**changes) -> RunConfig:
    return RunConfig.from_dict({**BASE, **changes})


def prov(config: RunConfig) -> dict:
    return provenance(config, device="cpu", start_time=utc_now(), end_time=utc_now(), wall_seconds=1.5, num_threads=2)


def fake_run(store: ResultsStore, config: RunConfig, metrics: dict, status: str = "complete") -> dict:
    store.begin(config)
    store.write_history(
        config,
        [
            {"epoch": e, "train_loss": 1.0 / e, "test_error": 0.5 / e, "epoch_seconds": 0.1}
            for e in range(1, config.epochs + 1)
        ],
    )
    store.write_stats(
        config,
        [
            {
                "epoch": config.epochs,
                "layer": "last_conv",
                "sparsity": 1 / 3,
                "dispersion": 0.1,
                "dead_fraction": 0.0,
                "n_units": 3,
                "curve": np.array([0.5, 1 / 3, 1 / 6]),
            }
        ],
    )
    return store.write_result(config, status=status, metrics=metrics, provenance=prov(config))


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------- atomic writes
def test_atomic_write_roundtrip_and_permissions(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write(target, "hello")
    atomic_write(target, b"bytes")
    atomic_write(target, lambda f: f.write(b"streamed"))
    assert target.read_bytes() == b"streamed"
    assert leftovers(target.parent) == []
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_crash_in_os_replace_leaves_no_record(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.begin(c)

    def boom(src, dst):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(store_mod.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        store.write_result(c, status="complete", metrics={"test_error": 0.1}, provenance=prov(c))
    monkeypatch.undo()
    run_dir = store.run_dir(c)
    assert not (run_dir / "result.json").exists()
    assert leftovers(run_dir) == []
    assert not store.is_complete(c) and store.load_record(c) is None
    assert load_results(tmp_path).empty


def test_crash_mid_write_keeps_the_old_file_intact(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    fake_run(store, c, {"test_error": 0.25})
    before = (store.run_dir(c) / "result.json").read_bytes()

    def dies_halfway(f):
        f.write(b'{"status": "complete", "metr')
        raise KeyboardInterrupt  # e.g. Ctrl-C or a kill while writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(store.run_dir(c) / "result.json", dies_halfway)
    assert (store.run_dir(c) / "result.json").read_bytes() == before
    assert leftovers(store.run_dir(c)) == []
    assert store.load_record(c)["metrics"]["test_error"] == 0.25


def test_failing_serialiser_touches_nothing(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.begin(c)
    with pytest.raises(TypeError):
        store.write_result(c, status="complete", metrics={"bad": object()}, provenance=prov(c))
    assert not (store.run_dir(c) / "result.json").exists()
    assert not store.is_complete(c)


@pytest.mark.parametrize("content", ["", "{", '{"status": "running"}', "[1, 2]", '{"metrics": {}}'])
def test_incomplete_or_torn_result_is_not_complete(tmp_path, content):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.begin(c)
    (store.run_dir(c) / "result.json").write_text(content)
    assert not store.is_complete(c)
    assert load_results(tmp_path).empty


def test_stale_tmp_files_are_removed_on_begin(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    d = store.begin(c)
    (d / ".result.json.abc.tmp").write_text("half")
    store.begin(c)
    assert leftovers(d) == []


def test_write_result_rejects_unknown_status(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(ValueError, match="status"):
        store.write_result(cfg(), status="running", metrics={}, provenance={})


# ---------------------------------------------------------------------------- layout / formats
def test_layout_and_files(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg(seed=1)
    rec = fake_run(store, c, {"test_error": 0.2, "train_loss": float("nan")}, status="diverged")
    d = tmp_path / "exp" / "smoke" / c.run_id()
    assert store.run_dir(c) == d
    assert {p.name for p in d.iterdir()} == {"config.json", "history.csv", "activation_stats.json", "result.json"}
    assert (
        RunConfig.from_dict({k: v for k, v in json.loads((d / "config.json").read_text()).items() if k != "run_id"})
        == c
    )
    text = (d / "result.json").read_text()
    assert "NaN" not in text  # strict JSON: non-finite -> null
    parsed = json.loads(text)
    assert parsed == rec and parsed["status"] == "diverged" and parsed["metrics"]["train_loss"] is None
    assert store.is_complete(c)  # diverged counts as complete (nothing left to compute)
    stats = json.loads((d / "activation_stats.json").read_text())["records"][0]
    assert stats["sparsity"] == 0.333333 and stats["curve"] == [0.5, 0.333333, 0.166667]


def test_provenance_fields(tmp_path):
    c = cfg(seed=4)
    p = prov(c)
    for key in (
        "git_commit",
        "git_dirty",
        "profile",
        "seed",
        "device",
        "torch_version",
        "python_version",
        "start_time",
        "end_time",
        "wall_seconds",
    ):
        assert key in p, key
    assert p["profile"] == "smoke" and p["seed"] == 4 and p["wall_seconds"] == 1.5
    assert p["device"].startswith("cpu: 2 threads")
    assert p["start_time"].endswith("+00:00")
    assert isinstance(p["git_commit"], str) and p["git_commit"]
    assert p["git_dirty"] in (True, False, "unknown")
    assert len(p["source_sha256"]) == 64

    assert p["cpu_identity"].endswith(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}")


def test_cpu_identity_reads_family_and_model(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text(
        "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 99\n",
        encoding="utf-8",
    )
    real_open = open
    monkeypatch.setattr(
        "builtins.open", lambda path, *a, **k: real_open(fake if path == "/proc/cpuinfo" else path, *a, **k)
    )
    prov_mod._cpuinfo.cache_clear()  # read once per process: make it read the fake
    try:
        assert prov_mod.cpu_identity().startswith("AMD EPYC (family 25 model 17), torch CPU capability ")
    finally:
        prov_mod._cpuinfo.cache_clear()


def test_git_dirty_counts_code_not_records(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "relustudy"
    pkg.mkdir(parents=True)
    (pkg / "provenance.py").write_text("# code\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "record.json").write_text("{}\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    monkeypatch.setattr(prov_mod, "__file__", str(pkg / "provenance.py"))
    try:
        assert prov_mod.git_info(refresh=True)["git_dirty"] is False
        (tmp_path / "results" / "record.json").write_text('{"rewritten": true}\n')  # a record, not code
        assert prov_mod.git_info(refresh=True)["git_dirty"] is False
        (pkg / "provenance.py").write_text("# edited\n")
        info = prov_mod.git_info(refresh=True)
        assert info["git_dirty"] is True and len(info["git_commit"]) == 40
    finally:
        monkeypatch.undo()
        prov_mod.git_info(refresh=True)


def test_git_info_is_unknown_without_git(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(prov_mod.subprocess, "run", no_git)
    info = prov_mod.git_info(refresh=True)
    assert info["git_commit"] == "unknown" and info["git_dirty"] == "unknown"
    assert info["source_sha256"] == prov_mod.package_source_sha256()
    monkeypatch.undo()
    prov_mod.git_info(refresh=True)


def test_git_state_is_a_snapshot_not_reread_per_record(monkeypatch):
    # A long run keeps the code it loaded: editing or committing the tree meanwhile must not
    # change what later records of the same process say about their code.
    before = prov_mod.git_info()
    calls = []
    monkeypatch.setattr(prov_mod.subprocess, "run", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError()))
    assert prov_mod.git_info() == before
    assert calls == []


def test_source_hash_changes_with_the_code(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    fake = pkg / "store.py"
    fake.write_text("")
    monkeypatch.setattr(prov_mod, "__file__", str(fake))
    h1 = prov_mod.package_source_sha256()
    (pkg / "a.py").write_text("x = 2\n")
    h2 = prov_mod.package_source_sha256()
    assert h2 != h1 and len(h1) == 64
    (pkg / "sources").mkdir()  # a subpackage's module (the source modules hold the experiments)
    (pkg / "sources" / "s.py").write_text("ARMS = ()\n")
    assert prov_mod.package_source_sha256() != h2


def test_checkpoint_roundtrip_and_delete(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.save_checkpoint(c, {"epoch": 1, "t": torch.arange(3)})
    ck = store.load_checkpoint(c)
    assert ck["epoch"] == 1 and torch.equal(ck["t"], torch.arange(3))
    store.delete_checkpoint(c)
    assert store.load_checkpoint(c) is None


# ---------------------------------------------------------------------------- tidy loaders
def test_load_results_is_tidy(tmp_path):
    store = ResultsStore(tmp_path)
    runs = [
        cfg(seed=0),
        cfg(seed=1),
        cfg(activation="lrelu", activation_params={"slope": 0.1}, arm="LReLU"),
        cfg(experiment="other"),
    ]
    for i, c in enumerate(runs):
        fake_run(store, c, {"test_error": 0.1 * i, "test_accuracy": 1 - 0.1 * i, "epochs_completed": 2})
    store.begin(cfg(seed=9))  # an unfinished run: not loaded

    df = load_results(tmp_path)
    for col in (
        "experiment",
        "profile",
        "dataset",
        "model",
        "activation",
        "activation_params",
        "activation_label",
        "seed",
        "run_id",
        "status",
        "metric",
        "value",
        "device",
        "wall_seconds",
        "git_commit",
    ):
        assert col in df.columns, col
    assert len(df) == len(runs) * 3
    assert not df.duplicated(["run_id", "metric"]).any()
    assert set(df["metric"]) == {"test_error", "test_accuracy", "epochs_completed"}
    lrelu = df[df["activation"] == "lrelu"]
    assert set(lrelu["activation_params"]) == {'{"slope": 0.1}'} and set(lrelu["activation_label"]) == {"LReLU"}
    assert set(df[df["activation"] == "relu"]["activation_label"]) == {"relu"}
    assert df.set_index(["run_id", "metric"]).loc[(runs[1].run_id(), "test_error"), "value"] == pytest.approx(0.1)

    only = load_results(tmp_path, experiment="exp", profile="smoke")
    assert set(only["experiment"]) == {"exp"} and len(only) == 3 * 3
    assert load_results(tmp_path, experiment="missing").empty
    assert "metric" in load_results(tmp_path / "nowhere").columns


def test_load_histories_and_stats(tmp_path):
    store = ResultsStore(tmp_path)
    a, b = cfg(seed=0), cfg(seed=1, epochs=3, stats_epochs=[3])
    fake_run(store, a, {"test_error": 0.1})
    fake_run(store, b, {"test_error": 0.2})
    h = load_histories(tmp_path)
    assert len(h) == 2 + 3
    assert {"experiment", "seed", "run_id", "epoch", "train_loss", "test_error"} <= set(h.columns)
    assert list(h[h["run_id"] == b.run_id()]["epoch"]) == [1, 2, 3]

    s = load_activation_stats(tmp_path)
    assert len(s) == 2 and {"run_id", "epoch", "layer", "sparsity", "curve"} <= set(s.columns)
    assert s.iloc[0]["curve"] == [0.5, 0.333333, 0.166667]


# ------------------------------------------------------------------------------ store check
def _good(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    fake_run(store, c, {"test_accuracy": 0.9, "test_error": 0.1})
    return store, c


def test_committed_results_are_all_valid_records():
    root = Path(__file__).resolve().parents[1] / "results"
    assert store_mod.check_store(root) == []


def test_a_status_alone_or_a_copied_record_is_not_complete(tmp_path):
    store, c = _good(tmp_path)
    assert store.is_complete(c)
    other = cfg(seed=7)
    store.begin(other)
    shutil.copy(store.path(c, "result.json"), store.path(other, "result.json"))  # the wrong folder
    assert not store.is_complete(other)
    store.path(c, "result.json").write_text('{"status": "complete"}')
    assert not store.is_complete(c)
    lines = store_mod.check_store(tmp_path)
    assert any("hashes to run id" in x for x in lines) and any("not a valid run config" in x for x in lines)
    assert sum("is missing" in x for x in lines) == 2  # the copy's files are not beside it
    assert len(lines) == 4


def test_store_check_fix_sets_invalid_aside_and_removes_leftovers(tmp_path):
    store, c = _good(tmp_path)
    store.path(c, "checkpoint.pt").write_bytes(b"x" * 10)  # killed between the result and the cleanup
    bad = cfg(seed=3)
    fake_run(store, bad, {"test_accuracy": float("nan")})
    lines = store_mod.check_store(tmp_path, fix=True)
    assert len(lines) == 2
    assert not store.path(c, "checkpoint.pt").exists() and store.is_complete(c)
    assert store.path(bad, "result.json.invalid").exists() and not store.path(bad, "result.json").exists()
    assert store_mod.check_store(tmp_path) == []
    # A second bad record in the same folder, set aside by a second --fix, keeps the first one.
    first = store.path(bad, "result.json.invalid").read_bytes()
    fake_run(store, bad, {"test_accuracy": float("inf")})
    (line,) = store_mod.check_store(tmp_path, fix=True)
    assert line.endswith("-> set aside as result.json.invalid.2")
    assert store.path(bad, "result.json.invalid").read_bytes() == first
    assert store.path(bad, "result.json.invalid.2").exists() and not store.path(bad, "result.json").exists()


def _record_elsewhere(tmp_path: Path, c: RunConfig) -> tuple[Path, dict[str, bytes]]:
    """A complete record with a checkpoint in a folder outside the store; its files' bytes."""
    other = ResultsStore(tmp_path / "other")
    fake_run(other, c, {"test_accuracy": 0.5})
    other.path(c, "checkpoint.pt").write_bytes(b"not the store's")
    folder = other.run_dir(c)
    return folder, {f.name: f.read_bytes() for f in folder.iterdir()}


@pytest.mark.parametrize("linked", ["run", "experiment"])
def test_nothing_outside_the_store_is_trusted_written_or_deleted_through_a_link(tmp_path, linked):
    store = ResultsStore(tmp_path / "results")
    c = cfg()
    folder, before = _record_elsewhere(tmp_path, c)
    if linked == "run":  # the run folder is a link to the outside record
        store.run_dir(c).parent.mkdir(parents=True)
        store.run_dir(c).symlink_to(folder, target_is_directory=True)
    else:  # the experiment folder is a link to the outside store's
        store.root.mkdir()
        (store.root / c.experiment).symlink_to(folder.parent.parent, target_is_directory=True)
    assert store.load_record(c) is None and store.records() == []  # not trusted as this store's record
    for act in (
        lambda: store.invalidate(c),  # what --force does first
        lambda: store.begin(c),
        lambda: store.claim(c).acquire(),
        lambda: store.delete_checkpoint(c),
        lambda: store.remove_leftovers(c),
        lambda: store.set_aside_checkpoint(c),
        lambda: store.write_history(c, []),
    ):
        with pytest.raises(StoreError, match="is a symbolic link"):
            act()
    lines = store_mod.check_store(store.root, fix=True)
    assert len(lines) == 1 and "symbolic link" in lines[0] and "left as it is" in lines[0]
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before  # every outside file as it was


def test_a_linked_experiment_folder_grows_no_folders_outside(tmp_path):
    store = ResultsStore(tmp_path / "results")
    c = cfg()
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir()
    (store.root / c.experiment).symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError):
        store.begin(c)
    assert list(outside.iterdir()) == []


def test_a_results_folder_that_is_itself_a_link_is_fine(tmp_path):
    real = tmp_path / "disk"
    real.mkdir()
    (tmp_path / "results").symlink_to(real, target_is_directory=True)
    store = ResultsStore(tmp_path / "results")
    fake_run(store, cfg(), {"test_accuracy": 0.5})
    assert store.is_complete(cfg()) and len(store.records()) == 1


def test_a_record_is_valid_only_while_the_files_it_names_match(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.begin(c)
    store.write_history(c, [{"epoch": 1, "test_accuracy": 0.5}])
    store.write_stats(c, [])
    rec = store.write_result(c, status="complete", metrics={"test_accuracy": 0.5}, provenance={})
    assert set(rec["files"]) == {"history.csv", "activation_stats.json"} and store.is_complete(c)
    hist = store.path(c, "history.csv")
    good = hist.read_bytes()
    hist.write_bytes(good.replace(b"0.5", b"0.9"))  # a history edited after the run
    assert not store.is_complete(c)
    assert any("history.csv does not match" in line for line in store_mod.check_store(tmp_path))
    hist.write_bytes(good)
    assert store.is_complete(c)
    hist.unlink()
    assert not store.is_complete(c)
    assert any("history.csv is missing" in line for line in store_mod.check_store(tmp_path))


def test_a_changed_digit_in_a_record_is_found_by_its_checksum(tmp_path):
    store = ResultsStore(tmp_path)
    config = cfg()
    fake_run(store, config, {"test_accuracy": 0.9123})
    assert store.is_complete(config)
    path = store.path(config, "result.json")
    path.write_text(path.read_text().replace("0.9123", "0.9124"))  # still valid JSON, one digit off
    assert not store.is_complete(config)
    assert any("does not match its own checksum" in line for line in store_mod.check_store(tmp_path))


def test_a_complete_runs_leftovers_are_removed_and_a_set_aside_checkpoint_kept(tmp_path):
    store = ResultsStore(tmp_path)
    config = cfg()
    fake_run(store, config, {"test_accuracy": 0.9})
    folder = store.run_dir(config)
    (folder / "checkpoint.pt").write_bytes(b"x" * 10)
    (folder / ".result.json.abc.tmp").write_bytes(b"{")
    (folder / "checkpoint-set-aside-20260101T000000Z.pt").write_bytes(b"y")
    removed = store.remove_leftovers(config)
    assert sorted(p.name for p in removed) == [".result.json.abc.tmp", "checkpoint.pt"]
    assert store_mod.leftovers(folder) == [] and (folder / "checkpoint-set-aside-20260101T000000Z.pt").exists()
    assert store.is_complete(config)


def test_a_claim_whose_pid_now_names_another_process_is_stale_and_reported(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.begin(c)
    claim_path = store.path(c, CLAIM_FILE)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = {"pid": other.pid, "host": socket.gethostname(), "since": "then"}
        if process_identity(other.pid) is None:
            pytest.skip("no /proc here: only liveness can be checked")
        # The live process is the holder it names: the claim holds, and check reports nothing.
        claim_path.write_text(json.dumps({**me, "process": process_identity(other.pid)}))
        with pytest.raises(RunClaimed):
            store.claim(c).acquire()
        assert store_mod.check_store(tmp_path) == []
        # The same pid, another process (reused after the holder died, or after a restart): stale.
        claim_path.write_text(json.dumps({**me, "process": "another-boot:12345"}))
        (line,) = store_mod.check_store(tmp_path, fix=True)
        assert "stale claim" in line and f"pid {other.pid}" in line and claim_path.exists()  # --fix leaves it
        with store.claim(c) as taken:
            assert taken.held and json.loads(claim_path.read_text())["pid"] == os.getpid()
    finally:
        other.kill()
        other.wait()
    assert not claim_path.exists()


def test_a_claim_held_by_a_zombie_is_stale(tmp_path):
    store = ResultsStore(tmp_path)
    c = cfg()
    store.begin(c)
    done = subprocess.Popen([sys.executable, "-c", "pass"])  # exits at once; not reaped until wait()
    for _ in range(100):
        if Path(f"/proc/{done.pid}/stat").exists() and " Z " in Path(f"/proc/{done.pid}/stat").read_text():
            break
        time.sleep(0.05)
    else:
        done.wait()
        pytest.skip("no zombie to check (no /proc, or the process was reaped)")
    store.path(c, CLAIM_FILE).write_text(json.dumps({"pid": done.pid, "host": socket.gethostname()}))
    try:
        with store.claim(c) as taken:  # the exited holder's claim is taken over
            assert taken.held
    finally:
        done.wait()


@pytest.mark.parametrize("existing", [False, True])
def test_reading_a_store_before_its_first_run_creates_nothing(tmp_path, existing):
    """Every read (records, histories, statistics, a run's record, the store check) of a results
    folder that is missing or empty leaves the file system as it was: no experiment folder."""
    root = tmp_path / "results"
    if existing:
        root.mkdir()
    store = ResultsStore(root)
    config = cfg()
    assert load_results(root, "exp", "smoke").empty and load_histories(root, "exp", "smoke").empty
    assert load_activation_stats(root, "exp", "smoke").empty
    assert store.load_record(config) is None and not store.is_complete(config) and store.load_stats(config) == []
    assert not store.claim(config).stale()
    assert store_mod.check_store(root) == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == ([Path("results")] if existing else [])


def _rewrite_as(store: ResultsStore, config: RunConfig, **changes) -> Path:
    """Rewrite a run's result.json as another relustudy would have written it (its checksum made
    again, so that it is valid as written)."""
    path = store.run_dir(config) / "result.json"
    rec = json.loads(path.read_text())
    rec = {k: v for k, v in {**rec, **changes}.items() if v is not None}
    rec.pop("checksum")
    path.write_text(store_mod.dumps_json({**rec, "checksum": store_mod.record_checksum(rec)}))
    return path


def test_a_format_1_record_is_read_upgraded_and_a_newer_one_is_left_alone(tmp_path):
    store = ResultsStore(tmp_path)
    old, new = cfg(seed=0), cfg(seed=1)
    metrics = {"test_accuracy": 0.9, "test_error": 0.1, "train_eval_error": 0.04}
    written = fake_run(store, old, metrics)
    assert written["schema_version"] == store_mod.SCHEMA_VERSION == 2
    assert written["metrics"]["generalization_gap"] == pytest.approx(0.06)  # format 2 writes it
    provenance_v1 = {k: v for k, v in written["provenance"].items() if k not in ("cpu_identity", "model_execution")}
    _rewrite_as(store, old, schema_version=None, format=1, metrics=metrics, provenance=provenance_v1)
    rec = store.load_record(old)
    assert rec["schema_version"] == 2 and rec["upgraded_from"] == 1 and "format" not in rec
    assert rec["provenance"]["cpu_identity"] is None and rec["provenance"]["model_execution"] == "eager"
    assert rec["metrics"]["generalization_gap"] == pytest.approx(0.06)
    assert load_results(store)["metric"].eq("generalization_gap").sum() == 1
    assert check_store_lines(tmp_path) == []

    fake_run(store, new, metrics)
    newer = _rewrite_as(store, new, schema_version=3)
    assert store.load_record(new) is None
    for fix in (False, True):
        lines = store_mod.check_store(tmp_path, fix=fix)
        assert len(lines) == 1 and "record schema version 3" in lines[0] and "left as it is" in lines[0]
    assert newer.is_file()  # never set aside: it is another relustudy's valid record
    with pytest.raises(ValueError, match="record schema version 3"):
        store_mod.upgrade_record(json.loads(newer.read_text()))


def check_store_lines(root) -> list[str]:
    return store_mod.check_store(root)


def test_every_committed_record_loads_in_this_format():
    results = Path(__file__).resolve().parents[1] / "results"
    files = [p for p in results.rglob("result.json") if "microbench" not in p.parts and "faults" not in p.parts]
    assert files, "no committed records found"
    loaded = {p: store_mod._read_result(p) for p in files}  # pilots' records sit one folder deeper
    assert [p for p, r in loaded.items() if r is None] == []
    assert len(ResultsStore(results).records()) == sum("pilots" not in p.parts for p in files)
    assert {r["schema_version"] for r in loaded.values()} == {store_mod.SCHEMA_VERSION}


def test_a_version_2_record_without_its_checksums_is_not_a_record(tmp_path):
    store = ResultsStore(tmp_path)
    config = cfg()
    fake_run(store, config, {"test_accuracy": 0.9, "test_error": 0.1})
    path = store.run_dir(config) / "result.json"
    rec = json.loads(path.read_text())
    rec.pop("checksum"), rec.pop("files")
    path.write_text(json.dumps(rec))
    assert store.load_record(config) is None
    lines = store_mod.check_store(tmp_path)
    assert any("no checksum (required from record schema version 2)" in line for line in lines)
