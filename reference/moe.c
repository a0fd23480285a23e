/* moe.c -- the MiniMax-M3 MoE layer reference pipeline (see mxref/moe.h).
 *
 * Routed rows are in flat order r = t * topk + j.  Each local expert's
 * GEMMs run over the rows routed to it (a gather of token rows for GEMM1, of
 * act rows for GEMM2), exactly as a grouped kernel reads sorted rows; rows
 * routed to experts that are not local (EP) stay zero.
 *
 * On the worker pool (mxref/pool.h; docs/scaling.md) the layer is two
 * chains side by side, the shared expert and the routed path, joined by
 * the combine; the experts of a GEMM stage run longest first, the row-wise
 * stages and the weight conversions by blocks of rows.  Every task writes
 * only its own outputs; statuses and statistics are combined after each
 * loop in a fixed order, so nothing depends on the thread count.
 * Length (~740 lines): the layer's stages in dataflow order and how they
 * are spread over the pool, read top to bottom; shapes and policies are in
 * moe_config.c, routing in moe_route.c, the activation in moe_act.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mxref/fnuz.h"
#include "mxref/moe.h"
#include "mxref/pool.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void mx_stage_gemm_free(mx_stage_gemm *g)
{
    free(g->exact);
    free(g->model);
    free(g->bound);
    memset(g, 0, sizeof *g);
}

/* 1 when expert id is one of this rank's (expert0 .. expert0 + E_local -
 * 1), its local index in *le */
static int local_expert(const mx_moe_shape *sh, int32_t id, size_t *le)
{
    *le = (size_t)id - sh->expert0;
    return (size_t)id >= sh->expert0 && *le < sh->E_local;
}

/* A stage's arrays, not cleared: the caller writes every element (the
 * stage's tasks, and stage_gemm_zero_row for rows no task writes).  A
 * cleared allocation of this size is a serial memset on the thread that
 * asks for it (glibc serves it from a heap once a free of that size has
 * raised its mmap threshold): 2.8 ms of a 0.4 s layer's one-thread
 * trace, before GEMM1's tasks start. */
static mx_status stage_gemm_alloc(mx_stage_gemm *g, size_t rows, size_t cols)
{
    g->rows = rows;
    g->cols = cols;
    size_t n = mx_nz(rows * cols);
    g->exact = malloc(n * sizeof *g->exact);
    g->model = malloc(n * sizeof *g->model);
    g->bound = malloc(n * sizeof *g->bound);
    return g->exact && g->model && g->bound ? MX_OK : MX_ENOMEM;
}

/* row i of a stage as zeros (exact, model and bound) */
static void stage_gemm_zero_row(mx_stage_gemm *g, size_t i)
{
    size_t c = g->cols;
    memset(g->exact + i * c, 0, c * sizeof *g->exact);
    memset(g->model + i * c, 0, c * sizeof *g->model);
    memset(g->bound + i * c, 0, c * sizeof *g->bound);
}

static void act16_free(mx_stage_act16 *a)
{
    free(a->exact);
    free(a->model);
    free(a->alt);
    memset(a, 0, sizeof *a);
}

void mx_moe_result_free(mx_moe_result *r)
{
    mx_moe_routing_free(&r->route);
    mx_stage_quant_free(&r->xq);
    mx_stage_gemm_free(&r->g1);
    mx_stage_quant_free(&r->actq);
    act16_free(&r->act16);
    mx_stage_gemm_free(&r->y);
    mx_stage_gemm_free(&r->routed);
    mx_stage_gemm_free(&r->sh_g1);
    act16_free(&r->sh_act);
    mx_stage_gemm_free(&r->shared);
    mx_stage_gemm_free(&r->out);
    free(r->out_e2e);
    memset(r, 0, sizeof *r);
}

static void add_stats(mx_gemm_stats *a, const mx_gemm_stats *b)
{
    a->elements += b->elements;
    a->slow_elements += b->slow_elements;
    a->irregular_groups += b->irregular_groups;
}

/* One GEMM over gathered rows, results scattered into a stage: row i to
 * row dst_rows[i], or (dst_rows NULL) the stage's rows 0 .. M-1 written in
 * place (M x N: the stage's own shape). */
