/* cmd_check.c -- `mxverify check FILE...`: recompute the exact reference for
 * each capture and judge every element of the kernel's outputs.
 *
 * Group GEMM captures are judged by bound (and bit-exactness to the
 * declared accumulation model); quantization captures by bytes; MoE layer
 * captures stage by stage, each stage recomputed from the previous stage's
 * captured output, plus the end-to-end comparison of the final output with
 * the reference chain.  Exit 0 when everything passes, 1 when an element
 * fails, 3 when an input is bad (one line naming file, tensor and field).
 */
#include <math.h>
#include "mxref/blockfma.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "capture.h"
#include "cli.h"
#include "commands.h"
#include "judge.h"
#include "lib/provenance.h"

#define MAXJ 16

/* Allocation size for n items: malloc(0) may return NULL. */
static size_t nz(size_t n) { return n ? n : 1; }

typedef struct {
    mxv_judge j[MAXJ];
    char *labels[MAXJ];
    void *keep[64];   /* buffers the judges point into (names) */
    size_t n, nkeep;
    double e2e_rel_l2, e2e_max_ulp;
    int has_e2e;
    size_t route_mismatch, route_ambiguous;
    int has_route;
    char explain[200];
} results;

static mxv_judge *next_judge(results *r)
{
    return r->n < MAXJ ? &r->j[r->n++] : NULL;
}

static void results_free(results *r)
{
    for (size_t i = 0; i < r->nkeep; i++)
        free(r->keep[i]);
    memset(r, 0, sizeof *r);
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
                               uint16_t *mo, mxv_st_err *err)
{
    uint64_t R = g->R, N = g->N, K = g->K;
    mxv_st_status st = MXV_ST_OK;
    int32_t *idx = malloc(nz(R) * sizeof *idx);
    float *wrow = malloc(nz(R) * sizeof *wrow);
    size_t *dst = malloc(nz(R) * sizeof *dst);
    if (!idx || !wrow || !dst)
        st = mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory");
    memset(ex, 0, nz(R * N) * sizeof *ex);
    memset(bd, 0, nz(R * N) * sizeof *bd);
    memset(mo, 0, nz(R * N) * sizeof *mo);
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
        mx_gemm_out o = {gex, NULL, gmo, gbd, NULL};
        mx_status ms = gex && gbd && gmo ? mx_gemm(&spec, &A, &B, &o, NULL) : MX_ENOMEM;
        if (ms != MX_OK)
            st = mxv_st_errorf(err, ms == MX_ENOMEM ? MXV_ST_ENOMEM : MXV_ST_EMISMATCH,
                               c->f, "b", "the reference refused expert %d (status %d)",
                               id, (int)ms);
        else
            for (size_t i = 0; i < M; i++) {
                memcpy(ex + dst[i] * N, gex + i * N, N * sizeof *ex);
                memcpy(bd + dst[i] * N, gbd + i * N, N * sizeof *bd);
                memcpy(mo + dst[i] * N, gmo + i * N, N * sizeof *mo);
            }
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
 * costs about a microsecond per 32-wide group) every block preset, and
 * keeps the best: one with no element outside its bound before one with
 * some, then the most elements bit-exact, then the fewest outside.  When
 * every model leaves elements outside, no accumulation order explains the
 * output, and the message says so rather than naming a "better" model. */
