"""Where a grid's runs train: one at a time in this process, N at a time in worker processes, or as
tasks on a Ray cluster; one interface for all three.

An executor trains the configs it is given into a store and reports through three callbacks:
``on_done(index, record, seconds)`` as each run completes, ``on_claimed(index, error)`` for a run
another live process holds (:class:`~relustudy.store.RunClaimed`: left to that process), and
``on_parallel(n)``, once, with how many runs train at a time (the progress line's ETA). A run's
record does not depend on the executor, only on its threads: every executor calls the same
:func:`relustudy.trainer.train`.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

from .config import ConfigError, RunConfig
from .ray_executor import train_on_ray  # ray is an optional dependency
from .store import ResultsStore, RunClaimed
from .trainer import train

OnDone = Callable[[int, dict[str, Any], float], None]
OnClaimed = Callable[[int, RunClaimed], None]
OnParallel = Callable[[int], None]

EXECUTORS = ("local", "ray")  # this machine (one run at a time, or --jobs N processes); a Ray cluster


@dataclass(frozen=True)
class TrainOptions:
    """What every run of one call shares, whichever executor trains it."""

    force: bool = False
    data_dir: str | None = None
    download: bool = False
    progress: bool | None = None


class Executor(Protocol):
    def train(
        self,
        configs: list[RunConfig],
        store: ResultsStore,
        options: TrainOptions,
        on_done: OnDone,
        on_claimed: OnClaimed,
        on_parallel: OnParallel,
    ) -> None: ...


def _train(config: RunConfig, store: ResultsStore, options: TrainOptions, progress: bool | None) -> dict[str, Any]:
    """The one training call every local executor makes."""
    return train(
        config, store, force=options.force, data_dir=options.data_dir, download=options.download, progress=progress
    )


class InProcess:
    """One run after another in this process."""

    def train(self, configs, store, options, on_done, on_claimed, on_parallel) -> None:
        on_parallel(1)
        for i, config in enumerate(configs):
            t0 = time.perf_counter()
            try:
                record = _train(config, store, options, options.progress)
            except RunClaimed as e:
                on_claimed(i, e)
                continue
            on_done(i, record, time.perf_counter() - t0)


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: stop when the driver is gone, so that killing ``relustudy run`` leaves
    no run training unseen (its checkpoint stays; the next ``run`` resumes it)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _train_one(config_dict: dict[str, Any], root: str, options: TrainOptions) -> tuple[dict[str, Any], float]:
    """Train one run in a worker process: the same call a sequential run makes."""
    t0 = time.perf_counter()
    progress = False if options.progress is None else options.progress  # no bars from workers unasked
    record = _train(RunConfig.from_dict(config_dict), ResultsStore(root), options, progress)
    return record, time.perf_counter() - t0


@dataclass(frozen=True)
class ProcessPool:
    """``jobs`` runs at a time, each in its own spawned worker process (no state shared)."""

    jobs: int

    def train(self, configs, store, options, on_done, on_claimed, on_parallel) -> None:
        if len(configs) <= 1:
            InProcess().train(configs, store, options, on_done, on_claimed, on_parallel)
            return
        on_parallel(min(self.jobs, len(configs)))
        with ProcessPoolExecutor(
            max_workers=min(self.jobs, len(configs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {pool.submit(_train_one, c.to_dict(), str(store.root), options): i for i, c in enumerate(configs)}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    record, seconds = fut.result()
                except RunClaimed as e:
                    on_claimed(i, e)
                    continue
                on_done(i, record, seconds)


@dataclass(frozen=True)
class RayCluster:
    """Each run a task on a Ray cluster (``address``; a local one, on loopback, when None), asking
    for ``cpus_per_run`` CPUs and ``gpus_per_run`` of a GPU: see :mod:`relustudy.ray_executor`."""

    address: str | None
    cpus_per_run: int
    gpus_per_run: float

    def train(self, configs, store, options, on_done, on_claimed, on_parallel) -> None:
        if options.force:  # recompute: the old records go first (a retried task must resume, not restart)
            for config in configs:
                store.invalidate(config)
        train_on_ray(
            configs,
            store,
            address=self.address,
            cpus_per_run=self.cpus_per_run,
            gpus_per_run=self.gpus_per_run,
            data_dir=options.data_dir,
            download=options.download,
            on_done=on_done,
            on_claimed=on_claimed,
            on_parallel=on_parallel,
        )


def make_executor(executor: str, *, jobs: int, address: str | None, cpus_per_run: int, gpus_per_run: float) -> Executor:
    """The executor ``executor`` names ("local": in this process, or ``jobs`` worker processes)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    if executor == "ray":
        return RayCluster(address, cpus_per_run, gpus_per_run)
    return InProcess() if jobs == 1 else ProcessPool(jobs)
