/* model_fp32_seq.c -- the fp32-seq accumulation model (mxref/accum.h): each
 * group's partial is a sequential FP32 FMA chain from 0 over its products
 * in k order (for BF16 operands one chain carries acc over all k), then
 * production's scale multiply and FP32 add.
 *   mxg_seq_chain  one group, straight from the codes (the direct model);
 *   mxg_seq_gemm   every element, vectorized over output columns. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include "gemm_internal.h"

/* fma(a, b, c) in FP32 for a product that is exact in FP32 whenever it is
 * not below FLT_MIN (8- and 16-bit formats): then c + a*b rounds once. */
static inline float fma_exact_product(float a, float b, float c)
{
    float p = a * b;
    /* a zero operand gives an exact zero product; an underflowed nonzero
     * product (p may even be 0) or an overflowed one needs the true fma */
    if (a == 0 || b == 0 || (fabsf(p) >= FLT_MIN && isfinite(p)))
        return c + p;
    return fmaf(a, b, c);
}

float mxg_seq_chain(const mx_operand *A, size_t m, const mx_operand *B,
                    size_t n, size_t k0, size_t len, float c)
{
    for (size_t k = k0; k < k0 + len; k++)
        c = fma_exact_product((float)mx_decode_double(A->fmt, mxg_code(A, m, k)),
                              (float)mx_decode_double(B->fmt, mxg_code(B, n, k)), c);
    return c;
}

/* Hot loops that are elementwise over output columns: vectorizing them
 * keeps every lane's sequence of FP32 operations (and contraction is off
 * in ISO C11), so results are identical to the scalar loop. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MX_HOT __attribute__((optimize("O3"), target_clones("avx2", "default")))
#else
#define MX_HOT
#endif

static MX_HOT void chain_axpy(float *restrict chain, float a,
                              const float *restrict b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        chain[i] = chain[i] + a * b[i];
}

static MX_HOT void scale_add(float *restrict acc, const float *restrict p,
                             const float *restrict sc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float t = p[i] * sc[i];
        acc[i] = acc[i] + t;
    }
}

/* Rows of A are processed MB at a time so that each decoded row of B^T is
 * loaded once per block. */
#define MB 8
mx_status mxg_seq_gemm(const mx_gemm_spec *s, const mx_operand *A,
                       const mx_operand *B, float *out)
{
    size_t M = A->rows, N = B->rows, K = A->K, G = mxg_groups(K);
    float *bt = malloc(K * N * sizeof *bt), *p = malloc(MB * N * sizeof *p);
    float *a = malloc(MB * K * sizeof *a), *sc = malloc(N * sizeof *sc);
    float *sbt = A->scales ? malloc(G * N * sizeof *sbt) : NULL;
    /* value tables of both formats (every code's float value) */
    size_t nb = (size_t)1 << B->fmt->bits, na = (size_t)1 << A->fmt->bits;
    float *tab = malloc(nb * sizeof *tab), *taba = malloc(na * sizeof *taba);
    if (!bt || !p || !a || !sc || (A->scales && !sbt) || !tab || !taba) {
        free(tab);
        free(taba);
        free(bt);
        free(p);
        free(a);
        free(sc);
        free(sbt);
        return MX_ENOMEM;
    }
    for (size_t g = 0; A->scales && g < G; g++)
        for (size_t n = 0; n < N; n++)
            sbt[g * N + n] = mxg_scale_f32(B, s->decode, n, g);
    for (size_t c = 0; c < nb; c++)
        tab[c] = (float)mx_decode_double(B->fmt, (uint32_t)c);
    for (size_t c = 0; c < na; c++)
        taba[c] = (float)mx_decode_double(A->fmt, (uint32_t)c);
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++)
            bt[k * N + n] = tab[mxg_code(B, n, k)];
    /* products of two 8-bit values never fall below FLT_MIN; 16-bit ones
     * may, and then a*b rounds where fma would not: those elements are
     * recomputed with true fma below. */
    int may_underflow = A->fmt->bits > 8 || B->fmt->bits > 8;
    for (size_t m0 = 0; m0 < M; m0 += MB) {
        size_t mb = M - m0 < MB ? M - m0 : MB;
        for (size_t j = 0; j < mb; j++) {
            for (size_t k = 0; k < K; k++)
                a[j * K + k] = taba[mxg_code(A, m0 + j, k)];
            for (size_t n = 0; n < N; n++)
                out[(m0 + j) * N + n] = 0.0f;
        }
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
            if (A->scales)
                for (size_t i = 0; i < mb * N; i++)
                    p[i] = 0.0f;
            for (size_t k = k0; k < k0 + len; k++)
                for (size_t j = 0; j < mb; j++)
                    chain_axpy(A->scales ? p + j * N : out + (m0 + j) * N,
                               a[j * K + k], bt + k * N, N);
            if (!A->scales)
                continue;
            for (size_t j = 0; j < mb; j++) {
                float sa = mxg_scale_f32(A, s->decode, m0 + j, g);
                for (size_t n = 0; n < N; n++)
                    sc[n] = mxg_scale_mul(sa, sbt[g * N + n]);
                scale_add(out + (m0 + j) * N, p + j * N, sc, N);
            }
        }
        for (size_t j = 0; j < mb && may_underflow; j++)
            for (size_t n = 0; n < N; n++) {
                int under = 0;
                for (size_t k = 0; k < K && !under; k++) {
                    float pr = a[j * K + k] * bt[k * N + n];
                    under = a[j * K + k] != 0 && bt[k * N + n] != 0 &&
                            !(fabsf(pr) >= FLT_MIN);
                }
                if (!under)
                    continue;
                /* one element through the direct model */
                size_t m = m0 + j;
                mx_operand a1 = *A, b1 = *B;
                mx_gemm_spec s1 = *s;
                int32_t ri = (int32_t)mxg_row(A, m), rn = (int32_t)mxg_row(B, n);
                s1.row_weight = NULL;
                a1.row_idx = &ri;
                a1.rows = 1;
                b1.row_idx = &rn;
                b1.rows = 1;
                mx_gemm_model_direct(&s1, &a1, &b1, &out[m * N + n]);
            }
    }
    if (s->row_weight)
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++)
                out[m * N + n] = out[m * N + n] * s->row_weight[m];
    free(bt);
    free(p);
    free(a);
    free(sc);
    free(sbt);
    free(tab);
    free(taba);
    return MX_OK;
}
