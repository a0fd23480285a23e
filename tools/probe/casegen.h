/* casegen.h -- deterministic random inner-product cases for matrix-unit
 * probes, shared by the GPU probe (tools/probe/tc_probe.cu, built by nvcc on
 * the device machine) and the C tools and tests that regenerate the same
 * cases here.  Header-only, integer arithmetic only, no dependencies: case
 * (seed, index) is the same bits on every machine and compiler.
 *
 * A case is n codes a[], n codes b[] of two formats and an FP32 c (bits).
 * The mixture of modes aims at the features a block-FMA model has: carries
 * (similar magnitudes), alignment loss (exponent spreads), cancellation,
 * subnormal inputs, sparse blocks whose few terms sit far apart, a c that
 * dominates or cancels, and the special values.
 */
#ifndef MXV_CASEGEN_H
#define MXV_CASEGEN_H

#include <stdint.h>

typedef struct {
    const char *name;
    int bits, ebits, mbits, bias;
    int fn; /* 1: OCP FN (no inf, only S.1111.111 is NaN); 0: IEEE-like */
} cg_fmt;

static const cg_fmt CG_E4M3 = {"e4m3fn", 8, 4, 3, 7, 1};
static const cg_fmt CG_E5M2 = {"e5m2", 8, 5, 2, 15, 0};
static const cg_fmt CG_BF16 = {"bf16", 16, 8, 7, 127, 0};
static const cg_fmt CG_FP16 = {"fp16", 16, 5, 10, 15, 0};

typedef struct {
    uint64_t s;
} cg_rng;

