/* moe_align.hip -- vLLM moe_align_block_size semantics, deterministic.
 *
 * One thread block does it all (routing tables are small: T*topk ids):
 *   1. fill sorted_ids with the pad id and expert_ids with -1;
 *   2. count the rows of each expert in shared memory (atomicAdd: the
 *      counts do not depend on the order);
 *   3. thread 0 lays the experts out in id order, each padded to a multiple
 *      of block_m, writes the per-block expert ids (through expert_map)
 *      and *num_post_pad, and picks the expert of the planted row shift;
 *   4. one thread per expert scans all ids in increasing order and writes
 *      its own rows: the order within an expert is the id order (stable),
 *      whatever the scheduling.
 * Same layout and same bug as kernels/cpu/moe_align.c.
 */
#include "mxk_gpu.h"

#define MXK_ALIGN_MAX_EXPERTS 2048 /* 16 KiB of shared counts and offsets */

__global__ void mxk_moe_align_kernel(const int32_t *topk_ids, int32_t nids,
                                     int E, int bm, const int32_t *expert_map,
                                     int32_t *sorted_ids, int64_t cap,
                                     int32_t *expert_ids, int64_t capb,
                                     int32_t *num_post_pad, int mutant)
{
    __shared__ int32_t cnt[MXK_ALIGN_MAX_EXPERTS], off[MXK_ALIGN_MAX_EXPERTS];
    for (int64_t i = threadIdx.x; i < cap; i += blockDim.x)
        sorted_ids[i] = nids;
    for (int64_t b = threadIdx.x; b < capb; b += blockDim.x)
        expert_ids[b] = -1;
    for (int e = threadIdx.x; e < E; e += blockDim.x)
        cnt[e] = 0;
    __syncthreads();
    for (int32_t i = threadIdx.x; i < nids; i += blockDim.x)
        if (topk_ids[i] >= 0 && topk_ids[i] < E) /* validated on the host */
            atomicAdd(&cnt[topk_ids[i]], 1);
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t o = 0;
        int shifted = -1, prev_has_pad = 0;
        for (int e = 0; e < E; e++) {
            off[e] = o;
            if (cnt[e] == 0)
                continue;
            int32_t len = (cnt[e] + bm - 1) / bm * bm;
            if (mutant == MXK_MUT_EXPERT_SHIFT && shifted < 0 && o > 0 &&
                prev_has_pad) {
                shifted = e;
                off[e] = o - 1;
            }
            prev_has_pad = len > cnt[e];
            o += len;
        }
        *num_post_pad = o;
    }
    __syncthreads();
    /* per-block expert ids (blocks of an expert start at its unshifted
     * offset, which is off[e] rounded up to block_m) */
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        if (cnt[e] == 0)
            continue;
        int32_t start = (off[e] + bm - 1) / bm * bm;
        int32_t len = (cnt[e] + bm - 1) / bm * bm;
        int32_t id = expert_map ? expert_map[e] : e;
        for (int32_t b = start / bm; b < (start + len) / bm; b++)
            expert_ids[b] = id;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        if (cnt[e] == 0)
            continue;
        int32_t p = off[e];
        for (int32_t i = 0; i < nids; i++)
            if (topk_ids[i] == e)
                sorted_ids[p++] = i;
    }
}

extern "C" mxk_status mxk_launch_moe_align(const mxk_align_args *a,
                                           void *stream)
{
    mxk_status st =
        mxk_check_align_scalars(a, mxk_gpu_errbuf(), MXK_GPU_ERRLEN);
    if (st)
        return st;
    int64_t cap = mxk_align_max_rows(a->tokens, a->topk, a->experts,
                                     a->block_m);
    int64_t capb = mxk_align_max_blocks(a->tokens, a->topk, a->experts,
                                        a->block_m);
    if (a->experts > MXK_ALIGN_MAX_EXPERTS) {
        snprintf(mxk_gpu_errbuf(), MXK_GPU_ERRLEN,
                 "moe_align: experts = %d is more than the GPU kernel's %d",
                 a->experts, MXK_ALIGN_MAX_EXPERTS);
        return MXK_EINVAL;
    }
    hipLaunchKernelGGL(mxk_moe_align_kernel, dim3(1), dim3(256), 0,
                       (hipStream_t)stream, a->topk_ids, a->tokens * a->topk,
                       a->experts, a->block_m, a->expert_map, a->sorted_ids,
                       cap, a->expert_ids, capb, a->num_post_pad, a->mutant);
    return mxk_gpu_launched("moe_align");
}
