/* golden.c -- golden tolerance files and the manifest (see golden.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <nettle/sha2.h>
#include "cli.h"
#include "golden.h"
#include "input.h"
#include "json_strict.h"
#include "out.h"


/* typed field getters: -1 with a message naming entry and field */
static int get_str(const cJSON *o, const char *k, char *dst, size_t cap,
                   const char *path, const char *where, char *err, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return mxv_errf(err, len, "%s: %s: field \"%s\" must be a string of at most "
                              "%zu characters", path, where, k, cap - 1);
    for (const char *c = v->valuestring; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return mxv_errf(err, len, "%s: %s: field \"%s\" holds a control character",
                        path, where, k);
    strcpy(dst, v->valuestring);
    return 0;
}

static int get_num(const cJSON *o, const char *k, double lo, double hi,
                   int integer, double *dst, const char *path, const char *where,
                   char *err, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi || (integer && floor(v->valuedouble) != v->valuedouble))
        return mxv_errf(err, len, "%s: %s: field \"%s\" must be %s in [%g, %g]", path,
                    where, k, integer ? "an integer" : "a number", lo, hi);
    *dst = v->valuedouble;
    return 0;
}

/* the fields of each object of a golden file; anything else is refused */
static const char *const top_keys[] = {"schema", "suite", "backend", "arch", "model", "history",
                                       "entries", NULL};
static const char *const entry_keys[] = {"case", "kernel", "shape", "tokens",
                                         "policy", "accum_model", "thresholds",
                                         NULL};
static const char *const threshold_keys[] = {"max_err_over_bound", "max_outside",
                                             "max_ulp", "bit_exact", NULL};
static const char *const history_keys[] = {"date", "action", "reason", NULL};

/* golden files are small: a cap before reading */
#define GOLDEN_MAX_BYTES (64u << 20)

