/* cmd_mutants.c -- `mxverify mutants`: run every planted bug (kernels/mxk.h)
 * through the kernel runner and show which ones mxverify catches, and which
 * the loose rules that peers use would have caught:
 *   vLLM      relative L2 error < 5e-2 passes
 *   torch     torch.testing.assert_close at the bf16 defaults (rtol 1.6e-2,
 *             atol 1e-5)
 *   aiter     allclose at rtol = atol = 1e-2 with up to 5 % mismatches
 * Peers are evaluated as a framework test runs them: on the layer's routed
 * output with the kernels chained (each on the previous kernel's output),
 * against the exact reference.  The correct kernels run first: they must
 * pass everywhere, and the peers must accept them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "backend_gpu.h"
#include "cli.h"
#include "out.h"
#include "commands.h"
#include "case_pool.h"
#include "runner.h"
#include "shard.h"
#include "stages.h"


typedef struct {
    int id;
    const char *name, *what;
    unsigned kernels;
    int caught;
    char where[96];
    /* mechanisms: elements outside the bound (or wrong bytes) somewhere;
     * a GEMM output not bit-exact to the model where the correct kernel
     * is; and which of them the first caught row shows */
    int by_bound, by_exact;
    char how[24];
    int l2, allclose, aiter;
} outcome;

/* The mutants suite (suite.c): cases that give every planted bug a chance
 * to show. */
static int run_all(const mxv_runner *r, mxv_rows *rows)
{
    return mxv_run_suite("mutants", NULL, r, rows, 0);
}

