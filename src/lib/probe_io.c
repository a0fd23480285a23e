/* probe_io.c -- plan, result and probe files of the matrix-unit probe (see
 * probe_io.h for the formats). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "out.h"
#include "probe_io.h"
#include "input.h"

/* The order is tc_probe.cu's VARS[] (its VARIANT argument). */
const mxv_tc_variant mxv_tc_variants[MXV_TC_NVARIANTS] = {
    {"mma_e4m3_e4m3", "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32",
     0, MX_E4M3FN, MX_E4M3FN, 32},
    {"mma_e5m2_e5m2", "mma.sync.aligned.m16n8k32.row.col.f32.e5m2.e5m2.f32",
     0, MX_E5M2, MX_E5M2, 32},
    {"mma_e4m3_e5m2", "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e5m2.f32",
     0, MX_E4M3FN, MX_E5M2, 32},
    {"mma_bf16_bf16", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
     0, MX_BF16, MX_BF16, 16},
    {"mma_fp16_fp16", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
     0, MX_FP16, MX_FP16, 16},
    {"wgmma_e4m3_e4m3", "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3",
     1, MX_E4M3FN, MX_E4M3FN, 32},
    {"wgmma_e5m2_e5m2", "wgmma.mma_async.sync.aligned.m64n8k32.f32.e5m2.e5m2",
     1, MX_E5M2, MX_E5M2, 32},
    {"wgmma_e4m3_e5m2", "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e5m2",
     1, MX_E4M3FN, MX_E5M2, 32},
    {"wgmma_bf16_bf16", "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16",
     1, MX_BF16, MX_BF16, 16},
    {"wgmma_fp16_fp16", "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16",
     1, MX_FP16, MX_FP16, 16},
};


/* ---- writing through a temporary file ------------------------------------ */

typedef struct {
    mxv_out *o;
    FILE *f;
} tmpout;

static int tmp_open(tmpout *t, const char *path, char *err, size_t len)
{
    t->o = mxv_out_open(path, err, len);
    t->f = t->o ? mxv_out_file(t->o) : NULL;
    return t->o ? 0 : -1;
}

static int tmp_commit(tmpout *t, const char *path, char *err, size_t len)
{
    (void)path;
    return mxv_out_commit(t->o, err, len);
}

/* ---- plan files ------------------------------------------------------------ */

void mxv_plan_file_name(const mx_probe_plan *p, char *buf, size_t len)
{
    snprintf(buf, len, "plan_%s_%s_k%d.bin", p->fa->name, p->fb->name, p->k);
}

int mxv_plan_write(const char *path, const mx_probe_plan *p, char *err,
                   size_t errlen)
{
    tmpout t;
    if (tmp_open(&t, path, err, errlen))
        return -1;
    uint32_t ea = (uint32_t)p->fa->bits / 8, eb = (uint32_t)p->fb->bits / 8;
    uint32_t h[7] = {(uint32_t)p->version, (uint32_t)p->fa->id,
                     (uint32_t)p->fb->id, (uint32_t)p->k, (uint32_t)p->ncase,
                     (uint32_t)p->stride, ea | eb << 8};
    fwrite("MXPL", 1, 4, t.f);
    fwrite(h, 4, 7, t.f);
    for (size_t i = 0; i < p->ncase; i++) {
        int32_t n = p->n[i];
        fwrite(&n, 4, 1, t.f);
    }
    fwrite(p->a, ea, p->ncase * p->stride, t.f);
    fwrite(p->b, eb, p->ncase * p->stride, t.f);
    fwrite(p->c, 4, p->ncase, t.f);
    return tmp_commit(&t, path, err, errlen);
}

/* ---- result files ---------------------------------------------------------- */

