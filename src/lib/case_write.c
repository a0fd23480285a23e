/* case_write.c -- write a generated case and its reference results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "case_write.h"

typedef struct {
    mxv_st_writer *w;
    mxv_st_err *err;
    mxv_st_status st;
    void **owned;       /* buffers to free after the commit */
    size_t nowned, cap;
} wctx;

static void add(wctx *c, const char *name, mxv_st_dtype dt, int rank,
                uint64_t d0, uint64_t d1, uint64_t d2, const void *data)
{
    if (c->st != MXV_ST_OK || !data)
        return;
    uint64_t shape[3] = {d0, d1, d2};
    c->st = mxv_st_writer_add(c->w, name, dt, rank, shape, data, c->err);
}

static void meta(wctx *c, const char *key, const char *val)
{
    if (c->st == MXV_ST_OK)
        c->st = mxv_st_writer_meta(c->w, key, val, c->err);
}

static void meta_u(wctx *c, const char *key, unsigned long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", v);
    meta(c, key, buf);
}

static void *own(wctx *c, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p || (c->nowned == c->cap &&
               !(c->owned = realloc(c->owned, (c->cap = c->cap * 2 + 16) * sizeof *c->owned)))) {
        free(p);
        c->st = MXV_ST_ENOMEM;
        snprintf(c->err->msg, sizeof c->err->msg, "out of memory");
        return NULL;
    }
    c->owned[c->nowned++] = p;
    return p;
}

/* Concatenates the materialized experts' arrays (each n_each bytes). */
static uint8_t *concat(wctx *c, uint8_t *const *parts, const int32_t *present,
                       size_t n, size_t expert0, size_t n_each)
{
    uint8_t *out = own(c, n * n_each);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * n_each, parts[(size_t)present[i] - expert0], n_each);
    return out;
}

