"""The engineering views: micro-benchmark and kernel tables, training overhead, whole-step throughput, faults, scheduling and the allocator."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..activations import ACTIVATIONS, display_name
from ..experiments import EXPERIMENTS
from ..microbench import (
    BACKWARD_LIMIT,
    COMPUTE_LIMITS,
    LIMIT_STATEMENTS,
    STOCK,
    TRAINED_ACTIVATIONS,
    at_shape,
    record_benchmark,
)
from ..models import MODELS, model_display_name
from ..stepbench import (
    STEP_RECORD,
    STEP_TIMINGS,
    read_step_timing,
    step_label,
    step_timing_rows,
)
from .base import _bench_record, _committed_record, _finite, _fmt_minutes, _fmt_num, experiment_name

__all__ = [
    "elu_forward_markdown",
    "ELU_FORWARD_RECORD",
    "ELU_FLOAT_CHECK_RECORD",
    "ensure_benchmark",
    "benchmark_table",
    "kernel_table",
    "kernel_goal_markdown",
    "kernel_limits_markdown",
    "overhead_table",
    "OVERHEAD_BF16_RECORD",
    "overhead_goal_markdown",
    "OVERHEAD_GOALS",
    "OVERHEAD_RECORD",
    "case_display_name",
    "fault_suite_table",
    "fault_suite_markdown",
    "kernel_variants_table",
    "KERNEL_VARIANTS_RECORD",
    "scheduling_markdown",
    "allocator_markdown",
    "ALLOCATOR_RECORD",
    "SCHEDULING_RECORD",
    "FAULT_RECORD",
    "step_timing_table",
    "train_step_table",
]


def ensure_benchmark(params: Any) -> Any:
    """The activation micro-benchmark of ``params.profile`` on the CPU (measured and recorded in
    ``params.results_dir`` when there is no record yet), with the CUDA one when this machine has
    a GPU and ``params.device`` is not "cpu". Returns ``{device type: table}``."""

    tables = {"cpu": record_benchmark(params.profile, params.results_dir, device="cpu")}
    if params.device != "cpu" and torch.cuda.is_available():
        tables["cuda"] = record_benchmark(params.profile, params.results_dir, device="cuda")
    return tables


def _benchmark_row(r: Any) -> dict[str, Any]:
    """One micro-benchmark row as the table shows it: the copy bound, or a case in one direction."""
    bound = r.kind == "bound"
    note = "" if bound else r.error
    if (
        not bound
        and not note
        and not (r.compiled_matches_eager in (None, "", True, "True") or pd.isna(r.compiled_matches_eager))
    ):
        note = "compiled differs from eager"
    return {
        "case": f"{r.name} (bound)" if bound else case_display_name(r.name),
        "kind": r.kind,
        "direction": "copy" if bound else r.direction,
        "median ms": r.median_ms,
        "IQR ms": r.iqr_ms,
        "GB/s": r.gbps,
        "x copy bound": r.bound_ratio,
        "note": note,
    }


BENCHMARK_METRICS = ("median ms", "IQR ms", "GB/s", "x copy bound")


def benchmark_table(
    df: Any, *, digits: int = 3, layout: str = "contiguous", metrics: Sequence[str] = BENCHMARK_METRICS
) -> Any:
    """The micro-benchmark record as a display table for one memory layout: one row per case,
    forward and backward side by side (``metrics``: median ms, IQR ms, GB/s, ratio to the copy
    bound; a page shows a few at a time, so that the table fits its column), the copy bound first."""

    rows = []
    df = at_shape(df)
    if "layout" in df:
        df = df[df["layout"] == layout]
    for r in df.itertuples(index=False):
        if r.kind == "bound" and r.name != "copy":
            continue  # the exp/tanh limits are shown in kernel_table
        rows.append(_benchmark_row(r))
    out = pd.DataFrame(rows)
    for col in ("median ms", "IQR ms", "GB/s", "x copy bound"):
        out[col] = out[col].map(lambda v: _fmt_num(v, digits))
    wide = out.pivot_table(
        index=["case", "kind"],
        columns="direction",
        values=["median ms", "IQR ms", "GB/s", "x copy bound"],
        aggfunc="first",
        sort=False,
    )
    wide.columns = [f"{d} {m}" for m, d in wide.columns]
    order = [f"{d} {m}" for d in ("copy", "forward", "backward") for m in metrics]
    wide = wide[[c for c in order if c in wide.columns]].fillna("")
    notes = out.groupby(["case", "kind"], sort=False)["note"].agg(lambda v: "; ".join(dict.fromkeys(x for x in v if x)))
    wide["note"] = notes.reindex(wide.index).fillna("")
    return wide


def case_display_name(case: str) -> str:
    """A micro-benchmark case as a page names it: a registry activation by its display name
    ("relu_max[as written]" -> "ReLU (max), as written"); PyTorch's functions keep their code names."""
    base, _, tag = case.partition("[")
    tag = tag.rstrip("]")
    if base not in ACTIVATIONS:
        return case
    name = display_name(base)
    if tag == "shared":
        return display_name(case)
    return f"{name}, {tag}" if tag else name