static mx_status gemm_rows(const mx_moe_config *c, const mx_operand *A,
                           const mx_operand *B, const float *w,
                           const size_t *dst_rows, mx_stage_gemm *st,
                           mx_gemm_stats *stats)
{
    size_t M = A->rows, N = B->rows;
    if (M == 0)
        return MX_OK;
    mx_gemm_spec spec = {MX_E8M0_PRODUCTION,
                         !A->scales && c->model_bf16.name[0] ? c->model_bf16
                                                             : c->model,
                         w};
    mx_gemm_stats gs;
    mx_status s;
    if (!dst_rows) { /* the stage's own rows: no copy */
        mx_gemm_out o = {st->exact, NULL, st->model, st->bound, NULL, NULL};
        if ((s = mx_gemm(&spec, A, B, &o, &gs)) == MX_OK)
            add_stats(stats, &gs);
        return s;
    }
    double *ex = malloc(M * N * sizeof *ex), *bd = malloc(M * N * sizeof *bd);
    uint16_t *mo = malloc(M * N * sizeof *mo);
    s = MX_ENOMEM;
    if (ex && bd && mo) {
        mx_gemm_out o = {ex, NULL, mo, bd, NULL, NULL};
        s = mx_gemm(&spec, A, B, &o, &gs);
        if (s == MX_OK) {
            add_stats(stats, &gs);
            for (size_t i = 0; i < M; i++) {
                size_t d = dst_rows[i] * st->cols;
                memcpy(st->exact + d, ex + i * N, N * sizeof *ex);
                memcpy(st->bound + d, bd + i * N, N * sizeof *bd);
                memcpy(st->model + d, mo + i * N, N * sizeof *mo);
            }
        }
    }
    free(ex);
    free(bd);
    free(mo);
    return s;
}

/* An expert's checkpoint weights, as the policy's kernel reads them:
 * FN -> FNUZ normalized (w8a8) or dequantized to BF16. */
typedef struct {
    uint8_t *q, *s;   /* FNUZ codes and scales (w8a8)  */
    uint16_t *bf;     /* BF16 values (bf16 policies)   */
} expert_w;

/* Weights are converted by blocks of rows on the worker pool (every row on
 * its own: the bytes do not depend on the thread count), each block with
 * its own status, the first failure in block order returned. */
#define WEIGHT_BLOCK ((size_t)1 << 18) /* about this many elements a block */

typedef struct {
    int w8a8;
    const uint8_t *q, *s;
    size_t K;
    expert_w *out;
} convert_ctx;

static mx_status convert_rows(void *v, size_t r0, size_t n)
{
    const convert_ctx *c = v;
    size_t K = c->K, G = K / MX_BLOCK;
    if (c->w8a8) {
        size_t bad;
        return mx_fn_to_fnuz_mx(c->q + r0 * K, n * K, c->s + r0 * G, n * G, MX_BLOCK,
                                c->out->q + r0 * K, c->out->s + r0 * G, &bad);
    }
    mx_dequant_bf16(MX_E4M3FN, c->q + r0 * K, c->s + r0 * G, n, K, c->out->bf + r0 * K);
    return MX_OK;
}

static mx_status load_weights(int w8a8, const uint8_t *q, const uint8_t *s,
                              size_t N, size_t K, expert_w *out)
{
    memset(out, 0, sizeof *out);
    if (w8a8) {
        out->q = malloc(mx_nz(N * K));
        out->s = malloc(mx_nz(N * K / MX_BLOCK));
        if (!out->q || !out->s)
            return MX_ENOMEM;
    } else {
        out->bf = malloc(mx_nz(N * K) * sizeof *out->bf);
        if (!out->bf)
            return MX_ENOMEM;
    }
    size_t rows = K ? WEIGHT_BLOCK / K : N;
    convert_ctx cc = {w8a8, q, s, K, out};
    return mx_parallel_rows(N, rows ? rows : 1, convert_rows, &cc);
}

static void free_weights(expert_w *w)
{
    free(w->q);
    free(w->s);
    free(w->bf);
}

