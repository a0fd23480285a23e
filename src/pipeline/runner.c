/* runner.c -- launch one backend's kernels on one generated case and hand
 * every output to the stage table (see runner.h).
 *
 * (About 700 lines on purpose: one launch function per kernel plus the
 * chained run, all sharing the case context and the compacted experts,
 * which nothing outside this file needs.  No verdict is computed here:
 * stages.c names the rows, produces the references and judges.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mxref/casegen.h"
#include "mxref/accum.h"
#include "mxref/fnuz.h"
#include "mxref/pool.h"
#include "layer_opts.h"
#include "runner.h"
#include "stages.h"

typedef struct {
    const mxv_case_def *cd;
    const mxv_runner *r;
    mxv_rows *rows;
    const char *model;   /* GEMM accumulation model judged against */
    const char *policy;
    const char *shape;
    unsigned pol;        /* MXV_POL_W8A8 or MXV_POL_BF16               */
    mxv_stage_src src;   /* the layer reference the stages read        */
    double judge_s;      /* seconds in mxv_stage_judge                 */
} ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static mxv_row *new_row(ctx *x, const char *kernel)
{
    mxv_row *w = mxv_rows_push(x->rows);
    if (!w)
        return NULL;
    snprintf(w->case_name, sizeof w->case_name, "%s", x->cd->name);
    snprintf(w->kernel, sizeof w->kernel, "%s", kernel);
    snprintf(w->shape, sizeof w->shape, "%s", x->shape);
    w->tokens = x->cd->tokens;
    snprintf(w->policy, sizeof w->policy, "%s", x->policy);
    snprintf(w->model, sizeof w->model, "%s", x->model);
    snprintf(w->backend, sizeof w->backend, "%s", x->r->ops->name);
    w->backends_agree = -1;
    return w;
}

/* The kernel that produces a stage: its row name up to the first '.'
 * ("mx_quant" for "mx_quant.scale"). */
static const char *kernel_of(mxv_stage_id id, char *buf, size_t len)
{
    const char *k = mxv_stage_get(id)->kernel;
    snprintf(buf, len, "%.*s", (int)strcspn(k, "."), k);
    return buf;
}

static void row_error(ctx *x, const char *kernel, const mxk_ops *ops, mxk_status s)
{
    mxv_row *w = new_row(x, kernel);
    if (!w)
        return;
    w->error = 1;
    snprintf(w->message, sizeof w->message, "%s (status %d)",
             ops->last_error ? ops->last_error() : "kernel failed", (int)s);
}

/* bytes compared between the backend and the CPU backend */
static void agree(mxv_row *w, const void *a, const void *b, size_t n)
{
    if (w && b)
        w->backends_agree = memcmp(a, b, n) == 0;
}

/* One row: the stage's output judged through the stage table. */
static mxv_row *judge_row(ctx *x, mxv_stage_id id, const mxv_stage_src *src,
                          const void *out, double ms)
{
    const mxv_stage *st = mxv_stage_get(id);
    const char *kernel = mxv_stage_kernel(st, x->pol);
    mxv_row *w = new_row(x, kernel);
    if (!w)
        return NULL;
    double t0 = now_s();
    int jr = mxv_stage_judge(st, src, out, st->run_name ? st->run_name : kernel, &w->j);
    x->judge_s += now_s() - t0;
    if (jr != 0) {
        w->error = 1;
        snprintf(w->message, sizeof w->message, "out of memory judging %s", kernel);
        return w;
    }
    w->bit_exact = mxv_stage_bit_exact(st, &w->j);
    w->ms = ms;
    return w;
}

/* ---- the kernels ----------------------------------------------------- */

static void run_mx_quant(ctx *x, const mx_case *c, const mx_moe_result *ref)
{
    size_t T = c->T, H = c->shape.H;
    const mxk_ops *ops = x->r->ops, *cpu = x->r->cpu;
    uint8_t *q = malloc(mx_nz(T * H)), *s = malloc(mx_nz(T * H / 32));
    uint8_t *q2 = cpu ? malloc(mx_nz(T * H)) : NULL, *s2 = cpu ? malloc(mx_nz(T * H / 32)) : NULL;
    mxk_quant_args a = {c->x, q, s, (int)T, (int)H, MXK_FP8_E4M3FNUZ, x->r->mutant};
    double ms = 0;
    mxk_status st = ops->mx_quant(&a, &ms);
    if (st != MXK_OK) {
        char kb[40];
        row_error(x, kernel_of(MXV_STAGE_XQ, kb, sizeof kb), ops, st);
    } else {
        if (cpu) {
            mxk_quant_args b = a;
            b.q = q2;
            b.scale = s2;
            cpu->mx_quant(&b, NULL);
        }
        mxv_stage_src src = x->src;
        src.ref = ref;
        agree(judge_row(x, MXV_STAGE_XQ_SCALE, &src, s, ms), s, s2, T * H / 32);
        src.out_scale = s;
        agree(judge_row(x, MXV_STAGE_XQ, &src, q, 0), q, q2, T * H);
    }
    free(q);
    free(s);
    free(q2);
    free(s2);
}

