"""Fault injection over real training runs: kill, corrupt and starve runs of one results store,
then check that no record is lost or torn, that no wrong record ever counts as complete, and that
every run resumed after a fault is bit-identical to an uninterrupted one.

One trial = one fault on a fresh store that already holds a complete *neighbour* record (another
seed of the same tiny run): the run under test is interrupted or damaged, then resumed to the end
in this process, and judged:

``survived``
    the final record equals the uninterrupted reference (metrics, history and activation
    statistics, timing aside), the neighbour is untouched and ``check_store`` finds nothing wrong;
``lost``
    the neighbour record was damaged or vanished, or the run ended without a record;
``wrong_complete``
    at some point the store called the run complete while its record differed from the reference;
``mismatch``
    the resumed record differs from the reference;
``leftover``
    the store check still reports a problem (a checkpoint or temporary file left behind).

Faults (:data:`FAULTS`): ``random_kill`` (SIGKILL of a child process at uniformly random moments,
twice per trial, anywhere from start-up to the last write), ``kill_in_write`` (SIGKILL just
before, inside -- half the bytes written -- or just after the k-th file write; each write once
before any twice, in a shuffled order, the three points taking turns), ``disk_full``
(ENOSPC from the k-th file write), ``checkpoint_byte`` (one byte of the checkpoint flipped after a
kill that followed its save), ``record_byte`` (one byte of a complete record's files flipped),
``linked_folder`` (a symbolic link from the store to a record outside it) and ``stale_claim`` (a
claim left by a dead process, or naming a pid that another process now has). Two more outcomes
belong to the last two: ``escaped`` (a file outside the store changed) and ``blocked`` (a stale
claim stopped the run). A *sentinel* tree outside every store is checksummed before and after the
suite (``files_outside_changed`` in the summary: must be 0).

:func:`run_suite` runs them and returns a summary with provenance; ``python -m relustudy.faults
suite --out FILE`` records it (the methods page shows the committed record); the test suite runs a
short version on every ``make test``.
"""

from __future__ import annotations

import argparse
import csv
import errno
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from . import store as store_module
from . import trainer
from .config import RunConfig
from .provenance import cpu_identity, git_info, utc_now
from .store import CLAIM_FILE, ResultsStore, RunClaimed, StoreError, check_store, write_json
from .trainer import TIMING_METRICS, train

FAULTS = {
    "random_kill": "SIGKILL at uniformly random moments (twice per trial), then resume",
    "kill_in_write": "SIGKILL just before, inside (half written) or just after the k-th file write, then resume",
    "disk_full": "ENOSPC from the k-th file write, then resume",
    "checkpoint_byte": "one byte of the checkpoint flipped after a kill, then resume",
    "record_byte": "one byte of a complete record's files flipped, then run again",
    "linked_folder": "the run folder (or its experiment folder) is a symbolic link to a record outside the store: "
    "--force, a run and store check --fix must refuse and change nothing there; then the link is replaced by a "
    "real folder and the run trained",
    "stale_claim": "a claim naming a process that is gone, or a live pid that is now another process, "
    "then run: the claim must be taken over",
}
OUTCOMES = ("survived", "lost", "wrong_complete", "mismatch", "leftover", "escaped", "blocked")
WRITE_POINTS = ("before", "inside", "after")
# Columns of history.csv that measure time (they differ between two runs of one config).
TIMING_HISTORY_COLUMNS = ("epoch_seconds", "images_per_second")
SUMMARY_FORMAT = 2

# The tiny run every trial trains: 256 MNIST images, 3 epochs, RReLU (it draws noise every step, so
# a resume must restore the RNG state), a step schedule and Adam (their states too), one thread.
SUITE_CONFIG = dict(
    experiment="fault_suite",
    profile="smoke",
    dataset="mnist",
    model="smith_cnn",
    activation="rrelu",
    train_subset=256,
    test_subset=200,
    batch_size=64,
    epochs=3,
    stats_epochs=[3],
    schedule="step",
    schedule_params={"milestones": [2], "gamma": 0.1},
    optimizer="adam",
    num_threads=1,
    seed=0,
)


@dataclass(frozen=True)
class Trial:
    fault: str
    detail: str  # where the fault struck (time, write index and point, byte offset)
    outcome: str
    note: str = ""


