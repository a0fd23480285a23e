/* casegen.c -- deterministic MoE layer cases (see mxref/casegen.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/casegen.h"
#include "mxref/pool.h"
#include "mt19937.h"
#include "names.h"

enum { STREAM_X = 1, STREAM_ROUTER, STREAM_SHARED, STREAM_EXPERT = 1000 };

mx_case_params mx_case_params_default(const mx_moe_shape *s, size_t T,
                                      uint64_t seed)
{
    mx_case_params p;
    memset(&p, 0, sizeof p);
    p.shape = *s;
    p.T = T;
    p.seed = seed;
    p.family = MX_FAMILY_REAL;
    p.weight_sigma = 0.02;
    p.expert_spread = 2.0;
    p.outlier_frac = 1.0 / 64;
    p.outlier_scale = 24.0;
    p.zero_block_frac = 1.0 / 50;
    p.hot_bias = 0.4;
    return p;
}

static const char *const family_names[] = {"real", "spread", "cancel", "tiny", "wide"};

const char *mx_case_family_name(mx_case_family f)
{
    return mxr_name_of(family_names, 5, (int)f);
}

int mx_case_family_by_name(const char *name, mx_case_family *out)
{
    int i = mxr_name_index(family_names, 5, name);
    if (i < 0)
        return -1;
    *out = (mx_case_family)i;
    return 0;
}

/* An RNG for (seed, stream): MT19937 seeded from a SplitMix64 mix of both
 * (as GSL's gsl_rng_mt19937 is seeded from an unsigned long: mt19937.h). */
static void stream_rng(mxr_mt *r, uint64_t seed, uint64_t stream)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    mxr_mt_seed(r, (unsigned long)(z & 0xFFFFFFFFul) | 1ul);
}

/* Irwin-Hall(4) of 16-bit uniforms, unit variance: exact arithmetic only
 * (the sum is an integer; sqrt(3/4)... is replaced by the exact constant
 * 1/sqrt(4/12) = sqrt(3) rounded once, a fixed binary64 literal). */
static double normal(mxr_mt *r)
{
    unsigned long a = mxr_mt_get(r);
    unsigned long b = mxr_mt_get(r);
    double s = (double)(a & 0xFFFF) + (double)(a >> 16 & 0xFFFF) +
               (double)(b & 0xFFFF) + (double)(b >> 16 & 0xFFFF);
    /* mean 2 * 65535, variance 4 * (65536^2 - 1) / 12 */
    return (s - 131070.0) * (1.7320508075688772 / 65536.0);
}

static double uniform(mxr_mt *r) { return mxr_mt_get(r) * 0x1p-32; }

/* 2^U(-h, h) from a uniform draw, via exact powers of two and a linear
 * interpolation inside the binade (no libm). */
static double pow2_uniform(mxr_mt *r, double h)
{
    double v = (uniform(r) * 2 - 1) * h;
    double fl = floor(v);
    return ldexp(1.0 + (v - fl), (int)fl);
}

/* Pruned weights: about one in 512 is an exact zero, half of them -0 (the
 * E4M3FN byte 0x80 that the FNUZ load must rewrite).  Positions come from a
 * hash of the index, so they cost no draws. */
static void pruned(float *w, size_t n, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull ^ stream * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        h *= 0x94D049BB133111EBull;
        h ^= h >> 32;
        if ((h & 511) == 0)
            w[i] = (h & 512) ? -0.0f : 0.0f;
    }
}

/* MX quantization of FP32 values as a checkpoint would be: OCP rule,
 * E4M3FN elements, saturating.  Rows are quantized independently, so the
 * pool takes them in blocks of QW_ROWS (the bytes do not depend on the
 * threads); the first failing block's status, in row order, is returned
 * (mx_parallel_rows). */
#define QW_ROWS 64

typedef struct {
    const float *w;
    size_t K;
    uint8_t *q, *s;
} qw_ctx;

static mx_status qw_rows(void *v, size_t r0, size_t n)
{
    const qw_ctx *c = v;
    mx_quant_params p = mx_quant_ocp(MX_E4M3FN);
    return mx_quantize_f32(&p, c->w + r0 * c->K, n, c->K, c->K, c->q + r0 * c->K,
                           c->s + r0 * (c->K / 32), NULL);
}

static mx_status quantize_weights(const float *w, size_t N, size_t K, uint8_t *q,
                                  uint8_t *s)
{
    qw_ctx c = {w, K, q, s};
    return mx_parallel_rows(N, QW_ROWS, qw_rows, &c);
}

