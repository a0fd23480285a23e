/* probe_plan.c -- the designed inputs of the matrix-unit probe.
 *
 * Every test value is a product of two exactly representable powers of two
 * (times 1, 1.5 or 1.75), found by splitting the wanted exponent between
 * the two formats; a case whose value cannot be represented is left out,
 * so a plan depends only on (fa, fb, k).  mxprobe/probe.h lists the tests;
 * docs/blockfma.md explains each readout.  Changing anything here changes
 * the plan: bump MX_PROBE_PLAN_VERSION, since recorded hardware outputs
 * (golden/) are tied to it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mxprobe/probe.h"

static const char *const test_names[MX_PT_COUNT] = {
    "order", "group", "align", "ctime", "round", "carry", "conly", "subn",
    "special", "zero", "subref", "ovf"};

const char *mx_probe_test_name(int test)
{
    return test >= 0 && test < MX_PT_COUNT ? test_names[test] : "?";
}

typedef struct {
    mx_probe_plan *p;
    size_t cap;
    int fail;
    int count_only; /* every case is written over case 0; ncase counts */
    struct memo {   /* prod_pair results (up to 800 encodings each)       */
        int used, sign, t, ok;
        double sa, sb;
        uint32_t ca, cb;
    } memo[512];
} builder;

static int64_t exact_code(const mx_format *f, double v)
{
    uint32_t code;
    mx_encode_opts o = mx_encode_defaults();
    if (mx_encode_double(f, v, &o, &code) != MX_OK)
        return -1;
    if (mx_classify(f, code) >= MX_CLASS_INF || mx_decode_double(f, code) != v)
        return -1;
    return code;
}

/* Codes with a*b = sign * sa*2^ta * sb*2^tb, ta + tb = t, both exact. */
static int prod_pair(const mx_format *fa, const mx_format *fb, int sign,
                     double sa, double sb, int t, uint32_t *ca, uint32_t *cb)
{
    for (int d = 0; d < 400; d++) {
        int ta = t / 2 + (d % 2 ? (d + 1) / 2 : -(d / 2));
        int tb = t - ta;
        int64_t x = exact_code(fa, ldexp(sign ? -sa : sa, ta));
        int64_t y = exact_code(fb, ldexp(sb, tb));
        if (x >= 0 && y >= 0) {
            *ca = (uint32_t)x;
            *cb = (uint32_t)y;
            return 1;
        }
    }
    return 0;
}

static size_t new_case(builder *bd, int n, int test, int i, int j, int v,
                       int w)
{
    mx_probe_plan *p = bd->p;
    if (bd->fail)
        return 0;
    if (bd->count_only && bd->cap) { /* reuse case 0 */
        p->ncase++;
        size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
        memset(p->a, 0, p->stride * ea);
        memset(p->b, 0, p->stride * eb);
        p->n[0] = n;
        p->c[0] = 0;
        mx_probe_tag tg = {test, i, j, v, w};
        p->tag[0] = tg;
        return 0;
    }
    if (p->ncase == bd->cap) {
        size_t cap = bd->cap ? 2 * bd->cap : 1024;
        size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
        void *a = realloc(p->a, cap * p->stride * ea);
        void *b = realloc(p->b, cap * p->stride * eb);
        int *nn = realloc(p->n, cap * sizeof *nn);
        uint32_t *c = realloc(p->c, cap * sizeof *c);
        mx_probe_tag *t = realloc(p->tag, cap * sizeof *t);
        if (a) p->a = a;
        if (b) p->b = b;
        if (nn) p->n = nn;
        if (c) p->c = c;
        if (t) p->tag = t;
        if (!a || !b || !nn || !c || !t) {
            bd->fail = 1;
            return 0;
        }
        bd->cap = cap;
    }
    size_t id = p->ncase++;
    size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
    memset((char *)p->a + id * p->stride * ea, 0, p->stride * ea);
    memset((char *)p->b + id * p->stride * eb, 0, p->stride * eb);
    p->n[id] = n;
    p->c[id] = 0;
    p->tag[id] = (mx_probe_tag){test, i, j, v, w};
    return id;
}

