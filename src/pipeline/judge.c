/* judge.c -- per-element verdicts and peer metrics (see judge.h).  The
 * histogram of |err| / bound uses a GSL histogram's fixed ranges.
 *
 * A tensor is judged in chunks of MXV_JUDGE_CHUNK elements on the worker
 * pool (mxref/pool.h); each chunk tallies its own counts, first bad
 * elements, maxima, histogram and peer sums, and the chunks are merged in
 * index order, so every figure is the same for any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/format.h"
#include "mxref/pool.h"
#include "judge.h"
#include "out.h"

const double mxv_hist_edges[MXV_HIST_BINS] = {0,   0.1, 0.2, 0.3, 0.4, 0.5,
                                              0.6, 0.7, 0.8, 0.9, 1.0, 2.0};

static inline size_t hist_bin(double x)
{
    enum { LAST = MXV_HIST_BINS - 1 };
    if (!(x < mxv_hist_edges[LAST])) /* NaN, inf, 2 and up */
        return LAST;
    /* a guess from the tenths, then moved to the bin whose edges hold x: the
     * edges are decimal fractions that binary64 rounds, so x * 10 alone may
     * land one bin off at an edge */
    size_t b = x >= 1.0 ? LAST - 1 : x > 0 ? (size_t)(x * 10.0) : 0;
    while (b > 0 && x < mxv_hist_edges[b])
        b--;
    while (b < LAST && x >= mxv_hist_edges[b + 1])
        b++;
    return b;
}

size_t mxv_hist_bin(double ratio)
{
    return hist_bin(ratio);
}

/* 2^floor(log2 |x|) for a finite x of binary64's normal range: its
 * exponent bits alone. */
static inline double binade(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    u &= UINT64_C(0x7ff0000000000000);
    memcpy(&x, &u, sizeof u);
    return x;
}

/* One BF16 ulp at x's binade (subnormal spacing below 2^-126). */
static double bf16_ulp(double x)
{
    double a = fabs(x);
    return a < 0x1p-126 ? 0x1p-133 : binade(a) * 0x1p-7;
}

/* Equal as the special-value rule asks: bit for bit, any NaN for a NaN. */
static int same_special(uint16_t out, uint16_t model)
{
    int on = (out & 0x7fff) > 0x7f80, mn = (model & 0x7fff) > 0x7f80;
    return mn ? on : out == model;
}

static void init(mxv_judge *j, const char *name, int by_bytes, size_t n,
                 size_t cols)
{
    memset(j, 0, sizeof *j);
    j->name = name;
    j->by_bytes = by_bytes;
    j->n = n;
    j->cols = cols ? cols : 1;
    j->allclose = 1;
}

/* rel L2, SQNR, allclose, aiter from out vs exact, one pair at a time
 * (peers_add in index order, then peers_end: the plain loop's sums). */
typedef struct {
    double d2, r2;
    size_t mis;
    int allclose;
} peers_acc;

static void peers_add(peers_acc *a, double o, double r)
{
    double d = o - r;
    if (isnan(o) || isnan(r)) {
        a->d2 = INFINITY;
        a->allclose = 0;
        a->mis++;
        return;
    }
    a->d2 += d * d;
    a->r2 += r * r;
    if (!(fabs(d) <= 1e-5 + 1.6e-2 * fabs(r)))
        a->allclose = 0;
    if (!(fabs(d) <= 1e-2 + 1e-2 * fabs(r)))
        a->mis++;
}

static void peers_end(mxv_judge *j, const peers_acc *a, size_t n)
{
    if (!a->allclose)
        j->allclose = 0;
    j->rel_l2 = sqrt(a->d2) / (sqrt(a->r2) + 1e-8);
    j->sqnr_db = a->d2 > 0 ? 10 * log10(a->r2 / a->d2) : INFINITY;
    j->aiter_mismatch = n ? (double)a->mis / (double)n : 0;
}

