/* Fused CPU kernels for the rectifiers whose PyTorch CPU kernels are far from the memory bound
 * (the micro-benchmark, `relustudy bench`, measures them against a copy of the same tensors;
 * benchmarks/bench_kernels.py the design choices below, before and after).
 *
 * Layout: every tensor is seen as (outer, C, inner) contiguous, with the coefficient index c the
 * middle one: NCHW contiguous -> (N, C, H*W); NHWC (channels_last) -> (N*H*W, C, 1); (N, C) ->
 * (N, C, 1); a shared coefficient -> C = 1. One pass reads what it must and writes its outputs.
 *
 * RReLU noise: a = lower + (upper - lower) u with u = (top 24 bits of noise_bits(key, i)) / 2^24
 * for element i: uniform on the 2^24-point grid of [0, 1) (as torch's float uniform_). The bits are
 * one round of murmur3's 32-bit finaliser (a bijection) over a keyed Weyl sequence i * phi + key,
 * so over any 2^32 consecutive elements every bit pattern occurs once. The key is splitmix64's
 * finaliser of a fresh 64-bit seed per forward pass (drawn from torch's generator by the caller);
 * the backward pass recomputes the noise from (seed, i), so nothing but x is saved. Two passes
 * share their noise only if their keys collide (probability 2^-32 per pair of passes); other keys
 * give the same sequence shifted by an offset, i.e. other elements' draws. One round instead of
 * two and a 32-bit counter per block halve the forward's time (benchmarks/bench_kernels.py).
 *
 * ELU backward from the output (the form PyTorch uses for in-place ELU): for y <= 0,
 * alpha exp(x) = y + alpha, so the pass reads g and y and needs no exp.
 *
 * ELU forward (float32), alpha = 1: in float32 lanes, AVX-512 where the CPU has it, else AVX2 (the
 * same bits), faithfully rounded (see ELU1_DEFINE below). Any other alpha, or a build without FMA:
 * alpha expm1(x) for x <= 0, computed in double in 4-lane vectors and
 * rounded to float once: x = k ln2 + r (|r| <= ln2 / 2, Cody-Waite split of ln2), expm1(r) by its
 * Taylor series to r^9 (truncation below 3e-11 relative), then expm1(x) = 2^k expm1(r) + (2^k - 1)
 * with 2^k built from its exponent bits, in fused multiply-adds. The double result is within about
 * 3e-11 of expm1(x), so the float output is the correctly rounded alpha expm1(x) but where that
 * value lies that close to a rounding boundary (the test: within 1 ulp of PyTorch's expm1f-based ELU and of the float64
 * reference). Below x = -100 expm1 rounds to -1 in float: x is clamped there (also -inf); NaN
 * propagates. float64 calls libm's expm1 per element.
 *
 * Threads: OpenMP, static schedule, `threads` given by the caller (torch.get_num_threads()), one
 * thread below PARALLEL_MIN elements (a team's fork and join costs more than it saves there, and
 * far more when the cores are busy: gradcheck's 300-element calls took ~30 ms each under load), so
 * results are deterministic for a given thread count; the grad_a reduction sums per-thread partials
 * in double, in thread order.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

/* Counter-based noise: two rounds of murmur3's 32-bit finaliser over (element index, seed). 32-bit
 * arithmetic only, so the loop vectorises (AVX2: 8 lanes). */
static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16; h *= 0x85EBCA6BU; h ^= h >> 13; h *= 0xC2B2AE35U; h ^= h >> 16;
    return h;
}

/* Noise bits of element i for a pass's key; tensors over 2^32 elements fold the index's high bits
 * into the key (fmix32(0) = 0, so smaller tensors are unaffected). */
static inline uint32_t block_key(uint32_t key, int64_t i) {
    return key + fmix32((uint32_t)((uint64_t)i >> 32));
}

/* The Weyl sequence's value at element i: within a block starting at b, (uint32)b * phi + the
 * block's key, plus j * phi for its j-th element. */