static void put(builder *bd, size_t id, int pos, uint32_t ca, uint32_t cb)
{
    mx_probe_plan *p = bd->p;
    if (bd->fail)
        return;
    if (p->fa->bits == 8)
        ((uint8_t *)p->a)[id * p->stride + pos] = (uint8_t)ca;
    else
        ((uint16_t *)p->a)[id * p->stride + pos] = (uint16_t)ca;
    if (p->fb->bits == 8)
        ((uint8_t *)p->b)[id * p->stride + pos] = (uint8_t)cb;
    else
        ((uint16_t *)p->b)[id * p->stride + pos] = (uint16_t)cb;
}

/* Puts sign * sa*sb * 2^t at pos; 0 when not representable. */
static int put_prod(builder *bd, size_t id, int pos, int sign, double sa,
                    double sb, int t)
{
    uint32_t ca, cb;
    unsigned h = ((unsigned)t * 31u + (unsigned)sign * 7u + (unsigned)(sa * 64) * 13u +
                  (unsigned)(sb * 64) * 17u) % 512u;
    struct memo *m = &bd->memo[h];
    if (!(m->used && m->sign == sign && m->t == t && m->sa == sa && m->sb == sb)) {
        m->used = 1;
        m->sign = sign;
        m->t = t;
        m->sa = sa;
        m->sb = sb;
        m->ok = prod_pair(bd->p->fa, bd->p->fb, sign, sa, sb, t, &m->ca, &m->cb);
    }
    if (!m->ok)
        return 0;
    ca = m->ca;
    cb = m->cb;
    put(bd, id, pos, ca, cb);
    return 1;
}

static uint32_t f32_bits(double v) /* v exact in FP32 */
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The largest t with 1.75 * 2^t exact in f, capped at 30. */
static int top_pow(const mx_format *f)
{
    for (int t = 30; t > -200; t--)
        if (exact_code(f, ldexp(1.75, t)) >= 0)
            return t;
    return 0;
}

/* Drops the last case (a value was not representable). */
static void drop_last(builder *bd) { bd->p->ncase--; }

static void plan_order(builder *bd)
{
    mx_probe_plan *p = bd->p;
    int n = 2 * p->k;
    if (bd->count_only && n > 2) {
        /* every case (i, j) holds the same three kinds of products, so
         * either all n (n - 1) cases are kept or none: O(1), not O(n^3) */
        size_t id = new_case(bd, n, MX_PT_ORDER, 0, 1, 0, 0);
        int ok = put_prod(bd, id, 0, 0, 1, 1, p->eb) &&
                 put_prod(bd, id, 1, 1, 1, 1, p->eb) &&
                 put_prod(bd, id, 2, 0, 1, 1, p->es);
        drop_last(bd);
        if (ok && !bd->fail)
            p->ncase += (size_t)n * (size_t)(n - 1);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (i == j)
                continue;
            size_t id = new_case(bd, n, MX_PT_ORDER, i, j, 0, 0);
            int ok = 1;
            for (int q = 0; q < n && ok; q++)
                ok = q == i ? put_prod(bd, id, q, 0, 1, 1, p->eb)
                   : q == j ? put_prod(bd, id, q, 1, 1, 1, p->eb)
                            : put_prod(bd, id, q, 0, 1, 1, p->es);
            if (!ok)
                drop_last(bd);
        }
}

static void plan_group(builder *bd)
{
    mx_probe_plan *p = bd->p;
    if (bd->count_only) {
        /* whether a case is kept depends on d alone (put_prod's values,
         * not the positions j < l): one trial per d, then all (k - 1)(k - 2)
         * / 2 pairs -- O(d), not O(k^2 d) (264 000 cases at k = 128) */
        size_t pairs = (size_t)(p->k - 1) * (size_t)(p->k - 2) / 2;
        for (int d = 8; d <= 40 && pairs; d++) {
            size_t id = new_case(bd, p->k, MX_PT_GROUP, 1, 2, d, 0);
            int ok = put_prod(bd, id, 0, 0, 1, 1, p->eb) &&
                     put_prod(bd, id, 1, 0, 1, 1, p->eb - d) &&
                     put_prod(bd, id, 2, 0, 1, 1, p->eb - d);
            drop_last(bd);
            if (ok && !bd->fail)
                p->ncase += pairs;
        }
        return;
    }
    for (int j = 1; j < p->k; j++)
        for (int l = j + 1; l < p->k; l++)
            for (int d = 8; d <= 40; d++) {
                size_t id = new_case(bd, p->k, MX_PT_GROUP, j, l, d, 0);
                if (!put_prod(bd, id, 0, 0, 1, 1, p->eb) ||
                    !put_prod(bd, id, j, 0, 1, 1, p->eb - d) ||
                    !put_prod(bd, id, l, 0, 1, 1, p->eb - d))
                    drop_last(bd);
            }
}

