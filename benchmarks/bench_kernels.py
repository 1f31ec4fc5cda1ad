"""Before and after for the fused kernels' design choices (``relustudy.kernels``), in one run.

Cases, each against a copy of the same tensors (128x32x30x30 fp32 by default, the micro-benchmark's
shape), in interleaved rounds so a background load spreads over every case:

- Xu's RReLU forward and backward with the previous noise loop (two rounds of murmur3's finaliser
  over a 64-bit element index, compiled here from the text below), with the one-round loop that
  replaced it (one round over a keyed Weyl sequence, a 32-bit counter per block, one element per
  iteration under ``omp simd``: the text below too) and with the current one (``rectifiers.c``:
  the same noise in 8-lane vectors, the Weyl value advanced by an addition);
- ELU's backward as PyTorch computes it (``elu_backward`` from the input: an exp per element) and
  from the saved output (``elu_backward`` of ``rectifiers.c``);
- PReLU's backward in both layouts (for reference).

Bounds: a forward reads x and writes y (the copy's bytes); a backward reads two tensors and writes
one (1.5 copies). The ratios describe this CPU and this build; ``--json`` writes the record.

    .venv/bin/python benchmarks/bench_kernels.py [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from relustudy import kernels
from relustudy.provenance import cpu_identity, git_info, utc_now

# The noise loop the kernels used before (two finaliser rounds per element, 64-bit index lanes).
PREVIOUS_RRELU = r"""
#include <stdint.h>
static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16; h *= 0x85EBCA6BU; h ^= h >> 13; h *= 0xC2B2AE35U; h ^= h >> 16; return h;
}
static inline uint32_t noise_bits(uint64_t seed, int64_t i) {
    uint32_t h = fmix32((uint32_t)i * 0x9E3779B9U + (uint32_t)seed);
    return fmix32(h ^ (uint32_t)(seed >> 32) ^ (uint32_t)((uint64_t)i >> 32));
}
void rrelu_forward(const float *x, float *y, int64_t n, uint64_t seed, float lower, float upper, int threads) {
    const float width = upper - lower, scale = 1.0f / 16777216.0f;
    #pragma omp parallel for simd schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], a = lower + width * ((float)(noise_bits(seed, i) >> 8) * scale);
        y[i] = v > 0 ? v : v / a;
    }
}
void rrelu_backward(const float *g, const float *x, float *gx, int64_t n, uint64_t seed, float lower,
                    float upper, int threads) {
    const float width = upper - lower, scale = 1.0f / 16777216.0f;
    #pragma omp parallel for simd schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) {
        float a = lower + width * ((float)(noise_bits(seed, i) >> 8) * scale);
        gx[i] = x[i] > 0 ? g[i] : g[i] / a;
    }
}
/* The one-round loop, one element per iteration (the noise of rectifiers.c, the Weyl value a
 * multiply per element); the key is passed ready-made (the kernels derive it from the seed). */
