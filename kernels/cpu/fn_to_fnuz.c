/* fn_to_fnuz.c -- C emulation of kernels/fn_to_fnuz.hip: checkpoint
 * E4M3FN -> E4M3FNUZ (facts §2).  Scan every scale for a byte >= 254 first
 * (the smallest such index is reported and nothing is written), then
 * rewrite the value bytes and write the incremented scales, packed
 * [E, K/32, N] or not, one expert per task (mxk_cpu_set_parallel). */
#include "cpu.h"
#include "mxk_numerics.h"

/* Expert e's values and scales (its slices of both, packed or not). */
static void expert_task(void *v, size_t ei)
{
    const mxk_fnuz_args *a = v;
    const int64_t e = (int64_t)ei, N = a->n, G = a->k / 32;
    const int64_t per = N * G * 32;
    for (int64_t i = e * per; i < (e + 1) * per; i++) {
        uint8_t b = a->vals[i];
        a->out_vals[i] = b == 0x80 && a->mutant != MXK_MUT_FNUZ_KEEP_80 ? 0 : b;
    }
    int inc = a->mutant == MXK_MUT_FNUZ_NO_INC ? 0 : 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            int64_t src = (e * N + n) * G + g;
            int64_t dst = a->pack ? (e * G + g) * N + n : src;
            a->out_scales[dst] = (uint8_t)(a->scales[src] + inc);
        }
}

mxk_status mxk_cpu_fn_to_fnuz(const mxk_fnuz_args *a)
{
    const int64_t E = a->experts, N = a->n, G = a->k / 32;
    const int64_t nscales = E * N * G;
    *a->bad_index = -1;
    for (int64_t i = 0; i < nscales; i++)
        if (a->scales[i] >= 254) {
            *a->bad_index = i;
            return MXK_ERANGE;
        }
    /* experts write disjoint slices: one task each (mxk_cpu_set_parallel) */
    mxk_cpu_parallel_for((size_t)E, expert_task, (void *)a);
    return MXK_OK;
}
