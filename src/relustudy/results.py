"""Tidy pandas views of a results store: one row per run and metric (``load_results``), per run and
epoch (``load_histories``), per run and probed layer (``load_activation_stats``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .store import CONFIG_FILE, HISTORY_FILE, RESULT_FILE, STATS_FILE, ResultsStore, _read_result

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
) -> Any:
    """Tidy table of complete records: one row per run and metric.

    Columns: the config's fields (dicts/lists as JSON strings; ``activation_params`` among them),
    ``activation_label``, ``run_id``, ``status``, ``metric``, ``value``, then ``device``,
    ``wall_seconds``, ``git_commit``, ``git_dirty``, ``end_time``.
    A diverged run has status "diverged" and only the metrics it could measure.
    """

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
        metrics = rec.get("metrics", {})
        for metric, value in metrics.items():
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
) -> Any:
    """One row per run and epoch (history.csv columns) with the config columns in front
    (``config_lr`` is the configured learning rate, ``lr`` the epoch's scheduled one).

    Only complete records unless ``include_incomplete`` (then in-progress runs appear with
    status None, read from their config.json).
    """

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
) -> Any:
    """One row per complete run, stats epoch and probe layer; ``curve``/``curve_channel`` are
    list columns (activation probabilities sorted in decreasing order)."""

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


def complete_rows(results: Any, experiment: str) -> Any:
    """The rows of a :func:`load_results` frame that belong to ``experiment``'s complete runs
    (an empty frame with the tidy columns when there are none)."""

    if results is None or len(results) == 0:
        return pd.DataFrame(columns=["experiment", "arm", "seed", "metric", "value", "status"])
    return results[(results["experiment"] == experiment) & (results["status"] == "complete")]
