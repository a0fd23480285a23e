/* mxref/moe.h -- the MiniMax-M3 MoE layer reference (facts §5).
 *
 * One layer, T tokens of hidden size H in BF16:
 *   router   logits = x Wr^T (FP32 weights), s = sigmoid(logits); the top-k
 *            experts by s + bias; weights = the chosen s renormalized.
 *   expert   g1 = x W13[e]^T (2I outputs: gate = first I, up = last I),
 *            act = min(gate,7) * sigmoid(1.702 min(gate,7)) * (clamp(up,-7,7)+1),
 *            y = act W2[e]^T, times the token's top-k weight.
 *   combine  out = bf16( 2.0 * moe_sum_k(y_k) + shared(x) ), moe_sum in BF16
 *            arithmetic, sequentially over k; shared is a dense MLP of the same
 *            form (BF16 weights, intermediate I_shared).
 *
 * Policies (the dataflow production runs):
 *   w8a8-mxfp8  x -> MXFP8 E4M3FNUZ (production rule) -> GEMM1 on FNUZ weights
 *               (FN checkpoint normalized: scale+1) with the production E8M0
 *               decode -> g1 BF16 -> SwiGLU in FP32 fused with MXFP8 quant of
 *               act -> GEMM2 (top-k weight on the FP32 accumulator) -> y BF16
 *               -> BF16 sequential moe_sum.
 *   bf16        weights dequantized to BF16 at load (exact for E4M3), BF16
 *               activations, FP32 accumulation, BF16 outputs, act stored BF16.
 *   w8a16       BF16 activations x weights dequantized to BF16 in registers:
 *               numerically the bf16 policy (only the kernel differs).
 *   hybrid      bf16 when T <= 8 or T >= hybrid_high (1024; a later revision
 *               used 832), when EP > 1, or when max_model_len > 4096 and
 *               layer % 5 == 0; w8a8-mxfp8 otherwise.
 *
 * Each stage yields exact values, the model's output and a bound for every
 * element (GEMMs), or the model's bytes plus the set of bytes a correct
 * FP32 implementation may produce (the act quantization, whose input comes
 * from a transcendental function).  Every stage can take the previous
 * stage's output as given (captured from a kernel) instead of the
 * reference's own, so a kernel is judged on its own step.
 */
#ifndef MXREF_MOE_H
#define MXREF_MOE_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MX_POLICY_BF16 = 0,
    MX_POLICY_W8A8,
    MX_POLICY_W8A16,
    MX_POLICY_HYBRID
} mx_moe_policy;

typedef struct {
    const char *name;     /* "m3-full", "m3-tp8", "m3-ep8" or "custom"     */
    size_t H;             /* hidden size                                   */
    size_t inter;         /* expert intermediate size I on this rank       */
    size_t inter_shared;  /* shared expert intermediate size on this rank  */
    size_t E;             /* routed experts in the model                   */
    size_t E_local;       /* experts held by this rank                     */
    size_t expert0;       /* id of the first local expert                  */
    int topk;
    int tp, ep;           /* tensor / expert parallel sizes                */
    float routed_scaling; /* 2.0                                           */
    float clamp;          /* 7.0                                           */
    float alpha;          /* FP32 1.702                                    */
    int layer;            /* layer index, for the hybrid policy            */
    size_t max_model_len;
    size_t hybrid_high;   /* 1024 (832 in a later revision)                */
} mx_moe_shape;

/* A named shape: "m3-full", "m3-tp8", "m3-ep8"; or "custom:H,I,E[,topk]"
 * (inter_shared = inter, E_local = E).  0 on success. */
int mx_moe_shape_by_name(const char *name, mx_moe_shape *out);
const char *mx_moe_policy_name(mx_moe_policy p);
int mx_moe_policy_by_name(const char *name, mx_moe_policy *out);
/* The policy production runs for T tokens (resolves hybrid). */
mx_moe_policy mx_moe_dispatch(const mx_moe_shape *s, mx_moe_policy p, size_t T);

/* Weights.  Routed experts as in the checkpoint: E4M3FN bytes and E8M0
 * scales in [N][K/32] layout, one pointer per local expert (NULL for an
 * expert that was not materialized: routing to it is an error). */
