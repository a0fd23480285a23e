/* cmd_formats.c -- `mxverify formats`: list the formats, print every code of
 * one, encode values exactly, decode codes.
 *
 * The format named "e8m0-production" is the production decode of the E8M0
 * scale byte (mx_e8m0_decode_production); it can be listed, tabled and
 * decoded, not encoded.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include "mxref/format.h"
#include "cli.h"
#include "exactnum.h"

#define E8M0_PRODUCTION "e8m0-production"

static const char *usage_formats =
    "usage: mxverify formats list [--json]\n"
    "       mxverify formats table FMT [--json]\n"
    "       mxverify formats encode FMT [VALUE...] [--stdin] [--round rne|rna|rtz|up|down|stochastic]\n"
    "                [--overflow default|saturate|nan|inf] [--sr-bits N --sr-width W] [--json]\n"
    "       mxverify formats decode FMT CODE... [--json]\n"
    "FMT: e4m3fn e4m3fnuz e5m2 e5m2fnuz e8m0 e8m0-production bf16 fp16 fp32\n"
    "  --json          print JSON on stdout instead of text\n"
    "  --stdin         encode: read the values from stdin, one per line\n"
    "  --round MODE    encode: rounding (default rne)\n"
    "  --overflow MODE encode: what an overflow becomes (default: the format's)\n"
    "  --sr-bits N     stochastic rounding: random bits per value\n"
    "  --sr-width W    stochastic rounding: bits kept below the last digit\n"
    "  -h, --help      this text";

/* A format as the CLI sees it: a table row, plus the production-decode view
 * of E8M0. */
typedef struct {
    const mx_format *f;
    int e8m0_production;
} fmt_view;

static int find_format(const char *name, fmt_view *v)
{
    v->e8m0_production = strcasecmp(name, E8M0_PRODUCTION) == 0;
    v->f = v->e8m0_production ? mx_format_get(MX_E8M0) : mx_format_by_name(name);
    if (!v->f)
        return mxv_error(MXV_EXIT_USAGE,
                         "unknown format '%s' (known: e4m3fn e4m3fnuz e5m2 "
                         "e5m2fnuz e8m0 e8m0-production bf16 fp16 fp32)",
                         name);
    return 0;
}

static const char *view_name(const fmt_view *v)
{
    return v->e8m0_production ? E8M0_PRODUCTION : v->f->name;
}

static double view_decode(const fmt_view *v, uint32_t code, mx_class *cls)
{
    if (v->e8m0_production) {
        double x = mx_e8m0_decode_production((uint8_t)code);
        *cls = x == 0 ? MX_CLASS_ZERO : isinf(x) ? MX_CLASS_INF : MX_CLASS_NORMAL;
        return x;
    }
    *cls = mx_classify(v->f, code);
    return mx_decode_double(v->f, code);
}

/* Hex digits of a code: 2, 4 or 8 (a literal bound keeps printf widths
 * provably small). */
static int code_digits(const mx_format *f)
{
    return f->bits == 8 ? 2 : f->bits == 16 ? 4 : 8;
}

/* Exact decimal of a binary64 value, or inf/nan. */
static char *decimal_double(double x)
{
    if (!isfinite(x))
        return mxv_hexfloat_double(x);
    mpq_t q;
    mpq_init(q);
    mpq_set_d(q, x);
    char *s = mxv_decimal_mpq(q);
    if (x == 0 && signbit(x)) {
        free(s);
        s = strdup("-0");
    }
    mpq_clear(q);
    return s;
}

static void print_json(cJSON *root)
{
    char *s = cJSON_PrintUnformatted(root);
    puts(s);
    cJSON_free(s);
    cJSON_Delete(root);
}

/* ---- list --------------------------------------------------------------- */

