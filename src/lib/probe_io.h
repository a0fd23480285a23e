/* probe_io.h -- the files of the matrix-unit probe (mxprobe/probe.h) and the
 * instruction variants of the NVIDIA GPU probe tools/probe/tc_probe.cu.
 * Shared by `mxverify probe` and the host tools of tools/probe/ (mkplan,
 * fit, mkgolden), so that each format has one writer and one reader.
 *
 *   plan file   (binary, "MXPL")  a probe plan's inputs, for tc_probe;
 *   result file (binary, "MXTD")  what tc_probe measured for one set of
 *                                 cases (a plan or a random set);
 *   probe file  (text, ".probe")  a plan's recorded results, one FP32 per
 *                                 line (the .probe files of golden/h100).
 * All binary fields are little-endian (tc_probe runs on x86-64 / aarch64
 * hosts; so do the readers).
 */
#ifndef MXV_PROBE_IO_H
#define MXV_PROBE_IO_H

#include <stddef.h>
#include <stdint.h>
#include "mxprobe/probe.h"

/* ---- tc_probe's instruction variants ---------------------------------- */

/* One instruction variant of tc_probe; its index in mxv_tc_variants is the
 * VARIANT argument of tc_probe and the variant field of its result files. */
typedef struct {
    const char *name; /* "wgmma_e4m3_e4m3": also the result file prefix   */
    const char *insn; /* the PTX instruction                              */
    int wgmma;        /* 1: wgmma.mma_async (warpgroup), 0: mma.sync      */
    mx_format_id fa, fb;
    int k;            /* products per instruction                         */
} mxv_tc_variant;

#define MXV_TC_NVARIANTS 10
extern const mxv_tc_variant mxv_tc_variants[MXV_TC_NVARIANTS];

/* ---- plan files --------------------------------------------------------- */

/* Plan file: "MXPL", u32 version, u32 fa id, u32 fb id, u32 k, u32 ncase,
 * u32 stride, u32 (bytes per a code | bytes per b code << 8), then i32
 * n[ncase], the a codes, the b codes (ncase*stride each, native width), u32
 * c[ncase].  Its name in tc_probe's PLANDIR: mxv_plan_file_name. */
void mxv_plan_file_name(const mx_probe_plan *p, char *buf, size_t len);

/* Writes p to path through a temporary file in the same directory renamed
 * into place (never a half-written plan).  0 on success, else -1 and a
 * one-line message naming the file in err. */
int mxv_plan_write(const char *path, const mx_probe_plan *p, char *err,
                   size_t errlen);

/* ---- result files (tc_probe's output) ------------------------------------ */

/* Result file: "MXTD", u32 version (1), u32 variant, u32 kind (0 random
 * cases, 1 a plan), u64 seed, u32 n (products per case; a plan's stride),
 * u32 ncase, u64 checksum of the inputs (mxv_mxtd_checksum), u32 d[ncase]. */
typedef struct {
    uint32_t version, variant, kind;
    uint64_t seed;
    uint32_t n, ncase;
    uint64_t checksum;
    uint32_t *d; /* ncase FP32 results */
} mxv_mxtd;

/* Reads a result file; checks the magic, the version, a known variant, and
 * that exactly ncase results follow.  0 on success, else -1 and a one-line
 * message naming the file in err (nothing to free then). */
int mxv_mxtd_read(const char *path, mxv_mxtd *out, char *err, size_t errlen);
void mxv_mxtd_free(mxv_mxtd *m);

/* FNV-1a (64-bit) of the inputs as tc_probe hashes them: the a codes, the b
 * codes (ncase*n each, as uint32) and the c bits (ncase). */
uint64_t mxv_mxtd_checksum(const uint32_t *a, const uint32_t *b, size_t nn,
                           const uint32_t *c, size_t ncase);
/* The same checksum of a plan's inputs (stride codes per case, zeros past
 * n[i] included, as tc_probe sees them). */
uint64_t mxv_plan_checksum(const mx_probe_plan *p);

/* ---- probe files (text) ------------------------------------------------- */

/* A probe file: '#' comment lines, then the keys "fa NAME", "fb NAME",
 * "k K", "plan VERSION", "ncase N" (each once, in any order, before any
 * result), then exactly N lines of 8 hex digits (the FP32 results in plan
 * order).  Line numbers of the keys are kept for error messages. */
typedef struct {
    const mx_format *fa, *fb;
    int k, plan;
    size_t ncase;
    uint32_t *d;
    long line_k, line_plan, line_ncase; /* where the keys were (1-based) */
} mxv_probe_file;

/* Strict reader: an unknown key, a repeated key, an unknown or unsupported
 * format (8- or 16-bit signed only), a result that is not 8 hex digits, a
 * count other than ncase... each gives -1 and "FILE:LINE: what" in err. */
int mxv_probe_file_read(const char *path, mxv_probe_file *out, char *err,
                        size_t errlen);
void mxv_probe_file_free(mxv_probe_file *f);

/* Writes a probe file (temporary file renamed into place).  comment: lines
 * to put first, each already starting with '#' and ending with '\n' (or
 * NULL).  0 on success, else -1 and a message in err. */
int mxv_probe_file_write(const char *path, const char *comment,
                         const mx_format *fa, const mx_format *fb, int k,
                         int plan, size_t ncase, const uint32_t *d, char *err,
                         size_t errlen);

#endif /* MXV_PROBE_IO_H */
