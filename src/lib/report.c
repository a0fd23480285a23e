/* report.c -- text, JSON, Markdown and JUnit reports (see report.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "out.h"
#include "report.h"
#include "lib/provenance.h"

void mxv_report_counts(const mxv_report *r, size_t *pass, size_t *fail)
{
    *pass = *fail = 0;
    for (size_t i = 0; i < r->rows->n; i++)
        (r->v[i].pass ? (*pass)++ : (*fail)++);
    for (size_t i = 0; i < r->nchecks; i++)
        (r->checks[i].pass ? (*pass)++ : (*fail)++);
}

static void ratio_str(const mxv_row *w, char *buf, size_t len)
{
    if (w->error)
        snprintf(buf, len, "error");
    else if (w->j.by_bytes)
        snprintf(buf, len, "bytes");
    else
        snprintf(buf, len, "%.4f", w->j.max_ratio);
}

void mxv_report_table(FILE *f, const mxv_report *r)
{
    fprintf(f, "%-22s %-26s %-8s %6s %9s %8s %9s %6s %6s %9s  %s\n", "case", "kernel",
            "shape", "tokens", "max e/B", "max ulp", "outside", "exact", "agree",
            "ms", "verdict");
    for (size_t i = 0; i < r->rows->n; i++) {
        const mxv_row *w = &r->rows->rows[i];
        char ratio[16], ulp[16];
        ratio_str(w, ratio, sizeof ratio);
        if (w->j.by_bytes || w->error)
            snprintf(ulp, sizeof ulp, "-");
        else if (w->j.by_equal)
            snprintf(ulp, sizeof ulp, "equal");
        else
            snprintf(ulp, sizeof ulp, "%.2f", w->j.max_ulp);
        fprintf(f, "%-22s %-26s %-8.8s %6zu %9s %8s %9zu %6s %6s %9.3f  %s\n",
                w->case_name, w->kernel, w->shape, w->tokens, ratio, ulp,
                w->j.outside, w->bit_exact ? "yes" : "no",
                w->backends_agree < 0 ? "-" : w->backends_agree ? "yes" : "NO", w->ms,
                r->v[i].pass ? "ok" : r->v[i].why);
    }
    for (size_t i = 0; i < r->nchecks; i++) {
        const mxv_model_check *c = &r->checks[i];
        fprintf(f, "%s [%s]: %s  %s%s\n", c->name, c->entry, c->summary,
                c->pass ? "ok" : "FAIL: ", c->pass ? "" : c->why);
    }
    size_t p, fl;
    mxv_report_counts(r, &p, &fl);
    fprintf(f, "%s: %zu passed, %zu failed\n", r->title, p, fl);
}

static double finite_or_max(double x) { return isfinite(x) ? x : 1e308; }

cJSON *mxv_report_json_object(const mxv_report *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", r->title);
    cJSON_AddStringToObject(root, "suite", r->suite);
    cJSON_AddStringToObject(root, "backend", r->backend);
    cJSON_AddStringToObject(root, "device", r->device ? r->device : "");
    if (r->golden) {
        char rel[4096];
        cJSON_AddStringToObject(root, "golden", mxv_relpath(r->golden, rel, sizeof rel));
    }
    cJSON_AddItemToObject(root, "provenance",
                          mxv_provenance_json(r->backend, r->device, r->seed));
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    size_t p, fl;
    mxv_report_counts(r, &p, &fl);
    cJSON_AddNumberToObject(root, "passed", (double)p);
    cJSON_AddNumberToObject(root, "failed", (double)fl);
    cJSON *arr = cJSON_AddArrayToObject(root, "results");
    for (size_t i = 0; i < r->rows->n; i++) {
        const mxv_row *w = &r->rows->rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "case", w->case_name);
        cJSON_AddStringToObject(o, "kernel", w->kernel);
        cJSON_AddStringToObject(o, "shape", w->shape);
        cJSON_AddNumberToObject(o, "tokens", (double)w->tokens);
        cJSON_AddStringToObject(o, "policy", w->policy);
        cJSON_AddStringToObject(o, "accum_model", w->model);
        cJSON_AddStringToObject(o, "backend", w->backend);
        cJSON_AddBoolToObject(o, "pass", r->v[i].pass);
        cJSON_AddStringToObject(o, "verdict", r->v[i].why);
        cJSON_AddStringToObject(o, "judged_by", w->j.by_bytes ? "bytes" : "bound");
        cJSON_AddNumberToObject(o, "elements", (double)w->j.n);
        cJSON_AddNumberToObject(o, "outside", (double)w->j.outside);
        if (!w->j.by_bytes) {
            cJSON_AddNumberToObject(o, "max_err_over_bound", finite_or_max(w->j.max_ratio));
            cJSON_AddNumberToObject(o, "max_bf16_ulp", finite_or_max(w->j.max_ulp));
            cJSON_AddNumberToObject(o, "rel_l2", finite_or_max(w->j.rel_l2));
            cJSON_AddBoolToObject(o, "torch_allclose_bf16", w->j.allclose);
            cJSON_AddNumberToObject(o, "aiter_mismatch", finite_or_max(w->j.aiter_mismatch));
            if (!w->j.info_only && !w->j.by_equal) {
                /* every element's verdict class (judge.h); they sum to n */
                cJSON *vc = cJSON_AddObjectToObject(o, "verdict_classes");
                cJSON_AddNumberToObject(vc, "bound", (double)w->j.cls_bound);
                cJSON_AddNumberToObject(vc, "overflow_edge", (double)w->j.cls_ovf_edge);
                cJSON_AddNumberToObject(vc, "model_special", (double)w->j.cls_model_special);
                cJSON_AddNumberToObject(vc, "bound_infinite", (double)w->j.cls_bound_inf);
                cJSON_AddNumberToObject(vc, "exact_special", (double)w->j.cls_exact_special);
            }
        }
        cJSON_AddBoolToObject(o, "bit_exact", w->bit_exact);
        if (w->backends_agree >= 0)
            cJSON_AddBoolToObject(o, "gpu_equals_cpu", w->backends_agree);
        cJSON_AddNumberToObject(o, "kernel_ms", w->ms);
        if (w->error)
            cJSON_AddStringToObject(o, "error", w->message);
        cJSON_AddItemToArray(arr, o);
    }
    if (r->nchecks) {
        cJSON *mc = cJSON_AddArrayToObject(root, "model_checks");
        for (size_t i = 0; i < r->nchecks; i++) {
            const mxv_model_check *c = &r->checks[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "check", c->name);
            cJSON_AddStringToObject(o, "entry", c->entry);
            cJSON_AddBoolToObject(o, "pass", c->pass);
            cJSON_AddStringToObject(o, "verdict", c->pass ? "" : c->why);
            cJSON_AddStringToObject(o, "summary", c->summary);
            cJSON *rep = c->json ? cJSON_Parse(c->json) : NULL;
            if (rep)
                cJSON_AddItemToObject(o, "report", rep);
            cJSON_AddItemToArray(mc, o);
        }
    }
    return root;
}

