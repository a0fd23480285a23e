/* safetensors.h -- read and write safetensors files without trusting them.
 *
 * The format (huggingface/safetensors): 8 bytes N, a little-endian uint64;
 * N bytes of UTF-8 JSON, the header; then the data section.  The header is
 * one object: each key names a tensor,
 *     "w": {"dtype": "BF16", "shape": [4, 192], "data_offsets": [0, 1536]}
 * with offsets counted from the start of the data section, plus an optional
 * "__metadata__" object of string -> string.  Element data is C-ordered and
 * little-endian.  The tensors must tile the data section exactly: sorted by
 * offset, each begins where the previous one ends, the first at 0 and the
 * last at the end of the file (the Python library refuses anything else, and
 * so does this reader).
 *
 * Reading (mxv_st_open) memory-maps the file read-only and validates the
 * whole header before returning; nothing in it is trusted.  docs/
 * safetensors.md lists every rule; in short: the length prefix fits the file
 * and a 100 MB limit, the header is valid UTF-8 JSON (no trailing bytes, no
 * raw control characters, no \u0000), every entry has exactly the fields
 * dtype, shape, data_offsets, the dtype is one of mxv_st_dtype, every
 * integer is a plain decimal literal below 2^53 (checked on the literal's
 * text: cJSON's valueint saturates and its valuedouble rounds), the rank is
 * at most MXV_ST_MAX_RANK, the byte size shape-product * dtype-size is
 * computed without overflow and equals end - begin, offsets lie inside the
 * data section, tensors neither overlap nor leave gaps, names are unique,
 * and metadata values are strings.
 *
 * Writing (mxv_st_writer_*) produces deterministic bytes: the same tensors
 * and metadata give the same file, whatever order they were added in, on
 * any machine.  Tensors are ordered as the Python library orders them (by
 * dtype, widest element first, then by name in byte order), so each tensor
 * is aligned to its element size and, for files with at most one metadata
 * key, mxverify's bytes equal those of safetensors.numpy.save_file.  The
 * file appears atomically (temporary file in the same directory, fsync,
 * rename) or not at all.
 *
 * Errors: every function that can fail returns an mxv_st_status and, when
 * err is not NULL, writes ONE line (no newline, no "mxverify: error:"
 * prefix) naming the file, the tensor and the field:
 *     case.safetensors: tensor "w13_scale": data_offsets [10, 99] do not
 *     match shape [4, 192] of dtype U8 (768 bytes)
 * Nothing here prints.  The CLI reports with
 *     return mxv_error(mxv_st_exit_code(st), "%s", err.msg);
 * Names in messages are quoted, with control bytes and invalid UTF-8 as
 * \xHH and long names cut, so a hostile header cannot break the one line.
 *
 * Host: little-endian only (checked at compile time).  Not for concurrent
 * use from several threads: cJSON keeps its last parse error in a global.
 */
#ifndef MXV_SAFETENSORS_H
#define MXV_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "mxref/format.h"

/* ---- dtypes ----------------------------------------------------------- */

/* The element types mxverify reads and writes.  The header spelling is the
 * one safetensors 0.8 and torch write (mxv_st_dtype_name).  F8_E4M3 is the
 * OCP E4M3FN format (torch.float8_e4m3fn), F8_E8M0 the unsigned MX scale
 * (torch.float8_e8m0fnu).  Other safetensors dtypes (BOOL, F4, F6_*, I16,
 * U16, U32, U64, C64) are refused by name. */
typedef enum {
    MXV_ST_F64 = 0,
    MXV_ST_F32,
    MXV_ST_F16,
    MXV_ST_BF16,
    MXV_ST_I64,
    MXV_ST_I32,
    MXV_ST_I8,
    MXV_ST_U8,
    MXV_ST_F8_E4M3,
    MXV_ST_F8_E4M3FNUZ,
    MXV_ST_F8_E5M2,
    MXV_ST_F8_E5M2FNUZ,
    MXV_ST_F8_E8M0,
    MXV_ST_DTYPE_COUNT
} mxv_st_dtype;

/* A set of dtypes, for mxv_st_require: MXV_ST_BIT(MXV_ST_BF16) |
 * MXV_ST_BIT(MXV_ST_F32).  MXV_ST_ANY_DTYPE (0) accepts every dtype. */
#define MXV_ST_BIT(d) (1u << (unsigned)(d))
#define MXV_ST_ANY_DTYPE 0u

