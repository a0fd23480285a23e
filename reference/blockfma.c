/* blockfma.c -- the block-FMA model of matrix units, integer arithmetic only.
 *
 * Algorithm (parameters in mxref/blockfma.h; docs/blockfma.md in prose):
 *   0. Specials: a NaN operand, inf*0, or infinities of both signs give the
 *      unit's NaN; otherwise an infinite product or c gives that infinity.
 *   1. Every product a_i*b_i is formed exactly as an integer significand M
 *      times 2^x, with a reference exponent r (e_a + e_b, or the exponent of
 *      the leading bit with prod_norm).  c is a term of the same kind.
 *   2. Each group (all products and, if early, c; or the even- and the
 *      odd-indexed products) is aligned: E = max r over its nonzero terms,
 *      every term rounded to a multiple of 2^(E-F) (sticky: plus one OR bit
 *      below), and the integers added exactly.
 *   3. Odd/even groups are combined on the larger E's grid; a late c is
 *      added by the CDNA3 rules.
 *   4. The exact integer sum is normalised, truncated to out_prec bits and
 *      rounded once to FP32 by mx_round_pack (the library's one rounding
 *      routine), which also handles FP32 subnormals and overflow.
 * Integers (blockfma_fx.c): a two's-complement fixed-point accumulator of
 * FX_LIMBS 64-bit limbs with a binary exponent (value = integer * 2^exp),
 * whose width covers the exact sum of any block of FP8/BF16/FP16 products
 * and an FP32 c (the exact modes need about 540 bits: BF16 products span
 * 2^-266 .. 2^256, c spans 2^-149 .. 2^128), so no step ever loses a bit
 * it was not asked to drop.  Error analysis: none needed inside -- every operation is exact or
 * is one of the model's own roundings; docs/bounds.md bounds the model's
 * deviation from the exact result.
 * Length (over ~600 lines): the steps above and the int64 fast path of step
 * 2 (the same bits when every term provably fits) are one algorithm and read
 * best side by side; the wide integers (blockfma_fx.c), the per-code tables
 * (blockfma_mag.c) and the bounds live in their own files.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "blockfma_fx.h"

/* ---- terms ------------------------------------------------------------ */

typedef struct {
    int neg;
    uint64_t m; /* magnitude m * 2^x; m == 0 for a zero term */
    int x;
    int r;      /* reference exponent (alignment), valid when m != 0 */
} term;

static int bitlen64(uint64_t m) { return m ? 64 - __builtin_clzll(m) : 0; }

/* Adds term t to s, first rounding it to a multiple of 2^g (s->exp is g, or
 * g - 1 with sticky: then the bit at 2^(g-1) is the OR of the lost bits). */
static void fx_add_term(fx *s, const term *t, int g, mx_align_round mode,
                        int sticky)
{
    if (t->m == 0)
        return;
    if (t->x >= g) {
        mxb_fx_add_mag(s, t->neg, t->m, t->x - s->exp);
        return;
    }
    int r = g - t->x;
    uint64_t q, lost;
    if (r >= 64) {
        q = 0;
        lost = t->m;
    } else {
        q = t->m >> r;
        lost = t->m & ((UINT64_C(1) << r) - 1);
    }
    if (sticky) {
        mxb_fx_add_mag(s, t->neg, (q << 1) | (lost != 0), 0);
        return;
    }
    int half = r <= 64 ? (int)((t->m >> (r - 1)) & 1) : 0;
    int rest = r - 1 >= 64 ? t->m != 0
                           : (t->m & ((UINT64_C(1) << (r - 1)) - 1)) != 0;
    int inc = 0;
    switch (mode) {
    case MX_ALIGN_TRUNC:
        break;
    case MX_ALIGN_RD:
        inc = t->neg && (half || rest);
        break;
    case MX_ALIGN_RNE:
        inc = half && (rest || (q & 1));
        break;
    }
    mxb_fx_add_mag(s, t->neg, q + (uint64_t)inc, g - s->exp);
}

/* align_group's sum in one int64: the same terms, rounded exactly as
 * fx_add_term rounds them, on the same grid.  Every term lies below
 * 2^(E+2) (a product's leading bit is at most r_a + r_b + 1, c's at r), so
 * on the grid 2^(E-F) (or half of it with sticky bits) it is below
 * 2^(F+3); each term is checked to be below 2^52 anyway, which keeps the
 * sum of at most 64 of them inside int64.  Returns 0 (s untouched) when a
 * term does not fit: the caller takes the wide path. */
