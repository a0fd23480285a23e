/* input.c -- opening input files without trusting them (see input.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "input.h"

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "is a directory";
    if (S_ISFIFO(m))
        return "is a FIFO";
    if (S_ISSOCK(m))
        return "is a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "is a device";
    return "is a special file";
}

int mxv_input_open(const char *path, size_t *size, char *err, size_t len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == EISDIR)
            snprintf(err, len, "%s: is a directory, not a regular file", path);
        else
            snprintf(err, len, "%s: cannot open: %s", path, strerror(e));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, len, "%s: cannot stat: %s", path, strerror(e));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(err, len, "%s: %s, not a regular file", path, kind(sb.st_mode));
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        snprintf(err, len, "%s: cannot open: %s", path, strerror(e));
        return -1;
    }
    if (size)
        *size = (size_t)sb.st_size;
    return fd;
}

FILE *mxv_input_fopen(const char *path, char *err, size_t len)
{
    int fd = mxv_input_open(path, NULL, err, len);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        snprintf(err, len, "%s: cannot open: %s", path, strerror(e));
    }
    return f;
}

char *mxv_input_slurp(const char *path, size_t max, size_t *n, char *err,
                      size_t len)
{
    size_t size;
    int fd = mxv_input_open(path, &size, err, len);
    if (fd < 0)
        return NULL;
    if (size > max) {
        close(fd);
        snprintf(err, len, "%s: %zu bytes, more than the %zu this reader takes",
                 path, size, max);
        return NULL;
    }
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        snprintf(err, len, "%s: out of memory", path);
        return NULL;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            snprintf(err, len, "%s: read error: %s", path, strerror(e));
            return NULL;
        }
        if (r == 0) /* shrank while read: take what is there */
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *n = got;
    return buf;
}
