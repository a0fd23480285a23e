/* gemm.c -- the fast exact group GEMM engine, the vectorized models and the
 * bounds (see mxref/gemm.h and docs/bounds.md).
 *
 * Exactness argument.  Every element value of an 8- or 16-bit format is
 * M * 2^E with |M| < 2^11.  Within one (row, 32-group) let u be the lowest
 * exponent E of a nonzero value; when every value is below 2^(u+24) the
 * group is "regular" and its values are exact integers I = M * 2^(E-u) with
 * |I| < 2^24, stored as binary64.  The dot of two regular groups is then a
 * sum of 32 products each below 2^48: every partial sum, in any order, is an
 * integer below 2^53, hence exact in binary64.  So one BLAS dgemm per
 * 32-wide K slice returns exact group partials P (E4M3 groups are always
 * regular: their values span 18 bits).  An element's exact sum is
 *     S = sum_g P_g * 2^(uA_g + uB_g + sA_g + sB_g)
 * and is accumulated without rounding in a signed 128-bit fixed-point
 * integer whose unit 2^base is the row minimum of (u + s) on each side; an
 * element whose exponent range cannot fit 127 bits is accumulated in GMP
 * instead.  Irregular groups (values spread over more than 24 binades) are
 * zeroed in the BLAS operands and their exact dot is computed directly in
 * GMP.  The single rounding to binary64 happens at the end.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_cblas.h>
#include "gemm_internal.h"

typedef struct {
    size_t rows, K, G;
    double *ints;         /* rows x K integer-valued: the group's values, or */
                          /* in irregular groups their bits >= 2^u          */
    double *absints;      /* rows x K |ints|                                 */
    int *u;               /* rows x G unit exponent of the group's ints       */
    int *sx;              /* rows x G scale exponent or MXG_ZERO_SCALE        */
    unsigned char *irr;   /* rows x G irregular group: has residual bits     */
    size_t *res_off;      /* rows x G + 1: residual entries of each group    */
    int32_t *res_m;       /* residual value bits: res_m * 2^res_e at column  */
    int *res_e;           /* k0 + res_k (exact; below the group's 2^u)       */
    unsigned char *res_k;
    size_t nres, cap;
    int *lo, *hi;         /* rows: lowest unit and highest top exponent of   */
                          /* any nonzero (scaled) value; lo > hi when none   */
    double *amax;         /* rows: max |value| unscaled                      */
    size_t nirr;
} prep;

/* The two big per-operand arrays live in per-thread, grow-only buffers:
 * one call per expert would otherwise map and fault in ~100 MB each time. */
static __thread struct {
    double *buf[4];
    size_t cap[4];
} ws;

static double *ws_get(int slot, size_t n)
{
    if (ws.cap[slot] < n) {
        free(ws.buf[slot]);
        ws.buf[slot] = malloc(n * sizeof(double));
        ws.cap[slot] = ws.buf[slot] ? n : 0;
    }
    return ws.buf[slot];
}

static void prep_free(prep *p)
{
    free(p->u);
    free(p->sx);
    free(p->irr);
    free(p->res_off);
    free(p->res_m);
    free(p->res_e);
    free(p->res_k);
    free(p->lo);
    free(p->hi);
    free(p->amax);
}

static int bitlen32(uint32_t x) { return x ? 32 - __builtin_clz(x) : 0; }

/* Per-code facts of a format, for every code (2^8 or 2^16 of them). */
typedef struct {
    size_t n;
    int32_t *m;      /* value = m * 2^e exactly                           */
    int16_t *e, *top;/* top: values are below 2^top                       */
    unsigned char *bad; /* NaN or inf                                     */
} code_table;

static void code_table_free(code_table *t)
{
    (void)t; /* tables are shared and live for the process */
}

static mx_status code_table_make(const mx_format *f, code_table *t)
{
    t->n = (size_t)1 << f->bits;
    t->m = malloc(t->n * sizeof *t->m);
    t->e = malloc(t->n * sizeof *t->e);
    t->top = malloc(t->n * sizeof *t->top);
    t->bad = malloc(t->n);
    if (!t->m || !t->e || !t->top || !t->bad) {
        free(t->m);
        free(t->e);
        free(t->top);
        free(t->bad);
        return MX_ENOMEM;
    }
    for (size_t c = 0; c < t->n; c++) {
        int e;
        mx_class k = mx_decode_int(f, (uint32_t)c, &t->m[c], &e);
        t->e[c] = (int16_t)e;
        t->top[c] = (int16_t)(e + bitlen32((uint32_t)abs(t->m[c])));
        t->bad[c] = k == MX_CLASS_NAN || k == MX_CLASS_INF;
    }
    return MX_OK;
}

/* The tables of every 8- and 16-bit format, built once. */
static code_table tables[MX_FORMAT_COUNT];
static mx_status tables_status = MX_OK;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
    for (int i = 0; i < MX_FORMAT_COUNT; i++) {
        const mx_format *f = mx_format_get((mx_format_id)i);
        if (f->bits <= 16 && code_table_make(f, &tables[i]) != MX_OK)
            tables_status = MX_ENOMEM;
    }
}

static mx_status code_table_build(const mx_format *f, code_table *t)
{
    pthread_once(&tables_once, tables_init);
    if (tables_status != MX_OK || f->bits > 16)
        return MX_ENOMEM;
    *t = tables[f->id];
    return MX_OK;
}

/* 2^e for e in [-1100, 1100] as binary64, by table (exact; no libm). */
static double pow2_tab[2201];
static inline double pow2(int e) { return pow2_tab[e + 1100]; }
__attribute__((constructor)) static void pow2_init(void)
{
    for (int e = -1100; e <= 1100; e++)
        pow2_tab[e + 1100] = ldexp(1.0, e);
}

/* Formats whose every value is an integer multiple of the smallest
 * subnormal below 2^24 of it (E4M3FN, E4M3FNUZ: 18 binades) take a fixed
 * unit: no group is irregular and the ints come straight from a table. */
static int fixed_unit(const code_table *ct, int *unit, int *topmax)
{
    int lo = INT_MAX, hi = INT_MIN;
    for (size_t c = 0; c < ct->n; c++)
        if (ct->m[c] && !ct->bad[c]) {
            lo = ct->e[c] < lo ? ct->e[c] : lo;
            hi = ct->top[c] > hi ? ct->top[c] : hi;
        }
    *unit = lo;
    *topmax = hi;
    return ct->n == 256 && hi - lo <= 24;
}