int mxv_golden_load(const char *path, mxv_golden *g, char *err, size_t len)
{
    memset(g, 0, sizeof *g);
    size_t n;
    char why[400];
    char *text = mxv_input_slurp(path, GOLDEN_MAX_BYTES, &n, err, len);
    if (!text)
        return -1;
    cJSON *root = mxv_json_parse(text, n, why, sizeof why);
    free(text);
    if (!root)
        return mxv_errf(err, len, "%s: %s", path, why);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mxv_errf(err, len, "%s: the top level must be an object", path);
    }
    if (mxv_json_only_keys(root, top_keys, why, sizeof why) != 0) {
        cJSON_Delete(root);
        return mxv_errf(err, len, "%s: top level: %s", path, why);
    }
    int rc = -1;
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (!cJSON_IsString(schema) || strcmp(schema->valuestring, MXV_GOLDEN_SCHEMA)) {
        mxv_errf(err, len, "%s: field \"schema\" must be \"%s\"", path, MXV_GOLDEN_SCHEMA);
        goto out;
    }
    if (get_str(root, "suite", g->suite, sizeof g->suite, path, "top level", err, len) ||
        get_str(root, "backend", g->backend, sizeof g->backend, path, "top level", err, len))
        goto out;
    /* arch and model: optional (files written before they were recorded
     * load with ""), but typed when present */
    if ((cJSON_GetObjectItemCaseSensitive(root, "arch") &&
         get_str(root, "arch", g->arch, sizeof g->arch, path, "top level", err, len)) ||
        (cJSON_GetObjectItemCaseSensitive(root, "model") &&
         get_str(root, "model", g->model, sizeof g->model, path, "top level", err, len)))
        goto out;
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(root, "history");
    if (!cJSON_IsArray(hist)) {
        mxv_errf(err, len, "%s: field \"history\" must be an array", path);
        goto out;
    }
    {
        const cJSON *h;
        size_t hi = 0;
        cJSON_ArrayForEach(h, hist)
        {
            if (!cJSON_IsObject(h) ||
                mxv_json_only_keys(h, history_keys, why, sizeof why) != 0) {
                if (!cJSON_IsObject(h))
                    snprintf(why, sizeof why, "not an object");
                mxv_errf(err, len, "%s: history record %zu: %s", path, hi, why);
                goto out;
            }
            for (size_t k = 0; history_keys[k]; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, history_keys[k]);
                if (!v && !strcmp(history_keys[k], "reason"))
                    continue; /* optional */
                if (!cJSON_IsString(v)) {
                    mxv_errf(err, len, "%s: history record %zu: field \"%s\" must be a "
                                   "string", path, hi, history_keys[k]);
                    goto out;
                }
            }
            hi++;
        }
    }
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    if (!cJSON_IsArray(entries)) {
        mxv_errf(err, len, "%s: field \"entries\" must be an array", path);
        goto out;
    }
    int ne = cJSON_GetArraySize(entries);
    g->e = calloc((size_t)(ne > 0 ? ne : 1), sizeof *g->e);
    if (!g->e) {
        mxv_errf(err, len, "%s: out of memory", path);
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, entries)
    {
        mxv_golden_entry *e = &g->e[g->n];
        char where[160];
        snprintf(where, sizeof where, "entry %zu", g->n);
        double d, tok, out, ex;
        if (!cJSON_IsObject(it)) {
            mxv_errf(err, len, "%s: %s is not an object", path, where);
            goto out;
        }
        if (mxv_json_only_keys(it, entry_keys, why, sizeof why) != 0) {
            mxv_errf(err, len, "%s: %s: %s", path, where, why);
            goto out;
        }
        if (get_str(it, "case", e->case_name, sizeof e->case_name, path, where, err, len) ||
            get_str(it, "kernel", e->kernel, sizeof e->kernel, path, where, err, len) ||
            get_str(it, "shape", e->shape, sizeof e->shape, path, where, err, len) ||
            get_str(it, "policy", e->policy, sizeof e->policy, path, where, err, len) ||
            get_str(it, "accum_model", e->model, sizeof e->model, path, where, err, len) ||
            get_num(it, "tokens", 1, 1e7, 1, &tok, path, where, err, len))
            goto out;
        snprintf(where, sizeof where, "entry %zu (%s / %s)", g->n, e->case_name, e->kernel);
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(it, "thresholds");
        if (!cJSON_IsObject(th)) {
            mxv_errf(err, len, "%s: %s: field \"thresholds\" must be an object", path, where);
            goto out;
        }
        if (mxv_json_only_keys(th, threshold_keys, why, sizeof why) != 0) {
            mxv_errf(err, len, "%s: %s: thresholds: %s", path, where, why);
            goto out;
        }
        if (get_num(th, "max_err_over_bound", 0, 1, 0, &d, path, where, err, len) ||
            get_num(th, "max_outside", 0, 1e12, 1, &out, path, where, err, len) ||
            get_num(th, "max_ulp", 0, 1e9, 0, &ex, path, where, err, len))
            goto out;
        const cJSON *be = cJSON_GetObjectItemCaseSensitive(th, "bit_exact");
        if (!cJSON_IsBool(be)) {
            mxv_errf(err, len, "%s: %s: field \"bit_exact\" must be true or false", path, where);
            goto out;
        }
        e->tokens = (size_t)tok;
        e->max_err_over_bound = d;
        e->max_outside = (size_t)out;
        e->max_ulp = ex;
        e->bit_exact = cJSON_IsTrue(be);
        for (size_t q = 0; q < g->n; q++)
            if (!strcmp(g->e[q].case_name, e->case_name) && !strcmp(g->e[q].kernel, e->kernel)) {
                mxv_errf(err, len, "%s: %s: duplicate entry", path, where);
                goto out;
            }
        g->n++;
    }
    g->history = cJSON_Duplicate(hist, 1);
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc)
        mxv_golden_free(g);
    return rc;
}

