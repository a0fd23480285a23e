/* fn_to_fnuz.hip -- checkpoint E4M3FN -> E4M3FNUZ (facts §2).
 *
 * Three kernels: a scan for scale bytes >= 254 (atomicMin of the flat
 * index, so the smallest offending index wins whatever the thread order);
 * if none, the value rewrite (0x80 -> 0x00, one thread per byte) and the
 * scale pass (one thread per output scale: it reads its source in the
 * [E, N, K/32] layout, adds 1, and writes [E, K/32, N] when packing).  The
 * launcher copies the scan result back and refuses before writing.
 */
#include "mxk_gpu.h"

__global__ void mxk_fnuz_scan_kernel(const uint8_t *scales, int64_t n,
                                     unsigned long long *bad)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && scales[i] >= 254)
        atomicMin(bad, (unsigned long long)i);
}

__global__ void mxk_fnuz_vals_kernel(const uint8_t *in, uint8_t *out,
                                     int64_t n, int mutant)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    uint8_t v = in[i];
    out[i] = v == 0x80 && mutant != MXK_MUT_FNUZ_KEEP_80 ? 0 : v;
}

__global__ void mxk_fnuz_scales_kernel(const uint8_t *in, uint8_t *out,
                                       int64_t E, int64_t N, int64_t G,
                                       int pack, int mutant)
{
    int64_t dst = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (dst >= E * N * G)
        return;
    int64_t src = dst;
    if (pack) { /* dst = (e*G + g)*N + n */
        int64_t n = dst % N, g = dst / N % G, e = dst / (N * G);
        src = (e * N + n) * G + g;
    }
    out[dst] = (uint8_t)(in[src] + (mutant == MXK_MUT_FNUZ_NO_INC ? 0 : 1));
}

extern "C" mxk_status mxk_launch_fn_to_fnuz(const mxk_fnuz_args *a,
                                            void *stream)
{
    const char *K = "fn_to_fnuz";
    mxk_status st = mxk_check_fnuz(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
    if (st)
        return st;
    hipStream_t s = (hipStream_t)stream;
    const int64_t E = a->experts, N = a->n, G = a->k / 32;
    const int64_t ns = E * N * G, nv = ns * 32;
    unsigned long long *dbad = NULL, bad = ~0ull;
    hipError_t err = hipMalloc((void **)&dbad, sizeof *dbad);
    if (err != hipSuccess)
        return mxk_gpu_fail(K, "hipMalloc", err);
    err = hipMemcpyAsync(dbad, &bad, sizeof bad, hipMemcpyHostToDevice, s);
    if (err == hipSuccess) {
        hipLaunchKernelGGL(mxk_fnuz_scan_kernel, dim3(mxk_cdiv(ns, 256)),
                           dim3(256), 0, s, a->scales, ns, dbad);
        err = hipGetLastError();
    }
    if (err == hipSuccess)
        err = hipMemcpyAsync(&bad, dbad, sizeof bad, hipMemcpyDeviceToHost, s);
    if (err == hipSuccess)
        err = hipStreamSynchronize(s);
    (void)hipFree(dbad);
    if (err != hipSuccess)
        return mxk_gpu_fail(K, "scale scan", err);
    if (bad != ~0ull) {
        *a->bad_index = (int64_t)bad;
        snprintf(mxk_gpu_errbuf(), MXK_GPU_ERRLEN,
                 "fn_to_fnuz: scales[%lld] is >= 254 (refused)",
                 (long long)bad);
        return MXK_ERANGE;
    }
    *a->bad_index = -1;
    hipLaunchKernelGGL(mxk_fnuz_vals_kernel, dim3(mxk_cdiv(nv, 256)), dim3(256),
                       0, s, a->vals, a->out_vals, nv, a->mutant);
    if ((st = mxk_gpu_launched(K)))
        return st;
    hipLaunchKernelGGL(mxk_fnuz_scales_kernel, dim3(mxk_cdiv(ns, 256)),
                       dim3(256), 0, s, a->scales, a->out_scales, E, N, G,
                       a->pack, a->mutant);
    return mxk_gpu_launched(K);
}