static void plan_align(builder *bd)
{
    mx_probe_plan *p = bd->p;
    static const double sig[3] = {1.0, 1.5, 1.75};
    for (int w = 0; w < 2; w++)          /* B significand 1 or 2.25 */
        for (int v = 0; v < 3; v++)      /* small term significand  */
            for (int s = 0; s < 2; s++)  /* small term sign         */
                for (int j = 0; j <= 44; j++) {
                    size_t id = new_case(bd, p->k, MX_PT_ALIGN, s, j, v, w);
                    double bs = w ? 1.5 : 1.0;
                    if (!put_prod(bd, id, 0, 0, bs, bs, p->eb) ||
                        !put_prod(bd, id, 1, 1, bs, bs, p->eb) ||
                        !put_prod(bd, id, 2, s, sig[v], 1, p->eb - j))
                        drop_last(bd);
                }
}

static void plan_ctime(builder *bd)
{
    mx_probe_plan *p = bd->p;
    for (int s = 0; s < 2; s++)
        for (int d = 0; d <= 44; d++) {
            size_t id = new_case(bd, p->k, MX_PT_CTIME, s, d, 0, 0);
            if (!put_prod(bd, id, 0, 0, 1, 1, p->eb) ||
                !put_prod(bd, id, 1, 1, 1, 1, p->eb) || p->eb - d < -149) {
                drop_last(bd);
                continue;
            }
            p->c[id] = f32_bits(ldexp(s ? -1.0 : 1.0, p->eb - d));
        }
}

static void plan_round(builder *bd)
{
    mx_probe_plan *p = bd->p;
    for (int w = 0; w < 3; w++)            /* big: product, c odd, c even */
        for (int s1 = -1; s1 <= 1; s1++)   /* half-ulp term               */
            for (int s2 = 0; s2 < 2; s2++) /* tiny term sign              */
                for (int j = 25; j <= 56; j++) {
                    size_t id = new_case(bd, p->k, MX_PT_ROUND, s1, j, s2, w);
                    int ok = 1, pos = 0;
                    if (w == 0)
                        ok = put_prod(bd, id, pos++, 0, 1, 1, p->eb);
                    else
                        p->c[id] = f32_bits(ldexp(w == 1 ? 1.0 + ldexp(1, -23)
                                                         : 1.0, p->eb));
                    if (ok && s1)
                        ok = put_prod(bd, id, pos++, s1 < 0, 1, 1, p->eb - 24);
                    if (ok)
                        ok = put_prod(bd, id, pos, s2, 1, 1, p->eb - j);
                    if (!ok)
                        drop_last(bd);
                }
}

static void plan_carry(builder *bd)
{
    mx_probe_plan *p = bd->p;
    int ms[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 31, 15, 7};
    for (size_t q = 0; q < sizeof ms / sizeof ms[0]; q++) {
        int m = ms[q];
        if (m > p->k - 1 || (q >= 9 && m != p->k - 1))
            continue;
        for (int j = 0; j <= 34; j++) {
            size_t id = new_case(bd, p->k, MX_PT_CARRY, m, j, 0, 0);
            int ok = 1;
            for (int t = 0; t < m && ok; t++)
                ok = put_prod(bd, id, t, 0, 1.75, 1.75, p->eb - 2);
            if (ok)
                ok = put_prod(bd, id, p->k - 1, 0, 1, 1, p->eb - 2 - j);
            if (!ok)
                drop_last(bd);
        }
    }
}

