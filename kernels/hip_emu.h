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
 * It also plays a gfx942 when MXK_EMU_ARCH=gfx942 is set: the two MFMA
 * builtins the GEMMs use are emulated per wave of 64 lanes (each lane
 * deposits its operands, a wave barrier, each lane computes its four
 * outputs) with the register layout of AMD's matrix instruction calculator
 * and an exact-sum-then-round model of the arithmetic.  That runs the MFMA
 * kernels' lane, row and column mapping against the C emulation (under the
 * matrix-core tolerance); it does not prove the layout itself.
 *
 * Model: a launch runs its blocks one after another; each block runs
 * blockDim threads as std::threads (one pool per launch, reused across
 * blocks) with a std::barrier for __syncthreads() and after each block.
 * __shared__ variables are static (one block at a time), and launches from
 * several host threads (a GPU suite computes the next case's reference
 * while this case's kernels run) take turns, one launch at a time, as on
 * one device queue.  Like CUDA, it
 * requires that every thread of a block reaches the same barriers; a
 * thread leaving the kernel early is dropped from the barrier.  Device
 * memory is host memory; streams and events are synchronous.
 */
#ifndef MXK_HIP_EMU_H
#define MXK_HIP_EMU_H

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
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
inline std::mutex mxk_emu_launch_mu; /* one launch at a time */
inline std::barrier<> *mxk_emu_wave_barrier[16]; /* per wave of 64 lanes */

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
    std::lock_guard<std::mutex> one_at_a_time(mxk_emu_launch_mu);
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
    std::vector<std::barrier<> *> waves;
    for (unsigned w = 0; w * 64 < nt && w < 16; w++)
        waves.push_back(new std::barrier<>(nt - w * 64 < 64 ? nt - w * 64 : 64));
    for (unsigned long b = 0; b <= nb; b++) {
        std::barrier<> bar(nt);
        mxk_emu_barrier = &bar;
        for (size_t w = 0; w < waves.size(); w++)
            mxk_emu_wave_barrier[w] = waves[w];
        cur.store(b);
        start.arrive_and_wait();
        if (b < nb)
            done.arrive_and_wait();
    }
    for (auto &th : pool)
        th.join();
    for (auto *w : waves)
        delete w;
}

/* ---- gfx942 matrix instructions (MXK_EMU_ARCH=gfx942) ------------------ */

typedef float mxk_f32x4 __attribute__((vector_size(16)));
typedef short mxk_bf16x4 __attribute__((vector_size(8)));

/* One wave's operands, deposited by its 64 lanes. */
struct mxk_emu_wave_ops {
    uint64_t a[64], b[64];
};
inline mxk_emu_wave_ops mxk_emu_wave[16];

/* Exchanges this lane's operands with its wave: on return w holds all 64
 * lanes' (the caller must call mxk_emu_wave_done after reading). */
inline mxk_emu_wave_ops &mxk_emu_wave_put(uint64_t a, uint64_t b)
{
    unsigned lane = threadIdx.x % 64, wave = threadIdx.x / 64;
    mxk_emu_wave[wave].a[lane] = a;
    mxk_emu_wave[wave].b[lane] = b;
    mxk_emu_wave_barrier[wave]->arrive_and_wait();
    return mxk_emu_wave[wave];
}
inline void mxk_emu_wave_done()
{
    mxk_emu_wave_barrier[threadIdx.x / 64]->arrive_and_wait();
}

/* E4M3FNUZ value of a byte (bias 8, 0x80 NaN), exactly. */
inline double mxk_emu_fnuz(unsigned b)
{
    if (b == 0x80)
        return __builtin_nan("");
    int e = (b >> 3) & 15, m = b & 7;
    double v = e ? std::ldexp(8 + m, e - 8 - 3) : std::ldexp(m, -10);
    return b & 0x80 ? -v : v;
}

/* v_mfma_f32_16x16x32_fp8_fp8: D = A (16x32) * B (32x16) + C.
 * A[i][k]: lane 16*(k/8) + i, byte k%8; B[k][j]: lane 16*(k/8) + j;
 * D[i][j]: lane 16*(i/4) + j, element i%4.  Model: the 32 products and C
 * summed exactly (binary64 holds them), rounded once to FP32. */
