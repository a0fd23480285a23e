/* mxk.h -- the kernels of the production MXFP8 / BF16 MoE path (facts §2-§5),
 * behind one C API with two backends.
 *
 * Kernels (one HIP source each under kernels/, one C emulation each under
 * kernels/cpu/):
 *   mx_quant          BF16 -> MXFP8 (E4M3FNUZ or E4M3FN) + E8M0, floor rule
 *   fn_to_fnuz        checkpoint E4M3FN -> E4M3FNUZ, scale + 1, scale packing
 *   moe_align         vLLM moe_align_block_size: rows sorted by expert, padded
 *   mxfp8_group_gemm  W8A8 grouped GEMM, per-32 scale product, BF16 out
 *   bf16_group_gemm   BF16 grouped GEMM, FP32 accumulation, BF16 out
 *   swiglu_quant      clamp-SwiGLU in FP32 fused with MXFP8 quantization
 *   moe_sum           top-k combine: BF16 sequential, or FP32 accumulating
 *
 * Backends: mxk_cpu_ops() (C emulation, always built) and mxk_gpu_ops() (the
 * HIP kernels, in the shared library libmxk_gpu.so, loaded with dlopen; see
 * src/pipeline/backend_gpu.h).  Both take HOST pointers and behave identically: on
 * NVIDIA (and on AMD with MXK_PATH_PORTABLE) every output is bit-identical
 * between them.  The exact arithmetic order of each kernel is in
 * docs/kernels.md; the scalar arithmetic they share is mxk_numerics.h.
 *
 * Plain C types only: BF16 values are raw uint16_t bits, FP8 and E8M0 values
 * raw uint8_t codes, indices int32_t.  Every NaN a kernel computes and
 * stores is the positive quiet NaN (BF16 0x7FC0, FP32 0x7FC00000, FP8 0x7F
 * in E4M3FN): the sign of a NaN made by an invalid operation differs
 * between CPUs and GPUs.  Dimensions are int (> 0 unless said);
 * tensors are dense, row-major, in the shapes given in brackets.
 *
 * Planted bugs: every argument struct has an `int mutant` field; 0 runs the
 * correct kernel, an mxk_mutant id runs that bug where the kernel has it and
 * is ignored by kernels it does not concern (mxk_mutant_table() says which).
 */
#ifndef MXK_H
#define MXK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes layout; the GPU library reports the
 * version it was built with (mxk_ops.abi) and the loader refuses others. */
#define MXK_ABI_VERSION 2

typedef enum {
    MXK_OK = 0,
    MXK_EINVAL,  /* bad argument: NULL pointer, shape, format id, routing
                    value out of range (the message names it)            */
    MXK_ERANGE,  /* fn_to_fnuz only: a scale byte >= 254 (index returned)  */
    MXK_ENOMEM,  /* host or device allocation failed                      */
    MXK_EDEVICE  /* a GPU runtime call or launch failed                   */
} mxk_status;

/* FP8 value formats (both operands of a GEMM use the same one). */
typedef enum { MXK_FP8_E4M3FNUZ = 0, MXK_FP8_E4M3FN = 1 } mxk_fp8;
/* E8M0 decode: production (byte << 7 as a BF16 exponent: 0 -> +0.0,
 * 255 -> +inf) or the OCP spec (2^(s-127), 255 -> NaN). */
typedef enum { MXK_E8M0_PRODUCTION = 0, MXK_E8M0_SPEC = 1 } mxk_e8m0;
/* GEMM code path: AUTO is the matrix cores where the library was built for
 * gfx94x and the portable path elsewhere; PORTABLE forces the portable
 * path (bit-identical to the CPU backend) on every device. */
typedef enum { MXK_PATH_AUTO = 0, MXK_PATH_PORTABLE = 1 } mxk_path;

/* ---- mx_quant --------------------------------------------------------- */

/* Per row, per block of 32 consecutive values (facts §3, production rule):
 *   amax = max |x_i| in FP32 (NaN ignored), then max(amax, 1e-30f);
 *   s    = min(biased FP32 exponent of amax, 254)  (= floor(log2 amax)+127,
 *          read from the bits, never from log2f);
 *   q_i  = fp8_rne(x_i * 2^(127-s)) with no clamp: magnitudes rounding past
 *          the largest finite value, inf and NaN give the NaN code.
 * Zero results: E4M3FN keeps the sign (0x80), E4M3FNUZ gives 0x00. */
