/* check_blockfma.c -- the block-FMA model (mxref/blockfma.h) against an
 * independent oracle, MPFR, its error bound, and real H100 outputs.
 *
 * The oracle (slow_* below) re-derives every step from the parameter
 * definitions in exact rational arithmetic (GMP mpq): values are decoded by
 * the format layer, alignment is "divide by 2^(E-F) and round to an
 * integer", the final rounding is mx_encode_mpq.  It shares no code with
 * reference/blockfma.c (which works on a two's-complement limb accumulator).
 * Seeds are fixed (printed on failure through the case description).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "mxref/blockfma.h"
#include "golden.h"
#include "testutil.h"

/* ---- the oracle ------------------------------------------------------------ */

static uint32_t code_of(const mx_format *f, const void *v, size_t i)
{
    return f->bits == 8 ? ((const uint8_t *)v)[i] : ((const uint16_t *)v)[i];
}

/* floor(log2 |q|), q != 0 */
static long qlog2(const mpq_t q)
{
    mpz_t n, d;
    mpz_inits(n, d, NULL);
    mpz_abs(n, mpq_numref(q));
    mpz_set(d, mpq_denref(q));
    long e = (long)mpz_sizeinbase(n, 2) - (long)mpz_sizeinbase(d, 2);
    /* 2^e <= n/d ?  compare n with d*2^e */
    if (e >= 0)
        mpz_mul_2exp(d, d, (mp_bitcnt_t)e);
    else
        mpz_mul_2exp(n, n, (mp_bitcnt_t)-e);
    if (mpz_cmp(n, d) < 0)
        e--;
    mpz_clears(n, d, NULL);
    return e;
}

static void q_pow2(mpq_t q, long e)
{
    mpq_set_ui(q, 1, 1);
    if (e >= 0)
        mpq_mul_2exp(q, q, (mp_bitcnt_t)e);
    else
        mpq_div_2exp(q, q, (mp_bitcnt_t)-e);
}

/* x rounded to an integer multiple of 2^g with mode (sticky: the multiple of
 * 2^g toward zero, plus 2^(g-1) when anything was dropped). */
static void q_align(mpq_t out, const mpq_t x, long g, mx_align_round mode,
                    int sticky)
{
    mpq_t y, u;
    mpz_t z, r;
    mpq_inits(y, u, NULL);
    mpz_inits(z, r, NULL);
    q_pow2(u, g);
    mpq_div(y, x, u);
    int sgn = mpq_sgn(x);
    if (sticky) {
        mpz_tdiv_qr(z, r, mpq_numref(y), mpq_denref(y));
        mpq_set_z(out, z);
        if (mpz_sgn(r)) { /* z + sign/2 */
            mpq_set_si(y, sgn, 2);
            mpq_add(out, out, y);
        }
    } else {
        switch (mode) {
        case MX_ALIGN_TRUNC:
            mpz_tdiv_q(z, mpq_numref(y), mpq_denref(y));
            break;
        case MX_ALIGN_RD:
            mpz_fdiv_q(z, mpq_numref(y), mpq_denref(y));
            break;
        case MX_ALIGN_RNE: {
            /* floor(y + 1/2), ties to even */
            mpq_t h;
            mpq_init(h);
            mpq_set_ui(h, 1, 2);
            mpq_add(h, y, h);
            mpz_fdiv_q(z, mpq_numref(h), mpq_denref(h));
            mpq_set_z(h, z);
            mpq_sub(h, h, y); /* z - y == 1/2: a tie rounded up */
            mpq_t half;
            mpq_init(half);
            mpq_set_ui(half, 1, 2);
            if (mpq_equal(h, half) && mpz_odd_p(z))
                mpz_sub_ui(z, z, 1);
            mpq_clears(h, half, NULL);
            break;
        }
        }
        mpq_set_z(out, z);
    }
    mpq_mul(out, out, u);
    mpq_clears(y, u, NULL);
    mpz_clears(z, r, NULL);
}

typedef struct {
    int nan, pinf, ninf;
} sv;

/* q_align onto 2^(E-F), or exactly (a copy) for an exact unit */
static void o_align(const mx_blockfma_params *p, mpq_t out, const mpq_t x,
                    long E, mx_align_round mode, int sticky)
{
    if (p->frac_bits == MX_BFMA_EXACT)
        mpq_set(out, x);
    else
        q_align(out, x, E - p->frac_bits, mode, sticky);
}

/* reference exponent of a finite nonzero code under the parameters */
static long ref_exp(const mx_blockfma_params *p, const mx_format *f,
                    uint32_t code)
{
    mpq_t v;
    mpq_init(v);
    mpq_set_d(v, mx_decode_double(f, code));
    long lead = qlog2(v);
    mpq_clear(v);
    if (p->in_fmt)
        return lead > mx_format_get(p->in_fmt - 1)->emin
                   ? lead : mx_format_get(p->in_fmt - 1)->emin;
    return mx_classify(f, code) == MX_CLASS_SUBNORMAL ? f->emin : lead;
}

typedef struct {
    mpq_t v;
    long r;
    int nz;
} oterm;

