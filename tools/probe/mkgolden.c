/* mkgolden.c -- write golden/ vector files from tc_probe results.
 *
 * Usage: mkgolden RESDIR OUTDIR
 * For each probed variant, RESDIR/<variant>_rand1.mxtd and _rand4.mxtd give
 * OUTDIR/<variant>.vec: a sample of the measured inner products, one case
 * per line (TestFloat style: inputs then result, hex), and
 * RESDIR/<variant>_plan.mxtd gives OUTDIR/<variant>.probe: the unit's result
 * for every case of the probe plan, one per line, in plan order.  The
 * sample takes the first cases of each casegen mode (the modes are
 * interleaved at random, so this is a stratified random sample).
 *
 * .vec format: '#' lines are comments (provenance); "key value" lines give
 * fa, fb (format names), k (instruction K), preset (the mxref preset that
 * must reproduce every line); every other line is
 *     c a b d
 * c, d: FP32 bits (8 hex digits); a, b: the n codes of each operand in k
 * order, fixed width (2 hex digits for 8-bit formats, 4 for 16-bit),
 * concatenated.  n is a multiple of k (n/k instructions chained).
 * .probe format: the same comments and keys (fa, fb, k, plan = plan
 * version, ncase), then ncase lines of 8 hex digits.
 */
#include "out.h"
#include "mxtd.h"

static const struct {
    const char *var, *preset, *insn, *sass;
    int per_mode, chain;
} OUT[] = {
    {"wgmma_e4m3_e4m3", "hopper-fp8",
     "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3",
     "QGMMA.64x8x32.F32.E4M3.E4M3", 250, 100},
    {"wgmma_e5m2_e5m2", "hopper-fp8",
     "wgmma.mma_async.sync.aligned.m64n8k32.f32.e5m2.e5m2",
     "QGMMA.64x8x32.F32.E5M2.E5M2", 250, 100},
    {"wgmma_e4m3_e5m2", "hopper-fp8",
     "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e5m2",
     "QGMMA.64x8x32.F32.E4M3.E5M2", 100, 50},
    {"wgmma_bf16_bf16", "hopper-bf16",
     "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16",
     "HGMMA.64x8x16.F32.BF16", 250, 100},
    {"wgmma_fp16_fp16", "hopper-bf16",
     "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16",
     "HGMMA.64x8x16.F32", 100, 50},
    {"mma_e4m3_e4m3", "hopper-fp8-mma",
     "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32",
     "2x F2FP.F16.E4M3.UNPACK_B + HMMA.16816.F32, FADD", 100, 50},
    {"mma_e5m2_e5m2", "hopper-fp8-mma",
     "mma.sync.aligned.m16n8k32.row.col.f32.e5m2.e5m2.f32",
     "2x F2FP.F16.E5M2.UNPACK_B + HMMA.16816.F32, FADD", 100, 50},
    {"mma_e4m3_e5m2", "hopper-fp8-mma",
     "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e5m2.f32",
     "2x F2FP.F16 UNPACK_B + HMMA.16816.F32, FADD", 60, 30},
    {"mma_bf16_bf16", "hopper-bf16",
     "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
     "HMMA.16816.F32.BF16", 100, 50},
    {"mma_fp16_fp16", "hopper-bf16",
     "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", "HMMA.16816.F32", 60, 30},
};

static const char *PROBED[] = {"wgmma_e4m3_e4m3", "wgmma_e5m2_e5m2",
                               "wgmma_bf16_bf16", "mma_e4m3_e4m3"};

static void header(FILE *f, const char *var, const char *insn, const char *sass,
                   const char *what)
{
    fprintf(f, "# mxverify tensor-core vectors measured on real hardware\n"
               "# gpu: NVIDIA H100 80GB HBM3 (sm_90, SXM), driver 580.159.04, "
               "CUDA 13.0 (nvcc V13.0.88)\n"
               "# date: 2026-11-25\n"
               "# instruction: %s\n#   (SASS: %s)\n"
               "# probe: tools/probe/tc_probe.cu (%s); %s\n",
            insn, sass, var, what);
}

static int fmt_digits(mx_format_id id) { return mx_format_get(id)->bits / 4; }

