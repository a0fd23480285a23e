/* run.c -- load one run's log-probs (run.h): the token table, the run's
 * storage, the checks shared by both formats and the entry that picks the
 * reader (run_jsonl.c: vLLM JSONL; run_safetensors.c: full log-prob rows). */
#include <errno.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "input.h"
#include "cli.h"
#include "model/run.h"

#include "model/run_internal.h"

/* ---- token keys ------------------------------------------------------- */
struct mxv_tokens {
    char **s;
    size_t n, cap; /* hash slots: cap, power of two */
    size_t *slot;  /* index+1 into s, 0 empty */
    size_t ns, caps;
};

mxv_tokens *mxv_tokens_new(void)
{
    mxv_tokens *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = 1024;
    t->slot = calloc(t->cap, sizeof *t->slot);
    if (!t->slot) {
        free(t);
        return NULL;
    }
    return t;
}

void mxv_tokens_free(mxv_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ns; i++)
        free(t->s[i]);
    free(t->s);
    free(t->slot);
    free(t);
}

uint64_t mxv_run_fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int tokens_grow(mxv_tokens *t)
{
    size_t cap = t->cap * 2;
    size_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < t->ns; i++) {
        size_t h = mxv_run_fnv(t->s[i]) & (cap - 1);
        while (slot[h])
            h = (h + 1) & (cap - 1);
        slot[h] = i + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    return 0;
}

int64_t mxv_tokens_key(mxv_tokens *t, const char *text, int *is_id)
{
    if (!strncmp(text, "token_id:", 9) && text[9] >= '0' && text[9] <= '9') {
        unsigned long long v;
        if (mxv_parse_uint(text + 9, (1ull << 62), &v) == 0 &&
            (text[9] != '0' || !text[10])) {
            *is_id = 1;
            return (int64_t)v;
        }
    }
    *is_id = 0;
    if (2 * (t->ns + 1) > t->cap && tokens_grow(t))
        return INT64_MIN + 1;
    size_t h = mxv_run_fnv(text) & (t->cap - 1);
    while (t->slot[h]) {
        if (!strcmp(t->s[t->slot[h] - 1], text))
            return -(int64_t)t->slot[h];
        h = (h + 1) & (t->cap - 1);
    }
    if (t->ns == t->caps) {
        size_t c = t->caps ? 2 * t->caps : 256;
        char **s = realloc(t->s, c * sizeof *s);
        if (!s)
            return INT64_MIN + 1;
        t->s = s;
        t->caps = c;
    }
    char *d = strdup(text);
    if (!d)
        return INT64_MIN + 1;
    t->s[t->ns++] = d;
    t->slot[h] = t->ns;
    return -(int64_t)t->ns;
}

/* ---- run storage ------------------------------------------------------- */

mxv_req *mxv_run_add_req(mxv_run *r)
{
    if (r->nreq == r->capreq) {
        size_t c = r->capreq ? 2 * r->capreq : 64;
        mxv_req *q = realloc(r->req, c * sizeof *q);
        if (!q)
            return NULL;
        r->req = q;
        r->capreq = c;
    }
    mxv_req *q = &r->req[r->nreq++];
    memset(q, 0, sizeof *q);
    return q;
}

mxv_pos *mxv_run_add_pos(mxv_req *q, size_t *cap)
{
    if (q->npos == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        mxv_pos *p = realloc(q->pos, c * sizeof *p);
        if (!p)
            return NULL;
        q->pos = p;
        *cap = c;
    }
    mxv_pos *p = &q->pos[q->npos++];
    memset(p, 0, sizeof *p);
    p->ref = MXV_TOK_NONE;
    p->ref_lp = NAN;
    p->index = q->npos - 1;
    return p;
}

int mxv_run_add_top(mxv_run *r, int64_t tok, double lp)
{
    if (r->ntops == r->captops) {
        size_t c = r->captops ? 2 * r->captops : 1024;
        mxv_tok_lp *t = realloc(r->tops, c * sizeof *t);
        if (!t)
            return -1;
        r->tops = t;
        r->captops = c;
    }
    r->tops[r->ntops++] = (mxv_tok_lp){tok, lp};
    return 0;
}

