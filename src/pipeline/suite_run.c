/* suite_run.c -- choosing the backend and running a suite through the
 * runner, shared by `kernels`, `gate`, `golden` and `mutants`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend_gpu.h"
#include "cli.h"
#include "runner.h"
#include "case_pool.h"
#include "report.h"
#include "shard.h"

double mxv_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The backend by name; exit code 77 is not used here: a GPU request without
 * a GPU is an error for the CLI (tests decide to skip on their own). */
int mxv_runner_backend(const char *name, mxv_runner *r, const char **device)
{
    memset(r, 0, sizeof *r);
    if (!name || !strcmp(name, "cpu")) {
        r->ops = mxk_cpu_ops();
        *device = r->ops->device;
        return 0;
    }
    if (!strcmp(name, "gpu")) {
        char why[256];
        mxv_gpu_state st;
        r->ops = mxv_gpu_backend(why, sizeof why, &st);
        if (!r->ops)
            return mxv_error(MXV_EXIT_INTERNAL, "--backend gpu: %s", why);
        r->cpu = mxk_cpu_ops();
        *device = r->ops->device;
        return 0;
    }
    return mxv_error(MXV_EXIT_USAGE, "--backend '%s': cpu or gpu", name);
}

int mxv_reference_parse(const char *value, mxv_ref_mode *mode)
{
    *mode = MXV_REF_AUTO;
    if (!value || !strcmp(value, "auto"))
        return 0;
    if (!strcmp(value, "cpu"))
        *mode = MXV_REF_CPU;
    else if (!strcmp(value, "gpu"))
        *mode = MXV_REF_GPU;
    else
        return mxv_error(MXV_EXIT_USAGE, "--reference '%s': cpu, gpu or auto", value);
    return 0;
}

int mxv_reference_apply(mxv_ref_mode mode, int gpu_backend, const char **used)
{
    const char *u = "cpu";
    mxv_gpu_reference_disable();
    if (mode == MXV_REF_GPU) {
        char why[1200];
        if (mxv_gpu_reference_enable(why, sizeof why) != 0)
            return mxv_error(MXV_EXIT_INTERNAL, "%s", why);
        u = "gpu";
    } else if (mode == MXV_REF_AUTO && gpu_backend && mxv_gpu_reference_enable_sum() == 0) {
        u = "gpu-sum";
    }
    if (used)
        *used = u;
    return 0;
}

int mxv_check_reference_apply(mxv_ref_mode mode, const char **used)
{
    const char *u = "cpu";
    mxv_gpu_reference_disable();
    if (mode == MXV_REF_GPU) {
        char why[1200];
        if (!mxv_gpu_backend(why, sizeof why, NULL))
            return mxv_error(MXV_EXIT_INTERNAL, "--reference gpu: %s", why);
        if (mxv_gpu_reference_enable_sum() != 0 || !mxv_gpu_walk_fn())
            return mxv_error(MXV_EXIT_INTERNAL,
                             "--reference gpu: the GPU library %s has no %s or %s (rebuild it)",
                             mxv_gpu_backend_path(), MXK_GPU_SUM_SYMBOL, MXK_GPU_WALK_SYMBOL);
        u = "gpu";
    }
    if (used)
        *used = u;
    return 0;
}

void mxv_print_reference_help(FILE *f)
{
    fputs("  --reference R        where the exact reference's heavy arithmetic runs:\n"
          "                       auto (default: with --backend gpu, exact-only GEMMs\n"
          "                       summed on the GPU, the rest on the CPU; else cpu),\n"
          "                       cpu, or gpu (every GEMM's group partials on the GPU;\n"
          "                       exit 4 without a usable GPU); the same bits for every\n"
          "                       choice (docs/reference.md)\n", f);
}

void mxv_run_items_free(mxv_run_items *it)
{
    free(it->names);
    free(it->positions);
    memset(it, 0, sizeof *it);
}

int mxv_run_suite_shard(const char *suite, const char *only, const mxv_shard *sh,
                        const mxv_runner *r, mxv_rows *rows, int progress,
                        mxv_run_items *items)
{
    size_t n;
    const mxv_case_def *cases = mxv_suite_cases(suite, &n);
    if (!cases)
        return mxv_error(MXV_EXIT_USAGE, "--suite '%s': one of %s", suite,
                         mxv_suite_names());
    mxv_shard whole = {0, 0, 0};
    if (!sh)
        sh = &whole;
    const mxv_case_def **pick = calloc(n ? n : 1, sizeof *pick);
    mxv_run_items it = {0, calloc(n ? n : 1, sizeof(char *)),
                        calloc(n ? n : 1, sizeof(size_t)), 0};
    if (!pick || !it.names || !it.positions) {
        free(pick);
        mxv_run_items_free(&it);
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, cases[i].name))
            continue;
        if (mxv_shard_has(sh, it.total)) {
            pick[i] = &cases[i];
            it.names[it.n] = cases[i].name;
            it.positions[it.n++] = it.total;
        }
        it.total++;
    }
    if (!it.total) {
        free(pick);
        mxv_run_items_free(&it);
        return mxv_error(MXV_EXIT_USAGE, "--case '%s' is not in suite %s", only, suite);
    }
    char err[256];
    int rc = mxv_run_cases(pick, n, r, rows, progress, err, sizeof err);
    free(pick);
    if (items && !rc)
        *items = it;
    else
        mxv_run_items_free(&it);
    return rc ? mxv_error(MXV_EXIT_INTERNAL, "%s", err) : 0;
}

int mxv_run_suite(const char *suite, const char *only, const mxv_runner *r,
                  mxv_rows *rows, int progress)
{
    return mxv_run_suite_shard(suite, only, NULL, r, rows, progress, NULL);
}

int mxv_report_emit_shard(FILE *f, const mxv_report *rep, const char *command,
                          const mxv_shard *sh, const char *config,
                          const mxv_run_items *it, const char *json, const char *md,
                          const char *junit)
{
    int rc = mxv_report_emit(f, rep, sh->on ? NULL : json, md, junit);
    if (sh->on && json) {
        char err[512];
        if (mxv_shard_write(json, command, sh, config, it->total, it->names, it->positions,
                            it->n, mxv_report_json_object(rep), err, sizeof err) != 0)
            return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    }
    return rc;
}

const char *mxv_runner_arch(const mxk_ops *ops)
{
    return ops->abi >= 2 && ops->arch ? ops->arch : "cpu";
}

void mxv_print_device_model_help(FILE *f)
{
    fputs("  --model M            judge the GEMMs against accumulation model M, or\n"
          "                       M8,M16 for the MXFP8 and the BF16 GEMMs (default: the\n"
          "                       device's own: fp32-seq on the portable path,\n"
          "                       block:hopper-fp8-mma,block:hopper-bf16 for the sm_90\n"
          "                       tensor-core kernels, block:cdna3-fp8,block:cdna3-bf16\n"
          "                       for the gfx94x MFMA kernels)\n"
          "  --bound-only         accept GEMM elements within their bound that are not\n"
          "                       bit-exact to a measured device model (block:hopper-*);\n"
          "                       by default they fail: within bound, not the device's\n"
          "                       arithmetic\n", f);
}
