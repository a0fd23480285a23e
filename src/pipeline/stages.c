/* stages.c -- the stage table and its producers (see stages.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/format.h"
#include "mxref/pool.h"
#include "stages.h"

/* ---- producers ---------------------------------------------------------- */

/* The producers' per-element loops run by blocks of rows on the worker
 * pool: every element is computed on its own, so the values do not depend
 * on the thread count. */
#define ROWS_PER_TASK 64

typedef struct {
    const mxv_stage_src *s;
    size_t rows;
    void *out[2];
    void (*fn)(const mxv_stage_src *s, size_t r0, size_t r1, void *const *out);
} rows_job;

static void rows_task(void *v, size_t b)
{
    const rows_job *j = v;
    size_t r0 = b * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    j->fn(j->s, r0, r1, j->out);
}

static void rows_run(const mxv_stage_src *s, size_t rows, void *o0, void *o1,
                     void (*fn)(const mxv_stage_src *, size_t, size_t, void *const *))
{
    rows_job j = {s, rows, {o0, o1}, fn};
    mx_parallel_for((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, rows_task, &j);
}

/* A reference the caller computed. */
static int given(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    r->model = s->given;
    r->exact = s->given_exact;
    r->bound = s->given_bound;
    r->n = s->given_n;
    r->cols = s->given_cols;
    r->peer_out_q = s->peer_out_q;
    r->peer_ref_q = s->peer_ref_q;
    r->peer_ref_s = s->peer_ref_s;
    r->peer_n = s->peer_n;
    r->peer_packed_rows = s->peer_packed_rows;
    return 0;
}

static void gemm_ref(const mx_stage_gemm *g, size_t n, size_t cols, mxv_stage_ref *r)
{
    r->model = g->model;
    r->exact = g->exact;
    r->bound = g->bound;
    r->n = n;
    r->cols = cols;
}

static int xq_scale(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    r->model = s->ref->xq.s;
    r->n = s->T * s->H / 32;
    r->cols = s->H / 32;
    return 0;
}

static int xq(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    r->model = s->ref->xq.q;
    r->n = s->T * s->H;
    r->cols = s->H;
    r->peer_out_q = out;
    r->peer_ref_q = s->ref->xq.q;
    r->peer_ref_s = s->ref->xq.s;
    r->peer_n = r->n;
    return 0;
}

static int g1(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    gemm_ref(&s->ref->g1, s->T * s->k * 2 * s->I, 2 * s->I, r);
    return 0;
}

static int actq_scale(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    /* the model's scale, or the alternative where the block's amax
     * straddles a binade */
    r->model = s->ref->actq.s;
    r->alt = s->ref->actq.s_alt;
    r->n = s->T * s->k * s->I / 32;
    r->cols = s->I / 32;
    return 0;
}

static int actq(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    /* element bytes under whichever scale the kernel took: the model's
     * (alternative: the other rounding of a tie), or the alternative scale
     * (its two roundings) */
    const mx_moe_result *ref = s->ref;
    size_t n = s->T * s->k * s->I;
    const uint8_t *q = out, *ks = s->out_scale;
    uint8_t *alt = malloc(mx_nz(n));
    if (!alt)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t b = i / 32;
        if (ks[b] == ref->actq.s_alt[b] && ks[b] != ref->actq.s[b])
            alt[i] = q[i] == ref->actq.q_under_alt[i] ? ref->actq.q_under_alt[i]
                                                      : ref->actq.q_under_alt2[i];
        else
            alt[i] = ref->actq.q_alt[i];
    }
    r->owned[0] = alt;
    r->model = ref->actq.q;
    r->alt = alt;
    r->n = n;
    r->cols = s->I;
    r->peer_out_q = out;
    r->peer_ref_q = ref->actq.q;
    r->peer_ref_s = ref->actq.s;
    r->peer_n = n;
    return 0;
}

static void act_rows(const mxv_stage_src *s, size_t r0, size_t r1, void *const *o)
{
    size_t I = s->I;
    mx_swiglu_exact(s->shape, s->ref->g1.model + r0 * 2 * I, r1 - r0, I, 4,
                    (double *)o[0] + r0 * I, (double *)o[1] + r0 * I);
}