void mxv_golden_free(mxv_golden *g)
{
    free(g->e);
    cJSON_Delete(g->history);
    memset(g, 0, sizeof *g);
}

int mxv_golden_save(const char *path, const mxv_golden *g, char *err, size_t len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", MXV_GOLDEN_SCHEMA);
    cJSON_AddStringToObject(root, "suite", g->suite);
    cJSON_AddStringToObject(root, "backend", g->backend);
    cJSON_AddStringToObject(root, "arch", g->arch);
    cJSON_AddStringToObject(root, "model", g->model);
    cJSON_AddItemToObject(root, "history",
                          g->history ? cJSON_Duplicate(g->history, 1) : cJSON_CreateArray());
    cJSON *arr = cJSON_AddArrayToObject(root, "entries");
    for (size_t i = 0; i < g->n; i++) {
        const mxv_golden_entry *e = &g->e[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "case", e->case_name);
        cJSON_AddStringToObject(o, "kernel", e->kernel);
        cJSON_AddStringToObject(o, "shape", e->shape);
        cJSON_AddNumberToObject(o, "tokens", (double)e->tokens);
        cJSON_AddStringToObject(o, "policy", e->policy);
        cJSON_AddStringToObject(o, "accum_model", e->model);
        cJSON *th = cJSON_AddObjectToObject(o, "thresholds");
        cJSON_AddNumberToObject(th, "max_err_over_bound", e->max_err_over_bound);
        cJSON_AddNumberToObject(th, "max_outside", (double)e->max_outside);
        cJSON_AddNumberToObject(th, "max_ulp", e->max_ulp);
        cJSON_AddBoolToObject(th, "bit_exact", e->bit_exact);
        cJSON_AddItemToArray(arr, o);
    }
    int rc = mxv_out_write_json(path, root, 1, err, len);
    cJSON_Delete(root);
    return rc;
}

const mxv_golden_entry *mxv_golden_find(const mxv_golden *g, const char *case_name,
                                        const char *kernel)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].case_name, case_name) && !strcmp(g->e[i].kernel, kernel))
            return &g->e[i];
    return NULL;
}

int mxv_golden_judge(const mxv_golden_entry *e, const mxv_row *r, char *why,
                     size_t len)
{
    if (r->error) {
        snprintf(why, len, "kernel error: %s", r->message);
        return 0;
    }
    if (r->j.outside > e->max_outside) {
        snprintf(why, len, "%zu elements %s (golden allows %zu)", r->j.outside,
                 r->j.by_bytes ? "with wrong bytes" : "outside the bound",
                 e->max_outside);
        return 0;
    }
    if (!r->j.by_bytes && r->j.max_ratio > e->max_err_over_bound) {
        snprintf(why, len, "max |err|/bound %.4f > golden %.4f", r->j.max_ratio,
                 e->max_err_over_bound);
        return 0;
    }
    if (!r->j.by_bytes && !r->j.by_equal && r->j.max_ulp > e->max_ulp) {
        snprintf(why, len, "max %.2f BF16 ulp > golden %.2f", r->j.max_ulp, e->max_ulp);
        return 0;
    }
    if (r->not_device) {
        snprintf(why, len, "%zu elements within bound, not the device's arithmetic "
                 "(not bit-exact to the measured model %s)", r->not_device, r->model);
        return 0;
    }
    if (e->bit_exact && !r->bit_exact) {
        snprintf(why, len, "not bit-exact to the %s model (golden requires it)",
                 e->model);
        return 0;
    }
    if (r->backends_agree == 0) {
        snprintf(why, len, "GPU output differs from the CPU backend");
        return 0;
    }
    snprintf(why, len, "ok");
    return 1;
}

/* x rounded up to a multiple of step, as the nearest binary64 of the
 * decimal (0.35, not 0.35000000000000003) */
static double round_up(double x, double step)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f", ceil(x / step - 1e-9) * step);
    return strtod(buf, NULL);
}

