/* gemm_engine.c -- the exact engine of the group GEMM (see mxref/gemm.h,
 * docs/bounds.md).
 *
 * Exactness argument.  Operand preparation (gemm_prep.c) turns every
 * (row, 32-group) into exact integers "ints" times 2^u, small enough that
 * the 32-product dot of two groups is a sum of integers whose every partial
 * sum stays below 2^53: one BLAS dgemm per 32-wide K slice returns exact
 * group partials P.  An element's exact sum is
 *     S = sum_g P_g * 2^(uA_g + uB_g + sA_g + sB_g)  (+ residual terms)
 * and is accumulated without rounding in a signed 128-bit fixed-point
 * integer whose unit 2^base is the row minimum of (u + s) on each side; an
 * element whose exponent range cannot fit 127 bits ("slow", chosen by the
 * driver) is accumulated in GMP instead.  Bits of irregular groups below
 * the BLAS window are added by gemm_residual.c.  The single rounding
 * happens at the end (round_int.c).  The same slices feed the sum |a b|
 * statistic of the bounds and the fp32-group model (model_fp32_group.c).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <gsl/gsl_cblas.h>
#include "gemm_internal.h"

/* The slice provider (mxref/gemm.h): set before the work starts. */
static mx_slice_provider provider;
static void *provider_ctx;
static atomic_ulong n_device, n_fallback;

void mx_gemm_set_slice_provider(mx_slice_provider fn, void *ctx)
{
    provider = fn;
    provider_ctx = ctx;
}

mx_slice_provider mx_gemm_slice_provider(void **ctx)
{
    if (ctx)
        *ctx = provider_ctx;
    return provider;
}

static mx_sum_provider sum_provider;
static void *sum_ctx;
static atomic_ulong n_sum;

void mx_gemm_set_sum_provider(mx_sum_provider fn, void *ctx)
{
    sum_provider = fn;
    sum_ctx = ctx;
}

mx_sum_provider mx_gemm_sum_provider(void **ctx)
{
    if (ctx)
        *ctx = sum_ctx;
    return sum_provider;
}

unsigned long mx_gemm_sum_count(void) { return atomic_load(&n_sum); }

/* The whole exact sum by the sum provider: only for calls whose every
 * effect of the main loop is the 128-bit sum (no model, no bound sums, no
 * GMP element, no residual terms).  1 when it took the call. */
static int sum_on_provider(const mxg_prep *a, const mxg_prep *b, mxg_accum *ac)
{
    size_t M = ac->M, N = ac->N, G = ac->G;
    if (!sum_provider || ac->gacc || ac->sabs || ac->nslow || a->nirr || b->nirr ||
        M * N == 0)
        return 0;
    int *sha = malloc(M * G * sizeof *sha), *shb = malloc(N * G * sizeof *shb);
    int ok = sha && shb;
    for (size_t m = 0; ok && m < M; m++)
        for (size_t g = 0; g < G; g++) {
            int sx = a->sx[m * G + g];
            sha[m * G + g] = sx == MXG_ZERO_SCALE ? -1 : a->u[m * G + g] + sx - a->lo[m];
        }
    for (size_t n = 0; ok && n < N; n++)
        for (size_t g = 0; g < G; g++) {
            int sx = b->sx[n * G + g];
            shb[n * G + g] = sx == MXG_ZERO_SCALE ? 0 : b->u[n * G + g] + sx - b->lo[n];
        }
    ok = ok && sum_provider(sum_ctx, M, N, a->K, a->ints, b->ints, sha, shb, ac->acc) == 0;
    free(sha);
    free(shb);
    if (ok)
        atomic_fetch_add(&n_sum, 1);
    return ok;
}

void mx_gemm_slice_counts(unsigned long *device, unsigned long *fallback)
{
    if (device)
        *device = atomic_load(&n_device);
    if (fallback)
        *fallback = atomic_load(&n_fallback);
}

/* The partials of slices c0 .. c0 + cn - 1 into P (cn blocks of M x N):
 * from the provider, or from BLAS one slice at a time when there is none
 * or it declines (then *use_dev is cleared for the rest of the call). */
static void slices(size_t M, size_t N, size_t K, const double *x,
                   const double *y, size_t c0, size_t cn, double *P,
                   int *use_dev)
{
    if (*use_dev) {
        if (provider(provider_ctx, M, N, K, x, y, c0, cn, P) == 0) {
            atomic_fetch_add(&n_device, 1);
            return;
        }
        atomic_fetch_add(&n_fallback, 1);
        *use_dev = 0;
    }
    for (size_t j = 0; j < cn; j++) {
        size_t k0 = (c0 + j) * MX_BLOCK, len = mxg_group_len(K, c0 + j);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N,
                    (int)len, 1.0, x + k0, (int)K, y + k0, (int)K, 0.0,
                    P + j * M * N, (int)N);
    }
}

/* Adds slice g of the wide elements (ac->slow_list) in GMP. */
static void add_slow(const mxg_prep *a, const mxg_prep *b, mxg_accum *ac,
                     size_t g, const double *P)
{
    size_t N = ac->N, G = ac->G;
    for (size_t j = 0; j < ac->nslow; j++) {
        size_t i = ac->slow_list[j], m = i / N, n = i % N;
        int sxa = a->sx[m * G + g], sxb = b->sx[n * G + g];
        if (sxa == MXG_ZERO_SCALE || sxb == MXG_ZERO_SCALE || P[i] == 0)
            continue;
        mpz_t t;
        mpz_init_set_d(t, P[i]);
        mpz_mul_2exp(t, t, (mp_bitcnt_t)(a->u[m * G + g] + sxa - a->lo[m] +
                                          b->u[n * G + g] + sxb - b->lo[n]));
        mpz_add(ac->big[i], ac->big[i], t);
        mpz_clear(t);
    }
}

