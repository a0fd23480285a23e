/* mxref/fnuz.h -- checkpoint normalization from E4M3FN to E4M3FNUZ, exactly
 * as the gfx94x production loader does it (facts §2).
 *
 * The same byte means half as much in FNUZ (bias 8) as in FN (bias 7), so the
 * loader doubles the scale: MX tensors get scale byte + 1, per-tensor FP8
 * gets its float scale times 2.  The FN byte 0x80 (-0) is the FNUZ NaN and is
 * rewritten to 0x00.  FN NaN bytes 0x7F/0xFF are NOT rewritten: in FNUZ they
 * read as +-240, so such a tensor is not value-preserved (and
 * mx_fnuz_check_preserved reports it).
 */
#ifndef MXREF_FNUZ_H
#define MXREF_FNUZ_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value byte rewrite: 0x80 -> 0x00, every other byte unchanged. */
static inline uint8_t mx_fn_to_fnuz_byte(uint8_t b) { return b == 0x80 ? 0 : b; }

/* MX tensor: n value bytes with one E8M0 scale per `group` consecutive values
 * (n % group == 0, nscales == n / group), in the layout [rows, K] values and
 * [rows, K/group] scales.  Writes out_vals and out_scales (which may alias
 * the inputs).  A scale byte >= 254 is refused (254 + 1 would be the NaN
 * byte): returns MX_ERANGE with its index in *bad_index and writes nothing. */
mx_status mx_fn_to_fnuz_mx(const uint8_t *vals, size_t n, const uint8_t *scales,
                           size_t nscales, size_t group, uint8_t *out_vals,
                           uint8_t *out_scales, size_t *bad_index);

/* Per-tensor FP8: value bytes rewritten, *out_scale = 2 * scale (exact in
 * binary32 unless it overflows, which returns MX_ERANGE). */
mx_status mx_fn_to_fnuz_pertensor(const uint8_t *vals, size_t n, float scale,
                                  uint8_t *out_vals, float *out_scale);

/* Proves value preservation of an MX conversion under the spec E8M0 decode:
 * FN value * 2^(s-127) == FNUZ value * 2^(s'-127) for every element (NaN
 * never equals anything; -0 equals +0).  Returns the first index that
 * differs, or -1 when every element is preserved. */
long mx_fnuz_check_preserved(const uint8_t *fn_vals, const uint8_t *fn_scales,
                             const uint8_t *fnuz_vals, const uint8_t *fnuz_scales,
                             size_t n, size_t group);

#ifdef __cplusplus
}
#endif
#endif