static mx_operand operand_fnuz(const uint8_t *q, const uint8_t *s, size_t rows,
                               size_t K, const int32_t *idx)
{
    mx_operand o = {mx_format_get(MX_E4M3FNUZ), q, rows, K, K, s, K / MX_BLOCK, 1, idx};
    return o;
}

static mx_operand operand_bf16(const uint16_t *v, size_t rows, size_t K,
                               const int32_t *idx)
{
    mx_operand o = {mx_format_get(MX_BF16), v, rows, K, K, NULL, 0, 0, idx};
    return o;
}

/* Row-parallel pieces of the layer: each task handles a block of rows
 * (tokens or routed rows) and writes only those rows. */
#define ROW_BLOCK 16

/* BF16 activations by blocks of ROW_BLOCK rows, each block's count of
 * alternatives apart, summed in block order */
typedef struct {
    const double *act, *bound;
    mx_stage_act16 *a;
    size_t *amb; /* per block */
} act16_ctx;

static void act16_task(void *v, size_t b)
{
    act16_ctx *c = v;
    mx_stage_act16 *a = c->a;
    size_t r0 = b * ROW_BLOCK, r1 = r0 + ROW_BLOCK < a->rows ? r0 + ROW_BLOCK : a->rows;
    size_t amb = 0;
    for (size_t i = r0 * a->cols; i < r1 * a->cols; i++) {
        double x = c->act[i], e = c->bound[i];
        a->exact[i] = x;
        a->model[i] = mx_bf16_from_float((float)x);
        uint16_t lo = mx_bf16_from_float((float)(x - e));
        uint16_t hi = mx_bf16_from_float((float)(x + e));
        a->alt[i] = lo != a->model[i] ? lo : hi;
        amb += a->alt[i] != a->model[i];
    }
    c->amb[b] = amb;
}

static mx_status act16_stage(const double *act, const double *bound, size_t n,
                             mx_stage_act16 *a, size_t rows, size_t cols)
{
    a->rows = rows;
    a->cols = cols;
    a->exact = malloc(mx_nz(n) * sizeof *a->exact);
    a->model = malloc(mx_nz(n) * sizeof *a->model);
    a->alt = malloc(mx_nz(n) * sizeof *a->alt);
    size_t nb = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    size_t *amb = malloc(mx_nz(nb) * sizeof *amb);
    if (!a->exact || !a->model || !a->alt || !amb) {
        free(amb);
        return MX_ENOMEM;
    }
    act16_ctx c = {act, bound, a, amb};
    mx_parallel_for(nb, act16_task, &c);
    for (size_t b = 0; b < nb; b++)
        a->n_ambiguous += amb[b];
    free(amb);
    return MX_OK;
}

typedef struct {
    const mx_moe_shape *sh;
    const uint16_t *g1;
    const int32_t *ids; /* rows of experts that are not local stay 0; NULL:
                         * every row is computed (the shared expert) */
    size_t rows, I;
    double ulps, *act, *bound;
} swiglu_ctx;

static void swiglu_task(void *v, size_t b)
{
    swiglu_ctx *c = v;
    const mx_moe_shape *sh = c->sh;
    size_t r0 = b * ROW_BLOCK, n = c->rows - r0 < ROW_BLOCK ? c->rows - r0 : ROW_BLOCK;
    mx_swiglu_exact(sh, c->g1 + r0 * 2 * c->I, n, c->I, c->ulps, c->act + r0 * c->I,
                    c->bound + r0 * c->I);
    for (size_t i = r0; c->ids && i < r0 + n; i++) { /* ids NULL: every row */
        size_t le;
        if (!local_expert(sh, c->ids[i], &le))
            for (size_t j = 0; j < c->I; j++)
                c->act[i * c->I + j] = c->bound[i * c->I + j] = 0;
    }
}

