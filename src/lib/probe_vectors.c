/* probe_vectors.c -- `mxverify probe --vectors`: recorded dot products
 * replayed through a block-FMA preset (format in probe_vectors.h).
 *
 * Reading is strict: every token of a line must be what its position says
 * (k a decimal count 1..MAX_K, operand codes of exactly the format's width,
 * c and d of exactly 8 hex digits, at most one category word), and a file
 * with no vector is refused.  The whole of every file is read and checked
 * before anything is printed, so a malformed file never yields a partial
 * report.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "probe_vectors.h"

#define MAX_K 1024
#define MAX_CATS 64

typedef struct {
    int k;
    long line;
    uint32_t c, d;
    int cat; /* index into the file's category list, -1 if none */
    size_t off; /* first code of a in the file's code array; b follows */
} vec;

typedef struct {
    const char *path;
    const mx_format *f;
    vec *v;
    size_t nv, capv;
    uint16_t *codes;
    size_t ncodes, capc;
    char *cats[MAX_CATS];
    int ncats;
} vfile;

static void vfile_free(vfile *vf)
{
    free(vf->v);
    free(vf->codes);
    for (int i = 0; i < vf->ncats; i++)
        free(vf->cats[i]);
}

/* Parses exactly `digits` hex digits (the whole token). */
static int hex_token(const char *t, int digits, uint32_t *out)
{
    if ((int)strlen(t) != digits)
        return -1;
    uint32_t v = 0;
    for (const char *p = t; *p; p++) {
        if (!isxdigit((unsigned char)*p))
            return -1;
        v = v * 16 + (uint32_t)(isdigit((unsigned char)*p) ? *p - '0'
                                                           : tolower((unsigned char)*p) - 'a' + 10);
    }
    *out = v;
    return 0;
}

/* The format named in a header comment "... a,b NAME codes ...". */
static const mx_format *format_from_comment(const char *line)
{
    const char *p = strstr(line, "a,b ");
    if (!p)
        return NULL;
    p += 4;
    char name[32];
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && n + 1 < sizeof name) {
        name[n] = p[n];
        n++;
    }
    name[n] = 0;
    return strncmp(p + n, " codes", 6) == 0 ? mx_format_by_name(name) : NULL;
}

/* The format a file's base name (without extension) names. */
static const mx_format *format_from_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char name[32];
    size_t n = 0;
    while (b[n] && b[n] != '.' && n + 1 < sizeof name) {
        name[n] = b[n];
        n++;
    }
    name[n] = 0;
    return mx_format_by_name(name);
}

static int push_code(vfile *vf, uint32_t c)
{
    if (vf->ncodes == vf->capc) {
        size_t cap = vf->capc ? 2 * vf->capc : 4096;
        uint16_t *p = realloc(vf->codes, cap * sizeof *p);
        if (!p)
            return -1;
        vf->codes = p;
        vf->capc = cap;
    }
    vf->codes[vf->ncodes++] = (uint16_t)c;
    return 0;
}

static int push_vec(vfile *vf, const vec *v)
{
    if (vf->nv == vf->capv) {
        size_t cap = vf->capv ? 2 * vf->capv : 1024;
        vec *p = realloc(vf->v, cap * sizeof *p);
        if (!p)
            return -1;
        vf->v = p;
        vf->capv = cap;
    }
    vf->v[vf->nv++] = *v;
    return 0;
}

static int cat_index(vfile *vf, const char *name)
{
    for (int i = 0; i < vf->ncats; i++)
        if (strcmp(vf->cats[i], name) == 0)
            return i;
    if (vf->ncats == MAX_CATS)
        return -2;
    vf->cats[vf->ncats] = strdup(name);
    return vf->cats[vf->ncats] ? vf->ncats++ : -3;
}

#define BAD(...) (mxv_error(MXV_EXIT_BADINPUT, __VA_ARGS__), rc = MXV_EXIT_BADINPUT)

