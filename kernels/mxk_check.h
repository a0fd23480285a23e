/* mxk_check.h -- argument validation shared by both backends (host code).
 *
 * Each mxk_check_* returns MXK_OK, or MXK_EINVAL with one line in msg
 * naming the kernel and the argument ("mxfp8_group_gemm: k = 40 is not a
 * multiple of 32").  The *_scalars checks look at shapes, pointers and
 * enums only (what the device launchers can see); the *_routing checks also
 * read host routing arrays (ids and expert ids), which the host-pointer
 * backends do before touching anything.
 */
#ifndef MXK_CHECK_H
#define MXK_CHECK_H

#include <stdio.h>
#include "mxk.h"

#define MXK_FAIL(msg, len, ...)                                                \
    (snprintf((msg), (len), __VA_ARGS__), MXK_EINVAL)

static inline int mxk_fmt_ok(int f)
{
    return f == MXK_FP8_E4M3FNUZ || f == MXK_FP8_E4M3FN;
}

static inline int mxk_mutant_ok(int m) { return m >= 0 && m < MXK_MUT_COUNT; }

static inline mxk_status mxk_check_quant(const mxk_quant_args *a, char *msg,
                                         size_t len)
{
    if (!a)
        return MXK_FAIL(msg, len, "mx_quant: no arguments");
    if (a->rows <= 0 || a->k <= 0)
        return MXK_FAIL(msg, len, "mx_quant: rows = %d, k = %d must be > 0",
                        a->rows, a->k);
    if (a->k % 32)
        return MXK_FAIL(msg, len, "mx_quant: k = %d is not a multiple of 32",
                        a->k);
    if (!mxk_fmt_ok(a->fmt))
        return MXK_FAIL(msg, len, "mx_quant: unknown fmt %d", a->fmt);
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "mx_quant: unknown mutant %d", a->mutant);
    if (!a->x || !a->q || !a->scale)
        return MXK_FAIL(msg, len, "mx_quant: x, q and scale must be given");
    return MXK_OK;
}

static inline mxk_status mxk_check_fnuz(const mxk_fnuz_args *a, char *msg,
                                        size_t len)
{
    if (!a)
        return MXK_FAIL(msg, len, "fn_to_fnuz: no arguments");
    if (a->experts <= 0 || a->n <= 0 || a->k <= 0)
        return MXK_FAIL(msg, len,
                        "fn_to_fnuz: experts = %d, n = %d, k = %d must be > 0",
                        a->experts, a->n, a->k);
    if (a->k % 32)
        return MXK_FAIL(msg, len, "fn_to_fnuz: k = %d is not a multiple of 32",
                        a->k);
    if (a->pack != 0 && a->pack != 1)
        return MXK_FAIL(msg, len, "fn_to_fnuz: pack = %d must be 0 or 1",
                        a->pack);
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "fn_to_fnuz: unknown mutant %d", a->mutant);
    if (!a->vals || !a->scales || !a->out_vals || !a->out_scales ||
        !a->bad_index)
        return MXK_FAIL(msg, len, "fn_to_fnuz: vals, scales, out_vals, "
                                  "out_scales and bad_index must be given");
    if (a->out_scales == a->scales)
        return MXK_FAIL(msg, len,
                        "fn_to_fnuz: out_scales must not overlap scales");
    return MXK_OK;
}

static inline mxk_status mxk_check_align_scalars(const mxk_align_args *a,
                                                 char *msg, size_t len)
{
    if (!a)
        return MXK_FAIL(msg, len, "moe_align: no arguments");
    if (a->tokens <= 0 || a->topk <= 0 || a->experts <= 0 || a->block_m <= 0)
        return MXK_FAIL(msg, len,
                        "moe_align: tokens = %d, topk = %d, experts = %d, "
                        "block_m = %d must be > 0",
                        a->tokens, a->topk, a->experts, a->block_m);
    if (mxk_align_max_rows(a->tokens, a->topk, a->experts, a->block_m) >
        INT32_MAX)
        return MXK_FAIL(msg, len, "moe_align: padded row count overflows int32");
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "moe_align: unknown mutant %d", a->mutant);
    if (!a->topk_ids || !a->sorted_ids || !a->expert_ids || !a->num_post_pad)
        return MXK_FAIL(msg, len, "moe_align: topk_ids, sorted_ids, "
                                  "expert_ids and num_post_pad must be given");
    return MXK_OK;
}