mxv_golden_entry mxv_golden_from_row(const mxv_row *r)
{
    mxv_golden_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.case_name, sizeof e.case_name, "%s", r->case_name);
    snprintf(e.kernel, sizeof e.kernel, "%s", r->kernel);
    snprintf(e.shape, sizeof e.shape, "%s", r->shape);
    snprintf(e.policy, sizeof e.policy, "%s", r->policy);
    snprintf(e.model, sizeof e.model, "%s", r->model);
    e.tokens = r->tokens;
    double ratio = r->j.by_bytes ? 0 : round_up(r->j.max_ratio * 1.1, 0.01);
    e.max_err_over_bound = ratio > 1 ? 1 : ratio;
    e.max_outside = r->j.outside;
    /* equality-judged rows: the ulp distance to the exact sum is
     * information, not a tolerance */
    double ulp = r->j.by_bytes || r->j.by_equal ? 0 : round_up(r->j.max_ulp * 1.1, 0.5);
    e.max_ulp = ulp < 0.5 && !r->j.by_bytes && !r->j.by_equal ? 0.5 : ulp;
    if (!isfinite(e.max_ulp) || e.max_ulp > 1e9)
        e.max_ulp = 1e9;
    e.bit_exact = r->bit_exact;
    return e;
}

int mxv_golden_looser(const mxv_golden_entry *was, const mxv_golden_entry *now,
                      char *what, size_t len)
{
    /* thresholds are decimal grid values: compare with a margin far below
     * the grid step */
    if (now->max_err_over_bound > was->max_err_over_bound + 1e-9)
        return snprintf(what, len, "max_err_over_bound %.4f -> %.4f",
                        was->max_err_over_bound, now->max_err_over_bound), 1;
    if (now->max_outside > was->max_outside)
        return snprintf(what, len, "max_outside %zu -> %zu", was->max_outside,
                        now->max_outside), 1;
    if (now->max_ulp > was->max_ulp + 1e-9)
        return snprintf(what, len, "max_ulp %.2f -> %.2f", was->max_ulp, now->max_ulp), 1;
    if (was->bit_exact && !now->bit_exact)
        return snprintf(what, len, "bit_exact true -> false"), 1;
    return 0;
}

void mxv_golden_note(mxv_golden *g, const char *action, const char *reason)
{
    mxv_history_note(&g->history, action, reason);
}

void mxv_history_note(void **history, const char *action, const char *reason)
{
    if (!*history)
        *history = cJSON_CreateArray();
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "date", date);
    cJSON_AddStringToObject(o, "action", action);
    if (reason)
        cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddItemToArray(*history, o);
}

/* ---- manifest ------------------------------------------------------------ */

int mxv_sha256_file(const char *path, char out[65])
{
    char oerr[600];
    FILE *f = mxv_input_fopen(path, oerr, sizeof oerr);
    if (!f)
        return -1;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&ctx, n, buf);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return -1;
    unsigned char d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    return 0;
}

/* directory of a path (with the trailing slash), or "" */
static void dir_of(const char *path, char *dir, size_t len)
{
    const char *s = strrchr(path, '/');
    size_t n = s ? (size_t)(s - path + 1) : 0;
    if (n >= len)
        n = 0;
    memcpy(dir, path, n);
    dir[n] = 0;
}

