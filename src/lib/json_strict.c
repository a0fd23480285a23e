/* json_strict.c -- strict JSON on top of cJSON (see json_strict.h). */
#include <stdio.h>
#include <string.h>
#include "json_strict.h"

void mxv_json_quote(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 16) {
        if (cap)
            dst[0] = 0;
        return;
    }
    dst[o++] = '"';
    for (size_t i = 0; s[i] && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 60) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02X", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o++] = '"';
    dst[o] = 0;
}

/* length of the UTF-8 sequence at s (n bytes left), 0 when malformed */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    unsigned v = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return k;
}

/* the lexical rules cJSON does not check */
static int scan(const char *text, size_t n, char *err, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    long line = 1;
    int in_str = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '\n')
            line++;
        if (c >= 0x80) {
            size_t k = utf8_len(s + i, n - i);
            if (!k) {
                snprintf(err, len, "line %ld: invalid UTF-8 (byte 0x%02X)", line, c);
                return -1;
            }
            i += k;
            continue;
        }
        if (c < 0x20 && (in_str || (c != '\t' && c != '\n' && c != '\r'))) {
            snprintf(err, len, "line %ld: raw control character 0x%02X%s", line, c,
                     in_str ? " in a string (write it as \\u00XX)" : "");
            return -1;
        }
        if (in_str && c == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && !memcmp(s + i + 2, "0000", 4)) {
                snprintf(err, len, "line %ld: \\u0000 in a string", line);
                return -1;
            }
            i += 2;
            continue;
        }
        if (c == '"')
            in_str = !in_str;
        i++;
    }
    return 0;
}

/* the first object in the tree with a key twice, if any */
static const cJSON *dup_key(const cJSON *x, const char **key)
{
    for (const cJSON *c = x ? x->child : NULL; c; c = c->next) {
        if (cJSON_IsObject(x))
            for (const cJSON *d = c->next; d; d = d->next)
                if (c->string && d->string && !strcmp(c->string, d->string)) {
                    *key = c->string;
                    return x;
                }
        const cJSON *in = dup_key(c, key);
        if (in)
            return in;
    }
    return NULL;
}

cJSON *mxv_json_parse(const char *text, size_t n, char *err, size_t len)
{
    if (scan(text, n, err, len) != 0)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long line = 1;
        if (at && at >= text && at <= text + n)
            for (const char *p = text; p < at; p++)
                line += *p == '\n';
        snprintf(err, len, "line %ld: not valid JSON", line);
        return NULL;
    }
    size_t used = end ? (size_t)(end - text) : n;
    long line = 1;
    for (size_t i = 0; i < used; i++)
        line += text[i] == '\n';
    for (size_t i = used; i < n; i++) {
        if (text[i] == '\n')
            line++;
        else if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' &&
                 !(text[i] == '\0' && i + 1 == n)) {
            snprintf(err, len, "line %ld: trailing data after the JSON value", line);
            cJSON_Delete(root);
            return NULL;
        }
    }
    const char *key;
    if (dup_key(root, &key)) {
        char q[128];
        mxv_json_quote(q, sizeof q, key);
        snprintf(err, len, "duplicate key %s", q);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int mxv_json_only_keys(const cJSON *o, const char *const *keys, char *err,
                       size_t len)
{
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next) {
        int known = 0;
        for (size_t i = 0; keys[i] && !known; i++)
            known = !strcmp(c->string ? c->string : "", keys[i]);
        if (!known) {
            char q[128], list[400];
            size_t o2 = 0;
            list[0] = 0;
            for (size_t i = 0; keys[i] && o2 < sizeof list; i++)
                o2 += (size_t)snprintf(list + o2, sizeof list - o2, "%s%s",
                                       i == 0 ? "" : keys[i + 1] ? ", " : " or ",
                                       keys[i]);
            mxv_json_quote(q, sizeof q, c->string ? c->string : "");
            snprintf(err, len, "unknown field %s (expected %s)", q, list);
            return -1;
        }
    }
    return 0;
}
