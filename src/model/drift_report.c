/* drift_report.c -- the drift report: text, JSON, Markdown and an SVG plot
 * of the per-layer error growth (a small writer; 
 * docs/drift.md says why not PLplot).  Files go through mxv_out (out.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "model/drift.h"
#include "out.h"

/* ---- shared pieces ---------------------------------------------------------- */

/* Every report goes through the one safe writer (src/lib/out.h): a
 * temporary file renamed into place, never an input of the run. */
static int write_atomic(const char *path, const char *text, char *err, size_t len)
{
    return mxv_out_write_text(path, text, err, len);
}

static const char *expert_name(long e, char *buf, size_t len)
{
    if (e == MXV_DRIFT_EXPERT_SHARED)
        snprintf(buf, len, "shared expert");
    else if (e == MXV_DRIFT_EXPERT_NONE)
        snprintf(buf, len, "no expert (per token)");
    else
        snprintf(buf, len, "expert %ld", e);
    return buf;
}

/* Ranked (layer, item, count) triples, largest count first. */
typedef struct {
    int layer;
    long item;
    size_t count;
    const char *stage;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    if (x->layer != y->layer)
        return x->layer - y->layer;
    return (x->item > y->item) - (x->item < y->item);
}

/* what: 0 stages, 1 experts, 2 tokens, 3 layers.  Returns a malloc'd array. */
static ranked *rank(const mxv_drift *d, int what, size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; i < d->nlayers; i++)
        cap += what == 0 ? d->layers[i].nst : what == 1 ? d->layers[i].E + 1
               : what == 2 ? d->layers[i].T : 1;
    ranked *r = malloc((cap ? cap : 1) * sizeof *r);
    *n = 0;
    if (!r)
        return NULL;
    for (size_t i = 0; i < d->nlayers; i++) {
        const mxv_drift_layer *L = &d->layers[i];
        if (what == 0)
            for (size_t s = 0; s < L->nst; s++) {
                if (L->st[s].outside)
                    r[(*n)++] = (ranked){L->layer, (long)s, L->st[s].outside, L->st[s].name};
            }
        else if (what == 1)
            for (size_t e = 0; e <= L->E; e++) {
                if (L->expert_outside && L->expert_outside[e])
                    r[(*n)++] = (ranked){L->layer, e == L->E ? MXV_DRIFT_EXPERT_SHARED : (long)e,
                                         L->expert_outside[e], NULL};
            }
        else if (what == 2)
            for (size_t t = 0; t < L->T; t++) {
                if (L->token_outside && L->token_outside[t])
                    r[(*n)++] = (ranked){L->layer, (long)t, L->token_outside[t], NULL};
            }
        else if (L->outside)
            r[(*n)++] = (ranked){L->layer, L->layer, L->outside, NULL};
    }
    qsort(r, *n, sizeof *r, cmp_ranked);
    return r;
}

/* JSON has no inf: +-big for infinities; NaN stays NaN (cJSON writes null). */
static double finite_or(double v, double big)
{
    return isfinite(v) || isnan(v) ? v : (v > 0 ? big : -big);
}

