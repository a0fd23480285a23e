"""Bad TEST runs for tests/cli_drift.test: copies of golden/tinym3/test with
one fault each, and a `cases` file of "name|words the error must contain".

usage: make_drift_bad.py GOLDEN_TINYM3_DIR OUT_DIR
"""
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "capture"))
from mxverify_capture import stfile  # noqa: E402


def copy_run(src, dst):
    """A writable copy (distcheck's source tree is read-only)."""
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    for root, dirs, files in os.walk(dst):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def edit(path, fn):
    meta, tensors = stfile.read(path)
    fn(meta, tensors)
    os.remove(path)
    stfile.write(path, tensors, meta)


def main():
    g, out = sys.argv[1], sys.argv[2]
    test = os.path.join(g, "test")
    cases = []

    def case(name, layer_or_file, fn, want):
        d = os.path.join(out, name)
        copy_run(test, d)
        p = os.path.join(d, layer_or_file)
        edit(p, fn)
        cases.append("%s|%s" % (name, want))

    def truncate_x(meta, t):
        dt, x = t["x"]
        t["x"] = (dt, x[:-1])
    case("shape", "layers/layer01.safetensors", truncate_x,
         'layer01.safetensors: tensor "x": shape [31, 128] differs from [32, 128]')

    def drop_out(meta, t):
        del t["out"]
    case("no-out", "layers/layer02.safetensors", drop_out,
         'layer02.safetensors: tensor "out" is missing')

    def drop_layer(meta, t):
        del meta["layer"]
    case("no-layer-key", "layers/layer00.safetensors", drop_layer,
         'layer00.safetensors: metadata "layer" is missing')

    def experts16(meta, t):
        meta["experts"] = "16"
    case("experts", "layers/layer03.safetensors", experts16,
         'layer03.safetensors: metadata "experts" is "16" but "8"')

    def other_router(meta, t):
        dt, w = t["router_weight"]
        w = w.copy()
        w[1, 2] = -w[1, 2]
        t["router_weight"] = (dt, w)
    case("weights", "layers/layer02.safetensors", other_router,
         'layer02.safetensors: tensor "router_weight" differs from')

    def swap_layer(meta, t):
        src = stfile.read(os.path.join(test, "layers", "layer01.safetensors"))
        t.clear()
        t.update(src[1])
        meta["layer"] = "3"
    case("swapped", "layers/layer03.safetensors", swap_layer,
         'layer03.safetensors: tensor "router_weight" differs from')

    def dup_route(meta, t):
        dt, ids = t["topk_ids"]
        ids = ids.copy()
        ids[5, 1] = ids[5, 0]
        t["topk_ids"] = (dt, ids)
    case("routing", "layers/layer01.safetensors", dup_route, "topk_ids")

    def drop_request(meta, t):
        del t["logprobs/b1-r0"]
        del t["targets/b1-r0"]
    case("request", "logprobs.safetensors", drop_request,
         'tensor "logprobs/b1-r0" has no counterpart')

    def other_prompt(meta, t):
        dt, v = t["targets/b0-r2"]
        v = v.copy()
        v[3] = (v[3] + 1) % 512
        t["targets/b0-r2"] = (dt, v)
    case("prompt", "logprobs.safetensors", other_prompt,
         'tensor "targets/b0-r2": prompt token 3 is')

    def nan_row(meta, t):
        dt, v = t["logprobs/b0-r1"]
        v = v.copy()
        v[2, 7] = np.nan
        t["logprobs/b0-r1"] = (dt, v)
    case("nan", "logprobs.safetensors", nan_row,
         'tensor "logprobs/b0-r1": row 2 cannot be normalized')

    # not bad input but a failing kernel: a NaN in layer 2's output (exit 1)
    d = os.path.join(out, "nan-out")
    copy_run(test, d)

    def nan_out(meta, t):
        dt, o = t["out"]
        o = o.copy()
        o[3, 5] = 0x7FC0
        t["out"] = (dt, o)
    edit(os.path.join(d, "layers", "layer02.safetensors"), nan_out)

    with open(os.path.join(out, "cases"), "w") as f:
        f.write("\n".join(cases) + "\n")


if __name__ == "__main__":
    main()