typedef struct {
    const uint16_t *x;  /* [rows, k] BF16                                  */
    uint8_t *q;         /* [rows, k] FP8 codes of fmt                      */
    uint8_t *scale;     /* [rows, k/32] E8M0                               */
    int rows, k;        /* k % 32 == 0                                     */
    int fmt;            /* mxk_fp8                                         */
    int mutant;
} mxk_quant_args;

/* ---- fn_to_fnuz ------------------------------------------------------- */

/* Checkpoint normalization (facts §2).  First every scale byte is checked:
 * one >= 254 makes the call return MXK_ERANGE with *bad_index = the smallest
 * flat index into `scales` holding such a byte, writing no output.
 * Otherwise value byte 0x80 -> 0x00 (others unchanged), scale byte + 1, and
 * the scales are written packed [experts, k/32, n] (pack = 1) or in the
 * input layout [experts, n, k/32] (pack = 0); *bad_index = -1. */
typedef struct {
    const uint8_t *vals;    /* [experts, n, k] E4M3FN                      */
    const uint8_t *scales;  /* [experts, n, k/32] E8M0                     */
    uint8_t *out_vals;      /* [experts, n, k] E4M3FNUZ (may equal vals)   */
    uint8_t *out_scales;    /* see pack; must not overlap scales           */
    int experts, n, k;      /* k % 32 == 0                                 */
    int pack;
    int64_t *bad_index;     /* out, host memory in every API               */
    int mutant;
} mxk_fnuz_args;

/* ---- moe_align -------------------------------------------------------- */

/* vLLM moe_align_block_size.  The routed rows are the flat indices
 * id = token * topk + j.  For each expert e in increasing order, its rows in
 * increasing id order (stable), then padding with the pad id tokens*topk up
 * to a multiple of block_m (experts without rows take no space).  Block b
 * (rows [b*block_m, (b+1)*block_m)) belongs to one expert; expert_ids[b] is
 * that expert, mapped through expert_map when given (EP: global -> local id,
 * or -1 for an expert of another rank: the GEMMs write zero rows for it).
 * *num_post_pad is the padded row count.  Every entry of sorted_ids and
 * expert_ids past the used ones is written: the pad id and -1.  The GPU
 * kernel runs in one thread block and takes at most 2048 experts. */
typedef struct {
    const int32_t *topk_ids;   /* [tokens, topk] in [0, experts)           */
    int tokens, topk, experts, block_m;
    const int32_t *expert_map; /* NULL or [experts], values in [-1, 2^31)  */
    int32_t *sorted_ids;       /* [mxk_align_max_rows(...)]                */
    int32_t *expert_ids;       /* [mxk_align_max_blocks(...)]              */
    int32_t *num_post_pad;     /* [1]                                      */
    int mutant;
} mxk_align_args;

/* Capacity of sorted_ids and expert_ids (vLLM's max_num_tokens_padded and
 * max_num_m_blocks). */
static inline int64_t mxk_align_max_rows(int tokens, int topk, int experts,
                                         int block_m)
{
    return (int64_t)tokens * topk + (int64_t)experts * (block_m - 1);
}
static inline int64_t mxk_align_max_blocks(int tokens, int topk, int experts,
                                           int block_m)
{
    return (mxk_align_max_rows(tokens, topk, experts, block_m) + block_m - 1) /
           block_m;
}

/* ---- the grouped GEMMs ------------------------------------------------ */

/* Routing shared by both GEMMs, as moe_align produced it.  Row position p
 * (0 <= p < num_post_pad) holds id = sorted_ids[p] and belongs to expert
 * expert_ids[p / block_m].  An id >= tokens*topk is padding: its loads are
 * masked (value 0, scale byte 0) and nothing is stored.  A valid id reads A
 * row id / topk (a_per_token = 1, GEMM1: A is [tokens, k]) or A row id
 * (a_per_token = 0, GEMM2: A is [tokens*topk, k]) and writes out row id
 * (out is [tokens*topk, n]); with expert -1 it writes zeros.  Rows of out
 * that no position names are left untouched. */
typedef struct {
    const int32_t *sorted_ids;  /* [num_post_pad] in [0, tokens*topk]      */
    const int32_t *expert_ids;  /* [num_post_pad / block_m] in [-1, experts) */
    int num_post_pad;           /* a multiple of block_m, >= 0             */
    int block_m;
    int tokens, topk;
    int a_per_token;
    const float *topk_weights;  /* NULL or [tokens*topk]: acc *= w[id] in
                                   FP32 before the BF16 rounding           */
} mxk_route;

