/* code_table.c -- per-code facts of every 8- and 16-bit format (value =
 * m * 2^e exactly, top exponent, NaN/inf), built once per process and
 * format, and the table of powers of two (see gemm_internal.h). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
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
    t->ordered16 = t->n == 65536 && f->is_signed;
    t->bad_from = 0x8000;
    double prev = 0;
    for (uint32_t c = 0; c < 0x8000 && t->ordered16; c++) {
        uint32_t s = c | 0x8000;
        if (t->bad[c] != t->bad[s])
            t->ordered16 = 0;
        if (t->bad[c]) {
            t->bad_from = t->bad_from < c ? t->bad_from : c;
            continue;
        }
        double v = ldexp(fabs((double)t->m[c]), t->e[c]);
        if (t->bad_from != 0x8000 || t->m[c] != -t->m[s] || t->e[c] != t->e[s] ||
            (c == 0 ? v != 0 : !(v > prev)))
            t->ordered16 = 0;
        prev = v;
    }
    return MX_OK;
}

/* Each format's table, built when it is first asked for (a 16-bit one
 * decodes 65536 codes: about a millisecond, which an FP8-only run need
 * not pay); they live for the process.  state: 0 not built, 1 built, 2
 * out of memory. */
static mxg_code_table tables[MX_FORMAT_COUNT];
static _Atomic int tables_state[MX_FORMAT_COUNT];
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;

const mxg_code_table *mxg_code_table_get(const mx_format *f)
{
    if (f->bits > 16)
        return NULL;
    int st = atomic_load_explicit(&tables_state[f->id], memory_order_acquire);
    if (st == 0) {
        pthread_mutex_lock(&tables_lock);
        st = atomic_load_explicit(&tables_state[f->id], memory_order_relaxed);
        if (st == 0) {
            st = code_table_make(f, &tables[f->id]) == MX_OK ? 1 : 2;
            atomic_store_explicit(&tables_state[f->id], st, memory_order_release);
        }
        pthread_mutex_unlock(&tables_lock);
    }
    return st == 1 ? &tables[f->id] : NULL;
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