/* the local experts that exist in the case, in id order */
typedef struct {
    size_t n;
    int32_t *map;       /* [E] global -> compact, -1 elsewhere */
    size_t *local;      /* [n] local index of each compact expert */
    uint8_t *w13, *w13s, *w2, *w2s;          /* checkpoint, compact          */
    uint8_t *q13, *s13p, *q2, *s2p;          /* FNUZ, packed scales           */
    uint16_t *b13, *b2;                      /* BF16 dequantized              */
} experts;

static void experts_free(experts *e)
{
    free(e->map);
    free(e->local);
    free(e->w13);
    free(e->w13s);
    free(e->w2);
    free(e->w2s);
    free(e->q13);
    free(e->s13p);
    free(e->q2);
    free(e->s2p);
    free(e->b13);
    free(e->b2);
}

/* experts_build's per-expert work: compact expert i's checkpoint bytes,
 * then its FNUZ form (w8a8; unpacked scales r13/r2) or BF16 dequantization;
 * bad[i] = 1 when its conversion failed.  Each task writes only expert i's
 * slices, so the result does not depend on the threads. */
typedef struct {
    const mx_case *c;
    experts *e;
    int w8a8;
    uint8_t *r13, *r2;
    int *bad;
} build_ctx;

static void build_task(void *v, size_t i)
{
    build_ctx *b = v;
    const mx_case *c = b->c;
    experts *e = b->e;
    size_t H = c->shape.H, I = c->shape.inter, n13 = 2 * I * H, n2 = H * I;
    size_t le = e->local[i], badi;
    memcpy(e->w13 + i * n13, c->w13[le], n13);
    memcpy(e->w13s + i * n13 / 32, c->w13_s[le], n13 / 32);
    memcpy(e->w2 + i * n2, c->w2[le], n2);
    memcpy(e->w2s + i * n2 / 32, c->w2_s[le], n2 / 32);
    if (b->w8a8) {
        b->bad[i] = mx_fn_to_fnuz_mx(e->w13 + i * n13, n13, e->w13s + i * n13 / 32,
                                     n13 / 32, 32, e->q13 + i * n13,
                                     b->r13 + i * n13 / 32, &badi) != MX_OK ||
                    mx_fn_to_fnuz_mx(e->w2 + i * n2, n2, e->w2s + i * n2 / 32, n2 / 32,
                                     32, e->q2 + i * n2, b->r2 + i * n2 / 32,
                                     &badi) != MX_OK;
    } else {
        mx_dequant_bf16(MX_E4M3FN, e->w13 + i * n13, e->w13s + i * n13 / 32, 2 * I, H,
                        e->b13 + i * n13);
        mx_dequant_bf16(MX_E4M3FN, e->w2 + i * n2, e->w2s + i * n2 / 32, H, I,
                        e->b2 + i * n2);
    }
}

/* 0; -1 out of memory; -2 an expert's FN -> FNUZ conversion failed */
static int experts_build(const mx_case *c, int w8a8, experts *e)
{
    const mx_moe_shape *s = &c->shape;
    size_t H = s->H, I = s->inter;
    memset(e, 0, sizeof *e);
    e->map = malloc(s->E * sizeof *e->map);
    e->local = malloc(mx_nz(s->E_local) * sizeof *e->local);
    if (!e->map || !e->local)
        return -1;
    for (size_t g = 0; g < s->E; g++)
        e->map[g] = -1;
    for (size_t le = 0; le < s->E_local; le++)
        if (c->w13[le]) {
            e->map[s->expert0 + le] = (int32_t)e->n;
            e->local[e->n++] = le;
        }
    size_t n = e->n, n13 = 2 * I * H, n2 = H * I;
    e->w13 = malloc(mx_nz(n * n13));
    e->w13s = malloc(mx_nz(n * n13 / 32));
    e->w2 = malloc(mx_nz(n * n2));
    e->w2s = malloc(mx_nz(n * n2 / 32));
    if (!e->w13 || !e->w13s || !e->w2 || !e->w2s)
        return -1;
    uint8_t *r13 = NULL, *r2 = NULL;
    if (w8a8) {
        e->q13 = malloc(mx_nz(n * n13));
        e->q2 = malloc(mx_nz(n * n2));
        r13 = malloc(mx_nz(n * n13 / 32));
        r2 = malloc(mx_nz(n * n2 / 32));
        e->s13p = malloc(mx_nz(n * n13 / 32));
        e->s2p = malloc(mx_nz(n * n2 / 32));
    } else {
        e->b13 = malloc(mx_nz(n * n13) * sizeof *e->b13);
        e->b2 = malloc(mx_nz(n * n2) * sizeof *e->b2);
    }
    int ok = w8a8 ? e->q13 && e->q2 && r13 && r2 && e->s13p && e->s2p : e->b13 && e->b2;
    int *bad = ok ? calloc(mx_nz(n), sizeof *bad) : NULL, conv = 1;
    if (bad) {
        build_ctx b = {c, e, w8a8, r13, r2, bad};
        mx_parallel_for(n, build_task, &b);
        for (size_t i = 0; i < n; i++)
            conv &= !bad[i];
    } else {
        ok = 0;
    }
    if (ok && conv && w8a8) {
        mx_scales_pack(r13, n, 2 * I, H / 32, e->s13p);
        mx_scales_pack(r2, n, H, I / 32, e->s2p);
    }
    free(bad);
    free(r13);
    free(r2);
    return !ok ? -1 : !conv ? -2 : 0;
}

