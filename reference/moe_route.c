/* moe_route.c -- the MiniMax-M3 router reference.
 *
 * logits = x Wr^T are computed in binary64 (BLAS) with a certified error
 * (gamma_H in binary64 times sum |x w|), scores s = sigmoid(logit) + bias.
 * The top-k is chosen by these scores; exact ties go to the lower expert id
 * and are reported.  A production router computes in FP32, so its scores
 * can differ by up to delta = gamma_H(FP32) sum|x w| / 4 (sigmoid' <= 1/4)
 * + 2 sigmoid_ulps u sigma + u |score| (+ the binary64 error); a token whose
 * k-th and (k+1)-th scores are closer than the sum of their deltas is
 * reported as ambiguous: a correct FP32 router may pick either set.
 *
 * The routing weights handed to GEMM2 are the model's FP32 values:
 * s32_j = RN32(sigmoid(RN32(logit_j))), w_j = s32_j / (s32_0 + ... + s32_k-1)
 * with the sum and the division in FP32 (rank order).
 *
 * mx_moe_align, the reference of vLLM's moe_align_block_size, lays the
 * routed rows out by expert in blocks of block_m for the grouped GEMMs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_cblas.h>
#include "mxref/moe.h"
#include "mxref/pool.h"

void mx_moe_routing_free(mx_moe_routing *r)
{
    free(r->ids);
    free(r->weights);
    free(r->weights_exact);
    free(r->ambiguous);
    memset(r, 0, sizeof *r);
}

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* The router runs on the worker pool: x and the router's rows in
 * binary64, then the two products (logits, sum |x w|) by blocks of eb
 * experts (the logits' columns), then the tokens' top-k selections by
 * blocks of ROUTE_TOKENS tokens, each task writing only its own rows or
 * columns.  The blocks depend on T and E alone, not on the thread count,
 * so the bytes are the same for any thread count.  A BLAS may sum in
 * another order for another shape: Debian 12's OpenBLAS 0.3.21 (its
 * SkylakeX kernels, on an AVX-512 Xeon) gives blocks of 32 experts the
 * bits of one call over all of them for T >= 8 (measured for T = 8 to 512
 * with E = 256, H = 6144); below 8 tokens it takes another kernel for the
 * narrower calls, so there eb = E: one call.  Other BLAS builds may differ
 * from one call; any of them gives the same bytes for every --jobs. */
typedef struct {
    size_t T, H, E;
    int k;
    const float *router, *bias;
    const uint16_t *x;
    double *xd, *wd, *xa, *wa, *lg, *la;
    size_t eb;     /* experts per product task */
    mx_status *st; /* per conversion task */
    mx_moe_routing *out;
} route_ctx;

#define ROUTE_TOKENS 8   /* tokens per conversion and selection task */
#define ROUTE_EXPERTS 32 /* router rows per conversion and product task */

/* Conversion task i: i < 2 nt, tokens of block i / 2 (of ROUTE_TOKENS),
 * their values (i even) or magnitudes (odd); else the router's rows of
 * block (i - 2 nt) / 2 (of ROUTE_EXPERTS), the same way. */
static void convert_task(void *v, size_t i)
{
    route_ctx *c = v;
    size_t H = c->H, nt = (c->T + ROUTE_TOKENS - 1) / ROUTE_TOKENS;
    int a = (int)(i % 2);
    c->st[i] = MX_OK;
    if (i < 2 * nt) {
        size_t t0 = i / 2 * ROUTE_TOKENS;
        size_t t1 = t0 + ROUTE_TOKENS < c->T ? t0 + ROUTE_TOKENS : c->T;
        double *xd = a ? c->xa : c->xd;
        for (size_t j = t0 * H; j < t1 * H; j++) {
            double d = mx_bf16_to_float(c->x[j]);
            if (!isfinite(d)) {
                c->st[i] = MX_ERANGE;
                return;
            }
            xd[j] = a ? fabs(d) : d;
        }
        return;
    }
    size_t e0 = (i - 2 * nt) / 2 * ROUTE_EXPERTS;
    size_t e1 = e0 + ROUTE_EXPERTS < c->E ? e0 + ROUTE_EXPERTS : c->E;
    double *wd = a ? c->wa : c->wd;
    for (size_t j = e0 * H; j < e1 * H; j++)
        wd[j] = a ? fabs((double)c->router[j]) : (double)c->router[j];
}