def _tensors_label(shape: str, record: dict) -> str:
    """``shape`` with the bytes one copy of it moves, against the last-level cache the record names."""
    n = math.prod(int(d) for d in shape.split("x"))
    moved = 2 * n * 4 / 2**20  # fp32, read and write
    cache = str((record.get("provenance") or {}).get("last_level_cache", ""))
    where = ""
    if cache[:-1].isdigit() and cache[-1:] in "KM":
        l3 = int(cache[:-1]) / (1024 if cache[-1] == "K" else 1)
        where = f"; L3 {l3:.0f} MiB: " + ("from memory" if moved > 1.5 * l3 else "partly in cache")
    return f"{shape.replace('x', ' x ')} ({moved:.0f} MiB per copy{where})"


def kernel_table(df: Any, *, digits: int = 2) -> Any:
    """The activations the study trains, as the models run them, against their physical limit in
    both memory layouts and at each recorded tensor size (the profile's ``shape``, and its
    ``memory_shape`` where the record has one): forward and backward, the time over the largest
    limit that applies ("x limit", see :func:`kernel_limits_markdown`) and over the copy of the
    same bytes alone ("x copy"), with the implementation; PyTorch's stock functions beside them."""

    if "limit_ratio" not in df:
        return pd.DataFrame()
    record = df.attrs.get("record") or {}
    rows = []
    for which in ("shape", "memory_shape"):
        part = at_shape(df, which)
        for shape in dict.fromkeys(part["shape"].astype(str)):
            tensors = _tensors_label(shape, record)
            for layout in dict.fromkeys(part["layout"]):
                d = part[
                    (part["layout"] == layout) & (part["kind"] != "compiled") & (part["shape"].astype(str) == shape)
                ]
                for name in TRAINED_ACTIVATIONS:
                    for case, label in ((name, "ours"), (STOCK.get(name), "PyTorch stock")):
                        sub = d[d["name"] == case] if case else d.iloc[0:0]
                        if sub.empty:
                            continue
                        r = {
                            "activation": name,
                            "tensors": tensors,
                            "layout": layout,
                            "code": label,
                            "implementation": sub["implementation"].iloc[0] or "PyTorch",
                        }
                        for direction in ("forward", "backward"):
                            for column, label in (("limit_ratio", "x limit"), ("bound_ratio", "x copy")):
                                if column not in sub:
                                    continue  # a table without the copy-only column
                                v = sub[sub["direction"] == direction][column]
                                r[f"{direction} {label}"] = _fmt_num(v.iloc[0], digits) if len(v) else ""
                        rows.append(r)
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows)  # grouped by activation, in the study's order; sizes and layouts within
    out = out.iloc[out["activation"].map(TRAINED_ACTIVATIONS.index).argsort(kind="stable")]
    out["activation"] = out["activation"].map(display_name)
    return out.set_index(["activation", "tensors", "layout", "code"])


def kernel_limits_markdown(df: Any) -> str:
    """What each pass of ``kernel_table`` is held to, from the bound rows the record has (a record
    made before a limit was measured says so instead of naming it)."""
    have = set(df[df["kind"] == "bound"]["name"]) if len(df) and "kind" in df else set()
    compute = sorted(set(COMPUTE_LIMITS.values()))
    parts = [f'every pass: `{LIMIT_STATEMENTS["copy"]}` scaled to the pass\'s bytes ("x copy")']
    if BACKWARD_LIMIT in have:
        parts.append(
            f"backward passes also `{LIMIT_STATEMENTS[BACKWARD_LIMIT]}` scaled to their bytes (the same three "
            "streams: two tensors read, one written)"
        )
    else:
        parts.append("backward passes the copy alone (this record predates the three-stream limit)")
    for limit in compute:
        users = sorted(
            {display_name(n) for n, k in COMPUTE_LIMITS.items() if k == limit and not n.startswith(("F.", "torch."))}
        )
        if limit in have:
            parts.append(f"{', '.join(users)} forward also `{LIMIT_STATEMENTS[limit]}`")
        else:
            parts.append(f"{', '.join(users)} forward: this record predates the `{limit}` limit")
    return (
        'Limits ("x limit" is the time over the largest that applies, all measured in the same rounds): '
        + "; ".join(parts)
        + "."
    )


