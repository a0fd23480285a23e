/* tc_probe.cu -- feed an NVIDIA Hopper GPU's tensor cores designed and random
 * inner products and record what they return, bit for bit.
 *
 * Build (on the H100):  nvcc -O2 -std=c++17
 *     -gencode=arch=compute_90a,code=sm_90a -o tc_probe tools/probe/tc_probe.cu
 * Run:  tc_probe OUTDIR PLANDIR [SCALE [VARIANT]]   (SCALE multiplies the
 *       random case counts; VARIANT runs only that index of VARS)
 *
 * Instructions probed (one output element per case; 8 cases per
 * instruction, on the diagonal of the 8x8 block of rows 0-7 and columns 0-7
 * of D; every other input is zero):
 *   mma.sync.aligned.m16n8k32 .f32.{e4m3,e5m2}.{e4m3,e5m2}.f32   (warp)
 *   mma.sync.aligned.m16n8k16 .f32.{bf16,f16}.{bf16,f16}.f32     (warp)
 *   wgmma.mma_async.sync.aligned.m64n8k32.f32.{e4m3,e5m2}.{...}  (warpgroup,
 *   wgmma.mma_async.sync.aligned.m64n8k16.f32.{bf16,f16}.{...}    A from
 *                                      registers, B from shared memory)
 * A case of n = L*K products runs L instructions back to back on the same
 * accumulator registers (for wgmma: in one commit group, no wait between).
 *
 * Operand placement follows the fragment layouts of the PTX ISA; a
 * calibration runs every (A slot, B slot) pair with 1.0 in both and checks
 * that exactly the documented D element lights up (results in the log and
 * calib_*.bin), and an exactness check compares small-integer cases with
 * their exact sums.  Random cases come from casegen.h (regenerated
 * bit-identically on the host that fits the model); designed cases come
 * from plan files written by tools/probe/mkplan.
 *
 * Output files (little-endian): one per set, "MXTD" header then the FP32
 * results; see write_set().  With SCALE 0 only the calibration, the
 * exactness check and the plan run (what `mxverify probe --gpu` does).
 *
 * Exit status: 0; 77 when there is no CUDA device or it is not sm_90 (the
 * binary holds sm_90a code only); 5 when a calibration or exactness check
 * failed (the results are written, but the operand layout is suspect); 4
 * on a CUDA error; 2 on bad arguments; 3 when an output cannot be written.
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include <string>
#include "casegen.h"

#define CK(x)                                                                  \
    do {                                                                       \
        cudaError_t e_ = (x);                                                  \
        if (e_ != cudaSuccess) {                                               \
            fprintf(stderr, "tc_probe: CUDA error %s at %s:%d\n",              \
                    cudaGetErrorString(e_), __FILE__, __LINE__);               \
            exit(4);                                                           \
        }                                                                      \
    } while (0)

enum {
    MMA_E4M3, MMA_E5M2, MMA_E4E5, MMA_BF16, MMA_F16,
    WG_E4M3, WG_E5M2, WG_E4E5, WG_BF16, WG_F16, NVAR
};

struct VarInfo {
    const char *name;
    int wg;    /* 1: wgmma, 0: mma.sync */
    int es;    /* element size in bytes */
    int K;     /* products per instruction */
    const cg_fmt *fa, *fb;
    uint32_t one_a, one_b;
};

static const VarInfo VARS[NVAR] = {
    {"mma_e4m3_e4m3", 0, 1, 32, &CG_E4M3, &CG_E4M3, 0x38, 0x38},
    {"mma_e5m2_e5m2", 0, 1, 32, &CG_E5M2, &CG_E5M2, 0x3c, 0x3c},
    {"mma_e4m3_e5m2", 0, 1, 32, &CG_E4M3, &CG_E5M2, 0x38, 0x3c},
    {"mma_bf16_bf16", 0, 2, 16, &CG_BF16, &CG_BF16, 0x3f80, 0x3f80},
    {"mma_fp16_fp16", 0, 2, 16, &CG_FP16, &CG_FP16, 0x3c00, 0x3c00},
    {"wgmma_e4m3_e4m3", 1, 1, 32, &CG_E4M3, &CG_E4M3, 0x38, 0x38},
    {"wgmma_e5m2_e5m2", 1, 1, 32, &CG_E5M2, &CG_E5M2, 0x3c, 0x3c},
    {"wgmma_e4m3_e5m2", 1, 1, 32, &CG_E4M3, &CG_E5M2, 0x38, 0x3c},
    {"wgmma_bf16_bf16", 1, 2, 16, &CG_BF16, &CG_BF16, 0x3f80, 0x3f80},
    {"wgmma_fp16_fp16", 1, 2, 16, &CG_FP16, &CG_FP16, 0x3c00, 0x3c00},
};