/* The shared expert: BF16 dense MLP on x. */
static mx_status shared_expert(const mx_moe_config *c, const mx_moe_weights *w,
                               const uint16_t *x, size_t T, mx_moe_result *r,
                               mx_gemm_stats *stats)
{
    const mx_moe_shape *sh = &c->shape;
    size_t H = sh->H, Is = sh->inter_shared;
    mx_status s;
    expert_w w13, w2;
    double *act = malloc(mx_nz(T * Is) * sizeof *act);
    double *bnd = malloc(mx_nz(T * Is) * sizeof *bnd);
    memset(&w13, 0, sizeof w13);
    memset(&w2, 0, sizeof w2);
    if (!act || !bnd) {
        s = MX_ENOMEM;
        goto done;
    }
    if ((s = stage_gemm_alloc(&r->sh_g1, T, 2 * Is)) != MX_OK ||
        (s = stage_gemm_alloc(&r->shared, T, H)) != MX_OK ||
        (s = load_weights(0, w->ws13, w->ws13_s, 2 * Is, H, &w13)) != MX_OK ||
        (s = load_weights(0, w->ws2, w->ws2_s, H, Is, &w2)) != MX_OK)
        goto done;
    mx_operand A = operand_bf16(x, T, H, NULL), B = operand_bf16(w13.bf, 2 * Is, H, NULL);
    if ((s = gemm_rows(c, &A, &B, NULL, NULL, &r->sh_g1, stats)) != MX_OK)
        goto done;
    swiglu_ctx sc = {sh, r->sh_g1.model, NULL, T, Is, c->sigmoid_ulps, act, bnd};
    mx_parallel_for((T + ROW_BLOCK - 1) / ROW_BLOCK, swiglu_task, &sc);
    if ((s = act16_stage(act, bnd, T * Is, &r->sh_act, T, Is)) != MX_OK)
        goto done;
    mx_operand A2 = operand_bf16(r->sh_act.model, T, Is, NULL);
    mx_operand B2 = operand_bf16(w2.bf, H, Is, NULL);
    s = gemm_rows(c, &A2, &B2, NULL, NULL, &r->shared, stats);
done:
    free_weights(&w13);
    free_weights(&w2);
    free(act);
    free(bnd);
    return s;
}

/* Exact sum of a few binary64 values (BF16 inputs: exact unless their
 * exponents are more than ~45 apart, then through MPFR). */
static double exact_sum(const double *v, int n)
{
    double s = 0, c = 0;
    int exact = 1;
    for (int i = 0; i < n; i++) {
        double t = s + v[i];
        /* TwoSum: the rounding error of s + v[i] */
        double bv = t - s, e = (s - (t - bv)) + (v[i] - bv);
        exact &= e == 0;
        s = t;
        c += e;
    }
    if (exact)
        return s;
    mpfr_t acc, x;
    mpfr_init2(acc, 2200);
    mpfr_init2(x, 53);
    mpfr_set_zero(acc, 1);
    for (int i = 0; i < n; i++) {
        mpfr_set_d(x, v[i], MPFR_RNDN);
        mpfr_add(acc, acc, x, MPFR_RNDN);
    }
    double r = mpfr_get_d(acc, MPFR_RNDN);
    mpfr_clears(acc, x, (mpfr_ptr)0);
    (void)c;
    return r;
}

typedef struct {
    const mx_quant_params *qp;
    const uint16_t *x;
    size_t H;
    uint8_t *q, *s;
} xquant_ctx;

/* tokens per block of the activation quantization (every row on its own) */
#define XQUANT_ROWS 4

static mx_status xquant_rows(void *v, size_t t0, size_t n)
{
    const xquant_ctx *c = v;
    return mx_quantize_bf16(c->qp, c->x + t0 * c->H, n, c->H, c->H, c->q + t0 * c->H,
                            c->s + t0 * (c->H / MX_BLOCK), NULL);
}

/* moe_sum of token t (BF16 sequential over k) and the final combine */
typedef struct {
    const mx_moe_shape *sh;
    const uint16_t *y, *given_routed, *given_shared;
    mx_moe_result *r;
} combine_ctx;

static double exact_sum(const double *v, int n);

