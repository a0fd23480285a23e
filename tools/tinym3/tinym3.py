#!/usr/bin/env python3
"""A tiny MiniMax-M3 from transformers' own MiniMax-M3 text classes, run in
BF16 and with its MoE experts in the production MXFP8 dataflow; writes what
`mxverify model compare` and `mxverify drift` read.

    python3 tinym3.py OUT_DIR [--runs base,test,bug-scale,bug-trunc] [--device cuda]

Each run goes to OUT_DIR/NAME/ (see runio.py for the files).  Runs:
  base       every MoE layer in the BF16 dataflow (policy bf16)
  test       the hybrid policy: MXFP8 for 9..1023 tokens, BF16 otherwise
  bug-scale  test with scale-next-group planted in GEMM1 of one expert of
             one layer (--bug-scale LAYER:EXPERT)
  bug-trunc  test with bf16-truncate planted in GEMM2 (--bug-trunc LAYER:EXPERT)

The model: MiniMaxM3VLTextConfig with a few layers, every MLP a sparse MoE
block (8 experts, top-4, a shared expert), small hidden and expert sizes,
full attention; weights from numpy's PCG64 seeded generator (no download),
the routed and shared expert weights quantized to an MXFP8 checkpoint
(E4M3FN codes, E8M0 scales per 32).  Attention, norms and the LM head run in
torch BF16 on --device; each MoE block is replaced by moe_numpy.moe_layer,
the production dataflow emulated bit for bit (numpy, CPU), and captured by
tools/capture's forward hook (MoELayerHook) on the first batch.  Two batches: 4 requests x 8 prompt
tokens (32 tokens: MXFP8 under hybrid, group prefill-mxfp8) and 1 request
x 8 tokens (8 tokens: BF16 under hybrid, group prefill-bf16); each request
then decodes 4 greedy tokens with the KV cache (decode steps take the BF16
path under hybrid).
"""
import argparse
import inspect
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "capture")]

import moe_numpy as M  # noqa: E402
import runio  # noqa: E402
import mxverify_capture as mc  # noqa: E402

CFG = dict(vocab_size=512, hidden_size=128, intermediate_size=64, shared_intermediate_size=64,
           dense_intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
           num_key_value_heads=2, head_dim=32, rotary_dim=16, num_local_experts=8,
           num_experts_per_tok=4, n_shared_experts=1, routed_scaling_factor=2.0,
           swiglu_alpha=1.702, swiglu_limit=7.0, max_position_embeddings=256,
           tie_word_embeddings=False, use_routing_bias=True, hidden_act="swigluoai",
           rms_norm_eps=1e-6)
SEED = 20261202
BATCHES = [("prefill-mxfp8", 4, 8), ("prefill-bf16", 1, 8)]   # group, requests, tokens
GEN = 4
TOP_K = 5


