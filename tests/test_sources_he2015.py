"""He et al. 2015: the experiments' structure (coefficient counts, weight-decay groups, the plain
nets' depths and initialisation law) and its claims' not-run rows before any record exists."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from synthetic_records import long_records
from torch import nn

from relustudy import book
from relustudy import claims as C
from relustudy.activations import no_weight_decay_parameters
from relustudy.claim_tables import paper_vs_ours
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
    configs = H.PRELU_EXPERIMENT.configs("quick")
    assert sum(c.decay_activation_coefficients for c in configs) == len(configs) // len(H.PRELU_ARMS)  # one arm


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


def _records(values_by_arm: dict[str, dict[str, float]], experiment: str = H.PRELU_EXPERIMENT.name) -> pd.DataFrame:
    """Long-format complete records for 5 seeds: each value plus a small seed-dependent wobble."""
    return long_records(
        experiment, values_by_arm, offset=lambda i, seed, k, metric: 0.004 * ((seed * 7 + k * 3) % 5 - 2)
    )


def _he_coefficients(column: str, flatten: bool = False) -> dict[str, float]:
    """He et al.'s Table 2 column as our metrics (or every layer at conv1's value)."""
    first = H.paper_value("he2015", H.COEFFICIENT_TABLE, "conv1", column)
    return {
        f"alpha.{module}.mean": first if flatten else H.paper_value("he2015", H.COEFFICIENT_TABLE, layer, column)
        for layer, module in H.LAYER_MODULES.items()
    }


def test_coefficient_claims_replicate_the_papers_profile_and_fail_a_flat_one():
    he_like = _records({H.PRELU_SHARED: _he_coefficients("channel_shared"), H.PRELU: _he_coefficients("channel_wise")})
    flat = _records(
        {H.PRELU_SHARED: _he_coefficients("channel_shared", True), H.PRELU: _he_coefficients("channel_wise", True)}
    )
    for cid in ("he2015.coefficients.conv1_well_above_deeper_conv", "he2015.coefficients.deeper_stages_below_conv1"):
        assert C.get_claim(cid).evaluate(he_like, "quick").verdict == "replicated", cid
        assert C.get_claim(cid).evaluate(flat, "quick").verdict in ("not replicated", "inconclusive"), cid
    # conv1 equal to the rest: the "more than 0.1 above" claim is contradicted, not merely unproven
    assert C.get_claim("he2015.coefficients.conv1_well_above_deeper_conv").evaluate(flat, "quick").verdict == (
        "not replicated"
    )


def test_weight_decay_claim_each_verdict():
    base = _he_coefficients("channel_wise")
    claim = C.get_claim("he2015.weight_decay_shrinks_coefficients")

    def with_decay(shift: float) -> pd.DataFrame:
        return _records({H.PRELU: base, H.PRELU_DECAY: {k: v + shift for k, v in base.items()}})

    assert claim.evaluate(with_decay(-0.05), "quick").verdict == "replicated"
    assert claim.evaluate(with_decay(+0.05), "quick").verdict == "not replicated"
    assert claim.evaluate(with_decay(0.0), "quick").verdict == "inconclusive"


def test_init_claims_each_verdict():
    def init(first: dict[str, float], last: dict[str, float]) -> pd.DataFrame:
        return _records(
            {a.label: {"first_epoch_train_loss": first[a.label], "train_loss": last[a.label]} for a in H.INIT_ARMS},
            H.INIT_EXPERIMENT.name,
        )

    labels = [a.label for a in H.INIT_ARMS]  # Kaiming 22, Xavier 22, Kaiming 30, Xavier 30
    he_like = init(
        dict(zip(labels, (2.0, 2.2, 2.1, 2.303), strict=True)), dict(zip(labels, (1.2, 1.5, 1.4, 2.302), strict=True))
    )
    stalled = init(
        dict(zip(labels, (2.3, 2.2, 2.3, 2.303), strict=True)), dict(zip(labels, (2.29, 2.15, 2.3, 1.6), strict=True))
    )
    for cid in (
        "he2015.init.xavier_stalls_the_deeper_net",
        "he2015.init.both_train_the_shallower_net",
        "he2015.init.kaiming_converges_sooner",
        "he2015.init.kaiming_trains_the_deeper_net",
    ):
        assert C.get_claim(cid).evaluate(he_like, "quick").verdict == "replicated", cid
        assert C.get_claim(cid).evaluate(stalled, "quick").verdict == "not replicated", cid


def test_chapter_tables_from_records():
    recs = _records(
        {
            H.PRELU_SHARED: _he_coefficients("channel_shared"),
            H.PRELU: {**_he_coefficients("channel_wise"), "alpha.act1.std": 0.2},
            H.RELU: {"log_median_images_per_second": math.log(1000.0), "median_images_per_second": 1000.0},
        }
    )
    table = H.coefficient_table(recs)
    assert list(table.index) == list(H.LAYER_MODULES)
    assert table.loc["conv1", "channel-shared: He et al."] == "0.681"
    assert (
        table.loc["conv1", "channel-shared: ours"].startswith("0.68")
        and "(n=5)" in table.loc["conv1", "channel-shared: ours"]
    )
    assert table.loc["conv1", "channel-wise, weight decay on a: ours"] == "not run"
    cost = H.cost_table(recs)
    assert cost.loc[H.RELU, "throughput / ReLU's (95% CI)"] == "1 (reference)"
    assert cost.loc[H.PRELU, "throughput / ReLU's (95% CI)"] == "n/a"  # PReLU has no timing here
    hist = pd.DataFrame(
        {
            "experiment": H.INIT_EXPERIMENT.name,
            "arm": "Xavier, 30 layers",
            "seed": 0,
            "epoch": [1, 2],
            "train_loss": [2.3, 2.3],
        }
    )
    curves = H.init_curves(hist)
    assert set(curves["initialisation"]) == {"Xavier"} and set(curves["depth"]) == {"30 layers"}


def test_imagenet_numbers_are_shown_for_direction_not_differenced():
    recs = _records({H.RELU: {"test_error": 0.55, "test_top5_error": 0.09}, H.PRELU: {"test_error": 0.46}})
    pvo = paper_vs_ours(recs, H.PRELU_EXPERIMENT.name, "quick")
    assert set(pvo["our_metric"]) == {"test_error"}  # top-5 is trivial with 10 classes
    styler = book.paper_vs_ours_table(pvo, H.PRELU_EXPERIMENT.name)
    assert [c[1] for c in styler.data.columns] == ["paper", "ours (mean ± sd)"]  # no "ours - paper"
    assert "not differenced" in styler.caption
    assert set(paper_vs_ours(recs, H.CIFAR100_EXPERIMENT.name, "quick")["our_metric"]) == {
        "test_error",
        "test_top5_error",
    }
