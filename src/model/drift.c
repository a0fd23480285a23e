/* drift.c -- drift localization: the two runs' layer captures paired by
 * layer, each TEST layer judged by check's code (local error, attributed to
 * stages, experts and tokens), TEST against BASE per layer (inherited
 * drift), and the KLD at the logits (drift_kld.c).  See drift.h. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "check_capture.h"
#include "cli.h"
#include "model/drift.h"
#include "model/drift_fp8.h"
#include "model/drift_kld.h"
#include "model/kld.h"

/* ---- the captures of a run ---------------------------------------------- */

typedef struct {
    char path[1024];
    int layer;
} cap_file;

typedef struct {
    cap_file *f;
    size_t n;
    char logprobs[1024]; /* "" when absent */
} run_files;

static int cmp_layer(const void *a, const void *b)
{
    const cap_file *x = a, *y = b;
    return (x->layer > y->layer) - (x->layer < y->layer);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Lists DIR/layers/ (or DIR) for *.safetensors captures and reads each
 * one's layer index; DIR/logprobs.safetensors is the log-prob file. */
static int list_run(const char *dir, const char *role, run_files *rf, char *err, size_t len)
{
    char ldir[1024];
    memset(rf, 0, sizeof *rf);
    if (!is_dir(dir))
        return mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: %s run: not a directory", dir, role);
    snprintf(ldir, sizeof ldir, "%s/layers", dir);
    if (!is_dir(ldir))
        snprintf(ldir, sizeof ldir, "%s", dir);
    char lp[1024];
    snprintf(lp, sizeof lp, "%s/logprobs.safetensors", dir);
    struct stat st;
    if (stat(lp, &st) == 0)
        snprintf(rf->logprobs, sizeof rf->logprobs, "%s", lp);
    DIR *d = opendir(ldir);
    if (!d)
        return mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: cannot list: %s", ldir, strerror(errno));
    struct dirent *e;
    size_t cap = 0;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".safetensors") || strcmp(e->d_name, "logprobs.safetensors") == 0)
            continue;
        if (rf->n == cap) {
            cap = cap ? 2 * cap : 16;
            cap_file *nf = realloc(rf->f, cap * sizeof *nf);
            if (!nf) {
                rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
                break;
            }
            rf->f = nf;
        }
        cap_file *cf = &rf->f[rf->n++];
        if ((size_t)snprintf(cf->path, sizeof cf->path, "%s/%s", ldir, e->d_name) >=
            sizeof cf->path) {
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s/%s: path too long", ldir, e->d_name);
            break;
        }
        mxv_st_file *f;
        mxv_st_err se;
        mxv_st_status s = mxv_st_open(cf->path, &f, &se);
        if (s != MXV_ST_OK) {
            rc = mxv_errc(err, len, mxv_st_exit_code(s), "%s", se.msg);
            break;
        }
        const char *kind = mxv_st_meta_get(f, "kind"), *ly = mxv_st_meta_get(f, "layer");
        if (!kind || strcmp(kind, "moe_layer") != 0)
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: metadata \"kind\" is %s%s%s; drift reads moe_layer captures",
                      cf->path, kind ? "\"" : "", kind ? kind : "missing", kind ? "\"" : "");
        else if (!ly)
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: metadata \"layer\" is missing; drift pairs the runs' layers by it",
                      cf->path);
        else {
            char *end;
            errno = 0;
            long v = strtol(ly, &end, 10);
            if (*ly == '\0' || *end || errno || v < 0 || v > 1000000)
                rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                          "%s: metadata \"layer\" is \"%s\"; expected a layer index", cf->path, ly);
            cf->layer = (int)v;
        }
        mxv_st_close(f);
        if (rc)
            break;
    }
    closedir(d);
    if (rc)
        return rc;
    if (rf->n == 0)
        return mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: %s run holds no layer capture (*.safetensors)",
                    ldir, role);
    qsort(rf->f, rf->n, sizeof *rf->f, cmp_layer);
    for (size_t i = 1; i < rf->n; i++)
        if (rf->f[i].layer == rf->f[i - 1].layer)
            return mxv_errc(err, len, MXV_EXIT_BADINPUT,
                        "%s: metadata \"layer\" is %d, as in %s: one capture per layer",
                        rf->f[i].path, rf->f[i].layer, rf->f[i - 1].path);
    return 0;
}

