/* mt19937.c -- seeding and the twist of the case generator's MT19937
 * (mt19937.h). */
#include "mt19937.h"

void mxr_mt_seed(mxr_mt *m, unsigned long seed)
{
    uint32_t x = seed ? (uint32_t)seed : 4357u; /* as GSL: 0 only, not 2^32 */
    m->s[0] = x;
    for (unsigned i = 1; i < MXR_MT_N; i++) {
        x = 1812433253u * (x ^ (x >> 30)) + i;
        m->s[i] = x;
    }
    m->i = MXR_MT_N;
}

/* word k's successor: the upper bit of s[k], the lower 31 of s[k + 1],
 * shifted, twisted by the matrix A when odd, xored with s[k + M] (already
 * renewed for k >= N - M, as the recurrence requires) */
static inline uint32_t twist(uint32_t hi, uint32_t lo, uint32_t far)
{
    uint32_t y = (hi & 0x80000000u) | (lo & 0x7fffffffu);
    return far ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
}

void mxr_mt_refill(mxr_mt *m)
{
    uint32_t *s = m->s;
    unsigned k = 0;
    for (; k < MXR_MT_N - MXR_MT_M; k++)
        s[k] = twist(s[k], s[k + 1], s[k + MXR_MT_M]);
    for (; k < MXR_MT_N - 1; k++)
        s[k] = twist(s[k], s[k + 1], s[k + MXR_MT_M - MXR_MT_N]);
    s[MXR_MT_N - 1] = twist(s[MXR_MT_N - 1], s[0], s[MXR_MT_M - 1]);
    m->i = 0;
}
