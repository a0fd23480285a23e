/* check_safetensors.c -- the safetensors reader and writer.
 *
 * Expected values never come from the module itself:
 *  - round trips compare against the bytes, shapes and strings the test put
 *    in (every dtype, scalars, zero-size tensors, metadata with escapes);
 *  - the writer's exact bytes are compared with a file spelled out here
 *    from the format (header text, padding rule, tensor order);
 *  - every validation rule has a trap test that feeds it a broken file and
 *    checks the status AND that the one-line message names the file, the
 *    tensor and the field;
 *  - a seeded fuzz loop mutates a valid file and checks, on every file the
 *    reader accepts, the invariants it promises (recomputed here), and on
 *    every refusal the one-line form;
 *  - write failures are provoked for real (missing directory, a directory
 *    in the way, RLIMIT_FSIZE) and leave no file and no temporary behind.
 * The Python cross-check (tests/python/test_safetensors.py) adds the
 * independent implementation: the safetensors library itself.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gsl/gsl_rng.h>
#include "testutil.h"
#include "cli.h"
#include "safetensors.h"
#include "capture.h"
#include <math.h>
#include "mxref/format.h"

#define LABEL "case.safetensors"

static char tmpdir[256];

static void tpath(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", tmpdir, name);
}

/* ---- building files by hand ------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n;
} blob;

/* prefix (the 8-byte header length), then hdr, then dlen bytes of data. */
static blob mk_len(uint64_t prefix, const char *hdr, size_t hlen,
                   const void *data, size_t dlen)
{
    blob b;
    b.n = 8 + hlen + dlen;
    b.p = malloc(b.n + 1);
    ck_assert_ptr_nonnull(b.p);
    for (int i = 0; i < 8; i++)
        b.p[i] = (unsigned char)(prefix >> (8 * i));
    memcpy(b.p + 8, hdr, hlen);
    if (dlen)
        memcpy(b.p + 8 + hlen, data, dlen);
    return b;
}

static blob mk(const char *hdr, const void *data, size_t dlen)
{
    return mk_len(strlen(hdr), hdr, strlen(hdr), data, dlen);
}

static const unsigned char ZEROS[4096];

static void check_one_line(int line, const char *msg)
{
    EXPECT(msg[0] != '\0', "line %d: empty message", line);
    EXPECT(strchr(msg, '\n') == NULL && strchr(msg, '\r') == NULL,
           "line %d: message spans lines: %s", line, msg);
}

/* Opens b; expects status want and a message that starts with the file
 * label and contains each of subs. */
static void trap_blob(int line, blob b, mxv_st_status want,
                      const char *const *subs)
{
    mxv_st_file *f = NULL;
    mxv_st_err e;
    mxv_st_status st = mxv_st_open_buffer(b.p, b.n, LABEL, &f, &e);
    EXPECT(st == want, "line %d: status %s, want %s (message: %s)", line,
           mxv_st_status_name(st), mxv_st_status_name(want), e.msg);
    EXPECT(f == NULL, "line %d: file object returned on failure", line);
    check_one_line(line, e.msg);
    EXPECT(!strncmp(e.msg, LABEL ": ", strlen(LABEL) + 2),
           "line %d: message does not start with the file: %s", line, e.msg);
    for (; *subs; subs++)
        EXPECT(strstr(e.msg, *subs) != NULL,
               "line %d: message lacks '%s': %s", line, *subs, e.msg);
    free(b.p);
}

#define TRAPB(b, want, ...)                                                    \
    trap_blob(__LINE__, b, want, (const char *const[]){__VA_ARGS__, NULL})
#define TRAP(hdr, dlen, want, ...) TRAPB(mk(hdr, ZEROS, dlen), want, __VA_ARGS__)

/* Opens a file expected to be valid. */
static mxv_st_file *open_ok(int line, blob b)
{
    mxv_st_file *f = NULL;
    mxv_st_err e;
    mxv_st_status st = mxv_st_open_buffer(b.p, b.n, LABEL, &f, &e);
    ck_assert_msg(st == MXV_ST_OK, "line %d: refused: %s", line, e.msg);
    ck_assert_msg(e.msg[0] == '\0', "line %d: message on success", line);
    return f;
}
#define OPEN_OK(b) open_ok(__LINE__, b)

/* ---- dtypes ----------------------------------------------------------- */

/* The safetensors spellings and sizes, from the format's Dtype list. */
static const struct {
    const char *name;
    size_t size;
    int format; /* mx_format_id or -1 */
} spec_dtypes[MXV_ST_DTYPE_COUNT] = {
    [MXV_ST_F64] = {"F64", 8, -1},
    [MXV_ST_F32] = {"F32", 4, MX_FP32},
    [MXV_ST_F16] = {"F16", 2, MX_FP16},
    [MXV_ST_BF16] = {"BF16", 2, MX_BF16},
    [MXV_ST_I64] = {"I64", 8, -1},
    [MXV_ST_I32] = {"I32", 4, -1},
    [MXV_ST_I8] = {"I8", 1, -1},
    [MXV_ST_U8] = {"U8", 1, -1},
    [MXV_ST_F8_E4M3] = {"F8_E4M3", 1, MX_E4M3FN},
    [MXV_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 1, MX_E4M3FNUZ},
    [MXV_ST_F8_E5M2] = {"F8_E5M2", 1, MX_E5M2},
    [MXV_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 1, MX_E5M2FNUZ},
    [MXV_ST_F8_E8M0] = {"F8_E8M0", 1, MX_E8M0},
};

START_TEST(test_dtype_table)
{
    for (int d = 0; d < MXV_ST_DTYPE_COUNT; d++) {
        mxv_st_dtype back;
        mx_format_id fid;
        ck_assert_str_eq(mxv_st_dtype_name((mxv_st_dtype)d),
                         spec_dtypes[d].name);
        ck_assert_uint_eq(mxv_st_dtype_size((mxv_st_dtype)d),
                          spec_dtypes[d].size);
        ck_assert_int_eq(mxv_st_dtype_by_name(spec_dtypes[d].name, &back), 0);
        ck_assert_int_eq(back, d);
        int has = mxv_st_dtype_to_format((mxv_st_dtype)d, &fid) == 0;
        ck_assert_int_eq(has, spec_dtypes[d].format >= 0);
        if (has) {
            ck_assert_int_eq(fid, spec_dtypes[d].format);
            ck_assert_int_eq(mx_format_get(fid)->bits,
                             8 * (int)spec_dtypes[d].size);
            ck_assert_int_eq(mxv_st_dtype_from_format(fid, &back), 0);
            ck_assert_int_eq(back, d);
        }
    }
    /* Spellings of other libraries and other safetensors dtypes. */
    static const char *const bad[] = {"f32",     "float32", "F8_E4M3FN",
                                      "E8M0",    "BOOL",    "F4",
                                      "U16",     "C64",     "",
                                      "F32 ",    "bfloat16"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mxv_st_dtype d;
        EXPECT(mxv_st_dtype_by_name(bad[i], &d) == -1, "accepted '%s'",
               bad[i]);
    }
    ck_assert_ptr_null(mxv_st_dtype_name(MXV_ST_DTYPE_COUNT));
    ck_assert_uint_eq(mxv_st_dtype_size((mxv_st_dtype)-1), 0);
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_EFORMAT), MXV_EXIT_BADINPUT);
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_EMISMATCH), MXV_EXIT_BADINPUT);
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_EOPEN), MXV_EXIT_BADINPUT);
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_EIO), MXV_EXIT_INTERNAL);
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_OK), MXV_EXIT_OK);
}
END_TEST

/* ---- round trips ------------------------------------------------------ */

static unsigned char *random_bytes(gsl_rng *r, size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)gsl_rng_uniform_int(r, 256);
    return p;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return p;
}

