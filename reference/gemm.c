/* gemm.c -- the driver of the group GEMM reference, mx_gemm (see
 * mxref/gemm.h; the parts and their files are listed in gemm_internal.h):
 * checks, operand preparation, the choice of 128-bit or GMP accumulation per
 * element, the exact engine, the one final rounding of each exact value,
 * the model chosen by the spec, the bounds.  FP8 operands and unscaled
 * BF16/FP16 ones take the fused kernels of gemm_fused.c instead;
 * big calls are split into column blocks on the worker pool first
 * (gemm_split.c), after the windows, which scan the whole operands, have
 * been chosen by blocks of rows on the pool. */
#include <stdlib.h>
#include "mxref/pool.h"
#include "gemm_internal.h"

/* About this many codes per block of rows of the window scan. */
#define WIDTH_BLOCK ((size_t)1 << 18)

typedef struct {
    const mx_operand *o;
    size_t rows; /* per block */
    int *w;
} width_ctx;

static void width_task(void *v, size_t b)
{
    width_ctx *c = v;
    mx_operand o = *c->o;
    size_t r0 = b * c->rows;
    o.rows = c->o->rows - r0 < c->rows ? c->o->rows - r0 : c->rows;
    if (o.row_idx)
        o.row_idx += r0;
    else
        o.codes = (const uint8_t *)o.codes + r0 * o.ld * (size_t)(o.fmt->bits / 8);
    c->w[b] = mxg_natural_width(&o);
}

/* mxg_natural_width, by blocks of rows on the pool when it has threads:
 * the max of the blocks' widths is the whole operand's. */
static int natural_width(const mx_operand *o)
{
    size_t rows = o->K < WIDTH_BLOCK ? WIDTH_BLOCK / o->K : 1;
    size_t nb = (o->rows + rows - 1) / rows;
    int *w = nb > 1 && mx_pool_threads() > 1 ? malloc(nb * sizeof *w) : NULL;
    if (!w)
        return mxg_natural_width(o);
    width_ctx c = {o, rows, w};
    mx_parallel_for(nb, width_task, &c);
    int m = 0;
    for (size_t b = 0; b < nb; b++)
        m = w[b] > m ? w[b] : m;
    free(w);
    return m;
}

static int clog2(size_t x)
{
    int b = 0;
    while (((size_t)1 << b) < x)
        b++;
    return b;
}

mx_status mx_gemm(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                  mx_gemm_out *out, mx_gemm_stats *stats)
{
    mx_status st = mxg_check(s, A, B, 0);
    if (st != MX_OK)
        return st;
    /* windows fixed on the whole operands: a block of columns run on its
     * own then gives the bits of the whole call (gemm_split.c) */
    int wa, wb;
    mxg_choose_windows(natural_width(A), natural_width(B), &wa, &wb);
    return mxg_gemm_split(s, A, B, out, stats, wa, wb);
}

static mx_status gemm_block_run(const mx_gemm_spec *s, const mx_operand *A,
                                const mx_operand *B, mx_gemm_out *out,
                                mx_gemm_stats *stats, int wa, int wb, size_t *irr_a,
                                int walked);

/* A block model first runs its one walk (blockfma_gemm.c) where it
 * applies: it gives the model outputs, and the bound sums that
 * mxg_acc_block then reads; the kernels below run without the model (and,
 * with a sum provider, give the exact values alone: mxg_device_sums). */