static void plan_conly(builder *bd)
{
    mx_probe_plan *p = bd->p;
    for (int s = 0; s < 2; s++)
        for (int j = 1; j <= 23; j++) {
            size_t id = new_case(bd, p->k, MX_PT_CONLY, s, j, 0, 0);
            p->c[id] = f32_bits(ldexp(s ? -1.0 : 1.0, 5) *
                                (1.0 + ldexp(1.0, -j)));
        }
    /* full significands at a few exponents, and with one product present */
    static const uint32_t cs[] = {0x3fffffffu, 0x4b7fffffu, 0x00000001u,
                                  0x807fffffu, 0x7f7fffffu, 0x3f800001u,
                                  0xc2aaaaabu, 0x0d555555u};
    for (size_t q = 0; q < sizeof cs / sizeof cs[0]; q++) {
        size_t id = new_case(bd, p->k, MX_PT_CONLY, 0, 0, (int)q, 0);
        p->c[id] = cs[q];
        id = new_case(bd, p->k, MX_PT_CONLY, 0, 0, (int)q, 1);
        p->c[id] = cs[q];
        if (!put_prod(bd, id, 0, 0, 1, 1, p->es))
            drop_last(bd);
    }
}

static void plan_subn(builder *bd)
{
    mx_probe_plan *p = bd->p;
    const mx_format *fa = p->fa, *fb = p->fb;
    uint32_t mina = 1, minb = 1;                           /* min subnormal */
    uint32_t maxa = (1u << fa->mbits) - 1, maxb = (1u << fb->mbits) - 1;
    int64_t onea = exact_code(fa, 1.0), oneb = exact_code(fb, 1.0);
    size_t id;
    id = new_case(bd, p->k, MX_PT_SUBN, 0, 0, 0, 0);
    put(bd, id, 0, mina, (uint32_t)oneb);
    id = new_case(bd, p->k, MX_PT_SUBN, 1, 0, 0, 0);
    put(bd, id, 0, (uint32_t)onea, minb);
    id = new_case(bd, p->k, MX_PT_SUBN, 2, 0, 0, 0);
    put(bd, id, 0, maxa, maxb);
    id = new_case(bd, p->k, MX_PT_SUBN, 3, 0, 0, 0);
    put(bd, id, 0, mina | (1u << (fa->bits - 1)), minb);
    id = new_case(bd, p->k, MX_PT_SUBN, 4, 0, 0, 0);
    p->c[id] = 0x00000001u;
    id = new_case(bd, p->k, MX_PT_SUBN, 5, 0, 0, 0);
    p->c[id] = 0x80400000u;
    id = new_case(bd, p->k, MX_PT_SUBN, 6, 0, 0, 0);
    p->c[id] = 0x007fffffu;
    put(bd, id, 1, mina, (uint32_t)oneb);
    /* products in (or near) the FP32 subnormal range, where representable */
    static const int texp[] = {-127, -130, -140, -149, -150, -160};
    for (int q = 0; q < 6; q++) {
        id = new_case(bd, p->k, MX_PT_SUBN, 7, texp[q], 0, 0);
        if (!put_prod(bd, id, 0, 0, 1.5, 1, texp[q]))
            drop_last(bd);
        id = new_case(bd, p->k, MX_PT_SUBN, 8, texp[q], 0, 0);
        if (!put_prod(bd, id, 0, 1, 1, 1, texp[q]))
            drop_last(bd);
        else
            p->c[id] = 0x00800000u; /* 2^-126 minus a tiny product */
    }
}

