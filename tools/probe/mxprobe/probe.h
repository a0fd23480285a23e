/* mxprobe/probe.h -- discover a matrix unit's block-FMA parameters from its
 * outputs on designed inputs (FPRev-style order probe plus the feature tests
 * of Khattak & Mikaitis).
 *
 * Two halves, so that no GPU code lives here:
 *   mx_probe_plan_make  builds the test inputs for a pair of input formats
 *                       and an instruction size k (deterministic: the same
 *                       arguments always give the same plan, version
 *                       MX_PROBE_PLAN_VERSION);
 *   (the caller runs every case on the unit and stores the FP32 results in
 *    plan->d: case i computes c[i] + sum_{j<n[i]} a[i][j]*b[i][j] as one
 *    chain of n[i]/k instructions);
 *   mx_probe_infer      reads the results and infers mx_blockfma_params.
 *
 * The tests (docs/blockfma.md, "Probe" has the details and the readouts):
 *   ORDER   (FPRev, Xie et al. ATC'25): +B at i, -B at j, a small s at
 *           every other place of two chained instructions; the number of
 *           surviving s tells where the blocks end.
 *   GROUP   B at 0 and two s/2^d at j and l: a pair that survives where a
 *           single one would not was summed in its own alignment group.
 *   ALIGN   +B, -B and one v*2^(eB-j): the largest surviving j is the
 *           alignment width F; signs and v in {1, 1.5, 1.75} give the
 *           alignment rounding and the sticky bit; B with significand 2.25
 *           tells whether products are normalised before alignment.
 *   CTIME   +B, -B and c = +-2^(eB-d): is c aligned with the products?
 *   ROUND   a big term (product or c), a half-ulp term and a tiny term of
 *           either sign: the final rounding mode and what the tiny term
 *           became.
 *   CARRY   m equal large products and 2^(eB-2-j): bits lost to carries
 *           (out_prec).
 *   CONLY   zero products, c with low bits set: is c truncated?
 *   SUBN, SPECIAL, ZERO: subnormal inputs/products/outputs, NaN/inf rules,
 *           signs of zero.
 *   SUBREF  ALIGN with the cancelling pair made from a subnormal input: the
 *           exponent a subnormal input is aligned by (its format's emin, or
 *           its leading bit after a conversion to a wider format).
 *   OVF     c = +-FLT_MAX and a product of 2^102..2^105: where overflow to
 *           infinity starts under the unit's rounding.
 */
#ifndef MXPROBE_PROBE_H
#define MXPROBE_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/format.h"
#include "mxref/blockfma.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MX_PROBE_PLAN_VERSION 2

typedef enum {
    MX_PT_ORDER = 0,
    MX_PT_GROUP,
    MX_PT_ALIGN,
    MX_PT_CTIME,
    MX_PT_ROUND,
    MX_PT_CARRY,
    MX_PT_CONLY,
    MX_PT_SUBN,
    MX_PT_SPECIAL,
    MX_PT_ZERO,
    MX_PT_SUBREF,
    MX_PT_OVF,
    MX_PT_COUNT
} mx_probe_test;

/* What one case tests; the meaning of i, j, v, w depends on the test. */
typedef struct {
    int test; /* mx_probe_test */
    int i, j, v, w;
} mx_probe_tag;

typedef struct {
    int version;
    const mx_format *fa, *fb;
    int k;           /* products per instruction                        */
    int eb;          /* exponent of the big product B = 2^eb            */
    int es;          /* exponent of the small product s = 2^es          */
    size_t ncase;
    size_t stride;   /* elements per case in a and b: 2k                */
    int *n;          /* products of case i: k or 2k                     */
    void *a, *b;     /* ncase*stride codes: uint8_t (8-bit formats) or
                        uint16_t (16-bit); zero beyond n[i]             */
    uint32_t *c;     /* FP32 bits                                       */
    mx_probe_tag *tag;
    uint32_t *d;     /* FP32 bits, filled by the caller (zeroed here)   */
} mx_probe_plan;

/* Builds the plan for inputs of formats fa, fb (8- or 16-bit, signed) and
 * instructions of k products (k >= 4, even).  MX_EINVAL for other formats
 * or k; MX_ENOMEM.  Free with mx_probe_plan_free. */
mx_status mx_probe_plan_make(const mx_format *fa, const mx_format *fb, int k,
                             mx_probe_plan **out);
