/* mxref/mxquant.h -- MX quantization: FP32/BF16 tensors to FP8 elements plus
 * one E8M0 scale per 32 consecutive values along the last axis, and back.
 *
 * Scale rules (X is the scale exponent, the scale byte is s = X + 127):
 *   production  X = floor(log2(max(amax, amax_floor))), s clamped to
 *               [0, 254]: the gfx94x rule of facts §3 (no "- emax"): the
 *               block max lands in [1, 2) and elements below ~amax*2^-10
 *               flush to zero.  floor(log2) is the exact exponent of the
 *               FP32 amax (MX_LOG2_EXACT) or floor of log2 rounded to FP32
 *               (MX_LOG2_FP32, what an FP32 log2 followed by floor gives
 *               when amax is just below a power of two).
 *   ocp         X = floor(log2(amax)) - emax_elem (OCP MX v1.0), elements
 *               saturate; an all-zero block gets s = 0.
 *   rceil       X = ceil(log2(amax / max_elem)); max_elem is a parameter
 *               (vLLM uses 448, which overflows E4M3FNUZ: a real hazard).
 * Elements: q = encode(x * 2^-X) with the given rounding and overflow
 * policy (production: RNE, default policy = NaN on overflow, "no clamp").
 * x * 2^-X is exact in binary64 for every FP32 x and X in [-127, 127].
 *
 * Scale layouts: MX_LAYOUT_ROWS is [E, N, K/32] (checkpoint), and
 * MX_LAYOUT_PACKED is [E, K/32, N] (gfx94x production load layout).
 */
#ifndef MXREF_MXQUANT_H
#define MXREF_MXQUANT_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/format.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MX_BLOCK 32

typedef enum { MX_SCALE_PRODUCTION = 0, MX_SCALE_OCP, MX_SCALE_RCEIL } mx_scale_rule;
typedef enum { MX_LOG2_EXACT = 0, MX_LOG2_FP32 } mx_log2_model;
typedef enum { MX_E8M0_SPEC = 0, MX_E8M0_PRODUCTION } mx_e8m0_decode;
typedef enum { MX_LAYOUT_ROWS = 0, MX_LAYOUT_PACKED } mx_scale_layout;

typedef struct {
    mx_scale_rule rule;
    mx_format_id elem;      /* element format: any 8-bit format but E8M0   */
    mx_encode_opts enc;     /* element rounding and overflow policy        */
    float amax_floor;       /* production: amax clamped below (1e-30)      */
    mx_log2_model log2;     /* production: how floor(log2 amax) is taken   */
    double rceil_max;       /* rceil: max_elem; 0 = element max finite     */
} mx_quant_params;

/* The production rule for an element format (E4M3FNUZ on gfx94x). */
mx_quant_params mx_quant_production(mx_format_id elem);
/* The OCP v1.0 rule (saturating elements) and the rceil rule. */
mx_quant_params mx_quant_ocp(mx_format_id elem);
mx_quant_params mx_quant_rceil(mx_format_id elem, double max_elem);
const char *mx_scale_rule_name(mx_scale_rule r);
int mx_scale_rule_by_name(const char *name, mx_scale_rule *out); /* 0 = ok */

/* Scale byte of one block from its FP32 amax (>= 0, finite). */
mx_status mx_quant_scale(const mx_quant_params *p, float amax, uint8_t *s);

/* Quantizes rows x K values (K % 32 == 0) stored row-major with row stride
 * ld >= K.  Writes q (rows x K, stride K) and scales (rows x K/32, stride
 * K/32).  MX_EINVAL for bad parameters; MX_ERANGE (nothing written beyond
 * the offending row) for a non-finite input, with its flat index in
 * *bad_index when bad_index is not NULL. */
mx_status mx_quantize_f32(const mx_quant_params *p, const float *x, size_t rows,
                          size_t K, size_t ld, uint8_t *q, uint8_t *scales,
                          size_t *bad_index);
mx_status mx_quantize_bf16(const mx_quant_params *p, const uint16_t *x,
                           size_t rows, size_t K, size_t ld, uint8_t *q,
                           uint8_t *scales, size_t *bad_index);

/* Scale value under a decode: spec 2^(s-127) (255 -> NaN) or production
 * (0 -> 0.0, 255 -> +inf). */
double mx_scale_value(mx_e8m0_decode d, uint8_t s);

/* Exact dequantization: out[i] = value(q[i]) * scale (binary64, exact). */
void mx_dequant_exact(mx_format_id elem, mx_e8m0_decode d, const uint8_t *q,
                      const uint8_t *scales, size_t rows, size_t K, double *out);
/* Production's BF16 fallback weights: bf16_rne(value * 2^(s-127)) (spec
 * decode, as the load-time conversion computes the power of two).
 * Returns the number of elements that were not exact in BF16. */
size_t mx_dequant_bf16(mx_format_id elem, const uint8_t *q, const uint8_t *scales,
                       size_t rows, size_t K, uint16_t *out);

/* Scale layout conversion for E experts, N rows, G = K/32 groups:
 * rows [E][N][G] <-> packed [E][G][N].  in and out must not alias. */
void mx_scales_pack(const uint8_t *rows, size_t E, size_t N, size_t G,
                    uint8_t *packed);
void mx_scales_unpack(const uint8_t *packed, size_t E, size_t N, size_t G,
                      uint8_t *rows);

#ifdef __cplusplus
}
#endif
#endif