/* ---- the instructions ------------------------------------------------- */

#define MMA8(T1, T2)                                                           \
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32." T1 "." T2 ".f32 "   \
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"     \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),      \
                   "r"(b[1]))
#define MMA16(T)                                                               \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." T "." T ".f32 "     \
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"     \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),      \
                   "r"(b[1]))

template <int V>
__device__ __forceinline__ void mma_op(float d[4], const uint32_t a[4],
                                       const uint32_t b[2])
{
    if constexpr (V == MMA_E4M3) MMA8("e4m3", "e4m3");
    if constexpr (V == MMA_E5M2) MMA8("e5m2", "e5m2");
    if constexpr (V == MMA_E4E5) MMA8("e4m3", "e5m2");
    if constexpr (V == MMA_BF16) MMA16("bf16");
    if constexpr (V == MMA_F16) MMA16("f16");
}

#define WG8(T1, T2)                                                            \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"                   \
                 "wgmma.mma_async.sync.aligned.m64n8k32.f32." T1 "." T2 " "    \
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p, 1, 1;\n}\n"             \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc),      \
                   "r"(1))
#define WG16(T)                                                                \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"                   \
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32." T "." T " "      \
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p, 1, 1, 0;\n}\n"          \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc),      \
                   "r"(1))

template <int V>
__device__ __forceinline__ void wg_op(float d[4], const uint32_t a[4],
                                      uint64_t desc)
{
    if constexpr (V == WG_E4M3) WG8("e4m3", "e4m3");
    if constexpr (V == WG_E5M2) WG8("e5m2", "e5m2");
    if constexpr (V == WG_E4E5) WG8("e4m3", "e5m2");
    if constexpr (V == WG_BF16) WG16("bf16");
    if constexpr (V == WG_F16) WG16("f16");
}

__device__ __forceinline__ void fence_f(float &x)
{
    asm volatile("" : "+f"(x)::"memory");
}

/* Shared-memory matrix descriptor, no swizzle: core matrices of 8 rows x 16
 * bytes, 128 bytes apart along K (LBO) and along N (SBO). */
__device__ __forceinline__ uint64_t make_desc(const void *smem)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem);
    uint64_t desc = (uint64_t)((addr & 0x3FFFF) >> 4);
    desc |= (uint64_t)(128 >> 4) << 16;
    desc |= (uint64_t)(128 >> 4) << 32;
    return desc;
}

/* Images: per tile and instruction l, A: 32 lanes x 4 words (warp 0 only;
 * other warps hold zeros), B: 32 lanes x 2 words (mma) or 256 bytes of
 * shared memory (wgmma), C and D: 32 lanes x 4 floats. */
template <int V, int L>
__global__ void k_mma(const uint32_t *A, const uint32_t *B, const float *C,
                      float *D, int ntiles)
{
    int tile = blockIdx.x, lane = threadIdx.x;
    if (tile >= ntiles)
        return;
    float d[4];
    for (int i = 0; i < 4; i++)
        d[i] = C[((size_t)tile * 32 + lane) * 4 + i];
#pragma unroll
    for (int l = 0; l < L; l++) {
        const uint32_t *ap = A + (((size_t)tile * L + l) * 32 + lane) * 4;
        const uint32_t *bp = B + (((size_t)tile * L + l) * 32 + lane) * 2;
        uint32_t a[4] = {ap[0], ap[1], ap[2], ap[3]};
        uint32_t b[2] = {bp[0], bp[1]};
        mma_op<V>(d, a, b);
    }
    for (int i = 0; i < 4; i++)
        D[((size_t)tile * 32 + lane) * 4 + i] = d[i];
}

