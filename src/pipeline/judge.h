/* judge.h -- per-element verdicts on a kernel's output tensor, and the peer
 * metrics that loose tolerances use, side by side.
 *
 * A bound-judged tensor (GEMM outputs): every element falls in exactly one
 * verdict class, and every class has a rule that can fail (none means "not
 * judged"; docs/bounds.md, "Verdict classes"):
 *   bound       exact, model, bound finite, |exact| + bound below the BF16
 *               overflow threshold: |out - exact| <= bound.
 *   ovf-edge    as bound, but |exact| + bound reaches the BF16 overflow
 *               threshold 2^128 (1 - 2^-9): out within the bound, or the
 *               infinity of exact's sign.
 *   model-special  the model is inf or NaN (e.g. the FP32 scale product
 *               dec(sa) dec(sb) overflows while exact is finite): out must
 *               equal the model bit for bit (any NaN for a NaN model).
 *   bound-inf   the bound is infinite (an FP32 intermediate may overflow):
 *               out must equal the model bit for bit; without a model the
 *               element fails (nothing could vouch for it).
 *   exact-special  exact is inf or NaN: out must equal the model bit for
 *               bit (any NaN for NaN), or without a model be exact itself.
 *   not-device  under a model measured bit for bit on a device (e.g.
 *               block:hopper-fp8), an element of the bound or ovf-edge class
 *               within its bound but not bit-exact to the model: its own
 *               failing class (bound_not_exact, mxv_judge_not_device), since
 *               the bound is wide enough to hold wrong kernels; --bound-only
 *               accepts it on its bound.
 * Bit-exact when out_i == model_i.  A byte-judged tensor (quantization,
 * deterministic stages): element i is correct when out_i equals model_i or
 * one of the admissible alternatives.
 *
 * Peer metrics, with exact as the reference:
 *   rel_l2     ||out - ref|| / (||ref|| + 1e-8)        vLLM (< 5e-2)
 *   sqnr_db    20 log10(||ref|| / ||out - ref||)      torchao
 *   allclose   all |out - ref| <= 1e-5 + 1.6e-2 |ref|  torch bf16 defaults
 *   aiter      share of |out - ref| > 1e-2 + 1e-2 |ref| (fails above 5 %)
 */
#ifndef MXV_JUDGE_H
#define MXV_JUDGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MXV_JUDGE_FIRST 10
#define MXV_HIST_BINS 12
/* Tensors are judged in chunks of this many elements on the worker pool
 * (mxref/pool.h), merged in index order: every figure is the same for any
 * thread count.  The peers' sums of squares are those of the chunks (each
 * in index order) added in chunk order. */
#define MXV_JUDGE_CHUNK 16384

typedef struct {
    size_t index;
    double out, exact, bound;
} mxv_judge_bad;

typedef struct {
    const char *name;       /* tensor name                                 */
    int by_bytes;           /* byte-judged (1) or bound-judged (0)         */
    int by_equal;           /* BF16 judged by equality with the model      */
    size_t n, cols;         /* elements, row length (for row/col indices)   */
    size_t outside;         /* elements outside bound / with wrong bytes   */
    /* verdict classes (judge.h top): counts of elements in each; they sum
     * to n for a bound-judged tensor */
    size_t cls_bound, cls_ovf_edge, cls_model_special, cls_bound_inf,
        cls_exact_special;
    int info_only;          /* information row: peers only, never gates    */
    int f32;                /* FP32 output (max ulp in FP32 ulps)          */
    size_t bit_exact;       /* equal to the model                          */
    size_t bound_not_exact; /* bound/ovf-edge class, within the bound, not
                             * equal to the model (a model given)          */
    size_t ambiguous;       /* byte-judged: an alternative was taken       */
    size_t nbad;            /* entries of bad[] used                       */
    mxv_judge_bad bad[MXV_JUDGE_FIRST];
    double max_ratio;       /* max |out - exact| / bound                   */
    double max_ulp;         /* max |out - exact| in BF16 ulps of exact     */
    double rel_l2, sqnr_db;
    int allclose;           /* torch.testing.assert_close(bf16) passes     */
    double aiter_mismatch;  /* share of elements outside 1e-2 / 1e-2       */
    size_t hist[MXV_HIST_BINS]; /* |err| / bound histogram (see judge.c)   */
} mxv_judge;

/* Bound-judged BF16 output: out, model BF16; exact, bound binary64.
 * model may be NULL (no bit-exactness). */
void mxv_judge_bf16(mxv_judge *j, const char *name, const uint16_t *out,
                    const uint16_t *model, const double *exact,
                    const double *bound, size_t n, size_t cols);
/* Bound-judged FP32 output (the accumulator before any BF16 rounding):
 * the same classes, with FP32's overflow threshold; bound is the FP32
 * result's bound (mx_gemm_out.bound_acc). model may be NULL. */
