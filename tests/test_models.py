"""Tests for relustudy.models: shapes, parameter counts, activation placement, probes, init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from relustudy.activations import Activation, PReLU, Tanh
from relustudy.metrics import activation_stats
from relustudy.models import (
    MODELS,
    Conv2dSame,
    SequentialNet,
    SpatialPyramidPool,
    build_model,
    count_parameters,
    model_params,
)
from relustudy.registry import UnknownNameError

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)

# (model, in_shape, model params) -> (relu params, extra for channel-wise PReLU, activation count).
# The numbers are the ones stated in the factories' docstrings; the activation count is also the
# extra for channel-shared PReLU (one coefficient per placement).
PARAM_TABLE = [
    ("smith_cnn", MNIST, {}, 113_386, 64, 2),
    ("smith_cnn", CIFAR, {}, 159_018, 64, 2),
    ("smith_vgg3", CIFAR, {}, 550_570, 448, 6),
    ("smith_vgg3", MNIST, {}, 435_306, 448, 6),
    ("nin", CIFAR, {}, 966_986, 1_418, 9),
    ("radford_convnet", MNIST, {}, 818_698, 849, 4),
    ("simple_mlp_bn", MNIST, {}, 269_322, 512, 2),
    ("simple_mlp_bn", MNIST, {"batch_norm": True}, 270_346, 512, 2),
    ("he_net", CIFAR, {}, 70_930_186, 10_304, 13),
]

PROBES = {
    "smith_cnn": {"last_conv": "act2"},
    "smith_vgg3": {"last_conv": "act3_2"},
    "nin": {"last_conv": "act_cccp6", "penultimate_conv": "act_cccp5"},
    "radford_convnet": {"last_conv": "act3"},
    "simple_mlp_bn": {"last_hidden": "act2"},
    "he_net": {"last_conv": "act3_6"},
    "plain_net": {},  # the initialisation experiment records no activation statistics
}

# The (model, input) pairs the study uses; he_net at width 1 is covered by the fixture below.
SMALL_PAIRS = [
    ("smith_cnn", MNIST),
    ("smith_cnn", CIFAR),
    ("smith_vgg3", CIFAR),
    ("nin", CIFAR),
    ("radford_convnet", MNIST),
    ("simple_mlp_bn", MNIST),
]


@pytest.fixture(scope="module")
def he_net_default() -> nn.Module:
    """he_net at width 1 on CIFAR (70.9M parameters): built once, it takes seconds."""
    torch.manual_seed(0)
    return build_model("he_net", in_shape=CIFAR)


def _activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, Activation)]


def _activation_input_channels(model: nn.Module, in_shape) -> dict[str, int]:
    """Run a forward pass and record dim 1 of every Activation's input."""
    seen: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, inp[0].shape[1]))
        for name, m in _activations(model)
    ]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(2, *in_shape))
    finally:
        for h in hooks:
            h.remove()
    return seen


# -- registry and errors ---------------------------------------------------------------------


def test_registered_models():
    assert MODELS.names() == sorted(PROBES)


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        build_model("lenet5")
    msg = str(err.value)
    assert "lenet5" in msg
    for name in PROBES:
        assert name in msg
    assert isinstance(err.value, ValueError) and isinstance(err.value, KeyError)


def test_unknown_model_param_names_valid_ones():
    with pytest.raises(ValueError, match=r"'widht'.*valid parameters: init, width"):
        build_model("nin", in_shape=CIFAR, widht=0.5)
    with pytest.raises(ValueError, match=r"'width'.*smith_cnn.*valid parameters: probes"):
        build_model("smith_cnn", width=2.0)
    # The registered factory itself checks too (callers may bypass build_model).
    act = lambda c: nn.ReLU()  # noqa: E731
    with pytest.raises(ValueError, match="valid parameters: batch_norm, hidden"):
        MODELS.get("simple_mlp_bn")(act, MNIST, 10, batchnorm=True)


def test_model_params_defaults():
    assert model_params("smith_cnn") == {"probes": "paper"}
    assert model_params("radford_convnet") == {}
    assert model_params("nin") == {"width": 1.0, "init": "kaiming"}
    assert model_params("simple_mlp_bn") == {"batch_norm": False, "hidden": 256}
    assert model_params("he_net") == {"width": 1.0, "dropout": 0.5}


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("nin", {"width": 0}),
        ("nin", {"width": -1.0}),
        ("nin", {"init": "glorot"}),
        ("he_net", {"width": float("nan")}),
        ("he_net", {"dropout": 1.0}),
        ("simple_mlp_bn", {"batch_norm": 1}),
        ("simple_mlp_bn", {"hidden": 0}),
        ("smith_cnn", {"probes": "everything"}),
    ],
)
def test_bad_model_param_values(name, kwargs):
    with pytest.raises(ValueError, match=name):
        build_model(name, in_shape=CIFAR, **kwargs)


