/* kcase.c -- seeded test cases for the kernels (see kcase.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kcase.h"

#define MAXBUF 16

struct kc_case {
    kc_shape s;
    mxk_quant_args quant;
    mxk_fnuz_args fnuz;
    mxk_align_args align;
    mxk_mxfp8_gemm_args mx;
    mxk_bf16_gemm_args bf;
    mxk_swiglu_args sw;
    mxk_sum_args sum;
    int64_t bad_index;
    int32_t npp;
    int32_t *topk_ids, *expert_map;
    kc_out out;
    uint8_t fill[4];
    void *bufs[MAXBUF];
    int nbufs;
};

static void *kc_alloc(kc_case *c, size_t n)
{
    if (c->nbufs == MAXBUF)
        return NULL;
    void *p = calloc(n ? n : 1, 1);
    if (p)
        c->bufs[c->nbufs++] = p;
    return p;
}

static void add_out(kc_case *c, const void *p, size_t len, const char *name,
                    uint8_t fill)
{
    kc_out *o = &c->out;
    o->p[o->n] = p;
    o->len[o->n] = len;
    o->name[o->n] = name;
    c->fill[o->n] = fill;
    o->n++;
}

uint16_t kc_rand_bf16(gsl_rng *r, int emin, int emax)
{
    int e = emin + (int)gsl_rng_uniform_int(r, (unsigned long)(emax - emin + 1));
    uint32_t be = (uint32_t)(e + 127);
    uint32_t m = (uint32_t)gsl_rng_uniform_int(r, 128);
    uint32_t s = (uint32_t)gsl_rng_uniform_int(r, 2);
    if (e < -126) /* a BF16 subnormal: 2^e = m' * 2^-133 */
        return (uint16_t)((s << 15) | (1u << (e + 133)) | (m & ((1u << (e + 133)) - 1)));
    return (uint16_t)((s << 15) | (be << 7) | m);
}

uint8_t kc_rand_fp8(gsl_rng *r, int fmt)
{
    for (;;) {
        uint8_t b = (uint8_t)gsl_rng_uniform_int(r, 256);
        if (fmt == MXK_FP8_E4M3FNUZ ? b != 0x80 : (b & 0x7f) != 0x7f)
            return b;
    }
}

/* topk distinct experts per token (or 0..topk-1 when skewed). */
static void gen_topk(gsl_rng *r, const kc_shape *s, int32_t *ids)
{
    for (int t = 0; t < s->tokens; t++)
        for (int j = 0; j < s->topk; j++) {
            int32_t e;
            int dup;
            do {
                e = s->skew ? j
                            : (int32_t)gsl_rng_uniform_int(
                                  r, (unsigned long)s->experts);
                dup = 0;
                for (int i = 0; i < j; i++)
                    dup |= ids[t * s->topk + i] == e;
            } while (dup);
            ids[t * s->topk + j] = e;
        }
}

/* Routing tables in c->align (topk ids, expert map, outputs). */
static int make_align(kc_case *c, gsl_rng *r)
{
    const kc_shape *s = &c->s;
    size_t nids = (size_t)s->tokens * s->topk;
    int64_t cap = mxk_align_max_rows(s->tokens, s->topk, s->experts, s->block_m);
    int64_t capb = mxk_align_max_blocks(s->tokens, s->topk, s->experts, s->block_m);
    c->topk_ids = kc_alloc(c, nids * 4);
    int32_t *sorted = kc_alloc(c, (size_t)cap * 4);
    int32_t *eids = kc_alloc(c, (size_t)capb * 4);
    if (!c->topk_ids || !sorted || !eids)
        return -1;
    gen_topk(r, s, c->topk_ids);
    if (s->ep) { /* even experts here (local id e/2), odd ones elsewhere */
        if (!(c->expert_map = kc_alloc(c, (size_t)s->experts * 4)))
            return -1;
        for (int e = 0; e < s->experts; e++)
            c->expert_map[e] = e % 2 ? -1 : e / 2;
    }
    c->align = (mxk_align_args){c->topk_ids, s->tokens, s->topk, s->experts,
                                s->block_m, c->expert_map, sorted, eids,
                                &c->npp, 0};
    return 0;
}