# ------------------------------------------------------------------------------ comparing records
def fingerprint(store: Any, config: RunConfig) -> dict[str, Any] | None:
    """What must not differ between two runs of ``config``: the untimed metrics, the untimed
    history rows (as text) and the bytes of the activation statistics; None without a valid record."""

    record = store.load_record(config)
    if record is None:
        return None
    folder = store.run_dir(config)
    history = []
    if (folder / "history.csv").is_file():
        with open(folder / "history.csv", newline="") as f:
            history = [{k: v for k, v in r.items() if k not in TIMING_HISTORY_COLUMNS} for r in csv.DictReader(f)]
    stats = folder / "activation_stats.json"
    return {
        "metrics": {k: v for k, v in record["metrics"].items() if k not in TIMING_METRICS},
        "history": history,
        "stats": hashlib.sha256(stats.read_bytes()).hexdigest() if stats.is_file() else None,
    }


def flip_byte(path: Path, rng: random.Random) -> int:
    """XOR one byte of ``path`` at a random offset with a random non-zero value; the offset."""
    data = bytearray(path.read_bytes())
    offset = rng.randrange(len(data))
    data[offset] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return offset


def tree_digest(root: Path) -> dict[str, str]:
    """Every file below ``root`` (relative path -> sha256 of its bytes): what a fault must not change
    outside the store."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _changed(before: dict[str, str], after: dict[str, str]) -> int:
    return sum(before.get(k) != after.get(k) for k in set(before) | set(after))


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped): what a claim left by a killed run names."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------ the child process
def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: like a power cut


def _killed_half_way(original: Callable[..., Any], path: Any, content: Any) -> Any:
    """Write half of ``content`` to ``path`` through ``original``, then die."""
    data = content.encode() if isinstance(content, str) else content
    if callable(data):  # a torch.save writer: let it write half, then die
        buf = io.BytesIO()
        data(buf)
        data = buf.getvalue()

    def half(f):
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        _die()

    return original(path, half)


def _armed_write(mode: str, arg: str, calls: list[int]) -> Callable[..., Any]:
    """The store's atomic write, counting its calls and firing ``mode``'s fault at the one ``arg`` names."""
    original = store_module.atomic_write

    def armed(path, content):
        calls[0] += 1
        if mode == "kill_write" and calls[0] == int(arg.split(":")[0]):
            where = arg.split(":")[1]
            if where == "before":
                _die()
            if where == "inside":
                return _killed_half_way(original, path, content)
            out = original(path, content)
            _die()
            return out
        if mode == "disk_full" and calls[0] == int(arg):

            def full(f):
                raise OSError(errno.ENOSPC, "No space left on device")

            return original(path, full)
        return original(path, content)

    return armed


def _die_after_checkpoint(n: int) -> None:
    """Make the store's ``n``-th checkpoint save the process's last act."""
    saves = [0]
    save = store_module.ResultsStore.save_checkpoint

    def save_then_die(self, cfg, state):
        out = save(self, cfg, state)
        saves[0] += 1
        if saves[0] == n:
            _die()
        return out

    store_module.ResultsStore.save_checkpoint = save_then_die


def _child(config_json: str, store_root: str, mode: str, arg: str) -> None:
    """Train in a child process with one fault armed (``mode``: run, count, kill_write, disk_full,
    kill_after_checkpoint); killed children never return."""
    config = RunConfig.from_dict(json.loads(config_json))
    calls = [0]
    store_module.atomic_write = _armed_write(mode, arg, calls)
    if mode == "kill_after_checkpoint":
        _die_after_checkpoint(int(arg))
    trainer.train(config, ResultsStore(store_root), progress=False)
    if mode == "count":
        print(json.dumps({"writes": calls[0]}))


def _child_command(config: RunConfig, store_root: Path, mode: str, arg: str = "") -> list[str]:
    return [sys.executable, "-m", "relustudy.faults", "child", json.dumps(config.to_dict()), str(store_root), mode, arg]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run_child(config: RunConfig, store_root: Path, mode: str, arg: str = "", timeout: float = 600) -> Any:
    return subprocess.run(
        _child_command(config, store_root, mode, arg),
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _kill_child_after(config: RunConfig, store_root: Path, seconds: float) -> bool:
    """Start a plain child and SIGKILL it after ``seconds``; True if it was still running."""
    proc = subprocess.Popen(
        _child_command(config, store_root, "run"),
        env=_child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


# ------------------------------------------------------------------------------ the suite
class _Judge:
    """One trial's store: the neighbour record copied in, the run under test judged at the end."""

    def __init__(self, root: Path, config: RunConfig, neighbour: RunConfig, refs: dict[str, Any], source: Any):
        self.store = ResultsStore(root)
        self.config, self.neighbour, self.refs = config, neighbour, refs
        shutil.copytree(source.run_dir(neighbour), self.store.run_dir(neighbour))
        self.wrong_complete = False

    def watch(self) -> None:
        """After a fault: a record the store calls complete must be the right one."""
        if self.store.is_complete(self.config) and fingerprint(self.store, self.config) != self.refs["main"]:
            self.wrong_complete = True

    def finish(self, fault: str, detail: str, note: str = "") -> Trial:
        self.watch()
        neighbour_ok = fingerprint(self.store, self.neighbour) == self.refs["neighbour"]
        train(self.config, self.store, progress=False)
        final = fingerprint(self.store, self.config)
        problems = check_store(self.store.root)
        if not neighbour_ok or fingerprint(self.store, self.neighbour) != self.refs["neighbour"] or final is None:
            outcome = "lost"
        elif self.wrong_complete:
            outcome = "wrong_complete"
        elif final != self.refs["main"]:
            outcome = "mismatch"
        elif problems:
            outcome, note = "leftover", "; ".join(problems)
        else:
            outcome = "survived"
        return Trial(fault, detail, outcome, note)


