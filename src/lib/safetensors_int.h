/* safetensors_int.h -- what the safetensors reader and writer share and
 * nobody else needs: the dtype order of the Python library, UTF-8
 * validation, and the pieces of one-line messages. */
#ifndef MXV_SAFETENSORS_INT_H
#define MXV_SAFETENSORS_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "safetensors.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this host is not"
#endif

/* Position of d in the Rust library's Dtype enum (BOOL, F4, F6_E2M3,
 * F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16,
 * U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64 in safetensors 0.8).
 * The writer sorts tensors by this rank, largest first, then by name. */
int mxv_st__dtype_rank(mxv_st_dtype d);

/* 1 when the n bytes at s are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF); else 0 with the offset of the first
 * bad byte in *bad (bad may be NULL). */
int mxv_st__utf8_ok(const unsigned char *s, size_t n, size_t *bad);

/* Writes s as a double-quoted string into dst (capacity cap >= 16):
 * quotes and backslashes escaped, control bytes and bytes that are not
 * UTF-8 as \xHH, cut after about 80 bytes with "...". */
void mxv_st__quote(char *dst, size_t cap, const char *s);

/* "[4, 192]" (the Python list spelling) into dst; cut with "..." when it
 * does not fit. */
void mxv_st__fmt_shape(char *dst, size_t cap, int rank,
                       const uint64_t *shape);

/* Formats "<label>: tensor "<tensor>": <fmt...>" ("<label>: <fmt...>" when
 * tensor is NULL; "<fmt...>" when label is NULL too) into err, if err is
 * not NULL, keeping it to one line.  Returns st. */
mxv_st_status mxv_st__vfail(mxv_st_err *err, mxv_st_status st,
                            const char *label, const char *tensor,
                            const char *fmt, va_list ap);
mxv_st_status mxv_st__fail(mxv_st_err *err, mxv_st_status st,
                           const char *label, const char *tensor,
                           const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
