/* cmd_kernels.c -- `mxverify kernels`, `mxverify gate`, `mxverify golden`:
 * run a backend's kernels on a suite, judge every output against the
 * reference, and (gate) against golden tolerances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "backend_gpu.h"
#include "cli.h"
#include "commands.h"
#include "golden.h"
#include "report.h"
#include "runner.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The backend by name; exit code 77 is not used here: a GPU request without
 * a GPU is an error for the CLI (tests decide to skip on their own). */
static int pick_backend(const char *name, mxv_runner *r, const char **device)
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

/* Runs the suite (or one case of it); 0 or an exit code. */
static int run_suite(const char *suite, const char *only, const mxv_runner *r,
                     mxv_rows *rows, int progress)
{
    size_t n;
    const mxv_case_def *cases = mxv_suite_cases(suite, &n);
    if (!cases)
        return mxv_error(MXV_EXIT_USAGE, "--suite '%s': one of %s", suite,
                         mxv_suite_names());
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, cases[i].name))
            continue;
        found = 1;
        char err[256];
        double t0 = now();
        if (mxv_run_case(&cases[i], r, rows, err, sizeof err) != 0)
            return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
        if (progress)
            fprintf(stderr, "mxverify: %s done in %.1f s\n", cases[i].name, now() - t0);
    }
    if (!found)
        return mxv_error(MXV_EXIT_USAGE, "--case '%s' is not in suite %s", only, suite);
    return 0;
}