/* The peers' sums of a chunked tensor: a chunk's in index order, then the
 * chunks' in chunk order (the order judge.h states). */
static void peers_merge(peers_acc *a, const peers_acc *c)
{
    a->d2 += c->d2;
    a->r2 += c->r2;
    a->mis += c->mis;
    if (!c->allclose)
        a->allclose = 0;
}

static size_t chunks_of(size_t n) { return (n + MXV_JUDGE_CHUNK - 1) / MXV_JUDGE_CHUNK; }

typedef struct {
    const double *o, *r;
    size_t n;
    peers_acc *part;
} peers_job;

static void peers_task(void *v, size_t c)
{
    peers_job *p = v;
    size_t i0 = c * MXV_JUDGE_CHUNK, i1 = i0 + MXV_JUDGE_CHUNK < p->n ? i0 + MXV_JUDGE_CHUNK : p->n;
    peers_acc a = {0, 0, 0, 1};
    for (size_t i = i0; i < i1; i++)
        peers_add(&a, p->o[i], p->r[i]);
    p->part[c] = a;
}

/* 0, or -1 (out of memory: the figures are NaN) */
static int peers(mxv_judge *j, const double *outv, const double *exact, size_t n)
{
    size_t nc = chunks_of(n);
    peers_job p = {outv, exact, n, calloc(nc ? nc : 1, sizeof(peers_acc))};
    if (!p.part) {
        j->rel_l2 = j->sqnr_db = j->aiter_mismatch = NAN;
        return -1;
    }
    mx_parallel_for(nc, peers_task, &p);
    peers_acc a = {0, 0, 0, 1};
    for (size_t c = 0; c < nc; c++)
        peers_merge(&a, &p.part[c]);
    free(p.part);
    peers_end(j, &a, n);
    return 0;
}

/* The verdict classes of judge.h, in this order, for one element of a
 * bound-judged tensor: its class, and *bad = 1 when it fails.  m, same
 * (bit-equal to the model) and spec (equal as the special-value rule asks)
 * only count when has_m. */
enum { CLS_MODEL_SPECIAL, CLS_EXACT_SPECIAL, CLS_BOUND_INF, CLS_OVF_EDGE, CLS_BOUND };
static int elem_class(double o, int has_m, double m, int same, int spec, double exact,
                      double bound, double thr, int *bad)
{
    if (has_m && !isfinite(m)) {
        *bad = !spec;
        return CLS_MODEL_SPECIAL;
    }
    if (!isfinite(exact)) {
        int ok = has_m ? same : (isnan(exact) ? isnan(o) : o == exact);
        *bad = !ok;
        return CLS_EXACT_SPECIAL;
    }
    if (!(bound < INFINITY)) { /* inf or NaN bound */
        *bad = !has_m || !same;
        return CLS_BOUND_INF;
    }
    int edge = fabs(exact) + bound >= thr;
    double err = fabs(o - exact);
    if (edge && isinf(o) && (o > 0) == (exact > 0))
        err = 0; /* the admitted overflow */
    *bad = !(err <= bound);
    return edge ? CLS_OVF_EDGE : CLS_BOUND;
}

int mxv_judge_bf16_elem_bad(uint16_t out, const uint16_t *model, double exact,
                            double bound)
{
    int bad;
    elem_class(mx_bf16_to_float(out), model != NULL, model ? mx_bf16_to_float(*model) : 0,
               model ? out == *model : 0, model ? same_special(out, *model) : 0, exact,
               bound, MXV_BF16_OVF_THRESHOLD, &bad);
    return bad;
}

/* FP32: bit-equal to the model; any NaN for a NaN model */
static void f32_same(float out, float model, int *same, int *spec)
{
    uint32_t ob, mb;
    memcpy(&ob, &out, 4);
    memcpy(&mb, &model, 4);
    *same = ob == mb;
    *spec = isnan(model) ? isnan(out) != 0 : ob == mb;
}

