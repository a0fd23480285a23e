/* main.c -- mxverify: dispatch to a subcommand. */
#ifdef __linux__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "mxk.h"
#include "mxref/pool.h"
#include "cli.h"
#include "commands.h"
#include "lib/provenance.h"

static const mxv_command commands[] = {
    {"formats", mxv_cmd_formats, "list formats, print code tables, encode and decode exactly"},
    {"ref", mxv_cmd_ref, "generate a MoE layer case and write it with its exact reference"},
    {"gate", mxv_cmd_gate, "run a kernel suite and judge it against golden tolerances (CI)"},
    {"check", mxv_cmd_check, "judge captured kernel outputs element by element"},
    {"kernels", mxv_cmd_kernels, "run the kernels (CPU emulation or GPU) on a suite and judge them"},
    {"mutants", mxv_cmd_mutants, "run the planted bugs: which does mxverify catch, which do peers"},
    {"drift", mxv_cmd_drift, "localize numerical drift between two runs' per-layer captures"},
    {"report", mxv_cmd_report, "join the partial reports of a sharded run (--shard K/N)"},
    {"golden", mxv_cmd_golden, "update golden tolerances, verify the golden manifest"},
    {"model", mxv_cmd_model, "compare two model runs (KLD, top-1, PPL), score tasks, model tolerances"},
    {"probe", mxv_cmd_probe, "infer a matrix unit's block-FMA parameters (recorded or on the GPU)"},
    {"bench", mxv_cmd_bench, "time the exact reference against MPFR and FP64 BLAS"},
    {"selftest", mxv_cmd_selftest, "quick consistency check of the reference library"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: mxverify COMMAND [ARGS...]\n\n"
                 "Numerical-correctness verification of low-precision MoE "
                 "kernels.\n\ncommands:\n");
    for (const mxv_command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n'mxverify COMMAND --help' shows a command's options.\n"
                 "exit codes: 0 ok, 1 check failed, 2 usage error, 3 bad "
                 "input file, 4 internal or I/O error\n");
}

/* glibc hands a freed block of 128 KiB or more back to the kernel and
 * trims the heap's free top at 128 KiB, so each call's buffers (a GEMM's
 * outputs, a layer's stages) come back as fresh pages, every one a page
 * fault and a page of zeros: 55 % of the minor faults of a one-thread
 * TP8 64-token layer check (the rest map the capture).  Blocks below 32
 * MiB are served from the heap and up to 1 GiB of free top is kept. */
static void malloc_keep(void)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

int main(int argc, char **argv)
{
    malloc_keep();
    /* every processor available by default (a command's --jobs changes
     * it); the reference's BLAS calls are many and small (one per 32-wide
     * K slice), so BLAS itself runs on one thread in each pool thread */
    mx_pool_set_threads(0);
    mxk_cpu_set_parallel(mx_parallel_for); /* the C emulation's kernels too */
    mxv_provenance_init(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return MXV_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return MXV_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("%s\n", mxv_version_string());
        return MXV_EXIT_OK;
    }
    for (const mxv_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) {
            int rc = c->run(argc - 1, argv + 1);
            if (fflush(stdout) != 0 || ferror(stdout))
                return mxv_error(MXV_EXIT_INTERNAL, "cannot write to stdout");
            return rc;
        }
    return mxv_error(MXV_EXIT_USAGE,
                     "unknown command '%s' (try 'mxverify --help')", argv[1]);
}