DEFAULT_PLAN: dict[str, int | None] = {
    "random_kill": 4,
    "kill_in_write": None,  # None: each write once
    "disk_full": 2,
    "checkpoint_byte": 2,
    "record_byte": 4,
    "linked_folder": 2,  # the run folder, then the experiment folder, taking turns
    "stale_claim": 2,  # a gone process, then a reused pid, taking turns
}


@dataclass
class _Suite:
    """What every trial shares: the run under test, its neighbour, their reference records, and
    the measured child run (its length and its number of file writes)."""

    work: Path
    main: RunConfig
    neighbour: RunConfig
    reference: ResultsStore
    refs: dict[str, Any]
    rng: random.Random
    child_seconds: float
    writes: int
    trials_made: int = 0

    def judge(self) -> _Judge:
        self.trials_made += 1
        return _Judge(self.work / f"trial-{self.trials_made:03d}", self.main, self.neighbour, self.refs, self.reference)


def _prepare_suite(work: Path, main: RunConfig, rng: random.Random, say: Callable[[str], None]) -> _Suite:
    """Train the reference records (the neighbour here, the run under test both here and in a
    counting child process, which must agree) and measure the child's length and file writes."""
    neighbour = RunConfig.from_dict({**main.to_dict(), "seed": main.seed + 1})
    reference = ResultsStore(work / "reference")
    train(neighbour, reference, progress=False)
    t_child = time.perf_counter()
    counted = _run_child(main, work / "counted", "count")
    child_seconds = time.perf_counter() - t_child
    if counted.returncode != 0:
        raise RuntimeError(f"the reference child run failed: {counted.stderr.strip().splitlines()[-1:]}")
    writes = json.loads(counted.stdout.strip().splitlines()[-1])["writes"]
    train(main, reference, progress=False)
    refs = {"main": fingerprint(reference, main), "neighbour": fingerprint(reference, neighbour)}
    if fingerprint(ResultsStore(work / "counted"), main) != refs["main"]:
        raise RuntimeError("a child process and this process train different records: the suite cannot judge")
    say(f"faults: reference child run {child_seconds:.1f} s, {writes} file writes")
    return _Suite(work, main, neighbour, reference, refs, rng, child_seconds, writes)


def _random_kills(s: _Suite, trials: int) -> Iterator[Trial]:
    for _ in range(trials):
        j = s.judge()
        moments = sorted(s.rng.uniform(0.0, s.child_seconds) for _ in range(2))
        killed = [_kill_child_after(s.main, j.store.root, m) for m in moments]
        j.watch()
        detail = ", ".join(
            f"{m:.2f} s" + ("" if k else " (finished first)") for m, k in zip(moments, killed, strict=True)
        )
        yield j.finish("random_kill", f"killed at {detail} of a {s.child_seconds:.1f} s run")


