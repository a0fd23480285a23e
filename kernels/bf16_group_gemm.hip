/* bf16_group_gemm.hip -- the BF16 grouped GEMM (the fallback expert path of
 * facts §5): BF16 x BF16, FP32 accumulation, BF16 out.
 *
 * Same grid and tile as mxfp8_group_gemm.hip (16 sorted rows x 64 columns
 * per 256-thread block, chunks inside one expert block).
 *
 * Portable path: K in tiles of 32 BF16 values (the tail tile shorter: only
 * the k < K terms are added, so no extra +0 can flip a -0 accumulator);
 * thread (tx, ty) runs acc = fmaf(a_k, b_k, acc) over k = 0..K-1 in order,
 * exactly as kernels/cpu/bf16_group_gemm.c, then mxk_gemm_epilogue.
 *
 * gfx94x path (MXK_PATH_AUTO on gfx94x): each wave accumulates a 16 x 16
 * tile with v_mfma_f32_16x16x16bf16_1k over K in steps of 16 (tail values
 * masked to 0), one FP32 accumulator for all of K as the production BF16
 * path does; then the same epilogue.  Layout (CDNA3): A[i][k]: lane
 * 16*(k/4) + i, element k%4; B[k][j]: lane 16*(k/4) + j; D[i][j]: lane
 * 16*(i/4) + j, element i%4.
 *
 * sm_90 path (MXK_PATH_AUTO on NVIDIA Hopper): each of the 8 warps
 * accumulates a 16 x 8 tile with mma.sync.m16n8k16 f32.bf16.bf16.f32 over K
 * in steps of 16 (tail values masked to 0), one FP32 accumulator carried
 * through the tensor core for all of K, as the gfx94x path does; then the
 * same epilogue.  Its arithmetic is the measured block model
 * block:hopper-bf16 (HMMA: 16 products and c aligned to 25 bits,
 * truncated, RTZ; docs/blockfma.md).  Fragment layout as in
 * mxfp8_group_gemm.hip (PTX ISA, mma.m16n8k16).
 */
#include "mxk_gpu.h"

#define TM 16
#define TN 64

__global__ void __launch_bounds__(256)
    mxk_bf16_gemm_portable(mxk_bf16_gemm_args a, int chunks)
{
    __shared__ int32_t s_id[TM];
    __shared__ float sA[TM][33];
    __shared__ float sB[TN][33];
    const mxk_route &r = a.r;
    const int32_t nids = r.tokens * r.topk;
    const int64_t N = a.n, K = a.k;
    const int tid = threadIdx.x, tx = tid % TN, ty = tid / TN;
    const int64_t blk = blockIdx.x / chunks, c = blockIdx.x % chunks;
    const int64_t p0 = blk * r.block_m + c * TM;
    const int64_t pend =
        p0 + TM < (blk + 1) * r.block_m ? p0 + TM : (blk + 1) * r.block_m;
    const int64_t n0 = (int64_t)blockIdx.y * TN, ncol = n0 + tx;
    int64_t e = r.expert_ids[blk];
    if (e >= a.experts)
        e = -1;
    if (tid < TM)
        s_id[tid] = p0 + tid < pend ? r.sorted_ids[p0 + tid] : nids;
    __syncthreads();
    if (e < 0) {
        for (int i = 0; i < 4; i++) {
            int32_t id = s_id[ty + 4 * i];
            if (id < nids && ncol < N)
                a.out[(int64_t)id * N + ncol] = 0;
        }
        return;
    }
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
        for (int j = 0; j < TM * 32 / 256; j++) {
            int idx = tid + 256 * j, row = idx / 32, kk = idx % 32;
            int32_t id = s_id[row];
            float v = 0.0f;
            if (id < nids && k0 + kk < K) {
                int64_t arow = r.a_per_token ? id / r.topk : id;
                v = mxk_bf16_to_f32(a.a[arow * K + k0 + kk]);
            }
            sA[row][kk] = v;
        }
        for (int j = 0; j < TN * 32 / 256; j++) {
            int idx = tid + 256 * j, col = idx / 32, kk = idx % 32;
            int64_t n = n0 + col;
            sB[col][kk] = n < N && k0 + kk < K
                              ? mxk_bf16_to_f32(a.b[(e * N + n) * K + k0 + kk])
                              : 0.0f;
        }
        __syncthreads();
        int kmax = K - k0 < 32 ? (int)(K - k0) : 32;
        for (int i = 0; i < 4; i++) {
            float s = acc[i];
            for (int kk = 0; kk < kmax; kk++)
                s = MXK_FMA(sA[ty + 4 * i][kk], sB[tx][kk], s);
            acc[i] = s;
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        int32_t id = s_id[ty + 4 * i];
        if (id < nids && ncol < N) {
            float w = r.topk_weights ? r.topk_weights[id] : 0.0f;
            a.out[(int64_t)id * N + ncol] = mxk_gemm_epilogue(
                acc[i], r.topk_weights != NULL, w, a.mutant);
        }
    }
}