/* ---- comparisons ------------------------------------------------------------ */

static void cmp_values(mxv_drift_cmp *c, const double *t, const double *b, size_t n)
{
    mxv_ksum d2, b2, t2, tb;
    memset(&d2, 0, sizeof d2);
    b2 = t2 = tb = d2;
    c->n = n;
    c->max_abs = 0;
    for (size_t i = 0; i < n; i++) {
        double d = t[i] - b[i];
        mxv_ksum_add(&d2, d * d);
        mxv_ksum_add(&b2, b[i] * b[i]);
        mxv_ksum_add(&t2, t[i] * t[i]);
        mxv_ksum_add(&tb, t[i] * b[i]);
        if (!(fabs(d) <= c->max_abs))
            c->max_abs = fabs(d);
    }
    double D = mxv_ksum_get(&d2), B = mxv_ksum_get(&b2), Tt = mxv_ksum_get(&t2);
    if (isnan(D) || isnan(B) || isnan(Tt)) { /* a NaN or inf in either run */
        c->sqnr_db = c->cosine = c->rel_l2 = c->max_abs = NAN;
        return;
    }
    c->sqnr_db = D > 0 ? 10 * log10(B / D) : INFINITY;
    c->cosine = B > 0 && Tt > 0 ? mxv_ksum_get(&tb) / sqrt(B * Tt) : (B == Tt ? 1 : 0);
    c->rel_l2 = sqrt(D) / (sqrt(B) + 1e-30);
}

static int decode_tensor(const mxv_st_tensor *t, double *v)
{
    for (uint64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case MXV_ST_BF16: v[i] = mx_bf16_to_float(((const uint16_t *)t->data)[i]); break;
        case MXV_ST_F32: v[i] = ((const float *)t->data)[i]; break;
        case MXV_ST_F64: v[i] = ((const double *)t->data)[i]; break;
        default: return -1;
        }
    }
    return 0;
}

/* TEST against BASE on one tensor of both captures; shapes must agree. */
static int cmp_tensor(mxv_drift_cmp *c, const mxv_capture *tc, const mxv_capture *bc,
                      const char *name, int required, int *have, char *err, size_t len)
{
    const mxv_st_tensor *t = mxv_st_find(tc->f, name), *b = mxv_st_find(bc->f, name);
    *have = 0;
    if (!t || !b) {
        if (!required)
            return 0;
        return mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\" is missing",
                    mxv_st_path(!t ? tc->f : bc->f), name);
    }
    if (t->rank != b->rank || memcmp(t->shape, b->shape, sizeof t->shape) != 0) {
        char ts[64] = "", bs[64] = "";
        for (int i = 0; i < t->rank; i++)
            snprintf(ts + strlen(ts), sizeof ts - strlen(ts), "%s%llu", i ? ", " : "",
                     (unsigned long long)t->shape[i]);
        for (int i = 0; i < b->rank; i++)
            snprintf(bs + strlen(bs), sizeof bs - strlen(bs), "%s%llu", i ? ", " : "",
                     (unsigned long long)b->shape[i]);
        return mxv_errc(err, len, MXV_EXIT_BADINPUT,
                    "%s: tensor \"%s\": shape [%s] differs from [%s] in %s (the runs must "
                    "see the same tokens)", mxv_st_path(tc->f), name, ts, bs,
                    mxv_st_path(bc->f));
    }
    double *tv = malloc(mx_nz(t->numel) * sizeof *tv), *bv = malloc(mx_nz(b->numel) * sizeof *bv);
    int rc = 0;
    if (!tv || !bv)
        rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
    else if (decode_tensor(t, tv) || decode_tensor(b, bv))
        rc = mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\": dtype %s is not BF16, F32 or F64",
                  mxv_st_path(tc->f), name, mxv_st_dtype_name(t->dtype));
    else {
        cmp_values(c, tv, bv, t->numel);
        *have = 1;
    }
    free(tv);
    free(bv);
    return rc;
}

/* ---- local error: check's verdicts, attributed ------------------------------ */

