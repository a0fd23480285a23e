/* tolerance.c -- golden model tolerances (tolerance.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "model/tolerance.h"
#include "out.h"

static int fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

void mxv_mtol_free(mxv_mtol *g)
{
    free(g->e);
    cJSON_Delete(g->history);
    memset(g, 0, sizeof *g);
}

static char *slurp(const char *path, size_t *n, char *err, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, m = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + m, 1, cap - m, f);
        m += r;
        if (m < cap)
            break;
        if (cap >= (64u << 20)) {
            free(b);
            fclose(f);
            fail(err, len, "%s: larger than 64 MiB", path);
            return NULL;
        }
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        fail(err, len, "%s: cannot read", path);
        return NULL;
    }
    b[m] = 0;
    *n = m;
    return b;
}

static int get_str(const cJSON *o, const char *k, char *dst, size_t n,
                   int required, const char *path, size_t i, char *err,
                   size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v && !required) {
        dst[0] = 0;
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= n)
        return fail(err, len, "%s: entries[%zu].%s: %s", path, i, k,
                    !v ? "missing" : "not a non-empty string of bounded length");
    strcpy(dst, v->valuestring);
    return 0;
}

/* optional number in [lo, hi] (null or absent: NaN) */
static int get_thr(const cJSON *o, const char *k, double lo, double hi,
                   double *dst, const char *path, size_t i, char *err,
                   size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *dst = NAN;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return fail(err, len, "%s: entries[%zu].%s: not a number in [%g, %g] "
                    "or null", path, i, k, lo, hi);
    *dst = v->valuedouble;
    return 0;
}

int mxv_mtol_load(const char *path, mxv_mtol *g, char *err, size_t len)
{
    memset(g, 0, sizeof *g);
    size_t n;
    char *text = slurp(path, &n, err, len);
    if (!text)
        return -1;
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    int rc = -1;
    if (!root) {
        fail(err, len, "%s: malformed JSON", path);
        goto out;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (!cJSON_IsString(s) || strcmp(s->valuestring, MXV_MTOL_SCHEMA)) {
        fail(err, len, "%s: schema: want \"%s\"", path, MXV_MTOL_SCHEMA);
        goto out;
    }
    for (const cJSON *k = root->child; k; k = k->next)
        if (strcmp(k->string, "schema") && strcmp(k->string, "history") &&
            strcmp(k->string, "entries")) {
            fail(err, len, "%s: %.60s: unknown field", path, k->string);
            goto out;
        }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "history");
    const cJSON *es = cJSON_GetObjectItemCaseSensitive(root, "entries");
    if (!cJSON_IsArray(h)) {
        fail(err, len, "%s: history: missing or not an array", path);
        goto out;
    }
    if (!cJSON_IsArray(es)) {
        fail(err, len, "%s: entries: missing or not an array", path);
        goto out;
    }
    size_t ne = (size_t)cJSON_GetArraySize(es), i = 0;
    g->e = calloc(ne ? ne : 1, sizeof *g->e);
    if (!g->e) {
        fail(err, len, "out of memory");
        goto out;
    }
    static const char *known[] = {"model", "policy", "device", "max_mean_kld",
                                  "max_p999_kld", "min_same_top1", "min_score",
                                  "task", "metric", "filter", "source", NULL};
    const cJSON *e;
    cJSON_ArrayForEach(e, es) {
        mxv_mtol_entry *x = &g->e[i];
        if (!cJSON_IsObject(e)) {
            fail(err, len, "%s: entries[%zu]: not an object", path, i);
            goto out;
        }
        for (const cJSON *k = e->child; k; k = k->next) {
            int ok = 0;
            for (int j = 0; known[j]; j++)
                ok |= !strcmp(k->string, known[j]);
            if (!ok) {
                fail(err, len, "%s: entries[%zu].%.60s: unknown field", path, i,
                     k->string);
                goto out;
            }
        }
        if (get_str(e, "model", x->model, sizeof x->model, 1, path, i, err, len) ||
            get_str(e, "policy", x->policy, sizeof x->policy, 1, path, i, err, len) ||
            get_str(e, "device", x->device, sizeof x->device, 1, path, i, err, len) ||
            get_str(e, "task", x->task, sizeof x->task, 0, path, i, err, len) ||
            get_str(e, "metric", x->metric, sizeof x->metric, 0, path, i, err, len) ||
            get_str(e, "filter", x->filter, sizeof x->filter, 0, path, i, err, len) ||
            get_str(e, "source", x->source, sizeof x->source, 1, path, i, err, len) ||
            get_thr(e, "max_mean_kld", 0, 1e300, &x->max_mean_kld, path, i, err, len) ||
            get_thr(e, "max_p999_kld", 0, 1e300, &x->max_p999_kld, path, i, err, len) ||
            get_thr(e, "min_same_top1", 0, 1, &x->min_same_top1, path, i, err, len) ||
            get_thr(e, "min_score", 0, 1, &x->min_score, path, i, err, len))
            goto out;
        if (!isnan(x->min_score) && !x->task[0]) {
            fail(err, len, "%s: entries[%zu].task: missing (min_score needs "
                 "it)", path, i);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(g->e[j].model, x->model) &&
                !strcmp(g->e[j].policy, x->policy) &&
                !strcmp(g->e[j].device, x->device)) {
                fail(err, len, "%s: entries[%zu]: duplicate of entries[%zu] "
                     "(%s, %s, %s)", path, i, j, x->model, x->policy, x->device);
                goto out;
            }
        i++;
    }
    g->n = i;
    g->history = cJSON_Duplicate(h, 1);
    rc = g->history ? 0 : fail(err, len, "out of memory");
out:
    cJSON_Delete(root);
    if (rc)
        mxv_mtol_free(g);
    return rc;
}