#if defined(MXK_AMD)
#if !defined(MXK_EMU) /* hip_emu.h has its own (GCC vectors) */
typedef float mxk_f32x4 __attribute__((ext_vector_type(4)));
typedef short mxk_bf16x4 __attribute__((ext_vector_type(4)));
#endif

__global__ void __launch_bounds__(256)
    mxk_bf16_gemm_mfma(mxk_bf16_gemm_args a, int chunks)
{
#if defined(MXK_MFMA_DEVICE)
    __shared__ int32_t s_id[TM];
    const mxk_route &r = a.r;
    const int32_t nids = r.tokens * r.topk;
    const int64_t N = a.n, K = a.k;
    const int lane = threadIdx.x % 64, wave = threadIdx.x / 64;
    const int kc = lane / 16;
    const int64_t blk = blockIdx.x / chunks, c = blockIdx.x % chunks;
    const int64_t p0 = blk * r.block_m + c * TM;
    const int64_t pend =
        p0 + TM < (blk + 1) * r.block_m ? p0 + TM : (blk + 1) * r.block_m;
    const int64_t ncol = (int64_t)blockIdx.y * TN + wave * 16 + lane % 16;
    int64_t e = r.expert_ids[blk];
    if (e >= a.experts)
        e = -1;
    if (threadIdx.x < TM)
        s_id[threadIdx.x] =
            p0 + threadIdx.x < pend ? r.sorted_ids[p0 + threadIdx.x] : nids;
    __syncthreads();
    const bool b_ok = ncol < N;
    if (e < 0) {
        for (int i = 0; i < 4; i++) {
            int32_t id = s_id[4 * kc + i];
            if (id < nids && b_ok)
                a.out[(int64_t)id * N + ncol] = 0;
        }
        return;
    }
    const int32_t id_a = s_id[lane % 16];
    const bool a_ok = id_a < nids;
    const uint16_t *arow =
        a.a + (r.a_per_token ? id_a / r.topk : id_a) * K;
    const uint16_t *brow = a.b + (e * N + ncol) * K;
    mxk_f32x4 acc = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        mxk_bf16x4 av, bv;
        for (int j = 0; j < 4; j++) {
            int64_t k = k0 + 4 * kc + j;
            av[j] = (short)(a_ok && k < K ? arow[k] : 0);
            bv[j] = (short)(b_ok && k < K ? brow[k] : 0);
        }
        acc = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(av, bv, acc, 0, 0, 0);
    }
    for (int i = 0; i < 4; i++) {
        int32_t id = s_id[4 * kc + i];
        if (id < nids && b_ok) {
            float w = r.topk_weights ? r.topk_weights[id] : 0.0f;
            a.out[(int64_t)id * N + ncol] = mxk_gemm_epilogue(
                acc[i], r.topk_weights != NULL, w, a.mutant);
        }
    }
#endif
}
#endif /* MXK_AMD */

#if defined(MXK_NVIDIA)
static __device__ inline void mxk_mma_bf16(float d[4], const uint32_t a[4],
                                           const uint32_t b[2])
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                   "r"(b[1]));
}

