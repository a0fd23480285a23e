/* fnuz.c -- E4M3FN -> E4M3FNUZ checkpoint normalization (see mxref/fnuz.h). */
#include <math.h>
#include <string.h>
#include "mxref/fnuz.h"

/* out[i] = mx_fn_to_fnuz_byte(in[i]) for n bytes; out may be in itself.  By
 * 64-byte blocks, each loaded whole into vector registers before any of it
 * is stored (no store-to-load round trip through the stack, no overlap
 * test): a pass at memory speed over an expert's weights. */
typedef uint8_t fnuz_v16 __attribute__((vector_size(16)));

static void fnuz_bytes(const uint8_t *in, size_t n, uint8_t *out)
{
    const fnuz_v16 negzero = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                              0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        fnuz_v16 a, b, c, d;
        memcpy(&a, in + i, 16);
        memcpy(&b, in + i + 16, 16);
        memcpy(&c, in + i + 32, 16);
        memcpy(&d, in + i + 48, 16);
        a &= (fnuz_v16)~(a == negzero); /* 0x80 -> 0x00 */
        b &= (fnuz_v16)~(b == negzero);
        c &= (fnuz_v16)~(c == negzero);
        d &= (fnuz_v16)~(d == negzero);
        memcpy(out + i, &a, 16);
        memcpy(out + i + 16, &b, 16);
        memcpy(out + i + 32, &c, 16);
        memcpy(out + i + 48, &d, 16);
    }
    for (; i < n; i++)
        out[i] = mx_fn_to_fnuz_byte(in[i]);
}

mx_status mx_fn_to_fnuz_mx(const uint8_t *vals, size_t n, const uint8_t *scales,
                           size_t nscales, size_t group, uint8_t *out_vals,
                           uint8_t *out_scales, size_t *bad_index)
{
    if (group == 0 || n % group != 0 || nscales != n / group)
        return MX_EINVAL;
    for (size_t i = 0; i < nscales; i++)
        if (scales[i] >= 254) {
            if (bad_index)
                *bad_index = i;
            return MX_ERANGE;
        }
    for (size_t i = 0; i < nscales; i++)
        out_scales[i] = (uint8_t)(scales[i] + 1);
    fnuz_bytes(vals, n, out_vals);
    return MX_OK;
}

mx_status mx_fn_to_fnuz_pertensor(const uint8_t *vals, size_t n, float scale,
                                  uint8_t *out_vals, float *out_scale)
{
    float s2 = scale * 2.0f;
    if (!isfinite(s2) || !isfinite(scale))
        return MX_ERANGE;
    fnuz_bytes(vals, n, out_vals);
    *out_scale = s2;
    return MX_OK;
}

long mx_fnuz_check_preserved(const uint8_t *fn_vals, const uint8_t *fn_scales,
                             const uint8_t *fnuz_vals, const uint8_t *fnuz_scales,
                             size_t n, size_t group)
{
    const mx_format *fn = mx_format_get(MX_E4M3FN);
    const mx_format *uz = mx_format_get(MX_E4M3FNUZ);
    const mx_format *e8 = mx_format_get(MX_E8M0);

    for (size_t i = 0; i < n; i++) {
        size_t g = i / group;
        /* value * scale is exact in binary64: 4-bit significands, exponents
         * within [-137, 136]. */
        double a = mx_decode_double(fn, fn_vals[i]) *
                   mx_decode_double(e8, fn_scales[g]);
        double b = mx_decode_double(uz, fnuz_vals[i]) *
                   mx_decode_double(e8, fnuz_scales[g]);
        if (!(a == b))
            return (long)i;
    }
    return -1;
}
