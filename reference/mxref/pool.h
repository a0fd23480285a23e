/* mxref/pool.h -- parallel loops on a fixed set of worker threads, with
 * results that never depend on the thread count.
 *
 * mx_parallel_for(n, fn, ctx) calls fn(ctx, i) once for every i in [0, n)
 * and returns when all calls have returned.  The calls run on up to
 * mx_pool_threads() threads (the caller is one of them), in no particular
 * order.  Determinism is the caller's part of the contract: task i writes
 * only its own outputs (slot i, or a disjoint block of a result), and any
 * reduction over tasks happens after mx_parallel_for returns, in index
 * order.  Then the result is the same for every thread count, and the same
 * as the plain loop `for (i = 0; i < n; i++) fn(ctx, i)`, which is exactly
 * what one thread runs.
 *
 * Loops nest: a task may call mx_parallel_for itself.  Its indices are
 * offered to idle threads as well (the newest loop first), and the task's
 * own thread works on them too; once its loop has no index left, it helps
 * with the loops nested in its loop's tasks until they are done.  So the
 * total number of busy threads never exceeds
 * mx_pool_threads() (no oversubscription) and nested loops cannot
 * deadlock.  Every thread of the pool calls BLAS single-threaded
 * (openblas_set_num_threads(1) where OpenBLAS is linked; the server
 * threads its pthreads build starts when loaded are stopped at the first
 * mx_pool_set_threads, before they spin), so BLAS adds no threads of its
 * own.
 *
 * Threads are created on first use and live for the process (idle ones
 * sleep); mx_pool_set_threads may change the count between loops.
 */
#ifndef MXREF_POOL_H
#define MXREF_POOL_H

#include <stddef.h>
#include "mxref/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The processors this process may run on (sched_getaffinity where
 * available, else the online processors); at least 1. */
int mx_cpus_available(void);

/* Sets the thread count of every later parallel loop: n >= 1 (1 runs every
 * loop in the calling thread), capped at 1024.  0 means
 * mx_cpus_available().  The default before any call is 1. */
void mx_pool_set_threads(int n);
int mx_pool_threads(void);

typedef void (*mx_task_fn)(void *ctx, size_t i);

/* Runs fn(ctx, i) for every i < n; see the contract above.  Never fails:
 * when threads cannot be created the loop runs in the caller. */
void mx_parallel_for(size_t n, mx_task_fn fn, void *ctx);

/* Waiting inside a task without idling a thread.  From a task of a
 * loop, mx_pool_help_until(ready, arg) returns once ready(arg) is
 * nonzero; until then the thread runs indices of the loops nested in that
 * loop (started by its tasks, at any depth), as mx_parallel_for's caller
 * does while it waits, and sleeps when there are none.  Whoever makes
 * ready(arg) true calls mx_pool_notify() afterwards (it wakes every
 * sleeper to look again).  ready is called with the pool's lock held: it
 * may take a lock of its own but must not call into the pool, and no one
 * may call into the pool while holding that lock.  The wait must be one
 * that other running tasks end (the pool does not check): in a pool that
 * runs a loop's tasks one after another in one thread (one thread, or
 * tracing) no other task is running. */
void mx_pool_help_until(int (*ready)(void *arg), void *arg);
void mx_pool_notify(void);

/* Row blocks with a status each: fn(ctx, r0, n) for the blocks r0 ..
 * r0 + n of n_rows rows taken rows_per_block at a time (the last block
 * may be shorter), as one mx_parallel_for over the blocks; each block
 * writes only its own rows.  Returns the status of the first failing
 * block in block order (the one the plain loop over blocks would stop
 * at), MX_OK when every block succeeded or n_rows is 0, MX_ENOMEM when
 * the blocks' statuses cannot be held (then fn ran on no block), and
 * MX_EINVAL for rows_per_block 0. */
typedef mx_status (*mx_rows_fn)(void *ctx, size_t r0, size_t n);
mx_status mx_parallel_rows(size_t n_rows, size_t rows_per_block, mx_rows_fn fn,
                           void *ctx);

/* Tracing, for finding what limits the speed-up (docs/scaling.md, "Where
 * the time goes").  With the environment variable MXREF_POOL_TRACE=FILE
 * every loop runs in its calling thread, in index order (the results are
 * those of one thread, as always), while mx_pool_threads() reports the
 * count set, so loops are split as on that many threads; each loop, task
 * and mark is timed (CPU time of the thread, which runs them all) and
 * written to FILE at exit.
 * mx_pool_trace_mark(label) records a named instant (label: a string
 * that outlives the process's end, e.g. a literal); without the variable
 * it does nothing.  FILE: a '#' header line, then one line per event (a
 * loop's where it began, a task's where it ended; seconds of CPU time):
 *   M TIME LABEL                          a mark
 *   J ID PARENT PINDEX N FN T0 T1         a loop: ID from 1; started by
 *                                         task PINDEX of loop PARENT (0 0:
 *                                         by no task); N indices; FN: its
 *                                         function's address minus
 *                                         mx_parallel_for's
 *   T ID INDEX T0 T1                      a task of loop ID
 * tools/pool_schedule.py reads it. */
void mx_pool_trace_mark(const char *label);

#ifdef __cplusplus
}
#endif
#endif
