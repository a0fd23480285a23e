/* mxk_gpu.h -- what every HIP kernel source shares (private to the GPU
 * library): the runtime (real HIP on AMD, CUDA through hip_compat.h with
 * nvcc), the C API, the shared scalar arithmetic, and the error record of
 * the launchers.
 *
 * Compile-time paths: MXK_MFMA_DEVICE is set in the device pass for gfx94x
 * (and in the host-thread emulation), where the GEMMs have a matrix-core
 * kernel; MXK_AMD is set in both passes of an AMD build (and in the
 * emulation), where the host launcher may choose that kernel: at run time,
 * when the library was built for gfx94x (MXK_BUILT_FOR_GFX94), the device
 * is a gfx94x and the caller asked MXK_PATH_AUTO.
 */
#ifndef MXK_GPU_H
#define MXK_GPU_H

#include "hip_compat.h"
#if defined(MXK_NVIDIA)
#include <cuda_fp16.h>
#endif
#include "mxk.h"
#include "mxk_check.h"
#include "mxk_numerics.h"

#if defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__) ||    \
    defined(MXK_EMU)
#define MXK_MFMA_DEVICE 1
#endif

/* The launchers' last error message (one line), per host thread. */
extern "C" char *mxk_gpu_errbuf(void);
#define MXK_GPU_ERRLEN 256

/* Records a failed runtime call or launch and returns MXK_EDEVICE. */
mxk_status mxk_gpu_fail(const char *kernel, const char *what, hipError_t err);

/* After a launch: MXK_OK, or the launch error recorded. */
static inline mxk_status mxk_gpu_launched(const char *kernel)
{
    hipError_t err = hipGetLastError();
    return err == hipSuccess ? MXK_OK : mxk_gpu_fail(kernel, "launch", err);
}

/* Whether the current device runs the matrix-core GEMM kernels (gfx94x in
 * an AMD build; never on NVIDIA: see mxk_gpu_has_mma). */
int mxk_gpu_has_mfma(void);
/* Whether the current device runs the tensor-core GEMM kernels: an NVIDIA
 * Hopper GPU (compute capability 9.x) in an nvcc build, where their
 * arithmetic is the measured block models hopper-fp8-mma / hopper-bf16. */
int mxk_gpu_has_mma(void);

/* A grow-only device buffer: *p holds at least n elements of T after a 0
 * return (reallocated, contents lost, when *cap was smaller); -1 when the
 * device has no room (*p NULL, *cap 0). */
template <class T> int mxk_gpu_grow(T **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    if (*p)
        (void)hipFree(*p);
    *p = nullptr;
    *cap = 0;
    if (hipMalloc((void **)p, n * sizeof(T)) != hipSuccess) {
        *p = nullptr;
        return -1;
    }
    *cap = n;
    return 0;
}

static inline unsigned mxk_cdiv(int64_t a, int64_t b)
{
    return (unsigned)((a + b - 1) / b);
}

#endif
