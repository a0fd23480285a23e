/* mxk_numerics.h -- the scalar arithmetic of the kernels, written once for
 * the C emulation (kernels/cpu/) and the HIP kernels (kernels/ *.hip).
 *
 * Everything here is deterministic FP32 / integer code: bit manipulation,
 * and the four IEEE operations +, *, / and fma, each rounded to nearest even
 * exactly once, through the MXK_ADD/MUL/DIV/FMA macros (CUDA's __fadd_rn
 * etc. on nvcc, the plain operators elsewhere).  No libm call whose result
 * could differ between glibc, CUDA and ROCm: the exponential is computed
 * here (mxk_expf).  The compilers must not contract a*b+c into an fma:
 * the build passes -ffp-contract=off (gcc, clang) and -fmad=false (nvcc).
 * FP32 subnormals must not be flushed (no -ftz / fast-math).
 *
 * With these, the same inputs give the same bits on x86 (C), NVIDIA and
 * AMD, which the GPU tests assert.
 */
#ifndef MXK_NUMERICS_H
#define MXK_NUMERICS_H

#include <stdint.h>
#include <string.h>
#include "mxk.h"

/* clang's HIP compilation fuses a*b+c into v_fmac_f32 unless given
 * -ffp-contract=off, even under `#pragma clang fp contract(off)` (seen with
 * clang-19 on mxfp8_group_gemm.hip); the build passes the flag together
 * with -DMXK_NO_CONTRACT, and a HIP build without them stops here. */
#if defined(__HIP_DEVICE_COMPILE__) && !defined(MXK_NO_CONTRACT)
#error "compile the HIP kernels with -ffp-contract=off -DMXK_NO_CONTRACT"
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define MXK_FN static __host__ __device__ inline
#else
#include <math.h>
#define MXK_FN static inline
#endif

#if defined(__CUDA_ARCH__)
#define MXK_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#define MXK_MUL(a, b) __fmul_rn((a), (b))
#define MXK_ADD(a, b) __fadd_rn((a), (b))
#define MXK_DIV(a, b) __fdiv_rn((a), (b))
#elif defined(__HIP_DEVICE_COMPILE__)
#define MXK_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#define MXK_MUL(a, b) ((a) * (b))
#define MXK_ADD(a, b) ((a) + (b))
#define MXK_DIV(a, b) ((a) / (b))
#else
#define MXK_FMA(a, b, c) fmaf((a), (b), (c))
#define MXK_MUL(a, b) ((a) * (b))
#define MXK_ADD(a, b) ((a) + (b))
#define MXK_DIV(a, b) ((a) / (b))
#endif

/* ---- bits ------------------------------------------------------------- */