/* MXFP8 grouped GEMM (facts §4).  Per output element, portable order:
 *   acc = 0;  per K group g of 32:  p = 0; p = fmaf(a_k, b_k, p) for the 32
 *   k in order;  sc = dec(sa[row, g]) * dec(sb[e, g, n]);  acc = acc + p*sc
 *   (a multiply, then an add: never fused);  optional acc = acc * w[id];
 *   out = bf16_rne(acc).
 * On gfx94x (MXK_PATH_AUTO) the 32-wide p comes from the FP8 MFMA
 * instruction instead; everything after p is the same. */
typedef struct {
    mxk_route r;
    const uint8_t *a;        /* [a rows, k] FP8 (8-byte aligned on device)  */
    const uint8_t *a_scale;  /* [a rows, k/32] E8M0                        */
    const uint8_t *b;        /* [experts, n, k] FP8                        */
    const uint8_t *b_scale;  /* [experts, n, k/32], or packed
                                [experts, k/32, n] when b_scale_packed     */
    int b_scale_packed;
    int experts, n, k;       /* k % 32 == 0                                */
    int fmt;                 /* mxk_fp8, both operands                     */
    int e8m0;                /* mxk_e8m0                                   */
    int path;                /* mxk_path                                   */
    uint16_t *out;           /* [tokens*topk, n] BF16                      */
    int mutant;
} mxk_mxfp8_gemm_args;

/* BF16 grouped GEMM: acc = 0; acc = fmaf(a_k, b_k, acc) for k = 0..k-1 in
 * order; optional acc = acc * w[id]; out = bf16_rne(acc).  On gfx94x
 * (MXK_PATH_AUTO) the BF16 MFMA instruction accumulates instead. */
typedef struct {
    mxk_route r;
    const uint16_t *a;       /* [a rows, k] BF16                           */
    const uint16_t *b;       /* [experts, n, k] BF16                       */
    int experts, n, k;       /* any k >= 1                                 */
    int path;
    uint16_t *out;           /* [tokens*topk, n] BF16                      */
    int mutant;
} mxk_bf16_gemm_args;

/* ---- swiglu_quant ----------------------------------------------------- */

/* Per row, per j < inter (facts §5), in FP32 on the BF16 inputs:
 *   gate = min(g1[j], 7); up = max(min(g1[inter + j], 7), -7);
 *   act  = (gate * mxk_sigmoidf(1.702f * gate)) * (up + 1)
 * then act is quantized per block of 32 by the mx_quant rule.
 * mxk_sigmoidf is the deterministic routine of mxk_numerics.h. */
typedef struct {
    const uint16_t *g1;  /* [rows, 2*inter] BF16: gate columns, up columns */
    uint8_t *q;          /* [rows, inter] FP8 codes of fmt                 */
    uint8_t *scale;      /* [rows, inter/32] E8M0                          */
    float *act;          /* NULL or [rows, inter]: act before quantizing   */
    int rows, inter;     /* inter % 32 == 0                                */
    int fmt;
    int mutant;
} mxk_swiglu_args;

/* ---- moe_sum ---------------------------------------------------------- */

/* out[t, i] from x[t, 0..topk-1, i].  fp32_acc = 0 (production): s = x0,
 * then s = bf16_rne(float(s) + float(x_j)) for j = 1.. in order.
 * fp32_acc = 1: a = float(x0); a = a + float(x_j) in order; bf16_rne(a). */
typedef struct {
    const uint16_t *x;   /* [tokens, topk, n] BF16                         */
    uint16_t *out;       /* [tokens, n] BF16                               */
    int tokens, topk, n;
    int fp32_acc;
    int mutant;
} mxk_sum_args;

/* ---- backends ----------------------------------------------------------- */

/* One backend.  Every function takes host pointers, runs synchronously, and
 * on success stores the kernel time in milliseconds into *ms (when ms is
 * not NULL: wall time of the emulation on the CPU, event time of the
 * kernels alone on the GPU, without copies).  On failure it writes no
 * output (fn_to_fnuz: only *bad_index) and last_error() says why in one
 * line naming the kernel and the argument. */