def log(*a):
    print("[tinym3 %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def import_classes():
    """transformers' MiniMax-M3 text config and causal LM classes."""
    import transformers
    names = [("MiniMaxM3VLTextConfig", "MiniMaxM3VLForCausalLM"),
             ("MiniMaxM3TextConfig", "MiniMaxM3ForCausalLM")]
    for cn, mn in names:
        c, m = getattr(transformers, cn, None), getattr(transformers, mn, None)
        if c is None or m is None:
            try:
                mod = __import__("transformers.models.minimax_m3_vl.modeling_minimax_m3_vl",
                                 fromlist=[cn, mn])
                c, m = getattr(mod, cn, None), getattr(mod, mn, None)
            except ImportError:
                pass
        if c is not None and m is not None:
            return transformers.__version__, c, m
    raise SystemExit("tinym3: no MiniMax-M3 text classes in transformers %s" % transformers.__version__)


def make_config(cls, layers):
    """The config, with every layer a sparse MoE layer and full attention;
    keys this transformers version does not know are dropped (and listed)."""
    kw = dict(CFG, num_hidden_layers=layers)
    kw.update(moe_layer_freq=[1] * layers, mlp_layer_types=["sparse"] * layers,
              layer_types=["full_attention"] * layers, sparse_attention_config=None)
    known = None
    fields = getattr(cls, "__dataclass_fields__", None)
    if fields:
        known = set(fields)
    else:
        sig = inspect.signature(cls.__init__)
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            known = set(sig.parameters)
    dropped = []
    if known is not None:
        dropped = sorted(k for k in kw if k not in known)
        kw = {k: v for k, v in kw.items() if k in known}
    cfg = cls(**kw)
    try:
        cfg._attn_implementation = "eager"
    except Exception:
        pass
    return cfg, dropped


class MoEWeights:
    """Seeded master weights of every MoE layer and their MXFP8 checkpoint."""

    def __init__(self, layers, seed):
        H, I, Is, E = (CFG["hidden_size"], CFG["intermediate_size"],
                       CFG["shared_intermediate_size"], CFG["num_local_experts"])
        rng = np.random.Generator(np.random.PCG64(seed))
        self.layers = []
        for _ in range(layers):
            router = rng.normal(0, 0.3, (E, H)).astype(np.float32)
            bias = rng.normal(0, 0.02, E).astype(np.float32)
            w13 = rng.normal(0, 0.12, (E, 2 * I, H))
            w2 = rng.normal(0, 0.12, (E, H, I))
            ws13 = rng.normal(0, 0.12, (2 * Is, H))
            ws2 = rng.normal(0, 0.12, (H, Is))
            self.layers.append(M.LayerWeights.from_master(router, bias, w13, w2, ws13, ws2))


def fill_model(model, torch, seed):
    """Every parameter but the norms (kept as the class initializes them)
    from a seeded numpy generator, in name order: embeddings N(0, 1), the
    LM head N(0, 0.25), other matrices N(0, 1/sqrt(fan_in))."""
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            shp = tuple(p.shape)
            if "norm" in name or len(shp) < 2:
                continue
            if "embed" in name:
                v = rng.normal(0, 1.0, shp)
            elif "lm_head" in name:
                v = rng.normal(0, 0.25, shp)
            else:
                v = rng.normal(0, 1.0 / np.sqrt(shp[-1]), shp)
            p.copy_(torch.from_numpy(v.astype(np.float32)).to(p.dtype))


def bf16_bits(torch, t):
    return t.detach().to(torch.bfloat16).contiguous().view(torch.int16).cpu().numpy().view(np.uint16)


def from_bits(torch, bits, like):
    return torch.from_numpy(np.ascontiguousarray(bits).view(np.int16)).view(torch.bfloat16).to(like.device)


def moe_blocks(model):
    """(layer index, parent module, attribute name, block) of every MoE block."""
    out = []
    for name, mod in model.named_modules():
        if hasattr(mod, "experts") and hasattr(mod, "gate") and hasattr(mod, "shared_experts"):
            parts = name.split(".")
            layer = next(int(p) for p in parts if p.isdigit())
            parent = model.get_submodule(".".join(parts[:-1]))
            out.append((layer, parent, parts[-1], mod))
    return out


def make_replacement(torch, orig, layer, weights, state):
    """An nn.Module running moe_numpy.moe_layer in place of `orig`."""
    import torch.nn as nn

    class NumpyMoE(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer
            self.returns_tuple = False

        def forward(self, hidden_states, *args, **kwargs):
            shp = hidden_states.shape
            x = bf16_bits(torch, hidden_states.reshape(-1, shp[-1]))
            r = M.moe_layer(x, weights, CFG["num_experts_per_tok"], state["policy"],
                            layer=self.layer, bug=state["bug"])
            state["dispatch"].append((self.layer, x.shape[0], r["policy"]))
            # what a forward hook captures besides the input and the output
            self.last = {n: v for n, v in r.items() if n not in ("policy", "out")}
            out = from_bits(torch, r["out"], hidden_states).reshape(shp)
            if self.returns_tuple:
                logits = torch.from_numpy(r["router_logits"]).to(hidden_states.device)
                return out, logits
            return out

    rep = NumpyMoE()
    rep.weights = weights
    # Does the decoder layer expect (hidden, router_logits) from its MLP?
    try:
        with torch.no_grad():
            probe = orig(torch.zeros(1, 1, CFG["hidden_size"], dtype=torch.bfloat16,
                                     device=next(orig.parameters()).device))
        rep.returns_tuple = isinstance(probe, tuple)
    except Exception as e:  # the block's own forward is not needed
        log("layer %d: probing the original MoE block failed (%s); assuming it returns a "
            "tensor" % (layer, e))
    return rep


def run_one(torch, model, name, out_dir, policy, bug, device, producer):
    """One run: the two batches, prefill + greedy decode, files in out_dir."""
    st = model._tinym3_state          # shared with every replaced MoE block
    st.update(policy=policy, bug=bug, dispatch=[])
    os.makedirs(os.path.join(out_dir, "layers"), exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(SEED + 7))
    responses, lp_requests = [], []
    for bi, (group, B, S) in enumerate(BATCHES):
        prompts = rng.integers(0, CFG["vocab_size"], (B, S))
        ids = torch.from_numpy(prompts).to(device)
        handles = []
        if bi == 0:   # the first batch's prefill: one capture per MoE layer
            for rep in st["reps"]:
                w = rep.weights
                hook = mc.MoELayerHook(
                    os.path.join(out_dir, "layers", "layer{layer:02d}.safetensors"),
                    layer=rep.layer, intermediates=lambda m: m.last, policy=policy,
                    shape="custom", topk=CFG["num_experts_per_tok"], producer=producer,
                    weights=dict(router_weight=w.router, router_bias=w.bias, w13=w.w13,
                                 w13_scale=w.w13_s, w2=w.w2, w2_scale=w.w2_s,
                                 experts_present=np.arange(w.w13.shape[0], dtype=np.int32),
                                 ws13=w.ws13, ws13_scale=w.ws13_s, ws2=w.ws2,
                                 ws2_scale=w.ws2_s))
                handles.append(rep.register_forward_hook(hook))
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        for h in handles:
            h.remove()
        logits = [o.logits.float().cpu().numpy()]                   # [B, S, V]
        past = o.past_key_values
        gen = []
        nxt = np.argmax(logits[0][:, -1], axis=-1)
        mask = torch.ones_like(ids)
        for step in range(GEN):
            gen.append(nxt)
            if step == GEN - 1:
                break
            t = torch.from_numpy(nxt.reshape(B, 1)).to(device)
            mask = torch.cat([mask, torch.ones_like(t)], dim=1)
            with torch.no_grad():
                o = model(input_ids=t, attention_mask=mask, past_key_values=past, use_cache=True)
            past = o.past_key_values
            logits.append(o.logits.float().cpu().numpy())
            nxt = np.argmax(logits[-1][:, -1], axis=-1)
        gen = np.stack(gen, axis=1)                                   # [B, GEN]
        full = np.concatenate(logits, axis=1)                         # [B, S + GEN - 1, V]
        lp = runio.log_softmax(full)
        for b in range(B):
            rid = "b%d-r%d" % (bi, b)
            targets = np.concatenate([prompts[b, 1:], gen[b]])        # row i predicts token i+1
            lp_requests.append((rid, group, lp[b], targets, S - 1))
            responses.append(runio.completion_response(
                rid, prompts[b], gen[b], lp[b, :S - 1], lp[b, S - 1:], TOP_K, group))
    runio.write_jsonl(os.path.join(out_dir, "completions.jsonl"), responses)
    runio.write_logprobs(os.path.join(out_dir, "logprobs.safetensors"), lp_requests)
    return st["dispatch"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--runs", default="base,test,bug-scale,bug-trunc")
    ap.add_argument("--device", default=None)
    ap.add_argument("--layers", type=int, default=CFG["num_hidden_layers"])
    ap.add_argument("--bug-scale", default="2:3", help="LAYER:EXPERT (default 2:3)")
    ap.add_argument("--bug-trunc", default="1:5", help="LAYER:EXPERT (default 1:5)")
    a = ap.parse_args()
    import torch
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tv, ccls, mcls = import_classes()
    cfg, dropped = make_config(ccls, a.layers)
    log("transformers %s, torch %s, %s / %s, device %s" % (tv, torch.__version__, ccls.__name__,
                                                           mcls.__name__, device))
    if dropped:
        log("config keys this version does not take:", ", ".join(dropped))
    torch.manual_seed(SEED)
    model = mcls(cfg).to(torch.bfloat16).to(device).eval()
    fill_model(model, torch, SEED)
    moe = MoEWeights(a.layers, SEED)
    blocks = moe_blocks(model)
    if len(blocks) != a.layers:
        raise SystemExit("tinym3: found %d MoE blocks for %d layers; the config keys for "
                         "sparse layers may have changed" % (len(blocks), a.layers))
    state = {"policy": "bf16", "bug": None, "dispatch": [], "reps": []}
    model._tinym3_state = state
    for layer, parent, attr, block in blocks:
        rep = make_replacement(torch, block, layer, moe.layers[layer], state)
        setattr(parent, attr, rep)
        state["reps"].append(rep)
    blocks_after = [n for n, m in model.named_modules() if type(m).__name__ == "NumpyMoE"]
    log("MoE blocks replaced:", ", ".join(blocks_after))
    producer = ("tools/tinym3 (transformers %s %s, torch %s, %s; MoE: moe_numpy)"
                % (tv, mcls.__name__, torch.__version__,
                   torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu"))

    def bug_of(spec, kind):
        l, e = (int(v) for v in spec.split(":"))
        return M.Bug(l, e, kind)

    runs = {"base": ("bf16", None), "test": ("hybrid", None),
            "bug-scale": ("hybrid", bug_of(a.bug_scale, "scale-next-group")),
            "bug-trunc": ("hybrid", bug_of(a.bug_trunc, "bf16-truncate"))}
    for name in a.runs.split(","):
        policy, bug = runs[name]
        t0 = time.time()
        d = run_one(torch, model, name, os.path.join(a.out_dir, name), policy, bug, device,
                    producer + (", planted %r" % bug if bug else ""))
        runio.write_json(os.path.join(a.out_dir, name, "run.json"), {
            "run": name, "policy": policy, "bug": repr(bug) if bug else None,
            "seed": SEED, "config": {k: v for k, v in cfg.to_dict().items()
                                     if isinstance(v, (int, float, str, bool, list, type(None)))},
            "config_keys_dropped": dropped, "batches": BATCHES, "generated": GEN,
            "top_k": TOP_K, "transformers": tv, "torch": torch.__version__,
            "model_class": mcls.__name__, "config_class": ccls.__name__, "device": device,
            "device_name": (torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"),
            "moe_dispatch": [{"layer": l, "tokens": t, "policy": p} for l, t, p in d]})
        log("run %s: policy %s, bug %s, %.1f s; dispatch %s" % (
            name, policy, bug, time.time() - t0,
            sorted(set((t, p) for _, t, p in d))))


if __name__ == "__main__":
    main()
