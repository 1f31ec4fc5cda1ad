"""Training a grid on a Ray cluster (``relustudy run EXP --executor ray [--address ADDR]``).

Each run is one Ray task asking for its resources: ``cpus_per_run`` CPUs (the run's threads), and
on a GPU ``gpus_per_run`` of one device -- 1 gives each run a GPU of its own, a fraction such as
0.25 lets four runs share one (Ray only counts: the runs share the device's memory and compute,
so pick a fraction whose runs fit in memory together). Without an address Ray starts a local
cluster on this machine with all its CPUs and stops it afterwards.

Security. Ray's servers listen on every network interface (measured with Ray 2.60: the GCS, the
raylet and the workers on ``*:port``, also with ``_node_ip_address="127.0.0.1"``, which Ray maps to
the machine's own address), and without authentication anyone who reaches a port can run code
here. So a local cluster is kept on the loopback interface: its driver runs in a child process
started with ``relustudy/kernels/loopback.c`` preloaded (``LD_PRELOAD``, inherited by every
process of the cluster), which puts every server socket on 127.0.0.1 and sends connections to
this machine's own addresses there (:func:`loopback_environment`). It also runs with Ray's token
authentication (``RAY_AUTH_MODE=token``) and a random token that only it and its workers hold
(``local_cluster_auth``), and no dashboard. A cluster given by ``--address`` is its operator's:
Ray has no authentication unless it is enabled there (Ray's "token-auth" guide) and encrypts
nothing unless its TLS settings (``RAY_USE_TLS`` and the certificate variables) are set.

Records reach the driver's results store whether or not a worker shares its file system: the
driver leaves a token file in its store; a worker that sees it trains straight into that store
(checkpoints included), one that does not trains into a store of its own node (under the system's
temporary folder, one per driver invocation) and sends the record's files back, which the driver
writes into its store, the record last, and verifies. A worker that dies is retried by Ray (up to
``MAX_RETRIES`` times); the retry resumes from the run's last checkpoint when it lands where that
checkpoint is (the shared store, or the same node). A run's record is the one a sequential run with
the same threads makes: the task calls the same :func:`relustudy.trainer.train`.

A node whose path to the driver's store exists but is not that store (another mount at the same
path, say) is told so by its operator with ``RELUSTUDY_RAY_NODE_LOCAL=1`` in the node's
environment (``ray start`` inherits it): its tasks then always train node-locally and send their
records home. The two-node test uses it to give one machine a node that shares nothing with the
driver (its own store under its own ``TMPDIR``).

The nodes of a remote cluster need this project's environment (``requirements.lock`` and the
package, e.g. ``pip install -e .``) and their datasets (``RELUSTUDY_DATA`` or the cache).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import kernels
from .config import ConfigError, RunConfig
from .store import ResultsStore, RunClaimed, StoreError, atomic_write
from .trainer import train

MAX_RETRIES = 3
# Files a run's record consists of, in the order the driver writes them (result.json last: the
# commit point).
RECORD_ORDER = ("config.json", "history.csv", "activation_stats.json", "result.json")
TASK_NAME = "relustudy_train"  # the worker's process title while it trains: "ray::relustudy_train"
NODE_LOCAL_ENV = "RELUSTUDY_RAY_NODE_LOCAL"  # set on a node: never train into the driver's store path
NODE_STORE_DIR = "relustudy-ray"  # a node-local store: <the node's temporary folder>/relustudy-ray/<driver token>
# The child's entry: imports this module by name (not as __main__), so Ray pickles its task by reference.
DRIVER_CODE = "import sys; from relustudy.ray_executor import _loopback_driver_main; sys.exit(_loopback_driver_main())"
EVENT_PREFIX = "relustudy-event "  # the child's event lines on its stdout, where Ray also prints
LOOPBACK_ENV = "RELUSTUDY_LOOPBACK"  # set in a driver started with the loopback library preloaded
OWN_ADDRESSES_ENV = "RELUSTUDY_OWN_ADDRESSES"  # this machine's IPv4 addresses, for loopback.c
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "::ffff:127.0.0.1")  # where a local cluster's servers listen


def require_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to get it."""
    try:
        import ray  # noqa: PLC0415 (optional dependency)
    except ImportError:
        raise ConfigError(
            "--executor ray needs the ray package (pinned in requirements.lock: "
            ".venv/bin/pip install -r requirements.lock)"
        ) from None
    return ray


AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@contextlib.contextmanager
def local_cluster_auth() -> Iterator[None]:
    """Token authentication for a local cluster started inside the block: a fresh random token in
    this process's environment (inherited by the cluster's processes), the previous settings back
    afterwards. A user who set ``RAY_AUTH_MODE`` keeps their own setting."""
    if os.environ.get("RAY_AUTH_MODE"):
        yield
        return
    saved = {k: os.environ.get(k) for k in AUTH_VARIABLES}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    _reload_ray_auth()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reload_ray_auth()