static mx_status prep_alloc(prep *p, int side, size_t R, size_t K, size_t G)
{
    memset(p, 0, sizeof *p);
    p->rows = R;
    p->K = K;
    p->G = G;
    size_t nk = R * K > 0 ? R * K : 1;
    p->ints = ws_get(2 * side, nk);
    p->absints = ws_get(2 * side + 1, nk);
    p->u = calloc(R * G, sizeof *p->u);
    p->sx = calloc(R * G, sizeof *p->sx);
    p->irr = calloc(R * G, 1);
    p->res_off = calloc(R * G + 1, sizeof *p->res_off);
    p->lo = malloc(R * sizeof *p->lo);
    p->hi = malloc(R * sizeof *p->hi);
    p->amax = calloc(R, sizeof *p->amax);
    if (!p->ints || !p->absints || !p->u || !p->sx || !p->irr || !p->lo ||
        !p->hi || !p->amax || !p->res_off) {
        prep_free(p);
        return MX_ENOMEM;
    }
    return MX_OK;
}

static int res_push(prep *p, int32_t m, int e, unsigned k)
{
    if (p->nres == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 1024;
        int32_t *nm = realloc(p->res_m, cap * sizeof *nm);
        if (nm)
            p->res_m = nm;
        int *ne = realloc(p->res_e, cap * sizeof *ne);
        if (ne)
            p->res_e = ne;
        unsigned char *nk = realloc(p->res_k, cap);
        if (nk)
            p->res_k = nk;
        if (!nm || !ne || !nk)
            return -1;
        p->cap = cap;
    }
    p->res_m[p->nres] = m;
    p->res_e[p->nres] = e;
    p->res_k[p->nres++] = (unsigned char)k;
    return 0;
}

/* The fixed-unit path: table lookups only. */
static mx_status prep_fixed(const mx_operand *o, mx_e8m0_decode d,
                            const code_table *ct, int unit, int topmax, prep *p)
{
    int bad = 0;
    size_t R = p->rows, K = p->K, G = p->G;
    double ival[256], iabs[256], aval[256];
    for (int c = 0; c < 256; c++) {
        ival[c] = ct->m[c] ? (double)ct->m[c] * pow2(ct->e[c] - unit) : 0.0;
        iabs[c] = fabs(ival[c]);
        aval[c] = ct->m[c] ? fabs((double)ct->m[c]) * pow2(ct->e[c]) : 0.0;
    }
    for (size_t r = 0; r < R; r++) {
        const uint8_t *codes = (const uint8_t *)o->codes + mxg_row(o, r) * o->ld;
        double *ir = p->ints + r * K, *ar = p->absints + r * K;
        int lo = INT_MAX, hi = INT_MIN;
        double amax = 0;
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
            int sx = mxg_scale_exp(o, d, r, g);
            p->sx[r * G + g] = sx;
            p->u[r * G + g] = unit;
            int any = 0;
            if (sx == MXG_ZERO_SCALE) {
                for (size_t i = 0; i < len; i++)
                    ir[k0 + i] = ar[k0 + i] = 0.0;
                continue;
            }
            for (size_t i = 0; i < len; i++) {
                uint8_t c = codes[k0 + i];
                ir[k0 + i] = ival[c];
                ar[k0 + i] = iabs[c];
                amax = aval[c] > amax ? aval[c] : amax;
                any |= ct->m[c] != 0;
                bad |= ct->bad[c];
            }
            if (any) {
                lo = unit + sx < lo ? unit + sx : lo;
                hi = topmax + sx > hi ? topmax + sx : hi;
            }
        }
        p->lo[r] = lo;
        p->hi[r] = hi;
        p->amax[r] = amax;
        /* zero-scale groups were not read: check them for NaN and inf too */
        for (size_t g = 0; g < G && !bad; g++)
            if (p->sx[r * G + g] == MXG_ZERO_SCALE)
                for (size_t k = g * MX_BLOCK; k < K && k < (g + 1) * MX_BLOCK; k++)
                    bad |= ct->bad[codes[k]];
    }
    return bad ? MX_ERANGE : MX_OK;
}

/* The widest (row, group) of an operand: max of top - lowest exponent over
 * its nonzero groups, in binades (the ints of a group of width w fit in w
 * bits).  Fixed-unit formats report their fixed width. */
static int natural_width(const mx_operand *o)
{
    code_table ct;
    if (code_table_build(o->fmt, &ct) != MX_OK)
        return 24;
    int unit, topmax;
    if (fixed_unit(&ct, &unit, &topmax))
        return topmax - unit;
    size_t K = o->K, G = (K + MX_BLOCK - 1) / MX_BLOCK;
    int w = 0;
    for (size_t r = 0; r < o->rows; r++)
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
            int umin = INT_MAX, top = INT_MIN;
            for (size_t i = 0; i < len; i++) {
                uint32_t c = mxg_code(o, r, k0 + i);
                if (!ct.m[c])
                    continue;
                umin = ct.e[c] < umin ? ct.e[c] : umin;
                top = ct.top[c] > top ? ct.top[c] : top;
            }
            if (umin != INT_MAX && top - umin > w)
                w = top - umin;
        }
    return w;
}

/* Splits the 48 bits that keep every 32-product group sum below 2^53
 * between the two operands: a narrow side (dequantized weights: 18) leaves
 * the rest to the other, so that fewer of its groups need residual bits. */
static void choose_windows(int na, int nb, int *wa, int *wb)
{
    if (na + nb <= 48) {
        *wa = na;
        *wb = nb;
    } else if (na <= 24) {
        *wa = na;
        *wb = 48 - na;
    } else if (nb <= 24) {
        *wb = nb;
        *wa = 48 - nb;
    } else {
        *wa = *wb = 24;
    }
}

