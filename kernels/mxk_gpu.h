/* mxk_gpu.h -- what every HIP kernel source shares (private to the GPU
 * library): the runtime (real HIP on AMD, CUDA through hip_compat.h with
 * nvcc), the C API, the shared scalar arithmetic, and the error record of
 * the launchers.
 *
 * Compile-time paths: MXK_MFMA_DEVICE is set in the device pass for gfx94x
 * (and in the host-thread emulation), where the GEMMs have a matrix-core
 * kernel; MXK_AMD is set in both passes of an AMD build (and in the
 * emulation), where the host launcher may choose that kernel: at run time,
 * when the library was built for gfx94x (MXK_BUILT_FOR_GFX94), the device
 * is a gfx94x and the caller asked MXK_PATH_AUTO.
 */
#ifndef MXK_GPU_H
#define MXK_GPU_H

#include "hip_compat.h"
#if defined(MXK_NVIDIA)
#include <cuda_fp16.h>
#endif
#include "mxk.h"
#include "mxk_check.h"
#include "mxk_numerics.h"

#if defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__) ||    \
    defined(MXK_EMU)
#define MXK_MFMA_DEVICE 1
#endif

/* The launchers' last error message (one line), per host thread. */
extern "C" char *mxk_gpu_errbuf(void);
#define MXK_GPU_ERRLEN 256

/* Records a failed runtime call or launch and returns MXK_EDEVICE. */
mxk_status mxk_gpu_fail(const char *kernel, const char *what, hipError_t err);

/* After a launch: MXK_OK, or the launch error recorded. */
static inline mxk_status mxk_gpu_launched(const char *kernel)
{
    hipError_t err = hipGetLastError();
    return err == hipSuccess ? MXK_OK : mxk_gpu_fail(kernel, "launch", err);
}

/* Whether the current device runs the matrix-core GEMM kernels (gfx94x in
 * an AMD build; never on NVIDIA: see mxk_gpu_has_mma). */
int mxk_gpu_has_mfma(void);
/* Whether the current device runs the tensor-core GEMM kernels: an NVIDIA
 * Hopper GPU (compute capability 9.x) in an nvcc build, where their
 * arithmetic is the measured block models hopper-fp8-mma / hopper-bf16. */
int mxk_gpu_has_mma(void);

/* A grow-only device buffer: *p holds at least n elements of T after a 0
 * return (reallocated, contents lost, when *cap was smaller); -1 when the
 * device has no room (*p NULL, *cap 0). */
template <class T> int mxk_gpu_grow(T **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    if (*p)
        (void)hipFree(*p);
    *p = nullptr;
    *cap = 0;
    if (hipMalloc((void **)p, n * sizeof(T)) != hipSuccess) {
        *p = nullptr;
        return -1;
    }
    *cap = n;
    return 0;
}

static inline unsigned mxk_cdiv(int64_t a, int64_t b)
{
    return (unsigned)((a + b - 1) / b);
}

/* Where a provider's calls spend their time (MXK_GPU_STATS=1 in the
 * environment: one line per provider on stderr at exit, docs/scaling.md).
 * Each call adds its seconds waiting for the device (the provider's mutex,
 * or a free slot), copying up, running the kernel (to its completion) and
 * copying down (for the exact sum, also adding the sums into the caller's
 * accumulators); the clock is read only when the variable is set, and the
 * results do not change. */