def _kills_in_writes(s: _Suite, trials: int) -> Iterator[Trial]:
    # every write once before any twice, the points (before, inside, after) taking turns, and every
    # (write, point) pair once before any twice: `writes` trials kill inside each write once
    writes_order = list(range(1, s.writes + 1))
    s.rng.shuffle(writes_order)
    turn = s.rng.randrange(len(WRITE_POINTS))
    points = [
        (k, WRITE_POINTS[(turn + i + lap) % len(WRITE_POINTS)])
        for lap in range(len(WRITE_POINTS))
        for i, k in enumerate(writes_order)
    ]
    for i in range(trials):
        j = s.judge()
        k, where = points[i % len(points)]
        _run_child(s.main, j.store.root, "kill_write", f"{k}:{where}")
        yield j.finish("kill_in_write", f"write {k} of {s.writes}, {where}")


def _full_disks(s: _Suite, trials: int) -> Iterator[Trial]:
    for _ in range(trials):
        j = s.judge()
        k = s.rng.randint(1, s.writes)
        child = _run_child(s.main, j.store.root, "disk_full", str(k))
        note = "" if child.returncode != 0 else "the child did not notice the full disk"
        yield j.finish("disk_full", f"write {k} of {s.writes}", note)


def _checkpoint_bytes(s: _Suite, trials: int) -> Iterator[Trial]:
    for _ in range(trials):
        j = s.judge()
        e = s.rng.randint(1, s.main.epochs - 1)
        _run_child(s.main, j.store.root, "kill_after_checkpoint", str(e))
        ckpt = j.store.checkpoint_path(s.main)
        offset = flip_byte(ckpt, s.rng) if ckpt.is_file() else -1
        j.watch()
        yield j.finish("checkpoint_byte", f"after epoch {e}, byte {offset} of {ckpt.name}")


def _record_bytes(s: _Suite, trials: int) -> Iterator[Trial]:
    for _ in range(trials):
        j = s.judge()
        shutil.copytree(s.reference.run_dir(s.main), j.store.run_dir(s.main))
        name = s.rng.choice(("result.json", "history.csv", "activation_stats.json"))
        offset = flip_byte(j.store.run_dir(s.main) / name, s.rng)
        yield j.finish("record_byte", f"byte {offset} of {name}")


def _linked_folders(s: _Suite, trials: int) -> Iterator[Trial]:
    main = s.main
    for i in range(trials):
        j = s.judge()
        outside = s.work / f"outside-{s.trials_made:03d}"
        whole_experiment = i % 2 == 1
        if whole_experiment:  # the experiment folder is the link; the neighbour moves out with it
            link, target = j.store.root / main.experiment, outside / main.experiment
            shutil.copytree(link, target)
            shutil.copytree(s.reference.run_dir(main), target / main.profile / main.run_id())
            shutil.rmtree(link)
        else:
            link, target = j.store.run_dir(main), outside / main.run_id()
            shutil.copytree(s.reference.run_dir(main), target)
            link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)
        before = tree_digest(outside)
        refused = []
        for what, act in (
            ("--force", lambda j=j: j.store.invalidate(main)),
            ("run", lambda j=j: train(main, j.store, progress=False)),
        ):
            try:
                act()
            except StoreError:
                refused.append(what)
        reported = any("symbolic link" in line for line in check_store(j.store.root, fix=True))
        changed = _changed(before, tree_digest(outside))
        link.unlink()  # the user's fix: a real folder in the store
        if whole_experiment:
            shutil.copytree(target, link)
        detail = (
            f"linked {'experiment' if whole_experiment else 'run'} folder: refused by {', '.join(refused) or 'nothing'}; "
            f"store check --fix {'reported' if reported else 'did not report'} it"
        )
        trial = j.finish("linked_folder", detail)
        why = [f"{changed} file(s) outside the store changed"] if changed else []
        why += ["an action went through the link"] if len(refused) < 2 else []
        why += ["store check did not report the link"] if not reported else []
        yield Trial("linked_folder", detail, "escaped", "; ".join(why)) if why else trial