int mxv_cmd_mutants(int argc, char **argv)
{
    const char *backend = NULL, *list = NULL, *json = NULL, *md = NULL, *help = NULL,
               *only = NULL, *model = NULL, *jobs = NULL, *shard = NULL, *ref = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"list", 0, &list, 0},
                            {"reference", 1, &ref, 0},
                            {"report-json", 1, &json, 0}, {"report-md", 1, &md, 0},
                            {"mutant", 1, &only, 0},     {"model", 1, &model, 0},
                            {"jobs", 1, &jobs, 'j'},     {"shard", 1, &shard, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "mutants");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        puts("usage: mxverify mutants [--backend cpu|gpu] [--list] [--mutant NAME]\n"
             "                        [--model NAME] [--report-json FILE] [--report-md FILE]\n"
             "                        [--jobs N] [--shard K/N] [--reference cpu|gpu|auto]\n"
             "  --backend B          cpu (default) or gpu\n"
             "  --list               print the planted bugs and exit\n"
             "  --mutant NAME        run only this planted bug\n"
             "  --report-json FILE   write the JSON report to FILE\n"
             "  --report-md FILE     write a Markdown table to FILE\n"
             "  -j, --jobs N         threads (default: the processors available)\n"
             "  --shard K/N          run the K-th of N shares of the planted bugs (and the\n"
             "                       correct kernels); --report-json writes a partial report\n"
             "                       that `mxverify report merge` joins");
        mxv_print_model_help(stdout, "the device's own (mxverify kernels --help)");
        mxv_print_reference_help(stdout);
        puts("  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "mutants takes no positional arguments");
    mxv_ref_mode refm;
    if ((rc = mxv_reference_parse(ref, &refm)) != 0)
        return rc;
    if ((rc = mxv_jobs_apply(jobs)) != 0)
        return rc;
    mxv_shard sh;
    if ((rc = mxv_shard_parse(shard, &sh)) != 0)
        return rc;
    if (sh.on && !json)
        return mxv_error(MXV_EXIT_USAGE, "--shard needs --report-json FILE (the partial "
                                         "report)");
    int count;
    const mxk_mutant_info *tab = mxk_mutant_table(&count);
    if (list) {
        for (int i = 0; i < count; i++)
            printf("%2d  %-18s %s\n", tab[i].id, tab[i].name, tab[i].what);
        return MXV_EXIT_OK;
    }
    if (only && !mxk_mutant_by_name(only))
        return mxv_error(MXV_EXIT_USAGE, "--mutant '%s' is not a planted bug", only);
    mxv_runner r;
    const char *device;
    if ((rc = mxv_runner_backend(backend, &r, &device)) != 0 ||
        (rc = mxv_reference_apply(refm, r.ops != mxk_cpu_ops(), NULL)) != 0)
        return rc;
    r.cpu = NULL; /* planted bugs are judged against the reference only */
    char merr[256];
    if (mxv_runner_set_model(&r, model, merr, sizeof merr) != 0)
        return mxv_error(MXV_EXIT_USAGE, "%s", merr);
    r.chain = 1;

    /* the correct kernels first */
    mxv_rows base = {NULL, 0, 0};
    if ((rc = run_all(&r, &base)) != 0) {
        mxv_rows_free(&base);
        return rc;
    }
    size_t base_fail = 0;
    int base_l2 = 0, base_ac = 0, base_ai = 0;
    for (size_t i = 0; i < base.n; i++) {
        if (base.rows[i].informational) {
            base_l2 |= mxv_judge_peer_l2_fails(&base.rows[i].j);
            base_ac |= mxv_judge_peer_allclose_fails(&base.rows[i].j);
            base_ai |= mxv_judge_peer_aiter_fails(&base.rows[i].j);
        }
        const mxv_judge *bj = &base.rows[i].j;
        if (base.rows[i].informational &&
            (mxv_judge_peer_l2_fails(bj) || mxv_judge_peer_allclose_fails(bj) ||
             mxv_judge_peer_aiter_fails(bj)))
            fprintf(stderr, "mxverify: mutants: note: a peer rule rejects the correct "
                            "kernels on %s (rel L2 %.3g, allclose %s, aiter %.3g)\n",
                    base.rows[i].case_name, bj->rel_l2, bj->allclose ? "yes" : "no",
                    bj->aiter_mismatch);
        if (!mxv_row_pass(&base.rows[i])) {
            base_fail++;
            fprintf(stderr, "mxverify: mutants: the correct kernels fail %s / %s\n",
                    base.rows[i].case_name, base.rows[i].kernel);
        }
    }

    outcome *o = calloc((size_t)count, sizeof *o);
    const char **names = calloc((size_t)count, sizeof *names);
    size_t *positions = calloc((size_t)count, sizeof *positions), total = 0;
    int n = 0;
    for (int i = 0; i < count; i++) {
        if (only && strcmp(only, tab[i].name))
            continue;
        if (!mxv_shard_has(&sh, total++))
            continue;
        names[n] = tab[i].name;
        positions[n] = total - 1;
        outcome *x = &o[n++];
        x->id = tab[i].id;
        x->name = tab[i].name;
        x->what = tab[i].what;
        x->kernels = tab[i].kernels;
        mxv_rows rows = {NULL, 0, 0};
        r.mutant = tab[i].id;
        if ((rc = run_all(&r, &rows)) != 0) {
            mxv_rows_free(&rows);
            mxv_rows_free(&base);
            free(o);
            free(names);
            free(positions);
            return rc;
        }
        for (size_t j = 0; j < rows.n; j++) {
            const mxv_row *w = &rows.rows[j];
            /* the same row of the correct run (same cases, same order) */
            const mxv_row *b0 = j < base.n && !strcmp(base.rows[j].case_name, w->case_name) &&
                                        !strcmp(base.rows[j].kernel, w->kernel)
                                    ? &base.rows[j]
                                    : NULL;
            int fb = !w->informational && !mxv_row_pass(w);
            int fe = !w->informational && !w->j.by_bytes && b0 && b0->bit_exact &&
                     !w->bit_exact;
            x->by_bound |= fb;
            x->by_exact |= fe;
            if (!x->caught && (fb || fe)) {
                x->caught = 1;
                snprintf(x->where, sizeof x->where, "%s / %s", w->case_name, w->kernel);
                snprintf(x->how, sizeof x->how, "%s",
                         w->j.by_bytes   ? "bytes"
                         : w->j.by_equal ? "equality"
                         : fb && fe      ? "bound+bit-exact"
                         : fb         ? "bound"
                                      : "bit-exact only");
            }
            /* the peers judge the layer's routed output, as a framework
             * test does, with the kernels chained */
            if (w->informational && !strcmp(w->kernel, "moe.e2e")) {
                x->l2 |= mxv_judge_peer_l2_fails(&w->j);
                x->allclose |= mxv_judge_peer_allclose_fails(&w->j);
                x->aiter |= mxv_judge_peer_aiter_fails(&w->j);
            }
        }
        mxv_rows_free(&rows);
        fprintf(stderr, "mxverify: mutant %s: %s\n", x->name, x->caught ? "caught" : "MISSED");
    }

    int missed = 0;
    printf("%-24s %-8s %-46s %-16s %-10s %-10s %-10s\n", "planted bug", "mxverify",
           "caught on", "by", "vLLM", "torch", "aiter");
    printf("%-24s %-8s %-46s %-16s %-10s %-10s %-10s\n", "(correct kernels)",
           base_fail ? "FAIL" : "pass", "-", "-", base_l2 ? "REJECTS" : "accepts",
           base_ac ? "REJECTS" : "accepts", base_ai ? "REJECTS" : "accepts");
    for (int i = 0; i < n; i++) {
        const outcome *x = &o[i];
        missed += !x->caught;
        printf("%-24s %-8s %-46s %-16s %-10s %-10s %-10s\n", x->name,
               x->caught ? "caught" : "MISSED", x->caught ? x->where : "-",
               x->caught ? x->how : "-", x->l2 ? "caught" : "missed",
               x->allclose ? "caught" : "missed", x->aiter ? "caught" : "missed");
    }
    mxv_rows_free(&base);
    printf("mutants: %d of %d caught by mxverify; the correct kernels %s\n", n - missed, n,
           base_fail ? "FAIL" : "pass");

    if (json || md) {
        cJSON *root = cJSON_CreateArray();
        cJSON *b0 = cJSON_CreateObject();
        cJSON_AddStringToObject(b0, "mutant", "(correct kernels)");
        cJSON_AddBoolToObject(b0, "pass", !base_fail);
        cJSON_AddBoolToObject(b0, "vllm_rel_l2_rejects", base_l2);
        cJSON_AddBoolToObject(b0, "torch_allclose_rejects", base_ac);
        cJSON_AddBoolToObject(b0, "aiter_rejects", base_ai);
        cJSON_AddItemToArray(root, b0);
        char *mtext = NULL;
        size_t mlen = 0;
        FILE *mf = md ? open_memstream(&mtext, &mlen) : NULL;
        if (mf) {
            fprintf(mf, "| planted bug | what | mxverify | caught on | by (first row; all "
                        "rows) | vLLM rel-L2 < 5e-2 | torch bf16 allclose | aiter 5 %% |\n"
                        "|---|---|---|---|---|---|---|---|\n");
            fprintf(mf, "| (correct kernels) | - | %s | - | - | %s | %s | %s |\n",
                    base_fail ? "**fail**" : "pass", base_l2 ? "**rejects**" : "accepts",
                    base_ac ? "**rejects**" : "accepts", base_ai ? "**rejects**" : "accepts");
        }
        for (int i = 0; i < n; i++) {
            const outcome *x = &o[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "mutant", x->name);
            cJSON_AddStringToObject(e, "what", x->what);
            cJSON_AddBoolToObject(e, "caught", x->caught);
            cJSON_AddStringToObject(e, "caught_on", x->where);
            cJSON_AddStringToObject(e, "caught_by", x->how);
            cJSON_AddBoolToObject(e, "bound_catches", x->by_bound);
            cJSON_AddBoolToObject(e, "bit_exact_catches", x->by_exact);
            cJSON_AddBoolToObject(e, "vllm_rel_l2_catches", x->l2);
            cJSON_AddBoolToObject(e, "torch_allclose_catches", x->allclose);
            cJSON_AddBoolToObject(e, "aiter_catches", x->aiter);
            cJSON_AddItemToArray(root, e);
            if (mf)
                fprintf(mf, "| `%s` | %s | %s | %s | %s; %s | %s | %s | %s |\n", x->name,
                        x->what, x->caught ? "caught" : "**missed**",
                        x->caught ? x->where : "-", x->caught ? x->how : "-",
                        !strcmp(x->how, "bytes")      ? "bytes (equality with the model)"
                        : !strcmp(x->how, "equality") ? "equality with the model"
                        : x->by_bound && x->by_exact ? "bound and bit-exact"
                        : x->by_bound              ? "bound only"
                        : x->by_exact              ? "bit-exact only"
                                                   : "neither",
                        x->l2 ? "caught" : "missed", x->allclose ? "caught" : "missed",
                        x->aiter ? "caught" : "missed");
        }
        if (json && sh.on) {
            char err[512], config[256];
            snprintf(config, sizeof config, "backend=%s mutant=%s", r.ops->name,
                     only ? only : "-");
            if (mxv_shard_write(json, "mutants", &sh, config, total, names, positions,
                                (size_t)n, cJSON_Duplicate(root, 1), err, sizeof err) != 0)
                rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
        } else if (json) {
            char *t = cJSON_Print(root);
            char werr[512] = "out of memory";
            if (!t || mxv_out_write_text(json, t, werr, sizeof werr) != 0)
                rc = mxv_error(MXV_EXIT_INTERNAL, "%s", werr);
            cJSON_free(t);
        }
        if (mf) {
            fclose(mf);
            char werr[512] = "out of memory";
            if (!mtext || mxv_out_write_text(md, mtext, werr, sizeof werr) != 0)
                rc = mxv_error(MXV_EXIT_INTERNAL, "%s", werr);
            free(mtext);
        }
        cJSON_Delete(root);
    }
    free(o);
    free(names);
    free(positions);
    if (rc)
        return rc;
    return missed || base_fail ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