/* One block, exactly as the header defines it. */
static uint32_t slow_block(const mx_blockfma_params *p, const mx_format *fa,
                           const void *a, const mx_format *fb, const void *b,
                           size_t n, uint32_t cbits)
{
    const mx_format *f32 = mx_format_get(MX_FP32);
    sv s = {0, 0, 0};
    oterm *t = calloc(n + 1, sizeof *t);
    int allneg0 = cbits == 0x80000000u;
    for (size_t i = 0; i < n; i++) {
        uint32_t ca = code_of(fa, a, i), cb = code_of(fb, b, i);
        mx_class ka = mx_classify(fa, ca), kb = mx_classify(fb, cb);
        if (p->ftz_in && ka == MX_CLASS_SUBNORMAL) ka = MX_CLASS_ZERO;
        if (p->ftz_in && kb == MX_CLASS_SUBNORMAL) kb = MX_CLASS_ZERO;
        int neg = ((ca >> (fa->bits - 1)) ^ (cb >> (fb->bits - 1))) & 1;
        mpq_init(t[i].v);
        if (ka == MX_CLASS_NAN || kb == MX_CLASS_NAN) { s.nan = 1; continue; }
        if (ka == MX_CLASS_INF || kb == MX_CLASS_INF) {
            if (ka == MX_CLASS_ZERO || kb == MX_CLASS_ZERO) s.nan = 1;
            else if (neg) s.ninf = 1;
            else s.pinf = 1;
            continue;
        }
        if (ka == MX_CLASS_ZERO || kb == MX_CLASS_ZERO) {
            if (!neg) allneg0 = 0;
            continue;
        }
        if (!neg) allneg0 = 0;
        mpq_t y;
        mpq_init(y);
        mpq_set_d(t[i].v, mx_decode_double(fa, ca));
        mpq_set_d(y, mx_decode_double(fb, cb));
        mpq_mul(t[i].v, t[i].v, y);
        mpq_clear(y);
        long lead = qlog2(t[i].v);
        if (p->ftz_prod && lead < -126) { mpq_set_ui(t[i].v, 0, 1); continue; }
        if (p->prod_ovf_inf && lead >= 128) {
            if (mpq_sgn(t[i].v) < 0) s.ninf = 1; else s.pinf = 1;
            mpq_set_ui(t[i].v, 0, 1);
            continue;
        }
        t[i].nz = 1;
        allneg0 = 0;
        t[i].r = p->prod_norm ? lead : ref_exp(p, fa, ca) + ref_exp(p, fb, cb);
    }
    /* c */
    mpq_init(t[n].v);
    mx_class kc = mx_classify(f32, cbits);
    if (p->ftz_in && kc == MX_CLASS_SUBNORMAL) kc = MX_CLASS_ZERO;
    if (kc == MX_CLASS_NAN) s.nan = 1;
    else if (kc == MX_CLASS_INF) { if (cbits >> 31) s.ninf = 1; else s.pinf = 1; }
    else if (kc != MX_CLASS_ZERO) {
        mpq_set_d(t[n].v, mx_decode_double(f32, cbits));
        t[n].nz = 1;
        t[n].r = kc == MX_CLASS_SUBNORMAL ? -126 : qlog2(t[n].v);
    }
    uint32_t res;
    if (s.nan || (s.pinf && s.ninf)) { res = p->nan_code; goto done; }
    if (s.pinf) { res = 0x7f800000u; goto done; }
    if (s.ninf) { res = 0xff800000u; goto done; }

    mpq_t S, x;
    mpq_inits(S, x, NULL);
    long E = 0;
    int have = 0;
    /* groups: early c joins the one group; odd/even makes two */
    int ngroups = p->odd_even ? 2 : 1;
    mpq_t gs[2];
    long ge[2];
    int gh[2] = {0, 0};
    for (int g = 0; g < ngroups; g++) {
        mpq_init(gs[g]);
        size_t last = p->late_c ? n : n + 1;
        for (size_t i = 0; i < last; i++) {
            if (!t[i].nz || (ngroups == 2 && i < n && (int)(i % 2) != g))
                continue;
            if (!gh[g] || t[i].r > ge[g]) ge[g] = t[i].r;
            gh[g] = 1;
        }
        if (!gh[g])
            continue;
        for (size_t i = 0; i < last; i++) {
            if (!t[i].nz || (ngroups == 2 && i < n && (int)(i % 2) != g))
                continue;
            o_align(p, x, t[i].v, ge[g], p->align_round, p->sticky);
            mpq_add(gs[g], gs[g], x);
        }
    }
    if (ngroups == 1) {
        have = gh[0];
        E = ge[0];
        mpq_set(S, gs[0]);
    } else if (gh[0] && gh[1]) {
        int big = ge[0] >= ge[1] ? 0 : 1;
        E = ge[big];
        o_align(p, x, gs[1 - big], E, p->group_round, 0);
        mpq_add(S, gs[big], x);
        have = 1;
    } else if (gh[0] || gh[1]) {
        int g = gh[0] ? 0 : 1;
        E = ge[g];
        mpq_set(S, gs[g]);
        have = 1;
    }
    for (int g = 0; g < ngroups; g++)
        mpq_clear(gs[g]);
    if (p->late_c) {
        if (!have) {
            mpq_set(S, t[n].v);
        } else {
            long ec = t[n].nz ? (t[n].r > -126 ? t[n].r : -126) : -126;
            if (E >= ec) {
                if (t[n].nz && !(p->late_c_cutoff > 0 && E - ec > p->late_c_cutoff)) {
                    o_align(p, x, t[n].v, E, p->late_round, 0);
                    mpq_add(S, S, x);
                }
            } else {
                q_align(S, S, ec - p->late_sum_frac_bits, p->late_round, 0);
                if (t[n].nz) { /* exact unless the grid is above c's last bit */
                    q_align(x, t[n].v, ec - p->late_sum_frac_bits, p->late_round, 0);
                    mpq_add(S, S, x);
                }
                if (mpq_sgn(S) && p->late_norm_frac_bits != MX_BFMA_EXACT) {
                    long lead = qlog2(S);
                    if (lead < -126) lead = -126;
                    q_align(x, S, lead - p->late_norm_frac_bits, p->late_round, 0);
                    mpq_set(S, x);
                }
            }
        }
    }
    /* final */
    if (mpq_sgn(S) == 0) {
        res = (!p->zero_pos && (allneg0 || p->final_round == MX_RDOWN)) ? 0x80000000u : 0;
    } else {
        long lead = qlog2(S);
        if (p->out_prec < 64)
            q_align(S, S, lead - p->out_prec + 1, MX_ALIGN_TRUNC, 0);
        int neg = mpq_sgn(S) < 0;
        if (p->ftz_out && lead < -126)
            res = neg && !p->zero_pos ? 0x80000000u : 0;
        else if (p->ovf_inf && lead >= 128)
            res = neg ? 0xff800000u : 0x7f800000u;
        else {
            mx_encode_opts o = mx_encode_defaults();
            o.round = p->final_round;
            mx_encode_mpq(f32, S, 0, &o, &res);
            if (p->ftz_out && (res & 0x7f800000u) == 0) res &= 0x80000000u;
            if (p->zero_pos && (res & 0x7fffffffu) == 0) res = 0;
        }
    }
    mpq_clears(S, x, NULL);
done:
    for (size_t i = 0; i <= n; i++)
        mpq_clear(t[i].v);
    free(t);
    return res;
}

static uint32_t slow_fadd(const mx_blockfma_params *p, uint32_t x, uint32_t y)
{
    static const mx_blockfma_params ex = {.k = 1, .block = 0,
        .frac_bits = MX_BFMA_EXACT, .out_prec = 64, .final_round = MX_RNE};
    mx_blockfma_params e = ex;
    e.nan_code = p->nan_code;
    e.zero_pos = p->zero_pos;
    /* x + y: a block with one product y*1 would change the reference; do it
     * directly: both exact, one RNE. */
    const mx_format *f32 = mx_format_get(MX_FP32);
    mx_class kx = mx_classify(f32, x), ky = mx_classify(f32, y);
    if (kx == MX_CLASS_NAN || ky == MX_CLASS_NAN) return p->nan_code;
    if (kx == MX_CLASS_INF && ky == MX_CLASS_INF && (x ^ y) >> 31) return p->nan_code;
    if (kx == MX_CLASS_INF) return x;
    if (ky == MX_CLASS_INF) return y;
    mpq_t a, b;
    mpq_inits(a, b, NULL);
    mpq_set_d(a, mx_decode_double(f32, x));
    mpq_set_d(b, mx_decode_double(f32, y));
    mpq_add(a, a, b);
    uint32_t r;
    if (mpq_sgn(a) == 0)
        r = ((x & y) >> 31) && !p->zero_pos ? 0x80000000u : 0;
    else {
        mx_encode_opts o = mx_encode_defaults();
        mx_encode_mpq(f32, a, 0, &o, &r);
    }
    mpq_clears(a, b, NULL);
    (void)e;
    return r;
}

