/* fnuz.c -- E4M3FN -> E4M3FNUZ checkpoint normalization (see mxref/fnuz.h). */
#include <math.h>
#include <string.h>
#include "mxref/fnuz.h"

/* out[i] = mx_fn_to_fnuz_byte(in[i]) for n bytes; out may be in itself.  By
 * 64-byte blocks, each loaded whole into vectors before any of it is
 * stored (no store-to-load round trip through the stack, no overlap
 * test): two 32-byte vectors (AVX2; four 16-byte halves on the baseline)
 * -- a pass near memory speed over an expert's weights. */
typedef uint8_t fnuz_v32 __attribute__((vector_size(32)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FNUZ_HOT __attribute__((optimize("O3"), target_clones("avx2", "default")))
#else
#define FNUZ_HOT
#endif

static FNUZ_HOT void fnuz_bytes(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        fnuz_v32 a, b;
        memcpy(&a, in + i, 32);
        memcpy(&b, in + i + 32, 32);
        a &= (fnuz_v32)~(a == 0x80); /* 0x80 -> 0x00 */
        b &= (fnuz_v32)~(b == 0x80);
        memcpy(out + i, &a, 32);
        memcpy(out + i + 32, &b, 32);
    }
    for (; i < n; i++)
        out[i] = mx_fn_to_fnuz_byte(in[i]);
}

/* out[i] = s[i] + 1 for n scale bytes, each below 254 (checked by the
 * caller's scan): 1 when one is 254 or more (nothing stored then). */
static FNUZ_HOT int fnuz_scales(const uint8_t *s, size_t n, uint8_t *out)
{
    uint8_t mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = s[i] > mx ? s[i] : mx;
    if (mx >= 254)
        return 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(s[i] + 1);
    return 0;
}

mx_status mx_fn_to_fnuz_mx(const uint8_t *vals, size_t n, const uint8_t *scales,
                           size_t nscales, size_t group, uint8_t *out_vals,
                           uint8_t *out_scales, size_t *bad_index)
{
    if (group == 0 || n % group != 0 || nscales != n / group)
        return MX_EINVAL;
    if (fnuz_scales(scales, nscales, out_scales)) {
        for (size_t i = 0; i < nscales; i++) /* the first one past E8M0's range */
            if (scales[i] >= 254) {
                if (bad_index)
                    *bad_index = i;
                break;
            }
        return MX_ERANGE;
    }
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