static mx_status prep_build(const mx_operand *o, mx_e8m0_decode d, int side,
                            int window, prep *p)
{
    code_table ct;
    size_t R = o->rows, K = o->K, G = (K + MX_BLOCK - 1) / MX_BLOCK;
    if (code_table_build(o->fmt, &ct) != MX_OK)
        return MX_ENOMEM;
    if (prep_alloc(p, side, R, K, G) != MX_OK) {
        code_table_free(&ct);
        return MX_ENOMEM;
    }
    int unit, topmax;
    if (fixed_unit(&ct, &unit, &topmax)) {
        mx_status st = prep_fixed(o, d, &ct, unit, topmax, p);
        code_table_free(&ct);
        if (st != MX_OK)
            prep_free(p);
        return st;
    }
    memset(p->ints, 0, R * K * sizeof *p->ints);
    memset(p->absints, 0, R * K * sizeof *p->absints);
    int32_t M[MX_BLOCK];
    int E[MX_BLOCK];
    for (size_t r = 0; r < R; r++) {
        int lo = INT_MAX, hi = INT_MIN;
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
            int sx = mxg_scale_exp(o, d, r, g);
            int umin = INT_MAX, top = INT_MIN;
            for (size_t i = 0; i < len; i++) {
                uint32_t c = mxg_code(o, r, k0 + i);
                if (ct.bad[c]) {
                    prep_free(p);
                    return MX_ERANGE;
                }
                M[i] = ct.m[c];
                E[i] = ct.e[c];
                if (!M[i])
                    continue;
                double av = (double)abs(M[i]) * pow2(E[i]);
                p->amax[r] = av > p->amax[r] ? av : p->amax[r];
                umin = E[i] < umin ? E[i] : umin;
                top = ct.top[c] > top ? ct.top[c] : top;
            }
            p->sx[r * G + g] = sx;
            if (umin == INT_MAX || sx == MXG_ZERO_SCALE) {
                p->res_off[r * G + g + 1] = p->nres;
                continue; /* contributes nothing */
            }
            /* ints below 2^window: u = the lowest exponent when the group
             * spans at most window binades, else top - window with the bits
             * below 2^u kept as exact residual entries */
            int irregular = top - umin > window;
            int u = irregular ? top - window : umin;
            p->u[r * G + g] = u;
            lo = umin + sx < lo ? umin + sx : lo;
            hi = top + sx > hi ? top + sx : hi;
            p->irr[r * G + g] = (unsigned char)irregular;
            p->nirr += (size_t)irregular;
            for (size_t i = 0; i < len; i++) {
                if (!M[i])
                    continue;
                if (E[i] >= u) {
                    p->ints[r * K + k0 + i] = (double)M[i] * pow2(E[i] - u);
                    p->absints[r * K + k0 + i] = fabs(p->ints[r * K + k0 + i]);
                    continue;
                }
                int sh = u - E[i], neg = M[i] < 0;
                uint32_t am = (uint32_t)abs(M[i]);
                uint32_t hi_m = sh >= 31 ? 0 : am >> sh;
                uint32_t lo_m = am - (sh >= 31 ? 0 : hi_m << sh);
                p->ints[r * K + k0 + i] = neg ? -(double)hi_m : (double)hi_m;
                p->absints[r * K + k0 + i] = (double)hi_m;
                if (lo_m && res_push(p, neg ? -(int32_t)lo_m : (int32_t)lo_m,
                                     E[i], (unsigned)i) != 0) {
                    prep_free(p);
                    code_table_free(&ct);
                    return MX_ENOMEM;
                }
            }
            p->res_off[r * G + g + 1] = p->nres;
        }
        p->lo[r] = lo;
        p->hi[r] = hi;
    }
    code_table_free(&ct);
    return MX_OK;
}

/* Everything mx_gemm_check verifies except the codes themselves (prep
 * refuses NaN and inf codes as it reads them). */
static mx_status check_shapes(const mx_gemm_spec *s, const mx_operand *A,
                              const mx_operand *B, int codes)
{
    if (!s || !A || !B || !A->fmt || !B->fmt || !A->codes || !B->codes)
        return MX_EINVAL;
    if (A->fmt->bits > 16 || B->fmt->bits > 16 || A->K != B->K || A->K == 0 ||
        A->ld < A->K || B->ld < B->K)
        return MX_EINVAL;
    if ((A->scales == NULL) != (B->scales == NULL))
        return MX_EINVAL;
    if (A->scales && A->K % MX_BLOCK)
        return MX_EINVAL;
    if (s->model.kind == MX_ACC_BLOCK && !s->model.block)
        return MX_EINVAL;
    const mx_operand *ops[2] = {A, B};
    for (int i = 0; i < 2; i++) {
        const mx_operand *o = ops[i];
        code_table ct = {0, NULL, NULL, NULL, NULL};
        if (codes && code_table_build(o->fmt, &ct) != MX_OK)
            return MX_ENOMEM;
        for (size_t r = 0; r < o->rows; r++) {
            if (o->row_idx && o->row_idx[r] < 0)
                return MX_ERANGE;
            for (size_t k = 0; codes && k < o->K; k++)
                if (ct.bad[mxg_code(o, r, k)])
                    return MX_ERANGE;
            if (o->scales)
                for (size_t g = 0; g < o->K / MX_BLOCK; g++)
                    if (mxg_scale_byte(o, r, g) == 255)
                        return MX_ERANGE;
        }
    }
    if (s->row_weight)
        for (size_t r = 0; r < A->rows; r++)
            if (!isfinite(s->row_weight[r]))
                return MX_ERANGE;
    return MX_OK;
}

mx_status mx_gemm_check(const mx_gemm_spec *s, const mx_operand *A,
                        const mx_operand *B)
{
    return check_shapes(s, A, B, 1);
}

/* ---- rounding helpers ------------------------------------------------- */

static uint64_t u128_top64(unsigned __int128 v, int *lead, int *sticky)
{
    int hi = v >> 64 ? 127 - __builtin_clzll((uint64_t)(v >> 64))
                     : 63 - __builtin_clzll((uint64_t)v);
    *lead = hi;
    if (hi <= 63) {
        *sticky = 0;
        return (uint64_t)v << (63 - hi);
    }
    int sh = hi - 63;
    *sticky = (v & (((unsigned __int128)1 << sh) - 1)) != 0;
    return (uint64_t)(v >> sh);
}

float mxg_round_f32(__int128 v, int e)
{
    if (v == 0)
        return 0.0f;
    int neg = v < 0, lead, sticky;
    unsigned __int128 a = neg ? -(unsigned __int128)v : (unsigned __int128)v;
    uint64_t sig = u128_top64(a, &lead, &sticky);
    mx_encode_opts o = mx_encode_defaults();
    uint32_t code;
    mx_round_pack(mx_format_get(MX_FP32), neg, sig, lead + e, sticky, &o, &code);
    float f;
    memcpy(&f, &code, sizeof f);
    return f;
}

/* Correctly rounded binary64 of v * 2^e (|e| small enough that the result
 * is a normal binary64: true for every GEMM here). */
static double round_f64(__int128 v, int e)
{
    if (v == 0)
        return 0.0;
    int neg = v < 0, lead, sticky;
    unsigned __int128 a = neg ? -(unsigned __int128)v : (unsigned __int128)v;
    uint64_t sig = u128_top64(a, &lead, &sticky);
    /* RNE of the 64-bit significand to 53 bits, sticky included */
    uint64_t keep = sig >> 11, rem = sig & 0x7FF;
    if (rem > 0x400 || (rem == 0x400 && (sticky || (keep & 1))))
        keep++;
    double r = ldexp((double)keep, lead - 52 + e);
    return neg ? -r : r;
}

static double round_mpz_f64(const mpz_t z, long e, double w)
{
    mpfr_t t;
    mpfr_init2(t, (mpfr_prec_t)(mpz_sizeinbase(z, 2) + 2));
    mpfr_set_z(t, z, MPFR_RNDN); /* exact */
    mpfr_mul_2si(t, t, e, MPFR_RNDN);
    mpfr_t r;
    mpfr_init2(r, 53);
    if (w != 1.0) {
        mpfr_t wt;
        mpfr_init2(wt, 53);
        mpfr_set_d(wt, w, MPFR_RNDN);
        mpfr_mul(r, t, wt, MPFR_RNDN);
        mpfr_clear(wt);
    } else {
        mpfr_set(r, t, MPFR_RNDN);
    }
    double d = mpfr_get_d(r, MPFR_RNDN);
    mpfr_clears(t, r, (mpfr_ptr)0);
    return d;
}

/* ---- the engine --------------------------------------------------------- */