static void run_fn_to_fnuz(ctx *x, const experts *e, size_t rows_per_expert,
                           size_t K, const uint8_t *vals, const uint8_t *scales,
                           const uint8_t *want_q, const uint8_t *want_s,
                           mxv_stage_id id)
{
    size_t n = e->n, N = rows_per_expert, tot = n * N * K;
    const mxk_ops *ops = x->r->ops, *cpu = x->r->cpu;
    uint8_t *oq = malloc(mx_nz(tot)), *os = malloc(mx_nz(tot / 32));
    uint8_t *cq = cpu ? malloc(mx_nz(tot)) : NULL, *cs = cpu ? malloc(mx_nz(tot / 32)) : NULL;
    int64_t bad = 0;
    mxk_fnuz_args a = {vals, scales, oq, os, (int)n, (int)N, (int)K, 1, &bad,
                       x->r->mutant};
    double ms = 0;
    mxk_status st = n ? ops->fn_to_fnuz(&a, &ms) : MXK_OK;
    const char *kname = mxv_stage_get(id)->kernel;
    if (st != MXK_OK) {
        row_error(x, kname, ops, st);
    } else {
        if (cpu && n) {
            mxk_fnuz_args b = a;
            b.out_vals = cq;
            b.out_scales = cs;
            cpu->fn_to_fnuz(&b, NULL);
        }
        /* one verdict over values and packed scales */
        uint8_t *got = malloc(mx_nz(tot + tot / 32)), *want = malloc(mx_nz(tot + tot / 32));
        if (got && want) {
            memcpy(got, oq, tot);
            memcpy(got + tot, os, tot / 32);
            memcpy(want, want_q, tot);
            memcpy(want + tot, want_s, tot / 32);
            mxv_stage_src src = x->src;
            src.given = want;
            src.given_n = tot + tot / 32;
            src.given_cols = K;
            src.out_scale = os;
            src.peer_out_q = oq;
            src.peer_ref_q = want_q;
            src.peer_ref_s = want_s;
            src.peer_n = tot;
            src.peer_packed_rows = N;
            mxv_row *w = judge_row(x, id, &src, got, ms);
            if (w && cpu && n)
                w->backends_agree = !memcmp(oq, cq, tot) && !memcmp(os, cs, tot / 32);
        }
        free(got);
        free(want);
    }
    free(oq);
    free(os);
    free(cq);
    free(cs);
}

/* moe_align through the backend; the reference alignment is returned in
 * sorted/blocks/npp (the GEMMs run on it). */
static int run_moe_align(ctx *x, const mx_case *c, const mx_moe_result *ref,
                         const experts *e, int block_m, int32_t *sorted,
                         int32_t *blocks, int32_t *npp, size_t cap_r, size_t cap_b)
{
    size_t T = c->T, k = (size_t)c->shape.topk, E = c->shape.E;
    const mxk_ops *ops = x->r->ops, *cpu = x->r->cpu;
    if (mx_moe_align(ref->route.ids, T, (int)k, E, block_m, e->map, sorted, cap_r,
                     blocks, cap_b, npp) != MX_OK)
        return -1;
    int32_t *ks = malloc(cap_r * sizeof *ks), *kb = malloc(cap_b * sizeof *kb), kn = 0;
    int32_t *cs = cpu ? malloc(cap_r * sizeof *cs) : NULL;
    int32_t *cb = cpu ? malloc(cap_b * sizeof *cb) : NULL, cn = 0;
    if (!ks || !kb) {
        free(ks);
        free(kb);
        free(cs);
        free(cb);
        return -1;
    }
    mxk_align_args a = {ref->route.ids, (int)T, (int)k, (int)E, block_m, e->map, ks,
                        kb, &kn, x->r->mutant};
    double ms = 0;
    mxk_status st = ops->moe_align(&a, &ms);
    if (st != MXK_OK) {
        char kb[40];
        row_error(x, kernel_of(MXV_STAGE_ALIGN, kb, sizeof kb), ops, st);
    } else {
        if (cpu) {
            mxk_align_args b = a;
            b.sorted_ids = cs;
            b.expert_ids = cb;
            b.num_post_pad = &cn;
            cpu->moe_align(&b, NULL);
        }
        /* the verdict covers sorted ids, block experts and the count */
        size_t nbytes = (cap_r + cap_b + 1) * sizeof(int32_t);
        uint8_t *got = malloc(nbytes), *want = malloc(nbytes);
        if (got && want) {
            memcpy(got, ks, cap_r * 4);
            memcpy(got + cap_r * 4, kb, cap_b * 4);
            memcpy(got + (cap_r + cap_b) * 4, &kn, 4);
            memcpy(want, sorted, cap_r * 4);
            memcpy(want + cap_r * 4, blocks, cap_b * 4);
            memcpy(want + (cap_r + cap_b) * 4, npp, 4);
            mxv_stage_src src = x->src;
            src.given = want;
            src.given_n = nbytes;
            src.given_cols = 4;
            mxv_row *w = judge_row(x, MXV_STAGE_ALIGN, &src, got, ms);
            if (w && cpu)
                w->backends_agree = !memcmp(ks, cs, cap_r * 4) &&
                                    !memcmp(kb, cb, cap_b * 4) && kn == cn;
        }
        free(got);
        free(want);
    }
    free(ks);
    free(kb);
    free(cs);
    free(cb);
    return 0;
}