typedef struct {
    mxv_drift_layer *L;
    int mismatch;          /* attribution disagrees with check's count */
    char what[160];
} hook_ctx;

/* Attributes one stage's elements outside to tokens and experts and
 * records the stage; family: 0 token rows, 1 routed rows, 2 shared. */
static void attribute(hook_ctx *h, const mxv_judge *j, int family, const int32_t *ids,
                      size_t cols, size_t n, int (*bad)(const void *, size_t), const void *arg)
{
    mxv_drift_layer *L = h->L;
    if (!j || L->nst >= MXV_DRIFT_STAGES)
        return;
    mxv_drift_stage *s = &L->st[L->nst++];
    snprintf(s->name, sizeof s->name, "%s", strncmp(j->name, "routed", 6) == 0 ? "moe_sum" : j->name);
    s->by_bytes = j->by_bytes;
    s->n = j->n;
    s->outside = j->outside;
    s->max_ratio = j->max_ratio;
    s->bit_exact = j->n ? (double)j->bit_exact / (double)j->n : 1;
    s->first_row = s->first_col = s->first_token = s->first_expert = -1;
    if (cols == 0)
        cols = 1;
    size_t count = 0, *per = calloc(L->E + 1, sizeof *per);
    for (size_t i = 0; i < n; i++) {
        if (!bad(arg, i))
            continue;
        size_t row = i / cols;
        size_t tok = family == 1 ? row / L->k : row;
        long ex = family == 1 ? ids[row] : family == 2 ? MXV_DRIFT_EXPERT_SHARED
                                                       : MXV_DRIFT_EXPERT_NONE;
        if (count++ == 0) {
            s->first_row = (long)row;
            s->first_col = (long)(i % cols);
            s->first_token = (long)tok;
            s->first_expert = ex;
        }
        if (tok < L->T)
            L->token_outside[tok]++;
        size_t slot = ex >= 0 && (size_t)ex < L->E ? (size_t)ex
                      : ex == MXV_DRIFT_EXPERT_SHARED ? L->E : (size_t)-1;
        if (slot != (size_t)-1) {
            L->expert_outside[slot]++;
            if (per)
                per[slot]++;
        }
    }
    s->top_expert = MXV_DRIFT_EXPERT_NONE;
    s->top_expert_outside = 0;
    for (size_t e = 0; per && e <= L->E; e++)
        if (per[e] > s->top_expert_outside) {
            s->top_expert_outside = per[e];
            s->top_expert = e == L->E ? MXV_DRIFT_EXPERT_SHARED : (long)e;
        }
    free(per);
    if (count != j->outside && !h->mismatch) {
        h->mismatch = 1;
        snprintf(h->what, sizeof h->what, "stage %s: %zu elements attributed, check counts %zu",
                 j->name, count, j->outside);
    }
}

/* One element against the stage's reference under its verdict kind, by
 * judge.c's per-element rules (mxv_judge_*_bad), as mxv_stage_judge
 * applies them to the whole stage. */
typedef struct {
    mxv_verdict_kind v;
    const void *out, *model, *alt;
    const double *exact, *bound;
} elem_arg;

static int bad_elem(const void *arg, size_t i)
{
    const elem_arg *a = arg;
    switch (a->v) {
    case MXV_VERDICT_BYTES: {
        const uint8_t *o = a->out, *m = a->model, *al = a->alt;
        uint32_t alt = al ? al[i] : 0;
        return mxv_judge_code_bad(o[i], m[i], al ? &alt : NULL);
    }
    case MXV_VERDICT_BF16_CODES: {
        const uint16_t *o = a->out, *m = a->model, *al = a->alt;
        uint32_t alt = al ? al[i] : 0;
        return mxv_judge_code_bad(o[i], m[i], al ? &alt : NULL);
    }
    case MXV_VERDICT_BOUND: {
        const uint16_t *o = a->out, *m = a->model;
        return mxv_judge_bf16_elem_bad(o[i], m ? &m[i] : NULL, a->exact[i], a->bound[i]);
    }
    case MXV_VERDICT_EQUAL:
    case MXV_VERDICT_EQUAL_IF_GIVEN: {
        const uint16_t *o = a->out, *m = a->model;
        return mxv_judge_code_bad(o[i], m[i], NULL);
    }
    case MXV_VERDICT_F32_BOUND: {
        /* check judges FP32 stages without a model (mxv_judge_f32) */
        const float *o = a->out;
        return mxv_judge_f32_elem_bad(o[i], NULL, a->exact[i], a->bound[i]);
    }
    case MXV_VERDICT_INFO:
        return 0;
    }
    return 0;
}