typedef struct {
    size_t M, N, G;
    unsigned __int128 *acc; /* M x N two's complement fixed point, unit    */
                            /* 2^(loA[m] + loB[n]); wraps for slow ones    */
    unsigned char *slow;  /* M x N: accumulate in GMP                        */
    mpz_t *big;           /* M x N, initialized for slow elements only       */
    size_t *slow_list, nslow;
    float *gacc;          /* M x N fp32-group model accumulator, or NULL     */
    double *sabs;         /* M x N sum |a b| scale (bounds), or NULL         */
} accum;

/* v * 2^s without the undefined behaviour of shifting a negative value */
static inline __int128 shl128(int64_t v, int s)
{
    return (__int128)((unsigned __int128)(__int128)v << s);
}

static int clog2(size_t x)
{
    int b = 0;
    while (((size_t)1 << b) < x)
        b++;
    return b;
}

/* The exact residual terms of group g for element (m, n), unscaled:
 * a_lo * b (full b) for A's residual bits, a_hi * b_lo for B's.  With
 * a = a_hi + a_lo and b = b_hi + b_lo, a b = a_hi b_hi (the dgemm) + these. */
static size_t residual_terms(const prep *a, const prep *b, const mx_operand *A,
                             const mx_operand *B, size_t m, size_t n, size_t g,
                             int64_t *tv, int *te)
{
    size_t G = a->G, K = a->K, k0 = g * MX_BLOCK, cnt = 0;
    const code_table *tb = &tables[B->fmt->id];
    if (a->irr[m * G + g])
        for (size_t j = a->res_off[m * G + g]; j < a->res_off[m * G + g + 1]; j++) {
            uint32_t c = mxg_code(B, n, k0 + a->res_k[j]);
            if (!tb->m[c])
                continue;
            tv[cnt] = (int64_t)a->res_m[j] * tb->m[c];
            te[cnt++] = a->res_e[j] + tb->e[c];
        }
    if (b->irr[n * G + g])
        for (size_t j = b->res_off[n * G + g]; j < b->res_off[n * G + g + 1]; j++) {
            double ah = a->ints[m * K + k0 + b->res_k[j]];
            if (ah == 0)
                continue;
            tv[cnt] = (int64_t)ah * b->res_m[j];
            te[cnt++] = a->u[m * G + g] + b->res_e[j];
        }
    (void)A;
    return cnt;
}

/* Adds the residual terms of group g to the exact accumulators and, for the
 * fp32-group model, adds the group's partial RN32(exact dot) for elements
 * that have residual terms (the main loop skipped them). */
static void add_residual_elem(const mx_gemm_spec *s, const mx_operand *A,
                              const mx_operand *B, const prep *a, const prep *b,
                              accum *ac, size_t g, const double *P, size_t m,
                              size_t n)
{
    size_t N = ac->N, G = ac->G;
    int64_t tv[2 * MX_BLOCK];
    int te[2 * MX_BLOCK];
    size_t cnt = residual_terms(a, b, A, B, m, n, g, tv, te);
    size_t i = m * N + n;
    int sa = a->sx[m * G + g], sb = b->sx[n * G + g];
    int live = sa != MXG_ZERO_SCALE && sb != MXG_ZERO_SCALE;
    for (size_t j = 0; j < cnt && live && ac->sabs; j++)
        ac->sabs[i] += fabs((double)tv[j]) * pow2(te[j] + sa + sb);
    for (size_t j = 0; j < cnt && live; j++) {
        int shift = te[j] + sa + sb - a->lo[m] - b->lo[n];
        if (!ac->slow[i]) {
            ac->acc[i] += (unsigned __int128)shl128(tv[j], shift);
        } else {
            mpz_t t;
            mpz_init_set_si(t, (long)tv[j]);
            mpz_mul_2exp(t, t, (mp_bitcnt_t)shift);
            mpz_add(ac->big[i], ac->big[i], t);
            mpz_clear(t);
        }
    }
    if (!ac->gacc)
        return;
    /* the model partial: RN32 of P_hi 2^(uA+uB) + the terms */
    int ua = a->u[m * G + g] + b->u[n * G + g], e0 = ua, emax = ua + 53;
    for (size_t j = 0; j < cnt; j++) {
        e0 = te[j] < e0 ? te[j] : e0;
        emax = te[j] + 63 > emax ? te[j] + 63 : emax;
    }
    float p;
    if (emax - e0 + 6 <= 126) {
        __int128 v = shl128((int64_t)P[i], ua - e0);
        for (size_t j = 0; j < cnt; j++)
            v += shl128(tv[j], te[j] - e0);
        if (v > -((__int128)1 << 53) && v < ((__int128)1 << 53))
            p = (float)((double)(int64_t)v * pow2(e0)); /* exact, then one rounding */
        else
            p = mxg_round_f32(v, e0);
    } else {
        mpz_t z, t;
        mpz_init_set_d(z, P[i]);
        mpz_mul_2exp(z, z, (mp_bitcnt_t)(ua - e0));
        mpz_init(t);
        for (size_t j = 0; j < cnt; j++) {
            mpz_set_si(t, (long)tv[j]);
            mpz_mul_2exp(t, t, (mp_bitcnt_t)(te[j] - e0));
            mpz_add(z, z, t);
        }
        mpfr_t f;
        mpfr_init2(f, (mpfr_prec_t)mpz_sizeinbase(z, 2) + 2);
        mpfr_set_z(f, z, MPFR_RNDN);
        mpfr_mul_2si(f, f, e0, MPFR_RNDN);
        mx_encode_opts o = mx_encode_defaults();
        uint32_t code;
        mx_encode_mpfr(mx_format_get(MX_FP32), f, &o, &code);
        memcpy(&p, &code, sizeof p);
        mpfr_clear(f);
        mpz_clears(z, t, NULL);
    }
    if (A->scales) {
        float sc = mxg_scale_f32(A, s->decode, m, g) *
                   mxg_scale_f32(B, s->decode, n, g);
        float t = p * sc;
        ac->gacc[i] = ac->gacc[i] + t;
    } else {
        ac->gacc[i] = ac->gacc[i] + p;
    }
}

/* Adds the residual terms of group g to the exact accumulators and, for the
 * fp32-group model, the group's partial RN32(exact dot) for elements that
 * have residual terms (the main loop skipped them).  Visits only rows and
 * columns that have residual bits in this group. */
/* The fast path for rows of A with residual bits in group g: the group's
 * B values are gathered once into column-contiguous arrays, each residual
 * entry then adds a_lo * b for all columns in the element's own fixed-point
 * frame (exact: the span test covers every term), and the fp32-group model
 * partial is rounded from P_hi + those terms in the same frame.  Columns
 * with residual bits of their own, and GMP elements, take the general
 * per-element path. */
