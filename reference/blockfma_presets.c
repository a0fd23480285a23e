/* blockfma_presets.c -- the named parameter sets of the block-FMA model.
 *
 * Each row says where it comes from.  "measured" rows were fitted to and
 * replayed against real hardware outputs (golden/ holds the vectors,
 * tests/check_blockfma.c replays them); the others reproduce a published
 * model and were not measured here.  docs/blockfma.md has the long form.
 */
#include <string.h>
#include "mxref/blockfma.h"

static const mx_blockfma_params presets[] = {
    /* AMD CDNA3 (MI300X) FP8 MFMA: 16 products per block; even- and
     * odd-indexed products aligned separately to 24 fraction bits (1 extra
     * bit) with truncation, combined with round-down; c added late (CDNA3
     * Algorithm 1: when c is the larger, the product sum is rounded down to
     * 31 bits below c's exponent, c added, and the sum rounded once; c
     * dropped when 25 binades below the products); one RNE into FP32;
     * products >= 2^128 are infinite; zero results are +0.  Reproduces
     * the published model's vectors bit for bit
     * (golden/cdna3-mi300mc/, tests/probe_vectors.test). */
    {
        .name = "cdna3-fp8",
        .source = "published model (Khattak & Mikaitis, CDNA3 MATLAB model "
                  "and paper, Algorithm 2), not measured here",
        .measured = 0,
        .k = 16, .block = 16,
        .frac_bits = 24, .align_round = MX_ALIGN_TRUNC, .sticky = 0,
        .prod_norm = 0,
        .odd_even = 1, .group_round = MX_ALIGN_RD,
        .late_c = 1, .late_round = MX_ALIGN_RD, .late_sum_frac_bits = 31,
        .late_norm_frac_bits = MX_BFMA_EXACT, .late_c_cutoff = 25,
        .ftz_in = 0, .ftz_prod = 0, .ftz_out = 0, .prod_ovf_inf = 1,
        .out_prec = 64, .final_round = MX_RNE, .zero_pos = 1,
        .nan_code = 0xffc00000u,
    },
    /* AMD CDNA3 BF16 (and FP16) MFMA: 8 products per block, global
     * alignment to 24 fraction bits with truncation, late c as above, one
     * RNE, zero +0. */
    {
        .name = "cdna3-bf16",
        .source = "published model (Khattak & Mikaitis, CDNA3 MATLAB model "
                  "and paper, Algorithm 1), not measured here",
        .measured = 0,
        .k = 8, .block = 8,
        .frac_bits = 24, .align_round = MX_ALIGN_TRUNC, .sticky = 0,
        .prod_norm = 0,
        .odd_even = 0, .group_round = MX_ALIGN_RD,
        .late_c = 1, .late_round = MX_ALIGN_RD, .late_sum_frac_bits = 31,
        .late_norm_frac_bits = MX_BFMA_EXACT, .late_c_cutoff = 0,
        .ftz_in = 0, .ftz_prod = 0, .ftz_out = 0, .prod_ovf_inf = 1,
        .out_prec = 64, .final_round = MX_RNE, .zero_pos = 1,
        .nan_code = 0xffc00000u,
    },
    /* NVIDIA Hopper (H100) FP8 tensor cores as wgmma drives them (SASS
     * QGMMA; what Triton and CUTLASS emit for FP8 on sm_90a): all 32
     * products of an instruction and c aligned together to 13 bits below
     * the largest exponent (products unnormalised, E4M3/E5M2 subnormals at
     * their own emin), truncated, summed, the sum truncated to 14
     * significant bits (round toward zero); overflow gives inf, zero is +0,
     * NaN is 0x7fffffff. */
    {
        .name = "hopper-fp8",
        .source = "measured: H100 SXM (sm_90), wgmma.m64n8k32/m64n64k32 "
                  "e4m3/e5m2, 2026-11-25, 0 mismatches (docs/blockfma.md)",
        .measured = 1,
        .k = 32, .block = 32,
        .frac_bits = 13, .align_round = MX_ALIGN_TRUNC, .sticky = 0,
        .prod_norm = 0,
        .odd_even = 0, .group_round = MX_ALIGN_TRUNC,
        .late_c = 0, .late_round = MX_ALIGN_TRUNC, .late_sum_frac_bits = 0,
        .late_norm_frac_bits = 0, .late_c_cutoff = 0,
        .ftz_in = 0, .ftz_prod = 0, .ftz_out = 0, .prod_ovf_inf = 0,
        .out_prec = 14, .final_round = MX_RTZ, .ovf_inf = 1, .zero_pos = 1,
        .nan_code = 0x7fffffffu,
    },
    /* NVIDIA Hopper (H100) BF16 and FP16 tensor cores (wgmma HGMMA and
     * mma.sync HMMA alike): 16 products and c aligned to 25 bits below the
     * largest exponent (2 extra bits), truncated, round toward zero. */
    {
        .name = "hopper-bf16",
        .source = "measured: H100 SXM (sm_90), wgmma.m64n8k16 and "
                  "mma.sync.m16n8k16 bf16/f16, 2026-11-25, 0 mismatches",
        .measured = 1,
        .k = 16, .block = 16,
        .frac_bits = 25, .align_round = MX_ALIGN_TRUNC, .sticky = 0,
        .prod_norm = 0,
        .odd_even = 0, .group_round = MX_ALIGN_TRUNC,
        .late_c = 0, .late_round = MX_ALIGN_TRUNC, .late_sum_frac_bits = 0,
        .late_norm_frac_bits = 0, .late_c_cutoff = 0,
        .ftz_in = 0, .ftz_prod = 0, .ftz_out = 0, .prod_ovf_inf = 0,
        .out_prec = 64, .final_round = MX_RTZ, .ovf_inf = 1, .zero_pos = 1,
        .nan_code = 0x7fffffffu,
    },
    /* mma.sync.m16n8k32 FP8 on sm_90 as CUDA 13's ptxas compiles it: the
     * bytes are unpacked to FP16 (F2FP), two HMMA.16816 sum the products
     * of k%4 in {0,1} and then {2,3} from a zero accumulator, and one FADD
     * adds c.  A compiler's instruction sequence, so it may change with
     * the toolkit; QGMMA (hopper-fp8) is the FP8 tensor-core path. */
    {
        .name = "hopper-fp8-mma",
        .source = "measured: H100 SXM (sm_90), mma.sync.m16n8k32 e4m3/e5m2 "
                  "built by nvcc 13.0 (HMMA + FADD), 2026-11-25",
        .measured = 1,
        .k = 32, .block = 16, .deal = 2, .c_fadd = 1, .in_fmt = MX_FP16 + 1,
        .frac_bits = 25, .align_round = MX_ALIGN_TRUNC, .sticky = 0,
        .prod_norm = 0,
        .odd_even = 0, .group_round = MX_ALIGN_TRUNC,
        .late_c = 0, .late_round = MX_ALIGN_TRUNC, .late_sum_frac_bits = 0,
        .late_norm_frac_bits = 0, .late_c_cutoff = 0,
        .ftz_in = 0, .ftz_prod = 0, .ftz_out = 0, .prod_ovf_inf = 0,
        .out_prec = 64, .final_round = MX_RTZ, .ovf_inf = 1, .zero_pos = 1,
        .nan_code = 0x7fffffffu,
    },
    /* The ideal unit: the exact sum of all products and c, rounded once to
     * nearest even.  One block spans the whole dot. */
    {
        .name = "exact-rne",
        .source = "ideal: exact sum, one RNE (IEEE 754 fused dot product)",
        .measured = 0,
        .k = 1, .block = 0,
        .frac_bits = MX_BFMA_EXACT, .align_round = MX_ALIGN_TRUNC,
        .sticky = 0, .prod_norm = 0,
        .odd_even = 0, .group_round = MX_ALIGN_TRUNC,
        .late_c = 0, .late_round = MX_ALIGN_TRUNC, .late_sum_frac_bits = 0,
        .late_norm_frac_bits = 0, .late_c_cutoff = 0,
        .ftz_in = 0, .ftz_prod = 0, .ftz_out = 0, .prod_ovf_inf = 0,
        .out_prec = 64, .final_round = MX_RNE, .nan_code = 0x7fc00000u,
    },
};

#define NPRESETS (sizeof presets / sizeof presets[0])

const mx_blockfma_params *mx_blockfma_preset(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < NPRESETS; i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

const mx_blockfma_params *mx_blockfma_preset_at(size_t i)
{
    return i < NPRESETS ? &presets[i] : NULL;
}
