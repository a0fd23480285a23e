/* golden.c -- strict readers of the golden/h100 .vec files (see golden.h
 * and tools/probe/mkgolden.c for the format). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "golden.h"

const char *golden_path(const char *name)
{
    static char buf[4096];
    const char *sd = getenv("srcdir");
    snprintf(buf, sizeof buf, "%s/golden/%s", sd && *sd ? sd : ".", name);
    return buf;
}

static int fail(char *err, size_t len, const char *path, long line,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && len)
        snprintf(err, len, "%s:%ld: %s", path, line, msg);
    return -1;
}

/* Parses exactly `digits` hex digits; -1 on a non-hex character. */
static long hexn(const char *s, int digits)
{
    long v = 0;
    for (int i = 0; i < digits; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

static int key_line(const char *line, const char *key, char *val, size_t vlen)
{
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) || line[kl] != ' ')
        return 0;
    snprintf(val, vlen, "%s", line + kl + 1);
    val[strcspn(val, "\r\n")] = 0;
    return 1;
}

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 1000000000)
        return 0;
    *out = (int)v;
    return 1;
}

int gvec_load(const char *path, gvec *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, path, 0, "cannot open");
    char line[4096], val[256];
    long ln = 0;
    size_t cap = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = fail(err, errlen, path, ln, "line too long");
            break;
        }
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#')
            continue;
        if (key_line(line, "fa", val, sizeof val)) {
            if (!(g->fa = mx_format_by_name(val)) || !g->fa->is_signed || g->fa->bits > 16) {
                rc = fail(err, errlen, path, ln, "bad format '%s'", val);
                break;
            }
            continue;
        }
        if (key_line(line, "fb", val, sizeof val)) {
            if (!(g->fb = mx_format_by_name(val)) || !g->fb->is_signed || g->fb->bits > 16) {
                rc = fail(err, errlen, path, ln, "bad format '%s'", val);
                break;
            }
            continue;
        }
        if (key_line(line, "k", val, sizeof val)) {
            if (!parse_int(val, &g->k) || g->k < 1 || g->k > GVEC_MAXN) {
                rc = fail(err, errlen, path, ln, "bad k '%s'", val);
                break;
            }
            continue;
        }
        if (key_line(line, "preset", val, sizeof val)) {
            snprintf(g->preset, sizeof g->preset, "%.63s", val);
            continue;
        }
        /* a case: c a b d */
        if (!g->fa || !g->fb || !g->k || !g->preset[0]) {
            rc = fail(err, errlen, path, ln, "case before the fa/fb/k/preset keys");
            break;
        }
        char *tok[5];
        int nt = 0;
        for (char *t = strtok(line, " "); t && nt < 5; t = strtok(NULL, " "))
            tok[nt++] = t;
        if (nt != 4) {
            rc = fail(err, errlen, path, ln, "expected 4 fields (c a b d), got %d", nt);
            break;
        }
        int wa = g->fa->bits / 4, wb = g->fb->bits / 4;
        size_t la = strlen(tok[1]), lb = strlen(tok[2]);
        if (strlen(tok[0]) != 8 || strlen(tok[3]) != 8 || la % (size_t)wa ||
            lb % (size_t)wb || la / (size_t)wa != lb / (size_t)wb) {
            rc = fail(err, errlen, path, ln, "field widths do not match the formats");
            break;
        }
        int n = (int)(la / (size_t)wa);
        if (n == 0 || n > GVEC_MAXN || n % g->k) {
            rc = fail(err, errlen, path, ln, "n=%d is not a multiple of k=%d in 1..%d",
                      n, g->k, GVEC_MAXN);
            break;
        }
        if (g->ncase == cap) {
            cap = cap ? 2 * cap : 256;
            int *nn = realloc(g->n, cap * sizeof *nn);
            uint16_t *aa = realloc(g->a, cap * GVEC_MAXN * sizeof *aa);
            uint16_t *bb = realloc(g->b, cap * GVEC_MAXN * sizeof *bb);
            uint32_t *cc = realloc(g->c, cap * sizeof *cc);
            uint32_t *dd = realloc(g->d, cap * sizeof *dd);
            if (nn) g->n = nn;
            if (aa) g->a = aa;
            if (bb) g->b = bb;
            if (cc) g->c = cc;
            if (dd) g->d = dd;
            if (!nn || !aa || !bb || !cc || !dd) {
                rc = fail(err, errlen, path, ln, "out of memory");
                break;
            }
        }
        size_t q = g->ncase;
        long cv = hexn(tok[0], 8), dv = hexn(tok[3], 8);
        int ok = cv >= 0 && dv >= 0;
        for (int i = 0; i < n && ok; i++) {
            long x = hexn(tok[1] + i * wa, wa), y = hexn(tok[2] + i * wb, wb);
            ok = x >= 0 && y >= 0;
            g->a[q * GVEC_MAXN + i] = (uint16_t)x;
            g->b[q * GVEC_MAXN + i] = (uint16_t)y;
        }
        if (!ok) {
            rc = fail(err, errlen, path, ln, "not lower-case hex");
            break;
        }
        g->n[q] = n;
        g->c[q] = (uint32_t)cv;
        g->d[q] = (uint32_t)dv;
        g->ncase++;
    }
    if (!rc && ferror(f))
        rc = fail(err, errlen, path, ln, "read error");
    if (!rc && g->ncase == 0)
        rc = fail(err, errlen, path, ln, "no cases");
    fclose(f);
    if (rc)
        gvec_free(g);
    return rc;
}

