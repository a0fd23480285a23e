/* pool.c -- the worker pool behind mx_parallel_for (mxref/pool.h).
 *
 * A loop in progress is a "job" on a shared stack (newest on top).  A
 * thread looking for work takes the next index of the newest job that has
 * indices left: nested loops, pushed by tasks of an outer loop, are served
 * first, so work that has started finishes before new outer work starts
 * (bounded memory, depth-first).  The thread that called mx_parallel_for
 * works on its own job until no index is left, then waits for the indices
 * other threads hold; those always make progress, so no loop waits on a
 * loop that waits on it.  One mutex guards the stack; a task is coarse (an
 * expert's GEMM, a block of output columns, a suite case), so the lock is
 * taken rarely.
 */
#define _GNU_SOURCE
#include "mxref/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int n) __attribute__((weak));

typedef struct job {
    mx_task_fn fn;
    void *ctx;
    size_t n, next, done;
    pthread_cond_t finished;
    struct job *below;
} job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static job *top;             /* the newest job with indices left, or NULL  */
static int want = 1;         /* threads per loop, the caller included       */
static int started;          /* worker threads created so far               */

int mx_cpus_available(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Removes jobs without indices left from the top of the stack; a job
 * lower down that is exhausted is skipped by take() and removed when it
 * surfaces.  Called with the lock held. */
static job *take(size_t *idx)
{
    for (job **p = &top; *p; ) {
        job *j = *p;
        if (j->next < j->n) {
            *idx = j->next++;
            return j;
        }
        *p = j->below; /* exhausted: unlink (its caller still waits on it) */
    }
    return NULL;
}

static void finish(job *j)
{
    if (++j->done == j->n)
        pthread_cond_broadcast(&j->finished);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 0, 1, ...: works while id < want - 1 */
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
    pthread_mutex_lock(&lock);
    for (;;) {
        size_t i;
        job *j = id < want - 1 ? take(&i) : NULL;
        if (!j) {
            pthread_cond_wait(&work, &lock);
            continue;
        }
        pthread_mutex_unlock(&lock);
        j->fn(j->ctx, i);
        pthread_mutex_lock(&lock);
        finish(j);
    }
    return NULL;
}

void mx_pool_set_threads(int n)
{
    if (n <= 0)
        n = mx_cpus_available();
    if (n > 1024)
        n = 1024;
    pthread_mutex_lock(&lock);
    want = n;
    pthread_mutex_unlock(&lock);
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
}

int mx_pool_threads(void)
{
    pthread_mutex_lock(&lock);
    int n = want;
    pthread_mutex_unlock(&lock);
    return n;
}

/* Creates workers up to want - 1 (the caller is the last thread).  Called
 * with the lock held; a failure leaves fewer workers, never an error. */
static void grow(void)
{
    while (started < want - 1) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, (size_t)8 << 20);
        int rc = pthread_create(&t, &at, worker, (void *)(intptr_t)started);
        pthread_attr_destroy(&at);
        if (rc != 0)
            break;
        started++;
    }
}

void mx_parallel_for(size_t n, mx_task_fn fn, void *ctx)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&lock);
    grow();
    if (n == 1 || want == 1 || started == 0) {
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    job j = {fn, ctx, n, 0, 0, PTHREAD_COND_INITIALIZER, top};
    top = &j;
    pthread_cond_broadcast(&work);
    /* work on this job only: an outer caller must not pick up unrelated
     * outer work while its own loop is unfinished (that could stack
     * unbounded work on this thread) */
    while (j.next < j.n) {
        size_t i = j.next++;
        pthread_mutex_unlock(&lock);
        fn(ctx, i);
        pthread_mutex_lock(&lock);
        finish(&j);
    }
    /* unlink it if it is still on the stack (others skip exhausted jobs) */
    for (job **p = &top; *p; p = &(*p)->below)
        if (*p == &j) {
            *p = j.below;
            break;
        }
    while (j.done < j.n)
        pthread_cond_wait(&j.finished, &lock);
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&j.finished);
}
