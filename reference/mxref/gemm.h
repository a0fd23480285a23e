/* mxref/gemm.h -- the group GEMM reference: C = A * B^T, per output element
 * three numbers:
 *   exact   the correctly rounded binary64 value of the exact result
 *           w_m * sum_g sum_{k in g} a_mk b_nk 2^(sa_mg + sb_ng)
 *           (w_m the optional FP32 row weight, the top-k weight of GEMM2);
 *   model   what production arithmetic gives under an accumulation model
 *           (mxref/accum.h): the FP32 accumulator and its BF16 output;
 *   bound   B such that |out - exact| <= B for the BF16 output of any
 *           correct kernel of that model family (see docs/bounds.md).
 *
 * Operands are matrices of codes of one format with an optional E8M0 scale
 * per 32 values along K.  A is M x K (activations; rows may be gathered
 * through an index array, as a grouped GEMM reads sorted tokens), B is N x K
 * (one expert's weights).  A grouped GEMM over experts is one call per
 * expert.
 *
 * The exact engine never rounds: 32-wide group partials are exact integer
 * dot products (binary64 BLAS on integer-valued operands whose every partial
 * sum stays below 2^53), cross-group sums are exact in a 128-bit fixed-point
 * accumulator per element (GMP when the scale spread does not fit), and
 * the final value is rounded once.  mx_gemm_exact_mpfr() is the independent
 * MPFR oracle the tests compare it with, bit for bit.
 */
#ifndef MXREF_GEMM_H
#define MXREF_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/accum.h"
#include "mxref/format.h"
#include "mxref/mxquant.h"
#include "mxref/blockwalk.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const mx_format *fmt;   /* element format (8- or 16-bit)                */
    const void *codes;      /* uint8_t or uint16_t codes, row r at r * ld   */
    size_t rows, K, ld;     /* ld >= K                                      */
    /* E8M0 scales, NULL for unscaled operands (BF16).  Scale of row r,
     * group g at scales[r * srs + g * sgs]: [rows][K/32] has srs = K/32,
     * sgs = 1; the packed [K/32][rows] layout has srs = 1, sgs = rows. */
    const uint8_t *scales;
    size_t srs, sgs;
    /* Optional gather: logical row i reads stored row row_idx[i]
     * (0 <= row_idx[i] < stored rows); rows counts logical rows. */
    const int32_t *row_idx;
} mx_operand;

typedef struct {
    mx_e8m0_decode decode;  /* meaning of the scale bytes (exact and model) */
    mx_accum_model model;
    const float *row_weight; /* FP32 weight per logical A row, or NULL      */
} mx_gemm_spec;

/* Per-element outputs, each M x N row-major; any pointer may be NULL. */
typedef struct {
    double *exact;
    float *model_acc;       /* model accumulator after the weight, FP32   */
    uint16_t *model_out;    /* model output, BF16 RNE of model_acc        */
    double *bound;          /* any-correct-kernel bound on |out - exact|  */
    double *sum_abs;        /* |w| * sum |a b| * scale (an upper bound)   */
    double *bound_acc;      /* bound on |model_acc-like FP32 y - exact|:  */
                            /* the FP32 output before any BF16 rounding   */
} mx_gemm_out;

/* Statistics of one call (how often the slow exact paths ran). */
typedef struct {
    size_t elements;
    size_t slow_elements;   /* cross-group sum needed GMP                 */
    size_t irregular_groups;/* (row, group) pairs outside the BLAS window */
} mx_gemm_stats;

/* Operand checks shared by every entry point: formats, K % 32 for scaled
 * operands, A.K == B.K, gather indices in range, scale bytes != 255 (the
 * E8M0 NaN, refused).  MX_EINVAL / MX_ERANGE on failure. */
mx_status mx_gemm_check(const mx_gemm_spec *s, const mx_operand *A,
                        const mx_operand *B);

/* exact, model, bound (whichever outputs are non-NULL).  stats may be NULL.
 * Uses BLAS single-threaded; deterministic. */
mx_status mx_gemm(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                  mx_gemm_out *out, mx_gemm_stats *stats);