/* task 2b: logits = x Wr^T of the experts of block b (of eb); task 2b + 1:
 * their sum |x w| = |x| |Wr|^T */
static void product_task(void *v, size_t i)
{
    route_ctx *c = v;
    size_t H = c->H, E = c->E, e0 = i / 2 * c->eb;
    size_t e1 = e0 + c->eb < E ? e0 + c->eb : E;
    int a = (int)(i % 2);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->T, (int)(e1 - e0), (int)H,
                1.0, a ? c->xa : c->xd, (int)H, (a ? c->wa : c->wd) + e0 * H, (int)H, 0.0,
                (a ? c->la : c->lg) + e0, (int)E);
}

static void select_task(void *v, size_t b)
{
    route_ctx *c = v;
    mx_moe_routing *out = c->out;
    size_t H = c->H, E = c->E, k = (size_t)c->k;
    size_t t0 = b * ROUTE_TOKENS, t1 = t0 + ROUTE_TOKENS < c->T ? t0 + ROUTE_TOKENS : c->T;
    size_t order[4096];
    double score[4096], delta[4096]; /* E <= 4096 (mx_moe_shape_by_name) */
    const double u = 0x1p-24, g32 = (double)H * u / (1 - (double)H * u);
    const double g64 = (double)(H + 2) * 0x1p-52;
    const double *lg = c->lg, *la = c->la;
    for (size_t t = t0; t < t1; t++) {
        for (size_t e = 0; e < E; e++) {
            double l = lg[t * E + e], sabs = la[t * E + e] * (1 + g64);
            double sg = sigmoid(l);
            score[e] = sg + (double)c->bias[e];
            /* docs/bounds.md, "Router": a 4-ulp FP32 sigmoid is within
             * 8 u of sigma (one ulp is up to 2u of a normal value) */
            delta[e] = ((g32 + g64) * sabs / 4 + 8 * u * sg + u * fabs(score[e]) +
                        0x1p-50 * (1 + fabs(score[e]))) * (1 + 0x1p-40);
            order[e] = e;
        }
        /* partial selection sort of the top k + 1 (ties: lower id first) */
        for (size_t j = 0; j <= k && j < E; j++) {
            size_t best = j;
            for (size_t e = j + 1; e < E; e++) {
                size_t a = order[e], bb = order[best];
                // cppcheck-suppress arrayIndexThenCheck ; a < bb breaks ties, it is no bound
                if (score[a] > score[bb] || (score[a] == score[bb] && a < bb))
                    best = e;
            }
            size_t tmp = order[j];
            order[j] = order[best];
            order[best] = tmp;
        }
        if (k < E) {
            size_t a = order[k - 1], bb = order[k];
            out->ambiguous[t] = score[a] - score[bb] <= delta[a] + delta[bb];
        }
        float s32[64], sum32 = 0;
        double sum = 0;
        for (size_t j = 0; j < k; j++) {
            size_t e = order[j];
            out->ids[t * k + j] = (int32_t)e;
            float l32 = (float)lg[t * E + e];
            s32[j % 64] = (float)sigmoid((double)l32);
            sum32 = sum32 + s32[j % 64];
            sum += sigmoid(lg[t * E + e]);
        }
        for (size_t j = 0; j < k; j++) {
            size_t e = order[j];
            out->weights[t * k + j] = s32[j % 64] / sum32;
            out->weights_exact[t * k + j] = sigmoid(lg[t * E + e]) / sum;
        }
    }
}