static char *code_list(const fmt_view *v, int negzero)
{
    const mx_format *f = v->f;
    char buf[256];
    int w = code_digits(f);
    uint32_t sbit = f->is_signed ? 1u << (f->bits - 1) : 0;
    if (negzero)
        snprintf(buf, sizeof buf, f->has_negzero ? "0x%0*X" : "none", w, sbit);
    else if (v->e8m0_production)
        snprintf(buf, sizeof buf, "none");
    else if (f->special == MX_SPECIAL_IEEE) {
        uint32_t lo = f->inf_code + 1, hi = sbit - 1;
        snprintf(buf, sizeof buf, "0x%0*X-0x%0*X, 0x%0*X-0x%0*X", w, lo, w, hi,
                 w, lo | sbit, w, hi | sbit);
    } else if (f->special == MX_SPECIAL_FN)
        snprintf(buf, sizeof buf, "0x%0*X, 0x%0*X", w, f->nan_code, w,
                 f->nan_code | sbit);
    else
        snprintf(buf, sizeof buf, "0x%0*X", w, f->nan_code);
    return strdup(buf);
}

static char *inf_list(const fmt_view *v)
{
    char buf[256];
    int w = code_digits(v->f);
    if (v->e8m0_production)
        snprintf(buf, sizeof buf, "0xFF (+inf)");
    else if (v->f->has_inf)
        snprintf(buf, sizeof buf, "0x%0*X, 0x%0*X", w, v->f->inf_code, w,
                 v->f->inf_code | (1u << (v->f->bits - 1)));
    else
        snprintf(buf, sizeof buf, "none");
    return strdup(buf);
}

static int formats_list(int json)
{
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json)
        printf("%-16s %4s %2s %2s %4s  %-22s %-22s %-22s %-24s %-14s %s\n",
               "format", "bits", "e", "m", "bias", "max finite", "min normal",
               "min subnormal", "NaN codes", "inf codes", "-0");
    for (int i = 0; i <= MX_FORMAT_COUNT; i++) {
        fmt_view v = {mx_format_get(i == MX_FORMAT_COUNT ? MX_E8M0 : (mx_format_id)i),
                      i == MX_FORMAT_COUNT};
        const mx_format *f = v.f;
        mx_class c;
        double maxf = view_decode(&v, f->max_finite_code, &c);
        /* smallest normal: exponent field 1 (E8M0: code 0; production: 1) */
        uint32_t minn_code = f->special == MX_SPECIAL_E8M0
                                 ? (v.e8m0_production ? 1u : 0u)
                                 : 1u << f->mbits;
        double minn = view_decode(&v, minn_code, &c);
        double mins = f->has_subnormals ? mx_decode_double(f, 1) : NAN;
        char *hmax = mxv_hexfloat_double(maxf), *hminn = mxv_hexfloat_double(minn);
        char *hmins = f->has_subnormals ? mxv_hexfloat_double(mins) : strdup("none");
        char *nan = code_list(&v, 0), *inf = inf_list(&v), *nz = code_list(&v, 1);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "format", view_name(&v));
            cJSON_AddNumberToObject(o, "bits", f->bits);
            cJSON_AddNumberToObject(o, "exponent_bits", f->ebits);
            cJSON_AddNumberToObject(o, "mantissa_bits", f->mbits);
            cJSON_AddNumberToObject(o, "bias", f->bias);
            cJSON_AddStringToObject(o, "max_finite", hmax);
            cJSON_AddStringToObject(o, "min_normal", hminn);
            cJSON_AddStringToObject(o, "min_subnormal", hmins);
            cJSON_AddStringToObject(o, "nan_codes", nan);
            cJSON_AddStringToObject(o, "inf_codes", inf);
            cJSON_AddStringToObject(o, "negative_zero", nz);
            cJSON_AddItemToArray(arr, o);
        } else {
            char dmax[64], dminn[64], dmins[64];
            snprintf(dmax, sizeof dmax, "%.9g (%s)", maxf, hmax);
            snprintf(dminn, sizeof dminn, "%.6g (%s)", minn, hminn);
            if (f->has_subnormals)
                snprintf(dmins, sizeof dmins, "%.6g (%s)", mins, hmins);
            else
                snprintf(dmins, sizeof dmins, "none");
            printf("%-16s %4d %2d %2d %4d  %-22s %-22s %-22s %-24s %-14s %s\n",
                   view_name(&v), f->bits, f->ebits, f->mbits, f->bias, dmax,
                   dminn, dmins, nan, inf, nz);
        }
        free(hmax);
        free(hminn);
        free(hmins);
        free(nan);
        free(inf);
        free(nz);
    }
    if (json)
        print_json(arr);
    return MXV_EXIT_OK;
}