/* The CPU backend beside this run whose GEMM outputs are compared with
 * the device's, or NULL: matrix-unit kernels (gemm_exact 0) are not the C
 * emulation's arithmetic, so their model, not the other backend, is what
 * they are compared with, and the emulation is not run for them. */
static const mxk_ops *gemm_peer(const ctx *x)
{
    const mxk_ops *ops = x->r->ops;
    return ops->abi < 2 || ops->gemm_exact ? x->r->cpu : NULL;
}

static void judge_gemm(ctx *x, mxv_stage_id id, const uint16_t *out,
                       const uint16_t *cpu_out, const mx_moe_result *ref, double ms)
{
    mxv_stage_src src = x->src;
    src.ref = ref;
    mxv_row *w = judge_row(x, id, &src, out, ms);
    if (!w)
        return;
    size_t n = w->j.n;
    /* a measured device model: bit-exactness is the verdict */
    mx_accum_model m;
    int measured = mx_accum_parse(x->model, &m) == 0 && m.kind == MX_ACC_BLOCK &&
                   m.block && m.block->measured;
    w->not_device = mxv_judge_not_device(&w->j, measured, x->r->bound_only);
    agree(w, out, cpu_out, n * sizeof *out); /* cpu_out: from gemm_peer's run */
}

static void run_mxfp8_gemm(ctx *x, mxv_stage_id id, const mxk_route *route,
                           const uint8_t *a, const uint8_t *as, const uint8_t *b,
                           const uint8_t *bs, size_t nexp, size_t N, size_t K,
                           const mx_moe_result *ref)
{
    const char *name = mxv_stage_kernel(mxv_stage_get(id), x->pol);
    const mxk_ops *ops = x->r->ops, *cpu = gemm_peer(x);
    size_t R = (size_t)route->tokens * (size_t)route->topk;
    uint16_t *out = calloc(mx_nz(R * N), sizeof *out);
    uint16_t *cout = cpu ? calloc(mx_nz(R * N), sizeof *cout) : NULL;
    mxk_mxfp8_gemm_args g = {*route, a, as, b, bs, 1, (int)nexp, (int)N, (int)K,
                             MXK_FP8_E4M3FNUZ, MXK_E8M0_PRODUCTION, MXK_PATH_AUTO, out,
                             x->r->mutant};
    double ms = 0;
    mxk_status st = nexp ? ops->mxfp8_group_gemm(&g, &ms) : MXK_OK;
    if (st != MXK_OK) {
        row_error(x, name, ops, st);
    } else {
        if (cpu && nexp) {
            mxk_mxfp8_gemm_args h = g;
            h.out = cout;
            cpu->mxfp8_group_gemm(&h, NULL);
        }
        judge_gemm(x, id, out, cout, ref, ms);
    }
    free(out);
    free(cout);
}

static void run_bf16_gemm(ctx *x, mxv_stage_id id, const mxk_route *route,
                          const uint16_t *a, const uint16_t *b, size_t nexp, size_t N,
                          size_t K, const mx_moe_result *ref)
{
    const char *name = mxv_stage_kernel(mxv_stage_get(id), x->pol);
    const mxk_ops *ops = x->r->ops, *cpu = gemm_peer(x);
    size_t R = (size_t)route->tokens * (size_t)route->topk;
    uint16_t *out = calloc(mx_nz(R * N), sizeof *out);
    uint16_t *cout = cpu ? calloc(mx_nz(R * N), sizeof *cout) : NULL;
    mxk_bf16_gemm_args g = {*route, a, b, (int)nexp, (int)N, (int)K, MXK_PATH_AUTO,
                            out, x->r->mutant};
    double ms = 0;
    mxk_status st = nexp ? ops->bf16_group_gemm(&g, &ms) : MXK_OK;
    if (st != MXK_OK) {
        row_error(x, name, ops, st);
    } else {
        if (cpu && nexp) {
            mxk_bf16_gemm_args h = g;
            h.out = cout;
            cpu->bf16_group_gemm(&h, NULL);
        }
        judge_gemm(x, id, out, cout, ref, ms);
    }
    free(out);
    free(cout);
}

static void run_swiglu(ctx *x, const mx_case *c, const mx_moe_result *ref)
{
    const mxk_ops *ops = x->r->ops, *cpu = x->r->cpu;
    size_t Tk = c->T * (size_t)c->shape.topk, I = c->shape.inter;
    uint8_t *q = malloc(mx_nz(Tk * I)), *s = malloc(mx_nz(Tk * I / 32));
    uint8_t *q2 = cpu ? malloc(mx_nz(Tk * I)) : NULL, *s2 = cpu ? malloc(mx_nz(Tk * I / 32)) : NULL;
    float *act = malloc(mx_nz(Tk * I) * sizeof *act);
    mxk_swiglu_args a = {ref->g1.model, q, s, act, (int)Tk, (int)I, MXK_FP8_E4M3FNUZ,
                         x->r->mutant};
    double ms = 0;
    mxk_status st = ops->swiglu_quant(&a, &ms);
    if (st != MXK_OK) {
        char kb[40];
        row_error(x, kernel_of(MXV_STAGE_ACTQ, kb, sizeof kb), ops, st);
    } else {
        if (cpu) {
            mxk_swiglu_args b = a;
            b.q = q2;
            b.scale = s2;
            b.act = NULL;
            cpu->swiglu_quant(&b, NULL);
        }
        mxv_stage_src src = x->src;
        src.ref = ref;
        agree(judge_row(x, MXV_STAGE_ACTQ_SCALE, &src, s, ms), s, s2, Tk * I / 32);
        src.out_scale = s;
        agree(judge_row(x, MXV_STAGE_ACTQ, &src, q, 0), q, q2, Tk * I);
        src.out_scale = NULL;
        judge_row(x, MXV_STAGE_ACT, &src, act, 0);
    }
    free(q);
    free(s);
    free(q2);
    free(s2);
    free(act);
}