int mxv_judge_f32_elem_bad(float out, const float *model, double exact, double bound)
{
    int bad, same = 0, spec = 0;
    if (model)
        f32_same(out, *model, &same, &spec);
    elem_class(out, model != NULL, model ? *model : 0, same, spec, exact, bound,
               MXV_F32_OVF_THRESHOLD, &bad);
    return bad;
}

int mxv_judge_code_bad(uint32_t out, uint32_t model, const uint32_t *alt)
{
    return out != model && !(alt && out == *alt);
}

/* One tensor's elements as judge_core reads them: BF16 (out16, model16)
 * or FP32 (out32, model32) codes; model NULL without a model. */
typedef struct {
    const uint16_t *out16, *model16;
    const float *out32, *model32;
    const double *exact, *bound;
    double thr;               /* the output format's overflow threshold */
    double (*ulp)(double);    /* its spacing at exact                   */
} judge_src;

/* Element i decoded: out, model, bit-equal to the model, equal to it as
 * the special-value rule asks (the last three only with a model). */
static inline void elem_at(const judge_src *s, size_t i, double *o, double *m, int *same,
                           int *spec)
{
    if (s->out16) {
        *o = mx_bf16_to_float(s->out16[i]);
        if (s->model16) {
            *m = mx_bf16_to_float(s->model16[i]);
            *same = s->out16[i] == s->model16[i];
            *spec = same_special(s->out16[i], s->model16[i]);
        }
    } else {
        *o = s->out32[i];
        if (s->model32) {
            *m = s->model32[i];
            f32_same(s->out32[i], s->model32[i], same, spec);
        }
    }
}

/* One chunk's tallies (the fields of mxv_judge it feeds). */
typedef struct {
    size_t bit_exact, bound_not_exact, outside, nbad;
    size_t cls[5]; /* by elem_class */
    mxv_judge_bad bad[MXV_JUDGE_FIRST];
    double max_ratio, max_ulp;
    size_t hist[MXV_HIST_BINS];
    peers_acc pa;
} judge_part;

typedef struct {
    const judge_src *s;
    size_t n;
    judge_part *part;
} judge_job;

static void part_bad(judge_part *p, size_t i, double out, double exact, double bound)
{
    p->outside++;
    if (p->nbad < MXV_JUDGE_FIRST) {
        mxv_judge_bad b = {i, out, exact, bound};
        p->bad[p->nbad++] = b;
    }
}

static void judge_task(void *v, size_t c)
{
    const judge_job *jb = v;
    const judge_src *s = jb->s;
    judge_part *p = &jb->part[c];
    memset(p, 0, sizeof *p);
    p->pa.allclose = 1;
    int has_m = s->model16 || s->model32;
    size_t i0 = c * MXV_JUDGE_CHUNK, i1 = i0 + MXV_JUDGE_CHUNK < jb->n ? i0 + MXV_JUDGE_CHUNK : jb->n;
    for (size_t i = i0; i < i1; i++) {
        double o, m = 0, exact = s->exact[i], bound = s->bound[i];
        int same = 0, spec = 0, bad;
        elem_at(s, i, &o, &m, &same, &spec);
        peers_add(&p->pa, o, exact);
        double err = fabs(o - exact);
        if (has_m && same)
            p->bit_exact++;
        int cls = elem_class(o, has_m, m, same, spec, exact, bound, s->thr, &bad);
        p->cls[cls]++;
        switch (cls) {
        case CLS_MODEL_SPECIAL:
            if (bad)
                part_bad(p, i, o, m, NAN);
            continue;
        case CLS_EXACT_SPECIAL:
            if (bad)
                part_bad(p, i, o, exact, NAN);
            continue;
        case CLS_BOUND_INF:
            if (bad)
                part_bad(p, i, o, exact, INFINITY);
            continue;
        default:
            break;
        }
        if (cls == CLS_OVF_EDGE && isinf(o) && (o > 0) == (exact > 0))
            err = 0; /* the admitted overflow */
        double ratio = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0);
        if (bad)
            part_bad(p, i, o, exact, bound);
        else if (has_m && !same)
            p->bound_not_exact++; /* not-device under a measured model */
        if (ratio > p->max_ratio || isnan(ratio))
            p->max_ratio = isnan(ratio) ? INFINITY : ratio;
        double ulps = err / s->ulp(exact);
        if (ulps > p->max_ulp || isnan(ulps))
            p->max_ulp = isnan(ulps) ? INFINITY : ulps;
        p->hist[hist_bin(ratio)]++;
    }
}