/* ---- table -------------------------------------------------------------- */

static int formats_table(const fmt_view *v, int json)
{
    if (v->f->bits > 16)
        return mxv_error(MXV_EXIT_USAGE,
                         "formats table: %s has 2^%d codes; tables are for "
                         "formats of at most 16 bits",
                         view_name(v), v->f->bits);
    uint64_t n = mx_format_ncodes(v->f);
    int w = code_digits(v->f);
    if (json)
        fputc('[', stdout);
    for (uint64_t code = 0; code < n; code++) {
        mx_class c;
        double x = view_decode(v, (uint32_t)code, &c);
        char *h = mxv_hexfloat_double(x);
        if (json)
            printf("%s{\"code\":%llu,\"class\":\"%s\",\"value\":\"%s\"}",
                   code ? "," : "", (unsigned long long)code, mx_class_name(c), h);
        else
            printf("0x%0*llX  %-9s  %-22s %.9g\n", w, (unsigned long long)code,
                   mx_class_name(c), h, x);
        free(h);
    }
    if (json)
        fputs("]\n", stdout);
    return MXV_EXIT_OK;
}

/* ---- decode ------------------------------------------------------------- */

static int formats_decode(const fmt_view *v, char **codes, int n, int json)
{
    unsigned long long max = mx_format_ncodes(v->f) - 1;
    uint32_t *vals = calloc((size_t)n, sizeof *vals);
    for (int i = 0; i < n; i++) {
        unsigned long long c;
        if (mxv_parse_uint(codes[i], max, &c) != 0) {
            free(vals);
            return mxv_error(MXV_EXIT_USAGE,
                             "formats decode: code '%s' is not an integer in "
                             "0..0x%llX for %s",
                             codes[i], max, view_name(v));
        }
        vals[i] = (uint32_t)c;
    }
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    int w = code_digits(v->f);
    for (int i = 0; i < n; i++) {
        mx_class c;
        double x = view_decode(v, vals[i], &c);
        char *h = mxv_hexfloat_double(x), *d = decimal_double(x);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "code", vals[i]);
            cJSON_AddStringToObject(o, "class", mx_class_name(c));
            cJSON_AddStringToObject(o, "value", h);
            cJSON_AddStringToObject(o, "decimal", d);
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("0x%0*X  %-9s  %s  %s\n", w, vals[i], mx_class_name(c), h, d);
        }
        free(h);
        free(d);
    }
    free(vals);
    if (json)
        print_json(arr);
    return MXV_EXIT_OK;
}

/* ---- encode ------------------------------------------------------------- */

/* error = value - input, exact; written in the input's notation. */
static char *encode_error(const mxv_num *in, double value)
{
    if (in->kind != MXV_NUM_FINITE || !isfinite(value)) {
        if (in->kind == MXV_NUM_INF && isinf(value) &&
            (value < 0) == (in->negative != 0))
            return strdup(in->is_hex ? "0x0p+0" : "0");
        return strdup("nan");
    }
    mpq_t e;
    mpq_init(e);
    mpq_set_d(e, value);
    mpq_sub(e, e, in->q);
    char *s = in->is_hex ? mxv_hexfloat_mpq(e) : mxv_decimal_mpq(e);
    mpq_clear(e);
    return s;
}

static int encode_one(const mx_format *f, const mxv_num *in,
                      const mx_encode_opts *o, uint32_t *code)
{
    if (in->kind == MXV_NUM_NAN)
        return mx_encode_double(f, in->negative ? -NAN : NAN, o, code);
    if (in->kind == MXV_NUM_INF)
        return mx_encode_double(f, in->negative ? -INFINITY : INFINITY, o, code);
    return mx_encode_mpq(f, in->q, in->negative, o, code);
}

