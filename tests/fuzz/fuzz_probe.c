/* fuzz_probe.c -- the matrix-unit probe readers: `mxverify probe --replay`
 * in-process on a .probe text file (the reader, the resource caps, the plan
 * and the inference) and the binary result reader (MXTD). */
#include "commands.h"
#include "probe_io.h"
#include "fuzz.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
    if (size && data[0] == 'M') { /* a result file */
        const char *path = fuzz_file(data + 1, size - 1, "");
        mxv_mxtd m;
        char err[700];
        if (mxv_mxtd_read(path, &m, err, sizeof err) == 0) {
            volatile uint32_t s = 0;
            for (uint32_t i = 0; i < m.ncase; i++)
                s += m.d[i];
            mxv_mxtd_free(&m);
        }
        return 0;
    }
    char *path = strdup(fuzz_file(data, size, ".probe"));
    char *argv[] = {"probe", "--replay", path, NULL};
    int rc = mxv_cmd_probe(3, argv);
    fflush(stdout);
    free(path);
    if (rc != 0 && rc != 1 && rc != 3) {
        fprintf(stderr, "fuzz_probe: exit code %d\n", rc);
        abort();
    }
    return 0;
}
