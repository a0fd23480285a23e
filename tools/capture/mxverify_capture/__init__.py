"""mxverify_capture: write mxverify capture files (docs/capture-format.md)
from numpy arrays or torch tensors, and emulate the production MXFP8 /
BF16 grouped GEMMs and MX quantizer in numpy.

Writers (one file per call, written atomically, deterministic bytes):
    capture_mxfp8_group_gemm, capture_bf16_group_gemm, capture_mxfp8_gemm,
    capture_bf16_gemm, capture_mx_quant, capture_moe_layer
Emulations (numpy only):
    mxfp8_group_gemm, bf16_group_gemm, mx_quantize
Forward hook (torch's register_forward_hook, no torch import):
    MoELayerHook (one moe_layer capture per call of an MoE block)
Helpers:
    checkpoint_weights_from_fnuz, read_capture, corrupt_element,
    formats (FP8 / E8M0 / BF16 codes), CaptureError
Only numpy is required; torch tensors are accepted when the caller has
torch, and ml_dtypes arrays when the caller has ml_dtypes.
"""
from . import formats
from .capture import (FORMAT_VERSION, capture_bf16_gemm, capture_bf16_group_gemm,
                      capture_moe_layer, capture_mx_quant, capture_mxfp8_gemm,
                      capture_mxfp8_group_gemm,
                      checkpoint_weights_from_fnuz, corrupt_element, read_capture)
from .emulate import bf16_group_gemm, mx_quantize, mxfp8_group_gemm
from ._validate import ACCUM_MODELS, SCALE_RULES
from .hooks import MoELayerHook
from .tensors import CaptureError

__version__ = "1.0"

__all__ = [
    "FORMAT_VERSION", "CaptureError", "formats",
    "capture_mxfp8_group_gemm", "capture_bf16_group_gemm", "capture_mxfp8_gemm",
    "capture_bf16_gemm", "capture_mx_quant",
    "capture_moe_layer", "mxfp8_group_gemm", "bf16_group_gemm", "mx_quantize",
    "checkpoint_weights_from_fnuz", "read_capture", "corrupt_element", "MoELayerHook",
    "ACCUM_MODELS", "SCALE_RULES",
]
