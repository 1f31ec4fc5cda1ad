"""Grids on Ray (relustudy.ray_executor): a local cluster gives the records of a sequential run, a
worker killed mid-run is retried and its record completes, and a record trained on another file
system comes home verified."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import SCHEDULED_SLICE
from tiny_runs import small

from relustudy.config import ConfigError, RunConfig
from relustudy.data import dataset_available
from relustudy.experiments import get_experiment, run_experiment
from relustudy.ray_executor import (
    AUTH_VARIABLES,
    LOOPBACK_ADDRESSES,
    NODE_LOCAL_ENV,
    NODE_STORE_DIR,
    TASK_NAME,
    _train_task,
    bring_home,
    local_cluster_auth,
    loopback_environment,
    own_addresses,
)
from relustudy.store import ResultsStore, StoreError
from relustudy.trainer import TIMING_METRICS

ray = pytest.importorskip("ray", reason="ray is not installed (requirements.lock pins it)")


def _mnist_available() -> bool:
    return dataset_available("mnist")


needs_mnist = pytest.mark.skipif(not _mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")


def _untimed(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r["metrics"].items() if k not in TIMING_METRICS} for r in records]


def _task_pids() -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"ray::{TASK_NAME}".encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def test_bad_executor_options_are_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown executor 'dask'; valid: local, ray"):
        run_experiment("tf_rrelu_mnist_bn", "smoke", executor="dask", results_dir=tmp_path, log=None)
    with pytest.raises(ConfigError, match="--address names a Ray cluster"):
        run_experiment("tf_rrelu_mnist_bn", "smoke", address="10.0.0.1:6379", results_dir=tmp_path, log=None)


@needs_mnist
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux) to find the worker")
def test_a_ray_grid_gives_the_sequential_records_even_when_a_worker_is_killed(tmp_path, sequential_slice):
    seq = sequential_slice
    killed: list[int] = []
    finished = threading.Event()

    def kill_the_first_worker_once() -> None:  # SIGKILL a training task after it has run a moment
        while not finished.is_set():
            pids = _task_pids()
            if pids:
                finished.wait(0.3)  # the task's title is set once its module (torch) is imported
                if pids[0] in _task_pids():
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
            finished.wait(0.1)

    killer = threading.Thread(target=kill_the_first_worker_once, daemon=True)
    killer.start()
    try:
        kw = dict(SCHEDULED_SLICE)
        on_ray = run_experiment(
            kw.pop("name"), kw.pop("profile"), results_dir=tmp_path / "ray", executor="ray", log=None, **kw
        )
    finally:
        finished.set()
        killer.join(timeout=5)
    assert killed, "no Ray worker was seen training"
    assert len(on_ray) == len(seq)
    assert _untimed(on_ray) == _untimed(seq)  # bit-identical to a sequential run, the killed one too
    store = ResultsStore(tmp_path / "ray")
    assert all(store.is_complete(RunConfig.from_dict(r["config"])) for r in on_ray)
    assert not list((tmp_path / "ray").glob(".ray-driver-*"))  # the driver's token is gone


@needs_mnist
def test_a_record_trained_on_another_file_system_comes_home_verified(tmp_path):
    config = small(experiment="ray_test", train_subset=128, test_subset=100, epochs=1)
    driver = ResultsStore(tmp_path / "driver")
    # no token in the driver's folder: the task trains in a store of its own node and sends the files
    out = _train_task(config.to_dict(), str(driver.root), f".ray-driver-test-{os.getpid()}", None, False)
    assert set(out["files"]) >= {"result.json", "history.csv"} and not driver.is_complete(config)
    bring_home(driver, config, out)
    assert driver.load_record(config)["metrics"]["test_accuracy"] == out["record"]["metrics"]["test_accuracy"]
    damaged = {**out, "files": {**out["files"], "history.csv": out["files"]["history.csv"] + b"1,2\n"}}
    other = ResultsStore(tmp_path / "other")
    with pytest.raises(StoreError, match="does not verify"):
        bring_home(other, config, damaged)
    assert not other.is_complete(config) and not (other.run_dir(config) / "result.json").exists()


def test_local_cluster_auth_sets_a_private_token_and_restores_the_environment(monkeypatch):
    for k in AUTH_VARIABLES:
        monkeypatch.delenv(k, raising=False)
    with local_cluster_auth():
        assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
        first = os.environ["RAY_AUTH_TOKEN"]
    assert not any(k in os.environ for k in AUTH_VARIABLES)
    with local_cluster_auth():
        assert os.environ["RAY_AUTH_TOKEN"] != first  # a fresh token per cluster
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's own choice is kept
    with local_cluster_auth():
        assert os.environ["RAY_AUTH_MODE"] == "disabled" and "RAY_AUTH_TOKEN" not in os.environ


@pytest.mark.slow
def test_a_local_cluster_refuses_a_client_without_its_token():
    probe = "import logging, sys, ray; ray.init(address=sys.argv[1], logging_level=logging.ERROR); print('connected')"
    with local_cluster_auth():
        ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False, num_cpus=1)
        try:
            assert ray.get(ray.remote(lambda: 42).remote()) == 42  # the cluster's own work runs
            gcs = ray.get_runtime_context().gcs_address
            env = {k: v for k, v in os.environ.items() if k not in AUTH_VARIABLES}
            out = subprocess.run(
                [sys.executable, "-c", probe, gcs], env=env, capture_output=True, text=True, timeout=120
            )
        finally:
            ray.shutdown()
    assert out.returncode != 0 and "connected" not in out.stdout and "authentication" in out.stderr.lower()


@needs_mnist
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux) to find the worker")
def test_two_nodes_one_of_which_shares_nothing_give_the_sequential_records(tmp_path, sequential_slice):
    """A real two-node cluster on one machine: the head has no CPUs, so every run goes to a worker
    node that does not share the driver's store (RELUSTUDY_RAY_NODE_LOCAL, its own TMPDIR). The
    driver is a process of its own (``relustudy run --executor ray --address``). The far node is
    killed while it trains and a new one takes the retried task. The records that come home equal
    the sequential ones, and the far nodes trained in their own stores."""
    from ray.cluster_utils import Cluster  # noqa: PLC0415 (ray is optional)

    src = str(Path(__file__).resolve().parents[1] / "src")
    pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)

    def far_node(name: str):
        tmp = tmp_path / name
        tmp.mkdir()
        return cluster.add_node(
            num_cpus=1, env_vars={NODE_LOCAL_ENV: "1", "TMPDIR": str(tmp), "PYTHONPATH": pythonpath}
        )

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        first = far_node("node-a")
        kw = dict(SCHEDULED_SLICE)
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "relustudy.cli",
                "run",
                kw["name"],
                "--profile",
                kw["profile"],
                "--seeds",
                *map(str, kw["seeds"]),
                "--threads-per-job",
                str(kw["num_threads"]),
                "--results-dir",
                str(tmp_path / "driver"),
                "--executor",
                "ray",
                "--address",
                cluster.address,
            ],
            env={**os.environ, "PYTHONPATH": pythonpath},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 300
        while not _task_pids() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        killed = bool(_task_pids())
        if killed:
            time.sleep(1.0)
            far_node("node-b")  # first: the grid always has somewhere to go
            cluster.remove_node(first, allow_graceful=False)
        output, _ = driver.communicate(timeout=600)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert driver.returncode == 0, output[-2000:]
    assert killed, "no Ray worker was seen training on the far node"
    store = ResultsStore(tmp_path / "driver")
    records = [store.load_record(RunConfig.from_dict(r["config"])) for r in sequential_slice]
    assert all(records), "a run's record did not come home"
    assert _untimed(records) == _untimed(sequential_slice)
    far_records = [p for node in ("node-a", "node-b") for p in (tmp_path / node / NODE_STORE_DIR).rglob("result.json")]
    assert len(far_records) >= len(records)  # every run trained in a far node's own store
    assert not list((tmp_path / "driver").rglob("checkpoint.pt"))
    assert json.loads(Path(far_records[0]).read_text())["status"] == "complete"


def _cluster_listeners(seen: dict, stop: threading.Event) -> None:
    """Every listening socket of a Ray process (and of the loopback driver) until ``stop``."""
    import psutil  # noqa: PLC0415 (optional dependency)

    while not stop.is_set():
        for c in psutil.net_connections(kind="inet"):
            if c.status != psutil.CONN_LISTEN or not c.pid:
                continue
            try:
                proc = psutil.Process(c.pid)
                name, cmd = proc.name(), " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if name in ("gcs_server", "raylet") or "ray::" in cmd or "relustudy.ray_executor" in cmd:
                seen[(c.pid, c.laddr.ip, c.laddr.port)] = name if name != "python3.11" else cmd[:40]
        stop.wait(0.3)


@needs_mnist
@pytest.mark.slow
def test_a_local_cluster_listens_on_loopback_only(tmp_path):
    seen: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_cluster_listeners, args=(seen, stop), daemon=True)
    watcher.start()
    try:
        records = run_experiment(
            "tf_rrelu_mnist_bn", "smoke", seeds=(0,), results_dir=tmp_path, executor="ray", log=None, device="cpu"
        )
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert len(records) == len(get_experiment("tf_rrelu_mnist_bn").arms)
    assert {"gcs_server", "raylet"} <= set(seen.values())  # the watcher saw the cluster's servers
    outside = {k: v for k, v in seen.items() if k[1] not in LOOPBACK_ADDRESSES}
    assert not outside, f"listening beyond loopback: {outside}"


_SHIM_PROBE = r"""
import socket, sys
v4 = socket.socket(socket.AF_INET); v4.bind(("0.0.0.0", 0)); v4.listen()
v6 = socket.socket(socket.AF_INET6); v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
v6.bind(("::", 0)); v6.listen()
out = socket.socket(socket.AF_INET); out.settimeout(5)
out.connect((sys.argv[1], v4.getsockname()[1]))  # this machine's own address: redirected to loopback
print(v4.getsockname()[0], v6.getsockname()[0], out.getpeername()[0])
"""


def test_the_loopback_library_keeps_servers_on_loopback_and_redirects_own_addresses():
    own = own_addresses() or ["192.0.2.1"]  # a machine with no other interface: a documentation address
    env = loopback_environment({**os.environ, "RELUSTUDY_OWN_ADDRESSES": ""})
    env["RELUSTUDY_OWN_ADDRESSES"] = ",".join(own)
    out = subprocess.run([sys.executable, "-c", _SHIM_PROBE, own[0]], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["127.0.0.1", "::ffff:127.0.0.1", "127.0.0.1"]
    bare = subprocess.run([sys.executable, "-c", _SHIM_PROBE.split("out =")[0] + "print(v4.getsockname()[0])"],
                          capture_output=True, text=True)  # fmt: skip
    assert bare.stdout.strip() == "0.0.0.0"  # without it, the wildcard stays the wildcard
