"""What a tiny-M3 run writes, in numpy only (no torch): vLLM OpenAI JSONL
responses, the full-log-prob run file that `mxverify model compare` reads,
and the run description.

Files of one run directory:
  completions.jsonl       one vLLM completions response per request, with
                          logprobs of the generated tokens (top-k) and
                          prompt_logprobs, tokens as "token_id:N"
  logprobs.safetensors    logprobs/R [n, V] F32 and targets/R [n] I32 per
                          request R; metadata group/R, prompt_len/R
  layers/layerNN.safetensors  moe_layer captures of the first batch
  run.json                configuration, seeds, versions, device
"""
import json
import os

import numpy as np

from mxverify_capture import stfile


def log_softmax(logits):
    """Row-wise log-softmax in binary64 of float logits [n, V]."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def _tok(t):
    return "token_id:%d" % int(t)


def _decoded(t):
    return "<t%d>" % int(t)


def _top(lp_row, k):
    """The k most probable tokens of one row (ties: lower id first)."""
    order = np.lexsort((np.arange(lp_row.size), -lp_row))[:k]
    return [int(i) for i in order]


def completion_response(rid, prompt, gen, prompt_lp, gen_lp, top_k, group):
    """One vLLM completions response.  prompt [S] ids, gen [G] ids;
    prompt_lp [S-1, V] log-probs of positions 1..S-1 (row i predicts
    prompt[i+1]); gen_lp [G, V] log-probs of the generated tokens."""
    plp = [None]
    for i in range(1, len(prompt)):
        row = prompt_lp[i - 1]
        tok = int(prompt[i])
        rank = int((row > row[tok]).sum()) + 1
        entry = {str(tok): {"logprob": float(row[tok]), "rank": rank,
                            "decoded_token": _decoded(tok)}}
        for r, t in enumerate(_top(row, top_k)):
            entry.setdefault(str(t), {"logprob": float(row[t]), "rank": r + 1,
                                      "decoded_token": _decoded(t)})
        plp.append(entry)
    tokens, tlp, tops, offs, text = [], [], [], [], ""
    for i, t in enumerate(gen):
        row = gen_lp[i]
        tokens.append(_tok(t))
        tlp.append(float(row[int(t)]))
        tops.append({_tok(u): float(row[u]) for u in _top(row, top_k)})
        offs.append(len(text))
        text += _decoded(t)
    choice = {"index": 0, "text": text,
              "logprobs": {"text_offset": offs, "token_logprobs": tlp, "tokens": tokens,
                           "top_logprobs": tops},
              "finish_reason": "length", "stop_reason": None,
              "prompt_logprobs": plp, "prompt_token_ids": [int(t) for t in prompt]}
    return {"id": "cmpl-%s" % rid, "request_id": rid, "group": group,
            "object": "text_completion", "created": 0, "model": "tinym3",
            "choices": [choice],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(gen),
                      "total_tokens": len(prompt) + len(gen)}}


def write_jsonl(path, responses):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for r in responses:
            f.write(json.dumps(r, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)


def write_logprobs(path, requests):
    """requests: list of (rid, group, lp [n, V] float, targets [n], prompt_len)."""
    tensors, meta = {}, {"mxverify.kind": "model-logprobs"}
    for rid, group, lp, targets, prompt_len in requests:
        tensors["logprobs/" + rid] = ("F32", np.ascontiguousarray(lp, dtype=np.float32))
        tensors["targets/" + rid] = ("I32", np.ascontiguousarray(targets, dtype=np.int32))
        meta["group/" + rid] = group
        meta["prompt_len/" + rid] = str(int(prompt_len))
    stfile.write(path, tensors, meta)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
