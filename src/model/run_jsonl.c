/* run_jsonl.c -- a run's top-k log-probs from vLLM JSONL (chat and
 * completion responses, prompt_logprobs); run.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "model/run.h"
#include "model/run_internal.h"

#define MAX_LINE (256u << 20) /* one JSONL line, bytes */

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
                    mxv_run_esc(text, 40, e, sizeof e));
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
        mxv_pos *p = mxv_run_add_pos(q, cap);
        if (!p)
            return OOM(c->err, c->len);
        p->prompt = 1;
        p->index = i;
        p->field = mxv_run_keep_str(c->run, f);
        p->top = c->run->ntops;
        const cJSON *t;
        cJSON_ArrayForEach(t, e) {
            char tf[400];
            char ek[128];
            mxv_run_esc(t->string, 24, ek, sizeof ek);
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
            if (mxv_run_add_top(c->run, (int64_t)id, lp))
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
        mxv_pos *p = mxv_run_add_pos(q, cap);
        if (!p)
            return OOM(c->err, c->len);
        p->index = i;
        p->field = mxv_run_keep_str(c->run, f);
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
            if (mxv_run_add_top(c->run, k, lp))
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
        mxv_pos *p = mxv_run_add_pos(q, cap);
        if (!p)
            return OOM(c->err, c->len);
        p->index = (size_t)i;
        p->field = mxv_run_keep_str(c->run, f);
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
            snprintf(tf, sizeof tf, "%s[\"%s\"]", fld, mxv_run_esc(t->string, 24, ek, sizeof ek));
            int64_t k;
            double lp;
            rc = tok_key(c, t->string, tf, &k);
            if (!rc)
                rc = get_lp(c, t, tf, &lp);
            if (rc)
                return rc;
            if (mxv_run_add_top(c->run, k, lp))
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
        snprintf(buf, n, "prompt:%016llx:%zu", (unsigned long long)mxv_run_fnv(s),
                 strlen(s));
        free(s);
        return 0;
    }
    static const char *names[] = {"custom_id", "request_id", "id"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, names[i]);
        if (cJSON_IsString(v) && v->valuestring[0]) {
            if (mxv_run_has_ctrl(v->valuestring) || strlen(v->valuestring) >= n)
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
    if (group && (!cJSON_IsString(group) || mxv_run_has_ctrl(group->valuestring) ||
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
        mxv_req *q = mxv_run_add_req(c->run);
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

int mxv_run_load_jsonl(mxv_run *r, FILE *f, mxv_tokens *toks, int match,
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
        rc = mxv_run_finish(r, err, len);
    if (!rc)
        rc = mxv_run_check_k(r, err, len);
    return rc;
}