def test_bad_shapes_and_classes():
    with pytest.raises(ValueError, match="too small"):
        build_model("smith_cnn", in_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="too small"):
        build_model("he_net", in_shape=(3, 16, 16), width=0.05)  # 16 -> 8 -> 4 < 6 before the SPP
    with pytest.raises(ValueError, match="in_shape"):
        build_model("smith_cnn", in_shape=(28, 28))
    with pytest.raises(ValueError, match="num_classes"):
        build_model("smith_cnn", num_classes=0)


def test_activation_params_are_validated_before_building():
    with pytest.raises(ValueError):
        build_model("smith_cnn", "prelu", {"mode": "per-pixel"})
    with pytest.raises(UnknownNameError):
        build_model("smith_cnn", "swish")


# -- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, in_shape", SMALL_PAIRS)
def test_output_shape(name, in_shape):
    model = build_model(name, in_shape=in_shape)
    assert isinstance(model, SequentialNet) and model.arch == name
    out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_output_shape_mlp_with_batch_norm_and_100_classes():
    model = build_model("simple_mlp_bn", in_shape=MNIST, num_classes=100, batch_norm=True, hidden=32)
    assert model(torch.randn(2, *MNIST)).shape == (2, 100)
    assert model.fc1.out_features == 32 and isinstance(model.bn1, nn.BatchNorm1d)
    names = [n for n, _ in model.named_children()]
    assert names == ["flatten", "fc1", "bn1", "act1", "fc2", "bn2", "act2", "fc3"]


def test_output_shape_he_net(he_net_default):
    he_net_default.eval()
    with torch.no_grad():
        out = he_net_default(torch.randn(2, *CIFAR))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_nin_cifar100_classes_conv_and_activation():
    model = build_model("nin", "prelu", in_shape=CIFAR, num_classes=100)
    assert model(torch.randn(2, *CIFAR)).shape == (2, 100)
    assert model.cccp6.out_channels == 100 and model.act_cccp6.weight.numel() == 100


def test_flatten_sizes_match_the_sources():
    # Smith (Keras, valid convs, floor pools): 28 -> 26 -> 13 -> 11 -> 5; 32 -> 30 -> 15 -> 13 -> 6.
    assert build_model("smith_cnn", in_shape=MNIST).fc1.in_features == 32 * 5 * 5
    assert build_model("smith_cnn", in_shape=CIFAR).fc1.in_features == 32 * 6 * 6
    assert build_model("smith_vgg3", in_shape=CIFAR).fc1.in_features == 128 * 4 * 4
    # Radford's tutorial: w4 = init_weights((128 * 3 * 3, 625)) thanks to ignore_border=False.
    assert build_model("radford_convnet", in_shape=MNIST).fc1.in_features == 128 * 3 * 3


def _probe_shapes(model, in_shape) -> dict[str, tuple]:
    modules = dict(model.named_modules())
    shapes: dict[str, tuple] = {}
    hooks = [
        modules[target].register_forward_hook(lambda m, i, o, p=probe: shapes.__setitem__(p, tuple(o.shape)))
        for probe, target in model.probe_layers.items()
    ]
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, *in_shape))
    for h in hooks:
        h.remove()
    return shapes


def test_spatial_sizes_at_the_probes():
    assert _probe_shapes(build_model("smith_cnn", in_shape=MNIST), MNIST) == {"last_conv": (2, 32, 11, 11)}
    assert _probe_shapes(build_model("smith_vgg3", in_shape=CIFAR), CIFAR) == {"last_conv": (2, 128, 8, 8)}
    # NIN Table 1: 32 -> 16 -> 8 before the 8x8 average pool.
    assert _probe_shapes(build_model("nin", in_shape=CIFAR), CIFAR) == {
        "last_conv": (2, 10, 8, 8),
        "penultimate_conv": (2, 192, 8, 8),
    }
    assert _probe_shapes(build_model("radford_convnet", in_shape=MNIST), MNIST) == {"last_conv": (2, 128, 5, 5)}
    assert _probe_shapes(build_model("simple_mlp_bn", in_shape=MNIST), MNIST) == {"last_hidden": (2, 256)}
    # he_net adapted to 32x32: 32 -> 16 -> 8 (>= 6) before the SPP.
    assert _probe_shapes(build_model("he_net", in_shape=CIFAR, width=0.125), CIFAR) == {"last_conv": (2, 32, 8, 8)}


