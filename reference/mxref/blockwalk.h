/* mxref/blockwalk.h -- one call of the block walk, as a device takes it
 * (mx_walk_provider in mxref/gemm.h; kernels/gpu_walk.hip implements one).
 *
 * The walk (reference/blockfma_gemm.c) gives, for a block:NAME model, every
 * element's model accumulator and the two sums of its accumulator bound
 * without going product by product through the general code.  This is the
 * same walk for operands whose K is a multiple of 32, with everything it
 * reads spelled out as plain data: the codes, each code's decoded value,
 * magnitude and 2^r, each group's scale in binary64 and in FP32, and the
 * walk's constants.  Two kinds of call: scaled 8-bit operands (every group
 * 32 products, each from c = 0, its partial scaled and summed in FP32),
 * and unscaled 16-bit ones (chain = 1: one chain of the unit over K, c and
 * the bound walk's state carried from group to group).
 * Plain C, no pointers into the reference's own types, so that a HIP or
 * CUDA source can include it. */
#ifndef MXREF_BLOCKWALK_H
#define MXREF_BLOCKWALK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* the walk's modes (blockfma_gemm.c walk_mode) */
enum { MX_WALK_EARLY = 1, MX_WALK_LATE = 2, MX_WALK_EXACT = 3 };

typedef struct {
    size_t M, N, K;          /* K a multiple of 32; G = K / 32            */
    int chain;               /* 0: scaled 8-bit codes; 1: unscaled 16-bit */
    const uint8_t *a, *b;    /* chain 0: codes a[m K + k], b[n K + k]     */
    const uint16_t *a16, *b16; /* chain 1: the same, 16-bit               */
    /* per code c: value, magnitude, 2^r at [3 c], [3 c + 1], [3 c + 2] (0
     * for zero codes; the operands hold no NaN or inf code): 256 codes,
     * or 65536 when chain */
    const double *dec_a, *dec_b;
    const double *sa, *sb;   /* [M][G], [N][G]: each group's scale value  */
    const float *fa, *fb;    /* the same as production's FP32 scale       */
                             /* (all four unused, NULL, when chain)       */
    const float *row_weight; /* [M] (FP32, after the sum), or NULL         */
    /* constants: walk_c and walk_g of blockfma_gemm.c */
    int mode, odd_even, c_fadd, cutoff, prod_ovf;
    uint64_t mask;           /* keeps a result's leading bits             */
    double twoF, twomF, cut_pw2, two_late, mtwo_late, infl;
    double cf_ea, cf_late, cf_fin, cf_eta; /* mxb_bdot_coeffs            */
    double lin_g, lin_c, sabs_infl;
    int xs;                  /* the bound's block sums s exact, no step   */
                             /* up per addition (mxb_wsum_exact)          */
    int nblk, inorder;       /* the group's blocks: block j is products   */
    unsigned char idx[64];   /* idx[start[j]] .. idx[start[j + 1] - 1]    */
    unsigned char start[65];
} mx_walk_call;

/* A device's walk: for every element i = m N + n, macc[i] (the model's
 * FP32 accumulator after the row weight), sum_b[i] and sum_p[i] (the
 * bound's two sums; when chain, the bound walk's D after the last group
 * and the sum |ab| over K, from which the host forms the bound), and
 * flag[i] nonzero where a group of the element needs the general code (a
 * result outside FP32's normal range, a subnormal early c, a possible
 * product overflow, an infinite c): those elements' other outputs are not
 * read.  0, or nonzero to leave the call to the CPU. */
typedef int (*mx_walk_provider)(void *ctx, const mx_walk_call *c, float *macc,
                                double *sum_b, double *sum_p, unsigned char *flag);

#ifdef __cplusplus
}
#endif
#endif
