/* hip_emu.h -- the HIP subset the kernels use, emulated with host threads,
 * so that the HIP sources of kernels/ run unchanged on a machine without a
 * GPU (`make check` builds them with g++ -DMXK_EMU into
 * tests/libmxk_emu.so and runs check_kernels_gpu against it).
 *
 * What it proves: the GPU code (grids, tiles, shared memory, masking,
 * barriers, atomics, launchers, the host-pointer backend) computes the same
 * bytes as the C emulation.  What it cannot: anything about a real
 * device's arithmetic; the scalar code is the host's (mxk_numerics.h picks
 * fmaf and plain operators when neither nvcc nor hipcc compiles it).
 *
 * Model: a launch runs its blocks one after another; each block runs
 * blockDim threads as std::threads (one pool per launch, reused across
 * blocks) with a std::barrier for __syncthreads() and after each block.
 * __shared__ variables are static (one block at a time).  Like CUDA, it
 * requires that every thread of a block reaches the same barriers; a
 * thread leaving the kernel early is dropped from the barrier.  Device
 * memory is host memory; streams and events are synchronous.
 */
#ifndef MXK_HIP_EMU_H
#define MXK_HIP_EMU_H

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(n)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1)
        : x(x_), y(y_), z(z_)
    {
    }
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<> *mxk_emu_barrier;

inline void __syncthreads() { mxk_emu_barrier->arrive_and_wait(); }

inline int atomicAdd(int *p, int v)
{
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}

inline unsigned long long atomicMin(unsigned long long *p,
                                    unsigned long long v)
{
    unsigned long long old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (v < old &&
           !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
        ;
    return old;
}

template <class... P, class... A>
void mxk_emu_launch(void (*kernel)(P...), dim3 grid, dim3 block, A... args)
{
    gridDim = grid;
    blockDim = block;
    unsigned nt = block.x * block.y * block.z;
    unsigned long nb = (unsigned long)grid.x * grid.y * grid.z;
    std::barrier<> start(nt + 1), done(nt + 1);
    std::vector<std::thread> pool;
    std::atomic<unsigned long> cur(0);
    for (unsigned t = 0; t < nt; t++)
        pool.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, t / block.x % block.y,
                             t / (block.x * block.y));
            for (;;) {
                start.arrive_and_wait();
                unsigned long b = cur.load();
                if (b >= nb)
                    return;
                blockIdx = dim3((unsigned)(b % grid.x),
                                (unsigned)(b / grid.x % grid.y),
                                (unsigned)(b / ((unsigned long)grid.x * grid.y)));
                kernel(args...);
                mxk_emu_barrier->arrive_and_drop(); /* left the kernel */
                done.arrive_and_wait();
            }
        });
    for (unsigned long b = 0; b <= nb; b++) {
        std::barrier<> bar(nt);
        mxk_emu_barrier = &bar;
        cur.store(b);
        start.arrive_and_wait();
        if (b < nb)
            done.arrive_and_wait();
    }
    for (auto &th : pool)
        th.join();
}

#define hipLaunchKernelGGL(kernel, grid, block, shmem, stream, ...)            \
    ((void)(shmem), (void)(stream),                                            \
     mxk_emu_launch(kernel, dim3(grid), dim3(block), __VA_ARGS__))

/* ---- runtime ----------------------------------------------------------- */

typedef int hipError_t;
typedef void *hipStream_t;
typedef struct mxk_emu_event *hipEvent_t;
struct mxk_emu_event {
    std::chrono::steady_clock::time_point t;
};
typedef struct {
    char name[256];
    int major, minor;
} hipDeviceProp_t;
enum {
    hipSuccess = 0,
    hipErrorMemoryAllocation = 2,
    hipMemcpyHostToDevice = 1,
    hipMemcpyDeviceToHost = 2,
    hipMemcpyDeviceToDevice = 3
};

inline const char *hipGetErrorString(hipError_t e)
{
    return e == hipSuccess ? "no error" : "out of memory (emulation)";
}
inline hipError_t hipGetLastError() { return hipSuccess; }
inline hipError_t hipMalloc(void **p, size_t n)
{
    *p = std::calloc(n ? n : 1, 1);
    return *p ? hipSuccess : hipErrorMemoryAllocation;
}
inline hipError_t hipFree(void *p)
{
    std::free(p);
    return hipSuccess;
}
inline hipError_t hipMemcpy(void *d, const void *s, size_t n, int)
{
    std::memmove(d, s, n);
    return hipSuccess;
}
inline hipError_t hipMemcpyAsync(void *d, const void *s, size_t n, int,
                                 hipStream_t)
{
    return hipMemcpy(d, s, n, 0);
}
inline hipError_t hipStreamSynchronize(hipStream_t) { return hipSuccess; }
inline hipError_t hipDeviceSynchronize() { return hipSuccess; }
inline hipError_t hipGetDeviceCount(int *n)
{
    *n = 1;
    return hipSuccess;
}
inline hipError_t hipGetDevice(int *d)
{
    *d = 0;
    return hipSuccess;
}
inline hipError_t hipGetDeviceProperties(hipDeviceProp_t *p, int)
{
    std::snprintf(p->name, sizeof p->name, "host threads");
    p->major = p->minor = 0;
    return hipSuccess;
}
inline hipError_t hipEventCreate(hipEvent_t *e)
{
    *e = new mxk_emu_event();
    return hipSuccess;
}
inline hipError_t hipEventDestroy(hipEvent_t e)
{
    delete e;
    return hipSuccess;
}
inline hipError_t hipEventRecord(hipEvent_t e, hipStream_t)
{
    e->t = std::chrono::steady_clock::now();
    return hipSuccess;
}
inline hipError_t hipEventSynchronize(hipEvent_t) { return hipSuccess; }
inline hipError_t hipEventElapsedTime(float *ms, hipEvent_t a, hipEvent_t b)
{
    *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
    return hipSuccess;
}

#endif
