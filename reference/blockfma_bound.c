/* blockfma_bound.c -- a rigorous error bound for the block-FMA model.
 * (The w_i below: any w_i >= max(|t_i|, 2^(r_a + r_b)) serves; the code
 * takes max(|a_i|, 2^r_a) max(|b_i|, 2^r_b), mxb_wmag.)
 *
 * Derivation (docs/bounds.md, "Block-FMA models", has it with proofs):
 * one block of m products t_i and accumulator d, exact X = d + sum t_i.
 *   alignment: every term is moved to the grid u = 2^(E-F) with an error
 *     below u (truncation, round-down) or u/2 (RNE, sticky), odd/even
 *     groups add one more such step, a late c one more; so at most
 *     (m + 2) * eps_a * u, where u <= 2^-F * W and W = the largest
 *     "reference magnitude" of the block: w_i = max(|t_i|, 2^(r_a + r_b))
 *     for products, max(|d|, 2^-126) for an early d, so W <= |d| + sigma +
 *     2^-126 with sigma = sum of the block's w_i;
 *   late c (CDNA3): the product sum rounded down to 32 bits below e_c
 *     (< 2^-32 (|d| + 2^-126)) and the normalised sum to 31 bits (< 2^-31
 *     of it);
 *   out_prec truncation: below 2^(1-P) relative; final rounding: 2^-24
 *     (RNE) or 2^-23 (directed) relative plus 2^-149 absolute (FP32
 *     subnormals).
 * Hence |block(d) - X| <= kappa * (|d| + sigma) + eta.  Chaining B blocks
 * (each block adds exact products to the previous computed value, so the
 * errors add): E_j <= (1 + kappa) E_{j-1} + kappa (|c| + sigma) + eta,
 * E_B <= ((1+kappa)^B - 1) (|c| + sigma) + eta ((1+kappa)^B - 1) / kappa.
 * c_fadd (FP32 addition of each instruction's sum) is one more step per
 * instruction with kappa' = 2^-24.  The bound is evaluated in binary64 and
 * inflated by 2^-40 relative to cover that evaluation's own rounding.
 */
#include <math.h>
#include "blockfma_fx.h"

static double pw2(int e) { return ldexp(1.0, e); }

/* kappa and eta of one block of m products. */
static void block_coeffs(const mx_blockfma_params *p, double m, double *kappa,
                         double *eta)
{
    double ua = 0.0; /* alignment loss per term, relative to W */
    if (p->frac_bits != MX_BFMA_EXACT) {
        double ea = (p->align_round == MX_ALIGN_RNE || p->sticky) ? 0.5 : 1.0;
        if (p->odd_even || p->late_c)
            ea = 1.0; /* the extra steps round down */
        ua = (m + 2.0) * ea * pw2(-p->frac_bits);
    }
    double late = 0.0, late_abs = 0.0;
    if (p->late_c) {
        late = pw2(-p->late_sum_frac_bits);
        if (p->late_norm_frac_bits != MX_BFMA_EXACT)
            late += pw2(-p->late_norm_frac_bits) *
                    (1.0 + ua + pw2(-p->late_sum_frac_bits));
        late_abs = pw2(-126 - p->late_sum_frac_bits);
    }
    double tr = p->out_prec >= 64 ? 0.0 : pw2(1 - p->out_prec);
    double ef = p->final_round == MX_RNE ? pw2(-24) : pw2(-23);
    double grow = 1.0 + ua + late; /* |sum before out_prec| / (|d| + sigma) */
    *kappa = ua + late + (tr + ef * (1.0 + tr)) * grow;
    *eta = 2.0 * ((ua + late) * pw2(-126) + late_abs) + pw2(-149) * (1.0 + tr);
}

/* Bound after `steps` chained steps of (kappa, eta) on |c| + sigma: it is
 * g * base + c, linear in base (for kappa = 0, g = 0 and the sum is c:
 * base is finite and nonnegative here). */
