/* gemm_bound.c -- the per-element bounds of mx_gemm (docs/bounds.md): the
 * statistics every bound uses, the tail shared by every model (weight
 * multiply, BF16 output rounding, overflow), the FP32 output's bound, and
 * the dispatch to each model's accumulator bound (gemm_bound_fp32.c,
 * gemm_bound_block.c, gemm_bound_dequant.c). */
#include <float.h>
#include <math.h>
#include <string.h>
#include "gemm_internal.h"

double mx_gamma32(size_t n)
{
    double nu = (double)n * 0x1p-24;
    return nu < 1 ? nu / (1 - nu) : INFINITY;
}

static inline double bound_tail(double Bacc, double wS, double sabs, double w)
{
    /* evaluated in binary64 round-to-nearest: at most 16 operations on
     * nonnegative values, each within a factor (1 + 2^-53), so the true
     * value is below the computed one times (1 + 2^-48) (docs/bounds.md,
     * "How the numbers are computed") */
    double ey = MXG_BOUND_EY(Bacc, wS, w, fabs(w)), b = MXG_BOUND_FIN(ey, wS);
    /* every partial sum of a correct kernel is at most sabs + Bacc before
     * its rounding: below 2^128 (1 - 2^-25) none rounds to infinity.  Past
     * that the bound cannot speak (the judge's bound-inf class: the model
     * is the verdict).  An overflow of y or of its BF16 rounding keeps a
     * finite bound: the judge admits the infinity of exact's sign when
     * |exact| + B reaches the BF16 overflow threshold (ovf-edge class). */
    return sabs + Bacc < MXG_BOUND_FIN_LIM ? b : INFINITY;
}

static inline double bound_y(double Bacc, double wS, double sabs, double w)
{
    double ey = MXG_BOUND_EY(Bacc, wS, w, fabs(w)), b = MXG_BOUND_Y_FIN(ey, wS);
    return sabs + Bacc < MXG_BOUND_FIN_LIM ? b : INFINITY;
}

double mxg_bound_tail(double Bacc, double wS, double sabs, double w)
{
    return bound_tail(Bacc, wS, sabs, w);
}

double mxg_bound_y(double Bacc, double wS, double sabs, double w)
{
    return bound_y(Bacc, wS, sabs, w);
}

void mxg_bound_elem(const mx_gemm_spec *s, const mx_operand *A,
                    const mx_operand *B, size_t m, size_t n, double S,
                    double amax_a, double amax_b, double exact, double *bound,
                    double *bound_acc, double *sabs_out)
{
    mxg_bound_elem_n(s, A, B, m, n, S, amax_a, amax_b, exact, bound, bound_acc,
                     sabs_out, 1);
}

/* S's inflation and the FP32 models' depth of a call's elements. */
static double sabs_infl(size_t G)
{
    /* S sums G group partials and at most 64 residual terms per group,
     * each exact, all nonnegative, rounded in binary64: the true sum is at
     * most S (1 + (G + 64 G + 2) 2^-52). */
    return 1.0 + (double)(65 * G + 2) * 0x1p-52;
}

static size_t fp32_depth(const mx_gemm_spec *s, const mx_operand *A, size_t G)
{
    if (s->model.kind == MX_ACC_DEQUANT_FP32)
        return A->K - 1;
    return A->scales ? (MX_BLOCK - 1) + (G - 1) : A->K - 1;
}