int mxv_report_json(const char *path, const mxv_report *r, char *err, size_t len)
{
    cJSON *root = mxv_report_json_object(r);
    int rc = mxv_out_write_json(path, root, 0, err, len);
    cJSON_Delete(root);
    return rc;
}

/* a growable string */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} buf;

static void bputs(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bputs(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
}

/* Markdown / XML escaping of free text */
static void bput_md(buf *b, const char *t)
{
    for (; *t; t++)
        bputs(b, "%s", *t == '|' ? "\\|" : (char[2]){*t, 0});
}

static void bput_xml(buf *b, const char *t)
{
    for (; *t; t++)
        switch (*t) {
        case '<': bputs(b, "&lt;"); break;
        case '>': bputs(b, "&gt;"); break;
        case '&': bputs(b, "&amp;"); break;
        case '"': bputs(b, "&quot;"); break;
        default:
            if ((unsigned char)*t >= 0x20 || *t == '\t' || *t == '\n')
                bputs(b, "%c", *t);
        }
}

int mxv_report_markdown(const char *path, const mxv_report *r, char *err, size_t len)
{
    buf b = {NULL, 0, 0, 0};
    size_t p, fl;
    mxv_report_counts(r, &p, &fl);
    bputs(&b, "## %s: %s (%s)\n\n", r->title, fl ? "FAILED" : "passed", r->suite);
    bputs(&b, "%zu passed, %zu failed on the %s backend (", p, fl, r->backend);
    bput_md(&b, r->device ? r->device : "");
    char rel[4096];
    bputs(&b, ")%s%s, %.1f s.\n\n", r->golden ? ", golden " : "",
          r->golden ? mxv_relpath(r->golden, rel, sizeof rel) : "", r->seconds);
    {
        cJSON *pv = mxv_provenance_json(r->backend, r->device, r->seed);
        const cJSON *it;
        bputs(&b, "<sub>");
        cJSON_ArrayForEach(it, pv)
        {
            if (cJSON_IsString(it)) {
                bputs(&b, "%s: ", it->string);
                bput_md(&b, it->valuestring);
                bputs(&b, "; ");
            }
        }
        bputs(&b, "</sub>\n\n");
        cJSON_Delete(pv);
    }
    bputs(&b, "| | case | kernel | tokens | max err/bound | max ulp | outside | bit-exact | ms |\n");
    bputs(&b, "|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->rows->n; i++) {
        const mxv_row *w = &r->rows->rows[i];
        char ratio[16];
        ratio_str(w, ratio, sizeof ratio);
        bputs(&b, "| %s | %s | %s | %zu | %s | ", r->v[i].pass ? "✅" : "❌",
              w->case_name, w->kernel, w->tokens, ratio);
        if (w->j.by_bytes || w->error)
            bputs(&b, "- | ");
        else if (w->j.by_equal)
            bputs(&b, "equal | ");
        else
            bputs(&b, "%.2f | ", w->j.max_ulp);
        bputs(&b, "%zu | %s | %.3f |\n", w->j.outside, w->bit_exact ? "yes" : "no", w->ms);
    }
    if (r->nchecks) {
        bputs(&b, "\n### Model checks\n\n| | check | entry | figures |\n|---|---|---|---|\n");
        for (size_t i = 0; i < r->nchecks; i++) {
            const mxv_model_check *c = &r->checks[i];
            bputs(&b, "| %s | ", c->pass ? "✅" : "❌");
            bput_md(&b, c->name);
            bputs(&b, " | ");
            bput_md(&b, c->entry);
            bputs(&b, " | ");
            bput_md(&b, c->summary);
            bputs(&b, " |\n");
        }
    }
    if (fl) {
        bputs(&b, "\n### Failures\n\n");
        for (size_t i = 0; i < r->rows->n; i++)
            if (!r->v[i].pass) {
                bputs(&b, "- **%s / %s**: ", r->rows->rows[i].case_name,
                      r->rows->rows[i].kernel);
                bput_md(&b, r->v[i].why);
                bputs(&b, "\n");
            }
        for (size_t i = 0; i < r->nchecks; i++)
            if (!r->checks[i].pass) {
                bputs(&b, "- **");
                bput_md(&b, r->checks[i].name);
                bputs(&b, "**: ");
                bput_md(&b, r->checks[i].why);
                bputs(&b, "\n");
            }
    }
    if (b.oom) {
        free(b.s);
        snprintf(err, len, "%s: out of memory", path);
        return -1;
    }
    int rc = mxv_out_write_text(path, b.s ? b.s : "", err, len);
    free(b.s);
    return rc;
}

int mxv_report_junit(const char *path, const mxv_report *r, char *err, size_t len)
{
    buf b = {NULL, 0, 0, 0};
    size_t p, fl;
    mxv_report_counts(r, &p, &fl);
    bputs(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    bputs(&b, "<testsuites name=\"");
    bput_xml(&b, r->title);
    bputs(&b, "\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n", p + fl, fl, r->seconds);
    bputs(&b, "  <testsuite name=\"");
    bput_xml(&b, r->suite);
    bputs(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"%.3f\">\n", p + fl, fl,
          r->seconds);
    {
        cJSON *pv = mxv_provenance_json(r->backend, r->device, r->seed);
        const cJSON *it;
        bputs(&b, "    <properties>\n");
        cJSON_ArrayForEach(it, pv)
        {
            if (!cJSON_IsString(it))
                continue;
            bputs(&b, "      <property name=\"");
            bput_xml(&b, it->string);
            bputs(&b, "\" value=\"");
            bput_xml(&b, it->valuestring);
            bputs(&b, "\"/>\n");
        }
        bputs(&b, "    </properties>\n");
        cJSON_Delete(pv);
    }
    for (size_t i = 0; i < r->rows->n; i++) {
        const mxv_row *w = &r->rows->rows[i];
        bputs(&b, "    <testcase classname=\"");
        bput_xml(&b, w->case_name);
        bputs(&b, "\" name=\"");
        bput_xml(&b, w->kernel);
        bputs(&b, "\" time=\"%.6f\">", w->ms / 1000.0);
        if (!r->v[i].pass) {
            bputs(&b, "<failure message=\"");
            bput_xml(&b, r->v[i].why);
            bputs(&b, "\">");
            bput_xml(&b, r->v[i].why);
            bputs(&b, "</failure>");
        }
        bputs(&b, "</testcase>\n");
    }
    for (size_t i = 0; i < r->nchecks; i++) {
        const mxv_model_check *c = &r->checks[i];
        bputs(&b, "    <testcase classname=\"model\" name=\"");
        bput_xml(&b, c->name);
        bputs(&b, "\" time=\"0\">");
        if (!c->pass) {
            bputs(&b, "<failure message=\"");
            bput_xml(&b, c->why);
            bputs(&b, "\">");
            bput_xml(&b, c->summary);
            bputs(&b, "</failure>");
        }
        bputs(&b, "</testcase>\n");
    }
    bputs(&b, "  </testsuite>\n</testsuites>\n");
    if (b.oom) {
        free(b.s);
        snprintf(err, len, "%s: out of memory", path);
        return -1;
    }
    int rc = mxv_out_write_text(path, b.s, err, len);
    free(b.s);
    return rc;
}

int mxv_report_emit(FILE *f, const mxv_report *r, const char *json, const char *md,
                    const char *junit)
{
    mxv_report_table(f, r);
    for (size_t i = 0; i < r->rows->n; i++)
        if (!r->v[i].pass && r->rows->rows[i].j.nbad)
            mxv_judge_print_bad(f, &r->rows->rows[i].j);
    int rc = 0;
    char err[512];
    if (json && mxv_report_json(json, r, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (md && mxv_report_markdown(md, r, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (junit && mxv_report_junit(junit, r, err, sizeof err) != 0)
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    size_t p, fl;
    mxv_report_counts(r, &p, &fl);
    return rc ? rc : fl ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
