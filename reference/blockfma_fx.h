/* blockfma_fx.h -- the wide fixed-point integers of the block-FMA model
 * (blockfma.c; not installed): a two's-complement accumulator of FX_LIMBS
 * 64-bit limbs with a binary exponent (value = integer * 2^exp), wide
 * enough for the exact sum of any block of FP8/BF16/FP16 products and an
 * FP32 c, and the few operations the model needs, each exact or rounding
 * only where asked. */
#ifndef MXREF_BLOCKFMA_FX_H
#define MXREF_BLOCKFMA_FX_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/blockfma.h"

#define FX_LIMBS 10
#define FX_BITS (64 * FX_LIMBS)

typedef struct {
    uint64_t l[FX_LIMBS]; /* two's complement, little-endian limbs */
    int n;                /* limbs in use: l[n..] are sign copies   */
    int exp;              /* value = (signed integer) * 2^exp       */
} fx;

/* s = 0 on the grid 2^exp. */
void mxb_fx_zero(fx *s, int exp);
int mxb_fx_is_zero(const fx *s);
/* s += (neg ? -1 : 1) * m * 2^sh (units of s's grid), sh >= 0. */
void mxb_fx_add_mag(fx *s, int neg, uint64_t m, int sh);
/* s += t, both on the same grid. */
void mxb_fx_add(fx *s, const fx *t);
/* s += t on the finer of their grids (exact). */
void mxb_fx_add_any(fx *s, const fx *t);
/* Magnitude as an unsigned FX_LIMBS-limb array, and the sign. */
void mxb_fx_abs(const fx *s, uint64_t out[FX_LIMBS], int *neg);
/* Moves s onto the grid 2^new_exp, rounding with mode when bits drop. */
void mxb_fx_rescale(fx *s, int new_exp, mx_align_round mode);

/* Unsigned FX_LIMBS-limb magnitudes: bit length, any bit below position b,
 * logical shift right by r >= 0. */
int mxb_limbs_bitlen(const uint64_t *l);
int mxb_limbs_any_below(const uint64_t *l, int b);
void mxb_limbs_shr(uint64_t *l, int r);

/* ---- fast paths (blockfma.c, blockfma_mag.c) ----------------------------
 * The model and its bounds take shortcuts that give the same bits as the
 * general code: a block whose aligned sum fits 64 bits is summed in one
 * int64 (blockfma.c, align_group), 8-bit codes are looked up in a table of
 * their magnitudes (below), and rounding upward is a step of the bit
 * pattern.  mxb_set_slow(1) turns every shortcut off, for the tests that
 * compare the two paths (tests/check_blockfast.c); not for concurrent use
 * while other threads evaluate the model. */
void mxb_set_slow(int on);
extern int mxb_slow;

/* What the bounds need of one operand code, with the reference exponent as
 * the model takes it (mxref/blockfma.h; in_fmt: the parameter's in_fmt):
 * cls 0 zero, 1 finite nonzero, 2 NaN or infinity; v = |value|, p =
 * 2^r (both exact in binary64). */
typedef struct {
    double v, p;
    int cls;
} mxb_mag;

/* The magnitude a code contributes to the bounds' w of a product,
 * max(v, p): w = max(|a|, 2^r_a) max(|b|, 2^r_b), at least |a b| and
 * 2^(r_a + r_b) both, and |a b| itself when neither operand is subnormal.
 * Exact (a product of two 8- or 16-bit values), and one multiplication
 * per product where max(|a b|, 2^(r_a + r_b)) took two and a compare. */
static inline double mxb_wmag(mxb_mag m) { return m.v > m.p ? m.v : m.p; }

/* The table of 8- or 16-bit format f under in_fmt (2^bits entries; the
 * 16-bit ones built on first use, kept for the process), or NULL (wider
 * formats, an in_fmt out of range, no memory, or the slow path): then
 * decode with mxb_mag_of. */
const mxb_mag *mxb_mag_table(const mx_format *f, int in_fmt);
/* One code, decoded (what the table holds). */
mxb_mag mxb_mag_of(const mx_format *f, int in_fmt, uint32_t code);

/* One above the largest exponent of a code's |value| or 2^r under in_fmt
 * (the parameter's, 0 for none): every bound magnitude (mxb_wmag) of f is
 * below 2^mxb_mag_hi; every nonzero one is at least 2^(emin - mbits). */
int mxb_mag_hi(const mx_format *f, int in_fmt);
/* 1 when every sum of at most n reference magnitudes w (mxb_wmag) of
 * fa x fb products under in_fmt (the parameter's, 0
 * for none) is exact in binary64, whatever the order: every w is a
 * multiple of 2^(lo_a + lo_b) (lo: the format's least quantum, emin -
 * mbits) below 2^(hi_a + hi_b) (hi: one above the larger of emax and
 * in_fmt's emin, which bounds 2^r), so a sum of n of them needs at most
 * hi_a + hi_b - lo_a - lo_b + ceil(log2 n) <= 53 bits.  E4M3 operands:
 * 36 + 5 bits for 32 terms; E5M2, BF16, FP16: no.  Where it holds, the
 * per-block bound's s (mx_blockfma_bound_dot) is summed exactly instead
 * of rounded upward per addition. */
int mxb_wsum_exact(const mx_format *fa, const mx_format *fb, int in_fmt, size_t n);
/* mx_blockfma_bound_dot's rule for a dot of n products under p: its block
 * sums s are exact (mxb_wsum_exact over the most products of a block: an
 * instruction's k, or the block, or n without blocks).  The walk asks the
 * same, for its bits to be the general code's. */
int mxb_bdot_sums_exact(const mx_blockfma_params *p, const mx_format *fa,
                        const mx_format *fb, size_t n);

/* The coefficients of mx_blockfma_bound_dot's per-block error (the
 * blockfma_bound_dot.c comment has the formula): */
typedef struct {
    double ea;    /* eps_a 2^-F per term (0 for an exact unit)            */
    double late;  /* l: late-accumulator loss, relative                   */
    double fin;   /* f: out_prec truncation and final rounding, relative  */
    double eta;   /* absolute terms (subnormal grid and results)          */
} mxb_bdot_coeffs;
mxb_bdot_coeffs mxb_bdot_coeffs_of(const mx_blockfma_params *p);

/* mx_blockfma_bound(p, n, S, 0) is (g S + c) (1 + 2^-40) for every finite
 * S >= 0 when this returns 1 (0: p has no finite bound). */
int mxb_bound_lin(const mx_blockfma_params *p, size_t n, double *g, double *c);

/* nextafter(x, +inf), by the bit pattern (the same result for every x). */
static inline double mxb_up(double x)
{
    if (x != x || x == __builtin_inf())
        return x;
    if (x == 0)
        return 0x1p-1074;
    union { double d; uint64_t u; } b = {x};
    b.u += x > 0 ? 1 : (uint64_t)-1;
    return b.d;
}

#endif
