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

Checkpoints. ``checkpoint.pt`` is written (atomically) after every epoch and **deleted once the
run's result is written**: finished records are small text files that can be committed, and
``.gitignore`` keeps ``results/**/checkpoint*.pt`` and ``results/**/*.tmp`` out of git anyway.

File formats.

- ``history.csv``: header + one row per completed epoch; columns ``epoch, train_loss,
  train_error, test_loss, test_accuracy, test_error, test_top5_error, epoch_seconds,
  images_per_second, lr`` then ``alpha.<module>.mean|min|max`` for learned activation
  coefficients (PReLU). ``train_*`` are running means over the epoch's batches (model changing),
  ``test_*`` are measured after the epoch; ``epoch_seconds`` is training time only (no eval);
  ``lr`` is the rate used during the epoch. Floats are written with Python's shortest
  round-trip repr (exact). Errors are fractions in [0, 1].
- ``activation_stats.json``: ``{"format": 1, "records": [{"epoch", "layer", "module",
  "sparsity", "dispersion", "dead_fraction", "n_units", "sparsity_channel", ...,
  "curve": [...], "curve_channel": [...]}, ...]}``; floats rounded to 6 digits, curves sorted in
  decreasing order.
- ``result.json``: ``{"format": 1, "run_id", "experiment", "profile", "status", "config",
  "metrics": {name: number}, "provenance": {...}}`` (plus ``diverged_epoch`` for diverged runs).
  Metrics of a complete run: ``test_accuracy, test_error, test_top5_error, test_loss,
  train_loss, train_error`` (of the last epoch), ``epochs_completed, wall_seconds,
  images_per_second`` (mean over epochs), ``alpha.<module>.mean|min|max`` (PReLU) and, when
  stats were taken after the last epoch, ``<probe>.sparsity|dispersion|dead_fraction|n_units``
  and their ``*_channel`` twins. A diverged run has only ``epochs_completed, wall_seconds,
  images_per_second`` (no final model to report on). Provenance: ``git_commit, git_dirty,
  source_sha256 (one snapshot per process, see git_info), profile, seed, device, device_type,
  num_threads, cpu_identity (see cpu_identity), precision, torch/numpy/python/relustudy
  versions, start_time, end_time`` (UTC ISO), ``wall_seconds`` (all sessions), ``resumes``,
  ``channels_last_used, train_images, test_images, data_caveats``.
  Non-finite numbers are written as ``null`` so every file is strict JSON.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping

from .config import RunConfig

__all__ = [
    "COMPLETE_STATUSES",
    "RESULT_FILE",
    "ResultsStore",
    "atomic_write",
    "git_info",
    "device_description",
    "provenance",
    "load_results",
    "load_histories",
    "load_activation_stats",
]

FORMAT_VERSION = 1
COMPLETE_STATUSES = ("complete", "diverged")
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
STATS_FILE = "activation_stats.json"
RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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


# ------------------------------------------------------------------------------ provenance
_GIT_CACHE: dict[str, Any] | None = None


def git_info(refresh: bool = False) -> dict[str, Any]:
    """``{"git_commit": sha | "unknown", "git_dirty": bool | "unknown", "source_sha256": hex}``.

    Runs git in the folder holding this package and only trusts a repository whose top level
    contains this very package under ``src/relustudy`` (an installed copy inside some other
    repository reads "unknown"). Missing git, no repo, no commits yet: "unknown". Tracked
    files only count towards "dirty" (new result folders are untracked and do not).

    Why one snapshot per process (taken when this module is imported, i.e. when the code that
    will train was loaded): a long ``relustudy run`` keeps executing the code it loaded even if
    the tree is edited or committed meanwhile, so re-reading git at each record would stamp
    records with the state of the tree, not of the code that made them. ``source_sha256`` hashes
    the package's own ``.py`` files as loaded, so a record's code is identifiable without git.
    """
    global _GIT_CACHE
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(here), *args],
                capture_output=True,
                text=True,
                timeout=20,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    if _GIT_CACHE is None or refresh:
        top = git("rev-parse", "--show-toplevel")
        ok = top is not None and (Path(top.strip()) / "src" / "relustudy").resolve() == here
        head = git("rev-parse", "HEAD") if ok else None
        dirty: Any = "unknown"
        if ok:
            status = git("status", "--porcelain", "--untracked-files=no")
            if status is not None:
                dirty = bool(status.strip())
        _GIT_CACHE = {"git_commit": head.strip() if head and head.strip() else "unknown", "git_dirty": dirty}
    return {**_GIT_CACHE, "source_sha256": _SOURCE_SHA256}


