/* run.c -- load one run's log-probs from vLLM JSONL or safetensors (run.h). */
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

#define MAX_LINE (256u << 20) /* one JSONL line, bytes */

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

static uint64_t fnv(const char *s)
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
        size_t h = fnv(t->s[i]) & (cap - 1);
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
    size_t h = fnv(text) & (t->cap - 1);
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
static int err_set(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int err_set(char *err, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return code;
}
#define OOM(err, len) err_set(err, len, MXV_EXIT_INTERNAL, "out of memory")

static mxv_req *add_req(mxv_run *r)
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

static mxv_pos *add_pos(mxv_req *q, size_t *cap)
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

static int add_top(mxv_run *r, int64_t tok, double lp)
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

static const char *keep_str(mxv_run *r, const char *s)
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
static const char *esc(const char *s, size_t max, char *buf, size_t n)
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
static int has_ctrl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* ---- JSONL ------------------------------------------------------------- */
typedef struct {
    mxv_run *run;
    mxv_tokens *toks;
    size_t line;
    char *err;
    size_t len;
} jctx;

#define JERR(c, fmt, ...)                                                     \
    err_set((c)->err, (c)->len, MXV_EXIT_BADINPUT, "%s: line %zu: " fmt,     \
            (c)->run->path, (c)->line, __VA_ARGS__)

/* A log-prob: a finite number <= 1e-6 (tiny positive values are rounding
 * and read as 0). */
static int get_lp(jctx *c, const cJSON *v, const char *field, double *out)
{
    if (!v || cJSON_IsNull(v))
        return JERR(c, "%s: %s where a log-prob is required", field,
                    v ? "null" : "missing");
    if (!cJSON_IsNumber(v))
        return JERR(c, "%s: not a number", field);
    double x = v->valuedouble;
    if (!isfinite(x))
        return JERR(c, "%s: %g is not a finite log-prob", field, x);
    if (x > 1e-6)
        return JERR(c, "%s: log-prob %.17g is positive", field, x);
    *out = x > 0 ? 0 : x;
    return 0;
}

static int tok_key(jctx *c, const char *text, const char *field, int64_t *out)
{
    int is_id;
    int64_t k = mxv_tokens_key(c->toks, text, &is_id);
    if (k == INT64_MIN + 1)
        return OOM(c->err, c->len);
    if (is_id)
        c->run->tok_ids = 1;
    else
        c->run->tok_text = 1;
    if (c->run->tok_ids && c->run->tok_text)
    {
        char e[200];
        return JERR(c, "%s: token \"%s\" is text but other tokens of this "
                    "run are \"token_id:N\" (mixed tokenization)", field,
                    esc(text, 40, e, sizeof e));
    }
    *out = k;
    return 0;
}

/* A non-negative integer token id from a JSON number. */
static int get_id(jctx *c, const cJSON *v, const char *field, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return JERR(c, "%s: not a token id (a non-negative integer)", field);
    double x = v->valuedouble;
    if (!(x >= 0 && x < 0x1p53) || x != floor(x))
        return JERR(c, "%s: %.17g is not a token id (a non-negative integer)",
                    field, x);
    *out = (int64_t)x;
    return 0;
}

/* Appends one top list; checks duplicates.  The entries are added to
 * run->tops from p->top on. */
static int dup_check(jctx *c, mxv_pos *p, const char *field)
{
    const mxv_tok_lp *t = c->run->tops + p->top;
    for (uint32_t i = 0; i < p->k; i++)
        for (uint32_t j = i + 1; j < p->k; j++)
            if (t[i].tok == t[j].tok)
                return JERR(c, "%s: token listed twice", field);
    return 0;
}

static int get_prompt_ids(jctx *c, const cJSON *arr, mxv_req *q, const char *f)
{
    if (!cJSON_IsArray(arr))
        return JERR(c, "%s: not an array of token ids", f);
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    q->prompt_ids = malloc((n ? n : 1) * sizeof *q->prompt_ids);
    if (!q->prompt_ids)
        return OOM(c->err, c->len);
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        char fld[96];
        snprintf(fld, sizeof fld, "%s[%zu]", f, i);
        int rc = get_id(c, v, fld, &q->prompt_ids[i]);
        if (rc)
            return rc;
        i++;
    }
    q->nprompt = n;
    return 0;
}

