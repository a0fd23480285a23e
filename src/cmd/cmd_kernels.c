/* cmd_kernels.c -- `mxverify kernels`: run a backend's kernels on a suite
 * and judge every output against the reference (no golden file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend_gpu.h"
#include "case_pool.h"
#include "cli.h"
#include "commands.h"
#include "report.h"
#include "runner.h"
#include "stages.h"

int mxv_cmd_kernels(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *seed = NULL, *only = NULL,
               *help = NULL, *json = NULL, *mutant = NULL, *seeds = NULL, *model = NULL,
               *list = NULL, *md = NULL, *junit = NULL, *bonly = NULL, *jobs = NULL,
               *shard = NULL, *ref = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"reference", 1, &ref, 0}, {"suite", 1, &suite, 0},
                            {"seed", 1, &seed, 0},       {"case", 1, &only, 0},
                            {"seeds", 1, &seeds, 0},     {"list", 0, &list, 0},
                            {"list-cases", 0, &list, 0}, {"model", 1, &model, 0},
                            {"report-json", 1, &json, 0}, {"report-md", 1, &md, 0},
                            {"junit", 1, &junit, 0},     {"mutant", 1, &mutant, 0},
                            {"bound-only", 0, &bonly, 0},
                            {"jobs", 1, &jobs, 'j'},     {"shard", 1, &shard, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "kernels");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        printf("usage: mxverify kernels [--backend cpu|gpu] [--suite NAME] [--list]\n"
               "                        [--seed N] [--seeds COUNT] [--case NAME]\n"
               "                        [--mutant NAME] [--model M] [--bound-only]\n"
               "                        [--report-json FILE] [--report-md FILE] [--junit FILE]\n"
               "                        [--jobs N] [--shard K/N] [--reference cpu|gpu|auto]\n"
               "  --backend B          cpu (the C emulation, default) or gpu\n"
               "  --suite NAME         one of %s (default default)\n"
               "  --list, --list-cases print the suite's cases and exit\n"
               "  --case NAME          run only this case of the suite\n"
               "  --seed N             added to every case's seed (default 0)\n"
               "  --seeds COUNT        run the suite COUNT times, seeds N, N+1, ... (one\n"
               "                       table line per failing row and a summary)\n"
               "  --mutant NAME        plant this bug (mxverify mutants --list)\n"
               "  --report-json FILE   write the JSON report to FILE\n"
               "  --report-md FILE     write a Markdown summary to FILE\n"
               "  --junit FILE         write JUnit XML to FILE\n"
               "  -j, --jobs N         threads (default: the processors available); the\n"
               "                       reports are the same for every N\n"
               "  --shard K/N          run the K-th of N shares of the cases; --report-json\n"
               "                       writes a partial report (mxverify report merge)\n",
               mxv_suite_names());
        mxv_print_device_model_help(stdout);
        mxv_print_reference_help(stdout);
        puts("  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "kernels takes no positional arguments");
    mxv_ref_mode refm;
    if ((rc = mxv_reference_parse(ref, &refm)) != 0)
        return rc;
    if (list)
        return mxv_suite_list(suite, stdout);
    if ((rc = mxv_jobs_apply(jobs)) != 0)
        return rc;
    mxv_shard sh;
    if ((rc = mxv_shard_parse(shard, &sh)) != 0)
        return rc;
    if (sh.on && (!json || seeds))
        return mxv_error(MXV_EXIT_USAGE, "--shard needs --report-json FILE (the partial "
                                         "report) and no --seeds");
    mxv_runner r;
    const char *device;
    if ((rc = mxv_runner_backend(backend, &r, &device)) != 0)
        return rc;
    if ((rc = mxv_reference_apply(refm, r.ops != mxk_cpu_ops(), NULL)) != 0)
        return rc;
    if ((rc = mxv_parse_seed(seed, &r.seed_offset)) != 0)
        return rc;
    char merr[256];
    if (mxv_runner_set_model(&r, model, merr, sizeof merr) != 0)
        return mxv_error(MXV_EXIT_USAGE, "%s", merr);
    r.bound_only = bonly != NULL;
    if (mutant) {
        const mxk_mutant_info *mi = mxk_mutant_by_name(mutant);
        if (!mi)
            return mxv_error(MXV_EXIT_USAGE, "--mutant '%s' is not a planted bug "
                                             "(see mxverify mutants --list)", mutant);
        r.mutant = mi->id;
    }
    unsigned long long nseeds = 1;
    if (seeds && (mxv_parse_uint(seeds, 1000000, &nseeds) != 0 || nseeds == 0))
        return mxv_error(MXV_EXIT_USAGE, "--seeds '%s' is not in 1..1000000", seeds);
    if (nseeds > 1) {
        /* many seeds: the verdict per row, a line per failure */
        size_t total = 0, failed = 0, outside = 0;
        double t0 = mxv_now();
        for (unsigned long long sd = 0; sd < nseeds; sd++) {
            mxv_runner rs = r;
            rs.seed_offset = r.seed_offset + sd;
            mxv_rows rows = {NULL, 0, 0};
            if ((rc = mxv_run_suite_shard(suite, only, &sh, &rs, &rows, 0, NULL)) != 0) {
                mxv_rows_free(&rows);
                return rc;
            }
            for (size_t i = 0; i < rows.n; i++) {
                total++;
                outside += rows.rows[i].j.outside;
                if (!mxv_row_pass(&rows.rows[i])) {
                    failed++;
                    printf("seed +%llu: %s / %s: %s\n", sd, rows.rows[i].case_name,
                           rows.rows[i].kernel,
                           rows.rows[i].error ? rows.rows[i].message : "FAIL");
                }
            }
            mxv_rows_free(&rows);
        }
        printf("mxverify kernels: suite %s on %s, %llu seeds: %zu rows, %zu failed, "
               "%zu elements outside their bounds, %.1f s\n",
               suite, r.ops->name, nseeds, total, failed, outside, mxv_now() - t0);
        printf("%zu passed, %zu failed\n", total - failed, failed);
        return failed ? MXV_EXIT_FAIL : MXV_EXIT_OK;
    }
    mxv_rows rows = {NULL, 0, 0};
    mxv_run_items it = {0, NULL, NULL, 0};
    double t0 = mxv_now();
    if ((rc = mxv_run_suite_shard(suite, only, &sh, &r, &rows, 1, &it)) != 0) {
        mxv_rows_free(&rows);
        return rc;
    }
    mxv_verdict *v = calloc(rows.n ? rows.n : 1, sizeof *v);
    for (size_t i = 0; i < rows.n; i++) {
        v[i].pass = mxv_row_pass(&rows.rows[i]);
        snprintf(v[i].why, sizeof v[i].why, "%s",
                 v[i].pass ? "ok" : rows.rows[i].error ? rows.rows[i].message
                 : rows.rows[i].backends_agree == 0 ? "GPU differs from the CPU backend"
                 : rows.rows[i].not_device && !rows.rows[i].j.outside
                     ? "within bound, not the device's arithmetic"
                 : rows.rows[i].j.by_bytes ? "wrong bytes" : "outside the bound");
    }
    char mname[96];
    mxv_runner_model_name(&r, mname, sizeof mname);
    printf("mxverify kernels: suite %s on %s (%s, %s), model %s%s\n", suite, r.ops->name,
           device, mxv_runner_arch(r.ops), mname, r.mutant ? ", with a planted bug" : "");
    char seedstr[32];
    snprintf(seedstr, sizeof seedstr, "%llu", (unsigned long long)r.seed_offset);
    mxv_report rep = {"mxverify kernels", suite, r.ops->name, device, NULL, &rows, v,
                      mxv_now() - t0, NULL, 0, seedstr};
    char config[512];
    snprintf(config, sizeof config, "suite=%s backend=%s seed=%llu mutant=%s case=%s model=%s",
             suite, r.ops->name, (unsigned long long)r.seed_offset, mutant ? mutant : "-",
             only ? only : "-", model ? model : "-");
    rc = mxv_report_emit_shard(stdout, &rep, "kernels", &sh, config, &it, json, md, junit);
    free(v);
    mxv_rows_free(&rows);
    mxv_run_items_free(&it);
    return rc;
}