static void run_moe_sum(ctx *x, const mx_case *c, const mx_moe_result *ref, int fp32)
{
    const mxk_ops *ops = x->r->ops, *cpu = x->r->cpu;
    size_t T = c->T, k = (size_t)c->shape.topk, H = c->shape.H;
    mxv_stage_id id = fp32 ? MXV_STAGE_ROUTED_FP32 : MXV_STAGE_ROUTED;
    uint16_t *out = malloc(mx_nz(T * H) * sizeof *out);
    uint16_t *cout = cpu ? malloc(mx_nz(T * H) * sizeof *cout) : NULL;
    mxk_sum_args a = {ref->y.model, out, (int)T, (int)k, (int)H, fp32, x->r->mutant};
    double ms = 0;
    mxk_status st = ops->moe_sum(&a, &ms);
    if (st != MXK_OK) {
        row_error(x, mxv_stage_get(id)->kernel, ops, st);
    } else {
        if (cpu) {
            mxk_sum_args b = a;
            b.out = cout;
            cpu->moe_sum(&b, NULL);
        }
        mxv_stage_src src = x->src;
        src.ref = ref;
        agree(judge_row(x, id, &src, out, ms), out, cout, T * H * sizeof *out);
    }
    free(out);
    free(cout);
}

/* ---- the kernels chained, as a whole MoE layer would run them ------------ */

/* Every kernel on the previous kernel's output; the routed output is
 * compared with the exact sum of the reference chain's GEMM2 values by the
 * peers' rules (this is how a framework test sees a bug).  Informational:
 * the row's own verdict is always pass. */
static void run_chain(ctx *x, const mx_case *c, const mx_moe_result *ref,
                      const experts *e, int w8a8, const mxk_route *r1,
                      const mxk_route *r2in)
{
    const mxk_ops *ops = x->r->ops;
    int mut = x->r->mutant;
    size_t T = c->T, k = (size_t)c->shape.topk, H = c->shape.H, I = c->shape.inter;
    size_t Tk = T * k, n = e->n;
    uint8_t *xq = malloc(mx_nz(T * H)), *xs = malloc(mx_nz(T * H / 32));
    uint8_t *q13 = malloc(mx_nz(n * 2 * I * H)), *s13 = malloc(mx_nz(n * 2 * I * H / 32));
    uint8_t *q2 = malloc(mx_nz(n * H * I)), *s2 = malloc(mx_nz(n * H * I / 32));
    uint16_t *g1 = calloc(mx_nz(Tk * 2 * I), sizeof *g1), *y = calloc(mx_nz(Tk * H), sizeof *y);
    uint16_t *a16 = malloc(mx_nz(Tk * I) * sizeof *a16), *out = malloc(mx_nz(T * H) * sizeof *out);
    uint8_t *aq = malloc(mx_nz(Tk * I)), *as = malloc(mx_nz(Tk * I / 32));
    double *act = malloc(mx_nz(Tk * I) * sizeof *act);
    size_t cap_r = (size_t)mxk_align_max_rows((int)T, (int)k, (int)c->shape.E, r1->block_m);
    size_t cap_b = (size_t)mxk_align_max_blocks((int)T, (int)k, (int)c->shape.E, r1->block_m);
    int32_t *sorted = malloc(cap_r * sizeof *sorted), *blocks = malloc(cap_b * sizeof *blocks);
    int32_t npp = 0;
    int64_t bad = 0;
    int ok = xq && xs && q13 && s13 && q2 && s2 && g1 && y && a16 && out && aq && as &&
             act && sorted && blocks;
    mxk_align_args al = {ref->route.ids, (int)T, (int)k, (int)c->shape.E, r1->block_m,
                         e->map, sorted, blocks, &npp, mut};
    ok = ok && ops->moe_align(&al, NULL) == MXK_OK;
    mxk_route ra = *r1, rb = *r2in;
    ra.sorted_ids = rb.sorted_ids = sorted;
    ra.expert_ids = rb.expert_ids = blocks;
    ra.num_post_pad = rb.num_post_pad = npp;
    if (ok && w8a8) {
        mxk_quant_args qa = {c->x, xq, xs, (int)T, (int)H, MXK_FP8_E4M3FNUZ, mut};
        mxk_fnuz_args f1 = {e->w13, e->w13s, q13, s13, (int)n, (int)(2 * I), (int)H, 1, &bad, mut};
        mxk_fnuz_args f2 = {e->w2, e->w2s, q2, s2, (int)n, (int)H, (int)I, 1, &bad, mut};
        ok = ops->mx_quant(&qa, NULL) == MXK_OK && (!n || (ops->fn_to_fnuz(&f1, NULL) == MXK_OK &&
                                                          ops->fn_to_fnuz(&f2, NULL) == MXK_OK));
        mxk_mxfp8_gemm_args ga = {ra, xq, xs, q13, s13, 1, (int)n, (int)(2 * I), (int)H,
                                  MXK_FP8_E4M3FNUZ, MXK_E8M0_PRODUCTION, MXK_PATH_AUTO, g1, mut};
        mxk_swiglu_args sa = {g1, aq, as, NULL, (int)Tk, (int)I, MXK_FP8_E4M3FNUZ, mut};
        mxk_mxfp8_gemm_args gb = {rb, aq, as, q2, s2, 1, (int)n, (int)H, (int)I,
                                  MXK_FP8_E4M3FNUZ, MXK_E8M0_PRODUCTION, MXK_PATH_AUTO, y, mut};
        ok = ok && (!n || ops->mxfp8_group_gemm(&ga, NULL) == MXK_OK) &&
             ops->swiglu_quant(&sa, NULL) == MXK_OK &&
             (!n || ops->mxfp8_group_gemm(&gb, NULL) == MXK_OK);
    } else if (ok) {
        mxk_bf16_gemm_args ga = {ra, c->x, e->b13, (int)n, (int)(2 * I), (int)H,
                                 MXK_PATH_AUTO, g1, mut};
        ok = !n || ops->bf16_group_gemm(&ga, NULL) == MXK_OK;
        mx_swiglu_exact(&c->shape, g1, Tk, I, 4, act, NULL);
        for (size_t i = 0; i < Tk * I; i++)
            a16[i] = mx_bf16_from_float((float)act[i]);
        mxk_bf16_gemm_args gb = {rb, a16, e->b2, (int)n, (int)H, (int)I, MXK_PATH_AUTO, y, mut};
        ok = ok && (!n || ops->bf16_group_gemm(&gb, NULL) == MXK_OK);
    }
    mxk_sum_args sm = {y, out, (int)T, (int)k, (int)H, 0, mut};
    ok = ok && ops->moe_sum(&sm, NULL) == MXK_OK;
    mxv_row *w = NULL;
    if (ok) {
        mxv_stage_src src = x->src;
        src.ref = ref;
        w = judge_row(x, MXV_STAGE_E2E, &src, out, 0);
        if (w)
            w->informational = 1;
    } else {
        w = new_row(x, mxv_stage_get(MXV_STAGE_E2E)->kernel);
    }
    if (w && !ok) {
        w->error = 1;
        snprintf(w->message, sizeof w->message, "chained run failed: %s",
                 ops->last_error ? ops->last_error() : "?");
    }
    free(xq);
    free(xs);
    free(q13);
    free(s13);
    free(q2);
    free(s2);
    free(g1);
    free(y);
    free(a16);
    free(out);
    free(aq);
    free(as);
    free(act);
    free(sorted);
    free(blocks);
}