static int align_group64(const mx_blockfma_params *p, const term *t,
                         size_t nt, int g, int sticky, fx *s)
{
    int base = sticky ? g - 1 : g;
    int64_t acc = 0;
    for (size_t i = 0; i < nt; i++) {
        const term *u = &t[i];
        if (!u->m)
            continue;
        uint64_t v;
        if (u->x >= g) {
            int sh = u->x - base;
            if (sh > 52 || bitlen64(u->m) + sh > 52)
                return 0;
            v = u->m << sh;
        } else {
            int r = g - u->x;
            uint64_t q, lost;
            if (r >= 64) {
                q = 0;
                lost = u->m;
            } else {
                q = u->m >> r;
                lost = u->m & ((UINT64_C(1) << r) - 1);
            }
            if (sticky) {
                v = (q << 1) | (lost != 0);
            } else {
                int half = r <= 64 ? (int)((u->m >> (r - 1)) & 1) : 0;
                int rest = r - 1 >= 64 ? u->m != 0
                                       : (u->m & ((UINT64_C(1) << (r - 1)) - 1)) != 0;
                int inc = 0;
                switch (p->align_round) {
                case MX_ALIGN_TRUNC:
                    break;
                case MX_ALIGN_RD:
                    inc = u->neg && (half || rest);
                    break;
                case MX_ALIGN_RNE:
                    inc = half && (rest || (q & 1));
                    break;
                }
                v = q + (uint64_t)inc;
            }
            if (bitlen64(v) > 52)
                return 0;
        }
        acc += u->neg ? -(int64_t)v : (int64_t)v;
    }
    mxb_fx_zero(s, base);
    if (acc)
        mxb_fx_add_mag(s, acc < 0, acc < 0 ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc, 0);
    return 1;
}

/* The grid of a group whose largest reference exponent is E: 2^(E-F), or
 * for an exact unit (F = MX_BFMA_EXACT) the block's finest bit gmin, so
 * that nothing is ever dropped. */
static int grid_of(const mx_blockfma_params *p, int E, int gmin)
{
    return p->frac_bits == MX_BFMA_EXACT ? gmin : E - p->frac_bits;
}

/* Aligns the nonzero terms of t[0..nt) to their largest reference exponent
 * and sums them (on the grid, or half of it with sticky bits).  Returns 0
 * (and leaves s zero) when all terms are zero. */
static int align_group(const mx_blockfma_params *p, const term *t,
                       size_t nt, int gmin, fx *s, int *E)
{
    int have = 0, emax = 0;
    for (size_t i = 0; i < nt; i++) {
        if (!t[i].m)
            continue;
        if (!have || t[i].r > emax)
            emax = t[i].r;
        have = 1;
    }
    mxb_fx_zero(s, 0);
    if (!have)
        return 0;
    int g = grid_of(p, emax, gmin);
    int sticky = p->sticky && p->frac_bits != MX_BFMA_EXACT;
    *E = emax;
    if (!mxb_slow && p->frac_bits != MX_BFMA_EXACT && nt <= 64 &&
        align_group64(p, t, nt, g, sticky, s))
        return 1;
    mxb_fx_zero(s, sticky ? g - 1 : g);
    for (size_t i = 0; i < nt; i++)
        fx_add_term(s, &t[i], g, p->align_round, sticky);
    return 1;
}

/* ---- operands ----------------------------------------------------------- */

static uint32_t code_at(const mx_format *f, const void *v, size_t i)
{
    return f->bits == 8 ? ((const uint8_t *)v)[i] : ((const uint16_t *)v)[i];
}

typedef struct {
    int nan;
    int pinf, ninf;
} specials;

/* 8-bit codes are decoded once into a table (the hot path of a GEMM
 * reference is decoding FP8 operands); built before main, like the format
 * table, so that concurrent callers never race. */
typedef struct {
    int8_t cls, neg;
    uint8_t m;
    int16_t x;
} dec8;

static dec8 dec8_tab[MX_FORMAT_COUNT][256];

__attribute__((constructor)) static void dec8_init(void)
{
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        if (f->bits != 8)
            continue;
        for (uint32_t c = 0; c < 256; c++) {
            int neg, x;
            uint32_t m;
            mx_class k = mx_decode_fields(f, c, &neg, &m, &x);
            dec8_tab[id][c] = (dec8){(int8_t)k, (int8_t)neg, (uint8_t)m,
                                     (int16_t)x};
        }
    }
}