def kernel_goal_markdown(table: Any, goal: float = 2.0, against: str = "limit") -> str:
    """Per tensor size of ``kernel_table``'s output: how many of our cells (activation x layout x
    direction) are within ``goal`` times their limit (``against="limit"``) or the copy bound alone
    (``"copy"``), and which are not."""
    if against not in ("limit", "copy"):
        raise ValueError(f"against must be 'limit' or 'copy', got {against!r}")
    if table is None or len(table) == 0:
        return ""
    ours = table.xs("ours", level="code")
    what = "the limit" if against == "limit" else "the copy bound alone"
    out = []
    for tensors, part in ours.groupby(level="tensors", sort=False):
        cells = [
            (act, layout, direction.split()[0], v)
            for (act, _, layout), row in part.iterrows()
            for direction, v in row.items()
            if direction.endswith(f"x {against}") and v != ""
        ]
        if not cells:
            continue
        unmeasured = [f"{act} {d} ({layout})" for act, layout, d, v in cells if v == "n/a"]  # a failed case
        over = [f"{act} {d} ({layout}) {v}" for act, layout, d, v in cells if v != "n/a" and float(v) > goal]
        line = f"- {tensors}: {len(cells) - len(over) - len(unmeasured)} of {len(cells)} of our cells within {goal:g}x of {what}"
        line += f"; above it: {', '.join(over)}" if over else ""
        out.append(line + (f"; not measured: {', '.join(unmeasured)}." if unmeasured else "."))
    return "\n".join(out)


OVERHEAD_RECORD = "train_overhead.json"  # written by benchmarks/bench_train_overhead.py --json


OVERHEAD_BF16_RECORD = "train_overhead_bf16.json"  # the same under --precision bf16


# Our goals for the fused kernels' training overhead against ReLU (the performance issue).
OVERHEAD_GOALS = {"prelu": 0.05, "rrelu": 0.10}


# What a training-overhead record holds for each model (bench_train_overhead.py's step-interleaved design).
OVERHEAD_FIELDS = ("median_step_ms", "cycles", "overhead_vs_relu", "overhead_ci95", "overhead_quartiles")


def _overhead_cell(v: float, ci: Sequence[float] | None, quartiles: Sequence[float] | None) -> str:
    if ci and all(_finite(b) for b in ci):
        return f"{100 * v:+.1f}% (95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f})"
    if quartiles:
        return f"{100 * v:+.1f}% (quartiles {100 * quartiles[0]:+.1f} to {100 * quartiles[1]:+.1f})"
    return f"{100 * v:+.1f}%"


def overhead_table(results_dir: str | Path, profile: str, *, device: str = "cpu", record: str = OVERHEAD_RECORD) -> Any:
    """Training-step time of PReLU, Xu's RReLU and ELU against ReLU in the same models, same run
    (benchmarks/bench_train_overhead.py, whose ``--json`` file is ``record``), with the fused
    kernels and, where measured, with the PyTorch forms; empty when no such record exists.
    ``attrs["design"]``: how the record paired the arms (from the record)."""
    rec = _bench_record(results_dir, profile, device, record)
    if rec is None:
        return pd.DataFrame()
    measured = {code: (rec.get(code) or {}).get("models", {}) for code in ("fused", "torch") if code in rec}
    designs = [rec[code].get("design") for code in measured]
    if not all(designs) or any(not set(OVERHEAD_FIELDS) <= set(m) for ms in measured.values() for m in ms.values()):
        return pd.DataFrame()  # a record of an earlier design (no paired cycles): measure it again
    rows = []
    for code, label in (("fused", "fused kernels"), ("torch", "PyTorch forms")):
        for model, m in measured.get(code, {}).items():
            row = {
                "model": model_display_name(model) if model in MODELS else model,
                "activation code": label,
                "threads": (rec.get(code) or {}).get("threads", ""),
                "ReLU step (ms)": f"{m['median_step_ms']['relu']:.1f}",
                "paired samples": m["cycles"],
            }
            for act, v in m["overhead_vs_relu"].items():
                row[f"{display_name(act)} vs ReLU"] = _overhead_cell(
                    v, m["overhead_ci95"].get(act), m["overhead_quartiles"].get(act)
                )
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows).set_index(["model", "activation code"])
    out.attrs["design"] = designs[0]
    return out


