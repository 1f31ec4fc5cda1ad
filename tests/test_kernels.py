"""The fused CPU kernels compute exactly the activations they replace (relustudy.kernels)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from relustudy import kernels
from relustudy.activations import RRELU_DEFAULT_BOUNDS, build_activation, implementation
from relustudy.kernels.autograd import _FusedELUBackward, _FusedPReLU, _FusedRReLU, rrelu_noise

pytestmark = pytest.mark.skipif(
    kernels.library() is None, reason=f"fused kernels unavailable: {kernels.unavailable_reason()}"
)

SHAPES = {"nchw": (4, 6, 5, 7), "2d": (9, 6)}


def _input(shape, layout, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    x.view(-1)[:5] = 0.0  # exact zeros: the left derivative must be used there
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _prelu_reference(x, a):
    ab = a.view(-1, *([1] * (x.dim() - 2))) if a.numel() > 1 else a
    return torch.where(x > 0, x, ab * x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "2d"])
@pytest.mark.parametrize("mode", ["channel", "shared"])
def test_prelu_forward_bit_identical_and_grads_match_reference(dtype, layout, mode):
    shape = SHAPES["2d"] if layout == "2d" else SHAPES["nchw"]
    x = _input(shape, layout, dtype)
    m = build_activation("prelu", shape[1], mode=mode).to(dtype)
    with torch.no_grad():
        m.weight.uniform_(-0.5, 1.5)  # also negative and > 1 coefficients
    xr = x.clone().requires_grad_()
    y = m(xr)
    assert y.grad_fn is not None and "Fused" in type(y.grad_fn).__name__
    assert torch.equal(y, F.prelu(x, m.weight.detach()))
    assert y.stride() == x.stride()  # the memory format is kept
    g = torch.randn_like(y)
    gx, ga = torch.autograd.grad(y, (xr, m.weight), g)
    x64, a64 = x.double().requires_grad_(), m.weight.detach().double().requires_grad_()
    gx_ref, ga_ref = torch.autograd.grad(_prelu_reference(x64, a64), (x64, a64), g.double())
    assert torch.equal(gx, gx_ref.to(dtype))  # one multiply per element: exact
    scale = (g.double() * x.double()).abs().sum().item() / max(ga.numel(), 1)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert torch.allclose(ga.double(), ga_ref, rtol=tol, atol=tol * float(scale))


def test_prelu_gradcheck_float64():
    x = _input((3, 4, 5, 5), "channels_last", torch.float64).requires_grad_()
    x.data[x.data.abs() < 1e-3] = 0.5  # finite differences must not cross the kink
    a = torch.tensor([0.25, -0.3, 1.2, 0.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_FusedPReLU.apply, (x, a))


def test_prelu_wrong_channel_count_is_one_clear_error():
    m = build_activation("prelu", 3)
    with pytest.raises(ValueError, match="3 channels on dim 1"):
        m(torch.randn(2, 4, 5, 5))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_rrelu_matches_its_formula_with_the_noise_it_draws(layout):
    x = _input(SHAPES["nchw"], layout).requires_grad_()
    seed = 12345
    y = _FusedRReLU.apply(x, 3.0, 8.0, seed)
    flat = x.detach().permute(0, 2, 3, 1).reshape(-1) if layout == "channels_last" else x.detach().reshape(-1)
    a = rrelu_noise(flat.numel(), seed, 3.0, 8.0)
    expect = torch.where(flat > 0, flat, flat / a)
    got = y.detach().permute(0, 2, 3, 1).reshape(-1) if layout == "channels_last" else y.detach().reshape(-1)
    assert torch.equal(got, expect)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    gflat = g.permute(0, 2, 3, 1).reshape(-1) if layout == "channels_last" else g.reshape(-1)
    gxflat = gx.permute(0, 2, 3, 1).reshape(-1) if layout == "channels_last" else gx.reshape(-1)
    assert torch.equal(gxflat, torch.where(flat > 0, gflat, gflat / a))  # left derivative 1/a at 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [3 * 4096 + 123, 20 * 4096 + 5])  # one thread; the threads' team (>= 65536)
def test_rrelu_blocked_loops_match_the_noise_element_by_element(dtype, n):
    # whole blocks of 4096 and a partial one whose length is no multiple of 8 (the float32 loops'
    # vector width): the blocked forward/backward use the same draws as the element-by-element
    # definition, at every block boundary and in the scalar tail
    x = -torch.rand(n, dtype=dtype) - 0.1
    x[::7] *= -1  # some positive elements: the select keeps x (forward) and g (backward) there
    a = rrelu_noise(n, 777, 3.0, 8.0, dtype=dtype)
    xr = x.clone().requires_grad_()
    y = _FusedRReLU.apply(xr, 3.0, 8.0, 777)
    assert torch.equal(y.detach(), torch.where(x > 0, x, x / a))
    g = torch.randn(n, dtype=dtype)
    (gx,) = torch.autograd.grad(y, xr, g)
    assert torch.equal(gx, torch.where(x > 0, g, g / a))


def _ulps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance in float32 units in the last place (ordered integer representation)."""
    ai, bi = (t.float().view(torch.int32).long() for t in (a, b))
    ai, bi = (torch.where(t < 0, -(t & 0x7FFFFFFF), t) for t in (ai, bi))
    return (ai - bi).abs()


