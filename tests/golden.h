/* golden.h -- strict readers for the hardware vector files of golden/h100/
 * (formats: tools/probe/mkgolden.c; the .probe files have theirs in
 * src/lib/probe_io.h).  Test infrastructure: every malformed
 * line is refused with "FILE:LINE: what" in err. */
#ifndef MXV_GOLDEN_H
#define MXV_GOLDEN_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/format.h"

#define GVEC_MAXN 256

typedef struct {
    const mx_format *fa, *fb;
    int k;
    char preset[64];
    size_t ncase;
    int *n;        /* products of case i                       */
    uint16_t *a;   /* ncase * GVEC_MAXN codes (uint16 for all)  */
    uint16_t *b;
    uint32_t *c, *d;
} gvec;

/* 0 on success; otherwise -1 and a one-line message in err. */
int gvec_load(const char *path, gvec *g, char *err, size_t errlen);
void gvec_free(gvec *g);
/* Case i's codes as the arrays mx_blockfma_dot takes (uint8 for 8-bit
 * formats); a8/b8 must hold GVEC_MAXN bytes. */
void gvec_operands(const gvec *g, size_t i, uint8_t *a8, uint8_t *b8,
                   const void **a, const void **b);
/* Reads tensor `name` of a .safetensors file into out: its dtype must be
 * `dtype` ("U8", "I16", "F32") and it must hold exactly nelem elements.
 * 0 on success, else -1 and a one-line message. */
int st_read(const char *path, const char *name, const char *dtype,
            size_t nelem, void *out, char *err, size_t errlen);
/* srcdir-relative path of a golden file ("h100/x.vec"). */
const char *golden_path(const char *name);

#endif
