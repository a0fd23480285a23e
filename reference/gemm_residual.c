/* gemm_residual.c -- the residual path of the exact engine: irregular
 * groups (values spread over more than the BLAS window, gemm_prep.c) keep
 * their low bits as exact residual entries; with a = a_hi + a_lo and
 * b = b_hi + b_lo, a b = a_hi b_hi (the dgemm) + a_lo b + a_hi b_lo (the
 * residual terms, added here in 128-bit fixed point or GMP).  Elements with
 * residual terms also get their fp32-group model partial here, rounded
 * from the dgemm part plus the terms (model_fp32_group.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"

/* The exact residual terms of group g for element (m, n), unscaled:
 * a_lo * b (full b) for A's residual bits, a_hi * b_lo for B's. */
static size_t residual_terms(const mxg_prep *a, const mxg_prep *b,
                             const mx_operand *B, size_t m, size_t n, size_t g,
                             int64_t *tv, int *te)
{
    size_t G = a->G, K = a->K, k0 = g * MX_BLOCK, cnt = 0;
    const mxg_code_table *tb = mxg_code_table_get(B->fmt);
    if (a->irr[m * G + g])
        for (size_t j = a->res_off[m * G + g]; j < a->res_off[m * G + g + 1]; j++) {
            uint32_t c = mxg_code(B, n, k0 + a->res_k[j]);
            if (!tb->m[c])
                continue;
            tv[cnt] = (int64_t)a->res_m[j] * tb->m[c];
            te[cnt++] = a->res_e[j] + tb->e[c];
        }
    if (b->irr[n * G + g])
        for (size_t j = b->res_off[n * G + g]; j < b->res_off[n * G + g + 1]; j++) {
            double ah = a->ints[m * K + k0 + b->res_k[j]];
            if (ah == 0)
                continue;
            tv[cnt] = (int64_t)ah * b->res_m[j];
            te[cnt++] = a->u[m * G + g] + b->res_e[j];
        }
    return cnt;
}

/* One element (m, n) of group g, the general way. */
static void add_residual_elem(const mx_gemm_spec *s, const mx_operand *A,
                              const mx_operand *B, const mxg_prep *a,
                              const mxg_prep *b, mxg_accum *ac, size_t g,
                              const double *P, size_t m, size_t n)
{
    size_t N = ac->N, G = ac->G;
    int64_t tv[2 * MX_BLOCK];
    int te[2 * MX_BLOCK];
    size_t cnt = residual_terms(a, b, B, m, n, g, tv, te);
    size_t i = m * N + n;
    int sa = a->sx[m * G + g], sb = b->sx[n * G + g];
    int live = sa != MXG_ZERO_SCALE && sb != MXG_ZERO_SCALE;
    for (size_t j = 0; j < cnt && live && ac->sabs; j++)
        ac->sabs[i] += fabs((double)tv[j]) * mxg_pow2(te[j] + sa + sb);
    for (size_t j = 0; j < cnt && live; j++) {
        int shift = te[j] + sa + sb - a->lo[m] - b->lo[n];
        if (!ac->slow[i]) {
            ac->acc[i] += (unsigned __int128)mxg_shl128(tv[j], shift);
        } else {
            mpz_t t;
            mpz_init_set_si(t, (long)tv[j]);
            mpz_mul_2exp(t, t, (mp_bitcnt_t)shift);
            mpz_add(ac->big[i], ac->big[i], t);
            mpz_clear(t);
        }
    }
    if (!ac->gacc)
        return;
    /* the model partial: RN32 of P_hi 2^(uA+uB) + the terms */
    float p = mxg_group_partial_terms(P[i], a->u[m * G + g] + b->u[n * G + g],
                                      tv, te, cnt);
    float sc = mxg_scale_mul(mxg_scale_f32(A, s->decode, m, g),
                             mxg_scale_f32(B, s->decode, n, g));
    mxg_group_step(&ac->gacc[i], p, sc, A->scales != NULL);
}

/* The fast path for rows of A with residual bits in group g: the group's
 * B values are gathered once into column-contiguous arrays, each residual
 * entry then adds a_lo * b for all columns in the element's own fixed-point
 * frame (exact: the span test covers every term), and the fp32-group model
 * partial is rounded from P_hi + those terms in the same frame.  The
 * bound's sum gets the terms' magnitudes summed exactly in that frame and
 * rounded once to binary64 (mxg_round_f64): one rounding for the group's
 * low bits, whatever their number, so that any exact way of summing them
 * (gemm_fused.c sums them by 24-bit planes) gives the same bits.  Columns
 * with residual bits of their own, and GMP elements, take the general
 * per-element path. */