static void add_thr(cJSON *o, const char *k, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

int mxv_mtol_save(const char *path, const mxv_mtol *g, char *err, size_t len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", MXV_MTOL_SCHEMA);
    cJSON_AddItemToObject(root, "history",
                          g->history ? cJSON_Duplicate(g->history, 1)
                                     : cJSON_CreateArray());
    cJSON *es = cJSON_AddArrayToObject(root, "entries");
    for (size_t i = 0; i < g->n; i++) {
        const mxv_mtol_entry *x = &g->e[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "model", x->model);
        cJSON_AddStringToObject(e, "policy", x->policy);
        cJSON_AddStringToObject(e, "device", x->device);
        add_thr(e, "max_mean_kld", x->max_mean_kld);
        add_thr(e, "max_p999_kld", x->max_p999_kld);
        add_thr(e, "min_same_top1", x->min_same_top1);
        add_thr(e, "min_score", x->min_score);
        if (x->task[0])
            cJSON_AddStringToObject(e, "task", x->task);
        if (x->metric[0])
            cJSON_AddStringToObject(e, "metric", x->metric);
        if (x->filter[0])
            cJSON_AddStringToObject(e, "filter", x->filter);
        cJSON_AddStringToObject(e, "source", x->source);
        cJSON_AddItemToArray(es, e);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return fail(err, len, "out of memory");
    size_t tl = strlen(text);
    char *withnl = malloc(tl + 2);
    if (!withnl) {
        free(text);
        return fail(err, len, "out of memory");
    }
    memcpy(withnl, text, tl);
    memcpy(withnl + tl, "\n", 2);
    free(text);
    int rc = mxv_out_write_text(path, withnl, err, len);
    free(withnl);
    return rc ? -1 : 0;
}

const mxv_mtol_entry *mxv_mtol_find(const mxv_mtol *g, const char *model,
                                    const char *policy, const char *device)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].model, model) && !strcmp(g->e[i].policy, policy) &&
            !strcmp(g->e[i].device, device))
            return &g->e[i];
    return NULL;
}

/* max thresholds: looser when larger or unset; min: when smaller/unset */
static int looser_max(double was, double now)
{
    return !isnan(was) && (isnan(now) || now > was);
}
static int looser_min(double was, double now)
{
    return !isnan(was) && (isnan(now) || now < was);
}

int mxv_mtol_looser(const mxv_mtol_entry *was, const mxv_mtol_entry *now,
                    char *what, size_t len)
{
    const char *w = NULL;
    if (looser_max(was->max_mean_kld, now->max_mean_kld))
        w = "max_mean_kld";
    else if (looser_max(was->max_p999_kld, now->max_p999_kld))
        w = "max_p999_kld";
    else if (looser_min(was->min_same_top1, now->min_same_top1))
        w = "min_same_top1";
    else if (looser_min(was->min_score, now->min_score))
        w = "min_score";
    else if (!isnan(was->min_score) && (strcmp(was->task, now->task) ||
                                        strcmp(was->metric, now->metric) ||
                                        strcmp(was->filter, now->filter)))
        w = "task/metric/filter of min_score";
    if (w)
        snprintf(what, len, "%s", w);
    return w != NULL;
}

void mxv_mtol_note(mxv_mtol *g, const char *action, const char *reason)
{
    if (!g->history)
        g->history = cJSON_CreateArray();
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "date", date);
    cJSON_AddStringToObject(h, "action", action);
    if (reason)
        cJSON_AddStringToObject(h, "reason", reason);
    cJSON_AddItemToArray(g->history, h);
}
