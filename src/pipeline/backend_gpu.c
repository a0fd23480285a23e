/* backend_gpu.c -- dlopen()s libmxk_gpu.so and asks it for its mxk_ops
 * (see backend_gpu.h for the search order). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gsl/gsl_rng.h>
#include "backend_gpu.h"
#include "mxref/gemm.h"

#ifndef MXK_BUILD_GPU_LIB
#define MXK_BUILD_GPU_LIB ""
#endif
#ifndef MXK_PKGLIBDIR
#define MXK_PKGLIBDIR ""
#endif
#define MXK_GPU_LIB_NAME "libmxk_gpu.so"

static const mxk_ops *loaded;
static void *loaded_handle, *cand_handle;
static char loaded_path[4096];
static char last_why[1024];
static mxv_gpu_state last_state = MXV_GPU_NO_LIBRARY;
static int tried;

/* Loads one candidate; NULL with the reason in why and last_state. */
static const mxk_ops *try_lib(const char *path, char *why, size_t len)
{
    last_state = MXV_GPU_BROKEN;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, len, "cannot load the GPU library %s: %s", path,
                 e ? e : "unknown error");
        return NULL;
    }
    const mxk_ops *(*get)(void);
    const char *(*whyfn)(int *);
    *(void **)&get = dlsym(h, MXK_GPU_OPS_SYMBOL);
    *(void **)&whyfn = dlsym(h, MXK_GPU_WHY_SYMBOL);
    if (!get || !whyfn) {
        snprintf(why, len, "%s is not an mxverify GPU library (no %s)", path,
                 MXK_GPU_OPS_SYMBOL);
        dlclose(h);
        return NULL;
    }
    cand_handle = h;
    const mxk_ops *ops = get();
    if (!ops) {
        /* the library stays loaded: unloading a GPU runtime is unsafe */
        int nodev = 0;
        const char *w = whyfn(&nodev);
        snprintf(why, len, "GPU library %s: %s", path, w);
        last_state = nodev ? MXV_GPU_NO_DEVICE : MXV_GPU_BROKEN;
        return NULL;
    }
    if (ops->abi != MXK_ABI_VERSION) {
        snprintf(why, len,
                 "GPU library %s has ABI version %d, this program %d: "
                 "rebuild or reinstall it",
                 path, ops->abi, MXK_ABI_VERSION);
        return NULL;
    }
    last_state = MXV_GPU_OK;
    return ops;
}

const mxk_ops *mxv_gpu_backend(char *why, size_t whylen, mxv_gpu_state *state)
{
    if (tried) {
        if (!loaded && why && whylen)
            snprintf(why, whylen, "%s", last_why);
        if (state)
            *state = last_state;
        return loaded;
    }
    tried = 1;
    const char *env = getenv("MXVERIFY_GPU_LIB");
    const char *cands[2];
    int nc = 0, found = 0;
    if (*MXK_BUILD_GPU_LIB)
        cands[nc++] = MXK_BUILD_GPU_LIB;
    if (*MXK_PKGLIBDIR)
        cands[nc++] = MXK_PKGLIBDIR "/" MXK_GPU_LIB_NAME;
    if (env && *env) { /* the user's choice, and only it */
        cands[0] = env;
        nc = 1;
        found = 1;
    }
    for (int i = 0; i < nc; i++) { /* the first library found decides */
        if (!found && access(cands[i], F_OK) != 0)
            continue;
        found = 1;
        loaded = try_lib(cands[i], last_why, sizeof last_why);
        if (loaded)
            loaded_handle = cand_handle;
        if (loaded)
            snprintf(loaded_path, sizeof loaded_path, "%s", cands[i]);
        break;
    }
    if (!found) {
        last_state = MXV_GPU_NO_LIBRARY;
        snprintf(last_why, sizeof last_why,
                 "no GPU library: mxverify was built without a GPU toolchain "
                 "(configure --with-cuda or --with-hip); looked for %s%s%s",
                 nc > 0 ? cands[0] : "nothing", nc > 1 ? " and " : "",
                 nc > 1 ? cands[1] : "");
    }
    if (!loaded && why && whylen)
        snprintf(why, whylen, "%s", last_why);
    if (state)
        *state = last_state;
    return loaded;
}

const char *mxv_gpu_backend_path(void) { return loaded ? loaded_path : NULL; }

