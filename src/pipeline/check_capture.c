/* check_capture.c -- the reference and the verdicts of one capture (see
 * check_capture.h).  Group GEMM captures are judged by bound and
 * bit-exactness to the declared accumulation model, quantization captures
 * by bytes, MoE layer captures stage by stage through the stage table,
 * each stage recomputed from the previous stage's captured output
 * (check_capture_moe.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/blockfma.h"
#include "check_capture.h"
#include "check_capture_internal.h"
#include "stages.h"

typedef mxv_check_result results;

/* Is m a model measured bit for bit on a device (mxref/blockfma.h)? */
static int measured_model(const mx_accum_model *m)
{
    return m->kind == MX_ACC_BLOCK && m->block && m->block->measured;
}

mxv_judge *mxv_check_next_judge(mxv_check_result *r)
{
    return r->n < MXV_CHECK_MAX_TENSORS ? &r->j[r->n++] : NULL;
}

/* ---- group GEMMs ------------------------------------------------------- */

/* The validated tensors of a group GEMM capture. */
typedef struct {
    const mx_format *fe;
    int mx;
    const mxv_st_tensor *ta, *tas, *tb, *tbs, *tw;
    const int32_t *ids, *gids;
    uint64_t E, N, K, k, R;
} gemm_cap;

/* The reference over every expert of the capture under one model: exact,
 * bound and model output per output element (rows of experts that are not
 * in the file stay 0 with bound 0). */
static mxv_st_status gemm_eval(const mxv_capture *c, const gemm_cap *g,
                               const mx_accum_model *model, double *ex, double *bd,
                               uint16_t *mo, float *macc, double *bacc,
                               mxv_st_err *err)
{
    uint64_t R = g->R, N = g->N, K = g->K;
    mxv_st_status st = MXV_ST_OK;
    int32_t *idx = malloc(mx_nz(R) * sizeof *idx);
    float *wrow = malloc(mx_nz(R) * sizeof *wrow);
    size_t *dst = malloc(mx_nz(R) * sizeof *dst);
    if (!idx || !wrow || !dst)
        st = mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory");
    memset(ex, 0, mx_nz(R * N) * sizeof *ex);
    memset(bd, 0, mx_nz(R * N) * sizeof *bd);
    memset(mo, 0, mx_nz(R * N) * sizeof *mo);
    if (macc)
        memset(macc, 0, mx_nz(R * N) * sizeof *macc);
    if (bacc)
        memset(bacc, 0, mx_nz(R * N) * sizeof *bacc);
    for (uint64_t e = 0; e < g->E && st == MXV_ST_OK; e++) {
        int32_t id = g->gids ? g->gids[e] : (int32_t)e;
        size_t M = 0;
        for (uint64_t r = 0; r < R; r++)
            if (g->ids[r] == id) {
                idx[M] = (int32_t)(c->a_per_route ? r : r / g->k);
                wrow[M] = g->tw ? ((const float *)g->tw->data)[r] : 1.0f;
                dst[M++] = r;
            }
        if (!M)
            continue;
        size_t G = K / 32;
        mx_operand A = {g->fe, g->ta->data, M, K, K, g->mx ? g->tas->data : NULL, G, 1, idx};
        const uint8_t *bsc = g->mx ? (const uint8_t *)g->tbs->data + e * N * G : NULL;
        size_t esz = g->fe->bits / 8;
        mx_operand B = {g->fe, (const uint8_t *)g->tb->data + e * N * K * esz, N, K, K,
                        bsc, c->packed ? 1 : G, c->packed ? N : 1, NULL};
        mx_gemm_spec spec = {c->decode, *model, g->tw ? wrow : NULL};
        double *gex = malloc(M * N * sizeof *gex), *gbd = malloc(M * N * sizeof *gbd);
        uint16_t *gmo = malloc(M * N * sizeof *gmo);
        float *gma = macc ? malloc(M * N * sizeof *gma) : NULL;
        double *gba = bacc ? malloc(M * N * sizeof *gba) : NULL;
        mx_gemm_out o = {gex, gma, gmo, gbd, NULL, gba};
        mx_status ms = gex && gbd && gmo && (!macc || gma) && (!bacc || gba)
                           ? mx_gemm(&spec, &A, &B, &o, NULL)
                           : MX_ENOMEM;
        if (ms != MX_OK)
            st = mxv_st_errorf(err, ms == MX_ENOMEM ? MXV_ST_ENOMEM : MXV_ST_EMISMATCH,
                               c->f, "b", "the reference refused expert %d (status %d)",
                               id, (int)ms);
        else
            for (size_t i = 0; i < M; i++) {
                memcpy(ex + dst[i] * N, gex + i * N, N * sizeof *ex);
                memcpy(bd + dst[i] * N, gbd + i * N, N * sizeof *bd);
                memcpy(mo + dst[i] * N, gmo + i * N, N * sizeof *mo);
                if (macc)
                    memcpy(macc + dst[i] * N, gma + i * N, N * sizeof *macc);
                if (bacc)
                    memcpy(bacc + dst[i] * N, gba + i * N, N * sizeof *bacc);
            }
        free(gma);
        free(gba);
        free(gex);
        free(gbd);
        free(gmo);
    }
    free(idx);
    free(wrow);
    free(dst);
    return st;
}