template <int V, int L>
__global__ void __launch_bounds__(128) k_wg(const uint32_t *A,
                                            const uint8_t *B, const float *C,
                                            float *D, float *Dall, int ntiles)
{
    __shared__ __align__(1024) uint8_t sB[L][256];
    int tile = blockIdx.x, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    if (tile >= ntiles)
        return;
    for (int i = tid; i < L * 256; i += 128)
        sB[i / 256][i % 256] = B[(size_t)tile * L * 256 + i];
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    float d[4] = {0.f, 0.f, 0.f, 0.f};
    uint32_t a[L][4];
#pragma unroll
    for (int l = 0; l < L; l++)
        for (int i = 0; i < 4; i++)
            a[l][i] = warp == 0
                          ? A[(((size_t)tile * L + l) * 32 + lane) * 4 + i]
                          : 0u;
    if (warp == 0)
        for (int i = 0; i < 4; i++)
            d[i] = C[((size_t)tile * 32 + lane) * 4 + i];
    for (int i = 0; i < 4; i++)
        fence_f(d[i]);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int l = 0; l < L; l++) {
        uint64_t desc = make_desc(&sB[l][0]);
        wg_op<V>(d, a[l], desc);
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    for (int i = 0; i < 4; i++)
        fence_f(d[i]);
    if (warp == 0)
        for (int i = 0; i < 4; i++)
            D[((size_t)tile * 32 + lane) * 4 + i] = d[i];
    if (Dall)
        for (int i = 0; i < 4; i++)
            Dall[((size_t)tile * 128 + tid) * 4 + i] = d[i];
}

#include "tc_layout.h"

template <int V, int L>
static void launch(const VarInfo &vi, int ntiles, uint32_t *dA, void *dB,
                   float *dC, float *dD)
{
    (void)vi; /* only the variant's own kernel is instantiated */
    if constexpr (V >= WG_E4M3)
        k_wg<V, L><<<ntiles, 128>>>(dA, (const uint8_t *)dB, dC, dD, NULL,
                                    ntiles);
    else
        k_mma<V, L><<<ntiles, 32>>>(dA, (const uint32_t *)dB, dC, dD, ntiles);
}

template <int V>
static void launch_L(const VarInfo &vi, int L, int ntiles, uint32_t *dA,
                     void *dB, float *dC, float *dD)
{
    switch (L) {
    case 1: launch<V, 1>(vi, ntiles, dA, dB, dC, dD); break;
    case 2: launch<V, 2>(vi, ntiles, dA, dB, dC, dD); break;
    case 4: launch<V, 4>(vi, ntiles, dA, dB, dC, dD); break;
    default: fprintf(stderr, "tc_probe: unsupported chain %d\n", L); exit(4);
    }
}

static void launch_var(int v, int L, int ntiles, uint32_t *dA, void *dB,
                       float *dC, float *dD)
{
    const VarInfo &vi = VARS[v];
    switch (v) {
    case MMA_E4M3: launch_L<MMA_E4M3>(vi, L, ntiles, dA, dB, dC, dD); break;
    case MMA_E5M2: launch_L<MMA_E5M2>(vi, L, ntiles, dA, dB, dC, dD); break;
    case MMA_E4E5: launch_L<MMA_E4E5>(vi, L, ntiles, dA, dB, dC, dD); break;
    case MMA_BF16: launch_L<MMA_BF16>(vi, L, ntiles, dA, dB, dC, dD); break;
    case MMA_F16: launch_L<MMA_F16>(vi, L, ntiles, dA, dB, dC, dD); break;
    case WG_E4M3: launch_L<WG_E4M3>(vi, L, ntiles, dA, dB, dC, dD); break;
    case WG_E5M2: launch_L<WG_E5M2>(vi, L, ntiles, dA, dB, dC, dD); break;
    case WG_E4E5: launch_L<WG_E4E5>(vi, L, ntiles, dA, dB, dC, dD); break;
    case WG_BF16: launch_L<WG_BF16>(vi, L, ntiles, dA, dB, dC, dD); break;
    case WG_F16: launch_L<WG_F16>(vi, L, ntiles, dA, dB, dC, dD); break;
    }
    CK(cudaGetLastError());
}