/* vLLM prompt_logprobs: [null, {"id": {"logprob", "rank",
 * "decoded_token"}}, ...]. */
static int parse_prompt_lps(jctx *c, const cJSON *pl, mxv_req *q, size_t *cap,
                            const char *f)
{
    if (!cJSON_IsArray(pl))
        return JERR(c, "%s: not an array", f);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, pl) {
        char fld[128];
        snprintf(fld, sizeof fld, "%s[%zu]", f, i);
        if (i == 0) {
            if (!cJSON_IsNull(e))
                return JERR(c, "%s: the first prompt position has no "
                            "log-prob and must be null", fld);
            i++;
            continue;
        }
        if (!cJSON_IsObject(e))
            return JERR(c, "%s: %s where a map of token log-probs is required",
                        fld, cJSON_IsNull(e) ? "null" : "not an object");
        mxv_pos *p = add_pos(q, cap);
        if (!p)
            return OOM(c->err, c->len);
        p->prompt = 1;
        p->index = i;
        p->field = keep_str(c->run, f);
        p->top = c->run->ntops;
        const cJSON *t;
        cJSON_ArrayForEach(t, e) {
            char tf[400];
            char ek[128];
            esc(t->string, 24, ek, sizeof ek);
            snprintf(tf, sizeof tf, "%s[\"%s\"].logprob", fld, ek);
            unsigned long long id;
            if (mxv_parse_uint(t->string, (1ull << 53), &id) != 0 ||
                (t->string[0] == '0' && t->string[1]))
                return JERR(c, "%s[\"%s\"]: key is not a token id", fld, ek);
            if (!cJSON_IsObject(t))
                return JERR(c, "%s[\"%s\"]: not an object", fld, ek);
            double lp;
            int rc = get_lp(c, cJSON_GetObjectItemCaseSensitive(t, "logprob"),
                            tf, &lp);
            if (rc)
                return rc;
            if (add_top(c->run, (int64_t)id, lp))
                return OOM(c->err, c->len);
            p->k++;
        }
        c->run->tok_ids = 1;
        if (c->run->tok_text)
            return JERR(c, "%s: token ids here but text tokens elsewhere in "
                        "this run (mixed tokenization)", fld);
        if (p->k == 0)
            return JERR(c, "%s: empty map of token log-probs", fld);
        int rc = dup_check(c, p, fld);
        if (rc)
            return rc;
        if (q->prompt_ids) {
            if (i >= q->nprompt)
                return JERR(c, "%s: beyond the %zu prompt_token_ids", fld,
                            q->nprompt);
            p->ref = q->prompt_ids[i];
            for (uint32_t j = 0; j < p->k; j++)
                if (c->run->tops[p->top + j].tok == p->ref)
                    p->ref_lp = c->run->tops[p->top + j].lp;
            if (isnan(p->ref_lp))
                return JERR(c, "%s: the prompt token %lld is not in the map",
                            fld, (long long)p->ref);
        }
        i++;
    }
    if (q->prompt_ids && i != q->nprompt)
        return JERR(c, "%s: %zu positions for %zu prompt_token_ids", f, i,
                    q->nprompt);
    return 0;
}

/* Chat completions: logprobs.content[i] = {token, logprob, top_logprobs:
 * [{token, logprob}]}. */
