"""Tests for relustudy.microbench: the table's shape and bookkeeping (rows, bytes, GB/s and the
copy-bound ratio recomputed from the table), error paths, torch.compile handling and the CLI.
Tiny shapes and run times; speed itself is never asserted."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch._inductor.config as inductor_config

from relustudy import microbench
from relustudy.activations import ACTIVATIONS
from relustudy.microbench import (
    BUILTINS,
    COLUMNS,
    VARIANTS,
    DeviceUnavailableError,
    benchmark_activations,
    case_names,
)
from relustudy.registry import UnknownNameError

SHAPE = (4, 3, 8, 8)
N = 4 * 3 * 8 * 8  # 768
TINY = dict(shape=SHAPE, repeats=2, min_run_time=1e-3, threads=1)
MODULES = ["lrelu", "rrelu", "torch_rrelu", "elu", "tanh"]
PRELU_FORMS = {
    "prelu",
    "prelu_maxmin",
    "prelu_abs",
    "prelu_schluter",
    "prelu_where",
    "F.prelu",
    "prelu_maxmin[as written]",
    "prelu_abs[as written]",
}
TIMES = ["median_ms", "iqr_ms", "min_ms", "max_ms"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return benchmark_activations(**TINY)


def test_columns_and_metadata(table):
    assert list(table.columns) == COLUMNS
    assert set(table.device) == {"cpu"}
    assert set(table["dtype"]) == {"float32"}
    assert set(table.threads) == {1}
    assert set(table["shape"]) == {"4x3x8x8"}  # (table.shape is the DataFrame attribute)
    assert set(table.torch_version) == {torch.__version__}
    assert set(table.kind) == {"bound", "variant", "module", "builtin"}  # no compiled rows by default
    assert (table.error == "").all()
    assert set(table["layout"]) == {"contiguous"}
    impl = table.set_index(["name", "direction"])["implementation"]
    assert impl[("F.prelu", "forward")] == "PyTorch" and impl[("relu", "forward")] == "PyTorch"
    assert impl[("prelu", "forward")].startswith(("fused CPU kernel", "PyTorch composition"))


def test_forward_and_backward_row_for_every_case(table):
    expected = {
        **{n: "variant" for n in VARIANTS},
        **{n: "module" for n in MODULES},
        **{n: "module" for n in microbench.PARAMETRISED},
        **{n: "variant" for n in microbench.AS_WRITTEN},  # compiled too, like the variants
        **{n: "builtin" for n in BUILTINS},
    }
    assert set(expected) == set(case_names())  # every registry activation is benchmarked
    assert set(ACTIVATIONS.names()) <= set(expected)
    assert set(BUILTINS) == {
        "F.relu",
        "F.leaky_relu",
        "F.prelu",
        "F.rrelu[train]",
        "F.rrelu[eval]",
        "F.elu",
        "torch.tanh",
    }
    cases = table[table.kind != "bound"]
    got = {(r.name, r.kind, r.direction) for r in cases.itertuples()}
    want = {(n, k, d) for n, k in expected.items() for d in ("forward", "backward")}
    assert got == want
    assert len(cases) == len(want)  # no duplicates


def test_copy_bound_row(table):
    bounds = table[table.kind == "bound"]
    assert set(bounds["name"]) == {"copy", "add", "exp", "expm1", "tanh"}
    copy = bounds[bounds["name"] == "copy"]
    row = copy.iloc[0]
    assert (row["name"], row.direction, row.bound_ratio) == ("copy", "copy", 1.0)
    assert row.bytes == 2 * N * 4  # reads N + writes N float32
    add = bounds.set_index("name").loc["add"]
    assert add.direction == "backward" and add.bytes == 3 * N * 4  # reads 2N + writes N, as a backward
    assert add.bound_ratio == pytest.approx(add.median_ms / (row.median_ms * 1.5), rel=1e-12)


def test_times_positive_finite_and_ordered(table):
    t = table[TIMES].to_numpy()
    assert (t[:, [0, 2, 3]] > 0).all() and (t[:, 1] >= 0).all()
    assert all(math.isfinite(v) for v in t.ravel())
    assert (table.min_ms <= table.median_ms).all() and (table.median_ms <= table.max_ms).all()
    assert (table.iqr_ms <= table.max_ms - table.min_ms + 1e-12).all()


def test_bytes_model(table):
    c = SHAPE[1]  # PReLU coefficients: one per channel
    for r in table[table.kind != "bound"].itertuples():
        extra = c if r.name in PRELU_FORMS else 1 if r.name == "prelu[shared]" else 0
        want = (2 * N + extra) * 4 if r.direction == "forward" else (3 * N + 2 * extra) * 4
        assert r.bytes == want, r


def test_gbps_and_bound_ratio_recomputed_from_table(table):
    copy = table[table.name == "copy"].iloc[0]
    for r in table.itertuples():
        assert r.gbps == pytest.approx(r.bytes / (r.median_ms * 1e-3) / 1e9, rel=1e-12)
        scaled_copy_ms = copy.median_ms * r.bytes / copy.bytes
        assert r.bound_ratio == pytest.approx(r.median_ms / scaled_copy_ms, rel=1e-12)


def test_names_subset_and_unknown_name():
    df = benchmark_activations(names=["relu_where", "F.elu"], **TINY)
    assert sorted(set(df.name)) == ["F.elu", "add", "copy", "exp", "expm1", "relu_where", "tanh"]
    assert len(df) == 9
    with pytest.raises(UnknownNameError, match="valid names"):
        benchmark_activations(names=["relu", "relu_sqrt"], **TINY)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(repeats=0),
        dict(shape=(8,)),
        dict(shape=(2, 0, 3)),
        dict(min_run_time=0),
        dict(threads=0),
        dict(dtype=torch.int32),
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        benchmark_activations(**{**TINY, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_unavailable_raises():
    with pytest.raises(DeviceUnavailableError):
        benchmark_activations(names=["relu"], device="cuda", **TINY)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_table():
    df = benchmark_activations(names=["relu", "prelu_abs"], device="cuda", **TINY)
    assert set(df.device) == {"cuda"} or set(df.device) == {"cuda:0"}
    assert (df.error == "").all() and (df.median_ms > 0).all()


@pytest.mark.slow
def test_compile_relu_abs_matches_eager_or_records_failure():
    # Compiling one small variant takes ~10-15 s on the 2-core machine (inductor cache cold).

    # no compile-worker pool; inductor's own patch, since monkeypatch's undo would delete the setting
    # from inductor's config module and break every later compilation in this process
    with inductor_config.patch(compile_threads=1):
        df = benchmark_activations(names=["relu_abs"], compile=True, **TINY)
    comp = df[df.kind == "compiled"]
    assert set(comp.direction) == {"forward", "backward"} and set(comp.name) == {"relu_abs"}
    eager = df[df.kind == "variant"]
    assert len(eager) == 2 and (eager.error == "").all() and eager.compiled_matches_eager.isna().all()
    for r in comp.itertuples():
        if r.error.startswith("compile failed: "):
            assert len(r.error.splitlines()) == 1 and math.isnan(r.median_ms)
        else:
            assert r.error == "" and r.compiled_matches_eager is True
            assert math.isfinite(r.median_ms) and r.median_ms > 0


def test_compile_failure_is_recorded_not_raised(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("inductor exploded\nsecond line of the traceback")

    monkeypatch.setattr(torch, "compile", broken_compile)
    df = benchmark_activations(names=["relu_mask", "F.relu"], compile=True, **TINY)
    comp = df[df.kind == "compiled"]
    assert set(comp.name) == {"relu_mask"} and len(comp) == 2  # builtins are not compiled
    assert set(comp.error) == {"compile failed: RuntimeError: inductor exploded"}
    assert comp[TIMES].isna().all().all() and comp.gbps.isna().all()
    ok = df[df.kind != "compiled"]
    assert (ok.error == "").all() and (ok.median_ms > 0).all()


def test_failing_case_is_recorded_not_raised(monkeypatch):
    def broken(x, a):
        raise RuntimeError("kernel missing")

    monkeypatch.setitem(microbench.BUILTINS, "F.elu", (broken, False))
    df = benchmark_activations(names=["F.elu", "relu"], **TINY)
    bad = df[df.name == "F.elu"]
    assert len(bad) == 2 and set(bad.error) == {"failed: RuntimeError: kernel missing"}
    assert bad.median_ms.isna().all()
    good = df[df.name != "F.elu"]
    assert (good.error == "").all() and (good.median_ms > 0).all()


def test_compiled_vs_eager_comparison_tolerates_reordered_sums_only():
    g = torch.Generator().manual_seed(0)
    x, go = torch.randn(8, 3, 40, 40, generator=g), torch.randn(8, 3, 40, 40, generator=g)
    y = torch.relu(x)
    grad_a = (go * x.clamp(max=0)).sum(dim=(0, 2, 3))  # PReLU's grad_a at this x
    reordered = (go * x.clamp(max=0)).double().sum(dim=(0, 2, 3)).float()  # another summation order
    assert microbench._mismatches(y, y, (go, reordered), (go, grad_a), x, go) == []
    wrong = grad_a * 1.001  # a formula error, even a small one, is far above the tolerance
    problems = microbench._mismatches(y, y, (go, wrong), (go, grad_a), x, go)
    assert len(problems) == 1 and problems[0].startswith("param 0 grad")
    problems = microbench._mismatches(y + 1e-3, y, (go, grad_a), (go, grad_a), x, go)
    assert len(problems) == 1 and problems[0].startswith("output")


def _load_cli(name: str = "bench_activations"):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_overhead_pairs_every_arm_with_relu_cycle_by_cycle():
    bench = _load_cli("bench_train_overhead")
    out = bench.measure(cycles=8, batch=4, models=("simple_mlp_bn",))
    m = out["models"]["simple_mlp_bn"]
    arms = [a for a, _ in bench.ARMS]
    assert m["cycles"] == 8 and set(m["median_step_ms"]) == set(arms)
    assert set(m["overhead_vs_relu"]) == set(m["overhead_ci95"]) == set(arms) - {"relu"}
    for arm, (lo, hi) in m["overhead_ci95"].items():  # n = 8: the interval is the 2nd smallest to 2nd largest
        assert lo <= m["overhead_vs_relu"][arm] <= hi
    assert out["design"].startswith("step-interleaved")
    assert set(m["measured"]) == {"date", "git_commit"}


def test_train_overhead_update_replaces_only_the_models_measured_again():
    bench = _load_cli("bench_train_overhead")
    old = {
        "fused": {"design": "d", "models": {"nin": {"cycles": 60}, "smith_cnn": {"cycles": 60}}},
        "torch": {"models": {"nin": {"cycles": 60}}},
        "provenance": {"git_commit": "a", "date": "then"},
    }
    new = {"fused": {"design": "d", "models": {"nin": {"cycles": 240}}}, "provenance": {"git_commit": "b"}}
    merged = bench.merge_record(old, new)
    assert merged["fused"]["models"] == {"nin": {"cycles": 240}, "smith_cnn": {"cycles": 60}}
    assert merged["torch"] == old["torch"]  # not measured again: kept
    assert merged["provenance"] == {"git_commit": "b", "earlier": [{"git_commit": "a", "date": "then"}]}
    again = bench.merge_record(merged, {"fused": {"models": {}}, "provenance": {"git_commit": "c"}})
    assert [e["git_commit"] for e in again["provenance"]["earlier"]] == ["a", "b"]


def test_cli_writes_csv(tmp_path, capsys):
    cli = _load_cli()
    assert cli.parse_shape("2x3x4x4") == cli.parse_shape("2,3,4,4") == (2, 3, 4, 4)
    out = tmp_path / "sub" / "bench.csv"
    rc = cli.main(
        [
            "--shape",
            "2,3,4,4",
            "--names",
            "relu,F.prelu",
            "--repeats",
            "1",
            "--min-run-time",
            "0.001",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS and len(df) == 5 + 4  # five bound rows, two cases x two directions
    printed = capsys.readouterr().out
    assert "F.prelu" in printed and "bound_ratio" in printed


# ------------------------------------------------------------------------ recorded benchmarks
mb = microbench


def _fake_table(**settings):
    shape = "x".join(map(str, settings.get("shape", (2, 2))))
    rows = [
        dict(
            name="copy",
            kind="bound",
            direction="copy",
            median_ms=1.0,
            iqr_ms=0.1,
            min_ms=0.9,
            max_ms=1.1,
            gbps=10.0,
            bound_ratio=1.0,
            bytes=8,
            error="",
            shape=shape,
            layout=settings.get("layout", "contiguous"),
        )
    ]
    for name, med, lo, hi in (("relu_max", 2.0, 1.9, 2.1), ("relu_abs", 2.05, 2.0, 2.2), ("prelu", 4.0, 3.9, 4.1)):
        rows.append(
            dict(
                name=name,
                kind="variant",
                direction="forward",
                median_ms=med,
                iqr_ms=0.1,
                min_ms=lo,
                max_ms=hi,
                gbps=1.0,
                bound_ratio=med,
                bytes=8,
                error="",
                shape=shape,
                layout=settings.get("layout", "contiguous"),
            )
        )
    return mb.pd.DataFrame(rows)


def test_record_and_load_benchmark(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        mb,
        "benchmark_activations",
        lambda names=None, **kw: calls.append({**kw, **({"names": names} if names else {})}) or _fake_table(**kw),
    )
    df = mb.record_benchmark("smoke", tmp_path)
    settings = mb.BENCH_PROFILES["smoke"]
    run = {k: v for k, v in settings.items() if k not in ("layouts", "memory_shape")}
    memory = {**run, "shape": settings["memory_shape"], "compile": False, "names": mb.KERNEL_CASES}
    assert calls == [{"device": "cpu", **run, "layout": layout} for layout in mb.LAYOUTS] + [
        {"device": "cpu", **memory, "layout": layout} for layout in mb.LAYOUTS
    ]
    assert df.attrs["record"]["profile"] == "smoke"  # a fresh record carries its provenance too
    loaded = mb.load_benchmark(tmp_path, "smoke")
    assert loaded["median_ms"].tolist() == df["median_ms"].tolist()
    rec = loaded.attrs["record"]
    assert rec["profile"] == "smoke" and rec["settings"]["shape"] == [16, 8, 16, 16]
    assert {"git_commit", "source_sha256", "device", "torch_version", "allocator", "wall_seconds"} <= set(
        rec["provenance"]
    )
    assert rec["provenance"]["last_level_cache"] == mb.last_level_cache()
    # the profile's size holds every case once; the second size only the trained activations
    primary, memory = mb.at_shape(loaded), mb.at_shape(loaded, "memory_shape")
    assert len(primary) + len(memory) == len(loaded) and len(primary) == len(memory) == len(loaded) // 2
    assert set(primary["shape"]) == {"16x8x16x16"} and set(memory["shape"]) == {"8x8x8x8"}
    assert mb.speed_ratio(loaded, "relu_max", "relu_abs", "forward")["ratio"] == pytest.approx(2.0 / 2.05)
    with pytest.raises(ValueError, match="which must be"):
        mb.at_shape(loaded, "shapes")
    mb.record_benchmark("smoke", tmp_path)  # an existing record is reused ...
    assert len(calls) == 4
    mb.record_benchmark("smoke", tmp_path, force=True)  # ... unless forced
    assert len(calls) == 8


def test_missing_benchmark_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="relustudy bench --profile quick --device cpu"):
        mb.load_benchmark(tmp_path, "quick")
    with pytest.raises(ValueError, match="valid profiles"):
        mb.benchmark_dir(tmp_path, "fast")


def test_speed_ratio_verdicts():
    df = _fake_table()
    same = mb.speed_ratio(df, "relu_max", "relu_abs", "forward")
    assert same["verdict"] == "within noise" and same["ratio"] == pytest.approx(2.0 / 2.05)
    diff = mb.speed_ratio(df, "prelu", "relu_max", "forward")
    assert diff["verdict"] == "different" and diff["ratio"] == pytest.approx(2.0)


def test_limit_ratio_uses_the_largest_limit_that_applies(table):
    """ELU's and tanh's forward are held to max(copy, vectorised expm1/tanh), every backward to
    max(copy, three-stream add), each scaled to the pass's bytes; other forwards to the copy."""
    bounds = table[table.kind == "bound"].set_index("name")
    lim = bounds["median_ms"]
    assert microbench.COMPUTE_LIMITS["elu"] == "expm1" and microbench.COMPUTE_LIMITS["tanh"] == "tanh"
    copy = table[table.name == "copy"].iloc[0]
    for r in table[table.kind != "bound"].itertuples():
        memory_ms = copy.median_ms * r.bytes / copy.bytes
        limit = memory_ms
        if r.direction == "forward" and r.name in microbench.COMPUTE_LIMITS:
            limit = max(memory_ms, lim[microbench.COMPUTE_LIMITS[r.name]])
        if r.direction == "backward":
            limit = max(memory_ms, lim["add"] * r.bytes / bounds.loc["add", "bytes"])
        assert r.limit_ratio == pytest.approx(r.median_ms / limit, rel=1e-12), r.name
        assert r.limit_ratio <= r.bound_ratio * (1 + 1e-12)  # a limit is never below the copy's


def test_channels_last_layout_and_shared_prelu():
    df = benchmark_activations(names=["prelu", "prelu[shared]"], layout="channels_last", **TINY)
    assert set(df["layout"]) == {"channels_last"}
    shared = df[df.name == "prelu[shared]"]
    assert (shared["bytes"] == [(2 * N + 1) * 4, (3 * N + 2) * 4]).all()  # one coefficient
    with pytest.raises(ValueError, match="layout"):
        benchmark_activations(names=["relu"], layout="nhwc", **TINY)


def test_old_records_without_layout_load_as_contiguous(tmp_path):
    folder = mb.benchmark_dir(tmp_path, "quick")
    folder.mkdir(parents=True)
    old = _fake_table()
    old["layout"] = None
    old.drop(columns=["layout"]).to_csv(folder / mb.BENCH_TABLE, index=False)
    (folder / mb.BENCH_RECORD).write_text("{}")
    df = mb.load_benchmark(tmp_path, "quick")
    assert set(df["layout"]) == {"contiguous"} and (df["limit_ratio"] == df["bound_ratio"]).all()