/* Decodes code into (sign, m, x, r) with r the exponent of the leading bit
 * position of the format (emin for subnormals); returns the class. */
static mx_class operand(const mx_format *f, uint32_t code, int ftz, int *neg,
                        uint32_t *m, int *x, int *r)
{
    mx_class c;
    if (f->bits == 8) {
        const dec8 *d = &dec8_tab[f->id][code & 0xff];
        c = (mx_class)d->cls;
        *neg = d->neg;
        *m = d->m;
        *x = d->x;
    } else
        c = mx_decode_fields(f, code, neg, m, x);
    if (c == MX_CLASS_SUBNORMAL && ftz) {
        *m = 0;
        c = MX_CLASS_ZERO;
    }
    if (c == MX_CLASS_NORMAL || c == MX_CLASS_SUBNORMAL)
        *r = c == MX_CLASS_NORMAL ? *x + f->mbits : f->emin;
    return c;
}

static const mx_format *fp32(void)
{
    static const mx_format *f;
    if (!f)
        f = mx_format_get(MX_FP32); /* idempotent: a race stores the same */
    return f;
}

/* Product term of a and b; updates sp for specials. */
static void product(const mx_blockfma_params *p, const mx_format *fa,
                    uint32_t ca, const mx_format *fb, uint32_t cb, term *t,
                    specials *sp)
{
    int sa, sb, xa, xb, ra = 0, rb = 0;
    uint32_t ma, mb;
    mx_class ka = operand(fa, ca, p->ftz_in, &sa, &ma, &xa, &ra);
    mx_class kb = operand(fb, cb, p->ftz_in, &sb, &mb, &xb, &rb);
    memset(t, 0, sizeof *t);
    t->neg = sa ^ sb;
    if (ka == MX_CLASS_NAN || kb == MX_CLASS_NAN) {
        sp->nan = 1;
        return;
    }
    if (ka == MX_CLASS_INF || kb == MX_CLASS_INF) {
        if (ka == MX_CLASS_ZERO || kb == MX_CLASS_ZERO)
            sp->nan = 1;
        else if (t->neg)
            sp->ninf = 1;
        else
            sp->pinf = 1;
        return;
    }
    if (ka == MX_CLASS_ZERO || kb == MX_CLASS_ZERO)
        return;
    if (p->in_fmt > 0) { /* exact conversion: only the reference moves */
        const mx_format *w = mx_format_get((mx_format_id)(p->in_fmt - 1));
        int la = xa + bitlen64(ma) - 1, lb = xb + bitlen64(mb) - 1;
        ra = la > w->emin ? la : w->emin;
        rb = lb > w->emin ? lb : w->emin;
    }
    t->m = (uint64_t)ma * mb;
    t->x = xa + xb;
    int lead = t->x + bitlen64(t->m) - 1; /* exponent of the leading bit */
    t->r = p->prod_norm ? lead : ra + rb;
    if (p->ftz_prod && lead < -126) {
        t->m = 0;
        return;
    }
    if (p->prod_ovf_inf && lead >= 128) {
        if (t->neg)
            sp->ninf = 1;
        else
            sp->pinf = 1;
        t->m = 0;
    }
}

static void c_term(const mx_blockfma_params *p, uint32_t c_bits, term *t,
                   specials *sp)
{
    int s, x, r = 0;
    uint32_t m;
    mx_class k = operand(fp32(), c_bits, p->ftz_in, &s, &m, &x, &r);
    memset(t, 0, sizeof *t);
    t->neg = s;
    if (k == MX_CLASS_NAN)
        sp->nan = 1;
    else if (k == MX_CLASS_INF)
        *(s ? &sp->ninf : &sp->pinf) = 1;
    else if (k != MX_CLASS_ZERO) {
        t->m = m;
        t->x = x;
        t->r = r;
    }
}

/* ---- final rounding ----------------------------------------------------- */