static int local_experts(const kc_shape *s)
{
    return s->ep ? (s->experts + 1) / 2 : s->experts;
}

/* A GEMM's routing: moe_align on the CPU backend. */
static int make_route(kc_case *c, gsl_rng *r, mxk_route *rt)
{
    const kc_shape *s = &c->s;
    if (make_align(c, r))
        return -1;
    if (mxk_cpu_ops()->moe_align(&c->align, NULL) != MXK_OK)
        return -1;
    float *w = NULL;
    if (s->weights) {
        size_t nids = (size_t)s->tokens * s->topk;
        if (!(w = kc_alloc(c, nids * 4)))
            return -1;
        for (size_t i = 0; i < nids; i++)
            w[i] = (float)(0.05 + 0.95 * gsl_rng_uniform(r));
    }
    *rt = (mxk_route){c->align.sorted_ids, c->align.expert_ids, c->npp,
                      s->block_m, s->tokens, s->topk, !s->gemm2, w};
    return 0;
}

static void gen_quant_input(gsl_rng *r, uint16_t *x, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        uint16_t *v = x + b * 32;
        int kind = (int)gsl_rng_uniform_int(r, 20);
        int base = -40 + (int)gsl_rng_uniform_int(r, 81);
        for (int i = 0; i < 32; i++) {
            if (kind == 0)
                v[i] = (uint16_t)(gsl_rng_uniform_int(r, 2) << 15); /* +-0 */
            else if (kind == 1)
                v[i] = kc_rand_bf16(r, -133, -96); /* tiny: the 1e-30 floor */
            else if (kind == 2)
                v[i] = kc_rand_bf16(r, 118, 127); /* huge: s near 254 */
            else if (kind == 3) /* powers of two only */
                v[i] = (uint16_t)(kc_rand_bf16(r, base - 8, base) & 0xff80u);
            else
                v[i] = kc_rand_bf16(r, base - 12, base);
        }
        if (kind == 4) /* an infinity and a NaN in the block */
            v[3] = 0x7f80, v[17] = 0xffc1;
        else if (kind >= 5 && b % 3 == 1) /* the block max at position 31, */
            v[31] = (uint16_t)(((base + 2 + 127) << 7) | 0x40); /* 2 binades up */
    }
}