def test_nin_ceil_mode_average_pool_divides_by_the_window_inside_the_input():
    # Caffe semantics: a window hanging over the border averages only the pixels it covers.
    pool = build_model("nin", in_shape=CIFAR).pool2
    assert pool.ceil_mode and pool.kernel_size == 3 and pool.stride == 2
    out = pool(torch.ones(1, 1, 16, 16))
    assert out.shape == (1, 1, 8, 8) and torch.equal(out, torch.ones_like(out))


def test_conv2d_same_equals_torch_same_padding():
    torch.manual_seed(0)
    conv = Conv2dSame(3, 4, 2)
    ref = nn.Conv2d(3, 4, 2, padding="same")
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 7, 6)
    with pytest.warns(UserWarning):  # the copy warning Conv2dSame avoids
        expected = ref(x)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape == (2, 4, 7, 6)


def test_slicing_a_model_gives_a_plain_sequential_sharing_modules():
    model = build_model("smith_cnn")
    features = model[: list(dict(model.named_children())).index("flatten")]
    assert type(features) is nn.Sequential and features.act2 is model.act2
    assert features(torch.randn(2, *MNIST)).shape == (2, 32, 5, 5)
    assert model[0] is model.conv1


def test_spatial_pyramid_pool():
    spp = SpatialPyramidPool((6, 3, 2, 1))
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = spp(x)
    assert out.shape == (2, 3 * 50) and spp.out_features(3) == 150
    # The 1x1 level (last 3 features) is the global max per channel.
    torch.testing.assert_close(out[:, -3:], x.amax(dim=(2, 3)))


# -- parameter counts ------------------------------------------------------------------------


@pytest.mark.parametrize("name, in_shape, params, relu_count, prelu_extra, placements", PARAM_TABLE)
def test_parameter_counts(name, in_shape, params, relu_count, prelu_extra, placements):
    # Built on the meta device: counting needs shapes only, and he_net has 70.9M parameters.
    with torch.device("meta"):
        relu = build_model(name, in_shape=in_shape, **params)
        prelu = build_model(name, "prelu", in_shape=in_shape, **params)
        shared = build_model(name, "prelu", {"mode": "shared"}, in_shape=in_shape, **params)
    assert count_parameters(relu) == relu_count
    assert count_parameters(prelu) - relu_count == prelu_extra
    assert count_parameters(shared) - relu_count == placements


def test_he_net_parameter_count_on_cpu_matches(he_net_default):
    assert count_parameters(he_net_default) == 70_930_186
    assert he_net_default.fc1.in_features == 256 * (36 + 9 + 4 + 1)


def test_width_multipliers():
    nin = build_model("nin", in_shape=CIFAR, width=0.5)
    assert (nin.conv1.out_channels, nin.cccp1.out_channels, nin.cccp2.out_channels) == (96, 80, 48)
    assert nin.cccp6.out_channels == 10  # the classes conv is not scaled
    he = build_model("he_net", in_shape=CIFAR, width=0.25)
    assert (he.conv1.out_channels, he.conv2_1.out_channels, he.conv3_6.out_channels) == (16, 32, 64)
    assert (he.fc1.in_features, he.fc1.out_features, he.fc2.out_features, he.fc3.out_features) == (
        64 * 50,
        1024,
        1024,
        10,
    )


# -- activation placement --------------------------------------------------------------------

EXPECTED_PLACEMENTS = {
    "smith_cnn": ["act1", "act2"],
    "smith_vgg3": ["act1_1", "act1_2", "act2_1", "act2_2", "act3_1", "act3_2"],
    "nin": ["act1", "act_cccp1", "act_cccp2", "act2", "act_cccp3", "act_cccp4", "act3", "act_cccp5", "act_cccp6"],
    "radford_convnet": ["act1", "act2", "act3", "act_fc1"],
    "simple_mlp_bn": ["act1", "act2"],
    "he_net": ["act1"]
    + [f"act2_{k}" for k in range(1, 5)]
    + [f"act3_{k}" for k in range(1, 7)]
    + ["act_fc1", "act_fc2"],
}

