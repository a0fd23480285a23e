/* run_internal.h -- what run.c shares with its format readers run_jsonl.c
 * and run_safetensors.c; private to src/model/run*.c. */
#ifndef MXV_MODEL_RUN_INTERNAL_H
#define MXV_MODEL_RUN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cli.h"
#include "model/run.h"

/* err: one line in the caller's buffer, returning an MXV_EXIT_* code */
#define err_set mxv_errc
#define OOM(err, len) err_set(err, len, MXV_EXIT_INTERNAL, "out of memory")

/* FNV-1a hash of s (token table, prompt keys) */
uint64_t mxv_run_fnv(const char *s);
/* run storage: a new request / position (zeroed; NULL when out of memory),
 * a top-k entry (0 or -1), a string owned by the run (NULL: out of memory) */
mxv_req *mxv_run_add_req(mxv_run *r);
mxv_pos *mxv_run_add_pos(mxv_req *q, size_t *cap);
int mxv_run_add_top(mxv_run *r, int64_t tok, double lp);
const char *mxv_run_keep_str(mxv_run *r, const char *s);
/* Copies user text for a message: control bytes and '"' as \xHH, at most
 * max bytes of input (then "..."), so a message stays one line. */
const char *mxv_run_esc(const char *s, size_t max, char *buf, size_t n);
/* 1 when s holds a control byte (refused in request keys and groups) */
int mxv_run_has_ctrl(const char *s);
/* After reading: sorts and checks the requests (finish), and the top-k
 * width of every position (check_k).  0 or an exit code with err. */
int mxv_run_finish(mxv_run *r, char *err, size_t len);
int mxv_run_check_k(mxv_run *r, char *err, size_t len);
/* Element i of a safetensors tensor as a double (NaN for other dtypes). */
double mxv_run_elem(const mxv_st_tensor *t, size_t i);

/* The readers: 0 or an exit code with one line in err. */
int mxv_run_load_jsonl(mxv_run *r, FILE *f, mxv_tokens *toks, int match, char *err,
                       size_t len);
int mxv_run_load_st(mxv_run *r, mxv_tokens *toks, char *err, size_t len);

#endif