static int act(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    /* the exact act from the reference's GEMM1 output, and the FP32
     * evaluation bound (the accuracy of the kernel's sigmoid) */
    size_t n = s->T * s->k * s->I;
    double *ax = malloc(mx_nz(n) * sizeof *ax), *ab = malloc(mx_nz(n) * sizeof *ab);
    r->owned[0] = ax;
    r->owned[1] = ab;
    if (!ax || !ab)
        return -1;
    rows_run(s, s->T * s->k, ax, ab, act_rows);
    r->exact = ax;
    r->bound = ab;
    r->n = n;
    r->cols = s->I;
    return 0;
}

static int act16(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    r->model = s->ref->act16.model;
    r->alt = s->ref->act16.alt;
    r->exact = s->ref->act16.exact;
    r->n = s->T * s->k * s->I;
    r->cols = s->I;
    return 0;
}

static int y(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    gemm_ref(&s->ref->y, s->T * s->k * s->H, s->H, r);
    return 0;
}

static int routed(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    gemm_ref(&s->ref->routed, s->T * s->H, s->H, r);
    return 0;
}

static void routed_fp32_rows(const mxv_stage_src *s, size_t r0, size_t r1, void *const *o)
{
    size_t k = s->k, H = s->H;
    const uint16_t *ym = s->ref->y.model;
    uint16_t *want = o[0];
    for (size_t t = r0; t < r1; t++)
        for (size_t h = 0; h < H; h++) {
            float acc = mx_bf16_to_float(ym[(t * k) * H + h]);
            for (size_t j = 1; j < k; j++)
                acc = acc + mx_bf16_to_float(ym[(t * k + j) * H + h]);
            want[t * H + h] = mx_bf16_from_float(acc);
        }
}

static int routed_fp32(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    /* the routed sum accumulated in FP32 over the reference's BF16 GEMM2
     * outputs, rounded to BF16 once */
    size_t T = s->T, H = s->H;
    uint16_t *want = malloc(mx_nz(T * H) * sizeof *want);
    if (!want)
        return -1;
    rows_run(s, T, want, NULL, routed_fp32_rows);
    r->owned[0] = want;
    r->model = want;
    r->exact = s->ref->routed.exact;
    r->bound = s->ref->routed.bound;
    r->n = T * H;
    r->cols = H;
    return 0;
}

static int shared(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    gemm_ref(&s->ref->shared, s->T * s->H, s->H, r);
    return 0;
}

static int layer_out(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    gemm_ref(&s->ref->out, s->T * s->H, s->H, r);
    return 0;
}

static void e2e_rows(const mxv_stage_src *s, size_t r0, size_t r1, void *const *o)
{
    size_t k = s->k, H = s->H;
    double *want = o[0], *bd = o[1];
    for (size_t t = r0; t < r1; t++)
        for (size_t h = 0; h < H; h++) {
            double v = 0;
            for (size_t j = 0; j < k; j++)
                v += s->ref->y.exact[(t * k + j) * H + h];
            want[t * H + h] = v;
            bd[t * H + h] = INFINITY;
        }
}

static int e2e(const mxv_stage_src *s, const void *out, mxv_stage_ref *r)
{
    /* the exact sum of the reference chain's GEMM2 values; no bound:
     * drift is not a verdict */
    size_t T = s->T, H = s->H;
    double *want = malloc(mx_nz(T * H) * sizeof *want), *bd = malloc(mx_nz(T * H) * sizeof *bd);
    r->owned[0] = want;
    r->owned[1] = bd;
    if (!want || !bd)
        return -1;
    rows_run(s, T, want, bd, e2e_rows);
    r->exact = want;
    r->bound = bd;
    r->n = T * H;
    r->cols = H;
    return 0;
}

/* ---- the table ------------------------------------------------------------- */

#define LAYER (1u << MXV_CAP_MOE_LAYER)
#define BOTH (MXV_POL_W8A8 | MXV_POL_BF16)
#define NOIN {NULL, NULL}

