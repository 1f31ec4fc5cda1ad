"""Tests for relustudy.activations: registry, known values, gradients (incl. at exact zeros),
the RReLU definitions (Xu et al. vs PyTorch), error paths and weight-decay exclusion."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relustudy.activations import (
    ACTIVATIONS,
    Activation,
    activation_factory,
    build_activation,
    display_name,
    no_weight_decay_parameters,
)
from relustudy.microbench import AS_WRITTEN, case_names
from relustudy.registry import UnknownNameError

RELU_VARIANTS = ["relu_max", "relu_mask", "relu_abs", "relu_where"]
PRELU_NAMES = ["prelu", "prelu_maxmin", "prelu_abs", "prelu_schluter", "prelu_where"]
ALL_NAMES = {"relu", *RELU_VARIANTS, "lrelu", *PRELU_NAMES, "rrelu", "torch_rrelu", "elu", "tanh"}

D = torch.float64


def t(values, dtype=D) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def away_from_zero(*shape: int, seed: int = 0) -> torch.Tensor:
    """float64 points with |x| >= 0.1, so finite differences never straddle the kink."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=D)
    return (x.sign() * (0.1 + x.abs())).requires_grad_()


def grad_of(fn, *inputs: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """Gradients of <fn(*inputs), w> for a fixed random w (so each output weighs differently)."""
    y = fn(*inputs)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    return torch.autograd.grad((y * w).sum(), inputs)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------
def test_registry_lists_every_activation():
    assert set(ACTIVATIONS.names()) == ALL_NAMES


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        build_activation("relu6")
    msg = str(info.value)
    assert "relu6" in msg
    for name in ALL_NAMES:
        assert name in msg
    # Either catch works, and activation_factory fails eagerly too.
    with pytest.raises(KeyError):
        activation_factory("swish")
    with pytest.raises(ValueError):
        activation_factory("swish")


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_every_module_is_an_activation_with_saturation(name):
    m = build_activation(name, 3)
    assert isinstance(m, Activation)
    assert m.saturation == ("tanh" if name == "tanh" else "rectifier")
    assert m.name == name
    x = away_from_zero(2, 3, 4, 4).detach().float()
    assert m(x).shape == x.shape


def test_extra_repr_shows_parameters():
    assert "a=5.5" in repr(build_activation("lrelu", a=5.5))
    assert "slope=0.3" in repr(build_activation("lrelu", slope=0.3))
    r = repr(build_activation("prelu", 16))
    assert "mode='channel'" in r and "num_parameters=16" in r and "init=0.25" in r
    assert "lower=3" in repr(build_activation("rrelu")) and "eval_a=5.5" in repr(build_activation("rrelu"))
    assert "torch.maximum" in repr(build_activation("relu_max"))
    assert "alpha=2" in repr(build_activation("elu", alpha=2.0))


# ---------------------------------------------------------------------------------------------
# Known values (hand-computed)
# ---------------------------------------------------------------------------------------------
VALUE_TABLE = [
    # (name, params, x, expected y)
    ("relu", {}, [-2.0, -0.5, 0.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.5, 3.0]),
    ("lrelu", {}, [-2.0, 0.0, 3.0], [-0.02, 0.0, 3.0]),  # default: Maas' 0.01
    ("lrelu", {"slope": 0.3}, [-2.0, 3.0], [-0.6, 3.0]),
    ("lrelu", {"slope": 0.1}, [-2.0, 3.0], [-0.2, 3.0]),
    ("lrelu", {"slope": 0.0}, [-2.0, 3.0], [0.0, 3.0]),
    ("lrelu", {"a": 5.5}, [-1.1, -11.0, 2.0], [-0.2, -2.0, 2.0]),  # Xu et al.'s very leaky
    ("lrelu", {"a": 100}, [-3.0, 7.0], [-0.03, 7.0]),  # Xu et al.'s leaky
    ("prelu", {"mode": "shared"}, [-2.0, 0.0, 3.0], [-0.5, 0.0, 3.0]),  # He init 0.25
    ("prelu", {"mode": "shared", "init": -0.5}, [-2.0, 3.0], [1.0, 3.0]),
    ("rrelu", {}, [-5.5, -11.0, 0.0, 4.0], [-1.0, -2.0, 0.0, 4.0]),  # eval: x / 5.5
    ("rrelu", {"lower": 2, "upper": 4}, [-6.0, 1.0], [-2.0, 1.0]),  # eval: x / 3
    ("torch_rrelu", {}, [-48.0, 1.0], [-11.0, 1.0]),  # eval slope (1/8 + 1/3)/2 = 11/48
    ("elu", {}, [-1.0, 0.0, 2.0], [math.exp(-1) - 1, 0.0, 2.0]),
    ("elu", {"alpha": 2.0}, [-1.0, 2.0], [2 * (math.exp(-1) - 1), 2.0]),
    ("tanh", {}, [-2.0, 0.0, 0.5], [-0.9640275800758169, 0.0, 0.46211715726000974]),
]


@pytest.mark.parametrize("name,params,x,expected", VALUE_TABLE)
def test_known_values(name, params, x, expected):
    m = build_activation(name, **params).double().eval()
    torch.testing.assert_close(m(t(x)), t(expected), rtol=1e-15, atol=1e-15)


def test_prelu_channelwise_values_on_2d_and_4d():
    m = build_activation("prelu", 2).double()
    with torch.no_grad():
        m.weight.copy_(t([0.1, 0.5]))
    assert m.weight.shape == (2,)
    x2 = t([[-2.0, -2.0], [4.0, -4.0]])
    torch.testing.assert_close(m(x2), t([[-0.2, -1.0], [4.0, -2.0]]))
    x4 = torch.full((1, 2, 2, 2), -2.0, dtype=D)
    y4 = m(x4)
    torch.testing.assert_close(y4[0, 0], torch.full((2, 2), -0.2, dtype=D))
    torch.testing.assert_close(y4[0, 1], torch.full((2, 2), -1.0, dtype=D))
    assert build_activation("prelu", 7, mode="shared").weight.shape == (1,)


# ---------------------------------------------------------------------------------------------
# Gradient checks (float64, away from the kink)
# ---------------------------------------------------------------------------------------------
GRADCHECK_CASES = [
    ("lrelu", {"slope": 0.2}),
    ("lrelu", {"a": 5.5}),
    ("elu", {"alpha": 1.5}),
    ("tanh", {}),
    ("relu", {}),
    *[(name, {}) for name in RELU_VARIANTS],
    ("torch_rrelu", {}),  # eval mode
    ("rrelu", {}),  # eval mode
]


@pytest.mark.parametrize("name,params", GRADCHECK_CASES)
def test_gradcheck(name, params):
    m = build_activation(name, **params).double().eval()
    assert torch.autograd.gradcheck(m, (away_from_zero(2, 3, 4),))


@pytest.mark.parametrize("name", PRELU_NAMES)
@pytest.mark.parametrize("mode", ["channel", "shared"])
def test_prelu_gradcheck_wrt_input_and_coefficient(name, mode):
    m = build_activation(name, 3, mode=mode).double()
    a = torch.linspace(-0.3, 0.7, m.weight.numel(), dtype=D).requires_grad_()

    def f(x, a):
        return torch.func.functional_call(m, {"weight": a}, (x,))

    assert torch.autograd.gradcheck(f, (away_from_zero(2, 3, 2, 2), a))
    assert torch.autograd.gradcheck(f, (away_from_zero(4, 3, seed=2), a))


@pytest.mark.parametrize("name", ["rrelu", "torch_rrelu"])
def test_rrelu_gradcheck_in_training_with_fixed_noise(name):
    m = build_activation(name).double().train()

    def f(x):
        # Reseed inside so every call gradcheck makes sees the same sampled noise.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return m(x)

    assert torch.autograd.gradcheck(f, (away_from_zero(3, 5),))


# ---------------------------------------------------------------------------------------------
# Implementation variants: same values and gradients as the reference, incl. at exact zeros
# ---------------------------------------------------------------------------------------------
def with_zeros(*shape: int, dtype=D, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g).to(dtype)
    x.view(-1)[::3] = 0.0  # every third element an exact zero
    x.view(-1)[1] = -0.0
    return x


@pytest.mark.parametrize("name", RELU_VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu_variants_equal_relu_in_value_and_gradient(name, dtype):
    m = build_activation(name)
    x = with_zeros(2, 3, 4, 5, dtype=dtype).requires_grad_()
    torch.testing.assert_close(m(x), F.relu(x), rtol=0, atol=0)
    (g,) = grad_of(m, x)
    (g_ref,) = grad_of(F.relu, x)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=0)
    # The decision spelled out: gradient exactly 0 at x == 0 (PyTorch's relu convention).
    (g1,) = torch.autograd.grad(m(x).sum(), x)
    assert torch.equal(g1, (x > 0).to(dtype))


@pytest.mark.parametrize("name", PRELU_NAMES[1:])
@pytest.mark.parametrize("mode", ["channel", "shared"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (5, 3)])
def test_prelu_variants_equal_f_prelu_in_value_and_gradients(name, mode, shape):
    m = build_activation(name, 3, mode=mode).double()
    with torch.no_grad():
        m.weight.copy_(torch.linspace(-0.4, 0.6, m.weight.numel(), dtype=D))
    x = with_zeros(*shape).requires_grad_()
    y = m(x)
    torch.testing.assert_close(y, F.prelu(x, m.weight))
    gx, ga = grad_of(lambda x, a: torch.func.functional_call(m, {"weight": a}, (x,)), x, m.weight)
    gx_ref, ga_ref = grad_of(lambda x, a: F.prelu(x, a), x, m.weight)
    torch.testing.assert_close(gx, gx_ref)
    torch.testing.assert_close(ga, ga_ref)


@pytest.mark.parametrize("name", PRELU_NAMES)
def test_prelu_gradient_at_zero_is_a(name):
    # F.prelu's convention (the left derivative): d/dx = a and d/da = x = 0 at x == 0.
    m = build_activation(name, mode="shared", init=0.3).double()
    x = t([0.0, 0.0]).requires_grad_()
    gx, ga = torch.autograd.grad(m(x).sum(), (x, m.weight))
    torch.testing.assert_close(gx, t([0.3, 0.3]))
    torch.testing.assert_close(ga, t([0.0]))


def test_prelu_variant_rejects_wrong_channel_count():
    m = build_activation("prelu_abs", 3)
    with pytest.raises(ValueError, match="3 channels"):
        m(torch.zeros(2, 4, 5, 5))


@pytest.mark.parametrize(
    "name,params,slope_at_0",
    [("lrelu", {"slope": 0.2}, 0.2), ("lrelu", {"a": 4}, 0.25), ("rrelu", {}, 1 / 5.5), ("elu", {"alpha": 2.0}, 2.0)],
)
def test_left_derivative_at_zero(name, params, slope_at_0):
    m = build_activation(name, **params).double().eval()
    x = t([0.0]).requires_grad_()
    (g,) = torch.autograd.grad(m(x).sum(), x)
    torch.testing.assert_close(g, t([slope_at_0]))


# ---------------------------------------------------------------------------------------------
# RReLU: Xu et al. 2015 vs PyTorch's nn.RReLU
# ---------------------------------------------------------------------------------------------
def test_rrelu_training_within_band_and_random_per_element():
    m = build_activation("rrelu").train()
    torch.manual_seed(0)
    x = -torch.rand(10_000, dtype=D) - 0.1
    y = m(x)
    # x / lower <= y <= x / upper for x < 0 (a in [3, 8])
    assert torch.all(y >= x / 3) and torch.all(y <= x / 8)
    slopes = y / x
    assert slopes.unique().numel() > 9_000  # a fresh draw per element
    assert slopes.min() < 0.13 and slopes.max() > 0.32  # spans (almost) all of [1/8, 1/3]
    assert not torch.equal(m(x), y)  # and per forward pass
    xp = torch.rand(100, dtype=D) + 0.1
    assert torch.equal(m(xp), xp)  # positive part untouched


def test_rrelu_follows_manual_seed():
    m = build_activation("rrelu").train()
    x = -torch.ones(50)
    torch.manual_seed(123)
    y1 = m(x)
    torch.manual_seed(123)
    assert torch.equal(m(x), y1)


def test_rrelu_eval_is_exact_and_differs_from_torch():
    xu = build_activation("rrelu").eval()
    pt = build_activation("torch_rrelu").eval()
    x = torch.tensor([-5.5, -11.0])
    assert torch.equal(xu(x), torch.tensor([-1.0, -2.0]))  # x / 5.5 exactly, in float32 too
    assert not torch.allclose(pt(x), torch.tensor([-1.0, -2.0]), atol=1e-2)
    slope = -pt(torch.tensor([-1.0], dtype=D))
    assert slope.item() == (1 / 8 + 1 / 3) / 2  # 0.229166..., not 1/5.5 = 0.1818...


def test_rrelu_training_slope_distribution_is_xu_not_torch():
    # Xu: a ~ U(3, 8), slope 1/a, E[1/a] = ln(8/3) / 5 = 0.19616. PyTorch: slope ~ U(1/8, 1/3),
    # mean 0.22917. std of 1/a is 0.0565, so with 10^6 samples the standard error is 5.6e-5.
    n = 1_000_000
    x = -torch.ones(n, dtype=D)
    torch.manual_seed(0)
    xu_mean = (-build_activation("rrelu").train()(x)).mean().item()
    pt_mean = (-build_activation("torch_rrelu").train()(x)).mean().item()
    assert xu_mean == pytest.approx(math.log(8 / 3) / 5, abs=5e-4)
    assert pt_mean == pytest.approx((1 / 8 + 1 / 3) / 2, abs=5e-4)
    assert abs(xu_mean - pt_mean) > 0.03


# ---------------------------------------------------------------------------------------------
# Error paths
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,num_channels,params,match",
    [
        ("lrelu", None, {"a": 0.5}, r"lrelu: a must be > 1 \(Xu et al.'s y = x/a\), got 0.5"),
        ("lrelu", None, {"a": 1}, r"a must be > 1"),
        ("lrelu", None, {"a": math.inf}, r"a must be a finite number"),
        ("lrelu", None, {"slope": -0.1}, r"slope must be in \[0, 1\)"),
        ("lrelu", None, {"slope": 1.0}, r"slope must be in \[0, 1\)"),
        ("lrelu", None, {"slope": True}, r"slope must be a finite number"),
        ("lrelu", None, {"slope": "0.1"}, r"slope must be a finite number"),
        ("lrelu", None, {"a": 5.5, "slope": 0.1}, r"exactly one of a .* or slope"),
        ("prelu", None, {}, r"prelu: mode='channel' .* needs num_channels"),
        ("prelu_schluter", None, {"mode": "channel"}, r"needs num_channels"),
        ("prelu", 3, {"mode": "layer"}, r"mode must be one of"),
        ("prelu", 3, {"init": math.nan}, r"init must be a finite number"),
        ("prelu", 0, {}, r"num_channels must be None or an integer >= 1"),
        ("rrelu", None, {"lower": 8, "upper": 3}, r"rrelu: need 1 < lower <= upper"),
        ("rrelu", None, {"lower": 1.0}, r"1 < lower <= upper"),
        ("torch_rrelu", None, {"lower": 0.3, "upper": 0.2}, r"0 <= lower <= upper < 1"),
        ("torch_rrelu", None, {"upper": 1.0}, r"0 <= lower <= upper < 1"),
        ("torch_rrelu", None, {"lower": -0.1}, r"0 <= lower <= upper < 1"),
        ("elu", None, {"alpha": 0}, r"elu: alpha must be > 0"),
    ],
)
def test_bad_parameters_raise_with_the_constraint(name, num_channels, params, match):
    with pytest.raises(ValueError, match=match):
        build_activation(name, num_channels, **params)


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"lrelu: unknown parameter\(s\) alpha; valid parameters: a, slope"):
        build_activation("lrelu", alpha=0.1)
    with pytest.raises(ValueError, match=r"valid parameters: init, mode"):
        build_activation("prelu", 3, negative_slope=0.1)
    with pytest.raises(ValueError, match=r"valid parameters: \(none\)"):
        build_activation("relu", inplace=True)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) num_channels"):
        activation_factory("prelu", num_channels=3)