void *mxv_gpu_slice_fn(void)
{
    if (!loaded_handle)
        return NULL;
    return dlsym(loaded_handle, MXK_GPU_SLICE_SYMBOL);
}

void *mxv_gpu_sum_fn(void)
{
    return loaded_handle ? dlsym(loaded_handle, MXK_GPU_SUM_SYMBOL) : NULL;
}

/* The library's block walk as the walk provider (NULL where it has none:
 * walks on the CPU). */
static void set_walk_provider(void)
{
    mx_walk_provider wf;
    *(void **)&wf = mxv_gpu_walk_fn();
    mx_gemm_set_walk_provider(wf, NULL);
}

int mxv_gpu_reference_enable(char *why, size_t whylen)
{
    char w[1024];
    if (!mxv_gpu_backend(w, sizeof w, NULL)) {
        snprintf(why, whylen, "--reference gpu: %s", w);
        return -1;
    }
    mx_slice_provider fn;
    *(void **)&fn = mxv_gpu_slice_fn();
    if (!fn) {
        snprintf(why, whylen,
                 "--reference gpu: the GPU library %s has no %s (rebuild it)",
                 loaded_path, MXK_GPU_SLICE_SYMBOL);
        return -1;
    }
    mx_gemm_set_slice_provider(fn, NULL);
    mx_sum_provider sf;
    *(void **)&sf = dlsym(loaded_handle, MXK_GPU_SUM_SYMBOL);
    mx_gemm_set_sum_provider(sf, NULL); /* NULL: slices only */
    set_walk_provider();
    return 0;
}

void mxv_gpu_reference_disable(void)
{
    mx_gemm_set_slice_provider(NULL, NULL);
    mx_gemm_set_sum_provider(NULL, NULL);
    mx_gemm_set_walk_provider(NULL, NULL);
}

int mxv_gpu_reference_enable_sum(void)
{
    mx_sum_provider sf;
    *(void **)&sf = mxv_gpu_sum_fn();
    if (!sf)
        return -1;
    mx_gemm_set_slice_provider(NULL, NULL);
    mx_gemm_set_sum_provider(sf, NULL);
    set_walk_provider();
    return 0;
}

void *mxv_gpu_walk_fn(void)
{
    return loaded_handle ? dlsym(loaded_handle, MXK_GPU_WALK_SYMBOL) : NULL;
}

static void gpuref_fill(gsl_rng *r, uint8_t *codes, uint8_t *scales, size_t rows, size_t K)
{
    for (size_t i = 0; i < rows * K; i++) {
        uint8_t v = (uint8_t)gsl_rng_uniform_int(r, 256);
        codes[i] = (v & 0x7f) == 0x7f ? 0x3f : v; /* E4M3FN's NaNs: 0x3f */
    }
    for (size_t i = 0; i < rows * (K / 32); i++)
        scales[i] = (uint8_t)(127 - 8 + gsl_rng_uniform_int(r, 16));
}

void mxv_gpuref_ops_free(mxv_gpuref_ops *o)
{
    free(o->ca);
    free(o->cb);
    free(o->sa);
    free(o->sb);
    memset(o, 0, sizeof *o);
}

int mxv_gpuref_ops_make(mxv_gpuref_ops *o, size_t M, size_t N, size_t K)
{
    const mx_format *f = mx_format_get(MX_E4M3FN);
    memset(o, 0, sizeof *o);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    o->ca = malloc(M * K + 1);
    o->cb = malloc(N * K + 1);
    o->sa = malloc(M * (K / 32) + 1);
    o->sb = malloc(N * (K / 32) + 1);
    if (!r || !o->ca || !o->cb || !o->sa || !o->sb) {
        gsl_rng_free(r);
        mxv_gpuref_ops_free(o);
        return -1;
    }
    gsl_rng_set(r, MXV_GPUREF_SEED);
    gpuref_fill(r, o->ca, o->sa, M, K);
    gpuref_fill(r, o->cb, o->sb, N, K);
    gsl_rng_free(r);
    o->A = (mx_operand){f, o->ca, M, K, K, o->sa, K / 32, 1, NULL};
    o->B = (mx_operand){f, o->cb, N, K, K, o->sb, K / 32, 1, NULL};
    o->spec.decode = MX_E8M0_SPEC;
    o->spec.model = mx_accum_default();
    return 0;
}
