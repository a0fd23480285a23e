/* cmd_gate.c -- `mxverify gate`: run a suite and judge every row against
 * the golden tolerances of its case and kernel (docs/golden.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "case_pool.h"
#include "cli.h"
#include "commands.h"
#include "golden.h"
#include "out.h"
#include "report.h"
#include "runner.h"
#include "stages.h"
#include "model/gatecheck.h"

int mxv_cmd_gate(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *golden = NULL, *rj = NULL,
               *rm = NULL, *ju = NULL, *seed = NULL, *help = NULL, *model = NULL,
               *cb = NULL, *ct = NULL, *sr = NULL, *sb = NULL, *mtol = NULL,
               *ment = "minimax-m3/w8a8-mxfp8/mi300x", *other = NULL, *bonly = NULL,
               *only = NULL,
               *jobs = NULL, *shard = NULL, *ref = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"suite", 1, &suite, 0},
                            {"reference", 1, &ref, 0},
                            {"golden", 1, &golden, 0},   {"report-json", 1, &rj, 0},
                            {"report-md", 1, &rm, 0},    {"junit", 1, &ju, 0},
                            {"seed", 1, &seed, 0},       {"model", 1, &model, 0},
                            {"compare-base", 1, &cb, 0}, {"compare-test", 1, &ct, 0},
                            {"score-run", 1, &sr, 0},    {"score-base", 1, &sb, 0},
                            {"model-tolerances", 1, &mtol, 0},
                            {"model-entry", 1, &ment, 0},
                            {"allow-other-golden", 0, &other, 0},
                            {"bound-only", 0, &bonly, 0}, {"case", 1, &only, 0},
                            {"jobs", 1, &jobs, 'j'},     {"shard", 1, &shard, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "gate");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        printf("usage: mxverify gate [--suite NAME] [--golden FILE] [--backend cpu|gpu]\n"
               "                     [--report-json FILE] [--report-md FILE] [--junit FILE]\n"
               "                     [--seed N] [--model M] [--bound-only]\n"
               "                     [--allow-other-golden] [--case NAME]\n"
               "                     [--compare-base F --compare-test F]\n"
               "                     [--score-run F [--score-base F]] [--model-tolerances F]\n"
               "                     [--model-entry M/P/D]\n"
               "                     [--jobs N] [--shard K/N] [--reference cpu|gpu|auto]\n"
               "  --suite NAME         one of %s (default default)\n"
               "  --golden FILE        golden tolerances (default GOLDEN_DIR/gate-SUITE-\n"
               "                       BACKEND.json; GOLDEN_DIR: $MXVERIFY_GOLDEN_DIR,\n"
               "                       ./golden, or the source tree's)\n"
               "  --backend B          cpu (default) or gpu\n"
               "  --report-json FILE   write the JSON report to FILE\n"
               "  --report-md FILE     write a Markdown summary to FILE\n"
               "  --junit FILE         write JUnit XML to FILE\n"
               "  --seed N             added to every case's seed (default 0)\n"
               "  --allow-other-golden gate with a golden file recorded for another device\n"
               "                       architecture or model (refused otherwise)\n"
               "  --case NAME          gate only this case of the suite\n"
               "  -j, --jobs N         threads (default: the processors available); the\n"
               "                       reports are the same for every N\n"
               "  --shard K/N          run the K-th of N shares of the cases; --report-json\n"
               "                       writes a partial report (mxverify report merge)\n",
               mxv_suite_names());
        mxv_print_device_model_help(stdout);
        mxv_print_reference_help(stdout);
        puts("model checks judged in the same run (docs/model-checks.md):\n"
             "  --compare-base FILE  BASE run of a model comparison (with --compare-test)\n"
             "  --compare-test FILE  TEST run: judged against the model entry's KLD\n"
             "                       and same-top-1 thresholds\n"
             "  --score-run FILE     lm-eval samples judged against its min_score\n"
             "  --score-base FILE    ... and McNemar against this base run\n"
             "  --model-tolerances FILE  default GOLDEN_DIR/model-tolerances.json\n"
             "  --model-entry M/P/D  the entry (default minimax-m3/w8a8-mxfp8/mi300x)\n"
             "  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "gate takes no positional arguments");
    if (!cb != !ct)
        return mxv_error(MXV_EXIT_USAGE, "--compare-base and --compare-test go together");
    if (sb && !sr)
        return mxv_error(MXV_EXIT_USAGE, "--score-base needs --score-run");
    mxv_ref_mode refm;
    if ((rc = mxv_reference_parse(ref, &refm)) != 0)
        return rc;
    if ((rc = mxv_jobs_apply(jobs)) != 0)
        return rc;
    mxv_shard sh;
    if ((rc = mxv_shard_parse(shard, &sh)) != 0)
        return rc;
    if (sh.on && !rj)
        return mxv_error(MXV_EXIT_USAGE, "--shard needs --report-json FILE (the partial "
                                         "report)");
    if (sh.on && (cb || sr))
        return mxv_error(MXV_EXIT_USAGE, "--shard gates suite cases only: run the model "
                                         "checks (--compare-*, --score-*) unsharded");
    char gpath[4096];
    if (!golden) {
        mxv_golden_default_path(suite, backend, gpath, sizeof gpath);
        golden = gpath;
    }
    mxv_golden g;
    char err[512];
    if (mxv_golden_load(golden, &g, err, sizeof err) != 0)
        return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
    /* no report may overwrite the golden file */
    mxv_out_register_input(golden);
    const char *outs[3] = {rj, rm, ju}, *what[3] = {"--report-json", "--report-md", "--junit"};
    for (int i = 0; i < 3; i++)
        if (outs[i] && mxv_out_is_input(outs[i])) {
            mxv_golden_free(&g);
            return mxv_error(MXV_EXIT_USAGE, "%s %s names the golden file of this run",
                             what[i], outs[i]);
        }
    if (strcmp(g.suite, suite)) {
        mxv_golden_free(&g);
        return mxv_error(MXV_EXIT_BADINPUT, "%s: field \"suite\" is \"%s\", the gate "
                                            "runs suite \"%s\"", golden, g.suite, suite);
    }
    mxv_runner r;
    const char *device;
    if ((rc = mxv_runner_backend(backend, &r, &device)) != 0 ||
        (rc = mxv_reference_apply(refm, r.ops != mxk_cpu_ops(), NULL)) != 0 ||
        (rc = mxv_parse_seed(seed, &r.seed_offset)) != 0) {
        mxv_golden_free(&g);
        return rc;
    }
    char mname[96];
    if (mxv_runner_set_model(&r, model, err, sizeof err) != 0) {
        mxv_golden_free(&g);
        return mxv_error(MXV_EXIT_USAGE, "%s", err);
    }
    r.bound_only = bonly != NULL;
    mxv_runner_model_name(&r, mname, sizeof mname);
    const char *arch = mxv_runner_arch(r.ops);
    if (!other && (strcmp(g.arch, arch) || strcmp(g.model, mname))) {
        rc = mxv_error(MXV_EXIT_BADINPUT,
                       "%s was recorded for %s, model %s; this run is %s, model %s "
                       "(make its own with 'golden update', or --allow-other-golden)",
                       golden, g.arch[0] ? g.arch : "an unrecorded architecture",
                       g.model[0] ? g.model : "unrecorded", arch, mname);
        mxv_golden_free(&g);
        return rc;
    }
    /* the model checks first: a bad input stops the gate before the suite */
    char tpath[4096];
    if (!mtol) {
        snprintf(tpath, sizeof tpath, "%s/model-tolerances.json", mxv_golden_dir());
        mtol = tpath;
    }
    const char *mins[] = {cb, ct, sr, sb, mtol};
    for (int i = 0; i < 5; i++)
        if (mins[i] && (cb || sr))
            mxv_out_register_input(mins[i]);
    for (int i = 0; i < 3; i++)
        if (outs[i] && mxv_out_is_input(outs[i])) {
            mxv_golden_free(&g);
            return mxv_error(MXV_EXIT_USAGE, "%s %s names an input of this run",
                             what[i], outs[i]);
        }
    mxv_model_check checks[2];
    size_t nchecks = 0;
    if (cb) {
        if ((rc = mxv_model_check_compare(cb, ct, mtol, ment, &checks[nchecks], err,
                                          sizeof err)) != 0) {
            mxv_golden_free(&g);
            return mxv_error(rc, "%s", err);
        }
        nchecks++;
    }
    if (sr) {
        if ((rc = mxv_model_check_score(sr, sb, mtol, ment, &checks[nchecks], err,
                                        sizeof err)) != 0) {
            for (size_t i = 0; i < nchecks; i++)
                mxv_model_check_free(&checks[i]);
            mxv_golden_free(&g);
            return mxv_error(rc, "%s", err);
        }
        nchecks++;
    }
    mxv_rows rows = {NULL, 0, 0};
    mxv_run_items it = {0, NULL, NULL, 0};
    double t0 = mxv_now();
    if ((rc = mxv_run_suite_shard(suite, only, &sh, &r, &rows, 1, &it)) != 0) {
        for (size_t i = 0; i < nchecks; i++)
            mxv_model_check_free(&checks[i]);
        mxv_golden_free(&g);
        mxv_rows_free(&rows);
        return rc;
    }
    mxv_verdict *v = calloc(rows.n ? rows.n : 1, sizeof *v);
    for (size_t i = 0; i < rows.n; i++) {
        const mxv_row *w = &rows.rows[i];
        const mxv_golden_entry *e = mxv_golden_find(&g, w->case_name, w->kernel);
        if (!e) {
            v[i].pass = 0;
            snprintf(v[i].why, sizeof v[i].why,
                     "no golden entry (run mxverify golden update)");
        } else {
            v[i].pass = mxv_golden_judge(e, w, v[i].why, sizeof v[i].why);
        }
    }
    printf("mxverify gate: suite %s on %s (%s, %s), model %s, golden %s\n", suite,
           r.ops->name, device, arch, mname, golden);
    char seedstr[32];
    snprintf(seedstr, sizeof seedstr, "%llu", (unsigned long long)r.seed_offset);
    mxv_report rep = {"mxverify gate", suite, r.ops->name, device, golden, &rows, v,
                      mxv_now() - t0, checks, nchecks, seedstr};
    char config[4700];
    snprintf(config, sizeof config, "suite=%s backend=%s seed=%llu golden=%s model=%s case=%s",
             suite, r.ops->name, (unsigned long long)r.seed_offset, golden,
             model ? model : "-", only ? only : "-");
    rc = mxv_report_emit_shard(stdout, &rep, "gate", &sh, config, &it, rj, rm, ju);
    for (size_t i = 0; i < nchecks; i++)
        mxv_model_check_free(&checks[i]);
    free(v);
    mxv_rows_free(&rows);
    mxv_run_items_free(&it);
    mxv_golden_free(&g);
    return rc;
}