mxv_st_status mxv_case_write(const char *path, const mx_case_params *p,
                             const mx_case *c, const mx_moe_config *cfg,
                             const mx_moe_result *r, mxv_st_err *err)
{
    const mx_moe_shape *s = &c->shape;
    uint64_t T = c->T, H = s->H, I = s->inter, Is = s->inter_shared, E = s->E;
    uint64_t k = (uint64_t)s->topk, Tk = T * k;
    wctx w = {mxv_st_writer_new(path), err, MXV_ST_OK, NULL, 0, 0};
    if (!w.w) {
        snprintf(err->msg, sizeof err->msg, "%s: out of memory", path);
        return MXV_ST_ENOMEM;
    }
    char prod[96];
    snprintf(prod, sizeof prod, "mxverify ref %s (reference model outputs)",
             PACKAGE_VERSION);
    meta(&w, "mxverify.capture", "1");
    meta(&w, "mxverify.case", "1");
    meta(&w, "kind", "moe_layer");
    meta(&w, "producer", prod);
    meta(&w, "policy", mx_moe_policy_name(r->policy));
    meta(&w, "shape", s->name);
    meta_u(&w, "hidden", H);
    meta_u(&w, "intermediate", I);
    meta_u(&w, "intermediate_shared", Is);
    meta_u(&w, "experts", E);
    meta_u(&w, "experts_local", s->E_local);
    meta_u(&w, "expert0", s->expert0);
    meta_u(&w, "topk", k);
    meta_u(&w, "tp", (unsigned long long)s->tp);
    meta_u(&w, "ep", (unsigned long long)s->ep);
    meta_u(&w, "layer", (unsigned long long)s->layer);
    meta_u(&w, "max_model_len", s->max_model_len);
    meta_u(&w, "tokens", T);
    meta_u(&w, "seed", p->seed);
    meta(&w, "family", mx_case_family_name(p->family));
    meta(&w, "accum_model", cfg->model.name);
    meta(&w, "element_format", "e4m3fnuz");
    meta(&w, "e8m0_decode", "production");
    meta(&w, "scale_layout", "rows");
    meta(&w, "scale_rule", "production");

    /* inputs */
    add(&w, "x", MXV_ST_BF16, 2, T, H, 0, c->x);
    add(&w, "router_weight", MXV_ST_F32, 2, E, H, 0, c->router);
    add(&w, "router_bias", MXV_ST_F32, 1, E, 0, 0, c->bias);
    size_t n = 0;
    int32_t *present = own(&w, s->E_local * sizeof *present);
    for (size_t le = 0; present && le < s->E_local; le++)
        if (c->w13[le])
            present[n++] = (int32_t)(s->expert0 + le);
    if (present) {
        add(&w, "experts_present", MXV_ST_I32, 1, n, 0, 0, present);
        add(&w, "w13", MXV_ST_F8_E4M3, 3, n, 2 * I, H,
            concat(&w, c->w13, present, n, s->expert0, 2 * I * H));
        add(&w, "w13_scale", MXV_ST_F8_E8M0, 3, n, 2 * I, H / 32,
            concat(&w, c->w13_s, present, n, s->expert0, 2 * I * H / 32));
        add(&w, "w2", MXV_ST_F8_E4M3, 3, n, H, I,
            concat(&w, c->w2, present, n, s->expert0, H * I));
        add(&w, "w2_scale", MXV_ST_F8_E8M0, 3, n, H, I / 32,
            concat(&w, c->w2_s, present, n, s->expert0, H * I / 32));
    }
    add(&w, "ws13", MXV_ST_F8_E4M3, 2, 2 * Is, H, 0, c->ws13);
    add(&w, "ws13_scale", MXV_ST_F8_E8M0, 2, 2 * Is, H / 32, 0, c->ws13_s);
    add(&w, "ws2", MXV_ST_F8_E4M3, 2, H, Is, 0, c->ws2);
    add(&w, "ws2_scale", MXV_ST_F8_E8M0, 2, H, Is / 32, 0, c->ws2_s);

    /* the reference model's intermediates, as a kernel would dump them */
    add(&w, "topk_ids", MXV_ST_I32, 2, T, k, 0, r->route.ids);
    add(&w, "topk_weights", MXV_ST_F32, 2, T, k, 0, r->route.weights);
    if (r->policy == MX_POLICY_W8A8) {
        add(&w, "xq", MXV_ST_F8_E4M3FNUZ, 2, T, H, 0, r->xq.q);
        add(&w, "xq_scale", MXV_ST_F8_E8M0, 2, T, H / 32, 0, r->xq.s);
        add(&w, "actq", MXV_ST_F8_E4M3FNUZ, 2, Tk, I, 0, r->actq.q);
        add(&w, "actq_scale", MXV_ST_F8_E8M0, 2, Tk, I / 32, 0, r->actq.s);
        add(&w, "ref.actq.alt", MXV_ST_U8, 2, Tk, I, 0, r->actq.q_alt);
        add(&w, "ref.actq_scale.alt", MXV_ST_U8, 2, Tk, I / 32, 0, r->actq.s_alt);
        add(&w, "ref.actq.under_alt_lo", MXV_ST_U8, 2, Tk, I, 0, r->actq.q_under_alt);
        add(&w, "ref.actq.under_alt_hi", MXV_ST_U8, 2, Tk, I, 0, r->actq.q_under_alt2);
    } else {
        add(&w, "act", MXV_ST_BF16, 2, Tk, I, 0, r->act16.model);
        add(&w, "ref.act.exact", MXV_ST_F64, 2, Tk, I, 0, r->act16.exact);
        add(&w, "ref.act.alt", MXV_ST_BF16, 2, Tk, I, 0, r->act16.alt);
    }
    add(&w, "g1", MXV_ST_BF16, 2, Tk, 2 * I, 0, r->g1.model);
    add(&w, "y", MXV_ST_BF16, 2, Tk, H, 0, r->y.model);
    add(&w, "routed", MXV_ST_BF16, 2, T, H, 0, r->routed.model);
    add(&w, "shared_out", MXV_ST_BF16, 2, T, H, 0, r->shared.model);
    add(&w, "out", MXV_ST_BF16, 2, T, H, 0, r->out.model);

    /* exact values and bounds */
    add(&w, "ref.topk_weights.exact", MXV_ST_F64, 2, T, k, 0, r->route.weights_exact);
    add(&w, "ref.route.ambiguous", MXV_ST_U8, 1, T, 0, 0, r->route.ambiguous);
    add(&w, "ref.g1.exact", MXV_ST_F64, 2, Tk, 2 * I, 0, r->g1.exact);
    add(&w, "ref.g1.bound", MXV_ST_F64, 2, Tk, 2 * I, 0, r->g1.bound);
    add(&w, "ref.y.exact", MXV_ST_F64, 2, Tk, H, 0, r->y.exact);
    add(&w, "ref.y.bound", MXV_ST_F64, 2, Tk, H, 0, r->y.bound);
    add(&w, "ref.routed.exact", MXV_ST_F64, 2, T, H, 0, r->routed.exact);
    add(&w, "ref.routed.bound", MXV_ST_F64, 2, T, H, 0, r->routed.bound);
    add(&w, "ref.shared_g1", MXV_ST_BF16, 2, T, 2 * Is, 0, r->sh_g1.model);
    add(&w, "ref.shared_g1.exact", MXV_ST_F64, 2, T, 2 * Is, 0, r->sh_g1.exact);
    add(&w, "ref.shared_g1.bound", MXV_ST_F64, 2, T, 2 * Is, 0, r->sh_g1.bound);
    add(&w, "ref.shared_act", MXV_ST_BF16, 2, T, Is, 0, r->sh_act.model);
    add(&w, "ref.shared_out.exact", MXV_ST_F64, 2, T, H, 0, r->shared.exact);
    add(&w, "ref.shared_out.bound", MXV_ST_F64, 2, T, H, 0, r->shared.bound);
    add(&w, "ref.out.exact", MXV_ST_F64, 2, T, H, 0, r->out.exact);
    add(&w, "ref.out.bound", MXV_ST_F64, 2, T, H, 0, r->out.bound);
    add(&w, "ref.out.e2e", MXV_ST_F64, 2, T, H, 0, r->out_e2e);

    mxv_st_status st = w.st;
    if (st == MXV_ST_OK)
        st = mxv_st_writer_commit(w.w, err);
    mxv_st_writer_free(w.w);
    for (size_t i = 0; i < w.nowned; i++)
        free(w.owned[i]);
    free(w.owned);
    return st;
}