def overhead_goal_markdown(
    results_dir: str | Path,
    profile: str,
    *,
    device: str = "cpu",
    record: str = OVERHEAD_RECORD,
    goals: dict[str, float] = OVERHEAD_GOALS,
) -> str:
    """Per model of the record's fused-kernel measurement and per activation in ``goals``: whether
    its training overhead against ReLU is within the goal (the 95% interval's upper end at or below
    it), over it (the lower end above it), or not resolved (the interval contains it, or the record
    has no interval); empty without a record."""
    rec = _bench_record(results_dir, profile, device, record)
    models = ((rec or {}).get("fused") or {}).get("models") or {}
    lines = []
    for model, m in models.items():
        verdicts = []
        for act, goal in goals.items():
            if act not in m.get("overhead_vs_relu", {}):
                continue
            v, ci = m["overhead_vs_relu"][act], (m.get("overhead_ci95") or {}).get(act)
            head = f"{display_name(act)} {100 * v:+.1f}% against a goal of {100 * goal:g}%: "
            if not ci or not all(_finite(b) for b in ci):
                verdicts.append(head + "not resolved (no 95% interval in this record)")
            elif ci[1] <= goal:
                verdicts.append(head + f"within it (95% CI up to {100 * ci[1]:+.1f}%)")
            elif ci[0] > goal:
                verdicts.append(head + f"over it (95% CI from {100 * ci[0]:+.1f}%)")
            else:
                verdicts.append(head + f"not resolved (95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}% contains it)")
        if verdicts:
            name = model_display_name(model) if model in MODELS else model
            lines.append(f"- {name}: " + "; ".join(verdicts) + ".")
    return "\n".join(lines)


# The committed record of the fault-injection suite (`make faults`), relative to the project root.
FAULT_RECORD = Path("results") / "faults" / "fault_suite.json"


_OUTCOME_LABELS = {
    "survived": "survived",
    "lost": "records lost",
    "wrong_complete": "wrong record counted complete",
    "mismatch": "resumed record differs",
    "leftover": "files left behind",
    "escaped": "touched outside the store",
    "blocked": "blocked by a stale claim",
}


KERNEL_VARIANTS_RECORD = "kernel_variants.json"  # written by benchmarks/bench_kernels.py --json


TRAIN_STEP_GOALS = {"trainer_overhead": 0.03, "share_of_layer_ceiling": 0.60}  # the throughput issue's goals


# The whole-step record's columns shown beside the main table, by the attrs key of their table.
_STEP_TABLES = {"trainer": ("trainer",), "paths": ("compile", "bf16")}


