/* check_pool.c -- the worker pool (mxref/pool.h): every index runs exactly
 * once, nested loops complete, no more threads are busy at once than the
 * pool holds, and a loop with per-index outputs gives the plain loop's
 * result for every thread count.  Row blocks (mx_parallel_rows) cover
 * every row once, in blocks of the size asked for, and report the first
 * failing block in block order whichever block fails first in time.  A
 * task waiting in mx_pool_help_until runs the nested loops of its loop's
 * other tasks meanwhile.  BLAS called in the pool's threads adds no thread
 * of its own (OpenBLAS's servers are stopped and stay stopped). */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <gsl/gsl_cblas.h>
#include "mxref/pool.h"
#include "testutil.h"

static atomic_int busy, busy_max;

static void enter(void)
{
    int b = atomic_fetch_add(&busy, 1) + 1, m = atomic_load(&busy_max);
    while (b > m && !atomic_compare_exchange_weak(&busy_max, &m, b))
        ;
    /* hold the thread a little so that concurrency shows */
    struct timespec t = {0, 20000};
    nanosleep(&t, NULL);
}

static void leave(void) { atomic_fetch_sub(&busy, 1); }

typedef struct {
    atomic_int *hits;
    size_t inner;
} ctx;

static void count_task(void *v, size_t i)
{
    ctx *c = v;
    enter();
    atomic_fetch_add(&c->hits[i], 1);
    leave();
}

static void inner_task(void *v, size_t i)
{
    atomic_int *hits = v;
    enter();
    atomic_fetch_add(&hits[i], 1);
    leave();
}

/* an outer task runs a nested loop of c->inner indices into its own row */
static void outer_task(void *v, size_t i)
{
    ctx *c = v;
    mx_parallel_for(c->inner, inner_task, c->hits + i * c->inner);
}

START_TEST(each_index_once)
{
    static const size_t ns[] = {0, 1, 2, 5, 64, 1000};
    static const int threads[] = {1, 2, 3, 8};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        mx_pool_set_threads(threads[t]);
        ck_assert_int_eq(mx_pool_threads(), threads[t]);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            atomic_int *hits = calloc(ns[k] + 1, sizeof *hits);
            ctx c = {hits, 0};
            atomic_store(&busy_max, 0);
            mx_parallel_for(ns[k], count_task, &c);
            for (size_t i = 0; i < ns[k]; i++)
                EXPECT(atomic_load(&hits[i]) == 1, "threads %d n %zu: index %zu ran %d times",
                       threads[t], ns[k], i, atomic_load(&hits[i]));
            EXPECT(atomic_load(&busy_max) <= threads[t], "threads %d: %d busy at once",
                   threads[t], atomic_load(&busy_max));
            free(hits);
        }
    }
}
END_TEST

START_TEST(nested_loops)
{
    static const int threads[] = {1, 2, 5};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        mx_pool_set_threads(threads[t]);
        size_t outer = 7, inner = 13;
        atomic_int *hits = calloc(outer * inner, sizeof *hits);
        ctx c = {hits, inner};
        atomic_store(&busy_max, 0);
        mx_parallel_for(outer, outer_task, &c);
        for (size_t i = 0; i < outer * inner; i++)
            EXPECT(atomic_load(&hits[i]) == 1, "threads %d: nested index %zu ran %d times",
                   threads[t], i, atomic_load(&hits[i]));
        EXPECT(atomic_load(&busy_max) <= threads[t], "threads %d: %d busy at once (nested)",
               threads[t], atomic_load(&busy_max));
        free(hits);
    }
}
END_TEST

START_TEST(cpus_available)
{
    int n = mx_cpus_available();
    ck_assert_int_ge(n, 1);
    mx_pool_set_threads(0);
    ck_assert_int_eq(mx_pool_threads(), n);
    mx_pool_set_threads(5000);
    ck_assert_int_eq(mx_pool_threads(), 1024);
    mx_pool_set_threads(1);
}
END_TEST

/* Rows r with fail[r] set fail their block with that status; every row
 * records the block that covered it. */
typedef struct {
    atomic_int *hits;
    size_t *start, *len;
    const mx_status *fail;
} rows_ctx;

static mx_status rows_fn(void *v, size_t r0, size_t n)
{
    rows_ctx *c = v;
    enter();
    mx_status st = MX_OK;
    for (size_t r = r0; r < r0 + n; r++) {
        atomic_fetch_add(&c->hits[r], 1);
        c->start[r] = r0;
        c->len[r] = n;
        if (st == MX_OK)
            st = c->fail[r];
    }
    leave();
    return st;
}

