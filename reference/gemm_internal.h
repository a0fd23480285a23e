/* gemm_internal.h -- the parts of the group GEMM reference (mxref/gemm.h)
 * and how they call each other (not installed).
 *
 * Data flows one way, each part in its own file:
 *   gemm_check.c        operand checks (mx_gemm_check)
 *   code_table.c        per-code facts of each format, powers of two
 *   gemm_prep.c         operand preparation: exact integer slices for BLAS,
 *                       unit and scale exponents, residual bits
 *   gemm_engine.c       the exact engine: one dgemm per 32-wide slice,
 *                       128-bit fixed-point accumulation (GMP when wide)
 *   gemm_residual.c     the residual path of irregular groups (exact terms
 *                       below the BLAS window)
 *   round_int.c         rounding exact integers (128-bit or GMP) times 2^e
 *                       to FP32 and binary64, once
 *   model_fp32_group.c  fp32-group model (on the engine's exact partials)
 *   model_fp32_seq.c    fp32-seq model (vectorized, and one group directly)
 *   model_block.c       block:NAME models (one group through mxref/blockfma.h)
 *   blockfma_gemm.c     a block model's one walk over a call: model values
 *                       and bound sums, same bits (mxg_gemm_block runs it)
 *   gemm_direct.c       the slow, simple paths: MPFR oracle, direct models
 *   gemm_bound.c        per-element bounds, the tail shared by every model
 *   gemm_bound_fp32.c   bound of the FP32 models
 *   gemm_bound_block.c  bound of the block models
 *   model_dequant.c     dequant-fp32 model
 *   gemm_bound_dequant.c bound of dequant-fp32
 *   gemm_fused.c        the fused kernels: FP8 and BF16/FP16 operands read
 *                       directly, exact sums, the fp32-group model and the
 *                       bound sums in one pass
 *   gemm_split.c        one call as blocks of output columns on the pool
 *   gemm.c              the driver, mx_gemm
 * Operand access (codes, scales, groups) is in operand.h.
 */
#ifndef MXREF_GEMM_INTERNAL_H
#define MXREF_GEMM_INTERNAL_H

#include <gmp.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "operand.h"

/* ---- code_table.c --------------------------------------------------------- */

/* m 2^e with the trailing zero bits of m moved into e (m odd, or 0 with e
 * unchanged): a value's lowest set bit is 2^e, so a group's width (its top
 * exponent minus its lowest e) counts the bits its values occupy, not their
 * format's significand -- FP8 values dequantized to BF16 (4 significant
 * bits) span 18 binades at most, as their FP8 codes do. */
static inline void mxg_trim(int32_t *m, int *e)
{
    if (*m) {
        int z = __builtin_ctz((uint32_t)(*m < 0 ? -*m : *m));
        *m /= (int32_t)1 << z; /* exact: 2^z divides m */
        *e += z;
    }
}

/* Per-code facts of a format, for every code (2^8 or 2^16 of them). */
typedef struct {
    size_t n;
    int32_t *m;      /* value = m * 2^e exactly, m odd (mxg_trim) or 0    */
    int16_t *e, *top;/* top: values are below 2^top                       */
    unsigned char *bad; /* NaN or inf                                     */
    int lo, hi;      /* lowest e and highest top of the nonzero finite codes */
    /* 16-bit sign-magnitude order (mxg_scan16): c and c ^ 0x8000 of one
     * class and magnitude, the low 15 bits' patterns in increasing
     * magnitude from the one zero, the NaN and inf patterns from bad_from
     * on (BF16 and FP16 are so) */
    int ordered16;
    uint32_t bad_from;
} mxg_code_table;

/* One group of 16-bit codes of an ordered16 format, branch free: the
 * lowest e of its nonzero codes (INT_MAX: none), from the format's table
 * of e, and in *amax its largest code with the sign bit cleared -- a NaN
 * or inf code among them when *amax >= bad_from, else the code of its
 * largest magnitude and top exponent. */
static inline int mxg_scan16(const uint16_t *codes, size_t len, const int16_t *e,
                             uint16_t *amax)
{
    uint16_t mx = 0;
    int emin = INT_MAX;
    for (size_t i = 0; i < len; i++) {
        uint16_t c = codes[i], a = c & 0x7FFF;
        int ev = a ? e[c] : INT_MAX;
        mx = a > mx ? a : mx;
        emin = ev < emin ? ev : emin;
    }
    *amax = mx;
    return emin;
}

/* The table of an 8- or 16-bit format (built once per process, shared);
 * NULL when the format is wider or the tables could not be allocated. */
const mxg_code_table *mxg_code_table_get(const mx_format *f);

/* Formats whose every value is an integer multiple of the smallest
 * subnormal below 2^24 of it (E4M3FN, E4M3FNUZ: 18 binades) take a fixed
 * unit: no group is irregular.  Sets the lowest exponent and the highest
 * top of the nonzero finite codes; nonzero for fixed-unit formats. */
int mxg_fixed_unit(const mxg_code_table *ct, int *unit, int *topmax);

/* 2^e for e in [-1100, 1100] as binary64, by table (exact; no libm). */
extern double mxg_pow2_tab[2201];
static inline double mxg_pow2(int e) { return mxg_pow2_tab[e + 1100]; }

/* ---- gemm_check.c --------------------------------------------------------- */