/* The verdict in one or two lines. */
static void verdict(FILE *f, const mxv_drift *d)
{
    char eb[64];
    if (d->first_bug >= 0) {
        const mxv_drift_layer *L = &d->layers[d->first_bug];
        fprintf(f, "verdict: BUG: layer %d is the first layer whose local error leaves its bound",
                L->layer);
        if (L->first_stage >= 0) {
            const mxv_drift_stage *s = &L->st[L->first_stage];
            if (s->top_expert >= 0 || s->top_expert == MXV_DRIFT_EXPERT_SHARED)
                fprintf(f, ":\n  stage %s, %s (%zu of the stage's %zu elements outside)",
                        s->name, expert_name(s->top_expert, eb, sizeof eb),
                        s->top_expert_outside, s->outside);
            else
                fprintf(f, ":\n  stage %s, not per expert (%zu elements outside)", s->name,
                        s->outside);
            fprintf(f, "; first element %s[%ld, %ld] (token %ld)", s->name, s->first_row,
                    s->first_col, s->first_token);
        } else if (L->route_mismatch) {
            fprintf(f, ":\n  routing: %zu tokens routed to another expert set", L->route_mismatch);
        }
        fprintf(f, "\n");
        size_t later = 0, later_bad = 0;
        for (size_t i = (size_t)d->first_bug + 1; i < d->nlayers; i++) {
            later++;
            later_bad += !d->layers[i].local_pass;
        }
        if (later)
            fprintf(f, "  later layers: %zu of %zu also leave their bound locally; the others' "
                       "differences are inherited\n", later_bad, later);
    } else if (d->nlayers) {
        const mxv_drift_layer *a = &d->layers[0], *z = &d->layers[d->nlayers - 1];
        fprintf(f, "verdict: no layer's local error leaves its bound; inherited drift (TEST vs "
                   "BASE, rel L2 of the layer output) goes from %.3g at layer %d to %.3g at "
                   "layer %d: arithmetic, not a bug\n", a->out.rel_l2, a->layer, z->out.rel_l2,
                z->layer);
    }
    for (size_t i = 0; i < d->nlayers; i++)
        if (!d->layers[i].base_pass) {
            fprintf(f, "note: the BASE capture of layer %d leaves its bound locally (%zu "
                       "elements): the baseline itself is suspect\n",
                    d->layers[i].layer, d->layers[i].base_outside);
            break;
        }
}

/* ---- text ---------------------------------------------------------------------- */