def train_step_table(results_dir: str | Path, profile: str = "quick") -> Any:
    """The whole-step benchmark (``relustudy bench train``): per study model its FLOP per image,
    images/s, GFLOP/s as a share of the machine's sgemm and of its own layers timed alone, and the
    trainer's overhead over a bare loop; ``attrs["trainer"]`` and ``attrs["paths"]``: the trainer's
    columns, and the compiled and bf16 ones, tables of their own; ``attrs["summary"]``: one line on the record and the goals (or how to make the
    record). Empty without a record."""

    rec = _bench_record(results_dir, profile, "cpu", STEP_RECORD)
    if not rec or not rec.get("models"):
        out = pd.DataFrame()
        out.attrs["summary"] = (
            f"No whole-step record for the `{profile}` profile yet: `relustudy bench train --profile {profile}` "
            "makes it (with nothing else running on the machine)."
        )
        return out
    rows = [
        {
            "model": m["label"].replace(m["model"], model_display_name(m["model"]), 1)
            if m["model"] in MODELS
            else m["label"],
            "MFLOP per image (fwd + bwd)": m["flop_per_image"] / 1e6,
            "bare loop images/s": m["bare_images_per_second"],
            "GFLOP/s": m["gflops"],
            "share of sgemm": m["share_of_sgemm"],
            "its layers alone: share of sgemm": m["layers_alone_share_of_sgemm"],
            "share of its layers' ceiling": m["share_of_layer_ceiling"],
            "trainer images/s": m["trainer_images_per_second"],
            "trainer overhead": m["trainer_overhead"],
            "trainer overhead, 95% interval": _interval_cell(m.get("trainer_overhead_ci95")),
            **_compiled_columns(m.get("compiled")),
            "bf16 speed-up (ReLU)": (m.get("bf16") or {}).get("speedup", math.nan),
        }
        for m in rec["models"]
    ]
    out = pd.DataFrame(rows).set_index("model")
    out = out.dropna(axis=1, how="all")  # a record without compiled or bf16 timings leaves those out
    # our trainer, and the other execution paths (torch.compile, bf16), in tables of their own, so that
    # each table fits its column
    tables = {key: [c for c in out.columns if c.startswith(prefixes)] for key, prefixes in _STEP_TABLES.items()}
    split = {key: out[cols] for key, cols in tables.items()}
    out = out.drop(columns=[c for cols in tables.values() for c in cols])
    out.attrs.update(split)
    prov = rec["provenance"]
    trainer_line = _trainer_goal_line(rec, rows)
    below = [r["model"] for r in rows if r["share of its layers' ceiling"] < TRAIN_STEP_GOALS["share_of_layer_ceiling"]]
    out.attrs["summary"] = (
        f"Measured at commit `{str(prov.get('git_commit', ''))[:7]}` on {prov.get('cpu_identity', 'an unnamed CPU')}, "
        f"{rec['settings']['threads']} thread(s), fp32, channels_last; sgemm 2048: {rec['sgemm_gflops']:.0f} GFLOP/s. "
        + trainer_line
        + f" At least {TRAIN_STEP_GOALS['share_of_layer_ceiling']:.0%} of its own layers' rate: "
        f"{len(rows) - len(below)} of {len(rows)}"
        + (f" (not: {', '.join(below)})" if below else "")
        + "."
        + _compile_summary(rec)
    )
    return out


def _interval_cell(ci: Sequence[float] | None) -> Any:
    """A 95% interval of an overhead as a table cell (NaN where the record has none: the column goes)."""
    if not ci or not all(_finite(b) for b in ci):
        return math.nan
    return f"{100 * ci[0]:+.1f}% to {100 * ci[1]:+.1f}%"


def _trainer_goal_line(rec: dict, rows: list[dict]) -> str:
    """The trainer goal, judged from the interleaved design's intervals: met where the interval's
    upper end is within the goal, missed where its lower end is beyond it, else undecided. A record
    of the earlier design (trainer and bare loop timed one after the other) is not judged."""
    goal = TRAIN_STEP_GOALS["trainer_overhead"]
    if "trainer_design" not in rec.get("settings", {}):
        return (
            "The trainer and the bare loop of this record were timed one after the other, not interleaved, so "
            f"its trainer column is that design's noise and the {goal:.0%} goal is not judged from it."
        )
    cis = {
        r["model"]: m.get("trainer_overhead_ci95") or [math.nan, math.nan]
        for r, m in zip(rows, rec["models"], strict=True)
    }
    met = [k for k, (lo, hi) in cis.items() if _finite(hi) and hi <= goal]
    missed = [k for k, (lo, hi) in cis.items() if _finite(lo) and lo > goal]
    undecided = [k for k in cis if k not in met and k not in missed]
    return (
        f"Trainer within {goal:.0%} of the bare loop (the upper end of its 95% interval, trainer epochs and bare "
        f"steps interleaved): {len(met)} of {len(rows)} models"
        + (f"; beyond it (the interval's lower end above {goal:.0%}): {', '.join(missed)}" if missed else "")
        + (f"; undecided (the interval spans {goal:.0%}): {', '.join(undecided)}" if undecided else "")
        + "."
    )


def _compiled_columns(compiled: dict | None) -> dict[str, Any]:
    if not compiled:
        return {}
    return {
        "compiled images/s": compiled["images_per_second"],
        "compiled speed-up": compiled["speedup"],
        "compile time (s)": compiled["compile_seconds"],
        "compile pays within a run": "yes" if compiled["pays_within_a_run"] else "no",
        "compiled losses agree": "yes" if compiled["losses_agree"] else "no",
    }


