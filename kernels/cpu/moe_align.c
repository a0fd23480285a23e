/* moe_align.c -- C emulation of kernels/moe_align.hip (vLLM
 * moe_align_block_size): count rows per expert, lay the experts out in id
 * order each padded to a multiple of block_m, then scatter the flat row ids
 * in increasing order (stable).
 *
 * Planted bug MXK_MUT_EXPERT_SHIFT: the rows of one expert e* start one slot
 * early, so its first row lands in the previous expert's region and is
 * multiplied by that expert's weights (its last slot becomes padding).  e*
 * is the lowest expert with rows whose region does not start at 0 and whose
 * preceding slot is padding (so that no row is overwritten and the result
 * is the same on every backend); without one the bug does nothing. */
#include <stdlib.h>
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_moe_align(const mxk_align_args *a)
{
    const int E = a->experts, bm = a->block_m;
    const int32_t nids = a->tokens * a->topk; /* also the pad id */
    int64_t cap = mxk_align_max_rows(a->tokens, a->topk, E, bm);
    int64_t capb = mxk_align_max_blocks(a->tokens, a->topk, E, bm);
    int32_t *cnt = calloc((size_t)E, sizeof *cnt);
    int32_t *pos = malloc((size_t)E * sizeof *pos);
    if (!cnt || !pos) {
        free(cnt);
        free(pos);
        return MXK_ENOMEM;
    }
    for (int32_t i = 0; i < nids; i++)
        cnt[a->topk_ids[i]]++;
    for (int64_t i = 0; i < cap; i++)
        a->sorted_ids[i] = nids;
    for (int64_t b = 0; b < capb; b++)
        a->expert_ids[b] = -1;
    int32_t off = 0;
    int shifted = -1, prev_has_pad = 0;
    for (int e = 0; e < E; e++) {
        pos[e] = off;
        if (cnt[e] == 0)
            continue;
        int32_t len = (cnt[e] + bm - 1) / bm * bm;
        int32_t id = a->expert_map ? a->expert_map[e] : e;
        for (int32_t b = off / bm; b < (off + len) / bm; b++)
            a->expert_ids[b] = id;
        if (a->mutant == MXK_MUT_EXPERT_SHIFT && shifted < 0 && off > 0 &&
            prev_has_pad) {
            shifted = e;
            pos[e] = off - 1;
        }
        prev_has_pad = len > cnt[e];
        off += len;
    }
    for (int32_t i = 0; i < nids; i++)
        a->sorted_ids[pos[a->topk_ids[i]]++] = i;
    *a->num_post_pad = off;
    free(cnt);
    free(pos);
    return MXK_OK;
}