typedef struct mxk_ops {
    int abi;              /* MXK_ABI_VERSION of the code that made it        */
    const char *name;     /* "cpu" or "gpu"                                  */
    const char *device;   /* what runs it: "C emulation" or the GPU's name   */
    int gemm_exact;       /* 1 when MXK_PATH_AUTO GEMMs follow the portable
                             order (always on the CPU, and on GPUs without a
                             matrix-unit kernel); 0 when they use AMD matrix
                             cores or NVIDIA Hopper tensor cores              */
    mxk_status (*mx_quant)(const mxk_quant_args *a, double *ms);
    mxk_status (*fn_to_fnuz)(const mxk_fnuz_args *a, double *ms);
    mxk_status (*moe_align)(const mxk_align_args *a, double *ms);
    mxk_status (*mxfp8_group_gemm)(const mxk_mxfp8_gemm_args *a, double *ms);
    mxk_status (*bf16_group_gemm)(const mxk_bf16_gemm_args *a, double *ms);
    mxk_status (*swiglu_quant)(const mxk_swiglu_args *a, double *ms);
    mxk_status (*moe_sum)(const mxk_sum_args *a, double *ms);
    const char *(*last_error)(void); /* this thread's last failure message */
    /* What the MXK_PATH_AUTO GEMMs compute, for the judge (ABI 2): arch
     * names the device architecture ("cpu", "sm_90", "gfx942", ...);
     * mxfp8_model and bf16_model name the accumulation model (mxref/accum.h
     * syntax) that describes the MXFP8 and BF16 GEMMs bit for bit where
     * one is known: "fp32-seq" for the portable path, "block:hopper-fp8-mma"
     * and "block:hopper-bf16" for the sm_90 tensor-core kernels,
     * "block:cdna3-fp8" and "block:cdna3-bf16" for the gfx94x MFMA kernels
     * (the published CDNA3 model, not measured on an MI300X). */
    const char *arch;
    const char *mxfp8_model;
    const char *bf16_model;
} mxk_ops;

/* The C emulation (libmxk.a); never NULL. */
const mxk_ops *mxk_cpu_ops(void);

/* Parallel loops for the C emulation (optional; default: none, every loop
 * runs in the calling thread).  pf(n, fn, ctx) must call fn(ctx, i) once
 * for each i < n and return when all have returned, on any threads
 * (mxref/pool.h's mx_parallel_for is one).  The GEMMs split their output
 * columns into tasks and fn_to_fnuz its experts; each output is computed
 * in the documented order whatever the split, so the results are the same
 * bits with or without pf.  Set it once, before the first call; NULL goes
 * back to none. */
typedef void (*mxk_task_fn)(void *ctx, size_t i);
typedef void (*mxk_parallel_fn)(size_t n, mxk_task_fn fn, void *ctx);
void mxk_cpu_set_parallel(mxk_parallel_fn pf);

/* Exported by libmxk_gpu.so (resolve them with dlsym; src/pipeline/backend_gpu.h
 * does it): the GPU backend, or NULL when there is none, in which case
 * mxk_gpu_unavailable() says why in one line and sets *no_device (when not
 * NULL) to 1 if the machine simply has no usable GPU or driver, 0 if it has
 * one that this library cannot use (built for another architecture). */
const mxk_ops *mxk_gpu_ops(void);
const char *mxk_gpu_unavailable(int *no_device);
#define MXK_GPU_OPS_SYMBOL "mxk_gpu_ops"
#define MXK_GPU_WHY_SYMBOL "mxk_gpu_unavailable"

/* Device-pointer launchers, exported by libmxk_gpu.so for callers that own
 * device memory: the same argument structs with every tensor pointer a
 * device pointer (except fn_to_fnuz's bad_index, and the route's counts,
 * which are host values); `stream` is a hipStream_t / cudaStream_t or NULL.
 * They validate the scalar arguments only (device data is not read back,
 * except fn_to_fnuz's refusal scan, which synchronizes), then enqueue. */
mxk_status mxk_launch_mx_quant(const mxk_quant_args *a, void *stream);
mxk_status mxk_launch_fn_to_fnuz(const mxk_fnuz_args *a, void *stream);
mxk_status mxk_launch_moe_align(const mxk_align_args *a, void *stream);
mxk_status mxk_launch_mxfp8_group_gemm(const mxk_mxfp8_gemm_args *a,
                                       void *stream);
mxk_status mxk_launch_bf16_group_gemm(const mxk_bf16_gemm_args *a,
                                      void *stream);
mxk_status mxk_launch_swiglu_quant(const mxk_swiglu_args *a, void *stream);
mxk_status mxk_launch_moe_sum(const mxk_sum_args *a, void *stream);

/* ---- kernels and planted bugs --------------------------------------- */