/* mx_gemm_check; codes = 0 skips the scan of the codes for NaN and inf
 * (operand preparation refuses them as it reads them). */
mx_status mxg_check(const mx_gemm_spec *s, const mx_operand *A,
                    const mx_operand *B, int codes);

/* ---- gemm_prep.c ---------------------------------------------------------- */

/* One operand prepared for the engine. */
typedef struct {
    size_t rows, K, G;
    double *ints;         /* rows x K integer-valued: the group's values, or */
                          /* in irregular groups their bits >= 2^u          */
    double *absints;      /* rows x K |ints|                                 */
    int *u;               /* rows x G unit exponent of the group's ints       */
    int *sx;              /* rows x G scale exponent or MXG_ZERO_SCALE        */
    unsigned char *irr;   /* rows x G irregular group: has residual bits     */
    size_t *res_off;      /* rows x G + 1: residual entries of each group    */
    int32_t *res_m;       /* residual value bits: res_m * 2^res_e at column  */
    int *res_e;           /* k0 + res_k (exact; below the group's 2^u)       */
    unsigned char *res_k;
    size_t nres, cap;
    int *lo, *hi;         /* rows: lowest unit and highest top exponent of   */
                          /* any nonzero (scaled) value; lo > hi when none   */
    double *amax;         /* rows: max |value| unscaled                      */
    size_t nirr;
} mxg_prep;

/* Prepares both operands (windows chosen so that every 32-product group
 * sum of ints stays below 2^53).  MX_ERANGE for NaN or inf codes.  On
 * success free both with mxg_prep_free; on failure nothing is held. */
mx_status mxg_prep_operands(const mx_gemm_spec *s, const mx_operand *A,
                            const mx_operand *B, mxg_prep *a, mxg_prep *b);
/* The windows mxg_prep_operands chooses (from the widest group of each
 * whole operand; wa + wb <= 48), and the preparation with given windows. */
void mxg_windows(const mx_operand *A, const mx_operand *B, int *wa, int *wb);
/* Its two parts: an operand's widest group (the largest top - lowest unit
 * exponent over its nonzero group products' terms: a max over rows, so the
 * rows may be taken in any blocks), and the split of the 48 bits. */
int mxg_natural_width(const mx_operand *o);
void mxg_choose_windows(int na, int nb, int *wa, int *wb);
mx_status mxg_prep_operands_w(const mx_gemm_spec *s, const mx_operand *A,
                              const mx_operand *B, int wa, int wb, mxg_prep *a,
                              mxg_prep *b);
void mxg_prep_free(mxg_prep *p);

/* ---- gemm_engine.c -------------------------------------------------------- */

/* The per-element accumulators of one call. */
typedef struct {
    size_t M, N, G;
    unsigned __int128 *acc; /* M x N two's complement fixed point, unit    */
                            /* 2^(loA[m] + loB[n]); wraps for slow ones    */
    unsigned char *slow;  /* M x N: accumulate in GMP                        */
    mpz_t *big;           /* M x N, initialized for slow elements only       */
    size_t *slow_list, nslow;
    float *gacc;          /* M x N fp32-group model accumulator, or NULL     */
    double *sabs;         /* M x N sum |a b| scale (bounds), or NULL         */
} mxg_accum;

/* v * 2^s without the undefined behaviour of shifting a negative value */
static inline __int128 mxg_shl128(int64_t v, int s)
{
    return (__int128)((unsigned __int128)(__int128)v << s);
}

/* The main loop: one dgemm per K slice, exact accumulation into ac, the
 * sum |a b| statistic and the fp32-group model on the same exact partials. */
mx_status mxg_engine_run(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, const mxg_prep *a,
                         const mxg_prep *b, mxg_accum *ac);

/* ---- gemm_residual.c ------------------------------------------------------ */

/* Adds the residual terms of group g (P: the slice's dgemm partials) to the
 * exact accumulators and, for the fp32-group model, the group's partial for
 * elements that have residual terms (the main loop skipped them). */
void mxg_residual_add(const mx_gemm_spec *s, const mx_operand *A,
                      const mx_operand *B, const mxg_prep *a, const mxg_prep *b,
                      mxg_accum *ac, size_t g, const double *P);

/* ---- model_dequant.c (dequant-fp32) ---------------------------------------- */
/* Operand value (r, k) dequantized to FP32 (f32(value * f32(dec scale))),
 * the whole-K FMA chain from c, and every element (after the weight). */
float mxg_dequant_f32(const mx_operand *o, mx_e8m0_decode d, size_t r, size_t k);
float mxg_dequant_chain(const mx_operand *A, size_t m, const mx_operand *B,
                        size_t n, mx_e8m0_decode d, float c);
mx_status mxg_dequant_gemm(const mx_gemm_spec *s, const mx_operand *A,
                           const mx_operand *B, float *out);

/* ---- round_int.c ---------------------------------------------------------- */

/* Rounds v * 2^e (v a signed 128-bit integer) to FP32, exactly once. */
float mxg_round_f32(__int128 v, int e);
/* Correctly rounded binary64 of v * 2^e (|e| small enough that the result
 * is a normal binary64: true for every GEMM here). */
double mxg_round_f64(__int128 v, int e);
/* Correctly rounded binary64 of z * 2^e * w (w a binary64). */
double mxg_round_mpz_f64(const mpz_t z, long e, double w);
/* Correctly rounded binary64 of v * 2^e * w for an FP32 weight w (v = 0:
 * 0.0 * w, -0 under a negative weight, as the oracle and the GMP path). */