static int write_vec(const char *res, const char *outdir, size_t o)
{
    char path[4096];
    set_t s1, s4;
    snprintf(path, sizeof path, "%s/%s_rand1.mxtd", res, OUT[o].var);
    if (!load(path, &s1))
        return 1;
    snprintf(path, sizeof path, "%s/%s_rand4.mxtd", res, OUT[o].var);
    if (!load(path, &s4))
        return 1;
    snprintf(path, sizeof path, "%s/%s.vec", outdir, OUT[o].var);
    char err[600];
    mxv_out *out = mxv_out_open(path, err, sizeof err); /* never half-written */
    if (!out) {
        fprintf(stderr, "mkgolden: %s\n", err);
        return 1;
    }
    FILE *f = mxv_out_file(out);
    char what[512];
    snprintf(what, sizeof what,
             "cases from tools/probe/casegen.h, seeds %llu (%u cases of n=%u) "
             "and %llu (%u of n=%u); here the first %d of each mode and the "
             "first %d chained cases",
             (unsigned long long)s1.seed, s1.ncase, s1.n,
             (unsigned long long)s4.seed, s4.ncase, s4.n, OUT[o].per_mode,
             OUT[o].chain);
    header(f, OUT[o].var, OUT[o].insn, OUT[o].sass, what);
    fprintf(f, "# line: c a b d (FP32 c and d; a, b: n codes each, k order)\n");
    int v = s1.var;
    fprintf(f, "fa %s\nfb %s\nk %d\npreset %s\n", mx_format_get(VAR[v].fa)->name,
            mx_format_get(VAR[v].fb)->name, VAR[v].k, OUT[o].preset);
    int wa = fmt_digits(VAR[v].fa), wb = fmt_digits(VAR[v].fb);
    int taken[CG_NMODES] = {0};
    long lines = 0;
    for (int pass = 0; pass < 2; pass++) {
        set_t *s = pass ? &s4 : &s1;
        int taken_chain = 0;
        for (uint32_t q = 0; q < s->ncase; q++) {
            if (pass == 0) {
                if (taken[s->mode[q]] >= OUT[o].per_mode)
                    continue;
                taken[s->mode[q]]++;
            } else if (taken_chain++ >= OUT[o].chain)
                break;
            fprintf(f, "%08x ", s->c[q]);
            for (uint32_t i = 0; i < s->n; i++)
                fprintf(f, "%0*x", wa, s->a[(size_t)q * s->n + i]);
            fputc(' ', f);
            for (uint32_t i = 0; i < s->n; i++)
                fprintf(f, "%0*x", wb, s->b[(size_t)q * s->n + i]);
            fprintf(f, " %08x\n", s->d[q]);
            lines++;
        }
    }
    if (mxv_out_commit(out, err, sizeof err) != 0) {
        fprintf(stderr, "mkgolden: %s\n", err);
        return 1;
    }
    printf("%s: %ld lines\n", path, lines);
    return 0;
}

static int write_probe(const char *res, const char *outdir, const char *var)
{
    size_t o = 0;
    while (strcmp(OUT[o].var, var))
        o++;
    char path[4096];
    set_t s;
    snprintf(path, sizeof path, "%s/%s_plan.mxtd", res, var);
    if (!load(path, &s))
        return 1;
    snprintf(path, sizeof path, "%s/%s.probe", outdir, var);
    char *hdr = NULL, err[600];
    size_t hlen = 0;
    FILE *hf = open_memstream(&hdr, &hlen);
    if (!hf)
        return 1;
    header(hf, var, OUT[o].insn, OUT[o].sass,
           "the unit's results for every case of the probe plan "
           "(mx_probe_plan_make(fa, fb, k)), in plan order");
    fclose(hf);
    int bad = mxv_probe_file_write(path, hdr, mx_format_get(VAR[s.var].fa),
                                   mx_format_get(VAR[s.var].fb), VAR[s.var].k,
                                   s.plan->version, s.ncase, s.d, err, sizeof err);
    free(hdr);
    if (bad) {
        fprintf(stderr, "mkgolden: %s\n", err);
        return 1;
    }
    printf("%s: %u results\n", path, s.ncase);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mkgolden RESDIR OUTDIR\n");
        return 2;
    }
    int bad = 0;
    for (size_t o = 0; o < sizeof OUT / sizeof OUT[0]; o++)
        bad |= write_vec(argv[1], argv[2], o);
    for (size_t i = 0; i < sizeof PROBED / sizeof PROBED[0]; i++)
        bad |= write_probe(argv[1], argv[2], PROBED[i]);
    return bad;
}
