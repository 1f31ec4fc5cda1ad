"""Provenance of a record: the git state and source hash of the code that made it (one snapshot per
process), the CPU as far as it decides the kernels, the device, versions and times."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy
import torch

from . import __version__
from .config import RunConfig

# ------------------------------------------------------------------------------ provenance
_GIT_CACHE: dict[str, Any] | None = None


def git_info(refresh: bool = False) -> dict[str, Any]:
    """``{"git_commit": sha | "unknown", "git_dirty": bool | "unknown", "source_sha256": hex}``.

    Runs git in the folder holding this package and only trusts a repository whose top level
    contains this very package under ``src/relustudy`` (an installed copy inside some other
    repository reads "unknown"). Missing git, no repo, no commits yet: "unknown". Tracked
    files outside ``results/`` only count towards "dirty" (new result folders are untracked, and a
    benchmark that rewrites a committed record changes data, not code).

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
            # records under results/ are data, not the code: rewriting one does not dirty the code
            status = git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results")
            if status is not None:
                dirty = bool(status.strip())
        _GIT_CACHE = {"git_commit": head.strip() if head and head.strip() else "unknown", "git_dirty": dirty}
    return {**_GIT_CACHE, "source_sha256": _SOURCE_SHA256}


def package_source_sha256() -> str:
    """sha256 over the package's ``.py`` files, its subpackages' included (the source modules hold
    the experiments); sorted by relative path, path and content both hashed."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(here.rglob("*.py")):
        h.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
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


BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic units


def cpu_bf16_units() -> bool | None:
    """Whether this CPU has bf16 arithmetic (AMX-BF16 or AVX512-BF16): True, False, or None where
    the system does not say (no ``/proc/cpuinfo`` flags)."""
    flags = _cpuinfo().get("flags")
    if flags is None:
        return None
    have = set(flags.split())
    return any(f in have for f in BF16_FLAGS)


def cpu_identity() -> str:
    """The host CPU as far as it decides which kernels run: its model name, its family/model
    numbers (the microarchitecture; a virtual machine often reports only "AMD EPYC") and the
    instruction set PyTorch dispatches its CPU kernels to. Why: the same code, seed and data
    give bit-identical records on one kind of CPU, but can differ in the last bits on another
    (other vector kernels sum in another order), so a record names the CPU it was made on."""

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

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return torch.cuda.get_device_name(dev)
        except Exception:  # pragma: no cover - no driver
            return "cuda (unknown device)"
    threads = num_threads if num_threads is not None else torch.get_num_threads()
    return f"cpu: {threads} threads, {_cpu_model()}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


def build_stamp(profile: str, when: datetime | None = None) -> dict[str, str]:
    """What the built book says about itself: the build date (UTC), the commit (marked when the
    tree had uncommitted changes), the package version and the profile."""
    when = when or datetime.now(UTC)
    git = git_info()
    commit = str(git.get("git_commit", "unknown"))[:7]
    if git.get("git_dirty") is True:
        commit += " with uncommitted changes"
    return {"date": when.strftime("%Y-%m-%d"), "year": str(when.year), "commit": commit,
            "version": __version__, "profile": profile}  # fmt: skip
