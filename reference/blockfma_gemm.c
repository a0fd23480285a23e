/* blockfma_gemm.c -- a block:NAME model over a whole GEMM call in one
 * walk (gemm_internal.h, mxg_block_walk): every element's model value
 * (mx_gemm_model_direct's) and the two per-group sums of its accumulator
 * bound (mxg_acc_block's), bit for bit, without going product by product
 * through the general code.
 *
 * Why the same bits.  For the parameter sets it takes (walk_mode: a finite
 * grid of F <= 28 fraction bits with truncation and an early or a late c,
 * or an exact unit on E4M3 operands; zero +0; final RTZ or RNE), one block
 * is: E = the largest reference exponent of the nonzero terms, each term
 * truncated toward zero to a multiple of 2^(E-F), the integers summed
 * (odd/even groups: the smaller E's sum rounded down onto the other's
 * grid; a late c rounded down onto the sum's grid, or the sum rounded down
 * onto c's), the result truncated to out_prec bits and rounded to FP32.
 * Every product of two 8- or 16-bit codes is exact in binary64 and 2^r is
 * a power of two, so t * 2^(F-E) is exact; it is below 2^(F+2) < 2^31 (a
 * term's leading bit is at most E + 1), so C's conversion to int32_t is
 * the truncation and floor the round-down, and the sums stay below 2^53.
 * Truncating a positive binary64 to P bits is clearing the low 53 - P bits
 * of its pattern; a value of at most 24 bits in FP32's normal range
 * converts exactly, and RNE is C's conversion.  A lane whose result is not
 * a normal FP32 number (a subnormal, an overflow), whose early c is
 * subnormal or whose products may overflow (prod_ovf_inf) is flagged and
 * its group recomputed by mx_blockfma_dot, the general code.  The bound
 * sums are the operations of mx_blockfma_sum_abs, mx_blockfma_bound
 * (through mxb_bound_lin) and mx_blockfma_bound_dot, in their order, per
 * lane; rounding upward is mxb_up's bit step written without branches.
 *
 * Scaled operands run every group from c = 0 (production scales each
 * group's partial); unscaled ones are one chain of the unit over K, and
 * the walk carries each lane's c, bound state and sum |ab| across groups.
 *
 * Why fast.  Codes are decoded into signed values, magnitudes and 2^r:
 * 16-bit A's once per call (when they fit in A_CACHE_MAX; once for all the
 * column blocks of a split call, mxg_block_walk_rows), 8-bit A's once per
 * row, group and super-tile of TB column tiles (a table lookup per code;
 * a split call walks in tiles of rows and columns, mxg_block_walk_tiles,
 * so that this is not once per narrow column block), B's once per
 * (column, group), scale bytes through a table; the inner loops run over
 * a tile of NT output columns, independent lanes that the compiler
 * vectorizes (every lane keeps its own sequence of operations; ISO C11
 * does not contract to FMA), and the model and both bounds share one pass
 * over each block.  tests/check_blockfast.c holds the walk to the general
 * code (mxb_set_slow(1) turns the walk off) on every preset, variants of
 * them and many data kinds.
 *
 * Length (over ~600 lines): the lane kernel (group_tile_body, one
 * function so that its loops vectorize together, with its inline lane
 * helpers, instanced per preset mode by GROUP_TILE) and its one caller,
 * the tiling that decodes operands and falls back lane by lane, are one
 * algorithm; the general model and its bounds
 * stay in blockfma.c, blockfma_bound.c and blockfma_bound_dot.c.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/pool.h"
#include "blockfma_fx.h"
#include "gemm_internal.h"

#define NT 16 /* output columns per tile */
#define TB 8  /* tiles side by side in walk_cpu (a super-tile) */
#define RB 8  /* rows of A per chunk in walk_cpu */

/* the most bytes of A decoded once for all column tiles (mxg_block_walk) */
#define A_CACHE_MAX ((double)(96u << 20))

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
/* no-tree-loop-distribute-patterns: the lanes' zeroing loops stay vector
 * stores, not memset calls (inlined as rep stos: 16 of them in the AVX2
 * clone; 8-12 % of the walk's time on an AMD EPYC VM) */
#define WALK_HOT                                                                          \
    __attribute__((optimize("O3", "no-tree-loop-distribute-patterns"),                    \
                   target_clones("avx512f", "avx2", "default")))
/* a lane loop stays a loop, for the vectorizer (not unrolled into
 * scalar statements first) */
#define LANES _Pragma("GCC unroll 1")
#else
#define LANES
#define WALK_HOT
#endif

#if defined(__GNUC__)
/* the lane helpers and group_tile_body are inlined into each instance
 * of group_tile (its mode flags fold) */
#define BODY_INLINE static inline __attribute__((always_inline))
#else
#define BODY_INLINE static inline
#endif

/* How the walk reproduces p on groups of len products of formats fa, fb:
 *   W_EARLY  a finite grid of at most 28 fraction bits, c (if any) aligned
 *            with the products (hopper-*);
 *   W_LATE   the same grid of 23 to 28 bits, a late c added by round-down
 *            at 23 to 45 bits below its exponent (no second rounding),
 *            odd/even groups combined by round-down (cdna3-*);
 *   W_EXACT  an exact unit over the whole group (exact-rne) on operands
 *            whose exact 64-product sum fits binary64's 53 bits (E4M3);
 * or W_NONE: the element-by-element path. */
enum { W_NONE, W_EARLY, W_LATE, W_EXACT };

static int walk_mode(const mx_blockfma_params *p, size_t len, const mx_format *fa,
                     const mx_format *fb)
{
    if (mx_blockfma_check(p) != MX_OK || p->align_round != MX_ALIGN_TRUNC ||
        p->sticky || p->prod_norm || p->ftz_in || p->ftz_prod || p->ftz_out ||
        (p->final_round != MX_RTZ && p->final_round != MX_RNE) ||
        (p->c_fadd && (size_t)p->k < len) || len > 64)
        return W_NONE;
    if (p->frac_bits == MX_BFMA_EXACT) {
        /* values are multiples of 2^(emin - mbits) below 2^(emax + 1) */
        int span = (fa->emax + 1 - (fa->emin - fa->mbits)) +
                   (fb->emax + 1 - (fb->emin - fb->mbits));
        return p->block == 0 && !p->late_c && !p->c_fadd && span + 7 <= 53
                   ? W_EXACT : W_NONE;
    }
    if (p->block == 0 || p->frac_bits > 28 || !p->zero_pos)
        return W_NONE;
    if (!p->late_c)
        return p->odd_even ? W_NONE : W_EARLY;
    if (p->frac_bits < 23 || p->late_round != MX_ALIGN_RD ||
        (p->odd_even && p->group_round != MX_ALIGN_RD) ||
        p->late_norm_frac_bits != MX_BFMA_EXACT || p->late_sum_frac_bits < 23 ||
        p->late_sum_frac_bits > 45 || p->c_fadd)
        return W_NONE;
    return W_LATE;
}

/* The blocks of one group of len products, as mx_blockfma_dot_bits and
 * mx_blockfma_bound_dot walk them: block j is idx[start[j] .. start[j+1]),
 * in order; empty blocks are left out (neither walk runs them).  With
 * c_fadd the group is one instruction (walk_applies). */
typedef struct {
    unsigned char idx[64], start[65];
    uint64_t pos[64]; /* block j's positions in the group, as bits */
    size_t nblk;
    int inorder; /* idx[j] == j: blocks are contiguous runs in order */
} sched;

static void schedule(const mx_blockfma_params *p, size_t len, sched *s)
{
    size_t blk = p->block > 0 ? (size_t)p->block : len, m = 0;
    s->nblk = 0;
    if (p->deal > 0 && p->k > p->block) {
        size_t k = (size_t)p->k, nb = k / blk, q = (size_t)p->deal;
        for (size_t i0 = 0; i0 < len; i0 += k) {
            size_t kk = len - i0 < k ? len - i0 : k;
            for (size_t bi = 0; bi < nb; bi++) {
                size_t first = m;
                for (size_t i = 0; i < kk; i++)
                    if ((i / q) % nb == bi)
                        s->idx[m++] = (unsigned char)(i0 + i);
                if (m > first)
                    s->start[s->nblk++] = (unsigned char)first;
            }
        }
    } else {
        for (size_t i = 0; i < len; i += blk) {
            s->start[s->nblk++] = (unsigned char)m;
            for (size_t j = i; j < len && j < i + blk; j++)
                s->idx[m++] = (unsigned char)j;
        }
    }
    s->start[s->nblk] = (unsigned char)m;
    for (size_t j = 0; j < s->nblk; j++) {
        s->pos[j] = 0;
        for (size_t q = s->start[j]; q < s->start[j + 1]; q++)
            s->pos[j] |= UINT64_C(1) << s->idx[q];
    }
    s->inorder = 1;
    for (size_t j = 0; j < m; j++)
        s->inorder &= s->idx[j] == j;
}

/* Per-call constants of the walk. */
typedef struct {
    const mx_blockfma_params *p;
    mxb_bdot_coeffs cf;
    double twoF, twomF;  /* 2^F, 2^-F */
    uint64_t mask;       /* keeps the result's P leading bits */
    int c_fadd;
    double infl;         /* 1 + 2^-40 */
    int mode, odd_even;  /* walk_mode; odd/even alignment groups */
    int cutoff, prod_ovf;
    double cut_pw2;      /* 2^late_c_cutoff */
    double two_late;     /* 2^late_sum_frac_bits */
    double mtwo_late;    /* 2^-late_sum_frac_bits */
    int chain;           /* unscaled: one chain over K (c carried) */
    int xs;              /* the bound's block sums s exact (mxb_wsum_exact) */
    int kind;            /* walk_kind_now() for this call */
    /* every nonzero product's 2^(r_a + r_b) is at least 2^-126 (the
     * smallest r of either format summed): a late c of 0 never takes the
     * E < E_c branch */
    int late_lo;
    /* fin: every nonzero product of the operands' codes lies within
     * 2^-40 .. 2^40 (E4M3: 2^-20 .. 2^18), and the grid is at most 28
     * bits (walk_mode), a late sum's at most 45.  On a group from a zero
     * state no lane is then ever flagged: a nonzero block result (at most
     * 32 chained blocks of at most 64 terms: below 2^52) is a multiple of
     * 2^(E - F) >= 2^-68, an early c one such, a late one's grid 2^(E_c -
     * L) >= 2^-113 (and a late c of 0 takes the E >= E_c branch: E >=
     * -40), all normal in FP32; every w is below 2^128; a c_fadd sum is c
     * = 0 plus such a result.  So the instances with FIN leave out the
     * flags, and upx_l's step is exact there. */
    int fin;
} walk_c;

/* An unscaled chain's bound over K from the walk's D and sum |ab| after
 * the last group: *fb the accumulator bound (mxg_acc_block's unscaled
 * one), *fp the sum |ab| it reports. */
static void chain_bound(const mx_blockfma_params *p, size_t K, double sum, double D,
                        double *fb, double *fp)
{
    double S = sum * (1.0 + ldexp((double)K + 1.0, -52));
    *fb = fmin(mx_blockfma_bound(p, K, S, 0), isfinite(D) ? D : INFINITY);
    *fp = S;
}

/* Per-group constants (depend on the group's length). */
typedef struct {
    sched sc;
    double lin_g, lin_c; /* mx_blockfma_bound = (g S + c)(1 + 2^-40) */
    double sabs_infl;    /* mx_blockfma_sum_abs's final factor */
    /* the first pass sums sum |ab|: its order is index order (blocks that
     * are runs in order), or the order cannot change the sum (walk_cpu) */
    int sa_walk;
    /* sum |ab| is the sum of the blocks' s: every sum of the group's w
     * exact (mxb_wsum_exact over len), scaled operands (no chain) */
    int sas;
    int f32;             /* the alignment pass in FP32 lanes (align_f) */
} walk_g;

