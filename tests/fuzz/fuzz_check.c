/* fuzz_check.c -- the whole `mxverify check FILE` path in-process: the
 * capture loader, the exact reference, the judges and the verdict.  Exit
 * codes other than 0, 1 and 3 (bad input) are findings: a capture the
 * reader accepts must be judged or refused, never an internal error. */
#include "commands.h"
#include "fuzz.h"

void openblas_set_num_threads(int n) __attribute__((weak));

static int fuzz_one(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        once = 1;
        if (openblas_set_num_threads)
            openblas_set_num_threads(1);
    }
    char *path = strdup(fuzz_file(data, size, ".safetensors"));
    char *argv[] = {"check", "-q", path, NULL};
    int rc = mxv_cmd_check(3, argv);
    fflush(stdout);
    free(path);
    if (rc != 0 && rc != 1 && rc != 3) {
        fprintf(stderr, "fuzz_check: exit code %d\n", rc);
        abort();
    }
    return 0;
}