double mxg_round_weighted_f64(__int128 v, int e, double w);

/* RN64(a) for any 128-bit a: its top 64 bits with every bit below them
 * ORed into their lowest one (11 bits below the 53 kept: the same
 * rounding), one conversion, then the exact power of two. */
static inline double mxg_u128_to_f64(unsigned __int128 a)
{
    uint64_t hi = (uint64_t)(a >> 64);
    if (!hi)
        return (double)(uint64_t)a;
    int sh = 64 - __builtin_clzll(hi);
    uint64_t top = (uint64_t)(a >> sh) | (uint64_t)((a & (((unsigned __int128)1 << sh) - 1)) != 0);
    return (double)top * mxg_pow2(sh);
}

/* mxg_round_f64 of a v >= 0, inline for the hot loops: RN64(v) by
 * mxg_u128_to_f64, times a power of two that keeps it a normal binary64
 * (exact); the rest by mxg_round_f64. */
static inline double mxg_round_f64_pos(unsigned __int128 v, int e)
{
    if ((v >> 127) == 0 && e >= -1022 && e <= 800)
        return mxg_u128_to_f64(v) * mxg_pow2(e);
    return mxg_round_f64((__int128)v, e);
}

/* mxg_round_f32 inline for the hot loops.  d = RN64(v) (exact below 2^53);
 * x = d 2^e is exact in the exponent range tested.  RN32(x) is RN32(v 2^e)
 * unless the first rounding moved v onto an FP32 midpoint (x is then one:
 * its 29 bits below FP32 precision are 1 followed by zeros; RN64 is
 * monotone and the midpoints are binary64 numbers, so any other x lies on
 * v's side of every midpoint) or x is below the FP32 normal range (other
 * midpoints there); those go to mxg_round_f32. */
static inline float mxg_round_f32_fast(__int128 v, int e)
{
    int small = v > -((__int128)1 << 53) && v < ((__int128)1 << 53);
    if (e >= -1000 && e <= 800) {
        double d = v >= INT64_MIN && v <= INT64_MAX
                       ? (double)(int64_t)v
                       : v < 0 ? -mxg_u128_to_f64(-(unsigned __int128)v)
                               : mxg_u128_to_f64((unsigned __int128)v);
        double x = d * mxg_pow2(e);
        uint64_t b;
        memcpy(&b, &x, sizeof b);
        if (small || (fabs(x) >= 0x1p-126 && (b & 0x1FFFFFFFu) != 0x10000000u))
            return (float)x;
    }
    return mxg_round_f32(v, e);
}

/* The two inline roundings above on four lanes at once (GCC vector
 * extensions; the 16-bit kernel's lanes), bit for bit the same results:
 * each lane's 128-bit integer is its low and high 64 bits (lo, hi), its
 * exponent e[i].  *ok is -1 in the lanes whose result is returned and 0 in
 * those the scalar function must round (out of the exponent range the
 * scalar fast paths take, or a magnitude at or above 2^126, or, for FP32,
 * the double-rounding cases mxg_round_f32_fast leaves to mxg_round_f32);
 * those lanes' results are meaningless. */
typedef unsigned long long mxg_v4u __attribute__((vector_size(32)));
typedef long long mxg_v4i __attribute__((vector_size(32)));
typedef double mxg_v4d __attribute__((vector_size(32)));
typedef float mxg_v4f __attribute__((vector_size(16)));

/* (Vectors pass by pointer: a 32-byte vector argument or result changes
 * the ABI of a build without AVX.) */
#define MXG_X4 static inline __attribute__((always_inline)) void

/* *p = 2^e for e in -1022..1023 (other lanes: any bits) */
MXG_X4 mxg_pow2_x4(const mxg_v4i *e, mxg_v4d *p)
{
    *p = (mxg_v4d)((mxg_v4u)(*e + 1023) << 52);
}

/* *d = RN64 of four unsigned 64-bit integers: the two 32-bit halves are
 * exact binary64 numbers (their bits under 2^52's exponent, minus 2^52),
 * and h 2^32 + l is rounded once -- no vector conversion of 64-bit
 * integers before AVX-512DQ */
MXG_X4 mxg_u64_to_f64_x4(const mxg_v4u *x, mxg_v4d *d)
{
    const mxg_v4u ex = (mxg_v4u){0} + 0x4330000000000000ull;
    const mxg_v4d two52 = (mxg_v4d){0} + 0x1p52;
    mxg_v4d h = (mxg_v4d)((*x >> 32) | ex) - two52;
    mxg_v4d l = (mxg_v4d)((*x & 0xFFFFFFFFull) | ex) - two52;
    *d = h * 0x1p32 + l;
}

/* *d = RN64 of four unsigned 128-bit integers hi:lo with hi < 2^62
 * (other lanes: any value).  Where hi != 0, k is hi's bit length or one
 * more (the exponent of hi rounded to binary64, plus one): top = hi:lo >>
 * k has 63 or 64 bits, and ORing the bits shifted out into its lowest bit
 * (10 or 11 bits below the 53 kept) leaves its rounding unchanged; then
 * 2^k, exact. */