def test_elu_forward_is_within_one_ulp_of_pytorch_and_of_the_float64_reference():
    g = torch.Generator().manual_seed(3)
    x = torch.cat(
        [
            torch.randn(300_000, generator=g) * 6,
            -torch.rand(100_000, generator=g) * 1e-3,  # near 0, where expm1 matters
            torch.tensor([0.0, -0.0, -1e-8, -1e-30, -1e-40, 1e-40, -88.0, -100.0, -104.0, -1e30, 2.5]),
            torch.tensor([float("-inf"), float("inf"), float("nan")]),
        ]
    )
    y = build_activation("elu", alpha=1.3)(x)
    ref, ref64 = F.elu(x, 1.3), F.elu(x.double(), 1.3).float()
    finite = torch.isfinite(ref)
    assert _ulps(y[finite], ref[finite]).max() <= 1 and _ulps(y[finite], ref64[finite]).max() <= 1
    assert torch.equal(y[x >= 0], x[x >= 0]) and torch.signbit(y[(x == 0) & torch.signbit(x)]).all()  # -0.0 kept
    assert y[-3] == -1.3 and y[-2] == math.inf and math.isnan(y[-1])
    y64 = build_activation("elu", alpha=1.3)(x.double())
    assert torch.allclose(y64[finite], F.elu(x.double(), 1.3)[finite], rtol=4e-16, atol=0)  # libm's expm1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_elu_fused_forward_and_backward_from_output_match(dtype, layout):
    x = _input(SHAPES["nchw"], layout, dtype) * 3
    xr = x.clone().requires_grad_()
    m = build_activation("elu", alpha=1.3)
    y = m(xr)
    assert "Fused" in type(y.grad_fn).__name__
    assert y.stride() == x.stride()
    if dtype == torch.float32:
        assert _ulps(y, F.elu(x, 1.3)).max() <= 1
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, xr, g)
    x64 = x.double().requires_grad_()
    (gx_ref,) = torch.autograd.grad(F.elu(x64, 1.3), x64, g.double())
    # one rounding of y + alpha: relative 1e-6 where alpha exp(x) is not far below alpha, else
    # within ulp(alpha) |g|
    eps = torch.finfo(dtype).eps
    err = (gx.double() - gx_ref).abs()
    assert (err <= 2e-6 * gx_ref.abs() + 2 * eps * 1.3 * g.double().abs()).all()
    near = x > -2.0
    rel = 1e-6 if dtype == torch.float32 else 1e-13
    assert (err[near] <= rel * gx_ref.abs()[near] + 1e-30).all()
    assert torch.equal(gx[x == 0], (1.3 * g)[x == 0])  # left derivative alpha at 0, like F.elu


FLOAT_ELU_PATHS = list(kernels.ELU_FLOAT_PATHS.values())[1:]


@pytest.fixture
def elu_path():
    """Switches the ELU forward's float32 path for one test; skips a path this CPU lacks."""
    default = kernels.elu_float_path()

    def use(path: str) -> None:
        if kernels.elu_float_path(path) != path:
            pytest.skip(f"this CPU lacks the ELU path {path!r}")

    yield use
    kernels.elu_float_path(default)


