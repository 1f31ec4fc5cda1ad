"""The results store: one folder of plain files per run, written atomically.

Layout::

    <root>/<experiment>/<profile>/<run_id>/
        config.json             the full RunConfig (runtime fields included), written first
        history.csv             one row per completed epoch (rewritten after every epoch)
        activation_stats.json   Smith's statistics per stats epoch and probe layer
        result.json             final metrics, status and provenance -- written LAST
        checkpoint.pt           resume state while the run is in progress (never in git)

``run_id`` is :meth:`RunConfig.run_id` (a hash of the config without the runtime fields
``device``/``num_threads``), so a record made on one machine is found from another.

Atomicity. Every file goes through :func:`atomic_write`: the content is produced in full first
(a failing serialiser touches nothing), written to a ``*.tmp`` file in the same folder,
flushed and fsync'ed, then moved over the target with ``os.replace`` (atomic on POSIX), and the
folder is fsync'ed. A reader therefore sees either the old file or the new one, never a torn
one. Leftover ``*.tmp`` files (a process killed mid-write) are ignored by readers and removed
when the run is next trained.

Completeness. A run is complete iff ``result.json`` exists, parses, and has ``status`` in
``{"complete", "diverged"}``. Because it is written last, a complete record always has its
``history.csv`` and ``activation_stats.json`` beside it.

Checkpoints. ``checkpoint.pt`` is written (atomically) after every epoch with a sha256 of its
payload, verified before it is used (a checkpoint that fails, or that does not fit the config, is
renamed ``checkpoint-set-aside-<time>.pt`` and the run restarts from scratch), and **deleted once the
run's result is written**: finished records are small text files that can be committed, and
``.gitignore`` keeps ``results/**/checkpoint*.pt`` and ``results/**/*.tmp`` out of git anyway.

File formats.

- ``history.csv``: header + one row per completed epoch; columns ``epoch, train_loss,
  train_error, test_loss, test_accuracy, test_error, test_top5_error, epoch_seconds,
  images_per_second, lr`` then ``alpha.<module>.mean|std|min|max`` for learned activation
  coefficients (PReLU). ``train_*`` are running means over the epoch's batches (model changing),
  ``test_*`` are measured after the epoch; ``epoch_seconds`` is training time only (no eval);
  ``lr`` is the rate used during the epoch. Floats are written with Python's shortest
  round-trip repr (exact). Errors are fractions in [0, 1].
- ``activation_stats.json``: ``{"format": 1, "records": [{"epoch", "layer", "module",
  "sparsity", "dispersion", "dead_fraction", "n_units", "sparsity_channel", ...,
  "curve": [...], "curve_channel": [...]}, ...]}``; floats rounded to 6 digits, curves sorted in
  decreasing order.
- ``result.json``: ``{"schema_version": 2, "run_id", "experiment", "profile", "status", "config",
  "metrics": {name: number}, "provenance": {...}}`` (plus ``diverged_epoch`` for diverged runs).
  Metrics of a complete run: ``test_accuracy, test_error, test_top5_error, test_loss,
  train_loss, train_error`` (of the last epoch), ``epochs_completed, wall_seconds,
  images_per_second`` (mean over epochs), ``alpha.<module>.mean|std|min|max`` (PReLU) and, when
  stats were taken after the last epoch, ``<probe>.sparsity|dispersion|dead_fraction|n_units``
  and their ``*_channel`` twins. A diverged run has only ``epochs_completed, wall_seconds,
  images_per_second`` (no final model to report on). Provenance: ``git_commit, git_dirty,
  source_sha256 (one snapshot per process, see git_info), profile, seed, device, device_type,
  num_threads, cpu_identity (see cpu_identity), precision, torch/numpy/python/relustudy
  versions, start_time, end_time`` (UTC ISO), ``wall_seconds`` (all sessions), ``resumes``,
  ``channels_last_used, train_images, test_images, data_caveats``.
  Non-finite numbers are written as ``null`` so every file is strict JSON.

Record formats. ``result.json`` carries its ``schema_version`` (:data:`SCHEMA_VERSION`; version
1 records named it ``format``). A record of an older version is read through
:func:`upgrade_record`, the one place that knows what each version lacked (it is valid as
written: its checksum covers the file, not the upgrade); one of a newer version than this
relustudy reads is not loaded, and ``store check`` says so in one line and leaves it where it is.

- 1 -> 2: ``checksum`` and ``files`` may be absent in version 1 (made before they existed) and are
  required from version 2; ``provenance.cpu_identity`` (``None``: not recorded; format 1 named only the CPU model
  in ``device``), ``provenance.model_execution`` (``"eager"``: the trainer has never run another
  path) and the metrics derived from the others (:data:`relustudy.metrics.DERIVED_METRICS`),
  which format 2 writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd
import torch

from .config import RunConfig
from .metrics import derived_metrics

__all__ = [
    "COMPLETE_STATUSES",
    "RESULT_FILE",
    "ResultsStore",
    "atomic_write",
    "round_stats",
    "record_problems",
    "check_store",
]

FORMAT_VERSION = 1  # activation_stats.json's format
SCHEMA_VERSION = 2  # result.json's schema_version (see "Record formats" above)
COMPLETE_STATUSES = ("complete", "diverged")
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
STATS_FILE = "activation_stats.json"
RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"
RECORD_FILES = (HISTORY_FILE, STATS_FILE)  # written before result.json, checksummed in it
CHECKPOINT_MAGIC = b"relustudy-checkpoint sha256="


class StoreError(Exception):
    """The results store cannot be used as asked (one line: the path and the fix)."""


class CheckpointError(Exception):
    """A checkpoint failed verification (one line: the file and why); the run restarts."""


CLAIM_FILE = "claim.json"
# A claim from another host cannot be checked for a live process; it counts as stale once its
# heartbeat (refreshed after every epoch) is this old.
CLAIM_STALE_SECONDS = 6 * 3600


class RunClaimed(Exception):
    """Another live process is training this run (one line: who, where, since when)."""


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after "pid (comm) " (the state, field 3, first); None
    where there is no such file (no process, or not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()
    except (OSError, ValueError):
        return None


def process_identity(pid: int) -> str | None:
    """Which process ``pid`` is, beyond its number: this boot's id and the process's start time
    (Linux ``/proc``), so that a claim survives neither a restart nor its pid's reuse by another
    process; None where the system does not say (then only liveness is checked)."""
    fields = _proc_stat(pid)
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return f"{boot}:{fields[19]}" if fields and len(fields) > 19 else None  # field 22: start time in ticks


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    fields = _proc_stat(pid)
    return not fields or fields[0] != "Z"  # a zombie (exited, not yet reaped by its parent) holds nothing


class RunClaim:
    """The exclusive right to train one run in a store: ``claim.json`` in its folder, created
    with O_EXCL (so two processes cannot both hold it), naming the holder's pid and host. A claim
    whose process is gone (same host), or whose heartbeat is older than
    :data:`CLAIM_STALE_SECONDS` (another host), is taken over. Use as a context manager."""

    def __init__(self, path: Path):
        self.path = path
        self.held = False

    def stale(self) -> bool:
        """Whether an existing claim would be taken over (its holder is gone)."""
        return self.path.exists() and self._stale(self.holder())

    def holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _stale(self, who: dict[str, Any] | None) -> bool:
        if who is None:  # unreadable: a writer killed between create and write
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except FileNotFoundError:
                return True
        if who.get("host") == socket.gethostname():
            pid = int(who.get("pid", -1))
            if not _process_alive(pid):
                return True
            # A live pid may be another process now (reused after the holder died, or after a
            # restart): the claim names the holder's identity, which must still match.
            then, now = who.get("process"), process_identity(pid)
            return then is not None and now is not None and then != now
        try:
            return time.time() - self.path.stat().st_mtime > CLAIM_STALE_SECONDS
        except FileNotFoundError:
            return True

    def acquire(self) -> RunClaim:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {
            "pid": os.getpid(),
            "process": process_identity(os.getpid()),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                who = self.holder()
                if not self._stale(who):
                    who = who or {}
                    raise RunClaimed(
                        f"{self.path.parent.name} is being trained by pid {who.get('pid', '?')} on "
                        f"{who.get('host', '?')} since {who.get('since', '?')}"
                    ) from None
                # Take the stale claim over: move it away atomically (one taker wins), then retry.
                try:
                    os.replace(self.path, self.path.with_name(f".{CLAIM_FILE}.stale-{os.getpid()}.tmp"))
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunClaimed(f"{self.path.parent.name}: could not take over a stale claim (another process races for it)")

    def heartbeat(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        if self.held:
            who = self.holder()
            if who and who.get("pid") == os.getpid() and who.get("host") == socket.gethostname():
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            self.held = False

    def __enter__(self) -> RunClaim:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


STATS_DIGITS = 6


# ------------------------------------------------------------------------------ atomic writes
def atomic_write(path: str | os.PathLike, content: bytes | str | Callable[[IO[bytes]], None]) -> Path:
    """Write ``content`` to ``path`` atomically (tmp file in the same folder, fsync, os.replace).

    ``content`` is bytes, a str (UTF-8), or a callable writing to a binary file object (e.g.
    ``lambda f: torch.save(obj, f)``). On any error the target is left untouched and the tmp
    file removed. The new file gets the usual ``0o666 & ~umask`` permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # name the folder: a read-only or full store
        raise OSError(e.errno, e.strerror, str(path.parent)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno is not None and not e.filename:  # a write on the fd names no file
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _clean_json(obj: Any) -> Any:
    """Non-finite floats -> None (strict JSON); numpy scalars/arrays and tuples -> plain types."""
    if isinstance(obj, Mapping):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy / torch
        return _clean_json(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def dumps_json(obj: Any) -> str:
    return json.dumps(_clean_json(obj), indent=1, sort_keys=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = dumps_json(obj)  # serialise fully before touching the file system
    return atomic_write(path, text)


def history_to_csv(rows: list[Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # shortest round-trip repr ('nan', 'inf' for non-finite)
    return v


# ------------------------------------------------------------------------------ the store
class ResultsStore:
    """A folder of run records (see the module docstring for the layout and formats)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    # -- paths
    def run_dir(self, config: RunConfig) -> Path:
        return self.root / config.experiment / config.profile / config.run_id()

    def path(self, config: RunConfig, name: str) -> Path:
        return self.run_dir(config) / name

    def escape(self, folder: Path) -> str | None:
        """Why ``folder`` (a path below the root) is not inside the store: a symbolic link on the way
        from the root to it, or a real path outside the root; None when it is inside. Nothing is
        written, deleted or trusted through such a folder."""
        cur = self.root
        for part in folder.relative_to(self.root).parts:
            cur = cur / part
            if cur.is_symlink():
                return f"{cur} is a symbolic link"
        if folder.exists() and not folder.resolve().is_relative_to(self.root.resolve()):
            return f"{folder} lies outside {self.root}"
        return None

    def _contain(self, config: RunConfig) -> Path:
        """The run folder, after refusing (:class:`StoreError`) one that leaves the store."""
        d = self.run_dir(config)
        why = self.escape(d)
        if why is not None:
            raise StoreError(f"{why}: records must live inside the results folder; make it a real folder there")
        return d

    def claim(self, config: RunConfig) -> RunClaim:
        """The run's claim (not yet acquired): ``with store.claim(config): ...`` trains it alone."""
        return RunClaim(self._contain(config) / CLAIM_FILE)

    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.path(config, CHECKPOINT_FILE)

    # -- reading
    def load_record(self, config: RunConfig) -> dict[str, Any] | None:
        """The parsed result.json if the run is complete, else None (also for a run folder that
        leaves the store: a record elsewhere is not this store's)."""
        if self.escape(self.run_dir(config)) is not None:
            return None
        return _read_result(self.path(config, RESULT_FILE))

    def is_complete(self, config: RunConfig) -> bool:
        return self.load_record(config) is not None

    def load_history(self, config: RunConfig) -> Any:
        return pd.read_csv(self.path(config, HISTORY_FILE))

    def load_stats(self, config: RunConfig) -> list[dict[str, Any]]:
        p = self.path(config, STATS_FILE)
        if not p.is_file():
            return []
        return json.loads(p.read_text(encoding="utf-8")).get("records", [])

    # -- writing (all atomic)
    def begin(self, config: RunConfig) -> Path:
        """Create the run folder, drop stale tmp files, write config.json. A run folder that is a
        symbolic link, or lies outside the store, is refused (:class:`StoreError`): records must
        land inside the results folder."""
        d = self._contain(config)  # before mkdir: a linked experiment folder must not grow folders elsewhere
        d.mkdir(parents=True, exist_ok=True)
        d = self._contain(config)
        for tmp in d.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass
        write_json(d / CONFIG_FILE, {"run_id": config.run_id(), **config.to_dict()})
        return d

    def write_history(self, config: RunConfig, rows: list[Mapping[str, Any]]) -> Path:
        return atomic_write(self._contain(config) / HISTORY_FILE, history_to_csv(rows))

    def write_stats(self, config: RunConfig, records: list[Mapping[str, Any]]) -> Path:
        return write_json(
            self._contain(config) / STATS_FILE, {"format": FORMAT_VERSION, "records": [round_stats(r) for r in records]}
        )

    def write_result(
        self, config: RunConfig, *, status: str, metrics: Mapping[str, Any], provenance: Mapping[str, Any], **extra: Any
    ) -> dict[str, Any]:
        """Write result.json (the commit point of a run) and return the record."""
        if status not in COMPLETE_STATUSES:
            raise ValueError(f"status must be one of {COMPLETE_STATUSES}, got {status!r}")
        self._contain(config)
        # The files written before the record, by checksum: a record is valid only while they match.
        files = {
            name: _file_sha256(self.path(config, name)) for name in RECORD_FILES if self.path(config, name).is_file()
        }
        record = {
            "schema_version": SCHEMA_VERSION,
            "run_id": config.run_id(),
            "experiment": config.experiment,
            "profile": config.profile,
            "status": status,
            **extra,
            "config": config.to_dict(),
            "metrics": {**metrics, **derived_metrics(metrics)},
            "provenance": dict(provenance),
            "files": files,
        }
        text = dumps_json({**record, "checksum": record_checksum(record)})
        atomic_write(self.path(config, RESULT_FILE), text)
        return json.loads(text)

    def invalidate(self, config: RunConfig) -> None:
        """Remove the run's record files and checkpoint (used by ``train(force=True)``);
        result.json goes first, so an interrupted invalidation never leaves a complete-looking
        record over the others' absence. A run folder that leaves the store is refused first."""
        d = self._contain(config)
        for name in (RESULT_FILE, CHECKPOINT_FILE, HISTORY_FILE, STATS_FILE):
            try:
                (d / name).unlink()
            except FileNotFoundError:
                pass

    def save_checkpoint(self, config: RunConfig, state: Mapping[str, Any]) -> Path:
        """Write the resume state with a checksum of its bytes (``CHECKPOINT_MAGIC`` + sha256
        hex + newline, then the ``torch.save`` payload), so damage is found before it is used."""

        buf = io.BytesIO()
        torch.save(dict(state), buf)
        payload = buf.getvalue()
        digest = hashlib.sha256(payload).hexdigest().encode("ascii")
        return atomic_write(self._contain(config) / CHECKPOINT_FILE, CHECKPOINT_MAGIC + digest + b"\n" + payload)

    def load_checkpoint(self, config: RunConfig, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The checkpoint dict, or None when there is none. Raises :class:`CheckpointError` (one
        line) when the file fails verification: no checksum header (an older format), a checksum
        that does not match its bytes, or a payload torch cannot read."""

        p = self.checkpoint_path(config)
        if not p.is_file():
            return None
        data = p.read_bytes()
        header, sep, payload = data.partition(b"\n")
        if not header.startswith(CHECKPOINT_MAGIC) or not sep:
            raise CheckpointError(f"{p}: no checksum header (an older checkpoint format, or not a checkpoint)")
        if hashlib.sha256(payload).hexdigest().encode("ascii") != header[len(CHECKPOINT_MAGIC) :]:
            raise CheckpointError(f"{p}: checksum mismatch (the file was damaged or changed after it was written)")
        try:
            return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
        except Exception as e:  # verified bytes that torch cannot read: another torch's format
            raise CheckpointError(f"{p}: unreadable checkpoint ({type(e).__name__})") from None

    def set_aside_checkpoint(self, config: RunConfig) -> Path | None:
        """Rename the run's checkpoint to ``checkpoint-set-aside-<UTC time>.pt`` (kept for
        inspection, ignored by git and by resuming); the new path, or None if there was none."""
        src = self._contain(config) / CHECKPOINT_FILE
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = src.with_name(f"checkpoint-set-aside-{stamp}.pt")
        k = 1
        while dest.exists():
            dest = src.with_name(f"checkpoint-set-aside-{stamp}-{k}.pt")
            k += 1
        try:
            os.replace(src, dest)
        except FileNotFoundError:
            return None
        return dest

    def remove_leftovers(self, config: RunConfig) -> list[Path]:
        """Delete what a complete run no longer needs (:func:`leftovers`: its checkpoint, temporary
        files), e.g. after a kill between writing the record and deleting the checkpoint; the
        paths removed. Call only when the run's record is complete."""
        removed = []
        for p in leftovers(self._contain(config)):
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
        return removed

    def delete_checkpoint(self, config: RunConfig) -> None:
        try:
            (self._contain(config) / CHECKPOINT_FILE).unlink()
        except FileNotFoundError:
            pass

    # -- iteration
    def iter_run_dirs(
        self, experiment: str | None = None, profile: str | None = None, *, escaping: bool = False
    ) -> Iterable[Path]:
        """The run folders below the root; one that leaves the store (:meth:`escape`) only with
        ``escaping`` (``check_store`` reports them; readers never see their records)."""
        if not self.root.is_dir():
            return []
        exps = [self.root / experiment] if experiment else sorted(p for p in self.root.iterdir() if p.is_dir())
        out = []
        for e in exps:
            if not e.is_dir():
                continue
            profs = [e / profile] if profile else sorted(p for p in e.iterdir() if p.is_dir())
            for pr in profs:
                if pr.is_dir():
                    out.extend(sorted(d for d in pr.iterdir() if d.is_dir()))
        return out if escaping else [d for d in out if self.escape(d) is None]

    def records(self, experiment: str | None = None, profile: str | None = None) -> list[dict[str, Any]]:
        """All complete records (parsed result.json), sorted by path."""
        out = []
        for d in self.iter_run_dirs(experiment, profile):
            rec = _read_result(d / RESULT_FILE)
            if rec is not None:
                rec["_dir"] = str(d)
                out.append(rec)
        return out


def leftovers(folder: Path) -> list[Path]:
    """Files of a run folder that do not belong beside a complete record: the resume checkpoint
    and temporary files of interrupted writes (a set-aside checkpoint is kept on purpose)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name == CHECKPOINT_FILE or p.name.endswith(".tmp"))


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_checksum(record: Mapping[str, Any]) -> str:
    """sha256 of a record's JSON text without its own ``checksum`` field: result.json carries it,
    so a changed digit anywhere in the record (a metric, a seed) is found, not only a torn file."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(dumps_json(body).encode("utf-8")).hexdigest()


def record_problems(rec: Any, run_dir: Path) -> list[str]:
    """Why a parsed result.json in ``run_dir`` is not a valid record ([] if it is): a status alone
    does not make a record complete. Its config must hash to the folder's name (a record copied
    into another run's folder is not that run), the metrics must be a mapping, and a complete run
    must carry a finite final test metric."""
    if not isinstance(rec, dict):
        return ["result.json is not a JSON object"]
    if rec.get("status") not in COMPLETE_STATUSES:
        return [f"status {rec.get('status')!r} is not one of {COMPLETE_STATUSES}"]
    problems = []
    try:
        run_id = RunConfig.from_dict(rec.get("config")).run_id()
    except (TypeError, ValueError) as e:  # ConfigError is a ValueError
        return [f"its config is not a valid run config ({str(e).splitlines()[0]})"]
    if run_id != run_dir.name:
        problems.append(f"its config hashes to run id {run_id}, not to its folder's name {run_dir.name}")
    if rec.get("run_id") not in (None, run_id):
        problems.append(f"it names run id {rec.get('run_id')} but its config hashes to {run_id}")
    required = ("checksum", "files") if schema_version(rec) != 1 else ()  # version 1 may predate them
    problems += [f"it has no {k} (required from record schema version 2)" for k in required if k not in rec]
    if "checksum" in rec and rec["checksum"] != record_checksum(rec):
        problems.append("result.json does not match its own checksum (changed after the run)")
    files = rec.get("files", {})
    if not isinstance(files, dict):
        problems.append("its file checksums are not a mapping")
    else:
        for name, digest in files.items():
            path = run_dir / str(name)
            if Path(str(name)).name != str(name):
                problems.append(f"it names a file outside its folder: {name!r}")
            elif not path.is_file():
                problems.append(f"{name} is missing")
            elif _file_sha256(path) != digest:
                problems.append(f"{name} does not match the checksum in result.json (changed after the run)")
    metrics = rec.get("metrics")
    if not isinstance(metrics, dict):
        problems.append("its metrics are not a mapping")
    elif rec["status"] == "complete":
        final = [metrics.get(k) for k in ("test_accuracy", "test_error")]
        if not any(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in final):
            problems.append("a complete run without a finite final test_accuracy/test_error")
    return problems


def _read_result(path: Path) -> dict[str, Any] | None:
    """The record in ``path``, in this relustudy's format, if it is a valid one (see
    :func:`record_problems`) of a format this relustudy reads; else None."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record_problems(rec, path.parent) or newer_format(rec):
        return None
    return upgrade_record(rec)


def schema_version(rec: Mapping[str, Any]) -> Any:
    """The record's schema version (version 1 named it ``format``)."""
    return rec.get("schema_version", rec.get("format", 1))


def newer_format(rec: Mapping[str, Any]) -> str:
    """Why this relustudy cannot read ``rec`` (its schema version is newer), or "" if it can."""
    version = schema_version(rec)
    if isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= SCHEMA_VERSION:
        return ""
    return f"record schema version {version!r}, which this relustudy (1 to {SCHEMA_VERSION}) cannot read: update it"


def upgrade_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """``rec`` (a valid record of any format this relustudy reads) in format :data:`SCHEMA_VERSION`,
    with ``upgraded_from`` naming the format it was written in when that is older. The one
    place that knows what each format lacked (the module docstring lists them)."""
    if newer_format(rec):
        raise ValueError(newer_format(rec))
    version = schema_version(rec)
    out = {k: v for k, v in rec.items() if k != "format"}
    if version < 2:
        out["provenance"] = {"cpu_identity": None, "model_execution": "eager", **(rec.get("provenance") or {})}
        metrics = dict(rec.get("metrics") or {})
        out["metrics"] = {**metrics, **derived_metrics(metrics)}
    if version < SCHEMA_VERSION:
        out["upgraded_from"] = version
    out["schema_version"] = SCHEMA_VERSION
    return out


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name.2``, ``name.3``, ... where that exists: a set-aside file never
    replaces an earlier one."""
    path, n = folder / name, 1
    while path.exists():
        n += 1
        path = folder / f"{name}.{n}"
    return path


def check_store(root: str | os.PathLike, *, fix: bool = False) -> list[str]:
    """Verify every run folder of a results store (what `git fsck` is to a repository): one line
    per problem. With ``fix``, leftovers (a checkpoint or temporary file beside a complete record)
    are removed and invalid records are set aside as ``result.json.invalid`` (kept, never deleted; a
    later one beside it as ``result.json.invalid.2`` and so on)."""
    store = ResultsStore(root)
    lines = []
    for d in store.iter_run_dirs(escaping=True):
        why = store.escape(d)
        if why is not None:  # reported, never fixed: its files are not the store's to change
            lines.append(f"{d}: {why} (records must live inside the store; left as it is)")
            continue
        claim = RunClaim(d / CLAIM_FILE)
        if claim.stale():
            who = claim.holder() or {}
            lines.append(
                f"{claim.path}: stale claim (pid {who.get('pid', '?')} on {who.get('host', '?')} is gone or is another "
                "process now; the next run takes it over, so --fix leaves it)"
            )
        result = d / RESULT_FILE
        if not result.exists():
            continue  # a run in progress (or never finished): not a record
        try:
            rec = json.loads(result.read_text(encoding="utf-8"))
            problems = record_problems(rec, d)
        except (OSError, ValueError) as e:
            problems = [f"result.json cannot be read ({type(e).__name__})"]
        else:
            if not problems and newer_format(rec):  # another relustudy's valid record: never set aside
                lines.append(f"{d}: {newer_format(rec)} (left as it is)")
                continue
        aside = _free_name(d, RESULT_FILE + ".invalid") if problems and fix else None
        for problem in problems:
            lines.append(f"{d}: {problem}" + (f" -> set aside as {aside.name}" if aside else ""))
        if aside is not None:
            os.replace(result, aside)
            continue
        for p in leftovers(d):
            lines.append(f"{p}: leftover beside a complete record" + (" -> removed" if fix else ""))
            if fix:
                p.unlink()
    return lines


def round_stats(record: Mapping[str, Any]) -> dict[str, Any]:
    """Round every float (and curve element) to STATS_DIGITS digits; arrays become lists."""

    def r(v: Any) -> Any:
        if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
            v = v.tolist()
        if isinstance(v, (list, tuple)):
            return [r(x) for x in v]
        if isinstance(v, float):
            return round(v, STATS_DIGITS) if math.isfinite(v) else None
        return v

    return {k: r(v) for k, v in record.items()}