/* The verdict classes of judge.h and the peers over a tensor, chunk by
 * chunk on the pool, merged in index order. */
static void judge_core(mxv_judge *j, const judge_src *s, size_t n)
{
    size_t nc = chunks_of(n);
    judge_job jb = {s, n, calloc(nc ? nc : 1, sizeof(judge_part))};
    if (!jb.part) { /* out of memory: nothing may pass */
        j->outside = n ? n : 1;
        return;
    }
    mx_parallel_for(nc, judge_task, &jb);
    peers_acc pa = {0, 0, 0, 1};
    for (size_t c = 0; c < nc; c++) {
        const judge_part *p = &jb.part[c];
        j->bit_exact += p->bit_exact;
        j->bound_not_exact += p->bound_not_exact;
        j->cls_model_special += p->cls[CLS_MODEL_SPECIAL];
        j->cls_exact_special += p->cls[CLS_EXACT_SPECIAL];
        j->cls_bound_inf += p->cls[CLS_BOUND_INF];
        j->cls_ovf_edge += p->cls[CLS_OVF_EDGE];
        j->cls_bound += p->cls[CLS_BOUND];
        j->outside += p->outside;
        for (size_t b = 0; b < p->nbad && j->nbad < MXV_JUDGE_FIRST; b++)
            j->bad[j->nbad++] = p->bad[b];
        if (p->max_ratio > j->max_ratio)
            j->max_ratio = p->max_ratio;
        if (p->max_ulp > j->max_ulp)
            j->max_ulp = p->max_ulp;
        for (size_t b = 0; b < MXV_HIST_BINS; b++)
            j->hist[b] += p->hist[b];
        peers_merge(&pa, &p->pa);
    }
    peers_end(j, &pa, n);
    free(jb.part);
}

/* One FP32 ulp at x's binade (subnormal spacing below 2^-126). */
static double f32_ulp(double x)
{
    double a = fabs(x);
    return a < 0x1p-126 ? 0x1p-149 : binade(a) * 0x1p-23;
}

void mxv_judge_bf16(mxv_judge *j, const char *name, const uint16_t *out,
                    const uint16_t *model, const double *exact,
                    const double *bound, size_t n, size_t cols)
{
    init(j, name, 0, n, cols);
    judge_src s = {out, model, NULL, NULL, exact, bound, MXV_BF16_OVF_THRESHOLD, bf16_ulp};
    judge_core(j, &s, n);
}

void mxv_judge_f32_model(mxv_judge *j, const char *name, const float *out,
                         const float *model, const double *exact,
                         const double *bound, size_t n, size_t cols)
{
    init(j, name, 0, n, cols);
    j->f32 = 1;
    judge_src s = {NULL, NULL, out, model, exact, bound, MXV_F32_OVF_THRESHOLD, f32_ulp};
    judge_core(j, &s, n);
}

/* ---- code-judged elements --------------------------------------------- */

/* Bytes or BF16 codes, out_i against model_i (or alt_i when alt is not
 * NULL), in chunks of CODE_CHUNK on the pool; the counts and the first
 * bad elements merged in index order (no sums: the chunk size changes no
 * figure). */
#define CODE_CHUNK ((size_t)1 << 20)

typedef struct {
    size_t exact, amb, outside, nbad;
    mxv_judge_bad bad[MXV_JUDGE_FIRST];
} code_part;