def _compile_summary(rec: dict) -> str:
    """One sentence on torch.compile from the whole-step record: where it pays and whether its
    losses agreed with eager's (or nothing, for a record without compiled timings)."""
    timed = [m for m in rec["models"] if m.get("compiled")]
    if not timed:
        return ""
    pays = [m for m in timed if m["compiled"]["pays_within_a_run"]]
    disagree = [m for m in timed if not m["compiled"]["losses_agree"]]
    c = timed[0]["compiled"]
    adopted = (
        "every run trains eager"
        if not pays
        else "the trainer still trains them eager (compiling runs is not built): "
        + ", ".join(model_display_name(m["model"]) for m in pays)
        + " would gain"
    )
    return (
        f" Under torch.compile (inductor), {len(pays)} of {len(timed)} models earn their compile time back within "
        f"the shortest run that trains them, and {adopted}; {len(timed) - len(disagree)} of {len(timed)} give "
        f"eager's losses over "
        f"{c['loss_check_steps']} steps within a relative {c['loss_tolerance']:g}"
        + (f" (not: {', '.join(model_display_name(m['model']) for m in disagree)})" if disagree else "")
        + "."
    )


ELU_FORWARD_RECORD = "elu_forward.json"  # written by benchmarks/bench_elu_forward.py --json
ELU_FORWARD_GOAL = 1.5  # the throughput issue's goal: ELU's fused forward within 1.5x of a copy


def elu_forward_markdown(results_dir: str | Path, profile: str, *, device: str = "cpu") -> str:
    """ELU's fused forward against a copy of the same tensor and against the goal, from its record
    (``benchmarks/bench_elu_forward.py --json``); empty without one."""
    rec = _bench_record(results_dir, profile, device, ELU_FORWARD_RECORD)
    if not rec:
        return ""
    over = rec["over_copy"]
    verdict = "within" if over["fused"] <= ELU_FORWARD_GOAL else "over"
    return (
        f"ELU's fused forward takes {over['fused']:.2f}x the time of a copy of the same "
        f"{rec['numel']:,}-element tensor ({verdict} the goal of {ELU_FORWARD_GOAL:g}x), PyTorch's F.elu "
        f"{over['F.elu']:.2f}x: median of {rec['rounds']} interleaved rounds, {rec['threads']} thread(s), "
        f"{rec['cpu']}, commit `{str(rec['provenance'].get('git_commit', ''))[:7]}` "
        f"({rec['fused implementation']})." + _other_paths(over) + _exhaustive_check(results_dir, profile, device)
    )


ELU_FLOAT_CHECK_RECORD = "elu_float_check.json"  # written by benchmarks/check_elu_float.py --json


def _exhaustive_check(results_dir: str | Path, profile: str, device: str) -> str:
    """The float32 paths' exactness over every input, from their record, if there is one."""
    rec = _bench_record(results_dir, profile, device, ELU_FLOAT_CHECK_RECORD)
    if not rec:
        return ""
    paths = "; ".join(
        f"{name}: at most {s['max_ulps_float64']} ulp from the float64 reference and {s['max_ulps_torch']} from "
        f"F.elu, {s['not_correctly_rounded']:,} not correctly rounded"
        for name, s in rec["paths"].items()
    )
    same = "the same bits on every path" if rec["paths_give_the_same_bits"] else "NOT the same bits on every path"
    return (
        f" Exactness, {rec['inputs']} (commit `{str(rec['provenance'].get('git_commit', ''))[:7]}`): {paths}; {same}."
    )


def _other_paths(over: dict[str, float]) -> str:
    """The fused kernel's other paths in an ELU forward record (``"fused, <path>"`` keys), if any."""
    others = [f"{k.removeprefix('fused, ')} {v:.2f}x" for k, v in over.items() if k.startswith("fused, ")]
    return f" The kernel's other paths on this CPU: {'; '.join(others)}." if others else ""


