/* gemm_split.c -- one group GEMM spread over the worker pool by blocks of
 * output columns (rows of B).
 *
 * Every output of element (m, n) is a function of row m of A, row n of B
 * and the operand windows alone (gemm_internal.h), so running B's rows in
 * blocks and writing each block's columns back gives the bits of one call,
 * whatever the block count and whichever thread runs a block.  The block
 * count follows the shape and the thread count (about four blocks per
 * thread); it never changes a bit of the result.  A's rows, which every
 * block reads whole, are decoded once before the blocks run and shared
 * with them (shared_rows).  A block model on 8-bit operands that the
 * fused kernels take is split in tiles of rows and columns instead
 * (mxg_block_walk_tiles), each tile running the walk and the fused
 * kernels on its rows of A (a view of the shared decode) and its columns:
 * the walk's cost per output grows as a block narrows or shortens, so
 * near-square tiles, and no tile waits for another.  Otherwise such a
 * call's walk runs before the blocks for the whole call, in tiles on the
 * pool (mxg_block_walk_tiled), and each block copies its columns of it.
 */
#include <stdlib.h>
#include <string.h>
#include "mxref/pool.h"
#include "gemm_internal.h"

/* Below this many multiply-adds a GEMM runs as one call. */
#define SPLIT_MIN_WORK ((size_t)1 << 21)
/* Narrowest block, in output columns; where the blocks run a block
 * model's walk themselves (16-bit A, whose decoded rows they share, or a
 * walk the tiles did not take), whose work per column is several times
 * the fused kernel's and whose tile is 16 columns wide, 16 (more blocks
 * per thread to even out). */
#define SPLIT_MIN_COLS 32
#define WALK_MIN_COLS 16
/* The most outputs of a call walked in tiles before its blocks run (20
 * bytes each held for the call: 160 MiB); larger calls' blocks walk their
 * own columns. */
#define TILED_MAX ((size_t)1 << 23)

/* calls split in tiles that run the walk and the fused kernels */
static unsigned long split_tiles;

unsigned long mxg_split_tiles_calls(void)
{
    return __atomic_load_n(&split_tiles, __ATOMIC_RELAXED);
}

/* A's rows decoded once for the blocks of one call (gemm_internal.h). */
typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A;
    int wa;
    mxg_fused_rows *fused;
    mxg_fused16_rows *fused16;
    double *walk;
    /* the walk of the whole call, M x N, on the device
     * (mxg_walk_on_device) or in tiles on the pool (mxg_block_walk_tiled),
     * or NULL: the blocks copy their columns instead of walking; declined,
     * when the device was offered the call and did not take it (the
     * blocks then walk on the CPU without offering their parts) */
    float *wmacc;
    double *wsb, *wsp;
    size_t N;
    /* what mxg_shared_walk returns when wmacc is NULL: -1 the device was
     * offered the call and declined it, -2 a tile of a split in tiles
     * (its codes scanned), else 0 */
    int walk_here;
} shared_rows;

/* the shared rows of the block this thread runs, or NULL; the block's
 * first column */
static _Thread_local const shared_rows *cur_rows;
static _Thread_local size_t cur_n0;

const mxg_fused_rows *mxg_shared_rows_fused(const mx_gemm_spec *s, const mx_operand *A)
{
    const shared_rows *r = cur_rows;
    return r && r->s == s && r->A == A ? r->fused : NULL;
}

const mxg_fused16_rows *mxg_shared_rows_fused16(const mx_gemm_spec *s, const mx_operand *A,
                                                int wa)
{
    const shared_rows *r = cur_rows;
    return r && r->s == s && r->A == A && r->wa == wa ? r->fused16 : NULL;
}

const double *mxg_shared_rows_walk(const mx_gemm_spec *s, const mx_operand *A)
{
    const shared_rows *r = cur_rows;
    return r && r->s == s && r->A == A ? r->walk : NULL;
}

