/* score.c -- lm-eval samples, Wilson, McNemar (score.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "model/score.h"
#include "model/stats.h"

static int fail(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return code;
}

void mxv_samples_free(mxv_samples *s)
{
    free(s->path);
    free(s->metric);
    free(s->filter);
    free(s->s);
    memset(s, 0, sizeof *s);
}

static int doc_cmp(const void *a, const void *b)
{
    int64_t x = ((const mxv_sample *)a)->doc, y = ((const mxv_sample *)b)->doc;
    return (x > y) - (x < y);
}

typedef struct {
    char **v;
    size_t n;
} strset;

static int strset_add(strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], x))
            return 0;
    char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return -1;
    s->v = v;
    if (!(s->v[s->n] = strdup(x)))
        return -1;
    s->n++;
    return 0;
}

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

int mxv_samples_load(const char *path, const char *metric, const char *filter,
                     mxv_samples *out, char *err, size_t len)
{
    memset(out, 0, sizeof *out);
    struct stat sst;
    if (stat(path, &sst) == 0 && S_ISDIR(sst.st_mode))
        return fail(err, len, MXV_EXIT_BADINPUT, "%s: is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, len, MXV_EXIT_BADINPUT, "%s: cannot open: %s", path,
                    strerror(errno));
    char *buf = NULL;
    size_t cap = 0, line = 0, capn = 0;
    ssize_t n;
    int rc = 0;
    strset filters = {0};
    /* pass 1 collects every sample with its filter; the filter is chosen
     * after (it may be decided by the set of filters) */
    typedef struct {
        mxv_sample s;
        size_t filt;
    } raw;
    raw *rs = NULL;
    size_t nr = 0;
    out->path = strdup(path);
    out->metric = strdup(metric);
    if (!out->path || !out->metric) {
        rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
        goto done;
    }
    while ((n = getline(&buf, &cap, f)) >= 0) {
        line++;
        if (strlen(buf) != (size_t)n) {
            rc = fail(err, len, MXV_EXIT_BADINPUT, "%s: line %zu: NUL byte",
                      path, line);
            goto done;
        }
        size_t i = 0;
        while (i < (size_t)n && strchr(" \t\r\n", buf[i]))
            i++;
        if (i == (size_t)n)
            continue;
        const char *end;
        cJSON *root = cJSON_ParseWithLengthOpts(buf, (size_t)n, &end, 0);
        if (!root) {
            rc = fail(err, len, MXV_EXIT_BADINPUT, "%s: line %zu: malformed "
                      "JSON", path, line);
            goto done;
        }
        for (const char *p = end; p < buf + n; p++)
            if (!strchr(" \t\r\n", *p)) {
                cJSON_Delete(root);
                rc = fail(err, len, MXV_EXIT_BADINPUT, "%s: line %zu: trailing "
                          "bytes after the JSON object", path, line);
                goto done;
            }
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "doc_id");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, metric);
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(root, "filter");
        const char *why = NULL, *field = NULL;
        if (!cJSON_IsObject(root))
            why = "not a JSON object", field = "line";
        else if (!cJSON_IsNumber(d) || !(d->valuedouble >= 0) ||
                 d->valuedouble >= 0x1p53 || d->valuedouble != floor(d->valuedouble))
            why = d ? "not a non-negative integer" : "missing", field = "doc_id";
        else if (!m)
            why = "missing", field = metric;
        else if (!(cJSON_IsBool(m) ||
                   (cJSON_IsNumber(m) && (m->valuedouble == 0 || m->valuedouble == 1))))
            why = "not 0 or 1 (a per-question right/wrong metric is needed)",
            field = metric;
        else if (fl && (!cJSON_IsString(fl) || strlen(fl->valuestring) > 100 ||
                        strpbrk(fl->valuestring, "\x01\x02\x03\x04\x05\x06\x07\x08\t\n\v\f\r"
                                "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a"
                                "\x1b\x1c\x1d\x1e\x1f\x7f")))
            why = "not a string of at most 100 bytes without control characters",
            field = "filter";
        if (why) {
            rc = fail(err, len, MXV_EXIT_BADINPUT, "%s: line %zu: %s: %s", path,
                      line, field, why);
            cJSON_Delete(root);
            goto done;
        }
        const char *fname = fl ? fl->valuestring : "none";
        if (strset_add(&filters, fname)) {
            cJSON_Delete(root);
            rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
            goto done;
        }
        size_t fi = 0;
        while (strcmp(filters.v[fi], fname))
            fi++;
        if (nr == capn) {
            capn = capn ? 2 * capn : 256;
            raw *r = realloc(rs, capn * sizeof *r);
            if (!r) {
                cJSON_Delete(root);
                rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
                goto done;
            }
            rs = r;
        }
        rs[nr].s.doc = (int64_t)d->valuedouble;
        rs[nr].s.ok = cJSON_IsBool(m) ? cJSON_IsTrue(m) : m->valuedouble == 1;
        rs[nr].s.line = line;
        rs[nr].filt = fi;
        nr++;
        cJSON_Delete(root);
    }
    if (ferror(f)) {
        rc = fail(err, len, MXV_EXIT_INTERNAL, "%s: read error", path);
        goto done;
    }
    if (nr == 0) {
        rc = fail(err, len, MXV_EXIT_BADINPUT, "%s: empty: no samples", path);
        goto done;
    }
    size_t pick = SIZE_MAX;
    for (size_t i = 0; i < filters.n; i++)
        if (filter ? !strcmp(filters.v[i], filter)
                   : (filters.n == 1 || !strcmp(filters.v[i], "strict-match")))
            pick = i;
    if (pick == SIZE_MAX) {
        char list[512] = "";
        for (size_t i = 0; i < filters.n; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     i ? ", " : "", filters.v[i]);
        rc = fail(err, len, filter ? MXV_EXIT_BADINPUT : MXV_EXIT_USAGE,
                  "%s: %s%s%s; the file has filters: %s (choose with --filter)",
                  path, filter ? "no samples of filter \"" : "several filters",
                  filter ? filter : "", filter ? "\"" : "", list);
        goto done;
    }
    if (!(out->filter = strdup(filters.v[pick])) ||
        !(out->s = malloc(nr * sizeof *out->s))) {
        rc = fail(err, len, MXV_EXIT_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nr; i++)
        if (rs[i].filt == pick)
            out->s[out->n++] = rs[i].s;
    qsort(out->s, out->n, sizeof *out->s, doc_cmp);
    for (size_t i = 1; i < out->n; i++)
        if (out->s[i].doc == out->s[i - 1].doc) {
            size_t a = out->s[i].line, b = out->s[i - 1].line;
            rc = fail(err, len, MXV_EXIT_BADINPUT, "%s: line %zu: doc_id %lld "
                      "appears twice for filter \"%s\" (also line %zu)", path,
                      a > b ? a : b, (long long)out->s[i].doc, out->filter,
                      a > b ? b : a);
            goto done;
        }
done:
    free(buf);
    free(rs);
    strset_free(&filters);
    fclose(f);
    if (rc)
        mxv_samples_free(out);
    return rc;
}

