/* gpu_ops.hip -- the GPU backend's mxk_ops table (host pointers in, host
 * pointers out) and the library's entry points mxk_gpu_ops() and
 * mxk_gpu_unavailable().
 *
 * Each call validates on the host exactly as the CPU backend does
 * (mxk_check.h, routing arrays included), copies its inputs to fresh device
 * buffers (the output too, where the kernel leaves parts of it untouched),
 * runs the device launcher between two events (the reported time), and
 * copies the outputs back only on success.
 */
#include <stdio.h>
#include <string.h>
#include "mxk_gpu.h"

static thread_local char errbuf[MXK_GPU_ERRLEN];

extern "C" char *mxk_gpu_errbuf(void) { return errbuf; }

mxk_status mxk_gpu_fail(const char *kernel, const char *what, hipError_t err)
{
    snprintf(errbuf, sizeof errbuf, "%s: %s: %s", kernel, what,
             hipGetErrorString(err));
    return MXK_EDEVICE;
}

int mxk_gpu_has_mfma(void)
{
#if defined(MXK_AMD) && defined(MXK_BUILT_FOR_GFX94)
    static int has = -1;
    if (has < 0) {
        int dev = 0;
        hipDeviceProp_t prop;
        has = hipGetDevice(&dev) == hipSuccess &&
              hipGetDeviceProperties(&prop, dev) == hipSuccess &&
              strncmp(prop.gcnArchName, "gfx94", 5) == 0;
    }
    return has;
#else
    return 0;
#endif
}

int mxk_gpu_has_mma(void)
{
#if defined(MXK_NVIDIA)
    static int has = -1;
    if (has < 0) {
        int dev = 0;
        hipDeviceProp_t prop;
        has = hipGetDevice(&dev) == hipSuccess &&
              hipGetDeviceProperties(&prop, dev) == hipSuccess &&
              prop.major == 9;
    }
    return has;
#else
    return 0;
#endif
}

namespace {

/* A device buffer freed on scope exit. */
struct dbuf {
    void *p = nullptr;
    dbuf() = default;
    dbuf(const dbuf &) = delete;
    dbuf &operator=(const dbuf &) = delete;
    ~dbuf()
    {
        if (p)
            (void)hipFree(p);
    }
    template <class T> T *as() const { return static_cast<T *>(p); }
};

struct call {
    const char *kernel;
    mxk_status st = MXK_OK;
    explicit call(const char *k) : kernel(k) { errbuf[0] = 0; }

