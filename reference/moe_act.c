/* moe_act.c -- the clamp-SwiGLU activation and the quantization of values
 * that are known only within an interval.
 *
 * act = g * sigmoid(alpha g) * (u + 1) with g = min(gate, c), u = clamp(up,
 * -c, c), alpha = FP32 1.702.  The binary64 evaluation here is within
 * 2^-50 |act| of the real value (g and u are BF16, alpha g is exact in
 * binary64; exp is within one binary64 ulp; five more operations).
 *
 * An FP32 evaluation a32 in production order (z' = RN32(alpha g), s =
 * sigmoid(z') to within sigmoid_ulps = k ulps, t = RN32(g s), v =
 * RN32(u + 1), a32 = RN32(t v)) is bounded rigorously (docs/bounds.md,
 * "SwiGLU"), with u = 2^-24 and eta = 2^-150:
 *   sigma(z) >= 2^-126:  |a32 - act| <= (S (1 + 2 S) + 2^-50) |act| + 16 eta,
 *                        S = rho + 2 k u + 3 u (>= (1 + rho)(1 + 2ku)(1 + u)^3 - 1),
 *                        rho = |z| u (1 - sigma(z)) (1 + 2^-16)
 *     (rounding z moves ln sigma by at most |z' - z| sup (1 - sigma) over
 *     [z, z'], and that sup is within (1 + 2^-16) of 1 - sigma(z) since
 *     |z' - z| <= 2^-17 there; a k-ulp sigmoid is within 2 k u relative,
 *     since one ulp is at most 2 u of a normal value; three more roundings;
 *     underflow of the products adds at most (8 + 1 + 1) eta);
 *   sigma(z) < 2^-120 (exp(-z) may overflow, the quotient be subnormal: an
 *     FP32 sigmoid may be anything in [0, 2^-125]): add
 *     |g (u + 1)| 2^-125 (1 + 4u); below 2^-126 this absolute term, |act|
 *     and 16 eta make the whole bound.
 * The binary64 value is evaluated with outward inflation 1 + 2^-48.
 *
 * mx_quant_interval runs its rows in blocks on the worker pool (mxref/pool.h):
 * rows are independent, so the bytes do not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/moe.h"
#include "mxref/pool.h"

void mx_swiglu_exact(const mx_moe_shape *s, const uint16_t *g1, size_t rows,
                     size_t I, double sigmoid_ulps, double *act, double *bound)
{
    const double u = 0x1p-24, c = s->clamp, alpha = (double)s->alpha;
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < I; i++) {
            double g = mx_bf16_to_float(g1[r * 2 * I + i]);
            double up = mx_bf16_to_float(g1[r * 2 * I + I + i]);
            g = g < c ? g : c;
            up = up < -c ? -c : up > c ? c : up;
            double z = alpha * g; /* exact: 24 x 8 significant bits */
            double sg = 1.0 / (1.0 + exp(-z));
            double a = g * sg * (up + 1.0);
            act[r * I + i] = a;
            if (bound) {
                const double eta = 0x1p-150, k = sigmoid_ulps;
                double b = 16 * eta;
                if (sg >= 0x1p-126) {
                    double rho = fabs(z) * u * (1 - sg) * (1 + 0x1p-16);
                    /* (1 + rho)(1 + 2ku)(1 + u)^3 - 1 <= S (1 + 2S) for
                     * S = rho + 2ku + 3u <= 2^-10: no cancellation */
                    double S = rho + 2 * k * u + 3 * u;
                    double rel = S * (1 + 2 * S) + 0x1p-50;
                    b += fabs(a) * rel;
                } else {
                    b += fabs(a);
                }
                if (sg < 0x1p-120)
                    b += fabs(g * (up + 1.0)) * 0x1p-125 * (1 + 4 * u);
                b *= 1 + 0x1p-48;
                bound[r * I + i] = b;
            }
        }
}

void mx_stage_quant_free(mx_stage_quant *q)
{
    free(q->q);
    free(q->s);
    free(q->q_alt);
    free(q->s_alt);
    free(q->q_under_alt);
    free(q->q_under_alt2);
    memset(q, 0, sizeof *q);
}

/* RNE code of v * 2^-X in E4M3FNUZ (production element rounding). */
static uint8_t code_at(double v, int X)
{
    return (uint8_t)mx_encode_rne(mx_format_get(MX_E4M3FNUZ), ldexp(v, -X));
}

/* Rows [r0, r1) of mx_quant_interval; *amb_groups counts their ambiguous
 * groups. */