def _elu_inputs_by_binade(per_binade: int = 1024) -> torch.Tensor:
    """Negative floats from every binade down to -87 (random mantissas), many where the result is
    hardest to round (x in [-20.3, -0.3], where k != 0), the points where the reduction's k changes ((k + 1/2) ln2 and its neighbours), the clamp and the special values."""
    g = torch.Generator().manual_seed(11)
    parts = []
    for e in range(-126, 7):
        parts.append(-(2.0**e) * (1 + torch.rand(per_binade, generator=g, dtype=torch.float64)))
    parts.append(-(2.0**-149) * torch.arange(1, 2**10, dtype=torch.float64))  # subnormals
    parts.append(-0.3 - 20 * torch.rand(200 * per_binade, generator=g, dtype=torch.float64))  # k != 0
    x = torch.cat(parts).float()
    x = x[x >= -87.0]
    edges = ((torch.arange(-126, 1, dtype=torch.float64) + 0.5) * math.log(2)).float()
    steps = edges.view(torch.int32).unsqueeze(1) + torch.arange(-3, 4, dtype=torch.int32)
    special = torch.tensor([0.0, -0.0, -87.0, -86.99999, -87.00001, -88.0, -1e30, 1.5, -math.inf, math.inf, math.nan])
    return torch.cat([x, steps.flatten().view(torch.float32), special])


def _same_elu_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


@pytest.mark.parametrize("path", FLOAT_ELU_PATHS)
def test_the_float32_elu_paths_are_within_one_ulp_in_every_binade(elu_path, path):
    elu_path(path)
    x = _elu_inputs_by_binade()
    with torch.no_grad():
        y = build_activation("elu")(x)
    assert path in implementation("elu")
    ref, ref64 = F.elu(x), F.elu(x.double()).float()
    finite = torch.isfinite(ref)
    assert _ulps(y[finite], ref64[finite]).max() <= 1 and _ulps(y[finite], ref[finite]).max() <= 1
    assert (_ulps(y[finite], ref64[finite]) > 0).float().mean() < 0.05  # mostly correctly rounded
    assert torch.equal(y[x >= 0], x[x >= 0]) and torch.signbit(y[(x == 0) & torch.signbit(x)]).all()
    assert (y[x <= -87] == -1.0).all() and y[-2] == math.inf and math.isnan(y[-1])


def test_the_float32_elu_paths_give_the_same_bits_wherever_an_element_sits(elu_path):
    x = torch.cat([_elu_inputs_by_binade(64), torch.randn(5000) * 4])
    outs = []
    for path in FLOAT_ELU_PATHS:
        elu_path(path)
        with torch.no_grad():
            outs.append(build_activation("elu")(x))
            for n in (1, 7, 9, 17, 33):  # short tensors: every element in a vector's zero-padded tail
                assert _same_elu_bits(build_activation("elu")(x[5 : n + 5]), outs[-1][5 : n + 5])
    assert all(_same_elu_bits(o, outs[0]) for o in outs[1:])


def test_an_elu_alpha_other_than_one_and_float64_take_the_float64_path():
    assert "forward at alpha 1" in implementation("elu") and "forward at alpha 1" not in implementation(
        "elu", "cpu", torch.float64
    )
    x = _elu_inputs_by_binade(64)
    with torch.no_grad():
        y = build_activation("elu", alpha=2.0)(x)
    finite = torch.isfinite(x)
    exact = F.elu(x.double(), 2.0).float()
    assert (_ulps(y[finite], exact[finite]) > 0).sum() <= 2  # correctly rounded but at a boundary


def test_an_unknown_elu_path_is_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown ELU path 'avx9'; valid: expm1 in float64"):
        kernels.elu_float_path("avx9")


def test_elu_gradcheck_float64_and_no_grad_uses_the_fused_forward():
    x = _input((3, 4, 5, 5), "contiguous", torch.float64)
    x[x.abs() < 1e-3] = 0.5
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: _FusedELUBackward.apply(t, 0.7), (x,))
    with torch.no_grad():
        y = build_activation("elu")(x)
    assert torch.allclose(y, F.elu(x.detach()), rtol=4e-16, atol=0)


def test_rrelu_gradcheck_float64():
    x = _input((3, 4, 5, 5), "contiguous", torch.float64)
    x[x.abs() < 1e-3] = 0.5
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: _FusedRReLU.apply(t, 3.0, 8.0, 99), (x,))