/* Kernel bits, for mxk_mutant_info.kernels. */
enum {
    MXK_K_MX_QUANT = 1u << 0,
    MXK_K_FN_TO_FNUZ = 1u << 1,
    MXK_K_MOE_ALIGN = 1u << 2,
    MXK_K_MXFP8_GEMM = 1u << 3,
    MXK_K_BF16_GEMM = 1u << 4,
    MXK_K_SWIGLU_QUANT = 1u << 5,
    MXK_K_MOE_SUM = 1u << 6
};
#define MXK_NKERNELS 7
/* "mx_quant", ... for one kernel bit; NULL for anything else. */
const char *mxk_kernel_name(unsigned kernel_bit);

/* Planted bugs (issue 5 item 5).  The numbers are stable. */
typedef enum {
    MXK_MUT_NONE = 0,
    MXK_MUT_SCALE_NEXT_GROUP = 1, /* GEMM: scales of group g+1 on group g  */
    MXK_MUT_SCALE_PER_64 = 2,     /* GEMM: one scale product per 64 of K   */
    MXK_MUT_SCALE_PER_128 = 3,    /* GEMM: one scale product per 128 of K  */
    MXK_MUT_SCALE_STRIDES = 4,    /* GEMM: B scales read with the other
                                     layout's strides                      */
    MXK_MUT_FNUZ_KEEP_80 = 5,     /* fn_to_fnuz: 0x80 not rewritten        */
    MXK_MUT_FNUZ_NO_INC = 6,      /* fn_to_fnuz: scale byte not incremented */
    MXK_MUT_E8M0_SWAP = 7,        /* GEMM: spec and production E8M0 decode
                                     swapped                               */
    MXK_MUT_BF16_TRUNC = 8,       /* GEMMs: BF16 output truncated, not RNE */
    MXK_MUT_TOPK_TWICE = 9,       /* GEMMs: top-k weight applied twice     */
    MXK_MUT_TOPK_NONE = 10,       /* GEMMs: top-k weight not applied       */
    MXK_MUT_SUM_FP32 = 11,        /* moe_sum: BF16 variant sums in FP32    */
    MXK_MUT_SUM_BF16 = 12,        /* moe_sum: FP32 variant sums in BF16    */
    MXK_MUT_NO_GATE_CLAMP = 13,   /* swiglu: gate not clamped at 7         */
    MXK_MUT_NO_UP_CLAMP = 14,     /* swiglu: up not clamped to [-7, 7]     */
    MXK_MUT_QUANT_CEIL = 15,      /* quant: s from ceil(log2 amax)         */
    MXK_MUT_EXPERT_SHIFT = 16,    /* moe_align: one expert's rows shifted  */
    /* one-ulp / edge bugs (issue 10 item 7) */
    MXK_MUT_FTZ_PARTIAL = 17,     /* MXFP8 GEMM: subnormal p*sc flushed to 0 */
    MXK_MUT_FTZ_OUTPUT = 18,      /* GEMMs: subnormal accumulator flushed
                                     to 0 before the BF16 store            */
    MXK_MUT_DROP_LAST_K = 19,     /* MXFP8 GEMM: the last K element skipped */
    MXK_MUT_BF16_ACC = 20,        /* MXFP8 GEMM: accumulator rounded to BF16
                                     after every group                     */
    MXK_MUT_TOPK_AFTER_BF16 = 21, /* GEMMs: top-k weight applied to the
                                     BF16-rounded output                   */
    MXK_MUT_E8M0_BIAS_128 = 22,   /* MXFP8 GEMM: E8M0 read as 2^(s-128)    */
    MXK_MUT_AMAX_31 = 23,         /* quant: amax over 31 of the 32 values  */
    MXK_MUT_FP8_SUBNORMAL_FLUSH = 24, /* MXFP8 GEMM: FP8 subnormal operand
                                         codes read as 0                   */
    MXK_MUT_COUNT
} mxk_mutant;

typedef struct {
    int id;              /* mxk_mutant                                     */
    const char *name;    /* stable, lower-case with dashes                 */
    unsigned kernels;    /* MXK_K_* bits of the kernels it changes         */
    const char *what;    /* one line: the bug, as a kernel author makes it */
} mxk_mutant_info;

/* The planted bugs, ids 1 .. MXK_MUT_COUNT-1 in order; *count gets their
 * number.  By id or name: NULL when unknown (id 0 is not in the table). */
const mxk_mutant_info *mxk_mutant_table(int *count);
const mxk_mutant_info *mxk_mutant_by_id(int id);
const mxk_mutant_info *mxk_mutant_by_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* MXK_H */