static const mxv_stage table[] = {
    /* id, kernel, kernel_bf16, run_name, tensor, label, captures, scale_of,
     * inputs, policies, verdict, accum, exact, mx_peers, produce */
    {MXV_STAGE_XQ_SCALE, "mx_quant.scale", NULL, "scale", "xq_scale", NULL, LAYER, -1,
     NOIN, MXV_POL_W8A8, MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 0,
     xq_scale},
    {MXV_STAGE_XQ, "mx_quant.q", NULL, "q", "xq", NULL, LAYER, MXV_STAGE_XQ_SCALE, NOIN,
     MXV_POL_W8A8, MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 1, xq},
    {MXV_STAGE_W13, "fn_to_fnuz.w13", NULL, NULL, NULL, NULL, 0, -1, NOIN, MXV_POL_W8A8,
     MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 1, given},
    {MXV_STAGE_W2, "fn_to_fnuz.w2", NULL, NULL, NULL, NULL, 0, -1, NOIN, MXV_POL_W8A8,
     MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 1, given},
    {MXV_STAGE_ALIGN, "moe_align", NULL, "sorted_ids|expert_ids|num_post_pad", NULL,
     NULL, 0, -1, NOIN, BOTH, MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 0,
     given},
    {MXV_STAGE_G1, "mxfp8_group_gemm.gemm1", "bf16_group_gemm.gemm1", NULL, "g1", NULL,
     LAYER, -1, NOIN, BOTH, MXV_VERDICT_BOUND, MXV_ACCUM_RUN, MXV_EXACT_MODEL, 0, g1},
    {MXV_STAGE_ACTQ_SCALE, "swiglu_quant.scale", NULL, "scale", "actq_scale", NULL,
     LAYER, -1, NOIN, MXV_POL_W8A8, MXV_VERDICT_BYTES, MXV_ACCUM_INPUTS,
     MXV_EXACT_NO_ALT, 0, actq_scale},
    {MXV_STAGE_ACTQ, "swiglu_quant.q", NULL, "q", "actq", NULL, LAYER,
     MXV_STAGE_ACTQ_SCALE, NOIN, MXV_POL_W8A8, MXV_VERDICT_BYTES, MXV_ACCUM_INPUTS,
     MXV_EXACT_NO_ALT, 1, actq},
    {MXV_STAGE_ACT, "swiglu_quant.act", NULL, "act", NULL, NULL, 0, -1, NOIN,
     MXV_POL_W8A8, MXV_VERDICT_F32_BOUND, MXV_ACCUM_INPUTS, MXV_EXACT_NONE, 0, act},
    {MXV_STAGE_ACT16, NULL, NULL, NULL, "act", NULL, LAYER, -1, NOIN, MXV_POL_BF16,
     MXV_VERDICT_BF16_CODES, MXV_ACCUM_INPUTS, MXV_EXACT_ALL_RIGHT, 0, act16},
    {MXV_STAGE_Y, "mxfp8_group_gemm.gemm2", "bf16_group_gemm.gemm2", NULL, "y", NULL,
     LAYER, -1, NOIN, BOTH, MXV_VERDICT_BOUND, MXV_ACCUM_RUN, MXV_EXACT_MODEL, 0, y},
    {MXV_STAGE_ROUTED, "moe_sum.bf16", NULL, NULL, "routed", "routed (moe_sum)", LAYER,
     -1, NOIN, BOTH, MXV_VERDICT_EQUAL, MXV_ACCUM_INPUTS, MXV_EXACT_ALL_RIGHT, 0,
     routed},
    {MXV_STAGE_ROUTED_FP32, "moe_sum.fp32", NULL, NULL, NULL, NULL, 0, -1, NOIN, BOTH,
     MXV_VERDICT_EQUAL, MXV_ACCUM_INPUTS, MXV_EXACT_ALL_RIGHT, 0, routed_fp32},
    {MXV_STAGE_SHARED, NULL, NULL, NULL, "shared_out", NULL, LAYER, -1, NOIN, BOTH,
     MXV_VERDICT_BOUND, MXV_ACCUM_RUN, MXV_EXACT_MODEL, 0, shared},
    {MXV_STAGE_OUT, NULL, NULL, NULL, "out", NULL, LAYER, -1, {"routed", "shared_out"},
     BOTH, MXV_VERDICT_EQUAL_IF_GIVEN, MXV_ACCUM_INPUTS, MXV_EXACT_MODEL, 0, layer_out},
    {MXV_STAGE_E2E, "moe.e2e", NULL, NULL, NULL, NULL, 0, -1, NOIN, BOTH,
     MXV_VERDICT_INFO, MXV_ACCUM_RUN, MXV_EXACT_NONE, 0, e2e},
    {MXV_STAGE_QUANT_SCALE, NULL, NULL, NULL, "q_scale", NULL, 1u << MXV_CAP_MX_QUANT,
     -1, NOIN, BOTH, MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 0, given},
    {MXV_STAGE_QUANT, NULL, NULL, NULL, "q", NULL, 1u << MXV_CAP_MX_QUANT, -1, NOIN,
     BOTH, MXV_VERDICT_BYTES, MXV_ACCUM_NONE, MXV_EXACT_ALL_RIGHT, 0, given},
    {MXV_STAGE_GEMM, NULL, NULL, NULL, "out", NULL,
     (1u << MXV_CAP_MXFP8_GEMM) | (1u << MXV_CAP_BF16_GEMM), -1, NOIN, BOTH,
     MXV_VERDICT_BOUND, MXV_ACCUM_RUN, MXV_EXACT_MODEL, 0, given},
};