void mxv_drift_print(FILE *f, const mxv_drift *d, int top)
{
    char eb[64];
    const mxv_drift_layer *L0 = d->nlayers ? &d->layers[0] : NULL;
    fprintf(f, "mxverify drift: BASE %s vs TEST %s\n", d->base_dir, d->test_dir);
    if (L0)
        fprintf(f, "%zu layers, %zu tokens, hidden %zu, %zu experts, top-%zu\n\n", d->nlayers,
                L0->T, L0->H, L0->E, L0->k);
    fprintf(f, "%5s  %-10s  %5s  %8s  %8s  %-12s |  %9s  %9s  %9s  %8s  %10s  %7s  %7s\n",
            "layer", "policy", "local", "outside", "max e/B", "first stage", "in relL2",
            "out relL2", "SQNR dB", "cosine", "growth", "routing", "logits");
    for (size_t i = 0; i < d->nlayers; i++) {
        const mxv_drift_layer *L = &d->layers[i];
        double mr = 0;
        for (size_t s = 0; s < L->nst; s++)
            if (!L->st[s].by_bytes && L->st[s].max_ratio > mr)
                mr = L->st[s].max_ratio;
        char lg[16] = "-";
        if (L->has_logits)
            snprintf(lg, sizeof lg, "%.2g", L->logits.rel_l2);
        char ra[16] = "-";
        if (!isnan(L->route_agree))
            snprintf(ra, sizeof ra, "%.1f%%", 100 * L->route_agree);
        char gr[16] = "-";
        if (!isnan(L->growth))
            snprintf(gr, sizeof gr, "%.3g", L->growth);
        fprintf(f, "%5d  %-10s  %5s  %8zu  %8.3g  %-12s |  %9.3g  %9.3g  %9.1f  %8.6f  %10s  %7s  %7s\n",
                L->layer, L->policy, L->local_pass ? "pass" : "FAIL", L->outside, mr,
                L->first_stage >= 0 ? L->st[L->first_stage].name : "-", L->in.rel_l2,
                L->out.rel_l2, L->out.sqnr_db, L->out.cosine, gr, ra, lg);
    }
    fprintf(f, "(local: TEST judged from its own input, as `check` judges it; in/out: TEST vs "
               "BASE on the layer input and output; growth = out relL2 / in relL2, - where the inputs are equal; logits: "
               "relL2 of the router logits)\n\n");
    if (d->has_kld)
        fprintf(f, "KLD at the logits, KL(BASE || TEST), %zu teacher-forced positions of %zu "
                   "requests: mean %.4g +- %.2g, 99%% %.4g, max %.4g; same top-1 %.2f%%\n\n",
                d->kld_n, d->kld_requests, d->kld_mean, d->kld_se, d->kld_p99, d->kld_max,
                100 * d->same_top1);
    else
        fprintf(f, "KLD at the logits: not computed (logprobs.safetensors missing in a run)\n\n");
    verdict(f, d);
    int header = 0;
    static const int order[4] = {3, 0, 1, 2};
    for (int wi = 0; wi < 4; wi++) {
        int what = order[wi];
        size_t n;
        ranked *r = rank(d, what, &n);
        if (!r || n == 0) {
            free(r);
            continue;
        }
        static const char *title[] = {"stages", "experts", "tokens", "layers"};
        if (!header++)
            fprintf(f, "\nranked by elements outside their bound (layer, item: count):\n");
        fprintf(f, "  %-8s", title[what]);
        for (size_t i = 0; i < n && (int)i < top; i++) {
            if (what == 0)
                fprintf(f, " %d %s: %zu%s", r[i].layer, r[i].stage, r[i].count,
                        i + 1 < n && (int)i + 1 < top ? ";" : "");
            else if (what == 1)
                fprintf(f, " %d %s: %zu%s", r[i].layer, expert_name(r[i].item, eb, sizeof eb),
                        r[i].count, i + 1 < n && (int)i + 1 < top ? ";" : "");
            else if (what == 2)
                fprintf(f, " %d token %ld: %zu%s", r[i].layer, r[i].item, r[i].count,
                        i + 1 < n && (int)i + 1 < top ? ";" : "");
            else
                fprintf(f, " layer %d: %zu%s", r[i].layer, r[i].count,
                        i + 1 < n && (int)i + 1 < top ? ";" : "");
        }
        fprintf(f, "%s\n", n > (size_t)top ? " ..." : "");
        free(r);
    }
    /* layers by inherited drift growth */
    fprintf(f, "\ninherited drift, layers by growth of rel L2 (out / in):");
    int *ord = malloc((d->nlayers ? d->nlayers : 1) * sizeof *ord);
    for (size_t i = 0; ord && i < d->nlayers; i++)
        ord[i] = (int)i;
    for (size_t i = 0; ord && i < d->nlayers; i++)
        for (size_t j = i + 1; j < d->nlayers; j++)
            if ((isnan(d->layers[ord[i]].growth) && !isnan(d->layers[ord[j]].growth)) ||
                finite_or(d->layers[ord[j]].growth, 1e300) >
                    finite_or(d->layers[ord[i]].growth, 1e300)) {
                int t = ord[i];
                ord[i] = ord[j];
                ord[j] = t;
            }
    size_t ng = 0;
    for (size_t i = 0; ord && i < d->nlayers; i++)
        ng += !isnan(d->layers[i].growth);
    for (size_t i = 0; ord && i < ng && (int)i < top; i++)
        fprintf(f, " %d: %.3g%s", d->layers[ord[i]].layer, d->layers[ord[i]].growth,
                i + 1 < ng && (int)i + 1 < top ? ";" : "");
    free(ord);
    fprintf(f, "\n\nFP8 statistics of the TEST captures (share of elements; underflow: nonzero "
               "source quantized to 0):\n");
    fprintf(f, "%5s  %-6s  %-9s  %8s  %7s  %10s  %10s  %10s  %s\n", "layer", "tensor", "format",
            "elements", "zero", "underflow", "saturated", "subnormal",
            "scale bytes: min..max (mode: count)");
    for (size_t i = 0; i < d->nlayers; i++)
        for (size_t q = 0; q < d->layers[i].nfp8; q++) {
            const mxv_drift_fp8 *s = &d->layers[i].fp8[q];
            char uf[16] = "-";
            if (!isnan(s->underflow))
                snprintf(uf, sizeof uf, "%.3f%%", 100 * s->underflow);
            fprintf(f, "%5d  %-6s  %-9s  %8zu  %6.2f%%  %10s  %9.3f%%  %9.3f%%  %d..%d (%d: %zu)\n",
                    d->layers[i].layer, s->name, s->format, s->n, 100 * s->zero, uf,
                    100 * s->saturated, 100 * s->subnormal, s->scale_min, s->scale_max,
                    s->scale_mode, s->scale_mode >= 0 ? s->scale_hist[s->scale_mode] : 0);
        }
}