MXK_FN uint32_t mxk_f2u(float f)
{
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

MXK_FN float mxk_u2f(uint32_t u)
{
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

#define MXK_QNAN_BITS 0x7fc00000u
#define MXK_INF_BITS 0x7f800000u

/* |x| by clearing the sign bit. */
MXK_FN float mxk_absf(float x) { return mxk_u2f(mxk_f2u(x) & 0x7fffffffu); }
/* min/max that return x when x is NaN and y otherwise when y is NaN: with
 * the constant bounds of the clamps a NaN input stays NaN, like torch.clamp.
 * (libm's fminf/fmaxf would drop it.) */
MXK_FN float mxk_minf(float x, float y) { return y < x ? y : x; }
MXK_FN float mxk_maxf(float x, float y) { return y > x ? y : x; }

/* ---- BF16 ------------------------------------------------------------- */

MXK_FN float mxk_bf16_to_f32(uint16_t h) { return mxk_u2f((uint32_t)h << 16); }

/* NaN as the kernels store it: the positive quiet NaN.  The sign of a NaN
 * made by an invalid operation (0 * inf, inf - inf) is not portable: x86
 * makes 0xFFC00000, NVIDIA 0x7FFFFFFF; stored results must not depend on
 * it. */
MXK_FN float mxk_canon_nan(float x) { return x != x ? mxk_u2f(MXK_QNAN_BITS) : x; }

/* RNE; overflow gives inf; every NaN gives 0x7FC0 (see mxk_canon_nan). */
MXK_FN uint16_t mxk_f32_to_bf16(float f)
{
    uint32_t u = mxk_f2u(f);
    if ((u & 0x7fffffffu) > MXK_INF_BITS)
        return 0x7fc0u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Truncation (round toward zero): the planted bug MXK_MUT_BF16_TRUNC. */
MXK_FN uint16_t mxk_f32_to_bf16_trunc(float f)
{
    uint32_t u = mxk_f2u(f);
    if ((u & 0x7fffffffu) > MXK_INF_BITS)
        return 0x7fc0u;
    return (uint16_t)(u >> 16);
}

/* ---- E4M3 (FN and FNUZ) ----------------------------------------------- */

/* Value of an E4M3 code as FP32 (exact).  fnuz = 1: bias 8, 0x80 is NaN;
 * fnuz = 0: bias 7, 0x7F/0xFF are NaN, 0x80 is -0. */
MXK_FN float mxk_fp8_decode(uint8_t b, int fnuz)
{
    uint32_t sign = (uint32_t)(b >> 7) << 31;
    uint32_t ex = (b >> 3) & 15u, man = b & 7u;
    if (fnuz ? b == 0x80 : (b & 0x7f) == 0x7f)
        return mxk_u2f(MXK_QNAN_BITS);
    int bias = fnuz ? 8 : 7;
    float v;
    if (ex == 0) /* man * 2^(1 - bias - 3): a small integer times 2^-9/-10 */
        v = MXK_MUL((float)man, mxk_u2f((uint32_t)(127 - bias - 2) << 23));
    else
        v = mxk_u2f(((ex - (uint32_t)bias + 127u) << 23) | (man << 20));
    return mxk_u2f(mxk_f2u(v) | sign);
}

/* fp8_rne(x * 2^sh): the exact product rounded once to nearest even into
 * E4M3 (fnuz as above).  No saturation: a magnitude that rounds above the
 * largest finite value (448 FN, 240 FNUZ), an infinity or a NaN gives the
 * NaN code (FN 0x7F with the sign, FNUZ 0x80), as the gfx942 conversion
 * instructions do.  A zero result is 0x80 in FN for a negative x (-0) and
 * 0x00 in FNUZ.  Works from the bits, so x * 2^sh never has to exist as an
 * FP32 number (no underflow or overflow of the scaling). */
MXK_FN uint8_t mxk_fp8_encode(float x, int sh, int fnuz)
{
    uint32_t u = mxk_f2u(x);
    uint32_t sign = u >> 31;
    uint32_t ex = (u >> 23) & 0xffu, man = u & 0x7fffffu;
    uint8_t nan = fnuz ? (uint8_t)0x80 : (uint8_t)(0x7fu | (sign << 7));
    uint8_t zero = fnuz ? (uint8_t)0 : (uint8_t)(sign << 7);
    if (ex == 0xff)
        return nan;
    if (ex == 0 && man == 0)
        return zero;
    const int bias = fnuz ? 8 : 7, emin = 1 - bias;
    uint32_t sig; /* value = sig * 2^(e - 23), 2^23 <= sig < 2^24 */
    int e;
    if (ex == 0) {
        sig = man;
        e = -126;
        while (!(sig & 0x800000u)) {
            sig <<= 1;
            e--;
        }
    } else {
        sig = man | 0x800000u;
        e = (int)ex - 127;
    }
    e += sh;
    if (e + bias > 15) /* biased exponent past the top binade */
        return nan;
    /* keep 3 fraction bits in a normal result; fewer below 2^emin */
    int drop = e >= emin ? 20 : 20 + (emin - e);
    uint32_t mag;
    if (drop > 31) {
        mag = 0; /* below a quarter of the smallest subnormal */
    } else {
        uint32_t r = sig >> drop, rem = sig & ((1u << drop) - 1u);
        uint32_t half = 1u << (drop - 1);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        /* normal: r in [8, 16], 16 carries into the exponent; subnormal:
         * r in [0, 8], 8 is the smallest normal code */
        mag = e >= emin ? ((uint32_t)(e + bias) << 3) + (r - 8u) : r;
    }
    if (mag > (fnuz ? 0x7fu : 0x7eu))
        return nan;
    if (mag == 0)
        return zero;
    return (uint8_t)((sign << 7) | mag);
}

/* ---- E8M0 ------------------------------------------------------------- */

/* production (spec = 0): the byte as a BF16 / FP32 exponent field, so
 * 0 -> +0.0, 255 -> +inf.  spec = 1: 2^(s-127) (0 -> 2^-127, an FP32
 * subnormal), 255 -> NaN.  1..254 agree. */
MXK_FN float mxk_e8m0_decode(uint8_t s, int spec)
{
    if (spec) {
        if (s == 255)
            return mxk_u2f(MXK_QNAN_BITS);
        if (s == 0)
            return mxk_u2f(0x00400000u);
    }
    return mxk_u2f((uint32_t)s << 23);
}

/* ---- the MX scale rule (facts §3) ------------------------------------- */

/* s from the block amax: max(amax, 1e-30f) is a normal FP32, whose biased
 * exponent is floor(log2 amax) + 127; s = min(that, 254).  ceil_bug (the
 * planted MXK_MUT_QUANT_CEIL) takes ceil(log2 amax) instead: one more
 * unless amax is a power of two. */
MXK_FN int mxk_mx_scale(float amax, int ceil_bug)
{
    amax = amax > 1e-30f ? amax : 1e-30f;
    uint32_t u = mxk_f2u(amax);
    int s = (int)(u >> 23);
    if (ceil_bug && (u & 0x7fffffu))
        s += 1;
    return s > 254 ? 254 : s;
}

/* Quantizes one block of 32 FP32 values by the rule above. */
MXK_FN void mxk_quant_block32(const float *v, uint8_t *q, uint8_t *scale,
                              int fnuz, int mutant)
{
    float amax = 0.0f;
    const int na = mutant == MXK_MUT_AMAX_31 ? 31 : 32; /* planted bug */
    for (int i = 0; i < na; i++) {
        float a = mxk_absf(v[i]);
        amax = a > amax ? a : amax; /* NaN never wins */
    }
    int s = mxk_mx_scale(amax, mutant == MXK_MUT_QUANT_CEIL);
    *scale = (uint8_t)s;
    for (int i = 0; i < 32; i++)
        q[i] = mxk_fp8_encode(v[i], 127 - s, fnuz);
}

/* ---- exp and sigmoid ---------------------------------------------------- */

/* e^x in FP32, deterministic (no libm).  Cody-Waite reduction
 * x = n*ln2 + r, |r| <= ln2/2 (n by the 1.5*2^23 rounding trick, r by two
 * fmas with ln2 split in a 16-bit head and a tail), e^r by its degree-7
 * Taylor polynomial in Horner form with fmas (truncation < 0.07 ulp),
 * then 2^n applied as two exact power-of-two factors so that only the last
 * multiply rounds (gradual underflow).  Measured accuracy: docs/kernels.md
 * (tests/check_kernels_numerics.c checks it against MPFR). */
MXK_FN float mxk_expf(float x)
{
    if (x != x)
        return x;
    if (x > 89.0f)
        return mxk_u2f(MXK_INF_BITS);
    if (x < -104.0f)
        return 0.0f;
    const float magic = 0x1.8p23f; /* adding it rounds to an integer */
    float t = MXK_FMA(x, 0x1.715476p+0f, magic); /* x * log2(e) */
    float n = MXK_ADD(t, -magic);
    float r = MXK_FMA(n, -0x1.62e4p-1f, x);  /* ln2 head, 17 bits */
    r = MXK_FMA(n, -0x1.7f7d1cp-20f, r);     /* ln2 tail */
    float p = 0x1.a01a02p-13f;               /* 1/7! */
    p = MXK_FMA(p, r, 0x1.6c16c2p-10f);      /* 1/6! */
    p = MXK_FMA(p, r, 0x1.111112p-7f);       /* 1/5! */
    p = MXK_FMA(p, r, 0x1.555556p-5f);       /* 1/4! */
    p = MXK_FMA(p, r, 0x1.555556p-3f);       /* 1/3! */
    p = MXK_FMA(p, r, 0.5f);
    p = MXK_FMA(p, r, 1.0f);
    p = MXK_FMA(p, r, 1.0f);
    int ni = (int)n; /* exact: n is an integer in [-151, 129] */
    int n1 = ni / 2, n2 = ni - n1;
    p = MXK_MUL(p, mxk_u2f((uint32_t)(n1 + 127) << 23)); /* exact */
    return MXK_MUL(p, mxk_u2f((uint32_t)(n2 + 127) << 23));
}

/* 1 / (1 + e^-t), rounded at each of the three steps. */
MXK_FN float mxk_sigmoidf(float t)
{
    float e = mxk_expf(-t);
    return MXK_DIV(1.0f, MXK_ADD(1.0f, e));
}

/* One SwiGLU output (facts §5), FP32:
 * (min(gate,7) * sigmoid(1.702 * min(gate,7))) * (clamp(up,-7,7) + 1);
 * a NaN result is the positive quiet NaN. */
MXK_FN float mxk_swiglu(float gate, float up, int mutant)
{
    if (mutant != MXK_MUT_NO_GATE_CLAMP)
        gate = mxk_minf(gate, 7.0f);
    if (mutant != MXK_MUT_NO_UP_CLAMP)
        up = mxk_maxf(mxk_minf(up, 7.0f), -7.0f);
    float s = mxk_sigmoidf(MXK_MUL(1.702f, gate));
    return mxk_canon_nan(MXK_MUL(MXK_MUL(gate, s), MXK_ADD(up, 1.0f)));
}

/* ---- pieces of the kernels both backends run ---------------------------- */

/* mx_quant on one block of 32 BF16 values. */
MXK_FN void mxk_quant_block_bf16(const uint16_t *x, uint8_t *q,
                                 uint8_t *scale, int fnuz, int mutant)
{
    float v[32];
    for (int i = 0; i < 32; i++)
        v[i] = mxk_bf16_to_f32(x[i]);
    mxk_quant_block32(v, q, scale, fnuz, mutant);
}

/* swiglu_quant on one block of 32 outputs: gate and up point at the 32
 * BF16 inputs of each half; act (NULL or 32 floats) receives act. */
MXK_FN void mxk_swiglu_block(const uint16_t *gate, const uint16_t *up,
                             uint8_t *q, uint8_t *scale, float *act, int fnuz,
                             int mutant)
{
    float v[32];
    for (int i = 0; i < 32; i++)
        v[i] = mxk_swiglu(mxk_bf16_to_f32(gate[i]), mxk_bf16_to_f32(up[i]),
                          mutant);
    if (act)
        for (int i = 0; i < 32; i++)
            act[i] = v[i];
    mxk_quant_block32(v, q, scale, fnuz, mutant);
}

/* One output of moe_sum: x points at x[t, 0, i], stride n elements. */
MXK_FN uint16_t mxk_sum_elem(const uint16_t *x, int64_t stride, int topk,
                             int fp32_acc, int mutant)
{
    if (mutant == MXK_MUT_SUM_FP32 && !fp32_acc)
        fp32_acc = 1;
    else if (mutant == MXK_MUT_SUM_BF16 && fp32_acc)
        fp32_acc = 0;
    if (fp32_acc) {
        float a = mxk_bf16_to_f32(x[0]);
        for (int j = 1; j < topk; j++)
            a = MXK_ADD(a, mxk_bf16_to_f32(x[j * stride]));
        return mxk_f32_to_bf16(a);
    }
    uint16_t s = x[0];
    for (int j = 1; j < topk; j++)
        s = mxk_f32_to_bf16(
            MXK_ADD(mxk_bf16_to_f32(s), mxk_bf16_to_f32(x[j * stride])));
    return s;
}

/* GEMM epilogue: the top-k weight (when has_w) on the FP32 accumulator,
 * then BF16 RNE. */
MXK_FN uint16_t mxk_gemm_epilogue(float acc, int has_w, float w, int mutant)
{
    if (mutant == MXK_MUT_FTZ_OUTPUT && mxk_absf(acc) < 0x1p-126f)
        acc = mxk_u2f(mxk_f2u(acc) & 0x80000000u); /* planted: flush */
    if (has_w && mutant == MXK_MUT_TOPK_AFTER_BF16) /* planted: 2 roundings */
        return mxk_f32_to_bf16(MXK_MUL(mxk_bf16_to_f32(mxk_f32_to_bf16(acc)), w));
    if (has_w && mutant != MXK_MUT_TOPK_NONE) {
        acc = MXK_MUL(acc, w);
        if (mutant == MXK_MUT_TOPK_TWICE)
            acc = MXK_MUL(acc, w);
    }
    return mutant == MXK_MUT_BF16_TRUNC ? mxk_f32_to_bf16_trunc(acc)
                                        : mxk_f32_to_bf16(acc);
}

/* One cross-group step of the MXFP8 GEMM: acc + part * sc, a multiply and
 * an add, each RNE (facts §4), or a planted variant: the product flushed
 * to zero when subnormal, the sum rounded to BF16. */
MXK_FN float mxk_acc_step(float acc, float part, float sc, int mutant)
{
    /* the correct step first, as one expression in one block: a build that
     * contracted it into an fma would show (tests/gfx942_asm.test) */
    if (mutant != MXK_MUT_FTZ_PARTIAL && mutant != MXK_MUT_BF16_ACC)
        return MXK_ADD(acc, MXK_MUL(part, sc));
    float t = MXK_MUL(part, sc);
    if (mutant == MXK_MUT_FTZ_PARTIAL && mxk_absf(t) < 0x1p-126f)
        t = mxk_u2f(mxk_f2u(t) & 0x80000000u);
    float s = MXK_ADD(acc, t);
    return mutant == MXK_MUT_BF16_ACC ? mxk_bf16_to_f32(mxk_f32_to_bf16(s)) : s;
}

/* The MXFP8 GEMM's scale product sc = dec(sa) * dec(sb) in FP32 (one
 * rounding: exact unless it under- or overflows), or with the planted
 * 2^(s-128) decode (each factor halved, exactly). */
MXK_FN float mxk_gemm_scale(uint8_t sa, float db, int spec, int mutant)
{
    float da = mxk_e8m0_decode(sa, spec);
    if (mutant == MXK_MUT_E8M0_BIAS_128) {
        da = MXK_MUL(da, 0.5f);
        db = MXK_MUL(db, 0.5f);
    }
    return MXK_MUL(da, db);
}

/* FP8 operand decode of the GEMMs: mxk_fp8_decode, or with the planted
 * flush of subnormal codes. */
MXK_FN float mxk_gemm_fp8_decode(uint8_t b, int fnuz, int mutant)
{
    if (mutant == MXK_MUT_FP8_SUBNORMAL_FLUSH && (b & 0x78u) == 0)
        return 0.0f;
    return mxk_fp8_decode(b, fnuz);
}

/* The planted MXK_MUT_DROP_LAST_K: the last K element is never added.  The
 * kernels keep their fixed 32-long loops and read that B value as 0. */
MXK_FN int mxk_drops_k(int64_t k, int64_t K, int mutant)
{
    return mutant == MXK_MUT_DROP_LAST_K && k == K - 1;
}

/* MXFP8 GEMM scale bookkeeping.  The scale product is applied after every
 * `span` groups (1, or 2 / 4 for the per-64 / per-128 bugs), with the
 * scales of group `mxk_scale_group` of that span: its first group, or the
 * next one for MXK_MUT_SCALE_NEXT_GROUP (past the last group the load is
 * masked: byte 0). */
MXK_FN int mxk_scale_span(int mutant)
{
    return mutant == MXK_MUT_SCALE_PER_64    ? 2
           : mutant == MXK_MUT_SCALE_PER_128 ? 4
                                             : 1;
}
MXK_FN int mxk_scale_group(int g_first, int mutant)
{
    return mutant == MXK_MUT_SCALE_NEXT_GROUP ? g_first + 1 : g_first;
}

/* Flat index of B's scale for (expert e, column n, group g), G = k/32. */
MXK_FN int64_t mxk_bscale_index(int64_t e, int64_t n, int64_t g, int64_t N,
                                int64_t G, int packed, int mutant)
{
    if (mutant == MXK_MUT_SCALE_STRIDES)
        packed = !packed;
    return packed ? (e * G + g) * N + n : (e * N + n) * G + g;
}

/* The decode the GEMM uses, after the swap bug. */
MXK_FN int mxk_gemm_e8m0_spec(int e8m0, int mutant)
{
    int spec = e8m0 == MXK_E8M0_SPEC;
    return mutant == MXK_MUT_E8M0_SWAP ? !spec : spec;
}

#endif /* MXK_NUMERICS_H */