START_TEST(row_blocks)
{
    static const size_t ns[] = {0, 1, 5, 64, 1000};
    static const size_t per[] = {1, 3, 64, 2000};
    static const int threads[] = {1, 2, 3, 8};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        mx_pool_set_threads(threads[t]);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (size_t q = 0; q < sizeof per / sizeof per[0]; q++)
                for (int plant = 0; plant < 3; plant++) {
                    size_t N = ns[k], B = per[q];
                    atomic_int *hits = calloc(N + 1, sizeof *hits);
                    size_t *start = calloc(N + 1, sizeof *start), *len = calloc(N + 1, sizeof *len);
                    mx_status *fail = calloc(N + 1, sizeof *fail);
                    /* plant 1: one failing row near the end; 2: also an
                     * earlier row with another status, which must win */
                    if (plant >= 1 && N)
                        fail[N - 1] = MX_EFORMAT;
                    if (plant == 2 && N > 2)
                        fail[N / 3] = MX_ERANGE;
                    mx_status want = MX_OK; /* the plain loop's answer */
                    for (size_t r0 = 0; r0 < N && want == MX_OK; r0 += B)
                        for (size_t r = r0; r < r0 + B && r < N && want == MX_OK; r++)
                            want = fail[r];
                    rows_ctx c = {hits, start, len, fail};
                    mx_status got = mx_parallel_rows(N, B, rows_fn, &c);
                    EXPECT(got == want, "threads %d rows %zu per %zu plant %d: status %d, want %d",
                           threads[t], N, B, plant, (int)got, (int)want);
                    for (size_t r = 0; r < N; r++) {
                        size_t r0 = r / B * B, n = N - r0 < B ? N - r0 : B;
                        EXPECT(atomic_load(&hits[r]) == 1 && start[r] == r0 && len[r] == n,
                               "threads %d rows %zu per %zu: row %zu ran %d times, in block "
                               "%zu+%zu (want %zu+%zu)", threads[t], N, B, r,
                               atomic_load(&hits[r]), start[r], len[r], r0, n);
                    }
                    free(hits);
                    free(start);
                    free(len);
                    free(fail);
                }
    }
    rows_ctx none = {NULL, NULL, NULL, NULL};
    ck_assert_int_eq(mx_parallel_rows(10, 0, rows_fn, &none), MX_EINVAL);
    ck_assert_int_eq(mx_parallel_rows(0, 4, rows_fn, &none), MX_OK);
    mx_pool_set_threads(1);
}
END_TEST

/* Task 0 waits for task 1, which runs a nested loop of slow indices: the
 * waiting thread must run some of them. */
typedef struct {
    atomic_int flag;
    atomic_int hits[40];
    pthread_t who[40];
} help_ctx;

static int help_ready(void *v) { return atomic_load(&((help_ctx *)v)->flag); }

static void help_inner(void *v, size_t i)
{
    help_ctx *c = v;
    enter();
    struct timespec t = {0, 5000000};
    nanosleep(&t, NULL);
    c->who[i] = pthread_self();
    atomic_fetch_add(&c->hits[i], 1);
    leave();
}

static void help_outer(void *v, size_t i)
{
    help_ctx *c = v;
    if (i == 0) {
        mx_pool_help_until(help_ready, c);
        return;
    }
    mx_parallel_for(40, help_inner, c);
    atomic_store(&c->flag, 1);
    mx_pool_notify();
}

START_TEST(help_while_waiting)
{
    mx_pool_set_threads(2);
    help_ctx *c = calloc(1, sizeof *c);
    atomic_store(&busy_max, 0);
    mx_parallel_for(2, help_outer, c);
    size_t other = 0;
    for (size_t i = 0; i < 40; i++) {
        EXPECT(atomic_load(&c->hits[i]) == 1, "nested index %zu ran %d times", i,
               atomic_load(&c->hits[i]));
        other += !pthread_equal(c->who[i], c->who[0]);
    }
    /* two threads: the waiting one and the one running task 1 */
    EXPECT(other > 0, "the waiting task ran none of the 40 nested indices");
    EXPECT(atomic_load(&busy_max) <= 2, "%d busy at once", atomic_load(&busy_max));
    /* ready at once: returns without running anything, on one thread too */
    mx_pool_set_threads(1);
    mx_pool_help_until(help_ready, c);
    free(c);
}
END_TEST

/* The threads of this process (Linux's /proc/self/task), or -1. */
static int process_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static atomic_int arrived;

/* a BLAS call, then a wait (5 s at most) until 3 tasks have arrived: with
 * 3 tasks on 3 threads, every thread of the pool has started and run one */
static void ddot_task(void *v, size_t i)
{
    double *r = v, x[64], y[64];
    for (size_t k = 0; k < 64; k++) {
        x[k] = (double)(k + 1 + i);
        y[k] = 1.0;
    }
    r[i] = cblas_ddot(64, x, 1, y, 1);
    atomic_fetch_add(&arrived, 1);
    struct timespec t = {0, 1000000};
    for (int w = 0; w < 5000 && atomic_load(&arrived) % 3 != 0; w++)
        nanosleep(&t, NULL);
}

/* BLAS in each of the pool's threads on 3 threads, the count set twice:
 * the process then holds the caller and the pool's 2 workers, no more.
 * OpenBLAS's pthreads build starts a server per processor but one when
 * asked for a thread count with its servers stopped (after a fork, as in
 * this forked test, or after blas_thread_shutdown_): not stopping them,
 * or setting the count again in a worker, leaves them here.  A run not
 * forked (CK_FORK=no) starts with other tests' threads: not counted. */
START_TEST(blas_adds_no_threads)
{
    int before = process_threads();
    double r[3];
    for (int round = 0; round < 2; round++) {
        mx_pool_set_threads(3);
        mx_parallel_for(3, ddot_task, r);
        for (size_t i = 0; i < 3; i++) /* sum of k + 1 + i over k < 64 */
            ck_assert(r[i] == 2080.0 + 64.0 * (double)i);
    }
    int after = process_threads();
    mx_pool_set_threads(1);
    if (before != 1) {
        printf("blas_adds_no_threads: %d threads before, not counted\n", before);
        return;
    }
    ck_assert_msg(after == 3, "%d threads after the loops: 3 expected (BLAS servers left?)",
                  after);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_index_once);
    tcase_add_test(tc, nested_loops);
    tcase_add_test(tc, cpus_available);
    tcase_add_test(tc, row_blocks);
    tcase_add_test(tc, help_while_waiting);
    tcase_add_test(tc, blas_adds_no_threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
