"""Autograd functions over the fused CPU kernels: what :mod:`relustudy.activations` runs where
``kernels.supports(x)``."""

from __future__ import annotations

import torch

import relustudy.kernels as kernels


# ---------------------------------------------------------------------------------------------
# Fused CPU implementations (relustudy.kernels): one pass forward, one pass backward. They compute
# the same function as the reference formulas (bit-identical forwards; PReLU's grad_a summed in
# another order, see tests/test_activations.py) and are used where kernels.supports(x).
# ---------------------------------------------------------------------------------------------
class _FusedPReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        lib, sfx = kernels.library(), kernels.suffix(x)
        xs, outer, c, inner = kernels.layout(x, weight.numel())
        a = weight.detach().to(kernels.compute_dtype(x)).contiguous()
        y = torch.empty_like(xs)
        getattr(lib, f"prelu_forward_{sfx}")(
            xs.data_ptr(), a.data_ptr(), y.data_ptr(), outer, c, inner, torch.get_num_threads()
        )
        ctx.save_for_backward(xs, a)
        ctx.weight_dtype = weight.dtype
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        xs, a = ctx.saved_tensors
        lib, sfx = kernels.library(), kernels.suffix(xs)
        g = grad if grad.stride() == xs.stride() and grad.dtype == xs.dtype else torch.empty_like(xs).copy_(grad)
        _, outer, c, inner = kernels.layout(xs, a.numel())
        gx = torch.empty_like(xs)
        ga = torch.empty(c, dtype=torch.float64)
        getattr(lib, f"prelu_backward_{sfx}")(
            g.data_ptr(),
            xs.data_ptr(),
            a.data_ptr(),
            gx.data_ptr(),
            ga.data_ptr(),
            outer,
            c,
            inner,
            torch.get_num_threads(),
        )
        return gx, ga.to(ctx.weight_dtype)


class _FusedRReLU(torch.autograd.Function):
    """Xu et al.'s RReLU in training: the noise is recomputed in backward from the pass's seed."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lower: float, upper: float, seed: int) -> torch.Tensor:
        lib, sfx = kernels.library(), kernels.suffix(x)
        xs, n, _, _ = kernels.layout(x, 1)
        y = torch.empty_like(xs)
        getattr(lib, f"rrelu_forward_{sfx}")(
            xs.data_ptr(), y.data_ptr(), n, seed, lower, upper, torch.get_num_threads()
        )
        ctx.save_for_backward(xs)
        ctx.params = (lower, upper, seed)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (xs,) = ctx.saved_tensors
        lower, upper, seed = ctx.params
        lib, sfx = kernels.library(), kernels.suffix(xs)
        g = grad if grad.stride() == xs.stride() and grad.dtype == xs.dtype else torch.empty_like(xs).copy_(grad)
        gx = torch.empty_like(xs)
        getattr(lib, f"rrelu_backward_{sfx}")(
            g.data_ptr(), xs.data_ptr(), gx.data_ptr(), xs.numel(), seed, lower, upper, torch.get_num_threads()
        )
        return gx, None, None, None


def _fused_elu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """ELU's forward by the fused kernel (one pass; float32 computed in double and rounded once:
    within 1 ulp of ``F.elu``), in ``x``'s memory layout."""
    xs, _, _, _ = kernels.layout(x, 1)
    y = torch.empty_like(xs)
    getattr(kernels.library(), f"elu_forward_{kernels.suffix(xs)}")(
        xs.data_ptr(), y.data_ptr(), xs.numel(), alpha, torch.get_num_threads()
    )
    return y


class _FusedELUBackward(torch.autograd.Function):
    """ELU with the fused forward and a one-pass backward from the saved output (y + alpha =
    alpha exp(x) for y <= 0: no exp, as PyTorch's in-place ELU does). The gradient agrees with
    alpha exp(x) g up to one rounding of y + alpha, i.e. within ulp(alpha) |g| absolutely."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ys = _fused_elu(x, alpha)
        ctx.save_for_backward(ys)
        ctx.alpha = alpha
        return ys

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (ys,) = ctx.saved_tensors
        lib, sfx = kernels.library(), kernels.suffix(ys)
        g = grad if grad.stride() == ys.stride() and grad.dtype == ys.dtype else torch.empty_like(ys).copy_(grad)
        gx = torch.empty_like(ys)
        getattr(lib, f"elu_backward_{sfx}")(
            g.data_ptr(), ys.data_ptr(), gx.data_ptr(), ys.numel(), ctx.alpha, torch.get_num_threads()
        )
        return gx, None


def _rrelu_seed() -> int:
    """A fresh 63-bit seed for one RReLU pass, from torch's default generator (so
    ``torch.manual_seed`` and checkpointed RNG states make runs repeatable)."""
    return int(torch.randint(0, 2**62, (1,), dtype=torch.int64)) * 2 + 1


def rrelu_noise(n: int, seed: int, lower: float, upper: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The divisors a_i (i < n) the fused kernel draws for ``seed``: for testing the law."""
    lib = kernels.library()
    if lib is None:
        raise RuntimeError(f"fused kernels unavailable ({kernels.unavailable_reason()})")
    out = torch.empty(n, dtype=dtype)
    getattr(lib, f"rrelu_noise_{'f32' if dtype == torch.float32 else 'f64'}")(out.data_ptr(), n, seed, lower, upper)
    return out