mx_status mx_moe_route(const mx_moe_shape *s, const float *router,
                       const float *bias, const uint16_t *x, size_t T,
                       mx_moe_routing *out)
{
    size_t H = s->H, E = s->E;
    int k = s->topk;
    memset(out, 0, sizeof *out);
    if (k < 1 || k > 64 || (size_t)k > E || E > 4096 || !router || !bias || !x || !T)
        return MX_EINVAL;
    size_t nconv = 2 * ((T + ROUTE_TOKENS - 1) / ROUTE_TOKENS) +
                   2 * ((E + ROUTE_EXPERTS - 1) / ROUTE_EXPERTS);
    route_ctx c = {T, H, E, k, router, bias, x, NULL, NULL, NULL, NULL, NULL, NULL,
                   T >= 8 ? ROUTE_EXPERTS : E, NULL, out};
    c.st = malloc(nconv * sizeof *c.st);
    c.xd = malloc(T * H * sizeof *c.xd);
    c.xa = malloc(T * H * sizeof *c.xa);
    c.wd = malloc(E * H * sizeof *c.wd);
    c.wa = malloc(E * H * sizeof *c.wa);
    c.lg = malloc(T * E * sizeof *c.lg);
    c.la = malloc(T * E * sizeof *c.la);
    out->ids = malloc(T * (size_t)k * sizeof *out->ids);
    out->weights = malloc(T * (size_t)k * sizeof *out->weights);
    out->weights_exact = malloc(T * (size_t)k * sizeof *out->weights_exact);
    out->ambiguous = calloc(T ? T : 1, 1);
    mx_status st = MX_OK;
    if (!c.st || !c.xd || !c.xa || !c.wd || !c.wa || !c.lg || !c.la || !out->ids ||
        !out->weights || !out->weights_exact || !out->ambiguous) {
        st = MX_ENOMEM;
        goto done;
    }
    mx_parallel_for(nconv, convert_task, &c);
    for (size_t i = 0; i < nconv; i++)
        if ((st = c.st[i]) != MX_OK)
            goto done;
    mx_parallel_for(2 * ((E + c.eb - 1) / c.eb), product_task, &c);
    mx_parallel_for((T + ROUTE_TOKENS - 1) / ROUTE_TOKENS, select_task, &c);
    for (size_t t = 0; t < T; t++)
        out->n_ambiguous += out->ambiguous[t];
    out->T = T;
    out->topk = k;
done:
    free(c.st);
    free(c.xd);
    free(c.xa);
    free(c.wd);
    free(c.wa);
    free(c.lg);
    free(c.la);
    if (st != MX_OK)
        mx_moe_routing_free(out);
    return st;
}

mx_status mx_moe_align(const int32_t *topk_ids, size_t tokens, int topk,
                       size_t experts, int block_m, const int32_t *expert_map,
                       int32_t *sorted_ids, size_t cap_rows, int32_t *expert_ids,
                       size_t cap_blocks, int32_t *num_post_pad)
{
    size_t R = tokens * (size_t)topk, pos = 0;
    if (topk < 1 || block_m < 1 || !experts)
        return MX_EINVAL;
    for (size_t i = 0; i < R; i++)
        if (topk_ids[i] < 0 || (size_t)topk_ids[i] >= experts)
            return MX_EINVAL;
    for (size_t i = 0; i < cap_rows; i++)
        sorted_ids[i] = (int32_t)R;
    for (size_t b = 0; b < cap_blocks; b++)
        expert_ids[b] = -1;
    for (size_t e = 0; e < experts; e++) {
        size_t start = pos;
        for (size_t i = 0; i < R; i++)
            if ((size_t)topk_ids[i] == e) {
                if (pos >= cap_rows)
                    return MX_EINVAL;
                sorted_ids[pos++] = (int32_t)i;
            }
        if (pos == start)
            continue;
        size_t end = (pos + (size_t)block_m - 1) / (size_t)block_m * (size_t)block_m;
        if (end > cap_rows || end / (size_t)block_m > cap_blocks)
            return MX_EINVAL;
        for (size_t b = start / (size_t)block_m; b < end / (size_t)block_m; b++)
            expert_ids[b] = expert_map ? expert_map[e] : (int32_t)e;
        pos = end;
    }
    *num_post_pad = (int32_t)pos;
    return MX_OK;
}
