/* fuzz_vec.c -- the reader of the hardware vector files of golden/h100
 * (.vec, tests/golden.c). */
#include "../golden.h"
#include "fuzz.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".vec");
    gvec g;
    char err[700];
    if (gvec_load(path, &g, err, sizeof err) != 0)
        return 0;
    uint8_t a8[GVEC_MAXN], b8[GVEC_MAXN];
    const void *a, *b;
    for (size_t i = 0; i < g.ncase; i++)
        gvec_operands(&g, i, a8, b8, &a, &b);
    gvec_free(&g);
    return 0;
}