static uint32_t fx_round_fp32(const mx_blockfma_params *p, const fx *s,
                              int zero_neg)
{
    const mx_format *f = fp32();
    if (mxb_fx_is_zero(s))
        return zero_neg ? 0x80000000u : 0;
    uint64_t m[FX_LIMBS];
    int neg;
    mxb_fx_abs(s, m, &neg);
    int len = mxb_limbs_bitlen(m);
    int lead = s->exp + len - 1;
    /* top 64 bits of m, and whether anything lies below them */
    uint64_t sig;
    int sticky;
    if (len <= 64) {
        sig = m[0] << (64 - len);
        sticky = 0;
    } else {
        sticky = mxb_limbs_any_below(m, len - 64);
        uint64_t t[FX_LIMBS];
        memcpy(t, m, sizeof t);
        mxb_limbs_shr(t, len - 64);
        sig = t[0];
    }
    if (p->out_prec < 64) {
        sig &= ~((UINT64_C(1) << (64 - p->out_prec)) - 1);
        sticky = 0;
    }
    if (p->ftz_out && lead < f->emin)
        return neg && !p->zero_pos ? 0x80000000u : 0;
    if (p->ovf_inf && lead > f->emax)
        return neg ? 0xff800000u : 0x7f800000u;
    mx_encode_opts o = mx_encode_defaults();
    o.round = p->final_round;
    uint32_t code = 0;
    mx_round_pack(f, neg, sig, lead, sticky, &o, &code);
    if (p->ftz_out && (code & 0x7f800000u) == 0)
        code &= 0x80000000u; /* rounded into the subnormal range */
    if (p->zero_pos && (code & 0x7fffffffu) == 0)
        code = 0;
    return code;
}

/* ---- one block ---------------------------------------------------------- */

#define MAX_TERMS 1024   /* largest block of a parameter set */
#define MAX_DOT (1 << 20) /* largest single block (block == 0): the exact
                             sum needs at most 540 + 21 bits < FX_BITS */

mx_status mx_blockfma_check(const mx_blockfma_params *p)
{
    if (!p || p->k < 1 || p->block < 0 || p->block > MAX_TERMS)
        return MX_EINVAL;
    if (p->block > 0 && p->k % p->block)
        return MX_EINVAL;
    if (p->deal < 0 || (p->deal > 0 && p->block == 0) || p->block > p->k)
        return MX_EINVAL;
    if (p->in_fmt < 0 || p->in_fmt > MX_FORMAT_COUNT)
        return MX_EINVAL;
    if (p->frac_bits < 0 || (p->frac_bits != MX_BFMA_EXACT && p->frac_bits > 300))
        return MX_EINVAL;
    if ((unsigned)p->align_round > MX_ALIGN_RNE ||
        (unsigned)p->group_round > MX_ALIGN_RNE ||
        (unsigned)p->late_round > MX_ALIGN_RNE)
        return MX_EINVAL;
    if (p->sticky && p->align_round != MX_ALIGN_TRUNC)
        return MX_EINVAL;
    if (p->odd_even && !p->late_c)
        return MX_EINVAL;
    if (p->late_c && (p->late_sum_frac_bits < 0 || p->late_sum_frac_bits > 300 ||
                      p->late_norm_frac_bits < 0 ||
                      (p->late_norm_frac_bits > 300 &&
                       p->late_norm_frac_bits != MX_BFMA_EXACT) ||
                      p->late_c_cutoff < 0))
        return MX_EINVAL;
    if (p->out_prec < 1)
        return MX_EINVAL;
    if (p->final_round != MX_RNE && p->final_round != MX_RTZ &&
        p->final_round != MX_RUP && p->final_round != MX_RDOWN)
        return MX_EINVAL;
    return MX_OK;
}

/* Late accumulation (CDNA3 Algorithm 1), s the aligned product sum of
 * largest reference exponent E. */
static void add_late_c(const mx_blockfma_params *p, fx *s, int E, int gmin,
                       const term *c)
{
    int ec = c->m ? (c->r > -126 ? c->r : -126) : -126;
    if (E >= ec) {
        if (!c->m || (p->late_c_cutoff > 0 && E - ec > p->late_c_cutoff))
            return;
        int g = grid_of(p, E, gmin);
        fx ct;
        mxb_fx_zero(&ct, g);
        fx_add_term(&ct, c, g, p->late_round, 0);
        mxb_fx_add_any(s, &ct);
        return;
    }
    mxb_fx_rescale(s, ec - p->late_sum_frac_bits, p->late_round);
    if (c->m) {
        int sh = c->x - s->exp; /* >= 0: c's last bit is at ec - 23 or above */
        if (sh >= 0)
            mxb_fx_add_mag(s, c->neg, c->m, sh);
        else { /* late_sum_frac_bits < 23: c itself loses bits */
            fx ct;
            mxb_fx_zero(&ct, s->exp);
            fx_add_term(&ct, c, s->exp, p->late_round, 0);
            mxb_fx_add(s, &ct);
        }
    }
    if (mxb_fx_is_zero(s) || p->late_norm_frac_bits == MX_BFMA_EXACT)
        return;
    uint64_t m[FX_LIMBS];
    int neg;
    mxb_fx_abs(s, m, &neg);
    int lead = s->exp + mxb_limbs_bitlen(m) - 1;
    if (lead < -126)
        lead = -126;
    if (lead - p->late_norm_frac_bits > s->exp)
        mxb_fx_rescale(s, lead - p->late_norm_frac_bits, p->late_round);
}