/* ---- JSON ---------------------------------------------------------------------- */

static cJSON *cmp_json(const mxv_drift_cmp *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "elements", (double)c->n);
    cJSON_AddNumberToObject(o, "sqnr_db", finite_or(c->sqnr_db, 1e308));
    cJSON_AddNumberToObject(o, "cosine", c->cosine);
    cJSON_AddNumberToObject(o, "rel_l2", c->rel_l2);
    cJSON_AddNumberToObject(o, "max_abs", c->max_abs);
    return o;
}

int mxv_drift_write_json(const char *path, const mxv_drift *d, char *err, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "mxverify-drift/1");
    cJSON_AddStringToObject(o, "base", d->base_dir);
    cJSON_AddStringToObject(o, "test", d->test_dir);
    cJSON_AddBoolToObject(o, "pass", d->first_bug < 0);
    if (d->first_bug >= 0) {
        const mxv_drift_layer *L = &d->layers[d->first_bug];
        cJSON *b = cJSON_AddObjectToObject(o, "first_bug");
        cJSON_AddNumberToObject(b, "layer", L->layer);
        if (L->first_stage >= 0) {
            const mxv_drift_stage *s = &L->st[L->first_stage];
            cJSON_AddStringToObject(b, "stage", s->name);
            if (s->top_expert >= 0)
                cJSON_AddNumberToObject(b, "expert", (double)s->top_expert);
            else
                cJSON_AddStringToObject(b, "expert", s->top_expert == MXV_DRIFT_EXPERT_SHARED
                                                         ? "shared" : "none");
            cJSON_AddNumberToObject(b, "outside", (double)s->outside);
            cJSON_AddNumberToObject(b, "first_row", (double)s->first_row);
            cJSON_AddNumberToObject(b, "first_col", (double)s->first_col);
            cJSON_AddNumberToObject(b, "first_token", (double)s->first_token);
        }
    }
    if (d->has_kld) {
        cJSON *k = cJSON_AddObjectToObject(o, "kld_logits");
        cJSON_AddNumberToObject(k, "positions", (double)d->kld_n);
        cJSON_AddNumberToObject(k, "requests", (double)d->kld_requests);
        cJSON_AddNumberToObject(k, "mean", d->kld_mean);
        cJSON_AddNumberToObject(k, "se", d->kld_se);
        cJSON_AddNumberToObject(k, "p99", d->kld_p99);
        cJSON_AddNumberToObject(k, "max", d->kld_max);
        cJSON_AddNumberToObject(k, "same_top1", d->same_top1);
    }
    cJSON *arr = cJSON_AddArrayToObject(o, "layers");
    for (size_t i = 0; i < d->nlayers; i++) {
        const mxv_drift_layer *L = &d->layers[i];
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "layer", L->layer);
        cJSON_AddStringToObject(l, "base_file", L->base_path);
        cJSON_AddStringToObject(l, "test_file", L->test_path);
        cJSON_AddStringToObject(l, "policy", L->policy);
        cJSON_AddStringToObject(l, "base_policy", L->base_policy);
        cJSON_AddNumberToObject(l, "tokens", (double)L->T);
        cJSON *loc = cJSON_AddObjectToObject(l, "local");
        cJSON_AddBoolToObject(loc, "pass", L->local_pass);
        cJSON_AddNumberToObject(loc, "outside", (double)L->outside);
        cJSON_AddNumberToObject(loc, "routing_mismatch", (double)L->route_mismatch);
        cJSON_AddNumberToObject(loc, "out_vs_exact_chain_rel_l2", L->local_rel_l2);
        cJSON_AddNumberToObject(loc, "out_vs_exact_chain_max_bf16_ulp", L->local_max_ulp);
        cJSON *sts = cJSON_AddArrayToObject(loc, "stages");
        for (size_t s = 0; s < L->nst; s++) {
            const mxv_drift_stage *st = &L->st[s];
            cJSON *so = cJSON_CreateObject();
            cJSON_AddStringToObject(so, "stage", st->name);
            cJSON_AddStringToObject(so, "judged_by", st->by_bytes ? "bytes" : "bound");
            cJSON_AddNumberToObject(so, "elements", (double)st->n);
            cJSON_AddNumberToObject(so, "outside", (double)st->outside);
            if (!st->by_bytes)
                cJSON_AddNumberToObject(so, "max_err_over_bound", finite_or(st->max_ratio, 1e308));
            cJSON_AddNumberToObject(so, "bit_exact_share", st->bit_exact);
            cJSON_AddItemToArray(sts, so);
        }
        cJSON *ex = cJSON_AddArrayToObject(loc, "expert_outside");
        for (size_t e = 0; L->expert_outside && e < L->E; e++)
            cJSON_AddItemToArray(ex, cJSON_CreateNumber((double)L->expert_outside[e]));
        cJSON_AddNumberToObject(loc, "shared_expert_outside",
                                L->expert_outside ? (double)L->expert_outside[L->E] : 0);
        cJSON *tk = cJSON_AddArrayToObject(loc, "token_outside");
        for (size_t t = 0; L->token_outside && t < L->T; t++)
            cJSON_AddItemToArray(tk, cJSON_CreateNumber((double)L->token_outside[t]));
        cJSON_AddBoolToObject(l, "base_local_pass", L->base_pass);
        cJSON *inh = cJSON_AddObjectToObject(l, "inherited");
        cJSON_AddItemToObject(inh, "input", cmp_json(&L->in));
        cJSON_AddItemToObject(inh, "output", cmp_json(&L->out));
        if (L->has_logits)
            cJSON_AddItemToObject(inh, "router_logits", cmp_json(&L->logits));
        if (!isnan(L->route_agree))
            cJSON_AddNumberToObject(inh, "routing_agreement", L->route_agree);
        cJSON_AddNumberToObject(inh, "growth", finite_or(L->growth, 1e308));
        cJSON *fp = cJSON_AddArrayToObject(l, "fp8");
        for (size_t q = 0; q < L->nfp8; q++) {
            const mxv_drift_fp8 *s = &L->fp8[q];
            cJSON *so = cJSON_CreateObject();
            cJSON_AddStringToObject(so, "tensor", s->name);
            cJSON_AddStringToObject(so, "format", s->format);
            cJSON_AddNumberToObject(so, "elements", (double)s->n);
            cJSON_AddNumberToObject(so, "zero", s->zero);
            if (!isnan(s->underflow))
                cJSON_AddNumberToObject(so, "underflow", s->underflow);
            cJSON_AddNumberToObject(so, "saturated", s->saturated);
            cJSON_AddNumberToObject(so, "subnormal", s->subnormal);
            cJSON_AddNumberToObject(so, "nan", s->nan);
            cJSON *h = cJSON_AddObjectToObject(so, "scale_histogram");
            for (int b = 0; b < 256; b++)
                if (s->scale_hist[b]) {
                    char key[8];
                    snprintf(key, sizeof key, "%d", b);
                    cJSON_AddNumberToObject(h, key, (double)s->scale_hist[b]);
                }
            cJSON_AddItemToArray(fp, so);
        }
        cJSON_AddItemToArray(arr, l);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    size_t n = strlen(text);
    char *t2 = malloc(n + 2);
    int rc = -1;
    if (t2) {
        memcpy(t2, text, n);
        t2[n] = '\n';
        t2[n + 1] = 0;
        rc = write_atomic(path, t2, err, len);
    }
    free(t2);
    cJSON_free(text);
    return rc;
}

