/* run.h -- one model run's per-position token log-probs, as the serving
 * stack wrote them: vLLM OpenAI-compatible JSONL (completions, chat,
 * prompt_logprobs) or a safetensors file of full log-probs / logits
 * (docs/model-checks.md describes both).
 *
 * Loading is strict: every malformed or inconsistent item is refused with
 * ONE line in err naming the file, the line (or tensor) and the field, and
 * the loader returns MXV_EXIT_BADINPUT (3), or MXV_EXIT_INTERNAL (4) for
 * I/O and memory failures.  Nothing here prints.
 */
#ifndef MXV_MODEL_RUN_H
#define MXV_MODEL_RUN_H

#include <stddef.h>
#include <stdint.h>
#include "model/kld.h"
#include "safetensors.h"

#define MXV_TOK_NONE INT64_MIN /* reference token unknown                 */

/* Token keys: a token id (>= 0), or an interned token text (< 0).  One
 * table is shared by the two runs being compared, so equal text gives an
 * equal key. */
typedef struct mxv_tokens mxv_tokens;
mxv_tokens *mxv_tokens_new(void);
void mxv_tokens_free(mxv_tokens *t);
/* "token_id:123" -> 123; other text -> its interned negative key; -1 on
 * out of memory (as INT64_MIN + 1). */
int64_t mxv_tokens_key(mxv_tokens *t, const char *text, int *is_id);

typedef struct {
    int64_t ref;       /* the reference token (the one that followed), or
                          MXV_TOK_NONE                                    */
    double ref_lp;     /* its log-prob in this run (NAN when unknown)     */
    uint32_t k;        /* entries in the top list (0 for full runs)       */
    size_t top;        /* index of the first entry in run->tops           */
    int prompt;        /* 1: a prompt position (teacher-forced)           */
    size_t index;      /* position index within the request (for messages)*/
    const char *field; /* JSON path of the position's list (for messages) */
} mxv_pos;

typedef struct {
    char *key;            /* request key (custom_id, request_id or id)    */
    char *group;          /* group tag, or NULL                           */
    size_t line;          /* 1-based JSONL line; 0 for safetensors        */
    mxv_pos *pos;
    size_t npos;
    int64_t *prompt_ids;  /* prompt token ids when the run gave them      */
    size_t nprompt;
    const mxv_st_tensor *full; /* full runs: [npos, vocab] logits/logprobs */
} mxv_req;

enum { MXV_RUN_TOPK = 1, MXV_RUN_FULL = 2 };

typedef struct {
    char *path;
    int kind;             /* MXV_RUN_TOPK or MXV_RUN_FULL                 */
    mxv_req *req;
    size_t nreq, capreq;
    mxv_tok_lp *tops;     /* all top-list entries, positions point in     */
    size_t ntops, captops;
    size_t k;             /* top-k of the run (TOPK); vocab size (FULL)   */
    int tok_ids, tok_text;/* tokens seen as ids / as text                 */
    mxv_st_file *st;      /* FULL: the open file                          */
    char **strs;          /* field strings owned by the run               */
    size_t nstrs, capstrs;
} mxv_run;

/* How requests are keyed. */
enum { MXV_MATCH_ID = 0, MXV_MATCH_PROMPT = 1 };

/* Loads path: a safetensors file (by its first bytes) or JSONL.  Returns 0,
 * or an exit code (3 bad input, 4 I/O) with err set. */
int mxv_run_load(const char *path, mxv_tokens *toks, int match, mxv_run *run,
                 char *err, size_t len);
void mxv_run_free(mxv_run *run);

/* Full runs: row i of request r as normalized log-probs (vocab doubles).
 * 0, or -1 with err (a NaN/+inf element, an all -inf row) naming the
 * tensor, row and column. */
int mxv_run_row(const mxv_run *run, const mxv_req *r, size_t i, double *out,
                char *err, size_t len);

/* The request with key, or NULL. */
const mxv_req *mxv_run_find(const mxv_run *run, const char *key);

#endif
