/* run_safetensors.c -- a run's full log-prob (or logit) rows from
 * safetensors; run.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "model/run.h"
#include "model/run_internal.h"

int mxv_run_load_st(mxv_run *r, mxv_tokens *toks, char *err, size_t len)
{
    mxv_st_err se;
    mxv_st_status st = mxv_st_open(r->path, &r->st, &se);
    if (st != MXV_ST_OK)
        return err_set(err, len, mxv_st_exit_code(st), "%s", se.msg);
    r->kind = MXV_RUN_FULL;
    r->tok_ids = 1;
    size_t nt = mxv_st_count(r->st);
    uint64_t vocab = 0;
    for (size_t i = 0; i < nt; i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(r->st, i);
        const char *name = t->name, *rq;
        int logits = 0;
        if (!strncmp(name, "targets/", 8))
            continue;
        if (!strncmp(name, "logprobs/", 9))
            rq = name + 9;
        else if (!strncmp(name, "logits/", 7))
            rq = name + 7, logits = 1;
        else
        {
            char e[300];
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\": "
                           "not logprobs/R, logits/R or targets/R", r->path,
                           mxv_run_esc(name, 200, e, sizeof e));
        }
        (void)logits;
        if (!*rq || strchr(rq, '/') || mxv_run_has_ctrl(rq) || strlen(rq) > 400) {
            char e[300];
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%s\": "
                           "bad request name (empty, '/', a control character, "
                           "or longer than 400 bytes)", r->path,
                           mxv_run_esc(name, 200, e, sizeof e));
        }
        unsigned ok = MXV_ST_BIT(MXV_ST_F32) | MXV_ST_BIT(MXV_ST_F64) |
                      MXV_ST_BIT(MXV_ST_BF16) | MXV_ST_BIT(MXV_ST_F16);
        if (!(ok & MXV_ST_BIT(t->dtype)) || t->rank != 2 || t->shape[0] == 0 ||
            t->shape[1] == 0)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "want F32, F64, BF16 or F16 of shape [positions, "
                           "vocab], both > 0", r->path, name);
        if (vocab && t->shape[1] != vocab)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "vocabulary %llu, other tensors have %llu", r->path,
                           name, (unsigned long long)t->shape[1],
                           (unsigned long long)vocab);
        vocab = t->shape[1];
        char tn[600];
        snprintf(tn, sizeof tn, "targets/%s", rq);
        const mxv_st_tensor *tg = mxv_st_find(r->st, tn);
        if (!tg)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "not in the file (needed by \"%.200s\")", r->path, tn,
                           name);
        if ((tg->dtype != MXV_ST_I32 && tg->dtype != MXV_ST_I64) ||
            tg->rank != 1 || tg->shape[0] != t->shape[0])
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor \"%.200s\": "
                           "want I32 or I64 of shape [%llu]", r->path, tn,
                           (unsigned long long)t->shape[0]);
        mxv_req *q = mxv_run_add_req(r);
        if (!q || !(q->key = strdup(rq)))
            return OOM(err, len);
        q->full = t;
        char mk[600];
        snprintf(mk, sizeof mk, "group/%s", rq);
        const char *g = mxv_st_meta_get(r->st, mk);
        if (g && (mxv_run_has_ctrl(g) || strlen(g) > 200))
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: __metadata__ "
                           "\"%.200s\": a control character in it or longer "
                           "than 200 bytes", r->path, mk);
        if (g && !(q->group = strdup(g)))
            return OOM(err, len);
        size_t plen = t->shape[0];
        snprintf(mk, sizeof mk, "prompt_len/%s", rq);
        const char *pv = mxv_st_meta_get(r->st, mk);
        unsigned long long u;
        if (pv && mxv_parse_uint(pv, t->shape[0], &u) != 0)
            return err_set(err, len, MXV_EXIT_BADINPUT, "%s: __metadata__ "
                           "\"%.200s\": \"%.40s\" is not a row count <= %llu",
                           r->path, mk, pv, (unsigned long long)t->shape[0]);
        if (pv)
            plen = u;
        size_t cap = 0;
        for (size_t j = 0; j < t->shape[0]; j++) {
            mxv_pos *p = mxv_run_add_pos(q, &cap);
            if (!p)
                return OOM(err, len);
            double v = mxv_run_elem(tg, j);
            if (!(v >= 0 && v < (double)vocab))
                return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor "
                               "\"%.200s\": row %zu: token %.0f is outside "
                               "the vocabulary [0, %llu)", r->path, tn, j, v,
                               (unsigned long long)vocab);
            p->ref = (int64_t)v;
            p->prompt = j < plen;
            p->field = tn;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(r->st, i);
        if (!strncmp(t->name, "targets/", 8)) {
            char a[600], b[600];
            snprintf(a, sizeof a, "logprobs/%s", t->name + 8);
            snprintf(b, sizeof b, "logits/%s", t->name + 8);
            if (!mxv_st_find(r->st, a) && !mxv_st_find(r->st, b))
                return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor "
                               "\"%.200s\": no logprobs/ or logits/ tensor "
                               "for it", r->path, t->name);
            if (mxv_st_find(r->st, a) && mxv_st_find(r->st, b))
                return err_set(err, len, MXV_EXIT_BADINPUT, "%s: tensor "
                               "\"%.200s\": both logprobs/ and logits/ given",
                               r->path, a);
        }
    }
    r->k = vocab;
    (void)toks;
    return mxv_run_finish(r, err, len);
}