typedef struct {
    char name[32];
    mxv_st_dtype dtype;
    int rank;
    uint64_t shape[4];
    uint64_t nbytes;
    unsigned char *data;
} spec_tensor;

static const int shapes[][5] = {
    /* rank, dims */
    {0, 0, 0, 0, 0}, {1, 7, 0, 0, 0}, {2, 3, 5, 0, 0},
    {3, 2, 3, 4, 0}, {2, 0, 4, 0, 0}, {4, 1, 2, 1, 3},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

START_TEST(test_roundtrip_every_dtype)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20240601);
    spec_tensor ts[MXV_ST_DTYPE_COUNT * NSHAPES];
    int n = 0;
    char path[512];
    tpath(path, sizeof path, "roundtrip.safetensors");
    mxv_st_writer *w = mxv_st_writer_new(path);
    mxv_st_err e;
    for (int d = 0; d < MXV_ST_DTYPE_COUNT; d++)
        for (int s = 0; s < NSHAPES; s++, n++) {
            spec_tensor *t = &ts[n];
            snprintf(t->name, sizeof t->name, "%s/shape%d", spec_dtypes[d].name,
                     s);
            t->dtype = (mxv_st_dtype)d;
            t->rank = shapes[s][0];
            uint64_t numel = 1;
            for (int k = 0; k < t->rank; k++)
                numel *= (t->shape[k] = (uint64_t)shapes[s][k + 1]);
            t->nbytes = numel * spec_dtypes[d].size;
            t->data = random_bytes(r, t->nbytes);
            ck_assert_msg(mxv_st_writer_add(w, t->name, t->dtype, t->rank,
                                            t->shape, t->data,
                                            &e) == MXV_ST_OK,
                          "%s", e.msg);
        }
    static const char *const meta[][2] = {
        {"kind", "mxfp8-grouped-gemm"},
        {"quote\"back\\slash", "tab\there\nnewline \x01 \x7f"},
        {"unicode \xc3\xa9\xe2\x80\xa8", "\xf0\x9f\x98\x80"},
        {"", "empty key"},
    };
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(mxv_st_writer_meta(w, meta[i][0], meta[i][1], &e),
                         MXV_ST_OK);
    ck_assert_msg(mxv_st_writer_commit(w, &e) == MXV_ST_OK, "%s", e.msg);
    mxv_st_writer_free(w);

    mxv_st_file *f;
    ck_assert_msg(mxv_st_open(path, &f, &e) == MXV_ST_OK, "%s", e.msg);
    ck_assert_uint_eq(mxv_st_count(f), (size_t)n);
    for (int i = 0; i < n; i++) {
        const spec_tensor *t = &ts[i];
        const mxv_st_tensor *g = mxv_st_find(f, t->name);
        ck_assert_msg(g != NULL, "%s missing", t->name);
        ck_assert_str_eq(g->name, t->name);
        EXPECT1(g->dtype == t->dtype);
        EXPECT1(g->rank == t->rank);
        uint64_t numel = 1;
        for (int k = 0; k < t->rank; k++) {
            EXPECT1(g->shape[k] == t->shape[k]);
            numel *= t->shape[k];
        }
        EXPECT1(g->numel == numel);
        EXPECT1(g->nbytes == t->nbytes);
        EXPECT(g->nbytes == 0 || !memcmp(g->data, t->data, t->nbytes),
               "%s: data differ", t->name);
        EXPECT((uintptr_t)g->data % spec_dtypes[t->dtype].size == 0,
               "%s: misaligned", t->name);
    }
    /* Data-section order: contiguous from 0, widest elements first. */
    uint64_t off = 0;
    for (size_t i = 0; i < mxv_st_count(f); i++) {
        const mxv_st_tensor *g = mxv_st_tensor_at(f, i);
        EXPECT(g->offset == off, "tensor %zu at %llu, want %llu", i,
               (unsigned long long)g->offset, (unsigned long long)off);
        EXPECT1(g->offset % spec_dtypes[g->dtype].size == 0);
        if (i)
            EXPECT1(spec_dtypes[mxv_st_tensor_at(f, i - 1)->dtype].size >=
                    spec_dtypes[g->dtype].size);
        off += g->nbytes;
    }
    ck_assert_ptr_null(mxv_st_tensor_at(f, (size_t)n));
    ck_assert_ptr_null(mxv_st_find(f, "F32/shape9"));
    ck_assert_uint_eq(mxv_st_meta_count(f), 4);
    for (int i = 0; i < 4; i++) {
        const char *v = mxv_st_meta_get(f, meta[i][0]);
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v, meta[i][1]);
    }
    /* Iteration is by key in byte order. */
    const char *k0, *k1, *v0;
    for (size_t i = 1; i < 4; i++) {
        mxv_st_meta_at(f, i - 1, &k0, &v0);
        mxv_st_meta_at(f, i, &k1, NULL);
        EXPECT1(strcmp(k0, k1) < 0);
    }
    ck_assert_int_eq(mxv_st_meta_at(f, 4, &k0, &v0), -1);
    ck_assert_ptr_null(mxv_st_meta_get(f, "absent"));
    mxv_st_close(f);
    for (int i = 0; i < n; i++)
        free(ts[i].data);
    gsl_rng_free(r);
}
END_TEST

/* ---- exact bytes and determinism -------------------------------------- */

static mxv_st_status write_small(const char *path, int reversed)
{
    static const unsigned char b[3] = {1, 2, 3};
    static const float a[2] = {1.0f, -2.0f};
    static const uint16_t c[1] = {0x3F80};
    const uint64_t s3 = 3, s2 = 2, s1 = 1;
    mxv_st_err e;
    mxv_st_writer *w = mxv_st_writer_new(path);
    if (!reversed) {
        mxv_st_writer_add(w, "b", MXV_ST_U8, 1, &s3, b, &e);
        mxv_st_writer_add(w, "a", MXV_ST_F32, 1, &s2, a, &e);
        mxv_st_writer_add(w, "c", MXV_ST_BF16, 1, &s1, c, &e);
        mxv_st_writer_meta(w, "k", "v\n", &e);
        mxv_st_writer_meta(w, "j", "\"", &e);
    } else {
        mxv_st_writer_meta(w, "j", "\"", &e);
        mxv_st_writer_meta(w, "k", "v\n", &e);
        mxv_st_writer_add(w, "c", MXV_ST_BF16, 1, &s1, c, &e);
        mxv_st_writer_add(w, "a", MXV_ST_F32, 1, &s2, a, &e);
        mxv_st_writer_add(w, "b", MXV_ST_U8, 1, &s3, b, &e);
    }
    mxv_st_status st = mxv_st_writer_commit(w, &e);
    mxv_st_writer_free(w);
    return st;
}

