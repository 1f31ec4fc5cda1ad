"""Tests for relustudy.metrics: paper values, hand-made logits, exact recorder counts, error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from relustudy import book
from relustudy import metrics as M

try:  # the real base class, once relustudy.activations is implemented
    from relustudy.activations import Activation as _Base
except ImportError:  # pragma: no cover - depends on the state of the other module
    _Base = nn.Module


class IdentityAct(_Base):
    """Passes its input through unchanged, so the test controls g(z) exactly."""

    saturation = "rectifier"

    def __init__(self, saturation: str = "rectifier"):
        nn.Module.__init__(self)
        self.saturation = saturation

    def forward(self, x):
        return x


class Wrap(nn.Module):
    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act

    def forward(self, x):
        return self.act(x)


def hook_count(module: nn.Module) -> int:
    return len(module._forward_hooks)


# ------------------------------------------------------------------- Smith 4.2 statistics


def test_paper_example_values():
    p = [0.5, 0, 0.5, 0, 0]
    assert M.lifetime_sparsity(p) == pytest.approx(0.2)
    assert M.dispersion(p) == pytest.approx(math.sqrt(0.06))  # 0.2449..., paper prints 0.24
    assert round(M.dispersion(p), 2) == 0.24
    assert M.dispersion(p) == pytest.approx(0.2449, abs=5e-5)
    q = [0.2] * 5
    assert M.lifetime_sparsity(q) == pytest.approx(0.2)
    assert M.dispersion(q) == pytest.approx(0.0, abs=1e-15)


def test_dispersion_is_population_std():
    p = np.array([0.0, 1.0])
    assert M.dispersion(p) == pytest.approx(0.5)  # ddof=1 would give 0.7071


def test_dead_fraction_and_curve():
    p = np.array([0.0, 0.3, 1e-9, 0.0, 1.0])
    assert M.dead_fraction(p) == pytest.approx(0.4)  # 1e-9 is not dead
    curve = M.sorted_curve(p)
    np.testing.assert_array_equal(curve, [1.0, 0.3, 1e-9, 0.0, 0.0])
    np.testing.assert_array_equal(p, [0.0, 0.3, 1e-9, 0.0, 1.0])  # input untouched
    assert M.dead_fraction(torch.tensor([0.5, 0.5])) == 0.0


@pytest.mark.parametrize("bad", [[], [[0.1, 0.2]], [0.5, 1.5], [-0.1], [float("nan")]])
def test_stat_input_validation(bad):
    with pytest.raises(ValueError):
        M.lifetime_sparsity(bad)


# ------------------------------------------------------------------- accuracy / top-k


def test_accuracy_and_topk_hand_made():
    logits = torch.tensor(
        [
            [0.1, 2.0, 0.3],  # pred 1, then 2, then 0
            [5.0, 1.0, 4.0],  # pred 0, then 2, then 1
            [0.0, 0.0, 1.0],  # pred 2
            [1.0, 3.0, 2.0],  # pred 1, then 2, then 0
        ]
    )
    targets = torch.tensor([1, 2, 0, 0])
    assert M.accuracy(logits, targets) == pytest.approx(0.25)
    assert M.topk_error(logits, targets, 1) == pytest.approx(0.75)
    assert M.topk_error(logits, targets, 2) == pytest.approx(0.25)  # only sample 3 (rank 2) misses
    assert M.topk_error(logits, targets, 3) == 0.0
    assert M.accuracy(logits.numpy(), targets.numpy()) == pytest.approx(0.25)


def test_ties_rank_lower_index_first():
    logits = torch.tensor([[1.0, 1.0, 0.0]] * 2)
    assert M.accuracy(logits, torch.tensor([0, 0])) == 1.0  # tie -> class 0 wins
    assert M.accuracy(logits, torch.tensor([1, 1])) == 0.0
    three_way = torch.tensor([[0.0, 2.0, 2.0, 2.0]])
    assert M.topk_error(three_way, torch.tensor([3]), 2) == 1.0  # ranks: 1, 2, 3, 0
    assert M.topk_error(three_way, torch.tensor([3]), 3) == 0.0
    assert M.topk_error(three_way, torch.tensor([2]), 2) == 0.0


def test_topk1_equals_one_minus_accuracy_and_bf16():
    g = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (200, 5), generator=g).float()  # many ties
    targets = torch.randint(0, 5, (200,), generator=g)
    acc = M.accuracy(logits, targets)
    assert M.topk_error(logits, targets, 1) == pytest.approx(1 - acc)
    assert M.accuracy(logits.bfloat16(), targets) == pytest.approx(acc)
    # argmax agrees on rows without ties at the top
    top2 = logits.topk(2, dim=1).values
    clear = top2[:, 0] > top2[:, 1]
    manual = (logits[clear].argmax(1) == targets[clear]).float().mean().item()
    assert M.accuracy(logits[clear], targets[clear]) == pytest.approx(manual)


def test_nan_row_counts_as_wrong():
    logits = torch.tensor([[float("nan"), 0.0], [1.0, 0.0]])
    assert M.accuracy(logits, torch.tensor([0, 0])) == pytest.approx(0.5)
    assert M.topk_error(logits, torch.tensor([0, 0]), 2) == pytest.approx(0.5)


@pytest.mark.parametrize("k", [0, -1, 4, 2.0, True])
def test_topk_bad_k(k):
    with pytest.raises(ValueError):
        M.topk_error(torch.zeros(2, 3), torch.tensor([0, 1]), k)


def test_classification_input_errors():
    with pytest.raises(ValueError):
        M.accuracy(torch.zeros(3), torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError):
        M.accuracy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError):
        M.accuracy(torch.zeros(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError):
        M.accuracy(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))


# ------------------------------------------------------------------- recorder: exact counts


# Two batches of outputs of shape (N=2, C=2, H=1, W=2); value > 0 means active.
BATCH1 = torch.tensor(
    [
        [[[1.0, 0.0]], [[-1.0, 2.0]]],
        [[[3.0, -0.5]], [[0.0, 1.0]]],
    ]
)
BATCH2 = torch.tensor(
    [
        [[[0.5, 0.0]], [[-2.0, 0.0]]],
        [[[-1.0, 0.0]], [[0.0, 4.0]]],
    ]
)
# active counts per (c, y, x) over the 4 samples:
#   c0: (0,0): 1,1,1,0 -> 3   (0,1): 0,0,0,0 -> 0
#   c1: (0,0): 0,0,0,0 -> 0   (0,1): 1,1,0,1 -> 3
NEURON = np.array([3, 0, 0, 3]) / 4
CHANNEL = np.array([3 + 0, 0 + 3]) / 8


def test_recorder_exact_neuron_and_channel_probabilities():
    model = Wrap(IdentityAct("rectifier"))
    with M.ActivationRecorder(model, {"probe": "act"}) as rec:
        model(BATCH1)
        model(BATCH2)
    np.testing.assert_array_equal(rec.probabilities("probe"), NEURON)
    np.testing.assert_array_equal(rec.probabilities("probe", unit="channel"), CHANNEL)
    np.testing.assert_array_equal(rec.counts("probe"), np.array([3, 0, 0, 3]).reshape(2, 1, 2))
    assert rec.counts("probe").dtype == np.int64
    assert rec.n_samples("probe") == 4
    assert rec.unit_shape("probe") == (2, 1, 2)
    assert hook_count(model.act) == 0
    with pytest.raises(ValueError):
        rec.probabilities("probe", unit="pixel")


def test_recorder_channels_last_and_bf16():
    model = Wrap(IdentityAct("rectifier"))
    with M.ActivationRecorder(model, ["act"]) as rec:
        model(BATCH1.to(memory_format=torch.channels_last))
        model(BATCH2.bfloat16())
    np.testing.assert_array_equal(rec.probabilities("act"), NEURON)
    np.testing.assert_array_equal(rec.probabilities("act", "channel"), CHANNEL)


def test_recorder_dense_units_are_features():
    model = Wrap(IdentityAct())
    x = torch.tensor([[1.0, -1.0, 0.0], [2.0, 3.0, -4.0]])
    with M.ActivationRecorder(model, {"h": "act"}) as rec:
        model(x)
    np.testing.assert_array_equal(rec.probabilities("h"), [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(rec.probabilities("h", "channel"), [1.0, 0.5, 0.0])


def test_tanh_threshold_exactly_095_is_saturated():
    vals = [0.95, 0.9499, -0.95, -0.9499, 0.0, 1.0, -0.96]
    want = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    for dtype in (torch.float32, torch.float64):
        model = Wrap(IdentityAct("tanh"))
        with M.ActivationRecorder(model, ["act"]) as rec:
            model(torch.tensor([vals], dtype=dtype))
        np.testing.assert_array_equal(rec.probabilities("act"), want, err_msg=str(dtype))
    # the rectifier criterion on the same values: only > 0 is active
    model = Wrap(IdentityAct("rectifier"))
    with M.ActivationRecorder(model, ["act"]) as rec:
        model(torch.tensor([vals]))
    np.testing.assert_array_equal(rec.probabilities("act"), [1, 1, 0, 0, 0, 1, 0])


def test_tanh_bf16_compared_in_float():
    x = torch.tensor([[0.5, 0.99, -0.99, -0.25]]).bfloat16()
    model = Wrap(IdentityAct("tanh"))
    with M.ActivationRecorder(model, ["act"]) as rec:
        model(x)
    np.testing.assert_array_equal(rec.probabilities("act"), [1, 0, 0, 1])


def test_plain_torch_modules_inferred_and_saturation_argument():
    model = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Identity())
    x = torch.tensor([[-1.0, 0.1, 3.0]])  # relu -> [0, .1, 3]; tanh -> [0, .0997, .995]
    with M.ActivationRecorder(model, {"r": "0", "t": "1", "i": "2"}, saturation={"i": "rectifier"}) as rec:
        model(x)
    assert rec.saturation("r") == "rectifier" and rec.saturation("t") == "tanh"
    np.testing.assert_array_equal(rec.probabilities("r"), [0, 1, 1])
    np.testing.assert_array_equal(rec.probabilities("t"), [1, 1, 0])
    np.testing.assert_array_equal(rec.probabilities("i"), [0, 1, 1])


def test_recorder_configuration_errors():
    model = nn.Sequential(nn.Identity(), IdentityAct("tanh"))
    with pytest.raises(ValueError, match="no 'saturation'"):
        M.ActivationRecorder(model, ["0"])
    with pytest.raises(ValueError, match="no module named"):
        M.ActivationRecorder(model, ["nope"])
    with pytest.raises(ValueError, match="declares"):
        M.ActivationRecorder(model, ["1"], saturation="rectifier")
    with pytest.raises(ValueError):
        M.ActivationRecorder(model, ["0"], saturation="sigmoid")
    rec = M.ActivationRecorder(model, ["1"])
    with pytest.raises(ValueError, match="not seen any samples"):
        rec.probabilities("1")
    with pytest.raises(KeyError):
        rec.probabilities("other")


def test_hooks_removed_after_exception():
    model = Wrap(IdentityAct())
    with pytest.raises(RuntimeError, match="boom"):
        with M.ActivationRecorder(model, ["act"]) as rec:
            model(BATCH1)
            assert hook_count(model.act) == 1
            raise RuntimeError("boom")
    assert hook_count(model.act) == 0
    np.testing.assert_array_equal(rec.probabilities("act"), [1, 0, 0, 1])  # counts kept
    # an error raised inside the hook itself (unit shape changes between batches)
    with pytest.raises(ValueError, match="shape changed"):
        with M.ActivationRecorder(model, ["act"]):
            model(BATCH1)
            model(torch.ones(2, 3))
    assert hook_count(model.act) == 0
    model(BATCH1)  # no stale hook fires


# ------------------------------------------------------------------- activation_stats


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.act = IdentityAct("rectifier")
        self.head = nn.Linear(3 * 3 * 3, 4)
        self.hidden_act = nn.ReLU()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = self.act(self.conv(x))
        return self.drop(self.hidden_act(self.head(h.flatten(1))))


def test_activation_stats_sizes_and_values():
    torch.manual_seed(0)
    model = TinyConvNet().train()
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(5, 1, 5, 5, generator=g), torch.zeros(5, dtype=torch.long)) for _ in range(3)]
    stats = M.activation_stats(model, batches, {"last_conv": "act", "last_hidden": "hidden_act"}, "cpu")
    assert model.training  # mode restored
    conv = stats["last_conv"]
    assert conv["n_units"] == 3 * 3 * 3 and conv["n_units_channel"] == 3
    assert conv["n_samples"] == 15 and conv["unit_shape"] == (3, 3, 3)
    assert stats["last_hidden"]["n_units"] == 4 == stats["last_hidden"]["n_units_channel"]
    # reference computed directly from the full activations
    with torch.no_grad():
        z = torch.cat([model.conv(x) for x, _ in batches])
    active = (z > 0).double()
    neuron = active.mean(0).flatten().numpy()
    channel = active.mean((0, 2, 3)).numpy()
    assert conv["sparsity"] == pytest.approx(neuron.mean())
    assert conv["dispersion"] == pytest.approx(neuron.std())
    assert conv["dead_fraction"] == pytest.approx((neuron == 0).mean())
    np.testing.assert_allclose(conv["curve"], np.sort(neuron)[::-1])
    assert conv["sparsity_channel"] == pytest.approx(channel.mean())
    assert conv["dispersion_channel"] == pytest.approx(channel.std())
    assert np.all(np.diff(conv["curve"]) <= 0)
    # channels_last input gives the same numbers; bare-x batches accepted
    stats_cl = M.activation_stats(
        model, [x.to(memory_format=torch.channels_last) for x, _ in batches], {"last_conv": "act"}, "cpu"
    )
    np.testing.assert_array_equal(stats_cl["last_conv"]["curve"], conv["curve"])
    assert hook_count(model.act) == 0 and hook_count(model.hidden_act) == 0


def test_activation_stats_dead_units():
    model = Wrap(IdentityAct())
    batches = [(torch.tensor([[1.0, -1.0, 0.0, 2.0]]), None)] * 2
    stats = M.activation_stats(model, batches, {"h": "act"}, "cpu")["h"]
    assert stats["dead_fraction"] == pytest.approx(0.5)
    assert stats["sparsity"] == pytest.approx(0.5)
    assert stats["dispersion"] == pytest.approx(0.5)


def test_a_margin_needs_a_reason_and_a_positive_size():
    with pytest.raises(ValueError, match="state its reason"):
        M.MetricSpec("x", "x", margin=0.01)
    with pytest.raises(ValueError, match="positive"):
        M.MetricSpec("x", "x", margin=0.0, margin_reason="because")
    assert M.MetricSpec("x", "x", margin=0.01, margin_reason="because").margin == 0.01


def test_the_error_margin_is_at_least_twice_one_test_sets_binomial_error():
    """The stated reason for one percentage point must hold: the largest binomial standard error of
    one run's error on the test set (at an error of 0.5) is at most half the margin."""
    worst_se = math.sqrt(0.5 * 0.5 / M.TEST_SET_IMAGES)
    for name in ("test_error", "test_accuracy", "best_test_accuracy"):
        spec = M.metric_spec(name)
        assert spec.margin >= 2 * worst_se
        assert f"{worst_se:.3f}" in spec.margin_reason


def test_every_margin_in_the_registry_is_tabled_once_with_its_reason():
    table = book.effect_sizes_markdown()
    with_margin = [M.metric_spec(n) for n in M.METRICS.names() if M.metric_spec(n).margin is not None]
    assert len(with_margin) >= 5
    for spec in with_margin:
        assert table.count(f"| {spec.label} |") == 1
        assert spec.margin_reason in table
