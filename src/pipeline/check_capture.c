/* check_capture.c -- the reference and the verdicts of one capture (see
 * check_capture.h).  Group GEMM captures are judged by bound and
 * bit-exactness to the declared accumulation model, quantization captures
 * by bytes, MoE layer captures stage by stage through the stage table,
 * each stage recomputed from the previous stage's captured output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/blockfma.h"
#include "check_capture.h"
#include "stages.h"

typedef mxv_check_result results;

/* Is m a model measured bit for bit on a device (mxref/blockfma.h)? */
static int measured_model(const mx_accum_model *m)
{
    return m->kind == MX_ACC_BLOCK && m->block && m->block->measured;
}

static mxv_judge *next_judge(results *r)
{
    return r->n < MXV_CHECK_MAX_TENSORS ? &r->j[r->n++] : NULL;
}

#define TRY(x)                                                                 \
    do {                                                                       \
        if ((st = (x)) != MXV_ST_OK)                                           \
            goto done;                                                         \
    } while (0)

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
    mxv_judge *j = next_judge(res);
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
                    next_judge(res));
    src.given = q;
    src.given_n = rows * K;
    src.given_cols = K;
    mxv_stage_judge(mxv_stage_get(MXV_STAGE_QUANT), &src, tq->data, NULL, next_judge(res));
done:
    free(q);
    free(s);
    return st;
}

/* ---- MoE layer ------------------------------------------------------------- */

/* The held tensor of that name (held entries may be NULL), or NULL. */
static const mxv_st_tensor *held_tensor(const mxv_st_tensor *const *held, size_t n,
                                        const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (held[i] && !strcmp(held[i]->name, name))
            return held[i];
    return NULL;
}