static inline uint32_t weyl_start(uint32_t key, int64_t b) { return (uint32_t)b * 0x9E3779B9U + block_key(key, b); }

static inline uint32_t noise_bits(uint32_t key, int64_t i) { return fmix32(weyl_start(key, i)); }

static inline uint32_t noise_key(uint64_t seed) { /* splitmix64's finaliser: every seed bit moves the key */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (uint32_t)(z ^ (z >> 31));
}

/* Elements go in blocks of NOISE_BLOCK (a divisor of 2^32, so no block straddles a 2^32 boundary)
 * with a 32-bit counter inside: the noise loop then vectorises without 64-bit lane arithmetic. */
#define NOISE_BLOCK 4096

/* The divisor of the law: lower + (upper - lower) u, u the top 24 bits of the noise over 2^24
 * (step = (upper - lower) / 2^24, exact: a power-of-two scaling). */
#define RRELU_STEP(T, lower, upper) (((upper) - (lower)) * (T)(1.0 / 16777216.0))
#define RRELU_DIVISOR(T, lower, step, bits) ((lower) + (step) * (T)((bits) >> 8))

#define PARALLEL_MIN 65536

/* One RReLU block of m elements (the block's Weyl value k). The float32 loops are written with
 * GCC vector extensions, 8 lanes and unrolled 4 times, so the Weyl value advances by an addition
 * per 8 elements instead of a multiply per element (the same 32-bit values, so the same noise:
 * the test compares them with rrelu_noise element by element); a scalar loop takes the last
 * m % 8. This made the float32 forward's arithmetic about a quarter cheaper on the project's CPU,
 * where it, not memory, limited the pass at cache-resident sizes (benchmarks/bench_kernels.py).
 * float64 keeps the plain loop. Same operations in the same order in both: bit-identical results. */
typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));

static inline u32x8 fmix32x8(u32x8 h) {
    h ^= h >> 16; h *= 0x85EBCA6BU; h ^= h >> 13; h *= 0xC2B2AE35U; h ^= h >> 16;
    return h;
}

static inline f32x8 rrelu_divisor_x8(u32x8 w, float lower, float step) {
    return lower + step * __builtin_convertvector((i32x8)(fmix32x8(w) >> 8), f32x8); /* bits >> 8 < 2^24 */
}

static inline f32x8 select_x8(f32x8 positive_if, f32x8 a, f32x8 b) { /* positive_if > 0 ? a : b */
    i32x8 mask = positive_if > 0;
    return (f32x8)(((i32x8)a & mask) | ((i32x8)b & ~mask));
}

static inline void rrelu_forward_block_f32(const float *x, float *y, uint32_t m, uint32_t k, float lower, float step) {
    const u32x8 lanes = {0, 1, 2, 3, 4, 5, 6, 7};
    u32x8 w = lanes * 0x9E3779B9U + k;
    uint32_t j = 0;
    _Pragma("GCC unroll 4")
    for (; j + 8 <= m; j += 8) {
        f32x8 v;
        memcpy(&v, x + j, sizeof v);
        f32x8 out = select_x8(v, v, v / rrelu_divisor_x8(w, lower, step));
        memcpy(y + j, &out, sizeof out);
        w += 8 * 0x9E3779B9U;
    }
    for (; j < m; j++) {
        float v = x[j], a = RRELU_DIVISOR(float, lower, step, fmix32(j * 0x9E3779B9U + k));
        y[j] = v > 0 ? v : v / a;
    }
}

static inline void rrelu_backward_block_f32(const float *g, const float *x, float *gx, uint32_t m, uint32_t k,
                                            float lower, float step) {
    const u32x8 lanes = {0, 1, 2, 3, 4, 5, 6, 7};
    u32x8 w = lanes * 0x9E3779B9U + k;
    uint32_t j = 0;
    _Pragma("GCC unroll 4")
    for (; j + 8 <= m; j += 8) {
        f32x8 v, d;
        memcpy(&v, x + j, sizeof v);
        memcpy(&d, g + j, sizeof d);
        f32x8 out = select_x8(v, d, d / rrelu_divisor_x8(w, lower, step));
        memcpy(gx + j, &out, sizeof out);
        w += 8 * 0x9E3779B9U;
    }
    for (; j < m; j++) {
        float a = RRELU_DIVISOR(float, lower, step, fmix32(j * 0x9E3779B9U + k));
        gx[j] = x[j] > 0 ? g[j] : g[j] / a;
    }
}

