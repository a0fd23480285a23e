/* mxfp8_group_gemm.hip -- the W8A8 MXFP8 grouped GEMM of facts §4.
 *
 * Grid: x = row chunks (each block_m block of sorted rows cut into chunks of
 * up to 16 rows, so every chunk belongs to one expert), y = column tiles of
 * 64.  256 threads per block compute a 16 x 64 output tile.
 *
 * Portable path (every device; the only one on NVIDIA): per K group of 32
 * the A (16 x 32) and B (64 x 32) FP8 tiles are decoded into shared memory;
 * thread (tx, ty) owns column tx and rows ty, ty+4, ty+8, ty+12 and runs,
 * exactly as kernels/cpu/mxfp8_group_gemm.c:
 *     p = fmaf(a_k, b_k, p) for the 32 k of the group in order
 *     at the end of each span (1 group unless a planted bug):
 *         sc = dec(sa) * dec(sb);  acc = acc + p * sc;  p = 0
 *     out = mxk_gemm_epilogue(acc, w[id])
 * with explicit round-to-nearest operations (no contraction), so the result
 * is bit-identical to the C emulation.
 *
 * gfx94x path (MXK_PATH_AUTO on a gfx94x device): each of the 4 waves
 * computes a 16 x 16 tile with one v_mfma_f32_16x16x32_fp8_fp8 per K group
 * (FNUZ operands; FN operands have byte 0x80 cleared and p scaled by 4,
 * exact since an FN byte means twice its FNUZ value; FN NaN bytes read as
 * +-480 there), into a zeroed accumulator, giving the 32-wide partial dot
 * p; the scale product and everything after it are the portable code.
 * How the matrix core sums the 32 products is not documented (see facts
 * §4); this path is not bit-identical to the emulation.
 * Operand layout (AMD matrix instruction calculator, CDNA3):
 *   A[i][k]: lane 16*(k/8) + i, byte k%8;  B[k][j]: lane 16*(k/8) + j;
 *   D[i][j]: lane 16*(i/4) + j, element i%4.
 *
 * sm_90 path (MXK_PATH_AUTO on an NVIDIA Hopper device, compute capability
 * 9.x): the same structure on the tensor cores.  Each of the 8 warps
 * computes a 16 x 8 tile; per K group of 32 the FP8 bytes (decoded into
 * shared memory as the portable path does) are widened exactly to FP16
 * and fed to two mma.sync.m16n8k16 f32.f16.f16.f32: the first on the k of
 * the group with k mod 4 in {0, 1}, chained into the second on {2, 3},
 * from a zero accumulator; the 32-wide partial p is their result and the
 * scale product and everything after it are the portable code.  sm_90 has
 * no FNUZ operand type, and mma.sync FP8 on sm_90 is itself compiled by
 * ptxas (CUDA 13) into exactly this: byte-to-FP16 unpacking, these two
 * HMMA.16816.F32 in this pairing, then an FADD of c (here 0, adding
 * nothing).  So the partial follows the measured block model
 * block:hopper-fp8-mma (docs/blockfma.md) for FN and FNUZ bytes alike.
 * Fragment layout (PTX ISA, mma.m16n8k16 .f16): g = lane / 4, t = lane % 4;
 *   A regs: {(g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..)};
 *   B regs: {(k 2t..2t+1, col g), (k 2t+8..2t+9, col g)};
 *   D: (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).
 *
 * Masking, every path: a padding row (id >= tokens*topk) loads value 0 and
 * scale byte 0 and stores nothing; a column >= n likewise; a block of
 * expert -1 stores zero rows.
 */
#include "mxk_gpu.h"

#define TM 16
#define TN 64

struct mxk_tile {
    int64_t p0, pend; /* sorted row positions [p0, pend) */
    int64_t n0;
    int e;            /* local expert, or -1 */
};