int mxv_mxtd_read(const char *path, mxv_mxtd *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    size_t fsize;
    int fd = mxv_input_open(path, &fsize, err, errlen);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0) {
            close(fd);
            return mxv_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        }
        return -1;
    }
    char magic[4];
    uint32_t h[3];
    const char *why = NULL;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "MXTD", 4))
        why = "not a tc_probe result file (no MXTD magic)";
    else if (fread(h, 4, 3, f) != 3 || fread(&m->seed, 8, 1, f) != 1 ||
             fread(&m->n, 4, 1, f) != 1 || fread(&m->ncase, 4, 1, f) != 1 ||
             fread(&m->checksum, 8, 1, f) != 1)
        why = "truncated header";
    else if (h[0] != 1)
        why = "unknown version (want 1)";
    else if (h[1] >= MXV_TC_NVARIANTS)
        why = "unknown instruction variant";
    else if (h[2] > 1)
        why = "unknown kind of case set";
    else if (m->ncase == 0 || m->ncase > (1u << 26))
        why = "case count out of range";
    if (!why && fsize != 40 + 4 * (size_t)m->ncase) { /* before allocating */
        fclose(f);
        size_t got = fsize >= 40 ? (fsize - 40) / 4 : 0;
        return mxv_errf(err, errlen, "%s: %zu results where the header says %u%s", path,
                    got, m->ncase, got >= m->ncase ? " (and more bytes)" : "");
    }
    if (why) {
        fclose(f);
        return mxv_errf(err, errlen, "%s: %s", path, why);
    }
    m->version = h[0];
    m->variant = h[1];
    m->kind = h[2];
    m->d = malloc((size_t)m->ncase * 4);
    if (!m->d) {
        fclose(f);
        return mxv_errf(err, errlen, "%s: out of memory", path);
    }
    size_t got = fread(m->d, 4, m->ncase, f);
    int extra = got == m->ncase && fgetc(f) != EOF;
    fclose(f);
    if (got != m->ncase || extra) {
        free(m->d);
        m->d = NULL;
        return mxv_errf(err, errlen, "%s: %zu results where the header says %u%s", path,
                    got, m->ncase, extra ? " (and more bytes)" : "");
    }
    return 0;
}

void mxv_mxtd_free(mxv_mxtd *m)
{
    free(m->d);
    memset(m, 0, sizeof *m);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * UINT64_C(0x100000001b3);
    return h;
}

uint64_t mxv_mxtd_checksum(const uint32_t *a, const uint32_t *b, size_t nn,
                           const uint32_t *c, size_t ncase)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = fnv(h, a, nn * 4);
    h = fnv(h, b, nn * 4);
    return fnv(h, c, ncase * 4);
}

/* The codes of one operand, widened to uint32 and hashed in order. */
static uint64_t fnv_codes(uint64_t h, const mx_format *f, const void *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t x = f->bits == 8 ? ((const uint8_t *)v)[i] : ((const uint16_t *)v)[i];
        h = fnv(h, &x, 4);
    }
    return h;
}

uint64_t mxv_plan_checksum(const mx_probe_plan *p)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t nn = p->ncase * p->stride;
    h = fnv_codes(h, p->fa, p->a, nn);
    h = fnv_codes(h, p->fb, p->b, nn);
    return fnv(h, p->c, p->ncase * 4);
}

/* ---- probe files ----------------------------------------------------------- */

static int hex8(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return s[8] == 0;
}

static int parse_count(const char *s, long max, long *out)
{
    if (*s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v > max)
        return 0;
    *out = v;
    return 1;
}

