/* cmd_drift.c -- `mxverify drift BASE_DIR TEST_DIR`: per layer, local error
 * (a bug) versus inherited drift (arithmetic); see src/model/drift.h and
 * docs/drift.md.  Exit 0 when no layer's local error leaves its
 * bound, 1 when one does, 2 usage, 3 bad input, 4 internal or I/O. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "commands.h"
#include "model/drift.h"

/* An output path may not be a directory or one of the files read. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int check_output(const char *opt, const char *path, const mxv_drift *d)
{
    struct stat st;
    if (!path)
        return 0;
    if (!*path)
        return mxv_error(MXV_EXIT_USAGE, "drift: %s: empty path", opt);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return mxv_error(MXV_EXIT_USAGE, "drift: %s %s: is a directory", opt, path);
    for (size_t i = 0; d && i < d->nlayers; i++)
        if (same_file(path, d->layers[i].base_path) || same_file(path, d->layers[i].test_path))
            return mxv_error(MXV_EXIT_USAGE, "drift: %s %s: names an input capture", opt, path);
    if (d) {
        char lp[2][2048];
        snprintf(lp[0], sizeof lp[0], "%s/logprobs.safetensors", d->base_dir);
        snprintf(lp[1], sizeof lp[1], "%s/logprobs.safetensors", d->test_dir);
        if (same_file(path, lp[0]) || same_file(path, lp[1]))
            return mxv_error(MXV_EXIT_USAGE, "drift: %s %s: names an input file", opt, path);
    }
    return 0;
}

int mxv_cmd_drift(int argc, char **argv)
{
    const char *json = NULL, *md = NULL, *svg = NULL, *top = NULL, *help = NULL,
               *quiet = NULL;
    const mxv_opt opts[] = {{"report-json", 1, &json, 0}, {"report-md", 1, &md, 0},
                            {"svg", 1, &svg, 0},          {"top", 1, &top, 0},
                            {"quiet", 0, &quiet, 'q'},    {"help", 0, &help, 'h'},
                            {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    int rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "drift");
    if (rc || help) {
        if (help)
            puts("usage: mxverify drift BASE_DIR TEST_DIR [--report-json F] [--report-md F]\n"
                 "                      [--svg F] [--top N] [-q]\n"
                 "  BASE_DIR, TEST_DIR  runs of the same model on the same prompts: moe_layer\n"
                 "                      captures (DIR/layers/*.safetensors, else DIR/*.safetensors,\n"
                 "                      paired by their \"layer\" metadata) and optionally\n"
                 "                      DIR/logprobs.safetensors (KLD at the logits)\n"
                 "  --top N             ranked entries per list (default 5)\n"
                 "  -q                  print only the verdict\n"
                 "exit: 0 no layer's local error leaves its bound, 1 one does, 2 usage, 3 bad "
                 "input, 4 I/O");
        free(pos);
        return help ? MXV_EXIT_OK : rc;
    }
    if (npos != 2) {
        free(pos);
        return mxv_error(MXV_EXIT_USAGE, "drift: expected BASE_DIR TEST_DIR, got %d argument%s",
                         npos, npos == 1 ? "" : "s");
    }
    unsigned long long ntop = 5;
    if (top && mxv_parse_uint(top, 1000000, &ntop) != 0) {
        free(pos);
        return mxv_error(MXV_EXIT_USAGE, "drift: --top '%s': expected a count", top);
    }
    if ((rc = check_output("--report-json", json, NULL)) || (rc = check_output("--report-md", md, NULL)) ||
        (rc = check_output("--svg", svg, NULL))) {
        free(pos);
        return rc;
    }
    mxv_drift d;
    char err[2048];
    rc = mxv_drift_run(pos[0], pos[1], &d, err, sizeof err);
    if (rc) {
        mxv_drift_free(&d);
        free(pos);
        return mxv_error(rc, "%s", err);
    }
    if ((rc = check_output("--report-json", json, &d)) || (rc = check_output("--report-md", md, &d)) ||
        (rc = check_output("--svg", svg, &d))) {
        mxv_drift_free(&d);
        free(pos);
        return rc;
    }
    if (quiet) {
        /* the verdict lines only */
        char *buf = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&buf, &n);
        if (m) {
            mxv_drift_print(m, &d, (int)ntop);
            fclose(m);
            char *v = buf ? strstr(buf, "verdict:") : NULL;
            char *end = v ? strstr(v, "\n\n") : NULL;
            if (v)
                printf("%.*s\n", end ? (int)(end - v) : (int)strlen(v), v);
            free(buf);
        }
    } else {
        mxv_drift_print(stdout, &d, (int)ntop);
    }
    if (json && mxv_drift_write_json(json, &d, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (!rc && md && mxv_drift_write_md(md, &d, (int)ntop, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (!rc && svg && mxv_drift_write_svg(svg, &d, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (!rc)
        rc = d.first_bug >= 0 ? MXV_EXIT_FAIL : MXV_EXIT_OK;
    mxv_drift_free(&d);
    free(pos);
    return rc;
}