static void plan_special(builder *bd)
{
    mx_probe_plan *p = bd->p;
    const mx_format *fa = p->fa, *fb = p->fb;
    uint32_t one_b = (uint32_t)exact_code(fb, 1.0);
    uint32_t one_a = (uint32_t)exact_code(fa, 1.0);
    uint32_t nan_a = fa->nan_code, nan_b = fb->nan_code;
    size_t id;
    id = new_case(bd, p->k, MX_PT_SPECIAL, 0, 0, 0, 0);
    put(bd, id, 3, nan_a, one_b);
    id = new_case(bd, p->k, MX_PT_SPECIAL, 1, 0, 0, 0);
    put(bd, id, 3, one_a, nan_b);
    id = new_case(bd, p->k, MX_PT_SPECIAL, 2, 0, 0, 0);
    put(bd, id, 0, one_a, one_b);
    p->c[id] = 0x7fc00000u;
    id = new_case(bd, p->k, MX_PT_SPECIAL, 3, 0, 0, 0);
    put(bd, id, 0, one_a, one_b);
    p->c[id] = 0xff800001u;
    id = new_case(bd, p->k, MX_PT_SPECIAL, 8, 0, 0, 0);
    put(bd, id, 0, one_a, one_b);
    p->c[id] = 0x7f800000u;
    if (fa->has_inf) {
        id = new_case(bd, p->k, MX_PT_SPECIAL, 4, 0, 0, 0);
        put(bd, id, 5, fa->inf_code, one_b);
        id = new_case(bd, p->k, MX_PT_SPECIAL, 5, 0, 0, 0);
        put(bd, id, 5, fa->inf_code | (1u << (fa->bits - 1)), one_b);
        id = new_case(bd, p->k, MX_PT_SPECIAL, 6, 0, 0, 0);
        put(bd, id, 5, fa->inf_code, 0);
        id = new_case(bd, p->k, MX_PT_SPECIAL, 7, 0, 0, 0);
        put(bd, id, 5, fa->inf_code, one_b);
        put(bd, id, 6, fa->inf_code | (1u << (fa->bits - 1)), one_b);
        id = new_case(bd, p->k, MX_PT_SPECIAL, 9, 0, 0, 0);
        put(bd, id, 5, fa->inf_code, one_b);
        p->c[id] = 0xff800000u;
    }
    id = new_case(bd, p->k, MX_PT_SPECIAL, 10, 0, 0, 0);
    p->c[id] = 0x7f7fffffu;
    if (!put_prod(bd, id, 0, 0, 1.75, 1.75, p->eb))
        drop_last(bd);
    id = new_case(bd, p->k, MX_PT_SPECIAL, 11, 0, 0, 0);
    p->c[id] = 0x7f7fffffu;
    if (!put_prod(bd, id, 0, 1, 1.75, 1.75, p->eb))
        drop_last(bd);
    id = new_case(bd, p->k, MX_PT_SPECIAL, 14, 0, 0, 0);
    p->c[id] = 0xff7fffffu;
    if (!put_prod(bd, id, 0, 1, 1.75, 1.75, p->eb))
        drop_last(bd);
    /* products beyond FP32's range (BF16 only): alone, and cancelling */
    id = new_case(bd, p->k, MX_PT_SPECIAL, 12, 0, 0, 0);
    if (!put_prod(bd, id, 0, 0, 1, 1, 128))
        drop_last(bd);
    id = new_case(bd, p->k, MX_PT_SPECIAL, 13, 0, 0, 0);
    if (!put_prod(bd, id, 0, 0, 1.5, 1.5, 200) ||
        !put_prod(bd, id, 1, 1, 1.5, 1.5, 200) ||
        !put_prod(bd, id, 2, 0, 1, 1, 100))
        drop_last(bd);
}

static void plan_zero(builder *bd)
{
    mx_probe_plan *p = bd->p;
    uint32_t nz_a = 1u << (p->fa->bits - 1);
    uint32_t one_b = (uint32_t)exact_code(p->fb, 1.0);
    size_t id;
    id = new_case(bd, p->k, MX_PT_ZERO, 0, 0, 0, 0);
    id = new_case(bd, p->k, MX_PT_ZERO, 1, 0, 0, 0);
    p->c[id] = 0x80000000u;
    id = new_case(bd, p->k, MX_PT_ZERO, 2, 0, 0, 0);
    for (int q = 0; q < p->k; q++)
        put(bd, id, q, nz_a, one_b);
    p->c[id] = 0x80000000u;
    id = new_case(bd, p->k, MX_PT_ZERO, 3, 0, 0, 0);
    for (int q = 0; q < p->k; q++)
        put(bd, id, q, nz_a, one_b);
    for (int w = 0; w < 2; w++) {
        id = new_case(bd, p->k, MX_PT_ZERO, 4 + w, 0, 0, 0);
        put_prod(bd, id, 0, 0, 1, 1, p->eb);
        put_prod(bd, id, 1, 1, 1, 1, p->eb);
        p->c[id] = w ? 0x80000000u : 0;
    }
    for (int w = 0; w < 2; w++) {
        id = new_case(bd, p->k, MX_PT_ZERO, 6 + w, 0, 0, 0);
        put_prod(bd, id, 0, w, 1, 1, p->eb);
        p->c[id] = f32_bits(ldexp(w ? 1.0 : -1.0, p->eb));
    }
}