void gvec_free(gvec *g)
{
    free(g->n);
    free(g->a);
    free(g->b);
    free(g->c);
    free(g->d);
    memset(g, 0, sizeof *g);
}

void gvec_operands(const gvec *g, size_t i, uint8_t *a8, uint8_t *b8,
                   const void **a, const void **b)
{
    const uint16_t *ra = g->a + i * GVEC_MAXN, *rb = g->b + i * GVEC_MAXN;
    for (int j = 0; j < g->n[i]; j++) {
        a8[j] = (uint8_t)ra[j];
        b8[j] = (uint8_t)rb[j];
    }
    *a = g->fa->bits == 8 ? (const void *)a8 : (const void *)ra;
    *b = g->fb->bits == 8 ? (const void *)b8 : (const void *)rb;
}

int st_read(const char *path, const char *name, const char *dtype,
            size_t nelem, void *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, path, 0, "cannot open");
    unsigned char h8[8];
    int rc = -1;
    char *hdr = NULL;
    cJSON *j = NULL;
    if (fread(h8, 1, 8, f) != 8) {
        fail(err, errlen, path, 0, "short header");
        goto out;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | h8[i];
    if (hl == 0 || hl > (1u << 20) || !(hdr = malloc(hl + 1)) ||
        fread(hdr, 1, hl, f) != hl) {
        fail(err, errlen, path, 0, "bad header length");
        goto out;
    }
    hdr[hl] = 0;
    j = cJSON_ParseWithLength(hdr, hl);
    cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, name) : NULL;
    cJSON *dt = t ? cJSON_GetObjectItemCaseSensitive(t, "dtype") : NULL;
    cJSON *off = t ? cJSON_GetObjectItemCaseSensitive(t, "data_offsets") : NULL;
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, dtype) ||
        !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
        fail(err, errlen, path, 0, "tensor %s missing or not %s", name, dtype);
        goto out;
    }
    double o0 = cJSON_GetArrayItem(off, 0)->valuedouble;
    double o1 = cJSON_GetArrayItem(off, 1)->valuedouble;
    size_t es = dtype[1] == '8' ? 1 : dtype[1] == '1' ? 2 : 4;
    if (o0 < 0 || o1 < o0 || o1 - o0 != (double)(nelem * es)) {
        fail(err, errlen, path, 0, "tensor %s has %g bytes, want %zu", name, o1 - o0,
             nelem * es);
        goto out;
    }
    if (fseek(f, (long)(8 + hl + (uint64_t)o0), SEEK_SET) ||
        fread(out, es, nelem, f) != nelem) {
        fail(err, errlen, path, 0, "tensor %s: short data", name);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(j);
    free(hdr);
    fclose(f);
    return rc;
}
