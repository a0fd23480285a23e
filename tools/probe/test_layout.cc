/* test_layout.cc -- CPU emulation of the probe's operand placement: builds
 * the register/shared-memory images for random cases, evaluates D = A*B + C
 * by reading the images back through the PTX layout tables, and checks that
 * every case's result lands on its diagonal element.  Catches packing and
 * indexing slips in tc_layout.h without a GPU (the layout tables themselves
 * are checked on the GPU by tc_probe's calibration). */
#include <math.h>
#include <stdio.h>
#include "casegen.h"
#include "tc_layout.h"

static double val(const cg_fmt *f, uint32_t c)
{
    int s = (c >> (f->bits - 1)) & 1;
    int ef = (int)((c >> f->mbits) & ((1u << f->ebits) - 1));
    uint32_t m = c & ((1u << f->mbits) - 1);
    double v = ef ? ldexp(1.0 + ldexp(m, -f->mbits), ef - f->bias)
                  : ldexp(m, 1 - f->bias - f->mbits);
    return s ? -v : v;
}

static int run(int wg, const cg_fmt *fa, const cg_fmt *fb, int K, int L)
{
    int es = fa->bits / 8;
    Cases cs;
    cs.n = K * L;
    size_t nc = 203;
    cs.a.resize(nc * cs.n);
    cs.b.resize(nc * cs.n);
    cs.c.resize(nc);
    for (size_t q = 0; q < nc; q++)
        cg_case(fa, fb, cs.n, 7, q, &cs.a[q * cs.n], &cs.b[q * cs.n], &cs.c[q]);
    Images im;
    build_images(wg, es, K, cs, &im);
    std::vector<uint32_t> D(im.C.size());
    for (size_t t = 0; t < im.ntiles; t++) {
        double acc[16][8];
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++) {
                int r, c;
                mapC(lane, i, &r, &c);
                float f;
                memcpy(&f, &im.C[(t * 32 + lane) * 4 + i], 4);
                acc[r][c] = f;
            }
        for (int l = 0; l < L; l++) {
            double A[16][64] = {{0}}, B[64][8] = {{0}};
            const uint32_t *Aw = &im.A[(t * L + l) * 128];
            const uint32_t *Bw = &im.B[(t * L + l) * 64];
            for (int lane = 0; lane < 32; lane++)
                for (int i = 0; i < 16 / es; i++) {
                    int r, c;
                    mapA(es, lane, i, &r, &c);
                    A[r][c] = val(fa, get_elem(&Aw[lane * 4], es, i));
                }
            for (int n = 0; n < 8; n++)
                for (int k = 0; k < K; k++) {
                    uint32_t code;
                    if (wg) {
                        int off = offB(es, k, n);
                        code = get_elem(Bw, 1, off);
                        if (es == 2)
                            code |= get_elem(Bw, 1, off + 1) << 8;
                    } else {
                        code = 0;
                        for (int lane = 0; lane < 32; lane++)
                            for (int i = 0; i < 8 / es; i++) {
                                int kk, nn;
                                mapB(es, lane, i, &kk, &nn);
                                if (kk == k && nn == n)
                                    code = get_elem(&Bw[lane * 2], es, i);
                            }
                    }
                    B[k][n] = val(fb, code);
                }
            for (int r = 0; r < 16; r++)
                for (int n = 0; n < 8; n++)
                    for (int k = 0; k < K; k++)
                        acc[r][n] += A[r][k] * B[k][n];
        }
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++) {
                int r, c;
                mapC(lane, i, &r, &c);
                float f = (float)acc[r][c];
                memcpy(&D[(t * 32 + lane) * 4 + i], &f, 4);
            }
    }
    std::vector<uint32_t> got = extract(nc, D);
    int bad = 0;
    for (size_t q = 0; q < nc; q++) {
        float cf;
        memcpy(&cf, &cs.c[q], 4);
        double s = cf;
        for (int i = 0; i < cs.n; i++)
            s += val(fa, cs.a[q * cs.n + i]) * val(fb, cs.b[q * cs.n + i]);
        float want = (float)s;
        uint32_t wb;
        memcpy(&wb, &want, 4);
        if (wb != got[q] && !(isnan(want)))
            bad++;
    }
    printf("wg=%d %s x %s K=%d L=%d: %d mismatches of %zu\n", wg, fa->name,
           fb->name, K, L, bad, nc);
    return bad;
}

int main(void)
{
    int bad = 0;
    for (int wg = 0; wg < 2; wg++)
        for (int L = 1; L <= 4; L *= 2) {
            bad += run(wg, &CG_E4M3, &CG_E4M3, 32, L);
            bad += run(wg, &CG_E4M3, &CG_E5M2, 32, L);
            bad += run(wg, &CG_BF16, &CG_BF16, 16, L);
        }
    return bad != 0;
}