static int parse_seed(const char *s, uint64_t *out)
{
    unsigned long long v = 0;
    if (s && mxv_parse_uint(s, ~0ull, &v) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--seed '%s' is not an integer", s);
    *out = v;
    return 0;
}

int mxv_cmd_kernels(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *seed = NULL, *only = NULL,
               *help = NULL, *json = NULL, *mutant = NULL, *seeds = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"suite", 1, &suite, 0},
                            {"seed", 1, &seed, 0},       {"case", 1, &only, 0},
                            {"seeds", 1, &seeds, 0},
                            {"report-json", 1, &json, 0}, {"mutant", 1, &mutant, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "kernels");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        puts("usage: mxverify kernels [--backend cpu|gpu] [--suite default|full|smoke]\n"
             "                        [--seed N] [--seeds COUNT] [--case NAME]\n"
             "                        [--mutant NAME] [--report-json FILE]\n"
             "  --seeds COUNT  run the suite COUNT times, seeds N, N+1, ... (one table\n"
             "                 line per failing row and a summary)");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "kernels takes no positional arguments");
    mxv_runner r;
    const char *device;
    if ((rc = pick_backend(backend, &r, &device)) != 0)
        return rc;
    if ((rc = parse_seed(seed, &r.seed_offset)) != 0)
        return rc;
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
        double t0 = now();
        for (unsigned long long sd = 0; sd < nseeds; sd++) {
            mxv_runner rs = r;
            rs.seed_offset = r.seed_offset + sd;
            mxv_rows rows = {NULL, 0, 0};
            if ((rc = run_suite(suite, only, &rs, &rows, 0)) != 0) {
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
               suite, r.ops->name, nseeds, total, failed, outside, now() - t0);
        printf("%zu passed, %zu failed\n", total - failed, failed);
        return failed ? MXV_EXIT_FAIL : MXV_EXIT_OK;
    }
    mxv_rows rows = {NULL, 0, 0};
    double t0 = now();
    if ((rc = run_suite(suite, only, &r, &rows, 1)) != 0) {
        mxv_rows_free(&rows);
        return rc;
    }
    mxv_verdict *v = calloc(rows.n ? rows.n : 1, sizeof *v);
    for (size_t i = 0; i < rows.n; i++) {
        v[i].pass = mxv_row_pass(&rows.rows[i]);
        snprintf(v[i].why, sizeof v[i].why, "%s",
                 v[i].pass ? "ok" : rows.rows[i].error ? rows.rows[i].message
                 : rows.rows[i].backends_agree == 0 ? "GPU differs from the CPU backend"
                 : rows.rows[i].j.by_bytes ? "wrong bytes" : "outside the bound");
    }
    printf("mxverify kernels: suite %s on %s (%s)%s\n", suite, r.ops->name, device,
           r.mutant ? ", with a planted bug" : "");
    char seedstr[32];
    snprintf(seedstr, sizeof seedstr, "%llu", (unsigned long long)r.seed_offset);
    mxv_report rep = {"mxverify kernels", suite, r.ops->name, device, NULL, &rows, v,
                      now() - t0, seedstr};
    mxv_report_table(stdout, &rep);
    for (size_t i = 0; i < rows.n; i++)
        if (!v[i].pass && rows.rows[i].j.nbad)
            mxv_judge_print_bad(stdout, &rows.rows[i].j);
    char err[512];
    if (json && mxv_report_json(json, &rep, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    size_t p, f;
    mxv_report_counts(&rep, &p, &f);
    free(v);
    mxv_rows_free(&rows);
    return rc ? rc : f ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}

/* ---- gate -------------------------------------------------------------- */

#define DEFAULT_GOLDEN_DIR "golden"

/* The golden directory: $MXVERIFY_GOLDEN_DIR, else ./golden when it
 * exists (a source tree), else the source tree mxverify was built from. */
static const char *golden_dir(void)
{
    const char *dir = getenv("MXVERIFY_GOLDEN_DIR");
    if (dir && *dir)
        return dir;
    FILE *f = fopen(DEFAULT_GOLDEN_DIR "/MANIFEST", "r");
    if (f) {
        fclose(f);
        return DEFAULT_GOLDEN_DIR;
    }
    return MXV_SRC_GOLDEN_DIR;
}

static void default_golden(const char *suite, const char *backend, char *buf, size_t len)
{
    snprintf(buf, len, "%s/gate-%s-%s.json", golden_dir(), suite,
             backend ? backend : "cpu");
}

int mxv_cmd_gate(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *golden = NULL, *rj = NULL,
               *rm = NULL, *ju = NULL, *seed = NULL, *help = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"suite", 1, &suite, 0},
                            {"golden", 1, &golden, 0},   {"report-json", 1, &rj, 0},
                            {"report-md", 1, &rm, 0},    {"junit", 1, &ju, 0},
                            {"seed", 1, &seed, 0},       {"help", 0, &help, 'h'},
                            {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "gate");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        puts("usage: mxverify gate [--suite default] [--golden FILE] [--backend cpu|gpu]\n"
             "                     [--report-json F] [--report-md F] [--junit F] [--seed N]");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "gate takes no positional arguments");
    char gpath[4096];
    if (!golden) {
        default_golden(suite, backend, gpath, sizeof gpath);
        golden = gpath;
    }
    mxv_golden g;
    char err[512];
    if (mxv_golden_load(golden, &g, err, sizeof err) != 0)
        return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
    if (strcmp(g.suite, suite)) {
        mxv_golden_free(&g);
        return mxv_error(MXV_EXIT_BADINPUT, "%s: field \"suite\" is \"%s\", the gate "
                                            "runs suite \"%s\"", golden, g.suite, suite);
    }
    mxv_runner r;
    const char *device;
    if ((rc = pick_backend(backend, &r, &device)) != 0 ||
        (rc = parse_seed(seed, &r.seed_offset)) != 0) {
        mxv_golden_free(&g);
        return rc;
    }
    mxv_rows rows = {NULL, 0, 0};
    double t0 = now();
    if ((rc = run_suite(suite, NULL, &r, &rows, 1)) != 0) {
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
                      now() - t0, seedstr};
    mxv_report_table(stdout, &rep);
    for (size_t i = 0; i < rows.n; i++)
        if (!v[i].pass && rows.rows[i].j.nbad)
            mxv_judge_print_bad(stdout, &rows.rows[i].j);
    if (rj && mxv_report_json(rj, &rep, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (rm && mxv_report_markdown(rm, &rep, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (ju && mxv_report_junit(ju, &rep, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    size_t p, f;
    mxv_report_counts(&rep, &p, &f);
    free(v);
    mxv_rows_free(&rows);
    mxv_golden_free(&g);
    return rc ? rc : f ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}

/* ---- golden update / verify ------------------------------------------- */

int mxv_cmd_golden(int argc, char **argv)
{
    const char *backend = NULL, *suite = "default", *golden = NULL, *loosen = NULL,
               *reason = NULL, *manifest = NULL, *help = NULL;
    const mxv_opt opts[] = {{"backend", 1, &backend, 0}, {"suite", 1, &suite, 0},
                            {"golden", 1, &golden, 0},   {"allow-loosen", 0, &loosen, 0},
                            {"reason", 1, &reason, 0},   {"manifest", 1, &manifest, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "golden");
    const char *act = npos ? pos[0] : NULL;
    free(pos);
    if (rc)
        return rc;
    if (help || !act) {
        puts("usage: mxverify golden update [--suite default] [--golden FILE]\n"
             "                              [--backend cpu|gpu] [--allow-loosen --reason TEXT]\n"
             "       mxverify golden verify [--manifest golden/MANIFEST]");
        return help ? MXV_EXIT_OK : MXV_EXIT_USAGE;
    }
    if (npos > 1)
        return mxv_error(MXV_EXIT_USAGE, "golden %s takes no further arguments", act);
    if (!strcmp(act, "verify")) {
        char mpath[4096];
        snprintf(mpath, sizeof mpath, "%s/MANIFEST", golden_dir());
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
    char gpath[4096], err[512];
    if (!golden) {
        default_golden(suite, backend, gpath, sizeof gpath);
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
    if ((rc = pick_backend(backend, &r, &device)) != 0) {
        mxv_golden_free(&g);
        return rc;
    }
    mxv_rows rows = {NULL, 0, 0};
    if ((rc = run_suite(suite, NULL, &r, &rows, 1)) != 0) {
        mxv_golden_free(&g);
        mxv_rows_free(&rows);
        return rc;
    }
    mxv_golden_entry *ne = calloc(rows.n ? rows.n : 1, sizeof *ne);
    size_t loosened = 0;
    for (size_t i = 0; i < rows.n; i++) {
        const mxv_row *w = &rows.rows[i];
        if (w->error || !mxv_row_pass(w)) {
            /* the message names the row: print it before the rows are freed */
            rc = mxv_error(MXV_EXIT_FAIL, "golden update: %s / %s fails on its own (%s); "
                                          "golden tolerances are only taken from a "
                                          "correct run",
                           w->case_name, w->kernel, w->error ? w->message : "elements outside");
            free(ne);
            mxv_golden_free(&g);
            mxv_rows_free(&rows);
            return rc;
        }
        ne[i] = mxv_golden_from_row(w);
        const mxv_golden_entry *old = have ? mxv_golden_find(&g, w->case_name, w->kernel) : NULL;
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
    free(g.e);
    g.e = ne;
    g.n = rows.n;
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
        FILE *mf = fopen(manifest, "r");
        if (mf) {
            fclose(mf);
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
