/* layer_opts.h -- the options that name a generated MoE layer case, shared
 * by `ref`, `bench` and the kernel suites. */
#ifndef MXV_LAYER_OPTS_H
#define MXV_LAYER_OPTS_H

#include "mxref/casegen.h"

typedef struct {
    const char *shape, *tokens, *policy, *seed, *family, *model, *layer,
        *max_model_len;
} mxv_layer_opts;

/* Parses the option strings (NULL = default: m3-tp8, 64 tokens,
 * w8a8-mxfp8, seed 1, family real, model fp32-group); prints a one-line
 * error naming the option and returns MXV_EXIT_USAGE, or 0. */
int mxv_layer_opts_parse(const mxv_layer_opts *o, mx_case_params *p,
                         mx_moe_config *cfg);

#endif