static inline void rrelu_forward_block_f64(const double *x, double *y, uint32_t m, uint32_t k, double lower,
                                           double step) {
    _Pragma("omp simd")
    for (uint32_t j = 0; j < m; j++) {
        double v = x[j], a = RRELU_DIVISOR(double, lower, step, fmix32(j * 0x9E3779B9U + k));
        y[j] = v > 0 ? v : v / a;
    }
}

static inline void rrelu_backward_block_f64(const double *g, const double *x, double *gx, uint32_t m, uint32_t k,
                                            double lower, double step) {
    _Pragma("omp simd")
    for (uint32_t j = 0; j < m; j++) {
        double a = RRELU_DIVISOR(double, lower, step, fmix32(j * 0x9E3779B9U + k));
        gx[j] = x[j] > 0 ? g[j] : g[j] / a;
    }
}

typedef double f64x4 __attribute__((vector_size(32)));
typedef int64_t i64x4 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

/* Contracted to fused multiply-adds here only (-std=c11 turns contraction off elsewhere, which keeps
 * the other kernels' sums as they were). */
#define ELU_FMA __attribute__((optimize("fp-contract=fast")))
static inline ELU_FMA f64x4 expm1_x4(f64x4 x) { /* x in [-100, 0] or NaN */
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    f64x4 t = x * 1.4426950408889634 + magic;
    f64x4 k = t - magic;
    i64x4 ki = (i64x4)t - (i64x4)(f64x4){magic, magic, magic, magic};
    f64x4 r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10; /* ln2 hi + lo */
    f64x4 p = (f64x4){0} + 1.0 / 362880; /* Horner from r^9 / 9! down to r */
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r * r + r; /* expm1(r) */
    f64x4 scale = (f64x4)((ki + 1023) << 52);
    return scale * p + (scale - 1.0);
}

static inline ELU_FMA f32x4 elu_x4(f32x4 v, double alpha) {
    f64x4 d = __builtin_convertvector(v, f64x4);
    i64x4 low = d < -100.0; /* NaN compares false: kept */
    d = (f64x4)(((i64x4)d & ~low) | ((i64x4)((f64x4){0} - 100.0) & low));
    f32x4 e = __builtin_convertvector(alpha * expm1_x4(d), f32x4);
    i32x4 mask = v >= 0; /* x >= 0 keeps x: -0.0 stays -0.0, as in F.elu */
    return (f32x4)(((i32x4)v & mask) | ((i32x4)e & ~mask));
}

/* Four independent vectors per step: each expm1 is one long chain of dependent multiply-adds, so
 * interleaving four keeps the FMA units busy (one vector per step ran at 9x a copy, four at ...). */
static inline ELU_FMA void elu_forward_block_f64x4(const float *x, float *y, int64_t m, double alpha) {
    int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
        f32x4 v[4];
        memcpy(v, x + j, sizeof v);
        for (int q = 0; q < 4; q++) v[q] = elu_x4(v[q], alpha);
        memcpy(y + j, v, sizeof v);
    }
    for (; j < m; j++) {
        float v = x[j];
        y[j] = v >= 0 ? v : (float)(alpha * expm1(v < -100.0f ? -100.0 : (double)v));
    }
}