def package_source_sha256() -> str:
    """sha256 over the package's ``.py`` files (sorted by name; name and content both hashed)."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# The snapshot of the code this process runs (see git_info): taken at import.
_SOURCE_SHA256 = package_source_sha256()
git_info()


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's block of ``/proc/cpuinfo`` (lower-case keys; {} where there is none).
    Read once per process: the CPU does not change under a running process."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():  # the first processor's block is enough
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return fields


def _cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def cpu_identity() -> str:
    """The host CPU as far as it decides which kernels run: its model name, its family/model
    numbers (the microarchitecture; a virtual machine often reports only "AMD EPYC") and the
    instruction set PyTorch dispatches its CPU kernels to. Why: the same code, seed and data
    give bit-identical records on one kind of CPU, but can differ in the last bits on another
    (other vector kernels sum in another order), so a record names the CPU it was made on."""
    import torch

    fields = _cpuinfo()
    family = (
        f" (family {fields['cpu family']} model {fields['model']})" if {"cpu family", "model"} <= set(fields) else ""
    )
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        isa = "unknown"
    return f"{_cpu_model()}{family}, torch CPU capability {isa}"


def device_description(device: Any = "cpu", num_threads: int | None = None) -> str:
    """Human-readable device: the CUDA device name, or ``"cpu: N threads, <CPU model>"``."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return torch.cuda.get_device_name(dev)
        except Exception:  # pragma: no cover - no driver
            return "cuda (unknown device)"
    threads = num_threads if num_threads is not None else torch.get_num_threads()
    return f"cpu: {threads} threads, {_cpu_model()}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def provenance(
    config: RunConfig,
    *,
    device: Any,
    start_time: str,
    end_time: str,
    wall_seconds: float,
    num_threads: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Where, when and with what code a record was made."""
    import numpy
    import torch

    from . import __version__

    return {
        **git_info(),
        "profile": config.profile,
        "seed": config.seed,
        "device": device_description(device, num_threads),
        "device_type": torch.device(device).type,
        "num_threads": num_threads,
        "cpu_identity": cpu_identity(),
        "precision": config.precision,
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "python_version": platform.python_version(),
        "relustudy_version": __version__,
        "start_time": start_time,
        "end_time": end_time,
        "wall_seconds": float(wall_seconds),
        **extra,
    }


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

    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.path(config, CHECKPOINT_FILE)

    # -- reading
    def load_record(self, config: RunConfig) -> dict[str, Any] | None:
        """The parsed result.json if the run is complete, else None."""
        return _read_result(self.path(config, RESULT_FILE))

    def is_complete(self, config: RunConfig) -> bool:
        return self.load_record(config) is not None

    def load_history(self, config: RunConfig) -> "Any":
        import pandas as pd

        return pd.read_csv(self.path(config, HISTORY_FILE))

    def load_stats(self, config: RunConfig) -> list[dict[str, Any]]:
        p = self.path(config, STATS_FILE)
        if not p.is_file():
            return []
        return json.loads(p.read_text(encoding="utf-8")).get("records", [])

    # -- writing (all atomic)
    def begin(self, config: RunConfig) -> Path:
        """Create the run folder, drop stale tmp files, write config.json."""
        d = self.run_dir(config)
        d.mkdir(parents=True, exist_ok=True)
        for tmp in d.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass
        write_json(d / CONFIG_FILE, {"run_id": config.run_id(), **config.to_dict()})
        return d

    def write_history(self, config: RunConfig, rows: list[Mapping[str, Any]]) -> Path:
        return atomic_write(self.path(config, HISTORY_FILE), history_to_csv(rows))

    def write_stats(self, config: RunConfig, records: list[Mapping[str, Any]]) -> Path:
        return write_json(
            self.path(config, STATS_FILE), {"format": FORMAT_VERSION, "records": [round_stats(r) for r in records]}
        )

    def write_result(
        self, config: RunConfig, *, status: str, metrics: Mapping[str, Any], provenance: Mapping[str, Any], **extra: Any
    ) -> dict[str, Any]:
        """Write result.json (the commit point of a run) and return the record."""
        if status not in COMPLETE_STATUSES:
            raise ValueError(f"status must be one of {COMPLETE_STATUSES}, got {status!r}")
        record = {
            "format": FORMAT_VERSION,
            "run_id": config.run_id(),
            "experiment": config.experiment,
            "profile": config.profile,
            "status": status,
            **extra,
            "config": config.to_dict(),
            "metrics": dict(metrics),
            "provenance": dict(provenance),
        }
        text = dumps_json(record)
        atomic_write(self.path(config, RESULT_FILE), text)
        return json.loads(text)

    def invalidate(self, config: RunConfig) -> None:
        """Remove the run's record files and checkpoint (used by ``train(force=True)``);
        result.json goes first, so an interrupted invalidation never leaves a complete-looking
        record over the others' absence."""
        for name in (RESULT_FILE, CHECKPOINT_FILE, HISTORY_FILE, STATS_FILE):
            try:
                self.path(config, name).unlink()
            except FileNotFoundError:
                pass

    def save_checkpoint(self, config: RunConfig, state: Mapping[str, Any]) -> Path:
        import torch

        return atomic_write(self.checkpoint_path(config), lambda f: torch.save(dict(state), f))

    def load_checkpoint(self, config: RunConfig, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The checkpoint dict, or None when absent or unreadable (a torn file cannot exist,
        but a checkpoint from an older, incompatible code version can)."""
        import torch

        p = self.checkpoint_path(config)
        if not p.is_file():
            return None
        try:
            return torch.load(p, map_location=map_location, weights_only=True)
        except Exception:
            return None

    def delete_checkpoint(self, config: RunConfig) -> None:
        try:
            self.checkpoint_path(config).unlink()
        except FileNotFoundError:
            pass

    # -- iteration
    def iter_run_dirs(self, experiment: str | None = None, profile: str | None = None) -> Iterable[Path]:
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
        return out

    def records(self, experiment: str | None = None, profile: str | None = None) -> list[dict[str, Any]]:
        """All complete records (parsed result.json), sorted by path."""
        out = []
        for d in self.iter_run_dirs(experiment, profile):
            rec = _read_result(d / RESULT_FILE)
            if rec is not None:
                rec["_dir"] = str(d)
                out.append(rec)
        return out


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("status") not in COMPLETE_STATUSES:
        return None
    return rec


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


# ------------------------------------------------------------------------------ tidy loaders
_CONFIG_COLUMNS_FIRST = (
    "experiment",
    "profile",
    "dataset",
    "model",
    "activation",
    "activation_label",
    "arm",
    "activation_params",
    "model_params",
    "seed",
    "run_id",
    "status",
)


def activation_label(config: Mapping[str, Any]) -> str:
    """The arm's label when set, else ``activation`` or ``activation(k=v, ...)``."""
    if config.get("arm"):
        return str(config["arm"])
    params = config.get("activation_params") or {}
    if not params:
        return str(config.get("activation"))
    return f"{config.get('activation')}(" + ", ".join(f"{k}={params[k]}" for k in sorted(params)) + ")"


def _config_columns(config: Mapping[str, Any], run_id: str, status: str | None) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("device", "num_threads"):
            continue  # runtime fields: the provenance's device is the meaningful one
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, sort_keys=True)
        cols[key] = value
    cols["activation_label"] = activation_label(config)
    cols["run_id"] = run_id
    cols["status"] = status
    first = [c for c in _CONFIG_COLUMNS_FIRST if c in cols]
    return {**{c: cols[c] for c in first}, **{c: v for c, v in cols.items() if c not in first}}