MXG_X4 mxg_u128_to_f64_x4(const mxg_v4u *lo, const mxg_v4u *hi, mxg_v4d *d)
{
    mxg_v4d hd, t, p;
    mxg_u64_to_f64_x4(hi, &hd);
    mxg_v4u big = (mxg_v4u)(*hi != 0);
    mxg_v4u k = (((mxg_v4u)hd >> 52) - 1022) & big;
    /* shifts kept in 1..63 in every lane (the others' results unused) */
    mxg_v4u over = (mxg_v4u)(k > 63);
    mxg_v4u ks = (k & ~over) | (63 & over) | (~big & 1);
    mxg_v4u top = (*hi << (64 - ks)) | (*lo >> ks) | ((mxg_v4u)((*lo << (64 - ks)) != 0) & 1);
    top = (top & big) | (*lo & ~big);
    mxg_v4i ki = (mxg_v4i)k;
    mxg_u64_to_f64_x4(&top, &t);
    mxg_pow2_x4(&ki, &p);
    *d = t * p;
}

/* *f = mxg_round_f32_fast of four two's complement lanes hi:lo times 2^e */
MXG_X4 mxg_round_f32_x4(const mxg_v4u *lo, const mxg_v4u *hi, const mxg_v4i *e,
                        mxg_v4f *f, mxg_v4i *ok)
{
    /* the magnitude (negated where negative: complement, plus one with its
     * carry) and RN64 of it, the sign put back (RN is symmetric) */
    mxg_v4u neg = (mxg_v4u){0} - (*hi >> 63); /* all ones where negative */
    mxg_v4u ml = (*lo ^ neg) - neg;
    mxg_v4u mh = (*hi ^ neg) - (neg & (mxg_v4u)(ml == 0));
    mxg_v4d d, p;
    mxg_u128_to_f64_x4(&ml, &mh, &d);
    mxg_pow2_x4(e, &p);
    mxg_v4d x = (mxg_v4d)((mxg_v4u)d | (neg & 0x8000000000000000ull)) * p;
    mxg_v4u xb = (mxg_v4u)x;
    mxg_v4i small = (mh == 0) & (ml < (1ull << 53));
    /* |x| >= 2^-126 and x not a binary64 number on an FP32 midpoint */
    mxg_v4i safe = ((xb & 0x7FFFFFFFFFFFFFFFull) >= 0x3810000000000000ull) &
                   ((xb & 0x1FFFFFFFull) != 0x10000000ull);
    *ok = (*e >= -1000) & (*e <= 800) & (mh < (1ull << 62)) & (small | safe);
    *f = __builtin_convertvector(x, mxg_v4f);
}

/* *r = mxg_round_f64_pos of four lanes hi:lo (unsigned) times 2^e */
MXG_X4 mxg_round_f64_pos_x4(const mxg_v4u *lo, const mxg_v4u *hi, const mxg_v4i *e,
                            mxg_v4d *r, mxg_v4i *ok)
{
    mxg_v4d d, p;
    *ok = (*e >= -1022) & (*e <= 800) & (*hi < (1ull << 62));
    mxg_u128_to_f64_x4(lo, hi, &d);
    mxg_pow2_x4(e, &p);
    *r = d * p;
}

/* ---- model_fp32_group.c --------------------------------------------------- */

/* p = RN32 of the exact unscaled dot of one group, through MPFR (the slow,
 * simple way: the direct model). */
float mxg_group_dot_rn32(const mx_operand *A, size_t m, const mx_operand *B,
                         size_t n, size_t k0, size_t len);

/* p = RN32(v * 2^e) for an exact group dot v * 2^e. */
float mxg_group_partial(__int128 v, int e);

/* p = RN32(P 2^ua + sum_j tv[j] 2^te[j]): a group dot from its dgemm part
 * and cnt residual terms. */
float mxg_group_partial_terms(double P, int ua, const int64_t *tv,
                              const int *te, size_t cnt);

/* Production's step for one group: acc += p * sc (scaled operands) or
 * acc += p (unscaled), in FP32. */
static inline void mxg_group_step(float *acc, float p, float sc, int scaled)
{
    if (scaled) {
        float t = p * sc;
        *acc = *acc + t;
    } else {
        *acc = *acc + p;
    }
}

/* The model step of group g for row m and every column n of the engine's
 * main loop: p = RN32(Pm[n] * pa * pwB[n]) (exact binary64 product, one
 * rounding), then mxg_group_step with scA * scB[n].  Columns with b_irr
 * set and irr[n] nonzero are skipped (their partial comes from the
 * residual path). */
void mxg_group_row(float *gm, const double *Pm, double pa, const double *pwB,
                   float scA, const float *scB, int scaled, int b_irr,
                   const unsigned char *irr, size_t irr_stride, size_t N);

/* ---- model_fp32_seq.c ----------------------------------------------------- */

/* The sequential FP32 FMA chain from c over the products of one group. */
float mxg_seq_chain(const mx_operand *A, size_t m, const mx_operand *B,
                    size_t n, size_t k0, size_t len, float c);

/* The fp32-seq model for all elements (vectorized over output columns,
 * bit-identical to the chain): model accumulator after the weight. */
mx_status mxg_seq_gemm(const mx_gemm_spec *s, const mx_operand *A,
                       const mx_operand *B, float *out);

/* ---- model_block.c -------------------------------------------------------- */

/* One group of a block:NAME model: the unit's chain over the group from c. */
float mxg_block_partial(const mx_blockfma_params *bp, const mx_operand *A,
                        size_t m, const mx_operand *B, size_t n, size_t k0,
                        size_t len, float c);

