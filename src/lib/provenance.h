/* provenance.h -- what every report records about the run that wrote it
 * (issue 12): the mxverify version and git revision, the versions of the
 * numerical libraries (MPFR, GMP, GSL, the BLAS, cJSON), the backend and
 * device, the seed and the command line, with paths made relative to the
 * working directory so that the same run gives the same bytes anywhere.
 *
 * Reports hold no clock time but in the fields named MXV_TIMING_FIELDS; a
 * report with those removed is the same bytes across runs, machines with
 * the same libraries, and BLAS thread counts (tests/determinism.test). */
#ifndef MXV_PROVENANCE_H
#define MXV_PROVENANCE_H
#include <stddef.h>
#include <cjson/cJSON.h>

/* The JSON fields that hold wall-clock times, and nothing else does. */
#define MXV_TIMING_FIELDS "seconds", "kernel_ms"

/* Records the command line (main calls it once). */
void mxv_provenance_init(int argc, char **argv);

/* A new object {"mxverify", "git_revision", "mpfr", "gmp", "gsl", "blas",
 * "cjson", "backend", "device", "seed", "command_line"}; backend, device
 * and seed may be NULL (recorded as null). */
cJSON *mxv_provenance_json(const char *backend, const char *device,
                           const char *seed);

/* path relative to the working directory, without "./" or "..", when it
 * lies under it (through symlinks), else path as given; written to buf. */
const char *mxv_relpath(const char *path, char *buf, size_t len);

/* "mxverify 0.1.0 (git abc1234)", for text reports. */
const char *mxv_version_string(void);

#endif