static void residual_rows(const mx_gemm_spec *s, const mx_operand *A,
                          const mx_operand *B, const prep *a, const prep *b,
                          accum *ac, size_t g, const double *P)
{
    size_t M = ac->M, N = ac->N, G = ac->G, K = a->K, k0 = g * MX_BLOCK;
    size_t len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
    const code_table *tb = &tables[B->fmt->id];
    int32_t *bm = malloc(len * N * sizeof *bm);
    int16_t *be = malloc(len * N * sizeof *be);
    int *fb = malloc(N * sizeof *fb);      /* sb - loB[n], or INT_MIN      */
    int *db = malloc(N * sizeof *db);      /* uB + sb - loB[n]             */
    float *scb = malloc(N * sizeof *scb);
    unsigned __int128 *gres = malloc(N * sizeof *gres);
    double *gabs = malloc(N * sizeof *gabs);
    if (!bm || !be || !fb || !db || !scb || !gres || !gabs)
        goto out; /* allocation failure: fall back below */
    for (size_t n = 0; n < N; n++) {
        for (size_t i = 0; i < len; i++) {
            uint32_t c = mxg_code(B, n, k0 + i);
            bm[i * N + n] = tb->m[c];
            be[i * N + n] = tb->e[c];
        }
        int sb = b->sx[n * G + g];
        /* a zero scale or an all-zero row (lo = INT_MAX > hi, the marker:
         * never in exponent arithmetic) contributes nothing */
        int none = sb == MXG_ZERO_SCALE || b->lo[n] > b->hi[n];
        fb[n] = none ? INT_MIN : sb - b->lo[n];
        db[n] = none ? 0 : b->u[n * G + g] + sb - b->lo[n];
        scb[n] = A->scales ? mxg_scale_f32(B, s->decode, n, g) : 1.0f;
    }
    for (size_t m = 0; m < M; m++) {
        if (!a->irr[m * G + g])
            continue;
        int sa = a->sx[m * G + g];
        if (sa == MXG_ZERO_SCALE) {
            /* no exact contribution; the model adds p * 0 = 0 */
            continue;
        }
        int fa = sa - a->lo[m], ua = a->u[m * G + g];
        memset(gres, 0, N * sizeof *gres);
        memset(gabs, 0, N * sizeof *gabs);
        for (size_t j = a->res_off[m * G + g]; j < a->res_off[m * G + g + 1]; j++) {
            int64_t ma = a->res_m[j];
            int ea = a->res_e[j];
            const int32_t *bmk = bm + (size_t)a->res_k[j] * N;
            const int16_t *bek = be + (size_t)a->res_k[j] * N;
            for (size_t n = 0; n < N; n++) {
                /* slow elements and columns with residual bits take the
                 * per-element path below (their shifts may exceed 127) */
                if (!bmk[n] || fb[n] == INT_MIN || ac->slow[m * N + n] ||
                    b->irr[n * G + g])
                    continue;
                int64_t tv = ma * bmk[n];
                int te = ea + bek[n];
                gres[n] += (unsigned __int128)shl128(tv, te + fa + fb[n]);
                if (ac->sabs)
                    gabs[n] += fabs((double)tv) * pow2(te + sa + fb[n] + b->lo[n]);
            }
        }
        float scA = A->scales ? mxg_scale_f32(A, s->decode, m, g) : 1.0f;
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            if (b->irr[n * G + g] || ac->slow[i] || fb[n] == INT_MIN) {
                if (fb[n] == INT_MIN && ac->gacc && !b->irr[n * G + g] && !ac->slow[i]) {
                    /* zero B scale: the model still adds p * 0 */
                    float t = 0.0f * (scA * scb[n]);
                    ac->gacc[i] = ac->gacc[i] + t;
                } else {
                    add_residual_elem(s, A, B, a, b, ac, g, P, m, n);
                }
                continue;
            }
            ac->acc[i] += gres[n];
            if (ac->sabs)
                ac->sabs[i] += gabs[n];
            if (!ac->gacc)
                continue;
            /* the unscaled group dot, exactly, in the element's frame */
            __int128 v = shl128((int64_t)P[i], ua + fa + db[n])
                         + (__int128)gres[n];
            int e = a->lo[m] + b->lo[n] - sa - (fb[n] + b->lo[n]);
            float p;
            if (v > -((__int128)1 << 53) && v < ((__int128)1 << 53))
                p = (float)((double)(int64_t)v * pow2(e));
            else
                p = mxg_round_f32(v, e);
            if (A->scales) {
                float t = p * (scA * scb[n]);
                ac->gacc[i] = ac->gacc[i] + t;
            } else {
                ac->gacc[i] = ac->gacc[i] + p;
            }
        }
    }
    free(bm);
    free(be);
    free(fb);
    free(db);
    free(scb);
    free(gres);
    free(gabs);
    return;
out:
    free(bm);
    free(be);
    free(fb);
    free(db);
    free(scb);
    free(gres);
    free(gabs);
    for (size_t m = 0; m < M; m++)
        if (a->irr[m * G + g])
            for (size_t n = 0; n < N; n++)
                add_residual_elem(s, A, B, a, b, ac, g, P, m, n);
}

/* Adds the residual terms of group g to the exact accumulators and, for the
 * fp32-group model, the group's partial RN32(exact dot) for elements that
 * have residual terms (the main loop skipped them).  Visits only rows and
 * columns that have residual bits in this group. */
static void add_residual(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, const prep *a, const prep *b,
                         accum *ac, size_t g, const double *P)
{
    size_t M = ac->M, N = ac->N, G = ac->G;
    int any_a = 0;
    for (size_t m = 0; m < M && !any_a; m++)
        any_a = a->irr[m * G + g];
    if (any_a)
        residual_rows(s, A, B, a, b, ac, g, P);
    for (size_t n = 0; n < N; n++)
        if (b->irr[n * G + g])
            for (size_t m = 0; m < M; m++)
                if (!a->irr[m * G + g])
                    add_residual_elem(s, A, B, a, b, ac, g, P, m, n);
}

/* The main loop: one dgemm per K slice, exact accumulation, and the
 * fp32-group model on the same exact partials. */
