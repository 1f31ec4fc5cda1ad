"""Training a grid on a Ray cluster (``relustudy run EXP --executor ray [--address ADDR]``).

Each run is one Ray task asking for its resources: ``cpus_per_run`` CPUs (the run's threads), and
on a GPU ``gpus_per_run`` of one device -- 1 gives each run a GPU of its own, a fraction such as
0.25 lets four runs share one (Ray only counts: the runs share the device's memory and compute,
so pick a fraction whose runs fit in memory together). Without an address Ray starts a local
cluster on this machine with all its CPUs and stops it afterwards.

Security. Ray's servers listen on every network interface (measured with Ray 2.60: the GCS, the
raylet and the workers on ``*:port``, also with ``_node_ip_address="127.0.0.1"``), and without
authentication anyone who reaches a port can run code here. So a local cluster is started with
Ray's token authentication (``RAY_AUTH_MODE=token``) and a random token that only this process and
its workers hold (``local_cluster_auth``); no dashboard. A cluster given by ``--address`` is its
operator's: enable token authentication there (Ray's "token-auth" guide).

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
import logging
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from .config import ConfigError, RunConfig

MAX_RETRIES = 3
# Files a run's record consists of, in the order the driver writes them (result.json last: the
# commit point).
RECORD_ORDER = ("config.json", "history.csv", "activation_stats.json", "result.json")
TASK_NAME = "relustudy_train"  # the worker's process title while it trains: "ray::relustudy_train"
NODE_LOCAL_ENV = "RELUSTUDY_RAY_NODE_LOCAL"  # set on a node: never train into the driver's store path
NODE_STORE_DIR = "relustudy-ray"  # a node-local store: <the node's temporary folder>/relustudy-ray/<driver token>


def require_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to get it."""
    try:
        import ray
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
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _train_task(
    config_dict: dict[str, Any], driver_root: str, token: str, data_dir: str | None, download: bool
) -> dict[str, Any]:
    """The task a worker runs: train one run where its checkpoints are reachable; the record, and
    its files when the driver's store is not this node's."""
    from .store import ResultsStore
    from .trainer import train

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
    from .store import StoreError, atomic_write

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
    from .store import RunClaimed

    if cpus_per_run < 1:
        raise ConfigError(f"each Ray task needs at least one CPU, got {cpus_per_run}")
    if gpus_per_run < 0 or gpus_per_run > 1 and gpus_per_run != int(gpus_per_run):
        raise ConfigError(f"--gpus-per-job must be a fraction in (0, 1] or a whole number, got {gpus_per_run}")
    started_here = not ray.is_initialized()
    auth = local_cluster_auth() if started_here and not address else contextlib.nullcontext()
    with auth:
        if started_here:
            if not address:  # a local cluster's workers inherit this environment: import this very package
                here = str(Path(__file__).resolve().parents[1])
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
                # Ray runs its workers at niceness 15; the runs are this machine's work, not background
                # (on a busy machine a worker took 70 s instead of 4 to import torch).
                os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 1) // cpus_per_run
        if gpus_per_run:
            slots = min(slots, resources.get("GPU", 0) // gpus_per_run)
        on_parallel(max(1, int(slots)))
        token = f".ray-driver-{uuid.uuid4().hex}"
        store.root.mkdir(parents=True, exist_ok=True)
        (store.root / token).write_text(f"{os.getpid()}\n")
        try:
            task = ray.remote(_train_task).options(
                name=TASK_NAME, num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=MAX_RETRIES
            )
            pending = {
                task.remote(cfg.to_dict(), str(store.root), token, data_dir, download): i
                for i, cfg in enumerate(configs)
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
            if started_here:
                ray.shutdown()
