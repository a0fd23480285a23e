/* gpu_slice.hip -- the exact reference's group partials on the device
 * (`--reference gpu`, docs/reference.md "The exact reference on the GPU").
 *
 * mxk_gpu_slice_dgemm is an mx_slice_provider (reference/mxref/gemm.h):
 * for the groups g0 .. g0 + ng - 1 of K it computes the 32-wide binary64
 * dots P[j][m][n] = sum_k a[m][32 (g0 + j) + k] b[n][32 (g0 + j) + k] of
 * the engine's prepared operands.  Those operands are integer-valued and
 * every partial sum of a group's dot stays below 2^53 (gemm_prep.c), so
 * each product and each sum is exact in binary64 whatever the order and
 * whether or not the device fuses them: the result is the same bits as
 * the CPU's BLAS, by construction, on any GPU that implements binary64
 * add, multiply and FMA correctly (IEEE 754; both CUDA and HIP do for
 * double).  That is why a plain tiled kernel is used rather than
 * cuBLAS/hipBLAS: no extra library (cuBLAS with cuBLASLt is ~600 MB), the
 * same source on NVIDIA and AMD through hip_compat.h, and nothing whose
 * internal arithmetic (e.g. emulated or reduced-precision FP64 modes)
 * would have to be trusted.  The cross-group sum, the models and the
 * bounds stay in the CPU engine (gemm_engine.c).
 *
 * The group partials' calls are serialized (one mutex) and reuse
 * grow-only device buffers; the exact sum's calls run on slots (mxk_gpu.h:
 * streams with their own arenas, so several overlap); any runtime failure
 * returns nonzero and the engine computes that call on the CPU instead.
 */
#include <mutex>
#include <new>
#include <stddef.h>
#include <string.h>
#include "mxk_gpu.h"

#define SL_T 16 /* output tile: SL_T x SL_T elements of one group */
#define SL_G 32 /* the group width (MX block) */