const char *mxv_run_keep_str(mxv_run *r, const char *s)
{
    if (r->nstrs == r->capstrs) {
        size_t c = r->capstrs ? 2 * r->capstrs : 64;
        char **v = realloc(r->strs, c * sizeof *v);
        if (!v)
            return NULL;
        r->strs = v;
        r->capstrs = c;
    }
    char *d = strdup(s);
    if (d)
        r->strs[r->nstrs++] = d;
    return d;
}

void mxv_run_free(mxv_run *run)
{
    for (size_t i = 0; i < run->nreq; i++) {
        free(run->req[i].key);
        free(run->req[i].group);
        free(run->req[i].pos);
        free(run->req[i].prompt_ids);
    }
    for (size_t i = 0; i < run->nstrs; i++)
        free(run->strs[i]);
    free(run->strs);
    free(run->req);
    free(run->tops);
    free(run->path);
    mxv_st_close(run->st);
    memset(run, 0, sizeof *run);
}

static int req_cmp(const void *a, const void *b)
{
    return strcmp(((const mxv_req *)a)->key, ((const mxv_req *)b)->key);
}

const mxv_req *mxv_run_find(const mxv_run *run, const char *key)
{
    mxv_req k = {0};
    k.key = (char *)key;
    return bsearch(&k, run->req, run->nreq, sizeof *run->req, req_cmp);
}

/* Copies user text for a message: control bytes and '"' as \xHH, at most
 * max bytes of input (then "..."), so a message stays one line. */