static __device__ inline mxk_tile mxk_tile_of(const mxk_route &r, int chunks,
                                              int experts)
{
    mxk_tile t;
    int64_t blk = blockIdx.x / chunks, c = blockIdx.x % chunks;
    t.p0 = blk * r.block_m + c * TM;
    int64_t end = (blk + 1) * r.block_m;
    t.pend = t.p0 + TM < end ? t.p0 + TM : end;
    t.n0 = (int64_t)blockIdx.y * TN;
    t.e = r.expert_ids[blk];
    if (t.e >= experts)
        t.e = -1;
    return t;
}

/* Loads the ids of the tile's rows into s_id (padding for rows past the
 * chunk) and, for an expert -1 tile, stores zero rows.  Returns whether the
 * tile has work. */
static __device__ inline bool mxk_tile_rows(const mxk_route &r,
                                            const mxk_tile &t, int64_t N,
                                            uint16_t *out, int32_t *s_id)
{
    const int32_t nids = r.tokens * r.topk;
    int tid = threadIdx.x;
    if (tid < TM) {
        int64_t p = t.p0 + tid;
        s_id[tid] = p < t.pend ? r.sorted_ids[p] : nids;
    }
    __syncthreads();
    if (t.e >= 0)
        return true;
    for (int i = tid; i < TM * TN; i += blockDim.x) {
        int32_t id = s_id[i / TN];
        int64_t n = t.n0 + i % TN;
        if (id < nids && n < N)
            out[(int64_t)id * N + n] = 0;
    }
    return false;
}

