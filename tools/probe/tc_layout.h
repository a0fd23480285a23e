/* tc_layout.h -- where each operand element of a tensor-core instruction
 * lives, per the fragment tables of the PTX ISA, and the register images
 * the probe builds from inner-product cases.  Host-side C++ only, shared by
 * tc_probe.cu and the CPU emulation test (test_layout.cc).
 *
 * Per warp (lane = 0..31, g = lane / 4, t = lane % 4):
 *   mma m16n8k32, 8-bit:  A byte i of 16 -> row g + 8*((i>>2)&1),
 *                         col 4t + (i&3) + 16*(i>>3);
 *                         B byte i of 8  -> k 4t + (i&3) + 16*(i>>2), n g.
 *   mma m16n8k16, 16-bit: A half i of 8  -> row g + 8*((i>>1)&1),
 *                         col 2t + (i&1) + 8*(i>>2);
 *                         B half i of 4  -> k 2t + (i&1) + 8*(i>>1), n g.
 *   C/D float i of 4      -> row g + 8*(i>>1), col 2t + (i&1).
 * wgmma m64n8kK with A in registers: warp w holds rows 16w.. with the same
 * A and D layouts; B is a 8 x (K elements) K-major tile in shared memory,
 * no swizzle: core matrices of 8 rows x 16 bytes, the second K chunk 128
 * bytes after the first.
 * Elements pack little-endian in 32-bit registers (element 0 lowest).
 */
#ifndef MXV_TC_LAYOUT_H
#define MXV_TC_LAYOUT_H

#include <stdint.h>
#include <string.h>
#include <vector>

static void mapA(int es, int lane, int i, int *row, int *col)
{
    int g = lane >> 2, t = lane & 3;
    if (es == 1) {
        *row = g + 8 * ((i >> 2) & 1);
        *col = t * 4 + (i & 3) + 16 * (i >> 3);
    } else {
        *row = g + 8 * ((i >> 1) & 1);
        *col = t * 2 + (i & 1) + 8 * (i >> 2);
    }
}

static void mapB(int es, int lane, int i, int *k, int *n)
{
    int g = lane >> 2, t = lane & 3;
    if (es == 1)
        *k = t * 4 + (i & 3) + 16 * (i >> 2);
    else
        *k = t * 2 + (i & 1) + 8 * (i >> 1);
    *n = g;
}

static int offB(int es, int k, int n)
{
    int kb = k * es;
    return (kb / 16) * 128 + n * 16 + kb % 16;
}

static void mapC(int lane, int i, int *row, int *col)
{
    int g = lane >> 2, t = lane & 3;
    *row = g + 8 * (i >> 1);
    *col = t * 2 + (i & 1);
}

static void put_elem(uint32_t *words, int es, int i, uint32_t code)
{
    int sh = (i * es * 8) % 32, w = (i * es) / 4;
    uint32_t mask = (es == 1 ? 0xffu : 0xffffu) << sh;
    words[w] = (words[w] & ~mask) | ((code << sh) & mask);
}

static uint32_t get_elem(const uint32_t *words, int es, int i)
{
    int sh = (i * es * 8) % 32, w = (i * es) / 4;
    return (words[w] >> sh) & (es == 1 ? 0xffu : 0xffffu);
}

struct Cases {
    int n;                      /* products per case */
    std::vector<uint32_t> a, b; /* count * n codes   */
    std::vector<uint32_t> c;    /* FP32 bits         */
    size_t count() const { return c.size(); }
};

/* Per tile of 8 cases and instruction l of L: A 32 lanes x 4 words (warp 0),
 * B 64 words (32 lanes x 2 words, or the 256-byte shared-memory tile), C 32
 * lanes x 4 floats (as bits).  Case q sits at row = column = q % 8. */
struct Images {
    int L;
    size_t ntiles;
    std::vector<uint32_t> A, B, C;
};

static void build_images(int wg, int es, int K, const Cases &cs, Images *im)
{
    int L = cs.n / K;
    size_t nc = cs.count(), ntiles = (nc + 7) / 8;
    im->L = L;
    im->ntiles = ntiles;
    im->A.assign(ntiles * L * 128, 0);
    im->B.assign(ntiles * L * 64, 0);
    im->C.assign(ntiles * 128, 0);
    for (size_t q = 0; q < nc; q++) {
        size_t tile = q / 8;
        int m = (int)(q % 8);
        const uint32_t *ca = &cs.a[q * cs.n], *cb = &cs.b[q * cs.n];
        for (int l = 0; l < L; l++) {
            uint32_t *Aw = &im->A[(tile * L + l) * 128];
            for (int lane = 0; lane < 32; lane++)
                for (int i = 0; i < 16 / es; i++) {
                    int row, col;
                    mapA(es, lane, i, &row, &col);
                    if (row == m)
                        put_elem(&Aw[lane * 4], es, i, ca[l * K + col]);
                }
            uint32_t *Bw = &im->B[(tile * L + l) * 64];
            if (wg) {
                for (int k = 0; k < K; k++) {
                    int off = offB(es, k, m);
                    put_elem(Bw, 1, off, cb[l * K + k] & 0xff);
                    if (es == 2)
                        put_elem(Bw, 1, off + 1, (cb[l * K + k] >> 8) & 0xff);
                }
            } else {
                for (int lane = 0; lane < 32; lane++)
                    for (int i = 0; i < 8 / es; i++) {
                        int k, n;
                        mapB(es, lane, i, &k, &n);
                        if (n == m)
                            put_elem(&Bw[lane * 2], es, i, cb[l * K + k]);
                    }
            }
        }
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++) {
                int row, col;
                mapC(lane, i, &row, &col);
                if (row == m && col == m)
                    im->C[(tile * 32 + lane) * 4 + i] = cs.c[q];
            }
    }
}

/* The diagonal results out of D (32 lanes x 4 floats per tile, as bits). */
static std::vector<uint32_t> extract(size_t nc, const std::vector<uint32_t> &D)
{
    std::vector<uint32_t> out(nc);
    for (size_t q = 0; q < nc; q++) {
        size_t tile = q / 8;
        int m = (int)(q % 8);
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++) {
                int row, col;
                mapC(lane, i, &row, &col);
                if (row == m && col == m)
                    out[q] = D[(tile * 32 + lane) * 4 + i];
            }
    }
    return out;
}

#endif