const char *mxv_run_esc(const char *s, size_t max, char *buf, size_t n)
{
    size_t o = 0, i = 0;
    for (; i < max && s[i] && o + 5 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    if (s[i] && o + 4 < n)
        memcpy(buf + o, "...", 3), o += 3;
    buf[o] = 0;
    return buf;
}

/* 1 when s holds a control byte (refused in request keys and groups) */
int mxv_run_has_ctrl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* A position may list k + 1 entries when its reference token, outside the
 * top k, was added (vLLM's completions and prompt_logprobs do): then the
 * reference token is the entry with the smallest log-prob. */
static int ambiguous(const mxv_run *r, const mxv_pos *p)
{
    if (p->k < 2 || p->ref == MXV_TOK_NONE)
        return 0;
    const mxv_tok_lp *t = r->tops + p->top;
    double mn = INFINITY, ref = NAN;
    for (uint32_t i = 0; i < p->k; i++) {
        if (t[i].tok == p->ref)
            ref = t[i].lp;
        else if (t[i].lp < mn)
            mn = t[i].lp;
    }
    return !isnan(ref) && ref <= mn;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The run's k: the most common list length among the positions whose
 * length is not ambiguous (ties: the larger); every position must list k
 * entries, or k + 1 when ambiguous. */
int mxv_run_check_k(mxv_run *r, char *err, size_t len)
{
    size_t n = 0, m = 0;
    for (size_t i = 0; i < r->nreq; i++)
        n += r->req[i].npos;
    uint32_t *ks = malloc((n ? n : 1) * sizeof *ks);
    if (!ks)
        return OOM(err, len);
    for (size_t i = 0; i < r->nreq; i++)
        for (size_t j = 0; j < r->req[i].npos; j++)
            if (!ambiguous(r, &r->req[i].pos[j]))
                ks[m++] = r->req[i].pos[j].k;
    size_t k = SIZE_MAX;
    if (m) {
        qsort(ks, m, sizeof *ks, u32_cmp);
        size_t best = 0;
        for (size_t a = 0, b; a < m; a = b) {
            for (b = a; b < m && ks[b] == ks[a]; b++)
                ;
            if (b - a >= best) {
                best = b - a;
                k = ks[a];
            }
        }
    } else {
        for (size_t i = 0; i < r->nreq; i++)
            for (size_t j = 0; j < r->req[i].npos; j++)
                if (r->req[i].pos[j].k < k)
                    k = r->req[i].pos[j].k;
    }
    free(ks);
    r->k = k;
    for (size_t i = 0; i < r->nreq; i++)
        for (size_t j = 0; j < r->req[i].npos; j++) {
            const mxv_pos *p = &r->req[i].pos[j];
            if (p->k == k || (p->k == k + 1 && ambiguous(r, p)))
                continue;
            return err_set(err, len, MXV_EXIT_BADINPUT,
                           "%s: line %zu: %s: position %zu lists %u tokens "
                           "where others list %zu (top-k lists of different k)",
                           r->path, r->req[i].line, p->field ? p->field : "?",
                           p->index, p->k, k);
        }
    return 0;
}

int mxv_run_finish(mxv_run *r, char *err, size_t len)
{
    if (r->nreq == 0)
        return err_set(err, len, MXV_EXIT_BADINPUT,
                       "%s: empty: no requests in the file", r->path);
    /* sort by key, refuse duplicates: order of lines kept in .line */
    qsort(r->req, r->nreq, sizeof *r->req, req_cmp);
    for (size_t i = 1; i < r->nreq; i++)
        if (!strcmp(r->req[i - 1].key, r->req[i].key))
            return err_set(err, len, MXV_EXIT_BADINPUT,
                           "%s: line %zu: request \"%.200s\" appears twice "
                           "(also line %zu)", r->path,
                           r->req[i].line > r->req[i - 1].line ? r->req[i].line
                                                               : r->req[i - 1].line,
                           r->req[i].key,
                           r->req[i].line > r->req[i - 1].line ? r->req[i - 1].line
                                                               : r->req[i].line);
    return 0;
}

/* ---- safetensors ------------------------------------------------------- */
double mxv_run_elem(const mxv_st_tensor *t, size_t i)
{
    const unsigned char *b = (const unsigned char *)t->data;
    switch (t->dtype) {
    case MXV_ST_F64: { double v; memcpy(&v, b + 8 * i, 8); return v; }
    case MXV_ST_F32: { float v; memcpy(&v, b + 4 * i, 4); return v; }
    case MXV_ST_BF16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return mx_bf16_to_float(v); }
    case MXV_ST_F16: { uint16_t v; memcpy(&v, b + 2 * i, 2);
        return mx_decode_double(mx_format_get(MX_FP16), v); }
    case MXV_ST_I64: { int64_t v; memcpy(&v, b + 8 * i, 8); return (double)v; }
    case MXV_ST_I32: { int32_t v; memcpy(&v, b + 4 * i, 4); return v; }
    default: return NAN;
    }
}

int mxv_run_row(const mxv_run *run, const mxv_req *r, size_t i, double *out,
                char *err, size_t len)
{
    const mxv_st_tensor *t = r->full;
    size_t v = t->shape[1];
    for (size_t j = 0; j < v; j++) {
        double x = mxv_run_elem(t, i * v + j);
        if (isnan(x) || x == INFINITY)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\":"
                           " row %zu, column %zu: %s", run->path, t->name, i, j,
                           isnan(x) ? "NaN" : "+inf");
        out[j] = x;
    }
    if (mxv_log_softmax(out, v, out) != 0)
        return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": row "
                       "%zu: every entry is -inf", run->path, t->name, i);
    return 0;
}

/* ---- entry ------------------------------------------------------------- */
int mxv_run_load(const char *path, mxv_tokens *toks, int match, mxv_run *run,
                 char *err, size_t len)
{
    memset(run, 0, sizeof *run);
    if (!(run->path = strdup(path)))
        return OOM(err, len);
    /* regular files only, refused before any blocking open (a FIFO) */
    char oerr[600];
    FILE *f = mxv_input_fopen(path, oerr, sizeof oerr);
    if (!f)
        return err_set(err, len, MXV_EXIT_BADINPUT, "%s", oerr);
    unsigned char head[9];
    size_t got = fread(head, 1, sizeof head, f);
    if (got == 0) {
        fclose(f);
        return err_set(err, len, MXV_EXIT_BADINPUT, "%s: empty file", path);
    }
    int is_st = got == 9 && head[8] == '{' && head[0] != '{' && head[0] != ' ';
    size_t pl = strlen(path);
    if (pl >= 12 && !strcmp(path + pl - 12, ".safetensors"))
        is_st = 1;
    int rc;
    if (is_st) {
        fclose(f);
        rc = mxv_run_load_st(run, toks, err, len);
    } else {
        rewind(f);
        rc = mxv_run_load_jsonl(run, f, toks, match, err, len);
        fclose(f);
    }
    return rc;
}