void rrelu_forward_one_round(const float *x, float *y, int64_t n, uint32_t key, float lower, float upper,
                             int threads) {
    const float step = (upper - lower) * (float)(1.0 / 16777216.0);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < n; b += 4096) {
        const uint32_t m = (uint32_t)(n - b < 4096 ? n - b : 4096), k = (uint32_t)b * 0x9E3779B9U + key;
        const float *xb = x + b; float *yb = y + b;
        #pragma omp simd
        for (uint32_t j = 0; j < m; j++) {
            float v = xb[j], a = lower + step * (float)(fmix32(j * 0x9E3779B9U + k) >> 8);
            yb[j] = v > 0 ? v : v / a;
        }
    }
}
void rrelu_backward_one_round(const float *g, const float *x, float *gx, int64_t n, uint32_t key, float lower,
                              float upper, int threads) {
    const float step = (upper - lower) * (float)(1.0 / 16777216.0);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < n; b += 4096) {
        const uint32_t m = (uint32_t)(n - b < 4096 ? n - b : 4096), k = (uint32_t)b * 0x9E3779B9U + key;
        const float *gb = g + b, *xb = x + b; float *out = gx + b;
        #pragma omp simd
        for (uint32_t j = 0; j < m; j++) {
            float a = lower + step * (float)(fmix32(j * 0x9E3779B9U + k) >> 8);
            out[j] = xb[j] > 0 ? gb[j] : gb[j] / a;
        }
    }
}
"""


def _previous_library(tmp: Path) -> ctypes.CDLL:
    src, lib = tmp / "previous.c", tmp / "previous.so"
    src.write_text(PREVIOUS_RRELU)
    subprocess.run(["gcc", *kernels.cflags(), str(src), "-o", str(lib)], check=True)
    out = ctypes.CDLL(str(lib))
    p, i64, u64, f, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_float, ctypes.c_int
    out.rrelu_forward.argtypes = [p, p, i64, u64, f, f, i32]
    out.rrelu_backward.argtypes = [p, p, p, i64, u64, f, f, i32]
    u32 = ctypes.c_uint32
    out.rrelu_forward_one_round.argtypes = [p, p, i64, u32, f, f, i32]
    out.rrelu_backward_one_round.argtypes = [p, p, p, i64, u32, f, f, i32]
    return out


def measure(shape: tuple[int, ...], rounds: int, calls: int, threads: int, previous: ctypes.CDLL) -> dict:
    lib = kernels.library()
    if lib is None:
        raise SystemExit(f"bench_kernels: {kernels.unavailable_reason()}")
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen)
    g = torch.randn(shape, generator=gen)
    y, gx = torch.empty_like(x), torch.empty_like(x)
    elu_y = torch.nn.functional.elu(x)
    x_cl, g_cl = (t.contiguous(memory_format=torch.channels_last) for t in (x, g))
    a = torch.full((shape[1],), 0.25)
    ga = torch.empty(shape[1], dtype=torch.float64)
    n, c, rest = x.numel(), shape[1], x.numel() // (shape[0] * shape[1])
    seed, key = 12345, 0x2545F491  # the one-round loop takes a key (its noise need not be the kernels')

    def P(t: torch.Tensor) -> int:
        return t.data_ptr()

    cases = {  # name -> (pass, call)
        "copy": ("copy", lambda: y.copy_(x)),
        "rrelu forward, previous noise loop": (
            "forward",
            lambda: previous.rrelu_forward(P(x), P(y), n, seed, 3.0, 8.0, threads),
        ),
        "rrelu forward, one-round loop": (
            "forward",
            lambda: previous.rrelu_forward_one_round(P(x), P(y), n, key, 3.0, 8.0, threads),
        ),
        "rrelu forward, current": ("forward", lambda: lib.rrelu_forward_f32(P(x), P(y), n, seed, 3.0, 8.0, threads)),
        "rrelu backward, previous noise loop": (
            "backward",
            lambda: previous.rrelu_backward(P(g), P(x), P(gx), n, seed, 3.0, 8.0, threads),
        ),
        "rrelu backward, one-round loop": (
            "backward",
            lambda: previous.rrelu_backward_one_round(P(g), P(x), P(gx), n, key, 3.0, 8.0, threads),
        ),
        "rrelu backward, current": (
            "backward",
            lambda: lib.rrelu_backward_f32(P(g), P(x), P(gx), n, seed, 3.0, 8.0, threads),
        ),
        "elu backward, PyTorch (from the input)": (
            "backward",
            lambda: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x),
        ),
        "elu backward, fused (from the output)": (
            "backward",
            lambda: lib.elu_backward_f32(P(g), P(elu_y), P(gx), n, 1.0, threads),
        ),
        "prelu backward, contiguous": (
            "backward",
            lambda: lib.prelu_backward_f32(P(g), P(x), P(a), P(gx), P(ga), shape[0], c, rest, threads),
        ),
        "prelu backward, channels_last": (
            "backward",
            lambda: lib.prelu_backward_f32(P(g_cl), P(x_cl), P(a), P(gx), P(ga), n // c, c, 1, threads),
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, (_, call) in cases.items():
            call()
            t0 = time.perf_counter()
            for _ in range(calls):
                call()
            times[name].append((time.perf_counter() - t0) / calls * 1e3)
    copy_ms = statistics.median(times["copy"])
    rows = []
    for name, (kind, _) in cases.items():
        med = statistics.median(times[name])
        bound = copy_ms * (1.5 if kind == "backward" else 1.0)
        rows.append(
            {"case": name, "pass": kind, "median_ms": med, "min_ms": min(times[name]), "bound_ratio": med / bound}
        )
    return {
        "shape": list(shape),
        "threads": threads,
        "rounds": rounds,
        "calls_per_round": calls,
        "torch": torch.__version__,
        "kernels": kernels.source_hash(),
        "tensor_mib": x.numel() * x.element_size() / 2**20,
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[128, 32, 30, 30])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the record here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(tuple(args.shape), args.rounds, args.calls, args.threads, _previous_library(Path(tmp)))
    for r in result["rows"]:
        print(f"{r['case']:<40} {r['median_ms']:7.3f} ms  {r['bound_ratio']:5.2f}x bound")
    if args.json:
        result["provenance"] = {**git_info(), "cpu_identity": cpu_identity(), "date": utc_now(), "argv": sys.argv[1:]}
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