START_TEST(test_exact_bytes)
{
    /* The file written out by hand: metadata first with sorted keys, then
     * F32 before BF16 before U8 (the Python library's order), no
     * whitespace, spaces up to a multiple of 8, little-endian data. */
    const char *hdr =
        "{\"__metadata__\":{\"j\":\"\\\"\",\"k\":\"v\\n\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[8,10]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[10,13]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    unsigned char want[512];
    ck_assert_uint_lt(8 + padded + 13, sizeof want);
    for (int i = 0; i < 8; i++)
        want[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(want + 8, hdr, hl);
    memset(want + 8 + hl, ' ', padded - hl);
    static const unsigned char data[13] = {0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0,
                                           0x80, 0x3F, 1, 2, 3};
    memcpy(want + 8 + padded, data, 13);
    size_t wn = 8 + padded + 13;

    char p1[512], p2[512];
    tpath(p1, sizeof p1, "exact1.safetensors");
    tpath(p2, sizeof p2, "exact2.safetensors");
    ck_assert_int_eq(write_small(p1, 0), MXV_ST_OK);
    ck_assert_int_eq(write_small(p2, 1), MXV_ST_OK);
    size_t n1, n2;
    unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    ck_assert_uint_eq(n1, wn);
    ck_assert_msg(!memcmp(b1, want, wn), "bytes differ from the spelled-out file");
    ck_assert_uint_eq(n2, n1);
    ck_assert_msg(!memcmp(b1, b2, n1), "insertion order changed the bytes");
    /* Rewriting over an existing file gives the same bytes again. */
    ck_assert_int_eq(write_small(p1, 1), MXV_ST_OK);
    free(b1);
    b1 = slurp(p1, &n1);
    ck_assert_msg(n1 == wn && !memcmp(b1, want, wn), "rewrite differs");
    free(b1);
    free(b2);
}
END_TEST

START_TEST(test_empty_files_written)
{
    char p[512];
    mxv_st_err e;
    tpath(p, sizeof p, "empty.safetensors");
    mxv_st_writer *w = mxv_st_writer_new(p);
    ck_assert_int_eq(mxv_st_writer_commit(w, &e), MXV_ST_OK);
    mxv_st_writer_free(w);
    size_t n;
    unsigned char *b = slurp(p, &n);
    /* "{}" padded to 8: the Python library's empty file. */
    static const unsigned char want[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}',
                                           ' ', ' ', ' ', ' ', ' ', ' '};
    ck_assert_uint_eq(n, 16);
    ck_assert(!memcmp(b, want, 16));
    free(b);
    mxv_st_file *f;
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_OK);
    ck_assert_uint_eq(mxv_st_count(f), 0);
    ck_assert_uint_eq(mxv_st_meta_count(f), 0);
    mxv_st_close(f);
}
END_TEST

/* ---- writer refusals and atomicity ------------------------------------ */

static int leftover_temps(void)
{
    int n = 0;
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void expect_einval(int line, mxv_st_status st, const mxv_st_err *e,
                          const char *path, const char *sub)
{
    EXPECT(st == MXV_ST_EINVAL, "line %d: status %s", line,
           mxv_st_status_name(st));
    check_one_line(line, e->msg);
    EXPECT(strstr(e->msg, path) == e->msg, "line %d: no path: %s", line,
           e->msg);
    EXPECT(strstr(e->msg, sub), "line %d: lacks '%s': %s", line, sub, e->msg);
}

START_TEST(test_writer_refuses)
{
    char p[512];
    tpath(p, sizeof p, "refused.safetensors");
    mxv_st_writer *w = mxv_st_writer_new(p);
    mxv_st_err e;
    uint64_t s[MXV_ST_MAX_RANK + 1];
    for (int i = 0; i <= MXV_ST_MAX_RANK; i++)
        s[i] = 1;
    unsigned char one[8] = {0};
#define REFUSE(call, sub) expect_einval(__LINE__, call, &e, p, sub)
    ck_assert_int_eq(mxv_st_writer_add(w, "x", MXV_ST_U8, 1, s, one, &e), 0);
    REFUSE(mxv_st_writer_add(w, "x", MXV_ST_U8, 1, s, one, &e),
           "tensor \"x\": added twice");
    REFUSE(mxv_st_writer_add(w, "__metadata__", MXV_ST_U8, 1, s, one, &e),
           "reserved");
    REFUSE(mxv_st_writer_add(w, "bad\xff", MXV_ST_U8, 1, s, one, &e),
           "tensor \"bad\\xFF\": name is not valid UTF-8");
    REFUSE(mxv_st_writer_add(w, "r", MXV_ST_U8, MXV_ST_MAX_RANK + 1, s, one,
                             &e),
           "tensor \"r\": rank 17");
    REFUSE(mxv_st_writer_add(w, "neg", MXV_ST_U8, -1, s, one, &e), "rank -1");
    REFUSE(mxv_st_writer_add(w, "d", (mxv_st_dtype)99, 1, s, one, &e),
           "dtype 99");
    REFUSE(mxv_st_writer_add(w, "null", MXV_ST_U8, 1, s, NULL, &e),
           "tensor \"null\": data is NULL");
    uint64_t big[2] = {1ull << 53, 1};
    REFUSE(mxv_st_writer_add(w, "big", MXV_ST_U8, 2, big, one, &e),
           "shape[0] is 9007199254740992");
    uint64_t ovf[2] = {1ull << 40, 1ull << 40};
    REFUSE(mxv_st_writer_add(w, "ovf", MXV_ST_U8, 2, ovf, one, &e),
           "shape [1099511627776, 1099511627776] of dtype U8 holds more than");
    uint64_t half[1] = {1ull << 51};
    REFUSE(mxv_st_writer_add(w, "f64", MXV_ST_F64, 1, half, one, &e),
           "more than 2^53 - 1 bytes");
    /* Duplicates are found among many names too. */
    for (int i = 0; i < 1000; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "many%d", i);
        ck_assert_int_eq(mxv_st_writer_add(w, nm, MXV_ST_U8, 1, s, one, &e), 0);
    }
    REFUSE(mxv_st_writer_add(w, "many517", MXV_ST_F32, 1, s, one, &e),
           "tensor \"many517\": added twice");
    REFUSE(mxv_st_writer_add(w, "x", MXV_ST_U8, 1, s, one, &e),
           "tensor \"x\": added twice");
    /* Zero-size tensors need no data. */
    uint64_t z[2] = {0, 5};
    ck_assert_int_eq(mxv_st_writer_add(w, "z", MXV_ST_F32, 2, z, NULL, &e), 0);
    ck_assert_int_eq(mxv_st_writer_meta(w, "k", "v", &e), 0);
    REFUSE(mxv_st_writer_meta(w, "k", "w", &e), "__metadata__ \"k\": added twice");
    REFUSE(mxv_st_writer_meta(w, "u", "\xc3", &e), "not valid UTF-8");
    ck_assert_int_eq(mxv_st_writer_commit(w, &e), MXV_ST_OK);
    REFUSE(mxv_st_writer_commit(w, &e), "already written");
    REFUSE(mxv_st_writer_add(w, "late", MXV_ST_U8, 1, s, one, &e),
           "after the file was written");
#undef REFUSE
    mxv_st_writer_free(w);
    /* What was accepted is what was written. */
    mxv_st_file *f;
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_OK);
    ck_assert_uint_eq(mxv_st_count(f), 1002);
    ck_assert_uint_eq(mxv_st_find(f, "z")->nbytes, 0);
    ck_assert_uint_eq(mxv_st_find(f, "z")->rank, 2);
    mxv_st_close(f);
}
END_TEST

static mxv_st_status write_big(const char *path, mxv_st_err *e)
{
    static unsigned char big[65536];
    uint64_t n = sizeof big;
    mxv_st_writer *w = mxv_st_writer_new(path);
    mxv_st_writer_add(w, "big", MXV_ST_U8, 1, &n, big, e);
    mxv_st_status st = mxv_st_writer_commit(w, e);
    mxv_st_writer_free(w);
    return st;
}