static void residual_rows(const mx_gemm_spec *s, const mx_operand *A,
                          const mx_operand *B, const mxg_prep *a,
                          const mxg_prep *b, mxg_accum *ac, size_t g,
                          const double *P)
{
    size_t M = ac->M, N = ac->N, G = ac->G, K = a->K, k0 = g * MX_BLOCK;
    size_t len = mxg_group_len(K, g);
    int scaled = A->scales != NULL;
    const mxg_code_table *tb = mxg_code_table_get(B->fmt);
    int32_t *bm = malloc(len * N * sizeof *bm);
    int16_t *be = malloc(len * N * sizeof *be);
    int *fb = malloc(N * sizeof *fb);      /* sb - loB[n], or INT_MIN      */
    int *db = malloc(N * sizeof *db);      /* uB + sb - loB[n]             */
    float *scb = malloc(N * sizeof *scb);
    unsigned __int128 *gres = malloc(N * sizeof *gres);
    unsigned __int128 *gabs = malloc(N * sizeof *gabs);
    int ok = bm && be && fb && db && scb && gres && gabs;
    for (size_t n = 0; ok && n < N; n++) {
        for (size_t i = 0; i < len; i++) {
            uint32_t c = mxg_code(B, n, k0 + i);
            bm[i * N + n] = tb->m[c];
            be[i * N + n] = tb->e[c];
        }
        int sb = b->sx[n * G + g];
        /* a zero scale or an all-zero row (lo = INT_MAX > hi, the marker:
         * never in exponent arithmetic) contributes nothing */
        int none = sb == MXG_ZERO_SCALE || b->lo[n] > b->hi[n];
        fb[n] = none ? INT_MIN : sb - b->lo[n];
        db[n] = none ? 0 : b->u[n * G + g] + sb - b->lo[n];
        scb[n] = scaled ? mxg_scale_f32(B, s->decode, n, g) : 1.0f;
    }
    for (size_t m = 0; ok && m < M; m++) {
        if (!a->irr[m * G + g])
            continue;
        int sa = a->sx[m * G + g];
        if (sa == MXG_ZERO_SCALE) {
            /* no exact contribution; the model adds p * 0 = 0 */
            continue;
        }
        int fa = sa - a->lo[m], ua = a->u[m * G + g];
        memset(gres, 0, N * sizeof *gres);
        memset(gabs, 0, N * sizeof *gabs);
        for (size_t j = a->res_off[m * G + g]; j < a->res_off[m * G + g + 1]; j++) {
            int64_t ma = a->res_m[j];
            int ea = a->res_e[j];
            const int32_t *bmk = bm + (size_t)a->res_k[j] * N;
            const int16_t *bek = be + (size_t)a->res_k[j] * N;
            for (size_t n = 0; n < N; n++) {
                /* slow elements and columns with residual bits take the
                 * per-element path below (their shifts may exceed 127) */
                if (!bmk[n] || fb[n] == INT_MIN || ac->slow[m * N + n] ||
                    b->irr[n * G + g])
                    continue;
                int64_t tv = ma * bmk[n];
                int te = ea + bek[n];
                gres[n] += (unsigned __int128)mxg_shl128(tv, te + fa + fb[n]);
                gabs[n] += (unsigned __int128)mxg_shl128(tv < 0 ? -tv : tv, te + fa + fb[n]);
            }
        }
        float scA = scaled ? mxg_scale_f32(A, s->decode, m, g) : 1.0f;
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            if (b->irr[n * G + g] || ac->slow[i] || fb[n] == INT_MIN) {
                if (fb[n] == INT_MIN && ac->gacc && !b->irr[n * G + g] && !ac->slow[i])
                    /* zero B scale: the model still adds p * 0 */
                    mxg_group_step(&ac->gacc[i], 0.0f, mxg_scale_mul(scA, scb[n]), 1);
                else
                    add_residual_elem(s, A, B, a, b, ac, g, P, m, n);
                continue;
            }
            ac->acc[i] += gres[n];
            if (ac->sabs) /* below 2^127: the span test */
                ac->sabs[i] += mxg_round_f64((__int128)gabs[n], a->lo[m] + b->lo[n]);
            if (!ac->gacc)
                continue;
            /* the unscaled group dot, exactly, in the element's frame */
            __int128 v = mxg_shl128((int64_t)P[i], ua + fa + db[n])
                         + (__int128)gres[n];
            int e = a->lo[m] + b->lo[n] - sa - (fb[n] + b->lo[n]);
            float p = mxg_group_partial(v, e);
            mxg_group_step(&ac->gacc[i], p, mxg_scale_mul(scA, scb[n]), scaled);
        }
    }
    free(bm);
    free(be);
    free(fb);
    free(db);
    free(scb);
    free(gres);
    free(gabs);
    if (ok)
        return;
    /* allocation failure: every element the general way */
    for (size_t m = 0; m < M; m++)
        if (a->irr[m * G + g])
            for (size_t n = 0; n < N; n++)
                add_residual_elem(s, A, B, a, b, ac, g, P, m, n);
}

void mxg_residual_add(const mx_gemm_spec *s, const mx_operand *A,
                      const mx_operand *B, const mxg_prep *a, const mxg_prep *b,
                      mxg_accum *ac, size_t g, const double *P)
{
    size_t M = ac->M, N = ac->N, G = ac->G;
    int any_a = 0;
    for (size_t m = 0; m < M && !any_a; m++)
        any_a = a->irr[m * G + g];
    if (any_a)
        residual_rows(s, A, B, a, b, ac, g, P);
    /* columns with residual bits, against rows without */
    for (size_t n = 0; n < N; n++)
        if (b->irr[n * G + g])
            for (size_t m = 0; m < M; m++)
                if (!a->irr[m * G + g])
                    add_residual_elem(s, A, B, a, b, ac, g, P, m, n);
}