static void chain_lin(double kappa, double eta, double steps, double *g,
                      double *c)
{
    if (kappa == 0.0) {
        *g = 0.0;
        *c = steps * eta;
        return;
    }
    *g = pow(1.0 + kappa, steps) - 1.0;
    *c = eta * *g / kappa;
}

static double chain(double kappa, double eta, double steps, double base)
{
    double g, c;
    chain_lin(kappa, eta, steps, &g, &c);
    return g * base + c;
}

/* The chain of mx_blockfma_bound over n products as g * base + c. */
static void bound_lin(const mx_blockfma_params *p, size_t n, double *g,
                      double *c)
{
    double m = p->block > 0 ? p->block : (double)(n ? n : 1);
    double blocks = p->block > 0 ? ceil((double)n / p->block) : 1.0;
    double kappa, eta;
    block_coeffs(p, m, &kappa, &eta);
    if (!p->c_fadd) {
        chain_lin(kappa, eta, blocks, g, c);
        return;
    }
    /* per instruction: its blocks from zero, then one FP32 addition;
     * the instruction's own error e_P <= chain(k/block blocks, sigma)
     * enters the addition's operand: treat both as one step. */
    double per = p->k / (p->block > 0 ? p->block : p->k);
    double inst = ceil((double)n / p->k);
    double gp = chain(kappa, eta, per, 1.0) - chain(kappa, eta, per, 0.0);
    double ep = chain(kappa, eta, per, 0.0);
    double k2 = gp + pw2(-24) * (1.0 + gp);
    double e2 = ep * (1.0 + pw2(-24)) + pw2(-150);
    chain_lin(k2, e2, inst, g, c);
}

static int bound_usable(const mx_blockfma_params *p)
{
    return p && mx_blockfma_check(p) == MX_OK && !p->ftz_in && !p->ftz_prod &&
           !p->ftz_out;
}

int mxb_bound_lin(const mx_blockfma_params *p, size_t n, double *g, double *c)
{
    if (!bound_usable(p))
        return 0;
    bound_lin(p, n, g, c);
    return 1;
}

double mx_blockfma_bound(const mx_blockfma_params *p, size_t n,
                         double sum_abs, double c_abs)
{
    if (!bound_usable(p) || !(sum_abs >= 0.0) || !(c_abs >= 0.0))
        return INFINITY;
    if (isinf(sum_abs) || isinf(c_abs))
        return INFINITY;
    double g, c;
    bound_lin(p, n, &g, &c);
    double b = g * (c_abs + sum_abs) + c;
    return b * (1.0 + pw2(-40));
}

double mx_blockfma_sum_abs(const mx_blockfma_params *p, const mx_format *fa,
                           const void *a, const mx_format *fb, const void *b,
                           size_t n)
{
    double s = 0.0;
    int in_fmt = p && p->in_fmt > 0 && p->in_fmt <= MX_FORMAT_COUNT ? p->in_fmt : 0;
    const mxb_mag *ta = mxb_mag_table(fa, in_fmt), *tb = mxb_mag_table(fb, in_fmt);
    for (size_t i = 0; i < n; i++) {
        uint32_t ca = fa->bits == 8 ? ((const uint8_t *)a)[i]
                                    : ((const uint16_t *)a)[i];
        uint32_t cb = fb->bits == 8 ? ((const uint8_t *)b)[i]
                                    : ((const uint16_t *)b)[i];
        /* magnitudes and reference exponents as the model takes them
         * (mxref/blockfma.h); products exact in binary64 */
        mxb_mag x = ta ? ta[ca] : mxb_mag_of(fa, in_fmt, ca);
        mxb_mag y = tb ? tb[cb] : mxb_mag_of(fb, in_fmt, cb);
        if (x.cls == 2 || y.cls == 2)
            return INFINITY;
        if (x.cls == 0 || y.cls == 0)
            continue;
        s += mxb_wmag(x) * mxb_wmag(y); /* exact */
    }
    return s * (1.0 + ldexp((double)n + 1.0, -52));
}