typedef struct {
    const void *out, *model, *alt;
    int wide; /* BF16 codes (bad elements as values), else bytes */
    size_t n;
    code_part *part;
} code_job;

static void code_task(void *v, size_t c)
{
    const code_job *jb = v;
    code_part *p = &jb->part[c];
    memset(p, 0, sizeof *p);
    size_t i0 = c * CODE_CHUNK, i1 = i0 + CODE_CHUNK < jb->n ? i0 + CODE_CHUNK : jb->n;
    for (size_t i = i0; i < i1; i++) {
        uint32_t o, m, a = 0;
        if (jb->wide) {
            o = ((const uint16_t *)jb->out)[i];
            m = ((const uint16_t *)jb->model)[i];
            a = jb->alt ? ((const uint16_t *)jb->alt)[i] : 0;
        } else {
            o = ((const uint8_t *)jb->out)[i];
            m = ((const uint8_t *)jb->model)[i];
            a = jb->alt ? ((const uint8_t *)jb->alt)[i] : 0;
        }
        if (o == m) {
            p->exact++;
            continue;
        }
        if (jb->alt && o == a) {
            p->amb++;
            continue;
        }
        p->outside++;
        if (p->nbad < MXV_JUDGE_FIRST) {
            mxv_judge_bad b = {i, o, m, jb->alt ? a : m};
            if (jb->wide) {
                b.out = mx_bf16_to_float((uint16_t)o);
                b.exact = mx_bf16_to_float((uint16_t)m);
                b.bound = 0;
            }
            p->bad[p->nbad++] = b;
        }
    }
}

/* Judges the codes into j's outside and first bad elements; with counts,
 * also its bit_exact and ambiguous.  -1 when memory runs out (then every
 * element is outside: nothing may pass). */
static int judge_codes(mxv_judge *j, const void *out, const void *model, const void *alt,
                       int wide, size_t n, int counts)
{
    size_t nc = (n + CODE_CHUNK - 1) / CODE_CHUNK;
    code_job jb = {out, model, alt, wide, n, calloc(nc ? nc : 1, sizeof(code_part))};
    if (!jb.part) {
        j->outside = n ? n : 1;
        return -1;
    }
    mx_parallel_for(nc, code_task, &jb);
    for (size_t c = 0; c < nc; c++) {
        const code_part *p = &jb.part[c];
        if (counts) {
            j->bit_exact += p->exact;
            j->ambiguous += p->amb;
        }
        j->outside += p->outside;
        for (size_t b = 0; b < p->nbad && j->nbad < MXV_JUDGE_FIRST; b++)
            j->bad[j->nbad++] = p->bad[b];
    }
    free(jb.part);
    return 0;
}

void mxv_judge_bf16_equal(mxv_judge *j, const char *name, const uint16_t *out,
                          const uint16_t *model, const double *exact,
                          const double *bound, size_t n, size_t cols)
{
    mxv_judge_bf16(j, name, out, model, exact, bound, n, cols);
    /* the verdict is equality; the bound figures stay as information */
    j->by_equal = 1;
    j->outside = j->nbad = 0;
    judge_codes(j, out, model, NULL, 1, n, 0);
}

void mxv_judge_bf16_info(mxv_judge *j, const char *name, const uint16_t *out,
                         const double *ref, size_t n, size_t cols)
{
    init(j, name, 0, n, cols);
    j->info_only = 1;
    double *ov = malloc(mx_nz(n) * sizeof *ov);
    if (!ov) {
        j->rel_l2 = j->sqnr_db = j->aiter_mismatch = NAN;
        return;
    }
    for (size_t i = 0; i < n; i++)
        ov[i] = mx_bf16_to_float(out[i]);
    peers(j, ov, ref, n);
    free(ov);
}

void mxv_judge_bytes(mxv_judge *j, const char *name, const uint8_t *out,
                     const uint8_t *model, const uint8_t *alt, size_t n,
                     size_t cols)
{
    init(j, name, 1, n, cols);
    judge_codes(j, out, model, alt, 0, n, 1);
    j->rel_l2 = NAN;
    j->sqnr_db = NAN;
    j->aiter_mismatch = NAN;
}