/* Production's FP32 value of every scale byte under decode d (gemm_fused.c,
 * built once): mxg_scale_f32 by table.  Every E8M0 value (0, 2^-127 ..
 * 2^127, NaN) is an FP32 value, so an entry converted to binary64 is
 * mx_scale_value's own. */
const float *mxg_scale_table(mx_e8m0_decode d);

/* ---- blockfma_gemm.c ------------------------------------------------------ */

/* A block:NAME model over a call in one walk: macc[m N + n] the model
 * accumulator as mx_gemm_model_direct gives it (row weight applied),
 * sum_b/sum_p[m N + n] for scaled operands the two sums mxg_acc_block
 * forms over the groups (before its final inflation), for unscaled ones
 * its result and *sabs_eff; any output may be NULL.  Returns 0 (and
 * writes nothing) when the walk does not apply (a NaN or infinite code, a
 * parameter set it does not reproduce, the slow path of blockfma_fx.h);
 * else 1 with *st MX_OK or MX_ENOMEM. */
int mxg_block_walk(const mx_gemm_spec *s, const mx_operand *A,
                   const mx_operand *B, float *macc, double *sum_b,
                   double *sum_p, mx_status *st);
typedef struct mxg_xsum mxg_xsum; /* gemm_fused.c, below */
/* mxg_block_walk, and where exact is not NULL and the walk runs here on
 * the CPU (not copied from a split's shared walk), *x = mxg_xsum_new of
 * the call (the caller frees it) and, where that is not NULL,
 * exact[m N + n] the exact values too (*xdone = 1; else 0, exact not
 * written). */
int mxg_block_walk_x(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                     float *macc, double *sum_b, double *sum_p, mxg_xsum **x,
                     double *exact, int *xdone, mx_status *st);
/* Groups the walk has handed to the general code so far (lanes whose
 * block result was not a normal FP32 number): for the tests. */
unsigned long mxg_block_walk_fallbacks(void);
/* The walk's first pass: 1 the AVX-512 one (the default where the
 * processor has AVX-512F), 0 the portable one.  0, or -1 for a kind this
 * processor lacks.  For the tests that run both; not while a walk runs. */
int mxg_block_walk_set_kind(int kind);
/* The walk's decode of A for the call (s, A) when the walk may take it,
 * A has 16-bit codes and the decode fits its cache (a split's shared
 * rows; free()); else NULL (8-bit rows are decoded as the walk reads
 * them). */
double *mxg_block_walk_rows(const mx_gemm_spec *s, const mx_operand *A);
/* 1 when the walk of (s, A, B) goes to the walk provider (one is set, the
 * operands are scaled 8-bit codes or unscaled 16-bit ones, K a multiple
 * of 32): the split then decodes no walk rows for its blocks. */
int mxg_walk_on_device(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B);
/* The walk of (s, A, B) on the device alone (its flagged elements walked
 * again on the CPU): 1 with every output written, 0 when the device did
 * not take it (nothing written). */
int mxg_block_walk_device(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                          float *macc, double *sum_b, double *sum_p);
/* The walk of (s, A, B) on the CPU's pool, in tiles of rows and columns
 * (blockfma_gemm.c, tiles_plan), when A has 8-bit codes: every output
 * written and 1, or 0 when the walk does not apply or memory ran short
 * (outputs then undefined).  The same bits as one mxg_block_walk: an
 * output depends only on its row of A, its column and the spec.  For a
 * split call (gemm_split.c), whose column blocks would each decode all
 * of A. */
int mxg_block_walk_tiled(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                         float *macc, double *sum_b, double *sum_p);
/* 1 when the walk of (s, A, B) can run in tiles of rows and columns (A's
 * codes 8-bit, operands the walk takes, no NaN or infinite code in A or
 * B: scanned here, once), with *R x *C the tiles' rows and columns for
 * the pool's threads (about two tiles per thread, near square); else 0.
 * mxg_block_walk_tiled runs it; gemm_split.c's tiles run it with the fused
 * kernels, tile by tile. */
int mxg_block_walk_tiles(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                         size_t *R, size_t *C);
/* Calls mxg_block_walk_tiles has planned in tiles so far, and those of
 * them that gemm_split.c ran as tiles of walk and fused kernels together:
 * for the tests. */
unsigned long mxg_block_walk_tiled_calls(void);
unsigned long mxg_split_tiles_calls(void);
/* In a block of a split call whose whole walk was offered to the device
 * or walked in tiles (gemm_split.c): 1 when it ran there, the block's nb
 * columns of its outputs copied out; -1 when the device did not take it
 * (walk the block on the CPU, without offering it again); -2 for a tile
 * of a split in tiles (walk it on the CPU, its codes already scanned by
 * mxg_block_walk_tiles); else 0. */
int mxg_shared_walk(const mx_gemm_spec *s, const mx_operand *A, size_t nb, float *macc,
                    double *sum_b, double *sum_p);

/* The walk's sums for the call (s, A, B), which mxg_acc_block reads
 * instead of walking element (m, n) again: set for the calling thread by
 * mxg_gemm_block around the kernels it runs, cleared with NULL. */
typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    const double *sum_b, *sum_p;
} mxg_block_sums;
void mxg_block_sums_set(const mxg_block_sums *b);