/* ---- Markdown and SVG: rendered into memory, then written ------------------------ */

static int render(char **buf, size_t *size, FILE **f)
{
    *f = open_memstream(buf, size);
    return *f ? 0 : -1;
}

int mxv_drift_write_md(const char *path, const mxv_drift *d, int top, char *err, size_t len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;
    if (render(&buf, &size, &f)) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    fprintf(f, "# mxverify drift\n\nBASE `%s`, TEST `%s`\n\n", d->base_dir, d->test_dir);
    fprintf(f, "| layer | policy | local | outside | first stage | in rel L2 | out rel L2 | "
               "out SQNR dB | growth |\n|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < d->nlayers; i++) {
        const mxv_drift_layer *L = &d->layers[i];
        char gr[16] = "-";
        if (!isnan(L->growth))
            snprintf(gr, sizeof gr, "%.3g", L->growth);
        fprintf(f, "| %d | %s | %s | %zu | %s | %.3g | %.3g | %.1f | %s |\n", L->layer,
                L->policy, L->local_pass ? "pass" : "**FAIL**", L->outside,
                L->first_stage >= 0 ? L->st[L->first_stage].name : "-", L->in.rel_l2,
                L->out.rel_l2, L->out.sqnr_db, gr);
    }
    fprintf(f, "\n```\n");
    mxv_drift_print(f, d, top);
    fprintf(f, "```\n");
    if (fclose(f) != 0 || !buf) {
        free(buf);
        snprintf(err, len, "out of memory");
        return -1;
    }
    int rc = write_atomic(path, buf, err, len);
    free(buf);
    return rc;
}