void mx_probe_plan_free(mx_probe_plan *p);
/* The number of cases mx_probe_plan_make(fa, fb, k) would build, in
 * constant memory (each case is built over the previous one): a reader
 * checks a file's declared case count against it before allocating the
 * plan.  MX_OK, MX_EINVAL as mx_probe_plan_make, MX_ENOMEM. */
mx_status mx_probe_plan_count(const mx_format *fa, const mx_format *fb, int k,
                              size_t *ncase);
const char *mx_probe_test_name(int test);

/* Replaying a parameter set over a plan (probe_replay.c):
 *   mx_probe_case_run      q's result (FP32 bits) on case i;
 *   mx_probe_plan_misses   how many results of q differ from plan->d; -1
 *                          when q cannot run the plan (mx_blockfma_check
 *                          refuses it, or its k does not divide a case's
 *                          product count);
 *   mx_probe_plan_simulate fills plan->d with q's results: a unit that
 *                          follows q exactly. */
uint32_t mx_probe_case_run(const mx_probe_plan *p, const mx_blockfma_params *q,
                           size_t i);
long mx_probe_plan_misses(const mx_probe_plan *p, const mx_blockfma_params *q);
void mx_probe_plan_simulate(mx_probe_plan *p, const mx_blockfma_params *q);

/* Infers the block-FMA parameters from plan->d.  Fills *out (name "probed",
 * source "inferred by mx_probe_infer") and writes a human-readable report of
 * each readout into report (NUL-terminated, truncated to len).  Returns
 * MX_OK when every feature was determined and the inferred model
 * reproduces all plan->d bit for bit; MX_ERANGE when the readouts fit no
 * parameter set of the model (the report says which test disagreed);
 * MX_EINVAL for bad arguments. */
mx_status mx_probe_infer(const mx_probe_plan *p, mx_blockfma_params *out,
                         char *report, size_t len);

/* The features mx_probe_infer searches after reading the block structure
 * (the block size and deal come from ORDER directly), each over a fixed set
 * of values:
 *   MX_PF_ACCUM        c early, late, late with odd/even groups, FP32 FADD
 *   MX_PF_FRAC_BITS    F = 4..40, exact
 *   MX_PF_ALIGN_ROUND  truncate, truncate + sticky, round down, RNE
 *   MX_PF_PROD_NORM    products unnormalised or normalised
 *   MX_PF_IN_FMT       no conversion or FP16 (only with an 8-bit input)
 *   MX_PF_OUT_PREC     8..23 bits kept, or all
 *   MX_PF_FINAL_ROUND  RTZ, RNE, RDOWN, RUP
 *   the others         off, on (ovf_inf, zero_pos, ftz_in, ftz_out,
 *                      prod_ovf_inf) */
typedef enum {
    MX_PF_ACCUM = 0,
    MX_PF_FRAC_BITS,
    MX_PF_ALIGN_ROUND,
    MX_PF_PROD_NORM,
    MX_PF_IN_FMT,
    MX_PF_OUT_PREC,
    MX_PF_FINAL_ROUND,
    MX_PF_OVF_INF,
    MX_PF_ZERO_SIGN,
    MX_PF_FTZ_IN,
    MX_PF_FTZ_OUT,
    MX_PF_PROD_OVF,
    MX_PF_COUNT
} mx_probe_feature;

/* "final rounding", ...; "?" for an unknown feature. */
const char *mx_probe_feature_name(int f);

/* The features the plan's results leave open around q: bit f is set when
 * feature f of q can take another of its searched values and still
 * reproduce every plan->d bit for bit (e.g. the final rounding of a unit
 * whose FP8 sums never reach FP32's last bit).  Features are varied one at
 * a time: two features that can only change together (normalised products
 * versus inputs widened to FP16, on mma.sync E4M3 x E5M2) both read as
 * determined.  Meaningful when q
 * reproduces plan->d (as mx_probe_infer's result does on MX_OK); 0 for bad
 * arguments. */
unsigned mx_probe_undetermined(const mx_probe_plan *p,
                               const mx_blockfma_params *q);

/* mx_probe_infer, and *undetermined (when not NULL) set to
 * mx_probe_undetermined(p, out) on MX_OK (the report's "not determined"
 * line, computed once), 0 otherwise. */
mx_status mx_probe_infer_ex(const mx_probe_plan *p, mx_blockfma_params *out,
                            unsigned *undetermined, char *report, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MXPROBE_PROBE_H */