#include <atomic>
#include <chrono>
#include <stdio.h>
#include <stdlib.h>
struct mxk_gpu_stats {
    const char *name;
    int on;
    std::atomic<long> calls{0};
    std::atomic<long long> ns[4]; /* wait, up, run, down */
    explicit mxk_gpu_stats(const char *n) : name(n)
    {
        const char *e = getenv("MXK_GPU_STATS");
        on = e && *e && *e != '0';
        for (auto &v : ns)
            v = 0;
    }
    ~mxk_gpu_stats()
    {
        if (on && calls)
            fprintf(stderr,
                    "mxk-gpu: %s: %ld calls, %.2f s waiting for the device (its mutex or a slot), "
                    "%.2f s up, %.2f s kernel, %.2f s down\n",
                    name, (long)calls, 1e-9 * ns[0], 1e-9 * ns[1], 1e-9 * ns[2], 1e-9 * ns[3]);
    }
    long long now() const
    {
        return on ? (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count()
                  : 0;
    }
    /* adds now() - *t to phase i and sets *t = now() */
    void lap(int i, long long *t)
    {
        if (!on)
            return;
        long long n = now();
        ns[i] += n - *t;
        *t = n;
    }
};

/* Slots: how a provider's calls share the device (gpu_slice.hip's exact
 * sum, gpu_walk.hip).  A call takes one of MXK_GPU_SLOTS slots, waiting
 * while every slot is taken; a slot is a stream, a device arena and a
 * pinned host arena of the same layout, both grow-only.  The call copies
 * its inputs into the pinned arena (on its own host thread, so several
 * calls copy at once), uploads them with one asynchronous copy, runs its
 * kernel and downloads its outputs on the slot's stream, waits for that
 * stream alone and copies the outputs out.  So one call's copies overlap
 * another's kernel, and no call waits for another's host work.  Each call
 * computes what it computed alone: the results do not depend on the slots.
 */
#include <condition_variable>
#include <mutex>
#define MXK_GPU_SLOTS 4
struct mxk_gpu_slot {
    hipStream_t stream;
    int made; /* the stream exists */
    unsigned char *dev, *pin;
    size_t cap; /* bytes of each arena */
};
struct mxk_gpu_slots {
    std::mutex mu;
    std::condition_variable freed;
    mxk_gpu_slot slot[MXK_GPU_SLOTS];
    int busy[MXK_GPU_SLOTS];
    /* a free slot with room for bytes in both arenas (NULL when the
     * device or the host has no room: the caller refuses the call) */
    mxk_gpu_slot *take(size_t bytes)
    {
        mxk_gpu_slot *s = nullptr;
        {
            std::unique_lock<std::mutex> lock(mu);
            for (;;) {
                for (int i = 0; i < MXK_GPU_SLOTS && !s; i++)
                    if (!busy[i]) {
                        busy[i] = 1;
                        s = &slot[i];
                    }
                if (s)
                    break;
                freed.wait(lock);
            }
        }
        if (!s->made) {
            if (hipStreamCreate(&s->stream) != hipSuccess) {
                give(s);
                return nullptr;
            }
            s->made = 1;
        }
        if (bytes > s->cap) {
            size_t cap = (size_t)1 << 20;
            while (cap < bytes)
                cap *= 2;
            if (s->dev)
                (void)hipFree(s->dev);
            if (s->pin)
                (void)hipHostFree(s->pin);
            s->dev = s->pin = nullptr;
            s->cap = 0;
            if (hipMalloc((void **)&s->dev, cap) != hipSuccess ||
                hipHostMalloc((void **)&s->pin, cap, 0) != hipSuccess) {
                if (s->dev)
                    (void)hipFree(s->dev);
                s->dev = s->pin = nullptr;
                give(s);
                return nullptr;
            }
            s->cap = cap;
        }
        return s;
    }
    void give(mxk_gpu_slot *s)
    {
        {
            std::lock_guard<std::mutex> lock(mu);
            busy[s - slot] = 0;
        }
        freed.notify_one();
    }
};

/* A layout of one call's arenas: segments at 256-byte aligned offsets,
 * the uploaded ones first (one copy up covers [0, up)), then the
 * downloaded ones (one copy down covers [up, end)). */
struct mxk_gpu_layout {
    size_t end = 0, up = 0;
    size_t add(size_t bytes)
    {
        size_t at = end;
        end += (bytes + 255) / 256 * 256;
        return at;
    }
    void uploads_done() { up = end; }
};

#endif
