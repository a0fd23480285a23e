/* fuzz.h -- what every libFuzzer target of tests/fuzz shares.
 *
 * Each target defines fuzz_one(data, size) and includes this header once.
 * The harness adds a per-input time cap proportional to the input's size:
 * an input that takes more CPU time than FUZZ_MS_BASE + FUZZ_US_PER_BYTE *
 * size aborts with a message, so libFuzzer records it as a finding (a reader
 * whose work grows faster than its input is a denial of service: a 69-byte
 * .probe once cost 9 s).  Memory is capped by the runner (tests/fuzz/run.sh:
 * -malloc_limit_mb and -rss_limit_mb, stated there in proportion to
 * -max_len).  Readers that take a path get the input through fuzz_file():
 * a file in $TMPDIR written afresh for each input. */
#ifndef MXV_FUZZ_H
#define MXV_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FUZZ_MS_BASE
#define FUZZ_MS_BASE 250.0
#endif
#ifndef FUZZ_US_PER_BYTE
#define FUZZ_US_PER_BYTE 250.0
#endif

static int fuzz_one(const uint8_t *data, size_t size);

/* CPU time of the process, not wall time: the cap must not depend on how
 * loaded the machine is */
static double fuzz_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The path of a file holding exactly data (one per process). */
static const char *fuzz_file(const uint8_t *data, size_t size, const char *ext)
{
    static char path[512];
    if (!path[0]) {
        const char *d = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/mxv-fuzz-%ld%s", d && *d ? d : "/tmp",
                 (long)getpid(), ext);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

static void fuzz_cleanup(void)
{
    char path[512];
    const char *d = getenv("TMPDIR");
    const char *exts[] = {"", ".safetensors", ".json", ".probe", ".vec", ".jsonl"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        snprintf(path, sizeof path, "%s/mxv-fuzz-%ld%s", d && *d ? d : "/tmp",
                 (long)getpid(), exts[i]);
        unlink(path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        once = 1;
        atexit(fuzz_cleanup);
    }
    double t0 = fuzz_now_ms();
    fuzz_one(data, size);
    double ms = fuzz_now_ms() - t0, cap = FUZZ_MS_BASE + FUZZ_US_PER_BYTE * size / 1e3;
    if (ms > cap) {
        fprintf(stderr, "fuzz: slow input: %.0f ms for %zu bytes (limit %.0f ms = "
                "%.0f ms + %.0f us per byte)\n", ms, size, cap, FUZZ_MS_BASE,
                FUZZ_US_PER_BYTE);
        abort();
    }
    return 0;
}
#endif