/* The chain: instructions of k products, blocks dealt by p->deal. */
static uint32_t slow_dot(const mx_blockfma_params *p, const mx_format *fa,
                         const void *a, const mx_format *fb, const void *b,
                         size_t n, uint32_t c)
{
    size_t ea = fa->bits / 8, eb = fb->bits / 8;
    if (p->block == 0)
        return slow_block(p, fa, a, fb, b, n, c);
    size_t k = (size_t)p->k, blk = (size_t)p->block, nb = k / blk;
    uint32_t d = c;
    unsigned char ga[4096], gb[4096];
    for (size_t i0 = 0; i0 < n; i0 += k) {
        uint32_t acc = p->c_fadd ? 0 : d;
        for (size_t bi = 0; bi < nb; bi++) {
            size_t m = 0;
            for (size_t i = 0; i < k && i0 + i < n; i++) {
                size_t which = p->deal ? (i / (size_t)p->deal) % nb : i / blk;
                if (which != bi)
                    continue;
                memcpy(ga + m * ea, (const char *)a + (i0 + i) * ea, ea);
                memcpy(gb + m * eb, (const char *)b + (i0 + i) * eb, eb);
                m++;
            }
            if (m)
                acc = slow_block(p, fa, ga, fb, gb, m, acc);
        }
        d = p->c_fadd ? slow_fadd(p, d, acc) : acc;
    }
    return d;
}

/* ---- random operands ---------------------------------------------------- */

static const mx_format_id IN_FMTS[] = {MX_E4M3FN, MX_E4M3FNUZ, MX_E5M2,
                                       MX_E5M2FNUZ, MX_BF16, MX_FP16};

/* A code with exponent field near `e` (structured) or uniform; specials
 * with probability 1/special_odds (0: never). */
static uint32_t rand_code(gsl_rng *r, const mx_format *f, int e, int spread,
                          int special_odds)
{
    uint32_t mmask = (1u << f->mbits) - 1, emask = (1u << f->ebits) - 1;
    for (;;) {
        uint32_t code;
        if (special_odds && gsl_rng_uniform_int(r, special_odds) == 0)
            code = (uint32_t)gsl_rng_uniform_int(r, 1ul << f->bits);
        else {
            long ef = e - (long)gsl_rng_uniform_int(r, (unsigned long)spread + 1);
            if (gsl_rng_uniform_int(r, 8) == 0) ef = (long)gsl_rng_uniform_int(r, 3);
            if (ef < 0) ef = 0;
            if (ef > (long)emask) ef = (long)emask;
            code = ((uint32_t)gsl_rng_uniform_int(r, 2) << (f->bits - 1)) |
                   ((uint32_t)ef << f->mbits) |
                   ((uint32_t)gsl_rng_get(r) & mmask);
            if (gsl_rng_uniform_int(r, 10) == 0) code &= ~mmask;
            if (gsl_rng_uniform_int(r, 16) == 0) code = 0;
        }
        mx_class k = mx_classify(f, code);
        if (special_odds || (k != MX_CLASS_NAN && k != MX_CLASS_INF))
            return code;
    }
}

static void put_code(const mx_format *f, void *v, size_t i, uint32_t code)
{
    if (f->bits == 8) ((uint8_t *)v)[i] = (uint8_t)code;
    else ((uint16_t *)v)[i] = (uint16_t)code;
}

/* A random case: n codes each and c. */
static uint32_t rand_case(gsl_rng *r, const mx_format *fa, const mx_format *fb,
                          size_t n, void *a, void *b, int special_odds)
{
    int spread = (int)gsl_rng_uniform_int(r, 4) == 0 ? 40 : (int)gsl_rng_uniform_int(r, 12);
    int ea = fa->ebits == 8 ? 127 + (int)gsl_rng_uniform_int(r, 40) - 20
                            : (int)gsl_rng_uniform_int(r, 1u << fa->ebits);
    int eb = fb->ebits == 8 ? 127 + (int)gsl_rng_uniform_int(r, 40) - 20
                            : (int)gsl_rng_uniform_int(r, 1u << fb->ebits);
    for (size_t i = 0; i < n; i++) {
        put_code(fa, a, i, rand_code(r, fa, ea, spread, special_odds));
        put_code(fb, b, i, rand_code(r, fb, eb, spread, special_odds));
    }
    if (gsl_rng_uniform_int(r, 8) == 0 && n >= 2) { /* cancellation */
        put_code(fa, a, 1, code_of(fa, a, 0) ^ (1u << (fa->bits - 1)));
        put_code(fb, b, 1, code_of(fb, b, 0));
    }
    uint32_t c;
    switch (gsl_rng_uniform_int(r, 5)) {
    case 0: c = gsl_rng_uniform_int(r, 2) ? 0x80000000u : 0; break;
    case 1: c = (uint32_t)gsl_rng_get(r) & 0x807fffffu; break; /* subnormal */
    default: {
        int e = (ea - fa->bias) + (eb - fb->bias) + (int)gsl_rng_uniform_int(r, 50) - 30 + 127;
        if (e < 1) e = 1;
        if (e > 254) e = 254;
        c = ((uint32_t)gsl_rng_get(r) & 0x807fffffu) | ((uint32_t)e << 23);
    }
    }
    if (special_odds && gsl_rng_uniform_int(r, (unsigned long)special_odds) == 0)
        c = (uint32_t)gsl_rng_get(r);
    return c;
}

/* A random consistent parameter set. */
static mx_blockfma_params rand_params(gsl_rng *r)
{
    mx_blockfma_params p;
    memset(&p, 0, sizeof p);
    p.name = "random";
    static const int blocks[] = {1, 2, 4, 8, 16, 32};
    p.block = blocks[gsl_rng_uniform_int(r, 6)];
    p.k = p.block * (gsl_rng_uniform_int(r, 3) == 0 ? 2 : 1);
    if (p.k > p.block && gsl_rng_uniform_int(r, 2))
        p.deal = 1 << gsl_rng_uniform_int(r, 3);
    p.c_fadd = gsl_rng_uniform_int(r, 6) == 0;
    p.in_fmt = gsl_rng_uniform_int(r, 5) == 0 ? MX_FP16 + 1 : 0;
    p.frac_bits = gsl_rng_uniform_int(r, 8) == 0 ? MX_BFMA_EXACT : (int)gsl_rng_uniform_int(r, 31);
    p.align_round = (mx_align_round)gsl_rng_uniform_int(r, 3);
    p.sticky = p.align_round == MX_ALIGN_TRUNC && gsl_rng_uniform_int(r, 4) == 0;
    p.prod_norm = gsl_rng_uniform_int(r, 3) == 0;
    p.late_c = gsl_rng_uniform_int(r, 3) == 0;
    p.odd_even = p.late_c && gsl_rng_uniform_int(r, 2);
    p.group_round = (mx_align_round)gsl_rng_uniform_int(r, 3);
    p.late_round = (mx_align_round)gsl_rng_uniform_int(r, 3);
    p.late_sum_frac_bits = 20 + (int)gsl_rng_uniform_int(r, 16);
    p.late_norm_frac_bits = gsl_rng_uniform_int(r, 3) == 0
                                ? MX_BFMA_EXACT
                                : 20 + (int)gsl_rng_uniform_int(r, 16);
    p.late_c_cutoff = gsl_rng_uniform_int(r, 2) ? 0 : 10 + (int)gsl_rng_uniform_int(r, 20);
    p.ftz_in = gsl_rng_uniform_int(r, 6) == 0;
    p.ftz_prod = gsl_rng_uniform_int(r, 6) == 0;
    p.ftz_out = gsl_rng_uniform_int(r, 6) == 0;
    p.prod_ovf_inf = gsl_rng_uniform_int(r, 4) == 0;
    p.out_prec = gsl_rng_uniform_int(r, 2) ? 64 : 8 + (int)gsl_rng_uniform_int(r, 17);
    static const mx_round fr[] = {MX_RNE, MX_RTZ, MX_RUP, MX_RDOWN};
    p.final_round = fr[gsl_rng_uniform_int(r, 4)];
    p.ovf_inf = (int)gsl_rng_uniform_int(r, 2);
    p.zero_pos = (int)gsl_rng_uniform_int(r, 2);
    p.nan_code = gsl_rng_uniform_int(r, 2) ? 0x7fffffffu : 0x7fc00000u;
    return p;
}