static void combine_task(void *v, size_t t)
{
    combine_ctx *c = v;
    const mx_moe_shape *sh = c->sh;
    mx_moe_result *r = c->r;
    size_t H = sh->H, k = (size_t)sh->topk;
    const uint16_t *y = c->y;
    for (size_t h = 0; h < H; h++) {
        double vv[64], sabs = 0;
        uint16_t acc = y[(t * k) * H + h];
        for (size_t j = 0; j < k; j++) {
            vv[j] = mx_bf16_to_float(y[(t * k + j) * H + h]);
            sabs += fabs(vv[j]);
            if (j)
                acc = mx_bf16_from_float(mx_bf16_to_float(acc) + (float)vv[j]);
        }
        size_t i = t * H + h;
        r->routed.exact[i] = exact_sum(vv, (int)k);
        r->routed.model[i] = acc;
        /* k - 1 BF16 additions in any order: gamma_{k-1} with u = 2^-8 */
        double g = (double)(k - 1) * 0x1p-8;
        r->routed.bound[i] = g / (1 - g) * sabs * 1.0001 + (double)k * 0x1p-134;
    }
    const uint16_t *rs = c->given_routed ? c->given_routed : r->routed.model;
    const uint16_t *ss = c->given_shared ? c->given_shared : r->shared.model;
    for (size_t h = 0; h < H; h++) {
        size_t i = t * H + h;
        double rv = mx_bf16_to_float(rs[i]), sv = mx_bf16_to_float(ss[i]);
        double val = (double)sh->routed_scaling * rv + sv; /* exact */
        r->out.exact[i] = val;
        r->out.model[i] = mx_bf16_from_float((float)val);
        r->out.bound[i] = 0x1p-8 * fabs(val) + 0x1p-134;
        double ye[64];
        for (size_t j = 0; j < k; j++)
            ye[j] = r->y.exact[(t * k + j) * H + h];
        r->out_e2e[i] = (double)sh->routed_scaling * exact_sum(ye, (int)k) +
                        r->shared.exact[i];
    }
}

/* The routed GEMMs of one layer, one task per local expert with rows,
 * longest first (order[]: most rows first, ties to the lower expert).
 * Expert le's rows are rows[start[le] .. start[le+1]) in flat order, so
 * its gathered operand is the same for any thread count; each task writes
 * its own rows of the stage, its own status and statistics (slot le), and
 * the caller sums the statistics in expert order. */
typedef struct {
    const mx_moe_config *c;
    const mx_moe_weights *w;
    int w8a8, gemm; /* 1 or 2 */
    const size_t *start, *rows, *order;
    const uint8_t *aq, *aq_s;     /* w8a8 A codes and scales               */
    const uint16_t *a16;          /* bf16 A values                         */
    const float *tw;              /* GEMM2 top-k weights [T*topk]          */
    mx_moe_result *r;
    mx_status *st;
    mx_gemm_stats *stats;
} expert_ctx;

static void expert_task(void *vctx, size_t i)
{
    expert_ctx *x = vctx;
    const mx_moe_shape *sh = &x->c->shape;
    size_t H = sh->H, I = sh->inter, k = (size_t)sh->topk, le = x->order[i];
    size_t M = x->start[le + 1] - x->start[le];
    const size_t *dst = x->rows + x->start[le];
    int32_t *idx = malloc(mx_nz(M) * sizeof *idx);
    float *wr = x->gemm == 2 ? malloc(mx_nz(M) * sizeof *wr) : NULL;
    if (!idx || (x->gemm == 2 && !wr)) {
        free(idx);
        free(wr);
        x->st[le] = MX_ENOMEM;
        return;
    }
    for (size_t j = 0; j < M; j++) {
        idx[j] = (int32_t)(x->gemm == 1 ? dst[j] / k : dst[j]);
        if (wr)
            wr[j] = x->tw[dst[j]];
    }
    size_t N = x->gemm == 1 ? 2 * I : H, K = x->gemm == 1 ? H : I;
    const uint8_t *q = x->gemm == 1 ? x->w->w13[le] : x->w->w2[le];
    const uint8_t *qs = x->gemm == 1 ? x->w->w13_s[le] : x->w->w2_s[le];
    expert_w ew;
    mx_status s = load_weights(x->w8a8, q, qs, N, K, &ew);
    if (s == MX_OK) {
        mx_operand A = x->w8a8 ? operand_fnuz(x->aq, x->aq_s, M, K, idx)
                               : operand_bf16(x->a16, M, K, idx);
        mx_operand B = x->w8a8 ? operand_fnuz(ew.q, ew.s, N, K, NULL)
                               : operand_bf16(ew.bf, N, K, NULL);
        s = gemm_rows(x->c, &A, &B, wr, dst, x->gemm == 1 ? &x->r->g1 : &x->r->y,
                      &x->stats[le]);
    }
    free_weights(&ew);
    free(idx);
    free(wr);
    x->st[le] = s;
}