def _reload_ray_auth() -> None:
    """Make an already imported ray read the authentication settings again (it caches them at
    import; ray's own tests refresh them the same way)."""
    from ray._raylet import AuthenticationTokenLoader, Config  # noqa: PLC0415 (optional dependency)

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _train_task(
    config_dict: dict[str, Any], driver_root: str, token: str, data_dir: str | None, download: bool
) -> dict[str, Any]:
    """The task a worker runs: train one run where its checkpoints are reachable; the record, and
    its files when the driver's store is not this node's."""

    shared = (Path(driver_root) / token).is_file() and not os.environ.get(NODE_LOCAL_ENV)
    root = Path(driver_root) if shared else Path(tempfile.gettempdir()) / NODE_STORE_DIR / token
    config = RunConfig.from_dict(config_dict)
    store = ResultsStore(root)
    t0 = time.perf_counter()
    record = train(
        config,
        store,
        data_dir=data_dir if data_dir and Path(data_dir).is_dir() else None,
        download=download,
        progress=False,
    )
    files = {}
    if not shared:
        folder = store.run_dir(config)
        files = {name: (folder / name).read_bytes() for name in RECORD_ORDER if (folder / name).is_file()}
    return {"record": record, "seconds": time.perf_counter() - t0, "files": files, "host": os.uname().nodename}


def bring_home(store: Any, config: RunConfig, out: dict[str, Any]) -> None:
    """Write the record files a worker sent back (``out["files"]``; none when it trained in the
    driver's store) into ``store``, the record last, and verify them: a record that does not
    verify is removed again and raises :class:`~relustudy.store.StoreError`."""
    if not out["files"]:
        return
    folder = store.run_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    for name in RECORD_ORDER:
        if name in out["files"]:
            atomic_write(folder / name, out["files"][name])
    if store.load_record(config) is None:
        store.invalidate(config)
        raise StoreError(f"the record of {folder.name} sent back from {out['host']} does not verify")