void mxg_bound_elem_n(const mx_gemm_spec *s, const mx_operand *A,
                      const mx_operand *B, size_t m, size_t n, double S,
                      double amax_a, double amax_b, double exact, double *bound,
                      double *bound_acc, double *sabs_out, int may_underflow)
{
    size_t K = A->K, G = mxg_groups(K);
    double infl = sabs_infl(G);
    size_t depth = fp32_depth(s, A, G);
    double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
    double sabs = S * infl;
    /* every |partial| of 32 products, with its FP32 rounding */
    double pmax = 32.0 * amax_a * amax_b * (1 + 0x1p-18);
    double wS = fabs(exact) * (1 + 0x1p-52);
    if (bound || bound_acc) {
        /* groups whose FP32 scale product is inexact (below 2^-149) */
        size_t ninexact = 0;
        for (size_t g = 0; may_underflow && A->scales && s->model.kind != MX_ACC_DEQUANT_FP32 &&
                           g < G; g++) {
            int ea = mxg_scale_exp(A, s->decode, m, g), eb = mxg_scale_exp(B, s->decode, n, g);
            if (ea != MXG_ZERO_SCALE && eb != MXG_ZERO_SCALE && ea + eb < -149)
                ninexact++;
        }
        double se = sabs;
        double Bacc = s->model.kind == MX_ACC_BLOCK
                          ? mxg_acc_block(s, A, B, m, n, pmax, &se)
                      : s->model.kind == MX_ACC_DEQUANT_FP32
                          ? mxg_acc_dequant(s, A, B, m, n, sabs, &se)
                          : mxg_acc_fp32(sabs, depth, K, G, ninexact, pmax);
        if (bound)
            *bound = bound_tail(Bacc, wS, se, w);
        if (bound_acc)
            *bound_acc = bound_y(Bacc, wS, se, w);
    }
    if (sabs_out)
        *sabs_out = sabs * fabs(w);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LANES_HOT __attribute__((target_clones("avx2", "default")))
#else
#define LANES_HOT
#endif

typedef double v4d_b __attribute__((vector_size(32)));
typedef long long v4i_b __attribute__((vector_size(32)));

/* The FP32 models' lanes, none with a group's scale product below 2^-149:
 * mxg_acc_fp32 (ninexact 0), bound_tail, bound_y and the weighted sum of
 * mxg_bound_elem_n, the same formulas (MXG_ACC_FP32, MXG_BOUND_*), on four
 * lanes at a time (the caller's padding lanes are zeros); an output NULL
 * is not stored. */
static LANES_HOT void fp32_lanes(double infl, double gam, double K, double G, double w,
                                 double amax_a, const double *S, const double *amax_b,
                                 const double *exact, double *bnd, double *bacc, double *sab)
{
    const double aw = fabs(w);
    const v4i_b nosign = (v4i_b){0} + 0x7FFFFFFFFFFFFFFFll;
    const v4d_b inf = (v4d_b){0} + INFINITY;
    for (int h = 0; h < 8; h += 4) {
        v4d_b Sv, ab, ex;
        memcpy(&Sv, S + h, sizeof Sv);
        memcpy(&ab, amax_b + h, sizeof ab);
        memcpy(&ex, exact + h, sizeof ex);
        v4d_b sabs = Sv * infl;
        v4d_b pmax = 32.0 * amax_a * ab * (1 + 0x1p-18);
        v4d_b wS = (v4d_b)((v4i_b)ex & nosign) * (1 + 0x1p-52);
        v4d_b Bacc = MXG_ACC_FP32(gam, sabs, K, G, 0.0, pmax);
        v4d_b ey = MXG_BOUND_EY(Bacc, wS, w, aw);
        v4d_b b = MXG_BOUND_FIN(ey, wS), by = MXG_BOUND_Y_FIN(ey, wS);
        v4i_b fin = sabs + Bacc < MXG_BOUND_FIN_LIM;
        b = (v4d_b)(((v4i_b)b & fin) | ((v4i_b)inf & ~fin));
        by = (v4d_b)(((v4i_b)by & fin) | ((v4i_b)inf & ~fin));
        v4d_b sw = sabs * aw;
        if (bnd)
            memcpy(bnd + h, &b, sizeof b);
        if (bacc)
            memcpy(bacc + h, &by, sizeof by);
        if (sab)
            memcpy(sab + h, &sw, sizeof sw);
    }
}

void mxg_bound_call_init(mxg_bound_call *bc, const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B)
{
    size_t G = mxg_groups(A->K);
    bc->s = s;
    bc->A = A;
    bc->B = B;
    bc->fp32 = s->model.kind != MX_ACC_BLOCK && s->model.kind != MX_ACC_DEQUANT_FP32;
    bc->infl = sabs_infl(G);
    bc->gam = mx_gamma32(fp32_depth(s, A, G));
    bc->K = (double)A->K;
    bc->G = (double)G;
}

void mxg_bound_lanes(const mxg_bound_call *bc, size_t m, size_t n0, size_t nt,
                     const double *S, double amax_a, const double *amax_b,
                     const double *exact, const unsigned char *may_underflow, double *bound,
                     double *bound_acc, double *sabs_out)
{
    static const double zeros[8];
    const mx_gemm_spec *s = bc->s;
    const mx_operand *A = bc->A, *B = bc->B;
    double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
    if (!S)
        S = zeros;
    int uf_any = 0;
    for (size_t l = 0; may_underflow && l < nt; l++)
        uf_any |= may_underflow[l];
    if (bc->fp32 && nt == 8 && !(uf_any && A->scales)) { /* a whole tile row, in place */
        fp32_lanes(bc->infl, bc->gam, bc->K, bc->G, w, amax_a, S, amax_b, exact, bound,
                   bound_acc, sabs_out);
        return;
    }
    double in[3][8] = {{0}}, o[3][8];
    size_t lanes = 0; /* the lanes fp32_lanes takes, as a mask */
    for (size_t l = 0; l < nt; l++) {
        int uf = may_underflow && may_underflow[l];
        /* a lane with groups to count (scaled operands), or another model:
         * the element function */
        if (!bc->fp32 || nt > 8 || (uf && A->scales)) {
            mxg_bound_elem_n(s, A, B, m, n0 + l, S[l], amax_a, amax_b[l], exact[l],
                             bound ? &bound[l] : NULL, bound_acc ? &bound_acc[l] : NULL,
                             sabs_out ? &sabs_out[l] : NULL, uf);
            continue;
        }
        in[0][l] = S[l];
        in[1][l] = amax_b[l];
        in[2][l] = exact[l];
        lanes |= (size_t)1 << l;
    }
    if (!lanes)
        return;
    fp32_lanes(bc->infl, bc->gam, bc->K, bc->G, w, amax_a, in[0], in[1], in[2], o[0], o[1],
               o[2]);
    for (size_t l = 0; l < nt; l++) {
        if (!(lanes >> l & 1))
            continue;
        if (bound)
            bound[l] = o[0][l];
        if (bound_acc)
            bound_acc[l] = o[1][l];
        if (sabs_out)
            sabs_out[l] = o[2][l];
    }
}

void mxg_bounds(const mx_gemm_spec *s, const mx_operand *A,
                const mx_operand *B, const mxg_prep *a, const mxg_prep *b,
                const double *exact, const double *S, double *sabs_out,
                double *bound, double *bound_acc)
{
    size_t M = A->rows, N = B->rows;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            mxg_bound_elem(s, A, B, m, n, S ? S[i] : 0.0, a->amax[m], b->amax[n], exact[i],
                           bound ? &bound[i] : NULL, bound_acc ? &bound_acc[i] : NULL,
                           sabs_out ? &sabs_out[i] : NULL);
        }
}