static int parse_chat(jctx *c, const cJSON *content, mxv_req *q, size_t *cap,
                      const char *f)
{
    if (!cJSON_IsArray(content))
        return JERR(c, "%s: %s where an array of token log-probs is required",
                    f, cJSON_IsNull(content) ? "null" : "not an array");
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, content) {
        char fld[128], sub[192];
        snprintf(fld, sizeof fld, "%s[%zu]", f, i);
        if (!cJSON_IsObject(e))
            return JERR(c, "%s: not an object", fld);
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(e, "token");
        snprintf(sub, sizeof sub, "%s.token", fld);
        if (!cJSON_IsString(tok))
            return JERR(c, "%s: %s where a token is required", sub,
                        tok ? "not a string" : "missing");
        mxv_pos *p = add_pos(q, cap);
        if (!p)
            return OOM(c->err, c->len);
        p->index = i;
        p->field = keep_str(c->run, f);
        int rc = tok_key(c, tok->valuestring, sub, &p->ref);
        snprintf(sub, sizeof sub, "%s.logprob", fld);
        if (!rc)
            rc = get_lp(c, cJSON_GetObjectItemCaseSensitive(e, "logprob"), sub,
                        &p->ref_lp);
        if (rc)
            return rc;
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(e, "top_logprobs");
        snprintf(sub, sizeof sub, "%s.top_logprobs", fld);
        if (!cJSON_IsArray(tl) || cJSON_GetArraySize(tl) == 0)
            return JERR(c, "%s: %s where the top log-probs are required "
                        "(request top_logprobs >= 1)", sub,
                        !tl ? "missing" : cJSON_IsNull(tl) ? "null" :
                        cJSON_IsArray(tl) ? "empty" : "not an array");
        p->top = c->run->ntops;
        size_t j = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tl) {
            char tf[240];
            snprintf(tf, sizeof tf, "%s[%zu].token", sub, j);
            const cJSON *tt = cJSON_GetObjectItemCaseSensitive(t, "token");
            if (!cJSON_IsString(tt))
                return JERR(c, "%s: missing or not a string", tf);
            int64_t k;
            rc = tok_key(c, tt->valuestring, tf, &k);
            snprintf(tf, sizeof tf, "%s[%zu].logprob", sub, j);
            double lp;
            if (!rc)
                rc = get_lp(c, cJSON_GetObjectItemCaseSensitive(t, "logprob"),
                            tf, &lp);
            if (rc)
                return rc;
            if (add_top(c->run, k, lp))
                return OOM(c->err, c->len);
            p->k++;
            j++;
        }
        rc = dup_check(c, p, sub);
        if (rc)
            return rc;
        i++;
    }
    return 0;
}