/* ---- gemm_direct.c -------------------------------------------------------- */

/* One model partial for group g of output (m, n): what the accumulation
 * model computes for the unscaled 32-wide dot, from c. */
float mxg_model_partial(const mx_accum_model *md, const mx_operand *A, size_t m,
                        const mx_operand *B, size_t n, size_t k0, size_t len,
                        float c);

/* ---- gemm_bound.c, gemm_bound_fp32.c, gemm_bound_block.c ------------------ */

/* From a bound Bacc on the FP32 accumulator's error, through the optional
 * weight multiply and the BF16 rounding of the output (wS = |w S|, sabs the
 * sum of |terms|, w the row weight or 1). */
double mxg_bound_tail(double Bacc, double wS, double sabs, double w);

/* The FP32 result's bound before any BF16 rounding (mx_gemm_out.bound_acc). */
double mxg_bound_y(double Bacc, double wS, double sabs, double w);

/* Accumulator bounds of each model family (before the tail): the FP32
 * models (depth roundings per term, ninexact groups whose scale product
 * underflowed); the block models and dequant-fp32 for element (m, n), with
 * the sum-of-|terms| statistic they use in *sabs_eff. */
double mxg_acc_fp32(double sabs, size_t depth, size_t K, size_t G,
                    size_t ninexact, double pmax);
/* The bounds' formulas, written once for a binary64 or a vector of them
 * (GCC's vector extension mixes scalars in), so that mxg_bound_lanes's
 * vectors and the element functions do the same operations in the same
 * order (docs/bounds.md): mxg_acc_fp32 from gamma32 of the depth (GAM),
 * sabs, the doubles K and G, the count NIN and pmax; the weight multiply's
 * error added to Bacc (w the row weight or 1, AW its magnitude); the
 * bound and the FP32 result's bound from that EY before the overflow
 * test, which MXG_BOUND_FIN_LIM sets (sabs + Bacc below it). */
#define MXG_ACC_FP32(GAM, SABS, K, G, NIN, PMAX)                                        \
    (((GAM) * (SABS) + 0x1p-150 * ((K) + 2.0 * (G) + 2.0 * (NIN) * (PMAX))) * (1 + 0x1p-48))
#define MXG_BOUND_EY(BACC, WS, W, AW)                                                    \
    ((W) != 1.0 ? (AW) * (BACC) + 0x1p-24 * ((WS) + (AW) * (BACC)) + 0x1p-150 : (BACC))
#define MXG_BOUND_FIN(EY, WS)                                                            \
    (((EY) + 0x1p-8 * ((WS) + (EY)) + 0x1p-134 + 0x1p-52 * (WS)) * (1 + 0x1p-48))
#define MXG_BOUND_Y_FIN(EY, WS) (((EY) + 0x1p-52 * (WS)) * (1 + 0x1p-48))
#define MXG_BOUND_FIN_LIM (0x1p128 * (1 - 0x1p-25))
double mxg_acc_block(const mx_gemm_spec *s, const mx_operand *A,
                     const mx_operand *B, size_t m, size_t n, double pmax,
                     double *sabs_eff);
double mxg_acc_dequant(const mx_gemm_spec *s, const mx_operand *A,
                       const mx_operand *B, size_t m, size_t n, double sabs,
                       double *sabs_eff);

/* For one element (m, n), from S = its sum |a b| statistic, the rows'
 * largest unscaled |value| and the exact value: its bound, the FP32
 * result's bound (mx_gemm_out.bound_acc) and its weighted sum of |terms|;
 * any output may be NULL. */
void mxg_bound_elem(const mx_gemm_spec *s, const mx_operand *A,
                    const mx_operand *B, size_t m, size_t n, double S,
                    double amax_a, double amax_b, double exact, double *bound,
                    double *bound_acc, double *sabs_out);
/* The same; may_underflow = 0 says that no group's scale product of the
 * two rows is below 2^-149 (the caller knows from the rows' smallest scale
 * exponents), which skips the count of such groups. */
void mxg_bound_elem_n(const mx_gemm_spec *s, const mx_operand *A,
                      const mx_operand *B, size_t m, size_t n, double S,
                      double amax_a, double amax_b, double exact, double *bound,
                      double *bound_acc, double *sabs_out, int may_underflow);
/* What mxg_bound_lanes needs of a call (s, A, B), worked out once. */
typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    int fp32;                /* an FP32 model (mxg_acc_fp32)             */
    double infl, gam, K, G;  /* S's inflation, gamma32 of the depth      */
} mxg_bound_call;
void mxg_bound_call_init(mxg_bound_call *bc, const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B);
/* mxg_bound_elem_n for the elements (m, n0 + l), l < nt <= 8, of one row,
 * the same bits, eight lanes at a time: S[l] (NULL: every lane 0),
 * amax_b[l], exact[l] and may_underflow[l] (NULL: every lane 0) the lane's;
 * the outputs, any NULL, at [l].  The fused kernels' tile rows. */
void mxg_bound_lanes(const mxg_bound_call *bc, size_t m, size_t n0, size_t nt,
                     const double *S, double amax_a, const double *amax_b,
                     const double *exact, const unsigned char *may_underflow, double *bound,
                     double *bound_acc, double *sabs_out);
/* bound[], bound_acc[] and sabs_out[] (any may be NULL) for every element,
 * from the exact values and the engine's sum |a b| statistic S (NULL
 * under a block model with sabs_out NULL: not formed, not needed). */
