/* layer_opts.c -- parse the options that name a generated MoE layer case. */
#include <limits.h>
#include "cli.h"
#include "layer_opts.h"

int mxv_layer_opts_parse(const mxv_layer_opts *o, mx_case_params *p,
                         mx_moe_config *cfg)
{
    mx_moe_shape sh;
    const char *shape = o->shape ? o->shape : "m3-tp8";
    if (mx_moe_shape_by_name(shape, &sh) != 0)
        return mxv_error(MXV_EXIT_USAGE,
                         "--shape '%s': known shapes are m3-full, m3-tp8, "
                         "m3-ep8, custom:H,I,E[,topk] (H, I multiples of 32)",
                         shape);
    unsigned long long T = 64, seed = 1, layer = 0, mml = sh.max_model_len;
    if (o->tokens && (mxv_parse_uint(o->tokens, 1u << 20, &T) != 0 || T == 0))
        return mxv_error(MXV_EXIT_USAGE, "--tokens '%s' is not in 1..1048576",
                         o->tokens);
    if (o->seed && mxv_parse_uint(o->seed, ULLONG_MAX, &seed) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--seed '%s' is not an integer",
                         o->seed);
    if (o->layer && mxv_parse_uint(o->layer, 1000000, &layer) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--layer '%s' is not an integer",
                         o->layer);
    if (o->max_model_len &&
        mxv_parse_uint(o->max_model_len, 1ull << 40, &mml) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--max-model-len '%s' is not an "
                                         "integer", o->max_model_len);
    sh.layer = (int)layer;
    sh.max_model_len = (size_t)mml;
    mx_moe_policy pol = MX_POLICY_W8A8;
    if (o->policy && mx_moe_policy_by_name(o->policy, &pol) != 0)
        return mxv_error(MXV_EXIT_USAGE,
                         "--policy '%s': one of bf16, w8a8-mxfp8, w8a16, hybrid",
                         o->policy);
    *p = mx_case_params_default(&sh, (size_t)T, seed);
    if (o->family && mx_case_family_by_name(o->family, &p->family) != 0)
        return mxv_error(MXV_EXIT_USAGE,
                         "--family '%s': one of real, spread, cancel, tiny, wide",
                         o->family);
    *cfg = mx_moe_config_default(&sh, pol);
    if (o->model && mx_accum_parse(o->model, &cfg->model) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--model '%s': one of %s", o->model,
                         mx_accum_names());
    return 0;
}
