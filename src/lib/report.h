/* report.h -- gate and kernel-run reports: the text table on stdout, and
 * JSON, Markdown (a CI step summary) and JUnit XML files, each written
 * atomically (no half-written report ever exists at the path). */
#ifndef MXV_REPORT_H
#define MXV_REPORT_H

#include <stdio.h>
#include "suite.h"
#include "model/gatecheck.h"

/* A row's verdict: pass, and the reason when it fails (from the golden
 * file or from the row itself). */
typedef struct {
    int pass;
    char why[200];
} mxv_verdict;

typedef struct {
    const char *title;       /* "mxverify gate", "mxverify kernels"        */
    const char *suite, *backend, *device, *golden;
    const mxv_rows *rows;
    const mxv_verdict *v;    /* one per row                                */
    double seconds;
    /* model checks judged in the same run (gate --compare-base ...): each
     * one verdict, counted with the rows */
    const mxv_model_check *checks;
    size_t nchecks;
    const char *seed;        /* recorded in the provenance (NULL: none)    */
} mxv_report;

void mxv_report_table(FILE *f, const mxv_report *r);
int mxv_report_json(const char *path, const mxv_report *r, char *err, size_t len);
/* The JSON report as a cJSON tree (the caller deletes it). */
struct cJSON *mxv_report_json_object(const mxv_report *r);
int mxv_report_markdown(const char *path, const mxv_report *r, char *err, size_t len);
int mxv_report_junit(const char *path, const mxv_report *r, char *err, size_t len);
/* The text table and the first bad elements of each failing row on f,
 * then each named report file (NULL: not written).  The exit code: 0 when
 * every row passes, 1 when a row fails, 4 when a file cannot be written
 * (one error line each). */
int mxv_report_emit(FILE *f, const mxv_report *r, const char *json, const char *md,
                    const char *junit);
/* Passed and failed counts. */
void mxv_report_counts(const mxv_report *r, size_t *pass, size_t *fail);

#endif