START_TEST(test_atomic_write)
{
    char p[512];
    mxv_st_err e;
    /* No directory: nothing is created. */
    tpath(p, sizeof p, "no-such-dir/x.safetensors");
    ck_assert_int_eq(write_big(p, &e), MXV_ST_EIO);
    check_one_line(__LINE__, e.msg);
    ck_assert_msg(strstr(e.msg, p) == e.msg && strstr(e.msg, "temporary"),
                  "%s", e.msg);

    /* A directory in the way: the rename fails after the data went out;
     * the temporary file must go. */
    tpath(p, sizeof p, "a-directory");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    ck_assert_int_eq(write_big(p, &e), MXV_ST_EIO);
    ck_assert_msg(strstr(e.msg, "rename"), "%s", e.msg);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(leftover_temps(), 0);

    /* A write that fails half-way (file size limit): the old file stays
     * as it was and no temporary is left. */
    tpath(p, sizeof p, "atomic.safetensors");
    FILE *fp = fopen(p, "wb");
    fputs("old content", fp);
    fclose(fp);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    mxv_st_status st = write_big(p, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_int_eq(st, MXV_ST_EIO);
    check_one_line(__LINE__, e.msg);
    ck_assert_msg(strstr(e.msg, p) == e.msg && strstr(e.msg, "cannot write"),
                  "%s", e.msg);
    size_t n;
    unsigned char *b = slurp(p, &n);
    ck_assert_uint_eq(n, 11);
    ck_assert(!memcmp(b, "old content", 11));
    free(b);
    ck_assert_int_eq(leftover_temps(), 0);

    /* And the same write without the limit replaces it. */
    ck_assert_int_eq(write_big(p, &e), MXV_ST_OK);
    mxv_st_file *f;
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_OK);
    ck_assert_uint_eq(mxv_st_find(f, "big")->nbytes, 65536);
    mxv_st_close(f);
    ck_assert_int_eq(leftover_temps(), 0);
}
END_TEST

/* ---- reader: files ---------------------------------------------------- */

START_TEST(test_open_errors)
{
    char p[512];
    mxv_st_err e;
    mxv_st_file *f = (mxv_st_file *)&e;
    tpath(p, sizeof p, "does-not-exist.safetensors");
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_EOPEN);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(e.msg, p) == e.msg &&
                      strstr(e.msg, "cannot open: No such file"),
                  "%s", e.msg);
    ck_assert_int_eq(mxv_st_open(tmpdir, &f, &e), MXV_ST_EOPEN);
    ck_assert_msg(strstr(e.msg, "is a directory"), "%s", e.msg);

    tpath(p, sizeof p, "empty-file.safetensors");
    fclose(fopen(p, "wb"));
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_EFORMAT);
    ck_assert_msg(strstr(e.msg, p) == e.msg && strstr(e.msg, "file is empty"),
                  "%s", e.msg);
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_EFORMAT), 3);

    tpath(p, sizeof p, "short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("\x10\0\0\0\0", 1, 5, fp);
    fclose(fp);
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_EFORMAT);
    ck_assert_msg(strstr(e.msg, "file is 5 bytes"), "%s", e.msg);

    /* A valid file cut short, on disk. */
    tpath(p, sizeof p, "truncated.safetensors");
    ck_assert_int_eq(write_small(p, 0), MXV_ST_OK);
    size_t n;
    unsigned char *b = slurp(p, &n);
    ck_assert_int_eq(truncate(p, (off_t)n - 1), 0);
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_EFORMAT);
    ck_assert_msg(strstr(e.msg, p) == e.msg &&
                      strstr(e.msg, "tensor \"b\": data_offsets [10, 13] run "
                                    "past the end of the data section (12 "
                                    "bytes)"),
                  "%s", e.msg);
    ck_assert_int_eq(truncate(p, 20), 0);
    ck_assert_int_eq(mxv_st_open(p, &f, &e), MXV_ST_EFORMAT);
    ck_assert_msg(strstr(e.msg, "runs past the end of the file (20 bytes"),
                  "%s", e.msg);
    free(b);
}
END_TEST

START_TEST(test_every_truncation)
{
    /* Every prefix of a valid file is refused, with one line. */
    char p[512];
    tpath(p, sizeof p, "prefixes.safetensors");
    ck_assert_int_eq(write_small(p, 0), MXV_ST_OK);
    size_t n;
    unsigned char *b = slurp(p, &n);
    for (size_t len = 0; len < n; len++) {
        mxv_st_file *f;
        mxv_st_err e;
        unsigned char *copy = malloc(len + 1);
        memcpy(copy, b, len);
        mxv_st_status st = mxv_st_open_buffer(copy, len, LABEL, &f, &e);
        EXPECT(st == MXV_ST_EFORMAT, "prefix of %zu bytes: %s", len,
               mxv_st_status_name(st));
        check_one_line(__LINE__, e.msg);
        free(copy);
    }
    mxv_st_file *f = OPEN_OK(((blob){b, n}));
    ck_assert_uint_eq(mxv_st_count(f), 3);
    mxv_st_close(f);
    free(b);
}
END_TEST

/* ---- reader: the length prefix and the header text -------------------- */

START_TEST(test_trap_prefix_and_text)
{
    TRAPB(mk_len(100, "{}", 2, ZEROS, 10), MXV_ST_EFORMAT,
          "header length 100 runs past the end of the file (20 bytes");
    TRAPB(mk_len(1ull << 40, "{}", 2, NULL, 0), MXV_ST_EFORMAT,
          "header length 1099511627776 is above the limit of 100000000");
    TRAPB(mk_len(UINT64_MAX, "{}", 2, NULL, 0), MXV_ST_EFORMAT,
          "header length 18446744073709551615 is above the limit");
    TRAPB(mk_len(0, "", 0, ZEROS, 4), MXV_ST_EFORMAT, "header is empty");
    TRAP("        ", 0, MXV_ST_EFORMAT, "header is empty");
    TRAP("[]", 0, MXV_ST_EFORMAT, "header starts with byte 0x5B, not a JSON object");
    TRAP("\xef\xbb\xbf{}", 0, MXV_ST_EFORMAT, "starts with byte 0xEF");
    TRAP("{\"a\":", 0, MXV_ST_EFORMAT, "header is not valid JSON");
    TRAP("{\"a\":{\"dtype\":\"U8\",}}", 0, MXV_ST_EFORMAT,
         "header is not valid JSON");
    TRAP("{} x", 0, MXV_ST_EFORMAT, "bytes after the JSON object (header byte 3)");
    TRAPB(mk_len(4, "{}\0\0", 4, NULL, 0), MXV_ST_EFORMAT,
          "bytes after the JSON object (header byte 2)");
    /* Bad strings are blamed on the entry they sit in. */
    TRAP("{\"a\xff\":{}}", 0, MXV_ST_EFORMAT,
         "tensor \"a\\xFF\": name is not valid UTF-8 (header byte 3)");
    TRAP("{\"a\xc0\x80\":{}}", 0, MXV_ST_EFORMAT,
         "tensor \"a\\xC0\\x80\": name is not valid UTF-8");
    TRAP("{\"\xed\xa0\x80\":{}}", 0, MXV_ST_EFORMAT, "name is not valid UTF-8");
    TRAP("{\"a\":{\"dtype\":\"U8\xf8\"}}", 0, MXV_ST_EFORMAT,
         "tensor \"a\": a string in the entry is not valid UTF-8 (header byte 17)");
    TRAP("{\"a\x01\":{}}", 0, MXV_ST_EFORMAT,
         "tensor \"a\\x01\": name holds a raw control character (header byte 3)");
    TRAP("{\"__metadata__\":{\"k\":\"\t\"}}", 0, MXV_ST_EFORMAT,
         "__metadata__: a key or value holds a raw control character");
    TRAP("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
         0, MXV_ST_EFORMAT,
         "tensor \"a\": name holds \\u0000 (NUL), which mxverify cannot "
         "represent (header byte 3)");
    TRAP("{\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
         "\"a\":{\"dtype\":\"U8\\u0000\",\"shape\":[0],\"data_offsets\":[0,0]}}",
         0, MXV_ST_EFORMAT, "tensor \"a\": a string in the entry holds \\u0000");
    TRAP("{\"__metadata__\":{\"k\":\"\\u0000\"}}", 0, MXV_ST_EFORMAT,
         "__metadata__: a key or value holds \\u0000");
    TRAP("{\"a\":\"\\ud800\"}", 0, MXV_ST_EFORMAT, "not valid JSON");
    /* JSON nested beyond cJSON's limit is refused, not a crash. */
    char deep[2100 + 8];
    strcpy(deep, "{\"a\":");
    size_t k = 5;
    for (int i = 0; i < 1001; i++)
        deep[k++] = '[';
    for (int i = 0; i < 1001; i++)
        deep[k++] = ']';
    strcpy(deep + k, "}");
    TRAP(deep, 0, MXV_ST_EFORMAT, "not valid JSON");
}
END_TEST

