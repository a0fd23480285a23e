/* cli.h -- what every mxverify subcommand shares: exit codes, messages and a
 * small long-option parser. */
#ifndef MXV_CLI_H
#define MXV_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, the same for every subcommand. */
enum {
    MXV_EXIT_OK = 0,       /* success; a check or gate passed             */
    MXV_EXIT_FAIL = 1,     /* a check or gate ran and found a failure     */
    MXV_EXIT_USAGE = 2,    /* bad command line: unknown option, format,
                              unparsable value, code out of range         */
    MXV_EXIT_BADINPUT = 3, /* bad input file: malformed or inconsistent   */
    MXV_EXIT_INTERNAL = 4  /* I/O failure, out of memory, internal error  */
};

/* "mxverify: error: ..." on stderr, one line.  Returns code, so that callers
 * can write `return mxv_error(MXV_EXIT_USAGE, "...")`. */
int mxv_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mxv_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats a one-line message into err (capacity len; err may be NULL) and
 * returns -1, for functions that report errors through a buffer. */
int mxv_errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, returning code (an MXV_EXIT_* value) instead of -1. */
int mxv_errc(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A subcommand: argv[0] is its own name. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} mxv_command;

/* Long options "--name" or "--name VALUE" / "--name=VALUE", and "-x",
 * "-x VALUE" or "-xVALUE" for options that declare a short name; "-" and a
 * letter that names no short option is an unknown option (exit 2).  Other
 * arguments are positional (so "-", "-0", "-1.5", "-inf" and "-nan" -- any
 * whole number strtod reads -- are values); "--" ends the options. */
typedef struct {
    const char *name;
    int takes_value;
    const char **value; /* set to the value, or to "" for a flag          */
    char short_name;    /* optional: "-x" is an alias (0 for none)        */
} mxv_opt;

/* Parses argv[1..argc-1]; positional arguments are collected into pos
 * (capacity argc) and counted in *npos.  On an unknown option or a missing
 * value prints an error naming it (and the subcommand cmd) and returns
 * MXV_EXIT_USAGE; else 0. */
int mxv_parse_opts(int argc, char **argv, const mxv_opt *opts, char **pos,
                   int *npos, const char *cmd);

/* Parses a non-negative integer (decimal or 0x hex) no greater than max. */
int mxv_parse_uint(const char *s, unsigned long long max, unsigned long long *out);
/* Parses exactly n such integers separated by commas ("M,N,K") into
 * out[0..n-1]; -1 for anything else (an empty field, a field too many or
 * too few, a string of 96 characters or more). */
int mxv_parse_uint_list(const char *s, int n, unsigned long long max,
                        unsigned long long *out);

/* --model NAME: an accumulation model name (mx_accum_parse: fp32-group,
 * fp32-seq, block:PRESET, ...), the same values for every command.  NULL
 * is accepted (no override).  0, or prints the error and returns
 * MXV_EXIT_USAGE. */
int mxv_parse_model(const char *s);
/* The help line of --model, for every command that judges. */
void mxv_print_model_help(FILE *f, const char *dflt);

/* --seed N: a 64-bit seed offset (NULL leaves *out at 0); 0, or prints the
 * error and returns MXV_EXIT_USAGE. */
int mxv_parse_seed(const char *s, uint64_t *out);

#endif