/* The layer's largest |err|/bound over its bound-judged stages; +inf when
 * a byte- or equality-judged stage has an element outside. */
static double local_ratio(const mxv_drift_layer *L)
{
    double m = 0;
    for (size_t s = 0; s < L->nst; s++) {
        const mxv_drift_stage *st = &L->st[s];
        if (st->outside && (st->by_bytes || !(st->max_ratio > 1)))
            return INFINITY;
        if (!st->by_bytes && st->max_ratio > m)
            m = st->max_ratio;
    }
    return m;
}

/* One panel: a log axis from 10^l0 to 10^l1 at (x0, y0, w, h). */
typedef struct {
    int x0, y0, w, h;
    double l0, l1;
    size_t nl;
} panel;

static double px(const panel *p, size_t i)
{
    return p->x0 + (p->nl > 1 ? (double)i * p->w / (double)(p->nl - 1) : p->w / 2.0);
}

static double py(const panel *p, double v)
{
    double t = (log10(v) - p->l0) / (p->l1 - p->l0);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return p->y0 + p->h - t * p->h;
}

static void axes(FILE *f, const panel *p, const mxv_drift *d, const char *title)
{
    fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", p->x0, p->y0 - 8, title);
    for (double e = p->l0; e <= p->l1 + 1e-9; e += 1) {
        double y = p->y0 + p->h - (e - p->l0) / (p->l1 - p->l0) * p->h;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                p->x0, y, p->x0 + p->w, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", p->x0 - 6,
                y + 4, (int)e);
    }
    for (size_t i = 0; i < p->nl; i++)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px(p, i),
                p->y0 + p->h + 16, d->layers[i].layer);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"black\"/>\n", p->x0, p->y0, p->w, p->h);
}

static void decades(double lo, double hi, double *l0, double *l1)
{
    if (!(lo <= hi)) {
        lo = 1e-6;
        hi = 1;
    }
    *l0 = floor(log10(lo));
    *l1 = ceil(log10(hi));
    if (*l1 <= *l0)
        *l1 = *l0 + 1;
}

/* Two panels over the layers: inherited drift (TEST vs BASE, rel L2 of the
 * layer output and input), and local error (the largest |err|/bound of the
 * layer's stages, judged from TEST's own inputs; the bound is 1, a layer
 * above it is drawn red and pinned to the top when a byte-judged stage
 * fails). */