static mx_status engine_run(const mx_gemm_spec *s, const mx_operand *A,
                            const mx_operand *B, const prep *a, const prep *b,
                            accum *ac)
{
    size_t M = ac->M, N = ac->N, G = ac->G, K = a->K;
    double *P = malloc(M * N * sizeof *P), *pwB = malloc(N * sizeof *pwB);
    double *Q = ac->sabs ? malloc(M * N * sizeof *Q) : NULL;
    double *fB = malloc(N * sizeof *fB);
    int *dB = malloc(N * sizeof *dB);
    float *scB = malloc(N * sizeof *scB);
    if (!P || !dB || !scB || !pwB || !fB || (ac->sabs && !Q)) {
        free(P);
        free(dB);
        free(scB);
        free(pwB);
        free(Q);
        free(fB);
        return MX_ENOMEM;
    }
    for (size_t g = 0; g < G; g++) {
        size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N,
                    (int)len, 1.0, a->ints + k0, (int)K, b->ints + k0, (int)K,
                    0.0, P, (int)N);
        /* Columns that contribute nothing in this group (zero scale: their
         * ints are 0, so P is 0) get shift 0. */
        int b_irr = 0;
        for (size_t n = 0; n < N; n++) {
            int sx = b->sx[n * G + g];
            b_irr |= b->irr[n * G + g];
            /* all-zero rows (lo > hi: the INT_MAX marker) have P = 0 */
            dB[n] = sx == MXG_ZERO_SCALE || b->lo[n] > b->hi[n]
                        ? 0 : b->u[n * G + g] + sx - b->lo[n];
            scB[n] = A->scales ? mxg_scale_f32(B, s->decode, n, g) : 1.0f;
            pwB[n] = pow2(b->u[n * G + g]);
            fB[n] = sx == MXG_ZERO_SCALE ? 0.0 : pow2(b->u[n * G + g] + sx);
        }
        /* sum |a b| scale, for the bounds: exact integer slices of |ints|,
         * accumulated in a fixed group order, so deterministic everywhere */
        if (ac->sabs) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N,
                        (int)len, 1.0, a->absints + k0, (int)K, b->absints + k0,
                        (int)K, 0.0, Q, (int)N);
            for (size_t m = 0; m < M; m++) {
                int sxa = a->sx[m * G + g];
                if (sxa == MXG_ZERO_SCALE)
                    continue;
                double fa = pow2(a->u[m * G + g] + sxa);
                double *sm = ac->sabs + m * N;
                const double *qm = Q + m * N;
                for (size_t n = 0; n < N; n++)
                    sm[n] += qm[n] * fa * fB[n];
            }
        }
        for (size_t m = 0; m < M; m++) {
            int sxa = a->sx[m * G + g];
            const double *Pm = P + m * N;
            if (sxa != MXG_ZERO_SCALE && a->lo[m] <= a->hi[m]) {
                int dA = a->u[m * G + g] + sxa - a->lo[m];
                unsigned __int128 *accm = ac->acc + m * N;
                const unsigned char *slm = ac->slow + m * N;
                /* exact: P is an integer below 2^53 and the shifted value
                 * fits (span test); slow elements are done in GMP below,
                 * and a zero P adds nothing (its shift may be out of
                 * range: an all-zero column, or a group below the row's
                 * lowest bit) */
                for (size_t n = 0; n < N; n++)
                    if (Pm[n] != 0 && !slm[n])
                        accm[n] += (unsigned __int128)(__int128)(int64_t)Pm[n]
                                   << (dA + dB[n]);
            }
            if (!ac->gacc || a->irr[m * G + g])
                continue;
            /* fp32-group model: p = RN32(P * 2^(uA+uB)) (the binary64
             * product is exact; the conversion rounds once), then
             * production's scale multiply and add.  Elements with residual
             * terms get their partial in add_residual. */
            float *gm = ac->gacc + m * N;
            double pa = pow2(a->u[m * G + g]);
            float scA = A->scales ? mxg_scale_f32(A, s->decode, m, g) : 1.0f;
            if (b_irr)
                for (size_t n = 0; n < N; n++) {
                    if (b->irr[n * G + g])
                        continue;
                    float p = (float)(Pm[n] * pa * pwB[n]);
                    if (A->scales) {
                        float t = p * (scA * scB[n]);
                        gm[n] = gm[n] + t;
                    } else {
                        gm[n] = gm[n] + p;
                    }
                }
            else if (A->scales)
                for (size_t n = 0; n < N; n++) {
                    float p = (float)(Pm[n] * pa * pwB[n]);
                    float sc = scA * scB[n];
                    float t = p * sc;
                    gm[n] = gm[n] + t;
                }
            else
                for (size_t n = 0; n < N; n++)
                    gm[n] = gm[n] + (float)(Pm[n] * pa * pwB[n]);
        }
        for (size_t j = 0; j < ac->nslow; j++) {
            size_t i = ac->slow_list[j], m = i / N, n = i % N;
            int sxa = a->sx[m * G + g], sxb = b->sx[n * G + g];
            if (sxa == MXG_ZERO_SCALE || sxb == MXG_ZERO_SCALE || P[i] == 0)
                continue;
            mpz_t t;
            mpz_init_set_d(t, P[i]);
            mpz_mul_2exp(t, t, (mp_bitcnt_t)(a->u[m * G + g] + sxa - a->lo[m] +
                                              b->u[n * G + g] + sxb - b->lo[n]));
            mpz_add(ac->big[i], ac->big[i], t);
            mpz_clear(t);
        }
        if (a->nirr || b->nirr)
            add_residual(s, A, B, a, b, ac, g, P);
    }
    free(P);
    free(dB);
    free(scB);
    free(pwB);
    free(Q);
    free(fB);
    return MX_OK;
}

/* ---- fp32-seq model, vectorized over output columns ------------------- */

/* Hot loops that are elementwise over output columns: vectorizing them
 * keeps every lane's sequence of FP32 operations (and contraction is off
 * in ISO C11), so results are identical to the scalar loop. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MX_HOT __attribute__((optimize("O3"), target_clones("avx2", "default")))
#else
#define MX_HOT
#endif

static MX_HOT void chain_axpy(float *restrict chain, float a,
                              const float *restrict b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        chain[i] = chain[i] + a * b[i];
}

static MX_HOT void scale_add(float *restrict acc, const float *restrict p,
                             const float *restrict sc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float t = p[i] * sc[i];
        acc[i] = acc[i] + t;
    }
}

/* The fp32-seq model for all elements.  Rows of A are processed MB at a
 * time so that each decoded row of B^T is loaded once per block. */
