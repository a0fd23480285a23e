/* cpu.h -- the C emulation of each kernel (private to libmxk).
 *
 * Each function computes what its HIP kernel computes, in the portable
 * path's order, on host memory.  Arguments are already validated
 * (mxk_check.h) by ops.c, which also times them.  Return MXK_OK, or the
 * status of a data-dependent refusal.
 */
#ifndef MXK_CPU_H
#define MXK_CPU_H

#include "mxk.h"

mxk_status mxk_cpu_mx_quant(const mxk_quant_args *a);
mxk_status mxk_cpu_fn_to_fnuz(const mxk_fnuz_args *a);
mxk_status mxk_cpu_moe_align(const mxk_align_args *a);
mxk_status mxk_cpu_mxfp8_group_gemm(const mxk_mxfp8_gemm_args *a);
mxk_status mxk_cpu_bf16_group_gemm(const mxk_bf16_gemm_args *a);
mxk_status mxk_cpu_swiglu_quant(const mxk_swiglu_args *a);
mxk_status mxk_cpu_moe_sum(const mxk_sum_args *a);

/* fn(ctx, i) for i < n: through mxk_cpu_set_parallel's loop, or in order
 * in this thread when there is none. */
void mxk_cpu_parallel_for(size_t n, mxk_task_fn fn, void *ctx);

/* A GEMM's output columns in tasks of this many (the last may be short). */
#define MXK_CPU_COL_CHUNK 32

/* cols(ctx, n0, n1, buf, ids): a GEMM's output columns [n0, n1) of every
 * row, with scratch buf (nbuf floats) and ids (nids int32). */
typedef void (*mxk_cols_fn)(const void *ctx, int64_t n0, int64_t n1, float *buf,
                            int32_t *ids);

/* Runs cols over the N columns in chunks of MXK_CPU_COL_CHUNK, as tasks of
 * mxk_cpu_parallel_for, each with scratch of its own; a chunk whose scratch
 * cannot be had runs afterwards in this thread with scratch taken before
 * any chunk ran.  MXK_ENOMEM (nothing written) when even that fails. */
mxk_status mxk_cpu_by_columns(int64_t N, size_t nbuf, size_t nids, mxk_cols_fn cols,
                              const void *ctx);

#endif