mx_status mxg_gemm_block(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out,
                         mx_gemm_stats *stats, int wa, int wb, size_t *irr_a)
{
    int want_m = out->model_acc || out->model_out;
    int want_b = out->bound || out->bound_acc;
    if (!mxg_walks(s, out))
        return gemm_block_run(s, A, B, out, stats, wa, wb, irr_a, 0);
    size_t MN = A->rows * B->rows;
    float *macc = out->model_acc ? out->model_acc
                                 : (want_m ? malloc(mx_nz(MN) * sizeof *macc) : NULL);
    double *sb = want_b ? malloc(mx_nz(MN) * sizeof *sb) : NULL;
    double *sp = want_b ? malloc(mx_nz(MN) * sizeof *sp) : NULL;
    /* where it can, the walk forms the exact values as well (mxg_xsum,
     * the same bits), so that no second pass over the operands runs: not
     * when a sum provider takes them or sum |ab| is asked for (the fused
     * kernel's dots on magnitudes) */
    int want_x = mxg_xsum_wanted(s, out);
    mxg_xsum *x = NULL;
    double *ex = want_x ? (out->exact ? out->exact : malloc(mx_nz(MN) * sizeof *ex)) : NULL;
    int xdone = 0;
    mx_status st = MX_OK;
    if ((want_m && !macc) || (want_b && (!sb || !sp)))
        st = MX_ENOMEM;
    else if (!mxg_block_walk_x(s, A, B, macc, sb, sp, &x, ex, &xdone, &st))
        st = gemm_block_run(s, A, B, out, stats, wa, wb, irr_a, 0); /* not walked */
    else if (st == MX_OK) {
        if (out->model_out)
            for (size_t i = 0; i < MN; i++)
                out->model_out[i] = mx_bf16_from_float(macc[i]);
        mxg_block_sums bs = {s, A, B, sb, sp};
        mxg_block_sums_set(want_b ? &bs : NULL);
        if (xdone) { /* every output but the bounds is in place */
            if (out->bound || out->bound_acc)
                mxg_xsum_bounds(x, s, A, B, ex, out);
            if (stats) {
                stats->elements = MN;
                stats->slow_elements = 0;
                stats->irregular_groups = 0;
            }
            if (irr_a)
                *irr_a = 0;
        } else {
            mx_gemm_out o = *out;
            o.model_acc = NULL;
            o.model_out = NULL;
            st = gemm_block_run(s, A, B, &o, stats, wa, wb, irr_a, 1);
        }
        mxg_block_sums_set(NULL);
    }
    if (macc != out->model_acc)
        free(macc);
    free(sb);
    free(sp);
    if (ex != out->exact)
        free(ex);
    mxg_xsum_free(x);
    return st;
}

/* The fused kernels, when one takes the call: 1 with its status in *st. */
static int run_fused(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                     mx_gemm_out *out, mx_gemm_stats *stats, int wa, int wb, size_t *irr_a,
                     mx_status *st)
{
    if (mxg_fused_applies(s, A, B)) {
        if (irr_a)
            *irr_a = 0;
        *st = mxg_gemm_fused(s, A, B, out, stats);
        return 1;
    }
    return mxg_gemm_fused16(s, A, B, out, stats, wa, wb, irr_a, st);
}

/* 1 when prepared operands leave the sum provider nothing it declines: no
 * irregular group, no element whose exponent span needs GMP
 * (gemm_engine.c's sum_on_provider; cg: the carries of G groups). */
static int provider_takes(const mxg_prep *a, const mxg_prep *b, size_t M, size_t N, int cg)
{
    if (a->nirr || b->nirr)
        return 0;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++)
            if (a->lo[m] <= a->hi[m] && b->lo[n] <= b->hi[n] &&
                (long)(a->hi[m] - a->lo[m]) + (b->hi[n] - b->lo[n]) + cg > 126)
                return 0;
    return 1;
}

/* walked: the block walk has given the model outputs and bound sums (out
 * holds the rest), so a sum provider may take the exact values
 * (mxg_device_sums); where it would decline (an irregular group, a GMP
 * element) the fused kernels run instead of the engine's BLAS slices. */