static mxv_st_status check_moe(const mxv_capture *c, results *res,
                               mxv_check_stage_hook hook, void *hook_ctx, mxv_st_err *err)
{
    const mx_moe_shape *s = &c->shape;
    uint64_t H = s->H, I = s->inter, Is = s->inter_shared, E = s->E;
    mxv_st_status st = MXV_ST_OK;
    const mxv_st_tensor *tx, *tr, *tb, *tp, *t13, *t13s, *t2, *t2s, *ts13, *ts13s,
        *ts2, *ts2s, *tout;
    uint64_t any1[1] = {MXV_ST_ANY_DIM};
    int32_t *present = NULL, *given_ids = NULL;
    const uint8_t **w13 = NULL, **w13s = NULL, **w2 = NULL, **w2s = NULL;
    mx_moe_result r;
    int have_r = 0;
    unsigned fn = mxv_capture_fp8_dtypes(MX_E4M3FN);
    memset(&r, 0, sizeof r);

    uint64_t xs[2] = {MXV_ST_ANY_DIM, H};
    TRY(mxv_capture_tensor(c, "x", MXV_ST_BIT(MXV_ST_BF16), 2, xs, &tx, err));
    uint64_t T = tx->shape[0], k = (uint64_t)s->topk, Tk = T * k;
    TRY(mxv_capture_check_codes(c, tx, mx_format_get(MX_BF16), err));
    uint64_t rs[2] = {E, H}, bs[1] = {E};
    TRY(mxv_capture_tensor(c, "router_weight", MXV_ST_BIT(MXV_ST_F32), 2, rs, &tr, err));
    TRY(mxv_capture_tensor(c, "router_bias", MXV_ST_BIT(MXV_ST_F32), 1, bs, &tb, err));
    TRY(mxv_capture_check_f32(c, tr, err));
    TRY(mxv_capture_check_f32(c, tb, err));
    TRY(mxv_capture_tensor(c, "experts_present", MXV_CAP_IDS, 1, any1, &tp, err));
    uint64_t n = tp->shape[0];
    TRY(mxv_capture_ints(c, tp, &present, err));
    uint64_t s13[3] = {n, 2 * I, H}, s13s[3] = {n, 2 * I, H / 32};
    uint64_t s2[3] = {n, H, I}, s2s[3] = {n, H, I / 32};
    TRY(mxv_capture_tensor(c, "w13", fn, 3, s13, &t13, err));
    TRY(mxv_capture_tensor(c, "w13_scale", MXV_CAP_E8M0, 3, s13s, &t13s, err));
    TRY(mxv_capture_tensor(c, "w2", fn, 3, s2, &t2, err));
    TRY(mxv_capture_tensor(c, "w2_scale", MXV_CAP_E8M0, 3, s2s, &t2s, err));
    uint64_t ss13[2] = {2 * Is, H}, ss13s[2] = {2 * Is, H / 32};
    uint64_t ss2[2] = {H, Is}, ss2s[2] = {H, Is / 32};
    TRY(mxv_capture_tensor(c, "ws13", fn, 2, ss13, &ts13, err));
    TRY(mxv_capture_tensor(c, "ws13_scale", MXV_CAP_E8M0, 2, ss13s, &ts13s, err));
    TRY(mxv_capture_tensor(c, "ws2", fn, 2, ss2, &ts2, err));
    TRY(mxv_capture_tensor(c, "ws2_scale", MXV_CAP_E8M0, 2, ss2s, &ts2s, err));
    const mxv_st_tensor *chk[] = {t13, t2, ts13, ts2};
    for (int i = 0; i < 4; i++)
        TRY(mxv_capture_check_codes(c, chk[i], mx_format_get(MX_E4M3FN), err));
    const mxv_st_tensor *chs[] = {t13s, t2s, ts13s, ts2s};
    for (int i = 0; i < 4; i++)
        for (uint64_t j = 0; j < chs[i]->numel; j++)
            if (((const uint8_t *)chs[i]->data)[j] >= 254)
                TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, chs[i]->name,
                                  "scale byte %llu is %u: the FN -> FNUZ load refuses "
                                  "bytes >= 254",
                                  (unsigned long long)j,
                                  ((const uint8_t *)chs[i]->data)[j]));
    uint64_t os[2] = {T, H};
    TRY(mxv_capture_tensor(c, "out", MXV_ST_BIT(MXV_ST_BF16), 2, os, &tout, err));

    size_t EL = s->E_local;
    w13 = calloc(EL, sizeof *w13);
    w13s = calloc(EL, sizeof *w13s);
    w2 = calloc(EL, sizeof *w2);
    w2s = calloc(EL, sizeof *w2s);
    if (!w13 || !w13s || !w2 || !w2s)
        TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    for (uint64_t i = 0; i < n; i++) {
        int32_t id = present[i];
        if (id < (int32_t)s->expert0 || (size_t)id >= s->expert0 + EL)
            TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "experts_present",
                              "element [%llu] = %d is not a local expert (%zu..%zu)",
                              (unsigned long long)i, id, s->expert0,
                              s->expert0 + EL - 1));
        size_t le = (size_t)id - s->expert0;
        if (w13[le])
            TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "experts_present",
                              "expert %d is listed twice", id));
        w13[le] = (const uint8_t *)t13->data + i * 2 * I * H;
        w13s[le] = (const uint8_t *)t13s->data + i * 2 * I * H / 32;
        w2[le] = (const uint8_t *)t2->data + i * H * I;
        w2s[le] = (const uint8_t *)t2s->data + i * H * I / 32;
    }
    mx_moe_weights w = {tr->data, tb->data, w13, w13s, w2, w2s, ts13->data,
                        ts13s->data, ts2->data, ts2s->data};

    /* the captured intermediates */
    mx_moe_given gv;
    memset(&gv, 0, sizeof gv);
    mx_moe_policy pol = mx_moe_dispatch(s, c->policy, T);
    int w8a8 = pol == MX_POLICY_W8A8;
    const mxv_st_tensor *tid, *tw, *txq, *txqs, *tg1, *taq, *taqs, *ta16, *ty,
        *trt, *tsh;
    uint64_t sk[2] = {T, k}, sxq[2] = {T, H}, sxqs[2] = {T, H / 32};
    uint64_t sg1[2] = {Tk, 2 * I}, saq[2] = {Tk, I}, saqs[2] = {Tk, I / 32};
    uint64_t sy[2] = {Tk, H}, sth[2] = {T, H};
    unsigned uz = mxv_capture_fp8_dtypes(MX_E4M3FNUZ), b16 = MXV_ST_BIT(MXV_ST_BF16);
    TRY(mxv_capture_optional(c, "topk_ids", MXV_CAP_IDS, 2, sk, &tid, err));
    TRY(mxv_capture_optional(c, "topk_weights", MXV_ST_BIT(MXV_ST_F32), 2, sk, &tw, err));
    TRY(mxv_capture_optional(c, "xq", uz, 2, sxq, &txq, err));
    TRY(mxv_capture_optional(c, "xq_scale", MXV_CAP_E8M0, 2, sxqs, &txqs, err));
    TRY(mxv_capture_optional(c, "g1", b16, 2, sg1, &tg1, err));
    TRY(mxv_capture_optional(c, "actq", uz, 2, saq, &taq, err));
    TRY(mxv_capture_optional(c, "actq_scale", MXV_CAP_E8M0, 2, saqs, &taqs, err));
    TRY(mxv_capture_optional(c, "act", b16, 2, saq, &ta16, err));
    TRY(mxv_capture_optional(c, "y", b16, 2, sy, &ty, err));
    TRY(mxv_capture_optional(c, "routed", b16, 2, sth, &trt, err));
    TRY(mxv_capture_optional(c, "shared_out", b16, 2, sth, &tsh, err));
    if (tid) {
        TRY(mxv_capture_topk(c, tid, E, &given_ids, err));
        gv.topk_ids = given_ids;
    }
    if (tw) {
        TRY(mxv_capture_check_f32(c, tw, err));
        gv.topk_weights = tw->data;
    }
    if ((txq == NULL) != (txqs == NULL) || (taq == NULL) != (taqs == NULL))
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, txq && !txqs ? "xq_scale" : "actq_scale",
                          "is missing while its values are present"));
    if (txqs)
        TRY(mxv_capture_check_scales(c, txqs, err));
    if (taqs)
        TRY(mxv_capture_check_scales(c, taqs, err));
    if (w8a8) {
        gv.xq = txq ? txq->data : NULL;
        gv.xq_s = txqs ? txqs->data : NULL;
        gv.actq = taq ? taq->data : NULL;
        gv.actq_s = taqs ? taqs->data : NULL;
    } else {
        gv.act16 = ta16 ? ta16->data : NULL;
    }
    gv.g1 = tg1 ? tg1->data : NULL;
    gv.y = ty ? ty->data : NULL;
    gv.routed = trt ? trt->data : NULL;
    gv.shared = tsh ? tsh->data : NULL;

    mx_moe_config cfg = mx_moe_config_default(s, c->policy);
    cfg.model = c->model;
    long bad = -1;
    mx_status ms = mx_moe_run(&cfg, &w, tx->data, T, &gv, &r, &bad);
    if (ms == MX_EINVAL && bad >= 0)
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "experts_present",
                          "expert %ld is routed to but its weights are not in the "
                          "file", bad));
    if (ms != MX_OK)
        TRY(mxv_st_errorf(err, ms == MX_ENOMEM ? MXV_ST_ENOMEM : MXV_ST_EMISMATCH,
                          c->f, NULL, "the layer reference refused the inputs "
                          "(status %d)", (int)ms));
    have_r = 1;

    /* routing: the same expert set per token, unless ambiguous */
    if (tid) {
        res->has_route = 1;
        for (uint64_t t = 0; t < T; t++) {
            int same = 1;
            for (uint64_t j = 0; j < k; j++) {
                int found = 0;
                for (uint64_t q = 0; q < k; q++)
                    found |= given_ids[t * k + j] == r.route.ids[t * k + q];
                same &= found;
            }
            if (!same && r.route.ambiguous[t])
                res->route_ambiguous++;
            else if (!same)
                res->route_mismatch++;
        }
    }
    /* every stage of the table that the capture holds, in pipeline order */
    {
        const mxv_st_tensor *held[] = {txqs, txq, tg1, taqs, taq, ta16, ty, trt, tsh, tout};
        size_t nheld = sizeof held / sizeof held[0], nst;
        const mxv_stage *tab = mxv_stage_table(&nst);
        mxv_stage_src src = {0};
        src.ref = &r;
        src.shape = s;
        src.T = T;
        src.k = k;
        src.H = H;
        src.I = I;
        for (size_t i = 0; i < nst; i++) {
            const mxv_stage *sg = &tab[i];
            if (!(sg->captures & (1u << MXV_CAP_MOE_LAYER)) ||
                !(sg->policies & (w8a8 ? MXV_POL_W8A8 : MXV_POL_BF16)))
                continue;
            const mxv_st_tensor *t = held_tensor(held, nheld, sg->tensor);
            if (!t)
                continue;
            const mxv_st_tensor *ts =
                sg->scale_of >= 0 ? held_tensor(held, nheld, tab[sg->scale_of].tensor) : NULL;
            src.out_scale = ts ? ts->data : NULL;
            src.inputs_given = sg->inputs[0] && held_tensor(held, nheld, sg->inputs[0]) &&
                               held_tensor(held, nheld, sg->inputs[1]);
            mxv_judge *j = next_judge(res);
            if (!j || mxv_stage_judge(sg, &src, t->data,
                                      sg->label ? sg->label : sg->tensor, j) != 0)
                TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
            if (hook)
                hook(hook_ctx, sg, &src, t->data, j, gv.topk_ids ? gv.topk_ids : r.route.ids);
        }
    }
    /* end to end: the final output against the reference chain */
    {
        double d2 = 0, r2 = 0, mu = 0;
        for (uint64_t i = 0; i < T * H; i++) {
            double o = mx_bf16_to_float(((const uint16_t *)tout->data)[i]);
            double e = r.out_e2e[i], d = o - e;
            d2 += d * d;
            r2 += e * e;
            int ex;
            frexp(fabs(e) > 0x1p-126 ? e : 0x1p-126, &ex);
            double ulps = fabs(d) / ldexp(1.0, ex - 8);
            mu = ulps > mu ? ulps : mu;
        }
        res->has_e2e = 1;
        res->e2e_rel_l2 = sqrt(d2) / (sqrt(r2) + 1e-8);
        res->e2e_max_ulp = mu;
    }
done:
    if (have_r)
        mx_moe_result_free(&r);
    free(present);
    free(given_ids);
    free(w13);
    free(w13s);
    free(w2);
    free(w2s);
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
        return check_moe(c, res, hook, hook_ctx, err);
    }
    return mxv_st_errorf(err, MXV_ST_EINVAL, c->f, NULL, "unknown capture kind");
}