/* ---- models --------------------------------------------------------------- */

static int set_one(char *dst, size_t cap, const char *name, size_t n, char *err,
                   size_t len)
{
    char buf[64];
    mx_accum_model m;
    if (n == 0 || n >= sizeof buf || n >= cap) {
        snprintf(err, len, "--model '%.*s': not an accumulation model (%s)", (int)n,
                 name, mx_accum_names());
        return -1;
    }
    memcpy(buf, name, n);
    buf[n] = 0;
    if (mx_accum_parse(buf, &m) != 0) {
        snprintf(err, len, "--model '%s': not an accumulation model (%s)", buf,
                 mx_accum_names());
        return -1;
    }
    memcpy(dst, buf, n + 1);
    return 0;
}

int mxv_runner_set_model(mxv_runner *r, const char *spec, char *err, size_t len)
{
    if (!spec) {
        const char *m8 = r->ops->abi >= 2 && r->ops->mxfp8_model ? r->ops->mxfp8_model
                                                                 : "fp32-seq";
        const char *m16 = r->ops->abi >= 2 && r->ops->bf16_model ? r->ops->bf16_model
                                                                 : "fp32-seq";
        return set_one(r->model_mx, sizeof r->model_mx, m8, strlen(m8), err, len) ||
                       set_one(r->model_bf16, sizeof r->model_bf16, m16, strlen(m16),
                               err, len)
                   ? -1
                   : 0;
    }
    const char *comma = strchr(spec, ',');
    if (!comma)
        return set_one(r->model_mx, sizeof r->model_mx, spec, strlen(spec), err, len) ||
                       set_one(r->model_bf16, sizeof r->model_bf16, spec, strlen(spec),
                               err, len)
                   ? -1
                   : 0;
    return set_one(r->model_mx, sizeof r->model_mx, spec, (size_t)(comma - spec), err,
                   len) ||
                   set_one(r->model_bf16, sizeof r->model_bf16, comma + 1,
                           strlen(comma + 1), err, len)
               ? -1
               : 0;
}

void mxv_runner_model_name(const mxv_runner *r, char *buf, size_t len)
{
    if (!strcmp(r->model_mx, r->model_bf16))
        snprintf(buf, len, "%s", r->model_mx);
    else
        snprintf(buf, len, "%s,%s", r->model_mx, r->model_bf16);
}

/* ---- one case ---------------------------------------------------------- */

static int next_pow2(size_t v)
{
    int p = 1;
    while ((size_t)p < v)
        p *= 2;
    return p;
}