/* Runs every case on variant v; returns the FP32 bits. */
static std::vector<uint32_t> run_cases(int v, const Cases &cs)
{
    const VarInfo &vi = VARS[v];
    Images im;
    build_images(vi.wg, vi.es, vi.K, cs, &im);
    uint32_t *dA;
    void *dB;
    float *dC, *dD;
    CK(cudaMalloc(&dA, im.A.size() * 4));
    CK(cudaMalloc(&dB, im.B.size() * 4));
    CK(cudaMalloc(&dC, im.C.size() * 4));
    CK(cudaMalloc(&dD, im.C.size() * 4));
    CK(cudaMemcpy(dA, im.A.data(), im.A.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, im.B.data(), im.B.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dC, im.C.data(), im.C.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemset(dD, 0xff, im.C.size() * 4));
    launch_var(v, im.L, (int)im.ntiles, dA, dB, dC, dD);
    CK(cudaDeviceSynchronize());
    std::vector<uint32_t> D(im.C.size());
    CK(cudaMemcpy(D.data(), dD, D.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaFree(dA));
    CK(cudaFree(dB));
    CK(cudaFree(dC));
    CK(cudaFree(dD));
    return extract(cs.count(), D);
}

/* ---- calibration ----------------------------------------------------------- */

/* One (A slot, B slot) pair per block, both set to 1.0; records which D
 * element of warp 0 lit up (lane*4+i), -1 for none, -2 for several, and -3
 * when another warp's D was nonzero (wgmma). */
template <int V>
__global__ void k_calib(int nsa, int nsb, uint32_t one_a, uint32_t one_b,
                        int es, int16_t *out)
{
    __shared__ __align__(1024) uint8_t sB[256];
    __shared__ int hits, where, other;
    int pair = blockIdx.x, sa = pair / nsb, sb = pair % nsb;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int per_a = 16 / es;
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    if (warp == 0 && lane == sa / per_a) {
        int i = sa % per_a, sh = (i * es * 8) % 32;
        a[(i * es) / 4] = one_a << sh;
    }
    float d[4] = {0.f, 0.f, 0.f, 0.f};
    if (tid == 0) {
        hits = 0;
        where = -1;
        other = 0;
    }
    constexpr bool WG = V >= WG_E4M3;
    if constexpr (WG) {
        for (int i = tid; i < 256; i += blockDim.x)
            sB[i] = 0;
        __syncthreads();
        if (tid == 0) {
            int off = sb * es;
            sB[off] = (uint8_t)(one_b & 0xff);
            if (es == 2)
                sB[off + 1] = (uint8_t)(one_b >> 8);
        }
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        for (int i = 0; i < 4; i++)
            fence_f(d[i]);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
        uint64_t desc = make_desc(sB);
        wg_op<V>(d, a, desc);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        for (int i = 0; i < 4; i++)
            fence_f(d[i]);
    } else {
        __syncthreads();
        int per_b = 8 / es;
        if (lane == sb / per_b) {
            int i = sb % per_b, sh = (i * es * 8) % 32;
            b[(i * es) / 4] = one_b << sh;
        }
        mma_op<V>(d, a, b);
    }
    for (int i = 0; i < 4; i++)
        if (d[i] != 0.f) {
            if (warp == 0) {
                atomicAdd(&hits, 1);
                where = lane * 4 + i;
            } else
                atomicAdd(&other, 1);
        }
    __syncthreads();
    if (tid == 0)
        out[pair] = (int16_t)(other ? -3 : hits == 0 ? -1 : hits > 1 ? -2 : where);
}

template <int V>
static void calib_launch(int nsa, int nsb, uint32_t oa, uint32_t ob, int es,
                         int16_t *dout, int threads)
{
    k_calib<V><<<nsa * nsb, threads>>>(nsa, nsb, oa, ob, es, dout);
}

static FILE *logf_;
#define LOG(...)                                                               \
    do {                                                                       \
        printf(__VA_ARGS__);                                                   \
        if (logf_) fprintf(logf_, __VA_ARGS__);                                \
        fflush(stdout);                                                        \
    } while (0)

static int calibrate(int v, const char *outdir)
{
    const VarInfo &vi = VARS[v];
    int es = vi.es, K = vi.K;
    int nsa = 32 * 16 / es;
    int nsb = vi.wg ? 256 / es : 32 * 8 / es;
    int16_t *dout;
    CK(cudaMalloc(&dout, (size_t)nsa * nsb * 2));
    int th = vi.wg ? 128 : 32;
    switch (v) {
    case MMA_E4M3: calib_launch<MMA_E4M3>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case MMA_E5M2: calib_launch<MMA_E5M2>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case MMA_E4E5: calib_launch<MMA_E4E5>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case MMA_BF16: calib_launch<MMA_BF16>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case MMA_F16: calib_launch<MMA_F16>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case WG_E4M3: calib_launch<WG_E4M3>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case WG_E5M2: calib_launch<WG_E5M2>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case WG_E4E5: calib_launch<WG_E4E5>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case WG_BF16: calib_launch<WG_BF16>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    case WG_F16: calib_launch<WG_F16>(nsa, nsb, vi.one_a, vi.one_b, es, dout, th); break;
    }
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<int16_t> out((size_t)nsa * nsb);
    CK(cudaMemcpy(out.data(), dout, out.size() * 2, cudaMemcpyDeviceToHost));
    CK(cudaFree(dout));
    long bad = 0, lit = 0;
    for (int sa = 0; sa < nsa; sa++)
        for (int sb = 0; sb < nsb; sb++) {
            int ra, ka, kb, nb;
            mapA(es, sa / (16 / es), sa % (16 / es), &ra, &ka);
            if (vi.wg) { /* smem element index -> (k, n) */
                int off = sb * es;
                nb = (off % 128) / 16;
                kb = ((off / 128) * 16 + off % 16) / es;
            } else
                mapB(es, sb / (8 / es), sb % (8 / es), &kb, &nb);
            int expect = -1;
            if (ka == kb && kb < K)
                for (int lane = 0; lane < 32; lane++)
                    for (int i = 0; i < 4; i++) {
                        int r, c;
                        mapC(lane, i, &r, &c);
                        if (r == ra && c == nb)
                            expect = lane * 4 + i;
                    }
            int got = out[(size_t)sa * nsb + sb];
            lit += got >= 0;
            bad += got != expect;
        }
    std::string fn = std::string(outdir) + "/calib_" + vi.name + ".bin";
    FILE *f = fopen(fn.c_str(), "wb");
    if (f) {
        fwrite(out.data(), 2, out.size(), f);
        fclose(f);
    }
    LOG("calib %-16s pairs %d lit %ld mismatches %ld\n", vi.name, nsa * nsb,
        lit, bad);
    return bad == 0;
}

/* ---- sets ------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t checksum(const Cases &cs)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = fnv(h, cs.a.data(), cs.a.size() * 4);
    h = fnv(h, cs.b.data(), cs.b.size() * 4);
    return fnv(h, cs.c.data(), cs.c.size() * 4);
}

/* Header: "MXTD", u32 version 1, u32 variant, u32 kind (0 random, 1 plan,
 * 2 exact), u64 seed, u32 n, u32 ncase, u64 input checksum, then ncase u32. */
static void write_set(const char *outdir, int v, int kind, uint64_t seed,
                      const Cases &cs, const std::vector<uint32_t> &d,
                      const char *tag)
{
    std::string fn = std::string(outdir) + "/" + VARS[v].name + "_" + tag + ".mxtd";
    FILE *f = fopen(fn.c_str(), "wb");
    if (!f) {
        fprintf(stderr, "tc_probe: cannot write %s\n", fn.c_str());
        exit(3);
    }
    uint32_t h32[3] = {1, (uint32_t)v, (uint32_t)kind};
    uint32_t nn[2] = {(uint32_t)cs.n, (uint32_t)cs.count()};
    uint64_t ck = checksum(cs);
    fwrite("MXTD", 1, 4, f);
    fwrite(h32, 4, 3, f);
    fwrite(&seed, 8, 1, f);
    fwrite(nn, 4, 2, f);
    fwrite(&ck, 8, 1, f);
    fwrite(d.data(), 4, d.size(), f);
    fclose(f);
}

static Cases random_cases(int v, int n, uint64_t seed, size_t count)
{
    const VarInfo &vi = VARS[v];
    Cases cs;
    cs.n = n;
    cs.a.resize(count * n);
    cs.b.resize(count * n);
    cs.c.resize(count);
    for (size_t q = 0; q < count; q++)
        cg_case(vi.fa, vi.fb, n, seed, q, &cs.a[q * n], &cs.b[q * n], &cs.c[q]);
    return cs;
}

/* Small integers whose every sum is exact in FP32: checks the layouts. */
static int exact_check(int v)
{
    const VarInfo &vi = VARS[v];
    int n = vi.K;
    Cases cs;
    cs.n = n;
    size_t count = 4096;
    cg_rng r;
    r.s = 12345 + v;
    for (size_t q = 0; q < count; q++) {
        for (int i = 0; i < n; i++) {
            int x = (int)cg_below(&r, 9) - 4, y = (int)cg_below(&r, 9) - 4;
            /* integers -4..4 in each format: 1.0 * 2^e with mantissa */
            uint32_t ca = 0, cb = 0;
            const cg_fmt *fs[2] = {vi.fa, vi.fb};
            int vals[2] = {x, y};
            uint32_t *outc[2] = {&ca, &cb};
            for (int s = 0; s < 2; s++) {
                int val = vals[s], sg = val < 0, m = sg ? -val : val;
                if (m == 0) { *outc[s] = 0; continue; }
                int e = m >= 4 ? 2 : m >= 2 ? 1 : 0;
                uint32_t frac = (uint32_t)(m - (1 << e)); /* < 2^e */
                uint32_t mant = frac << (fs[s]->mbits - e);
                *outc[s] = cg_code(fs[s], sg, e + fs[s]->bias, mant);
            }
            cs.a.push_back(ca);
            cs.b.push_back(cb);
            (void)vals;
        }
        int cv = (int)cg_below(&r, 2001) - 1000;
        float cf = (float)cv;
        uint32_t cb32;
        memcpy(&cb32, &cf, 4);
        cs.c.push_back(cb32);
    }
    std::vector<uint32_t> d = run_cases(v, cs);
    long bad = 0;
    for (size_t q = 0; q < count; q++) {
        long s = 0;
        for (int i = 0; i < n; i++) {
            const cg_fmt *fs[2] = {vi.fa, vi.fb};
            uint32_t codes[2] = {cs.a[q * n + i], cs.b[q * n + i]};
            long val[2];
            for (int t = 0; t < 2; t++) {
                uint32_t cd = codes[t];
                int sg = (cd >> (fs[t]->bits - 1)) & 1;
                int ef = (int)((cd >> fs[t]->mbits) & ((1u << fs[t]->ebits) - 1));
                uint32_t mant = cd & ((1u << fs[t]->mbits) - 1);
                long mag = ef == 0 ? 0 : (long)(((1u << fs[t]->mbits) | mant) << (ef - fs[t]->bias)) >> fs[t]->mbits;
                val[t] = sg ? -mag : mag;
            }
            s += val[0] * val[1];
        }
        float cf;
        memcpy(&cf, &cs.c[q], 4);
        float want = (float)(s + (long)cf), got;
        memcpy(&got, &d[q], 4);
        if (want != got) {
            if (bad < 5)
                LOG("  exact %s case %zu: want %g got %g\n", vi.name, q, want, got);
            bad++;
        }
    }
    LOG("exact %-16s cases %zu mismatches %ld\n", vi.name, count, bad);
    return bad == 0;
}

static int read_plan(const char *path, int *n_per, std::vector<int> &ns, Cases &all,
                     int *stride_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char magic[4];
    uint32_t h[7];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "MXPL", 4) ||
        fread(h, 4, 7, f) != 7) {
        fclose(f);
        return 0;
    }
    /* h: version, fa id, fb id, k, ncase, stride, elem bytes a | b<<8 */
    uint32_t ncase = h[4], stride = h[5];
    int ea = h[6] & 0xff, eb = (h[6] >> 8) & 0xff;
    ns.resize(ncase);
    std::vector<int32_t> n32(ncase);
    if (fread(n32.data(), 4, ncase, f) != ncase) { fclose(f); return 0; }
    for (uint32_t q = 0; q < ncase; q++) ns[q] = n32[q];
    all.n = (int)stride;
    all.a.assign((size_t)ncase * stride, 0);
    all.b.assign((size_t)ncase * stride, 0);
    all.c.assign(ncase, 0);
    for (size_t q = 0; q < (size_t)ncase * stride; q++) {
        uint32_t x = 0;
        if (fread(&x, ea, 1, f) != 1) { fclose(f); return 0; }
        all.a[q] = x;
    }
    for (size_t q = 0; q < (size_t)ncase * stride; q++) {
        uint32_t x = 0;
        if (fread(&x, eb, 1, f) != 1) { fclose(f); return 0; }
        all.b[q] = x;
    }
    if (fread(all.c.data(), 4, ncase, f) != ncase) { fclose(f); return 0; }
    fclose(f);
    *n_per = (int)h[3];
    *stride_out = (int)stride;
    return 1;
}

