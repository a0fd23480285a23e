"""Forward hooks that capture a whole MoE layer per call (kind moe_layer),
for `mxverify check` and `mxverify drift`.

    hook = MoELayerHook("/tmp/run/layers/layer{layer:02d}.safetensors", layer=3,
                        weights=dict(router_weight=..., router_bias=..., w13=..., ...),
                        intermediates=lambda module: module.last_intermediates,
                        policy="hybrid", topk=4, producer="...")
    handle = model.model.layers[3].mlp.register_forward_hook(hook)

The hook receives (module, inputs, output) as torch calls it: the layer
input is inputs[0] ([..., H], flattened to [T, H]), the output is output
(or output[0] when the block returns a tuple, e.g. with router logits).
`weights` holds the checkpoint tensors capture_moe_layer takes
(router_weight, router_bias, w13, w13_scale, w2, w2_scale,
experts_present, ws13, ws13_scale, ws2, ws2_scale); `intermediates` is a
dict, or a function of the module returning one, of the stage tensors the
block kept (topk_ids, g1, y, ...).  Every other keyword goes to
capture_moe_layer.  `calls` limits how many calls are written (default 1:
the first); the path may use {layer} and {call}.  `enabled` turns the hook
off and on without removing it.  No torch import: the tensors are passed
through to capture_moe_layer, which copies torch tensors from any device.
"""
from .capture import capture_moe_layer
from .tensors import CaptureError


def _flat(t, H, what):
    shape = tuple(t.shape)
    if not shape or shape[-1] != H:
        raise CaptureError("MoELayerHook: %s has shape %s, not [..., H = %d]" % (what, list(shape), H))
    n = 1
    for d in shape[:-1]:
        n *= d
    return t.reshape(n, H)


class MoELayerHook:
    def __init__(self, path, *, layer, weights, intermediates=None, calls=1, **kw):
        if "router_weight" not in weights:
            raise CaptureError("MoELayerHook: weights lacks 'router_weight'")
        self.path, self.layer, self.weights = path, layer, dict(weights)
        self.intermediates, self.calls, self.kw = intermediates, calls, kw
        self.enabled, self.count, self.paths = True, 0, []

    def __call__(self, module, inputs, output):
        if not self.enabled or (self.calls is not None and self.count >= self.calls):
            return None
        x = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        out = output[0] if isinstance(output, (tuple, list)) else output
        H = int(self.weights["router_weight"].shape[-1])
        inter = self.intermediates(module) if callable(self.intermediates) else (self.intermediates or {})
        path = self.path.format(layer=self.layer, call=self.count)
        capture_moe_layer(path, x=_flat(x, H, "the layer input"), out=_flat(out, H, "the layer output"),
                          layer=self.layer, **self.weights, **inter, **self.kw)
        self.count += 1
        self.paths.append(path)
        return None