int mxv_manifest_verify(const char *manifest, FILE *out)
{
    char oerr[600];
    FILE *f = mxv_input_fopen(manifest, oerr, sizeof oerr);
    if (!f) {
        fprintf(out, "%s\n", oerr);
        return -1;
    }
    char dir[4096], line[8192];
    dir_of(manifest, dir, sizeof dir);
    int problems = 0, lineno = 0, entries = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = 0;
        if (!l || line[0] == '#')
            continue;
        if (l < 67 || line[64] != ' ' || line[65] != ' ' ||
            strspn(line, "0123456789abcdef") != 64 || strstr(line + 66, "..") ||
            line[66] == '/') {
            fprintf(out, "%s:%d: malformed line (want \"SHA256  RELATIVE-PATH\")\n",
                    manifest, lineno);
            problems++;
            continue;
        }
        entries++;
        char path[8192 + 4096], got[65];
        snprintf(path, sizeof path, "%s%s", dir, line + 66);
        if (mxv_sha256_file(path, got) != 0) {
            fprintf(out, "%s: listed in %s but cannot be read\n", path, manifest);
            problems++;
        } else if (strncmp(got, line, 64) != 0) {
            fprintf(out, "%s: sha256 %s, manifest says %.64s\n", path, got, line);
            problems++;
        }
    }
    fclose(f);
    if (!entries) {
        fprintf(out, "%s: lists no file\n", manifest);
        problems++;
    }
    return problems;
}

int mxv_manifest_write(const char *manifest, const char *const *files, size_t n,
                       char *err, size_t len)
{
    char dir[4096];
    dir_of(manifest, dir, sizeof dir);
    mxv_out *o = mxv_out_open(manifest, err, len);
    if (!o)
        return -1;
    FILE *f = mxv_out_file(o);
    fprintf(f, "# sha256 of every golden data file; `mxverify golden verify` checks it\n");
    for (size_t i = 0; i < n; i++) {
        char path[8192], sum[65];
        snprintf(path, sizeof path, "%s%s", dir, files[i]);
        if (mxv_sha256_file(path, sum) != 0) {
            int e = errno;
            mxv_out_abort(o);
            return mxv_errf(err, len, "%s: cannot read: %s", path, strerror(e));
        }
        fprintf(f, "%s  %s\n", sum, files[i]);
    }
    return mxv_out_commit(o, err, len);
}

int mxv_manifest_update(const char *manifest, const char *relpath, char *err,
                        size_t len)
{
    char dir[4096], path[8192], sum[65];
    dir_of(manifest, dir, sizeof dir);
    snprintf(path, sizeof path, "%s%s", dir, relpath);
    if (mxv_sha256_file(path, sum) != 0)
        return mxv_errf(err, len, "%s: cannot read: %s", path, strerror(errno));
    char oerr[600];
    FILE *in = mxv_input_fopen(manifest, oerr, sizeof oerr);
    mxv_out *o = mxv_out_open(manifest, err, len);
    if (!o) {
        if (in)
            fclose(in);
        return -1;
    }
    FILE *out = mxv_out_file(o);
    int done = 0;
    char line[8192];
    if (!in)
        fprintf(out, "# sha256 of every golden data file; `mxverify golden verify` checks it\n");
    while (in && fgets(line, sizeof line, in)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = 0;
        if (l > 66 && !strcmp(line + 66, relpath)) {
            fprintf(out, "%s  %s\n", sum, relpath);
            done = 1;
        } else {
            fprintf(out, "%s\n", line);
        }
    }
    if (in)
        fclose(in);
    if (!done)
        fprintf(out, "%s  %s\n", sum, relpath);
    return mxv_out_commit(o, err, len);
}

/* ---- where golden files live --------------------------------------------- */

#define DEFAULT_GOLDEN_DIR "golden"

/* The golden directory: $MXVERIFY_GOLDEN_DIR, else ./golden when it
 * exists (a source tree), else the source tree mxverify was built from. */
const char *mxv_golden_dir(void)
{
    const char *dir = getenv("MXVERIFY_GOLDEN_DIR");
    if (dir && *dir)
        return dir;
    FILE *f = fopen(DEFAULT_GOLDEN_DIR "/MANIFEST", "r");
    if (f) {
        fclose(f);
        return DEFAULT_GOLDEN_DIR;
    }
    return MXV_SRC_GOLDEN_DIR;
}

void mxv_golden_default_path(const char *suite, const char *backend, char *buf, size_t len)
{
    snprintf(buf, len, "%s/gate-%s-%s.json", mxv_golden_dir(), suite,
             backend ? backend : "cpu");
}
