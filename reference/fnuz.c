/* fnuz.c -- E4M3FN -> E4M3FNUZ checkpoint normalization (see mxref/fnuz.h). */
#include <math.h>
#include <string.h>
#include "mxref/fnuz.h"

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
    /* by 64-byte blocks through a local copy: out_vals may alias vals, and
     * the block loop then vectorizes without a runtime overlap test */
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint8_t t[64];
        memcpy(t, vals + i, sizeof t);
        for (int j = 0; j < 64; j++)
            t[j] = mx_fn_to_fnuz_byte(t[j]);
        memcpy(out_vals + i, t, sizeof t);
    }
    for (; i < n; i++)
        out_vals[i] = mx_fn_to_fnuz_byte(vals[i]);
    return MX_OK;
}

mx_status mx_fn_to_fnuz_pertensor(const uint8_t *vals, size_t n, float scale,
                                  uint8_t *out_vals, float *out_scale)
{
    float s2 = scale * 2.0f;
    if (!isfinite(s2) || !isfinite(scale))
        return MX_ERANGE;
    for (size_t i = 0; i < n; i++)
        out_vals[i] = mx_fn_to_fnuz_byte(vals[i]);
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