/* Reads topk_ids and expert_map (host memory). */
static inline mxk_status mxk_check_align_data(const mxk_align_args *a,
                                              char *msg, size_t len)
{
    int64_t n = (int64_t)a->tokens * a->topk;
    for (int64_t i = 0; i < n; i++)
        if (a->topk_ids[i] < 0 || a->topk_ids[i] >= a->experts)
            return MXK_FAIL(msg, len,
                            "moe_align: topk_ids[%lld] = %d is outside "
                            "[0, %d)",
                            (long long)i, (int)a->topk_ids[i], a->experts);
    if (a->expert_map)
        for (int e = 0; e < a->experts; e++)
            if (a->expert_map[e] < -1)
                return MXK_FAIL(msg, len,
                                "moe_align: expert_map[%d] = %d is below -1",
                                e, (int)a->expert_map[e]);
    return MXK_OK;
}

static inline mxk_status mxk_check_route_scalars(const char *kernel,
                                                 const mxk_route *r,
                                                 char *msg, size_t len)
{
    if (r->tokens <= 0 || r->topk <= 0 || r->block_m <= 0)
        return MXK_FAIL(msg, len,
                        "%s: tokens = %d, topk = %d, block_m = %d must be > 0",
                        kernel, r->tokens, r->topk, r->block_m);
    if ((int64_t)r->tokens * r->topk >= INT32_MAX)
        return MXK_FAIL(msg, len, "%s: tokens * topk overflows int32", kernel);
    if (r->num_post_pad < 0 || r->num_post_pad % r->block_m)
        return MXK_FAIL(msg, len,
                        "%s: num_post_pad = %d is not a non-negative multiple "
                        "of block_m = %d",
                        kernel, r->num_post_pad, r->block_m);
    if (r->a_per_token != 0 && r->a_per_token != 1)
        return MXK_FAIL(msg, len, "%s: a_per_token = %d must be 0 or 1", kernel,
                        r->a_per_token);
    if (r->num_post_pad > 0 && (!r->sorted_ids || !r->expert_ids))
        return MXK_FAIL(msg, len, "%s: sorted_ids and expert_ids must be given",
                        kernel);
    return MXK_OK;
}

/* Reads sorted_ids and expert_ids (host memory). */
static inline mxk_status mxk_check_route_data(const char *kernel,
                                              const mxk_route *r, int experts,
                                              char *msg, size_t len)
{
    int32_t pad = r->tokens * r->topk;
    for (int p = 0; p < r->num_post_pad; p++)
        if (r->sorted_ids[p] < 0 || r->sorted_ids[p] > pad)
            return MXK_FAIL(msg, len,
                            "%s: sorted_ids[%d] = %d is outside [0, %d]",
                            kernel, p, (int)r->sorted_ids[p], (int)pad);
    for (int b = 0; b < r->num_post_pad / r->block_m; b++)
        if (r->expert_ids[b] < -1 || r->expert_ids[b] >= experts)
            return MXK_FAIL(msg, len,
                            "%s: expert_ids[%d] = %d is outside [-1, %d)",
                            kernel, b, (int)r->expert_ids[b], experts);
    return MXK_OK;
}