static const char *hexcase(const mx_format *fa, const void *a,
                           const mx_format *fb, const void *b, size_t n,
                           uint32_t c, char *buf, size_t len)
{
    size_t u = (size_t)snprintf(buf, len, "c=%08x a=", c);
    for (size_t i = 0; i < n && u + 8 < len; i++)
        u += (size_t)snprintf(buf + u, len - u, "%0*x", fa->bits / 4, code_of(fa, a, i));
    u += (size_t)snprintf(buf + u, len - u, " b=");
    for (size_t i = 0; i < n && u + 8 < len; i++)
        u += (size_t)snprintf(buf + u, len - u, "%0*x", fb->bits / 4, code_of(fb, b, i));
    return buf;
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_presets)
{
    static const char *names[] = {"cdna3-fp8", "cdna3-bf16", "hopper-fp8",
                                  "hopper-bf16", "hopper-fp8-mma", "exact-rne"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const mx_blockfma_params *p = mx_blockfma_preset(names[i]);
        ck_assert_msg(p != NULL, "preset %s missing", names[i]);
        ck_assert_str_eq(p->name, names[i]);
        ck_assert_int_eq(mx_blockfma_check(p), MX_OK);
        ck_assert(p->source && *p->source);
    }
    size_t cnt = 0;
    while (mx_blockfma_preset_at(cnt))
        cnt++;
    ck_assert_uint_eq(cnt, sizeof names / sizeof names[0]);
    ck_assert_ptr_null(mx_blockfma_preset("hopper"));
    ck_assert_ptr_null(mx_blockfma_preset(NULL));
    ck_assert(mx_blockfma_preset("hopper-fp8")->measured);
    ck_assert(!mx_blockfma_preset("cdna3-fp8")->measured);
}
END_TEST

/* Every validator rule refuses what it should. */
START_TEST(test_check_traps)
{
    const mx_blockfma_params *h = mx_blockfma_preset("hopper-fp8");
    mx_blockfma_params p;
#define BAD(stmt)                                                              \
    do {                                                                       \
        p = *h;                                                                \
        stmt;                                                                  \
        ck_assert_msg(mx_blockfma_check(&p) == MX_EINVAL, "accepted: %s", #stmt); \
    } while (0)
    BAD(p.k = 0);
    BAD(p.block = 24);           /* k % block */
    BAD(p.block = 64);           /* block > k */
    BAD(p.block = -1);
    BAD(p.deal = -1);
    BAD(p.frac_bits = -1);
    BAD(p.frac_bits = 301);
    BAD(p.align_round = (mx_align_round)7);
    BAD((p.align_round = MX_ALIGN_RD, p.sticky = 1));
    BAD(p.odd_even = 1);         /* without late_c */
    BAD((p.late_c = 1, p.late_sum_frac_bits = -2));
    BAD(p.out_prec = 0);
    BAD(p.final_round = MX_RNA);
    BAD(p.final_round = MX_RSTOCH);
    BAD(p.in_fmt = MX_FORMAT_COUNT + 1);
#undef BAD
    ck_assert_int_eq(mx_blockfma_check(NULL), MX_EINVAL);
}
END_TEST

/* The model against the oracle: presets and random parameter sets, random
 * operands of every signed 8/16-bit format, specials included. */
START_TEST(test_oracle_random)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20261125);
    long cases = 0;
    for (int it = 0; it < 260; it++) {
        mx_blockfma_params p;
        if (it < 6 * 8)
            p = *mx_blockfma_preset_at((size_t)it % 6);
        else
            p = rand_params(r);
        ck_assert_int_eq(mx_blockfma_check(&p), MX_OK);
        const mx_format *fa = mx_format_get(IN_FMTS[gsl_rng_uniform_int(r, 6)]);
        const mx_format *fb = fa;
        if (fa->bits == 8 && gsl_rng_uniform_int(r, 3) == 0)
            fb = mx_format_get(IN_FMTS[gsl_rng_uniform_int(r, 4)]);
        size_t n = p.block ? (size_t)p.k * (1 + gsl_rng_uniform_int(r, 2)) : 1 + gsl_rng_uniform_int(r, 40);
        for (int q = 0; q < 60; q++) {
            uint16_t a[128], b[128];
            uint32_t c = rand_case(r, fa, fb, n, a, b, q % 7 == 6 ? 24 : 0);
            uint32_t m = mx_blockfma_dot_bits(&p, fa, a, fb, b, n, c);
            uint32_t o = slow_dot(&p, fa, a, fb, b, n, c);
            char buf[1200];
            EXPECT(m == o, "param set %d (%s, F=%d blk=%d k=%d deal=%d late=%d oe=%d "
                   "fadd=%d out=%d fin=%d) %s x %s n=%zu: model %08x oracle %08x; %s",
                   it, p.name, p.frac_bits, p.block, p.k, p.deal, p.late_c, p.odd_even,
                   p.c_fadd, p.out_prec, p.final_round, fa->name, fb->name, n, m, o,
                   hexcase(fa, a, fb, b, n, c, buf, sizeof buf));
            cases++;
        }
    }
    ck_assert_int_gt(cases, 10000);
    gsl_rng_free(r);
}
END_TEST

/* exact-rne is the correctly rounded sum: check against MPFR. */
START_TEST(test_exact_rne_mpfr)
{
    const mx_blockfma_params *p = mx_blockfma_preset("exact-rne");
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242);
    mpfr_t s, x, y;
    mpfr_inits2(1200, s, x, y, (mpfr_ptr)0);
    const mx_format *f32 = mx_format_get(MX_FP32);
    for (int q = 0; q < 6000; q++) {
        const mx_format *fa = mx_format_get(IN_FMTS[q % 6]), *fb = fa;
        /* some long dots: one block of up to 300 products */
        size_t n = 1 + gsl_rng_uniform_int(r, q % 10 == 0 ? 300 : 64);
        uint16_t a[300], b[300];
        uint32_t c = rand_case(r, fa, fb, n, a, b, 0);
        mx_decode_mpfr(f32, c, s);
        for (size_t i = 0; i < n; i++) {
            mx_decode_mpfr(fa, code_of(fa, a, i), x);
            mx_decode_mpfr(fb, code_of(fb, b, i), y);
            mpfr_mul(x, x, y, MPFR_RNDN); /* exact at 1200 bits */
            mpfr_add(s, s, x, MPFR_RNDN); /* exact: span < 600 bits */
        }
        uint32_t want;
        mx_encode_opts o = mx_encode_defaults();
        mx_encode_mpfr(f32, s, &o, &want);
        uint32_t got = mx_blockfma_dot_bits(p, fa, a, fb, b, n, c);
        if (mpfr_nan_p(s))
            want = p->nan_code; /* which NaN is the unit's choice */
        char buf[1200];
        EXPECT(got == want, "%s n=%zu: model %08x, MPFR %08x; %s", fa->name, n,
               got, want, hexcase(fa, a, fb, b, n, c, buf, sizeof buf));
    }
    mpfr_clears(s, x, y, (mpfr_ptr)0);
    gsl_rng_free(r);
}
END_TEST