void mxv_judge_peers_values(mxv_judge *j, const double *got, const double *ref,
                            size_t n)
{
    j->allclose = 1;
    peers(j, got, ref, n);
}

int mxv_judge_pass(const mxv_judge *j) { return j->outside == 0; }

size_t mxv_judge_not_device(const mxv_judge *j, int measured, int bound_only)
{
    return measured && !bound_only ? j->bound_not_exact : 0;
}

/* Peers judge a byte-judged tensor on its decoded values when the caller
 * supplied them (rel_l2 is NaN otherwise: the rule does not apply). */
int mxv_judge_peer_l2_fails(const mxv_judge *j)
{
    return !isnan(j->rel_l2) && !(j->rel_l2 < 5e-2);
}

int mxv_judge_peer_allclose_fails(const mxv_judge *j)
{
    return !isnan(j->rel_l2) && !j->allclose;
}

int mxv_judge_peer_aiter_fails(const mxv_judge *j)
{
    return !isnan(j->aiter_mismatch) && !(j->aiter_mismatch <= 0.05);
}

void mxv_judge_print_header(FILE *f)
{
    fprintf(f, "%-28s %-4s %10s %9s %9s %9s %8s %9s %8s %9s %9s %7s\n", "tensor",
            "ok", "elements", "outside", "max e/B", "max ulp", "exact%",
            "relL2", "SQNR dB", "allclose", "aiter%", "special");
}

/* The bit-exact share in percent, rounded down to 0.01: "100.00%" only when
 * every element is bit-exact (one inexact element of 131072 reads 99.99%,
 * not a rounded-up 100.00%). */
static double exact_percent(const mxv_judge *j)
{
    if (!j->n || j->bit_exact >= j->n)
        return 100.0;
    return floor(10000.0 * (double)j->bit_exact / (double)j->n) / 100.0;
}

void mxv_judge_print_row(FILE *f, const char *label, const mxv_judge *j)
{
    double ex = exact_percent(j);
    if (j->info_only)
        fprintf(f, "%-28s %-4s %10zu %9s %9s %9s %8s %9.2e %8.1f %9s %8.3f%% %7s\n",
                label, "info", j->n, "-", "-", "-", "-", j->rel_l2, j->sqnr_db,
                j->allclose ? "yes" : "no", 100 * j->aiter_mismatch, "-");
    else if (j->by_bytes)
        fprintf(f, "%-28s %-4s %10zu %9zu %9s %9s %7.2f%% %9s %8s %9s %9s %7s\n",
                label, mxv_judge_pass(j) ? "yes" : "NO", j->n, j->outside, "bytes",
                "-", ex, "-", "-", j->outside ? "no" : "yes", "-", "-");
    else
        fprintf(f,
                "%-28s %-4s %10zu %9zu %9.4f %9.2f %7.2f%% %9.2e %8.1f %9s %8.3f%% %7zu\n",
                label, mxv_judge_pass(j) ? "yes" : "NO", j->n, j->outside,
                j->max_ratio, j->max_ulp, ex, j->rel_l2, j->sqnr_db,
                j->allclose ? "yes" : "no", 100 * j->aiter_mismatch,
                j->cls_ovf_edge + j->cls_model_special + j->cls_bound_inf +
                    j->cls_exact_special);
}