void mxg_bounds(const mx_gemm_spec *s, const mx_operand *A,
                const mx_operand *B, const mxg_prep *a, const mxg_prep *b,
                const double *exact, const double *S, double *sabs_out,
                double *bound, double *bound_acc);

/* ---- gemm.c, gemm_split.c ---------------------------------------------- */

/* mx_gemm on operands it has checked, with the windows fixed by the caller:
 * the outputs of element (m, n) depend only on row m of A, row n of B and
 * the windows, so a block of B's rows run on its own gives that block's
 * columns bit for bit.  *irr_a (may be NULL) gets A's irregular groups. */
mx_status mxg_gemm_block(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out,
                         mx_gemm_stats *stats, int wa, int wb, size_t *irr_a);
/* mxg_gemm_block over blocks of output columns on the worker pool when
 * there is enough work; the same bits as one call.  Exact-only calls that
 * a sum provider (the GPU) takes get fewer blocks (every block sends all
 * of A to the device again): at most N / M, or 128 MiB of copies of A. */
mx_status mxg_gemm_split(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out,
                         mx_gemm_stats *stats, int wa, int wb);
/* What the blocks of one split call share: A's rows decoded once, before
 * the blocks run, for the kernels that read them (each block of B's rows
 * would otherwise decode all of A again).  mxg_gemm_split sets them for
 * the thread running a block, around mxg_gemm_block; a kernel asks with
 * its own (s, A) and gets NULL for any other call, or outside a split:
 * it then decodes A itself.  The same values either way. */
typedef struct mxg_fused_rows mxg_fused_rows;
typedef struct mxg_fused16_rows mxg_fused16_rows;
const mxg_fused_rows *mxg_shared_rows_fused(const mx_gemm_spec *s, const mx_operand *A);
/* The 16-bit kernel's, under A's window wa. */
const mxg_fused16_rows *mxg_shared_rows_fused16(const mx_gemm_spec *s, const mx_operand *A,
                                                int wa);
/* The block walk's decode of A (values, magnitudes, 2^r, group-major:
 * blockfma_gemm.c's arow_at). */
const double *mxg_shared_rows_walk(const mx_gemm_spec *s, const mx_operand *A);

/* 1 when out asks for exact values only (no model, no bound outputs). */
static inline int mxg_exact_only(const mx_gemm_out *out)
{
    return !out->model_acc && !out->model_out && !out->bound && !out->sum_abs &&
           !out->bound_acc;
}

/* 1 when a block model's walk (blockfma_gemm.c) serves the call: a block
 * model and a model or bound output. */
static inline int mxg_walks(const mx_gemm_spec *s, const mx_gemm_out *out)
{
    return s->model.kind == MX_ACC_BLOCK &&
           (out->model_acc || out->model_out || out->bound || out->bound_acc);
}

/* 1 when the call's whole sum goes to the sum provider (--reference gpu
 * or auto on a GPU backend), a provider being set: exact values only; or
 * (walked: the block walk gives the model outputs and the bound sums) a
 * block model's call that asks no sum |ab| -- under a block model the
 * engine's sum |ab| only feeds out->sum_abs (mxg_acc_block forms the
 * bound's own sums), so the exact values are all the engine must give.
 * Before the walk has run (gemm_split.c), walked = mxg_walks(s, out)
 * anticipates it. */
static inline int mxg_device_sums(const mx_gemm_spec *s, const mx_gemm_out *out, int walked)
{
    if (mx_gemm_sum_provider(NULL) == NULL)
        return 0;
    return mxg_exact_only(out) || (walked && mxg_walks(s, out) && !out->sum_abs);
}

/* 1 when the fused CPU kernels may take the call: a slice provider
 * (--reference gpu) takes the engine's slices, a sum provider the whole
 * sum (mxg_device_sums), and the fused kernels (same bits) would bypass
 * them. */
static inline int mxg_fused_ok(const mx_gemm_spec *s, const mx_gemm_out *out, int walked)
{
    return mx_gemm_slice_provider(NULL) == NULL && !mxg_device_sums(s, out, walked);
}


/* ---- gemm_fused.c --------------------------------------------------------- */

/* The fused FP8 kernel takes 8-bit operands whose values all sit on one
 * fixed grid (E4M3FN, E4M3FNUZ) under the fp32-group model, a block model
 * or no model: same bits as the engine. */
int mxg_fused_applies(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B);
/* The fused FP8 kernel's decode of A for the call (s, A) (a split's
 * shared rows); NULL when memory is short.  Free with mxg_fused_rows_free
 * (NULL is fine). */
mxg_fused_rows *mxg_fused_rows_new(const mx_gemm_spec *s, const mx_operand *A);
/* Rows [m0, m0 + mr) of r as the decode of A, those rows of r's operand
 * (mxg_rows_of): r's arrays read in place (r outlives it), NULL when
 * memory is short or the rows are not r's.  Freed with
 * mxg_fused_rows_free, which leaves r's arrays alone. */
mxg_fused_rows *mxg_fused_rows_view(const mxg_fused_rows *r, size_t m0, size_t mr,
                                    const mx_operand *A);
void mxg_fused_rows_free(mxg_fused_rows *r);
/* The 16-bit kernel's decode of A under window wa, when that kernel takes
 * operands like A and B under s; else (or memory short) NULL. */