/* When the declared model does not explain the output, which one does?
 * Tries the FP32 models and (for captures small enough: each block model
 * costs about a microsecond per 32-wide group; the message says when they
 * were not tried) every block preset, and keeps the best: one with no
 * element outside its bound before one with some, then the most elements
 * bit-exact, then the fewest outside.  A model is named as the explanation
 * only when the output is bit-exact under it; otherwise the message gives
 * the closest model and its bit-exact share, and never calls a model that
 * merely bounds the output an explanation (a bound is wide enough to hold
 * many wrong kernels).  When every model leaves elements outside, no
 * accumulation order explains the output, and the message says so rather
 * than naming a "better" model. */
static void explain(const mxv_capture *c, const gemm_cap *g, const void *outp,
                    int f32, const mxv_judge *own, results *res)
{
    uint64_t n = g->R * g->N;
    double work = (double)n * (double)(g->K / 32);
    const uint16_t *out = outp;
    const float *outf = outp;
    double *ex = malloc(mx_nz(n) * sizeof *ex), *bd = malloc(mx_nz(n) * sizeof *bd);
    uint16_t *mo = malloc(mx_nz(n) * sizeof *mo);
    float *ma = f32 ? malloc(mx_nz(n) * sizeof *ma) : NULL;
    double *ba = f32 ? malloc(mx_nz(n) * sizeof *ba) : NULL;
    const char *names[64];
    size_t nn = 0;
    names[nn++] = "fp32-group";
    names[nn++] = "fp32-seq";
    names[nn++] = "dequant-fp32";
    static char blocknames[32][48];
    const mx_blockfma_params *p;
    for (size_t i = 0; (p = mx_blockfma_preset_at(i)) && nn < 32 && work <= 3e7; i++) {
        snprintf(blocknames[i], sizeof blocknames[i], "block:%s", p->name);
        names[nn++] = blocknames[i];
    }
    double best_exact = -1;
    size_t best_out = (size_t)-1;
    const char *best = NULL;
    for (size_t i = 0; ex && bd && mo && (!f32 || (ma && ba)) && i < nn; i++) {
        mx_accum_model md;
        mxv_st_err err;
        if (!strcmp(names[i], c->model.name) || mx_accum_parse(names[i], &md) != 0)
            continue;
        if (gemm_eval(c, g, &md, ex, bd, mo, ma, ba, &err) != MXV_ST_OK)
            continue;
        size_t same = 0, outside = 0;
        for (uint64_t j = 0; j < n; j++) {
            if (f32) {
                same += memcmp(&outf[j], &ma[j], 4) == 0;
                outside += !(fabs((double)outf[j] - ex[j]) <= ba[j]);
                continue;
            }
            same += out[j] == mo[j];
            double e = fabs((double)mx_bf16_to_float(out[j]) - ex[j]);
            outside += !(e <= bd[j]);
        }
        double share = n ? (double)same / (double)n : 1;
        int fits = outside == 0, best_fits = best && best_out == 0;
        if (!best || fits > best_fits ||
            (fits == best_fits &&
             (share > best_exact || (share == best_exact && outside < best_out)))) {
            best = names[i];
            best_exact = share;
            best_out = outside;
        }
        /* bit-exact everywhere and nothing outside: no later model can
         * rank above it (that needs more fits, a larger share, or fewer
         * than 0 outside), so the rest are not evaluated */
        if (best_out == 0 && best_exact == 1.0)
            break;
    }
    char skipped[160] = "";
    if (work > 3e7)
        snprintf(skipped, sizeof skipped,
                 " (block models not tried: %.3g groups, above the 3e7 limit of "
                 "check; judge with --model block:NAME to run one)", work);
    double own_share = own->n ? (double)own->bit_exact / (double)own->n : 1;
    if (best && best_out == 0 && best_exact == 1.0)
        snprintf(res->explain, sizeof res->explain,
                 "%s explains it better: 100.00%% bit-exact, 0 outside its bound%s",
                 best, skipped);
    else if (best && (own->outside > 0 || best_exact > own_share))
        snprintf(res->explain, sizeof res->explain,
                 "no accumulation model tried explains it (closest: %s, %.2f%% "
                 "bit-exact, %zu outside its bound)%s",
                 best, 100 * best_exact, best_out, skipped);
    else if (skipped[0])
        snprintf(res->explain, sizeof res->explain, "no FP32 model explains it%s",
                 skipped);
    free(ex);
    free(bd);
    free(mo);
    free(ma);
    free(ba);
}