#define MB 8
static mx_status model_seq(const mx_gemm_spec *s, const mx_operand *A,
                           const mx_operand *B, float *out)
{
    size_t M = A->rows, N = B->rows, K = A->K, G = (K + MX_BLOCK - 1) / MX_BLOCK;
    float *bt = malloc(K * N * sizeof *bt), *p = malloc(MB * N * sizeof *p);
    float *a = malloc(MB * K * sizeof *a), *sc = malloc(N * sizeof *sc);
    float *sbt = A->scales ? malloc(G * N * sizeof *sbt) : NULL;
    if (!bt || !p || !a || !sc || (A->scales && !sbt)) {
        free(bt);
        free(p);
        free(a);
        free(sc);
        free(sbt);
        return MX_ENOMEM;
    }
    for (size_t g = 0; A->scales && g < G; g++)
        for (size_t n = 0; n < N; n++)
            sbt[g * N + n] = mxg_scale_f32(B, s->decode, n, g);
    /* value tables of both formats (every code's float value) */
    size_t nb = (size_t)1 << B->fmt->bits, na = (size_t)1 << A->fmt->bits;
    float *tab = malloc(nb * sizeof *tab), *taba = malloc(na * sizeof *taba);
    if (!tab || !taba) {
        free(tab);
        free(taba);
        free(bt);
        free(p);
        free(a);
        free(sc);
        free(sbt);
        return MX_ENOMEM;
    }
    for (size_t c = 0; c < nb; c++)
        tab[c] = (float)mx_decode_double(B->fmt, (uint32_t)c);
    for (size_t c = 0; c < na; c++)
        taba[c] = (float)mx_decode_double(A->fmt, (uint32_t)c);
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++)
            bt[k * N + n] = tab[mxg_code(B, n, k)];
    /* products of two 8-bit values never fall below FLT_MIN; 16-bit ones
     * may, and then a*b rounds where fma would not: those elements are
     * recomputed with true fma below. */
    int may_underflow = A->fmt->bits > 8 || B->fmt->bits > 8;
    for (size_t m0 = 0; m0 < M; m0 += MB) {
        size_t mb = M - m0 < MB ? M - m0 : MB;
        for (size_t j = 0; j < mb; j++) {
            for (size_t k = 0; k < K; k++)
                a[j * K + k] = taba[mxg_code(A, m0 + j, k)];
            for (size_t n = 0; n < N; n++)
                out[(m0 + j) * N + n] = 0.0f;
        }
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
            if (A->scales)
                for (size_t i = 0; i < mb * N; i++)
                    p[i] = 0.0f;
            for (size_t k = k0; k < k0 + len; k++)
                for (size_t j = 0; j < mb; j++)
                    chain_axpy(A->scales ? p + j * N : out + (m0 + j) * N,
                               a[j * K + k], bt + k * N, N);
            if (!A->scales)
                continue;
            for (size_t j = 0; j < mb; j++) {
                float sa = mxg_scale_f32(A, s->decode, m0 + j, g);
                for (size_t n = 0; n < N; n++)
                    sc[n] = sa * sbt[g * N + n];
                scale_add(out + (m0 + j) * N, p + j * N, sc, N);
            }
        }
        for (size_t j = 0; j < mb && may_underflow; j++)
            for (size_t n = 0; n < N; n++) {
                int under = 0;
                for (size_t k = 0; k < K && !under; k++) {
                    float pr = a[j * K + k] * bt[k * N + n];
                    under = pr != 0 && fabsf(pr) < FLT_MIN;
                }
                if (!under)
                    continue;
                /* one element through the direct model */
                size_t m = m0 + j;
                mx_operand a1 = *A, b1 = *B;
                mx_gemm_spec s1 = *s;
                int32_t ri = (int32_t)mxg_row(A, m), rn = (int32_t)mxg_row(B, n);
                s1.row_weight = NULL;
                a1.row_idx = &ri;
                a1.rows = 1;
                b1.row_idx = &rn;
                b1.rows = 1;
                mx_gemm_model_direct(&s1, &a1, &b1, &out[m * N + n]);
            }
    }
    if (s->row_weight)
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++)
                out[m * N + n] = out[m * N + n] * s->row_weight[m];
    free(bt);
    free(p);
    free(a);
    free(sc);
    free(sbt);
    free(tab);
    free(taba);
    return MX_OK;
}

/* ---- bounds --------------------------------------------------------------- */

double mx_gamma32(size_t n)
{
    double nu = (double)n * 0x1p-24;
    return nu < 1 ? nu / (1 - nu) : INFINITY;
}

/* docs/bounds.md, "FP32 models": a sum of the K terms in which no term
 * passes through more than depth roundings (any order within a 32-group
 * then any tree across groups: 31 + G - 1 for MX operands; any order at all
 * for unscaled ones: K - 1), then the optional weight multiply, then BF16
 * RNE.  wS = |w * S| (from the exact value), sabs = |w|-free sum of
 * |terms|, pmax bounds every |partial|. */
/* The tail shared by every model: from a bound Bacc on the FP32
 * accumulator's error, through the optional weight multiply and the BF16
 * rounding of the output. */
static double bound_tail(double Bacc, double wS, double sabs, double w)
{
    const double u = 0x1p-24, eta = 0x1p-150;
    double aw = fabs(w);
    double ey = w != 1.0 ? aw * Bacc + u * (wS + aw * Bacc) + eta : Bacc;
    double y = wS + ey;
    if (!(y < 0x1p128 * (1 - 0x1p-25)) || !(sabs * 2 < FLT_MAX))
        return INFINITY; /* an FP32 or BF16 overflow is possible */
    return ey + 0x1p-8 * y + 0x1p-134 + 0x1p-52 * wS;
}

static double bound_fp32(double wS, double sabs, double w, size_t depth,
                         size_t K, size_t G, double pmax)
{
    const double eta = 0x1p-150;
    double Bacc = mx_gamma32(depth) * sabs +
                  eta * ((double)K + 2.0 * (double)G * (1.0 + pmax));
    return bound_tail(Bacc, wS, sabs, w);
}

/* docs/bounds.md, "Block-FMA models" and "FP32 models": each group's
 * partial is within B_g = mx_blockfma_bound(S_g) of its exact dot (S_g the
 * model's own sum |ab| statistic), scaled exactly, then summed in FP32 in
 * any tree (gamma_{G-1}); unscaled operands are one chain of the unit. */
static double bound_block(const mx_gemm_spec *s, const mx_operand *A,
                          const mx_operand *B, size_t m, size_t n, double wS,
                          double w, double pmax)
{
    const mx_blockfma_params *bp = s->model.block;
    size_t K = A->K, G = (K + MX_BLOCK - 1) / MX_BLOCK;
    size_t ea = A->fmt->bits / 8, eb = B->fmt->bits / 8;
    const uint8_t *pa = (const uint8_t *)A->codes + mxg_row(A, m) * A->ld * ea;
    const uint8_t *pb = (const uint8_t *)B->codes + mxg_row(B, n) * B->ld * eb;
    if (!A->scales) {
        double S = mx_blockfma_sum_abs(bp, A->fmt, pa, B->fmt, pb, K);
        double Bacc = mx_blockfma_bound(bp, K, S, 0);
        return bound_tail(Bacc, wS, S, w);
    }
    double sum_b = 0, sum_p = 0;
    for (size_t g = 0; g < G; g++) {
        size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
        double S = mx_blockfma_sum_abs(bp, A->fmt, pa + k0 * ea, B->fmt, pb + k0 * eb, len);
        double Bg = mx_blockfma_bound(bp, len, S, 0);
        double sc = mx_scale_value(s->decode, mxg_scale_byte(A, m, g)) *
                    mx_scale_value(s->decode, mxg_scale_byte(B, n, g));
        sum_b += sc * Bg;
        sum_p += sc * (S + Bg);
    }
    /* binary64 rounding of these sums: a relative 2^-40 covers it */
    sum_b *= 1 + 0x1p-40;
    sum_p *= 1 + 0x1p-40;
    double Bacc = sum_b + mx_gamma32(G > 0 ? G - 1 : 0) * sum_p +
                  0x1p-150 * 2.0 * (double)G * (1.0 + pmax);
    return bound_tail(Bacc, wS, sum_p, w);
}