def test_activation_factory_validates_eagerly_and_builds_fresh_modules():
    with pytest.raises(ValueError, match="a must be > 1"):
        activation_factory("lrelu", a=0.5)
    params = {"mode": "channel", "init": 0.1}
    make = activation_factory("prelu", **params)
    params["init"] = 99.0  # the factory keeps its own copy
    m1, m2 = make(4), make(8)
    assert m1 is not m2 and m1.weight is not m2.weight
    assert m1.weight.shape == (4,) and m2.weight.shape == (8,)
    assert torch.all(m1.weight == 0.1)
    assert isinstance(activation_factory("relu")(16), Activation)


# ---------------------------------------------------------------------------------------------
# Weight-decay exclusion
# ---------------------------------------------------------------------------------------------
def test_no_weight_decay_parameters_finds_exactly_the_prelu_weights():
    act = activation_factory("prelu")
    shared = build_activation("prelu_schluter", mode="shared")
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        act(4),
        nn.Conv2d(4, 6, 3),
        build_activation("relu"),
        nn.Sequential(nn.Conv2d(6, 6, 1), shared, shared),  # a shared module counts once
        nn.Flatten(),
        nn.Linear(6, 10),
        build_activation("lrelu", a=5.5),
        nn.BatchNorm1d(10),
    )
    found = no_weight_decay_parameters(model)
    assert [id(p) for p in found] == [id(model[1].weight), id(shared.weight)]
    # Conv/Linear/BatchNorm "weight"s are not picked up despite the same name.
    assert {id(p) for p in found}.isdisjoint({id(p) for p in model[0].parameters()})