SMALL_BUILDS = [(name, shape, {}) for name, shape in SMALL_PAIRS] + [("he_net", CIFAR, {"width": 0.125})]


@pytest.mark.parametrize("name, in_shape, params", SMALL_BUILDS)
def test_activation_placement_and_channelwise_prelu(name, in_shape, params):
    model = build_model(name, "prelu", in_shape=in_shape, **params)
    acts = _activations(model)
    assert [n for n, _ in acts] == EXPECTED_PLACEMENTS[name]
    # Every activation directly follows a conv/linear/batch-norm layer.
    children = list(model.named_children())
    for i, (child_name, child) in enumerate(children):
        if isinstance(child, Activation):
            assert isinstance(children[i - 1][1], (nn.Conv2d, nn.Linear, nn.BatchNorm1d)), child_name
    # Channel-wise PReLU: one coefficient per channel flowing into each placement.
    channels = _activation_input_channels(model, in_shape)
    for act_name, act in acts:
        assert isinstance(act, PReLU) and act.mode == "channel"
        assert act.weight.shape == (channels[act_name],), act_name
    # Activation modules are distinct objects (no sharing of coefficients across layers).
    assert len({id(a) for _, a in acts}) == len(acts)


@pytest.mark.parametrize("name, in_shape", [("smith_cnn", MNIST), ("smith_cnn", CIFAR), ("smith_vgg3", CIFAR)])
def test_smith_dense_layer_stays_relu(name, in_shape):
    model = build_model(name, "tanh", in_shape=in_shape)
    assert type(model.relu_fc1) is nn.ReLU and not isinstance(model.relu_fc1, Activation)
    acts = _activations(model)
    assert len(acts) == {"smith_cnn": 2, "smith_vgg3": 6}[name]
    assert all(isinstance(a, Tanh) for _, a in acts)
    names = [n for n, _ in model.named_children()]
    assert names[-4:] == ["flatten", "fc1", "relu_fc1", "fc2"]
    x = torch.randn(2, *in_shape)
    hidden = model.relu_fc1(model.fc1(model[: names.index("fc1")](x)))
    assert (hidden >= 0).all()  # a ReLU, not a tanh


def test_radford_dense_layer_uses_the_chosen_activation():
    model = build_model("radford_convnet", "tanh", in_shape=MNIST)
    assert isinstance(model.act_fc1, Tanh)


def test_dropout_placement():
    def drops(model):
        return [(n, m.p) for n, m in model.named_children() if isinstance(m, nn.Dropout)]

    assert drops(build_model("radford_convnet")) == [("drop1", 0.2), ("drop2", 0.2), ("drop3", 0.2), ("drop_fc1", 0.5)]
    assert drops(build_model("nin", in_shape=CIFAR)) == [("drop1", 0.5), ("drop2", 0.5)]
    assert drops(build_model("he_net", in_shape=CIFAR, width=0.125)) == [("drop_fc1", 0.5), ("drop_fc2", 0.5)]
    assert drops(build_model("he_net", in_shape=CIFAR, width=0.125, dropout=0.0)) == [
        ("drop_fc1", 0.0),
        ("drop_fc2", 0.0),
    ]
    assert drops(build_model("smith_cnn")) == [] and drops(build_model("simple_mlp_bn")) == []


# -- probes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, in_shape, params", SMALL_BUILDS)
def test_probe_layers_resolve_to_activations(name, in_shape, params):
    model = build_model(name, in_shape=in_shape, **params)
    assert model.probe_layers == PROBES[name]
    modules = dict(model.named_modules())
    for target in model.probe_layers.values():
        assert isinstance(modules[target], Activation)
    if "last_conv" in model.probe_layers:
        # last_conv is the activation after the last conv layer of the network.
        children = list(model.named_children())
        last_conv = max(i for i, (_, m) in enumerate(children) if isinstance(m, nn.Conv2d))
        assert children[last_conv + 1][0] == model.probe_layers["last_conv"]


@pytest.mark.parametrize(
    "name, expect", [("smith_cnn", ("act1", "conv2", "pool2")), ("smith_vgg3", ("act1_1", "conv3_2", "pool3"))]
)
@pytest.mark.parametrize("activation, saturation", [("tanh", "tanh"), ("prelu", "rectifier")])
def test_diagnostic_probes_and_their_saturation(name, expect, activation, saturation):
    model = build_model(name, activation, in_shape=CIFAR, probes="diagnostic")
    first, conv, pool = expect
    assert model.probe_layers == {**PROBES[name], "first_conv": first, "last_conv_input": conv, "last_pool": pool}
    # the conv output and the pool have no criterion of their own: they take the arm's
    assert model.probe_saturations() == {"last_conv_input": saturation, "last_pool": saturation}
    assert build_model(name, activation, in_shape=CIFAR).probe_saturations() == {}