/* One expert's (or the shared expert's) weights: W13 [2I][H], W2 [H][I]. */
static mx_status gen_mlp(const mx_case_params *p, uint64_t stream, size_t I,
                         uint8_t **w13, uint8_t **w13_s, uint8_t **w2,
                         uint8_t **w2_s)
{
    size_t H = p->shape.H;
    mxr_mt rs, *r = &rs;
    stream_rng(r, p->seed, stream);
    size_t n13 = 2 * I * H, n2 = H * I;
    float *buf = malloc((n13 > n2 ? n13 : n2) * sizeof *buf);
    *w13 = malloc(n13);
    *w13_s = malloc(n13 / 32);
    *w2 = malloc(n2);
    *w2_s = malloc(n2 / 32);
    mx_status st = MX_ENOMEM;
    if (!buf || !*w13 || !*w13_s || !*w2 || !*w2_s)
        goto done;
    double scale = p->weight_sigma * pow2_uniform(r, p->expert_spread / 2);
    if (p->family == MX_FAMILY_WIDE)
        scale *= 5;
    for (size_t i = 0; i < n13; i++)
        buf[i] = (float)(normal(r) * scale);
    pruned(buf, n13, stream);
    if (p->family == MX_FAMILY_CANCEL) /* rows in +/- pairs */
        for (size_t row = 1; row < 2 * I; row += 2)
            for (size_t h = 0; h < H; h++)
                buf[row * H + h] = -buf[(row - 1) * H + h];
    if ((st = quantize_weights(buf, 2 * I, H, *w13, *w13_s)) != MX_OK)
        goto done;
    for (size_t i = 0; i < n2; i++)
        buf[i] = (float)(normal(r) * scale);
    pruned(buf, n2, stream + 0x10000);
    st = quantize_weights(buf, H, I, *w2, *w2_s);
done:
    free(buf);
    return st;
}

void mx_case_free(mx_case *c)
{
    if (c->w13)
        for (size_t e = 0; e < c->shape.E_local; e++) {
            free(c->w13[e]);
            free(c->w13_s[e]);
            free(c->w2[e]);
            free(c->w2_s[e]);
        }
    free(c->w13);
    free(c->w13_s);
    free(c->w2);
    free(c->w2_s);
    free(c->x);
    free(c->router);
    free(c->bias);
    free(c->ws13);
    free(c->ws13_s);
    free(c->ws2);
    free(c->ws2_s);
    memset(c, 0, sizeof *c);
}

/* Generates local expert le's weights into c (not yet there); frees what
 * it made on failure.  Touches only slot le, so it may run in parallel for
 * distinct experts. */
static mx_status materialize_one(const mx_case_params *p, mx_case *c, size_t le)
{
    mx_status st = gen_mlp(p, STREAM_EXPERT + c->shape.expert0 + le, c->shape.inter,
                           &c->w13[le], &c->w13_s[le], &c->w2[le], &c->w2_s[le]);
    if (st != MX_OK) {
        free(c->w13[le]);
        free(c->w13_s[le]);
        free(c->w2[le]);
        free(c->w2_s[le]);
        c->w13[le] = c->w13_s[le] = c->w2[le] = c->w2_s[le] = NULL;
    }
    return st;
}

mx_status mx_case_materialize(const mx_case_params *p, mx_case *c, size_t le)
{
    if (le >= c->shape.E_local)
        return MX_EINVAL;
    if (c->w13[le])
        return MX_OK;
    mx_status st = materialize_one(p, c, le);
    if (st == MX_OK)
        c->n_materialized++;
    return st;
}

static void gen_x(const mx_case_params *p, uint16_t *x)
{
    size_t H = p->shape.H, T = p->T;
    mxr_mt rs, *r = &rs;
    stream_rng(r, p->seed, STREAM_X);
    double *chan = malloc(H * sizeof *chan);
    for (size_t h = 0; h < H; h++)
        chan[h] = uniform(r) < p->outlier_frac ? p->outlier_scale : 1.0;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < H / 32; b++) {
            int zero = uniform(r) < p->zero_block_frac;
            double blk = 1.0;
            if (p->family == MX_FAMILY_SPREAD)
                blk = pow2_uniform(r, 40);
            else if (p->family == MX_FAMILY_TINY)
                blk = 0x1p-110 * pow2_uniform(r, 3);
            for (size_t i = 0; i < 32; i++) {
                size_t h = b * 32 + i;
                double v = zero ? 0.0 : normal(r) * chan[h] * blk;
                if (p->family == MX_FAMILY_CANCEL && (i & 1))
                    v = -mx_bf16_to_float(x[t * H + h - 1]);
                x[t * H + h] = mx_bf16_from_float((float)v);
            }
        }
    free(chan);
}

