/* json_strict.h -- strict JSON for the files mxverify trusts (golden
 * tolerances): cJSON parses, this module refuses what cJSON lets through.
 *
 * mxv_json_parse accepts exactly one JSON value (RFC 8259) and refuses,
 * with one printable line in err:
 *   - invalid UTF-8;
 *   - a raw control character (below 0x20) inside a string, or anywhere but
 *     as whitespace (tab, newline, carriage return) outside strings;
 *   - the escape \u0000 (C strings cannot hold it);
 *   - trailing data after the value (whitespace only);
 *   - a key twice in one object (cJSON keeps the first value, Python's json
 *     the last: the two would read different files);
 * and the caller checks field names with mxv_json_only_keys.  Messages
 * name the line ("line 12: ...") and quote keys with non-printable bytes
 * escaped (\xHH), so that a hostile file cannot break the one line.
 */
#ifndef MXV_JSON_STRICT_H
#define MXV_JSON_STRICT_H
#include <stddef.h>
#include <cjson/cJSON.h>

/* The parsed value (free with cJSON_Delete), or NULL with err set
 * ("line L: what"). */
cJSON *mxv_json_parse(const char *text, size_t n, char *err, size_t len);

/* 0 when every key of object o is one of the NULL-terminated list keys;
 * else -1 with err = "unknown field "KEY" (expected a, b or c)". */
int mxv_json_only_keys(const cJSON *o, const char *const *keys, char *err,
                       size_t len);

/* s quoted for a message: "..." with quotes, backslashes and non-printable
 * bytes escaped, cut after about 60 bytes. */
void mxv_json_quote(char *dst, size_t cap, const char *s);

#endif
