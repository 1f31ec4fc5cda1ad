"""Validation of the parameters every chapter notebook receives (from its defaults or papermill).

Each notebook's ``parameters`` cell sets ``profile``, ``seeds``, ``device``, ``data_dir`` and
``results_dir``; the next cell calls :func:`validate` (with the notebook's ``globals()``), so a
bad value or a misspelled parameter name fails the notebook's first real cell with one line that
names it, before anything is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import DEVICES, MAX_SEED, PROFILES
from .experiments import default_results_dir

__all__ = ["NotebookParams", "NotebookParameterError", "PARAMETERS", "check_namespace", "validate"]


@dataclass(frozen=True)
class NotebookParams:
    """Validated notebook parameters; ``results_dir`` is always a concrete path."""

    profile: str
    seeds: tuple[int, ...] | None
    device: str
    data_dir: Path | None
    results_dir: Path

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`relustudy.experiments.run_experiment`."""
        return {
            "seeds": list(self.seeds) if self.seeds is not None else None,
            "device": self.device,
            "results_dir": self.results_dir,
            "data_dir": str(self.data_dir) if self.data_dir is not None else None,
        }


PARAMETERS = ("profile", "seeds", "device", "data_dir", "results_dir")
# Names IPython puts in a fresh kernel's namespace (not parameters).
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


class NotebookParameterError(ValueError):
    """A bad notebook parameter. In a notebook it shows as its one line, not a traceback
    (IPython renders ``_render_traceback_`` instead of the stack)."""

    def _render_traceback_(self) -> list[str]:
        return [f"NotebookParameterError: {self}"]


def _bad(name: str, expected: str, value: Any) -> NotebookParameterError:
    return NotebookParameterError(f"invalid notebook parameter {name}={value!r}: expected {expected}")


def check_namespace(namespace: dict[str, Any]) -> None:
    """Fail on a name papermill injected that is not a parameter (``-p profle quick`` would
    otherwise run the defaults quietly): right after its parameters cell, the notebook's namespace
    holds no plain value (what papermill injects) other than the parameters; imported functions
    and modules are not parameters."""
    unknown = sorted(
        k
        for k, v in namespace.items()
        if not k.startswith("_")
        and k not in PARAMETERS
        and k not in _KERNEL_NAMES
        and (v is None or isinstance(v, (bool, int, float, str, list, dict, tuple)))  # what papermill injects
    )
    if unknown:
        raise NotebookParameterError(
            f"unknown notebook parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(PARAMETERS)}"
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(
    *,
    profile: Any = "smoke",
    seeds: Any = None,
    device: Any = "cpu",
    data_dir: Any = None,
    results_dir: Any = None,
    namespace: dict[str, Any] | None = None,
) -> NotebookParams:
    """Check the five notebook parameters; raise :class:`NotebookParameterError` (a
    ``ValueError``) naming the first bad one. ``namespace`` (the notebook's ``globals()``):
    also fail on names that are not parameters (:func:`check_namespace`).

    - ``profile``: one of :data:`PROFILES` (``smoke``, ``quick``, ``regime``, ``paper``).
    - ``seeds``: ``None`` (the profile's own seeds) or a non-empty list of distinct integers >= 0.
    - ``device``: ``cpu``, ``cuda`` or ``auto``.
    - ``data_dir``: ``None`` (``RELUSTUDY_DATA`` / the cache) or an existing directory.
    - ``results_dir``: ``None`` (:func:`relustudy.experiments.default_results_dir`) or a path that
      is not an existing file; it is created when the first record is written.
    """

    if namespace is not None:
        check_namespace(namespace)
    if not isinstance(profile, str) or profile not in PROFILES:
        raise _bad("profile", f"one of {', '.join(PROFILES)}", profile)
    seeds = _checked_seeds(seeds)
    if not isinstance(device, str) or device not in DEVICES:
        raise _bad("device", f"one of {', '.join(DEVICES)}", device)
    if device == "cuda" and not torch.cuda.is_available():  # said in the first cell, not in a later one's traceback
        raise _bad(
            "device", "'cuda' only where a CUDA device is usable (this machine has none; use auto or cpu)", device
        )
    return NotebookParams(
        profile=profile,
        seeds=seeds,
        device=device,
        data_dir=_checked_data_dir(data_dir),
        results_dir=_checked_results_dir(results_dir, profile),
    )


def _checked_seeds(seeds: Any) -> tuple[int, ...] | None:
    if seeds is None:
        return None
    if isinstance(seeds, (str, bytes)):  # papermill's -p passes a list as text
        raise _bad("seeds", "a list of integers, not text: pass it as YAML, papermill -y 'seeds: [0, 1, 2]'", seeds)
    if not isinstance(seeds, (list, tuple)):
        raise _bad("seeds", "None or a list of integers >= 0, e.g. [0, 1, 2]", seeds)
    if len(seeds) == 0:
        raise _bad("seeds", "None or a non-empty list of integers >= 0", seeds)
    for s in seeds:
        if not _is_int(s) or s < 0:
            raise _bad("seeds", f"integers >= 0 (got {s!r} in the list)", seeds)
    if len(set(seeds)) != len(seeds):
        raise _bad("seeds", "distinct integers (a seed is listed twice)", seeds)
    if any(s > MAX_SEED for s in seeds):
        raise _bad("seeds", f"integers in [0, {MAX_SEED}]", seeds)
    return tuple(int(s) for s in seeds)


def _checked_data_dir(data_dir: Any) -> Path | None:
    if data_dir is None:
        return None
    if not isinstance(data_dir, (str, Path)) or str(data_dir) == "":
        raise _bad("data_dir", "None or the path of an existing directory", data_dir)
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise _bad(
            "data_dir", "None or the path of an existing directory (it does not exist or is not a directory)", data_dir
        )
    return path.resolve()


def _checked_results_dir(results_dir: Any, profile: str) -> Path:
    if results_dir is None:
        return Path(default_results_dir(profile)).resolve()
    if not isinstance(results_dir, (str, Path)) or str(results_dir) == "":
        raise _bad("results_dir", "None or a directory path", results_dir)
    results = Path(results_dir).expanduser()
    if results.exists() and not results.is_dir():
        raise _bad("results_dir", "None or a directory path (it is an existing file)", results_dir)
    return results.resolve()