static int formats_encode(const fmt_view *v, char **args, int n, int json,
                          const char *round, const char *ovf,
                          const char *sr_bits, const char *sr_width)
{
    const mx_format *f = v->f;
    mx_encode_opts o = mx_encode_defaults();
    if (v->e8m0_production)
        return mxv_error(MXV_EXIT_USAGE,
                         "formats encode: %s is a decode-only view; encode "
                         "with e8m0",
                         E8M0_PRODUCTION);
    if (round && mx_round_by_name(round, &o.round) != 0)
        return mxv_error(MXV_EXIT_USAGE,
                         "formats encode: unknown --round '%s' (rne, rna, rtz, "
                         "up, down, stochastic)",
                         round);
    if (ovf && mx_overflow_by_name(ovf, &o.overflow) != 0)
        return mxv_error(MXV_EXIT_USAGE,
                         "formats encode: unknown --overflow '%s' (default, "
                         "saturate, nan, inf)",
                         ovf);
    if (o.overflow == MX_OVF_INF && !f->has_inf)
        return mxv_error(MXV_EXIT_USAGE,
                         "formats encode: --overflow inf: %s has no infinity",
                         f->name);
    if (o.round == MX_RSTOCH) {
        unsigned long long w, b;
        if (!sr_bits || !sr_width)
            return mxv_error(MXV_EXIT_USAGE, "formats encode: --round "
                                             "stochastic needs --sr-bits and "
                                             "--sr-width");
        if (mxv_parse_uint(sr_width, 32, &w) != 0 || w < 1)
            return mxv_error(MXV_EXIT_USAGE,
                             "formats encode: --sr-width '%s' is not in 1..32",
                             sr_width);
        if (mxv_parse_uint(sr_bits, (1ULL << w) - 1, &b) != 0)
            return mxv_error(MXV_EXIT_USAGE,
                             "formats encode: --sr-bits '%s' does not fit in %llu "
                             "bits",
                             sr_bits, w);
        o.rbits = (uint32_t)b;
        o.rbits_n = (int)w;
    } else if (sr_bits || sr_width) {
        return mxv_error(MXV_EXIT_USAGE, "formats encode: --sr-bits/--sr-width "
                                         "need --round stochastic");
    }

    mxv_num *nums = calloc((size_t)n, sizeof *nums);
    uint32_t *codes = calloc((size_t)n, sizeof *codes);
    int rc = MXV_EXIT_OK;
    for (int i = 0; i < n; i++)
        mxv_num_init(&nums[i]);
    for (int i = 0; i < n && rc == MXV_EXIT_OK; i++) {
        if (mxv_num_parse(&nums[i], args[i]) != 0)
            rc = mxv_error(MXV_EXIT_USAGE,
                           "formats encode: cannot read '%s' as a number "
                           "(decimal, hex float, inf or nan)",
                           args[i]);
        else if (encode_one(f, &nums[i], &o, &codes[i]) != MX_OK)
            rc = mxv_error(MXV_EXIT_INTERNAL, "formats encode: encoder refused "
                                              "'%s'", args[i]);
    }
    if (rc == MXV_EXIT_OK) {
        cJSON *arr = json ? cJSON_CreateArray() : NULL;
        int w = code_digits(f);
        for (int i = 0; i < n; i++) {
            double x = mx_decode_double(f, codes[i]);
            char *h = mxv_hexfloat_double(x), *err = encode_error(&nums[i], x);
            mx_class c = mx_classify(f, codes[i]);
            if (json) {
                cJSON *ob = cJSON_CreateObject();
                cJSON_AddStringToObject(ob, "input", args[i]);
                cJSON_AddNumberToObject(ob, "code", codes[i]);
                cJSON_AddStringToObject(ob, "value", h);
                cJSON_AddStringToObject(ob, "error", err);
                cJSON_AddStringToObject(ob, "class", mx_class_name(c));
                cJSON_AddItemToArray(arr, ob);
            } else {
                char *d = decimal_double(x);
                printf("%s -> 0x%0*X  %-9s  %s (%s)  error %s\n", args[i], w,
                       codes[i], mx_class_name(c), h, d, err);
                free(d);
            }
            free(h);
            free(err);
        }
        if (json)
            print_json(arr);
    }
    for (int i = 0; i < n; i++)
        mxv_num_clear(&nums[i]);
    free(nums);
    free(codes);
    return rc;
}