/* Completions: logprobs.{tokens, token_logprobs, top_logprobs}. */
static int parse_completion(jctx *c, const cJSON *lps, mxv_req *q, size_t *cap,
                            const char *f)
{
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(lps, "tokens");
    const cJSON *tlp = cJSON_GetObjectItemCaseSensitive(lps, "token_logprobs");
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(lps, "top_logprobs");
    if (!cJSON_IsArray(toks))
        return JERR(c, "%s.tokens: %s where an array is required", f,
                    !toks ? "missing" : cJSON_IsNull(toks) ? "null" : "not an array");
    if (!cJSON_IsArray(tlp))
        return JERR(c, "%s.token_logprobs: %s where an array is required", f,
                    !tlp ? "missing" : cJSON_IsNull(tlp) ? "null" : "not an array");
    if (!cJSON_IsArray(top))
        return JERR(c, "%s.top_logprobs: %s where the top log-probs are "
                    "required (request logprobs >= 1)", f,
                    !top ? "missing" : cJSON_IsNull(top) ? "null" : "not an array");
    int n = cJSON_GetArraySize(toks);
    if (cJSON_GetArraySize(tlp) != n || cJSON_GetArraySize(top) != n)
        return JERR(c, "%s: tokens, token_logprobs and top_logprobs have "
                    "%d, %d and %d entries", f, n, cJSON_GetArraySize(tlp),
                    cJSON_GetArraySize(top));
    /* echo: the prompt tokens come first, the first one without log-prob */
    int echo = n > 0 && cJSON_IsNull(cJSON_GetArrayItem(tlp, 0));
    const cJSON *tk = toks->child, *lv = tlp->child, *tv = top->child;
    for (int i = 0; i < n; i++, tk = tk->next, lv = lv->next, tv = tv->next) {
        char fld[160];
        if (i == 0 && echo) {
            if (!cJSON_IsNull(tv))
                return JERR(c, "%s.top_logprobs[0]: must be null where "
                            "token_logprobs[0] is", f);
            continue;
        }
        mxv_pos *p = add_pos(q, cap);
        if (!p)
            return OOM(c->err, c->len);
        p->index = (size_t)i;
        p->field = keep_str(c->run, f);
        p->prompt = echo && q->nprompt && (size_t)i < q->nprompt;
        snprintf(fld, sizeof fld, "%s.tokens[%d]", f, i);
        if (!cJSON_IsString(tk))
            return JERR(c, "%s: not a string", fld);
        int rc = tok_key(c, tk->valuestring, fld, &p->ref);
        snprintf(fld, sizeof fld, "%s.token_logprobs[%d]", f, i);
        if (!rc)
            rc = get_lp(c, lv, fld, &p->ref_lp);
        if (rc)
            return rc;
        snprintf(fld, sizeof fld, "%s.top_logprobs[%d]", f, i);
        if (!cJSON_IsObject(tv) || !tv->child)
            return JERR(c, "%s: %s where the top log-probs are required", fld,
                        cJSON_IsNull(tv) ? "null" : cJSON_IsObject(tv) ?
                        "empty" : "not an object");
        p->top = c->run->ntops;
        const cJSON *t;
        cJSON_ArrayForEach(t, tv) {
            char tf[240];
            char ek[128];
            snprintf(tf, sizeof tf, "%s[\"%s\"]", fld, esc(t->string, 24, ek, sizeof ek));
            int64_t k;
            double lp;
            rc = tok_key(c, t->string, tf, &k);
            if (!rc)
                rc = get_lp(c, t, tf, &lp);
            if (rc)
                return rc;
            if (add_top(c->run, k, lp))
                return OOM(c->err, c->len);
            p->k++;
        }
        rc = dup_check(c, p, fld);
        if (rc)
            return rc;
    }
    return 0;
}

static int json_key(jctx *c, const cJSON *root, const cJSON *body,
                    const cJSON *choice, int match, char *buf, size_t n)
{
    if (match == MXV_MATCH_PROMPT) {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(choice, "prompt_token_ids");
        if (!ids)
            ids = cJSON_GetObjectItemCaseSensitive(body, "prompt_token_ids");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(body, "prompt");
        if (!pr)
            pr = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        char *s = NULL;
        if (cJSON_IsArray(ids))
            s = cJSON_PrintUnformatted(ids);
        else if (cJSON_IsString(pr))
            s = strdup(pr->valuestring);
        else
            return JERR(c, "%s", "prompt_token_ids / prompt: missing, cannot "
                        "match requests by prompt");
        if (!s)
            return OOM(c->err, c->len);
        /* key: the prompt's FNV-1a hash and length (readable, bounded) */
        snprintf(buf, n, "prompt:%016llx:%zu", (unsigned long long)fnv(s),
                 strlen(s));
        free(s);
        return 0;
    }
    static const char *names[] = {"custom_id", "request_id", "id"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, names[i]);
        if (cJSON_IsString(v) && v->valuestring[0]) {
            if (has_ctrl(v->valuestring) || strlen(v->valuestring) >= n)
                return JERR(c, "%s: a control character in it, or longer "
                            "than %zu bytes", names[i], n - 1);
            snprintf(buf, n, "%s", v->valuestring);
            return 0;
        }
        if (cJSON_IsNumber(v)) {
            int64_t id;
            int rc = get_id(c, v, names[i], &id);
            if (rc)
                return rc;
            snprintf(buf, n, "%lld", (long long)id);
            return 0;
        }
    }
    return JERR(c, "%s", "custom_id / request_id / id: missing, cannot match "
                "requests (or use --match prompt)");
}

