/* gemm_prep.c -- operand preparation for the exact engine (gemm_engine.c).
 *
 * Every element value of an 8- or 16-bit format is M * 2^E with |M| < 2^11.
 * Within one (row, 32-group) let u be the lowest exponent E of a nonzero
 * value; when every value is below 2^(u + window) the group is "regular" and
 * its values are exact integers I = M * 2^(E-u) below 2^window, stored as
 * binary64 ("ints", the BLAS operands).  The two windows add up to at most
 * 48 bits, so a 32-product group sum of ints stays below 2^53 and is exact
 * in binary64 in any order.  Irregular groups (values spread over more than
 * the window) keep their bits >= 2^u as ints and the bits below as exact
 * residual entries (gemm_residual.c).  Fixed-unit formats (E4M3: 18 binades)
 * are never irregular and come straight from a table.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"

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

void mxg_prep_free(mxg_prep *p)
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

static mx_status prep_alloc(mxg_prep *p, int side, size_t R, size_t K, size_t G)
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
        mxg_prep_free(p);
        return MX_ENOMEM;
    }
    return MX_OK;
}

static int res_push(mxg_prep *p, int32_t m, int e, unsigned k)
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
                            const mxg_code_table *ct, int unit, int topmax,
                            mxg_prep *p)
{
    int bad = 0;
    size_t R = p->rows, K = p->K, G = p->G;
    double ival[256], iabs[256], aval[256];
    for (int c = 0; c < 256; c++) {
        ival[c] = ct->m[c] ? (double)ct->m[c] * mxg_pow2(ct->e[c] - unit) : 0.0;
        iabs[c] = fabs(ival[c]);
        aval[c] = ct->m[c] ? fabs((double)ct->m[c]) * mxg_pow2(ct->e[c]) : 0.0;
    }
    for (size_t r = 0; r < R; r++) {
        const uint8_t *codes = (const uint8_t *)o->codes + mxg_row(o, r) * o->ld;
        double *ir = p->ints + r * K, *ar = p->absints + r * K;
        int lo = INT_MAX, hi = INT_MIN;
        double amax = 0;
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
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
    const mxg_code_table *ct = mxg_code_table_get(o->fmt);
    if (!ct)
        return 24;
    int unit, topmax;
    if (mxg_fixed_unit(ct, &unit, &topmax))
        return topmax - unit;
    size_t K = o->K, G = mxg_groups(K);
    int w = 0;
    for (size_t r = 0; r < o->rows; r++)
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
            int umin = INT_MAX, top = INT_MIN;
            if (ct->ordered16 && o->fmt->bits == 16) {
                /* the group's widest magnitude is its top; a group with a
                 * NaN or inf code the slow way */
                uint16_t mx;
                const uint16_t *c = (const uint16_t *)o->codes + mxg_row(o, r) * o->ld + k0;
                umin = mxg_scan16(c, len, ct->e, &mx);
                if (mx < ct->bad_from) {
                    if (mx && ct->top[mx] - umin > w)
                        w = ct->top[mx] - umin;
                    continue;
                }
                umin = INT_MAX;
            }
            for (size_t i = 0; i < len; i++) {
                uint32_t c = mxg_code(o, r, k0 + i);
                if (!ct->m[c])
                    continue;
                umin = ct->e[c] < umin ? ct->e[c] : umin;
                top = ct->top[c] > top ? ct->top[c] : top;
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
                            int window, mxg_prep *p)
{
    size_t R = o->rows, K = o->K, G = mxg_groups(K);
    const mxg_code_table *ct = mxg_code_table_get(o->fmt);
    if (!ct)
        return MX_ENOMEM;
    if (prep_alloc(p, side, R, K, G) != MX_OK)
        return MX_ENOMEM;
    int unit, topmax;
    if (mxg_fixed_unit(ct, &unit, &topmax)) {
        mx_status st = prep_fixed(o, d, ct, unit, topmax, p);
        if (st != MX_OK)
            mxg_prep_free(p);
        return st;
    }
    memset(p->ints, 0, R * K * sizeof *p->ints);
    memset(p->absints, 0, R * K * sizeof *p->absints);
    int32_t M[MX_BLOCK];
    int E[MX_BLOCK];
    for (size_t r = 0; r < R; r++) {
        int lo = INT_MAX, hi = INT_MIN;
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
            int sx = mxg_scale_exp(o, d, r, g);
            int umin = INT_MAX, top = INT_MIN;
            for (size_t i = 0; i < len; i++) {
                uint32_t c = mxg_code(o, r, k0 + i);
                if (ct->bad[c]) {
                    mxg_prep_free(p);
                    return MX_ERANGE;
                }
                M[i] = ct->m[c];
                E[i] = ct->e[c];
                if (!M[i])
                    continue;
                double av = (double)abs(M[i]) * mxg_pow2(E[i]);
                p->amax[r] = av > p->amax[r] ? av : p->amax[r];
                umin = E[i] < umin ? E[i] : umin;
                top = ct->top[c] > top ? ct->top[c] : top;
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
                    p->ints[r * K + k0 + i] = (double)M[i] * mxg_pow2(E[i] - u);
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
                    mxg_prep_free(p);
                    return MX_ENOMEM;
                }
            }
            p->res_off[r * G + g + 1] = p->nres;
        }
        p->lo[r] = lo;
        p->hi[r] = hi;
    }
    return MX_OK;
}

void mxg_windows(const mx_operand *A, const mx_operand *B, int *wa, int *wb)
{
    choose_windows(natural_width(A), natural_width(B), wa, wb);
}

mx_status mxg_prep_operands(const mx_gemm_spec *s, const mx_operand *A,
                            const mx_operand *B, mxg_prep *a, mxg_prep *b)
{
    int wa, wb;
    mxg_windows(A, B, &wa, &wb);
    return mxg_prep_operands_w(s, A, B, wa, wb, a, b);
}

mx_status mxg_prep_operands_w(const mx_gemm_spec *s, const mx_operand *A,
                              const mx_operand *B, int wa, int wb, mxg_prep *a,
                              mxg_prep *b)
{
    mx_status st;
    if ((st = prep_build(A, s->decode, 0, wa, a)) != MX_OK)
        return st;
    if ((st = prep_build(B, s->decode, 1, wb, b)) != MX_OK) {
        mxg_prep_free(a);
        return st;
    }
    return MX_OK;
}

int mxg_natural_width(const mx_operand *o)
{
    return natural_width(o);
}

void mxg_choose_windows(int na, int nb, int *wa, int *wb)
{
    choose_windows(na, nb, wa, wb);
}
