/* fn_to_fnuz.c -- C emulation of kernels/fn_to_fnuz.hip: checkpoint
 * E4M3FN -> E4M3FNUZ (facts §2).  Scan every scale for a byte >= 254 first
 * (the smallest such index is reported and nothing is written), then
 * rewrite the value bytes and write the incremented scales, packed
 * [E, K/32, N] or not. */
#include "cpu.h"
#include "mxk_numerics.h"

mxk_status mxk_cpu_fn_to_fnuz(const mxk_fnuz_args *a)
{
    const int64_t E = a->experts, N = a->n, G = a->k / 32;
    const int64_t nscales = E * N * G, nvals = nscales * 32;
    *a->bad_index = -1;
    for (int64_t i = 0; i < nscales; i++)
        if (a->scales[i] >= 254) {
            *a->bad_index = i;
            return MXK_ERANGE;
        }
    for (int64_t i = 0; i < nvals; i++) {
        uint8_t v = a->vals[i];
        a->out_vals[i] =
            v == 0x80 && a->mutant != MXK_MUT_FNUZ_KEEP_80 ? 0 : v;
    }
    int inc = a->mutant == MXK_MUT_FNUZ_NO_INC ? 0 : 1;
    for (int64_t e = 0; e < E; e++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t g = 0; g < G; g++) {
                int64_t src = (e * N + n) * G + g;
                int64_t dst = a->pack ? (e * G + g) * N + n : src;
                a->out_scales[dst] = (uint8_t)(a->scales[src] + inc);
            }
    return MXK_OK;
}
