/* fuzz_golden.c -- the golden tolerance loader (docs/golden.md): strict
 * JSON, every refusal one printable line. */
#include "golden.h"
#include "fuzz.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".json");
    mxv_golden g;
    char err[1024];
    if (mxv_golden_load(path, &g, err, sizeof err) != 0) {
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort(); /* a raw control byte in the message */
        return 0;
    }
    for (size_t i = 0; i < g.n; i++)
        if (mxv_golden_find(&g, g.e[i].case_name, g.e[i].kernel) != &g.e[i])
            abort();
    mxv_golden_free(&g);
    return 0;
}