def kernel_variants_table(results_dir: str | Path, profile: str, *, device: str = "cpu") -> Any:
    """The kernels' before-and-after measurement (benchmarks/bench_kernels.py, whose ``--json``
    file is :data:`KERNEL_VARIANTS_RECORD`): one row per case, its median time and its time over
    the copy bound of the same run (``attrs["record"]``: the record); None without a record."""
    rec = _bench_record(results_dir, profile, device, KERNEL_VARIANTS_RECORD)
    if not rec or not rec.get("rows"):
        return None
    df = pd.DataFrame(rec["rows"]).rename(columns={"median_ms": "median (ms)", "bound_ratio": "x copy bound"})
    df = df[["case", "pass", "median (ms)", "x copy bound"]].set_index("case")
    df["median (ms)"] = df["median (ms)"].map("{:.3f}".format)
    df["x copy bound"] = df["x copy bound"].map("{:.2f}".format)
    df.attrs["record"] = rec
    return df


def fault_suite_table(root: str | Path | None = None) -> Any:
    """The fault suite's last recorded run (:data:`FAULT_RECORD`) as a table: one row per fault
    (its description), the trials and each outcome; None when there is no readable record."""
    rec = _committed_record(FAULT_RECORD, root)
    if rec is None:
        return None
    rows = []
    for fault, counts in rec["by_fault"].items():
        rows.append(
            {
                "fault": rec["faults"].get(fault, fault),
                "trials": sum(counts.values()),
                **{_OUTCOME_LABELS[o]: counts.get(o, 0) for o in _OUTCOME_LABELS},
            }
        )
    table = pd.DataFrame(rows)
    table.loc[len(table)] = {"fault": "all faults", **table.drop(columns="fault").sum().to_dict()}
    return table.set_index("fault")


def _containment_counts(rec: dict[str, Any]) -> str:
    """The containment part of a fault record (symbolic links, stale claims, the sentinel outside
    the store); empty for records made before the suite had it."""
    if "files_outside_changed" not in rec:
        return ""
    total = rec["total"]
    return (
        f", **{total.get('escaped', 0)} that changed or trusted anything outside the store** through a "
        f"symbolic link, {total.get('blocked', 0)} blocked by a stale claim, and "
        f"**{rec['files_outside_changed']} files changed** in a sentinel folder outside every store"
    )


def fault_suite_markdown(root: str | Path | None = None) -> str:
    """One paragraph on the fault suite's last recorded run: trials, records lost, wrong records
    counted complete, and its provenance; or how to make the record."""
    rec = _committed_record(FAULT_RECORD, root)
    if rec is None:
        return f"No fault-suite record in `{FAULT_RECORD}` yet: `make faults` runs the suite and writes it."
    total, prov = rec["total"], rec["provenance"]
    git = prov.get("git") or {}
    commit = str(git.get("git_commit", "unknown"))[:10] + (
        " with uncommitted changes" if git.get("git_dirty") is True else ""
    )
    return (
        f"The suite's last recorded run: **{rec['trials']} trials**, {total['survived']} survived, "
        f"**{total['lost']} records lost**, **{total['wrong_complete']} wrong records counted complete**, "
        f"{total['mismatch']} resumed records that differ from an uninterrupted run, {total['leftover']} with "
        f"files left behind{_containment_counts(rec)} (commit {commit}, {prov.get('cpu', 'unknown CPU')}, torch {prov.get('torch', '?')}, "
        f"{prov.get('finished', '?')}, {_fmt_minutes(float(prov.get('wall_seconds', 0)))}; the tiny run under test "
        f"took {float(prov.get('child_run_seconds', 0)):.0f} s and wrote {prov.get('file_writes_per_run', '?')} files)."
    )


# The committed measurement of benchmarks/bench_jobs.py, relative to the project root.
SCHEDULING_RECORD = Path("results") / "microbench" / "quick" / "cpu" / "jobs_vs_sequential.json"