/* Hand-checked examples of the Hopper FP8 unit (values from the H100). */
START_TEST(test_hopper_examples)
{
    const mx_blockfma_params *p = mx_blockfma_preset("hopper-fp8");
    const mx_format *f = mx_format_get(MX_E4M3FN);
    uint8_t a[32] = {0}, b[32] = {0};
    /* c alone is cut to 14 significant bits: FLT_MAX -> 0x7f7ffc00 */
    ck_assert_uint_eq(mx_blockfma_dot_bits(p, f, a, f, b, 32, 0x7f7fffffu), 0x7f7ffc00u);
    /* 2^16 - 2^16 + 2^3 survives (13 bits below 2^16), 2^2 does not */
    a[0] = 0x78; b[0] = 0x78;            /* 256 * 256 */
    a[1] = 0xf8; b[1] = 0x78;            /* -256 * 256 */
    a[2] = 0x50; b[2] = 0x38;            /* 8 * 1 */
    ck_assert_uint_eq(mx_blockfma_dot_bits(p, f, a, f, b, 32, 0), 0x41000000u);
    a[2] = 0x48;                         /* 4 * 1 */
    ck_assert_uint_eq(mx_blockfma_dot_bits(p, f, a, f, b, 32, 0), 0);
    /* all products -0 and c = -0 give +0 */
    memset(a, 0x80, sizeof a);
    memset(b, 0x38, sizeof b);
    ck_assert_uint_eq(mx_blockfma_dot_bits(p, f, a, f, b, 32, 0x80000000u), 0);
    /* NaN */
    a[5] = 0x7f;
    ck_assert_uint_eq(mx_blockfma_dot_bits(p, f, a, f, b, 32, 0), 0x7fffffffu);
    /* BF16: -(2^-133)^2 rounds to zero, and the H100 returns +0 */
    const mx_blockfma_params *hb = mx_blockfma_preset("hopper-bf16");
    const mx_format *bf = mx_format_get(MX_BF16);
    uint16_t x[16] = {0x8001}, y[16] = {0x0001};
    ck_assert_uint_eq(mx_blockfma_dot_bits(hb, bf, x, bf, y, 16, 0), 0);
    /* ...and 2^128 overflows to inf even though it rounds toward zero */
    x[0] = 0x5f80; /* 2^64 */
    y[0] = 0x5f80;
    ck_assert_uint_eq(mx_blockfma_dot_bits(hb, bf, x, bf, y, 16, 0), 0x7f800000u);
    /* the float entry point agrees with the bits one */
    memset(a, 0x38, sizeof a);
    ck_assert(mx_blockfma_dot(p, f, a, f, b, 32, 1.0f) == 33.0f);
}
END_TEST

/* ---- bound ---------------------------------------------------------------- */

static double exact_err(const mx_format *fa, const void *a, const mx_format *fb,
                        const void *b, size_t n, uint32_t c, uint32_t d)
{
    mpfr_t s, x, y;
    mpfr_inits2(1200, s, x, y, (mpfr_ptr)0);
    const mx_format *f32 = mx_format_get(MX_FP32);
    mx_decode_mpfr(f32, c, s);
    for (size_t i = 0; i < n; i++) {
        mx_decode_mpfr(fa, code_of(fa, a, i), x);
        mx_decode_mpfr(fb, code_of(fb, b, i), y);
        mpfr_mul(x, x, y, MPFR_RNDN);
        mpfr_add(s, s, x, MPFR_RNDN);
    }
    mx_decode_mpfr(f32, d, x);
    mpfr_sub(x, x, s, MPFR_RNDN);
    double e = fabs(mpfr_get_d(x, MPFR_RNDA));
    mpfr_clears(s, x, y, (mpfr_ptr)0);
    return e;
}

static double ratio(const mx_blockfma_params *p, const mx_format *fa,
                    const void *a, const mx_format *fb, const void *b, size_t n,
                    uint32_t c, uint32_t *dout)
{
    uint32_t d = mx_blockfma_dot_bits(p, fa, a, fb, b, n, c);
    if (dout) *dout = d;
    if ((d & 0x7f800000u) == 0x7f800000u)
        return -1; /* overflow or special: out of the bound's scope */
    double sa = mx_blockfma_sum_abs(p, fa, a, fb, b, n);
    float cf;
    memcpy(&cf, &c, 4);
    double bd = mx_blockfma_bound(p, n, sa, fabs((double)cf));
    double e = exact_err(fa, a, fb, b, n, c, d);
    return e == 0 ? 0 : e / bd;
}

START_TEST(test_bound_random)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 99);
    double worst = 0;
    for (size_t pi = 0; mx_blockfma_preset_at(pi); pi++) {
        const mx_blockfma_params *p = mx_blockfma_preset_at(pi);
        for (int q = 0; q < 1500; q++) {
            const mx_format *fa = mx_format_get(IN_FMTS[q % 6]), *fb = fa;
            size_t n = (size_t)p->k * (1 + gsl_rng_uniform_int(r, 4));
            if (n > 128) n = 128;
            uint16_t a[128], b[128];
            uint32_t c = rand_case(r, fa, fb, n, a, b, 0);
            double x = ratio(p, fa, a, fb, b, n, c, NULL);
            char buf[1200];
            EXPECT(x <= 1.0, "%s %s n=%zu: error/bound = %g; %s", p->name, fa->name,
                   n, x, hexcase(fa, a, fb, b, n, c, buf, sizeof buf));
            if (x > worst) worst = x;
        }
    }
    gsl_rng_free(r);
    ck_assert(worst > 0);
}
END_TEST

/* Adversarial blocks: one large product B = big^2 and k-1 products just
 * below the alignment grid of B, so that each loses almost a whole grid
 * unit.  The bound must hold and be within a factor 4 of the error. */