def _stale_claims(s: _Suite, trials: int) -> Iterator[Trial]:
    for i in range(trials):
        j = s.judge()
        reused = i % 2 == 1
        holder = {
            "pid": 1 if reused else _gone_pid(),
            "process": "another-boot:0" if reused else None,
            "host": socket.gethostname(),
            "since": utc_now(),
        }
        folder = j.store.run_dir(s.main)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CLAIM_FILE).write_text(json.dumps(holder))
        detail = f"claim by pid {holder['pid']} ({'a live pid that is another process now' if reused else 'gone'})"
        try:
            yield j.finish("stale_claim", detail)
        except RunClaimed as e:
            yield Trial("stale_claim", detail, "blocked", str(e))


TRIALS: dict[str, Callable[[_Suite, int], Iterator[Trial]]] = {
    "random_kill": _random_kills,
    "kill_in_write": _kills_in_writes,
    "disk_full": _full_disks,
    "checkpoint_byte": _checkpoint_bytes,
    "record_byte": _record_bytes,
    "linked_folder": _linked_folders,
    "stale_claim": _stale_claims,
}


def run_suite(
    workdir: str | os.PathLike,
    *,
    trials: dict[str, int] | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``trials[fault]`` trials of each fault (default: :data:`DEFAULT_PLAN`: 4 random kills, a
    kill in each write of the run, 2 full disks, 2 checkpoint and 4 record corruptions, 2 linked
    folders and 2 stale claims) in ``workdir``; the summary dict (counts by fault and outcome, every
    trial, provenance). Deterministic given ``seed`` except the random kills' times."""
    say = log or (lambda _m: None)
    plan = {**DEFAULT_PLAN, **(trials or {})}
    unknown = set(plan) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(sorted(unknown))}; valid: {', '.join(FAULTS)}")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    main = RunConfig.from_dict({**SUITE_CONFIG, **(config or {})})
    start, t0 = utc_now(), time.perf_counter()
    suite = _prepare_suite(work, main, random.Random(seed), say)
    if plan["kill_in_write"] is None:
        plan["kill_in_write"] = suite.writes
    sentinel = work / "sentinel"  # outside every store: no trial may change it
    shutil.copytree(suite.reference.run_dir(main), sentinel / "record")
    sentinel_before = tree_digest(sentinel)
    out: list[Trial] = []
    for fault, count in plan.items():
        for trial in TRIALS[fault](suite, count):
            out.append(trial)
            say(f"faults: {trial}")
    counts = {f: {o: sum(t.fault == f and t.outcome == o for t in out) for o in OUTCOMES} for f in plan}
    return {
        "format": SUMMARY_FORMAT,
        "faults": FAULTS,
        "config": main.to_dict(),
        "plan": plan,
        "seed": seed,
        "trials": len(out),
        "by_fault": counts,
        "total": {o: sum(c[o] for c in counts.values()) for o in OUTCOMES},
        "files_outside_changed": _changed(sentinel_before, tree_digest(sentinel)),
        "runs": [asdict(t) for t in out],
        "provenance": {
            "git": git_info(),
            "cpu": cpu_identity(),
            "torch": torch.__version__,
            "started": start,
            "finished": utc_now(),
            "wall_seconds": time.perf_counter() - t0,
            "child_run_seconds": suite.child_seconds,
            "file_writes_per_run": suite.writes,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m relustudy.faults", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("child")
    for name in ("config", "store", "mode", "arg"):
        c.add_argument(name)
    s = sub.add_parser("suite", help="run the fault suite and record its summary")
    s.add_argument("--out", required=True, help="the record to write (JSON)")
    s.add_argument("--workdir", help="scratch folder (default: a temporary one, removed after)")
    s.add_argument("--seed", type=int, default=0)
    for fault in FAULTS:
        s.add_argument(f"--{fault.replace('_', '-')}", type=int, default=None, metavar="N", help=FAULTS[fault])
    args = p.parse_args(argv)
    if args.command == "child":
        _child(args.config, args.store, args.mode, args.arg)
        return 0

    plan = {f: getattr(args, f) for f in FAULTS if getattr(args, f) is not None}
    with tempfile.TemporaryDirectory(prefix="relustudy-faults-") as tmp:
        summary = run_suite(args.workdir or tmp, trials=plan, seed=args.seed, log=print)
    write_json(args.out, summary)
    print(f"faults: {summary['trials']} trials, {summary['total']} -> {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
