/* mxquant.c -- MX quantization, dequantization and scale layouts (see
 * mxref/mxquant.h for the rules). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/mxquant.h"
#include "names.h"

mx_quant_params mx_quant_production(mx_format_id elem)
{
    mx_quant_params p;
    memset(&p, 0, sizeof p);
    p.rule = MX_SCALE_PRODUCTION;
    p.elem = elem;
    p.enc = mx_encode_defaults();
    p.amax_floor = 1e-30f;
    p.log2 = MX_LOG2_EXACT;
    return p;
}

mx_quant_params mx_quant_ocp(mx_format_id elem)
{
    mx_quant_params p = mx_quant_production(elem);
    p.rule = MX_SCALE_OCP;
    p.enc.overflow = MX_OVF_SATURATE;
    p.amax_floor = 0;
    return p;
}

mx_quant_params mx_quant_rceil(mx_format_id elem, double max_elem)
{
    mx_quant_params p = mx_quant_production(elem);
    p.rule = MX_SCALE_RCEIL;
    p.amax_floor = 0;
    p.rceil_max = max_elem;
    return p;
}

static const char *const rule_names[] = {"production", "ocp", "rceil"};

const char *mx_scale_rule_name(mx_scale_rule r)
{
    return mxr_name_of(rule_names, 3, (int)r);
}

int mx_scale_rule_by_name(const char *name, mx_scale_rule *out)
{
    int i = mxr_name_index(rule_names, 3, name);
    if (i < 0)
        return -1;
    *out = (mx_scale_rule)i;
    return 0;
}

/* floor(log2(a)) for finite a > 0: the exact binary exponent. */
static int floor_log2(double a)
{
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    return e - 1;
}

static int clamp_s(long x)
{
    return x < 0 ? 0 : x > 254 ? 254 : (int)x;
}

static int params_ok(const mx_quant_params *p)
{
    const mx_format *f = mx_format_get(p->elem);
    return f && f->bits == 8 && f->special != MX_SPECIAL_E8M0 &&
           (unsigned)p->rule <= MX_SCALE_RCEIL && !(p->amax_floor < 0) &&
           !(p->rceil_max < 0);
}

mx_status mx_quant_scale(const mx_quant_params *p, float amax, uint8_t *s)
{
    if (!params_ok(p) || !(amax >= 0) || isinf(amax))
        return MX_EINVAL;
    const mx_format *f = mx_format_get(p->elem);
    switch (p->rule) {
    case MX_SCALE_PRODUCTION: {
        float a = amax < p->amax_floor ? p->amax_floor : amax;
        if (a == 0) {
            *s = 0;
            return MX_OK;
        }
        long x = floor_log2(a);
        if (p->log2 == MX_LOG2_FP32)
            x = (long)floorf((float)log2((double)a));
        *s = (uint8_t)clamp_s(x + 127);
        return MX_OK;
    }
    case MX_SCALE_OCP:
        if (amax == 0) {
            *s = 0;
            return MX_OK;
        }
        *s = (uint8_t)clamp_s((long)floor_log2(amax) - f->emax + 127);
        return MX_OK;
    case MX_SCALE_RCEIL: {
        double mx = p->rceil_max > 0 ? p->rceil_max
                                     : mx_decode_double(f, f->max_finite_code);
        if (amax == 0) {
            *s = 0;
            return MX_OK;
        }
        /* smallest X with amax <= mx * 2^X (exact comparisons in binary64) */
        long x = floor_log2(amax) - floor_log2(mx) - 1;
        while (ldexp(mx, (int)x) < amax)
            x++;
        while (ldexp(mx, (int)x - 1) >= amax)
            x--;
        *s = (uint8_t)clamp_s(x + 127);
        return MX_OK;
    }
    }
    return MX_EINVAL;
}

/* Encoding tables for (format, options), built on first use and kept. */
static pthread_mutex_t enc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct enc_cache {
    mx_format_id id;
    mx_encode_opts o;
    mx_enc8_table *t;
} enc_cache[16];