#ifdef __FMA__
#include <immintrin.h>
/* ELU forward at alpha = 1 (every ELU arm of the study) in float32 lanes, faithfully rounded
 * (within 1 ulp of expm1(x); tested exhaustively over [-87, 0] by benchmarks/check_elu_float.py):
 * x is clamped to [-87, 0] (below, expm1 rounds to -1); k = nearest integer to x log2(e) (added to
 * 1.5 * 2^23 in one FMA), r = x - k ln2 as rh + rl (ln2 split hi/lo, the hi product exact),
 * expm1(r) = rh + (r^2 q(rh) + rl (1 + rh)) with q the Taylor series of (expm1(r) - r) / r^2 to
 * r^6 / 8! (truncation below 1e-9 relative), then expm1(x) = fma(2^k, expm1(r), 2^k - 1), one
 * rounding. Every multiply-add is an explicit FMA, so the AVX2 and AVX-512 versions compute the
 * same bits lane by lane. NaN propagates; -0.0 and x >= 0 are kept. */
#define ELU1_DEFINE(SUF, VF, VI, LANES, UNROLL, FMA, ATTR)                                                \
static inline ATTR VF elu1_##SUF(VF v) {                                                          \
    const VF zero = (VF){0};                                                                      \
    VI keep = v >= 0, low = v < -87.0f; /* NaN compares false to both */                          \
    VF x = (VF)(((VI)v & ~(keep | low)) | ((VI)(zero - 87.0f) & low));                            \
    VF t = FMA(x, zero + 1.44269502f, zero + 12582912.0f);                                        \
    VF k = t - 12582912.0f;                                                                       \
    VI ki = (VI)t - (VI)(zero + 12582912.0f);                                                     \
    VF r1 = FMA(k, zero - 0.693145751953125f, x);                                                 \
    VF rh = FMA(k, zero - 1.428606765330187e-06f, r1);                                            \
    VF rl = FMA(k, zero - 1.428606765330187e-06f, r1 - rh);                                       \
    VF q = FMA(zero + (float)(1.0 / 40320), rh, zero + (float)(1.0 / 5040));                      \
    q = FMA(q, rh, zero + (float)(1.0 / 720));                                                    \
    q = FMA(q, rh, zero + (float)(1.0 / 120));                                                    \
    q = FMA(q, rh, zero + (float)(1.0 / 24));                                                     \
    q = FMA(q, rh, zero + (float)(1.0 / 6));                                                      \
    q = FMA(q, rh, zero + 0.5f);                                                                  \
    VF s = FMA(rh * rh, q, FMA(rl, rh, rl));                                                      \
    VF p = rh + s;                                                                                \
    VF scale = (VF)((ki + 127) << 23);                                                            \
    VF e = FMA(scale, p, scale - 1.0f);                                                           \
    return (VF)(((VI)v & keep) | ((VI)e & ~keep));                                                \
}                                                                                                 \
/* Two vectors per step; the tail runs in a zero-padded vector, so every element gets the same    \
 * operations wherever it sits. */                                                                \
static ATTR void elu1_forward_block_##SUF(const float *x, float *y, int64_t m) {                  \
    int64_t j = 0;                                                                                \
    for (; j + UNROLL * LANES <= m; j += UNROLL * LANES) {                                        \
        VF a[UNROLL];                                                                             \
        memcpy(a, x + j, sizeof a);                                                               \
        for (int u = 0; u < UNROLL; u++) a[u] = elu1_##SUF(a[u]);                                 \
        memcpy(y + j, a, sizeof a);                                                               \
    }                                                                                             \
    for (; j < m; j += LANES) {                                                                   \
        const int64_t r = m - j < LANES ? m - j : LANES;                                          \
        VF a = (VF){0};                                                                           \
        memcpy(&a, x + j, (size_t)r * sizeof(float));                                             \
        a = elu1_##SUF(a);                                                                        \
        memcpy(y + j, &a, (size_t)r * sizeof(float));                                             \
    }                                                                                             \
}

typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
#define FMA_256(a, b, c) ((f32x8)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define FMA_512(a, b, c) ((f32x16)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
ELU1_DEFINE(avx2, f32x8, i32x8, 8, 1, FMA_256, )
ELU1_DEFINE(avx512, f32x16, i32x16, 16, 2, FMA_512, __attribute__((target("avx512f"))))