START_TEST(test_bound_tight)
{
    struct {
        const char *preset;
        mx_format_id f;
        double big, sa, sb; /* B = big*big; small = sa*sb, just below the grid */
    } T[] = {
        /* grid 2^(16-13) = 8;  1.875 * 3.75 = 7.03 */
        {"hopper-fp8", MX_E4M3FN, 256.0, 1.875, 3.75},
        /* grid 2^(40-25);  255 * 127.5 = 32512 */
        {"hopper-bf16", MX_BF16, 1048576.0, 255.0, 127.5},
        /* grid 2^(40-24);  255 * 255 = 65025 */
        {"cdna3-bf16", MX_BF16, 1048576.0, 255.0, 255.0},
        /* even group: grid 2^(14-24);  1.875*2^-7 * 1.875*2^-5 = 0.88*2^-10 */
        {"cdna3-fp8", MX_E4M3FNUZ, 128.0, 0.0146484375, 0.05859375},
    };
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        const mx_blockfma_params *p = mx_blockfma_preset(T[t].preset);
        const mx_format *f = mx_format_get(T[t].f);
        size_t n = (size_t)p->k;
        uint16_t a[64], b[64];
        uint32_t big = mx_encode_rne(f, T[t].big);
        uint32_t sa = mx_encode_rne(f, T[t].sa), sb = mx_encode_rne(f, T[t].sb);
        ck_assert(mx_decode_double(f, big) == T[t].big);
        ck_assert(mx_decode_double(f, sa) == T[t].sa);
        ck_assert(mx_decode_double(f, sb) == T[t].sb);
        for (size_t i = 0; i < n; i++) {
            put_code(f, a, i, i ? sa : big);
            put_code(f, b, i, i ? sb : big);
        }
        double x = ratio(p, f, a, f, b, n, 0, NULL);
        EXPECT(x <= 1.0, "%s: error/bound %g", T[t].preset, x);
        EXPECT(x >= 0.25, "%s: bound not tight: error/bound %g", T[t].preset, x);
    }
}
END_TEST

/* The per-block bound (mx_blockfma_bound_dot): it holds against the exact
 * error (MPFR) on random cases of every preset, it is never above the
 * sum-of-magnitudes bound, it is tighter by the factor the largest term
 * gives on random 32-product Hopper FP8 blocks, and it is tight on the
 * adversarial blocks above (one large product, the rest just below its
 * grid: the error is almost (k-1) grid units, the bound (k+1)). */
static double ratio_dot(const mx_blockfma_params *p, const mx_format *fa,
                        const void *a, const mx_format *fb, const void *b, size_t n,
                        uint32_t c, double *old_over_new)
{
    uint32_t d = mx_blockfma_dot_bits(p, fa, a, fb, b, n, c);
    if ((d & 0x7f800000u) == 0x7f800000u)
        return -1;
    float cf;
    memcpy(&cf, &c, 4);
    double bn = mx_blockfma_bound_dot(p, fa, a, fb, b, n, fabs((double)cf));
    double bo = mx_blockfma_bound(p, n, mx_blockfma_sum_abs(p, fa, a, fb, b, n),
                                  fabs((double)cf));
    if (old_over_new)
        *old_over_new = bo / bn;
    double e = exact_err(fa, a, fb, b, n, c, d);
    return e == 0 ? 0 : e / bn;
}

START_TEST(test_bound_dot_random)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2026);
    double worst = 0;
    for (size_t pi = 0; mx_blockfma_preset_at(pi); pi++) {
        const mx_blockfma_params *p = mx_blockfma_preset_at(pi);
        for (int q = 0; q < 1500; q++) {
            const mx_format *fa = mx_format_get(IN_FMTS[q % 6]), *fb = fa;
            size_t n = (size_t)p->k * (1 + gsl_rng_uniform_int(r, 4));
            if (n > 128) n = 128;
            uint16_t a[128], b[128];
            uint32_t c = rand_case(r, fa, fb, n, a, b, 0);
            double gain = 1;
            double x = ratio_dot(p, fa, a, fb, b, n, c, &gain);
            char buf[1200];
            EXPECT(x <= 1.0, "%s %s n=%zu: error/bound_dot = %g; %s", p->name, fa->name,
                   n, x, hexcase(fa, a, fb, b, n, c, buf, sizeof buf));
            EXPECT(x < 0 || gain >= 1.0 - 0x1p-30, "%s %s n=%zu: bound_dot above the "
                   "old bound (old/new %g)", p->name, fa->name, n, gain);
            if (x > worst) worst = x;
        }
    }
    /* the gain: random 32-product E4M3 blocks, Gaussian-like magnitudes */
    const mx_blockfma_params *h = mx_blockfma_preset("hopper-fp8");
    const mx_format *f = mx_format_get(MX_E4M3FN);
    double gsum = 0;
    int ng = 0;
    for (int q = 0; q < 200; q++) {
        uint8_t a[32], b[32];
        for (int i = 0; i < 32; i++) {
            a[i] = (uint8_t)(0x30 + gsl_rng_uniform_int(r, 0x18)) |
                   (uint8_t)(gsl_rng_uniform_int(r, 2) << 7);
            b[i] = (uint8_t)(0x30 + gsl_rng_uniform_int(r, 0x18)) |
                   (uint8_t)(gsl_rng_uniform_int(r, 2) << 7);
        }
        double gain = 1;
        double x = ratio_dot(h, f, a, f, b, 32, 0, &gain);
        EXPECT(x <= 1.0, "hopper-fp8 gain case %d: error/bound_dot %g", q, x);
        gsum += gain;
        ng++;
    }
    printf("bound_dot: worst error/bound %.3f; hopper-fp8 random 32-blocks: old/new "
           "bound %.2f on average\n", worst, gsum / ng);
    EXPECT(gsum / ng >= 4.0, "per-block bound only %.2fx tighter on random blocks",
           gsum / ng);
    gsl_rng_free(r);
    ck_assert(worst > 0.1);
}
END_TEST

START_TEST(test_bound_dot_tight)
{
    struct {
        const char *preset;
        mx_format_id f;
        double big, sa, sb;
    } T[] = {
        {"hopper-fp8", MX_E4M3FN, 256.0, 1.875, 3.75},
        {"hopper-bf16", MX_BF16, 1048576.0, 255.0, 127.5},
        {"cdna3-bf16", MX_BF16, 1048576.0, 255.0, 255.0},
        {"hopper-fp8-mma", MX_E4M3FN, 256.0, 0.0625, 0.029296875},
    };
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        const mx_blockfma_params *p = mx_blockfma_preset(T[t].preset);
        const mx_format *f = mx_format_get(T[t].f);
        size_t n = (size_t)p->k;
        uint16_t a[64], b[64];
        uint32_t big = mx_encode_rne(f, T[t].big);
        uint32_t sa = mx_encode_rne(f, T[t].sa), sb = mx_encode_rne(f, T[t].sb);
        ck_assert(mx_decode_double(f, sa) == T[t].sa);
        ck_assert(mx_decode_double(f, sb) == T[t].sb);
        for (size_t i = 0; i < n; i++) {
            put_code(f, a, i, i ? sa : big);
            put_code(f, b, i, i ? sb : big);
        }
        double gain = 0;
        double x = ratio_dot(p, f, a, f, b, n, 0, &gain);
        EXPECT(x <= 1.0, "%s: error/bound_dot %g", T[t].preset, x);
        EXPECT(x >= 0.5, "%s: bound_dot not tight: error/bound %g", T[t].preset, x);
    }
}
END_TEST

