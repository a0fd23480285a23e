/* probe_vectors.h -- replaying recorded inner products through a block-FMA
 * preset (`mxverify probe --vectors FILE --model block:PRESET`).
 *
 * A vector file holds one dot product d = c + sum_{i<k} a_i*b_i per line,
 * all numbers in hex (k in decimal):
 *
 *     k  a[0] .. a[k-1]  b[0] .. b[k-1]  c  d  [category]
 *
 * a and b are element codes of the operand format (2 hex digits for FP8,
 * 4 for BF16/FP16), c and d FP32 bits (8 hex digits); category is an
 * optional word saying how the case was built.  '#' starts a comment; blank
 * lines are skipped.  This is the format of golden/cdna3-mi300mc/ (vectors
 * from the published MI300 model) and the route for vectors recorded on a
 * device: whoever records MI300X MFMA outputs writes them in this format.
 */
#ifndef MXV_PROBE_VECTORS_H
#define MXV_PROBE_VECTORS_H

#include "mxref/blockfma.h"

/* Replays every file of files[0..nfiles) through model (a "block:PRESET"
 * name) with operand format fmt_name (NULL: read from the file's first
 * comment "... a,b NAME codes ...", else from its name, e.g. bf16.txt),
 * printing per file the number of vectors, the mismatch count, the count
 * per category and the first `show` mismatches.  Every file is read and
 * checked before anything is printed.  Returns an mxverify exit code: 0 no
 * mismatch, 1 some mismatch, 2 unknown model or format, 3 a malformed file
 * (one line naming file, line and field), 4 out of memory or I/O. */
int mxv_probe_vectors(char **files, int nfiles, const char *model,
                      const char *fmt_name, int show);

#endif