static mxv_st_status check_group_gemm(const mxv_capture *c, results *res,
                                      mxv_st_err *err)
{
    int mx = c->kind == MXV_CAP_MXFP8_GEMM || c->kind == MXV_CAP_MXFP8_PLAIN;
    /* a plain GEMM (mxfp8_gemm, bf16_gemm): a [M, K], b [N, K], out [M, N];
     * judged as one expert with every row routed to it once */
    int plain = c->kind == MXV_CAP_MXFP8_PLAIN || c->kind == MXV_CAP_BF16_PLAIN;
    const mx_format *fe = mx ? mx_format_get(c->elem) : mx_format_get(MX_BF16);
    unsigned vd = mx ? mxv_capture_fp8_dtypes(c->elem) : MXV_ST_BIT(MXV_ST_BF16);
    const mxv_st_tensor *ta, *tas = NULL, *tb, *tbs = NULL, *tid = NULL, *tw = NULL,
                        *tex = NULL, *tout;
    mxv_st_status st = MXV_ST_OK;
    int32_t *ids = NULL, *gids = NULL;
    double *ex = NULL, *bd = NULL, *ba = NULL;
    uint16_t *mo = NULL;
    float *ma = NULL;
    uint64_t any2[2] = {MXV_ST_ANY_DIM, MXV_ST_ANY_DIM};
    uint64_t any3[3] = {MXV_ST_ANY_DIM, MXV_ST_ANY_DIM, MXV_ST_ANY_DIM};
    uint64_t T, k, R, E, N, K;
    if (plain) {
        if (c->a_per_route || c->mul_weight)
            TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, NULL,
                              "metadata: a plain GEMM has no routes (a_per_route and "
                              "mul_routed_weight must be false)"));
        TRY(mxv_capture_tensor(c, "b", vd, 2, any2, &tb, err));
        E = 1;
        N = tb->shape[0];
        K = tb->shape[1];
        TRY(mxv_capture_tensor(c, "a", vd, 2, any2, &ta, err));
        T = ta->shape[0];
        k = 1;
    } else {
        TRY(mxv_capture_tensor(c, "topk_ids", MXV_CAP_IDS, 2, any2, &tid, err));
        T = tid->shape[0];
        k = tid->shape[1];
        TRY(mxv_capture_tensor(c, "b", vd, 3, any3, &tb, err));
        E = tb->shape[0];
        N = tb->shape[1];
        K = tb->shape[2];
    }
    R = T * k;
    if (mx && K % 32)
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "b",
                          "shape: K = %llu is not a multiple of 32",
                          (unsigned long long)K));
    uint64_t arows = c->a_per_route ? R : T, sa_shape[2] = {arows, K};
    TRY(mxv_capture_tensor(c, "a", vd, 2, sa_shape, &ta, err));
    /* the reference takes finite operands only: a NaN or inf is refused
     * here, naming its tensor, whatever "finite" says */
    TRY(mxv_capture_require_finite(c, ta, fe, err));
    TRY(mxv_capture_require_finite(c, tb, fe, err));
    if (mx) {
        uint64_t sas[2] = {arows, K / 32};
        uint64_t sbs[3] = {E, c->packed ? K / 32 : N, c->packed ? N : K / 32};
        TRY(mxv_capture_tensor(c, "a_scale", MXV_CAP_E8M0, 2, sas, &tas, err));
        TRY(mxv_capture_tensor(c, "b_scale", MXV_CAP_E8M0, plain ? 2 : 3,
                               plain ? sbs + 1 : sbs, &tbs, err));
        TRY(mxv_capture_check_scales(c, tas, err));
        TRY(mxv_capture_check_scales(c, tbs, err));
    }
    uint64_t ws[2] = {T, k}, es[1] = {E}, os[2] = {R, N};
    if (c->mul_weight) {
        TRY(mxv_capture_tensor(c, "topk_weights", MXV_ST_BIT(MXV_ST_F32), 2, ws, &tw, err));
        TRY(mxv_capture_check_f32(c, tw, err));
    }
    if (!plain)
        TRY(mxv_capture_optional(c, "expert_ids", MXV_CAP_IDS, 1, es, &tex, err));
    /* out: BF16, or FP32 (the accumulator before any BF16 rounding) */
    TRY(mxv_capture_tensor(c, "out", MXV_ST_BIT(MXV_ST_BF16) | MXV_ST_BIT(MXV_ST_F32), 2,
                           os, &tout, err));
    int f32 = tout->dtype == MXV_ST_F32;
    /* the experts in the file and the routed ids */
    size_t n_total = E;
    if (tex) {
        TRY(mxv_capture_ints(c, tex, &gids, err));
        for (uint64_t e = 0; e < E; e++) {
            if (gids[e] < 0)
                TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "expert_ids",
                                  "element [%llu] = %d is negative",
                                  (unsigned long long)e, gids[e]));
            for (uint64_t q = 0; q < e; q++)
                if (gids[q] == gids[e])
                    TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "expert_ids",
                                      "expert %d is listed twice", gids[e]));
            if ((size_t)gids[e] + 1 > n_total)
                n_total = (size_t)gids[e] + 1;
        }
    }
    if (c->experts && c->experts < n_total)
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, NULL,
                          "metadata \"experts\" is %zu, fewer than the %zu expert "
                          "ids of the file", c->experts, n_total));
    if (c->experts)
        n_total = c->experts;
    if (plain) {
        ids = calloc(mx_nz(R), sizeof *ids); /* every row to expert 0 */
        if (!ids)
            TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    } else {
        TRY(mxv_capture_topk(c, tid, n_total, &ids, err));
    }

    ex = calloc(mx_nz(R * N), sizeof *ex);
    bd = calloc(mx_nz(R * N), sizeof *bd);
    mo = calloc(mx_nz(R * N), sizeof *mo);
    ma = f32 ? calloc(mx_nz(R * N), sizeof *ma) : NULL;
    ba = f32 ? calloc(mx_nz(R * N), sizeof *ba) : NULL;
    if (!ex || !bd || !mo || (f32 && (!ma || !ba)))
        TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    gemm_cap gc = {fe, mx, ta, tas, tb, tbs, tw, ids, gids, E, N, K, k, R};
    TRY(gemm_eval(c, &gc, &c->model, ex, bd, mo, ma, ba, err));
    /* rows of experts not in the file must be zero: exact 0, bound 0 */
    mxv_stage_src src = {0};
    src.given = mo;
    src.given_exact = ex;
    src.given_bound = bd;
    src.given_n = R * N;
    src.given_cols = N;
    mxv_judge *j = mxv_check_next_judge(res);
    if (f32) {
        /* the FP32 accumulator (no BF16 cast): its own model value and
         * bound; a non-finite FP32 output is judged (it fails unless the
         * model is that special value), never refused as bad input */
        mxv_judge_f32_model(j, "out", tout->data, ma, ex, ba, R * N, N);
    } else if (mxv_stage_judge(mxv_stage_get(MXV_STAGE_GEMM), &src, tout->data, NULL, j) != 0) {
        TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    }
    res->not_device = mxv_judge_not_device(j, measured_model(&c->model), res->bound_only);
    if (!mxv_judge_pass(j) || j->bit_exact < j->n)
        explain(c, &gc, tout->data, f32, j, res);