kc_case *kc_new(const kc_shape *s, uint64_t seed)
{
    kc_case *c = calloc(1, sizeof *c);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!c || !r)
        goto fail;
    gsl_rng_set(r, (unsigned long)seed);
    c->s = *s;
    switch (s->kernel) {
    case MXK_K_MX_QUANT: {
        size_t n = (size_t)s->rows * s->k;
        uint16_t *x = kc_alloc(c, 2 * n);
        uint8_t *q = kc_alloc(c, n), *sc = kc_alloc(c, n / 32);
        if (!x || !q || !sc)
            goto fail;
        gen_quant_input(r, x, (int64_t)n / 32);
        c->quant = (mxk_quant_args){x, q, sc, s->rows, s->k, s->fmt, 0};
        add_out(c, q, n, "q", 0xa5);
        add_out(c, sc, n / 32, "scale", 0xa5);
        break;
    }
    case MXK_K_FN_TO_FNUZ: {
        size_t ns = (size_t)s->experts * s->n * (s->k / 32), nv = ns * 32;
        uint8_t *v = kc_alloc(c, nv), *sc = kc_alloc(c, ns);
        uint8_t *ov = kc_alloc(c, nv), *os = kc_alloc(c, ns);
        if (!v || !sc || !ov || !os)
            goto fail;
        for (size_t i = 0; i < nv; i++)
            v[i] = gsl_rng_uniform_int(r, 4) ? (uint8_t)gsl_rng_uniform_int(r, 256)
                                             : 0x80;
        for (size_t i = 0; i < ns; i++)
            sc[i] = (uint8_t)gsl_rng_uniform_int(r, 254);
        if (s->bad_scale) {
            size_t j = gsl_rng_uniform_int(r, ns);
            sc[j] = 254;
            if (j + 1 < ns)
                sc[j + 1 + gsl_rng_uniform_int(r, ns - j - 1)] = 255;
        }
        c->fnuz = (mxk_fnuz_args){v, sc, ov, os, s->experts, s->n, s->k,
                                  s->packed, &c->bad_index, 0};
        add_out(c, ov, nv, "out_vals", 0xa5);
        add_out(c, os, ns, "out_scales", 0xa5);
        add_out(c, &c->bad_index, sizeof c->bad_index, "bad_index", 0x5a);
        break;
    }
    case MXK_K_MOE_ALIGN: {
        if (make_align(c, r))
            goto fail;
        add_out(c, c->align.sorted_ids,
                4 * (size_t)mxk_align_max_rows(s->tokens, s->topk, s->experts,
                                               s->block_m),
                "sorted_ids", 0xa5);
        add_out(c, c->align.expert_ids,
                4 * (size_t)mxk_align_max_blocks(s->tokens, s->topk,
                                                 s->experts, s->block_m),
                "expert_ids", 0xa5);
        add_out(c, &c->npp, 4, "num_post_pad", 0xa5);
        break;
    }
    case MXK_K_MXFP8_GEMM: {
        mxk_route rt;
        if (make_route(c, r, &rt))
            goto fail;
        int E = local_experts(s);
        size_t K = s->k, G = K / 32, N = s->n;
        size_t arows = (size_t)s->tokens * (s->gemm2 ? s->topk : 1);
        size_t nb = (size_t)E * N * K, nout = (size_t)s->tokens * s->topk * N;
        uint8_t *a = kc_alloc(c, arows * K), *as = kc_alloc(c, arows * G);
        uint8_t *b = kc_alloc(c, nb), *bs = kc_alloc(c, nb / 32);
        uint16_t *out = kc_alloc(c, 2 * nout);
        if (!a || !as || !b || !bs || !out)
            goto fail;
        /* row 1: subnormal codes only (with its scale bytes of 1 below,
         * products of ~2^-8 .. 2^0 scaled to the FP32 subnormal range) */
        for (size_t i = 0; i < arows * K; i++)
            a[i] = i / K == 1 ? (uint8_t)((gsl_rng_uniform_int(r, 2) << 7) |
                                          (1 + gsl_rng_uniform_int(r, 7)))
                              : kc_rand_fp8(r, s->fmt);
        /* row 0: every scale byte 0; row 1: every scale byte 1 (2^-126: its
         * scaled partials p * sc are FP32 subnormals, some outputs too) */
        for (size_t i = 0; i < arows * G; i++)
            as[i] = i < G ? 0 : i < 2 * G ? 1 : (uint8_t)(120 + gsl_rng_uniform_int(r, 15));
        for (size_t i = 0; i < nb; i++)
            b[i] = kc_rand_fp8(r, s->fmt);
        for (size_t i = 0; i < nb / 32; i++)
            bs[i] = (uint8_t)(118 + gsl_rng_uniform_int(r, 19));
        c->mx = (mxk_mxfp8_gemm_args){rt, a, as, b, bs, s->packed, E, s->n,
                                      s->k, s->fmt, s->e8m0, s->path, out, 0};
        add_out(c, out, 2 * nout, "out", 0xc1);
        break;
    }
    case MXK_K_BF16_GEMM: {
        mxk_route rt;
        if (make_route(c, r, &rt))
            goto fail;
        int E = local_experts(s);
        size_t K = s->k, N = s->n;
        size_t arows = (size_t)s->tokens * (s->gemm2 ? s->topk : 1);
        size_t nb = (size_t)E * N * K, nout = (size_t)s->tokens * s->topk * N;
        uint16_t *a = kc_alloc(c, 2 * arows * K), *b = kc_alloc(c, 2 * nb);
        uint16_t *out = kc_alloc(c, 2 * nout);
        if (!a || !b || !out)
            goto fail;
        /* row 1 tiny (2^-133..2^-127): FP32 subnormal products and outputs */
        for (size_t i = 0; i < arows * K; i++)
            a[i] = gsl_rng_uniform_int(r, 16)
                       ? (i / K == 1 ? kc_rand_bf16(r, -133, -127) : kc_rand_bf16(r, -8, 2))
                       : 0x8000;
        for (size_t i = 0; i < nb; i++)
            b[i] = kc_rand_bf16(r, -10, 0);
        c->bf = (mxk_bf16_gemm_args){rt, a, b, E, s->n, s->k, s->path, out, 0};
        add_out(c, out, 2 * nout, "out", 0xc1);
        break;
    }
    case MXK_K_SWIGLU_QUANT: {
        size_t n = (size_t)s->rows * s->k;
        uint16_t *g1 = kc_alloc(c, 4 * n);
        uint8_t *q = kc_alloc(c, n), *sc = kc_alloc(c, n / 32);
        float *act = kc_alloc(c, 4 * n);
        if (!g1 || !q || !sc || !act)
            goto fail;
        for (size_t i = 0; i < 2 * n; i++) {
            unsigned k = (unsigned)gsl_rng_uniform_int(r, 32);
            g1[i] = k == 0   ? 0xc2c8        /* -100: sigmoid's far tail */
                    : k == 1 ? kc_rand_bf16(r, -133, -100)
                             : kc_rand_bf16(r, -6, 3); /* |x| up to 16: clamps */
        }
        c->sw = (mxk_swiglu_args){g1, q, sc, act, s->rows, s->k, s->fmt, 0};
        add_out(c, q, n, "q", 0xa5);
        add_out(c, sc, n / 32, "scale", 0xa5);
        add_out(c, act, 4 * n, "act", 0xa5);
        break;
    }
    case MXK_K_MOE_SUM: {
        size_t nout = (size_t)s->tokens * s->n, nin = nout * s->topk;
        uint16_t *x = kc_alloc(c, 2 * nin), *out = kc_alloc(c, 2 * nout);
        if (!x || !out)
            goto fail;
        for (size_t i = 0; i < nin; i++)
            x[i] = kc_rand_bf16(r, -4, 4);
        c->sum = (mxk_sum_args){x, out, s->tokens, s->topk, s->n, s->fp32_acc, 0};
        add_out(c, out, 2 * nout, "out", 0xa5);
        break;
    }
    default:
        goto fail;
    }
    gsl_rng_free(r);
    return c;