def test_diagnostic_probes_measure_pool_and_pre_activation():
    torch.manual_seed(0)
    model = build_model("smith_cnn", "tanh", in_shape=CIFAR, probes="diagnostic")
    stats = activation_stats(
        model, [torch.randn(16, *CIFAR) * 3], model.probe_layers, saturation=model.probe_saturations()
    )
    assert set(stats) == {"last_conv", "first_conv", "last_conv_input", "last_pool"}
    assert tuple(stats["last_pool"]["unit_shape"]) == (32, 6, 6)
    # |z| < 0.95 is rarer than |tanh z| < 0.95: the pre-activation reading is sparser
    assert stats["last_conv_input"]["sparsity"] < stats["last_conv"]["sparsity"]


# -- initialisation --------------------------------------------------------------------------


def _xavier_bound(layer: nn.Module) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    return math.sqrt(6.0 / (fan_in + fan_out))


@pytest.mark.parametrize("name, in_shape", [("smith_cnn", MNIST), ("smith_vgg3", CIFAR), ("simple_mlp_bn", MNIST)])
def test_glorot_uniform_init(name, in_shape):
    torch.manual_seed(0)
    model = build_model(name, in_shape=in_shape)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        bound = _xavier_bound(layer)
        assert layer.weight.abs().max() <= bound
        assert torch.count_nonzero(layer.bias) == 0
    # The biggest layer's spread is that of U(-b, b) (std b/sqrt(3)), not PyTorch's default
    # kaiming_uniform(a=sqrt(5)) whose bound is 1/sqrt(fan_in).
    big = max(layers, key=lambda m: m.weight.numel())
    expected = _xavier_bound(big) / math.sqrt(3)
    assert big.weight.std().item() == pytest.approx(expected, rel=0.03)


def test_radford_convnet_has_no_biases_and_normal_001_weights():
    torch.manual_seed(0)
    model = build_model("radford_convnet")
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 5
    assert all(m.bias is None for m in layers)
    assert [n for n, _ in model.named_parameters()] == [
        f"{n}.weight" for n in ("conv1", "conv2", "conv3", "fc1", "fc2")
    ]
    assert model.fc1.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert model.fc1.weight.mean().abs().item() < 1e-4


def test_kaiming_init_he_net_and_nin():
    torch.manual_seed(0)
    he = build_model("he_net", in_shape=CIFAR, width=0.5)
    assert he.fc1.weight.std().item() == pytest.approx(math.sqrt(2.0 / he.fc1.in_features), rel=0.02)
    assert he.conv3_6.weight.std().item() == pytest.approx(math.sqrt(2.0 / (128 * 4)), rel=0.03)
    assert all(torch.count_nonzero(m.bias) == 0 for m in he.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    nin = build_model("nin", in_shape=CIFAR)
    assert nin.conv2.weight.std().item() == pytest.approx(math.sqrt(2.0 / (96 * 25)), rel=0.02)
    caffe = build_model("nin", in_shape=CIFAR, init="caffe")
    assert caffe.conv2.weight.std().item() == pytest.approx(0.05, rel=0.02)
    assert torch.count_nonzero(caffe.conv2.bias) == 0


def test_he_net_default_init(he_net_default):
    w = he_net_default.fc1.weight
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / 12_800), rel=0.01)


# -- training smoke --------------------------------------------------------------------------


def test_backward_reaches_prelu_coefficients():
    torch.manual_seed(0)
    model = build_model("smith_cnn", "prelu", in_shape=MNIST)
    loss = nn.functional.cross_entropy(model(torch.randn(4, *MNIST)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for _, act in _activations(model):
        assert act.weight.grad is not None and torch.isfinite(act.weight.grad).all()
    assert model.conv1.weight.grad is not None and model.fc2.weight.grad.abs().sum() > 0


def test_building_is_seeded():
    torch.manual_seed(3)
    a = build_model("nin", in_shape=CIFAR, width=0.25)
    torch.manual_seed(3)
    b = build_model("nin", in_shape=CIFAR, width=0.25)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb and torch.equal(pa, pb)
