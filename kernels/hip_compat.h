/* hip_compat.h -- one runtime header for the HIP sources of kernels/,
 * included first by every kernel source (through mxk_gpu.h):
 *   - hipcc / clang -x hip (AMD): the real <hip/hip_runtime.h>, MXK_AMD;
 *   - nvcc: the HIP runtime names the kernels use mapped onto CUDA's,
 *     MXK_NVIDIA (Debian's HIP 5.2 NVIDIA headers do not build with CUDA
 *     13, which is why this exists);
 *   - -DMXK_EMU (g++, for make check): host-thread emulation, hip_emu.h.
 * Kernels launch with hipLaunchKernelGGL(kernel, grid, block, shmem,
 * stream, args...), native in HIP and defined here for the other two.
 * Keep it small: only names the kernels use.
 */
#ifndef MXK_HIP_COMPAT_H
#define MXK_HIP_COMPAT_H

#if defined(MXK_EMU) /* host threads, for make check (hip_emu.h) */
#include "hip_emu.h"
#define MXK_AMD 1 /* its MFMA kernels too, chosen by MXK_EMU_ARCH=gfx942 */
#elif defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__) && !defined(__CUDACC__)
#include <hip/hip_runtime.h>
#define MXK_AMD 1
#else /* nvcc */
#include <cuda_runtime.h>
#define MXK_NVIDIA 1
typedef cudaError_t hipError_t;
typedef cudaStream_t hipStream_t;
typedef cudaEvent_t hipEvent_t;
typedef cudaDeviceProp hipDeviceProp_t;
#define hipSuccess cudaSuccess
#define hipMalloc cudaMalloc
#define hipFree cudaFree
#define hipMemcpy cudaMemcpy
#define hipMemcpy2D cudaMemcpy2D
#define hipMemcpyAsync cudaMemcpyAsync
#define hipMemset cudaMemset
#define hipMemsetAsync cudaMemsetAsync
#define hipMemcpyHostToDevice cudaMemcpyHostToDevice
#define hipMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define hipMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define hipDeviceSynchronize cudaDeviceSynchronize
#define hipGetLastError cudaGetLastError
#define hipGetErrorString cudaGetErrorString
#define hipGetDeviceCount cudaGetDeviceCount
#define hipGetDeviceProperties cudaGetDeviceProperties
#define hipSetDevice cudaSetDevice
#define hipGetDevice cudaGetDevice
#define hipEventCreate cudaEventCreate
#define hipEventDestroy cudaEventDestroy
#define hipEventRecord cudaEventRecord
#define hipEventSynchronize cudaEventSynchronize
#define hipEventElapsedTime cudaEventElapsedTime
#define hipStreamCreate cudaStreamCreate
#define hipStreamDestroy cudaStreamDestroy
#define hipStreamSynchronize cudaStreamSynchronize
#define hipHostMalloc(p, n, flags) cudaMallocHost((p), (n))
#define hipHostFree cudaFreeHost
#define hipLaunchKernelGGL(kernel, grid, block, shmem, stream, ...)            \
    kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#endif

#endif