/* check's hook: each judged stage of the TEST layer, re-derived element by
 * element from the stage table's reference and attributed. */
static void on_stage(void *ctx, const mxv_stage *st, const mxv_stage_src *src, const void *out,
                     const mxv_judge *j, const int32_t *ids)
{
    hook_ctx *h = ctx;
    mxv_stage_ref ref;
    memset(&ref, 0, sizeof ref);
    if (src->ref)
        snprintf(h->L->policy, sizeof h->L->policy, "%s", mx_moe_policy_name(src->ref->policy));
    if (st->produce(src, out, &ref) != 0) {
        h->mismatch = 1;
        snprintf(h->what, sizeof h->what, "out of memory");
        return;
    }
    elem_arg a = {st->verdict, out, ref.model, ref.alt, ref.exact, ref.bound};
    if (a.v == MXV_VERDICT_EQUAL_IF_GIVEN)
        a.v = src->inputs_given ? MXV_VERDICT_EQUAL : MXV_VERDICT_BOUND;
    int family = 0;
    switch (st->id) {
    case MXV_STAGE_G1: case MXV_STAGE_ACTQ_SCALE: case MXV_STAGE_ACTQ:
    case MXV_STAGE_ACT: case MXV_STAGE_ACT16: case MXV_STAGE_Y:
        family = 1;
        break;
    case MXV_STAGE_SHARED:
        family = 2;
        break;
    default:
        family = 0;
    }
    attribute(h, j, family, ids, ref.cols, ref.n, bad_elem, &a);
    for (int i = 0; i < 3; i++)
        free(ref.owned[i]);
}

/* Judges one capture with check's code; with L, attributes (TEST). */
static int judge(const char *path, const mx_accum_model *model, mxv_drift_layer *L,
                 size_t *outside, int *pass, char *policy, size_t plen, char *err, size_t len)
{
    mxv_capture c;
    mxv_st_err se;
    mxv_check_result res;
    hook_ctx h;
    memset(&res, 0, sizeof res);
    memset(&h, 0, sizeof h);
    h.L = L;
    mxv_st_status s = mxv_capture_open(path, &c, &se);
    if (s != MXV_ST_OK)
        return mxv_errc(err, len, mxv_st_exit_code(s), "%s", se.msg);
    if (c.kind != MXV_CAP_MOE_LAYER) {
        mxv_capture_close(&c);
        return mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: metadata \"kind\": not moe_layer", path);
    }
    if (model)
        c.model = *model;
    s = mxv_check_capture_hooked(&c, &res, L ? on_stage : NULL, &h, &se);
    int rc = 0;
    if (s != MXV_ST_OK)
        rc = mxv_errc(err, len, mxv_st_exit_code(s), "%s", se.msg);
    else if (h.mismatch)
        rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "%s: drift's attribution disagrees with check (%s)",
                  path, h.what);
    else {
        size_t o = res.route_mismatch;
        for (size_t i = 0; i < res.n; i++)
            o += res.j[i].outside;
        *outside = o;
        *pass = o == 0;
        if (policy)
            snprintf(policy, plen, "%s",
                     mx_moe_policy_name(mx_moe_dispatch(&c.shape, c.policy,
                                                        mxv_st_find(c.f, "x")->shape[0])));
        if (L) {
            L->route_mismatch = res.route_mismatch;
            L->route_ambiguous = res.route_ambiguous;
            L->local_rel_l2 = res.e2e_rel_l2;
            L->local_max_ulp = res.e2e_max_ulp;
            L->first_stage = -1;
            for (size_t i = 0; i < L->nst; i++)
                if (L->st[i].outside) {
                    L->first_stage = (int)i;
                    break;
                }
        }
    }
    mxv_capture_close(&c);
    return rc;
}

