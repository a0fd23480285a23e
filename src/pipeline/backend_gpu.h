/* backend_gpu.h -- the GPU backend, loaded at run time.
 *
 * The HIP kernels live in a shared library (libmxk_gpu.so, built by
 * configure --with-cuda / --with-hip) so that mxverify itself never links a
 * GPU runtime.  mxv_gpu_backend() finds and loads it once, looking in turn
 * at
 *   1. $MXVERIFY_GPU_LIB (a path; when set, only there),
 *   2. the build tree (kernels/libmxk_gpu.so of the tree it was built in),
 *   3. the installed copy in $(pkglibdir),
 * and returns its mxk_ops, or NULL with one line in why saying what is
 * missing (and the state below).  MXVERIFY_GPU_LIB naming a file that does
 * not load is BROKEN, not NO_LIBRARY.
 */
#ifndef MXV_BACKEND_GPU_H
#define MXV_BACKEND_GPU_H

#include <stddef.h>
#include "mxk.h"

typedef enum {
    MXV_GPU_OK = 0,
    MXV_GPU_NO_LIBRARY, /* built without a GPU toolchain: nothing to load  */
    MXV_GPU_NO_DEVICE,  /* a library, but no usable GPU or driver here     */
    MXV_GPU_BROKEN      /* a library that does not load, has another ABI,
                           or whose kernels cannot run on this GPU        */
} mxv_gpu_state;

/* state (may be NULL) gets why the backend is missing; tests skip on
 * NO_LIBRARY and NO_DEVICE and fail on BROKEN. */
const mxk_ops *mxv_gpu_backend(char *why, size_t whylen, mxv_gpu_state *state);
/* The library loaded by the first successful mxv_gpu_backend(), or NULL. */
const char *mxv_gpu_backend_path(void);

/* --reference gpu: loads the backend (as above) and sets its
 * mxk_gpu_slice_dgemm as the exact engine's slice provider
 * (mx_gemm_set_slice_provider, docs/reference.md) and, where the library
 * has it, mxk_gpu_exact_sum as its sum provider (mx_gemm_set_sum_provider:
 * exact-only calls summed on the device): 0, or -1 with why (and
 * the CPU reference left in place).  mxv_gpu_reference_disable restores
 * the CPU. */
#define MXK_GPU_SLICE_SYMBOL "mxk_gpu_slice_dgemm"
#define MXK_GPU_SUM_SYMBOL "mxk_gpu_exact_sum"
/* Both also set the library's mxk_gpu_block_walk, where it has it, as the
 * walk provider (mx_gemm_set_walk_provider: a block model's walk over
 * scaled 8-bit operands on the device); disable unsets it. */
#define MXK_GPU_WALK_SYMBOL "mxk_gpu_block_walk"
int mxv_gpu_reference_enable(char *why, size_t whylen);
void mxv_gpu_reference_disable(void);
/* --reference auto on the GPU backend: the library's mxk_gpu_exact_sum as
 * the sum provider only (exact-only calls summed on the device; calls with
 * a model or bounds keep the CPU's fused kernels, which are faster for
 * them than moving every group partial to the host).  0 when set, -1
 * (nothing set) without a loaded library that has it. */
int mxv_gpu_reference_enable_sum(void);
/* The loaded library's mxk_gpu_block_walk, or NULL. */
void *mxv_gpu_walk_fn(void);
/* The operands the GPU reference is timed on (bench --reference gpu,
 * tests/check_gpuref --time): one dense MXFP8 GEMM, A M x K and B N x K
 * random E4M3FN codes (no NaN) with E8M0 scales 2^(-8..7), drawn from
 * GSL's MT19937 seeded with MXV_GPUREF_SEED (the same bytes on every
 * machine), and a spec with the OCP scale decode and the default model. */
#include <stddef.h>
#include <stdint.h>
#include "mxref/gemm.h"
#define MXV_GPUREF_SEED 20261203ul
typedef struct {
    uint8_t *ca, *cb, *sa, *sb;
    mx_operand A, B;
    mx_gemm_spec spec;
} mxv_gpuref_ops;
/* 0, or -1 out of memory (nothing left to free). */
int mxv_gpuref_ops_make(mxv_gpuref_ops *o, size_t M, size_t N, size_t K);
void mxv_gpuref_ops_free(mxv_gpuref_ops *o);
/* The providers themselves (NULL without a loaded library that has them). */
void *mxv_gpu_slice_fn(void);
void *mxv_gpu_sum_fn(void);

#endif