def train_on_ray(
    configs: list[RunConfig],
    store: Any,
    *,
    address: str | None = None,
    cpus_per_run: int = 1,
    gpus_per_run: float = 0.0,
    data_dir: str | None = None,
    download: bool = False,
    on_done: Callable[[int, dict[str, Any], float], None],
    on_claimed: Callable[[int, Exception], None],
    on_parallel: Callable[[int], None] = lambda n: None,
) -> None:
    """Train ``configs`` as Ray tasks; ``on_done(index, record, seconds)`` as each completes,
    ``on_claimed(index, error)`` for a run another live process is training, and once
    ``on_parallel(n)``: how many runs the cluster can train at once (for the progress line)."""
    ray = require_ray()
    if cpus_per_run < 1:
        raise ConfigError(f"each Ray task needs at least one CPU, got {cpus_per_run}")
    if gpus_per_run < 0 or gpus_per_run > 1 and gpus_per_run != int(gpus_per_run):
        raise ConfigError(f"--gpus-per-job must be a fraction in (0, 1] or a whole number, got {gpus_per_run}")
    started_here = not ray.is_initialized()
    if started_here and not address and not in_loopback_driver():
        _train_in_loopback_driver(
            configs, store, cpus_per_run, gpus_per_run, data_dir, download, on_done, on_claimed, on_parallel
        )
        return
    auth = local_cluster_auth() if started_here and not address else contextlib.nullcontext()
    with auth:
        if started_here:
            if not address:  # this is the loopback driver: loopback_environment set PYTHONPATH for the workers
                # Ray runs its workers at niceness 15; the runs are this machine's work, not background
                # (on a busy machine a worker took 70 s instead of 4 to import torch).
                os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 1) // cpus_per_run
        if gpus_per_run:
            slots = min(slots, resources.get("GPU", 0) // gpus_per_run)
        on_parallel(max(1, int(slots)))
        try:
            _run_tasks(ray, configs, store, cpus_per_run, gpus_per_run, data_dir, download, on_done, on_claimed)
        finally:
            if started_here:
                ray.shutdown()


def _run_tasks(
    ray: Any,
    configs: list[RunConfig],
    store: Any,
    cpus_per_run: int,
    gpus_per_run: float,
    data_dir: str | None,
    download: bool,
    on_done: Callable[[int, dict[str, Any], float], None],
    on_claimed: Callable[[int, Exception], None],
) -> None:
    """One task per config on the connected cluster; each record is brought home as it completes.
    The driver's token in the store tells a worker on this machine that it may write there."""
    token = f".ray-driver-{uuid.uuid4().hex}"
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / token).write_text(f"{os.getpid()}\n")
    try:
        task = ray.remote(_train_task).options(
            name=TASK_NAME, num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=MAX_RETRIES
        )
        pending = {
            task.remote(cfg.to_dict(), str(store.root), token, data_dir, download): i for i, cfg in enumerate(configs)
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except RunClaimed as e:  # Ray re-raises the task's exception as (a subclass of) its type
                on_claimed(i, e)
                continue
            bring_home(store, configs[i], out)
            on_done(i, out["record"], out["seconds"])
    finally:
        (store.root / token).unlink(missing_ok=True)


# ------------------------------------------------------------------ a local cluster on loopback
def own_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (where Ray tells its processes to meet)."""
    import psutil  # noqa: PLC0415 (optional: installed with ray)

    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family.name == "AF_INET" and not a.address.startswith("127.") and a.address not in found:
                found.append(a.address)
    return found


def loopback_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the loopback library preloaded and the addresses it
    redirects, for a process whose Ray servers must listen on loopback only."""
    lib = str(kernels.loopback_library())
    out = dict(os.environ if env is None else env)
    out["LD_PRELOAD"] = os.pathsep.join(p for p in (lib, out.get("LD_PRELOAD")) if p)
    out[OWN_ADDRESSES_ENV] = ",".join(own_addresses())
    out[LOOPBACK_ENV] = lib
    here = str(Path(__file__).resolve().parents[1])  # the child and the cluster import this very package
    out["PYTHONPATH"] = os.pathsep.join(p for p in (here, out.get("PYTHONPATH")) if p)
    return out


def in_loopback_driver() -> bool:
    """Whether this process was started with the loopback library preloaded."""
    lib = os.environ.get(LOOPBACK_ENV)
    return bool(lib) and lib in os.environ.get("LD_PRELOAD", "").split(os.pathsep)


def _train_in_loopback_driver(
    configs: list[RunConfig],
    store: Any,
    cpus_per_run: int,
    gpus_per_run: float,
    data_dir: str | None,
    download: bool,
    on_done: Callable[[int, dict[str, Any], float], None],
    on_claimed: Callable[[int, Exception], None],
    on_parallel: Callable[[int], None],
) -> None:
    """Run the driver of a local cluster in a child process with the loopback library preloaded
    (a library cannot be preloaded into a running process), relaying its events to the callbacks."""
    try:
        env = loopback_environment()
    except OSError as e:
        raise ConfigError(f"a local Ray cluster needs its loopback library, which could not be built: {e}") from None
    payload = {
        "configs": [c.to_dict() for c in configs],
        "root": str(store.root),
        "cpus_per_run": cpus_per_run,
        "gpus_per_run": gpus_per_run,
        "data_dir": data_dir,
        "download": download,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER_CODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(payload))
    proc.stdin.close()
    failure = None
    try:
        for line in proc.stdout:
            if not line.startswith(EVENT_PREFIX):  # Ray's own messages: passed on where the user sees them
                sys.stderr.write(line)
                continue
            event = json.loads(line[len(EVENT_PREFIX) :])
            kind = event["event"]
            if kind == "parallel":
                on_parallel(int(event["n"]))
            elif kind == "done":
                on_done(int(event["index"]), event["record"], float(event["seconds"]))
            elif kind == "claimed":
                on_claimed(int(event["index"]), RunClaimed(event["message"]))
            elif kind == "error":
                failure = event
    finally:
        rc = proc.wait()
    if failure is not None:
        kind = {"ConfigError": ConfigError, "StoreError": StoreError}.get(failure["type"], RuntimeError)
        raise kind(failure["message"])
    if rc != 0:
        raise RuntimeError(f"the local Ray cluster's driver exited with status {rc} (its log is above)")


def _emit(**event: Any) -> None:
    sys.stdout.write(EVENT_PREFIX + json.dumps(event) + "\n")
    sys.stdout.flush()


def _loopback_driver_main() -> int:
    """The child of :func:`_train_in_loopback_driver`: read the grid from stdin, train it on a local
    cluster, and report each event as one JSON line on stdout."""
    payload = json.loads(sys.stdin.read())
    configs = [RunConfig.from_dict(c) for c in payload["configs"]]
    try:
        train_on_ray(
            configs,
            ResultsStore(payload["root"]),
            cpus_per_run=payload["cpus_per_run"],
            gpus_per_run=payload["gpus_per_run"],
            data_dir=payload["data_dir"],
            download=payload["download"],
            on_done=lambda i, record, seconds: _emit(event="done", index=i, record=record, seconds=seconds),
            on_claimed=lambda i, e: _emit(event="claimed", index=i, message=str(e)),
            on_parallel=lambda n: _emit(event="parallel", n=n),
        )
    except (ConfigError, StoreError) as e:
        _emit(event="error", type=type(e).__name__, message=str(e))
        return 2
    return 0
