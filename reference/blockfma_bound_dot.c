/* blockfma_bound_dot.c -- a per-block error bound of the block-FMA model,
 * from each block's largest term (docs/bounds.md, "Block-FMA models: the
 * per-block bound").
 *
 * mx_blockfma_bound charges every block's alignment loss against the sum of
 * the block's magnitudes.  The alignment grid is set by the block's largest
 * reference magnitude W (2^E <= W), so the loss of one block is below
 * (m_nz + 2) * eps_a * 2^-F * W, m_nz the block's nonzero products; for 32
 * random products W is a small fraction of the sum.  This bound walks the
 * chain exactly as mx_blockfma_dot_bits does (instructions, blocks, deal,
 * c_fadd) and adds, per block j with incoming accumulator d:
 *     e_j <= u_j W_j + l (D + s_j) + f (D + s_j + u_j W_j + l (D + s_j)) + eta
 *   u_j = (m_nz + 2) eps_a 2^-F,  W_j = max(max_i w_i, D, 2^-126),
 *   D  >= |d| (the exact partial so far plus the error so far),
 *   s_j = sum of the block's w_i,  l, f, eta as in mx_blockfma_bound;
 * s_j is summed exactly where the formats make every such sum exact
 * (mxb_wsum_exact: E4M3 operands), else rounded upward as below;
 * the errors of the blocks add (each block adds exact products to the
 * previous computed value).  Every other operation on these nonnegative
 * quantities is rounded upward (add_up, mul_up: the binary64 result moved
 * one ulp up), so the value returned is an upper bound of the real-number
 * formula, not an approximation of it.
 */
#include <math.h>
#include <string.h>
#include "blockfma_fx.h"

static double up(double x) { return mxb_slow ? nextafter(x, INFINITY) : mxb_up(x); }
static double add_up(double a, double b) { return up(a + b); }
static double mul_up(double a, double b) { return up(a * b); }
static double max2(double a, double b) { return a > b ? a : b; }

/* |a_i b_i| and w_i = max(|a_i|, 2^r_a) max(|b_i|, 2^r_b) (mxb_wmag) of
 * product i, at least |a_i b_i| and 2^(r_a + r_b), exact in
 * binary64 (8- and 16-bit operands); -1 for a NaN or infinite operand.
 * ta, tb: the operands' magnitude tables (blockfma_mag.c), or NULL. */
static int prod_mag(const mx_blockfma_params *p, const mx_format *fa,
                    const mxb_mag *ta, uint32_t ca, const mx_format *fb,
                    const mxb_mag *tb, uint32_t cb, double *t, double *w)
{
    mxb_mag a = ta ? ta[ca] : mxb_mag_of(fa, p->in_fmt, ca);
    mxb_mag b = tb ? tb[cb] : mxb_mag_of(fb, p->in_fmt, cb);
    if (a.cls == 2 || b.cls == 2)
        return -1;
    *t = *w = 0.0;
    if (a.cls == 0 || b.cls == 0)
        return 0;
    *t = a.v * b.v; /* exact */
    *w = mxb_wmag(a) * mxb_wmag(b);
    return 0;
}

mxb_bdot_coeffs mxb_bdot_coeffs_of(const mx_blockfma_params *p)
{
    mxb_bdot_coeffs c = {0, 0, 0, 0};
    if (p->frac_bits != MX_BFMA_EXACT) {
        double e = (p->align_round == MX_ALIGN_RNE || p->sticky) ? 0.5 : 1.0;
        if (p->odd_even || p->late_c)
            e = 1.0;
        c.ea = e * ldexp(1.0, -p->frac_bits);
    }
    double late_abs = 0.0;
    if (p->late_c) {
        c.late = ldexp(1.0, -p->late_sum_frac_bits);
        if (p->late_norm_frac_bits != MX_BFMA_EXACT) /* (1 + ua + 2^-Ls) <= 2 */
            c.late = add_up(c.late, ldexp(2.0, -p->late_norm_frac_bits));
        late_abs = ldexp(1.0, -126 - p->late_sum_frac_bits);
    }
    double tr = p->out_prec >= 64 ? 0.0 : ldexp(1.0, 1 - p->out_prec);
    double ef = p->final_round == MX_RNE ? ldexp(1.0, -24) : ldexp(1.0, -23);
    c.fin = add_up(tr, mul_up(ef, add_up(1.0, tr)));
    /* the 2^-126 floor of the grid is in W; what remains: the late step's
     * floor, subnormal FP32 results (twice, for safety as in the old bound) */
    c.eta = add_up(mul_up(2.0, add_up(mul_up(c.late, 0x1p-126), late_abs)),
                   mul_up(0x1p-149, add_up(1.0, tr)));
    return c;
}