_Static_assert(sizeof table / sizeof table[0] == MXV_STAGE_COUNT,
               "one table row per stage id");

const mxv_stage *mxv_stage_table(size_t *n)
{
    *n = MXV_STAGE_COUNT;
    return table;
}

const mxv_stage *mxv_stage_get(mxv_stage_id id)
{
    return id < MXV_STAGE_COUNT && table[id].id == id ? &table[id] : NULL;
}

const char *mxv_stage_kernel(const mxv_stage *st, unsigned policy)
{
    return policy == MXV_POL_BF16 && st->kernel_bf16 ? st->kernel_bf16 : st->kernel;
}

/* ---- judging ------------------------------------------------------------------ */

int mxv_stage_judge(const mxv_stage *st, const mxv_stage_src *src, const void *out,
                    const char *name, mxv_judge *j)
{
    mxv_stage_ref r;
    memset(&r, 0, sizeof r);
    memset(j, 0, sizeof *j);
    if (!name)
        name = st->tensor ? st->tensor : st->kernel;
    int rc = st->produce(src, out, &r);
    if (rc == 0) {
        mxv_verdict_kind v = st->verdict;
        if (v == MXV_VERDICT_EQUAL_IF_GIVEN)
            v = src->inputs_given ? MXV_VERDICT_EQUAL : MXV_VERDICT_BOUND;
        switch (v) {
        case MXV_VERDICT_BYTES:
            mxv_judge_bytes(j, name, out, r.model, r.alt, r.n, r.cols);
            break;
        case MXV_VERDICT_BF16_CODES:
            mxv_judge_bf16_codes(j, name, out, r.model, r.alt, r.exact, r.n, r.cols);
            break;
        case MXV_VERDICT_BOUND:
            mxv_judge_bf16(j, name, out, r.model, r.exact, r.bound, r.n, r.cols);
            break;
        case MXV_VERDICT_EQUAL:
        case MXV_VERDICT_EQUAL_IF_GIVEN:
            mxv_judge_bf16_equal(j, name, out, r.model, r.exact, r.bound, r.n, r.cols);
            break;
        case MXV_VERDICT_F32_BOUND:
            mxv_judge_f32(j, name, out, r.exact, r.bound, r.n, r.cols);
            break;
        case MXV_VERDICT_INFO:
            /* drift is not judged: peers only, an information row */
            mxv_judge_bf16_info(j, name, out, r.exact, r.n, r.cols);
            break;
        }
        if (st->mx_peers && src->out_scale && r.peer_ref_q)
            mxv_judge_peers_mx(j, r.peer_out_q, src->out_scale, r.peer_ref_q,
                               r.peer_ref_s, r.peer_n, r.cols, r.peer_packed_rows);
    }
    for (int i = 0; i < 3; i++)
        free(r.owned[i]);
    return rc;
}

int mxv_stage_bit_exact(const mxv_stage *st, const mxv_judge *j)
{
    switch (st->exact) {
    case MXV_EXACT_ALL_RIGHT:
        return j->outside == 0;
    case MXV_EXACT_NO_ALT:
        return j->outside == 0 && j->ambiguous == 0;
    case MXV_EXACT_MODEL:
        return j->bit_exact == j->n;
    case MXV_EXACT_NONE:
        break;
    }
    return 1;
}