def _store_of(root: str | os.PathLike | ResultsStore) -> ResultsStore:
    return root if isinstance(root, ResultsStore) else ResultsStore(root)


def load_results(
    root: str | os.PathLike | ResultsStore, experiment: str | None = None, profile: str | None = None
) -> "Any":
    """Tidy table of complete records: one row per run and metric.

    Columns: the config's fields (dicts/lists as JSON strings; ``activation_params`` among them),
    ``activation_label``, ``run_id``, ``status``, ``metric``, ``value``, then ``device``,
    ``wall_seconds``, ``git_commit``, ``git_dirty``, ``end_time``.
    A diverged run has status "diverged" and only the metrics it could measure.
    """
    import pandas as pd

    rows = []
    for rec in _store_of(root).records(experiment, profile):
        base = _config_columns(rec.get("config", {}), rec.get("run_id"), rec.get("status"))
        prov = rec.get("provenance", {})
        tail = {
            "device": prov.get("device"),
            "wall_seconds": prov.get("wall_seconds"),
            "git_commit": prov.get("git_commit"),
            "git_dirty": prov.get("git_dirty"),
            "end_time": prov.get("end_time"),
        }
        for metric, value in rec.get("metrics", {}).items():
            rows.append({**base, "metric": metric, "value": value, **tail})
    columns = list(_CONFIG_COLUMNS_FIRST) + ["metric", "value", "device", "wall_seconds", "git_commit"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=columns)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def load_histories(
    root: str | os.PathLike | ResultsStore,
    experiment: str | None = None,
    profile: str | None = None,
    include_incomplete: bool = False,
) -> "Any":
    """One row per run and epoch (history.csv columns) with the config columns in front
    (``config_lr`` is the configured learning rate, ``lr`` the epoch's scheduled one).

    Only complete records unless ``include_incomplete`` (then in-progress runs appear with
    status None, read from their config.json).
    """
    import pandas as pd

    frames = []
    for d in _store_of(root).iter_run_dirs(experiment, profile):
        rec = _read_result(d / RESULT_FILE)
        if rec is None and not include_incomplete:
            continue
        hist_path = d / HISTORY_FILE
        if not hist_path.is_file():
            continue
        config = rec["config"] if rec else _read_config(d)
        if config is None:
            continue
        hist = pd.read_csv(hist_path)
        base = _config_columns(config, d.name, rec["status"] if rec else None)
        # A config field that is also a history column (``lr``: the configured vs the epoch's
        # scheduled rate) is kept as ``config_<name>``.
        base = {(f"config_{k}" if k in hist.columns else k): v for k, v in base.items()}
        for i, (k, v) in enumerate(base.items()):
            hist.insert(i, k, [v] * len(hist))
        frames.append(hist)
    if not frames:
        return pd.DataFrame(columns=list(_CONFIG_COLUMNS_FIRST) + ["epoch"])
    return pd.concat(frames, ignore_index=True)


def load_activation_stats(
    root: str | os.PathLike | ResultsStore, experiment: str | None = None, profile: str | None = None
) -> "Any":
    """One row per complete run, stats epoch and probe layer; ``curve``/``curve_channel`` are
    list columns (activation probabilities sorted in decreasing order)."""
    import pandas as pd

    rows = []
    for rec in _store_of(root).records(experiment, profile):
        p = Path(rec["_dir"]) / STATS_FILE
        if not p.is_file():
            continue
        base = _config_columns(rec.get("config", {}), rec.get("run_id"), rec.get("status"))
        for r in json.loads(p.read_text(encoding="utf-8")).get("records", []):
            rows.append({**base, **r})
    if not rows:
        return pd.DataFrame(columns=list(_CONFIG_COLUMNS_FIRST) + ["epoch", "layer", "curve"])
    return pd.DataFrame(rows)


def _read_config(d: Path) -> dict[str, Any] | None:
    try:
        cfg = json.loads((d / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg.pop("run_id", None)
    return cfg