/* Runs the tasks of one GEMM stage over the experts with rows; the first
 * failure in expert order, statistics summed in that order. */
static mx_status run_experts(expert_ctx *x, size_t nrun, mx_moe_result *r)
{
    size_t E = x->c->shape.E_local;
    x->st = malloc(E * sizeof *x->st);
    x->stats = calloc(E, sizeof *x->stats);
    mx_status s = MX_ENOMEM;
    if (x->st && x->stats) {
        for (size_t le = 0; le < E; le++)
            x->st[le] = MX_OK;
        mx_parallel_for(nrun, expert_task, x);
        s = MX_OK;
        for (size_t le = 0; le < E; le++) {
            if (x->st[le] != MX_OK && s == MX_OK)
                s = x->st[le];
            add_stats(&r->stats, &x->stats[le]);
        }
    }
    free(x->st);
    free(x->stats);
    return s;
}

/* order[0 .. n) = the local experts with rows, most rows first (ties: the
 * lower expert first); returns n. */
static size_t longest_first(const size_t *start, size_t E, size_t *order)
{
    size_t n = 0;
    for (size_t le = 0; le < E; le++) {
        size_t m = start[le + 1] - start[le], j = n++;
        if (!m) {
            n--;
            continue;
        }
        /* insertion: before every expert with fewer rows */
        while (j > 0 && start[order[j - 1] + 1] - start[order[j - 1]] < m) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = le;
    }
    return n;
}

/* The layer is two chains that run side by side on the pool: the shared
 * expert (it depends on x alone) and the routed path (routing, GEMM1,
 * SwiGLU, GEMM2); the combine joins them. */
typedef struct {
    const mx_moe_config *c;
    const mx_moe_weights *w;
    const uint16_t *x;
    size_t T;
    const mx_moe_given *gv;
    mx_moe_result *r;
    long *bad_expert;
    mx_status st_shared, st_routed;
    int routed_early;       /* the routed path failed before SwiGLU      */
    mx_gemm_stats sh_stats; /* the shared expert's, added after the join */
} layer_ctx;

/* Routing, activation quantization, GEMM1, SwiGLU (+ quantization) and
 * GEMM2; writes the stage times of r->seconds but the combine's. */