/* One line of f into buf (without its newline, NUL-terminated; *len
 * bytes): 1, 0 at the end of the file, -1 when the line does not fit,
 * -2 on a NUL byte (the rest of the line would be invisible to C
 * strings), -3 on a read error. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (c == 0)
            return -2;
        if (n + 1 >= cap)
            return -1;
        buf[n++] = (char)c;
    }
    if (c == EOF && ferror(f))
        return -3;
    if (c == EOF && n == 0)
        return 0;
    buf[n] = 0;
    *len = n;
    return 1;
}

int mxv_probe_file_read(const char *path, mxv_probe_file *g, char *err,
                        size_t errlen)
{
    memset(g, 0, sizeof *g);
    FILE *f = mxv_input_fopen(path, err, errlen);
    if (!f)
        return -1;
    char line[512];
    long ln = 0, l_fa = 0, l_fb = 0;
    size_t got = 0, cap = 0;
    int rc = 0, r;
    size_t L;
#define BAD(...) do { char m_[700]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        rc = mxv_errf(err, errlen, "%s:%ld: %s", path, ln, m_); goto out; } while (0)
    while ((r = read_line(f, line, sizeof line, &L)) != 0) {
        ln++;
        if (r == -1)
            BAD("line too long (more than %zu bytes)", sizeof line - 2);
        if (r == -2)
            BAD("NUL byte in a text file");
        if (r == -3)
            BAD("read error: %s", strerror(errno));
        if (L && line[L - 1] == '\r')
            line[--L] = 0;
        if (line[0] == '#')
            continue;
        if (!line[0])
            BAD("empty line");
        char *sp = strchr(line, ' ');
        if (sp) { /* a key line */
            *sp = 0;
            const char *key = line, *val = sp + 1;
            if (g->d)
                BAD("key '%s' after the first result", key);
            long v;
            if (!strcmp(key, "fa") || !strcmp(key, "fb")) {
                long *where = key[1] == 'a' ? &l_fa : &l_fb;
                if (*where)
                    BAD("%s given twice (line %ld)", key, *where);
                const mx_format *fm = mx_format_by_name(val);
                if (!fm)
                    BAD("unknown format '%s'", val);
                if (!fm->is_signed || (fm->bits != 8 && fm->bits != 16))
                    BAD("format %s: the probe takes 8- or 16-bit signed formats", fm->name);
                *(key[1] == 'a' ? &g->fa : &g->fb) = fm;
                *where = ln;
            } else if (!strcmp(key, "k")) {
                if (g->line_k)
                    BAD("k given twice (line %ld)", g->line_k);
                if (!parse_count(val, 4096, &v) || v < 1)
                    BAD("k '%s' is not an integer in 1..4096", val);
                g->k = (int)v;
                g->line_k = ln;
            } else if (!strcmp(key, "plan")) {
                if (g->line_plan)
                    BAD("plan given twice (line %ld)", g->line_plan);
                if (!parse_count(val, 1000000, &v) || v < 1)
                    BAD("plan version '%s' is not a positive integer", val);
                g->plan = (int)v;
                g->line_plan = ln;
            } else if (!strcmp(key, "ncase")) {
                if (g->line_ncase)
                    BAD("ncase given twice (line %ld)", g->line_ncase);
                if (!parse_count(val, 1L << 26, &v) || v < 1)
                    BAD("ncase '%s' is not an integer in 1..2^26", val);
                g->ncase = (size_t)v;
                g->line_ncase = ln;
            } else {
                BAD("unknown key '%s' (want fa, fb, k, plan, ncase)", key);
            }
            continue;
        }
        if (!g->d && (!l_fa || !l_fb || !g->line_k || !g->line_plan || !g->line_ncase))
            BAD("a result before the keys fa, fb, k, plan and ncase are all given");
        uint32_t v;
        if (!hex8(line, &v))
            BAD("'%.40s' is not a result (8 hex digits)", line);
        if (got == g->ncase)
            BAD("more results than ncase %zu (line %ld)", g->ncase, g->line_ncase);
        if (got == cap) { /* grown with the file, not trusted from ncase */
            size_t nc = cap ? 2 * cap : 4096;
            if (nc > g->ncase)
                nc = g->ncase;
            uint32_t *d = realloc(g->d, nc * sizeof *d);
            if (!d)
                BAD("out of memory");
            g->d = d;
            cap = nc;
        }
        g->d[got++] = v;
    }
    if (!g->d)
        BAD("no results (keys fa, fb, k, plan, ncase, then one FP32 per line)");
    if (got != g->ncase)
        BAD("%zu results, but ncase (line %ld) says %zu", got, g->line_ncase, g->ncase);
#undef BAD
out:
    fclose(f);
    if (rc)
        mxv_probe_file_free(g);
    return rc;
}

void mxv_probe_file_free(mxv_probe_file *g)
{
    free(g->d);
    memset(g, 0, sizeof *g);
}

int mxv_probe_file_write(const char *path, const char *comment,
                         const mx_format *fa, const mx_format *fb, int k,
                         int plan, size_t ncase, const uint32_t *d, char *err,
                         size_t errlen)
{
    tmpout t;
    if (tmp_open(&t, path, err, errlen))
        return -1;
    if (comment)
        fputs(comment, t.f);
    fprintf(t.f, "fa %s\nfb %s\nk %d\nplan %d\nncase %zu\n", fa->name, fb->name,
            k, plan, ncase);
    for (size_t i = 0; i < ncase; i++)
        fprintf(t.f, "%08x\n", (unsigned)d[i]);
    return tmp_commit(&t, path, err, errlen);
}