/* Which float32 ELU path runs at alpha = 1: 2 = AVX-512, 1 = AVX2, 0 = the double path (as for
 * any other alpha); -1 = not chosen yet (the widest the CPU has). Set by elu_float_path. */
static int elu1_path = -1;

int elu_float_path(int path) { /* path < 0: only report; returns the path in use */
    if (path >= 0) elu1_path = path > 2 ? 2 : path;
    if (elu1_path < 0) elu1_path = __builtin_cpu_supports("avx512f") ? 2 : 1;
    if (elu1_path == 2 && !__builtin_cpu_supports("avx512f")) elu1_path = 1;
    return elu1_path;
}
#else
int elu_float_path(int path) { (void)path; return 0; }
#endif

static inline void elu_forward_block_f32(const float *x, float *y, int64_t m, double alpha) {
#ifdef __FMA__
    if (alpha == 1.0) {
        const int path = elu1_path < 0 ? elu_float_path(-1) : elu1_path;
        if (path == 2) {
            elu1_forward_block_avx512(x, y, m);
            return;
        }
        if (path == 1) {
            elu1_forward_block_avx2(x, y, m);
            return;
        }
    }
#endif
    elu_forward_block_f64x4(x, y, m, alpha);
}

static inline void elu_forward_block_f64(const double *x, double *y, int64_t m, double alpha) {
    for (int64_t j = 0; j < m; j++) y[j] = x[j] >= 0 ? x[j] : alpha * expm1(x[j]);
}

/* bfloat16 storage (uint16_t: the top half of a float32), computed in float32: each bf16 kernel is
 * the float32 kernel on the widened input with its output rounded to bf16 once, to nearest-even as
 * torch's BFloat16 (NaN stays a quiet NaN). ld_/st_ are the identity for float32 and float64. */
static inline float ld_bf16(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint16_t st_bf16(float f) {
    uint32_t u; memcpy(&u, &f, sizeof u);
    return (u & 0x7FFFFFFFU) > 0x7F800000U ? (uint16_t)((u >> 16) | 0x40U)
                                            : (uint16_t)((u + 0x7FFFU + ((u >> 16) & 1U)) >> 16);
}
static inline float ld_f32(float v) { return v; }
static inline float st_f32(float v) { return v; }
static inline double ld_f64(double v) { return v; }
static inline double st_f64(double v) { return v; }

/* The conversions in explicit vectors (the scalar forms above did not vectorise inside the
 * OpenMP-outlined loops), the same integer operations lane by lane, so the same bits on every
 * path: 16 lanes where the CPU has AVX-512BW (chosen once, at the first call), else 8. At 8 lanes
 * they cost about as much as a float32 pass of a rectifier. */
#define BF16_CONVERT_DEFINE(SUF, LANES, U16V, U32V, ATTR)                                             \
static ATTR void widen_bf16_##SUF(const uint16_t *h, float *f, int64_t m) {                         \
    int64_t j = 0;                                                                                  \
    for (; j + LANES <= m; j += LANES) {                                                            \
        U16V v;                                                                                     \
        memcpy(&v, h + j, sizeof v);                                                                \
        U32V u = __builtin_convertvector(v, U32V) << 16;                                            \
        memcpy(f + j, &u, sizeof u);                                                                \
    }                                                                                               \
    for (; j < m; j++) f[j] = ld_bf16(h[j]);                                                        \
}                                                                                                   \
static ATTR void narrow_bf16_##SUF(const float *f, uint16_t *h, int64_t m) {                        \
    int64_t j = 0;                                                                                  \
    for (; j + LANES <= m; j += LANES) {                                                            \
        U32V u;                                                                                     \
        memcpy(&u, f + j, sizeof u);                                                                \
        U32V nan = (U32V)((u & 0x7FFFFFFFU) > 0x7F800000U);                                         \
        U32V rounded = (u + 0x7FFFU + ((u >> 16) & 1U)) >> 16, quiet = (u >> 16) | 0x40U;           \
        U16V v = __builtin_convertvector((quiet & nan) | (rounded & ~nan), U16V);                   \
        memcpy(h + j, &v, sizeof v);                                                                \
    }                                                                                               \
    for (; j < m; j++) h[j] = st_bf16(f[j]);                                                        \
}

typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
BF16_CONVERT_DEFINE(x8, 8, u16x8, u32x8, )
#if defined(__x86_64__)
BF16_CONVERT_DEFINE(x16, 16, u16x16, u32x16, __attribute__((target("avx512f,avx512bw"))))
#endif

static int bf16_wide = -1; /* 1: the 16-lane conversions; -1: not chosen yet */
static inline int bf16_wide_path(void) {
#if defined(__x86_64__)
    if (bf16_wide < 0) bf16_wide = __builtin_cpu_supports("avx512bw") ? 1 : 0;
#else
    bf16_wide = 0;
#endif
    return bf16_wide;
}
static inline void widen_bf16(const uint16_t *h, float *f, int64_t m) {
#if defined(__x86_64__)
    if (bf16_wide_path()) {
        widen_bf16_x16(h, f, m);
        return;
    }
#endif
    widen_bf16_x8(h, f, m);
}
static inline void narrow_bf16(const float *f, uint16_t *h, int64_t m) {
#if defined(__x86_64__)
    if (bf16_wide_path()) {
        narrow_bf16_x16(f, h, m);
        return;
    }
#endif
    narrow_bf16_x8(f, h, m);
}

/* The blocked bf16 passes run the float32 blocks on widened copies (one block, L1-resident), so
 * the noise and the arithmetic are the float32 kernels' own. */
static inline void rrelu_forward_block_bf16(const uint16_t *x, uint16_t *y, uint32_t m, uint32_t k, float lower,
                                            float step) {
    float xf[NOISE_BLOCK], yf[NOISE_BLOCK];
    widen_bf16(x, xf, m);
    rrelu_forward_block_f32(xf, yf, m, k, lower, step);
    narrow_bf16(yf, y, m);
}

static inline void rrelu_backward_block_bf16(const uint16_t *g, const uint16_t *x, uint16_t *gx, uint32_t m,
                                             uint32_t k, float lower, float step) {
    float gf[NOISE_BLOCK], xf[NOISE_BLOCK];
    widen_bf16(g, gf, m);
    widen_bf16(x, xf, m);
    rrelu_backward_block_f32(gf, xf, gf, m, k, lower, step);
    narrow_bf16(gf, gx, m);
}

static inline void elu_forward_block_bf16(const uint16_t *x, uint16_t *y, int64_t m, double alpha) {
    float xf[NOISE_BLOCK];
    widen_bf16(x, xf, m);
    elu_forward_block_f32(xf, xf, m, alpha);
    narrow_bf16(xf, y, m);
}

static inline int team_size(int threads, int64_t n) { return n < PARALLEL_MIN || threads < 1 ? 1 : threads; }