typedef struct {
    const mx_case_params *p;
    mx_case *c;
    size_t *todo;   /* local expert indices; SIZE_MAX: the shared expert */
    mx_status *st;  /* by todo index */
    size_t n;
} gen_ctx;

static void gen_task(void *v, size_t i)
{
    gen_ctx *g = v;
    if (g->todo[i] == SIZE_MAX) {
        mx_case *c = g->c;
        g->st[i] = gen_mlp(g->p, STREAM_SHARED, c->shape.inter_shared, &c->ws13,
                           &c->ws13_s, &c->ws2, &c->ws2_s);
    } else {
        g->st[i] = materialize_one(g->p, g->c, g->todo[i]);
    }
}

mx_status mx_case_generate(const mx_case_params *p, mx_case *c)
{
    const mx_moe_shape *s = &p->shape;
    size_t H = s->H, E = s->E, T = p->T;
    memset(c, 0, sizeof *c);
    if (!T || H % 32 || s->inter % 32 || s->inter_shared % 32 || !s->E_local ||
        s->expert0 + s->E_local > E || (unsigned)p->family > MX_FAMILY_WIDE)
        return MX_EINVAL;
    c->shape = *s;
    c->T = T;
    c->x = malloc(T * H * sizeof *c->x);
    c->router = malloc(E * H * sizeof *c->router);
    c->bias = malloc(E * sizeof *c->bias);
    c->w13 = calloc(s->E_local, sizeof *c->w13);
    c->w13_s = calloc(s->E_local, sizeof *c->w13_s);
    c->w2 = calloc(s->E_local, sizeof *c->w2);
    c->w2_s = calloc(s->E_local, sizeof *c->w2_s);
    mx_status st = MX_ENOMEM;
    if (!c->x || !c->router || !c->bias || !c->w13 || !c->w13_s || !c->w2 ||
        !c->w2_s)
        goto fail;
    gen_x(p, c->x);
    mxr_mt rr, *r = &rr;
    stream_rng(r, p->seed, STREAM_ROUTER);
    /* router rows ~ N(0, 1/H) (exact: 1/64 scale per 4096 = 2^-6), bias: a
     * few hot experts */
    double rs = 1.0 / 64.0;
    for (size_t i = 0; i < E * H; i++)
        c->router[i] = (float)(normal(r) * rs);
    for (size_t e = 0; e < E; e++) {
        double u = uniform(r);
        c->bias[e] = (float)(p->hot_bias * u * u * u * u);
    }
    mx_moe_routing rt;
    if ((st = mx_moe_route(s, c->router, c->bias, c->x, T, &rt)) != MX_OK)
        goto fail;
    /* the shared expert and every routed local expert, once each, in order
     * of first use; each has its own stream, so they are generated in
     * parallel with the same bytes as one after another */
    gen_ctx g = {p, c, calloc(1 + s->E_local, sizeof *g.todo),
                 calloc(1 + s->E_local, sizeof *g.st), 0};
    unsigned char *seen = calloc(s->E_local, 1);
    st = MX_ENOMEM;
    if (g.todo && g.st && seen) {
        g.todo[g.n++] = SIZE_MAX; /* the shared expert */
        for (size_t i = 0; i < T * (size_t)s->topk; i++) {
            size_t id = (size_t)rt.ids[i];
            if (id >= s->expert0 && id < s->expert0 + s->E_local &&
                !seen[id - s->expert0]) {
                seen[id - s->expert0] = 1;
                g.todo[g.n++] = id - s->expert0;
            }
        }
        mx_parallel_for(g.n, gen_task, &g);
        st = MX_OK;
        for (size_t i = 0; i < g.n && st == MX_OK; i++)
            st = g.st[i];
        c->n_materialized = g.n - 1;
    }
    free(g.todo);
    free(g.st);
    free(seen);
    mx_moe_routing_free(&rt);
    if (st != MX_OK)
        goto fail;
    mx_moe_weights v = {c->router, c->bias,
                        (const uint8_t *const *)c->w13, (const uint8_t *const *)c->w13_s,
                        (const uint8_t *const *)c->w2, (const uint8_t *const *)c->w2_s,
                        c->ws13, c->ws13_s, c->ws2, c->ws2_s};
    c->weights = v;
    return MX_OK;
fail:
    mx_case_free(c);
    return st;
}
