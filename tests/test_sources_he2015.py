"""He et al. 2015: the experiments' structure (coefficient counts, weight-decay groups, the plain
nets' depths and initialisation law) and its claims' not-run rows before any record exists."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from relustudy import claims as C
from relustudy.activations import no_weight_decay_parameters
from relustudy.experiments import get_experiment
from relustudy.models import build_model
from relustudy.sources import he2015 as H
from relustudy.trainer import build_optimizer


def _prelu_count(model: nn.Module) -> int:
    return sum(p.numel() for p in no_weight_decay_parameters(model))


def test_channel_shared_prelu_has_13_coefficients_one_per_placement():
    model = build_model("he_net", "prelu", {"mode": "shared"}, (3, 32, 32), 10, width=0.125)
    assert _prelu_count(model) == 13 == len(H.LAYER_MODULES)
    names = {n for n, m in model.named_modules() if hasattr(m, "weight") and n.startswith("act")}
    assert names == set(H.LAYER_MODULES.values())  # the coefficient table's rows map onto modules


def test_channel_wise_prelu_count_is_the_documented_one():
    assert _prelu_count(build_model("he_net", "prelu", {"mode": "channel"}, (3, 32, 32), 10)) == 10_304
    # width 1/8: 8 + 4*16 + 6*32 + 2*512
    assert _prelu_count(build_model("he_net", "prelu", {"mode": "channel"}, (3, 32, 32), 10, width=0.125)) == 1288


def test_no_coefficient_is_decayed_unless_the_ablation_asks():
    for cfg in H.PRELU_EXPERIMENT.configs("quick"):
        model = build_model(cfg.model, cfg.activation, cfg.activation_params, (3, 32, 32), 10, **cfg.model_params)
        coeffs = {id(p) for p in no_weight_decay_parameters(model)}
        groups = build_optimizer(cfg, model).param_groups
        decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
        if cfg.arm == H.PRELU_DECAY:
            assert coeffs and coeffs <= decayed
        else:
            assert not (coeffs & decayed), cfg.arm
    assert sum(c.decay_activation_coefficients for c in H.PRELU_EXPERIMENT.configs("quick")) == 3  # one arm


@pytest.mark.parametrize("depth", [22, 30])
@pytest.mark.parametrize("init, gain", [("kaiming", 2.0), ("xavier", 1.0)])
def test_plain_nets_build_at_both_depths_and_follow_their_init_law(depth, init, gain):
    torch.manual_seed(0)
    model = build_model("plain_net", "relu", {}, (3, 32, 32), 10, depth=depth, init=init)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == depth
    for m in layers:
        fan_in = m.weight[0].numel()
        std = float(m.weight.detach().std())
        want = math.sqrt(gain / fan_in)
        assert abs(std / want - 1) < 0.15 if m.weight.numel() > 400 else True, (m, std, want)
        assert float(m.bias.detach().abs().max()) == 0.0
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_plain_net_rejects_bad_parameters():
    with pytest.raises(ValueError, match="depth"):
        build_model("plain_net", "relu", {}, (3, 32, 32), 10, depth=2)
    with pytest.raises(ValueError, match="init"):
        build_model("plain_net", "relu", {}, (3, 32, 32), 10, init="glorot")


def test_the_init_grid_pairs_each_depth_with_both_laws():
    arms = {(a.model_params["depth"], a.model_params["init"]) for a in get_experiment("he_cifar10_init").arms}
    assert arms == {(22, "kaiming"), (22, "xavier"), (30, "kaiming"), (30, "xavier")}


def test_claims_are_not_run_without_records():
    empty = pd.DataFrame(columns=["experiment", "profile", "arm", "seed", "status", "metric", "value"])
    for cid in (
        "he2015.prelu_beats_relu_top1",
        "he2015.channel_wise_not_worse_than_shared",
        "he2015.init.kaiming_trains_the_deeper_net",
    ):
        assert C.get_claim(cid).evaluate(empty, "quick").verdict == "not run"