static inline uint64_t d2u(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double u2d(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The pattern of FLT_MAX as a binary64. */
#define FLT_MAX_BITS UINT64_C(0x47efffffe0000000)

/* 1 / x for a power of two x in binary64's normal range (exponent
 * -1022 .. 1023): the exponent's negation in the bit pattern, exact (no
 * division in the lanes). */
static inline double recip_l(double x)
{
    return u2d(UINT64_C(0x7fe0000000000000) - d2u(x));
}

/* floor(x) for every binary64 x but NaN, in operations that vectorize
 * (GCC keeps floor itself scalar unless traps are off): below 2^52 in
 * magnitude, x + m - m with m = 2^52 of x's sign is x rounded to an
 * integer (nearest, the default mode), exactly; from 2^52 up x is an
 * integer already.  Then one step down where that rounding went up.
 * fin: |x| < 2^52 (the caller knows it, or discards the lane), so the
 * guard for larger x is left out. */
static inline double floor_lx(double x, int fin)
{
    double m = x < 0 ? -0x1p52 : 0x1p52;
    double r = (x + m) - m;
    if (!fin)
        r = fabs(x) < 0x1p52 ? r : x;
    return r > x ? r - 1.0 : r;
}

/* The bits set in x, in operations that vectorize (no vector popcount
 * before AVX-512 VPOPCNTDQ): sums of bit fields (the last two steps as
 * shifts and adds, not the multiplication, which GCC recognizes as a
 * popcount and makes one scalar instruction a lane). */
static inline uint32_t popcount32_l(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    x = x + (x >> 8);
    return (x + (x >> 16)) & 0x3fu;
}

/* mxb_up without branches, for x >= +0 or NaN: every value the bound
 * walk rounds up (its terms, counts, sums and coefficients are all
 * nonnegative, and every sum starts from +0).  There mxb_up is the
 * pattern plus one (+0's is 2^-1074, a positive finite x's its successor)
 * and keeps +inf and NaN: one compare and one masked add. */
static inline double up_l(double x)
{
    return u2d(d2u(x) + (uint64_t)(x < INFINITY));
}

/* up_l where x is known finite (fin): the pattern plus one, no compare.
 * The walk's instances for narrow operands (walk_c.fin) take it: there
 * every value the bound walk rounds up is finite, for the walk's products
 * are of unscaled codes (w below 2^40, s below 2^46, nz at most 64) and
 * the coefficients of mxb_bdot_coeffs_of are at most 2, so every step
 * stays far below 2^1024 and fin's step is up_l's, bit for bit. */
static inline double upx_l(double x, int fin)
{
    return fin ? u2d(d2u(x) + 1) : up_l(x);
}

static inline double add_up_l(double a, double b, int fin) { return upx_l(a + b, fin); }
static inline double mul_up_l(double a, double b, int fin) { return upx_l(a * b, fin); }
static inline double max2_l(double a, double b) { return a > b ? a : b; }

/* blockfma_bound_dot.c's block_err, per lane. */
static inline double block_err_l(const mxb_bdot_coeffs *c, double nz,
                                 double wmax, double s, double dabs, int fin)
{
    double W = max2_l(max2_l(wmax, dabs), 0x1p-126);
    double eA = mul_up_l(mul_up_l(add_up_l(nz, 2.0, fin), c->ea, fin), W, fin);
    double base = add_up_l(dabs, s, fin);
    double eL = mul_up_l(c->late, base, fin);
    double S1 = add_up_l(add_up_l(base, eA, fin), eL, fin);
    return add_up_l(add_up_l(add_up_l(eA, eL, fin), mul_up_l(c->fin, S1, fin), fin), c->eta,
                    fin);
}

/* The first pass's step for the term i of a block, lane by lane: the
 * model's 2^E (the max of 2^(r_a + r_b), into Wj: W or, odd/even, W1 for
 * the odd-indexed terms) and the bound walk's max and upward sum, and,
 * when with_sa (walk_g.sa_walk, unless sas), sum |ab|.  A zero operand
 * has 2^r = 0 here, so the max of every 2^(r_a + r_b) is the max over
 * the nonzero products; a zero product has w = 0, so max with it changes
 * nothing, s + 0 is s, and the upward step (s + w > 0 and finite: the bit
 * pattern plus one) is taken for nonzero products only.  Always inlined
 * with Wj a local array, so that every accumulator stays in registers
 * across the terms (a pointer chosen per term kept W in memory: a
 * store-to-load chain per term). */
BODY_INLINE void
gather_l(size_t i, const double *ap, const double *aa, const double *restrict bp,
         const double *restrict ba, int with_sa, int xs, double *restrict Wj,
         double *restrict wm, double *restrict s, double *restrict sa)
{
    double pa = ap[i], a = aa[i];
    const double *bai = ba + i * NT, *bpi = bp + i * NT;
    LANES
    for (size_t l = 0; l < NT; l++) {
        double rp = pa * bpi[l], t = a * bai[l];
        double r = max2_l(t, rp);
        uint64_t on = t > 0;
        Wj[l] = rp > Wj[l] ? rp : Wj[l];
        wm[l] = max2_l(wm[l], r);
        /* xs: every partial sum exact, no step up (walk_c.xs) */
        s[l] = xs ? s[l] + r : u2d(d2u(s[l] + r) + on);
        sa[l] += with_sa ? r : 0.0;
    }
}

/* A code's reference exponent r (2^r = its p, a normal binary64) as the
 * first pass's integer lanes take it; EX_ZERO for a zero code: a sum with
 * one is below -1074 - 100, so 2^sum is 0 in binary64, as p_a p_b is. */
#define EX_ZERO (-2000)
static inline int32_t ex_of(double p)
{
    return p > 0 ? (int32_t)((d2u(p) >> 52) & 0x7ff) - 1023 : EX_ZERO;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define GATHER512 1
/* The first pass over one block, gather_l's steps for its cnt terms in
 * order (odd_even: even j into W, odd j into W1), with AVX-512 vectors of
 * eight lanes (NT = 16: two of each).  The same values lane by lane, so
 * the same bits: vmaxpd is a > b ? a : b (no NaN here), the step up is
 * the pattern's 64-bit add under the t > 0 mask; gather_l's r = max(t,
 * 2^(r_a + r_b)) is t, which is never below it (a and b are the codes'
 * bound magnitudes, dec), so that max is left out.  W, the max of 2^(r_a +
 * r_b), is the max of the exponent sums r_a + r_b in 16 int32 lanes
 * (aex, bex: the codes' r, EX_ZERO for a zero, so that a sum with a zero
 * is far below any code's and 2^sum is 0 in binary64), made 2^max at the
 * end (vscalefpd of 1: exact): the max of powers of two is the power of
 * the max.  With xs the block's s is an exact sum, so it is summed in two
 * halves (even and odd j), added at the end: the same value in any order.
 * The compiler's vectorization of gather_l chose 16-byte vectors for some
 * instances, so the pass is spelled out; walk_kind picks it at run time. */
__attribute__((target("avx512f"))) static void
gather_block512(const unsigned char *ix, size_t cnt, int odd_even, const int32_t *aex,
                const double *aa, const int32_t *restrict bex, const double *restrict ba,
                int with_sa, int xs, double *restrict W, double *restrict W1,
                double *restrict wm, double *restrict s, double *restrict sa)
{
    __m512i e0 = _mm512_set1_epi32(2 * EX_ZERO), e1 = e0; /* even j, odd j */
    __m512d m0 = _mm512_loadu_pd(wm), m1 = _mm512_loadu_pd(wm + 8);
    __m512d s0 = _mm512_loadu_pd(s), s1 = _mm512_loadu_pd(s + 8);
    __m512d t0 = _mm512_setzero_pd(), t1 = _mm512_setzero_pd(); /* xs: odd j */
    __m512d a0 = _mm512_loadu_pd(sa), a1 = _mm512_loadu_pd(sa + 8);
    __m512d n0 = _mm512_setzero_pd(), n1 = n0; /* odd j's max of w (w >= 0) */
    const __m512i one = _mm512_set1_epi64(1);
    const __m512d zero = _mm512_setzero_pd();
#define G512_STEP(J, EX, SA, SB, MA, MB)                                                   \
    do {                                                                                   \
        size_t i_ = ix[(J)];                                                               \
        __m512d a_ = _mm512_set1_pd(aa[i_]);                                               \
        const double *ba_ = ba + i_ * NT;                                                  \
        EX = _mm512_max_epi32(EX, _mm512_add_epi32(_mm512_set1_epi32(aex[i_]),             \
                                                   _mm512_loadu_si512(bex + i_ * NT)));    \
        __m512d r0 = _mm512_mul_pd(a_, _mm512_loadu_pd(ba_));                              \
        __m512d r1 = _mm512_mul_pd(a_, _mm512_loadu_pd(ba_ + 8));                          \
        MA = _mm512_max_pd(MA, r0);                                                        \
        MB = _mm512_max_pd(MB, r1);                                                        \
        if (xs) {                                                                          \
            SA = _mm512_add_pd(SA, r0);                                                    \
            SB = _mm512_add_pd(SB, r1);                                                    \
        } else {                                                                           \
            __mmask8 o0 = _mm512_cmp_pd_mask(r0, zero, _CMP_GT_OQ);                        \
            __mmask8 o1 = _mm512_cmp_pd_mask(r1, zero, _CMP_GT_OQ);                        \
            __m512i u0 = _mm512_castpd_si512(_mm512_add_pd(SA, r0));                       \
            __m512i u1 = _mm512_castpd_si512(_mm512_add_pd(SB, r1));                       \
            SA = _mm512_castsi512_pd(_mm512_mask_add_epi64(u0, o0, u0, one));              \
            SB = _mm512_castsi512_pd(_mm512_mask_add_epi64(u1, o1, u1, one));              \
        }                                                                                  \
        if (with_sa) {                                                                     \
            a0 = _mm512_add_pd(a0, r0);                                                    \
            a1 = _mm512_add_pd(a1, r1);                                                    \
        }                                                                                  \
    } while (0)
    size_t j = 0;
    if (odd_even && xs) { /* odd j's s apart too (t0, t1) */
        for (; j + 1 < cnt; j += 2) {
            G512_STEP(j, e0, s0, s1, m0, m1);
            G512_STEP(j + 1, e1, t0, t1, n0, n1);
        }
    } else if (odd_even) {
        for (; j + 1 < cnt; j += 2) {
            G512_STEP(j, e0, s0, s1, m0, m1);
            G512_STEP(j + 1, e1, s0, s1, n0, n1);
        }
    } else if (xs) {
        for (; j + 1 < cnt; j += 2) {
            G512_STEP(j, e0, s0, s1, m0, m1);
            G512_STEP(j + 1, e1, t0, t1, n0, n1);
        }
    }
    for (; j < cnt; j++)
        G512_STEP(j, e0, s0, s1, m0, m1);
#undef G512_STEP
    m0 = _mm512_max_pd(m0, n0); /* a max in any order */
    m1 = _mm512_max_pd(m1, n1);
    if (xs) { /* exact: the halves' sum is the sum */
        s0 = _mm512_add_pd(s0, t0);
        s1 = _mm512_add_pd(s1, t1);
    }
    if (!odd_even) /* one group: the odd j's exponents are W's too */
        e0 = _mm512_max_epi32(e0, e1);
    const __m512d ones = _mm512_set1_pd(1.0);
    __m512d p0 = _mm512_scalef_pd(ones, _mm512_cvtepi32_pd(_mm512_castsi512_si256(e0)));
    __m512d p1 =
        _mm512_scalef_pd(ones, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(e0, 1)));
    _mm512_storeu_pd(W, _mm512_max_pd(p0, _mm512_loadu_pd(W)));
    _mm512_storeu_pd(W + 8, _mm512_max_pd(p1, _mm512_loadu_pd(W + 8)));
    if (odd_even) {
        p0 = _mm512_scalef_pd(ones, _mm512_cvtepi32_pd(_mm512_castsi512_si256(e1)));
        p1 = _mm512_scalef_pd(ones, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(e1, 1)));
        _mm512_storeu_pd(W1, _mm512_max_pd(p0, _mm512_loadu_pd(W1)));
        _mm512_storeu_pd(W1 + 8, _mm512_max_pd(p1, _mm512_loadu_pd(W1 + 8)));
    }
    _mm512_storeu_pd(wm, m0);
    _mm512_storeu_pd(wm + 8, m1);
    _mm512_storeu_pd(s, s0);
    _mm512_storeu_pd(s + 8, s1);
    _mm512_storeu_pd(sa, a0);
    _mm512_storeu_pd(sa + 8, a1);
}
#endif

/* 1: gather_block512 runs the first pass (AVX-512F present); 0: gather_l
 * (mxg_block_walk_set_kind) */
static int walk_kind = -1;

/* the fastest first pass this processor has */
static int walk_kind_most(void)
{
#ifdef GATHER512
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

static int walk_kind_now(void)
{
    int k = __atomic_load_n(&walk_kind, __ATOMIC_RELAXED);
    if (k < 0) {
        k = walk_kind_most();
        __atomic_store_n(&walk_kind, k, __ATOMIC_RELAXED);
    }
    return k;
}

int mxg_block_walk_set_kind(int kind)
{
    if (kind < 0 || kind > walk_kind_most())
        return -1;
    __atomic_store_n(&walk_kind, kind, __ATOMIC_RELAXED);
    return 0;
}

/* A late block's product sum over 2^(E-F): of its two alignment groups
 * (odd/even; W, S the even group's 2^E and aligned sum, W1, S1 the odd
 * one's) the one of smaller E moves onto the other's grid, rounded down,
 * then the larger E's sum is added.  *wb: the larger 2^E; *rb: 1 over it
 * (1 where it is 0).  fin: |S|, |S1| < 2^31 (the floor_lx argument is
 * the smaller E's sum times a power of two at most 1). */
BODY_INLINE double oe_sum_l(double W, double W1, double S, double S1, int fin, double *wb,
                            double *rb)
{
    double Wb = W >= W1 ? W : W1, Ws = W >= W1 ? W1 : W;
    double Sb = W >= W1 ? S : S1, Ss = W >= W1 ? S1 : S;
    double r = recip_l(Wb > 0 ? Wb : 1.0);
    *wb = Wb;
    *rb = r;
    return Sb + floor_lx(Ss * (Ws * r), fin);
}

/* The second pass's step: term a * b truncated onto the grid (inv =
 * 2^(F-E) per lane), added to Sj. */
BODY_INLINE void
align_l(double a, const double *restrict bvi, const double *restrict inv,
        double *restrict Sj)
{
    LANES
    for (size_t l = 0; l < NT; l++)
        Sj[l] += (double)(int32_t)(a * bvi[l] * inv[l]);
}

/* align_l in FP32 lanes, for 8-bit operands (walk_g.f32): a, b and
 * 2^(F-E) are exact in FP32 (8-bit codes and products lie within
 * 2^-40 .. 2^32, E within -40 .. 32), so a b is exact (at most 8
 * significant bits) and so is a b 2^(F-E), a normal FP32 number below
 * 2^(F+2) or zero: the same truncated integer as in binary64.  Summed in
 * int32: f32 is set only when no accumulator can reach 2^31 (ceil(n/2)
 * terms of a block of n, each below 2^(F+2)).  Sixteen lanes to a vector
 * instead of eight, and one conversion instead of two. */
BODY_INLINE void
align_f(float a, const float *restrict bvi, const float *restrict inv,
        int32_t *restrict Ij)
{
    LANES
    for (size_t l = 0; l < NT; l++)
        Ij[l] += (int32_t)(a * bvi[l] * inv[l]);
}

/* One group of one row against a tile of NT columns: av/aa/ap the row's
 * signed values, magnitudes and 2^r (len of them), bv/ba/bp the tile's
 * ([len][NT]).  part: the model's group partial (from c = 0); bad: lanes
 * to recompute.  sbm/spm: mxg_acc_block's two sums, to which this group
 * adds its step (scad, scbd: the row's and the columns' scales; the
 * group's bound is the smaller of mx_blockfma_bound on
 * mx_blockfma_sum_abs and mx_blockfma_bound_dot from c_abs 0).  One pass
 * over each block gathers what the model's alignment and the bounds need,
 * a second sums the model's aligned terms. */
BODY_INLINE void group_tile_body(const walk_c *w, const walk_g *wg, const double *av,
                                 const double *aa, const double *ap, const float *avf,
                                 uint64_t anz, const int32_t *aex, const int32_t *bex,
                                 const double *restrict bv, const double *restrict ba,
                                 const double *restrict bp, const float *restrict bvf,
                                 const uint32_t *restrict bnz, size_t len,
                                 float *restrict part, unsigned char *restrict bad,
                                 double scad, const double *restrict scbd,
                                 double *restrict sbm, double *restrict spm,
                                 double *restrict cs, int mode, int odd_even, int c_fadd,
                                 int zero, int xs, int sas, int fin)
{
    const sched *sc = &wg->sc;
    /* cs: the row's state carried from group to group ([4][NT]): the
     * incoming c, the bound walk's P and D, the sum |ab| so far; zero for
     * scaled operands (every group from c = 0), the chain of unscaled
     * ones.  This writes P, D and the sum back; the caller stores c. */
    double *cin = cs, *cP = cs + NT, *cD = cs + 2 * NT, *csa = cs + 3 * NT;
    /* zero: the state is known to be zero (scaled operands), not read */
    static const double zs[NT];
    const double *rin = zero ? zs : cin, *rP = zero ? zs : cP, *rD = zero ? zs : cD,
                 *rsa = zero ? zs : csa;
    /* lanes as wide as a double everywhere (the vectorizer keeps one
     * vector shape; no short-circuit or trapping operation under a
     * condition) */
    double d[NT], sa[NT], Pi[NT], Di[NT], sinst[NT];
    int64_t flag[NT];
    LANES
    for (size_t l = 0; l < NT; l++) {
        /* c_fadd: the instruction's blocks from zero, c added after */
        double cf = fabs(rin[l]) <= FLT_MAX ? rin[l] : 0.0; /* else flagged */
        d[l] = c_fadd ? 0.0 : cf;
        Pi[l] = c_fadd ? 0.0 : rP[l];
        Di[l] = c_fadd ? 0.0 : rD[l];
        sa[l] = rsa[l];
        sinst[l] = 0.0;
        /* an infinite or NaN c (a chain past a special): the general code */
        flag[l] = (int64_t)!(fabs(rin[l]) <= FLT_MAX);
    }
    for (size_t bk = 0; bk < sc->nblk; bk++) {
        const unsigned char *ix = sc->idx + sc->start[bk];
        size_t cnt = (size_t)(sc->start[bk + 1] - sc->start[bk]);
        /* W, S: the (even) group's 2^E and aligned sum; W1, S1 the odd
         * group's (odd_even); v the block's exact result before rounding */
        double W[NT], W1[NT], cv[NT], S[NT], S1[NT], inv[NT], inv1[NT], v[NT];
        double nz[NT], wm[NT], s[NT];
        LANES
        for (size_t l = 0; l < NT; l++) {
            /* c (an FP32 value held in a double) and, early, 2^r of it:
             * by its exponent bits, 2^-126 when subnormal (FP32's emin),
             * 0 for c = 0; an early subnormal c is flagged all the same */
            double cr = u2d(d2u(d[l]) & UINT64_C(0x7ff0000000000000));
            cr = d[l] == 0 ? 0.0 : cr > 0x1p-126 ? cr : 0x1p-126;
            cv[l] = d[l];
            W[l] = mode == W_EARLY ? cr : 0.0;
            W1[l] = 0.0;
            flag[l] |= (int64_t)((!fin) & (mode == W_EARLY) & (d[l] != 0) &
                                 (d[l] < 0x1p-126) & (d[l] > -0x1p-126));
            wm[l] = s[l] = 0.0;
        }
        /* the bound's count of nonzero products: positions of the block
         * where both codes are nonzero (bnz: the tile's, per lane) */
        _Static_assert(MX_BLOCK <= 32, "a group's positions fit 32 bits");
        uint32_t pos32 = (uint32_t)(anz & sc->pos[bk]);
        LANES
        for (size_t l = 0; l < NT; l++)
            nz[l] = (double)popcount32_l(pos32 & bnz[l]);
        /* First pass: the model's E and the bound's walk (gather_l).
         * mx_blockfma_sum_abs adds the same w in index order, which is
         * block order when the blocks are contiguous runs; other orders
         * give its sum where every partial sum is exact (sa_walk). */
        /* sas: sum |ab| from the blocks' s (below), not term by term */
        int wsa = sas ? 0 : wg->sa_walk;
#ifdef GATHER512
        if (NT == 16 && w->kind == 1)
            gather_block512(ix, cnt, odd_even, aex, aa, bex, ba, wsa, xs, W, W1, wm, s, sa);
        else
#endif
        if (!odd_even) {
            for (size_t j = 0; j < cnt; j++)
                gather_l(ix[j], ap, aa, bp, ba, wsa, xs, W, wm, s, sa);
        } else { /* even-indexed terms to W, odd to W1, in j's order */
            size_t j = 0;
            for (; j + 1 < cnt; j += 2) {
                gather_l(ix[j], ap, aa, bp, ba, wsa, xs, W, wm, s, sa);
                gather_l(ix[j + 1], ap, aa, bp, ba, wsa, xs, W1, wm, s, sa);
            }
            if (j < cnt)
                gather_l(ix[j], ap, aa, bp, ba, wsa, xs, W, wm, s, sa);
        }
        if (mode == W_EXACT) { /* every product exact, their sum too */
            LANES
            for (size_t l = 0; l < NT; l++)
                v[l] = cv[l];
            for (size_t j = 0; j < cnt; j++) {
                size_t i = ix[j];
                double a = av[i];
                const double *bvi = bv + i * NT;
                LANES
                for (size_t l = 0; l < NT; l++)
                    v[l] += a * bvi[l];
            }
        } else {
            LANES
            for (size_t l = 0; l < NT; l++) {
                double q = w->twoF * recip_l(W[l] > 0 ? W[l] : 1.0);
                double q1 = w->twoF * recip_l(W1[l] > 0 ? W1[l] : 1.0);
                inv[l] = W[l] > 0 ? q : 0.0;
                inv1[l] = W1[l] > 0 ? q1 : 0.0;
                S[l] = S1[l] = 0.0;
            }
            /* an early c is one more term of the alignment; it is 0 in a
             * group's first block from a zero state, and so is its term */
            if (mode == W_EARLY && !(zero && bk == 0)) {
                LANES
                for (size_t l = 0; l < NT; l++)
                    S[l] = (double)(int32_t)(cv[l] * inv[l]);
            }
            if (wg->f32) { /* two int32 accumulators (align_f) */
                float invf[NT], inv1f[NT];
                int32_t I0[NT], I1[NT];
                LANES
                for (size_t l = 0; l < NT; l++) {
                    invf[l] = (float)inv[l];
                    inv1f[l] = (float)(odd_even ? inv1[l] : inv[l]);
                    I0[l] = I1[l] = 0;
                }
                size_t j = 0;
                for (; j + 1 < cnt; j += 2) {
                    align_f(avf[ix[j]], bvf + ix[j] * NT, invf, I0);
                    align_f(avf[ix[j + 1]], bvf + ix[j + 1] * NT, inv1f, I1);
                }
                if (j < cnt)
                    align_f(avf[ix[j]], bvf + ix[j] * NT, invf, I0);
                LANES
                for (size_t l = 0; l < NT; l++) { /* odd/even: I1 is the odd group's */
                    S[l] += (double)I0[l] + (odd_even ? 0.0 : (double)I1[l]);
                    S1[l] += odd_even ? (double)I1[l] : 0.0;
                }
            } else if (!odd_even) {
                /* every term an integer below 2^31, at most 65 of them:
                 * their sum is exact in any order, so two accumulators */
                double S2[NT];
                LANES
                for (size_t l = 0; l < NT; l++)
                    S2[l] = 0.0;
                size_t j = 0;
                for (; j + 1 < cnt; j += 2) {
                    align_l(av[ix[j]], bv + ix[j] * NT, inv, S);
                    align_l(av[ix[j + 1]], bv + ix[j + 1] * NT, inv, S2);
                }
                if (j < cnt)
                    align_l(av[ix[j]], bv + ix[j] * NT, inv, S);
                LANES
                for (size_t l = 0; l < NT; l++)
                    S[l] += S2[l];
            } else {
                size_t j = 0;
                for (; j + 1 < cnt; j += 2) {
                    align_l(av[ix[j]], bv + ix[j] * NT, inv, S);
                    align_l(av[ix[j + 1]], bv + ix[j + 1] * NT, inv1, S1);
                }
                if (j < cnt)
                    align_l(av[ix[j]], bv + ix[j] * NT, inv, S);
            }
            if (mode == W_EARLY) {
                LANES
                for (size_t l = 0; l < NT; l++)
                    v[l] = S[l] * (W[l] * w->twomF);
            } else if (zero && bk == 0 && w->late_lo) {
                /* a group's first block from c = 0 (scaled operands): c
                 * is dropped, and where a product is nonzero its 2^E is
                 * at least 2^-126 (late_lo), E_c's floor: v is the
                 * general lane's v_ge = sum * unit, with one floor */
                LANES
                for (size_t l = 0; l < NT; l++) {
                    double Wb, rb;
                    double sum = oe_sum_l(W[l], W1[l], S[l], S1[l], fin, &Wb, &rb);
                    double vv = sum * (Wb * w->twomF); /* in every lane */
                    v[l] = Wb > 0 ? vv : 0.0;
                }
            } else {
                LANES
                for (size_t l = 0; l < NT; l++) {
                    double Wb, rb;
                    double sum = oe_sum_l(W[l], W1[l], S[l], S1[l], fin, &Wb, &rb);
                    double unit = Wb * w->twomF, ib = w->twoF * rb;
                    /* late c, E_c = max(exponent of c, -126) */
                    double c = cv[l];
                    double Wc = u2d(d2u(c) & UINT64_C(0x7ff0000000000000));
                    Wc = Wc > 0x1p-126 ? Wc : 0x1p-126;
                    /* E >= E_c: c rounded down onto the grid 2^(E-F), or
                     * dropped past the cutoff */
                    int drop = (c == 0) | ((w->cutoff > 0) & (Wb > Wc * w->cut_pw2));
                    /* computed in every lane; fin: below 2^(F+1) in
                     * magnitude where v_ge is taken (E >= E_c) */
                    double cd = floor_lx(c * ib, fin);
                    double v_ge = (sum + (drop ? 0.0 : cd)) * unit;
                    /* E < E_c: the sum rounded down onto 2^(E_c - L), c added */
                    double qc = w->two_late * recip_l(Wc);
                    /* fin: where v_lt is taken (E < E_c) the floor's
                     * argument is below 2^(F+8) 2^(E-F) 2^(L-E_c) <=
                     * 2^(7+L) <= 2^52 (|sum| < 2^(F+8): at most 64 terms
                     * below 2^(F+2) each) */
                    double v_lt =
                        (floor_lx(sum * unit * qc, fin) + c * qc) * (Wc * w->mtwo_late);
                    double vv = Wb >= Wc ? v_ge : v_lt;
                    v[l] = Wb > 0 ? vv : c; /* no nonzero product: c itself */
                }
            }
        }
        LANES
        for (size_t l = 0; l < NT; l++) {
            uint64_t mb = d2u(fabs(v[l])) & w->mask;
            double m = u2d(mb);
            /* exact where not flagged; above FLT_MAX flagged (and not
             * converted: no conversion out of FP32's range; m >= 0, so
             * its pattern orders as its value, NaN above all) */
            double f = (double)(float)u2d(fin || mb < FLT_MAX_BITS ? mb : FLT_MAX_BITS);
            /* products of 2^128 and more are infinities (prod_ovf_inf):
             * flagged when a w of the block reaches it; none with fin */
            flag[l] |= (int64_t)((!fin) & (((m != 0) & (m < 0x1p-126)) | (mb > FLT_MAX_BITS) |
                                         (w->prod_ovf & (wm[l] >= 0x1p128))));
            d[l] = v[l] < 0 ? -f : f;
            double dabs = add_up_l(Pi[l], Di[l], fin);
            Di[l] = add_up_l(Di[l], block_err_l(&w->cf, nz[l], wm[l], s[l], dabs, fin), fin);
            Pi[l] = add_up_l(Pi[l], s[l], fin);
            sinst[l] = add_up_l(sinst[l], s[l], fin);
            sa[l] += sas ? s[l] : 0.0; /* exact */
        }
    }
    /* c_fadd: d = c + part, one FP32 addition (fadd32 is IEEE's RNE
     * addition; a non-normal sum is flagged) */
    LANES
    for (size_t l = 0; l < NT; l++) {
        float f = (float)d[l];
        float fs = (float)rin[l] + f;
        double fa = fabs((double)fs);
        f = c_fadd ? fs : f;
        flag[l] |= (int64_t)((!fin) & c_fadd & (((fa != 0) & (fa < 0x1p-126)) | (fa > FLT_MAX)));
        part[l] = f;
        bad[l] = (unsigned char)flag[l];
    }
    /* the first pass added sum |ab|'s terms (sa_walk); else (dealt blocks
     * of wide formats) mx_blockfma_sum_abs's own order */
    if (!wg->sa_walk && !sas)
        for (size_t i = 0; i < len; i++) {
            double a = aa[i], pa = ap[i];
            const double *bai = ba + i * NT, *bpi = bp + i * NT;
            LANES
            for (size_t l = 0; l < NT; l++) {
                double t = a * bai[l], r = pa * bpi[l];
                sa[l] += t > r ? t : r;
            }
        }
    if (c_fadd) {
        LANES
        for (size_t l = 0; l < NT; l++) { /* one instruction, then the FADD */
            double sum =
                add_up_l(add_up_l(rP[l], rD[l], fin), add_up_l(sinst[l], Di[l], fin), fin);
            double fadd = add_up_l(mul_up_l(0x1p-24, sum, fin), 0x1p-150, fin);
            Di[l] = add_up_l(add_up_l(rD[l], Di[l], fin), fadd, fin);
            Pi[l] = add_up_l(rP[l], sinst[l], fin);
        }
    }
    LANES
    for (size_t l = 0; !zero && l < NT; l++) {
        cP[l] = Pi[l];
        cD[l] = Di[l];
        csa[l] = sa[l];
    }
    /* mxg_acc_block's group step (scaled operands; unused in a chain) */
    LANES
    for (size_t l = 0; l < NT; l++) {
        double S = sa[l] * wg->sabs_infl;
        double bdot = Di[l] < INFINITY ? Di[l] : INFINITY;
        double lin = (wg->lin_g * (0.0 + S) + wg->lin_c) * w->infl; /* no branch */
        double bS = S < INFINITY ? lin : INFINITY;
        double Bg = bdot < bS ? bdot : bS;
        double scd = scad * scbd[l];
        sbm[l] += scd * Bg;
        spm[l] += scd * (S + Bg);
    }
}

/* group_tile_body with its mode known, so that the compiler folds the
 * other modes' code away: the general instance (w's mode, a carried
 * state: chains) and one for each preset's mode on chains, and on scaled
 * operands, whose every group starts from a zero state (c = 0, bound 0:
 * neither read nor written), one for any mode and one for each preset's
 * (on E4M3 operands, walk_c.fin: FIN, no flags and upx_l's finite step) */
#define GROUP_TILE(name, MODE, ODD, FADD, ZERO, XS, SAS, FIN)                             \
    static WALK_HOT void name(const walk_c *w, const walk_g *wg, const double *av,         \
                              const double *aa, const double *ap, const float *avf,       \
                              uint64_t anz, const int32_t *aex, const int32_t *bex,       \
                              const double *restrict bv, const double *restrict ba,       \
                              const double *restrict bp, const float *restrict bvf,       \
                              const uint32_t *restrict bnz, size_t len,                   \
                              float *restrict part, unsigned char *restrict bad,          \
                              double scad, const double *restrict scbd,                   \
                              double *restrict sbm, double *restrict spm,                 \
                              double *restrict cs)                                        \
    {                                                                                     \
        group_tile_body(w, wg, av, aa, ap, avf, anz, aex, bex, bv, ba, bp, bvf, bnz, len,  \
                        part, bad, scad, scbd, sbm, spm, cs, MODE, ODD, FADD, ZERO, XS,   \
                        SAS, FIN);                                                        \
    }
GROUP_TILE(group_tile, w->mode, w->odd_even, w->c_fadd, 0, w->xs, 0, 0)
GROUP_TILE(group_tile_chain_early, W_EARLY, 0, 0, 0, w->xs, 0, 0)
GROUP_TILE(group_tile_chain_late_oe, W_LATE, 1, 0, 0, w->xs, 0, 0)
GROUP_TILE(group_tile_scaled, w->mode, w->odd_even, w->c_fadd, 1, w->xs, wg->sas, 0)
GROUP_TILE(group_tile_early, W_EARLY, 0, 0, 1, 1, 1, 1)
GROUP_TILE(group_tile_late_oe, W_LATE, 1, 0, 1, 1, 1, 1)
GROUP_TILE(group_tile_early_fadd, W_EARLY, 0, 1, 1, 1, 1, 1)
#undef GROUP_TILE

typedef void (*group_tile_fn)(const walk_c *, const walk_g *, const double *, const double *,
                              const double *, const float *, uint64_t, const int32_t *,
                              const int32_t *, const double *, const double *, const double *,
                              const float *, const uint32_t *, size_t, float *,
                              unsigned char *, double, const double *, double *, double *,
                              double *);

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
/* the exact dots alone may contract a * b + c to an FMA (the same bits:
 * every product and partial sum is exact) */
#define XDOTS_HOT                                                                         \
    __attribute__((optimize("O3", "fp-contract=fast"),                                   \
                   target_clones("avx512f", "arch=haswell", "default")))
#else
#define XDOTS_HOT
#endif

/* The exact partials of rb rows of A against a tile of NT columns over one
 * group (mxg_xsum; E4M3 operands): xp[q][l] = sum_i a_q[i] b[i][l], the
 * rows' and tile's decoded binary64 values.  Each product of two values of
 * at most 4 significant bits is exact, every partial sum an integer
 * multiple of 2^(ua + ub) below 2^41 of it: exact in any order, with or
 * without FMA.  Four rows at a time, so that each of the tile's vectors
 * serves four and eight independent sums hide the FMA's latency. */
typedef double xv8d __attribute__((vector_size(64)));
_Static_assert(NT == 16, "xdots: a lane row is two vectors of eight");

/* xdots' body for n <= 4 rows (n a constant at each call: the row loops
 * unroll and the 2 n sums stay in registers) */
static inline __attribute__((always_inline)) void
xdots_rows(size_t n, const double *const *arow, const double *restrict bv, size_t len,
           double (*restrict xp)[NT])
{
    xv8d p[8];
    for (size_t r = 0; r < 2 * n; r++)
        p[r] = (xv8d){0};
    for (size_t i = 0; i < len; i++) {
        xv8d bl, bh;
        memcpy(&bl, bv + i * NT, sizeof bl);
        memcpy(&bh, bv + i * NT + 8, sizeof bh);
        for (size_t r = 0; r < n; r++) {
            p[2 * r] += arow[r][i] * bl;
            p[2 * r + 1] += arow[r][i] * bh;
        }
    }
    for (size_t r = 0; r < n; r++) {
        memcpy(xp[r], &p[2 * r], sizeof p[0]);
        memcpy(xp[r] + 8, &p[2 * r + 1], sizeof p[0]);
    }
}

static XDOTS_HOT void xdots(size_t rb, const double *const *arow, const double *restrict bv,
                            size_t len, double (*restrict xp)[NT])
{
    size_t q = 0;
    for (; q + 4 <= rb; q += 4) /* eight sums: the FMA's latency hidden */
        xdots_rows(4, arow + q, bv, len, xp + q);
    for (; q + 2 <= rb; q += 2)
        xdots_rows(2, arow + q, bv, len, xp + q);
    for (; q < rb; q++)
        xdots_rows(1, arow + q, bv, len, xp + q);
}

/* The exact partials of one row against a tile into their int64 sums
 * (mxg_xsum): xp[l] 2^-(ua+ub) (zb[l]: that power of two, or 0 where the
 * column's group adds nothing) is an integer below 2^51 in magnitude, so
 * the low bits of the binary64 xp zb + 1.5 2^52 hold it in two's
 * complement (no float-to-integer conversion: none in vector form before
 * AVX-512DQ); shifted by da + db[l], added modulo 2^64 (the call's sums
 * fit int64: mxg_xsum_new).  A zero partial shifts a zero. */
static WALK_HOT void xsum_step(const double *restrict xp, const double *restrict zb, int da,
                               const int *restrict db, uint64_t *restrict acc)
{
    const double mag = 0x1.8p52;
    const uint64_t mb = d2u(mag);
    LANES
    for (size_t l = 0; l < NT; l++) {
        uint64_t v = d2u(xp[l] * zb[l] + mag) - mb;
        acc[l] += v << ((uint64_t)(da + db[l]) & 63);
    }
}

/* The same into 128-bit sums (lo, hi: mxg_xsum.wide), shifts in 0..126
 * where the partial is nonzero: v 2^s is (v << s, v >> (64 - s)
 * arithmetic) below 64 (the high half by two shifts, so that s = 0 gives
 * v's sign), (0, v << (s - 64)) from 64 on; added with the low half's
 * carry. */
static WALK_HOT void xsum_step128(const double *restrict xp, const double *restrict zb,
                                  int da, const int *restrict db, uint64_t *restrict lo,
                                  uint64_t *restrict hi)
{
    const double mag = 0x1.8p52;
    const uint64_t mb = d2u(mag);
    LANES
    for (size_t l = 0; l < NT; l++) {
        uint64_t v = d2u(xp[l] * zb[l] + mag) - mb;
        uint64_t sh = (uint64_t)(da + db[l]) & 127;
        int64_t vs = (int64_t)v >> 1; /* arithmetic (GCC, clang) */
        uint64_t tl = sh < 64 ? v << (sh & 63) : 0;
        uint64_t th = sh < 64 ? (uint64_t)(vs >> ((63 - sh) & 63)) : v << ((sh - 64) & 63);
        uint64_t nl = lo[l] + tl;
        hi[l] += th + (uint64_t)(nl < tl);
        lo[l] = nl;
    }
}

/* The instance of group_tile for w's mode: on scaled operands (chain 0)
 * one that neither reads nor writes the carried state (a preset's own
 * when there is one and both group lengths sum exactly: E4M3); for a chain
 * the general one. */
static group_tile_fn group_tile_for(const walk_c *w, const walk_g wg[2])
{
    if (w->chain && w->mode == W_EARLY && !w->odd_even && !w->c_fadd)
        return group_tile_chain_early; /* hopper-* on BF16 */
    if (w->chain && w->mode == W_LATE && w->odd_even && !w->c_fadd)
        return group_tile_chain_late_oe; /* cdna3-* on BF16 */
    if (w->chain)
        return group_tile;
    if (!w->xs || !wg[0].sas || !wg[1].sas || !w->fin)
        return group_tile_scaled;
    if (w->mode == W_EARLY && !w->odd_even)
        return w->c_fadd ? group_tile_early_fadd : group_tile_early;
    if (w->mode == W_LATE && w->odd_even && !w->c_fadd)
        return group_tile_late_oe;
    return group_tile_scaled;
}


/* Signed value, bound magnitude and 2^r of a code, as the model and the
 * bounds take them (tab: mxb_mag_table of the format under the preset's
 * in_fmt); all 0 for a zero.  The bound magnitude is max(|v|, 2^r) (the
 * bounds' w of a product is the product of its operands', mxb_wmag), so
 * the walk's t = a_a a_b is w itself.  vf: v in FP32 (exact for 8- and
 * 16-bit codes); e: r as the first pass's integer lanes take it (ex_of). */
typedef struct {
    double v, a, p;
    float vf;
    int32_t e;
} dec;

static inline dec decode1(const mx_format *f, const mxb_mag *tab, uint32_t c)
{
    const mxb_mag *g = &tab[c];
    /* selects, no branches (signs and zeros are data): the table's v
     * and p of a zero, NaN or inf code are not read */
    uint64_t on = (uint64_t)0 - (uint64_t)(g->cls == 1);
    uint64_t sign = (uint64_t)((c >> (f->bits - 1)) & 1) << 63;
    uint64_t a = d2u(g->v) & on;
    dec d = {u2d(a | (sign & on)), u2d(d2u(mxb_wmag(*g)) & on), u2d(d2u(g->p) & on), 0.0f,
             0};
    d.vf = (float)d.v;
    d.e = ex_of(d.p);
    return d;
}

/* The operand's codes decoded: a table of all 256 for 8-bit formats. */
typedef struct {
    const mx_format *f;
    const mxb_mag *tab;
    dec t8[256];
} decoder;

static void decoder_init(decoder *d, const mx_format *f, const mxb_mag *tab)
{
    d->f = f;
    d->tab = tab;
    for (uint32_t c = 0; f->bits == 8 && c < 256; c++)
        d->t8[c] = decode1(f, tab, c);
}

/* The len codes of row r of o from column k0, decoded into v, a and p at
 * stride apart (1 for a row, NT for a lane of a tile); 8-bit codes are read
 * as the row's bytes. */
static inline void decode_run(const decoder *d, const mx_operand *o, size_t r, size_t k0,
                              size_t len, double *v, double *a, double *p, size_t stride)
{
    if (o->fmt->bits == 8) {
        const uint8_t *c8 = mxg_codes_at(o, r, k0);
        for (size_t k = 0; k < len; k++) {
            const dec *e = &d->t8[c8[k]];
            v[k * stride] = e->v;
            a[k * stride] = e->a;
            p[k * stride] = e->p;
        }
        return;
    }
    for (size_t k = 0; k < len; k++) {
        dec e = decode1(d->f, d->tab, mxg_code(o, r, k0 + k));
        v[k * stride] = e.v;
        a[k * stride] = e.a;
        p[k * stride] = e.p;
    }
}

/* A group of len 8-bit codes decoded for the walk, at stride apart (1 for
 * a row of A, NT for a lane of a B tile): values, bound magnitudes, 2^r,
 * values in FP32 (exact), r as ex_of, one table read per code; returns
 * the nonzero codes as bits.  The values in binary64 and 2^r are stored
 * only with vp = 1, the values alone with vp = 2 (where the walk reads
 * them: walk_cpu's use_vp; a constant
 * at each call, so that each call's loop has no branch). */
static inline uint64_t decode8(const decoder *d, const uint8_t *c8, size_t len, double *v,
                               double *a, double *p, float *vf, int32_t *ex, size_t stride,
                               int vp)
{
    uint64_t bits = 0;
    for (size_t k = 0; k < len; k++) {
        const dec *e = &d->t8[c8[k]];
        if (vp)
            v[k * stride] = e->v;
        a[k * stride] = e->a;
        if (vp == 1)
            p[k * stride] = e->p;
        vf[k * stride] = e->vf;
        ex[k * stride] = e->e;
        bits |= (uint64_t)(e->a > 0) << k;
    }
    return bits;
}

/* Is (c & m) == v for any of the n codes at c8?  (any_special's scan) */
static WALK_HOT unsigned any_masked(const uint8_t *c8, size_t n, uint8_t m, uint8_t v)
{
    unsigned char any = 0;
    for (size_t k = 0; k < n; k++)
        any |= (unsigned char)((c8[k] & m) == v);
    return any;
}

/* Any NaN or infinite code in the rows of o? */
static int any_special(const mx_operand *o, const mxb_mag *tab)
{
    if (o->fmt->bits != 8) {
        for (size_t r = 0; r < o->rows; r++) {
            unsigned any = 0;
            for (size_t k = 0; k < o->K; k++)
                any |= tab[mxg_code(o, r, k)].cls == 2;
            if (any)
                return 1;
        }
        return 0;
    }
    /* m, v: where the special codes are exactly those c with (c & m) == v
     * (every 8-bit format here: E4M3FN x1111111, E5M2 x11111xx, the FNUZ
     * formats 10000000), that test, which vectorizes; a format without
     * special codes has nothing to scan, one whose are not such a pattern
     * (none here) is not walked (1: the general code takes the call) */
    unsigned and8 = 0xff, or8 = 0, nsp = 0;
    for (unsigned c = 0; c < 256; c++) {
        unsigned sp = tab[c].cls == 2;
        and8 &= sp ? c : 0xff;
        or8 |= sp ? c : 0;
        nsp += sp;
    }
    if (nsp == 0)
        return 0;
    uint8_t m = (uint8_t)~(and8 ^ or8), v = (uint8_t)(and8 & m);
    unsigned nmv = 0;
    for (unsigned c = 0; c < 256; c++)
        nmv += (c & m) == v;
    if (nmv != nsp)
        return 1;
    for (size_t r = 0; r < o->rows; r++)
        if (any_masked(mxg_codes_at(o, r, 0), o->K, m, v))
            return 1;
    return 0;
}

/* Where decoded A keeps row m's group g: its values, magnitudes and 2^r,
 * MX_BLOCK of each, one after the other, group-major ([G][M][3][MX_BLOCK]:
 * the walk visits every row of one group in turn, so they are read as one
 * stream instead of K doubles apart). */
static inline size_t arow_at(size_t M, size_t m, size_t g)
{
    return (g * M + m) * 3 * MX_BLOCK;
}

/* Doubles of decoded A. */
static size_t arows_size(const mx_operand *A)
{
    return mxg_groups(A->K) * A->rows * 3 * MX_BLOCK;
}

/* Rows [m0, m1) of A's values, magnitudes and 2^r into Av (arow_at). */
static void decode_rows(const decoder *da, const mx_operand *A, double *Av, size_t m0,
                        size_t m1)
{
    size_t M = A->rows, K = A->K, G = mxg_groups(K);
    for (size_t m = m0; m < m1; m++)
        for (size_t g = 0; g < G; g++) {
            double *r = Av + arow_at(M, m, g);
            decode_run(da, A, m, g * MX_BLOCK, mxg_group_len(K, g), r, r + MX_BLOCK,
                       r + 2 * MX_BLOCK, 1);
        }
}

/* mxg_block_walk_rows' decode by blocks of rows on the pool */
#define ROWS_BLOCK ((size_t)16)

typedef struct {
    const decoder *da;
    const mx_operand *A;
    double *Av;
} rows_ctx;

static void rows_task(void *v, size_t b)
{
    const rows_ctx *c = v;
    size_t m0 = b * ROWS_BLOCK, M = c->A->rows;
    decode_rows(c->da, c->A, c->Av, m0, m0 + ROWS_BLOCK < M ? m0 + ROWS_BLOCK : M);
}

static int rows_fit(const mx_operand *A)
{
    return (double)A->rows * (double)mxg_groups(A->K) * 3 * MX_BLOCK * sizeof(double) <=
           A_CACHE_MAX;
}

double *mxg_block_walk_rows(const mx_gemm_spec *s, const mx_operand *A)
{
    const mx_blockfma_params *p = s->model.block;
    /* 8-bit rows are decoded from their codes as the walk reaches them
     * (a table lookup per code): reading a decoded copy, 24 bytes a code,
     * once per super-tile cost more */
    if (mxb_slow || s->model.kind != MX_ACC_BLOCK || !p || !A->fmt->is_signed ||
        A->fmt->bits != 16 || A->K == 0 || !rows_fit(A))
        return NULL;
    const mxb_mag *ta = mxb_mag_table(A->fmt, p->in_fmt);
    if (!ta || any_special(A, ta)) /* the walk will not run */
        return NULL;
    decoder *da = malloc(sizeof *da);
    double *Av = malloc(mx_nz(arows_size(A)) * sizeof *Av);
    if (da && Av) {
        decoder_init(da, A->fmt, ta);
        rows_ctx c = {da, A, Av};
        mx_parallel_for((A->rows + ROWS_BLOCK - 1) / ROWS_BLOCK, rows_task, &c);
    } else {
        free(Av);
        Av = NULL;
    }
    free(da);
    return Av;
}

static void group_consts(const mx_blockfma_params *p, size_t len, walk_g *g)
{
    schedule(p, len, &g->sc);
    mxb_bound_lin(p, len, &g->lin_g, &g->lin_c);
    g->sabs_infl = 1.0 + ldexp((double)len + 1.0, -52);
    g->sa_walk = g->sc.inorder;
    g->f32 = 0;
}

static unsigned long fallbacks;

unsigned long mxg_block_walk_fallbacks(void)
{
    return __atomic_load_n(&fallbacks, __ATOMIC_RELAXED);
}

/* ---- the walk on a device (mx_gemm_set_walk_provider) ------------------ */

static mx_walk_provider walk_provider;
static void *walk_ctx;
static unsigned long walk_device, walk_refused, walk_flagged;

void mx_gemm_set_walk_provider(mx_walk_provider fn, void *ctx)
{
    walk_provider = fn;
    walk_ctx = ctx;
}

mx_walk_provider mx_gemm_walk_provider(void **ctx)
{
    if (ctx)
        *ctx = walk_ctx;
    return walk_provider;
}

void mx_gemm_walk_counts(unsigned long *device, unsigned long *refused,
                         unsigned long *flagged)
{
    if (device)
        *device = __atomic_load_n(&walk_device, __ATOMIC_RELAXED);
    if (refused)
        *refused = __atomic_load_n(&walk_refused, __ATOMIC_RELAXED);
    if (flagged)
        *flagged = __atomic_load_n(&walk_flagged, __ATOMIC_RELAXED);
}

int mxg_walk_on_device(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B)
{
    /* scaled 8-bit operands, or unscaled 16-bit ones (one chain over K) */
    int scaled8 = A->scales && B->scales && A->fmt->bits == 8 && B->fmt->bits == 8;
    int chain16 = !A->scales && !B->scales && A->fmt->bits == 16 && B->fmt->bits == 16;
    return walk_provider && s->model.kind == MX_ACC_BLOCK && (scaled8 || chain16) &&
           A->K % MX_BLOCK == 0 && A->K > 0;
}

/* The codes of o's rows, contiguous (K per row): o's own bytes when they
 * are so already, else a copy in *own. */
/* o's codes as rows of K, one after the other (o's own when they are). */
static const void *rows_contiguous(const mx_operand *o, uint8_t **own)
{
    size_t cb = (size_t)o->fmt->bits / 8; /* bytes per code */
    *own = NULL;
    if (!o->row_idx && o->ld == o->K)
        return o->codes;
    uint8_t *c = malloc(mx_nz(o->rows * o->K * cb));
    for (size_t r = 0; c && r < o->rows; r++)
        memcpy(c + r * o->K * cb, mxg_codes_at(o, r, 0), o->K * cb);
    *own = c;
    return c;
}

/* Each group's scale of o's rows: binary64 value and production's FP32. */
static int scales_of(const mx_gemm_spec *s, const mx_operand *o, size_t G, double **sd,
                     float **sf)
{
    *sd = malloc(mx_nz(o->rows * G) * sizeof **sd);
    *sf = malloc(mx_nz(o->rows * G) * sizeof **sf);
    if (!*sd || !*sf)
        return -1;
    for (size_t r = 0; r < o->rows; r++)
        for (size_t g = 0; g < G; g++) {
            (*sd)[r * G + g] = mx_scale_value(s->decode, mxg_scale_byte(o, r, g));
            (*sf)[r * G + g] = mxg_scale_f32(o, s->decode, r, g);
        }
    return 0;
}

static int walk_cpu(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                    float *macc, double *sum_b, double *sum_p, mx_status *st, int device,
                    int scanned, const mxg_xsum *x, double *exact, int *xdone);

/* What the walk asks of a call before its parameter set (walk_cpu): a
 * block model, not turned off (mxb_set_slow), both operands scaled or
 * neither, signed 8- or 16-bit codes, K > 0. */
static int walk_operands_ok(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B)
{
    return !mxb_slow && s->model.kind == MX_ACC_BLOCK && s->model.block &&
           !A->scales == !B->scales && A->fmt->is_signed && B->fmt->is_signed &&
           (A->fmt->bits == 8 || A->fmt->bits == 16) &&
           (B->fmt->bits == 8 || B->fmt->bits == 16) && A->K > 0;
}

/* The call on the provider: 1 when it took it (outputs written, flagged
 * elements walked again here), 0 to walk it on the CPU. */
static int walk_device_call(const mx_gemm_spec *s, const mx_operand *A,
                            const mx_operand *B, const walk_c *w, const walk_g *wg,
                            const decoder *da, const decoder *db, float *macc,
                            double *sum_b, double *sum_p, mx_status *st)
{
    size_t M = A->rows, N = B->rows, K = A->K, G = K / MX_BLOCK;
    mx_walk_call c;
    memset(&c, 0, sizeof c);
    c.M = M;
    c.N = N;
    c.K = K;
    c.row_weight = s->row_weight;
    c.chain = w->chain;
    c.mode = w->mode == W_EARLY ? MX_WALK_EARLY : w->mode == W_LATE ? MX_WALK_LATE
                                                                     : MX_WALK_EXACT;
    c.odd_even = w->odd_even;
    c.c_fadd = w->c_fadd;
    c.cutoff = w->cutoff;
    c.prod_ovf = w->prod_ovf;
    c.mask = w->mask;
    c.twoF = w->twoF;
    c.twomF = w->twomF;
    c.cut_pw2 = w->cut_pw2;
    c.two_late = w->two_late;
    c.mtwo_late = w->mtwo_late;
    c.infl = w->infl;
    c.cf_ea = w->cf.ea;
    c.cf_late = w->cf.late;
    c.cf_fin = w->cf.fin;
    c.cf_eta = w->cf.eta;
    c.lin_g = wg->lin_g;
    c.lin_c = wg->lin_c;
    c.sabs_infl = wg->sabs_infl;
    c.nblk = (int)wg->sc.nblk;
    c.inorder = wg->sc.inorder;
    c.xs = w->xs;
    memcpy(c.idx, wg->sc.idx, sizeof c.idx);
    memcpy(c.start, wg->sc.start, sizeof c.start);
    /* every code decoded: 256 of each 8-bit format, 65536 of a 16-bit one */
    size_t ncode = w->chain ? 65536 : 256;
    double *tabs = malloc(2 * 3 * ncode * sizeof *tabs);
    for (size_t i = 0; tabs && i < ncode; i++) {
        dec e = w->chain ? decode1(da->f, da->tab, (uint32_t)i) : da->t8[i];
        dec f = w->chain ? decode1(db->f, db->tab, (uint32_t)i) : db->t8[i];
        tabs[3 * i] = e.v;
        tabs[3 * i + 1] = e.a;
        tabs[3 * i + 2] = e.p;
        tabs[3 * (ncode + i)] = f.v;
        tabs[3 * (ncode + i) + 1] = f.a;
        tabs[3 * (ncode + i) + 2] = f.p;
    }
    c.dec_a = tabs;
    c.dec_b = tabs ? tabs + 3 * ncode : NULL;
    uint8_t *own_a, *own_b;
    double *sa = NULL, *sb = NULL;
    float *fa = NULL, *fb = NULL;
    size_t MN = M * N;
    float *mc = macc ? macc : malloc(mx_nz(MN) * sizeof *mc);
    double *b1 = sum_b ? sum_b : malloc(mx_nz(MN) * sizeof *b1);
    double *p1 = sum_p ? sum_p : malloc(mx_nz(MN) * sizeof *p1);
    unsigned char *flag = malloc(mx_nz(MN));
    const void *ca = rows_contiguous(A, &own_a), *cb = rows_contiguous(B, &own_b);
    if (w->chain) {
        c.a16 = ca;
        c.b16 = cb;
    } else {
        c.a = ca;
        c.b = cb;
    }
    int took = 0;
    if (ca && cb && tabs && mc && b1 && p1 && flag &&
        (w->chain || (scales_of(s, A, G, &sa, &fa) == 0 && scales_of(s, B, G, &sb, &fb) == 0))) {
        c.sa = sa;
        c.sb = sb;
        c.fa = fa;
        c.fb = fb;
        took = walk_provider(walk_ctx, &c, mc, b1, p1, flag) == 0;
    }
    /* a chain's bound from the walk's D and sum |ab| (as walk_cpu forms it) */
    for (size_t i = 0; took && w->chain && i < MN; i++)
        if (!flag[i])
            chain_bound(w->p, K, p1[i], b1[i], &b1[i], &p1[i]);
    *st = MX_OK;
    for (size_t m = 0; took && m < M && *st == MX_OK; m++)
        for (size_t n = 0; n < N && *st == MX_OK; n++) {
            size_t i = m * N + n;
            if (!flag[i])
                continue;
            /* the element alone, on the CPU (its groups' general code) */
            int32_t ra = (int32_t)mxg_row(A, m), rb = (int32_t)mxg_row(B, n);
            mx_operand A1 = *A, B1 = *B;
            A1.rows = B1.rows = 1;
            A1.row_idx = &ra;
            B1.row_idx = &rb;
            mx_gemm_spec s1 = *s;
            s1.row_weight = s->row_weight ? &s->row_weight[m] : NULL;
            float m1;
            double sb1, sp1;
            if (!walk_cpu(&s1, &A1, &B1, &m1, &sb1, &sp1, st, 0, 1, NULL, NULL, NULL))
                *st = MX_EINVAL; /* cannot happen: the same walk applies */
            mc[i] = m1;
            b1[i] = sb1;
            p1[i] = sp1;
            __atomic_fetch_add(&walk_flagged, 1, __ATOMIC_RELAXED);
        }
    __atomic_fetch_add(took ? &walk_device : &walk_refused, 1, __ATOMIC_RELAXED);
    if (mc != macc)
        free(mc);
    if (b1 != sum_b)
        free(b1);
    if (p1 != sum_p)
        free(p1);
    free(flag);
    free(tabs);
    free(own_a);
    free(own_b);
    free(sa);
    free(sb);
    free(fa);
    free(fb);
    return took;
}

int mxg_block_walk_x(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                     float *macc, double *sum_b, double *sum_p, mxg_xsum **x,
                     double *exact, int *xdone, mx_status *st)
{
    int shared = mxg_shared_walk(s, A, B->rows, macc, sum_b, sum_p);
    if (xdone)
        *xdone = 0;
    if (shared > 0) {
        *st = MX_OK;
        return 1;
    }
    /* the facts for the exact values only for a walk that will run */
    if (x && exact && !*x)
        *x = mxg_xsum_new(s, A, B);
    return walk_cpu(s, A, B, macc, sum_b, sum_p, st, shared == 0 && walk_provider != NULL,
                    shared == -2, x ? *x : NULL, exact, xdone);
}

int mxg_block_walk(const mx_gemm_spec *s, const mx_operand *A,
                   const mx_operand *B, float *macc, double *sum_b,
                   double *sum_p, mx_status *st)
{
    return mxg_block_walk_x(s, A, B, macc, sum_b, sum_p, NULL, NULL, NULL, st);
}

int mxg_block_walk_device(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                          float *macc, double *sum_b, double *sum_p)
{
    mx_status st = MX_OK;
    return walk_cpu(s, A, B, macc, sum_b, sum_p, &st, 2, 0, NULL, NULL, NULL) && st == MX_OK;
}

/* ---- a whole call's walk in tiles of rows and columns (the pool) ---- */

static unsigned long walk_tiled;

unsigned long mxg_block_walk_tiled_calls(void)
{
    return __atomic_load_n(&walk_tiled, __ATOMIC_RELAXED);
}

typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    float *macc;
    double *sum_b, *sum_p;
    size_t R, C, ncol; /* a tile's rows and columns; tiles across N */
    int *took;
    mx_status *st;
} tiles_ctx;

/* Tile t: rows and columns of A and B as operands of their own, the row
 * weights from its first row, outputs copied into the call's. */
static void tile_task(void *v, size_t t)
{
    const tiles_ctx *x = v;
    size_t M = x->A->rows, N = x->B->rows;
    size_t m0 = t / x->ncol * x->R, n0 = t % x->ncol * x->C;
    size_t mr = M - m0 < x->R ? M - m0 : x->R, nc = N - n0 < x->C ? N - n0 : x->C;
    mx_operand a = mxg_rows_of(x->A, m0, mr), b = mxg_rows_of(x->B, n0, nc);
    mx_gemm_spec s = mxg_spec_rows_from(x->s, m0);
    float *tm = malloc(mr * nc * sizeof *tm);
    double *tb = malloc(mr * nc * sizeof *tb), *tp = malloc(mr * nc * sizeof *tp);
    x->took[t] = 1;
    x->st[t] = MX_ENOMEM;
    if (tm && tb && tp)
        x->took[t] = walk_cpu(&s, &a, &b, tm, tb, tp, &x->st[t], 0, 1, NULL, NULL, NULL);
    for (size_t m = 0; x->took[t] && x->st[t] == MX_OK && m < mr; m++) {
        size_t d = (m0 + m) * N + n0;
        memcpy(x->macc + d, tm + m * nc, nc * sizeof *tm);
        memcpy(x->sum_b + d, tb + m * nc, nc * sizeof *tb);
        memcpy(x->sum_p + d, tp + m * nc, nc * sizeof *tp);
    }
    free(tm);
    free(tb);
    free(tp);
}

/* Two tiles per thread, about square.  A tile decodes each of its rows of
 * A once per TB tiles of NT columns and each of its columns of B once, so
 * its time over one walk of the call grows by about 1.6/R + 1.3/min(C,
 * TB NT) (measured on a 2-core Zen 4 VM, block:cdna3-fp8, 256 x 512 x
 * 6144 on one thread: R x C = 64 x 64 +12 %, 43 x 48 +15 %, 16 x 128 +26
 * %, a split's column block of 256 x 16 +24 %). */
static void tiles_plan(size_t M, size_t N, int threads, size_t *R, size_t *C)
{
    size_t want = 2 * (size_t)(threads > 1 ? threads : 1);
    size_t c = (size_t)sqrt((double)M * (double)N / (double)want);
    c = (c + NT - 1) / NT * NT;
    c = c < NT ? NT : c > TB * NT ? TB * NT : c;
    size_t ncol = (N + c - 1) / c;
    c = ((N + ncol - 1) / ncol + NT - 1) / NT * NT; /* even widths */
    ncol = (N + c - 1) / c;
    size_t nrow = (want + ncol - 1) / ncol;
    nrow = nrow > M ? M : nrow;
    *R = (M + nrow - 1) / nrow;
    *C = c;
}

int mxg_block_walk_tiles(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                         size_t *R, size_t *C)
{
    const mx_blockfma_params *p = s->model.block;
    size_t M = A->rows, N = B->rows;
    if (!walk_operands_ok(s, A, B) || A->fmt->bits != 8 || M == 0 || N == 0)
        return 0;
    const mxb_mag *ta = mxb_mag_table(A->fmt, p->in_fmt);
    const mxb_mag *tb = mxb_mag_table(B->fmt, p->in_fmt);
    if (!ta || !tb || any_special(A, ta) || any_special(B, tb))
        return 0;
    tiles_plan(M, N, mx_pool_threads(), R, C);
    __atomic_fetch_add(&walk_tiled, 1, __ATOMIC_RELAXED);
    return 1;
}

int mxg_block_walk_tiled(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                         float *macc, double *sum_b, double *sum_p)
{
    size_t M = A->rows, N = B->rows, R, C;
    if (!mxg_block_walk_tiles(s, A, B, &R, &C))
        return 0;
    size_t ncol = (N + C - 1) / C, n = (M + R - 1) / R * ncol;
    int *took = malloc(n * sizeof *took);
    mx_status *st = malloc(n * sizeof *st);
    int ok = took && st;
    if (ok) {
        tiles_ctx x = {s, A, B, macc, sum_b, sum_p, R, C, ncol, took, st};
        mx_parallel_for(n, tile_task, &x);
        for (size_t t = 0; t < n; t++)
            ok &= took[t] && st[t] == MX_OK;
    }
    free(took);
    free(st);
    return ok;
}

/* The walk; device 1: offer it to the provider first (when it applies);
 * 2: the provider only (0 when it does not take the call). */
static int walk_cpu(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                    float *macc, double *sum_b, double *sum_p, mx_status *st, int device,
                    int scanned, const mxg_xsum *x, double *exact, int *xdone)
{
    const mx_blockfma_params *p = s->model.block;
    size_t M = A->rows, N = B->rows, K = A->K, G = mxg_groups(K);
    int chain = !A->scales; /* unscaled: one chain of the unit over K */
    if (!walk_operands_ok(s, A, B))
        return 0;
    int mode = walk_mode(p, mxg_group_len(K, 0), A->fmt, B->fmt);
    if (mode == W_NONE || walk_mode(p, mxg_group_len(K, G - 1), A->fmt, B->fmt) != mode)
        return 0;
    /* a chain over K: mx_blockfma_bound_dot's instructions (k products
     * from the start of K) must start with the groups; exact units sum c
     * and products of any span (not in binary64) */
    if (chain && (MX_BLOCK % p->k != 0 || mode == W_EXACT))
        return 0;
    double lg, lc;
    if (!mxb_bound_lin(p, MX_BLOCK, &lg, &lc))
        return 0;
    const mxb_mag *ta = mxb_mag_table(A->fmt, p->in_fmt);
    const mxb_mag *tb = mxb_mag_table(B->fmt, p->in_fmt);
    /* shared rows of A (mxg_block_walk_rows) exist only when A has no
     * special code: not scanned again for each block; scanned: the caller
     * found none in A or B (a tile of mxg_block_walk_tiled, an element
     * of a call the device took) */
    const double *Ash = mxg_shared_rows_walk(s, A);
    if (!ta || !tb ||
        (!scanned && ((!Ash && any_special(A, ta)) || any_special(B, tb))))
        return 0;
    walk_c w;
    w.p = p;
    w.cf = mxb_bdot_coeffs_of(p);
    w.twoF = mode == W_EXACT ? 1.0 : ldexp(1.0, p->frac_bits);
    w.twomF = mode == W_EXACT ? 1.0 : ldexp(1.0, -p->frac_bits);
    int P = p->final_round == MX_RTZ ? (p->out_prec < 24 ? p->out_prec : 24)
                                     : (p->out_prec < 53 ? p->out_prec : 53);
    w.mask = ~((UINT64_C(1) << (53 - P)) - 1);
    w.c_fadd = p->c_fadd;
    w.mode = mode;
    w.odd_even = p->odd_even;
    w.cutoff = p->late_c_cutoff;
    w.prod_ovf = p->prod_ovf_inf;
    w.cut_pw2 = ldexp(1.0, p->late_c_cutoff < 1000 ? p->late_c_cutoff : 1000);
    w.two_late = ldexp(1.0, p->late_sum_frac_bits);
    w.mtwo_late = ldexp(1.0, -p->late_sum_frac_bits);
    w.chain = chain;
    /* the bound's block sums: as mx_blockfma_bound_dot decides for a group
     * (a chain has blocks, so its length does not enter) */
    w.xs = mxb_bdot_sums_exact(p, A->fmt, B->fmt, mxg_group_len(K, 0));
    w.kind = walk_kind_now();
    /* a nonzero product of two codes' magnitudes (or 2^r) lies within
     * 2^lo .. 2^hi */
    int lo = (A->fmt->emin - A->fmt->mbits) + (B->fmt->emin - B->fmt->mbits);
    int hi = mxb_mag_hi(A->fmt, p->in_fmt) + mxb_mag_hi(B->fmt, p->in_fmt);
    w.fin = lo >= -40 && hi <= 40 && p->frac_bits <= 28 &&
            (!p->late_c || p->late_sum_frac_bits <= 45);
    w.late_lo = lo >= -126;
    walk_g wg[2];
    group_consts(p, mxg_group_len(K, 0), &wg[0]);
    group_consts(p, mxg_group_len(K, G - 1), &wg[1]);
    for (int i = 0; i < 2; i++)
        wg[i].sas = !chain && w.xs && mxb_wsum_exact(A->fmt, B->fmt, p->in_fmt,
                                                     i ? mxg_group_len(K, G - 1)
                                                       : mxg_group_len(K, 0));
    /* the terms of sum |ab| (the bounds' w): where every sum of 32 of them
     * is exact (mxb_wsum_exact; E4M3: 36 + 5 bits), the same in any order */
    int sa_any = mxb_wsum_exact(A->fmt, B->fmt, p->in_fmt, MX_BLOCK);
    for (int i = 0; i < 2; i++)
        wg[i].sa_walk = wg[i].sc.inorder || sa_any;
    for (int i = 0; i < 2 && mode != W_EXACT && A->fmt->bits == 8 && B->fmt->bits == 8; i++) {
        size_t most = 0; /* the most terms of a block */
        for (size_t b = 0; b < wg[i].sc.nblk; b++) {
            size_t n = (size_t)(wg[i].sc.start[b + 1] - wg[i].sc.start[b]);
            most = n > most ? n : most;
        }
        wg[i].f32 = ldexp((double)((most + 1) / 2), p->frac_bits + 2) <= 0x1p31;
    }

    w.infl = 1.0 + ldexp(1.0, -40);
    decoder *da = malloc(sizeof *da), *db = malloc(sizeof *db);
    if (da && db) {
        decoder_init(da, A->fmt, ta);
        decoder_init(db, B->fmt, tb);
        int took = device && mxg_walk_on_device(s, A, B) &&
                   walk_device_call(s, A, B, &w, &wg[0], da, db, macc, sum_b, sum_p, st);
        if (took || device == 2) {
            free(da);
            free(db);
            return took;
        }
    }
    /* TB tiles of B side by side (a super-tile), so that each row's
     * decoded group of A is read from memory once for TB tiles, not once
     * per tile; rows in chunks of RB, so that a chunk's groups of A stay
     * in the first-level cache while the TB tiles run over them */
    size_t TBN = TB * NT;
    /* the exact values too (mxg_xsum: scaled 8-bit operands of this call) */
    if (!exact || chain || !x || x->M != M || x->N != N || x->G != G || A->fmt->bits != 8 ||
        B->fmt->bits != 8)
        x = NULL;
    uint64_t *xacc = x ? malloc(M * TBN * sizeof *xacc) : NULL;
    uint64_t *xacch = x && x->wide ? malloc(M * TBN * sizeof *xacch) : NULL;
    if (x && (!xacc || (x->wide && !xacch)))
        x = NULL; /* the fused kernel forms them */
    double xzb[TB * NT], xpb[RB][NT];
    int xdb[TB * NT];
    double *bv = malloc(TB * 3 * MX_BLOCK * NT * sizeof *bv);
    float *bvf = malloc(TB * MX_BLOCK * NT * sizeof *bvf); /* B's values in FP32 */
    int32_t *bex = malloc(TB * MX_BLOCK * NT * sizeof *bex); /* B's r (ex_of) */
    float *acc = malloc(M * TBN * sizeof *acc);
    double *sb = malloc(M * TBN * sizeof *sb), *sp = malloc(M * TBN * sizeof *sp);
    /* the rows' carried state (group_tile's cs): a chain's, per row and
     * lane; scaled operands start every group from zero (one tile's) */
    double *cs = malloc((chain ? M * 4 * TBN : 4 * NT) * sizeof *cs);
    if (!da || !db || !bv || !bvf || !bex || !acc || !sb || !sp || !cs) {
        free(bvf);
        free(bex);
        free(cs);
        free(da);
        free(db);
        free(bv);
        free(acc);
        free(sb);
        free(sp);
        free(xacc);
        free(xacch);
        *st = MX_ENOMEM;
        return 1;
    }
    /* 16-bit A decoded once for every column tile (values, magnitudes,
     * 2^r, at arow_at) when that fits in A_CACHE_MAX bytes: once for the
     * whole call when a split shares it (gemm_split.c), else here; 8-bit A,
     * or 16-bit A that does not fit, row by row for each super-tile, as
     * the codes are read */
    const double *Av = Ash;
    double *Aown = NULL;
    if (!Av && A->fmt->bits == 16 && rows_fit(A) &&
        (Aown = malloc(mx_nz(arows_size(A)) * sizeof *Aown)) != NULL)
        decode_rows(da, A, Aown, 0, M);
    Av = Av ? Av : Aown;
    /* 8-bit A's codes group-major ([G][M][MX_BLOCK]), so that the rows of
     * one group are read as one stream, once per super-tile (else read
     * from A, K bytes apart) */
    uint8_t *Ac = NULL;
    if (A->fmt->bits == 8 && (Ac = malloc(mx_nz(G * M * MX_BLOCK))) != NULL)
        for (size_t m = 0; m < M; m++)
            for (size_t g = 0; g < G; g++)
                memcpy(Ac + (g * M + m) * MX_BLOCK, mxg_codes_at(A, m, g * MX_BLOCK),
                       mxg_group_len(K, g));
    /* every scale byte's value as production's FP32 (mxg_scale_f32), and
     * in binary64 (the same value): read per group of a row or column, not
     * decoded */
    const float *scf = mxg_scale_table(s->decode);
    group_tile_fn tile = group_tile_for(&w, wg);
    /* the decoded 8-bit codes' values in binary64 are read by the exact
     * unit's sum and by align_l: where a group's sums are not formed in
     * int32 (walk_g.f32, never set under W_EXACT); their 2^r by the
     * portable first pass (gather_l, not gather_block512) and by the sum
     * |ab| of a group that the first pass does not add (walk_g.sa_walk);
     * nowhere else: else decode8 leaves both out (check_blockfast fails
     * without each clause); the values alone where the walk forms the
     * exact values too (xdots) */
    int use_vp = !wg[0].f32 || !wg[1].f32 || !(NT == 16 && w.kind == 1) ||
                         !wg[0].sa_walk || !wg[1].sa_walk
                     ? 1
                 : x ? 2
                     : 0;
    for (size_t i = 0; !chain && i < 4 * NT; i++) /* never written on scaled operands */
        cs[i] = 0.0;
    for (size_t n0 = 0; n0 < N; n0 += TBN) {
        size_t ntt = N - n0 < TBN ? N - n0 : TBN; /* columns of this super-tile */
        size_t nti = (ntt + NT - 1) / NT;         /* its tiles */
        for (size_t i = 0; i < M * TBN; i++) {
            acc[i] = 0.0f;
            sb[i] = sp[i] = 0.0;
        }
        for (size_t i = 0; x && i < M * TBN; i++)
            xacc[i] = 0;
        for (size_t i = 0; x && x->wide && i < M * TBN; i++)
            xacch[i] = 0;
        for (size_t i = 0; chain && i < M * 4 * TBN; i++)
            cs[i] = 0.0;
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = mxg_group_len(K, g);
            const walk_g *gc = len == mxg_group_len(K, 0) ? &wg[0] : &wg[1];
            float scb[TB * NT];
            double scbd[TB * NT];
            uint32_t bnz[TB * NT]; /* each lane's nonzero codes in the group, as bits */
            for (size_t t = 0; t < nti; t++) {
                double *bvt = bv + t * 3 * MX_BLOCK * NT, *bat = bvt + MX_BLOCK * NT,
                       *bpt = bat + MX_BLOCK * NT;
                /* B's values in FP32 (exact) and r (ex_of), as the tile's */
                float *bft = bvf + t * MX_BLOCK * NT;
                int32_t *bet = bex + t * MX_BLOCK * NT;
                for (size_t l = 0; l < NT; l++) { /* lanes past ntt: zeros */
                    size_t c = t * NT + l;
                    scb[c] = 0.0f;
                    scbd[c] = 0.0;
                    bnz[c] = 0;
                    int xd = x && c < ntt ? x->db[(n0 + c) * G + g] : MXG_XSUM_SKIP;
                    xzb[c] = xd == MXG_XSUM_SKIP ? 0.0 : x->inv;
                    xdb[c] = xd == MXG_XSUM_SKIP ? 0 : xd;
                    if (c >= ntt) {
                        for (size_t k = 0; k < len; k++) {
                            bvt[k * NT + l] = bat[k * NT + l] = bpt[k * NT + l] = 0.0;
                            bft[k * NT + l] = 0.0f;
                            bet[k * NT + l] = EX_ZERO;
                        }
                        continue;
                    }
                    scb[c] = chain ? 1.0f : scf[mxg_scale_byte(B, n0 + c, g)];
                    scbd[c] = scb[c];
                    if (B->fmt->bits == 8) {
                        const uint8_t *cb8 = mxg_codes_at(B, n0 + c, k0);
                        bnz[c] = (uint32_t)(use_vp == 1   ? decode8(db, cb8, len, bvt + l, bat + l,
                                                                   bpt + l, bft + l, bet + l, NT, 1)
                                             : use_vp == 2 ? decode8(db, cb8, len, bvt + l, bat + l,
                                                                   bpt + l, bft + l, bet + l, NT, 2)
                                                           : decode8(db, cb8, len, bvt + l, bat + l,
                                                                   bpt + l, bft + l, bet + l, NT, 0));
                        continue;
                    }
                    decode_run(db, B, n0 + c, k0, len, bvt + l, bat + l, bpt + l, NT);
                    for (size_t k = 0; k < len; k++) {
                        bnz[c] |= (uint32_t)(bat[k * NT + l] > 0) << k;
                        bft[k * NT + l] = (float)bvt[k * NT + l];
                        bet[k * NT + l] = ex_of(bpt[k * NT + l]);
                    }
                }
            }
            for (size_t m0 = 0; m0 < M; m0 += RB) {
                size_t rb = M - m0 < RB ? M - m0 : RB; /* rows of this chunk */
                /* each row's group of A as the tiles read it, formed once
                 * for the super-tile: its decoded values (Av's, or decoded
                 * here), the values in FP32 (exact: align_f), its nonzero
                 * codes as bits, its scale */
                double abuf[RB][3 * MX_BLOCK];
                float avf[RB][MX_BLOCK];
                int32_t aex[RB][MX_BLOCK];
                const double *arow[RB];
                uint64_t anz[RB];
                double scad[RB];
                float sca[RB];
                int xda[RB];
                for (size_t q = 0; q < rb; q++) {
                    size_t m = m0 + q;
                    if (A->fmt->bits == 8) {
                        const uint8_t *ca8 =
                            Ac ? Ac + (g * M + m) * MX_BLOCK : mxg_codes_at(A, m, k0);
                        double *ab = abuf[q];
                        anz[q] = use_vp == 1   ? decode8(da, ca8, len, ab, ab + MX_BLOCK,
                                                           ab + 2 * MX_BLOCK, avf[q], aex[q], 1, 1)
                                 : use_vp == 2 ? decode8(da, ca8, len, ab, ab + MX_BLOCK,
                                                           ab + 2 * MX_BLOCK, avf[q], aex[q], 1, 2)
                                               : decode8(da, ca8, len, ab, ab + MX_BLOCK,
                                                           ab + 2 * MX_BLOCK, avf[q], aex[q], 1, 0);
                        arow[q] = abuf[q];
                    } else {
                        if (Av) {
                            arow[q] = Av + arow_at(M, m, g);
                        } else {
                            decode_run(da, A, m, k0, len, abuf[q], abuf[q] + MX_BLOCK,
                                       abuf[q] + 2 * MX_BLOCK, 1);
                            arow[q] = abuf[q];
                        }
                        anz[q] = 0;
                        for (size_t i = 0; i < len; i++) {
                            avf[q][i] = (float)arow[q][i];
                            aex[q][i] = ex_of(arow[q][2 * MX_BLOCK + i]);
                            anz[q] |= (uint64_t)(arow[q][MX_BLOCK + i] > 0) << i;
                        }
                    }
                    sca[q] = chain ? 1.0f : scf[mxg_scale_byte(A, m, g)];
                    scad[q] = sca[q];
                    xda[q] = x ? x->da[m * G + g] : MXG_XSUM_SKIP;
                }
                for (size_t t = 0; t < nti; t++) {
                    const double *bvt = bv + t * 3 * MX_BLOCK * NT, *bat = bvt + MX_BLOCK * NT,
                                 *bpt = bat + MX_BLOCK * NT;
                    size_t nt = ntt - t * NT < NT ? ntt - t * NT : NT;
                    if (x) /* the rows' exact partials against the tile */
                        xdots(rb, arow, bvt, len, xpb);
                    for (size_t q = 0; q < rb; q++) {
                        size_t m = m0 + q;
                        const double *av = arow[q];
                        float part[NT];
                        unsigned char bad[NT];
                        size_t at = m * TBN + t * NT; /* the row's lanes of tile t */
                        double *csm = chain ? cs + 4 * at : cs;
                        tile(&w, gc, av, av + MX_BLOCK, av + 2 * MX_BLOCK, avf[q], anz[q],
                             aex[q], bex + t * MX_BLOCK * NT, bvt, bat, bpt,
                             bvf + t * MX_BLOCK * NT, bnz + t * NT, len, part, bad, scad[q],
                             scbd + t * NT, sb + at, sp + at, csm);
                        if (x && xda[q] != MXG_XSUM_SKIP) {
                            if (x->wide)
                                xsum_step128(xpb[q], xzb + t * NT, xda[q], xdb + t * NT,
                                             xacc + at, xacch + at);
                            else
                                xsum_step(xpb[q], xzb + t * NT, xda[q], xdb + t * NT,
                                          xacc + at);
                        }
                        float *am = acc + at;
                        unsigned char anyb = 0;
                        for (size_t l = 0; l < NT; l++)
                            anyb |= bad[l];
                        if (!anyb && !chain) { /* the common case, as below */
                            /* every lane (past nt: zero codes and scale,
                             * never read), so that the loop vectorizes */
                            for (size_t l = 0; l < NT; l++)
                                am[l] = am[l] + part[l] * mxg_scale_mul(sca[q], scb[t * NT + l]);
                            continue;
                        }
                        for (size_t l = 0; l < nt; l++) {
                            float pg = part[l];
                            if (bad[l]) { /* the general code, from the lane's c */
                                __atomic_fetch_add(&fallbacks, 1, __ATOMIC_RELAXED);
                                pg = mx_blockfma_dot(p, A->fmt, mxg_codes_at(A, m, k0),
                                                     B->fmt,
                                                     mxg_codes_at(B, n0 + t * NT + l, k0),
                                                     len, (float)csm[l]);
                            }
                            if (chain) { /* the accumulator is the chain's c */
                                csm[l] = pg;
                                am[l] = pg;
                                continue;
                            }
                            float tt = pg * mxg_scale_mul(sca[q], scb[t * NT + l]);
                            am[l] = am[l] + tt;
                        }
                    }
                }
            }
        }
        for (size_t m = 0; m < M; m++)
            for (size_t c = 0; c < ntt; c++) {
                size_t i = m * N + n0 + c, at = m * TBN + c;
                float a = acc[at];
                if (s->row_weight)
                    a = a * s->row_weight[m];
                if (macc)
                    macc[i] = a;
                double fb = sb[at], fp = sp[at];
                if (chain) { /* mxg_acc_block's unscaled bound, from the walk */
                    const double *csm = cs + 4 * (at - c % NT);
                    chain_bound(p, K, csm[3 * NT + c % NT], csm[2 * NT + c % NT], &fb, &fp);
                }
                if (sum_b)
                    sum_b[i] = fb;
                if (sum_p)
                    sum_p[i] = fp;
                if (x)
                    exact[i] = mxg_xsum_value(x, m, n0 + c, xacc[at], x->wide ? xacch[at] : 0,
                                              s->row_weight ? (double)s->row_weight[m] : 1.0);
            }
    }
    free(xacc);
    free(xacch);
    if (xdone)
        *xdone = x != NULL;
    if (x)
        mxg_xsum_count(x->wide);
    free(Aown);
    free(Ac);
    free(bvf);
    free(bex);
    free(cs);
    free(da);
    free(db);
    free(bv);
    free(acc);
    free(sb);
    free(sp);
    *st = MX_OK;
    return 1;
}
