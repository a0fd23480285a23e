/* mreport.h -- reports of `mxverify model compare` and `model score`:
 * text (stdout), JSON and Markdown; files written atomically. */
#ifndef MXV_MODEL_MREPORT_H
#define MXV_MODEL_MREPORT_H

#include <stdio.h>
#include "model/compare.h"
#include "model/score.h"
#include "model/tolerance.h"

/* A judgement against golden tolerances (or a --threshold). */
typedef struct {
    int judged;           /* 0: no tolerance given: reported, not judged */
    int pass;
    char why[400];        /* every failed check, "; "-separated          */
    char entry[160];      /* "model/policy/device" or "--threshold"      */
    char golden[512];     /* the golden file, or ""                      */
} mxv_mverdict;

/* Judges the "all" group of c against e (NULL: not judged). */
void mxv_compare_judge(const mxv_compare *c, const mxv_mtol_entry *e,
                       mxv_mverdict *v);

void mxv_compare_text(FILE *f, const mxv_compare *c, const char *base,
                      const char *test, const mxv_mverdict *v);
/* JSON text (caller frees) or NULL (memory). */
char *mxv_compare_json(const mxv_compare *c, const char *base,
                       const char *test, const mxv_mverdict *v);
char *mxv_compare_md(const mxv_compare *c, const char *base, const char *test,
                     const mxv_mverdict *v);

/* threshold: NaN when none (then not judged); alpha: McNemar's level. */
void mxv_score_judge(const mxv_score *s, double threshold, double alpha,
                     mxv_mverdict *v);
void mxv_score_text(FILE *f, const mxv_score *s, const mxv_samples *test,
                    const mxv_samples *base, double threshold, double alpha,
                    const mxv_mverdict *v);
char *mxv_score_json(const mxv_score *s, const mxv_samples *test,
                     const mxv_samples *base, double threshold, double alpha,
                     const mxv_mverdict *v);
char *mxv_score_md(const mxv_score *s, const mxv_samples *test,
                   const mxv_samples *base, double threshold, double alpha,
                   const mxv_mverdict *v);

/* Writes text to path through the one safe writer (src/lib/out.h): 0, or
 * -1 with err. */
int mxv_write_file_atomic(const char *path, const char *text, char *err,
                          size_t len);

#endif