static mx_status routed_path(layer_ctx *L)
{
    const mx_moe_config *c = L->c;
    const mx_moe_weights *w = L->w;
    const mx_moe_shape *sh = &c->shape;
    const mx_moe_given *gv = L->gv;
    const uint16_t *x = L->x;
    mx_moe_result *r = L->r;
    size_t T = L->T, H = sh->H, I = sh->inter, k = (size_t)sh->topk, Tk = T * k;
    int w8a8 = r->policy == MX_POLICY_W8A8;
    mx_status s;
    double *act = NULL, *abnd = NULL;
    size_t *start = NULL, *dst = NULL, *order = NULL;
    L->routed_early = 1;

    double t_stage = now(), t_next;
    mx_pool_trace_mark("route");
    /* router */
    if ((s = mx_moe_route(sh, w->router, w->bias, x, T, &r->route)) != MX_OK)
        goto done;
    const int32_t *ids = gv->topk_ids ? gv->topk_ids : r->route.ids;
    const float *tw = gv->topk_weights ? gv->topk_weights : r->route.weights;
    for (size_t i = 0; i < Tk; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= sh->E) {
            s = MX_ERANGE;
            goto done;
        }
        size_t le;
        if (local_expert(sh, ids[i], &le) && (!w->w13[le] || !w->w2[le])) {
            if (L->bad_expert)
                *L->bad_expert = ids[i];
            s = MX_EINVAL;
            goto done;
        }
    }

    /* activation quantization (w8a8) */
    start = malloc((sh->E_local + 2) * sizeof *start);
    order = malloc((sh->E_local + 1) * sizeof *order);
    dst = malloc(mx_nz(Tk) * sizeof *dst);
    act = malloc(mx_nz(Tk * I) * sizeof *act);
    abnd = malloc(mx_nz(Tk * I) * sizeof *abnd);
    if (!start || !order || !dst || !act || !abnd) {
        s = MX_ENOMEM;
        goto done;
    }
    const uint8_t *xq = NULL, *xq_s = NULL;
    if (w8a8) {
        mx_quant_params qp = mx_quant_production(MX_E4M3FNUZ);
        size_t n = T * H;
        r->xq.rows = T;
        r->xq.cols = H;
        r->xq.q = malloc(mx_nz(n));
        r->xq.s = malloc(mx_nz(n / MX_BLOCK));
        r->xq.q_alt = malloc(mx_nz(n));
        r->xq.s_alt = malloc(mx_nz(n / MX_BLOCK));
        if (!r->xq.q || !r->xq.s || !r->xq.q_alt || !r->xq.s_alt) {
            s = MX_ENOMEM;
            goto done;
        }
        {
            xquant_ctx xc = {&qp, x, H, r->xq.q, r->xq.s};
            if ((s = mx_parallel_rows(T, XQUANT_ROWS, xquant_rows, &xc)) != MX_OK)
                goto done;
        }
        /* a deterministic function of BF16 inputs: no alternatives */
        memcpy(r->xq.q_alt, r->xq.q, n);
        memcpy(r->xq.s_alt, r->xq.s, n / MX_BLOCK);
        xq = gv->xq ? gv->xq : r->xq.q;
        xq_s = gv->xq_s ? gv->xq_s : r->xq.s;
    }

    t_next = now();
    r->seconds[MX_MOE_T_ROUTE] = t_next - t_stage;
    mx_pool_trace_mark("gemm1");
    t_stage = t_next;
    /* rows of each local expert, in flat order: expert le has
     * dst[start[le] .. start[le+1]) */
    for (size_t le = 0; le <= sh->E_local; le++)
        start[le] = 0;
    for (size_t i = 0; i < Tk; i++) {
        size_t le;
        if (local_expert(sh, ids[i], &le))
            start[le + 1]++;
    }
    for (size_t le = 0; le < sh->E_local; le++)
        start[le + 1] += start[le];
    {
        size_t *fill = malloc((sh->E_local + 1) * sizeof *fill);
        if (!fill) {
            s = MX_ENOMEM;
            goto done;
        }
        memcpy(fill, start, (sh->E_local + 1) * sizeof *fill);
        for (size_t i = 0; i < Tk; i++) { /* flat order within each expert */
            size_t le;
            if (local_expert(sh, ids[i], &le))
                dst[fill[le]++] = i;
        }
        free(fill);
    }
    size_t nrun = longest_first(start, sh->E_local, order);

    /* GEMM1 per local expert, in parallel */
    if ((s = stage_gemm_alloc(&r->g1, Tk, 2 * I)) != MX_OK ||
        (s = stage_gemm_alloc(&r->y, Tk, H)) != MX_OK)
        goto done;
    for (size_t i = 0; i < Tk; i++) { /* rows of other ranks' experts: 0 */
        size_t le;
        if (!local_expert(sh, ids[i], &le)) {
            stage_gemm_zero_row(&r->g1, i);
            stage_gemm_zero_row(&r->y, i);
        }
    }
    expert_ctx ex = {c, w, w8a8, 1, start, dst, order, xq, xq_s, x, tw, r, NULL, NULL};
    if ((s = run_experts(&ex, nrun, r)) != MX_OK)
        goto done;

    t_next = now();
    r->seconds[MX_MOE_T_GEMM1] = t_next - t_stage;
    mx_pool_trace_mark("act");
    t_stage = t_next;
    L->routed_early = 0;
    /* SwiGLU (+ quantization) on the given or the model's g1 */
    const uint16_t *g1 = gv->g1 ? gv->g1 : r->g1.model;
    swiglu_ctx sc = {sh, g1, ids, Tk, I, c->sigmoid_ulps, act, abnd};
    mx_parallel_for((Tk + ROW_BLOCK - 1) / ROW_BLOCK, swiglu_task, &sc);
    if (w8a8)
        s = mx_quant_interval(act, abnd, Tk, I, &r->actq);
    else
        s = act16_stage(act, abnd, Tk * I, &r->act16, Tk, I);
    if (s != MX_OK)
        goto done;

    t_next = now();
    r->seconds[MX_MOE_T_ACT] = t_next - t_stage;
    mx_pool_trace_mark("gemm2");
    t_stage = t_next;
    /* GEMM2 per local expert, top-k weight on the accumulator */
    expert_ctx ey = {c, w, w8a8, 2, start, dst, order,
                     gv->actq ? gv->actq : r->actq.q,
                     gv->actq_s ? gv->actq_s : r->actq.s,
                     gv->act16 ? gv->act16 : r->act16.model, tw, r, NULL, NULL};
    s = run_experts(&ey, nrun, r);
    r->seconds[MX_MOE_T_GEMM2] = now() - t_stage;
