/* mutants.c -- the table of planted bugs (mxk_mutant) and kernel names.
 * The bugs themselves live in the kernels: in mxk_numerics.h where both
 * backends share the code, else once in each backend's kernel. */
#include <string.h>
#include "mxk.h"

static const mxk_mutant_info table[] = {
    {MXK_MUT_SCALE_NEXT_GROUP, "scale-next-group", MXK_K_MXFP8_GEMM,
     "the scales of K group g+1 multiply the partial dot of group g (the "
     "last group reads a masked scale byte 0)"},
    {MXK_MUT_SCALE_PER_64, "scale-per-64", MXK_K_MXFP8_GEMM,
     "the scale product is applied once per 64 of K, with the scales of the "
     "first group of each 64"},
    {MXK_MUT_SCALE_PER_128, "scale-per-128", MXK_K_MXFP8_GEMM,
     "the scale product is applied once per 128 of K, with the scales of the "
     "first group of each 128"},
    {MXK_MUT_SCALE_STRIDES, "scale-strides", MXK_K_MXFP8_GEMM,
     "the weight scales are read with the strides of the other layout "
     "(packed [E,K/32,N] read as [E,N,K/32], or the reverse)"},
    {MXK_MUT_FNUZ_KEEP_80, "fnuz-keep-0x80", MXK_K_FN_TO_FNUZ,
     "FN -> FNUZ leaves value byte 0x80 (-0 in FN) as is: it is NaN in FNUZ"},
    {MXK_MUT_FNUZ_NO_INC, "fnuz-no-scale-inc", MXK_K_FN_TO_FNUZ,
     "FN -> FNUZ does not add 1 to the scale byte: every weight is halved"},
    {MXK_MUT_E8M0_SWAP, "e8m0-decode-swap", MXK_K_MXFP8_GEMM,
     "the GEMM decodes E8M0 by the spec where production decodes by BF16 "
     "exponent (and the reverse): scale bytes 0 and 255 change meaning"},
    {MXK_MUT_BF16_TRUNC, "bf16-truncate", MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM,
     "the GEMM output is truncated to BF16 instead of rounded to nearest "
     "even"},
    {MXK_MUT_TOPK_TWICE, "topk-weight-twice", MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM,
     "the top-k weight multiplies the FP32 accumulator twice"},
    {MXK_MUT_TOPK_NONE, "topk-weight-missing",
     MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM,
     "the top-k weight is never applied"},
    {MXK_MUT_SUM_FP32, "moe-sum-fp32", MXK_K_MOE_SUM,
     "moe_sum accumulates in FP32 where production adds in BF16 step by step"},
    {MXK_MUT_SUM_BF16, "moe-sum-bf16", MXK_K_MOE_SUM,
     "the FP32-accumulating moe_sum adds in BF16 step by step instead"},
    {MXK_MUT_NO_GATE_CLAMP, "swiglu-no-gate-clamp", MXK_K_SWIGLU_QUANT,
     "SwiGLU does not clamp the gate at 7"},
    {MXK_MUT_NO_UP_CLAMP, "swiglu-no-up-clamp", MXK_K_SWIGLU_QUANT,
     "SwiGLU does not clamp up to [-7, 7]"},
    {MXK_MUT_QUANT_CEIL, "quant-scale-ceil", MXK_K_MX_QUANT | MXK_K_SWIGLU_QUANT,
     "the activation scale comes from ceil(log2 amax) instead of floor"},
    {MXK_MUT_EXPERT_SHIFT, "expert-rows-shifted", MXK_K_MOE_ALIGN,
     "moe_align writes one expert's rows one slot early: its first row is "
     "multiplied by the previous expert's weights"},
    {MXK_MUT_FTZ_PARTIAL, "ftz-partial", MXK_K_MXFP8_GEMM,
     "the scaled partial p * sc is flushed to zero when it is an FP32 "
     "subnormal (a denormals-are-zero build)"},
    {MXK_MUT_FTZ_OUTPUT, "ftz-output", MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM,
     "the FP32 accumulator is flushed to zero when it is subnormal, before "
     "the BF16 store"},
    {MXK_MUT_DROP_LAST_K, "drop-last-k", MXK_K_MXFP8_GEMM,
     "the K loop stops one element early: the last product of the last "
     "group is never added"},
    {MXK_MUT_BF16_ACC, "bf16-acc-between-groups", MXK_K_MXFP8_GEMM,
     "the running accumulator is stored as BF16 between K groups (RNE "
     "after every acc + p * sc)"},
    {MXK_MUT_TOPK_AFTER_BF16, "topk-after-bf16",
     MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM,
     "the top-k weight multiplies the BF16-rounded output instead of the "
     "FP32 accumulator (two roundings)"},
    {MXK_MUT_E8M0_BIAS_128, "e8m0-bias-128", MXK_K_MXFP8_GEMM,
     "the GEMM decodes E8M0 as 2^(s-128) (bias off by one): every scale "
     "is halved"},
    {MXK_MUT_AMAX_31, "amax-31-of-32", MXK_K_MX_QUANT | MXK_K_SWIGLU_QUANT,
     "the block amax is taken over the first 31 of the 32 values"},
    {MXK_MUT_FP8_SUBNORMAL_FLUSH, "fp8-subnormal-flush", MXK_K_MXFP8_GEMM,
     "the GEMM reads FP8 subnormal codes (exponent field 0) as zero"},
};
#define NTABLE (int)(sizeof table / sizeof table[0])

_Static_assert(NTABLE == MXK_MUT_COUNT - 1, "one row per planted bug");

const mxk_mutant_info *mxk_mutant_table(int *count)
{
    if (count)
        *count = NTABLE;
    return table;
}

const mxk_mutant_info *mxk_mutant_by_id(int id)
{
    return id >= 1 && id < MXK_MUT_COUNT ? &table[id - 1] : NULL;
}

const mxk_mutant_info *mxk_mutant_by_name(const char *name)
{
    for (int i = 0; name && i < NTABLE; i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

const char *mxk_kernel_name(unsigned bit)
{
    static const char *const names[MXK_NKERNELS] = {
        "mx_quant",        "fn_to_fnuz",   "moe_align", "mxfp8_group_gemm",
        "bf16_group_gemm", "swiglu_quant", "moe_sum"};
    for (int i = 0; i < MXK_NKERNELS; i++)
        if (bit == 1u << i)
            return names[i];
    return NULL;
}
