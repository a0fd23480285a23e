/* blockfma_mag.c -- per-code magnitudes for the block-FMA bounds
 * (blockfma_fx.h): the table of every 8-bit format under every in_fmt,
 * built before main like the decode table of blockfma.c, so concurrent
 * callers never race; and the switch that turns the fast paths off. */
#include <math.h>
#include <stdlib.h>
#include "blockfma_fx.h"

int mxb_slow;

void mxb_set_slow(int on) { mxb_slow = on != 0; }

mxb_mag mxb_mag_of(const mx_format *f, int in_fmt, uint32_t code)
{
    int s, x;
    uint32_t m;
    mxb_mag r = {0.0, 0.0, 0};
    mx_class k = mx_decode_fields(f, code, &s, &m, &x);
    if (k >= MX_CLASS_INF) {
        r.cls = 2;
        return r;
    }
    if (k == MX_CLASS_ZERO)
        return r;
    int e = k == MX_CLASS_NORMAL ? x + f->mbits : f->emin;
    if (in_fmt > 0 && in_fmt <= MX_FORMAT_COUNT) {
        int wmin = mx_format_get((mx_format_id)(in_fmt - 1))->emin;
        int l = x + 63 - __builtin_clzll(m);
        e = l > wmin ? l : wmin;
    }
    r.cls = 1;
    r.v = ldexp((double)m, x);
    r.p = ldexp(1.0, e);
    return r;
}

int mxb_mag_hi(const mx_format *f, int in_fmt)
{
    int hi = f->emax;
    if (in_fmt > 0 && in_fmt <= MX_FORMAT_COUNT) {
        int wmin = mx_format_get((mx_format_id)(in_fmt - 1))->emin;
        hi = wmin > hi ? wmin : hi;
    }
    return hi + 1;
}

int mxb_wsum_exact(const mx_format *fa, const mx_format *fb, int in_fmt, size_t n)
{
    if (!fa || !fb || fa->bits > 16 || fb->bits > 16 || n == 0)
        return 0;
    int lg = 0; /* ceil(log2 n) */
    while (lg < 64 && ((size_t)1 << lg) < n)
        lg++;
    int bits = mxb_mag_hi(fa, in_fmt) - (fa->emin - fa->mbits) + mxb_mag_hi(fb, in_fmt) -
               (fb->emin - fb->mbits);
    return bits + lg <= 53;
}

static mxb_mag mag8[MX_FORMAT_COUNT][MX_FORMAT_COUNT + 1][256];
static unsigned char have8[MX_FORMAT_COUNT];

__attribute__((constructor)) static void mag8_init(void)
{
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        if (f->bits != 8)
            continue;
        for (int w = 0; w <= MX_FORMAT_COUNT; w++)
            for (uint32_t c = 0; c < 256; c++)
                mag8[id][w][c] = mxb_mag_of(f, w, c);
        have8[id] = 1;
    }
}

/* 16-bit formats: built on first use (65536 entries each), published
 * with an atomic compare-and-swap so that racing builders agree. */
static mxb_mag *mag16[MX_FORMAT_COUNT][MX_FORMAT_COUNT + 1];

static const mxb_mag *mag16_get(const mx_format *f, int in_fmt)
{
    mxb_mag *t = __atomic_load_n(&mag16[f->id][in_fmt], __ATOMIC_ACQUIRE);
    if (t)
        return t;
    t = malloc(65536 * sizeof *t);
    if (!t)
        return NULL;
    for (uint32_t c = 0; c < 65536; c++)
        t[c] = mxb_mag_of(f, in_fmt, c);
    mxb_mag *none = NULL;
    if (!__atomic_compare_exchange_n(&mag16[f->id][in_fmt], &none, t, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        free(t);
        return none;
    }
    return t;
}

const mxb_mag *mxb_mag_table(const mx_format *f, int in_fmt)
{
    if (mxb_slow || in_fmt < 0 || in_fmt > MX_FORMAT_COUNT)
        return NULL;
    if (f->bits == 16)
        return mag16_get(f, in_fmt);
    if (f->bits != 8 || !have8[f->id])
        return NULL;
    return mag8[f->id][in_fmt];
}