/* ---- reader: entries -------------------------------------------------- */

#define U8E(name, n, b, e)                                                     \
    "\"" name "\":{\"dtype\":\"U8\",\"shape\":[" #n "],\"data_offsets\":[" #b \
    "," #e "]}"

START_TEST(test_trap_entries)
{
    TRAP("{\"a\":1}", 0, MXV_ST_EFORMAT,
         "tensor \"a\": entry is a number, not an object");
    TRAP("{\"a\":[]}", 0, MXV_ST_EFORMAT, "tensor \"a\": entry is an array");
    TRAP("{\"a\":null}", 0, MXV_ST_EFORMAT, "tensor \"a\": entry is null");
    TRAP("{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, MXV_ST_EFORMAT,
         "tensor \"a\": missing field dtype");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, MXV_ST_EFORMAT,
         "tensor \"a\": missing field shape");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, MXV_ST_EFORMAT,
         "tensor \"a\": missing field data_offsets");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
         "\"offsets\":[0,1]}}",
         1, MXV_ST_EFORMAT, "tensor \"a\": unknown field \"offsets\"");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],"
         "\"data_offsets\":[0,1]}}",
         1, MXV_ST_EFORMAT, "tensor \"a\": field dtype appears twice");
    TRAP("{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         MXV_ST_EFORMAT, "tensor \"a\": dtype is a number, not a string");
    static const char *const unknown[] = {"F4",        "BOOL", "float32",
                                          "f32",       "U16",  "C64",
                                          "F8_E4M3FN", ""};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        char hdr[256], want[64];
        snprintf(hdr, sizeof hdr,
                 "{\"w\":{\"dtype\":\"%s\",\"shape\":[1],"
                 "\"data_offsets\":[0,1]}}",
                 unknown[i]);
        snprintf(want, sizeof want, "tensor \"w\": dtype \"%s\" is not supported",
                 unknown[i]);
        TRAP(hdr, 1, MXV_ST_EFORMAT, want, "F8_E8M0");
    }
    /* Keys in any order, whitespace around: accepted. */
    blob b = mk(" \n{ \"a\" : { \"data_offsets\" : [ 0 , 2 ] , \"shape\" : "
                "[ 2 ] , \"dtype\" : \"U8\" } }\n\t ",
                "xy", 2);
    mxv_st_file *f = OPEN_OK(b);
    ck_assert_uint_eq(mxv_st_find(f, "a")->nbytes, 2);
    ck_assert(!memcmp(mxv_st_find(f, "a")->data, "xy", 2));
    mxv_st_close(f);
    free(b.p);
}
END_TEST

START_TEST(test_trap_shape)
{
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":3,\"data_offsets\":[0,3]}}", 3,
         MXV_ST_EFORMAT, "tensor \"a\": shape is a number, not an array");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"
         "\"data_offsets\":[0,1]}}",
         1, MXV_ST_EFORMAT, "tensor \"a\": shape has rank 17, above the limit 16");
    static const struct {
        const char *lit, *want;
    } bad[] = {
        {"-2", "shape[0] is -2, not a non-negative integer"},
        {"2.0", "shape[0] is 2.0, not a non-negative integer"},
        {"2e0", "shape[0] is 2e0, not a non-negative integer"},
        {"1.5", "shape[0] is 1.5, not a non-negative integer"},
        {"02", "shape[0] is 02, not a non-negative integer"},
        {"-0", "shape[0] is -0, not a non-negative integer"},
        {"\"2\"", "shape[0] is a string, not an integer"},
        {"null", "shape[0] is null, not an integer"},
        {"true", "shape[0] is a boolean, not an integer"},
        {"[2]", "shape[0] is an array, not an integer"},
        {"9007199254740992", "shape[0] is 9007199254740992, above the limit 2^53 - 1"},
        /* cJSON reads this one as 2^53 exactly; the text says otherwise */
        {"9007199254740993", "shape[0] is 9007199254740993, above the limit"},
        {"18446744073709551617", "shape[0] is 18446744073709551617, above"},
        {"99999999999999999999999999999999999999",
         "shape[0] is 99999999999999999999999999999999999999, above"},
        /* long literals are cut in the message */
        {"123456789012345678901234567890123456789012345",
         "shape[0] is 1234567890123456789012345678901234567890..., above"},
        {"2e+0", "shape[0] is 2e+0, not a non-negative integer"},
        {"+2", "header is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char hdr[256];
        snprintf(hdr, sizeof hdr,
                 "{\"a\":{\"dtype\":\"U8\",\"shape\":[%s],"
                 "\"data_offsets\":[0,2]}}",
                 bad[i].lit);
        TRAP(hdr, 2, MXV_ST_EFORMAT, bad[i].want,
             strstr(bad[i].want, "shape[") ? "tensor \"a\": shape[0] is "
                                          : "header");
    }
    /* The second entry of a shape is named as such. */
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2,-1],\"data_offsets\":[0,2]}}", 2,
         MXV_ST_EFORMAT, "tensor \"a\": shape[1] is -1");
    /* Products: overflow of 64 bits, and 2^53 bytes exactly. */
    TRAP("{\"a\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,4503599627370496],"
         "\"data_offsets\":[0,4]}}",
         4, MXV_ST_EFORMAT,
         "tensor \"a\": shape [4503599627370496, 4503599627370496] of dtype F32 "
         "holds more than 2^53 - 1 bytes");
    TRAP("{\"a\":{\"dtype\":\"F64\",\"shape\":[1125899906842624],"
         "\"data_offsets\":[0,8]}}",
         8, MXV_ST_EFORMAT, "tensor \"a\": shape [1125899906842624] of dtype F64");
    /* Largest accepted size: fits the rule but not this file. */
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[9007199254740991],"
         "\"data_offsets\":[0,9007199254740991]}}",
         8, MXV_ST_EFORMAT, "tensor \"a\": data_offsets [0, 9007199254740991] "
                            "run past the end of the data section (8 bytes)");
    /* A zero anywhere makes the product zero, even beside huge sizes. */
    blob b = mk("{\"z\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,0,"
                "4503599627370496],\"data_offsets\":[0,0]}}",
                NULL, 0);
    mxv_st_file *f = OPEN_OK(b);
    ck_assert_uint_eq(mxv_st_find(f, "z")->numel, 0);
    ck_assert_uint_eq(mxv_st_find(f, "z")->rank, 3);
    mxv_st_close(f);
    free(b.p);
    /* Rank 0 is one element; rank 16 is accepted. */
    b = mk("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
           "\"r\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2],"
           "\"data_offsets\":[4,6]}}",
           ZEROS, 6);
    f = OPEN_OK(b);
    ck_assert_uint_eq(mxv_st_find(f, "s")->numel, 1);
    ck_assert_uint_eq(mxv_st_find(f, "s")->nbytes, 4);
    ck_assert_int_eq(mxv_st_find(f, "r")->rank, 16);
    ck_assert_uint_eq(mxv_st_find(f, "r")->shape[15], 2);
    mxv_st_close(f);
    free(b.p);
}
END_TEST

