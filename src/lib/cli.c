/* cli.c -- messages and option parsing shared by the subcommands. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/accum.h"
#include "cli.h"

/* Prints prefix and the formatted message as ONE line: control bytes and
 * DEL (from a hostile file name, tensor name or field) become \xHH, so
 * that no input can break or forge the line. */
static void one_line(const char *prefix, const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    fflush(stdout);
    fputs(prefix, stderr);
    for (const unsigned char *p = (const unsigned char *)buf; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02X", *p);
        else
            fputc(*p, stderr);
    }
    fputc('\n', stderr);
}

int mxv_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    one_line("mxverify: error: ", fmt, ap);
    va_end(ap);
    return code;
}

void mxv_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    one_line("mxverify: warning: ", fmt, ap);
    va_end(ap);
}

/* Is a the whole of a number strtod reads ("-inf", "-nan", "-0x1p-3")? */
static int is_number(const char *a)
{
    char *end;
    (void)strtod(a, &end);
    return end != a && *end == '\0';
}

int mxv_parse_opts(int argc, char **argv, const mxv_opt *opts, char **pos,
                   int *npos, const char *cmd)
{
    int only_pos = 0;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && a[0] == '-' && isalpha((unsigned char)a[1]) && !is_number(a)) {
            const mxv_opt *so = opts;
            for (; so && so->name; so++)
                if (so->short_name && so->short_name == a[1])
                    break;
            if (!so || !so->name)
                return mxv_error(MXV_EXIT_USAGE,
                                 "unknown option '-%c' (see 'mxverify %s --help')",
                                 a[1], cmd);
            if (!so->takes_value) {
                if (a[2])
                    return mxv_error(MXV_EXIT_USAGE,
                                     "option -%c takes no value ('%s')", a[1], a);
                *so->value = "";
            } else if (a[2]) {
                *so->value = a + 2; /* "-j4" */
            } else if (i + 1 < argc) {
                *so->value = argv[++i];
            } else {
                return mxv_error(MXV_EXIT_USAGE, "option %s needs a value", a);
            }
            continue;
        }
        if (only_pos || strncmp(a, "--", 2) != 0) {
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (a[2] == '\0') {
            only_pos = 1;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const mxv_opt *o = opts;
        for (; o && o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, a + 2, len) == 0)
                break;
        if (!o || !o->name) {
            mxv_error(MXV_EXIT_USAGE,
                      "unknown option '%.*s' (see 'mxverify %s --help')",
                      (int)len + 2, a, cmd);
            return MXV_EXIT_USAGE;
        }
        if (!o->takes_value) {
            if (eq)
                return mxv_error(MXV_EXIT_USAGE, "option --%s takes no value",
                                 o->name);
            *o->value = "";
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            return mxv_error(MXV_EXIT_USAGE, "option --%s needs a value",
                             o->name);
        }
    }
    return 0;
}

int mxv_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    if (hex && (!s[2] || s[2] == '-' || s[2] == '+' || s[2] == ' '))
        return -1;
    unsigned long long v = strtoull(s, &end, hex ? 16 : 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int mxv_parse_uint_list(const char *s, int n, unsigned long long max,
                        unsigned long long *out)
{
    char buf[96];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    memcpy(buf, s, strlen(s) + 1);
    char *f = buf;
    for (int i = 0; i < n; i++) {
        char *c = strchr(f, ',');
        if ((c != NULL) != (i < n - 1)) /* a comma after each field but the last */
            return -1;
        if (c)
            *c = '\0';
        if (mxv_parse_uint(f, max, &out[i]) != 0)
            return -1;
        f = c ? c + 1 : f;
    }
    return 0;
}

int mxv_parse_seed(const char *s, uint64_t *out)
{
    unsigned long long v = 0;
    if (s && mxv_parse_uint(s, ~0ull, &v) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--seed '%s' is not an integer", s);
    *out = v;
    return 0;
}

int mxv_parse_model(const char *s)
{
    mx_accum_model m;
    if (s && mx_accum_parse(s, &m) != 0)
        return mxv_error(MXV_EXIT_USAGE, "--model '%s': one of %s", s, mx_accum_names());
    return 0;
}

void mxv_print_model_help(FILE *f, const char *dflt)
{
    fprintf(f, "  --model NAME         judge GEMMs against this accumulation model\n"
               "                       (%s); default %s\n",
            mx_accum_names(), dflt);
}

int mxv_errf(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int mxv_errc(char *err, size_t len, int code, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return code;
}