fail:
    if (r)
        gsl_rng_free(r);
    kc_free(c);
    return NULL;
}

void kc_free(kc_case *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nbufs; i++)
        free(c->bufs[i]);
    free(c);
}

const kc_shape *kc_shape_of(const kc_case *c) { return &c->s; }

mxk_status kc_run(const mxk_ops *ops, kc_case *c, int mutant, double *ms)
{
    for (int i = 0; i < c->out.n; i++)
        memset((void *)c->out.p[i], c->fill[i], c->out.len[i]);
    switch (c->s.kernel) {
    case MXK_K_MX_QUANT:
        c->quant.mutant = mutant;
        return ops->mx_quant(&c->quant, ms);
    case MXK_K_FN_TO_FNUZ:
        c->fnuz.mutant = mutant;
        return ops->fn_to_fnuz(&c->fnuz, ms);
    case MXK_K_MOE_ALIGN:
        c->align.mutant = mutant;
        return ops->moe_align(&c->align, ms);
    case MXK_K_MXFP8_GEMM:
        c->mx.mutant = mutant;
        return ops->mxfp8_group_gemm(&c->mx, ms);
    case MXK_K_BF16_GEMM:
        c->bf.mutant = mutant;
        return ops->bf16_group_gemm(&c->bf, ms);
    case MXK_K_SWIGLU_QUANT:
        c->sw.mutant = mutant;
        return ops->swiglu_quant(&c->sw, ms);
    case MXK_K_MOE_SUM:
        c->sum.mutant = mutant;
        return ops->moe_sum(&c->sum, ms);
    }
    return MXK_EINVAL;
}