def scheduling_markdown(root: str | Path | None = None) -> str:
    """What the scheduling measurement (:data:`SCHEDULING_RECORD`) found: the wall-time ratio of
    ``--jobs N`` with one thread each over a sequential grid with N threads per run, and whether
    the thread count changed the runs' numbers; or how to make the record."""
    rec = _committed_record(SCHEDULING_RECORD, root)
    if rec is None:
        return f"No scheduling measurement in `{SCHEDULING_RECORD}` yet: `benchmarks/bench_jobs.py --out ...` makes it."
    prov, ratios = rec["provenance"], rec["ratio_jobs_over_sequential"]
    faster = "faster" if max(ratios) < 1 else "slower" if min(ratios) > 1 else "neither faster nor slower"
    numbers = (
        "gave the same numbers"
        if rec["identical_numbers"]
        else f"did not give the same numbers: {rec['runs_whose_numbers_differ']} of {rec['runs_per_way']} runs "
        "differ (other thread counts sum in another order, and training amplifies the last bits, as a change "
        "of CPU does), so a record states its threads and a rerun reproduces it only with the same ones"
    )
    what = rec["what"]
    for key in EXPERIMENTS.names():  # the record names its experiment by key; a page by name
        what = re.sub(rf"(?<![\w.]){re.escape(key)}(?![\w])", experiment_name(key), what)
    return (
        f"Measured on {prov.get('cpu', 'this CPU')} ({prov.get('cpus', '?')} CPUs), {what}: wall time of "
        f"`--jobs` over sequential {', '.join(f'{r:.2f}' for r in ratios)} ({len(ratios)} paired "
        f"measurement{'s' if len(ratios) != 1 else ''}), so `--jobs` was {faster}; the two schedules {numbers} "
        f"({prov.get('finished', '?')}, commit {str(prov.get('git_commit', 'unknown'))[:10]})."
    )


ALLOCATOR_RECORD = Path("results/microbench/quick/cpu/allocator.json")  # benchmarks/bench_allocator.py


def allocator_markdown(root: str | Path | None = None) -> str:
    """What the allocator measurement (:data:`ALLOCATOR_RECORD`) found: wall, system time and
    minor page faults of the same run with glibc's malloc as it is and with freed memory kept."""
    rec = _committed_record(ALLOCATOR_RECORD, root)
    if rec is None or len(rec.get("median", {})) != 2:
        return f"No allocator measurement in `{ALLOCATOR_RECORD}` yet: `benchmarks/bench_allocator.py --json ...` makes it."
    (name_a, a), (name_b, b) = rec["median"].items()
    prov, exp = rec.get("provenance", {}), rec["experiment"]
    return (
        f"The same run ({experiment_name(exp) if exp in EXPERIMENTS else exp}, {rec['profile']} profile) in fresh "
        f"processes, {rec['rounds']} "
        f"round(s): with {name_a} it took {a['wall_s']:.1f} s ({a['sys_s']:.1f} s of it in the kernel, "
        f"{a['minor_faults']:,.0f} minor page faults); with freed memory {name_b} {b['wall_s']:.1f} s "
        f"({b['sys_s']:.1f} s, {b['minor_faults']:,.0f}) ({prov.get('date', '?')}, commit "
        f"{str(prov.get('git_commit', 'unknown'))[:10]})."
    )


def step_timing_table(results_dir: str | Path, experiment: str, profile: str) -> Any:
    """One row per timed form of ``experiment``'s step-timing record: the median step time (ms,
    mean over seeds of each seed's median) eager and compiled, and compiled over eager; the
    record's provenance in ``attrs["caption"]``. Empty where there is no record."""
    record = read_step_timing(results_dir, experiment, profile)
    if record is None:
        return pd.DataFrame()
    frame = pd.DataFrame(step_timing_rows(record))
    spec = STEP_TIMINGS.get(experiment)
    batch = record["batch_size"]
    ms = frame.assign(ms=1e3 * batch / np.exp(frame["value"])).groupby("arm")["ms"].mean()
    rows = []
    for arm in spec.arms:
        row = {"form": arm.label}
        for variant in record["settings"]["variants"]:
            row[f"{variant} step (ms)"] = ms.get(step_label(arm.label, variant), np.nan)
        if {"eager", "compiled"} <= set(record["settings"]["variants"]):
            row["compiled / eager"] = f"{row['compiled step (ms)'] / row['eager step (ms)']:.2f}"
        for variant in record["settings"]["variants"]:
            row[f"{variant} step (ms)"] = _fmt_num(row[f"{variant} step (ms)"], 1)
        rows.append(row)
    out = pd.DataFrame(rows).set_index("form")
    prov, st = record["provenance"], record["settings"]
    out.attrs["caption"] = (
        f"Median step time, mean over seeds ({profile} profile: {len(st['seeds'])} seeds x {st['cycles']} cycles, batch {batch}, {prov['device']}, "
        f"torch {prov['torch_version']}, load average {prov['load_average_at_start'][0]:.1f} at the start, "
        f"commit {prov.get('git_commit', '?')[:7]}, {prov['end_time'][:10]}, {prov['wall_seconds'] / 60:.0f} min). "
        + spec.note
    )
    return out
