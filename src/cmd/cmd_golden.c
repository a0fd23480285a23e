/* cmd_golden.c -- `mxverify golden update|verify`: write golden tolerances
 * from a correct run, and check the manifest of golden data files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "commands.h"
#include "golden.h"
#include "runner.h"

int mxv_cmd_golden(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *golden = NULL, *loosen = NULL,
               *reason = NULL, *manifest = NULL, *help = NULL, *model = NULL,
               *only = NULL, *ref = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"suite", 1, &suite, 0},
                            {"reference", 1, &ref, 0},
                            {"golden", 1, &golden, 0},   {"allow-loosen", 0, &loosen, 0},
                            {"reason", 1, &reason, 0},   {"manifest", 1, &manifest, 0},
                            {"model", 1, &model, 0},     {"case", 1, &only, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "golden");
    const char *act = npos ? pos[0] : NULL;
    free(pos);
    if (rc)
        return rc;
    if (help || !act) {
        printf("usage: mxverify golden update [--suite NAME] [--golden FILE]\n"
               "                              [--backend cpu|gpu] [--allow-loosen --reason TEXT]\n"
               "                              [--model M] [--case NAME]\n"
               "                              [--reference cpu|gpu|auto]\n"
               "       mxverify golden verify [--manifest FILE]\n"
               "  --suite NAME         one of %s (default default)\n"
               "  --golden FILE        the golden file to write (default as for gate)\n"
               "  --backend B          cpu (default) or gpu\n"
               "  --allow-loosen       accept thresholds looser than the file's\n"
               "  --reason TEXT        why (recorded in the file's history)\n"
               "  --manifest FILE      the manifest to verify (default GOLDEN_DIR/MANIFEST)\n"
               "  --model M            accumulation model(s) of the GEMMs, M or M8,M16\n"
               "                       (default: the device's own; mxverify kernels --help);\n"
               "                       recorded in the file with the device architecture\n"
               "  --case NAME          update only this case's entries (the others stay\n"
               "                       when the file was made for this device and model)\n",
               mxv_suite_names());
        mxv_print_reference_help(stdout);
        puts("  -h, --help           this text");
        return help ? MXV_EXIT_OK : MXV_EXIT_USAGE;
    }
    if (npos > 1)
        return mxv_error(MXV_EXIT_USAGE, "golden %s takes no further arguments", act);
    if (!strcmp(act, "verify")) {
        char mpath[4096];
        snprintf(mpath, sizeof mpath, "%s/MANIFEST", mxv_golden_dir());
        int bad = mxv_manifest_verify(manifest ? manifest : mpath, stdout);
        if (bad < 0)
            return mxv_error(MXV_EXIT_BADINPUT, "cannot read the manifest %s",
                             manifest ? manifest : mpath);
        printf("golden verify: %s\n", bad ? "MISMATCH" : "every file matches its sha256");
        return bad ? MXV_EXIT_FAIL : MXV_EXIT_OK;
    }
    if (strcmp(act, "update"))
        return mxv_error(MXV_EXIT_USAGE, "golden: unknown action '%s' (update, verify)", act);
    if (loosen && (!reason || !*reason))
        return mxv_error(MXV_EXIT_USAGE, "golden update: --allow-loosen needs --reason TEXT");
    mxv_ref_mode refm;
    if ((rc = mxv_reference_parse(ref, &refm)) != 0)
        return rc;
    char gpath[4096], err[512];
    if (!golden) {
        mxv_golden_default_path(suite, backend, gpath, sizeof gpath);
        golden = gpath;
    }
    mxv_golden g;
    int have = mxv_golden_load(golden, &g, err, sizeof err) == 0;
    if (!have) {
        struct stat sb;
        if (lstat(golden, &sb) == 0) /* exists but is broken: refuse to overwrite */
            return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
        memset(&g, 0, sizeof g);
        snprintf(g.suite, sizeof g.suite, "%s", suite);
        snprintf(g.backend, sizeof g.backend, "%s", backend ? backend : "cpu");
    }
    mxv_runner r;
    const char *device;
    if ((rc = mxv_runner_backend(backend, &r, &device)) != 0 ||
        (rc = mxv_reference_apply(refm, r.ops != mxk_cpu_ops(), NULL)) != 0) {
        mxv_golden_free(&g);
        return rc;
    }
    if (mxv_runner_set_model(&r, model, err, sizeof err) != 0) {
        mxv_golden_free(&g);
        return mxv_error(MXV_EXIT_USAGE, "%s", err);
    }
    /* the file now records this run's device and model; rows judged by
     * another model or on another architecture are replaced, not compared */
    char mname[96];
    mxv_runner_model_name(&r, mname, sizeof mname);
    const char *arch = mxv_runner_arch(r.ops);
    int same = !strcmp(g.arch, arch) && !strcmp(g.model, mname);
    if (have && !same) {
        char why[400];
        snprintf(why, sizeof why, "recorded for %s, model %s (was %s, model %s)", arch,
                 mname, g.arch[0] ? g.arch : "unrecorded",
                 g.model[0] ? g.model : "unrecorded");
        mxv_golden_note(&g, "device", why);
    }
    snprintf(g.arch, sizeof g.arch, "%s", arch);
    snprintf(g.model, sizeof g.model, "%s", mname);
    mxv_rows rows = {NULL, 0, 0};
    if ((rc = mxv_run_suite(suite, only, &r, &rows, 1)) != 0) {
        mxv_golden_free(&g);
        mxv_rows_free(&rows);
        return rc;
    }
    /* --case: the entries of the other cases stay (when the file was made
     * for this device and model), after the new ones */
    size_t keep = 0;
    for (size_t i = 0; only && have && same && i < g.n; i++)
        keep += strcmp(g.e[i].case_name, only) != 0;
    mxv_golden_entry *ne = calloc(rows.n + keep ? rows.n + keep : 1, sizeof *ne);
    size_t loosened = 0;
    for (size_t i = 0; i < rows.n; i++) {
        const mxv_row *w = &rows.rows[i];
        if (w->error || !mxv_row_pass(w)) {
            /* the message names the row: print it before the rows are freed */
            rc = mxv_error(MXV_EXIT_FAIL, "golden update: %s / %s fails on its own (%s); "
                                          "golden tolerances are only taken from a "
                                          "correct run",
                           w->case_name, w->kernel,
                           w->error ? w->message
                           : w->not_device ? "within bound, not the device's arithmetic"
                                           : "elements outside");
            free(ne);
            mxv_golden_free(&g);
            mxv_rows_free(&rows);
            return rc;
        }
        ne[i] = mxv_golden_from_row(w);
        const mxv_golden_entry *old =
            have && same ? mxv_golden_find(&g, w->case_name, w->kernel) : NULL;
        char what[160];
        if (old && mxv_golden_looser(old, &ne[i], what, sizeof what)) {
            if (!loosen) {
                rc = mxv_error(MXV_EXIT_FAIL,
                               "golden update: %s / %s would loosen %s; rerun with "
                               "--allow-loosen --reason TEXT",
                               w->case_name, w->kernel, what);
                free(ne);
                mxv_golden_free(&g);
                mxv_rows_free(&rows);
                return rc;
            }
            loosened++;
        }
    }
    size_t nn = rows.n;
    for (size_t i = 0; only && have && same && i < g.n; i++)
        if (strcmp(g.e[i].case_name, only) != 0)
            ne[nn++] = g.e[i];
    free(g.e);
    g.e = ne;
    g.n = nn;
    if (loosened) {
        char note[600];
        snprintf(note, sizeof note, "%zu thresholds loosened: %s", loosened, reason);
        mxv_golden_note(&g, "loosen", note);
    } else {
        mxv_golden_note(&g, have ? "update" : "create", reason);
    }
    if (mxv_golden_save(golden, &g, err, sizeof err) != 0) {
        mxv_golden_free(&g);
        mxv_rows_free(&rows);
        return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    }
    /* keep the manifest in step when the file lives in a golden directory */
    {
        char manifest[4200];
        const char *slash = strrchr(golden, '/');
        size_t dl = slash ? (size_t)(slash - golden + 1) : 0;
        snprintf(manifest, sizeof manifest, "%.*sMANIFEST", (int)dl, golden);
        struct stat ms;
        if (stat(manifest, &ms) == 0 && S_ISREG(ms.st_mode)) {
            if (mxv_manifest_update(manifest, golden + dl, err, sizeof err) != 0)
                rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
        }
    }
    printf("golden update: wrote %zu entries to %s%s\n", g.n, golden,
           loosened ? " (loosened, reason recorded)" : "");
    mxv_golden_free(&g);
    mxv_rows_free(&rows);
    return rc ? rc : MXV_EXIT_OK;
}