static const mx_enc8_table *enc_table(const mx_format *f, const mx_encode_opts *o)
{
    const mx_enc8_table *r = NULL;
    if (o->round == MX_RSTOCH)
        return NULL;
    pthread_mutex_lock(&enc_lock);
    for (int i = 0; i < 16 && !r; i++) {
        struct enc_cache *c = &enc_cache[i];
        if (c->t && c->id == f->id && c->o.round == o->round &&
            c->o.overflow == o->overflow) {
            r = c->t;
        } else if (!c->t) {
            mx_enc8_table *t = malloc(sizeof *t);
            if (t && mx_enc8_table_init(t, f, o) == MX_OK) {
                c->id = f->id;
                c->o = *o;
                c->t = t;
                r = t;
            } else {
                free(t);
            }
            break;
        }
    }
    pthread_mutex_unlock(&enc_lock);
    return r;
}

mx_status mx_quantize_f32(const mx_quant_params *p, const float *x, size_t rows,
                          size_t K, size_t ld, uint8_t *q, uint8_t *scales,
                          size_t *bad_index)
{
    if (!params_ok(p) || K % MX_BLOCK != 0 || ld < K)
        return MX_EINVAL;
    const mx_format *f = mx_format_get(p->elem);
    const mx_enc8_table *tab = enc_table(f, &p->enc);
    size_t G = K / MX_BLOCK;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        for (size_t k = 0; k < K; k++)
            if (!isfinite(xr[k])) {
                if (bad_index)
                    *bad_index = r * ld + k;
                return MX_ERANGE;
            }
        for (size_t g = 0; g < G; g++) {
            const float *blk = xr + g * MX_BLOCK;
            float amax = 0;
            for (int i = 0; i < MX_BLOCK; i++)
                amax = fabsf(blk[i]) > amax ? fabsf(blk[i]) : amax;
            uint8_t s;
            mx_status st = mx_quant_scale(p, amax, &s);
            if (st != MX_OK)
                return st;
            scales[r * G + g] = s;
            double sc = ldexp(1.0, 127 - (int)s);
            for (int i = 0; i < MX_BLOCK; i++) {
                uint32_t c;
                double v = (double)blk[i] * sc; /* exact */
                float vf = (float)v;
                if (tab && (double)vf == v) { /* a float: table lookup */
                    uint32_t bits;
                    memcpy(&bits, &vf, sizeof bits);
                    c = mx_enc8_f32bits(tab, bits);
                } else if ((st = mx_encode_double(f, v, &p->enc, &c)) != MX_OK) {
                    return st;
                }
                q[r * K + g * MX_BLOCK + (size_t)i] = (uint8_t)c;
            }
        }
    }
    return MX_OK;
}

mx_status mx_quantize_bf16(const mx_quant_params *p, const uint16_t *x,
                           size_t rows, size_t K, size_t ld, uint8_t *q,
                           uint8_t *scales, size_t *bad_index)
{
    if (!params_ok(p) || K % MX_BLOCK != 0 || ld < K)
        return MX_EINVAL;
    float row[MX_BLOCK * 64];
    /* one row at a time through the FP32 path (BF16 -> FP32 is exact) */
    for (size_t r = 0; r < rows; r++) {
        for (size_t k0 = 0; k0 < K; k0 += sizeof row / sizeof row[0]) {
            size_t n = K - k0 < sizeof row / sizeof row[0] ? K - k0
                                                            : sizeof row / sizeof row[0];
            for (size_t k = 0; k < n; k++)
                row[k] = mx_bf16_to_float(x[r * ld + k0 + k]);
            size_t bad;
            mx_status st = mx_quantize_f32(p, row, 1, n, n, q + r * K + k0,
                                           scales + r * (K / MX_BLOCK) + k0 / MX_BLOCK,
                                           &bad);
            if (st == MX_ERANGE && bad_index)
                *bad_index = r * ld + k0 + bad;
            if (st != MX_OK)
                return st;
        }
    }
    return MX_OK;
}

double mx_scale_value(mx_e8m0_decode d, uint8_t s)
{
    return d == MX_E8M0_PRODUCTION ? mx_e8m0_decode_production(s)
                                   : mx_e8m0_decode_spec(s);
}

