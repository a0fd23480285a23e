/* code_table.c -- per-code facts of every 8- and 16-bit format (value =
 * m * 2^e exactly, top exponent, NaN/inf), built once per process, and the
 * table of powers of two (see gemm_internal.h). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include "gemm_internal.h"

static int bitlen32(uint32_t x) { return x ? 32 - __builtin_clz(x) : 0; }

static mx_status code_table_make(const mx_format *f, mxg_code_table *t)
{
    t->n = (size_t)1 << f->bits;
    t->m = malloc(t->n * sizeof *t->m);
    t->e = malloc(t->n * sizeof *t->e);
    t->top = malloc(t->n * sizeof *t->top);
    t->bad = malloc(t->n);
    if (!t->m || !t->e || !t->top || !t->bad) {
        free(t->m);
        free(t->e);
        free(t->top);
        free(t->bad);
        return MX_ENOMEM;
    }
    t->lo = INT_MAX;
    t->hi = INT_MIN;
    for (size_t c = 0; c < t->n; c++) {
        int e;
        mx_class k = mx_decode_int(f, (uint32_t)c, &t->m[c], &e);
        mxg_trim(&t->m[c], &e);
        t->e[c] = (int16_t)e;
        t->top[c] = (int16_t)(e + bitlen32((uint32_t)abs(t->m[c])));
        t->bad[c] = k == MX_CLASS_NAN || k == MX_CLASS_INF;
        if (t->m[c] && !t->bad[c]) {
            t->lo = t->e[c] < t->lo ? t->e[c] : t->lo;
            t->hi = t->top[c] > t->hi ? t->top[c] : t->hi;
        }
    }
    return MX_OK;
}

/* The tables of every 8- and 16-bit format, built once; they live for the
 * process. */
static mxg_code_table tables[MX_FORMAT_COUNT];
static mx_status tables_status = MX_OK;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
    for (int i = 0; i < MX_FORMAT_COUNT; i++) {
        const mx_format *f = mx_format_get((mx_format_id)i);
        if (f->bits <= 16 && code_table_make(f, &tables[i]) != MX_OK)
            tables_status = MX_ENOMEM;
    }
}

const mxg_code_table *mxg_code_table_get(const mx_format *f)
{
    pthread_once(&tables_once, tables_init);
    if (tables_status != MX_OK || f->bits > 16)
        return NULL;
    return &tables[f->id];
}

int mxg_fixed_unit(const mxg_code_table *ct, int *unit, int *topmax)
{
    /* from the table's build: this runs on every call's operands, and a
     * scan of a 16-bit format's 65536 codes here had cost more than a small
     * GEMM */
    *unit = ct->lo;
    *topmax = ct->hi;
    return ct->n == 256 && ct->hi - ct->lo <= 24;
}

double mxg_pow2_tab[2201];

__attribute__((constructor)) static void pow2_init(void)
{
    for (int e = -1100; e <= 1100; e++)
        mxg_pow2_tab[e + 1100] = ldexp(1.0, e);
}
