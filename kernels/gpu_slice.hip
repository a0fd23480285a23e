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
 * Calls are serialized (one mutex) and reuse grow-only device buffers;
 * any runtime failure returns nonzero and the engine computes that call
 * on the CPU instead.
 */
#include <mutex>
#include <stddef.h>
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

namespace {
std::mutex slice_mu;
double *d_a, *d_b, *d_p;
size_t cap_a, cap_b, cap_p;

int grow(double **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    if (*p)
        (void)hipFree(*p);
    *p = nullptr;
    *cap = 0;
    if (hipMalloc((void **)p, n * sizeof(double)) != hipSuccess) {
        *p = nullptr;
        return -1;
    }
    *cap = n;
    return 0;
}
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
    std::lock_guard<std::mutex> lock(slice_mu);
    if (grow(&d_a, &cap_a, M * Kc) || grow(&d_b, &cap_b, N * Kc) ||
        grow(&d_p, &cap_p, ng * M * N))
        return -1;
    /* only this chunk's columns, packed to leading dimension Kc */
    if (hipMemcpy2D(d_a, Kc * sizeof(double), a + c0, K * sizeof(double),
                    Kc * sizeof(double), M, hipMemcpyHostToDevice) != hipSuccess ||
        hipMemcpy2D(d_b, Kc * sizeof(double), b + c0, K * sizeof(double),
                    Kc * sizeof(double), N, hipMemcpyHostToDevice) != hipSuccess)
        return -1;
    dim3 grid(mxk_cdiv((int64_t)N, SL_T), mxk_cdiv((int64_t)M, SL_T),
              (unsigned)ng);
    dim3 block(SL_T, SL_T);
    hipLaunchKernelGGL(slice_dgemm_kernel, grid, block, 0, 0, d_a, d_b, d_p,
                       (int)M, (int)N, (int)Kc);
    if (hipGetLastError() != hipSuccess)
        return -1;
    if (hipMemcpy(P, d_p, ng * M * N * sizeof(double), hipMemcpyDeviceToHost) !=
        hipSuccess)
        return -1;
    return 0;
}