/* The FP32 result when a NaN or an infinity was seen: the NaN code (also
 * for inf - inf) or the infinity, in *out, and 1; 0 when all were finite. */
static int special_result(const mx_blockfma_params *p, const specials *sp,
                          uint32_t *out)
{
    if (sp->nan || (sp->pinf && sp->ninf))
        *out = p->nan_code;
    else if (sp->pinf)
        *out = 0x7f800000u;
    else if (sp->ninf)
        *out = 0xff800000u;
    else
        return 0;
    return 1;
}

/* One block with caller-provided room: t for n + 1 terms, g for n + 2. */
static uint32_t block_core(const mx_blockfma_params *p, const mx_format *fa,
                           const void *a, const mx_format *fb, const void *b,
                           size_t n, uint32_t c_bits, term *t, term *g)
{
    specials sp = {0, 0, 0};
    int all_negzero = (c_bits == 0x80000000u);
    for (size_t i = 0; i < n; i++) {
        product(p, fa, code_at(fa, a, i), fb, code_at(fb, b, i), &t[i], &sp);
        if (t[i].m || !t[i].neg)
            all_negzero = 0;
    }
    term c;
    c_term(p, c_bits, &c, &sp);
    uint32_t special;
    if (special_result(p, &sp, &special))
        return special;

    /* the finest bit of the block: the grid of an exact unit */
    int gmin = c.m ? c.x : 0, gset = c.m != 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].m && (!gset || t[i].x < gmin)) {
            gmin = t[i].x;
            gset = 1;
        }
    fx s;
    int E = 0, have;
    if (!p->late_c) {
        t[n] = c;
        have = align_group(p, t, n + 1, gmin, &s, &E);
    } else if (!p->odd_even) {
        have = align_group(p, t, n, gmin, &s, &E);
    } else {
        /* even-indexed products first, then the odd ones */
        size_t ng[2] = {(n + 1) / 2, n / 2};
        term *g0 = g, *g1 = g + ng[0];
        for (size_t i = 0; i < n; i++)
            (i & 1 ? g1 : g0)[i / 2] = t[i];
        fx s0, s1;
        int E0 = 0, E1 = 0;
        int h0 = align_group(p, g0, ng[0], gmin, &s0, &E0);
        int h1 = align_group(p, g1, ng[1], gmin, &s1, &E1);
        have = h0 || h1;
        if (h0 && h1) {
            /* the group of smaller E moves to the other's grid 2^(E-F) */
            fx *big = E0 >= E1 ? &s0 : &s1, *small = E0 >= E1 ? &s1 : &s0;
            E = E0 >= E1 ? E0 : E1;
            mxb_fx_rescale(small, grid_of(p, E, gmin), p->group_round);
            mxb_fx_add_any(big, small);
            s = *big;
        } else if (h0) {
            s = s0;
            E = E0;
        } else if (h1) {
            s = s1;
            E = E1;
        }
    }
    if (p->late_c) {
        if (!have) {
            mxb_fx_zero(&s, c.x);
            if (c.m)
                mxb_fx_add_mag(&s, c.neg, c.m, 0);
        } else {
            add_late_c(p, &s, E, gmin, &c);
        }
    }
    /* An exactly zero sum: -0 only when every term was -0 (IEEE addition);
     * a directed-down final rounding makes exact cancellation -0 too. */
    int zero_neg = !p->zero_pos && (all_negzero || p->final_round == MX_RDOWN);
    return fx_round_fp32(p, &s, zero_neg);
}

#define STACK_TERMS 64