static int parse_line(jctx *c, const char *text, size_t n, int match)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        size_t at = e && e >= text && e <= text + n ? (size_t)(e - text) : 0;
        /* Python's json writes NaN and infinities as bare words */
        static const char *words[] = {"NaN", "Infinity", "-Infinity", "-NaN"};
        for (int w = 0; w < 4; w++)
            for (size_t b = at >= 12 ? at - 12 : 0; b <= at && b < n; b++)
                if (!strncmp(text + b, words[w], strlen(words[w])))
                    return JERR(c, "malformed JSON: %s at byte %zu (a NaN or "
                                "infinite value, not JSON)", words[w], b + 1);
        return JERR(c, "malformed JSON near byte %zu", at + 1);
    }
    for (const char *p = end; p < text + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return JERR(c, "trailing bytes after the JSON object at byte %zu",
                        (size_t)(p - text) + 1);
        }
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = JERR(c, "%s", "not a JSON object");
        goto out;
    }
    const cJSON *body = root;
    if (cJSON_GetObjectItemCaseSensitive(root, "custom_id")) {
        /* vLLM / OpenAI batch output: {"custom_id", "response": {"body"}} */
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error");
        if (er && !cJSON_IsNull(er)) {
            rc = JERR(c, "%s", "error: the request failed in this run");
            goto out;
        }
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(root, "response");
        body = cJSON_GetObjectItemCaseSensitive(resp, "body");
        if (!cJSON_IsObject(body)) {
            rc = JERR(c, "%s", "response.body: missing or not an object");
            goto out;
        }
    }
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(root, "group");
    if (group && (!cJSON_IsString(group) || has_ctrl(group->valuestring) ||
                  strlen(group->valuestring) > 200)) {
        rc = JERR(c, "%s", "group: not a string of at most 200 bytes without "
                  "control characters");
        goto out;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(body, "choices");
    int nch = cJSON_IsArray(choices) ? cJSON_GetArraySize(choices) : 0;
    if (nch == 0) {
        rc = JERR(c, "%s", "choices: missing or empty");
        goto out;
    }
    for (int ci = 0; ci < nch; ci++) {
        const cJSON *ch = cJSON_GetArrayItem(choices, ci);
        char key[512], f[64];
        if (!cJSON_IsObject(ch)) {
            rc = JERR(c, "choices[%d]: not an object", ci);
            goto out;
        }
        rc = json_key(c, root, body, ch, match, key, sizeof key - 16);
        if (rc)
            goto out;
        if (nch > 1)
            snprintf(key + strlen(key), 16, "#%d", ci);
        mxv_req *q = add_req(c->run);
        if (!q || !(q->key = strdup(key)) ||
            (group && !(q->group = strdup(group->valuestring)))) {
            rc = OOM(c->err, c->len);
            goto out;
        }
        q->line = c->line;
        size_t cap = 0;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ch, "prompt_token_ids");
        snprintf(f, sizeof f, "choices[%d].prompt_token_ids", ci);
        if (!ids || cJSON_IsNull(ids)) {
            ids = cJSON_GetObjectItemCaseSensitive(body, "prompt_token_ids");
            snprintf(f, sizeof f, "prompt_token_ids");
        }
        if (ids && !cJSON_IsNull(ids) && (rc = get_prompt_ids(c, ids, q, f)))
            goto out;
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(ch, "prompt_logprobs");
        snprintf(f, sizeof f, "choices[%d].prompt_logprobs", ci);
        if (!pl || cJSON_IsNull(pl)) {
            pl = cJSON_GetObjectItemCaseSensitive(body, "prompt_logprobs");
            snprintf(f, sizeof f, "prompt_logprobs");
        }
        if (pl && !cJSON_IsNull(pl) && (rc = parse_prompt_lps(c, pl, q, &cap, f)))
            goto out;
        size_t nprompt_pos = q->npos;
        const cJSON *lps = cJSON_GetObjectItemCaseSensitive(ch, "logprobs");
        snprintf(f, sizeof f, "choices[%d].logprobs", ci);
        if (cJSON_IsObject(lps)) {
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(lps, "content");
            if (content) {
                char f2[80];
                snprintf(f2, sizeof f2, "%s.content", f);
                rc = parse_chat(c, content, q, &cap, f2);
            } else {
                rc = parse_completion(c, lps, q, &cap, f);
            }
            if (rc)
                goto out;
            /* echo and prompt_logprobs both give the prompt: keep one */
            if (nprompt_pos) {
                size_t w = nprompt_pos;
                for (size_t i = nprompt_pos; i < q->npos; i++)
                    if (!q->pos[i].prompt)
                        q->pos[w++] = q->pos[i];
                q->npos = w;
            }
        } else if (lps && !cJSON_IsNull(lps)) {
            rc = JERR(c, "%s: not an object", f);
            goto out;
        }
        if (q->npos == 0) {
            rc = JERR(c, "%s: null or missing, and no prompt_logprobs: no "
                      "log-probs to compare (request logprobs / "
                      "prompt_logprobs)", f);
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    return rc;
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
static int check_k(mxv_run *r, char *err, size_t len)
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

static int finish(mxv_run *r, char *err, size_t len)
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

static int load_jsonl(mxv_run *r, FILE *f, mxv_tokens *toks, int match,
                      char *err, size_t len)
{
    jctx c = {r, toks, 0, err, len};
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    r->kind = MXV_RUN_TOPK;
    errno = 0;
    while ((n = getline(&buf, &cap, f)) >= 0) {
        c.line++;
        if ((size_t)n > MAX_LINE) {
            rc = JERR(&c, "line longer than %u bytes", MAX_LINE);
            break;
        }
        if (strlen(buf) != (size_t)n) {
            rc = JERR(&c, "NUL byte at byte %zu", strlen(buf) + 1);
            break;
        }
        size_t i = 0;
        while (i < (size_t)n && (buf[i] == ' ' || buf[i] == '\t' ||
                                 buf[i] == '\r' || buf[i] == '\n'))
            i++;
        if (i == (size_t)n)
            continue; /* blank line */
        if ((rc = parse_line(&c, buf, (size_t)n, match)))
            break;
    }
    if (!rc && ferror(f))
        rc = err_set(err, len, MXV_EXIT_INTERNAL, "%s: read error: %s",
                     r->path, strerror(errno));
    free(buf);
    if (!rc)
        rc = finish(r, err, len);
    if (!rc)
        rc = check_k(r, err, len);
    return rc;
}

/* ---- safetensors ------------------------------------------------------- */
static double elem(const mxv_st_tensor *t, size_t i)
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

static int load_st(mxv_run *r, mxv_tokens *toks, char *err, size_t len)
{
    mxv_st_err se;
    mxv_st_status st = mxv_st_open(r->path, &r->st, &se);
    if (st != MXV_ST_OK)
        return err_set(err, len, mxv_st_exit_code(st), "%s", se.msg);
    r->kind = MXV_RUN_FULL;
    r->tok_ids = 1;
    size_t nt = mxv_st_count(r->st);
    uint64_t vocab = 0;
    for (size_t i = 0; i < nt; i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(r->st, i);
        const char *name = t->name, *rq;
        int logits = 0;
        if (!strncmp(name, "targets/", 8))
            continue;
        if (!strncmp(name, "logprobs/", 9))
            rq = name + 9;
        else if (!strncmp(name, "logits/", 7))
            rq = name + 7, logits = 1;
        else
        {
            char e[300];
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\": "
                           "not logprobs/R, logits/R or targets/R", r->path,
                           esc(name, 200, e, sizeof e));
        }
        (void)logits;
        if (!*rq || strchr(rq, '/') || has_ctrl(rq) || strlen(rq) > 400) {
            char e[300];
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\": "
                           "bad request name (empty, '/', a control character, "
                           "or longer than 400 bytes)", r->path,
                           esc(name, 200, e, sizeof e));
        }
        unsigned ok = MXV_ST_BIT(MXV_ST_F32) | MXV_ST_BIT(MXV_ST_F64) |
                      MXV_ST_BIT(MXV_ST_BF16) | MXV_ST_BIT(MXV_ST_F16);
        if (!(ok & MXV_ST_BIT(t->dtype)) || t->rank != 2 || t->shape[0] == 0 ||
            t->shape[1] == 0)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "want F32, F64, BF16 or F16 of shape [positions, "
                           "vocab], both > 0", r->path, name);
        if (vocab && t->shape[1] != vocab)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "vocabulary %llu, other tensors have %llu", r->path,
                           name, (unsigned long long)t->shape[1],
                           (unsigned long long)vocab);
        vocab = t->shape[1];
        char tn[600];
        snprintf(tn, sizeof tn, "targets/%s", rq);
        const mxv_st_tensor *tg = mxv_st_find(r->st, tn);
        if (!tg)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "not in the file (needed by \"%.200s\")", r->path, tn,
                           name);
        if ((tg->dtype != MXV_ST_I32 && tg->dtype != MXV_ST_I64) ||
            tg->rank != 1 || tg->shape[0] != t->shape[0])
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "want I32 or I64 of shape [%llu]", r->path, tn,
                           (unsigned long long)t->shape[0]);
        mxv_req *q = add_req(r);
        if (!q || !(q->key = strdup(rq)))
            return OOM(err, len);
        q->full = t;
        char mk[600];
        snprintf(mk, sizeof mk, "group/%s", rq);
        const char *g = mxv_st_meta_get(r->st, mk);
        if (g && (has_ctrl(g) || strlen(g) > 200))
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: __metadata__ "
                           "\"%.200s\": a control character in it or longer "
                           "than 200 bytes", r->path, mk);
        if (g && !(q->group = strdup(g)))
            return OOM(err, len);
        size_t plen = t->shape[0];
        snprintf(mk, sizeof mk, "prompt_len/%s", rq);
        const char *pv = mxv_st_meta_get(r->st, mk);
        unsigned long long u;
        if (pv && mxv_parse_uint(pv, t->shape[0], &u) != 0)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: __metadata__ "
                           "\"%.200s\": \"%.40s\" is not a row count <= %llu",
                           r->path, mk, pv, (unsigned long long)t->shape[0]);
        if (pv)
            plen = u;
        size_t cap = 0;
        for (size_t j = 0; j < t->shape[0]; j++) {
            mxv_pos *p = add_pos(q, &cap);
            if (!p)
                return OOM(err, len);
            double v = elem(tg, j);
            if (!(v >= 0 && v < (double)vocab))
                return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor "
                               "\"%.200s\": row %zu: token %.0f is outside "
                               "the vocabulary [0, %llu)", r->path, tn, j, v,
                               (unsigned long long)vocab);
            p->ref = (int64_t)v;
            p->prompt = j < plen;
            p->field = tn;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(r->st, i);
        if (!strncmp(t->name, "targets/", 8)) {
            char a[600], b[600];
            snprintf(a, sizeof a, "logprobs/%s", t->name + 8);
            snprintf(b, sizeof b, "logits/%s", t->name + 8);
            if (!mxv_st_find(r->st, a) && !mxv_st_find(r->st, b))
                return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor "
                               "\"%.200s\": no logprobs/ or logits/ tensor "
                               "for it", r->path, t->name);
            if (mxv_st_find(r->st, a) && mxv_st_find(r->st, b))
                return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor "
                               "\"%.200s\": both logprobs/ and logits/ given",
                               r->path, a);
        }
    }
    r->k = vocab;
    (void)toks;
    return finish(r, err, len);
}

int mxv_run_row(const mxv_run *run, const mxv_req *r, size_t i, double *out,
                char *err, size_t len)
{
    const mxv_st_tensor *t = r->full;
    size_t v = t->shape[1];
    for (size_t j = 0; j < v; j++) {
        double x = elem(t, i * v + j);
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
        rc = load_st(run, toks, err, len);
    } else {
        rewind(f);
        rc = load_jsonl(run, f, toks, match, err, len);
        fclose(f);
    }
    return rc;
}