done:
    free(ids);
    free(gids);
    free(ex);
    free(bd);
    free(mo);
    free(ma);
    free(ba);
    return st;
}

/* ---- quantization -------------------------------------------------------- */

static mxv_st_status check_mx_quant(const mxv_capture *c, results *res,
                                    mxv_st_err *err)
{
    const mxv_st_tensor *tx, *tq, *ts;
    mxv_st_status st = MXV_ST_OK;
    uint64_t any2[2] = {MXV_ST_ANY_DIM, MXV_ST_ANY_DIM};
    uint8_t *q = NULL, *s = NULL;
    TRY(mxv_capture_tensor(c, "x", MXV_ST_BIT(MXV_ST_BF16) | MXV_ST_BIT(MXV_ST_F32),
                           2, any2, &tx, err));
    uint64_t rows = tx->shape[0], K = tx->shape[1];
    if (K % 32)
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "x",
                          "shape: K = %llu is not a multiple of 32",
                          (unsigned long long)K));
    uint64_t qs[2] = {rows, K}, ss[2] = {rows, K / 32};
    TRY(mxv_capture_tensor(c, "q", mxv_capture_fp8_dtypes(c->elem), 2, qs, &tq, err));
    TRY(mxv_capture_tensor(c, "q_scale", MXV_CAP_E8M0, 2, ss, &ts, err));
    if (tx->dtype == MXV_ST_F32)
        TRY(mxv_capture_check_f32(c, tx, err));
    else
        TRY(mxv_capture_check_codes(c, tx, mx_format_get(MX_BF16), err));
    mx_quant_params p = c->rule == MX_SCALE_OCP ? mx_quant_ocp(c->elem)
                        : c->rule == MX_SCALE_RCEIL ? mx_quant_rceil(c->elem, c->rceil_max)
                                                    : mx_quant_production(c->elem);
    q = malloc(mx_nz(rows * K));
    s = malloc(mx_nz(rows * K / 32));
    if (!q || !s)
        TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    mx_status ms = tx->dtype == MXV_ST_F32
                       ? mx_quantize_f32(&p, tx->data, rows, K, K, q, s, NULL)
                       : mx_quantize_bf16(&p, tx->data, rows, K, K, q, s, NULL);
    if (ms != MX_OK)
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "x",
                          "the reference quantizer refused it (status %d)", (int)ms));
    mxv_stage_src src = {0};
    src.given = s;
    src.given_n = rows * K / 32;
    src.given_cols = K / 32;
    mxv_stage_judge(mxv_stage_get(MXV_STAGE_QUANT_SCALE), &src, ts->data, NULL,
                    mxv_check_next_judge(res));
    src.given = q;
    src.given_n = rows * K;
    src.given_cols = K;
    mxv_stage_judge(mxv_stage_get(MXV_STAGE_QUANT), &src, tq->data, NULL, mxv_check_next_judge(res));
done:
    free(q);
    free(s);
    return st;
}

/* ---- one capture ------------------------------------------------------------ */

mxv_st_status mxv_check_capture(const mxv_capture *c, mxv_check_result *res,
                                mxv_st_err *err)
{
    return mxv_check_capture_hooked(c, res, NULL, NULL, err);
}

mxv_st_status mxv_check_capture_hooked(const mxv_capture *c, mxv_check_result *res,
                                       mxv_check_stage_hook hook, void *hook_ctx,
                                       mxv_st_err *err)
{
    int bound_only = res->bound_only;
    memset(res, 0, sizeof *res);
    res->bound_only = bound_only;
    switch (c->kind) {
    case MXV_CAP_MXFP8_GEMM:
    case MXV_CAP_BF16_GEMM:
    case MXV_CAP_MXFP8_PLAIN:
    case MXV_CAP_BF16_PLAIN:
        return check_group_gemm(c, res, err);
    case MXV_CAP_MX_QUANT:
        return check_mx_quant(c, res, err);
    case MXV_CAP_MOE_LAYER:
        return mxv_check_moe(c, res, hook, hook_ctx, err);
    }
    return mxv_st_errorf(err, MXV_ST_EINVAL, c->f, NULL, "unknown capture kind");
}
