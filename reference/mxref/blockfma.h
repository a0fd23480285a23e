/* mxref/blockfma.h -- bit-accurate models of matrix-unit inner products.
 *
 * A GPU matrix unit (NVIDIA tensor core, AMD matrix core) does not compute
 * c + sum a_i*b_i with FP32 operations.  It multiplies exactly, aligns a
 * block of products (and perhaps c) to one exponent keeping a fixed number
 * of bits, adds the aligned integers exactly, normalises once and rounds
 * once: a "block FMA".  Khattak & Mikaitis ("Accurate Models of NVIDIA
 * Tensor Cores", arXiv 2512.07004) describe every generation from V100 to
 * B200 and CDNA1-3 by a handful of such features; this module implements
 * that feature model as one parameterised algorithm in integer arithmetic
 * (exact by construction; no floating-point operation touches a value).
 * docs/blockfma.md gives the algorithm step by step and the provenance of
 * every preset; docs/bounds.md ("Block-FMA models") derives the error bound.
 *
 * Vocabulary used below.  A product p = a*b of two codes is exact.  Its
 * reference exponent is e_a + e_b (the exponents of the leading bits of a
 * and b, emin for subnormals), so its significand lies in [0,4) ("kept
 * denormalised", 2 integer bits), or floor(log2|p|) when prod_norm is set.
 * c's reference exponent is that of its leading bit (-126 if subnormal).
 * The alignment exponent E of a group of terms is the largest reference
 * exponent among its nonzero terms; with F = frac_bits, every term of the
 * group is rounded (align_round) to an integer multiple of 2^(E-F).
 */
#ifndef MXREF_BLOCKFMA_H
#define MXREF_BLOCKFMA_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "mxref/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* frac_bits value meaning "keep every bit": no alignment error. */
#define MX_BFMA_EXACT INT_MAX

/* How a term's bits below its alignment grid are discarded. */
typedef enum {
    MX_ALIGN_TRUNC = 0, /* magnitude truncated: toward zero                */
    MX_ALIGN_RD,        /* toward -inf (two's-complement truncation)       */
    MX_ALIGN_RNE        /* to nearest, ties to even                        */
} mx_align_round;