/* The header spelling ("F8_E4M3"), or NULL when d is out of range. */
const char *mxv_st_dtype_name(mxv_st_dtype d);
/* Bytes per element (1, 2, 4 or 8), or 0 when d is out of range. */
size_t mxv_st_dtype_size(mxv_st_dtype d);
/* The dtype spelled exactly name (case-sensitive, as in headers).
 * Returns 0 and sets *out, or -1 when name is not one of ours. */
int mxv_st_dtype_by_name(const char *name, mxv_st_dtype *out);
/* The mxref format of the elements: F32, F16, BF16 and the five FP8 dtypes
 * have one.  Returns 0 and sets *out, or -1 (F64 and the integers). */
int mxv_st_dtype_to_format(mxv_st_dtype d, mx_format_id *out);
/* The dtype that stores codes of format f.  Returns 0 or -1. */
int mxv_st_dtype_from_format(mx_format_id f, mxv_st_dtype *out);

/* ---- status and errors ------------------------------------------------ */

typedef enum {
    MXV_ST_OK = 0,
    MXV_ST_EFORMAT,   /* the file is not a valid safetensors file         */
    MXV_ST_EMISMATCH, /* valid file, but a required tensor or metadata key
                         is missing or has another dtype / shape          */
    MXV_ST_EOPEN,     /* the input cannot be opened or is not a regular
                         file (missing, permission, directory)             */
    MXV_ST_EIO,       /* system failure: mmap, write, fsync, rename       */
    MXV_ST_ENOMEM,
    MXV_ST_EINVAL     /* caller error: a bad argument to the writer       */
} mxv_st_status;

#define MXV_ST_ERRLEN 1024
typedef struct {
    char msg[MXV_ST_ERRLEN]; /* one line, NUL-terminated; "" after success */
} mxv_st_err;

/* Short name of a status ("EFORMAT"). */
const char *mxv_st_status_name(mxv_st_status st);
/* The mxverify exit code for a status (src/lib/cli.h): MXV_EXIT_OK for OK,
 * MXV_EXIT_BADINPUT for EFORMAT, EMISMATCH and EOPEN, MXV_EXIT_INTERNAL
 * for EIO, ENOMEM and EINVAL. */
int mxv_st_exit_code(mxv_st_status st);

/* ---- reading ---------------------------------------------------------- */

/* Limits.  MXV_ST_MAX_HEADER is the Python library's; integers (shape
 * entries, offsets, byte sizes) must stay below 2^53 so that every JSON
 * reader, Python's included, reads them exactly. */
#define MXV_ST_MAX_RANK 16
#define MXV_ST_MAX_HEADER 100000000u
#define MXV_ST_MAX_INT 9007199254740991ull /* 2^53 - 1 */

typedef struct {
    const char *name;   /* UTF-8, no NUL inside, never NULL               */
    mxv_st_dtype dtype;
    int rank;           /* 0..MXV_ST_MAX_RANK; rank 0 holds one element   */
    uint64_t shape[MXV_ST_MAX_RANK]; /* shape[rank..] are 0               */
    uint64_t numel;     /* product of shape (1 for rank 0)                */
    uint64_t nbytes;    /* numel * mxv_st_dtype_size(dtype)               */
    uint64_t offset;    /* data_offsets[0], from the start of the data    */
    /* nbytes little-endian bytes, C order, read-only, valid until
     * mxv_st_close.  Aligned to the element size: a tensor the file stores
     * misaligned (possible only when another writer made it) is copied at
     * open.  Not NULL, but not to be read when nbytes is 0. */
    const void *data;
} mxv_st_tensor;

typedef struct mxv_st_file mxv_st_file;

/* Opens and validates path.  On success *out is the file (free it with
 * mxv_st_close) and MXV_ST_OK is returned.  Errors: MXV_ST_EOPEN (cannot
 * open, not a regular file), MXV_ST_EFORMAT (any rule broken; the message
 * names the first broken rule), MXV_ST_EIO (mmap failed), MXV_ST_ENOMEM.
 * The mapping is private and read-only; if another process truncates the
 * file while it is open, reading a tensor raises SIGBUS. */
mxv_st_status mxv_st_open(const char *path, mxv_st_file **out,
                          mxv_st_err *err);
/* The same on bytes already in memory (len bytes at buf, borrowed: they
 * must outlive the file object).  label stands for the file name in
 * messages. */
mxv_st_status mxv_st_open_buffer(const void *buf, size_t len,
                                 const char *label, mxv_st_file **out,
                                 mxv_st_err *err);
/* Unmaps and frees; f may be NULL.  Every pointer obtained from f dies. */
void mxv_st_close(mxv_st_file *f);

