/* mxfp8_group_gemm.c -- C emulation of the portable path of
 * kernels/mxfp8_group_gemm.hip (facts §4).  For every row position p and
 * column n, in this order:
 *
 *   acc = 0
 *   for each span of `span` groups of 32 (span = 1 unless a planted bug):
 *       p = 0;  for k over the span in order: p = fmaf(a_k, b_k, p)
 *       sc  = dec(sa[row, gs]) * dec(sb[e, gs, n])   (gs: mxk_scale_group)
 *       acc = acc + p * sc                            (mul, then add)
 *   out[id, n] = mxk_gemm_epilogue(acc, w[id])       (top-k weight, BF16)
 *
 * Products of two E4M3 values are exact in FP32, so each fmaf rounds only
 * its sum.  Padding rows are not computed (the kernel computes them from
 * masked zeros and stores nothing); rows of expert -1 are written as
 * zeros. */
#include <stdlib.h>
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_mxfp8_group_gemm(const mxk_mxfp8_gemm_args *a)
{
    const mxk_route *r = &a->r;
    const int64_t N = a->n, K = a->k, G = K / 32;
    const int32_t nids = r->tokens * r->topk;
    const int fnuz = a->fmt == MXK_FP8_E4M3FNUZ;
    const int spec = mxk_gemm_e8m0_spec(a->e8m0, a->mutant);
    const int span = mxk_scale_span(a->mutant);
    float lut[256]; /* the decode as a table, as the GPU's shared tiles hold */
    for (int c = 0; c < 256; c++)
        lut[c] = mxk_fp8_decode((uint8_t)c, fnuz);
    float *af = malloc((size_t)K * sizeof *af);
    if (!af)
        return MXK_ENOMEM;
    for (int p = 0; p < r->num_post_pad; p++) {
        int32_t id = r->sorted_ids[p];
        if (id >= nids)
            continue;
        int e = r->expert_ids[p / r->block_m];
        uint16_t *out = a->out + (int64_t)id * N;
        if (e < 0) {
            for (int64_t n = 0; n < N; n++)
                out[n] = 0;
            continue;
        }
        int64_t arow = r->a_per_token ? id / r->topk : id;
        for (int64_t k = 0; k < K; k++)
            af[k] = lut[a->a[arow * K + k]];
        const uint8_t *as = a->a_scale + arow * G;
        float w = r->topk_weights ? r->topk_weights[id] : 0.0f;
        for (int64_t n = 0; n < N; n++) {
            const uint8_t *bv = a->b + ((int64_t)e * N + n) * K;
            float acc = 0.0f, part = 0.0f;
            for (int64_t g = 0; g < G; g++) {
                for (int kk = 0; kk < 32; kk++)
                    part = MXK_FMA(af[g * 32 + kk], lut[bv[g * 32 + kk]], part);
                if (g % span != span - 1 && g != G - 1)
                    continue;
                int64_t gs = mxk_scale_group((int)(g - g % span), a->mutant);
                uint8_t sa = 0, sb = 0; /* past the last group: masked */
                if (gs < G) {
                    sa = as[gs];
                    sb = a->b_scale[mxk_bscale_index(e, n, gs, N, G,
                                                     a->b_scale_packed,
                                                     a->mutant)];
                }
                float sc = MXK_MUL(mxk_e8m0_decode(sa, spec),
                                   mxk_e8m0_decode(sb, spec));
                acc = MXK_ADD(acc, MXK_MUL(part, sc));
                part = 0.0f;
            }
            out[n] = mxk_gemm_epilogue(acc, r->topk_weights != NULL, w,
                                       a->mutant);
        }
    }
    free(af);
    return MXK_OK;
}