kc_out kc_outputs(const kc_case *c) { return c->out; }

uint8_t *kc_snapshot(const kc_case *c, size_t *len)
{
    size_t n = 0;
    for (int i = 0; i < c->out.n; i++)
        n += c->out.len[i];
    uint8_t *s = malloc(n ? n : 1), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < c->out.n; i++) {
        memcpy(p, c->out.p[i], c->out.len[i]);
        p += c->out.len[i];
    }
    if (len)
        *len = n;
    return s;
}

const char *kc_first_diff(const kc_case *c, const uint8_t *snap)
{
    static char buf[128];
    const uint8_t *p = snap;
    for (int i = 0; i < c->out.n; i++) {
        const uint8_t *q = c->out.p[i];
        for (size_t j = 0; j < c->out.len[i]; j++)
            if (p[j] != q[j]) {
                snprintf(buf, sizeof buf, "%s byte %zu (0x%02x vs 0x%02x)",
                         c->out.name[i], j, p[j], q[j]);
                return buf;
            }
        p += c->out.len[i];
    }
    return "";
}

const mxk_quant_args *kc_quant(const kc_case *c) { return &c->quant; }
const mxk_fnuz_args *kc_fnuz(const kc_case *c) { return &c->fnuz; }
const mxk_align_args *kc_align(const kc_case *c) { return &c->align; }
const mxk_mxfp8_gemm_args *kc_mxfp8(const kc_case *c) { return &c->mx; }
const mxk_bf16_gemm_args *kc_bf16_args(const kc_case *c) { return &c->bf; }
const mxk_swiglu_args *kc_swiglu(const kc_case *c) { return &c->sw; }
const mxk_sum_args *kc_sum(const kc_case *c) { return &c->sum; }
const int32_t *kc_topk_ids(const kc_case *c) { return c->topk_ids; }
const int32_t *kc_expert_map(const kc_case *c) { return c->expert_map; }

const char *kc_describe(const kc_shape *s, char *buf, size_t len)
{
    const char *k = mxk_kernel_name(s->kernel);
    switch (s->kernel) {
    case MXK_K_MX_QUANT:
    case MXK_K_SWIGLU_QUANT:
        snprintf(buf, len, "%s rows=%d %s=%d %s", k, s->rows,
                 s->kernel == MXK_K_MX_QUANT ? "k" : "inter", s->k,
                 s->fmt == MXK_FP8_E4M3FN ? "fn" : "fnuz");
        break;
    case MXK_K_FN_TO_FNUZ:
        snprintf(buf, len, "%s E=%d N=%d K=%d pack=%d%s", k, s->experts, s->n,
                 s->k, s->packed, s->bad_scale ? " bad-scale" : "");
        break;
    case MXK_K_MOE_ALIGN:
        snprintf(buf, len, "%s T=%d topk=%d E=%d block_m=%d%s%s", k, s->tokens,
                 s->topk, s->experts, s->block_m, s->ep ? " ep" : "",
                 s->skew ? " skew" : "");
        break;
    case MXK_K_MXFP8_GEMM:
    case MXK_K_BF16_GEMM:
        snprintf(buf, len,
                 "%s T=%d topk=%d E=%d block_m=%d N=%d K=%d %s%s%s%s%s%s%s", k,
                 s->tokens, s->topk, s->experts, s->block_m, s->n, s->k,
                 s->gemm2 ? "gemm2" : "gemm1", s->ep ? " ep" : "",
                 s->weights ? " topk-w" : "",
                 s->kernel == MXK_K_MXFP8_GEMM
                     ? (s->fmt == MXK_FP8_E4M3FN ? " fn" : " fnuz")
                     : "",
                 s->kernel == MXK_K_MXFP8_GEMM && s->e8m0 ? " spec-e8m0" : "",
                 s->kernel == MXK_K_MXFP8_GEMM && s->packed ? " packed" : "",
                 s->path == MXK_PATH_PORTABLE ? " portable" : "");
        break;
    case MXK_K_MOE_SUM:
        snprintf(buf, len, "%s T=%d topk=%d N=%d %s", k, s->tokens, s->topk,
                 s->n, s->fp32_acc ? "fp32" : "bf16");
        break;
    default:
        snprintf(buf, len, "?");
    }
    return buf;
}