START_TEST(test_trap_offsets)
{
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":2}}", 2,
         MXV_ST_EFORMAT,
         "tensor \"a\": data_offsets is a number, not an array [begin, end]");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2]}}", 2,
         MXV_ST_EFORMAT, "tensor \"a\": data_offsets has 1 element, expected");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1,2]}}", 2,
         MXV_ST_EFORMAT, "tensor \"a\": data_offsets has 3 elements");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-1,1]}}", 2,
         MXV_ST_EFORMAT, "tensor \"a\": data_offsets[0] is -1, not a non-negative");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2.0]}}", 2,
         MXV_ST_EFORMAT, "tensor \"a\": data_offsets[1] is 2.0, not a non-negative");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,\"2\"]}}", 2,
         MXV_ST_EFORMAT, "tensor \"a\": data_offsets[1] is a string");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
         "\"data_offsets\":[9007199254740993,9007199254740993]}}",
         2, MXV_ST_EFORMAT,
         "tensor \"a\": data_offsets[0] is 9007199254740993, above the limit");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,1]}}", 4,
         MXV_ST_EFORMAT, "tensor \"a\": data_offsets [3, 1] end before they begin");
    TRAP("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}", 4,
         MXV_ST_EFORMAT,
         "tensor \"a\": data_offsets [4, 6] run past the end of the data "
         "section (4 bytes)");
    /* The example, word for word. */
    {
        mxv_st_file *f;
        mxv_st_err e;
        blob b = mk("{\"w13_scale\":{\"dtype\":\"U8\",\"shape\":[4,192],"
                    "\"data_offsets\":[10,99]}}",
                    ZEROS, 1000);
        ck_assert_int_eq(mxv_st_open_buffer(b.p, b.n, LABEL, &f, &e),
                         MXV_ST_EFORMAT);
        ck_assert_str_eq(e.msg, "case.safetensors: tensor \"w13_scale\": "
                                "data_offsets [10, 99] do not match shape "
                                "[4, 192] of dtype U8 (768 bytes)");
        free(b.p);
    }
    TRAP("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
         MXV_ST_EFORMAT,
         "tensor \"a\": data_offsets [0, 4] do not match shape [2] of dtype "
         "F32 (8 bytes)");
    TRAP("{\"a\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,1]}}", 1,
         MXV_ST_EFORMAT, "shape [] of dtype BF16 (2 bytes)");
}
END_TEST

START_TEST(test_trap_layout)
{
    TRAP("{" U8E("a", 2, 0, 2) "," U8E("b", 2, 1, 3) "}", 3, MXV_ST_EFORMAT,
         "tensor \"b\": data_offsets [1, 3] overlap tensor \"a\" [0, 2]");
    /* The same two entries in the other order: still b, the later one. */
    TRAP("{" U8E("b", 2, 1, 3) "," U8E("a", 2, 0, 2) "}", 3, MXV_ST_EFORMAT,
         "tensor \"b\": data_offsets [1, 3] overlap tensor \"a\" [0, 2]");
    TRAP("{" U8E("a", 2, 0, 2) "," U8E("b", 2, 0, 2) "}", 2, MXV_ST_EFORMAT,
         "tensor \"b\": data_offsets [0, 2] overlap tensor \"a\" [0, 2]");
    TRAP("{" U8E("a", 4, 0, 4) "," U8E("b", 1, 1, 2) "," U8E("c", 2, 4, 6) "}",
         6, MXV_ST_EFORMAT, "tensor \"b\": data_offsets [1, 2] overlap tensor \"a\"");
    TRAP("{" U8E("a", 1, 0, 1) "," U8E("b", 1, 2, 3) "}", 3, MXV_ST_EFORMAT,
         "tensor \"b\": data_offsets [2, 3] leave bytes [1, 2) of the data "
         "section to no tensor");
    TRAP("{" U8E("a", 2, 1, 3) "}", 3, MXV_ST_EFORMAT,
         "tensor \"a\": data_offsets [1, 3] leave bytes [0, 1)");
    TRAP("{" U8E("a", 2, 0, 2) "}", 3, MXV_ST_EFORMAT,
         "the tensors cover bytes [0, 2) of the data section, but it holds "
         "3 bytes");
    TRAP("{}", 4, MXV_ST_EFORMAT, "cover bytes [0, 0) of the data section, "
                                  "but it holds 4 bytes");
    TRAP("{" U8E("a", 1, 0, 1) "," U8E("a", 1, 1, 2) "}", 2, MXV_ST_EFORMAT,
         "tensor \"a\": name appears twice in the header");
    /* Zero-size tensors: anywhere on a boundary, not inside a tensor. */
    TRAP("{" U8E("a", 4, 0, 4) "," U8E("z", 0, 2, 2) "}", 4, MXV_ST_EFORMAT,
         "tensor \"z\": data_offsets [2, 2] lie inside tensor \"a\" [0, 4]");
    TRAP("{" U8E("a", 4, 0, 4) "," U8E("z", 0, 5, 5) "}", 4, MXV_ST_EFORMAT,
         "tensor \"z\": data_offsets [5, 5] run past the end");
    blob b = mk("{" U8E("z0", 0, 0, 0) "," U8E("a", 2, 0, 2) "," U8E("z2", 0, 2, 2)
                "," U8E("b", 2, 2, 4) "," U8E("z4", 0, 4, 4) "," U8E("y4", 0, 4, 4)
                "}",
                "abcd", 4);
    mxv_st_file *f = OPEN_OK(b);
    ck_assert_uint_eq(mxv_st_count(f), 6);
    /* Data-section order, ties (equal offsets) by name. */
    static const char *const order[] = {"z0", "a", "z2", "b", "y4", "z4"};
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(mxv_st_tensor_at(f, i)->name, order[i]);
    ck_assert(!memcmp(mxv_st_find(f, "b")->data, "cd", 2));
    ck_assert_uint_eq(mxv_st_find(f, "z2")->nbytes, 0);
    mxv_st_close(f);
    free(b.p);
    /* No tensor, no data: valid. */
    b = mk("{}", NULL, 0);
    f = OPEN_OK(b);
    ck_assert_uint_eq(mxv_st_count(f), 0);
    mxv_st_close(f);
    free(b.p);
}
END_TEST

START_TEST(test_trap_metadata)
{
    TRAP("{\"__metadata__\":\"x\"}", 0, MXV_ST_EFORMAT,
         "__metadata__ is a string, not an object of strings");
    TRAP("{\"__metadata__\":[]}", 0, MXV_ST_EFORMAT, "__metadata__ is an array");
    TRAP("{\"__metadata__\":{\"k\":1}}", 0, MXV_ST_EFORMAT,
         "__metadata__ \"k\": value is a number, not a string");
    TRAP("{\"__metadata__\":{\"a\":\"1\",\"k\":null}}", 0, MXV_ST_EFORMAT,
         "__metadata__ \"k\": value is null, not a string");
    TRAP("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, MXV_ST_EFORMAT,
         "__metadata__ \"k\": value is an object");
    TRAP("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, MXV_ST_EFORMAT,
         "__metadata__ \"k\": key appears twice");
    TRAP("{\"__metadata__\":{},\"__metadata__\":{}}", 0, MXV_ST_EFORMAT,
         "__metadata__ appears twice");
    /* null stands for no metadata, as in the Python library. */
    blob b = mk("{\"__metadata__\":null}", NULL, 0);
    mxv_st_file *f = OPEN_OK(b);
    ck_assert_uint_eq(mxv_st_meta_count(f), 0);
    mxv_st_close(f);
    free(b.p);
    /* Strings that look like numbers and escapes must not confuse the
     * pairing of number literals with values. */
    b = mk("{\"__metadata__\":{\"1\":\"-2\",\"e5\":\"[3, 4]\\\\\",\"x\\\"9\":\"\\\"7\"},"
           "\"n\\\\\":{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":[0,6]},"
           "\"-1\":{\"shape\":[1],\"dtype\":\"I8\",\"data_offsets\":[6,7]}}",
           ZEROS, 7);
    f = OPEN_OK(b);
    ck_assert_str_eq(mxv_st_meta_get(f, "1"), "-2");
    ck_assert_str_eq(mxv_st_meta_get(f, "e5"), "[3, 4]\\");
    ck_assert_str_eq(mxv_st_meta_get(f, "x\"9"), "\"7");
    const mxv_st_tensor *t = mxv_st_find(f, "n\\");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->shape[0], 2);
    ck_assert_uint_eq(t->shape[1], 3);
    ck_assert_uint_eq(mxv_st_find(f, "-1")->offset, 6);
    mxv_st_close(f);
    free(b.p);
}
END_TEST

