/* provenance.c -- the provenance block of reports (see provenance.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gmp.h>
#include <gsl/gsl_version.h>
#include <mpfr.h>
#include "config.h"
#include "lib/provenance.h"
#include "lib/revision.h"

static int g_argc;
static char **g_argv;

void mxv_provenance_init(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
}

/* OpenBLAS tells its version and build; the reference CBLAS of GSL has
 * none (weak: either library may be the one linked). */
char *openblas_get_config(void) __attribute__((weak));

const char *mxv_relpath(const char *path, char *buf, size_t len)
{
    char cwd[PATH_MAX], abs[PATH_MAX], full[PATH_MAX], dir[PATH_MAX];
    snprintf(buf, len, "%s", path);
    if (!path[0] || !getcwd(cwd, sizeof cwd))
        return buf;
    if (path[0] == '/')
        snprintf(abs, sizeof abs, "%s", path);
    else if (strlen(cwd) + strlen(path) + 2 <= sizeof abs) {
        memcpy(abs, cwd, strlen(cwd) + 1);
        strcat(abs, "/");
        strcat(abs, path);
    } else
        return buf;
    /* the directory through symlinks; the file itself may not exist yet */
    snprintf(dir, sizeof dir, "%s", abs);
    char *slash = strrchr(dir, '/');
    const char *base = slash + 1;
    char real[PATH_MAX];
    *slash = 0;
    if (!realpath(dir[0] ? dir : "/", real) ||
        strlen(real) + strlen(base) + 2 > sizeof full)
        return buf;
    memcpy(full, real, strlen(real) + 1);
    strcat(full, "/");
    strcat(full, base);
    char realcwd[PATH_MAX];
    if (!realpath(cwd, realcwd))
        return buf;
    size_t n = strlen(realcwd);
    if (!strncmp(full, realcwd, n) && full[n] == '/')
        snprintf(buf, len, "%s", full + n + 1);
    return buf;
}

const char *mxv_version_string(void)
{
    static char s[128];
    snprintf(s, sizeof s, "mxverify %s (git %s)", PACKAGE_VERSION, MXV_GIT_REVISION);
    return s;
}

cJSON *mxv_provenance_json(const char *backend, const char *device,
                           const char *seed)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mxverify", PACKAGE_VERSION);
    cJSON_AddStringToObject(o, "git_revision", MXV_GIT_REVISION);
    cJSON_AddStringToObject(o, "mpfr", mpfr_get_version());
    cJSON_AddStringToObject(o, "gmp", gmp_version);
    cJSON_AddStringToObject(o, "gsl", gsl_version);
    cJSON_AddStringToObject(o, "blas", openblas_get_config ? openblas_get_config()
                                                           : "gslcblas");
    cJSON_AddStringToObject(o, "cjson", cJSON_Version());
    if (backend)
        cJSON_AddStringToObject(o, "backend", backend);
    else
        cJSON_AddNullToObject(o, "backend");
    if (device)
        cJSON_AddStringToObject(o, "device", device);
    else
        cJSON_AddNullToObject(o, "device");
    if (seed)
        cJSON_AddStringToObject(o, "seed", seed);
    else
        cJSON_AddNullToObject(o, "seed");
    cJSON *cl = cJSON_AddArrayToObject(o, "command_line");
    for (int i = 0; i < g_argc; i++) {
        char rel[PATH_MAX];
        const char *a = g_argv[i];
        if (i == 0) { /* the program, not where it is installed */
            const char *sl = strrchr(a, '/');
            a = sl ? sl + 1 : a;
        } else {
            a = mxv_relpath(a, rel, sizeof rel);
        }
        cJSON_AddItemToArray(cl, cJSON_CreateString(a));
    }
    return o;
}