typedef struct {
    const char *name;        /* preset name, e.g. "hopper-fp8"             */
    const char *source;      /* one line: where the parameters come from   */
    int measured;            /* 1: confirmed bit for bit on real hardware  */

    /* Shape.  k: products per hardware instruction (what one call of the
     * instruction consumes; mx_blockfma_dot takes multiples of it).  block:
     * products per block FMA, i.e. per normalisation and final rounding;
     * k % block == 0 (an instruction with k > block chains k/block blocks
     * through FP32).  block == 0: the whole dot is one block (exact-rne). */
    int k;
    int block;
    /* deal: how an instruction's k products are split into its k/block
     * blocks.  0: contiguous (block b takes products b*block ..).  q > 0:
     * runs of q products are dealt round-robin, so product i goes to block
     * (i / q) % (k / block) (Hopper's mma.sync FP8, which runs as two FP16
     * MMAs fed from unpacked byte pairs, has q = 2). */
    int deal;
    /* c_fadd: the instruction runs its blocks on a zero accumulator and
     * adds c at the end with one FP32 addition (round to nearest even,
     * IEEE specials, NaN -> nan_code).  This is how ptxas (CUDA 13)
     * compiles mma.sync FP8 for sm_90: two FP16 HMMAs from zero, then FADD;
     * a property of that instruction sequence, not of the tensor core. */
    int c_fadd;
    /* in_fmt: 0, or 1 + the mx_format_id of a format that a and b are
     * converted to (exactly) before they reach the unit; then the reference
     * exponent of a subnormal input is that of its leading bit, clamped to
     * that format's emin (sm_90 mma.sync FP8 converts to FP16 first). */
    int in_fmt;

    /* Alignment.  frac_bits (F): bits kept below the alignment exponent E
     * (FP32's 23 plus the paper's "extra alignment bits" n_eab, which may
     * be negative); MX_BFMA_EXACT keeps all.  sticky: each aligned term
     * also keeps one bit at 2^(E-F-1) that is the OR of everything it lost
     * (only with MX_ALIGN_TRUNC).  prod_norm: see the vocabulary above. */
    int frac_bits;
    mx_align_round align_round;
    int sticky;
    int prod_norm;

    /* Grouping.  odd_even: products of even and odd index (0-based) are
     * aligned separately, each to its own E; the group sum with the smaller
     * E is then moved to the larger E's grid with group_round and the two
     * are added (CDNA3 FP8).  Requires late_c. */
    int odd_even;
    mx_align_round group_round;

    /* Accumulator.  late_c == 0: c is one more term of the alignment
     * (early).  late_c == 1: c is added to the aligned product sum S (at
     * exponent E, grid 2^(E-F)) afterwards, as CDNA3 does.  With e_c =
     * max(exponent of c, -126) (-126 also for c == 0):
     *   E >= e_c: c is rounded with late_round onto the grid 2^(E-F) (to
     *             0 when late_c_cutoff > 0 and E - e_c > late_c_cutoff) and
     *             added;
     *   E <  e_c: S is rounded with late_round to late_sum_frac_bits bits
     *             below e_c, c is added exactly, and (unless
     *             late_norm_frac_bits is MX_BFMA_EXACT) the sum is
     *             normalised (not below exponent -126) and rounded with
     *             late_round to late_norm_frac_bits bits below its leading
     *             bit; the final rounding follows.  The published CDNA3
     *             model (MI300MC.m) is late_sum_frac_bits = 31, round-down,
     *             late_norm_frac_bits = MX_BFMA_EXACT: one rounding. */
    int late_c;
    mx_align_round late_round;
    int late_sum_frac_bits;
    int late_norm_frac_bits;
    int late_c_cutoff;

    /* Subnormals and range.  ftz_in: subnormal inputs (a, b and c) read as
     * zero.  ftz_prod: products below 2^-126 read as zero.  ftz_out: results
     * below 2^-126 become zero.  prod_ovf_inf: products of magnitude
     * >= 2^128 are infinities before accumulation. */
    int ftz_in;
    int ftz_prod;
    int ftz_out;
    int prod_ovf_inf;

    /* Output.  out_prec: significant bits of the normalised sum that reach
     * the final rounding; the bits below are truncated (24 or more: none).
     * final_round: rounding of the sum to FP32 (MX_RNE, MX_RTZ, MX_RUP,
     * MX_RDOWN).  ovf_inf: a sum of magnitude >= 2^128 is an infinity
     * whatever the rounding mode (0: IEEE 754 overflow, where rounding
     * toward zero gives the largest finite value).  zero_pos: a zero result
     * is +0 (0: IEEE 754 signs, -0 only from -0 terms or rounding down).
     * nan_code: the FP32 NaN the unit produces. */
    int out_prec;
    mx_round final_round;
    int ovf_inf;
    int zero_pos;
    uint32_t nan_code;
} mx_blockfma_params;

/* The preset named name ("cdna3-fp8", "cdna3-bf16", "hopper-fp8",
 * "hopper-bf16", "exact-rne", ...; case-sensitive), or NULL if unknown. */
const mx_blockfma_params *mx_blockfma_preset(const char *name);
/* The i-th preset (i = 0, 1, ...), NULL past the last: for listing. */
const mx_blockfma_params *mx_blockfma_preset_at(size_t i);

/* MX_OK if p is a consistent parameter set, else MX_EINVAL (for example
 * k % block != 0, sticky without MX_ALIGN_TRUNC, odd_even without late_c,
 * frac_bits < 0, a final rounding mode other than the four directed/RNE). */
mx_status mx_blockfma_check(const mx_blockfma_params *p);

