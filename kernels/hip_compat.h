/* hip_compat.h -- build the HIP sources of kernels/ with nvcc.
 *
 * Maps the HIP runtime names the kernels use onto CUDA's; included first by
 * every kernel source when compiled by nvcc (-include kernels/hip_compat.h,
 * or via mxk_gpu.h).  Kernels launch with the <<<grid, block, shmem, stream>>>
 * syntax, which hipcc, clang -x hip and nvcc all accept.  With hipcc/clang for AMD it includes the real HIP
 * header instead.  Debian's HIP 5.2 NVIDIA headers do not build with CUDA 13,
 * which is why this exists.  Keep it small: only names the kernels use.
 */
#ifndef MXK_HIP_COMPAT_H
#define MXK_HIP_COMPAT_H

#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__) && !defined(__CUDACC__)
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
#define hipLaunchKernelGGL(kernel, grid, block, shmem, stream, ...)            \
    kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#endif

#endif