static const kc_shape standard[] = {
    {.kernel = MXK_K_MX_QUANT, .rows = 7, .k = 96, .fmt = MXK_FP8_E4M3FNUZ},
    {.kernel = MXK_K_MX_QUANT, .rows = 5, .k = 64, .fmt = MXK_FP8_E4M3FN},
    {.kernel = MXK_K_FN_TO_FNUZ, .experts = 3, .n = 40, .k = 96, .packed = 1},
    {.kernel = MXK_K_FN_TO_FNUZ, .experts = 2, .n = 17, .k = 64, .packed = 0},
    {.kernel = MXK_K_FN_TO_FNUZ, .experts = 2, .n = 8, .k = 64, .packed = 1,
     .bad_scale = 1},
    {.kernel = MXK_K_MOE_ALIGN, .tokens = 9, .topk = 4, .experts = 8,
     .block_m = 16},
    {.kernel = MXK_K_MOE_ALIGN, .tokens = 5, .topk = 2, .experts = 6,
     .block_m = 4, .ep = 1},
    {.kernel = MXK_K_MOE_ALIGN, .tokens = 33, .topk = 4, .experts = 16,
     .block_m = 8, .skew = 1},
    {.kernel = MXK_K_MXFP8_GEMM, .tokens = 9, .topk = 4, .experts = 8,
     .block_m = 16, .n = 96, .k = 256, .fmt = MXK_FP8_E4M3FNUZ, .packed = 1},
    {.kernel = MXK_K_MXFP8_GEMM, .tokens = 6, .topk = 2, .experts = 6,
     .block_m = 4, .ep = 1, .n = 70, .k = 128, .gemm2 = 1,
     .fmt = MXK_FP8_E4M3FN, .weights = 1},
    {.kernel = MXK_K_MXFP8_GEMM, .tokens = 5, .topk = 2, .experts = 4,
     .block_m = 3, .n = 33, .k = 160, .gemm2 = 1, .fmt = MXK_FP8_E4M3FNUZ,
     .e8m0 = MXK_E8M0_SPEC, .packed = 1, .weights = 1},
    {.kernel = MXK_K_BF16_GEMM, .tokens = 9, .topk = 4, .experts = 8,
     .block_m = 16, .n = 80, .k = 100, .weights = 1},
    {.kernel = MXK_K_BF16_GEMM, .tokens = 5, .topk = 2, .experts = 6,
     .block_m = 4, .ep = 1, .n = 64, .k = 64, .gemm2 = 1, .weights = 1},
    {.kernel = MXK_K_BF16_GEMM, .tokens = 4, .topk = 1, .experts = 3,
     .block_m = 5, .n = 17, .k = 33},
    {.kernel = MXK_K_SWIGLU_QUANT, .rows = 6, .k = 64, .fmt = MXK_FP8_E4M3FNUZ},
    {.kernel = MXK_K_SWIGLU_QUANT, .rows = 3, .k = 96, .fmt = MXK_FP8_E4M3FN},
    {.kernel = MXK_K_MOE_SUM, .tokens = 7, .topk = 4, .n = 50},
    {.kernel = MXK_K_MOE_SUM, .tokens = 3, .topk = 3, .n = 70, .fp32_acc = 1},
    {.kernel = MXK_K_MOE_SUM, .tokens = 4, .topk = 1, .n = 20},
};

const kc_shape *kc_standard_shapes(int *n)
{
    *n = (int)(sizeof standard / sizeof standard[0]);
    return standard;
}
