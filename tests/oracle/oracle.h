/* oracle.h -- the test oracles shared by the Check suites: values derived
 * independently of the code under test, written once.
 *
 * MPFR rounding to a binary format.  A format is given by its precision p
 * (significand bits, hidden bit included), the exponent of its smallest
 * normal, emin, and of its largest binade, emax (IEEE style: values are
 * 1.f * 2^e, emin <= e <= emax, subnormals below 2^emin down to
 * 2^(emin - p + 1)).  The rounding is MPFR's (mpfr_subnormalize at the
 * format's range, a single rounding); beyond the largest finite value MPFR
 * gives infinity (RNDN, away) or the largest finite (toward zero).
 *
 * Simple reference implementations, written from the production facts
 * (/work/shared/facts/production-numerics.md) without the library's
 * quantizer or encoder: the E8M0 scale as production decodes it, and the
 * production MX quantizer of one 32-value block.
 */
#ifndef MXV_TEST_ORACLE_H
#define MXV_TEST_ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include <mpfr.h>
#include "mxref/format.h"

/* x rounded to the format (p, emin, emax) in direction rnd, as a binary64
 * (exact: p <= 53 and the range lies within binary64's). */
double oracle_round(mpfr_srcptr x, int p, int emin, int emax, mpfr_rnd_t rnd);
double oracle_round_d(double x, int p, int emin, int emax, mpfr_rnd_t rnd);

/* FP32 round-to-nearest-even of x, with subnormals and overflow to inf. */
float oracle_rn32(mpfr_srcptr x);

/* RN32 of the exact sum of n binary64 terms (each term exact, the sum
 * exact in MPFR before the one rounding). */
float oracle_rn32_sum(const double *t, size_t n);

/* The E8M0 scale byte s as production decodes it, in FP32: 2^(s - 127),
 * and 0 for s == 0 (facts: byte 0 decodes to 0.0, not 2^-127). */
float oracle_e8m0_production(uint8_t s);

/* The production MX quantizer on one block of 32 FP32 values (finite),
 * written on MPFR: amax = max |x| (at least 1e-30f), scale byte
 * s = clamp(floor(log2 amax) + 127, 0, 254), each element x * 2^(127 - s)
 * rounded to nearest-even in the element format (subnormals included) and
 * its code found by searching every code's value; a value beyond the
 * largest finite becomes the format's NaN code (no clamp). */
void oracle_mx_quant_block(mx_format_id elem, const float *x, uint8_t *q,
                           uint8_t *s);

#endif
