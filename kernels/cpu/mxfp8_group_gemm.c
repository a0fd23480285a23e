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
 * zeros.  The loops run per expert block and column so that each operand
 * is decoded once; the order of operations inside each output element is
 * the one above.  The columns are cut into chunks that may run in parallel
 * (mxk_cpu_set_parallel); no element's order depends on the cut. */
#include "cpu.h"
#include "mxk_numerics.h"

typedef struct {
    const mxk_mxfp8_gemm_args *a;
    float lut[256]; /* the decode as a table, as the GPU's shared tiles hold */
    int spec, span;
} gemm_ctx;

/* Output columns [n0, n1) of every row: per expert block, its valid rows'
 * A decoded once, then per column the B row decoded once and every row's
 * dot in the documented order.  af: bm*K + K floats, ids: bm. */
static void gemm_cols(const void *v, int64_t n0, int64_t n1, float *af, int32_t *ids)
{
    const gemm_ctx *g = v;
    const mxk_mxfp8_gemm_args *a = g->a;
    const mxk_route *r = &a->r;
    const int64_t N = a->n, K = a->k, G = K / 32, bm = r->block_m;
    const int32_t nids = r->tokens * r->topk;
    const float *lut = g->lut;
    const int spec = g->spec, span = g->span;
    float *bf = af + bm * K;
    for (int64_t blk = 0; blk < r->num_post_pad / bm; blk++) {
        int e = r->expert_ids[blk], nr = 0;
        for (int64_t p = blk * bm; p < (blk + 1) * bm; p++)
            if (r->sorted_ids[p] < nids) /* padding: masked, never stored */
                ids[nr++] = r->sorted_ids[p];
        for (int i = 0; i < nr && e < 0; i++) /* another rank's expert */
            for (int64_t n = n0; n < n1; n++)
                a->out[(int64_t)ids[i] * N + n] = 0;
        if (e < 0)
            continue;
        for (int i = 0; i < nr; i++) {
            int64_t arow = r->a_per_token ? ids[i] / r->topk : ids[i];
            for (int64_t k = 0; k < K; k++)
                af[i * K + k] = lut[a->a[arow * K + k]];
        }
        for (int64_t n = n0; n < n1; n++) {
            const uint8_t *bv = a->b + ((int64_t)e * N + n) * K;
            for (int64_t k = 0; k < K; k++)
                bf[k] = mxk_drops_k(k, K, a->mutant) ? 0.0f : lut[bv[k]];
            for (int i0 = 0; i0 < nr; i0 += 4) {
                /* four rows at a time: independent chains, each in the
                 * documented order (the compiler may run them as lanes) */
                int m = nr - i0 < 4 ? nr - i0 : 4;
                const float *r0 = af + (int64_t)i0 * K;
                const float *r1 = m > 1 ? r0 + K : r0, *r2 = m > 2 ? r0 + 2 * K : r0,
                            *r3 = m > 3 ? r0 + 3 * K : r0;
                float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                for (int64_t gi = 0; gi < G; gi++) {
                    /* fmaf(a, b, part) == part + a*b here: the product of
                     * two E4M3 values is exact in FP32 (8 significant bits,
                     * no under/overflow), so both round only the sum; the
                     * second form needs no libm call */
                    for (int64_t k = gi * 32; k < gi * 32 + 32; k++) {
                        part[0] = MXK_ADD(part[0], MXK_MUL(r0[k], bf[k]));
                        part[1] = MXK_ADD(part[1], MXK_MUL(r1[k], bf[k]));
                        part[2] = MXK_ADD(part[2], MXK_MUL(r2[k], bf[k]));
                        part[3] = MXK_ADD(part[3], MXK_MUL(r3[k], bf[k]));
                    }
                    if (gi % span != span - 1 && gi != G - 1)
                        continue;
                    int64_t gs = mxk_scale_group((int)(gi - gi % span), a->mutant);
                    uint8_t sb = 0; /* past the last group: masked */
                    if (gs < G)
                        sb = a->b_scale[mxk_bscale_index(e, n, gs, N, G,
                                                         a->b_scale_packed,
                                                         a->mutant)];
                    float db = mxk_e8m0_decode(sb, spec);
                    for (int j = 0; j < m; j++) {
                        int32_t id = ids[i0 + j];
                        int64_t arow = r->a_per_token ? id / r->topk : id;
                        uint8_t sa = gs < G ? a->a_scale[arow * G + gs] : 0;
                        float sc = mxk_gemm_scale(sa, db, spec, a->mutant);
                        acc[j] = mxk_acc_step(acc[j], part[j], sc, a->mutant);
                    }
                    part[0] = part[1] = part[2] = part[3] = 0.0f;
                }
                for (int j = 0; j < m; j++) {
                    int32_t id = ids[i0 + j];
                    float w = r->topk_weights ? r->topk_weights[id] : 0.0f;
                    a->out[(int64_t)id * N + n] = mxk_gemm_epilogue(
                        acc[j], r->topk_weights != NULL, w, a->mutant);
                }
            }
        }
    }
}

mxk_status mxk_cpu_mxfp8_group_gemm(const mxk_mxfp8_gemm_args *a)
{
    const int fnuz = a->fmt == MXK_FP8_E4M3FNUZ;
    gemm_ctx g = {a, {0}, mxk_gemm_e8m0_spec(a->e8m0, a->mutant), mxk_scale_span(a->mutant)};
    for (int c = 0; c < 256; c++)
        g.lut[c] = mxk_gemm_fp8_decode((uint8_t)c, fnuz, a->mutant);
    size_t bm = (size_t)a->r.block_m, K = (size_t)a->k;
    return mxk_cpu_by_columns(a->n, bm * K + K, bm, gemm_cols, &g);
}