int mxg_shared_walk(const mx_gemm_spec *s, const mx_operand *A, size_t nb, float *macc,
                    double *sum_b, double *sum_p)
{
    const shared_rows *r = cur_rows;
    if (!r || r->s != s || r->A != A)
        return 0;
    if (r->walk_here)
        return r->walk_here;
    if (!r->wmacc || cur_n0 + nb > r->N)
        return 0;
    for (size_t m = 0; m < A->rows; m++) {
        size_t d = m * nb, o = m * r->N + cur_n0;
        if (macc)
            memcpy(macc + d, r->wmacc + o, nb * sizeof *macc);
        if (sum_b)
            memcpy(sum_b + d, r->wsb + o, nb * sizeof *sum_b);
        if (sum_p)
            memcpy(sum_p + d, r->wsp + o, nb * sizeof *sum_p);
    }
    return 1;
}

/* The rows the blocks' kernels will read: the fused FP8 kernel's where
 * gemm.c runs it (mxg_fused_ok, mxg_fused_applies), or the 16-bit
 * kernel's under A's window; where the block walk serves the call
 * (mxg_walks), the walk itself when the device or the tiles take it
 * (8-bit A), else its decode of 16-bit A.  Missing ones (memory short, a
 * kernel or walk that does not apply) are formed per block. */
static void shared_rows_make(const mx_gemm_spec *s, const mx_operand *A,
                             const mx_operand *B, const mx_gemm_out *out, int wa,
                             shared_rows *r)
{
    *r = (shared_rows){s, A, wa, NULL, NULL, NULL, NULL, NULL, NULL, B->rows, 0};
    if (mxg_fused_ok(s, out, mxg_walks(s, out))) {
        if (mxg_fused_applies(s, A, B))
            r->fused = mxg_fused_rows_new(s, A);
        else
            r->fused16 = mxg_fused16_rows_new(s, A, B, wa);
    }
    int device = mxg_walks(s, out) && mxg_walk_on_device(s, A, B);
    size_t MN = A->rows * B->rows;
    if (mxg_walks(s, out) && (device || (A->fmt->bits == 8 && MN <= TILED_MAX))) {
        /* one device call for the whole GEMM, not one per block; or, 8-bit
         * A, the whole walk in tiles on the pool (mxg_block_walk_tiled),
         * not a decode of all of A per column block */
        r->wmacc = malloc(mx_nz(MN) * sizeof *r->wmacc);
        r->wsb = malloc(mx_nz(MN) * sizeof *r->wsb);
        r->wsp = malloc(mx_nz(MN) * sizeof *r->wsp);
        if (!r->wmacc || !r->wsb || !r->wsp ||
            !(device ? mxg_block_walk_device(s, A, B, r->wmacc, r->wsb, r->wsp)
                     : mxg_block_walk_tiled(s, A, B, r->wmacc, r->wsb, r->wsp))) {
            free(r->wmacc);
            free(r->wsb);
            free(r->wsp);
            r->wmacc = NULL;
            r->wsb = r->wsp = NULL;
            r->walk_here = device ? -1 : 0;
        }
    }
    if (mxg_walks(s, out) && !r->wmacc)
        r->walk = mxg_block_walk_rows(s, A);
}

static void shared_rows_free(shared_rows *r)
{
    mxg_fused_rows_free(r->fused);
    mxg_fused16_rows_free(r->fused16);
    free(r->walk);
    free(r->wmacc);
    free(r->wsb);
    free(r->wsp);
}

typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    mx_gemm_out *out;
    int wa, wb;
    /* block bi: rows [R (bi / ncol), +R) of A (all of them but in tiles)
     * against columns [cols (bi % ncol), +cols) */
    size_t R, cols, ncol, nblocks;
    int tiles;
    mx_status *st;
    mx_gemm_stats *stats;
    size_t *irr_a;
    const shared_rows *rows;
} split_ctx;