/* ---- one layer pair ------------------------------------------------------------ */

static const char *meta_or(const mxv_capture *c, const char *key)
{
    const char *v = mxv_st_meta_get(c->f, key);
    return v ? v : "";
}

static int routing_agree(const mxv_capture *tc, const mxv_capture *bc, size_t T, size_t k,
                         double *agree)
{
    const mxv_st_tensor *a = mxv_st_find(tc->f, "topk_ids"), *b = mxv_st_find(bc->f, "topk_ids");
    *agree = NAN;
    if (!a || !b || a->numel != T * k || b->numel != T * k || a->dtype != b->dtype ||
        (a->dtype != MXV_ST_I32 && a->dtype != MXV_ST_I64))
        return 0;
    size_t same = 0;
    for (size_t t = 0; t < T; t++) {
        int eq = 1;
        for (size_t j = 0; j < k && eq; j++) {
            int64_t x = a->dtype == MXV_ST_I32 ? ((const int32_t *)a->data)[t * k + j]
                                               : ((const int64_t *)a->data)[t * k + j];
            int found = 0;
            for (size_t q = 0; q < k; q++) {
                int64_t y = b->dtype == MXV_ST_I32 ? ((const int32_t *)b->data)[t * k + q]
                                                   : ((const int64_t *)b->data)[t * k + q];
                found |= x == y;
            }
            eq &= found;
        }
        same += (size_t)eq;
    }
    *agree = T ? (double)same / (double)T : 1;
    return 0;
}

static int one_layer(mxv_drift_layer *L, const char *bpath, const char *tpath,
                     const mx_accum_model *model, char *err, size_t len)
{
    mxv_capture tc, bc;
    mxv_st_err se;
    int rc = 0;
    snprintf(L->base_path, sizeof L->base_path, "%s", bpath);
    snprintf(L->test_path, sizeof L->test_path, "%s", tpath);
    mxv_st_status s = mxv_capture_open(tpath, &tc, &se);
    if (s != MXV_ST_OK)
        return mxv_errc(err, len, mxv_st_exit_code(s), "%s", se.msg);
    s = mxv_capture_open(bpath, &bc, &se);
    if (s != MXV_ST_OK) {
        mxv_capture_close(&tc);
        return mxv_errc(err, len, mxv_st_exit_code(s), "%s", se.msg);
    }
    static const char *same_keys[] = {"hidden", "intermediate", "intermediate_shared",
                                      "experts", "topk"};
    for (size_t i = 0; i < sizeof same_keys / sizeof *same_keys && !rc; i++)
        if (strcmp(meta_or(&tc, same_keys[i]), meta_or(&bc, same_keys[i])) != 0)
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: metadata \"%s\" is \"%s\" but \"%s\" in %s (captures of different "
                      "layers or models)", tpath, same_keys[i], meta_or(&tc, same_keys[i]),
                      meta_or(&bc, same_keys[i]), bpath);
    /* the same layer of the same model: identical router and expert weights */
    static const char *same_tensors[] = {"router_weight", "router_bias", "w13", "w13_scale",
                                         "w2", "w2_scale", "ws13", "ws13_scale", "ws2",
                                         "ws2_scale", "experts_present"};
    for (size_t i = 0; i < sizeof same_tensors / sizeof *same_tensors && !rc; i++) {
        const mxv_st_tensor *a = mxv_st_find(tc.f, same_tensors[i]);
        const mxv_st_tensor *b = mxv_st_find(bc.f, same_tensors[i]);
        if (!a || !b)
            continue; /* check names a missing one */
        if (a->nbytes != b->nbytes || a->dtype != b->dtype ||
            (a->nbytes && memcmp(a->data, b->data, a->nbytes) != 0))
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: tensor \"%s\" differs from %s's (captures of different layers or "
                      "models: drift compares two runs of one model)", tpath, same_tensors[i],
                      bpath);
    }
    int have;
    if (!rc)
        rc = cmp_tensor(&L->in, &tc, &bc, "x", 1, &have, err, len);
    if (!rc)
        rc = cmp_tensor(&L->out, &tc, &bc, "out", 1, &have, err, len);
    if (!rc)
        rc = cmp_tensor(&L->logits, &tc, &bc, "router_logits", 0, &L->has_logits, err, len);
    if (!rc) {
        const mxv_st_tensor *x = mxv_st_find(tc.f, "x");
        if (x->rank != 2)
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"x\": rank %d, expected [T, H]",
                      tpath, x->rank);
        else {
            L->T = x->shape[0];
            L->H = x->shape[1];
            L->E = tc.shape.E;
            L->k = (size_t)tc.shape.topk;
            routing_agree(&tc, &bc, L->T, L->k, &L->route_agree);
            L->growth = L->in.rel_l2 > 0 ? L->out.rel_l2 / L->in.rel_l2 : NAN; /* no input drift */
            L->expert_outside = calloc(L->E + 1, sizeof *L->expert_outside);
            L->token_outside = calloc(mx_nz(L->T), sizeof *L->token_outside);
            if (!L->expert_outside || !L->token_outside)
                rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
        }
    }
    if (!rc)
        rc = mxv_drift_fp8_stats(&tc, L->fp8, &L->nfp8, MXV_DRIFT_FP8, err, len);
    mxv_capture_close(&tc);
    mxv_capture_close(&bc);
    if (!rc)
        rc = judge(tpath, model, L, &L->outside, &L->local_pass, NULL, 0, err, len);
    if (!rc)
        rc = judge(bpath, model, NULL, &L->base_outside, &L->base_pass, L->base_policy,
                   sizeof L->base_policy, err, len);
    return rc;
}

