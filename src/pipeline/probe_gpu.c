/* probe_gpu.c -- run a probe plan through tc_probe (see probe_gpu.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "probe_gpu.h"
#include "probe_io.h"

#ifndef MXV_PKGLIBEXECDIR
#define MXV_PKGLIBEXECDIR ""
#endif
#ifndef MXV_BUILD_TC_PROBE
#define MXV_BUILD_TC_PROBE ""
#endif

/* tc_probe's exit codes besides 0 (tools/probe/tc_probe.cu) */
#define TC_EXIT_NO_GPU 77
#define TC_EXIT_LAYOUT 5

/* Seconds one tc_probe run may take (it needs about a second). */
#define TC_TIMEOUT_S 300

static int is_exec(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

mxv_tc_status mxv_tc_probe_find(char *bin, size_t len, char *why, size_t wlen)
{
    const char *env = getenv("MXVERIFY_TC_PROBE");
    if (env && *env) {
        if (!is_exec(env)) {
            snprintf(why, wlen, "MXVERIFY_TC_PROBE=%s is not an executable file", env);
            return MXV_TC_NO_GPU;
        }
        snprintf(bin, len, "%s", env);
        return MXV_TC_OK;
    }
    char inst[4096];
    snprintf(inst, sizeof inst, "%s/tc_probe", MXV_PKGLIBEXECDIR);
    if (*MXV_BUILD_TC_PROBE && is_exec(MXV_BUILD_TC_PROBE)) {
        snprintf(bin, len, "%s", MXV_BUILD_TC_PROBE);
        return MXV_TC_OK;
    }
    if (*MXV_PKGLIBEXECDIR && is_exec(inst)) {
        snprintf(bin, len, "%s", inst);
        return MXV_TC_OK;
    }
    snprintf(why, wlen,
             "no GPU probe binary: tc_probe is built only when configure finds "
             "nvcc (./configure --with-cuda); looked for $MXVERIFY_TC_PROBE, "
             "%s, %s (an AMD probe is not written)",
             *MXV_BUILD_TC_PROBE ? MXV_BUILD_TC_PROBE : "(no build tree)", inst);
    return MXV_TC_NO_GPU;
}

int mxv_tc_workdir(char *dir, size_t len, char *why, size_t wlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(dir, len, "%s/mxverify-probe-XXXXXX", tmp);
    if (mkdtemp(dir))
        return 0;
    snprintf(why, wlen, "cannot create a folder in %s: %s", tmp, strerror(errno));
    return -1;
}

void mxv_tc_workdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* The last non-empty line of a text file containing `want` (any line when
 * want is NULL), into buf ("" when none). */
static void log_line(const char *path, const char *want, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    buf[0] = 0;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] && (!want || strstr(line, want)))
            snprintf(buf, len, "%.500s", line);
    }
    fclose(f);
}

/* Runs tc_probe DIR DIR 0 VARIANT with its output in logpath.  Returns its
 * exit status, 128 + the signal that ended it, or -1 (could not start, or
 * killed after TC_TIMEOUT_S). */
static int spawn(const char *bin, const char *dir, int variant, const char *logpath)
{
    char var[16];
    snprintf(var, sizeof var, "%d", variant);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execl(bin, bin, dir, dir, "0", var, (char *)NULL);
        fprintf(stderr, "tc_probe: cannot run %s: %s\n", bin, strerror(errno));
        _exit(126);
    }
    close(fd);
    int status = 0;
    struct timespec nap = {0, 20 * 1000 * 1000};
    for (long waited_ms = 0;; waited_ms += 20) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        if (waited_ms > TC_TIMEOUT_S * 1000L) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status)
         : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

mxv_tc_status mxv_tc_probe_run(const char *bin, const char *dir, int v,
                               mx_probe_plan *p, char *device, size_t devlen,
                               char *why, size_t wlen)
{
    const mxv_tc_variant *tv = &mxv_tc_variants[v];
    char logpath[4400], res[4400], line[600], err[700];
    snprintf(logpath, sizeof logpath, "%s/%s.log", dir, tv->name);
    int st = spawn(bin, dir, v, logpath);
    if (st == TC_EXIT_NO_GPU) {
        log_line(logpath, "tc_probe:", line, sizeof line);
        snprintf(why, wlen, "no GPU to probe: %s", line[0] ? line : "tc_probe exit 77");
        return MXV_TC_NO_GPU;
    }
    if (st == TC_EXIT_LAYOUT) {
        log_line(logpath, "mismatches", line, sizeof line);
        snprintf(why, wlen, "%s: tc_probe's operand layout check failed, results "
                 "not used (%s)", tv->name, line);
        return MXV_TC_FAILED;
    }
    if (st < 0) {
        snprintf(why, wlen, "%s: tc_probe %s could not start or ran past %d s",
                 tv->name, bin, TC_TIMEOUT_S);
        return MXV_TC_FAILED;
    }
    if (st != 0) {
        log_line(logpath, NULL, line, sizeof line);
        snprintf(why, wlen, "%s: tc_probe exited with status %d: %s", tv->name, st,
                 line[0] ? line : "(no output)");
        return MXV_TC_FAILED;
    }
    log_line(logpath, "device ", line, sizeof line);
    snprintf(device, devlen, "%.200s", line[0] ? line + 7 : "an unnamed GPU");
    snprintf(res, sizeof res, "%s/%s_plan.mxtd", dir, tv->name);
    mxv_mxtd m;
    if (mxv_mxtd_read(res, &m, err, sizeof err)) {
        snprintf(why, wlen, "%s: tc_probe's result: %s", tv->name, err);
        return MXV_TC_FAILED;
    }
    const char *bad = m.variant != (uint32_t)v ? "another instruction variant"
                      : m.kind != 1 ? "no plan run"
                      : m.n != p->stride || m.ncase != p->ncase ? "another plan size"
                      : m.checksum != mxv_plan_checksum(p) ? "inputs other than the plan's"
                                                            : NULL;
    if (bad) {
        snprintf(why, wlen, "%s: tc_probe's result %s holds %s", tv->name, res, bad);
        mxv_mxtd_free(&m);
        return MXV_TC_FAILED;
    }
    memcpy(p->d, m.d, p->ncase * sizeof *p->d);
    mxv_mxtd_free(&m);
    return MXV_TC_OK;
}