/* Error bound of one block: nz nonzero products of largest reference
 * magnitude wmax and magnitude sum s, incoming |d| <= dabs. */
static double block_err(const mxb_bdot_coeffs *c, double nz, double wmax, double s, double dabs)
{
    double W = max2(max2(wmax, dabs), 0x1p-126);
    double eA = mul_up(mul_up(add_up(nz, 2.0), c->ea), W);
    double base = add_up(dabs, s);
    double eL = mul_up(c->late, base);
    double S1 = add_up(add_up(base, eA), eL);
    return add_up(add_up(add_up(eA, eL), mul_up(c->fin, S1)), c->eta);
}

int mxb_bdot_sums_exact(const mx_blockfma_params *p, const mx_format *fa,
                        const mx_format *fb, size_t n)
{
    size_t blk = p->block > 0 ? (size_t)p->block : (n ? n : 1);
    size_t k = p->block > 0 ? (size_t)p->k : (n ? n : 1);
    return mxb_wsum_exact(fa, fb, p->in_fmt, k > blk ? k : blk);
}

double mx_blockfma_bound_dot(const mx_blockfma_params *p, const mx_format *fa,
                             const void *a, const mx_format *fb, const void *b,
                             size_t n, double c_abs)
{
    if (!p || mx_blockfma_check(p) != MX_OK || p->ftz_in || p->ftz_prod ||
        p->ftz_out || !(c_abs >= 0.0) || isinf(c_abs) || !fa || !fb)
        return INFINITY;
    const mxb_bdot_coeffs cf = mxb_bdot_coeffs_of(p);
    size_t blk = p->block > 0 ? (size_t)p->block : (n ? n : 1);
    size_t k = p->block > 0 ? (size_t)p->k : (n ? n : 1);
    size_t nb = k / blk; /* blocks per instruction */
    size_t q = p->deal > 0 && nb > 1 ? (size_t)p->deal : 0;
    /* s: exact where every sum of an instruction's terms is, else
     * rounded upward per addition */
    int xs = mxb_bdot_sums_exact(p, fa, fb, n);
    const mxb_mag *ta = mxb_mag_table(fa, p->in_fmt);
    const mxb_mag *tb = mxb_mag_table(fb, p->in_fmt);
    double P = c_abs;    /* >= |exact partial sum| */
    double D = 0.0;      /* >= |computed - exact| so far */
    for (size_t i0 = 0; i0 < n || (n == 0 && i0 == 0); i0 += k) {
        size_t kk = n - i0 < k ? n - i0 : k;
        /* c_fadd: the instruction's blocks run from zero */
        double Pi = p->c_fadd ? 0.0 : P, Di = p->c_fadd ? 0.0 : D;
        double sinst = 0.0;
        for (size_t bi = 0; bi < nb; bi++) {
            double nz = 0, wmax = 0, s = 0;
            int any = 0;
            /* without dealing, block bi is the run [bi blk, (bi + 1) blk) */
            size_t lo = q ? 0 : bi * blk, hi = q ? kk : lo + blk;
            if (hi > kk)
                hi = kk;
            for (size_t i = lo; i < hi; i++) {
                if (q && (i / q) % nb != bi)
                    continue;
                any = 1;
                uint32_t ca = fa->bits == 8 ? ((const uint8_t *)a)[i0 + i]
                                            : ((const uint16_t *)a)[i0 + i];
                uint32_t cb = fb->bits == 8 ? ((const uint8_t *)b)[i0 + i]
                                            : ((const uint16_t *)b)[i0 + i];
                double t, w;
                if (prod_mag(p, fa, ta, ca, fb, tb, cb, &t, &w) != 0)
                    return INFINITY;
                if (t > 0) {
                    nz += 1;
                    wmax = max2(wmax, w);
                    s = xs ? s + w : add_up(s, w);
                }
            }
            if (!any)
                continue;
            double dabs = add_up(Pi, Di);
            Di = add_up(Di, block_err(&cf, nz, wmax, s, dabs));
            Pi = add_up(Pi, s);
            sinst = add_up(sinst, s);
        }
        if (p->c_fadd) {
            /* d + (instruction sum): one RNE FP32 addition */
            double sum = add_up(add_up(P, D), add_up(sinst, Di));
            double fadd = add_up(mul_up(0x1p-24, sum), 0x1p-150);
            D = add_up(add_up(D, Di), fadd);
            P = add_up(P, sinst);
        } else {
            D = Di;
            P = Pi;
        }
        if (n == 0)
            break;
    }
    return isfinite(D) ? D : INFINITY;
}