static mx_status gemm_block_run(const mx_gemm_spec *s, const mx_operand *A,
                                const mx_operand *B, mx_gemm_out *out,
                                mx_gemm_stats *stats, int wa, int wb, size_t *irr_a,
                                int walked)
{
    mx_status st;
    if (mxg_fused_ok(s, out, walked) && run_fused(s, A, B, out, stats, wa, wb, irr_a, &st))
        return st;
    size_t M = A->rows, N = B->rows, G = mxg_groups(A->K);
    int cg = clog2(G) + 5 + 1;
    /* the sum provider takes the exact values; no sum |ab| under a walked
     * block model */
    int dsum = mxg_device_sums(s, out, walked), nosabs = dsum && !mxg_exact_only(out);
    /* a split's A known to hold a group wider than its window: the
     * provider would decline (provider_takes), so no operands are
     * prepared for it */
    if (dsum && mx_gemm_slice_provider(NULL) == NULL &&
        mxg_fused16_rows_wide(mxg_shared_rows_fused16(s, A, wa)) &&
        run_fused(s, A, B, out, stats, wa, wb, irr_a, &st))
        return st;
    mxg_prep a, b;
    if ((st = mxg_prep_operands_w(s, A, B, wa, wb, &a, &b)) != MX_OK)
        return st;
    if (dsum && mx_gemm_slice_provider(NULL) == NULL && !provider_takes(&a, &b, M, N, cg)) {
        mxg_prep_free(&a);
        mxg_prep_free(&b);
        if (run_fused(s, A, B, out, stats, wa, wb, irr_a, &st))
            return st;
        nosabs = 0; /* the engine, as without a provider */
        if ((st = mxg_prep_operands_w(s, A, B, wa, wb, &a, &b)) != MX_OK)
            return st;
    }
    mxg_accum ac = {M, N, G, NULL, NULL, NULL, NULL, 0, NULL, NULL};
    int want_group = (out->model_acc || out->model_out) &&
                     s->model.kind == MX_ACC_FP32_GROUP;
    double *exact = out->exact ? out->exact
                               : ((out->bound || out->sum_abs || out->bound_acc)
                                      ? malloc(M * N * sizeof *exact) : NULL);
    ac.acc = calloc(M * N, sizeof *ac.acc);
    ac.slow = calloc(M * N, 1);
    ac.big = calloc(M * N, sizeof *ac.big);
    ac.slow_list = malloc(M * N * sizeof *ac.slow_list);
    ac.gacc = want_group ? calloc(M * N, sizeof *ac.gacc) : NULL;
    int want_sabs = (out->bound || out->sum_abs || out->bound_acc) && !nosabs;
    ac.sabs = want_sabs ? calloc(M * N, sizeof *ac.sabs) : NULL;
    if (!ac.acc || !ac.slow || !ac.big || !ac.slow_list || (want_group && !ac.gacc) ||
        (want_sabs && !ac.sabs) ||
        ((out->bound || out->bound_acc) && !exact)) {
        st = MX_ENOMEM;
        goto done;
    }
    /* elements whose exponent span (plus carries of G groups of 32
     * products) cannot fit 127 bits accumulate in GMP */
    size_t nslow = 0;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            if (a.lo[m] > a.hi[m] || b.lo[n] > b.hi[n])
                continue; /* an all-zero side: exact 0 */
            long span = (long)(a.hi[m] - a.lo[m]) + (b.hi[n] - b.lo[n]) + cg;
            if (span > 126) {
                ac.slow[i] = 1;
                mpz_init(ac.big[i]);
                ac.slow_list[nslow++] = i;
            }
        }
    ac.nslow = nslow;
    if ((st = mxg_engine_run(s, A, B, &a, &b, &ac)) != MX_OK)
        goto done;
    if (exact)
        for (size_t m = 0; m < M; m++) {
            double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
            for (size_t n = 0; n < N; n++) {
                size_t i = m * N + n;
                /* an all-zero side has lo > hi (lo may be INT_MAX): no base */
                if (a.lo[m] > a.hi[m] || b.lo[n] > b.hi[n]) {
                    exact[i] = 0.0 * w;
                    continue;
                }
                int base = a.lo[m] + b.lo[n];
                if (ac.slow[i])
                    exact[i] = mxg_round_mpz_f64(ac.big[i], base, w);
                else
                    exact[i] = mxg_round_weighted_f64((__int128)ac.acc[i], base, w);
            }
        }
    if (out->model_acc || out->model_out) {
        float *macc = out->model_acc ? out->model_acc : malloc(M * N * sizeof *macc);
        if (!macc) {
            st = MX_ENOMEM;
            goto done;
        }
        if (want_group) {
            for (size_t m = 0; m < M; m++)
                for (size_t n = 0; n < N; n++)
                    macc[m * N + n] = s->row_weight
                                          ? ac.gacc[m * N + n] * s->row_weight[m]
                                          : ac.gacc[m * N + n];
        } else if (s->model.kind == MX_ACC_BLOCK) {
            st = mx_gemm_model_direct(s, A, B, macc); /* the unit, element by element */
        } else if (s->model.kind == MX_ACC_DEQUANT_FP32) {
            st = mxg_dequant_gemm(s, A, B, macc);
        } else {
            st = mxg_seq_gemm(s, A, B, macc);
        }
        if (out->model_out)
            for (size_t i = 0; i < M * N; i++)
                out->model_out[i] = mx_bf16_from_float(macc[i]);
        if (!out->model_acc)
            free(macc);
        if (st != MX_OK)
            goto done;
    }
    if (out->bound || out->sum_abs || out->bound_acc) {
        if (!exact) { /* sum_abs alone: exact not computed */
            st = MX_EINVAL;
            goto done;
        }
        mxg_bounds(s, A, B, &a, &b, exact, ac.sabs, out->sum_abs, out->bound,
                   out->bound_acc);
    }
    if (stats) {
        stats->elements = M * N;
        stats->slow_elements = nslow;
        stats->irregular_groups = a.nirr + b.nirr;
    }
    if (irr_a)
        *irr_a = a.nirr;
done:
    if (ac.big)
        for (size_t i = 0; i < M * N; i++)
            if (ac.slow && ac.slow[i])
                mpz_clear(ac.big[i]);
    free(ac.acc);
    free(ac.slow);
    free(ac.slow_list);
    free(ac.big);
    free(ac.gacc);
    free(ac.sabs);
    if (exact != out->exact)
        free(exact);
    mxg_prep_free(&a);
    mxg_prep_free(&b);
    return st;
}