done:
    free(act);
    free(abnd);
    free(start);
    free(order);
    free(dst);
    return s;
}

static void layer_task(void *v, size_t i)
{
    layer_ctx *L = v;
    if (i == 0) {
        mx_pool_trace_mark("shared");
        double t0 = now();
        L->st_shared = shared_expert(L->c, L->w, L->x, L->T, L->r, &L->sh_stats);
        L->r->seconds[MX_MOE_T_SHARED] = now() - t0;
    } else {
        L->st_routed = routed_path(L);
    }
}

mx_status mx_moe_run(const mx_moe_config *c, const mx_moe_weights *w,
                     const uint16_t *x, size_t T, const mx_moe_given *given,
                     mx_moe_result *r, long *bad_expert)
{
    const mx_moe_shape *sh = &c->shape;
    size_t H = sh->H;
    mx_moe_given none;
    memset(&none, 0, sizeof none);
    const mx_moe_given *gv = given ? given : &none;
    memset(r, 0, sizeof *r);
    if (bad_expert)
        *bad_expert = -1;
    if (sh->topk < 1 || sh->topk > 64 || H % MX_BLOCK || sh->inter % MX_BLOCK ||
        sh->inter_shared % MX_BLOCK || sh->E_local == 0 ||
        sh->expert0 + sh->E_local > sh->E)
        return MX_EINVAL;
    r->policy = mx_moe_dispatch(sh, c->policy, T);
    r->model = c->model;
    mx_status s;

    mx_pool_trace_mark("layer");
    /* the shared expert alongside the routed path: each writes only its
     * own stages; the failure reported is the one the stages in order
     * give (routing and GEMM1, then the shared expert, then the rest) */
    layer_ctx L = {c, w, x, T, gv, r, bad_expert, MX_OK, MX_OK, 0, {0, 0, 0}};
    mx_parallel_for(2, layer_task, &L);
    if (L.st_routed != MX_OK && L.routed_early)
        s = L.st_routed;
    else if (L.st_shared != MX_OK)
        s = L.st_shared;
    else
        s = L.st_routed;
    if (s != MX_OK)
        goto fail;
    add_stats(&r->stats, &L.sh_stats);

    double t_stage = now();
    mx_pool_trace_mark("combine");
    /* moe_sum (BF16 sequential over k, of the given or the model's y) and
     * the final combine, token by token */
    if ((s = stage_gemm_alloc(&r->routed, T, H)) != MX_OK ||
        (s = stage_gemm_alloc(&r->out, T, H)) != MX_OK)
        goto fail;
    r->out_e2e = malloc(mx_nz(T * H) * sizeof *r->out_e2e);
    if (!r->out_e2e) {
        s = MX_ENOMEM;
        goto fail;
    }
    combine_ctx cc = {sh, gv->y ? gv->y : r->y.model, gv->routed, gv->shared, r};
    mx_parallel_for(T, combine_task, &cc);
    r->seconds[MX_MOE_T_COMBINE] = now() - t_stage;
    mx_pool_trace_mark("end");
    return MX_OK;

fail:
    mx_moe_result_free(r);
    return s;
}
