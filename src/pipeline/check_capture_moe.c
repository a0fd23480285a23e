/* check_capture_moe.c -- check_capture.c's MoE layer captures: every stage
 * of the stage table (stages.h) recomputed from the previous stage's
 * captured output and judged, the routing compared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/pool.h"
#include "check_capture.h"
#include "check_capture_internal.h"
#include "stages.h"

/* The held tensor of that name (held entries may be NULL), or NULL. */
static const mxv_st_tensor *held_tensor(const mxv_st_tensor *const *held, size_t n,
                                        const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (held[i] && !strcmp(held[i]->name, name))
            return held[i];
    return NULL;
}

/* One stage to judge: its own copy of the sources, its judge, its result. */
typedef struct {
    const mxv_stage *sg;
    const void *out;
    mxv_stage_src src;
    mxv_judge *j;
    int rc;
} stage_job;

static void stage_task(void *v, size_t i)
{
    stage_job *q = (stage_job *)v + i;
    if (q->j)
        q->rc = mxv_stage_judge(q->sg, &q->src, q->out,
                                q->sg->label ? q->sg->label : q->sg->tensor, q->j);
}

mxv_st_status mxv_check_moe(const mxv_capture *c, mxv_check_result *res,
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
    /* every stage of the table that the capture holds, in pipeline order:
     * judged side by side on the pool (each into its own judge), the
     * hooks then called in that order */
    {
        const mxv_st_tensor *held[] = {txqs, txq, tg1, taqs, taq, ta16, ty, trt, tsh, tout};
        size_t nheld = sizeof held / sizeof held[0], nst, nj = 0;
        const mxv_stage *tab = mxv_stage_table(&nst);
        stage_job jobs[sizeof held / sizeof held[0]];
        mxv_stage_src src = {0};
        src.ref = &r;
        src.shape = s;
        src.T = T;
        src.k = k;
        src.H = H;
        src.I = I;
        for (size_t i = 0; i < nst && nj < nheld; i++) {
            const mxv_stage *sg = &tab[i];
            if (!(sg->captures & (1u << MXV_CAP_MOE_LAYER)) ||
                !(sg->policies & (w8a8 ? MXV_POL_W8A8 : MXV_POL_BF16)))
                continue;
            const mxv_st_tensor *t = held_tensor(held, nheld, sg->tensor);
            if (!t)
                continue;
            const mxv_st_tensor *ts =
                sg->scale_of >= 0 ? held_tensor(held, nheld, tab[sg->scale_of].tensor) : NULL;
            stage_job *q = &jobs[nj++];
            q->sg = sg;
            q->out = t->data;
            q->src = src;
            q->src.out_scale = ts ? ts->data : NULL;
            q->src.inputs_given = sg->inputs[0] && held_tensor(held, nheld, sg->inputs[0]) &&
                                  held_tensor(held, nheld, sg->inputs[1]);
            q->j = mxv_check_next_judge(res);
            q->rc = 0;
        }
        mx_parallel_for(nj, stage_task, jobs);
        for (size_t i = 0; i < nj; i++) {
            if (!jobs[i].j || jobs[i].rc != 0)
                TRY(mxv_st_errorf(err, MXV_ST_ENOMEM, c->f, NULL, "out of memory"));
            if (hook)
                hook(hook_ctx, jobs[i].sg, &jobs[i].src, jobs[i].out, jobs[i].j,
                     gv.topk_ids ? gv.topk_ids : r.route.ids);
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