START_TEST(test_messages_stay_one_line)
{
    /* A name with a newline and quotes is escaped in the message. */
    TRAP("{\"a\\nb\\\"c\":1}", 0, MXV_ST_EFORMAT,
         "tensor \"a\\x0Ab\\\"c\": entry is a number");
    /* A very long name is cut. */
    char hdr[1200];
    strcpy(hdr, "{\"");
    memset(hdr + 2, 'n', 1000);
    strcpy(hdr + 1002, "\":1}");
    mxv_st_file *f;
    mxv_st_err e;
    blob b = mk(hdr, NULL, 0);
    ck_assert_int_eq(mxv_st_open_buffer(b.p, b.n, LABEL, &f, &e), MXV_ST_EFORMAT);
    check_one_line(__LINE__, e.msg);
    ck_assert_msg(strstr(e.msg, "nnn...\": entry is a number") &&
                      strlen(e.msg) < 200,
                  "%s", e.msg);
    /* A file name with a newline too. */
    ck_assert_int_eq(mxv_st_open_buffer(b.p, b.n, "dir/x\ny.safetensors", &f, &e),
                     MXV_ST_EFORMAT);
    check_one_line(__LINE__, e.msg);
    ck_assert_msg(strstr(e.msg, "dir/x\\x0Ay.safetensors: ") == e.msg, "%s",
                  e.msg);
    free(b.p);
}
END_TEST

/* ---- misaligned data -------------------------------------------------- */

START_TEST(test_misaligned_tensor_copied)
{
    /* An unpadded header leaves the F32 data at file byte 8 + 58 = 66;
     * the reader must hand out an aligned pointer to the same bytes. */
    const char *hdr = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    ck_assert_uint_eq((8 + strlen(hdr)) % 4, 2);
    const float want[2] = {1.5f, -3.25f};
    blob b = mk(hdr, want, sizeof want);
    mxv_st_file *f = OPEN_OK(b);
    const mxv_st_tensor *t = mxv_st_find(f, "x");
    ck_assert_uint_eq((uintptr_t)t->data % 4, 0);
    const float *v = t->data;
    ck_assert(v[0] == 1.5f && v[1] == -3.25f);
    mxv_st_close(f);
    free(b.p);
}
END_TEST

/* ---- require ---------------------------------------------------------- */

START_TEST(test_require)
{
    blob b = mk("{\"__metadata__\":{\"kind\":\"gemm\"},"
                "\"w13_scale\":{\"dtype\":\"U8\",\"shape\":[4,192],"
                "\"data_offsets\":[0,768]},"
                "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[768,776]}}",
                ZEROS, 776);
    mxv_st_file *f = OPEN_OK(b);
    mxv_st_err e;
    const mxv_st_tensor *t = NULL;
    uint64_t good[2] = {4, 192}, any[2] = {MXV_ST_ANY_DIM, 192},
             bad[2] = {MXV_ST_ANY_DIM, 96};
    ck_assert_int_eq(mxv_st_require(f, "w13_scale", MXV_ST_BIT(MXV_ST_U8), 2,
                                    good, &t, &e),
                     MXV_ST_OK);
    ck_assert_str_eq(t->name, "w13_scale");
    ck_assert_int_eq(mxv_st_require(f, "w13_scale", MXV_ST_ANY_DTYPE, 2, any,
                                    NULL, &e),
                     MXV_ST_OK);
    ck_assert_int_eq(mxv_st_require(f, "w13_scale", MXV_ST_ANY_DTYPE, -1, NULL,
                                    NULL, &e),
                     MXV_ST_OK);
    ck_assert_int_eq(mxv_st_require(f, "w13_scale", MXV_ST_BIT(MXV_ST_U8), 2,
                                    bad, &t, &e),
                     MXV_ST_EMISMATCH);
    ck_assert_str_eq(e.msg, "case.safetensors: tensor \"w13_scale\": shape "
                            "[4, 192] does not match the expected [*, 96]");
    ck_assert_int_eq(mxv_st_require(f, "w13_scale", MXV_ST_ANY_DTYPE, 3, NULL,
                                    NULL, &e),
                     MXV_ST_EMISMATCH);
    ck_assert_str_eq(e.msg, "case.safetensors: tensor \"w13_scale\": shape "
                            "[4, 192] has rank 2, expected rank 3");
    ck_assert_int_eq(mxv_st_require(f, "x",
                                    MXV_ST_BIT(MXV_ST_BF16) |
                                        MXV_ST_BIT(MXV_ST_F8_E4M3),
                                    1, NULL, NULL, &e),
                     MXV_ST_EMISMATCH);
    ck_assert_str_eq(e.msg, "case.safetensors: tensor \"x\": dtype F32, "
                            "expected BF16 or F8_E4M3");
    ck_assert_int_eq(mxv_st_require(f, "router_bias", MXV_ST_ANY_DTYPE, -1,
                                    NULL, NULL, &e),
                     MXV_ST_EMISMATCH);
    ck_assert_str_eq(e.msg,
                     "case.safetensors: tensor \"router_bias\": not in the file");
    ck_assert_int_eq(mxv_st_exit_code(MXV_ST_EMISMATCH), MXV_EXIT_BADINPUT);
    const char *v = NULL;
    ck_assert_int_eq(mxv_st_require_meta(f, "kind", &v, &e), MXV_ST_OK);
    ck_assert_str_eq(v, "gemm");
    ck_assert_int_eq(mxv_st_require_meta(f, "layout", &v, &e), MXV_ST_EMISMATCH);
    ck_assert_str_eq(e.msg,
                     "case.safetensors: __metadata__ \"layout\": not in the file");
    ck_assert_int_eq(mxv_st_errorf(&e, MXV_ST_EFORMAT, f, "w13_scale",
                                   "element [%d, %d] is 255 (E8M0 NaN)", 3, 5),
                     MXV_ST_EFORMAT);
    ck_assert_str_eq(e.msg, "case.safetensors: tensor \"w13_scale\": element "
                            "[3, 5] is 255 (E8M0 NaN)");
    mxv_st_errorf(&e, MXV_ST_EFORMAT, f, NULL, "K = %d is not a multiple of 32",
                  40);
    ck_assert_str_eq(e.msg, "case.safetensors: K = 40 is not a multiple of 32");
    mxv_st_close(f);
    free(b.p);
}
END_TEST

/* ---- fuzz ------------------------------------------------------------- */

/* The reader's promises, recomputed from the tensors it returned. */
static void check_invariants(const mxv_st_file *f, size_t datasize,
                             const unsigned char *data)
{
    uint64_t off = 0;
    for (size_t i = 0; i < mxv_st_count(f); i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(f, i);
        size_t es = spec_dtypes[t->dtype].size;
        EXPECT1((int)t->dtype >= 0 && t->dtype < MXV_ST_DTYPE_COUNT);
        EXPECT1(t->rank >= 0 && t->rank <= MXV_ST_MAX_RANK);
        uint64_t numel = 1;
        for (int k = 0; k < t->rank; k++)
            numel *= t->shape[k];
        EXPECT1(numel == t->numel && numel * es == t->nbytes);
        EXPECT1(t->offset == off);
        EXPECT1(t->offset + t->nbytes <= datasize);
        EXPECT1((uintptr_t)t->data % es == 0);
        EXPECT1(t->nbytes == 0 || !memcmp(t->data, data + t->offset, t->nbytes));
        EXPECT1(mxv_st_find(f, t->name) == t);
        off += t->nbytes;
    }
    EXPECT1(off == datasize);
}