static void split_task(void *vctx, size_t bi)
{
    split_ctx *x = vctx;
    size_t M = x->A->rows, N = x->B->rows;
    size_t m0 = bi / x->ncol * x->R, mr = M - m0 < x->R ? M - m0 : x->R;
    size_t n0 = bi % x->ncol * x->cols, nb = N - n0 < x->cols ? N - n0 : x->cols;
    mx_operand a = x->tiles ? mxg_rows_of(x->A, m0, mr) : *x->A;
    mx_operand b = mxg_rows_of(x->B, n0, nb);
    mx_gemm_spec sp = mxg_spec_rows_from(x->s, m0); /* m0 = 0 but in tiles */
    const mx_gemm_spec *s = x->tiles ? &sp : x->s;
    const mx_operand *ap = x->tiles ? &a : x->A;
    /* a tile's shared rows: its rows of the call's decode, the walk its own */
    shared_rows tr = {s, ap, x->wa, NULL, NULL, NULL, NULL, NULL, NULL, nb, -2};
    if (x->tiles)
        tr.fused = mxg_fused_rows_view(x->rows->fused, m0, mr, ap);
    size_t mn = mr * nb;
    mn = mn ? mn : 1;
    const mx_gemm_out *o = x->out;
    mx_gemm_out t = {
        o->exact ? malloc(mn * sizeof *t.exact) : NULL,
        o->model_acc ? malloc(mn * sizeof *t.model_acc) : NULL,
        o->model_out ? malloc(mn * sizeof *t.model_out) : NULL,
        o->bound ? malloc(mn * sizeof *t.bound) : NULL,
        o->sum_abs ? malloc(mn * sizeof *t.sum_abs) : NULL,
        o->bound_acc ? malloc(mn * sizeof *t.bound_acc) : NULL};
    mx_status st = MX_ENOMEM;
    if ((!o->exact || t.exact) && (!o->model_acc || t.model_acc) &&
        (!o->model_out || t.model_out) && (!o->bound || t.bound) &&
        (!o->sum_abs || t.sum_abs) && (!o->bound_acc || t.bound_acc)) {
        /* this thread may run a block of another call inside this one (a
         * nested loop's task): the rows are restored, not cleared */
        const shared_rows *saved = cur_rows;
        size_t saved_n0 = cur_n0;
        cur_rows = x->tiles ? &tr : x->rows;
        cur_n0 = x->tiles ? 0 : n0;
        st = mxg_gemm_block(s, ap, &b, &t, &x->stats[bi], x->wa, x->wb, &x->irr_a[bi]);
        cur_rows = saved;
        cur_n0 = saved_n0;
    }
    mxg_fused_rows_free(tr.fused);
    if (st == MX_OK)
        for (size_t m = 0; m < mr; m++) {
            size_t d = (m0 + m) * N + n0, r = m * nb;
            if (o->exact)
                memcpy(o->exact + d, t.exact + r, nb * sizeof *t.exact);
            if (o->model_acc)
                memcpy(o->model_acc + d, t.model_acc + r, nb * sizeof *t.model_acc);
            if (o->model_out)
                memcpy(o->model_out + d, t.model_out + r, nb * sizeof *t.model_out);
            if (o->bound)
                memcpy(o->bound + d, t.bound + r, nb * sizeof *t.bound);
            if (o->sum_abs)
                memcpy(o->sum_abs + d, t.sum_abs + r, nb * sizeof *t.sum_abs);
            if (o->bound_acc)
                memcpy(o->bound_acc + d, t.bound_acc + r, nb * sizeof *t.bound_acc);
        }
    x->st[bi] = st;
    free(t.exact);
    free(t.model_acc);
    free(t.model_out);
    free(t.bound);
    free(t.sum_abs);
    free(t.bound_acc);
}