START_TEST(test_bound_traps)
{
    const mx_blockfma_params *h = mx_blockfma_preset("hopper-fp8");
    ck_assert(isinf(mx_blockfma_bound(NULL, 32, 1, 1)));
    ck_assert(isinf(mx_blockfma_bound(h, 32, NAN, 1)));
    ck_assert(isinf(mx_blockfma_bound(h, 32, -1, 1)));
    ck_assert(isinf(mx_blockfma_bound(h, 32, 1, INFINITY)));
    mx_blockfma_params p = *h;
    p.ftz_in = 1;
    ck_assert(isinf(mx_blockfma_bound(&p, 32, 1, 1)));
    ck_assert(mx_blockfma_bound(h, 32, 0, 0) > 0); /* the subnormal floor */
    ck_assert(mx_blockfma_bound(h, 32, 1, 0) < 1e-2);
    const mx_format *f = mx_format_get(MX_E4M3FN);
    uint8_t a[2] = {0x7f, 0x38}, b[2] = {0x38, 0x38};
    ck_assert(isinf(mx_blockfma_sum_abs(h, f, a, f, b, 2)));
}
END_TEST

/* ---- real hardware: golden/h100 ------------------------------------------ */

static const char *const VEC_FILES[] = {
    "h100/wgmma_e4m3_e4m3.vec", "h100/wgmma_e5m2_e5m2.vec",
    "h100/wgmma_e4m3_e5m2.vec", "h100/wgmma_bf16_bf16.vec",
    "h100/wgmma_fp16_fp16.vec", "h100/mma_e4m3_e4m3.vec",
    "h100/mma_e5m2_e5m2.vec",   "h100/mma_e4m3_e5m2.vec",
    "h100/mma_bf16_bf16.vec",   "h100/mma_fp16_fp16.vec"};
#define NVEC (sizeof VEC_FILES / sizeof VEC_FILES[0])

static long replay(const gvec *g, const mx_blockfma_params *p, long *first)
{
    long bad = 0;
    uint8_t a8[GVEC_MAXN], b8[GVEC_MAXN];
    for (size_t i = 0; i < g->ncase; i++) {
        const void *a, *b;
        gvec_operands(g, i, a8, b8, &a, &b);
        if (mx_blockfma_dot_bits(p, g->fa, a, g->fb, b, (size_t)g->n[i], g->c[i]) != g->d[i]) {
            if (!bad && first)
                *first = (long)i;
            bad++;
        }
    }
    return bad;
}

static void load_or_fail(const char *name, gvec *g)
{
    char err[600];
    int rc = gvec_load(golden_path(name), g, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
}

/* Every measured output, bit for bit, through the preset its file names. */
START_TEST(test_golden_replay)
{
    long total = 0;
    for (size_t f = 0; f < NVEC; f++) {
        gvec g;
        load_or_fail(VEC_FILES[f], &g);
        const mx_blockfma_params *p = mx_blockfma_preset(g.preset);
        ck_assert_msg(p != NULL, "%s: unknown preset %s", VEC_FILES[f], g.preset);
        ck_assert_msg(p->measured, "%s: preset %s not marked measured", VEC_FILES[f], g.preset);
        long first = -1, bad = replay(&g, p, &first);
        EXPECT(bad == 0, "%s: %ld of %zu H100 results differ from %s (first: case %ld, "
               "c=%08x hw=%08x)", VEC_FILES[f], bad, g.ncase, g.preset, first,
               first >= 0 ? g.c[first] : 0, first >= 0 ? g.d[first] : 0);
        total += (long)g.ncase;
        gvec_free(&g);
    }
    ck_assert_int_gt(total, 10000);
}
END_TEST

/* Changing any one parameter of the fitted presets breaks the replay: the
 * vectors pin every parameter they can see. */
enum { P_FUP, P_FDN, P_RD, P_RNE, P_STICKY, P_NORM, P_LATE, P_HALF, P_FADD,
       P_OUTUP, P_OUTDN, P_FINAL, P_OVF, NPERT };
static const char *const pert_names[NPERT] = {
    "frac_bits+1", "frac_bits-1", "align round-down", "align RNE", "sticky",
    "prod_norm", "late_c", "block/2", "c_fadd", "out_prec+1", "out_prec-1",
    "final RNE", "IEEE overflow"};

static mx_blockfma_params perturb(const mx_blockfma_params *p, int w)
{
    mx_blockfma_params q = *p;
    switch (w) {
    case P_FUP: q.frac_bits++; break;
    case P_FDN: q.frac_bits--; break;
    case P_RD: q.align_round = MX_ALIGN_RD; break;
    case P_RNE: q.align_round = MX_ALIGN_RNE; break;
    case P_STICKY: q.sticky = 1; break;
    case P_NORM: q.prod_norm = 1; break;
    case P_LATE:
        q.late_c = 1;
        q.late_round = MX_ALIGN_RD;
        q.late_sum_frac_bits = 31;
        q.late_norm_frac_bits = MX_BFMA_EXACT;
        break;
    case P_HALF: q.block /= 2; if (q.deal) q.deal = 0; break;
    case P_FADD: q.c_fadd = !q.c_fadd; break;
    case P_OUTUP: q.out_prec = q.out_prec < 64 ? q.out_prec + 1 : 64; break;
    case P_OUTDN: q.out_prec = q.out_prec < 64 ? q.out_prec - 1 : 23; break;
    case P_FINAL: q.final_round = MX_RNE; break;
    case P_OVF: q.ovf_inf = 0; break;
    }
    return q;
}

START_TEST(test_golden_perturb)
{
    static const struct { const char *file; unsigned extra; } T[] = {
        {"h100/wgmma_e4m3_e4m3.vec", 1u << P_OUTUP | 1u << P_OUTDN},
        {"h100/wgmma_e5m2_e5m2.vec", 1u << P_OUTUP | 1u << P_OUTDN},
        {"h100/wgmma_bf16_bf16.vec", 1u << P_OUTDN | 1u << P_FINAL | 1u << P_OVF},
        {"h100/mma_e4m3_e4m3.vec", 1u << P_OUTDN | 1u << P_FINAL},
    };
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        gvec g;
        load_or_fail(T[t].file, &g);
        const mx_blockfma_params *p = mx_blockfma_preset(g.preset);
        for (int w = 0; w < NPERT; w++) {
            if (w >= P_OUTUP && !(T[t].extra & (1u << w)))
                continue; /* not visible in these vectors (see docs) */
            mx_blockfma_params q = perturb(p, w);
            ck_assert_int_eq(mx_blockfma_check(&q), MX_OK);
            long bad = replay(&g, &q, NULL);
            EXPECT(bad > 0, "%s: %s with %s still reproduces every vector",
                   T[t].file, g.preset, pert_names[w]);
        }
        gvec_free(&g);
    }
}
END_TEST

