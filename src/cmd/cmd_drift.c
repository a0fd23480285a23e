/* cmd_drift.c -- `mxverify drift BASE_DIR TEST_DIR`: per layer, local error
 * (a bug) versus inherited drift (arithmetic); see src/model/drift.h and
 * docs/drift.md.  Exit 0 when no layer's local error leaves its
 * bound, 1 when one does, 2 usage, 3 bad input, 4 internal or I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "commands.h"
#include "model/drift.h"
#include "out.h"

/* An output path may not be a directory or one of the files read. */
static int check_output(const char *opt, const char *path)
{
    struct stat st;
    if (!path)
        return 0;
    if (!*path)
        return mxv_error(MXV_EXIT_USAGE, "drift: %s: empty path", opt);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return mxv_error(MXV_EXIT_USAGE, "drift: %s %s: is a directory", opt, path);
    if (mxv_out_is_input(path))
        return mxv_error(MXV_EXIT_USAGE, "drift: %s %s names an input of this run", opt, path);
    return 0;
}

/* Every file the run read, so that no report overwrites one. */
static void register_inputs(const mxv_drift *d)
{
    char lp[4096];
    for (size_t i = 0; i < d->nlayers; i++) {
        mxv_out_register_input(d->layers[i].base_path);
        mxv_out_register_input(d->layers[i].test_path);
    }
    snprintf(lp, sizeof lp, "%s/logprobs.safetensors", d->base_dir);
    mxv_out_register_input(lp);
    snprintf(lp, sizeof lp, "%s/logprobs.safetensors", d->test_dir);
    mxv_out_register_input(lp);
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
        if (help && !rc)
            puts("usage: mxverify drift BASE_DIR TEST_DIR [options]\n"
                 "  BASE_DIR, TEST_DIR  runs of the same model on the same prompts: moe_layer\n"
                 "                      captures (DIR/layers/*.safetensors, else DIR/*.safetensors,\n"
                 "                      paired by their \"layer\" metadata) and optionally\n"
                 "                      DIR/logprobs.safetensors (KLD at the logits)\n"
                 "  --report-json F     write the JSON report to F\n"
                 "  --report-md F       write a Markdown report to F\n"
                 "  --svg F             the per-layer error growth as an SVG chart\n"
                 "  --top N             ranked entries per list (default 5)\n"
                 "  -q, --quiet         print only the verdict\n"
                 "  -h, --help          this text\n"
                 "exit: 0 no layer's local error leaves its bound, 1 one does, 2 usage, 3 bad "
                 "input, 4 I/O");
        free(pos);
        return rc ? rc : MXV_EXIT_OK;
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
    if ((rc = check_output("--report-json", json)) || (rc = check_output("--report-md", md)) ||
        (rc = check_output("--svg", svg))) {
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
    register_inputs(&d);
    if ((rc = check_output("--report-json", json)) || (rc = check_output("--report-md", md)) ||
        (rc = check_output("--svg", svg))) {
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