/* Runs a plan: cases grouped by their n, results back in plan order. */
static void run_plan(int v, const char *plandir, const char *outdir)
{
    const VarInfo &vi = VARS[v];
    std::string path = std::string(plandir) + "/plan_" + vi.fa->name + "_" +
                       vi.fb->name + "_k" + std::to_string(vi.K) + ".bin";
    std::vector<int> ns;
    Cases all;
    int k = 0, stride = 0;
    if (!read_plan(path.c_str(), &k, ns, all, &stride)) {
        LOG("plan %-16s missing or unreadable: %s\n", vi.name, path.c_str());
        return;
    }
    size_t nc = ns.size();
    std::vector<uint32_t> d(nc, 0);
    for (int L = 1; L <= 2; L++) {
        Cases sub;
        sub.n = L * vi.K;
        std::vector<size_t> idx;
        for (size_t q = 0; q < nc; q++)
            if (ns[q] == sub.n) {
                idx.push_back(q);
                for (int i = 0; i < sub.n; i++) {
                    sub.a.push_back(all.a[q * stride + i]);
                    sub.b.push_back(all.b[q * stride + i]);
                }
                sub.c.push_back(all.c[q]);
            }
        if (idx.empty())
            continue;
        std::vector<uint32_t> r = run_cases(v, sub);
        for (size_t t = 0; t < idx.size(); t++)
            d[idx[t]] = r[t];
    }
    write_set(outdir, v, 1, 0, all, d, "plan");
    LOG("plan %-16s cases %zu done\n", vi.name, nc);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tc_probe OUTDIR PLANDIR [SCALE [VARIANT]]\n");
        return 2;
    }
    const char *outdir = argv[1], *plandir = argv[2];
    double scale = argc > 3 ? atof(argv[3]) : 1.0;
    std::string lp = std::string(outdir) + "/probe.log";
    logf_ = fopen(lp.c_str(), "a");
    /* exit 77 (what test harnesses read as "skipped") when this machine
     * cannot run the probe at all, so that callers can tell it from a
     * failure */
    int ndev = 0;
    cudaError_t de = cudaGetDeviceCount(&ndev);
    if (de != cudaSuccess || ndev == 0) {
        fprintf(stderr, "tc_probe: no CUDA device: %s\n",
                de != cudaSuccess ? cudaGetErrorString(de) : "none found");
        return 77;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    if (prop.major != 9 || prop.minor != 0) {
        fprintf(stderr, "tc_probe: %s is sm_%d%d; this probe is built for "
                "sm_90a (Hopper) only\n", prop.name, prop.major, prop.minor);
        return 77;
    }
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    LOG("device %s sm_%d%d driver-api %d runtime %d\n", prop.name, prop.major,
        prop.minor, drv, rt);
    const uint64_t SEED = 20261125;
    int only = argc > 4 ? atoi(argv[4]) : -1; /* one variant per process */
    int layout_ok = 1;
    for (int v = 0; v < NVAR; v++) {
        if (only >= 0 && v != only)
            continue;
        const VarInfo &vi = VARS[v];
        int okc = calibrate(v, outdir);
        int oke = exact_check(v);
        layout_ok &= okc && oke;
        int main_fmt = v == MMA_E4M3 || v == MMA_E5M2 || v == MMA_BF16 ||
                       v == WG_E4M3 || v == WG_E5M2 || v == WG_BF16;
        size_t n1 = (size_t)((main_fmt ? 100000 : 20000) * scale);
        size_t n4 = (size_t)(10000 * scale);
        if (n1) {
            Cases r1 = random_cases(v, vi.K, SEED + 1000 * v + 1, n1);
            write_set(outdir, v, 0, SEED + 1000 * v + 1, r1, run_cases(v, r1), "rand1");
        }
        if (n4) {
            Cases r4 = random_cases(v, 4 * vi.K, SEED + 1000 * v + 4, n4);
            write_set(outdir, v, 0, SEED + 1000 * v + 4, r4, run_cases(v, r4), "rand4");
        }
        LOG("random %-16s n=%d: %zu cases, n=%d: %zu cases%s\n", vi.name,
            vi.K, n1, 4 * vi.K, n4, okc && oke ? "" : "  (LAYOUT CHECK FAILED)");
        run_plan(v, plandir, outdir);
    }
    if (logf_)
        fclose(logf_);
    return layout_ok ? 0 : 5;
}