void mx_dequant_exact(mx_format_id elem, mx_e8m0_decode d, const uint8_t *q,
                      const uint8_t *scales, size_t rows, size_t K, double *out)
{
    const mx_format *f = mx_format_get(elem);
    size_t G = K / MX_BLOCK;
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < K; k++)
            out[r * K + k] = mx_decode_double(f, q[r * K + k]) *
                             mx_scale_value(d, scales[r * G + k / MX_BLOCK]);
}

/* BF16 RNE of value(c) * 2^(s - 127) for every (scale s, code c) of an
 * 8-bit format, index s << 8 | c, the top bit (0x10000 of the entry) set
 * where the BF16 value is not exact: built once per format, on first use,
 * by the direct computation (v has at most 4 significant bits: when it is
 * a float, BF16 RNE of that float is BF16 RNE of v). */
static _Atomic(const uint32_t *) dq_tabs[MX_FORMAT_COUNT];
static pthread_mutex_t dq_mu = PTHREAD_MUTEX_INITIALIZER;

static const uint32_t *dq_table(mx_format_id elem)
{
    const uint32_t *t = dq_tabs[elem];
    if (t)
        return t;
    pthread_mutex_lock(&dq_mu);
    t = dq_tabs[elem];
    if (!t) {
        uint32_t *n = malloc(65536 * sizeof *n);
        if (n) {
            const mx_format *f = mx_format_get(elem), *bf = mx_format_get(MX_BF16);
            for (int sc = 0; sc < 256; sc++) {
                double pw = mx_e8m0_decode_spec((uint8_t)sc);
                for (int c = 0; c < 256; c++) {
                    double v = mx_decode_double(f, (uint32_t)c) * pw;
                    float vf = (float)v;
                    uint32_t b = (double)vf == v ? mx_bf16_from_float(vf) : mx_encode_rne(bf, v);
                    int inexact = !isnan(v) && (double)mx_bf16_to_float((uint16_t)b) != v;
                    n[sc << 8 | c] = (b & 0xFFFF) | (uint32_t)inexact << 16;
                }
            }
            dq_tabs[elem] = n;
        }
        t = n;
    }
    pthread_mutex_unlock(&dq_mu);
    return t;
}

size_t mx_dequant_bf16(mx_format_id elem, const uint8_t *q, const uint8_t *scales,
                       size_t rows, size_t K, uint16_t *out)
{
    size_t G = K / MX_BLOCK, inexact = 0;
    const uint32_t *t = dq_table(elem);
    if (!t) { /* memory short: the direct computation */
        const mx_format *f = mx_format_get(elem), *bf = mx_format_get(MX_BF16);
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < K; k++) {
                double v = mx_decode_double(f, q[r * K + k]) *
                           mx_e8m0_decode_spec(scales[r * G + k / MX_BLOCK]);
                uint32_t c = mx_encode_rne(bf, v);
                inexact += !isnan(v) && (double)mx_bf16_to_float((uint16_t)c) != v;
                out[r * K + k] = (uint16_t)c;
            }
        return inexact;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < K; k++) {
            uint32_t e = t[(uint32_t)scales[r * G + k / MX_BLOCK] << 8 | q[r * K + k]];
            inexact += e >> 16;
            out[r * K + k] = (uint16_t)e;
        }
    return inexact;
}

void mx_scales_pack(const uint8_t *rows, size_t E, size_t N, size_t G,
                    uint8_t *packed)
{
    for (size_t e = 0; e < E; e++)
        for (size_t n = 0; n < N; n++)
            for (size_t g = 0; g < G; g++)
                packed[(e * G + g) * N + n] = rows[(e * N + n) * G + g];
}

void mx_scales_unpack(const uint8_t *packed, size_t E, size_t N, size_t G,
                      uint8_t *rows)
{
    for (size_t e = 0; e < E; e++)
        for (size_t n = 0; n < N; n++)
            for (size_t g = 0; g < G; g++)
                rows[(e * N + n) * G + g] = packed[(e * G + g) * N + n];
}
