/* exactnum.h -- reading and writing numbers exactly.
 *
 * Command-line values are read as exact rationals (GMP mpq): a decimal
 * string is N * 10^E, a hex float M * 2^P, whatever their length, with no
 * rounding.  Values are written as C99 hex floats or as exact decimals
 * (every dyadic rational has a terminating decimal expansion). */
#ifndef MXV_EXACTNUM_H
#define MXV_EXACTNUM_H

#include <gmp.h>
#include <mpfr.h>

typedef enum { MXV_NUM_FINITE, MXV_NUM_INF, MXV_NUM_NAN } mxv_num_kind;

typedef struct {
    mxv_num_kind kind;
    int negative;  /* sign as written (also for -0, -inf, -nan)           */
    int is_hex;    /* written as a hex float                              */
    mpq_t q;       /* the exact value when finite                         */
} mxv_num;

void mxv_num_init(mxv_num *n);
void mxv_num_clear(mxv_num *n);
/* Exponents beyond this magnitude are refused (the value would need an
 * unbounded amount of memory; no format comes near). */
#define MXV_NUM_MAX_EXP 100000L
/* Parses s: [+-] decimal [e[+-]N], [+-] 0x hex[.hex][p[+-]N], inf,
 * infinity, nan (case-insensitive).  Returns 0, or -1 when s is not a number
 * in this grammar. */
int mxv_num_parse(mxv_num *n, const char *s);

/* Newly allocated strings (free with free()). */
char *mxv_hexfloat_double(double x);   /* "0x1.cp+8", "-0x0p+0", "inf", "nan" */
char *mxv_hexfloat_mpq(const mpq_t q); /* q must be dyadic                    */
/* Exact decimal of q, whose denominator must be 2^a 5^b: "-0.0015625". */
char *mxv_decimal_mpq(const mpq_t q);
/* 1 when q's denominator is a power of two. */
int mxv_mpq_is_dyadic(const mpq_t q);

#endif