static uint64_t cg_next(cg_rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint32_t cg_below(cg_rng *r, uint32_t n) /* uniform in [0, n) */
{
    return n ? (uint32_t)(((cg_next(r) >> 32) * (uint64_t)n) >> 32) : 0;
}

static int cg_range(cg_rng *r, int lo, int hi) /* uniform in [lo, hi] */
{
    return hi <= lo ? lo : lo + (int)cg_below(r, (uint32_t)(hi - lo + 1));
}

/* Largest exponent field of a finite value. */
static int cg_efmax(const cg_fmt *f)
{
    return f->fn ? (1 << f->ebits) - 1 : (1 << f->ebits) - 2;
}

/* A finite code with exponent field ef (clamped to [0, cg_efmax]). */
static uint32_t cg_code(const cg_fmt *f, int sign, int ef, uint32_t mant)
{
    int emax = cg_efmax(f);
    uint32_t mmask = (1u << f->mbits) - 1;
    if (ef < 0)
        ef = 0;
    if (ef > emax)
        ef = emax;
    mant &= mmask;
    if (f->fn && ef == emax && mant == mmask)
        mant = mmask - 1; /* S.1111.111 is NaN */
    return ((uint32_t)sign << (f->bits - 1)) | ((uint32_t)ef << f->mbits) |
           mant;
}

static uint32_t cg_nan(const cg_fmt *f)
{
    return f->fn ? (1u << (f->bits - 1)) - 1
                 : ((1u << (f->ebits + f->mbits)) - 1); /* all ones: NaN */
}

static uint32_t cg_inf(const cg_fmt *f, int sign) /* IEEE-like only */
{
    return ((uint32_t)sign << (f->bits - 1)) |
           (((1u << f->ebits) - 1) << f->mbits);
}

/* Negation of a code (sign flip). */
static uint32_t cg_neg(const cg_fmt *f, uint32_t code)
{
    return code ^ (1u << (f->bits - 1));
}

/* Exponent (unbiased, of the leading bit position) of a code's field. */
static int cg_unbiased(const cg_fmt *f, uint32_t code)
{
    int ef = (int)((code >> f->mbits) & ((1u << f->ebits) - 1));
    return (ef ? ef : 1) - f->bias;
}

/* An FP32 bit pattern with unbiased exponent e (clamped to the finite
 * range; e < -126 gives a subnormal of that magnitude or zero). */
static uint32_t cg_fp32(cg_rng *r, int sign, int e)
{
    uint32_t mant = (uint32_t)cg_next(r) & 0x7fffffu;
    uint32_t s = (uint32_t)sign << 31;
    if (e > 127)
        e = 127;
    if (e >= -126)
        return s | ((uint32_t)(e + 127) << 23) | mant;
    if (e < -149)
        return s;
    return s | ((0x800000u | mant) >> (-126 - e)); /* subnormal */
}

enum {
    CG_UNIFORM, CG_WINDOW, CG_SPREAD, CG_CANCEL, CG_SUBNORMAL, CG_SPARSE,
    CG_CDOM, CG_SPECIAL, CG_NMODES
};

static const char *const cg_mode_names[CG_NMODES] = {
    "uniform", "window", "spread", "cancel", "subnormal", "sparse", "cdom",
    "special"};

/* Mode of case i: fixed percentages. */
static int cg_mode_of(cg_rng *r)
{
    uint32_t u = cg_below(r, 100);
    if (u < 14) return CG_UNIFORM;
    if (u < 36) return CG_WINDOW;
    if (u < 56) return CG_SPREAD;
    if (u < 70) return CG_CANCEL;
    if (u < 79) return CG_SUBNORMAL;
    if (u < 89) return CG_SPARSE;
    if (u < 97) return CG_CDOM;
    return CG_SPECIAL;
}

/* Base exponent field for "window"/"spread" modes: anywhere for FP8 and
 * FP16; for BF16 near 1 (2^-30 .. 2^30) so that sums stay in range. */
static int cg_base_ef(cg_rng *r, const cg_fmt *f)
{
    if (f->ebits == 8)
        return f->bias + cg_range(r, -30, 30);
    return cg_range(r, 1, cg_efmax(f));
}

static uint32_t cg_random_finite(cg_rng *r, const cg_fmt *f)
{
    return cg_code(f, (int)cg_below(r, 2), cg_range(r, 0, cg_efmax(f)),
                   (uint32_t)cg_next(r));
}

/* Generates case `index` of the stream `seed`: n products, a[i] in fa, b[i]
 * in fb, c as FP32 bits.  Returns the mode.  n <= 4096. */
static int cg_case(const cg_fmt *fa, const cg_fmt *fb, int n, uint64_t seed,
                   uint64_t index, uint32_t *a, uint32_t *b, uint32_t *c)
{
    cg_rng r;
    r.s = seed * UINT64_C(0x2545F4914F6CDD1D) ^ (index + 1) *
          UINT64_C(0x9E3779B97F4A7C15);
    cg_next(&r);
    int mode = cg_mode_of(&r);
    int i;
    int ba = cg_base_ef(&r, fa), bb = cg_base_ef(&r, fb);

    switch (mode) {
    case CG_UNIFORM:
        for (i = 0; i < n; i++) {
            a[i] = cg_random_finite(&r, fa);
            b[i] = cg_random_finite(&r, fb);
        }
        break;
    case CG_WINDOW:
    case CG_SPREAD:
    case CG_CANCEL: {
        int w = mode == CG_WINDOW ? cg_range(&r, 0, 3)
                                  : cg_range(&r, 0, mode == CG_SPREAD ? 40 : 12);
        int allpos = cg_below(&r, 4) == 0; /* some all-positive cases */
        for (i = 0; i < n; i++) {
            a[i] = cg_code(fa, allpos ? 0 : (int)cg_below(&r, 2),
                           ba - cg_range(&r, 0, w), (uint32_t)cg_next(&r));
            b[i] = cg_code(fb, (int)cg_below(&r, 2), bb - cg_range(&r, 0, w),
                           (uint32_t)cg_next(&r));
        }
        if (mode == CG_CANCEL) {
            /* second half repeats the first with a negated, at shuffled
             * places; a few are nudged so the cancellation is not exact. */
            for (i = 0; i + 1 < n; i += 2) {
                a[i + 1] = cg_neg(fa, a[i]);
                b[i + 1] = b[i];
                if (cg_below(&r, 8) == 0) {
                    a[i + 1] ^= 1u; /* last mantissa bit */
                    if (fa->fn && (a[i + 1] & ((1u << (fa->bits - 1)) - 1)) ==
                                      (1u << (fa->bits - 1)) - 1)
                        a[i + 1] ^= 1u; /* that made the FN NaN: undo */
                }
            }
            for (i = n - 1; i > 0; i--) {
                int j = (int)cg_below(&r, (uint32_t)i + 1);
                uint32_t t = a[i]; a[i] = a[j]; a[j] = t;
                t = b[i]; b[i] = b[j]; b[j] = t;
            }
        }
        break;
    }
    case CG_SUBNORMAL:
        for (i = 0; i < n; i++) {
            int ea = cg_below(&r, 3) ? cg_range(&r, 0, 2) : cg_range(&r, 0, cg_efmax(fa));
            int eb = cg_below(&r, 2) ? cg_range(&r, 0, 2) : cg_range(&r, 0, cg_efmax(fb));
            if (fa->ebits == 8 && ea > 2) ea = fa->bias + cg_range(&r, -30, 30);
            if (fb->ebits == 8 && eb > 2) eb = fb->bias + cg_range(&r, -30, 30);
            a[i] = cg_code(fa, (int)cg_below(&r, 2), ea, (uint32_t)cg_next(&r));
            b[i] = cg_code(fb, (int)cg_below(&r, 2), eb, (uint32_t)cg_next(&r));
        }
        break;
    case CG_SPARSE: {
        for (i = 0; i < n; i++)
            a[i] = b[i] = 0;
        int cnt = cg_range(&r, 1, 4);
        for (int j = 0; j < cnt; j++) {
            int pos = (int)cg_below(&r, (uint32_t)n);
            int w = cg_range(&r, 0, fa->ebits == 8 ? 60 : (1 << fa->ebits) - 2);
            a[pos] = cg_code(fa, (int)cg_below(&r, 2), ba - cg_range(&r, 0, w),
                             (uint32_t)cg_next(&r));
            b[pos] = cg_code(fb, (int)cg_below(&r, 2), bb, (uint32_t)cg_next(&r));
        }
        break;
    }
    case CG_CDOM:
    case CG_SPECIAL:
    default: {
        int w = cg_range(&r, 0, 8);
        for (i = 0; i < n; i++) {
            a[i] = cg_code(fa, (int)cg_below(&r, 2), ba - cg_range(&r, 0, w),
                           (uint32_t)cg_next(&r));
            b[i] = cg_code(fb, (int)cg_below(&r, 2), bb - cg_range(&r, 0, w),
                           (uint32_t)cg_next(&r));
        }
        break;
    }
    }
    if (cg_below(&r, 10) == 0) /* some zero products */
        for (i = 0; i < n; i++)
            if (cg_below(&r, 3) == 0)
                a[i] = cg_below(&r, 2) ? 0 : 1u << (fa->bits - 1);

    /* c: relative to the largest product exponent present. */
    int emax = -1000;
    for (i = 0; i < n; i++) {
        int e = cg_unbiased(fa, a[i]) + cg_unbiased(fb, b[i]);
        if ((a[i] & ((1u << (fa->bits - 1)) - 1)) && e > emax)
            emax = e;
    }
    if (emax == -1000)
        emax = 0;
    uint32_t u = cg_below(&r, 100);
    int sc = (int)cg_below(&r, 2);
    if (mode == CG_CDOM)
        *c = cg_fp32(&r, sc, emax + cg_range(&r, -4, 40));
    else if (u < 25)
        *c = (uint32_t)sc << 31; /* +-0 */
    else if (u < 75)
        *c = cg_fp32(&r, sc, emax + cg_range(&r, -30, 12));
    else if (u < 90) {
        uint32_t e8 = cg_below(&r, 255); /* any finite exponent field */
        *c = ((uint32_t)sc << 31) | (e8 << 23) | ((uint32_t)cg_next(&r) & 0x7fffffu);
    } else
        *c = ((uint32_t)sc << 31) | ((uint32_t)cg_next(&r) & 0x7fffffu); /* subnormal */

    if (mode == CG_SPECIAL) {
        int what = (int)cg_below(&r, 6);
        int pos = (int)cg_below(&r, (uint32_t)n);
        int hasinf_a = !fa->fn;
        switch (what) {
        case 0: a[pos] = cg_nan(fa); break;
        case 1: b[pos] = cg_nan(fb); break;
        case 2:
            if (hasinf_a) a[pos] = cg_inf(fa, (int)cg_below(&r, 2));
            else *c = 0x7f800000u | ((uint32_t)sc << 31);
            break;
        case 3: /* inf * 0 */
            if (hasinf_a) { a[pos] = cg_inf(fa, 0); b[pos] = 0; }
            else *c = 0x7fc00000u;
            break;
        case 4: /* +inf - inf */
            if (hasinf_a && n > 1) {
                a[pos] = cg_inf(fa, 0);
                a[(pos + 1) % n] = cg_inf(fa, 1);
                if (!b[pos]) b[pos] = cg_code(fb, 0, fb->bias, 0);
                if (!b[(pos + 1) % n]) b[(pos + 1) % n] = cg_code(fb, 0, fb->bias, 0);
            } else
                *c = 0xff800000u;
            break;
        default: /* c huge: overflow with the products */
            *c = ((uint32_t)sc << 31) | 0x7f7fffffu;
            break;
        }
    }
    return mode;
}

#endif /* MXV_CASEGEN_H */