def test_rrelu_law_uniform_3_8_and_mean_slope():
    a = rrelu_noise(400_000, 2024, *RRELU_DEFAULT_BOUNDS, dtype=torch.float64).numpy()
    assert a.min() >= 3.0 and a.max() < 8.0
    ks = stats.kstest(a, stats.uniform(loc=3.0, scale=5.0).cdf)
    assert ks.pvalue > 1e-3, ks
    # E[1/a] = ln(8/3)/5 = 0.19616 (not 1/5.5): the mean training slope
    assert abs((1.0 / a).mean() - math.log(8 / 3) / 5) < 5e-4
    # neighbours are independent (the hash, not a sequence, makes the noise)
    assert abs(stats.pearsonr(a[:-1], a[1:]).statistic) < 0.01
    # another seed gives other draws
    b = rrelu_noise(1000, 2025, *RRELU_DEFAULT_BOUNDS).numpy()
    assert (abs(b - a[:1000]) > 1e-3).mean() > 0.99


def test_rrelu_module_fresh_noise_each_pass_repeatable_by_seed_and_eval_exact():
    m = build_activation("rrelu")
    x = -torch.rand(1000) - 0.1  # all negative: every element uses its noise
    torch.manual_seed(0)
    y1, y2 = m(x), m(x)
    assert not torch.equal(y1, y2)  # fresh every forward pass
    torch.manual_seed(0)
    assert torch.equal(m(x), y1)  # the torch seed decides the draws
    slopes = y1 / x
    assert slopes.min() > 1 / 8 - 1e-6 and slopes.max() <= 1 / 3 + 1e-6
    m.eval()
    assert torch.equal(m(x), x / 5.5)  # the paper's test rule, exactly


def test_fused_and_pytorch_forms_agree(monkeypatch):
    x = _input(SHAPES["nchw"], "channels_last").requires_grad_()
    m = build_activation("prelu", 6)
    y = m(x)
    g = torch.randn_like(y)
    gx, ga = torch.autograd.grad(y, (x, m.weight), g)
    monkeypatch.setattr(kernels, "supports", lambda t: False)
    y_t = m(x)
    assert "Fused" not in type(y_t.grad_fn).__name__
    gx_t, ga_t = torch.autograd.grad(y_t, (x, m.weight), g)
    assert torch.equal(y, y_t)
    assert torch.allclose(gx, gx_t) and torch.allclose(ga, ga_t, rtol=1e-5)


def test_implementation_is_named_and_the_switch_falls_back():
    assert implementation("prelu").startswith("fused CPU kernel")
    assert implementation("elu").startswith("fused CPU kernel")
    assert implementation("relu") == "PyTorch"
    assert implementation("prelu", "cuda") == "PyTorch"
    code = (
        "from relustudy import kernels; from relustudy.activations import implementation, build_activation;"
        "import torch; m = build_activation('rrelu'); y = m(torch.randn(10));"
        "print(kernels.library() is None, implementation('rrelu'), type(y.grad_fn).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, kernels.ENV_SWITCH: "torch"},
        check=True,
    ).stdout
    assert out.startswith("True PyTorch composition (RELUSTUDY_KERNELS=torch)")
    assert "Fused" not in out


def test_float16_and_cuda_inputs_use_pytorch():
    assert not kernels.supports(torch.randn(3, dtype=torch.float16))
    assert all(kernels.supports(torch.randn(3, dtype=d)) for d in (torch.float32, torch.float64, torch.bfloat16))
    assert implementation("prelu", "cpu", torch.float16) == "PyTorch"
    assert implementation("prelu", "cpu", torch.bfloat16).startswith("fused CPU kernel")