/* One block FMA: the FP32 bits the unit returns for c + sum_{i<n} a_i b_i,
 * with a, b code arrays of formats fa, fb (uint8_t elements for 8-bit
 * formats, uint16_t for 16-bit ones) and c given as FP32 bits.
 * Preconditions: p valid (mx_blockfma_check), n <= p->block unless
 * p->block == 0, fa and fb signed formats of 8 or 16 bits.  A block of
 * more than 2^20 products, or one of more than 64 when memory runs out,
 * gives p->nan_code. */
uint32_t mx_blockfma_block_bits(const mx_blockfma_params *p,
                                const mx_format *fa, const void *a,
                                const mx_format *fb, const void *b, size_t n,
                                uint32_t c_bits);

/* What a chain of the hardware's matrix instructions returns for one
 * output element: d = c; for each instruction's k products in order, and
 * for each of its blocks in order (see deal), d = block FMA(the block's
 * products, d).  n must be a multiple of p->k
 * (e.g. 32 = two 16-product CDNA3 FP8 MFMA blocks); with block == 0 the n
 * products form one block.  Returns FP32 bits; mx_blockfma_dot the float. */
uint32_t mx_blockfma_dot_bits(const mx_blockfma_params *p,
                              const mx_format *fa, const void *a,
                              const mx_format *fb, const void *b, size_t n,
                              uint32_t c_bits);
float mx_blockfma_dot(const mx_blockfma_params *p, const mx_format *fa,
                      const void *a, const mx_format *fb, const void *b,
                      size_t n, float c);

/* A rigorous bound on |mx_blockfma_dot(p, ..., n, c) - (c + sum a_i b_i)|
 * for finite inputs whose chain never overflows, given |c| = c_abs and
 *     sum_abs >= sum_i max(|a_i b_i|, 2^(r_a + r_b)),
 * r_x the reference exponent of x: that of its leading bit position (the
 * format's emin for a subnormal x; clamped to in_fmt's emin when p widens
 * the inputs).  A subnormal input can sit on a coarser alignment grid than
 * its value suggests, which the max accounts for.  mx_blockfma_sum_abs
 * computes sum_i max(|a_i|, 2^r_a) max(|b_i|, 2^r_b), which is at least
 * that and is sum |a_i b_i| for normal (or zero) inputs.
 * Derivation: docs/bounds.md, "Block-FMA models".  Returns +inf for
 * parameter sets it does not cover (flush-to-zero ones) and bad input. */
double mx_blockfma_bound(const mx_blockfma_params *p, size_t n,
                         double sum_abs, double c_abs);
/* A tighter rigorous bound on the same quantity, from the operands: per
 * block, the alignment loss is charged against the block's largest
 * reference magnitude (max over its products of w_i = max(|a_i|, 2^r_a)
 * max(|b_i|, 2^r_b), and the incoming accumulator) instead of the sum of its
 * magnitudes, for its nonzero products only; the chain (instructions,
 * blocks, deal, c_fadd) is walked as mx_blockfma_dot_bits walks it, with
 * |c| <= c_abs.  Evaluated with every operation rounded upward.  Never
 * above mx_blockfma_bound's value by more than its rounding.  Derivation:
 * docs/bounds.md, "Block-FMA models: the per-block bound".  +inf for
 * flush-to-zero parameter sets, NaN or infinite operands, bad input. */
double mx_blockfma_bound_dot(const mx_blockfma_params *p, const mx_format *fa,
                             const void *a, const mx_format *fb, const void *b,
                             size_t n, double c_abs);
/* sum_abs of mx_blockfma_bound for these operands, rounded up (binary64);
 * +inf if an operand is infinite or NaN. */
double mx_blockfma_sum_abs(const mx_blockfma_params *p, const mx_format *fa,
                           const void *a, const mx_format *fb, const void *b,
                           size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MXREF_BLOCKFMA_H */