/* Reads one file; fixed: the format given on the command line, or NULL. */
static int read_file(vfile *vf, const mx_format *fixed)
{
    FILE *fp = fopen(vf->path, "r");
    if (!fp)
        return mxv_error(MXV_EXIT_BADINPUT, "%s: cannot open: %s", vf->path,
                         strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long ln = 0;
    int rc = 0;
    vf->f = fixed;
    while (!rc && getline(&line, &cap, fp) >= 0) {
        ln++;
        char *hash = strchr(line, '#');
        if (hash) {
            if (!vf->f && vf->nv == 0)
                vf->f = format_from_comment(hash);
            *hash = 0;
        }
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok)
            continue;
        if (!vf->f)
            vf->f = format_from_name(vf->path);
        if (!vf->f || (vf->f->bits != 8 && vf->f->bits != 16) || !vf->f->is_signed) {
            rc = mxv_error(MXV_EXIT_USAGE,
                           "%s: cannot tell the operand format (no '# ... a,b FORMAT "
                           "codes' comment, no format name as the file name): give "
                           "--format", vf->path);
            break;
        }
        char *end;
        errno = 0;
        long k = strtol(tok, &end, 10);
        if (*end || errno || k < 1 || k > MAX_K) {
            BAD("%s:%ld: k '%s' is not a count 1..%d", vf->path, ln, tok, MAX_K);
            break;
        }
        vec v = {.k = (int)k, .line = ln, .cat = -1, .off = vf->ncodes};
        int digits = vf->f->bits / 4;
        for (long i = 0; i < 2 * k && !rc; i++) {
            tok = strtok_r(NULL, " \t\r\n", &save);
            uint32_t code;
            if (!tok)
                BAD("%s:%ld: %ld operand codes for k = %ld, expected %ld", vf->path,
                    ln, i, k, 2 * k);
            else if (hex_token(tok, digits, &code))
                BAD("%s:%ld: %s[%ld] '%s' is not a %s code (%d hex digits)", vf->path,
                    ln, i < k ? "a" : "b", i % k, tok, vf->f->name, digits);
            else if (push_code(vf, code))
                rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
        }
        if (rc)
            break;
        const char *cd[2] = {"c", "d"};
        uint32_t *dst[2] = {&v.c, &v.d};
        for (int i = 0; i < 2 && !rc; i++) {
            tok = strtok_r(NULL, " \t\r\n", &save);
            if (!tok)
                BAD("%s:%ld: missing %s (FP32 bits, 8 hex digits)", vf->path, ln, cd[i]);
            else if (hex_token(tok, 8, dst[i]))
                BAD("%s:%ld: %s '%s' is not FP32 bits (8 hex digits)", vf->path, ln,
                    cd[i], tok);
        }
        if (rc)
            break;
        tok = strtok_r(NULL, " \t\r\n", &save);
        if (tok) {
            v.cat = cat_index(vf, tok);
            if (v.cat == -2)
                BAD("%s:%ld: more than %d categories", vf->path, ln, MAX_CATS);
            else if (v.cat < 0)
                rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
            else if ((tok = strtok_r(NULL, " \t\r\n", &save)))
                BAD("%s:%ld: unexpected '%s' after the category", vf->path, ln, tok);
        }
        if (!rc && push_vec(vf, &v))
            rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    }
    if (!rc && ferror(fp))
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s: read error", vf->path);
    if (!rc && vf->nv == 0)
        BAD("%s: no vector in the file", vf->path);
    free(line);
    fclose(fp);
    return rc;
}

static void print_bits(const char *label, uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    printf(" %s %08x (%.9g)", label, (unsigned)x, (double)f);
}

