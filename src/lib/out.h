/* out.h -- the one way mxverify writes an output file (reports, golden
 * files, manifests, SVG charts, probe files, captures and case files).
 *
 * An output never exists half-written at its path: the bytes go to a fresh
 * temporary file beside the target (same directory, so the rename stays in
 * one file system), created with O_EXCL | O_NOFOLLOW and the mode the umask
 * allows; commit flushes and fsyncs it, renames it over the target and
 * fsyncs the directory.  Any failure removes the temporary file and leaves
 * the target as it was.
 *
 * A run registers its input files (captures, golden files, manifests) with
 * mxv_out_register_input(); mxv_out_open() then refuses an output path that
 * names one of them -- compared by device and inode, so "./a", "a" and a
 * hard link or symlink to it are the same file.
 */
#ifndef MXV_OUT_H
#define MXV_OUT_H

#include <stddef.h>
#include <stdio.h>

typedef struct mxv_out mxv_out;

/* Remembers path as an input of this run (when it exists; a path that
 * cannot be stat'ed is not an input and is ignored).  0, or -1 when out of
 * memory. */
int mxv_out_register_input(const char *path);
/* Forgets every registered input. */
void mxv_out_clear_inputs(void);
/* 1 when path names (st_dev, st_ino) a registered input. */
int mxv_out_is_input(const char *path);

/* Opens a temporary file for path.  NULL with one line in err (naming the
 * path) when path names an input of the run or the temporary file cannot
 * be created. */
mxv_out *mxv_out_open(const char *path, char *err, size_t len);
/* The stream to write to. */
FILE *mxv_out_file(mxv_out *o);
/* Flushes, fsyncs and closes the temporary file, renames it onto the
 * target and fsyncs the directory; frees o.  0, or -1 with one line in err
 * (the temporary file removed, the target untouched). */
int mxv_out_commit(mxv_out *o, char *err, size_t len);
/* Closes and removes the temporary file; frees o.  NULL is allowed. */
void mxv_out_abort(mxv_out *o);

/* The whole of text (and nothing else) as path's new contents. */
int mxv_out_write_text(const char *path, const char *text, char *err, size_t len);

#endif