static void explain(const mxv_capture *c, const gemm_cap *g, const uint16_t *out,
                    const mxv_judge *own, results *res)
{
    uint64_t n = g->R * g->N;
    double work = (double)n * (double)(g->K / 32);
    double *ex = malloc(nz(n) * sizeof *ex), *bd = malloc(nz(n) * sizeof *bd);
    uint16_t *mo = malloc(nz(n) * sizeof *mo);
    const char *names[64];
    size_t nn = 0;
    names[nn++] = "fp32-group";
    names[nn++] = "fp32-seq";
    static char blocknames[32][48];
    const mx_blockfma_params *p;
    for (size_t i = 0; (p = mx_blockfma_preset_at(i)) && nn < 32 && work <= 4e6; i++) {
        snprintf(blocknames[i], sizeof blocknames[i], "block:%s", p->name);
        names[nn++] = blocknames[i];
    }
    double best_exact = -1;
    size_t best_out = (size_t)-1;
    const char *best = NULL;
    for (size_t i = 0; ex && bd && mo && i < nn; i++) {
        mx_accum_model md;
        mxv_st_err err;
        if (!strcmp(names[i], c->model.name) || mx_accum_parse(names[i], &md) != 0)
            continue;
        if (gemm_eval(c, g, &md, ex, bd, mo, &err) != MXV_ST_OK)
            continue;
        size_t same = 0, outside = 0;
        for (uint64_t j = 0; j < n; j++) {
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
    const char *skipped = work > 4e6 ? " (block models not tried: capture too large)" : "";
    double own_share = own->n ? (double)own->bit_exact / (double)own->n : 1;
    if (best && best_out == 0 && (own->outside > 0 || best_exact > own_share))
        snprintf(res->explain, sizeof res->explain,
                 "%s explains it better: %.2f%% bit-exact, 0 outside its bound%s",
                 best, 100 * best_exact, skipped);
    else if (best && best_out > 0 && own->outside > 0)
        snprintf(res->explain, sizeof res->explain,
                 "no accumulation model tried explains it (closest: %s, %.2f%% "
                 "bit-exact, %zu outside its bound)%s",
                 best, 100 * best_exact, best_out, skipped);
    free(ex);
    free(bd);
    free(mo);
}

static mxv_st_status check_group_gemm(const mxv_capture *c, results *res,
                                      mxv_st_err *err)
{
    int mx = c->kind == MXV_CAP_MXFP8_GEMM;
    const mx_format *fe = mx ? mx_format_get(c->elem) : mx_format_get(MX_BF16);
    unsigned vd = mx ? mxv_capture_fp8_dtypes(c->elem) : MXV_ST_BIT(MXV_ST_BF16);
    const mxv_st_tensor *ta, *tas = NULL, *tb, *tbs = NULL, *tid, *tw = NULL,
                        *tex = NULL, *tout;
    mxv_st_status st = MXV_ST_OK;
    int32_t *ids = NULL, *gids = NULL;
    double *ex = NULL, *bd = NULL;
    uint16_t *mo = NULL;
    uint64_t any2[2] = {MXV_ST_ANY_DIM, MXV_ST_ANY_DIM};
    uint64_t any3[3] = {MXV_ST_ANY_DIM, MXV_ST_ANY_DIM, MXV_ST_ANY_DIM};
    TRY(mxv_capture_tensor(c, "topk_ids", MXV_CAP_IDS, 2, any2, &tid, err));
    uint64_t T = tid->shape[0], k = tid->shape[1], R = T * k;
    TRY(mxv_capture_tensor(c, "b", vd, 3, any3, &tb, err));
    uint64_t E = tb->shape[0], N = tb->shape[1], K = tb->shape[2];
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
        TRY(mxv_capture_tensor(c, "b_scale", MXV_CAP_E8M0, 3, sbs, &tbs, err));
        TRY(mxv_capture_check_scales(c, tas, err));
        TRY(mxv_capture_check_scales(c, tbs, err));
    }
    uint64_t ws[2] = {T, k}, es[1] = {E}, os[2] = {R, N};
    if (c->mul_weight) {
        TRY(mxv_capture_tensor(c, "topk_weights", MXV_ST_BIT(MXV_ST_F32), 2, ws, &tw, err));
        TRY(mxv_capture_check_f32(c, tw, err));
    }
    TRY(mxv_capture_optional(c, "expert_ids", MXV_CAP_IDS, 1, es, &tex, err));
    TRY(mxv_capture_tensor(c, "out", MXV_ST_BIT(MXV_ST_BF16), 2, os, &tout, err));
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
    TRY(mxv_capture_topk(c, tid, n_total, &ids, err));

    ex = calloc(nz(R * N), sizeof *ex);
    bd = calloc(nz(R * N), sizeof *bd);
    mo = calloc(nz(R * N), sizeof *mo);
    if (!ex || !bd || !mo)
        TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    gemm_cap gc = {fe, mx, ta, tas, tb, tbs, tw, ids, gids, E, N, K, k, R};
    TRY(gemm_eval(c, &gc, &c->model, ex, bd, mo, err));
    /* rows of experts not in the file must be zero: exact 0, bound 0 */
    mxv_judge *j = next_judge(res);
    mxv_judge_bf16(j, "out", tout->data, mo, ex, bd, R * N, N);
    if (!mxv_judge_pass(j) || j->bit_exact < j->n)
        explain(c, &gc, tout->data, j, res);
done:
    free(ids);
    free(gids);
    free(ex);
    free(bd);
    free(mo);
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
    q = malloc(nz(rows * K));
    s = malloc(nz(rows * K / 32));
    if (!q || !s)
        TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
    mx_status ms = tx->dtype == MXV_ST_F32
                       ? mx_quantize_f32(&p, tx->data, rows, K, K, q, s, NULL)
                       : mx_quantize_bf16(&p, tx->data, rows, K, K, q, s, NULL);
    if (ms != MX_OK)
        TRY(mxv_st_errorf(err, MXV_ST_EMISMATCH, c->f, "x",
                          "the reference quantizer refused it (status %d)", (int)ms));
    mxv_judge_bytes(next_judge(res), "q_scale", ts->data, s, NULL, rows * K / 32, K / 32);
    mxv_judge_bytes(next_judge(res), "q", tq->data, q, NULL, rows * K, K);
done:
    free(q);
    free(s);
    return st;
}

/* ---- MoE layer ------------------------------------------------------------- */

static mxv_st_status check_moe(const mxv_capture *c, results *res, mxv_st_err *err)
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
    if (txq && w8a8) {
        mxv_judge_bytes(next_judge(res), "xq_scale", txqs->data, r.xq.s, NULL, T * H / 32, H / 32);
        mxv_judge_bytes(next_judge(res), "xq", txq->data, r.xq.q, NULL, T * H, H);
    }
    if (tg1)
        mxv_judge_bf16(next_judge(res), "g1", tg1->data, r.g1.model, r.g1.exact,
                       r.g1.bound, Tk * 2 * I, 2 * I);
    if (taq && w8a8) {
        /* bytes under the model scale, or (where the scale itself is
         * ambiguous) under the alternative scale */
        uint8_t *alt = malloc(nz(Tk * I));
        const uint8_t *ks = taqs->data, *kq = taq->data;
        for (uint64_t i = 0; alt && i < Tk * I; i++) {
            size_t b = i / 32;
            if (ks[b] == r.actq.s[b])
                alt[i] = r.actq.q_alt[i];
            else if (ks[b] == r.actq.s_alt[b])
                alt[i] = kq[i] == r.actq.q_under_alt[i] ? r.actq.q_under_alt[i]
                                                        : r.actq.q_under_alt2[i];
            else
                alt[i] = r.actq.q_alt[i];
        }
        res->keep[res->nkeep++] = alt;
        mxv_judge_bytes(next_judge(res), "actq_scale", ks, r.actq.s, r.actq.s_alt,
                        Tk * I / 32, I / 32);
        mxv_judge_bytes(next_judge(res), "actq", kq, r.actq.q, alt, Tk * I, I);
    }
    if (ta16 && !w8a8) {
        /* act16 is BF16: byte-judge through two-byte codes, via uint16 */
        size_t bad16 = 0;
        mxv_judge *j = next_judge(res);
        mxv_judge_bf16(j, "act", ta16->data, r.act16.model, r.act16.exact,
                       r.act16.exact, Tk * I, I);
        j->outside = j->nbad = 0;
        for (uint64_t i = 0; i < Tk * I; i++) {
            uint16_t v = ((const uint16_t *)ta16->data)[i];
            if (v != r.act16.model[i] && v != r.act16.alt[i]) {
                j->outside++;
                if (j->nbad < MXV_JUDGE_FIRST) {
                    mxv_judge_bad b = {i, mx_bf16_to_float(v),
                                       mx_bf16_to_float(r.act16.model[i]), 0};
                    j->bad[j->nbad++] = b;
                }
                bad16++;
            }
        }
        (void)bad16;
    }
    if (ty)
        mxv_judge_bf16(next_judge(res), "y", ty->data, r.y.model, r.y.exact,
                       r.y.bound, Tk * H, H);
    if (trt)
        mxv_judge_bf16_equal(next_judge(res), "routed (moe_sum)", trt->data,
                             r.routed.model, r.routed.exact, r.routed.bound, T * H, H);
    if (tsh)
        mxv_judge_bf16(next_judge(res), "shared_out", tsh->data, r.shared.model,
                       r.shared.exact, r.shared.bound, T * H, H);
    if (trt && tsh)
        mxv_judge_bf16_equal(next_judge(res), "out", tout->data, r.out.model,
                             r.out.exact, r.out.bound, T * H, H);
    else
        mxv_judge_bf16(next_judge(res), "out", tout->data, r.out.model, r.out.exact,
                       r.out.bound, T * H, H);
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

/* ---- reporting -------------------------------------------------------------- */

static cJSON *judge_json(const mxv_judge *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tensor", j->name);
    cJSON_AddBoolToObject(o, "pass", mxv_judge_pass(j));
    cJSON_AddStringToObject(o, "judged_by", j->by_bytes ? "bytes" : "bound");
    cJSON_AddNumberToObject(o, "elements", (double)j->n);
    cJSON_AddNumberToObject(o, "outside", (double)j->outside);
    cJSON_AddNumberToObject(o, "bit_exact_share", j->n ? (double)j->bit_exact / (double)j->n : 1);
    if (!j->by_bytes) {
        cJSON_AddNumberToObject(o, "max_err_over_bound", isfinite(j->max_ratio) ? j->max_ratio : 1e308);
        cJSON_AddNumberToObject(o, "max_bf16_ulp", isfinite(j->max_ulp) ? j->max_ulp : 1e308);
        cJSON_AddNumberToObject(o, "rel_l2", isfinite(j->rel_l2) ? j->rel_l2 : 1e308);
        cJSON_AddNumberToObject(o, "sqnr_db", isfinite(j->sqnr_db) ? j->sqnr_db : 1e308);
        cJSON_AddBoolToObject(o, "torch_allclose_bf16", j->allclose);
        cJSON_AddNumberToObject(o, "aiter_mismatch", j->aiter_mismatch);
        cJSON_AddNumberToObject(o, "overflow_not_judged", (double)j->overflow);
        cJSON *h = cJSON_AddArrayToObject(o, "histogram_err_over_bound");
        for (int b = 0; b < MXV_HIST_BINS; b++) {
            cJSON *bin = cJSON_CreateObject();
            cJSON_AddNumberToObject(bin, "from", mxv_hist_edges[b]);
            cJSON_AddNumberToObject(bin, "count", (double)j->hist[b]);
            cJSON_AddItemToArray(h, bin);
        }
    } else {
        cJSON_AddNumberToObject(o, "alternative_taken", (double)j->ambiguous);
    }
    cJSON *bad = cJSON_AddArrayToObject(o, "first_outside");
    for (size_t b = 0; b < j->nbad; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "row", (double)(j->bad[b].index / j->cols));
        cJSON_AddNumberToObject(e, "col", (double)(j->bad[b].index % j->cols));
        cJSON_AddNumberToObject(e, "value", j->bad[b].out);
        cJSON_AddNumberToObject(e, "reference", j->bad[b].exact);
        cJSON_AddNumberToObject(e, "bound", j->bad[b].bound);
        cJSON_AddItemToArray(bad, e);
    }
    return o;
}