/* A case's host half (mxv_case_prepare): the generated case, its layer
 * reference (and, for zero-scale families, the one recomputed from the
 * zeroed scales), the compacted experts and the reference's normalized
 * weights -- everything the kernels are judged against that does not need
 * the backend. */
struct mxv_case_ref {
    const mxv_case_def *cd;
    const mxv_runner *r;
    const char *model, *model16;
    mx_case c;
    mx_moe_result ref, ref2;
    int have_c, have_ref, have_ref2, have_e, w8a8;
    uint8_t *zx, *za;     /* zero-scale: the zeroed scale bytes          */
    experts e;
    double gen_s, layer_s, weights_s; /* mxv_case_ref_times */
};

void mxv_case_ref_times(const mxv_case_ref *p, mxv_case_times *t)
{
    t->gen_s = p->gen_s;
    t->layer_s = p->layer_s;
    t->weights_s = p->weights_s;
    for (int k = 0; k < MX_MOE_NT; k++)
        t->stage_s[k] = p->have_ref ? p->ref.seconds[k] : 0.0;
}

void mxv_case_ref_free(mxv_case_ref *p)
{
    if (!p)
        return;
    free(p->zx);
    free(p->za);
    if (p->have_e)
        experts_free(&p->e);
    if (p->have_ref2)
        mx_moe_result_free(&p->ref2);
    if (p->have_ref)
        mx_moe_result_free(&p->ref);
    if (p->have_c)
        mx_case_free(&p->c);
    free(p);
}

mxv_case_ref *mxv_case_prepare(const mxv_case_def *cd, const mxv_runner *r, char *err,
                               size_t len)
{
    char tokens[32], seed[32];
    snprintf(tokens, sizeof tokens, "%zu", cd->tokens);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)(cd->seed + r->seed_offset));
    mxv_case_ref *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, len, "case %s: out of memory", cd->name);
        return NULL;
    }
    p->cd = cd;
    p->r = r;
    /* the models of the backend's GEMM paths, or the --model given; the
     * BF16 one judges the BF16 GEMMs of bf16 policies */
    p->model = r->model_mx[0] ? r->model_mx : MXV_RUN_DEFAULT_MODEL;
    p->model16 = r->model_bf16[0] ? r->model_bf16 : p->model;
    /* zero-scale / subnormal-scale: the activation scale bytes of token 0
     * (and of its routed act rows) set to 0 or to 1 (2^-126: the GEMM
     * partials p * sc of that token fall in the FP32 subnormal range) */
    int zscale = !strcmp(cd->family, "zero-scale") || !strcmp(cd->family, "subnormal-scale");
    int zbyte = !strcmp(cd->family, "subnormal-scale");
    mxv_layer_opts lo = {cd->shape, tokens, cd->policy, seed,
                         zscale ? "real" : cd->family, p->model, NULL, NULL};
    mx_case_params cp;
    mx_moe_config cfg;
    if (mxv_layer_opts_parse(&lo, &cp, &cfg) != 0) {
        snprintf(err, len, "case %s: bad definition", cd->name);
        goto fail;
    }
    if (mx_accum_parse(p->model16, &cfg.model_bf16) != 0) {
        snprintf(err, len, "case %s: unknown model %s", cd->name, p->model16);
        goto fail;
    }
    double t0 = now_s();
    if (mx_case_generate(&cp, &p->c) != MX_OK) {
        snprintf(err, len, "case %s: cannot generate", cd->name);
        goto fail;
    }
    p->have_c = 1;
    double t1 = now_s();
    p->gen_s = t1 - t0;
    long bad;
    if (mx_moe_run(&cfg, &p->c.weights, p->c.x, p->c.T, NULL, &p->ref, &bad) != MX_OK) {
        snprintf(err, len, "case %s: the reference failed", cd->name);
        goto fail;
    }
    p->have_ref = 1;
    const mx_case *c = &p->c;
    const mx_moe_result *ref = &p->ref;
    p->w8a8 = ref->policy == MX_POLICY_W8A8;
    /* zero-scale: every activation scale byte of token 0 (and of its routed
     * act rows) set to 0, the one value where the production and spec E8M0
     * decodes differ on data a kernel can see; the GEMM stages are then
     * recomputed from those activations */
    if (zscale && p->w8a8) {
        size_t H0 = c->shape.H, I0 = c->shape.inter, k0 = (size_t)c->shape.topk;
        p->zx = malloc(mx_nz(c->T * H0 / 32));
        p->za = malloc(mx_nz(c->T * k0 * I0 / 32));
        mx_moe_given gv;
        memset(&gv, 0, sizeof gv);
        if (!p->zx || !p->za) {
            snprintf(err, len, "case %s: out of memory", cd->name);
            goto fail;
        }
        memcpy(p->zx, ref->xq.s, c->T * H0 / 32);
        memset(p->zx, zbyte, H0 / 32);
        memcpy(p->za, ref->actq.s, c->T * k0 * I0 / 32);
        memset(p->za, zbyte, k0 * I0 / 32);
        gv.xq = ref->xq.q;
        gv.xq_s = p->zx;
        gv.actq = ref->actq.q;
        gv.actq_s = p->za;
        if (mx_moe_run(&cfg, &c->weights, c->x, c->T, &gv, &p->ref2, &bad) != MX_OK) {
            snprintf(err, len, "case %s: the reference failed", cd->name);
            goto fail;
        }
        p->have_ref2 = 1;
    }
    double t2 = now_s();
    p->layer_s = t2 - t1;
    p->have_e = 1;
    int eb = experts_build(c, p->w8a8, &p->e);
    if (eb != 0) {
        snprintf(err, len, "case %s: %s", cd->name,
                 eb == -2 ? "the weights' FN -> FNUZ conversion failed" : "out of memory");
        goto fail;
    }
    p->weights_s = now_s() - t2;
    return p;