    /* Allocates n bytes (at least 1) and, when src is given, copies n
     * bytes of host memory into them. */
    bool in(dbuf &d, const void *src, size_t n)
    {
        if (st)
            return false;
        hipError_t err = hipMalloc(&d.p, n ? n : 1);
        if (err != hipSuccess) {
            d.p = nullptr;
            snprintf(errbuf, sizeof errbuf,
                     "%s: hipMalloc of %zu bytes: %s", kernel, n,
                     hipGetErrorString(err));
            st = MXK_ENOMEM;
            return false;
        }
        if (src && n) {
            err = hipMemcpy(d.p, src, n, hipMemcpyHostToDevice);
            if (err != hipSuccess) {
                st = mxk_gpu_fail(kernel, "copy to device", err);
                return false;
            }
        }
        return true;
    }
    bool out(void *dst, const dbuf &d, size_t n)
    {
        if (st || !n)
            return !st;
        hipError_t err = hipMemcpy(dst, d.p, n, hipMemcpyDeviceToHost);
        if (err != hipSuccess)
            st = mxk_gpu_fail(kernel, "copy to host", err);
        return !st;
    }
    /* Runs the launcher between two events; ms gets the elapsed time. */
    template <class F> bool timed(double *ms, F launch)
    {
        if (st)
            return false;
        hipEvent_t t0, t1;
        hipError_t err = hipEventCreate(&t0);
        if (err != hipSuccess) {
            st = mxk_gpu_fail(kernel, "hipEventCreate", err);
            return false;
        }
        err = hipEventCreate(&t1);
        if (err != hipSuccess) {
            (void)hipEventDestroy(t0);
            st = mxk_gpu_fail(kernel, "hipEventCreate", err);
            return false;
        }
        (void)hipEventRecord(t0, 0);
        st = launch();
        (void)hipEventRecord(t1, 0);
        err = hipEventSynchronize(t1);
        if (!st && err != hipSuccess)
            st = mxk_gpu_fail(kernel, "kernel execution", err);
        if (!st && (err = hipGetLastError()) != hipSuccess)
            st = mxk_gpu_fail(kernel, "kernel execution", err);
        float f = 0.0f;
        if (!st && ms && hipEventElapsedTime(&f, t0, t1) == hipSuccess)
            *ms = f;
        (void)hipEventDestroy(t0);
        (void)hipEventDestroy(t1);
        return !st;
    }
};

mxk_status gpu_quant(const mxk_quant_args *h, double *ms)
{
    call c("mx_quant");
    if ((c.st = mxk_check_quant(h, errbuf, sizeof errbuf)))
        return c.st;
    size_t n = (size_t)h->rows * h->k;
    dbuf x, q, s;
    c.in(x, h->x, 2 * n);
    c.in(q, nullptr, n);
    c.in(s, nullptr, n / 32);
    mxk_quant_args d = *h;
    d.x = x.as<uint16_t>();
    d.q = q.as<uint8_t>();
    d.scale = s.as<uint8_t>();
    c.timed(ms, [&] { return mxk_launch_mx_quant(&d, nullptr); });
    c.out(h->q, q, n);
    c.out(h->scale, s, n / 32);
    return c.st;
}

mxk_status gpu_fnuz(const mxk_fnuz_args *h, double *ms)
{
    call c("fn_to_fnuz");
    if ((c.st = mxk_check_fnuz(h, errbuf, sizeof errbuf)))
        return c.st;
    size_t ns = (size_t)h->experts * h->n * (h->k / 32), nv = ns * 32;
    dbuf v, s, ov, os;
    c.in(v, h->vals, nv);
    c.in(s, h->scales, ns);
    c.in(ov, nullptr, nv);
    c.in(os, nullptr, ns);
    mxk_fnuz_args d = *h;
    d.vals = v.as<uint8_t>();
    d.scales = s.as<uint8_t>();
    d.out_vals = ov.as<uint8_t>();
    d.out_scales = os.as<uint8_t>();
    c.timed(ms, [&] { return mxk_launch_fn_to_fnuz(&d, nullptr); });
    if (c.st == MXK_ERANGE)
        return c.st; /* *bad_index set, nothing written */
    c.out(h->out_vals, ov, nv);
    c.out(h->out_scales, os, ns);
    return c.st;
}

mxk_status gpu_align(const mxk_align_args *h, double *ms)
{
    call c("moe_align");
    if ((c.st = mxk_check_align_scalars(h, errbuf, sizeof errbuf)) ||
        (c.st = mxk_check_align_data(h, errbuf, sizeof errbuf)))
        return c.st;
    size_t nids = (size_t)h->tokens * h->topk;
    size_t cap = (size_t)mxk_align_max_rows(h->tokens, h->topk, h->experts,
                                            h->block_m);
    size_t capb = (size_t)mxk_align_max_blocks(h->tokens, h->topk,
                                               h->experts, h->block_m);
    dbuf ids, map, sorted, eids, npp;
    c.in(ids, h->topk_ids, nids * 4);
    if (h->expert_map)
        c.in(map, h->expert_map, (size_t)h->experts * 4);
    c.in(sorted, nullptr, cap * 4);
    c.in(eids, nullptr, capb * 4);
    c.in(npp, nullptr, 4);
    mxk_align_args d = *h;
    d.topk_ids = ids.as<int32_t>();
    d.expert_map = h->expert_map ? map.as<int32_t>() : nullptr;
    d.sorted_ids = sorted.as<int32_t>();
    d.expert_ids = eids.as<int32_t>();
    d.num_post_pad = npp.as<int32_t>();
    c.timed(ms, [&] { return mxk_launch_moe_align(&d, nullptr); });
    c.out(h->sorted_ids, sorted, cap * 4);
    c.out(h->expert_ids, eids, capb * 4);
    c.out(h->num_post_pad, npp, 4);
    return c.st;
}

/* Copies a route's arrays; r gets the device pointers. */
void route_in(call &c, const mxk_route *h, mxk_route *r, dbuf &sorted,
              dbuf &eids, dbuf &w)
{
    size_t np = (size_t)h->num_post_pad;
    c.in(sorted, h->sorted_ids, np * 4);
    c.in(eids, h->expert_ids, np / h->block_m * 4);
    if (h->topk_weights)
        c.in(w, h->topk_weights, (size_t)h->tokens * h->topk * 4);
    *r = *h;
    r->sorted_ids = sorted.as<int32_t>();
    r->expert_ids = eids.as<int32_t>();
    r->topk_weights = h->topk_weights ? w.as<float>() : nullptr;
}

mxk_status gpu_mxfp8(const mxk_mxfp8_gemm_args *h, double *ms)
{
    const char *k = "mxfp8_group_gemm";
    call c(k);
    if ((c.st = mxk_check_mxfp8_gemm(h, errbuf, sizeof errbuf)) ||
        (c.st = mxk_check_route_data(k, &h->r, h->experts, errbuf,
                                     sizeof errbuf)))
        return c.st;
    size_t K = h->k, G = K / 32, N = h->n;
    size_t arows = (size_t)mxk_route_a_rows(&h->r);
    size_t nb = (size_t)h->experts * N * K;
    size_t nout = (size_t)h->r.tokens * h->r.topk * N;
    dbuf sorted, eids, w, a, as, b, bs, out;
    mxk_mxfp8_gemm_args d = *h;
    route_in(c, &h->r, &d.r, sorted, eids, w);
    c.in(a, h->a, arows * K);
    c.in(as, h->a_scale, arows * G);
    c.in(b, h->b, nb);
    c.in(bs, h->b_scale, nb / 32);
    c.in(out, h->out, nout * 2);
    d.a = a.as<uint8_t>();
    d.a_scale = as.as<uint8_t>();
    d.b = b.as<uint8_t>();
    d.b_scale = bs.as<uint8_t>();
    d.out = out.as<uint16_t>();
    c.timed(ms, [&] { return mxk_launch_mxfp8_group_gemm(&d, nullptr); });
    c.out(h->out, out, nout * 2);
    return c.st;
}

mxk_status gpu_bf16(const mxk_bf16_gemm_args *h, double *ms)
{
    const char *k = "bf16_group_gemm";
    call c(k);
    if ((c.st = mxk_check_bf16_gemm(h, errbuf, sizeof errbuf)) ||
        (c.st = mxk_check_route_data(k, &h->r, h->experts, errbuf,
                                     sizeof errbuf)))
        return c.st;
    size_t K = h->k, N = h->n;
    size_t arows = (size_t)mxk_route_a_rows(&h->r);
    size_t nout = (size_t)h->r.tokens * h->r.topk * N;
    dbuf sorted, eids, w, a, b, out;
    mxk_bf16_gemm_args d = *h;
    route_in(c, &h->r, &d.r, sorted, eids, w);
    c.in(a, h->a, arows * K * 2);
    c.in(b, h->b, (size_t)h->experts * N * K * 2);
    c.in(out, h->out, nout * 2);
    d.a = a.as<uint16_t>();
    d.b = b.as<uint16_t>();
    d.out = out.as<uint16_t>();
    c.timed(ms, [&] { return mxk_launch_bf16_group_gemm(&d, nullptr); });
    c.out(h->out, out, nout * 2);
    return c.st;
}

mxk_status gpu_swiglu(const mxk_swiglu_args *h, double *ms)
{
    call c("swiglu_quant");
    if ((c.st = mxk_check_swiglu(h, errbuf, sizeof errbuf)))
        return c.st;
    size_t n = (size_t)h->rows * h->inter;
    dbuf g1, q, s, act;
    c.in(g1, h->g1, 4 * n);
    c.in(q, nullptr, n);
    c.in(s, nullptr, n / 32);
    if (h->act)
        c.in(act, nullptr, 4 * n);
    mxk_swiglu_args d = *h;
    d.g1 = g1.as<uint16_t>();
    d.q = q.as<uint8_t>();
    d.scale = s.as<uint8_t>();
    d.act = h->act ? act.as<float>() : nullptr;
    c.timed(ms, [&] { return mxk_launch_swiglu_quant(&d, nullptr); });
    c.out(h->q, q, n);
    c.out(h->scale, s, n / 32);
    if (h->act)
        c.out(h->act, act, 4 * n);
    return c.st;
}

mxk_status gpu_sum(const mxk_sum_args *h, double *ms)
{
    call c("moe_sum");
    if ((c.st = mxk_check_sum(h, errbuf, sizeof errbuf)))
        return c.st;
    size_t nout = (size_t)h->tokens * h->n, nin = nout * h->topk;
    dbuf x, out;
    c.in(x, h->x, nin * 2);
    c.in(out, nullptr, nout * 2);
    mxk_sum_args d = *h;
    d.x = x.as<uint16_t>();
    d.out = out.as<uint16_t>();
    c.timed(ms, [&] { return mxk_launch_moe_sum(&d, nullptr); });
    c.out(h->out, out, nout * 2);
    return c.st;
}

const char *gpu_last_error(void) { return errbuf; }

__global__ void mxk_probe_kernel(int *flag) { *flag = 0x6d786b; }

char why[1024];
int no_device;
char devname[512];
char arch[64];
mxk_ops ops;

/* Finds a device and proves that this library's code runs on it. */
const mxk_ops *open_gpu(void)
{
    int count = 0;
    hipError_t err = hipGetDeviceCount(&count);
    no_device = 1;
    if (err != hipSuccess) {
        snprintf(why, sizeof why, "no usable GPU: %s",
                 hipGetErrorString(err));
        return nullptr;
    }
    if (count < 1) {
        snprintf(why, sizeof why, "no GPU device");
        return nullptr;
    }
    no_device = 0;
    int dev = 0;
    hipDeviceProp_t prop;
    if ((err = hipGetDevice(&dev)) != hipSuccess ||
        (err = hipGetDeviceProperties(&prop, dev)) != hipSuccess) {
        snprintf(why, sizeof why, "cannot query the GPU: %s",
                 hipGetErrorString(err));
        return nullptr;
    }
#if defined(MXK_AMD)
    snprintf(devname, sizeof devname, "%s (%s)", prop.name, prop.gcnArchName);
#else
    snprintf(devname, sizeof devname, "%s (sm_%d%d)", prop.name, prop.major,
             prop.minor);
#endif
    int *dflag = nullptr, flag = 0;
    if ((err = hipMalloc((void **)&dflag, sizeof flag)) != hipSuccess) {
        snprintf(why, sizeof why, "%s: hipMalloc: %s", devname,
                 hipGetErrorString(err));
        return nullptr;
    }
    hipLaunchKernelGGL(mxk_probe_kernel, dim3(1), dim3(1), 0, 0, dflag);
    err = hipGetLastError();
    if (err == hipSuccess)
        err = hipMemcpy(&flag, dflag, sizeof flag, hipMemcpyDeviceToHost);
    (void)hipFree(dflag);
    if (err != hipSuccess || flag != 0x6d786b) {
        snprintf(why, sizeof why,
                 "%s: this library's kernels do not run on it (%s); rebuild "
                 "for its architecture",
                 devname, err != hipSuccess ? hipGetErrorString(err)
                                            : "probe kernel wrote nothing");
        return nullptr;
    }
    const char *m8 = "fp32-seq", *m16 = "fp32-seq";
#if defined(MXK_AMD)
    snprintf(arch, sizeof arch, "%.*s", (int)strcspn(prop.gcnArchName, ":"),
             prop.gcnArchName);
    if (mxk_gpu_has_mfma()) {
        m8 = "block:cdna3-fp8";
        m16 = "block:cdna3-bf16";
    }
#else
    snprintf(arch, sizeof arch, "sm_%d%d", prop.major, prop.minor);
    if (mxk_gpu_has_mma()) {
        m8 = "block:hopper-fp8-mma";
        m16 = "block:hopper-bf16";
    }
#endif
    ops = mxk_ops{MXK_ABI_VERSION, "gpu", devname,
                  !mxk_gpu_has_mfma() && !mxk_gpu_has_mma(),
                  gpu_quant, gpu_fnuz, gpu_align, gpu_mxfp8, gpu_bf16,
                  gpu_swiglu, gpu_sum, gpu_last_error, arch, m8, m16};
    return &ops;
}

} /* namespace */

extern "C" const mxk_ops *mxk_gpu_ops(void)
{
    static const mxk_ops *once = open_gpu();
    return once;
}

extern "C" const char *mxk_gpu_unavailable(int *nodev)
{
    int none = mxk_gpu_ops() == nullptr;
    if (nodev)
        *nodev = none && no_device;
    return none ? why : "";
}