static int write_text_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int mxv_cmd_check(int argc, char **argv)
{
    const char *json = NULL, *svg = NULL, *hist = NULL, *help = NULL, *quiet = NULL,
               *model = NULL;
    const mxv_opt opts[] = {{"json", 1, &json, 0}, {"svg", 1, &svg, 0},
                            {"model", 1, &model, 0},
                            {"hist", 0, &hist, 0}, {"quiet", 0, &quiet, 'q'},
                            {"help", 0, &help, 'h'}, {NULL, 0, NULL, 0}};
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles, rc = mxv_parse_opts(argc, argv, opts, files, &nfiles, "check");
    if (rc || help || nfiles == 0) {
        if (help)
            puts("usage: mxverify check FILE... [--hist] [--svg FILE.svg] "
                 "[--json REPORT.json] [--model NAME] [-q]\n"
                 "  --model NAME   judge against this accumulation model instead of "
                 "the capture's accum_model");
        else if (!rc)
            rc = mxv_error(MXV_EXIT_USAGE, "check: no capture file given");
        free(files);
        return help ? MXV_EXIT_OK : rc;
    }
    mx_accum_model override;
    if (model && mx_accum_parse(model, &override) != 0) {
        free(files);
        return mxv_error(MXV_EXIT_USAGE, "--model '%s': one of %s", model,
                         mx_accum_names());
    }
    int any_bad_input = 0, any_fail = 0;
    /* {"tool", "provenance", "files": [one object per capture]} */
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "mxverify check");
    cJSON_AddItemToObject(root, "provenance",
                          mxv_provenance_json("reference (cpu)", NULL, NULL));
    cJSON *report = cJSON_AddArrayToObject(root, "files");
    for (int fi = 0; fi < nfiles; fi++) {
        mxv_capture c;
        mxv_st_err err;
        results res;
        memset(&res, 0, sizeof res);
        mxv_st_status st = mxv_capture_open(files[fi], &c, &err);
        if (st == MXV_ST_OK && model)
            c.model = override;
        if (st == MXV_ST_OK) {
            switch (c.kind) {
            case MXV_CAP_MXFP8_GEMM:
            case MXV_CAP_BF16_GEMM:
                st = check_group_gemm(&c, &res, &err);
                break;
            case MXV_CAP_MX_QUANT:
                st = check_mx_quant(&c, &res, &err);
                break;
            case MXV_CAP_MOE_LAYER:
                st = check_moe(&c, &res, &err);
                break;
            }
        }
        cJSON *fo = cJSON_CreateObject();
        char relp[4096];
        cJSON_AddStringToObject(fo, "file", mxv_relpath(files[fi], relp, sizeof relp));
        if (st != MXV_ST_OK) {
            mxv_error(mxv_st_exit_code(st), "%s", err.msg);
            any_bad_input |= mxv_st_exit_code(st) == MXV_EXIT_BADINPUT;
            any_fail |= mxv_st_exit_code(st) != MXV_EXIT_BADINPUT;
            cJSON_AddStringToObject(fo, "error", err.msg);
            cJSON_AddItemToArray(report, fo);
            mxv_capture_close(&c);
            results_free(&res);
            continue;
        }
        int pass = res.route_mismatch == 0;
        for (size_t i = 0; i < res.n; i++)
            pass &= mxv_judge_pass(&res.j[i]);
        any_fail |= !pass;
        static const char *kn[] = {"mxfp8_group_gemm", "bf16_group_gemm", "mx_quant",
                                   "moe_layer"};
        printf("%s: %s, model %s, %s\n", files[fi], kn[c.kind], c.model.name,
               pass ? "PASS" : "FAIL");
        if (!quiet) {
            mxv_judge_print_header(stdout);
            for (size_t i = 0; i < res.n; i++)
                mxv_judge_print_row(stdout, res.j[i].name, &res.j[i]);
        }
        if (res.has_route)
            printf("routing: %zu tokens with another expert set (%zu more where "
                   "the reference marks a near tie)\n",
                   res.route_mismatch, res.route_ambiguous);
        for (size_t i = 0; i < res.n; i++)
            if (!mxv_judge_pass(&res.j[i]))
                mxv_judge_print_bad(stdout, &res.j[i]);
        if (res.explain[0])
            printf("model: the output is not explained by %s; %s\n", c.model.name,
                   res.explain);
        if (res.has_e2e)
            printf("end to end: out vs the reference chain: rel L2 %.3g, max %.1f "
                   "BF16 ulp (information; verdicts are stage-wise)\n",
                   res.e2e_rel_l2, res.e2e_max_ulp);
        if (hist && res.n)
            for (size_t i = 0; i < res.n; i++)
                if (!res.j[i].by_bytes)
                    mxv_judge_print_hist(stdout, &res.j[i]);
        if (svg && res.n) {
            /* the histogram of the last bound-judged tensor (the output) */
            for (size_t i = res.n; i-- > 0;)
                if (!res.j[i].by_bytes) {
                    char title[512];
                    snprintf(title, sizeof title, "%s: %s", files[fi], res.j[i].name);
                    if (mxv_judge_write_svg(svg, &res.j[i], title) != 0)
                        rc = mxv_error(MXV_EXIT_INTERNAL, "cannot write %s", svg);
                    break;
                }
        }
        cJSON_AddStringToObject(fo, "kind", kn[c.kind]);
        cJSON_AddStringToObject(fo, "accum_model", c.model.name);
        cJSON_AddBoolToObject(fo, "pass", pass);
        if (res.explain[0])
            cJSON_AddStringToObject(fo, "model_explanation", res.explain);
        if (res.has_route) {
            cJSON_AddNumberToObject(fo, "routing_mismatch", (double)res.route_mismatch);
            cJSON_AddNumberToObject(fo, "routing_near_tie", (double)res.route_ambiguous);
        }
        if (res.has_e2e) {
            cJSON_AddNumberToObject(fo, "e2e_rel_l2", res.e2e_rel_l2);
            cJSON_AddNumberToObject(fo, "e2e_max_bf16_ulp", res.e2e_max_ulp);
        }
        cJSON *arr = cJSON_AddArrayToObject(fo, "tensors");
        for (size_t i = 0; i < res.n; i++)
            cJSON_AddItemToArray(arr, judge_json(&res.j[i]));
        cJSON_AddItemToArray(report, fo);
        mxv_capture_close(&c);
        results_free(&res);
    }
    if (json) {
        char *s = cJSON_Print(root);
        if (!s || write_text_atomic(json, s) != 0)
            rc = mxv_error(MXV_EXIT_INTERNAL, "cannot write the report %s", json);
        cJSON_free(s);
    }
    cJSON_Delete(root);
    free(files);
    if (rc)
        return rc;
    return any_bad_input ? MXV_EXIT_BADINPUT : any_fail ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