mx_status mxg_engine_run(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, const mxg_prep *a,
                         const mxg_prep *b, mxg_accum *ac)
{
    size_t M = ac->M, N = ac->N, G = ac->G, K = a->K;
    if (sum_on_provider(a, b, ac))
        return MX_OK;
    /* with a provider, slices come in chunks of cn (about 64 MiB of
     * partials); on the CPU, one at a time */
    int use_dev = provider != NULL && M * N > 0;
    size_t cn = 1;
    if (use_dev) {
        size_t per = M * N * sizeof(double);
        cn = per ? ((size_t)64 << 20) / per : G;
        cn = cn < 1 ? 1 : cn > G ? G : cn;
    }
    size_t c0 = 0, cend = 0; /* the chunk held: slices c0 .. cend - 1 */
    double *Pbuf = malloc(cn * M * N * sizeof *Pbuf), *pwB = malloc(N * sizeof *pwB);
    double *Qbuf = ac->sabs ? malloc(cn * M * N * sizeof *Qbuf) : NULL;
    double *P = Pbuf, *Q = Qbuf;
    double *fB = malloc(N * sizeof *fB);
    int *dB = malloc(N * sizeof *dB);
    float *scB = malloc(N * sizeof *scB);
    if (!Pbuf || !dB || !scB || !pwB || !fB || (ac->sabs && !Qbuf)) {
        free(Pbuf);
        free(dB);
        free(scB);
        free(pwB);
        free(Qbuf);
        free(fB);
        return MX_ENOMEM;
    }
    int scaled = A->scales != NULL;
    for (size_t g = 0; g < G; g++) {
        if (g >= cend) { /* the next chunk of slices */
            c0 = g;
            cend = g + cn > G ? G : g + cn;
            int dev_q = use_dev;
            slices(M, N, K, a->ints, b->ints, c0, cend - c0, Pbuf, &use_dev);
            if (ac->sabs) {
                dev_q = dev_q && use_dev;
                slices(M, N, K, a->absints, b->absints, c0, cend - c0, Qbuf,
                       &dev_q);
            }
        }
        P = Pbuf + (g - c0) * M * N;
        if (ac->sabs)
            Q = Qbuf + (g - c0) * M * N;
        /* Columns that contribute nothing in this group (zero scale: their
         * ints are 0, so P is 0) get shift 0. */
        int b_irr = 0;
        for (size_t n = 0; n < N; n++) {
            int sx = b->sx[n * G + g];
            b_irr |= b->irr[n * G + g];
            /* all-zero rows (lo > hi: the INT_MAX marker) have P = 0 */
            dB[n] = sx == MXG_ZERO_SCALE || b->lo[n] > b->hi[n]
                        ? 0 : b->u[n * G + g] + sx - b->lo[n];
            scB[n] = scaled ? mxg_scale_f32(B, s->decode, n, g) : 1.0f;
            pwB[n] = mxg_pow2(b->u[n * G + g]);
            fB[n] = sx == MXG_ZERO_SCALE ? 0.0 : mxg_pow2(b->u[n * G + g] + sx);
        }
        /* sum |a b| scale, for the bounds: exact integer slices of |ints|,
         * accumulated in a fixed group order, so deterministic everywhere */
        if (ac->sabs) {
            for (size_t m = 0; m < M; m++) {
                int sxa = a->sx[m * G + g];
                if (sxa == MXG_ZERO_SCALE)
                    continue;
                double fa = mxg_pow2(a->u[m * G + g] + sxa);
                double *sm = ac->sabs + m * N;
                const double *qm = Q + m * N;
                for (size_t n = 0; n < N; n++)
                    sm[n] += qm[n] * fa * fB[n];
            }
        }
        for (size_t m = 0; m < M; m++) {
            int sxa = a->sx[m * G + g];
            const double *Pm = P + m * N;
            if (sxa != MXG_ZERO_SCALE && a->lo[m] <= a->hi[m]) {
                int dA = a->u[m * G + g] + sxa - a->lo[m];
                unsigned __int128 *accm = ac->acc + m * N;
                const unsigned char *slm = ac->slow + m * N;
                /* exact: P is an integer below 2^53 and the shifted value
                 * fits (span test); slow elements are done in GMP below,
                 * and a zero P adds nothing (its shift may be out of
                 * range: an all-zero column, or a group below the row's
                 * lowest bit) */
                for (size_t n = 0; n < N; n++)
                    if (Pm[n] != 0 && !slm[n])
                        accm[n] += (unsigned __int128)(__int128)(int64_t)Pm[n]
                                   << (dA + dB[n]);
            }
            /* the fp32-group model on the same partials; elements with
             * residual terms get theirs in the residual path */
            if (!ac->gacc || a->irr[m * G + g])
                continue;
            float scA = scaled ? mxg_scale_f32(A, s->decode, m, g) : 1.0f;
            mxg_group_row(ac->gacc + m * N, Pm, mxg_pow2(a->u[m * G + g]), pwB,
                          scA, scB, scaled, b_irr, b->irr + g, G, N);
        }
        add_slow(a, b, ac, g, P);
        if (a->nirr || b->nirr)
            mxg_residual_add(s, A, B, a, b, ac, g, P);
    }
    free(Pbuf);
    free(dB);
    free(scB);
    free(pwB);
    free(Qbuf);
    free(fB);
    return MX_OK;
}
