/* cmd_gate.c -- `mxverify gate`: run a suite and judge every row against
 * the golden tolerances of its case and kernel (docs/golden.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "commands.h"
#include "golden.h"
#include "out.h"
#include "report.h"
#include "runner.h"
#include "stages.h"

int mxv_cmd_gate(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *golden = NULL, *rj = NULL,
               *rm = NULL, *ju = NULL, *seed = NULL, *help = NULL, *model = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"suite", 1, &suite, 0},
                            {"golden", 1, &golden, 0},   {"report-json", 1, &rj, 0},
                            {"report-md", 1, &rm, 0},    {"junit", 1, &ju, 0},
                            {"seed", 1, &seed, 0},       {"model", 1, &model, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "gate");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        printf("usage: mxverify gate [--suite NAME] [--golden FILE] [--backend cpu|gpu]\n"
               "                     [--report-json FILE] [--report-md FILE] [--junit FILE]\n"
               "                     [--seed N] [--model NAME]\n"
               "  --suite NAME         one of %s (default default)\n"
               "  --golden FILE        golden tolerances (default GOLDEN_DIR/gate-SUITE-\n"
               "                       BACKEND.json; GOLDEN_DIR: $MXVERIFY_GOLDEN_DIR,\n"
               "                       ./golden, or the source tree's)\n"
               "  --backend B          cpu (default) or gpu\n"
               "  --report-json FILE   write the JSON report to FILE\n"
               "  --report-md FILE     write a Markdown summary to FILE\n"
               "  --junit FILE         write JUnit XML to FILE\n"
               "  --seed N             added to every case's seed (default 0)\n",
               mxv_suite_names());
        mxv_print_model_help(stdout, MXV_RUN_DEFAULT_MODEL);
        puts("  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "gate takes no positional arguments");
    if ((rc = mxv_parse_model(model)) != 0)
        return rc;
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
        (rc = mxv_parse_seed(seed, &r.seed_offset)) != 0) {
        mxv_golden_free(&g);
        return rc;
    }
    r.model = model;
    mxv_rows rows = {NULL, 0, 0};
    double t0 = mxv_now();
    if ((rc = mxv_run_suite(suite, NULL, &r, &rows, 1)) != 0) {
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
    printf("mxverify gate: suite %s on %s (%s), golden %s\n", suite, r.ops->name, device,
           golden);
    char seedstr[32];
    snprintf(seedstr, sizeof seedstr, "%llu", (unsigned long long)r.seed_offset);
    mxv_report rep = {"mxverify gate", suite, r.ops->name, device, golden, &rows, v,
                      mxv_now() - t0, seedstr};
    rc = mxv_report_emit(stdout, &rep, rj, rm, ju);
    free(v);
    mxv_rows_free(&rows);
    mxv_golden_free(&g);
    return rc;
}