typedef struct {
    const float *router;        /* [E][H] FP32                              */
    const float *bias;          /* [E] FP32 e_score_correction_bias         */
    const uint8_t *const *w13;  /* [E_local] -> [2I][H]                      */
    const uint8_t *const *w13_s;/* [E_local] -> [2I][H/32]                   */
    const uint8_t *const *w2;   /* [E_local] -> [H][I]                       */
    const uint8_t *const *w2_s; /* [E_local] -> [H][I/32]                    */
    const uint8_t *ws13, *ws13_s; /* shared expert [2Is][H], [2Is][H/32]     */
    const uint8_t *ws2, *ws2_s;   /* shared expert [H][Is], [H][Is/32]       */
} mx_moe_weights;

/* Router outputs for T tokens, in rank order (descending score). */
typedef struct {
    size_t T;
    int topk;
    int32_t *ids;          /* [T][topk] expert ids                          */
    float *weights;        /* [T][topk] FP32 renormalized (model)           */
    double *weights_exact; /* [T][topk]                                     */
    unsigned char *ambiguous; /* [T]: the top-k set could differ in a       */
                              /* correct FP32 router (near or exact tie)    */
    size_t n_ambiguous;
} mx_moe_routing;

/* A GEMM stage: exact, model output (BF16) and bound per element. */
typedef struct {
    size_t rows, cols;
    double *exact;
    uint16_t *model;
    double *bound;
} mx_stage_gemm;

/* An MXFP8 quantization stage: the model's bytes plus, per element, the
 * other byte a correct FP32 producer may write (== the model byte when the
 * value is unambiguous), and per block the alternative scale byte with the
 * element bytes under it. */
typedef struct {
    size_t rows, cols;
    uint8_t *q, *s;        /* model bytes [rows][cols], scales [rows][cols/32] */
    uint8_t *q_alt;        /* [rows][cols] other admissible byte            */
    uint8_t *s_alt;        /* [rows][cols/32] other admissible scale        */
    uint8_t *q_under_alt;  /* [rows][cols] bytes under s_alt (2 per elem:   */
    uint8_t *q_under_alt2; /*  the two admissible ones)                     */
    size_t n_ambiguous;    /* elements or blocks with an alternative        */
} mx_stage_quant;

/* A BF16 activation stage (bf16 policies): model bytes and alternatives. */
typedef struct {
    size_t rows, cols;
    double *exact;
    uint16_t *model, *alt;
    size_t n_ambiguous;
} mx_stage_act16;

/* Captured intermediates a kernel produced; any may be NULL (the reference
 * then uses its own model output). Row-major, flat routed-row order
 * r = t * topk + j for routed stages. */
typedef struct {
    const int32_t *topk_ids;    /* [T][topk]                                  */
    const float *topk_weights;  /* [T][topk]                                  */
    const uint8_t *xq, *xq_s;   /* [T][H], [T][H/32]                           */
    const uint16_t *g1;         /* [T*topk][2I] BF16                          */
    const uint8_t *actq, *actq_s;/* [T*topk][I], [T*topk][I/32] (w8a8)        */
    const uint16_t *act16;      /* [T*topk][I] (bf16 policies)                */
    const uint16_t *y;          /* [T*topk][H]                                */
    const uint16_t *routed;     /* [T][H] moe_sum output                      */
    const uint16_t *shared;     /* [T][H] shared expert output                */
} mx_moe_given;

typedef struct {
    mx_moe_policy policy;       /* resolved                                   */
    mx_accum_model model;       /* accumulation model of the GEMMs            */
    mx_moe_routing route;
    mx_stage_quant xq;          /* w8a8 only                                  */
    mx_stage_gemm g1;           /* [T*topk][2I]; rows of non-local experts 0  */
    mx_stage_quant actq;        /* w8a8 only                                  */
    mx_stage_act16 act16;       /* bf16 policies                              */
    mx_stage_gemm y;            /* [T*topk][H]                                */
    mx_stage_gemm routed;       /* moe_sum [T][H]: exact sum of the given y,  */
                                /* model = BF16 sequential (deterministic)    */
    mx_stage_gemm sh_g1;        /* shared expert [T][2Is]                     */
    mx_stage_act16 sh_act;      /* [T][Is] BF16                               */
    mx_stage_gemm shared;       /* [T][H]                                     */
    mx_stage_gemm out;          /* [T][H] final: model = bf16(2 r + s)        */
    double *out_e2e;            /* [T][H] end-to-end exact: exact stages fed  */
                                /* with the reference's own model outputs     */
    mx_gemm_stats stats;        /* summed over the GEMMs                      */
    double seconds[6];          /* wall time of the stages, MX_MOE_T_*        */
} mx_moe_result;