__global__ void __launch_bounds__(256)
    mxk_mxfp8_gemm_portable(mxk_mxfp8_gemm_args a, int chunks)
{
    __shared__ int32_t s_id[TM];
    __shared__ float sA[TM][33];
    __shared__ float sB[TN][33];
    const mxk_route &r = a.r;
    const mxk_tile t = mxk_tile_of(r, chunks, a.experts);
    const int64_t N = a.n, K = a.k, G = K / 32;
    if (!mxk_tile_rows(r, t, N, a.out, s_id))
        return;
    const int32_t nids = r.tokens * r.topk;
    const int fnuz = a.fmt == MXK_FP8_E4M3FNUZ;
    const int spec = mxk_gemm_e8m0_spec(a.e8m0, a.mutant);
    const int span = mxk_scale_span(a.mutant);
    const int tid = threadIdx.x, tx = tid % TN, ty = tid / TN;
    const int64_t e = t.e, ncol = t.n0 + tx;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t g = 0; g < G; g++) {
        for (int j = 0; j < TM * 32 / 256; j++) {
            int idx = tid + 256 * j, row = idx / 32, kk = idx % 32;
            int32_t id = s_id[row];
            float v = 0.0f;
            if (id < nids) {
                int64_t arow = r.a_per_token ? id / r.topk : id;
                v = mxk_gemm_fp8_decode(a.a[arow * K + g * 32 + kk], fnuz,
                                        a.mutant);
            }
            sA[row][kk] = v;
        }
        for (int j = 0; j < TN * 32 / 256; j++) {
            int idx = tid + 256 * j, col = idx / 32, kk = idx % 32;
            int64_t n = t.n0 + col;
            sB[col][kk] =
                n < N && !mxk_drops_k(g * 32 + kk, K, a.mutant)
                    ? mxk_gemm_fp8_decode(a.b[(e * N + n) * K + g * 32 + kk], fnuz,
                                          a.mutant)
                    : 0.0f;
        }
        __syncthreads();
        for (int i = 0; i < 4; i++) {
            float p = part[i];
            for (int kk = 0; kk < 32; kk++)
                p = MXK_FMA(sA[ty + 4 * i][kk], sB[tx][kk], p);
            part[i] = p;
        }
        __syncthreads();
        if (g % span != span - 1 && g != G - 1)
            continue;
        int64_t gs = mxk_scale_group((int)(g - g % span), a.mutant);
        uint8_t sb = gs < G && ncol < N
                         ? a.b_scale[mxk_bscale_index(e, ncol, gs, N, G,
                                                      a.b_scale_packed,
                                                      a.mutant)]
                         : 0;
        float db = mxk_e8m0_decode(sb, spec);
        for (int i = 0; i < 4; i++) {
            int32_t id = s_id[ty + 4 * i];
            uint8_t sa = 0;
            if (id < nids && gs < G) {
                int64_t arow = r.a_per_token ? id / r.topk : id;
                sa = a.a_scale[arow * G + gs];
            }
            float sc = mxk_gemm_scale(sa, db, spec, a.mutant);
            acc[i] = mxk_acc_step(acc[i], part[i], sc, a.mutant);
            part[i] = 0.0f;
        }
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
#endif

/* Eight FP8 bytes as one operand register pair; 0x80 (FN -0, FNUZ NaN)
 * cleared when the bytes are FN. */
static __device__ inline long mxk_fp8x8(const uint8_t *p, bool ok, int fnuz,
                                        int mutant, bool drop_last)
{
    if (!ok)
        return 0;
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    if (!fnuz)
        for (int b = 0; b < 8; b++)
            if (((v >> (8 * b)) & 0xffu) == 0x80u)
                v &= ~(0xffull << (8 * b));
    if (mutant == MXK_MUT_FP8_SUBNORMAL_FLUSH) /* planted: subnormals read 0 */
        for (int b = 0; b < 8; b++)
            if (((v >> (8 * b)) & 0x78u) == 0)
                v &= ~(0xffull << (8 * b));
    if (drop_last) /* planted MXK_MUT_DROP_LAST_K: byte 7 of the last chunk */
        v &= ~(0xffull << 56);
    return (long)v;
}

__global__ void __launch_bounds__(256)
    mxk_mxfp8_gemm_mfma(mxk_mxfp8_gemm_args a, int chunks)
{
#if defined(MXK_MFMA_DEVICE)
    __shared__ int32_t s_id[TM];
    const mxk_route &r = a.r;
    const mxk_tile t = mxk_tile_of(r, chunks, a.experts);
    const int64_t N = a.n, K = a.k, G = K / 32;
    if (!mxk_tile_rows(r, t, N, a.out, s_id))
        return;
    const int32_t nids = r.tokens * r.topk;
    const int fnuz = a.fmt == MXK_FP8_E4M3FNUZ;
    const int spec = mxk_gemm_e8m0_spec(a.e8m0, a.mutant);
    const int span = mxk_scale_span(a.mutant);
    const int lane = threadIdx.x % 64, wave = threadIdx.x / 64;
    const int kc = lane / 16;                 /* k chunk of 8; D row group */
    const int64_t e = t.e;
    const int64_t ncol = t.n0 + wave * 16 + lane % 16;
    const int32_t id_a = s_id[lane % 16];     /* the A row this lane loads */
    const int64_t arow_a = r.a_per_token ? id_a / r.topk : id_a;
    const bool a_ok = id_a < nids, b_ok = ncol < N;
    const float fnscale = fnuz ? 1.0f : 4.0f;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    mxk_f32x4 part = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t g = 0; g < G; g++) {
        const bool drop = mxk_drops_k(g * 32 + 8 * kc + 7, K, a.mutant);
        long av = mxk_fp8x8(a.a + arow_a * K + g * 32 + 8 * kc, a_ok, fnuz,
                            a.mutant, false);
        long bv = mxk_fp8x8(a.b + (e * N + ncol) * K + g * 32 + 8 * kc, b_ok,
                            fnuz, a.mutant, drop);
        part = __builtin_amdgcn_mfma_f32_16x16x32_fp8_fp8(av, bv, part, 0, 0,
                                                          0);
        if (g % span != span - 1 && g != G - 1)
            continue;
        int64_t gs = mxk_scale_group((int)(g - g % span), a.mutant);
        uint8_t sb = gs < G && b_ok
                         ? a.b_scale[mxk_bscale_index(e, ncol, gs, N, G,
                                                      a.b_scale_packed,
                                                      a.mutant)]
                         : 0;
        float db = mxk_e8m0_decode(sb, spec);
        for (int i = 0; i < 4; i++) {
            int32_t id = s_id[4 * kc + i];
            uint8_t sa = 0;
            if (id < nids && gs < G) {
                int64_t arow = r.a_per_token ? id / r.topk : id;
                sa = a.a_scale[arow * G + gs];
            }
            float sc = mxk_gemm_scale(sa, db, spec, a.mutant);
            float p = MXK_MUL(part[i], fnscale);
            acc[i] = mxk_acc_step(acc[i], p, sc, a.mutant);
            part[i] = 0.0f;
        }
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
/* The PTX fragment of one 16x16 (A) or 16x8 (B) FP16 operand comes from
 * FP32 values that are exactly representable in FP16 (every FP8 value,
 * every BF16 value is not: see bf16_group_gemm.hip). */
static __device__ inline uint32_t mxk_f16x2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi); /* exact for FP8 values */
    uint32_t u;
    __builtin_memcpy(&u, &h, 4);
    return u;
}