void mxv_judge_f32_model(mxv_judge *j, const char *name, const float *out,
                         const float *model, const double *exact,
                         const double *bound, size_t n, size_t cols);
/* Byte-judged tensor: out must equal model or alt (alt may be NULL). */
void mxv_judge_bytes(mxv_judge *j, const char *name, const uint8_t *out,
                     const uint8_t *model, const uint8_t *alt, size_t n,
                     size_t cols);
/* Equality-judged BF16 tensor (deterministic stages): out must equal model;
 * exact/bound only feed the metrics. */
void mxv_judge_bf16_equal(mxv_judge *j, const char *name, const uint16_t *out,
                          const uint16_t *model, const double *exact,
                          const double *bound, size_t n, size_t cols);

/* Information only (a drift figure that never gates): the peer metrics of
 * out against ref; no element verdicts, pass is always 1.  Reports say
 * "info". */
void mxv_judge_bf16_info(mxv_judge *j, const char *name, const uint16_t *out,
                         const double *ref, size_t n, size_t cols);

/* One element's verdict by the rules above (1: it fails), for callers that
 * attribute the elements outside (drift): a bound-judged BF16 or FP32
 * element (model: the model's element, or NULL without a model), and a
 * code-judged element (bytes, BF16 codes, equality; alt may be NULL). */
int mxv_judge_bf16_elem_bad(uint16_t out, const uint16_t *model, double exact,
                            double bound);
int mxv_judge_f32_elem_bad(float out, const float *model, double exact, double bound);
int mxv_judge_code_bad(uint32_t out, uint32_t model, const uint32_t *alt);

/* The BF16 RNE overflow threshold: a value of at least this magnitude
 * rounds to infinity. */
#define MXV_BF16_OVF_THRESHOLD 0x1.FF8p127
/* The FP32 RNE overflow threshold, 2^128 (1 - 2^-25). */
#define MXV_F32_OVF_THRESHOLD 0x1.FFFFFFp127
/* Bound-judged FP32 tensor: mxv_judge_f32_model without a model (no
 * bit-exact rule) and without peer metrics. */
void mxv_judge_f32(mxv_judge *j, const char *name, const float *out,
                   const double *exact, const double *bound, size_t n, size_t cols);
/* Code-judged BF16 tensor (a deterministic BF16 stage): out must equal
 * model or alt (alt may be NULL); the metrics are against exact. */
void mxv_judge_bf16_codes(mxv_judge *j, const char *name, const uint16_t *out,
                          const uint16_t *model, const uint16_t *alt,
                          const double *exact, size_t n, size_t cols);
/* Peer metrics of MX bytes: the decoded values (E4M3FNUZ code times the
 * spec E8M0 scale) of q/s against the reference's rq/rs.  One scale per 32
 * values of a row of cols, or (packed_rows = N > 0) packed [E, K/32, N]
 * scales of an [E, N, K] tensor. */
void mxv_judge_peers_mx(mxv_judge *j, const uint8_t *q, const uint8_t *s,
                        const uint8_t *rq, const uint8_t *rs, size_t n, size_t cols,
                        size_t packed_rows);

/* Peer metrics of a byte-judged tensor from its decoded values (e.g. FP8
 * code times scale) against the reference's decoded values. */
void mxv_judge_peers_values(mxv_judge *j, const double *got, const double *ref,
                            size_t n);

int mxv_judge_pass(const mxv_judge *j);
/* Elements that fail as not the device's arithmetic: bound_not_exact when
 * the model was measured on a device and bound-only judging is off, else 0. */
size_t mxv_judge_not_device(const mxv_judge *j, int measured, int bound_only);
/* Which peer rules would have flagged this tensor. */
int mxv_judge_peer_l2_fails(const mxv_judge *j);
int mxv_judge_peer_allclose_fails(const mxv_judge *j);
int mxv_judge_peer_aiter_fails(const mxv_judge *j);

/* Lower edges of the histogram bins of |err| / bound. */
extern const double mxv_hist_edges[MXV_HIST_BINS];
/* The bin of mxv_hist_edges that |err| / bound ratio falls in: the b with
 * edges[b] <= ratio < edges[b + 1] (the last bin open above), as GSL's
 * gsl_histogram_find places it over those ranges; NaN, inf and ratios from
 * 1e300 up in the last bin.  ratio >= 0 (a ratio below 0 reads as bin 0). */
size_t mxv_hist_bin(double ratio);
/* Prints the table row header / one row / the first bad elements / the
 * histogram as text. */
void mxv_judge_print_header(FILE *f);
void mxv_judge_print_row(FILE *f, const char *label, const mxv_judge *j);
void mxv_judge_print_bad(FILE *f, const mxv_judge *j);
void mxv_judge_print_hist(FILE *f, const mxv_judge *j);
/* Writes the histogram as an SVG bar chart; 0 on success. */
int mxv_judge_write_svg(const char *path, const mxv_judge *j, const char *title);

#endif
