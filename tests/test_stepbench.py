"""The whole-step benchmark: FLOP counts with known values, the study's models read from the
registry, and a recorded (smoke) measurement with every field and a clear error for a bad profile."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from relustudy import stepbench as sb
from relustudy.config import ConfigError


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
    assert math.isfinite(row["trainer_overhead"])
    assert record["provenance"]["cpu_identity"] and record["settings"]["threads"] == 1
    # an existing record is returned, not measured again
    assert sb.record_train_benchmark("smoke", tmp_path, models=[]) == json.loads(path.read_text())


def test_unknown_benchmark_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="valid: smoke, quick, paper"):
        sb.record_train_benchmark("fast", tmp_path)


def test_the_methods_table_reads_the_record_and_says_the_goals(tmp_path):
    from relustudy import book

    empty = book.train_step_table(tmp_path, "smoke")
    assert empty.empty and "relustudy bench train --profile smoke" in empty.attrs["summary"]
    tiny = sb.StudyModel("smith_cnn", 1.0, 16, (1, 28, 28), 10, (), ("test/smoke",))
    record = sb.record_train_benchmark("smoke", tmp_path, models=[tiny])
    table = book.train_step_table(tmp_path, "smoke")
    assert list(table.index) == [tiny.label]
    assert table.iloc[0]["bare loop images/s"] == pytest.approx(record["models"][0]["bare_images_per_second"])
    summary = table.attrs["summary"]
    assert "of 1 models" in summary and "of its own layers' rate" in summary
    assert record["provenance"]["cpu_identity"] in summary