uint32_t mx_blockfma_block_bits(const mx_blockfma_params *p,
                                const mx_format *fa, const void *a,
                                const mx_format *fb, const void *b, size_t n,
                                uint32_t c_bits)
{
    term t[STACK_TERMS + 1], g[STACK_TERMS + 2];
    if (n <= STACK_TERMS)
        return block_core(p, fa, a, fb, b, n, c_bits, t, g);
    if (n > MAX_DOT)
        return p->nan_code; /* beyond the accumulator's guaranteed width */
    term *ht = malloc((2 * n + 3) * sizeof *ht);
    if (!ht)
        return p->nan_code;
    uint32_t d = block_core(p, fa, a, fb, b, n, c_bits, ht, ht + n + 1);
    free(ht);
    return d;
}

/* x + y in FP32 with round to nearest even, exactly (the FADD that ends a
 * c_fadd instruction). */
static uint32_t fadd32(const mx_blockfma_params *p, uint32_t x, uint32_t y)
{
    specials sp = {0, 0, 0};
    term t[2];
    mx_blockfma_params plain = *p; /* an FP32 FADD flushes nothing */
    plain.ftz_in = 0;
    c_term(&plain, x, &t[0], &sp);
    c_term(&plain, y, &t[1], &sp);
    uint32_t special;
    if (special_result(p, &sp, &special))
        return special;
    static const mx_blockfma_params exact = {
        .k = 1, .frac_bits = MX_BFMA_EXACT, .out_prec = 64,
        .final_round = MX_RNE};
    fx s;
    int E, gmin = t[0].m && (!t[1].m || t[0].x < t[1].x) ? t[0].x : t[1].x;
    if (!align_group(&exact, t, 2, gmin, &s, &E))
        return (x & y & 0x80000000u) && !p->zero_pos ? 0x80000000u : 0;
    return fx_round_fp32(&exact, &s, 0);
}

uint32_t mx_blockfma_dot_bits(const mx_blockfma_params *p,
                              const mx_format *fa, const void *a,
                              const mx_format *fb, const void *b, size_t n,
                              uint32_t c_bits)
{
    size_t blk = p->block > 0 ? (size_t)p->block : (n ? n : 1);
    size_t ea = fa->bits / 8, eb = fb->bits / 8;
    uint32_t d = c_bits;
    if (p->c_fadd) {
        /* each instruction from a zero accumulator, then d + its sum */
        mx_blockfma_params q = *p;
        size_t k = (size_t)p->k;
        q.c_fadd = 0;
        for (size_t i0 = 0; i0 < n; i0 += k) {
            size_t kk = n - i0 < k ? n - i0 : k;
            uint32_t part = mx_blockfma_dot_bits(&q, fa, (const char *)a + i0 * ea,
                                                 fb, (const char *)b + i0 * eb,
                                                 kk, 0);
            d = fadd32(p, d, part);
        }
        return d;
    }
    if (p->deal > 0 && p->block > 0 && p->k > p->block) {
        /* gather each block of each instruction, then run it */
        size_t k = (size_t)p->k, nb = k / blk, q = (size_t)p->deal;
        unsigned char ga[2 * MAX_TERMS], gb[2 * MAX_TERMS];
        for (size_t i0 = 0; i0 < n; i0 += k) {
            size_t kk = n - i0 < k ? n - i0 : k;
            for (size_t bi = 0; bi < nb; bi++) {
                size_t m = 0;
                for (size_t i = 0; i < kk; i++) {
                    if ((i / q) % nb != bi)
                        continue;
                    memcpy(ga + m * ea, (const char *)a + (i0 + i) * ea, ea);
                    memcpy(gb + m * eb, (const char *)b + (i0 + i) * eb, eb);
                    m++;
                }
                if (m)
                    d = mx_blockfma_block_bits(p, fa, ga, fb, gb, m, d);
            }
        }
        return d;
    }
    for (size_t i = 0; i < n; i += blk) {
        size_t m = n - i < blk ? n - i : blk;
        d = mx_blockfma_block_bits(p, fa, (const char *)a + i * ea, fb,
                                   (const char *)b + i * eb, m, d);
    }
    return d;
}

float mx_blockfma_dot(const mx_blockfma_params *p, const mx_format *fa,
                      const void *a, const mx_format *fb, const void *b,
                      size_t n, float c)
{
    uint32_t cb, d;
    float r;
    memcpy(&cb, &c, sizeof cb);
    d = mx_blockfma_dot_bits(p, fa, a, fb, b, n, cb);
    memcpy(&r, &d, sizeof r);
    return r;
}
