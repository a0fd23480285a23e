/* input.h -- opening input files without trusting them.
 *
 * Every reader of a user-named file opens it here: the path is opened with
 * O_NONBLOCK, so that a FIFO or a device cannot block the program in
 * open(), then fstat'ed, and anything but a regular file is refused before
 * a byte is read.  Files are read whole with a size cap checked before any
 * allocation.
 *
 * Errors are one line "PATH: what" (no prefix, no newline) in err:
 *     golden.json: is a directory, not a regular file
 *     x.probe: is a FIFO, not a regular file
 *     x.probe: cannot open: No such file or directory
 *     big.json: 2147483648 bytes, more than the 67108864 this reader takes
 */
#ifndef MXV_INPUT_H
#define MXV_INPUT_H
#include <stddef.h>
#include <stdio.h>

/* A read-only descriptor of the regular file path (O_CLOEXEC, blocking
 * again after the check), or -1 with err set.  *size (size may be NULL)
 * is the file's size at open. */
int mxv_input_open(const char *path, size_t *size, char *err, size_t len);

/* The same as a stdio stream ("rb"), or NULL with err set. */
FILE *mxv_input_fopen(const char *path, char *err, size_t len);

/* Reads the whole regular file path into a new NUL-terminated buffer
 * (*n bytes before the NUL); refuses a file above max bytes before
 * allocating.  NULL with err set on any failure.  Free with free(). */
char *mxv_input_slurp(const char *path, size_t max, size_t *n, char *err,
                      size_t len);

#endif