static void bounds(const mx_gemm_spec *s, const mx_operand *A,
                   const mx_operand *B, const prep *a, const prep *b,
                   const double *exact, double *S, double *sabs_out,
                   double *bound)
{
    size_t M = A->rows, N = B->rows, K = A->K, G = a->G;
    /* S sums G group partials and at most 64 residual terms per group,
     * each exact, all nonnegative, rounded in binary64: the true sum is at
     * most S (1 + (G + 64 G + 2) 2^-52). */
    double infl = 1.0 + (double)(65 * G + 2) * 0x1p-52;
    size_t depth = A->scales ? (MX_BLOCK - 1) + (G - 1) : K - 1;
    for (size_t m = 0; m < M; m++) {
        double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            double sabs = S[i] * infl;
            double pmax = 32.0 * a->amax[m] * b->amax[n];
            double wS = fabs(exact[i]) * (1 + 0x1p-52);
            if (bound)
                bound[i] = s->model.kind == MX_ACC_BLOCK
                               ? bound_block(s, A, B, m, n, wS, w, pmax)
                               : bound_fp32(wS, sabs, w, depth, K, G, pmax);
            if (sabs_out)
                sabs_out[i] = sabs * fabs(w);
        }
    }
}

/* ---- driver -------------------------------------------------------------- */

mx_status mx_gemm(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                  mx_gemm_out *out, mx_gemm_stats *stats)
{
    mx_status st = check_shapes(s, A, B, 0);
    if (st != MX_OK)
        return st;
    size_t M = A->rows, N = B->rows, G = (A->K + MX_BLOCK - 1) / MX_BLOCK;
    prep a, b;
    int wa, wb;
    choose_windows(natural_width(A), natural_width(B), &wa, &wb);
    if ((st = prep_build(A, s->decode, 0, wa, &a)) != MX_OK)
        return st;
    if ((st = prep_build(B, s->decode, 1, wb, &b)) != MX_OK) {
        prep_free(&a);
        return st;
    }
    accum ac = {M, N, G, NULL, NULL, NULL, NULL, 0, NULL, NULL};
    int want_group = (out->model_acc || out->model_out) &&
                     s->model.kind == MX_ACC_FP32_GROUP;
    double *exact = out->exact ? out->exact
                               : ((out->bound || out->sum_abs)
                                      ? malloc(M * N * sizeof *exact) : NULL);
    ac.acc = calloc(M * N, sizeof *ac.acc);
    ac.slow = calloc(M * N, 1);
    ac.big = calloc(M * N, sizeof *ac.big);
    ac.slow_list = malloc(M * N * sizeof *ac.slow_list);
    ac.gacc = want_group ? calloc(M * N, sizeof *ac.gacc) : NULL;
    int want_sabs = out->bound || out->sum_abs;
    ac.sabs = want_sabs ? calloc(M * N, sizeof *ac.sabs) : NULL;
    if (!ac.acc || !ac.slow || !ac.big || !ac.slow_list || (want_group && !ac.gacc) ||
        (want_sabs && !ac.sabs) ||
        (out->bound && !exact)) {
        st = MX_ENOMEM;
        goto done;
    }
    size_t nslow = 0;
    int cg = clog2(G) + 5 + 1;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            if (a.lo[m] > a.hi[m] || b.lo[n] > b.hi[n])
                continue; /* an all-zero side: exact 0 */
            long span = (long)(a.hi[m] - a.lo[m]) + (b.hi[n] - b.lo[n]) + cg;
            if (span > 126) {
                ac.slow[i] = 1;
                mpz_init(ac.big[i]);
                ac.slow_list[nslow++] = i;
            }
        }
    ac.nslow = nslow;
    if ((st = engine_run(s, A, B, &a, &b, &ac)) != MX_OK)
        goto done;
    if (exact)
        for (size_t m = 0; m < M; m++) {
            double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
            for (size_t n = 0; n < N; n++) {
                size_t i = m * N + n;
                int base = a.lo[m] + b.lo[n];
                if (a.lo[m] > a.hi[m] || b.lo[n] > b.hi[n]) {
                    exact[i] = 0.0 * w;
                    continue;
                }
                if (ac.slow[i]) {
                    exact[i] = round_mpz_f64(ac.big[i], base, w);
                    continue;
                }
                __int128 v = (__int128)ac.acc[i];
                unsigned __int128 av = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
                if (w == 1.0) {
                    exact[i] = round_f64(v, base);
                } else if (av < ((unsigned __int128)1 << 100)) {
                    int we;
                    double wm = frexp(w, &we); /* w = wm 2^we, |wm| in [.5,1) */
                    int64_t W = (int64_t)ldexp(wm, 24); /* exact: w is FP32 */
                    exact[i] = round_f64(v * W, base + we - 24);
                } else {
                    mpz_t z;
                    uint64_t limbs[2] = {(uint64_t)av, (uint64_t)(av >> 64)};
                    mpz_init(z);
                    mpz_import(z, 2, -1, sizeof limbs[0], 0, 0, limbs);
                    if (v < 0)
                        mpz_neg(z, z);
                    exact[i] = round_mpz_f64(z, base, w);
                    mpz_clear(z);
                }
            }
        }
    if (out->model_acc || out->model_out) {
        float *macc = out->model_acc ? out->model_acc : malloc(M * N * sizeof *macc);
        if (!macc) {
            st = MX_ENOMEM;
            goto done;
        }
        if (want_group) {
            for (size_t m = 0; m < M; m++)
                for (size_t n = 0; n < N; n++)
                    macc[m * N + n] = s->row_weight
                                          ? ac.gacc[m * N + n] * s->row_weight[m]
                                          : ac.gacc[m * N + n];
        } else if (s->model.kind == MX_ACC_BLOCK) {
            st = mx_gemm_model_direct(s, A, B, macc); /* the unit, element by element */
        } else {
            st = model_seq(s, A, B, macc);
        }
        if (out->model_out)
            for (size_t i = 0; i < M * N; i++)
                out->model_out[i] = mx_bf16_from_float(macc[i]);
        if (!out->model_acc)
            free(macc);
        if (st != MX_OK)
            goto done;
    }
    if (out->bound || out->sum_abs) {
        if (!exact) { /* sum_abs alone: exact not computed */
            st = MX_EINVAL;
            goto done;
        }
        bounds(s, A, B, &a, &b, exact, ac.sabs, out->sum_abs, out->bound);
    }
    if (stats) {
        stats->elements = M * N;
        stats->slow_elements = nslow;
        stats->irregular_groups = a.nirr + b.nirr;
    }
done:
    if (ac.big)
        for (size_t i = 0; i < M * N; i++)
            if (ac.slow && ac.slow[i])
                mpz_clear(ac.big[i]);
    free(ac.acc);
    free(ac.slow);
    free(ac.slow_list);
    free(ac.big);
    free(ac.gacc);
    free(ac.sabs);
    if (exact != out->exact)
        free(exact);
    prep_free(&a);
    prep_free(&b);
    return st;
}