/* The path (or label) the file was opened with. */
const char *mxv_st_path(const mxv_st_file *f);
/* Number of tensors. */
size_t mxv_st_count(const mxv_st_file *f);
/* Tensor i, 0 <= i < count, in data-section order (by offset); NULL when
 * i is out of range. */
const mxv_st_tensor *mxv_st_tensor_at(const mxv_st_file *f, size_t i);
/* The tensor named name, or NULL (O(log count)). */
const mxv_st_tensor *mxv_st_find(const mxv_st_file *f, const char *name);

/* Metadata: string pairs, sorted by key in byte order. */
size_t mxv_st_meta_count(const mxv_st_file *f);
/* Pair i; returns 0, or -1 when i is out of range. */
int mxv_st_meta_at(const mxv_st_file *f, size_t i, const char **key,
                   const char **value);
/* The value of key, or NULL when absent. */
const char *mxv_st_meta_get(const mxv_st_file *f, const char *key);

/* ---- requiring tensors (validating captures) --------------------------- */

/* A shape entry that matches any size. */
#define MXV_ST_ANY_DIM UINT64_MAX

/* Finds tensor name and checks it: its dtype is in the set dtypes
 * (MXV_ST_ANY_DTYPE for any), its rank is rank (or any when rank < 0) and
 * each shape[i] equals the expected shape[i] unless that is MXV_ST_ANY_DIM
 * (shape NULL: any shape).  On success sets *out (out may be NULL) and
 * returns MXV_ST_OK; else MXV_ST_EMISMATCH with a message such as
 *     case.safetensors: tensor "w13_scale": shape [4, 192] does not match
 *     the expected [4, 96]
 *     case.safetensors: tensor "x": dtype F32, expected BF16 or F8_E4M3
 *     case.safetensors: tensor "router_bias": not in the file */
mxv_st_status mxv_st_require(const mxv_st_file *f, const char *name,
                             unsigned dtypes, int rank, const uint64_t *shape,
                             const mxv_st_tensor **out, mxv_st_err *err);
/* Finds metadata key; sets *value (value may be NULL).  MXV_ST_EMISMATCH
 * ("case.safetensors: __metadata__ "kind": not in the file") if absent. */
mxv_st_status mxv_st_require_meta(const mxv_st_file *f, const char *key,
                                  const char **value, mxv_st_err *err);

/* For callers' own checks of a file's content, in the same one-line form:
 * writes "<path>: tensor "<tensor>": <message>" (or "<path>: <message>"
 * when tensor is NULL) into err and returns st.  f may be NULL (no path). */
mxv_st_status mxv_st_errorf(mxv_st_err *err, mxv_st_status st,
                            const mxv_st_file *f, const char *tensor,
                            const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- writing ---------------------------------------------------------- */

typedef struct mxv_st_writer mxv_st_writer;

/* A writer that will create path.  NULL when out of memory (or path is
 * NULL). */
mxv_st_writer *mxv_st_writer_new(const char *path);
/* Frees; w may be NULL.  Does not write anything. */
void mxv_st_writer_free(mxv_st_writer *w);

/* Adds a tensor.  name is copied; data (numel * element size bytes,
 * little-endian, C order) is borrowed and must stay valid and unchanged
 * until mxv_st_writer_commit returns; it may be NULL when the tensor has no
 * elements.  MXV_ST_EINVAL when the name is not valid UTF-8, is the
 * reserved "__metadata__", or was added before; when dtype or rank is out
 * of range; when the tensor or the whole data section would exceed
 * MXV_ST_MAX_INT bytes; when data is NULL for a non-empty tensor. */
mxv_st_status mxv_st_writer_add(mxv_st_writer *w, const char *name,
                                mxv_st_dtype dtype, int rank,
                                const uint64_t *shape, const void *data,
                                mxv_st_err *err);
/* Adds a metadata pair (both copied; valid UTF-8; each key once). */
mxv_st_status mxv_st_writer_meta(mxv_st_writer *w, const char *key,
                                 const char *value, mxv_st_err *err);
/* Writes the file: header (tensors in the documented order, metadata keys
 * sorted, no whitespace, padded with spaces to a multiple of 8 bytes), then
 * the data.  Creates "<path>.tmp-<pid>-<n>" in the same directory, writes,
 * fsyncs, renames it over path and fsyncs the directory.  On any failure
 * the temporary file is removed and path is left as it was.  Errors:
 * MXV_ST_EIO (with the system's reason), MXV_ST_EINVAL (header above
 * MXV_ST_MAX_HEADER), MXV_ST_ENOMEM.  May be called once per writer. */
mxv_st_status mxv_st_writer_commit(mxv_st_writer *w, mxv_st_err *err);

#endif /* MXV_SAFETENSORS_H */
