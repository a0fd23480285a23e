/* bf16_group_gemm.c -- C emulation of the portable path of
 * kernels/bf16_group_gemm.hip.  For every row position p and column n:
 *
 *   acc = 0;  for k = 0 .. K-1 in order: acc = fmaf(a_k, b_k, acc)
 *   out[id, n] = mxk_gemm_epilogue(acc, w[id])
 *
 * (BF16 x BF16 products are exact in FP32 unless they underflow, and fmaf
 * rounds once anyway.)  Padding rows are skipped; expert -1 rows are
 * zeros. */
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_bf16_group_gemm(const mxk_bf16_gemm_args *a)
{
    const mxk_route *r = &a->r;
    const int64_t N = a->n, K = a->k;
    const int32_t nids = r->tokens * r->topk;
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
        const uint16_t *av = a->a + arow * K;
        float w = r->topk_weights ? r->topk_weights[id] : 0.0f;
        for (int64_t n = 0; n < N; n++) {
            const uint16_t *bv = a->b + ((int64_t)e * N + n) * K;
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++)
                acc = MXK_FMA(mxk_bf16_to_f32(av[k]), mxk_bf16_to_f32(bv[k]),
                              acc);
            out[n] = mxk_gemm_epilogue(acc, r->topk_weights != NULL, w,
                                       a->mutant);
        }
    }
    return MXK_OK;
}
