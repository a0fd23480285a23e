/* shard.h -- one run split across machines: `--shard K/N` runs the K-th of
 * N disjoint shares of a run's items (suite cases, planted bugs) and writes
 * a partial report; `mxverify report merge` joins the N partial reports
 * into the report one unsharded run writes (the same bytes apart from the
 * wall-clock fields "seconds" and "kernel_ms").  mxverify needs no
 * scheduler: a CI matrix or a Slurm array runs the shards.
 *
 * Item i (0-based, in the run's own order) belongs to shard (i mod N) + 1.
 *
 * A partial report is a JSON object:
 *   {"mxverify_partial_report": 1, "command": "gate", "shard": "2/4",
 *    "index": 2, "count": 4, "config": "...", "total_items": 7,
 *    "items": [{"name": "tp8-t64-w8a8", "position": 1}, ...],
 *    "report": <the report this shard's items alone give>}
 * "config" names everything else that must agree between the shards (suite,
 * backend, seed, ...).
 */
#ifndef MXV_SHARD_H
#define MXV_SHARD_H

#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct {
    int on;
    unsigned index, count; /* 1 <= index <= count */
} mxv_shard;

/* Parses "K/N" (NULL: no sharding, every item); MXV_EXIT_USAGE with a
 * one-line message for a bad value, else 0. */
int mxv_shard_parse(const char *s, mxv_shard *out);
/* Does item i belong to this shard? */
int mxv_shard_has(const mxv_shard *s, size_t i);

/* Wraps report (taken over) into a partial report and writes it to path
 * atomically; names[i] and positions[i] (i < nitems) are the items this
 * shard ran (through mxv_out: never half-written, never over an input).
 * 0, or -1 with a message in err. */
int mxv_shard_write(const char *path, const char *command, const mxv_shard *s,
                    const char *config, size_t total_items, const char *const *names,
                    const size_t *positions, size_t nitems, cJSON *report, char *err,
                    size_t len);

#endif