# ---------------------------------------------------------------------------------- bfloat16
# Each bf16 kernel is the float32 kernel on the widened input, its output rounded to bf16 once
# (to nearest-even, as torch's float32 -> bfloat16 conversion): the references below are float32
# computations followed by .bfloat16(), compared bit for bit.
def _bf16_input(shape, layout, seed=0):
    x = _input(shape, "contiguous", seed=seed).bfloat16()
    x.view(-1)[5:9] = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.0])
    x.view(-1)[9:11] = torch.tensor([1e-40, -1e-40])  # subnormal in float32 (and in bf16)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, except that every NaN equals every NaN."""
    both_nan = a.isnan() & b.isnan()
    return a.dtype == b.dtype and bool(((a.view(torch.int16) == b.view(torch.int16)) | both_nan).all())


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "2d"])
@pytest.mark.parametrize("mode", ["channel", "shared"])
def test_bf16_prelu_is_the_float32_kernel_rounded_once(layout, mode):
    shape = (64, 6, 33, 35) if layout != "2d" else (20000, 6)  # past the threads' team size
    x = _bf16_input(shape, layout)
    m = build_activation("prelu", shape[1], mode=mode)
    with torch.no_grad():
        m.weight.uniform_(-0.5, 1.5)  # float32 coefficients, not bf16-representable: products round
    xr = x.clone().requires_grad_()
    y = m(xr)
    assert "Fused" in type(y.grad_fn).__name__ and y.dtype == torch.bfloat16 and y.stride() == x.stride()
    a = m.weight.detach()
    xf = x.float()
    assert _same_bits(y, _prelu_reference(xf, a).bfloat16())
    g = torch.randn(shape, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format
    )
    gx, ga = torch.autograd.grad(y, (xr, m.weight), g)
    ab = a.view(-1, *([1] * (x.dim() - 2))) if a.numel() > 1 else a
    gf = g.float()
    assert _same_bits(gx, torch.where(xf > 0, gf, ab * gf).bfloat16())
    assert ga.dtype == torch.float32
    # the non-finite inputs make some sums non-finite: grad_a is compared on finite inputs
    xf = xf.nan_to_num(nan=1.0, posinf=1.0, neginf=-1.0)
    xr = (
        xf.bfloat16()
        .contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
        .requires_grad_()
    )
    (ga,) = torch.autograd.grad(m(xr), m.weight, g)
    dims = [d for d in range(x.dim()) if d != 1] if mode == "channel" else list(range(x.dim()))
    prod = gf.double() * xf.double()
    ga_ref = torch.where(xf <= 0, prod, 0).sum(dim=dims).reshape(-1)
    scale = prod.abs().sum().item() / ga.numel()
    assert torch.allclose(ga.double(), ga_ref, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("n", [3 * 4096 + 123, 40 * 4096 + 5])
def test_bf16_rrelu_draws_the_float32_noise_and_rounds_once(n):
    x = (torch.randn(n) * 3).bfloat16()
    a = rrelu_noise(n, 4242, 3.0, 8.0)
    xr = x.clone().requires_grad_()
    y = _FusedRReLU.apply(xr, 3.0, 8.0, 4242)
    xf = x.float()
    assert y.dtype == torch.bfloat16 and _same_bits(y, torch.where(xf > 0, xf, xf / a).bfloat16())
    g = torch.randn(n).bfloat16()
    (gx,) = torch.autograd.grad(y, xr, g)
    assert _same_bits(gx, torch.where(xf > 0, g.float(), g.float() / a).bfloat16())
    m = build_activation("rrelu").eval()
    assert _same_bits(m(x), torch.where(xf > 0, xf, xf / 5.5).bfloat16())  # eval: x / 5.5, no noise


def test_bf16_elu_forward_within_one_bf16_ulp_and_backward_from_output_exact():
    x = _bf16_input((64, 6, 33, 35), "channels_last")
    xr = x.clone().requires_grad_()
    y = build_activation("elu")(xr)
    assert "Fused" in type(y.grad_fn).__name__ and y.dtype == torch.bfloat16
    ref = F.elu(x.float()).bfloat16()
    assert _same_bits(y[ref.isnan()], ref[ref.isnan()])
    steps = (y.view(torch.int16).int() - ref.view(torch.int16).int()).abs()[~ref.isnan()]
    assert int(steps.max()) <= 1 and float((steps == 0).float().mean()) > 0.99
    g = torch.randn(x.shape, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    (gx,) = torch.autograd.grad(y, xr, g)
    yf, gf = y.detach().float(), g.float()
    assert _same_bits(gx, torch.where(yf > 0, gf, gf * (yf + 1.0)).bfloat16())


def test_bf16_autocast_training_step_runs_the_kernels():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), build_activation("prelu", 8), torch.nn.Conv2d(8, 8, 3), build_activation("rrelu")
    )
    x = torch.randn(4, 3, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = model[0](x)
        y = model(x)
    assert h.dtype == torch.bfloat16 and y.dtype == torch.bfloat16
    assert "Fused" in type(y.grad_fn).__name__
    y.float().square().mean().backward()
    assert model[1].weight.grad is not None and model[1].weight.grad.dtype == torch.float32
    assert torch.isfinite(model[0].weight.grad).all()