START_TEST(test_fuzz)
{
    char p[512];
    tpath(p, sizeof p, "fuzz-base.safetensors");
    ck_assert_int_eq(write_small(p, 0), MXV_ST_OK);
    size_t n;
    unsigned char *base = slurp(p, &n);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    /* Fixed by default; MXV_FUZZ_SEED and MXV_FUZZ_ITERS widen the search
     * (e.g. under AddressSanitizer). */
    const char *es = getenv("MXV_FUZZ_SEED"), *ei = getenv("MXV_FUZZ_ITERS");
    unsigned long seed = es ? strtoul(es, NULL, 0) : 7;
    long iters = ei ? strtol(ei, NULL, 0) : 20000;
    gsl_rng_set(r, seed);
    static const char alphabet[] = "{}[]\",:0123456789-+.eE \\u_abdFU";
    int accepted = 0, refused = 0;
    unsigned char *buf = malloc(n + 64);
    for (long iter = 0; iter < iters; iter++) {
        size_t len = n;
        memcpy(buf, base, n);
        int muts = 1 + (int)gsl_rng_uniform_int(r, 3);
        for (int m = 0; m < muts; m++) {
            unsigned long kind = gsl_rng_uniform_int(r, 10);
            size_t at = gsl_rng_uniform_int(r, len ? len : 1);
            if (kind < 6 && len > 8) /* a JSON-ish byte in the header */
                buf[8 + gsl_rng_uniform_int(r, len - 8 < 140 ? len - 8 : 140)] =
                    (unsigned char)alphabet[gsl_rng_uniform_int(r, sizeof alphabet - 1)];
            else if (kind < 7)
                buf[at] = (unsigned char)gsl_rng_uniform_int(r, 256);
            else if (kind < 8)
                len = at; /* truncate */
            else if (kind < 9 && len >= 8)
                buf[gsl_rng_uniform_int(r, 8)] ^=
                    (unsigned char)(1u << gsl_rng_uniform_int(r, 8));
            else if (len < n + 60)
                buf[len++] = (unsigned char)gsl_rng_uniform_int(r, 256);
        }
        unsigned char *copy = malloc(len ? len : 1); /* exact size for ASan */
        memcpy(copy, buf, len);
        mxv_st_file *f;
        mxv_st_err e;
        mxv_st_status st = mxv_st_open_buffer(copy, len, LABEL, &f, &e);
        if (st == MXV_ST_OK) {
            uint64_t hl = 0;
            for (int i = 7; i >= 0; i--)
                hl = hl << 8 | copy[i];
            check_invariants(f, len - 8 - (size_t)hl, copy + 8 + hl);
            mxv_st_close(f);
            accepted++;
        } else {
            EXPECT(st == MXV_ST_EFORMAT, "seed %lu iter %ld: status %s", seed,
                   iter, mxv_st_status_name(st));
            check_one_line(__LINE__, e.msg);
            EXPECT(!strncmp(e.msg, LABEL ": ", strlen(LABEL) + 2),
                   "seed %lu iter %ld: %s", seed, iter, e.msg);
            refused++;
        }
        free(copy);
    }
    /* Both outcomes must occur for the loop to mean anything. */
    ck_assert_int_gt(accepted, iters / 400);
    ck_assert_int_gt(refused, iters / 2);
    free(buf);
    free(base);
    gsl_rng_free(r);
}
END_TEST

/* mxv_capture_require_finite over every signed 8- and 16-bit format: a
 * tensor of random finite codes passes, and each NaN or inf code (found by
 * decoding every code to binary64, not by the scan's own table), put at
 * the first, a middle, a block edge (4096: the scan's first pass works by
 * blocks) or the last element, is refused with that element's index. */
START_TEST(test_finite_codes_scan)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 77);
    const uint64_t n = 3 * 4096 + 17;
    size_t checked = 0;
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        if (!f->is_signed || (f->bits != 8 && f->bits != 16))
            continue;
        uint32_t ncodes = (uint32_t)1 << f->bits, nbad = 0;
        unsigned char *bad = calloc(ncodes, 1);
        for (uint32_t k = 0; k < ncodes; k++) {
            double v = mx_decode_double(f, k);
            bad[k] = isnan(v) || isinf(v);
            nbad += bad[k];
        }
        void *data = malloc(n * (f->bits / 8));
        for (uint64_t i = 0; i < n; i++) {
            uint32_t k;
            do
                k = (uint32_t)gsl_rng_uniform_int(r, ncodes);
            while (bad[k]);
            if (f->bits == 8)
                ((uint8_t *)data)[i] = (uint8_t)k;
            else
                ((uint16_t *)data)[i] = (uint16_t)k;
        }
        mxv_st_tensor t = {"codes", f->bits == 8 ? MXV_ST_U8 : MXV_ST_BF16, 1, {n}, n,
                           n * (f->bits / 8), 0, data};
        mxv_capture c;
        memset(&c, 0, sizeof c);
        mxv_st_err err;
        EXPECT(mxv_capture_require_finite(&c, &t, f, &err) == MXV_ST_OK,
               "%s: finite codes refused: %s", f->name, err.msg);
        const uint64_t where[] = {0, 1234, 4095, 4096, n - 1};
        for (uint32_t k = 0; k < ncodes; k++) {
            if (!bad[k])
                continue;
            for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
                /* every bad code of 8-bit formats at every place; one place
                 * each for the 16-bit ones' (thousands of codes) */
                if (f->bits == 16 && w != k % 5)
                    continue;
                uint64_t i = where[w];
                uint32_t keep = f->bits == 8 ? ((uint8_t *)data)[i] : ((uint16_t *)data)[i];
                if (f->bits == 8)
                    ((uint8_t *)data)[i] = (uint8_t)k;
                else
                    ((uint16_t *)data)[i] = (uint16_t)k;
                char want[64];
                snprintf(want, sizeof want, "element [%llu] is ", (unsigned long long)i);
                mxv_st_status st = mxv_capture_require_finite(&c, &t, f, &err);
                EXPECT(st == MXV_ST_EMISMATCH && strstr(err.msg, want),
                       "%s: code 0x%X at %llu: status %d, \"%s\"", f->name, k,
                       (unsigned long long)i, (int)st, err.msg);
                checked++;
                if (f->bits == 8)
                    ((uint8_t *)data)[i] = (uint8_t)keep;
                else
                    ((uint16_t *)data)[i] = (uint16_t)keep;
            }
        }
        free(data);
        free(bad);
        (void)nbad;
    }
    EXPECT(checked > 1000, "only %zu bad codes planted", checked);
    gsl_rng_free(r);
}
END_TEST

static Suite *st_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dtype_table);
    tcase_add_test(tc, test_roundtrip_every_dtype);
    tcase_add_test(tc, test_exact_bytes);
    tcase_add_test(tc, test_empty_files_written);
    tcase_add_test(tc, test_writer_refuses);
    tcase_add_test(tc, test_atomic_write);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_every_truncation);
    tcase_add_test(tc, test_trap_prefix_and_text);
    tcase_add_test(tc, test_trap_entries);
    tcase_add_test(tc, test_trap_shape);
    tcase_add_test(tc, test_trap_offsets);
    tcase_add_test(tc, test_trap_layout);
    tcase_add_test(tc, test_trap_metadata);
    tcase_add_test(tc, test_messages_stay_one_line);
    tcase_add_test(tc, test_misaligned_tensor_copied);
    tcase_add_test(tc, test_require);
    tcase_add_test(tc, test_fuzz);
    tcase_add_test(tc, test_finite_codes_scan);
    suite_add_tcase(s, tc);
    return s;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[768];
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_safetensors.XXXXXX",
             t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(st_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree(tmpdir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