/* Replays vf; returns the mismatch count (also printed). */
static size_t replay(const vfile *vf, const mx_blockfma_params *p, const char *model,
                     int show)
{
    size_t bad = 0, catn[MAX_CATS + 1] = {0}, catb[MAX_CATS + 1] = {0};
    uint8_t a8[MAX_K], b8[MAX_K];
    uint16_t a16[MAX_K], b16[MAX_K];
    const void *A = vf->f->bits == 8 ? (const void *)a8 : (const void *)a16;
    const void *B = vf->f->bits == 8 ? (const void *)b8 : (const void *)b16;
    printf("%s: %zu vectors, %s x %s, model %s\n", vf->path, vf->nv, vf->f->name,
           vf->f->name, model);
    for (size_t j = 0; j < vf->nv; j++) {
        const vec *v = &vf->v[j];
        for (int i = 0; i < v->k; i++) {
            uint16_t ca = vf->codes[v->off + (size_t)i];
            uint16_t cb = vf->codes[v->off + (size_t)v->k + (size_t)i];
            a8[i] = (uint8_t)ca;
            b8[i] = (uint8_t)cb;
            a16[i] = ca;
            b16[i] = cb;
        }
        uint32_t got = mx_blockfma_dot_bits(p, vf->f, A, vf->f, B, (size_t)v->k, v->c);
        int ci = v->cat >= 0 ? v->cat : MAX_CATS;
        catn[ci]++;
        if (got == v->d)
            continue;
        catb[ci]++;
        if (bad++ < (size_t)show) {
            printf("  mismatch line %ld (%s, k=%d):", v->line,
                   v->cat >= 0 ? vf->cats[v->cat] : "-", v->k);
            print_bits("c", v->c);
            print_bits("recorded", v->d);
            print_bits("model", got);
            putchar('\n');
        }
    }
    if (bad > (size_t)show)
        printf("  ... %zu more mismatches\n", bad - (size_t)show);
    printf("  %zu of %zu vectors mismatch\n", bad, vf->nv);
    for (int i = 0; i <= MAX_CATS; i++) {
        if (!catn[i])
            continue;
        printf("    %-20s %6zu vectors, %6zu mismatches\n",
               i < MAX_CATS ? vf->cats[i] : "(no category)", catn[i], catb[i]);
    }
    return bad;
}

int mxv_probe_vectors(char **files, int nfiles, const char *model,
                      const char *fmt_name, int show)
{
    if (!model || strncmp(model, "block:", 6) != 0)
        return mxv_error(MXV_EXIT_USAGE, "probe --vectors: --model block:PRESET is "
                         "required (e.g. block:cdna3-fp8)");
    const mx_blockfma_params *p = mx_blockfma_preset(model + 6);
    if (!p)
        return mxv_error(MXV_EXIT_USAGE, "probe --vectors: unknown block-FMA preset "
                         "'%s'", model + 6);
    const mx_format *fixed = NULL;
    if (fmt_name) {
        fixed = mx_format_by_name(fmt_name);
        if (!fixed || (fixed->bits != 8 && fixed->bits != 16) || !fixed->is_signed)
            return mxv_error(MXV_EXIT_USAGE, "probe --vectors: '%s' is not an 8- or "
                             "16-bit operand format", fmt_name);
    }
    vfile *vf = calloc((size_t)nfiles, sizeof *vf);
    if (!vf)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    int rc = 0;
    for (int i = 0; i < nfiles && !rc; i++) {
        vf[i].path = files[i];
        rc = read_file(&vf[i], fixed);
        for (size_t j = 0; !rc && j < vf[i].nv; j++)
            if (p->block > 0 && vf[i].v[j].k % p->k)
                rc = mxv_error(MXV_EXIT_BADINPUT, "%s:%ld: k = %d is not a multiple "
                               "of %s's %d products per instruction", files[i],
                               vf[i].v[j].line, vf[i].v[j].k, p->name, p->k);
    }
    size_t bad = 0;
    for (int i = 0; i < nfiles && !rc; i++)
        bad += replay(&vf[i], p, model, show);
    for (int i = 0; i < nfiles; i++)
        vfile_free(&vf[i]);
    free(vf);
    if (rc)
        return rc;
    if (nfiles > 1)
        printf("total: %zu mismatches\n", bad);
    return bad ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