static mx_status quant_rows(const mx_quant_params *p, const double *act,
                            const double *bound, size_t r0, size_t r1, size_t cols,
                            mx_stage_quant *out, size_t *amb_groups)
{
    size_t G = cols / MX_BLOCK;
    float v[MX_BLOCK];
    *amb_groups = 0;
    for (size_t r = r0; r < r1; r++)
        for (size_t g = 0; g < G; g++) {
            size_t b0 = r * cols + g * MX_BLOCK;
            float amin = 0, amax = 0;
            for (int i = 0; i < MX_BLOCK; i++) {
                double a = act[b0 + (size_t)i], e = bound ? bound[b0 + (size_t)i] : 0;
                if (!isfinite(a))
                    return MX_ERANGE;
                v[i] = (float)a;
                /* the FP32 amax lies in [max(|a| - e), max(|a| + e)], both
                 * rounded outward to FP32 */
                double lo = fabs(a) - e > 0 ? fabs(a) - e : 0, hi = fabs(a) + e;
                float lo32 = (float)lo, hi32 = (float)hi;
                if ((double)lo32 > lo)
                    lo32 = nextafterf(lo32, 0);
                if ((double)hi32 < hi)
                    hi32 = nextafterf(hi32, INFINITY);
                amin = lo32 > amin ? lo32 : amin;
                amax = hi32 > amax ? hi32 : amax;
            }
            uint8_t s, s_lo, s_hi;
            mx_quantize_f32(p, v, 1, MX_BLOCK, MX_BLOCK, out->q + b0,
                            out->s + r * G + g, NULL);
            s = out->s[r * G + g];
            mx_quant_scale(p, amin, &s_lo);
            mx_quant_scale(p, amax, &s_hi);
            uint8_t s_alt = s_lo != s ? s_lo : s_hi;
            out->s_alt[r * G + g] = s_alt;
            int amb = s_alt != s;
            for (int i = 0; i < MX_BLOCK; i++) {
                size_t j = b0 + (size_t)i;
                double a = act[j], e = bound ? bound[j] : 0;
                uint8_t c1 = code_at(a - e, (int)s - 127), c2 = code_at(a + e, (int)s - 127);
                out->q_alt[j] = c1 != out->q[j] ? c1 : c2;
                amb |= out->q_alt[j] != out->q[j];
                out->q_under_alt[j] = code_at(a - e, (int)s_alt - 127);
                out->q_under_alt2[j] = code_at(a + e, (int)s_alt - 127);
            }
            *amb_groups += (size_t)amb;
        }
    return MX_OK;
}

/* Rows are independent: blocks of QUANT_ROWS rows run on the worker pool,
 * each with its own status and count, combined in block order. */
#define QUANT_ROWS 8

typedef struct {
    const mx_quant_params *p;
    const double *act, *bound;
    size_t rows, cols;
    mx_stage_quant *out;
    mx_status *st;
    size_t *amb;
} quant_ctx;

static void quant_task(void *v, size_t b)
{
    quant_ctx *c = v;
    size_t r0 = b * QUANT_ROWS, r1 = r0 + QUANT_ROWS < c->rows ? r0 + QUANT_ROWS : c->rows;
    c->st[b] = quant_rows(c->p, c->act, c->bound, r0, r1, c->cols, c->out, &c->amb[b]);
}

mx_status mx_quant_interval(const double *act, const double *bound, size_t rows,
                            size_t cols, mx_stage_quant *out)
{
    size_t G = cols / MX_BLOCK, n = rows * cols;
    size_t nb = (rows + QUANT_ROWS - 1) / QUANT_ROWS;
    memset(out, 0, sizeof *out);
    if (cols % MX_BLOCK)
        return MX_EINVAL;
    out->rows = rows;
    out->cols = cols;
    out->q = malloc(mx_nz(n));
    out->s = malloc(mx_nz(rows * G));
    out->q_alt = malloc(mx_nz(n));
    out->s_alt = malloc(mx_nz(rows * G));
    out->q_under_alt = malloc(mx_nz(n));
    out->q_under_alt2 = malloc(mx_nz(n));
    mx_status *st = malloc(mx_nz(nb) * sizeof *st);
    size_t *amb = malloc(mx_nz(nb) * sizeof *amb);
    if (!out->q || !out->s || !out->q_alt || !out->s_alt || !out->q_under_alt ||
        !out->q_under_alt2 || !st || !amb) {
        free(st);
        free(amb);
        mx_stage_quant_free(out);
        return MX_ENOMEM;
    }
    mx_quant_params p = mx_quant_production(MX_E4M3FNUZ);
    quant_ctx qc = {&p, act, bound, rows, cols, out, st, amb};
    mx_parallel_for(nb, quant_task, &qc);
    mx_status res = MX_OK;
    for (size_t b = 0; b < nb; b++) {
        if (st[b] != MX_OK && res == MX_OK)
            res = st[b];
        out->n_ambiguous += amb[b];
    }
    free(st);
    free(amb);
    if (res != MX_OK)
        mx_stage_quant_free(out);
    return res;
}