inline mxk_f32x4 mxk_emu_mfma_fp8(long a, long b, mxk_f32x4 c, int, int, int)
{
    mxk_emu_wave_ops &w = mxk_emu_wave_put((uint64_t)a, (uint64_t)b);
    unsigned lane = threadIdx.x % 64, j = lane % 16;
    mxk_f32x4 d;
    for (unsigned r = 0; r < 4; r++) {
        unsigned i = 4 * (lane / 16) + r;
        double s = c[r];
        for (unsigned k = 0; k < 32; k++) {
            unsigned ab = (unsigned)(w.a[16 * (k / 8) + i] >> (8 * (k % 8))) & 0xff;
            unsigned bb = (unsigned)(w.b[16 * (k / 8) + j] >> (8 * (k % 8))) & 0xff;
            s += mxk_emu_fnuz(ab) * mxk_emu_fnuz(bb);
        }
        d[r] = (float)s;
    }
    mxk_emu_wave_done();
    return d;
}

/* v_mfma_f32_16x16x16bf16_1k: A[i][k]: lane 16*(k/4) + i, element k%4;
 * B[k][j]: lane 16*(k/4) + j; D as above.  Model: products (exact in
 * binary64) and C summed in binary64, rounded once to FP32. */
inline mxk_f32x4 mxk_emu_mfma_bf16(mxk_bf16x4 a, mxk_bf16x4 b, mxk_f32x4 c,
                                   int, int, int)
{
    uint64_t ua, ub;
    std::memcpy(&ua, &a, 8);
    std::memcpy(&ub, &b, 8);
    mxk_emu_wave_ops &w = mxk_emu_wave_put(ua, ub);
    unsigned lane = threadIdx.x % 64, j = lane % 16;
    auto bf = [](uint64_t v, unsigned e) {
        uint32_t u = (uint32_t)((v >> (16 * e)) & 0xffff) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return (double)f;
    };
    mxk_f32x4 d;
    for (unsigned r = 0; r < 4; r++) {
        unsigned i = 4 * (lane / 16) + r;
        double s = c[r];
        for (unsigned k = 0; k < 16; k++)
            s += bf(w.a[16 * (k / 4) + i], k % 4) * bf(w.b[16 * (k / 4) + j], k % 4);
        d[r] = (float)s;
    }
    mxk_emu_wave_done();
    return d;
}

#define __builtin_amdgcn_mfma_f32_16x16x32_fp8_fp8 mxk_emu_mfma_fp8
#define __builtin_amdgcn_mfma_f32_16x16x16bf16_1k mxk_emu_mfma_bf16

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
    char gcnArchName[256];
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
inline hipError_t hipMemcpy2D(void *d, size_t dp, const void *s, size_t sp,
                              size_t w, size_t h, int)
{
    for (size_t r = 0; r < h; r++)
        std::memmove(static_cast<char *>(d) + r * dp,
                     static_cast<const char *>(s) + r * sp, w);
    return hipSuccess;
}
inline hipError_t hipMemcpyAsync(void *d, const void *s, size_t n, int,
                                 hipStream_t)
{
    return hipMemcpy(d, s, n, 0);
}
inline hipError_t hipStreamSynchronize(hipStream_t) { return hipSuccess; }
inline hipError_t hipStreamCreate(hipStream_t *st)
{
    *st = nullptr;
    return hipSuccess;
}
inline hipError_t hipStreamDestroy(hipStream_t) { return hipSuccess; }
inline hipError_t hipHostMalloc(void **p, size_t n, unsigned)
{
    return hipMalloc(p, n);
}
inline hipError_t hipHostFree(void *p) { return hipFree(p); }
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
    const char *arch = std::getenv("MXK_EMU_ARCH");
    std::snprintf(p->name, sizeof p->name, "host threads");
    std::snprintf(p->gcnArchName, sizeof p->gcnArchName, "%s",
                  arch && *arch ? arch : "none");
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