int mxv_drift_write_svg(const char *path, const mxv_drift *d, char *err, size_t len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;
    if (render(&buf, &size, &f)) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    const int W = 680, Hh = 520, ml = 70, mr = 190;
    size_t nl = d->nlayers;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < nl; i++) {
        double v[2] = {d->layers[i].out.rel_l2, d->layers[i].in.rel_l2};
        for (int q = 0; q < 2; q++)
            if (v[q] > 0 && isfinite(v[q])) {
                lo = v[q] < lo ? v[q] : lo;
                hi = v[q] > hi ? v[q] : hi;
            }
    }
    panel top = {ml, 50, W - ml - mr, 170, 0, 0, nl};
    decades(lo, hi, &top.l0, &top.l1);
    lo = 1, hi = 1;
    for (size_t i = 0; i < nl; i++) {
        double r = local_ratio(&d->layers[i]);
        if (r > 0 && isfinite(r)) {
            lo = r < lo ? r : lo;
            hi = r > hi ? r : hi;
        }
    }
    panel bot = {ml, 300, W - ml - mr, 170, 0, 0, nl};
    decades(lo, hi * 10, &bot.l0, &bot.l1);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, Hh);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, Hh);
    fprintf(f, "<text x=\"%d\" y=\"20\" font-size=\"14\">mxverify drift: per-layer error "
               "growth</text>\n", ml);
    axes(f, &top, d, "inherited drift: TEST vs BASE, relative L2");
    axes(f, &bot, d, "local error: max |err| / bound over the layer's stages");
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">layer</text>\n",
            ml + bot.w / 2, Hh - 12);
    static const char *color[2] = {"#d62728", "#999999"};
    static const char *label[2] = {"layer output", "layer input"};
    for (int q = 0; q < 2; q++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                color[q], q ? " stroke-dasharray=\"4 3\"" : "");
        for (size_t i = 0; i < nl; i++) {
            double v = q ? d->layers[i].in.rel_l2 : d->layers[i].out.rel_l2;
            if (v > 0 && isfinite(v))
                fprintf(f, "%.1f,%.1f ", px(&top, i), py(&top, v));
        }
        fprintf(f, "\"/>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                   "stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
                top.x0 + top.w + 10, top.y0 + 10 + 18 * q, top.x0 + top.w + 30,
                top.y0 + 10 + 18 * q, color[q], top.x0 + top.w + 34, top.y0 + 14 + 18 * q,
                label[q]);
    }
    /* the bound */
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\" "
               "stroke-dasharray=\"6 3\"/><text x=\"%d\" y=\"%.1f\">bound (1)</text>\n",
            bot.x0, py(&bot, 1), bot.x0 + bot.w, py(&bot, 1), bot.x0 + bot.w + 10,
            py(&bot, 1) + 4);
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < nl; i++) {
        double r = local_ratio(&d->layers[i]);
        double v = isinf(r) ? pow(10, bot.l1) : r;
        if (v > 0)
            fprintf(f, "%.1f,%.1f ", px(&bot, i), py(&bot, v));
    }
    fprintf(f, "\"/>\n");
    for (size_t i = 0; i < nl; i++) {
        const mxv_drift_layer *L = &d->layers[i];
        double r = local_ratio(L);
        double v = isinf(r) ? pow(10, bot.l1) : r;
        if (!(v > 0))
            continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"><title>layer %d: %s, "
                   "%zu elements outside</title></circle>\n",
                px(&bot, i), py(&bot, v), L->local_pass ? "#1f77b4" : "red", L->layer,
                L->local_pass ? "inside its bound" : "LEAVES ITS BOUND", L->outside);
    }
    fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"red\"/><text x=\"%d\" y=\"%d\">"
               "outside: a bug</text>\n", bot.x0 + bot.w + 20, bot.y0 + 30, bot.x0 + bot.w + 34,
            bot.y0 + 34);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0 || !buf) {
        free(buf);
        snprintf(err, len, "out of memory");
        return -1;
    }
    int rc = write_atomic(path, buf, err, len);
    free(buf);
    return rc;
}