__global__ void slice_dgemm_kernel(const double *a, const double *b,
                                   double *P, int M, int N, int Kc)
{
    __shared__ double As[SL_T][SL_G + 1], Bs[SL_T][SL_G + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    int n0 = blockIdx.x * SL_T, m0 = blockIdx.y * SL_T, j = blockIdx.z;
    int k0 = j * SL_G;
    int len = Kc - k0 < SL_G ? Kc - k0 : SL_G;
    for (int c = tx; c < SL_G; c += SL_T) {
        int m = m0 + ty, n = n0 + ty;
        As[ty][c] = (m < M && c < len) ? a[(size_t)m * Kc + k0 + c] : 0.0;
        Bs[ty][c] = (n < N && c < len) ? b[(size_t)n * Kc + k0 + c] : 0.0;
    }
    __syncthreads();
    int m = m0 + ty, n = n0 + tx;
    if (m >= M || n >= N)
        return;
    double s = 0.0;
    for (int c = 0; c < SL_G; c++) /* exact: integers, sums < 2^53 */
        s = fma(As[ty][c], Bs[tx][c], s);
    P[((size_t)j * M + m) * N + n] = s;
}

/* The whole exact sum of each element (mx_sum_provider): the group dots
 * as above, each shifted into a 128-bit two's complement integer (the
 * engine's own arithmetic, modulo 2^128, in group order).  A nonzero dot
 * whose shift falls outside 0..127 sets *bad (the host then lets the CPU
 * engine do the call): the engine's span test excludes it, this only
 * guards. */
__global__ void exact_sum_kernel(const double *a, const double *b,
                                 const int *sha, const int *shb,
                                 unsigned long long *out, int *bad, int M,
                                 int N, int K, int G)
{
    __shared__ double As[SL_T][SL_G + 1], Bs[SL_T][SL_G + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    int n0 = blockIdx.x * SL_T, m0 = blockIdx.y * SL_T;
    int m = m0 + ty, n = n0 + tx;
    unsigned __int128 acc = 0;
    for (int g = 0; g < G; g++) {
        int k0 = g * SL_G;
        int len = K - k0 < SL_G ? K - k0 : SL_G;
        __syncthreads();
        for (int c = tx; c < SL_G; c += SL_T) {
            int mr = m0 + ty, nr = n0 + ty;
            As[ty][c] = (mr < M && c < len) ? a[(size_t)mr * K + k0 + c] : 0.0;
            Bs[ty][c] = (nr < N && c < len) ? b[(size_t)nr * K + k0 + c] : 0.0;
        }
        __syncthreads();
        if (m >= M || n >= N)
            continue;
        int sa = sha[(size_t)m * G + g];
        if (sa < 0)
            continue;
        double s = 0.0;
        for (int c = 0; c < SL_G; c++) /* exact: integers, sums < 2^53 */
            s = fma(As[ty][c], Bs[tx][c], s);
        if (s == 0.0)
            continue;
        int sh = sa + shb[(size_t)n * G + g];
        if (sh < 0 || sh > 127) {
            *bad = 1;
            continue;
        }
        acc += (unsigned __int128)(__int128)(long long)s << sh;
    }
    if (m < M && n < N) {
        out[2 * ((size_t)m * N + n)] = (unsigned long long)acc;
        out[2 * ((size_t)m * N + n) + 1] = (unsigned long long)(acc >> 64);
    }
}

namespace {
mxk_gpu_stats slice_stats("group partials"), sum_stats("exact sum");
mxk_gpu_slots sum_slots;
std::mutex slice_mu;
double *d_a, *d_b, *d_p;
size_t cap_a, cap_b, cap_p;
} // namespace

extern "C" int mxk_gpu_slice_dgemm(void *ctx, size_t M, size_t N, size_t K,
                                   const double *a, const double *b,
                                   size_t g0, size_t ng, double *P)
{
    (void)ctx;
    size_t c0 = g0 * SL_G;
    if (M == 0 || N == 0 || ng == 0 || c0 >= K || M > 0x7fffffff ||
        N > 0x7fffffff || ng > 65535)
        return -1;
    size_t c1 = (g0 + ng) * SL_G < K ? (g0 + ng) * SL_G : K;
    size_t Kc = c1 - c0;
    if ((Kc + SL_G - 1) / SL_G != ng)
        return -1;
    long long t = slice_stats.now();
    std::lock_guard<std::mutex> lock(slice_mu);
    slice_stats.lap(0, &t);
    slice_stats.calls++;
    if (mxk_gpu_grow(&d_a, &cap_a, M * Kc) || mxk_gpu_grow(&d_b, &cap_b, N * Kc) ||
        mxk_gpu_grow(&d_p, &cap_p, ng * M * N))
        return -1;
    /* only this chunk's columns, packed to leading dimension Kc */
    if (hipMemcpy2D(d_a, Kc * sizeof(double), a + c0, K * sizeof(double),
                    Kc * sizeof(double), M, hipMemcpyHostToDevice) != hipSuccess ||
        hipMemcpy2D(d_b, Kc * sizeof(double), b + c0, K * sizeof(double),
                    Kc * sizeof(double), N, hipMemcpyHostToDevice) != hipSuccess)
        return -1;
    slice_stats.lap(1, &t);
    dim3 grid(mxk_cdiv((int64_t)N, SL_T), mxk_cdiv((int64_t)M, SL_T),
              (unsigned)ng);
    dim3 block(SL_T, SL_T);
    hipLaunchKernelGGL(slice_dgemm_kernel, grid, block, 0, 0, d_a, d_b, d_p,
                       (int)M, (int)N, (int)Kc);
    if (hipGetLastError() != hipSuccess)
        return -1;
    if (slice_stats.on && hipDeviceSynchronize() != hipSuccess)
        return -1;
    slice_stats.lap(2, &t);
    if (hipMemcpy(P, d_p, ng * M * N * sizeof(double), hipMemcpyDeviceToHost) !=
        hipSuccess)
        return -1;
    slice_stats.lap(3, &t);
    return 0;
}

/* mx_sum_provider: acc (M x N unsigned 128-bit, as two 64-bit words, low
 * first: x86-64 and every little-endian host) += each element's sum.  On
 * one of the provider's slots (mxk_gpu.h), so calls from several host
 * threads overlap. */
extern "C" int mxk_gpu_exact_sum(void *ctx, size_t M, size_t N, size_t K,
                                 const double *a, const double *b,
                                 const int *sha, const int *shb, void *acc)
{
    (void)ctx;
    size_t G = (K + SL_G - 1) / SL_G;
    if (M == 0 || N == 0 || K == 0 || M > 0x7fffffff || N > 0x7fffffff ||
        K > 0x7fffffff)
        return -1;
    mxk_gpu_layout L;
    size_t oa = L.add(M * K * sizeof(double)), ob = L.add(N * K * sizeof(double));
    size_t osa = L.add(M * G * sizeof(int)), osb = L.add(N * G * sizeof(int));
    size_t obad = L.add(sizeof(int));
    L.uploads_done();
    size_t oout = L.add(2 * M * N * sizeof(unsigned long long));
    long long t = sum_stats.now();
    mxk_gpu_slot *sl = sum_slots.take(L.end);
    sum_stats.lap(0, &t);
    if (!sl)
        return -1;
    sum_stats.calls++;
    unsigned char *pin = sl->pin, *dev = sl->dev;
    int zero = 0;
    memcpy(pin + oa, a, M * K * sizeof(double));
    memcpy(pin + ob, b, N * K * sizeof(double));
    memcpy(pin + osa, sha, M * G * sizeof(int));
    memcpy(pin + osb, shb, N * G * sizeof(int));
    memcpy(pin + obad, &zero, sizeof zero);
    int rc = -1;
    if (hipMemcpyAsync(dev, pin, L.up, hipMemcpyHostToDevice, sl->stream) != hipSuccess)
        goto out;
    sum_stats.lap(1, &t);
    {
        dim3 grid(mxk_cdiv((int64_t)N, SL_T), mxk_cdiv((int64_t)M, SL_T));
        dim3 block(SL_T, SL_T);
        hipLaunchKernelGGL(exact_sum_kernel, grid, block, 0, sl->stream,
                           (const double *)(dev + oa), (const double *)(dev + ob),
                           (const int *)(dev + osa), (const int *)(dev + osb),
                           (unsigned long long *)(dev + oout), (int *)(dev + obad),
                           (int)M, (int)N, (int)K, (int)G);
    }
    if (hipGetLastError() != hipSuccess)
        goto out;
    if (sum_stats.on && hipStreamSynchronize(sl->stream) != hipSuccess)
        goto out;
    sum_stats.lap(2, &t);
    /* the flag and the sums in one copy down ([obad, end) holds both) */
    if (hipMemcpyAsync(pin + obad, dev + obad, L.end - obad, hipMemcpyDeviceToHost,
                       sl->stream) != hipSuccess ||
        hipStreamSynchronize(sl->stream) != hipSuccess)
        goto out;
    {
        int badv;
        memcpy(&badv, pin + obad, sizeof badv);
        if (badv)
            goto out;
        const unsigned long long *h = (const unsigned long long *)(pin + oout);
        unsigned long long *o = static_cast<unsigned long long *>(acc);
        for (size_t i = 0; i < M * N; i++) { /* acc += h, modulo 2^128 */
            unsigned long long lo = o[2 * i] + h[2 * i];
            o[2 * i + 1] += h[2 * i + 1] + (lo < o[2 * i]);
            o[2 * i] = lo;
        }
    }
    rc = 0;
out:
    sum_slots.give(sl);
    sum_stats.lap(3, &t);
    return rc;
}