static __device__ inline void mxk_mma_f16(float d[4], const uint32_t a[4],
                                          const uint32_t b[2],
                                          const float c[4])
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                   "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

/* Group-local k of element j (0..15) of HMMA h (0, 1): the products with
 * k mod 4 in {2h, 2h+1}, as ptxas pairs them for mma.sync FP8. */
static __device__ inline int mxk_tc_k(int h, int j)
{
    return 4 * (j / 2) + 2 * h + (j % 2);
}

__global__ void __launch_bounds__(256)
    mxk_mxfp8_gemm_tc(mxk_mxfp8_gemm_args a, int chunks)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    __shared__ int32_t s_id[TM];
    __shared__ float sA[TM][33];
    __shared__ float sB[TN][33];
    const mxk_route &r = a.r;
    const mxk_tile t = mxk_tile_of(r, chunks, a.experts);
    const int64_t N = a.n, K = a.k, G = K / 32;
    if (!mxk_tile_rows(r, t, N, a.out, s_id))
        return;
    const int32_t nids = r.tokens * r.topk;
    const int fnuz = a.fmt == MXK_FP8_E4M3FNUZ;
    const int spec = mxk_gemm_e8m0_spec(a.e8m0, a.mutant);
    const int span = mxk_scale_span(a.mutant);
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int gq = lane / 4, tq = lane % 4;
    const int64_t e = t.e;
    /* this thread's four outputs: rows gq, gq+8; columns c0, c0+1 */
    const int orow[4] = {gq, gq, gq + 8, gq + 8};
    const int ocol[4] = {warp * 8 + 2 * tq, warp * 8 + 2 * tq + 1,
                         warp * 8 + 2 * tq, warp * 8 + 2 * tq + 1};
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t g = 0; g < G; g++) {
        for (int j = 0; j < TM * 32 / 256; j++) {
            int idx = tid + 256 * j, row = idx / 32, kk = idx % 32;
            int32_t id = s_id[row];
            float v = 0.0f;
            if (id < nids) {
                int64_t arow = r.a_per_token ? id / r.topk : id;
                v = mxk_gemm_fp8_decode(a.a[arow * K + g * 32 + kk], fnuz,
                                        a.mutant);
            }
            sA[row][kk] = v;
        }
        for (int j = 0; j < TN * 32 / 256; j++) {
            int idx = tid + 256 * j, col = idx / 32, kk = idx % 32;
            int64_t n = t.n0 + col;
            sB[col][kk] =
                n < N && !mxk_drops_k(g * 32 + kk, K, a.mutant)
                    ? mxk_gemm_fp8_decode(a.b[(e * N + n) * K + g * 32 + kk], fnuz,
                                          a.mutant)
                    : 0.0f;
        }
        __syncthreads();
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* from a zero accumulator */
        for (int h = 0; h < 2; h++) {
            uint32_t af[4], bf[2];
            af[0] = mxk_f16x2(sA[gq][mxk_tc_k(h, 2 * tq)],
                              sA[gq][mxk_tc_k(h, 2 * tq + 1)]);
            af[1] = mxk_f16x2(sA[gq + 8][mxk_tc_k(h, 2 * tq)],
                              sA[gq + 8][mxk_tc_k(h, 2 * tq + 1)]);
            af[2] = mxk_f16x2(sA[gq][mxk_tc_k(h, 2 * tq + 8)],
                              sA[gq][mxk_tc_k(h, 2 * tq + 9)]);
            af[3] = mxk_f16x2(sA[gq + 8][mxk_tc_k(h, 2 * tq + 8)],
                              sA[gq + 8][mxk_tc_k(h, 2 * tq + 9)]);
            const int bc = warp * 8 + gq;
            bf[0] = mxk_f16x2(sB[bc][mxk_tc_k(h, 2 * tq)],
                              sB[bc][mxk_tc_k(h, 2 * tq + 1)]);
            bf[1] = mxk_f16x2(sB[bc][mxk_tc_k(h, 2 * tq + 8)],
                              sB[bc][mxk_tc_k(h, 2 * tq + 9)]);
            const float c[4] = {d[0], d[1], d[2], d[3]};
            mxk_mma_f16(d, af, bf, c);
        }
        /* the instruction's FADD of its c: part + group, one RN addition */
        for (int i = 0; i < 4; i++)
            part[i] = MXK_ADD(part[i], d[i]);
        __syncthreads();
        if (g % span != span - 1 && g != G - 1)
            continue;
        int64_t gs = mxk_scale_group((int)(g - g % span), a.mutant);
        for (int i = 0; i < 4; i++) {
            int64_t ncol = t.n0 + ocol[i];
            uint8_t sb = gs < G && ncol < N
                             ? a.b_scale[mxk_bscale_index(e, ncol, gs, N, G,
                                                          a.b_scale_packed,
                                                          a.mutant)]
                             : 0;
            int32_t id = s_id[orow[i]];
            uint8_t sa = 0;
            if (id < nids && gs < G) {
                int64_t arow = r.a_per_token ? id / r.topk : id;
                sa = a.a_scale[arow * G + gs];
            }
            float sc = mxk_gemm_scale(sa, mxk_e8m0_decode(sb, spec), spec,
                                      a.mutant);
            acc[i] = mxk_acc_step(acc[i], part[i], sc, a.mutant);
            part[i] = 0.0f;
        }
    }
    for (int i = 0; i < 4; i++) {
        int32_t id = s_id[orow[i]];
        int64_t ncol = t.n0 + ocol[i];
        if (id < nids && ncol < N) {
            float w = r.topk_weights ? r.topk_weights[id] : 0.0f;
            a.out[(int64_t)id * N + ncol] = mxk_gemm_epilogue(
                acc[i], r.topk_weights != NULL, w, a.mutant);
        }
    }
#endif
}
#endif /* MXK_NVIDIA */

extern "C" mxk_status mxk_launch_mxfp8_group_gemm(const mxk_mxfp8_gemm_args *a,
                                                  void *stream)
{
    mxk_status st = mxk_check_mxfp8_gemm(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
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
        hipLaunchKernelGGL(mxk_mxfp8_gemm_mfma, grid, dim3(256), 0, s, *a,
                           chunks);
        return mxk_gpu_launched("mxfp8_group_gemm");
    }
#endif
#if defined(MXK_NVIDIA)
    if (a->path == MXK_PATH_AUTO && mxk_gpu_has_mma()) {
        hipLaunchKernelGGL(mxk_mxfp8_gemm_tc, grid, dim3(256), 0, s, *a,
                           chunks);
        return mxk_gpu_launched("mxfp8_group_gemm");
    }
#endif
    hipLaunchKernelGGL(mxk_mxfp8_gemm_portable, grid, dim3(256), 0, s, *a,
                       chunks);
    return mxk_gpu_launched("mxfp8_group_gemm");
}