mx_status mxg_gemm_split(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out,
                         mx_gemm_stats *stats, int wa, int wb)
{
    size_t M = A->rows, N = B->rows, K = A->K;
    int threads = mx_pool_threads();
    size_t min_cols = mxg_walks(s, out) ? WALK_MIN_COLS : SPLIT_MIN_COLS;
    if (threads <= 1 || M * N * K < SPLIT_MIN_WORK || N < 2 * min_cols)
        return mxg_gemm_block(s, A, B, out, stats, wa, wb, NULL);
    /* about four blocks per thread, none narrower than min_cols */
    size_t want = 4 * (size_t)threads;
    mxg_fused16_rows *wide16 = NULL;
    if (mxg_device_sums(s, out, mxg_walks(s, out))) {
        /* a 16-bit A with a group wider than its window: the device
         * declines every block (gemm.c, provider_takes) and the 16-bit
         * kernel sums them on the host, so they are split as without a
         * provider, A's rows decoded once for them */
        if (!mxg_fused_applies(s, A, B) && mxg_fused16_a_wide(s, A, B, wa))
            wide16 = mxg_fused16_rows_new(s, A, B, wa);
        if (!mxg_fused16_rows_wide(wide16)) {
            mxg_fused16_rows_free(wide16);
            wide16 = NULL;
            /* the device sums each block and is sent all of A (8 M K
             * bytes) for each: no more blocks than N / M, or than keep
             * those copies within 128 MiB when A is small (the blocks'
             * host work, preparing B and rounding M x N sums, wants
             * threads when N >> M) */
            size_t most = M ? N / M : 1, by_bytes = ((size_t)128 << 20) / (8 * M * K + 1);
            most = most > by_bytes ? most : by_bytes;
            if (most <= 1)
                return mxg_gemm_block(s, A, B, out, stats, wa, wb, NULL);
            want = most < want ? most : want;
        }
    }
    shared_rows rows;
    size_t R = M, cols = 0;
    /* tiles: a block model's walk and the fused kernels, tile by tile */
    int tiles = mxg_walks(s, out) && A->fmt->bits == 8 &&
                !mxg_device_sums(s, out, 1) && mxg_fused_ok(s, out, 1) &&
                mxg_fused_applies(s, A, B) && !mxg_walk_on_device(s, A, B) &&
                mxg_block_walk_tiles(s, A, B, &R, &cols);
    if (tiles) {
        __atomic_fetch_add(&split_tiles, 1, __ATOMIC_RELAXED);
        /* A decoded for the fused kernel only where the tiles' walks will
         * not form the exact values themselves (mxg_xsum: if the whole
         * call's sums fit, so do each tile's) */
        mxg_xsum *xs = mxg_xsum_wanted(s, out) ? mxg_xsum_new(s, A, B) : NULL;
        rows = (shared_rows){s, A, wa, xs ? NULL : mxg_fused_rows_new(s, A), NULL, NULL,
                             NULL, NULL, NULL, N, 0};
        mxg_xsum_free(xs);
    } else {
        R = M;
        shared_rows_make(s, A, B, out, wa, &rows);
        if (!rows.fused16)
            rows.fused16 = wide16;
        else
            mxg_fused16_rows_free(wide16);
        /* a walk already done leaves the blocks the fused kernels' work */
        min_cols = rows.wmacc ? SPLIT_MIN_COLS : min_cols;
        cols = (N + want - 1) / want;
        cols = cols < min_cols ? min_cols : cols;
    }
    size_t ncol = (N + cols - 1) / cols, nblocks = (M + R - 1) / R * ncol;
    mx_status *st = calloc(nblocks, sizeof *st);
    mx_gemm_stats *bs = calloc(nblocks, sizeof *bs);
    size_t *irr = calloc(nblocks, sizeof *irr);
    if (!st || !bs || !irr) {
        free(st);
        free(bs);
        free(irr);
        shared_rows_free(&rows);
        return mxg_gemm_block(s, A, B, out, stats, wa, wb, NULL);
    }
    split_ctx x = {s, A, B, out, wa, wb, R, cols, ncol, nblocks, tiles, st, bs, irr, &rows};
    mx_parallel_for(nblocks, split_task, &x);
    shared_rows_free(&rows);
    mx_status r = MX_OK;
    /* A's irregular groups once per band of rows (the blocks of its
     * first column), B's and the rest from every block */
    mx_gemm_stats sum = {0, 0, 0};
    for (size_t i = 0; i < nblocks; i++) {
        if (st[i] != MX_OK && r == MX_OK)
            r = st[i];
        sum.elements += bs[i].elements;
        sum.slow_elements += bs[i].slow_elements;
        sum.irregular_groups += bs[i].irregular_groups - irr[i] + (i % ncol ? 0 : irr[i]);
    }
    if (stats && r == MX_OK)
        *stats = sum;
    free(st);
    free(bs);
    free(irr);
    return r;
}