static void plan_subref(builder *bd)
{
    mx_probe_plan *p = bd->p;
    const mx_format *fa = p->fa, *fb = p->fb;
    for (int w = 0; w < 2; w++) {
        /* the pair: (smallest subnormal) x (largest power of two) */
        const mx_format *fs = w ? fb : fa, *fl = w ? fa : fb;
        int tl = top_pow(fl);
        int64_t big = exact_code(fl, ldexp(1.0, tl));
        uint32_t sub = 1u, nsub = 1u | (1u << (fs->bits - 1));
        int lead = fs->emin - fs->mbits + tl; /* exponent of the product */
        if (big < 0)
            continue;
        /* the small term at place 2, or 4 (same block as 0 and 1 when
         * pairs of places are dealt to two blocks) */
        for (int v = 0; v < 2; v++)
            for (int s = 0; s < 2; s++)
                for (int j = 0; j <= 34; j++) {
                    size_t id = new_case(bd, p->k, MX_PT_SUBREF, s, j, v, w);
                    if (w) {
                        put(bd, id, 0, (uint32_t)big, sub);
                        put(bd, id, 1, (uint32_t)big, nsub);
                    } else {
                        put(bd, id, 0, sub, (uint32_t)big);
                        put(bd, id, 1, nsub, (uint32_t)big);
                    }
                    if (!put_prod(bd, id, v ? 4 : 2, s, 1, 1, lead - j))
                        drop_last(bd);
                }
    }
}

static void plan_ovf(builder *bd)
{
    mx_probe_plan *p = bd->p;
    for (int s = 0; s < 2; s++)
        for (int t = 100; t <= 106; t++) {
            size_t id = new_case(bd, p->k, MX_PT_OVF, s, t, 0, 0);
            if (!put_prod(bd, id, 0, s, 1, 1, t)) {
                drop_last(bd);
                continue;
            }
            p->c[id] = s ? 0xff7fffffu : 0x7f7fffffu;
        }
}

static mx_status build(const mx_format *fa, const mx_format *fb, int k,
                       int count_only, mx_probe_plan **out)
{
    if (!out)
        return MX_EINVAL;
    *out = NULL;
    if (!fa || !fb || !fa->is_signed || !fb->is_signed ||
        (fa->bits != 8 && fa->bits != 16) || (fb->bits != 8 && fb->bits != 16) ||
        k < 4 || k > 128 || k % 2)
        return MX_EINVAL;
    mx_probe_plan *p = calloc(1, sizeof *p);
    if (!p)
        return MX_ENOMEM;
    p->version = MX_PROBE_PLAN_VERSION;
    p->fa = fa;
    p->fb = fb;
    p->k = k;
    p->stride = 2 * (size_t)k;
    p->eb = top_pow(fa) + top_pow(fb);
    int emin_prod = fa->emin + fb->emin;
    p->es = emin_prod > p->eb - 80 ? emin_prod : p->eb - 80;

    builder bd; /* about 20 KB, with the memo */
    memset(&bd, 0, sizeof bd);
    bd.p = p;
    bd.count_only = count_only;
    plan_order(&bd);
    plan_group(&bd);
    plan_align(&bd);
    plan_ctime(&bd);
    plan_round(&bd);
    plan_carry(&bd);
    plan_conly(&bd);
    plan_subn(&bd);
    plan_special(&bd);
    plan_zero(&bd);
    plan_subref(&bd);
    plan_ovf(&bd);
    if (!bd.fail)
        p->d = calloc(p->ncase ? p->ncase : 1, sizeof *p->d);
    if (bd.fail || !p->d) {
        mx_probe_plan_free(p);
        return MX_ENOMEM;
    }
    *out = p;
    return MX_OK;
}

mx_status mx_probe_plan_make(const mx_format *fa, const mx_format *fb, int k,
                             mx_probe_plan **out)
{
    return build(fa, fb, k, 0, out);
}

mx_status mx_probe_plan_count(const mx_format *fa, const mx_format *fb, int k,
                              size_t *ncase)
{
    mx_probe_plan *p;
    mx_status st = build(fa, fb, k, 1, &p);
    if (st == MX_OK) {
        *ncase = p->ncase;
        mx_probe_plan_free(p);
    }
    return st;
}

void mx_probe_plan_free(mx_probe_plan *p)
{
    if (!p)
        return;
    free(p->a);
    free(p->b);
    free(p->n);
    free(p->c);
    free(p->tag);
    free(p->d);
    free(p);
}
