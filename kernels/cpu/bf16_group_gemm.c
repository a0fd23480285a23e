/* bf16_group_gemm.c -- C emulation of the portable path of
 * kernels/bf16_group_gemm.hip.  For every row position p and column n:
 *
 *   acc = 0;  for k = 0 .. K-1 in order: acc = fmaf(a_k, b_k, acc)
 *   out[id, n] = mxk_gemm_epilogue(acc, w[id])
 *
 * (BF16 x BF16 products are exact in FP32 unless they underflow, and fmaf
 * rounds once anyway.)  Padding rows are skipped; expert -1 rows are
 * zeros.  Loops per expert block and column, each operand decoded once;
 * the columns are cut into chunks that may run in parallel
 * (mxk_cpu_set_parallel) without changing any element's order. */
#include "cpu.h"
#include "mxk_numerics.h"

/* acc = fmaf(a_k, b_k, acc) for k in order, for nr rows against one B
 * row.  fmaf is exactly specified, so the hardware instruction (x86 FMA3,
 * chosen at run time) and libm give the same bits; rows run interleaved
 * only to overlap the fma latencies. */
#define MXK_DOT_ROWS(name, FMA)                                                \
    static void name(const float *af, int64_t K, const float *bf, int nr,     \
                     float *acc)                                               \
    {                                                                          \
        int i = 0;                                                             \
        for (; i + 4 <= nr; i += 4) {                                          \
            const float *r0 = af + i * K, *r1 = r0 + K, *r2 = r1 + K,          \
                        *r3 = r2 + K;                                          \
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;                  \
            for (int64_t k = 0; k < K; k++) {                                  \
                s0 = FMA(r0[k], bf[k], s0);                                    \
                s1 = FMA(r1[k], bf[k], s1);                                    \
                s2 = FMA(r2[k], bf[k], s2);                                    \
                s3 = FMA(r3[k], bf[k], s3);                                    \
            }                                                                  \
            acc[i] = s0, acc[i + 1] = s1, acc[i + 2] = s2, acc[i + 3] = s3;    \
        }                                                                      \
        for (; i < nr; i++) {                                                  \
            float s = 0.0f;                                                    \
            for (int64_t k = 0; k < K; k++)                                    \
                s = FMA(af[i * K + k], bf[k], s);                              \
            acc[i] = s;                                                        \
        }                                                                      \
    }

MXK_DOT_ROWS(dot_rows_libm, fmaf)
#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("fma"))) MXK_DOT_ROWS(dot_rows_fma3, __builtin_fmaf)
#define MXK_HAVE_FMA3 1
#endif

typedef void (*dot_fn)(const float *, int64_t, const float *, int, float *);

typedef struct {
    const mxk_bf16_gemm_args *a;
    dot_fn dot;
} gemm_ctx;

/* Output columns [n0, n1) of every row; af: bm*K + K + bm floats, ids: bm. */
static void gemm_cols(const void *v, int64_t n0, int64_t n1, float *af, int32_t *ids)
{
    const gemm_ctx *g = v;
    const mxk_bf16_gemm_args *a = g->a;
    const mxk_route *r = &a->r;
    const int64_t N = a->n, K = a->k, bm = r->block_m;
    const int32_t nids = r->tokens * r->topk;
    float *bf = af + bm * K, *accs = bf + K;
    for (int64_t blk = 0; blk < r->num_post_pad / bm; blk++) {
        int e = r->expert_ids[blk], nr = 0;
        for (int64_t p = blk * bm; p < (blk + 1) * bm; p++)
            if (r->sorted_ids[p] < nids)
                ids[nr++] = r->sorted_ids[p];
        for (int i = 0; i < nr && e < 0; i++)
            for (int64_t n = n0; n < n1; n++)
                a->out[(int64_t)ids[i] * N + n] = 0;
        if (e < 0)
            continue;
        for (int i = 0; i < nr; i++) {
            int64_t arow = r->a_per_token ? ids[i] / r->topk : ids[i];
            for (int64_t k = 0; k < K; k++)
                af[i * K + k] = mxk_bf16_to_f32(a->a[arow * K + k]);
        }
        for (int64_t n = n0; n < n1; n++) {
            const uint16_t *bv = a->b + ((int64_t)e * N + n) * K;
            for (int64_t k = 0; k < K; k++)
                bf[k] = mxk_bf16_to_f32(bv[k]);
            g->dot(af, K, bf, nr, accs);
            for (int i = 0; i < nr; i++) {
                int32_t id = ids[i];
                float w = r->topk_weights ? r->topk_weights[id] : 0.0f;
                a->out[(int64_t)id * N + n] = mxk_gemm_epilogue(
                    accs[i], r->topk_weights != NULL, w, a->mutant);
            }
        }
    }
}

mxk_status mxk_cpu_bf16_group_gemm(const mxk_bf16_gemm_args *a)
{
    gemm_ctx g = {a, dot_rows_libm};
#ifdef MXK_HAVE_FMA3
    if (__builtin_cpu_supports("fma"))
        g.dot = dot_rows_fma3;
#endif
    size_t bm = (size_t)a->r.block_m, K = (size_t)a->k;
    return mxk_cpu_by_columns(a->n, bm * K + K + bm, bm, gemm_cols, &g);
}