fail:
    mxv_case_ref_free(p);
    return NULL;
}

int mxv_case_finish(mxv_case_ref *p, mxv_rows *rows, char *err, size_t len)
{
    return mxv_case_finish_timed(p, rows, NULL, err, len);
}

int mxv_case_finish_timed(mxv_case_ref *p, mxv_rows *rows, double *judge_s, char *err,
                          size_t len)
{
    const mxv_case_def *cd = p->cd;
    const mxv_runner *r = p->r;
    const mx_case *cc = &p->c;
    const mx_moe_result *gr = p->have_ref2 ? &p->ref2 : &p->ref;
    int w8a8 = p->w8a8;
    const uint8_t *zx = p->zx;
    const uint8_t *a2q = w8a8 ? p->ref.actq.q : NULL, *a2s = w8a8 ? p->ref.actq.s : NULL;
    if (p->have_ref2)
        a2s = p->za;
    ctx x = {cd, r, rows, w8a8 ? p->model : p->model16, mx_moe_policy_name(p->ref.policy),
             cc->shape.name, w8a8 ? MXV_POL_W8A8 : MXV_POL_BF16, {0}, 0};
    x.src.shape = &cc->shape;
    x.src.T = cc->T;
    x.src.k = (size_t)cc->shape.topk;
    x.src.H = cc->shape.H;
    x.src.I = cc->shape.inter;
    const experts *e = &p->e;
    int rc = -1;
    int32_t *sorted = NULL, *blocks = NULL;
    size_t T = cc->T, k = (size_t)cc->shape.topk, H = cc->shape.H, I = cc->shape.inter;
    size_t Tk = T * k;
    int block_m = next_pow2((Tk + cc->shape.E_local - 1) / cc->shape.E_local);
    block_m = block_m < 16 ? 16 : block_m > 64 ? 64 : block_m;
    size_t cap_r = (size_t)mxk_align_max_rows((int)T, (int)k, (int)cc->shape.E, block_m);
    size_t cap_b = (size_t)mxk_align_max_blocks((int)T, (int)k, (int)cc->shape.E, block_m);
    sorted = malloc(cap_r * sizeof *sorted);
    blocks = malloc(cap_b * sizeof *blocks);
    int32_t npp = 0;
    if (!sorted || !blocks) {
        snprintf(err, len, "case %s: out of memory", cd->name);
        goto done;
    }
    if (w8a8) {
        run_mx_quant(&x, cc, &p->ref);
        /* the reference's FNUZ weights and packed scales: experts_build's
         * conversion (mx_fn_to_fnuz_mx), which the GEMMs below also read */
        run_fn_to_fnuz(&x, e, 2 * I, H, e->w13, e->w13s, e->q13, e->s13p, MXV_STAGE_W13);
        run_fn_to_fnuz(&x, e, H, I, e->w2, e->w2s, e->q2, e->s2p, MXV_STAGE_W2);
    }
    if (run_moe_align(&x, cc, &p->ref, e, block_m, sorted, blocks, &npp, cap_r, cap_b) != 0) {
        snprintf(err, len, "case %s: reference alignment failed", cd->name);
        goto done;
    }
    mxk_route route1 = {sorted, blocks, npp, block_m, (int)T, (int)k, 1, NULL};
    mxk_route route2 = {sorted, blocks, npp, block_m, (int)T, (int)k, 0, p->ref.route.weights};
    if (w8a8) {
        run_mxfp8_gemm(&x, MXV_STAGE_G1, &route1, p->ref.xq.q, zx ? zx : p->ref.xq.s, e->q13,
                       e->s13p, e->n, 2 * I, H, gr);
        run_swiglu(&x, cc, gr);
        run_mxfp8_gemm(&x, MXV_STAGE_Y, &route2, a2q, a2s, e->q2, e->s2p, e->n, H, I, gr);
    } else {
        run_bf16_gemm(&x, MXV_STAGE_G1, &route1, cc->x, e->b13, e->n, 2 * I, H, &p->ref);
        run_bf16_gemm(&x, MXV_STAGE_Y, &route2, p->ref.act16.model, e->b2, e->n, H, I,
                      &p->ref);
    }
    run_moe_sum(&x, cc, gr, 0);
    run_moe_sum(&x, cc, gr, 1);
    if (r->chain)
        run_chain(&x, cc, &p->ref, e, w8a8, &route1, &route2);
    rc = 0;
done:
    if (judge_s)
        *judge_s = x.judge_s;
    free(sorted);
    free(blocks);
    mxv_case_ref_free(p);
    return rc;
}

int mxv_run_case(const mxv_case_def *cd, const mxv_runner *r, mxv_rows *rows,
                 char *err, size_t len)
{
    mxv_case_ref *p = mxv_case_prepare(cd, r, err, len);
    return p ? mxv_case_finish(p, rows, err, len) : -1;
}