void mxv_judge_print_bad(FILE *f, const mxv_judge *j)
{
    for (size_t b = 0; b < j->nbad; b++) {
        const mxv_judge_bad *x = &j->bad[b];
        size_t r = x->index / j->cols, c = x->index % j->cols;
        if (j->by_bytes)
            fprintf(f, "  %s[%zu, %zu]: byte 0x%02X, reference 0x%02X%s\n", j->name,
                    r, c, (unsigned)x->out, (unsigned)x->exact,
                    x->bound != x->exact ? " (or the alternative)" : "");
        else if (isnan(x->bound))
            fprintf(f, "  %s[%zu, %zu]: %a, but the reference is the special "
                       "value %a: must match it bit for bit\n",
                    j->name, r, c, x->out, x->exact);
        else if (isinf(x->bound))
            fprintf(f, "  %s[%zu, %zu]: %a, exact %a: bound infinite (an FP32 "
                       "intermediate may overflow), must equal the model\n",
                    j->name, r, c, x->out, x->exact);
        else if (x->bound == 0 && j->outside)
            fprintf(f, "  %s[%zu, %zu]: %a, reference %a\n", j->name, r, c,
                    x->out, x->exact);
        else
            fprintf(f, "  %s[%zu, %zu]: %a, exact %a, |err| %.3g > bound %.3g\n",
                    j->name, r, c, x->out, x->exact, fabs(x->out - x->exact),
                    x->bound);
    }
    if (j->outside > j->nbad)
        fprintf(f, "  ... %zu more\n", j->outside - j->nbad);
}

void mxv_judge_print_hist(FILE *f, const mxv_judge *j)
{
    size_t mx = 1;
    for (int b = 0; b < MXV_HIST_BINS; b++)
        mx = j->hist[b] > mx ? j->hist[b] : mx;
    fprintf(f, "  |err| / bound histogram of %s:\n", j->name);
    for (int b = 0; b < MXV_HIST_BINS; b++) {
        int w = (int)(50.0 * (double)j->hist[b] / (double)mx + 0.5);
        char lab[32];
        if (b + 1 < MXV_HIST_BINS)
            snprintf(lab, sizeof lab, "[%.1f, %.1f)", mxv_hist_edges[b], mxv_hist_edges[b + 1]);
        else
            snprintf(lab, sizeof lab, "[%.1f, inf)", mxv_hist_edges[b]);
        fprintf(f, "  %-12s %10zu %.*s\n", lab, j->hist[b], w,
                "##################################################");
    }
}

int mxv_judge_write_svg(const char *path, const mxv_judge *j, const char *title)
{
    char err[512];
    mxv_out *o = mxv_out_open(path, err, sizeof err);
    if (!o) {
        fprintf(stderr, "mxverify: %s\n", err);
        return -1;
    }
    FILE *f = mxv_out_file(o);
    size_t mx = 1;
    for (int b = 0; b < MXV_HIST_BINS; b++)
        mx = j->hist[b] > mx ? j->hist[b] : mx;
    const int W = 640, Hh = 320, left = 60, bottom = 40, bw = (W - left - 20) / MXV_HIST_BINS;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n", W, Hh);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"20\" font-family=\"sans-serif\" font-size=\"14\">", left);
    for (const char *p = title; *p; p++)
        fputs(*p == '<' ? "&lt;" : *p == '&' ? "&amp;" : (char[2]){*p, 0}, f);
    fprintf(f, "</text>\n");
    for (int b = 0; b < MXV_HIST_BINS; b++) {
        double hgt = (double)(Hh - bottom - 40) * (double)j->hist[b] / (double)mx;
        int x = left + b * bw;
        fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"/>\n",
                x, (double)(Hh - bottom) - hgt, bw - 2, hgt,
                mxv_hist_edges[b] >= 1.0 ? "#c0392b" : "#2e86c1");
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-family=\"sans-serif\" font-size=\"10\">%g</text>\n",
                x, Hh - bottom + 14, mxv_hist_edges[b]);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"9\">%zu</text>\n",
                x, (double)(Hh - bottom) - hgt - 3, j->hist[b]);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-family=\"sans-serif\" font-size=\"12\">|err| / bound (red: outside the bound)</text>\n",
            left, Hh - 8);
    fprintf(f, "</svg>\n");
    if (mxv_out_commit(o, err, sizeof err) != 0) {
        fprintf(stderr, "mxverify: %s\n", err);
        return -1;
    }
    return 0;
}