int mxv_score_runs(const mxv_samples *test, const mxv_samples *base,
                   double conf, mxv_score *out, char *err, size_t len)
{
    memset(out, 0, sizeof *out);
    out->n = test->n;
    for (size_t i = 0; i < test->n; i++)
        out->k += (size_t)test->s[i].ok;
    out->acc = (double)out->k / (double)out->n;
    mxv_wilson(out->k, out->n, 0.95, &out->lo95, &out->hi95);
    out->conf = conf;
    out->lower = mxv_wilson_lower(out->k, out->n, conf);
    if (!base)
        return 0;
    out->have_base = 1;
    for (size_t i = 0; i < base->n; i++)
        out->base_k += (size_t)base->s[i].ok;
    size_t i = 0, j = 0;
    while (i < test->n || j < base->n) {
        if (j == base->n || (i < test->n && test->s[i].doc < base->s[j].doc))
            return fail(err, len, MXV_EXIT_BADINPUT,
                        "%s: line %zu: doc_id %lld is not in %s (different "
                        "question sets)", test->path, test->s[i].line,
                        (long long)test->s[i].doc, base->path);
        if (i == test->n || base->s[j].doc < test->s[i].doc)
            return fail(err, len, MXV_EXIT_BADINPUT,
                        "%s: line %zu: doc_id %lld is not in %s (different "
                        "question sets)", base->path, base->s[j].line,
                        (long long)base->s[j].doc, test->path);
        out->b += base->s[j].ok && !test->s[i].ok;
        out->c += !base->s[j].ok && test->s[i].ok;
        i++;
        j++;
    }
    mxv_mcnemar(out->b, out->c, &out->p_two, &out->p_worse);
    return 0;
}
