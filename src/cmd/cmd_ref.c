/* cmd_ref.c -- `mxverify ref`: generate a MoE layer case from a seed, run
 * the reference on it, write inputs, every intermediate (the reference
 * model's outputs) and their exact values and bounds to a safetensors file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "case_write.h"
#include "cli.h"
#include "commands.h"
#include "case_pool.h"
#include "layer_opts.h"

static const char *usage_ref =
    "usage: mxverify ref -o FILE [--shape m3-tp8|m3-ep8|m3-full|custom:H,I,E[,k]]\n"
    "                    [--tokens T] [--policy w8a8-mxfp8|bf16|w8a16|hybrid]\n"
    "                    [--seed N] [--family real|spread|cancel|tiny|wide]\n"
    "                    [--model NAME] [--layer N] [--max-model-len N] [--jobs N]\n"
    "  -o, --output FILE    the case file to write (a moe_layer capture)\n"
    "  --shape S            layer shape (default m3-tp8)\n"
    "  --tokens T           tokens (default 64)\n"
    "  --policy P           precision policy (default w8a8-mxfp8)\n"
    "  --seed N             case seed (default 1)\n"
    "  --family F           input family (default real)\n"
    "  --model NAME         GEMM accumulation model (mxverify check --help lists\n"
    "                       the names; default fp32-group)\n"
    "  --layer N            MiniMax-M3 layer index (default 0)\n"
    "  --max-model-len N    the engine's max model length (dispatch)\n"
    "  -j, --jobs N         threads (default: the processors available); the\n"
    "                       file is the same for every N\n"
    "  -h, --help           this text";

/* max |model - exact| / bound over a GEMM stage, and elements outside. */
static double stage_ratio(const mx_stage_gemm *g, size_t *outside)
{
    double r = 0;
    *outside = 0;
    for (size_t i = 0; i < g->rows * g->cols; i++) {
        double e = fabs((double)mx_bf16_to_float(g->model[i]) - g->exact[i]);
        if (e > g->bound[i])
            (*outside)++;
        if (g->bound[i] > 0 && e / g->bound[i] > r)
            r = e / g->bound[i];
    }
    return r;
}

int mxv_cmd_ref(int argc, char **argv)
{
    mxv_layer_opts lo = {0};
    const char *out = NULL, *help = NULL, *jobs = NULL;
    const mxv_opt opts[] = {{"shape", 1, &lo.shape, 0},
                            {"tokens", 1, &lo.tokens, 0},
                            {"policy", 1, &lo.policy, 0},
                            {"seed", 1, &lo.seed, 0},
                            {"family", 1, &lo.family, 0},
                            {"model", 1, &lo.model, 0},
                            {"layer", 1, &lo.layer, 0},
                            {"max-model-len", 1, &lo.max_model_len, 0},
                            {"output", 1, &out, 'o'},
                            {"jobs", 1, &jobs, 'j'},
                            {"help", 0, &help, 'h'},
                            {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "ref");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        puts(usage_ref);
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "ref takes no positional arguments");
    if ((rc = mxv_jobs_apply(jobs)) != 0)
        return rc;
    if (!out)
        return mxv_error(MXV_EXIT_USAGE, "ref: -o FILE is required");
    mx_case_params p;
    mx_moe_config cfg;
    if ((rc = mxv_layer_opts_parse(&lo, &p, &cfg)) != 0)
        return rc;

    mx_case c;
    mx_status st = mx_case_generate(&p, &c);
    if (st != MX_OK)
        return mxv_error(st == MX_ENOMEM ? MXV_EXIT_INTERNAL : MXV_EXIT_USAGE,
                         "ref: cannot generate the case (%s)",
                         st == MX_ENOMEM ? "out of memory" : "invalid shape");
    mx_moe_result r;
    long bad;
    st = mx_moe_run(&cfg, &c.weights, c.x, c.T, NULL, &r, &bad);
    if (st != MX_OK) {
        mx_case_free(&c);
        return mxv_error(MXV_EXIT_INTERNAL, "ref: the reference failed (status %d)",
                         (int)st);
    }
    mxv_st_err err;
    mxv_st_status ws = mxv_case_write(out, &p, &c, &cfg, &r, &err);
    if (ws != MXV_ST_OK) {
        mx_moe_result_free(&r);
        mx_case_free(&c);
        return mxv_error(mxv_st_exit_code(ws) == MXV_EXIT_BADINPUT
                             ? MXV_EXIT_INTERNAL
                             : mxv_st_exit_code(ws),
                         "%s", err.msg);
    }
    size_t o1, o2, o3;
    double r1 = stage_ratio(&r.g1, &o1), r2 = stage_ratio(&r.y, &o2),
           r3 = stage_ratio(&r.shared, &o3);
    printf("ref: %s, %zu tokens, policy %s, model %s, seed %llu, family %s\n",
           p.shape.name, c.T, mx_moe_policy_name(r.policy), cfg.model.name,
           (unsigned long long)p.seed, mx_case_family_name(p.family));
    printf("ref: %zu experts materialized, %zu ambiguous routes, %zu ambiguous "
           "act blocks\n",
           c.n_materialized, r.route.n_ambiguous,
           r.policy == MX_POLICY_W8A8 ? r.actq.n_ambiguous : r.act16.n_ambiguous);
    printf("ref: max |model - exact| / bound: g1 %.4f, y %.4f, shared %.4f "
           "(outside: %zu, %zu, %zu)\n",
           r1, r2, r3, o1, o2, o3);
    printf("ref: wrote %s\n", out);
    mx_moe_result_free(&r);
    mx_case_free(&c);
    return o1 + o2 + o3 ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