mxg_fused16_rows *mxg_fused16_rows_new(const mx_gemm_spec *s, const mx_operand *A,
                                       const mx_operand *B, int wa);
void mxg_fused16_rows_free(mxg_fused16_rows *r);
/* 1 when r decoded A without error and a group of A is wider than its
 * window: a sum provider declines every block of such an A (its groups
 * must fit their windows), so the fused kernel sums them on the host. */
int mxg_fused16_rows_wide(const mxg_fused16_rows *r);
/* 1 when the 16-bit kernel takes operands like A and B under s and a
 * group of A is wider than the window wa (the row facts alone, up to the
 * first such row; 0 at a NaN or inf code, which the kernels report). */
int mxg_fused16_a_wide(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                       int wa);
mx_status mxg_gemm_fused(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out, mx_gemm_stats *stats);
/* The fused pass for unscaled BF16/FP16 operands under the windows wa, wb
 * (groups wider than their side's window split as the engine splits them,
 * with its residual terms in its order): 1 with *status when it took the
 * call (*irr_a, when not NULL, gets A's irregular groups), 0 when the
 * engine must. */
int mxg_gemm_fused16(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                     mx_gemm_out *out, mx_gemm_stats *stats, int wa, int wb,
                     size_t *irr_a, mx_status *status);
/* The exact values of an FP8 call whose group partials another pass
 * forms (the block walk, which has the decoded codes at hand): the
 * partial P of row m, column n, group g (the exact sum of the group's
 * unscaled products, an integer multiple of 2^(ua + ub) below 2^41 of it)
 * goes into an int64 sum as (P 2^-(ua+ub)) << (da[m][g] + db[n][g]),
 * where da = ua + xa - lo_a[m] (xa: the group's scale exponent, lo_a the
 * row's lowest scaled unit, as the fused kernel forms them) and db alike;
 * mxg_xsum_value rounds the sum once.  mxg_xsum_new gives these facts for
 * scaled operands the fused kernel takes, when no code is NaN or infinite
 * and every element's sum fits int64 (the fused kernel's own test for its
 * int64 path) or, wide = 1, 128 bits (its test for the 128-bit path: no
 * element's span needs GMP); else NULL (the fused kernel forms the exact
 * values).  The
 * same bits as the fused kernel: both sum the exact terms exactly and
 * round once.  A group with a zero scale on either side adds nothing
 * (da or db is then MXG_XSUM_SKIP). */
#define MXG_XSUM_SKIP (-1)
struct mxg_xsum {
    size_t M, N, G;
    int ua, ub;
    int wide;            /* 1: the sums in 128 bits (hi, lo)      */
    double inv;          /* 2^-(ua + ub): P to its integer        */
    int *da, *db;        /* [M][G], [N][G]: shifts or MXG_XSUM_SKIP */
    int *loa, *hia, *lob, *hib, *xna, *xnb;
    double *amaxa, *amaxb;
};
mxg_xsum *mxg_xsum_new(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B);
void mxg_xsum_free(mxg_xsum *x);
/* 1 when a walked call's outputs let the walk form the exact values
 * (mxg_xsum): exact values or bounds asked for, no sum |ab| (the fused
 * kernel's dots on magnitudes), the fused kernels free to take the call.
 * mxg_gemm_block and a split's tiles (gemm_split.c) decide alike. */
static inline int mxg_xsum_wanted(const mx_gemm_spec *s, const mx_gemm_out *out)
{
    return (out->exact || out->bound || out->bound_acc) && !out->sum_abs &&
           mxg_fused_ok(s, out, 1);
}
/* Element (m, n)'s exact value (row weight w) from its sum: two's
 * complement, modulo 2^64 (hi unused) or, wide, 2^128 (hi the upper
 * half). */
double mxg_xsum_value(const mxg_xsum *x, size_t m, size_t n, uint64_t lo, uint64_t hi,
                      double w);
/* out->bound and out->bound_acc (either may be NULL) of every element
 * from its exact value, as the fused kernel forms them under a block
 * model (the walk's sums set: mxg_block_sums_set). */
void mxg_xsum_bounds(const mxg_xsum *x, const mx_gemm_spec *s, const mx_operand *A,
                     const mx_operand *B, const double *exact, mx_gemm_out *out);
/* Calls whose exact values the walk formed (mxg_block_walk_x) in int64
 * sums (wide 0) or 128-bit ones (wide 1), so far: for the tests. */
unsigned long mxg_xsum_calls(int wide);
void mxg_xsum_count(int wide);

/* 0 sends every call to the engine (tests and bench compare the two); 1,
 * the default, lets the fused kernels take the calls they apply to. */
void mxg_fused_enable(int on);
/* Calls the fused kernels have taken so far (tests check they ran). */
unsigned long mxg_fused_count(void);
/* The body of the fused kernels' exact tile dots: 2 eight-lane AVX-512
 * vectors (3: the same, and the FP8 tile lookup by AVX-512 VBMI byte
 * permutations), 1 four-lane halves with AVX2 and FMA, 0 the eight-lane
 * body on the baseline instruction set (same values: the dots are exact
 * in any order, the lookups give the same bits).
 * kind < 0 returns the best this processor runs, the one in force by
 * default; kind >= 0 puts min(kind, that best) in force and returns it
 * (for tests, with no call in flight). */
int mxg_fused_dots(int kind);

#endif
