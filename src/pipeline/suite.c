/* suite.c -- the kernel suites and result rows (see suite.h). */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "suite.h"

/* Small and adversarial shapes, then MiniMax-M3 TP8 and EP8 shards at a few
 * token counts: under a minute on the CPU backend of a 2-core machine. */
static const mxv_case_def suite_default[] = {
    {"small-w8a8-real", "custom:256,128,16", 16, "w8a8-mxfp8", "real", 1},
    {"small-w8a8-spread", "custom:256,128,16", 16, "w8a8-mxfp8", "spread", 2},
    {"small-w8a8-cancel", "custom:256,128,16", 8, "w8a8-mxfp8", "cancel", 3},
    {"small-w8a8-tiny", "custom:256,128,16", 8, "w8a8-mxfp8", "tiny", 4},
    {"small-bf16-real", "custom:256,128,16", 16, "bf16", "real", 5},
    {"tp8-t1-hybrid", "m3-tp8", 1, "hybrid", "real", 6},
    {"tp8-t9-hybrid", "m3-tp8", 9, "hybrid", "real", 7},
    {"tp8-t64-w8a8", "m3-tp8", 64, "w8a8-mxfp8", "real", 8},
    {"ep8-t8-hybrid", "m3-ep8", 8, "hybrid", "real", 9},
};

/* The shards at production token counts; meant for a GPU. */
static const mxv_case_def suite_full[] = {
    {"tp8-t1", "m3-tp8", 1, "w8a8-mxfp8", "real", 11},
    {"tp8-t8", "m3-tp8", 8, "w8a8-mxfp8", "real", 12},
    {"tp8-t9", "m3-tp8", 9, "w8a8-mxfp8", "real", 13},
    {"tp8-t64", "m3-tp8", 64, "w8a8-mxfp8", "real", 14},
    {"tp8-t512", "m3-tp8", 512, "w8a8-mxfp8", "real", 15},
    {"tp8-t832", "m3-tp8", 832, "w8a8-mxfp8", "real", 16},
    {"tp8-t1024", "m3-tp8", 1024, "w8a8-mxfp8", "real", 17},
    {"tp8-t1-bf16", "m3-tp8", 1, "bf16", "real", 18},
    {"tp8-t1024-bf16", "m3-tp8", 1024, "bf16", "real", 19},
    {"ep8-t1", "m3-ep8", 1, "bf16", "real", 21},
    {"ep8-t8", "m3-ep8", 8, "bf16", "real", 22},
    {"ep8-t9", "m3-ep8", 9, "bf16", "real", 23},
    {"ep8-t64", "m3-ep8", 64, "bf16", "real", 24},
    {"ep8-t512", "m3-ep8", 512, "bf16", "real", 25},
    {"ep8-t832", "m3-ep8", 832, "w8a8-mxfp8", "real", 26},
    {"ep8-t1024", "m3-ep8", 1024, "bf16", "real", 27},
};

/* The small cases only: seconds, for mutant sweeps and many seeds. */
static const mxv_case_def suite_smoke[] = {
    {"small-w8a8-real", "custom:256,128,16", 16, "w8a8-mxfp8", "real", 1},
    {"small-w8a8-spread", "custom:256,128,16", 16, "w8a8-mxfp8", "spread", 2},
    {"small-bf16-real", "custom:256,128,16", 16, "bf16", "real", 5},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Cases that give every planted bug a chance to show (mxverify mutants). */
static const mxv_case_def suite_mutants[] = {
    {"mut-w8a8-wide", "custom:256,128,16", 16, "w8a8-mxfp8", "wide", 31},
    {"mut-w8a8-real", "custom:512,128,16", 24, "w8a8-mxfp8", "real", 32},
    {"mut-w8a8-zero-scale", "custom:256,128,16", 8, "w8a8-mxfp8", "zero-scale", 33},
    {"mut-bf16-wide", "custom:256,128,16", 16, "bf16", "wide", 34},
    /* token 0's activation scale bytes 1: its GEMM partials are FP32
     * subnormals (flush-to-zero bugs show here) */
    {"mut-w8a8-subnormal", "custom:256,128,16", 8, "w8a8-mxfp8", "subnormal-scale", 35},
};

const mxv_case_def *mxv_suite_cases(const char *suite, size_t *n)
{
    if (!strcmp(suite, "default")) {
        *n = N(suite_default);
        return suite_default;
    }
    if (!strcmp(suite, "full")) {
        *n = N(suite_full);
        return suite_full;
    }
    if (!strcmp(suite, "smoke")) {
        *n = N(suite_smoke);
        return suite_smoke;
    }
    if (!strcmp(suite, "mutants")) {
        *n = N(suite_mutants);
        return suite_mutants;
    }
    *n = 0;
    return NULL;
}

const char *mxv_suite_names(void) { return "default, full, smoke, mutants"; }

mxv_row *mxv_rows_push(mxv_rows *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        mxv_row *nr = realloc(r->rows, cap * sizeof *nr);
        if (!nr)
            return NULL;
        r->rows = nr;
        r->cap = cap;
    }
    mxv_row *w = &r->rows[r->n++];
    memset(w, 0, sizeof *w);
    return w;
}

void mxv_rows_free(mxv_rows *r)
{
    free(r->rows);
    memset(r, 0, sizeof *r);
}

int mxv_row_pass(const mxv_row *r)
{
    if (r->informational)
        return !r->error;
    return !r->error && r->j.outside == 0 && r->backends_agree != 0 &&
           r->not_device == 0;
}

int mxv_suite_list(const char *suite, FILE *f)
{
    size_t n;
    const mxv_case_def *c = mxv_suite_cases(suite, &n);
    if (!c)
        return mxv_error(MXV_EXIT_USAGE, "--suite '%s': one of %s", suite,
                         mxv_suite_names());
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%-22s %-20s %5zu  %-11s %-10s seed %llu\n", c[i].name, c[i].shape,
                c[i].tokens, c[i].policy, c[i].family, (unsigned long long)c[i].seed);
    return 0;
}