/* The stages mx_moe_result.seconds times: routing and the activation
 * quantization; GEMM1 of every expert; SwiGLU and its quantization; GEMM2;
 * moe_sum and the final combine; and the whole shared expert, which runs
 * alongside the first four (it depends on x alone; with one thread it runs
 * first, before routing). */
enum { MX_MOE_T_ROUTE = 0, MX_MOE_T_GEMM1, MX_MOE_T_ACT, MX_MOE_T_GEMM2,
       MX_MOE_T_COMBINE, MX_MOE_T_SHARED, MX_MOE_NT };

typedef struct {
    mx_moe_shape shape;
    mx_moe_policy policy;
    mx_accum_model model;       /* default fp32-group                         */
    /* Model of the GEMMs whose operands are unscaled (BF16): a device's
     * matrix unit may sum BF16 products differently from FP8 ones.  Unset
     * (name "") means `model` for every GEMM. */
    mx_accum_model model_bf16;
    double sigmoid_ulps;        /* FP32 sigmoid accuracy assumed (4)          */
} mx_moe_config;

mx_moe_config mx_moe_config_default(const mx_moe_shape *s, mx_moe_policy p);

/* Runs the layer reference on x [T][H] BF16.  given may be NULL.  On
 * failure returns MX_EINVAL (bad config or a routed expert that was not
 * materialized: *bad_expert names it), MX_ERANGE (non-finite input) or
 * MX_ENOMEM, and out holds nothing to free. */
mx_status mx_moe_run(const mx_moe_config *c, const mx_moe_weights *w,
                     const uint16_t *x, size_t T, const mx_moe_given *given,
                     mx_moe_result *out, long *bad_expert);
void mx_moe_result_free(mx_moe_result *r);

/* Stage functions, usable on their own. */
mx_status mx_moe_route(const mx_moe_shape *s, const float *router,
                       const float *bias, const uint16_t *x, size_t T,
                       mx_moe_routing *out);
void mx_moe_routing_free(mx_moe_routing *r);

/* SwiGLU of facts §5 on BF16 g1 [rows][2I]: exact act (binary64 within
 * 2^-50 relative of the real value) and a bound on |act32 - act| for an
 * FP32 evaluation whose sigmoid is accurate to sigmoid_ulps. */
void mx_swiglu_exact(const mx_moe_shape *s, const uint16_t *g1, size_t rows,
                     size_t inter, double sigmoid_ulps, double *act, double *bound);
/* MX quantization (production rule, E4M3FNUZ) of values known only within
 * [act - bound, act + bound]: the model bytes (from RN32(act)) and the
 * alternatives (see mx_stage_quant). */
mx_status mx_quant_interval(const double *act, const double *bound, size_t rows,
                            size_t cols, mx_stage_quant *out);
void mx_stage_quant_free(mx_stage_quant *q);

/* vLLM's moe_align_block_size as a reference: the routed rows are the flat
 * ids t * topk + j; for each expert in increasing order its rows in
 * increasing id order, then the pad id tokens * topk up to a multiple of
 * block_m (an expert without rows takes no space).  expert_ids[b] is the
 * expert of block b, mapped through expert_map when not NULL (EP: global ->
 * local, -1 for another rank's expert).  All cap_rows entries of sorted_ids
 * and cap_blocks of expert_ids are written (pad id and -1 past the used
 * ones).  MX_EINVAL for an id outside [0, experts) or too small a
 * capacity. */
mx_status mx_moe_align(const int32_t *topk_ids, size_t tokens, int topk,
                       size_t experts, int block_m, const int32_t *expert_map,
                       int32_t *sorted_ids, size_t cap_rows, int32_t *expert_ids,
                       size_t cap_blocks, int32_t *num_post_pad);
void mx_stage_gemm_free(mx_stage_gemm *g);

#ifdef __cplusplus
}
#endif
#endif