/* Where the exact engine gets its group partials (--reference gpu).  The
 * engine turns every operand group into exact integer-valued binary64
 * ints whose 32-term dot has every partial sum below 2^53, so ANY device
 * that multiplies and adds binary64 correctly (in any order, with or
 * without FMA) returns the same bits as the CPU's BLAS.  A provider
 * computes, for the groups g0 .. g0 + ng - 1 of K (group g: columns
 * 32 g .. min(32 g + 32, K) - 1),
 *     P[(g - g0) M N + m N + n] = sum_k a[m K + k] b[n K + k]
 * (a: M x K, b: N x K, row-major) and returns 0; nonzero makes the engine
 * compute that call on the CPU (BLAS) instead.  It may be called from
 * several threads at once.  While a provider is set, mx_gemm sends every
 * call to the engine (not the fused CPU kernels; same bits, tests prove
 * it); the rounding, models and bounds stay on the CPU.  NULL restores the
 * CPU (BLAS). */
typedef int (*mx_slice_provider)(void *ctx, size_t M, size_t N, size_t K,
                                 const double *a, const double *b, size_t g0,
                                 size_t ng, double *P);
void mx_gemm_set_slice_provider(mx_slice_provider fn, void *ctx);
/* The provider set, or NULL (ctx may be NULL). */
mx_slice_provider mx_gemm_slice_provider(void **ctx);
/* Engine calls the provider answered so far / that fell back to the CPU. */
void mx_gemm_slice_counts(unsigned long *device, unsigned long *fallback);

/* The engine's whole cross-group sum from elsewhere (the GPU), for the
 * calls that need nothing but exact values and have no GMP (wide) element
 * and no irregular group: for every element (m, n) and group g with
 * sha[m G + g] >= 0,
 *     acc[m N + n] += (two's complement 128-bit) P_g(m, n) << (sha[m G + g] + shb[n G + g])
 * with P_g as for mx_slice_provider (an exact integer below 2^53) and acc
 * M x N unsigned 128-bit integers (native byte order, as unsigned __int128;
 * void * here for C compilers without it).  The engine's own loop does the
 * same additions modulo 2^128, so the sums are the same bits.  0, or
 * nonzero to have the engine do that call itself (acc untouched). */
typedef int (*mx_sum_provider)(void *ctx, size_t M, size_t N, size_t K,
                               const double *a, const double *b, const int *sha,
                               const int *shb, void *acc);
void mx_gemm_set_sum_provider(mx_sum_provider fn, void *ctx);
/* The sum provider set, or NULL (ctx may be NULL).  While one is set,
 * exact-only calls (no model, no bound outputs) go to the engine, so that
 * it can take them, even without a slice provider; calls with a model or
 * bounds keep the fused CPU kernels (unless a slice provider is set). */
mx_sum_provider mx_gemm_sum_provider(void **ctx);
/* Engine calls the sum provider answered so far. */
unsigned long mx_gemm_sum_count(void);

/* Where a block model's walk runs (mxref/blockwalk.h; --reference gpu):
 * while a walk provider is set, each walk over scaled 8-bit operands with
 * K a multiple of 32 is offered to it; the elements it flags are walked
 * again on the CPU, one by one, and a call it refuses runs on the CPU
 * whole.  The outputs are the same bits either way (tests/check_gpuref.c
 * compares them on every preset).  NULL restores the CPU. */
void mx_gemm_set_walk_provider(mx_walk_provider fn, void *ctx);
mx_walk_provider mx_gemm_walk_provider(void **ctx);
/* Walks the provider answered so far, walks it refused, and flagged
 * elements walked again on the CPU. */
void mx_gemm_walk_counts(unsigned long *device, unsigned long *refused,
                         unsigned long *flagged);

/* The MPFR oracle: exact[] only, element by element with mpfr_sum. */
mx_status mx_gemm_exact_mpfr(const mx_gemm_spec *s, const mx_operand *A,
                             const mx_operand *B, double *exact);

/* The model alone, computed directly from the codes element by element
 * (slow, simple: the cross-check for mx_gemm's model output). */
mx_status mx_gemm_model_direct(const mx_gemm_spec *s, const mx_operand *A,
                               const mx_operand *B, float *model_acc);

/* Unit roundoff based bound pieces (docs/bounds.md), exported for tests:
 * gamma_n = n u / (1 - n u) for FP32 (u = 2^-24). */
double mx_gamma32(size_t n);

#ifdef __cplusplus
}
#endif
#endif
