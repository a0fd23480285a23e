/* out.c -- writing an output file safely (see out.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "out.h"

#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

struct mxv_out {
    FILE *f;
    char *path, *tmp;
};

typedef struct {
    dev_t dev;
    ino_t ino;
} file_id;

static file_id *inputs;
static size_t ninputs, capinputs;


int mxv_out_register_input(const char *path)
{
    struct stat s;
    if (!path || stat(path, &s) != 0)
        return 0;
    if (ninputs == capinputs) {
        size_t cap = capinputs ? 2 * capinputs : 8;
        file_id *p = realloc(inputs, cap * sizeof *p);
        if (!p)
            return -1;
        inputs = p;
        capinputs = cap;
    }
    inputs[ninputs].dev = s.st_dev;
    inputs[ninputs++].ino = s.st_ino;
    return 0;
}

void mxv_out_clear_inputs(void)
{
    free(inputs);
    inputs = NULL;
    ninputs = capinputs = 0;
}

int mxv_out_is_input(const char *path)
{
    struct stat s;
    if (!path || stat(path, &s) != 0)
        return 0;
    for (size_t i = 0; i < ninputs; i++)
        if (inputs[i].dev == s.st_dev && inputs[i].ino == s.st_ino)
            return 1;
    return 0;
}

/* The directory part of path ("." when it has none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

mxv_out *mxv_out_open(const char *path, char *err, size_t len)
{
    if (!path || !*path) {
        mxv_errf(err, len, "an output path is empty");
        return NULL;
    }
    if (mxv_out_is_input(path)) {
        mxv_errf(err, len, "%s: refusing to write an output over an input of this run",
             path);
        return NULL;
    }
    mxv_out *o = calloc(1, sizeof *o);
    size_t tlen = strlen(path) + 64;
    if (!o || !(o->path = strdup(path)) || !(o->tmp = malloc(tlen))) {
        if (o)
            free(o->path);
        free(o);
        mxv_errf(err, len, "%s: out of memory", path);
        return NULL;
    }
    /* a name nobody else picks: pid, a counter, and bits of the clock and
     * of the address space; O_EXCL makes a collision a retry, not a clash */
    static unsigned counter;
    int fd = -1, e = 0;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        unsigned long salt = (unsigned long)(uintptr_t)o ^ ((unsigned long)counter * 2654435761u);
        snprintf(o->tmp, tlen, "%s.tmp-%ld-%u-%lx", path, (long)getpid(), counter++,
                 salt & 0xffffffUL);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e != EEXIST)
            break;
    }
    if (fd >= 0 && !(o->f = fdopen(fd, "wb"))) {
        e = errno;
        close(fd);
        unlink(o->tmp);
        fd = -1;
    }
    if (fd < 0) {
        mxv_errf(err, len, "%s: cannot create a temporary file beside it: %s", path,
             strerror(e));
        free(o->path);
        free(o->tmp);
        free(o);
        return NULL;
    }
    return o;
}

FILE *mxv_out_file(mxv_out *o) { return o->f; }

static void out_free(mxv_out *o)
{
    free(o->path);
    free(o->tmp);
    free(o);
}

void mxv_out_abort(mxv_out *o)
{
    if (!o)
        return;
    if (o->f)
        fclose(o->f);
    unlink(o->tmp);
    out_free(o);
}

int mxv_out_commit(mxv_out *o, char *err, size_t len)
{
    const char *step = NULL;
    int e = 0;
    if (ferror(o->f))
        step = "write", e = EIO;
    else if (fflush(o->f) != 0)
        step = "write", e = errno;
    else if (fsync(fileno(o->f)) != 0)
        step = "fsync", e = errno;
    int cl = fclose(o->f);
    o->f = NULL;
    if (!step && cl != 0)
        step = "close", e = errno;
    if (!step && rename(o->tmp, o->path) != 0)
        step = "rename the temporary file onto", e = errno;
    if (step) {
        unlink(o->tmp);
        mxv_errf(err, len, "%s: cannot %s it: %s", o->path, step, strerror(e));
        out_free(o);
        return -1;
    }
    /* the rename is durable once the directory is; best effort (the file
     * is in place already) */
    char *dir = dir_of(o->path);
    int dfd = dir ? open(dir, O_RDONLY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    out_free(o);
    return 0;
}

int mxv_out_write_text(const char *path, const char *text, char *err, size_t len)
{
    mxv_out *o = mxv_out_open(path, err, len);
    if (!o)
        return -1;
    if (fputs(text, mxv_out_file(o)) < 0) {
        int e = errno;
        mxv_out_abort(o);
        return mxv_errf(err, len, "%s: cannot write it: %s", path, strerror(e));
    }
    return mxv_out_commit(o, err, len);
}
