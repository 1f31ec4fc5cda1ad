"""The whole-step benchmark: FLOP counts with known values, the study's models read from the
registry, and a recorded (smoke) measurement with every field and a clear error for a bad profile."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from tiny_runs import small
from torch import nn

from relustudy import book
from relustudy import stepbench as sb
from relustudy.batched import StackedSeeds
from relustudy.config import ConfigError
from relustudy.models import build_model
from relustudy.registry import UnknownNameError
from relustudy.stats import paired_comparison
from relustudy.store import StoreError


def test_step_flops_of_a_linear_layer_by_hand():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    # forward x @ W^T: 2 * 5 * 4 * 3; backward: the weight's gradient only (x needs none), as many again
    assert sb.step_flops(model, x, y) == 2 * (2 * 5 * 4 * 3)
    assert model.weight.grad is None  # the count leaves no gradient behind


def test_layers_alone_counts_forward_and_both_gradients_of_a_conv():
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    calls = sb.layer_calls(conv, torch.randn(3, 2, 8, 8))
    assert [shape for _, shape in calls] == [torch.Size([3, 2, 8, 8])]
    seconds, flops = sb.layers_alone(calls, steps=1, warmup=0)
    forward = 2 * 3 * 4 * 2 * 9 * 8 * 8  # batch x out x in x kernel x output pixels, a multiply-add each
    assert flops == 3 * forward and seconds > 0  # forward, input gradient, weight gradient


def test_study_models_come_from_the_registry():
    models = sb.study_models()
    nin = [m for m in models if m.model == "nin" and m.width == 0.25]
    assert nin and "xu_cifar10_nin/regime" in nin[0].used_by
    # initialisation and probes change no shape: he_cifar10_init's two inits are one entry per depth
    assert not any("init=" in m.label or "probes=" in m.label for m in models)
    assert len({(m.model, m.model_params, m.batch_size, m.in_shape) for m in models}) == len(models)


def test_smoke_record_has_every_field(tmp_path):
    tiny = sb.StudyModel("smith_cnn", 1.0, 16, (1, 28, 28), 10, (), ("test/smoke",))
    record = sb.record_train_benchmark("smoke", tmp_path, models=[tiny])
    path = tmp_path / "microbench" / "smoke" / "cpu" / sb.STEP_RECORD
    assert json.loads(path.read_text()) == json.loads(json.dumps(record))
    (row,) = record["models"]
    assert row["flop_per_image"] > 0 and record["sgemm_gflops"] > 0
    for key in ("bare_images_per_second", "trainer_images_per_second", "share_of_sgemm", "share_of_layer_ceiling"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    low, high = row["trainer_overhead_ci95"]  # the trainer's epochs and the bare steps, interleaved
    assert low <= row["trainer_overhead"] <= high and row["trainer_cycles"] >= 8
    assert record["settings"]["trainer_design"].startswith("step-interleaved")
    assert record["provenance"]["cpu_identity"] and record["settings"]["threads"] == 1
    # an existing record is returned, not measured again
    assert sb.record_train_benchmark("smoke", tmp_path, models=[]) == json.loads(path.read_text())


def test_unknown_benchmark_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="valid: smoke, quick, paper"):
        sb.record_train_benchmark("fast", tmp_path)


def test_the_methods_table_reads_the_record_and_says_the_goals(tmp_path):
    empty = book.train_step_table(tmp_path, "smoke")
    assert empty.empty and "relustudy bench train --profile smoke" in empty.attrs["summary"]
    tiny = sb.StudyModel("smith_cnn", 1.0, 16, (1, 28, 28), 10, (), ("test/smoke",))
    record = sb.record_train_benchmark("smoke", tmp_path, models=[tiny])
    table = book.train_step_table(tmp_path, "smoke")
    assert list(table.index) == ["Smith's CNN width 1, batch 16, 1x28x28"]  # the network by name, not its key
    assert table.iloc[0]["bare loop images/s"] == pytest.approx(record["models"][0]["bare_images_per_second"])
    assert "trainer overhead" in table.attrs["trainer"].columns  # the trainer beside the bare loop, in its own table
    summary = table.attrs["summary"]
    assert "of 1 models" in summary and "of its own layers' rate" in summary
    assert record["provenance"]["cpu_identity"] in summary


# ------------------------------------------------------------------ interleaved step timing
def test_interleaving_rotates_the_order_and_times_every_step_every_cycle():
    order = []
    steps = {name: (lambda name=name: order.append(name)) for name in "abc"}
    times = sb.interleaved_step_times(steps, cycles=3)
    assert order == list("abcbcacab")  # no step always follows the same one
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    with pytest.raises(ConfigError, match="cycles must be >= 1"):
        sb.interleaved_step_times(steps, cycles=0)


def _step_record(ratio: float, seeds=(0, 1, 2)) -> dict:
    """A step-timing record whose arm b's step takes ``ratio`` times arm a's, in every seed."""
    return {
        "experiment": "theano_mnist_radford_timing",
        "profile": "quick",
        "batch_size": 128,
        "settings": {"seeds": list(seeds), "cycles": 4, "warmup": 1, "variants": ["eager", "compiled"]},
        "seeds": [
            {"seed": s, "median_step_seconds": {"a, compiled": 0.1 * (1 + s / 100), "b, compiled": 0.1 * ratio}}
            for s in seeds
        ],
        "provenance": {"device": "cpu: 1 threads", "wall_seconds": 60.0, "git_commit": "abc"},
    }


def test_step_rows_are_log_images_per_second_paired_by_seed():
    rows = pd.DataFrame(sb.step_timing_rows(_step_record(1.25)))
    assert set(rows["metric"]) == {sb.STEP_METRIC} and set(rows["status"]) == {"complete"}
    assert rows["wall_seconds"].isna().all()  # the record's wall time is not counted once per row
    a0 = rows[(rows["arm"] == "a, compiled") & (rows["seed"] == 0)]["value"].item()
    assert a0 == pytest.approx(math.log(128 / 0.1))
    pc = paired_comparison(rows, sb.STEP_METRIC, "b, compiled", "a, compiled")
    assert pc.n == 3 and pc.mean_diff == pytest.approx(
        -math.log(1.25) - np.mean([math.log(1 / (1 + s / 100)) for s in (0, 1, 2)])
    )


def test_a_missing_step_record_gives_no_rows_and_a_corrupted_one_a_single_line(tmp_path):
    assert len(sb.step_timing_frame(tmp_path, "theano_mnist_radford_timing", "quick")) == 0
    assert len(sb.step_timing_frame(tmp_path, "smith_mnist", "quick")) == 0  # no step timing registered
    path = sb.step_timing_path(tmp_path, "theano_mnist_radford_timing", "quick")
    path.parent.mkdir(parents=True)
    path.write_text('{"experiment": "theano_mnist_radford_timing", "seeds": [')
    with pytest.raises(
        StoreError, match="cannot be read .*relustudy bench steps --experiment theano_mnist_radford_timing"
    ):
        sb.step_timing_frame(tmp_path, "theano_mnist_radford_timing", "quick")
    path.write_text(json.dumps(_step_record(1.0)))
    assert len(sb.step_timing_frame(tmp_path, "theano_mnist_radford_timing", "quick")) == 6


def test_unknown_step_timings_and_variants_are_one_line_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown step timing 'nope'; valid names: theano_mnist_radford_timing"):
        sb.record_step_timing("nope", "quick", tmp_path)
    with pytest.raises(ConfigError, match="has no profile 'paper'; valid: smoke, quick"):
        sb.record_step_timing("theano_mnist_radford_timing", "paper", tmp_path)
    with pytest.raises(ConfigError, match="unknown step variant 'jit'"):
        sb.step_label("ReLU", "jit")


def test_a_compiled_step_trains_like_the_eager_one():
    # smith_cnn has no dropout, so the first steps of the same initialisation on the same batch agree
    config = small(activation="prelu_maxmin", activation_params={"mode": "channel", "as_written": True})
    losses = {}
    for variant in ("eager", "compiled"):
        step = sb._arm_step(config, (1, 28, 28), 10, variant, warmup=0)
        losses[variant] = [float(step()) for _ in range(2)]
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)
    assert losses["eager"][1] != losses["eager"][0]  # the optimizer stepped


# ------------------------------------------------------------------ seeds as one batched model
def _seed_models(k: int, activation: str = "relu"):
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(build_model("smith_cnn", activation, {}, (1, 28, 28), 10))  # no dropout: exact
    return models


def test_stacked_seeds_train_as_the_separate_runs_would():
    k, steps = 3, 3
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(steps, k, 16, 1, 28, 28, generator=gen)
    ys = torch.randint(0, 10, (steps, k, 16), generator=gen)
    separate = _seed_models(k)
    stacked = StackedSeeds(_seed_models(k))
    opt = torch.optim.SGD(list(stacked.params.values()), lr=0.1, momentum=0.9)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in separate]
    for step in range(steps):
        losses = stacked.losses(xs[step], ys[step])
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        for i, (m, o) in enumerate(zip(separate, opts, strict=True)):
            loss = F.cross_entropy(m(xs[step, i]), ys[step, i])
            o.zero_grad()
            loss.backward()
            o.step()
            assert float(losses.detach()[i]) == pytest.approx(float(loss), rel=1e-5), (step, i)
    for i, m in enumerate(separate):
        trained = stacked.model(i, m)
        for (name, p), q in zip(m.named_parameters(), trained.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6, msg=name)


def test_stacked_seeds_refuse_mixed_architectures_and_wrong_shapes():
    other = build_model("smith_vgg3", "relu", {}, (1, 28, 28), 10)
    with pytest.raises(ConfigError, match="one architecture"):
        StackedSeeds([*_seed_models(1), other])
    with pytest.raises(ConfigError, match="leading dimension of 2 seeds"):
        StackedSeeds(_seed_models(2)).losses(torch.rand(3, 4, 1, 28, 28), torch.zeros(3, 4, dtype=torch.long))


def test_compiled_and_bf16_columns_of_a_tiny_model(tmp_path, monkeypatch):
    # a tiny model used by a one-epoch profile: compiled timings, the compile-time break-even against
    # that run's length, the 20-step loss check, and bf16's rate where the CPU has bf16 units
    monkeypatch.setattr(sb, "cpu_bf16_units", lambda: True)
    tiny = sb.StudyModel(
        "simple_mlp_bn", 1.0, 16, (1, 28, 28), 10, (("batch_norm", True),), ("tf_rrelu_mnist_bn/smoke",)
    )
    record = sb.record_train_benchmark("smoke", tmp_path, models=[tiny], time_compiled=True)
    (row,) = record["models"]
    c = row["compiled"]
    assert c["images_per_second"] > 0 and c["compile_seconds"] >= 0
    assert c["shortest_run_steps"] == 512 // 16  # the smoke profile: 512 images, one epoch, at this batch
    assert c["losses_agree"] and c["loss_max_relative_difference"] <= sb.COMPILE_LOSS_TOLERANCE
    assert c["pays_within_a_run"] == (c["break_even_steps"] is not None and c["break_even_steps"] <= 32)
    assert row["bf16"]["images_per_second"] > 0 and record["settings"]["compile"] is True

    table = book.train_step_table(tmp_path, "smoke")
    paths = table.attrs["paths"]  # a table of their own, beside the fp32 eager one
    assert {"compiled speed-up", "compile pays within a run", "bf16 speed-up (ReLU)"} <= set(paths.columns)
    assert not set(paths.columns) & set(table.columns) and list(paths.index) == list(table.index)
    assert "Under torch.compile (inductor), " in table.attrs["summary"]
    monkeypatch.setattr(sb, "cpu_bf16_units", lambda: False)  # no bf16 units: no bf16 column
    record = sb.record_train_benchmark("smoke", tmp_path / "amd", models=[tiny])
    assert record["models"][0]["bf16"] is None and record["models"][0]["compiled"] is None
    assert "bf16 speed-up (ReLU)" not in book.train_step_table(tmp_path / "amd", "smoke").attrs["paths"].columns


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA measures instead")
def test_the_whole_step_benchmark_on_a_gpu_is_one_clear_error_without_one(tmp_path):
    tiny = sb.StudyModel("smith_cnn", 1.0, 16, (1, 28, 28), 10, (), ("test/smoke",))
    with pytest.raises(ConfigError, match="cuda"):
        sb.record_train_benchmark("smoke", tmp_path, models=[tiny], device="cuda")
    assert not (tmp_path / "microbench").exists()  # refused before anything is written


def test_the_trainer_goal_is_judged_from_the_interleaved_intervals(tmp_path):
    def model(name, ci):
        return {
            "model": name, "label": name, "flop_per_image": 1e6, "bare_images_per_second": 100.0, "gflops": 1.0,
            "share_of_sgemm": 0.5, "layers_alone_share_of_sgemm": 0.6, "share_of_layer_ceiling": 0.8,
            "trainer_images_per_second": 98.0, "trainer_overhead": sum(ci) / 2, "trainer_overhead_ci95": ci,
            "compiled": None, "bf16": None,
        }  # fmt: skip

    record = {
        "settings": {"threads": 1, "trainer_design": sb.TRAINER_DESIGN},
        "sgemm_gflops": 2.0,
        "provenance": {"git_commit": "abc1234", "cpu_identity": "Test CPU"},
        "models": [model("met", [0.0, 0.02]), model("beyond", [0.05, 0.08]), model("open", [0.01, 0.05])],
    }
    where = tmp_path / "microbench" / "smoke" / "cpu"
    where.mkdir(parents=True)
    (where / sb.STEP_RECORD).write_text(json.dumps(record))
    table = book.train_step_table(tmp_path, "smoke")
    summary = table.attrs["summary"]
    assert "1 of 3 models; beyond it (the interval's lower end above 3%): beyond; undecided" in summary
    assert "undecided (the interval spans 3%): open." in summary
    assert table.attrs["trainer"].loc["met", "trainer overhead, 95% interval"] == "+0.0% to +2.0%"
    del record["settings"]["trainer_design"]  # the earlier, sequential design: not judged
    (where / sb.STEP_RECORD).write_text(json.dumps(record))
    assert "is not judged from it" in book.train_step_table(tmp_path, "smoke").attrs["summary"]