static inline mxk_status mxk_check_mxfp8_gemm(const mxk_mxfp8_gemm_args *a,
                                              char *msg, size_t len)
{
    const char *k = "mxfp8_group_gemm";
    if (!a)
        return MXK_FAIL(msg, len, "%s: no arguments", k);
    mxk_status st = mxk_check_route_scalars(k, &a->r, msg, len);
    if (st)
        return st;
    if (a->experts <= 0 || a->n <= 0 || a->k <= 0)
        return MXK_FAIL(msg, len, "%s: experts = %d, n = %d, k = %d must be > 0",
                        k, a->experts, a->n, a->k);
    if (a->k % 32)
        return MXK_FAIL(msg, len, "%s: k = %d is not a multiple of 32", k, a->k);
    if (!mxk_fmt_ok(a->fmt))
        return MXK_FAIL(msg, len, "%s: unknown fmt %d", k, a->fmt);
    if (a->e8m0 != MXK_E8M0_PRODUCTION && a->e8m0 != MXK_E8M0_SPEC)
        return MXK_FAIL(msg, len, "%s: unknown e8m0 decode %d", k, a->e8m0);
    if (a->path != MXK_PATH_AUTO && a->path != MXK_PATH_PORTABLE)
        return MXK_FAIL(msg, len, "%s: unknown path %d", k, a->path);
    if (a->b_scale_packed != 0 && a->b_scale_packed != 1)
        return MXK_FAIL(msg, len, "%s: b_scale_packed = %d must be 0 or 1", k,
                        a->b_scale_packed);
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "%s: unknown mutant %d", k, a->mutant);
    if (!a->a || !a->a_scale || !a->b || !a->b_scale || !a->out)
        return MXK_FAIL(msg, len, "%s: a, a_scale, b, b_scale and out must be "
                                  "given", k);
    return MXK_OK;
}

static inline mxk_status mxk_check_bf16_gemm(const mxk_bf16_gemm_args *a,
                                             char *msg, size_t len)
{
    const char *k = "bf16_group_gemm";
    if (!a)
        return MXK_FAIL(msg, len, "%s: no arguments", k);
    mxk_status st = mxk_check_route_scalars(k, &a->r, msg, len);
    if (st)
        return st;
    if (a->experts <= 0 || a->n <= 0 || a->k <= 0)
        return MXK_FAIL(msg, len, "%s: experts = %d, n = %d, k = %d must be > 0",
                        k, a->experts, a->n, a->k);
    if (a->path != MXK_PATH_AUTO && a->path != MXK_PATH_PORTABLE)
        return MXK_FAIL(msg, len, "%s: unknown path %d", k, a->path);
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "%s: unknown mutant %d", k, a->mutant);
    if (!a->a || !a->b || !a->out)
        return MXK_FAIL(msg, len, "%s: a, b and out must be given", k);
    return MXK_OK;
}

static inline mxk_status mxk_check_swiglu(const mxk_swiglu_args *a, char *msg,
                                          size_t len)
{
    if (!a)
        return MXK_FAIL(msg, len, "swiglu_quant: no arguments");
    if (a->rows <= 0 || a->inter <= 0)
        return MXK_FAIL(msg, len,
                        "swiglu_quant: rows = %d, inter = %d must be > 0",
                        a->rows, a->inter);
    if (a->inter % 32)
        return MXK_FAIL(msg, len,
                        "swiglu_quant: inter = %d is not a multiple of 32",
                        a->inter);
    if (!mxk_fmt_ok(a->fmt))
        return MXK_FAIL(msg, len, "swiglu_quant: unknown fmt %d", a->fmt);
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "swiglu_quant: unknown mutant %d", a->mutant);
    if (!a->g1 || !a->q || !a->scale)
        return MXK_FAIL(msg, len, "swiglu_quant: g1, q and scale must be given");
    return MXK_OK;
}

static inline mxk_status mxk_check_sum(const mxk_sum_args *a, char *msg,
                                       size_t len)
{
    if (!a)
        return MXK_FAIL(msg, len, "moe_sum: no arguments");
    if (a->tokens <= 0 || a->topk <= 0 || a->n <= 0)
        return MXK_FAIL(msg, len,
                        "moe_sum: tokens = %d, topk = %d, n = %d must be > 0",
                        a->tokens, a->topk, a->n);
    if (a->fp32_acc != 0 && a->fp32_acc != 1)
        return MXK_FAIL(msg, len, "moe_sum: fp32_acc = %d must be 0 or 1",
                        a->fp32_acc);
    if (!mxk_mutant_ok(a->mutant))
        return MXK_FAIL(msg, len, "moe_sum: unknown mutant %d", a->mutant);
    if (!a->x || !a->out)
        return MXK_FAIL(msg, len, "moe_sum: x and out must be given");
    return MXK_OK;
}

/* Number of A rows a GEMM reads. */
static inline int64_t mxk_route_a_rows(const mxk_route *r)
{
    return r->a_per_token ? (int64_t)r->tokens : (int64_t)r->tokens * r->topk;
}

#endif /* MXK_CHECK_H */