/* The bound holds on every measured vector, with the measured result. */
START_TEST(test_golden_bound)
{
    double worst = 0;
    for (size_t f = 0; f < NVEC; f++) {
        gvec g;
        load_or_fail(VEC_FILES[f], &g);
        const mx_blockfma_params *p = mx_blockfma_preset(g.preset);
        uint8_t a8[GVEC_MAXN], b8[GVEC_MAXN];
        for (size_t i = 0; i < g.ncase; i++) {
            const void *a, *b;
            gvec_operands(&g, i, a8, b8, &a, &b);
            if ((g.d[i] & 0x7f800000u) == 0x7f800000u ||
                isinf(mx_blockfma_sum_abs(p, g.fa, a, g.fb, b, (size_t)g.n[i])) ||
                (g.c[i] & 0x7f800000u) == 0x7f800000u)
                continue; /* specials and overflow: outside the bound */
            double e = exact_err(g.fa, a, g.fb, b, (size_t)g.n[i], g.c[i], g.d[i]);
            float cf;
            memcpy(&cf, &g.c[i], 4);
            double bd = mx_blockfma_bound(p, (size_t)g.n[i],
                                          mx_blockfma_sum_abs(p, g.fa, a, g.fb, b, (size_t)g.n[i]),
                                          fabs((double)cf));
            EXPECT(e <= bd, "%s case %zu: |hw - exact| = %g > bound %g", VEC_FILES[f], i, e, bd);
            if (bd > 0 && e / bd > worst)
                worst = e / bd;
        }
        gvec_free(&g);
    }
    ck_assert(worst > 0.05); /* the vectors do exercise the bound */
}
END_TEST

static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The production-structured MXFP8 GEMM as Triton ran it on the H100 (one
 * FP8 tl.dot per 32-wide K group, times the E8M0 scale product, FP32
 * accumulation, BF16 out): hopper-fp8 per group reproduces the FP32
 * accumulator and the BF16 output bit for bit; an exact dot does not. */
START_TEST(test_triton_mxfp8_gemm)
{
    const char *path = golden_path("h100/mxfp8_gemm.safetensors");
    const mx_format *e4 = mx_format_get(MX_E4M3FN);
    static const struct { const char *pfx; int M, N, K; } P[] = {
        {"p0", 64, 64, 1024}, {"p1", 64, 64, 512}};
    for (size_t t = 0; t < 2; t++) {
        int M = P[t].M, N = P[t].N, K = P[t].K, G = K / 32;
        uint8_t *a = malloc((size_t)M * K), *b = malloc((size_t)N * K);
        uint8_t *sa = malloc((size_t)M * G), *sb = malloc((size_t)N * G);
        float *acc = malloc((size_t)M * N * 4);
        uint16_t *out = malloc((size_t)M * N * 2);
        char err[600], name[16];
#define RD(field, dt, cnt, buf)                                                \
        snprintf(name, sizeof name, "%s_%s", P[t].pfx, field);                \
        ck_assert_msg(st_read(path, name, dt, cnt, buf, err, sizeof err) == 0, "%s", err)
        RD("a", "U8", (size_t)M * K, a);
        RD("b", "U8", (size_t)N * K, b);
        RD("sa", "U8", (size_t)M * G, sa);
        RD("sb", "U8", (size_t)N * G, sb);
        RD("acc", "F32", (size_t)M * N, acc);
        RD("out", "I16", (size_t)M * N, out);
#undef RD
        const char *models[2] = {"hopper-fp8", "exact-rne"};
        for (int mdl = 0; mdl < 2; mdl++) {
            const mx_blockfma_params *p = mx_blockfma_preset(models[mdl]);
            long bad_acc = 0, bad_out = 0;
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    float ac = 0.0f;
                    for (int g = 0; g < G; g++) {
                        float pg = f32_of(mx_blockfma_dot_bits(p, e4, a + (size_t)m * K + g * 32,
                                                               e4, b + (size_t)n * K + g * 32, 32, 0));
                        volatile float sc = f32_of((uint32_t)sa[m * G + g] << 23) *
                                            f32_of((uint32_t)sb[n * G + g] << 23);
                        volatile float pr = pg * sc;
                        ac = ac + pr;
                    }
                    uint32_t x, y;
                    memcpy(&x, &ac, 4);
                    memcpy(&y, &acc[m * N + n], 4);
                    bad_acc += x != y;
                    bad_out += mx_bf16_from_float(ac) != out[m * N + n];
                }
            if (mdl == 0)
                EXPECT(bad_acc == 0 && bad_out == 0, "%s: %ld FP32 and %ld BF16 of %d outputs "
                       "differ from the H100", P[t].pfx, bad_acc, bad_out, M * N);
            else
                EXPECT(bad_acc > M * N / 2, "%s: an exact dot matches the H100 in %ld of %d",
                       P[t].pfx, M * N - bad_acc, M * N);
        }
        free(a); free(b); free(sa); free(sb); free(acc); free(out);
    }
}
END_TEST

/* The reader refuses malformed files, naming the line. */
START_TEST(test_golden_parser_traps)
{
    static const struct { const char *text, *what; } T[] = {
        {"fa e4m3fn\nfb e4m3fn\nk 2\npreset hopper-fp8\n00000000 3838 3838\n", "expected 4 fields"},
        {"fa e4m3fn\nfb e4m3fn\nk 2\npreset hopper-fp8\n00000000 383 3838 00000000\n", "widths"},
        {"fa e4m3fn\nfb e4m3fn\nk 4\npreset hopper-fp8\n00000000 3838 3838 00000000\n", "multiple of k"},
        {"fa e4m3fn\nfb e4m3fn\nk 2\npreset hopper-fp8\n0000000g 3838 3838 00000000\n", "hex"},
        {"fa e4m3fn\nk 2\npreset hopper-fp8\n00000000 3838 3838 00000000\n", "before the"},
        {"fa e8m0\n", "bad format"},
        {"fa e4m3fn\nfb e4m3fn\nk x\n", "bad k"},
        {"# only a comment\n", "no cases"},
    };
    char path[] = "/tmp/mxv_golden_XXXXXX";
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        int fd = mkstemp(path);
        ck_assert(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fputs(T[t].text, f);
        fclose(f);
        gvec g;
        char err[600] = "";
        int rc = gvec_load(path, &g, err, sizeof err);
        remove(path);
        strcpy(path, "/tmp/mxv_golden_XXXXXX");
        EXPECT(rc != 0, "accepted bad file %zu", t);
        EXPECT(strstr(err, T[t].what) != NULL, "file %zu: message '%s' lacks '%s'", t, err, T[t].what);
    }
}
END_TEST

Suite *blockfma_suite(void);
Suite *blockfma_suite(void)
{
    Suite *s = suite_create("blockfma");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_presets);
    tcase_add_test(tc, test_check_traps);
    tcase_add_test(tc, test_oracle_random);
    tcase_add_test(tc, test_exact_rne_mpfr);
    tcase_add_test(tc, test_hopper_examples);
    suite_add_tcase(s, tc);
    tc = tcase_create("bound");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bound_random);
    tcase_add_test(tc, test_bound_tight);
    tcase_add_test(tc, test_bound_traps);
    tcase_add_test(tc, test_bound_dot_random);
    tcase_add_test(tc, test_bound_dot_tight);
    suite_add_tcase(s, tc);
    tc = tcase_create("hardware");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_golden_replay);
    tcase_add_test(tc, test_golden_perturb);
    tcase_add_test(tc, test_golden_bound);
    tcase_add_test(tc, test_golden_parser_traps);
    tcase_add_test(tc, test_triton_mxfp8_gemm);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(blockfma_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
