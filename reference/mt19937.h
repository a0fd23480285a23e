/* mt19937.h -- the case generator's random words: MT19937 (Matsumoto and
 * Nishimura, 1998), the 32-bit Mersenne Twister, seeded as GSL seeds
 * gsl_rng_mt19937 from an unsigned long, so that its words are those of
 * gsl_rng_get on that generator (tests/check_mt19937.c compares them);
 * not installed.
 *
 * Why not gsl_rng itself: each case draws two words per weight from one
 * stream per expert, and a stream is sequential, so an expert's draws are
 * one thread's serial stretch of the suite (docs/scaling.md).  GSL fetches
 * each word through a function pointer; this header's inline fetch and
 * its state refill (three plain loops the compiler vectorizes) draw about
 * four times faster.  GSL stays the definition of the words.
 */
#ifndef MXREF_MT19937_H
#define MXREF_MT19937_H

#include <stdint.h>

#define MXR_MT_N 624
#define MXR_MT_M 397

typedef struct {
    uint32_t s[MXR_MT_N];
    unsigned i; /* the next word's index; MXR_MT_N: refill first */
} mxr_mt;

/* Seeds m as gsl_rng_set(r, seed) seeds gsl_rng_mt19937: seed 0 means
 * 4357 (GSL's default), and the low 32 bits of any other seed are the
 * first word (so 2^32 gives 0, as in GSL). */
void mxr_mt_seed(mxr_mt *m, unsigned long seed);

/* The next MXR_MT_N words of state (the twist). */
void mxr_mt_refill(mxr_mt *m);

/* The next 32-bit word (tempered), as gsl_rng_get returns it. */
static inline uint32_t mxr_mt_get(mxr_mt *m)
{
    if (m->i >= MXR_MT_N)
        mxr_mt_refill(m);
    uint32_t k = m->s[m->i++];
    k ^= k >> 11;
    k ^= (k << 7) & 0x9d2c5680u;
    k ^= (k << 15) & 0xefc60000u;
    k ^= k >> 18;
    return k;
}

#endif