void mxv_judge_f32(mxv_judge *j, const char *name, const float *out,
                   const double *exact, const double *bound, size_t n, size_t cols)
{
    mxv_judge_f32_model(j, name, out, NULL, exact, bound, n, cols);
    /* no peer metrics: they are BF16 rules, and this is an FP32 tensor; no
     * ulp figure either (reports and golden tolerances count BF16 ulps) */
    j->rel_l2 = j->sqnr_db = j->aiter_mismatch = NAN;
    j->allclose = 1;
    j->max_ulp = 0;
}

void mxv_judge_bf16_codes(mxv_judge *j, const char *name, const uint16_t *out,
                          const uint16_t *model, const uint16_t *alt,
                          const double *exact, size_t n, size_t cols)
{
    /* the metrics against the exact values; the verdict by codes */
    mxv_judge_bf16(j, name, out, model, exact, exact, n, cols);
    j->outside = j->nbad = 0;
    judge_codes(j, out, model, alt, 1, n, 0);
}

typedef struct {
    const uint8_t *q, *s, *rq, *rs;
    size_t n, K, N, packed;
    const double *val, *pw;
    peers_acc *part;
} peers_mx_job;

static void peers_mx_task(void *v, size_t c)
{
    const peers_mx_job *p = v;
    peers_acc acc = {0, 0, 0, 1};
    size_t c1 = (c + 1) * MXV_JUDGE_CHUNK < p->n ? (c + 1) * MXV_JUDGE_CHUNK : p->n;
    /* block by block, [i0, end): the values of one scale (packed, K is a
     * multiple of 32, so no block crosses a row; a chunk is a whole number
     * of blocks) */
    for (size_t i0 = c * MXV_JUDGE_CHUNK, end; i0 < c1; i0 = end) {
        size_t si = i0 / 32;
        end = (si + 1) * 32 < c1 ? (si + 1) * 32 : c1;
        if (p->packed) { /* [E, K/32, N] scales of a [E, N, K] tensor */
            size_t row = i0 / p->K, e = row / p->N, nrow = row % p->N, g = (i0 % p->K) / 32;
            si = (e * (p->K / 32) + g) * p->N + nrow;
        }
        double sa = p->pw[p->s[si]], sb = p->pw[p->rs[si]];
        for (size_t i = i0; i < end; i++)
            peers_add(&acc, p->val[p->q[i]] * sa, p->val[p->rq[i]] * sb);
    }
    p->part[c] = acc;
}

void mxv_judge_peers_mx(mxv_judge *j, const uint8_t *q, const uint8_t *s,
                        const uint8_t *rq, const uint8_t *rs, size_t n, size_t cols,
                        size_t packed_rows)
{
    _Static_assert(MXV_JUDGE_CHUNK % 32 == 0, "chunks of whole scale blocks");
    const mx_format *f = mx_format_get(MX_E4M3FNUZ);
    double val[256], pw[256];
    for (int c = 0; c < 256; c++) {
        val[c] = mx_decode_double(f, (uint32_t)c);
        pw[c] = mx_e8m0_decode_spec((uint8_t)c);
    }
    /* streamed: no copy of the (possibly every expert's) tensor in doubles */
    size_t nc = chunks_of(n);
    peers_mx_job p = {q, s, rq, rs, n, cols, packed_rows ? packed_rows : 1, packed_rows,
                      val, pw, calloc(nc ? nc : 1, sizeof(peers_acc))};
    j->allclose = 1;
    if (!p.part) {
        j->rel_l2 = j->sqnr_db = j->aiter_mismatch = NAN;
        return;
    }
    mx_parallel_for(nc, peers_mx_task, &p);
    peers_acc acc = {0, 0, 0, 1};
    for (size_t c = 0; c < nc; c++)
        peers_merge(&acc, &p.part[c]);
    free(p.part);
    peers_end(j, &acc, n);
}