#define DEFINE_KERNELS(T, CT, SUFFIX)                                                                    \
void prelu_forward_##SUFFIX(const T *x, const CT *a, T *y, int64_t outer, int64_t C, int64_t inner,  \
                            int threads) {                                                          \
    int64_t rows = outer * C;                                                                       \
    threads = team_size(threads, rows * inner);                                                     \
    if (C == 1) { /* one shared coefficient: one flat loop */                                      \
        const CT s = a[0]; const int64_t n = rows * inner;                                          \
        _Pragma("omp parallel for simd schedule(static) num_threads(threads)")                      \
        for (int64_t i = 0; i < n; i++) { CT v = ld_##SUFFIX(x[i]); y[i] = st_##SUFFIX(v > 0 ? v : s * v); } \
    } else if (inner == 1) {                                                                        \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                           \
        for (int64_t o = 0; o < outer; o++) {                                                       \
            const T *xr = x + o * C; T *yr = y + o * C;                                             \
            _Pragma("omp simd")                                                                     \
            for (int64_t c = 0; c < C; c++) { CT v = ld_##SUFFIX(xr[c]); yr[c] = st_##SUFFIX(v > 0 ? v : a[c] * v); } \
        }                                                                                           \
    } else {                                                                                        \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                           \
        for (int64_t r = 0; r < rows; r++) {                                                        \
            const T *xr = x + r * inner; T *yr = y + r * inner; CT s = a[r % C];                    \
            _Pragma("omp simd")                                                                     \
            for (int64_t k = 0; k < inner; k++) { CT v = ld_##SUFFIX(xr[k]); yr[k] = st_##SUFFIX(v > 0 ? v : s * v); } \
        }                                                                                           \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
/* grad_x = g (x > 0) or a g (x <= 0); grad_a[c] = sum of g x over x <= 0 (left derivative at 0). */\
void prelu_backward_##SUFFIX(const T *g, const T *x, const CT *a, T *gx, double *ga, int64_t outer,  \
                             int64_t C, int64_t inner, int threads) {                               \
    int64_t rows = outer * C;                                                                       \
    threads = team_size(threads, rows * inner);                                                     \
    double *part = (double *)calloc((size_t)threads * (size_t)C, sizeof(double));                   \
    _Pragma("omp parallel num_threads(threads)")                                                    \
    {                                                                                               \
        double *mine = part + (size_t)omp_get_thread_num() * (size_t)C;                             \
        if (C == 1) {                                                                               \
            const CT s = a[0]; const int64_t n = rows * inner, block = 4096;                        \
            _Pragma("omp for schedule(static)")                                                     \
            for (int64_t b = 0; b < n; b += block) {                                                \
                const int64_t e = b + block < n ? b + block : n; CT acc = 0;                        \
                _Pragma("omp simd reduction(+:acc)")                                                \
                for (int64_t i = b; i < e; i++) {                                                   \
                    CT v = ld_##SUFFIX(x[i]), d = ld_##SUFFIX(g[i]);                                  \
                    gx[i] = st_##SUFFIX(v > 0 ? d : s * d);                                         \
                    acc += v > 0 ? (CT)0 : d * v;                                                   \
                }                                                                                   \
                mine[0] += acc;                                                                     \
            }                                                                                       \
        } else if (inner == 1) {                                                                    \
            CT *acc = (CT *)calloc((size_t)C, sizeof(CT));                                          \
            int64_t n = 0;                                                                          \
            _Pragma("omp for schedule(static)")                                                     \
            for (int64_t o = 0; o < outer; o++) {                                                   \
                const T *gr = g + o * C, *xr = x + o * C; T *out = gx + o * C;                      \
                _Pragma("omp simd")                                                                 \
                for (int64_t c = 0; c < C; c++) {                                                   \
                    CT v = ld_##SUFFIX(xr[c]), d = ld_##SUFFIX(gr[c]);                              \
                    out[c] = st_##SUFFIX(v > 0 ? d : a[c] * d);                                     \
                    acc[c] += v > 0 ? (CT)0 : d * v;                                                \
                }                                                                                   \
                if (++n == 64) { for (int64_t c = 0; c < C; c++) { mine[c] += acc[c]; acc[c] = 0; } n = 0; } \
            }                                                                                       \
            for (int64_t c = 0; c < C; c++) mine[c] += acc[c];                                      \
            free(acc);                                                                              \
        } else {                                                                                    \
            _Pragma("omp for schedule(static)")                                                     \
            for (int64_t r = 0; r < rows; r++) {                                                    \
                const T *gr = g + r * inner, *xr = x + r * inner; T *out = gx + r * inner;          \
                CT s = a[r % C], acc = 0;                                                           \
                _Pragma("omp simd reduction(+:acc)")                                                \
                for (int64_t k = 0; k < inner; k++) {                                               \
                    CT v = ld_##SUFFIX(xr[k]), d = ld_##SUFFIX(gr[k]);                              \
                    out[k] = st_##SUFFIX(v > 0 ? d : s * d);                                        \
                    acc += v > 0 ? (CT)0 : d * v;                                                   \
                }                                                                                   \
                mine[r % C] += acc;                                                                 \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    memset(ga, 0, (size_t)C * sizeof(double));                                                      \
    for (int t = 0; t < threads; t++)                                                               \
        for (int64_t c = 0; c < C; c++) ga[c] += part[(size_t)t * (size_t)C + c];                   \
    free(part);                                                                                     \
}                                                                                                   \
                                                                                                    \
/* y = x (x > 0) or x / a_i (x <= 0), a_i = lower + (upper - lower) u_i; training noise from seed. */\
void rrelu_forward_##SUFFIX(const T *x, T *y, int64_t n, uint64_t seed, CT lower, CT upper,           \
                            int threads) {                                                          \
    const CT step = RRELU_STEP(CT, lower, upper);                                                   \
    const uint32_t key = noise_key(seed);                                                           \
    threads = team_size(threads, n);                                                                \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                               \
    for (int64_t b = 0; b < n; b += NOISE_BLOCK) {                                                  \
        const uint32_t m = (uint32_t)(n - b < NOISE_BLOCK ? n - b : NOISE_BLOCK);                   \
        rrelu_forward_block_##SUFFIX(x + b, y + b, m, weyl_start(key, b), lower, step);             \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
void rrelu_backward_##SUFFIX(const T *g, const T *x, T *gx, int64_t n, uint64_t seed, CT lower,     \
                             CT upper, int threads) {                                               \
    const CT step = RRELU_STEP(CT, lower, upper);                                                     \
    const uint32_t key = noise_key(seed);                                                           \
    threads = team_size(threads, n);                                                                \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                               \
    for (int64_t b = 0; b < n; b += NOISE_BLOCK) {                                                  \
        const uint32_t m = (uint32_t)(n - b < NOISE_BLOCK ? n - b : NOISE_BLOCK);                   \
        rrelu_backward_block_##SUFFIX(g + b, x + b, gx + b, m, weyl_start(key, b), lower, step);    \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
/* ELU forward, y = x (x > 0) or alpha expm1(x); float32 in vectors of 4 doubles (see the header). */  \
void elu_forward_##SUFFIX(const T *x, T *y, int64_t n, CT alpha, int threads) {                      \
    threads = team_size(threads, n);                                                                \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                               \
    for (int64_t b = 0; b < n; b += NOISE_BLOCK) {                                                  \
        const int64_t m = n - b < NOISE_BLOCK ? n - b : NOISE_BLOCK;                                \
        elu_forward_block_##SUFFIX(x + b, y + b, m, (double)alpha);                                 \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
/* ELU's input gradient from its output: g (y > 0) or g (y + alpha) (y <= 0, left derivative at 0). */\
void elu_backward_##SUFFIX(const T *g, const T *y, T *gx, int64_t n, CT alpha, int threads) {       \
    threads = team_size(threads, n);                                                                \
    _Pragma("omp parallel for simd schedule(static) num_threads(threads)")                          \
    for (int64_t i = 0; i < n; i++) {                                                              \
        CT v = ld_##SUFFIX(y[i]), d = ld_##SUFFIX(g[i]);                                            \
        gx[i] = st_##SUFFIX(v > 0 ? d : d * (v + alpha));                                           \
    }                                                                                               \
}

#define DEFINE_NOISE(T, SUFFIX)                                                                      \
/* The noise itself, element by element (the test checks the blocked loops against it). */         \
void rrelu_noise_##SUFFIX(T *out, int64_t n, uint64_t seed, T lower, T upper) {                     \
    const T step = RRELU_STEP(T, lower, upper);                                                     \
    const uint32_t key = noise_key(seed);                                                           \
    for (int64_t i = 0; i < n; i++) out[i] = RRELU_DIVISOR(T, lower, step, noise_bits(key, i));     \
}                                                                                                   \

DEFINE_KERNELS(float, float, f32)
DEFINE_KERNELS(double, double, f64)
DEFINE_KERNELS(uint16_t, float, bf16)
DEFINE_NOISE(float, f32)
DEFINE_NOISE(double, f64)