/* ---- the whole analysis ------------------------------------------------------ */

int mxv_drift_run(const char *base_dir, const char *test_dir, const mx_accum_model *model,
                  mxv_drift *d, char *err, size_t len)
{
    run_files b, t;
    memset(d, 0, sizeof *d);
    d->base_dir = base_dir;
    d->test_dir = test_dir;
    d->first_bug = -1;
    int rc = list_run(base_dir, "BASE", &b, err, len);
    if (!rc)
        rc = list_run(test_dir, "TEST", &t, err, len);
    else
        memset(&t, 0, sizeof t);
    /* the same layers in both runs */
    for (size_t i = 0, j = 0; !rc && (i < b.n || j < t.n);) {
        if (j >= t.n || (i < b.n && b.f[i].layer < t.f[j].layer)) {
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: layer %d has no capture in the TEST run %s", b.f[i].path,
                      b.f[i].layer, test_dir);
        } else if (i >= b.n || t.f[j].layer < b.f[i].layer) {
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: layer %d has no capture in the BASE run %s", t.f[j].path,
                      t.f[j].layer, base_dir);
        } else {
            i++;
            j++;
        }
    }
    if (!rc) {
        d->layers = calloc(b.n, sizeof *d->layers);
        if (!d->layers)
            rc = mxv_errc(err, len, MXV_EXIT_INTERNAL, "out of memory");
    }
    for (size_t i = 0; !rc && i < b.n; i++) {
        mxv_drift_layer *L = &d->layers[d->nlayers++];
        L->layer = b.f[i].layer;
        rc = one_layer(L, b.f[i].path, t.f[i].path, model, err, len);
        if (!rc && i > 0 && (L->T != d->layers[0].T || L->H != d->layers[0].H))
            rc = mxv_errc(err, len, MXV_EXIT_BADINPUT,
                      "%s: tensor \"x\": shape [%zu, %zu] differs from layer %d's [%zu, %zu] "
                      "(captures of different calls)", t.f[i].path, L->T, L->H,
                      d->layers[0].layer, d->layers[0].T, d->layers[0].H);
        if (!rc && !L->local_pass && d->first_bug < 0)
            d->first_bug = (int)i;
    }
    if (!rc && b.logprobs[0] && t.logprobs[0])
        rc = mxv_drift_kld(d, b.logprobs, t.logprobs, err, len);
    free(b.f);
    free(t.f);
    return rc;
}

void mxv_drift_free(mxv_drift *d)
{
    for (size_t i = 0; i < d->nlayers; i++) {
        free(d->layers[i].expert_outside);
        free(d->layers[i].token_outside);
    }
    free(d->layers);
    memset(d, 0, sizeof *d);
}