/* Two BF16 codes as one .bf16x2 register: the lower k in the low half. */
static __device__ inline uint32_t mxk_bf16x2(uint16_t lo, uint16_t hi)
{
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

__global__ void __launch_bounds__(256)
    mxk_bf16_gemm_tc(mxk_bf16_gemm_args a, int chunks)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    __shared__ int32_t s_id[TM];
    const mxk_route &r = a.r;
    const int32_t nids = r.tokens * r.topk;
    const int64_t N = a.n, K = a.k;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int gq = lane / 4, tq = lane % 4;
    const int64_t blk = blockIdx.x / chunks, c = blockIdx.x % chunks;
    const int64_t p0 = blk * r.block_m + c * TM;
    const int64_t pend =
        p0 + TM < (blk + 1) * r.block_m ? p0 + TM : (blk + 1) * r.block_m;
    const int64_t n0 = (int64_t)blockIdx.y * TN;
    int64_t e = r.expert_ids[blk];
    if (e >= a.experts)
        e = -1;
    if (tid < TM)
        s_id[tid] = p0 + tid < pend ? r.sorted_ids[p0 + tid] : nids;
    __syncthreads();
    const int orow[4] = {gq, gq, gq + 8, gq + 8};
    const int ocol[4] = {warp * 8 + 2 * tq, warp * 8 + 2 * tq + 1,
                         warp * 8 + 2 * tq, warp * 8 + 2 * tq + 1};
    if (e < 0) {
        for (int i = 0; i < 4; i++) {
            int32_t id = s_id[orow[i]];
            int64_t ncol = n0 + ocol[i];
            if (id < nids && ncol < N)
                a.out[(int64_t)id * N + ncol] = 0;
        }
        return;
    }
    /* this lane's A rows gq, gq+8 and B column warp*8 + gq */
    const int32_t id0 = s_id[gq], id1 = s_id[gq + 8];
    const bool ok0 = id0 < nids, ok1 = id1 < nids;
    const uint16_t *ar0 = a.a + (ok0 ? (r.a_per_token ? id0 / r.topk : id0) * K : 0);
    const uint16_t *ar1 = a.a + (ok1 ? (r.a_per_token ? id1 / r.topk : id1) * K : 0);
    const int64_t bcol = n0 + warp * 8 + gq;
    const bool okb = bcol < N;
    const uint16_t *brow = a.b + (okb ? (e * N + bcol) * K : 0);
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        uint16_t va[2][4], vb[4];
        const int kl[4] = {2 * tq, 2 * tq + 1, 2 * tq + 8, 2 * tq + 9};
        for (int j = 0; j < 4; j++) {
            int64_t k = k0 + kl[j];
            va[0][j] = ok0 && k < K ? ar0[k] : 0;
            va[1][j] = ok1 && k < K ? ar1[k] : 0;
            vb[j] = okb && k < K ? brow[k] : 0;
        }
        uint32_t af[4] = {mxk_bf16x2(va[0][0], va[0][1]),
                          mxk_bf16x2(va[1][0], va[1][1]),
                          mxk_bf16x2(va[0][2], va[0][3]),
                          mxk_bf16x2(va[1][2], va[1][3])};
        uint32_t bf[2] = {mxk_bf16x2(vb[0], vb[1]), mxk_bf16x2(vb[2], vb[3])};
        mxk_mma_bf16(d, af, bf);
    }
    for (int i = 0; i < 4; i++) {
        int32_t id = s_id[orow[i]];
        int64_t ncol = n0 + ocol[i];
        if (id < nids && ncol < N) {
            float w = r.topk_weights ? r.topk_weights[id] : 0.0f;
            a.out[(int64_t)id * N + ncol] = mxk_gemm_epilogue(
                d[i], r.topk_weights != NULL, w, a.mutant);
        }
    }
#endif
}
#endif /* MXK_NVIDIA */

extern "C" mxk_status mxk_launch_bf16_group_gemm(const mxk_bf16_gemm_args *a,
                                                 void *stream)
{
    mxk_status st = mxk_check_bf16_gemm(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
    if (st)
        return st;
    if (a->r.num_post_pad == 0)
        return MXK_OK;
    int chunks = (int)mxk_cdiv(a->r.block_m, TM);
    dim3 grid((unsigned)(a->r.num_post_pad / a->r.block_m) * chunks,
              mxk_cdiv(a->n, TN));
    hipStream_t s = (hipStream_t)stream;
#if defined(MXK_AMD)
    if (a->path == MXK_PATH_AUTO && mxk_gpu_has_mfma()) {
        hipLaunchKernelGGL(mxk_bf16_gemm_mfma, grid, dim3(256), 0, s, *a,
                           chunks);
        return mxk_gpu_launched("bf16_group_gemm");
    }
#endif
#if defined(MXK_NVIDIA)
    if (a->path == MXK_PATH_AUTO && mxk_gpu_has_mma()) {
        hipLaunchKernelGGL(mxk_bf16_gemm_tc, grid, dim3(256), 0, s, *a,
                           chunks);
        return mxk_gpu_launched("bf16_group_gemm");
    }
#endif
    hipLaunchKernelGGL(mxk_bf16_gemm_portable, grid, dim3(256), 0, s, *a,
                       chunks);
    return mxk_gpu_launched("bf16_group_gemm");
}