/* Appends the whitespace-separated words of stdin to *pos. */
static int read_stdin_args(char ***pos, int *npos)
{
    size_t cap = (size_t)*npos + 1024;
    char **p = realloc(*pos, cap * sizeof *p);
    char word[4096];
    if (!p)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    *pos = p;
    while (scanf("%4095s", word) == 1) {
        if (strlen(word) == sizeof word - 1)
            return mxv_error(MXV_EXIT_USAGE, "--stdin: a value is longer than "
                                             "4094 characters");
        if ((size_t)*npos + 1 >= cap) {
            cap *= 2;
            if (!(p = realloc(*pos, cap * sizeof *p)))
                return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
            *pos = p;
        }
        (*pos)[(*npos)++] = strdup(word);
    }
    if (ferror(stdin))
        return mxv_error(MXV_EXIT_INTERNAL, "--stdin: read error");
    return 0;
}

int mxv_cmd_formats(int argc, char **argv)
{
    const char *json = NULL, *round = NULL, *ovf = NULL, *srb = NULL, *srw = NULL,
               *help = NULL, *use_stdin = NULL;
    const mxv_opt opts[] = {{"json", 0, &json, 0},      {"round", 1, &round, 0},
                            {"stdin", 0, &use_stdin, 0},
                            {"overflow", 1, &ovf, 0},   {"sr-bits", 1, &srb, 0},
                            {"sr-width", 1, &srw, 0},   {"help", 0, &help, 'h'},
                            {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "formats");
    int nargv = npos; /* pos[nargv..] are read from stdin and owned here */
    if (rc)
        goto out;
    if (help) {
        puts(usage_formats);
        goto out;
    }
    if (npos < 1) {
        rc = mxv_error(MXV_EXIT_USAGE, "formats: missing action (see 'mxverify "
                                       "formats --help')");
        goto out;
    }
    const char *act = pos[0];
    int is_list = strcmp(act, "list") == 0;
    if (!is_list && strcmp(act, "table") && strcmp(act, "encode") &&
        strcmp(act, "decode")) {
        rc = mxv_error(MXV_EXIT_USAGE,
                       "formats: unknown action '%s' (list, table, encode, "
                       "decode)",
                       act);
        goto out;
    }
    if (!is_list && (round || ovf || srb || srw) && strcmp(act, "encode")) {
        rc = mxv_error(MXV_EXIT_USAGE, "formats %s: --round/--overflow/--sr-* "
                                       "apply to encode only", act);
        goto out;
    }
    if (is_list) {
        rc = npos == 1 ? formats_list(json != NULL)
                       : mxv_error(MXV_EXIT_USAGE,
                                   "formats list takes no arguments");
        goto out;
    }
    if (npos < 2) {
        rc = mxv_error(MXV_EXIT_USAGE, "formats %s: missing format name", act);
        goto out;
    }
    fmt_view v;
    if ((rc = find_format(pos[1], &v)) != 0)
        goto out;
    if (strcmp(act, "table") == 0)
        rc = npos == 2 ? formats_table(&v, json != NULL)
                       : mxv_error(MXV_EXIT_USAGE,
                                   "formats table takes one format");
    else if (use_stdin && (rc = read_stdin_args(&pos, &npos)) != 0)
        ;
    else if (npos < 3)
        rc = mxv_error(MXV_EXIT_USAGE, "formats %s: nothing to %s", act, act);
    else if (strcmp(act, "decode") == 0)
        rc = formats_decode(&v, pos + 2, npos - 2, json != NULL);
    else
        rc = formats_encode(&v, pos + 2, npos - 2, json != NULL, round, ovf,
                            srb, srw);
out:
    for (int i = nargv; use_stdin && i < npos; i++)
        free(pos[i]);
    free(pos);
    return rc;
}