@pytest.mark.parametrize("name", ["relu_max", "relu_abs", "prelu_maxmin", "prelu_abs"])
def test_the_blogs_forms_as_written_differ_from_ours_only_at_zero(name):
    """as_written: the plain expression with autograd's own gradient -- the same function and the
    same gradient away from 0; at exactly 0, autograd's tie rule (0.5 for ReLU forms) instead of
    the left derivative."""
    torch.manual_seed(0)
    written = build_activation(name, num_channels=3, as_written=True).double()
    ours = build_activation(name, num_channels=3).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    x[0, 0, 0, :2] = 0.0  # two exact zeros
    xw, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    yw, yo = written(xw), ours(xo)
    assert torch.equal(yw, yo)
    (gw,), (go,) = torch.autograd.grad(yw.sum(), xw), torch.autograd.grad(yo.sum(), xo)
    away = x != 0
    assert torch.equal(gw[away], go[away])
    a = 0.25
    left = torch.full((2,), a if name.startswith("prelu") else 0.0, dtype=torch.float64)
    assert torch.equal(go[0, 0, 0, :2], left)  # ours: the left derivative
    assert torch.allclose(
        gw[0, 0, 0, :2], torch.full((2,), 0.5 * (1 + a) if name.startswith("prelu") else 0.5, dtype=torch.float64)
    )
    assert torch.autograd.gradcheck(written, (torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True),))
    with pytest.raises(ValueError, match="as_written must be True or False"):
        build_activation(name, num_channels=3, as_written="yes")


def test_the_benchmark_times_the_blogs_forms_as_written():
    assert set(AS_WRITTEN) == {f"{n}[as written]" for n in ("relu_max", "relu_abs", "prelu_maxmin", "prelu_abs")}
    assert set(AS_WRITTEN) <= set(case_names())


def test_display_names_come_from_the_registry():
    assert [display_name(n) for n in ("relu", "prelu", "rrelu", "torch_rrelu", "elu")] == [
        "ReLU",
        "PReLU",
        "RReLU (Xu)",
        "RReLU (PyTorch)",
        "ELU",
    ]
    assert display_name("prelu[shared]") == "PReLU (channel-shared)"
    assert display_name("relu_max") == "ReLU (max)" and display_name("prelu_where") == "PReLU (switch)"
    with pytest.raises(UnknownNameError, match="valid names"):
        display_name("relu_sqrt")
