#!/usr/bin/env python3
"""Generate edgec's small ONNX test models, their reference .npz files and malformed inputs.

    .venv/bin/python testdata/gen_models.py            # (re)write everything
    .venv/bin/python testdata/gen_models.py --list     # list model names
    .venv/bin/python testdata/gen_models.py tiny_cnn   # only some models
    .venv/bin/python testdata/gen_models.py --check    # regenerate in a temp dir, compare bytes

Output:
    testdata/models/<name>.onnx   valid models (opset 17, ir_version 8 unless the case says so)
    testdata/models/<name>.npz    input:<onnx input name> and output:<onnx output name> arrays,
                                  outputs from onnxruntime CPU (one thread)
    testdata/bad/<name>.onnx      malformed models (no .npz)

Everything is deterministic: each model has its own numpy Generator seeded from crc32(name),
producer fields are fixed, the .npz zips are written by edgec_py.save_npz_deterministic (fixed
timestamps, no zip64 records; np.savez's headers differ between Python 3.11.2 and 3.11.7), and
onnxruntime runs on one thread. Re-running rewrites identical bytes on the same machine, with
either Python; `--check` verifies that. On a different CPU, onnxruntime's float
results could differ in the last bits, so compare outputs with a tolerance, not bytewise.
"""

from __future__ import annotations

import argparse
import copy
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgec_py import (  # noqa: E402
    make_inputs,
    name_seed,
    ort_run,
    reference_arrays,
    save_npz_deterministic,
)

PRODUCER_NAME = "edgec-testdata"
PRODUCER_VERSION = "1"
DEFAULT_OPSET = 17
DEFAULT_IR = 8
MAX_BYTES = 200 * 1024
FLOAT = TensorProto.FLOAT


# --------------------------------------------------------------------------------------------
# A tiny graph builder
# --------------------------------------------------------------------------------------------


class B:
    """Collects nodes, initializers and I/O for one model; seeded from the model name."""

    def __init__(self, name: str, opset: int = DEFAULT_OPSET, ir_version: int = DEFAULT_IR):
        self.name = name
        self.opset = opset
        self.ir_version = ir_version
        self.rng = np.random.default_rng(name_seed(name, 0x5EED))
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[onnx.TensorProto] = []
        self.inputs: List[onnx.ValueInfoProto] = []
        self.outputs: List[str] = []
        self.output_types: Dict[str, int] = {}
        # declared output shapes: the raw (bad) models', and where ONNX shape inference finds
        # none (a Loop's results)
        self.output_shapes: Dict[str, list] = {}
        # name -> (scale, shift) applied to the standard-normal reference input
        self.input_affine: Dict[str, tuple] = {}
        self.shape_overrides: Dict[str, tuple] = {}
        self.inits_as_inputs = False
        # name -> array fed instead of random data (values the model needs in range)
        self.fixed_inputs: Dict[str, np.ndarray] = {}
        # applied to the built model (a quantizer's rewrite, say)
        self.postprocess: Optional[Callable[[onnx.ModelProto], onnx.ModelProto]] = None
        self._n = 0

    # I/O ------------------------------------------------------------------------------------
    def input(self, name, shape, dtype=FLOAT, scale=1.0, shift=0.0):
        self.inputs.append(helper.make_tensor_value_info(name, dtype, shape))
        if scale != 1.0 or shift != 0.0:
            self.input_affine[name] = (scale, shift)
        return name

    def output(self, *names, dtype=FLOAT, shape=None):
        for n in names:
            self.outputs.append(n)
            self.output_types[n] = dtype
            if shape is not None:
                self.output_shapes[n] = shape

    # initializers -----------------------------------------------------------------------------
    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, name, shape, fan_in=None, scale=None):
        """Normal weights, scaled like He init so activations stay around 1."""
        if scale is None:
            fan_in = fan_in or int(np.prod(shape[1:])) or 1
            scale = float(np.sqrt(2.0 / fan_in))
        return self.const(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def bias(self, name, n):
        return self.const(name, (self.rng.standard_normal(n) * 0.1).astype(np.float32))

    def positive(self, name, shape, lo=0.5, hi=1.5):
        return self.const(name, self.rng.uniform(lo, hi, shape).astype(np.float32))

    def i64(self, name, values):
        return self.const(name, np.asarray(values, dtype=np.int64))

    def f32(self, name, values):
        return self.const(name, np.asarray(values, dtype=np.float32))

    # nodes ------------------------------------------------------------------------------------
    def node(self, op, inputs, outputs, name=None, domain=None, **attrs):
        if isinstance(outputs, str):
            outputs = [outputs]
        if name is None:
            name = f"{op}_{self._n}"
        self._n += 1
        kw = {"domain": domain} if domain is not None else {}
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **kw, **attrs))
        return outputs[0]

    def conv(self, x, cin, cout, k, out=None, group=1, bias=True, prefix=None, **attrs):
        prefix = prefix or f"conv{self._n}"
        ks = list(k) if isinstance(k, (list, tuple)) else [k, k]
        w = self.weight(f"{prefix}.weight", [cout, cin // group] + ks)
        ins = [x, w]
        if bias:
            ins.append(self.bias(f"{prefix}.bias", cout))
        if group != 1:
            attrs["group"] = group
        return self.node("Conv", ins, out or f"{prefix}_out", kernel_shape=ks, **attrs)

    def bn(self, x, c, out=None, prefix=None, epsilon=1e-5):
        prefix = prefix or f"bn{self._n}"
        s = self.positive(f"{prefix}.scale", [c])
        b = self.bias(f"{prefix}.bias", c)
        m = self.const(f"{prefix}.mean", (self.rng.standard_normal(c) * 0.1).astype(np.float32))
        v = self.positive(f"{prefix}.var", [c])
        return self.node("BatchNormalization", [x, s, b, m, v], out or f"{prefix}_out",
                         epsilon=epsilon)

    # model ------------------------------------------------------------------------------------
    def build(self) -> onnx.ModelProto:
        graph_inputs = list(self.inputs)
        if self.inits_as_inputs:
            for t in self.inits:
                graph_inputs.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        outs = [helper.make_tensor_value_info(n, self.output_types[n], self.output_shapes.get(n))
                for n in self.outputs]
        graph = helper.make_graph(self.nodes, self.name, graph_inputs, outs, self.inits)
        m = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            ir_version=self.ir_version,
            producer_name=PRODUCER_NAME,
            producer_version=PRODUCER_VERSION,
        )
        return fill_output_shapes(m)


def fill_output_shapes(m: onnx.ModelProto) -> onnx.ModelProto:
    """Give every graph output the shape ONNX shape inference finds; keep no value_info."""
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in m.graph.output:
        vi = known.get(out.name)
        if vi is not None and vi.type.tensor_type.HasField("shape"):
            out.type.CopyFrom(vi.type)
    return m


# --------------------------------------------------------------------------------------------
# Valid models
# --------------------------------------------------------------------------------------------

MODELS: Dict[str, Callable[[], "B"]] = {}
DESCRIPTIONS: Dict[str, str] = {}


def model(desc: str):
    def deco(fn):
        MODELS[fn.__name__] = fn
        DESCRIPTIONS[fn.__name__] = desc
        return fn
    return deco


@model("README example: Conv(s2,p1)+BN+Relu, depthwise Conv+BN+Clip(0,6) (opset-11 input form), "
       "pointwise Conv+BN, residual Add, GlobalAveragePool, Flatten, Gemm(transB=1) -> logits, "
       "Softmax -> probs")
def tiny_cnn():
    b = B("tiny_cnn")
    x = b.input("input", [1, 3, 32, 32])
    c = 8
    t = b.conv(x, 3, c, 3, prefix="stem", strides=[2, 2], pads=[1, 1, 1, 1])
    t = b.bn(t, c, prefix="stem_bn")
    skip = b.node("Relu", [t], "stem_relu")
    t = b.conv(skip, c, c, 3, group=c, prefix="dw", pads=[1, 1, 1, 1])
    t = b.bn(t, c, prefix="dw_bn")
    lo = b.f32("clip_min", 0.0)
    hi = b.f32("clip_max", 6.0)
    t = b.node("Clip", [t, lo, hi], "dw_relu6")
    t = b.conv(t, c, c, 1, prefix="pw")
    t = b.bn(t, c, prefix="pw_bn")
    t = b.node("Add", [t, skip], "residual")
    t = b.node("GlobalAveragePool", [t], "gap")
    t = b.node("Flatten", [t], "flat", axis=1)
    w = b.weight("fc.weight", [10, c])
    bias = b.bias("fc.bias", 10)
    b.node("Gemm", [t, w, bias], "logits", transB=1)
    b.node("Softmax", ["logits"], "probs", axis=1)
    b.output("logits", "probs")
    return b


@model("Conv with explicit asymmetric pads [0,1,2,1] and strides [2,1], non-square kernel 3x2")
def conv_pads_asym():
    b = B("conv_pads_asym")
    x = b.input("x", [1, 2, 8, 7])
    b.conv(x, 2, 3, [3, 2], out="y", pads=[0, 1, 2, 1], strides=[2, 1])
    b.output("y")
    return b


@model("Conv auto_pad=SAME_UPPER, k3 s2 on 8x8 (odd total pad 1 goes to the end)")
def conv_auto_pad_same_upper():
    b = B("conv_auto_pad_same_upper")
    x = b.input("x", [1, 2, 8, 8])
    b.conv(x, 2, 3, 3, out="y", auto_pad="SAME_UPPER", strides=[2, 2])
    b.output("y")
    return b


@model("Conv auto_pad=SAME_LOWER, even kernel 4 s2 on 7x7 (total pad 3: 2 at the start, 1 at the end)")
def conv_auto_pad_same_lower():
    b = B("conv_auto_pad_same_lower")
    x = b.input("x", [1, 2, 7, 7])
    b.conv(x, 2, 3, 4, out="y", auto_pad="SAME_LOWER", strides=[2, 2])
    b.output("y")
    return b


@model("Conv auto_pad=VALID, k3 s2 on 9x8 (non-divisible remainder is dropped)")
def conv_auto_pad_valid():
    b = B("conv_auto_pad_valid")
    x = b.input("x", [1, 2, 9, 8])
    b.conv(x, 2, 3, 3, out="y", auto_pad="VALID", strides=[2, 2])
    b.output("y")
    return b


@model("Conv with dilations [2,2], group 2 (4->4 channels), pads 2")
def conv_dilated_grouped():
    b = B("conv_dilated_grouped")
    x = b.input("x", [1, 4, 10, 10])
    b.conv(x, 4, 4, 3, out="y", group=2, dilations=[2, 2], pads=[2, 2, 2, 2])
    b.output("y")
    return b


@model("1-D Conv on a rank-3 input [1,3,16], k3 s2 p1, with bias")
def conv1d():
    b = B("conv1d")
    x = b.input("x", [1, 3, 16])
    b.conv(x, 3, 4, [3], out="y", strides=[2], pads=[1, 1])
    b.output("y")
    return b


@model("Conv without the bias input: 1x1 then 3x3 (kernel_shape attribute given)")
def conv_no_bias():
    b = B("conv_no_bias")
    x = b.input("x", [1, 3, 6, 6])
    t = b.conv(x, 3, 4, 1, bias=False, prefix="c1")
    b.conv(t, 4, 2, 3, out="y", bias=False, prefix="c2")
    b.output("y")
    return b


@model("BatchNormalization not after a Conv: after an Add (y) and directly on a graph input (z)")
def batchnorm_standalone():
    b = B("batchnorm_standalone")
    a = b.input("a", [1, 4, 6, 6])
    c = b.input("b", [1, 4, 6, 6])
    t = b.node("Add", [a, c], "sum")
    b.bn(t, 4, out="y", prefix="bn_add", epsilon=1e-3)
    b.bn(a, 4, out="z", prefix="bn_input")
    b.output("y", "z")
    return b


@model("Relu, and Clip (opset 17 input form) with min only, max only (empty min input), both, neither")
def relu_clip_variants():
    b = B("relu_clip_variants")
    x = b.input("x", [1, 4, 5, 5], scale=2.0)
    b.node("Relu", [x], "relu")
    b.node("Clip", [x, b.f32("min_only", -0.5)], "clip_min")
    b.node("Clip", [x, "", b.f32("max_only", 0.5)], "clip_max")
    b.node("Clip", [x, b.f32("both_min", -1.0), b.f32("both_max", 1.5)], "clip_both")
    b.node("Clip", [x], "clip_none")
    b.output("relu", "clip_min", "clip_max", "clip_both", "clip_none")
    return b


@model("opset 6 Clip with min/max attributes: both (y_both) and min only (y_min, max defaults to FLT_MAX)")
def clip_opset6():
    b = B("clip_opset6", opset=6)
    x = b.input("x", [1, 4, 5, 5], scale=2.0)
    b.node("Clip", [x], "y_both", min=-1.0, max=1.0)
    b.node("Clip", [x], "y_min", min=0.0)
    b.output("y_both", "y_min")
    return b


@model("opset 14: Sigmoid, HardSigmoid(alpha=0.3, beta=0.4), HardSigmoid defaults, HardSwish; "
       "input scaled x4 to reach the saturated ranges")
def sigmoid_hardsigmoid_hardswish():
    b = B("sigmoid_hardsigmoid_hardswish", opset=14)
    x = b.input("x", [1, 3, 4, 4], scale=4.0)
    b.node("Sigmoid", [x], "sigmoid")
    b.node("HardSigmoid", [x], "hardsigmoid", alpha=0.3, beta=0.4)
    b.node("HardSigmoid", [x], "hardsigmoid_default")
    b.node("HardSwish", [x], "hardswish")
    b.output("sigmoid", "hardsigmoid", "hardsigmoid_default", "hardswish")
    return b


@model("MaxPool ceil_mode=1, k3 s2 on 8x10 -> 4x5 (floor would give 3x4)")
def maxpool_ceil():
    b = B("maxpool_ceil")
    x = b.input("x", [1, 2, 8, 10])
    b.node("MaxPool", [x], "y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    b.output("y")
    return b


@model("MaxPool with pads: symmetric k3 s1 p1 (y_same) and asymmetric pads [0,1,1,0] k3 s2 "
       "(y_asym); input shifted by -1 so -inf padding (not 0) matters")
def maxpool_pads():
    b = B("maxpool_pads")
    x = b.input("x", [1, 2, 6, 6], shift=-1.0)
    b.node("MaxPool", [x], "y_same", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b.node("MaxPool", [x], "y_asym", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0])
    b.output("y_same", "y_asym")
    return b


@model("AveragePool k3 s2 pads 1 with count_include_pad=1 (padding zeros count in the divisor)")
def avgpool_count_include_pad():
    b = B("avgpool_count_include_pad")
    x = b.input("x", [1, 2, 7, 7], shift=1.0)
    b.node("AveragePool", [x], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
           count_include_pad=1)
    b.output("y")
    return b


@model("AveragePool k3 s2 pads 1 with count_include_pad=0 (the default; divisor excludes padding)")
def avgpool_exclude_pad():
    b = B("avgpool_exclude_pad")
    x = b.input("x", [1, 2, 7, 7], shift=1.0)
    b.node("AveragePool", [x], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
           count_include_pad=0)
    b.output("y")
    return b


@model("GlobalAveragePool on a non-square [1,3,5,7] input -> [1,3,1,1]")
def global_avgpool():
    b = B("global_avgpool")
    x = b.input("x", [1, 3, 5, 7])
    b.node("GlobalAveragePool", [x], "y")
    b.output("y")
    return b


@model("Add/Sub/Mul/Div broadcasting: input+input ([1,4,5,5]+[1,1,5,5]), smaller operand first, "
       "rank-0 scalar initializer on the left, [C,1,1] and [1,C,1,1] initializers, rank-1 input, "
       "division by a computed non-constant tensor")
def binary_broadcast():
    b = B("binary_broadcast")
    a = b.input("a", [1, 4, 5, 5])
    bb = b.input("b", [1, 1, 5, 5])
    c = b.input("c", [5])
    b.node("Add", [a, bb], "add_dyn")
    b.node("Sub", [bb, a], "sub_small_first")
    b.node("Sub", [b.f32("half", 0.5), a], "sub_scalar_left")
    b.node("Mul", [a, b.positive("k_c11", [4, 1, 1])], "mul_c11")
    b.node("Div", [a, b.positive("d_1c11", [1, 4, 1, 1])], "div_1c11")
    b.node("Add", [c, a], "add_rank1")
    sq = b.node("Mul", [c, c], "c_sq")
    den = b.node("Add", [sq, b.f32("one", 1.0)], "den")
    b.node("Div", [bb, den], "div_dyn")
    b.output("add_dyn", "sub_small_first", "sub_scalar_left", "mul_c11", "div_1c11", "add_rank1",
             "div_dyn")
    return b


@model("Concat with negative axes: two inputs on axis -3, input + constant initializer on axis -1")
def concat_axis_neg():
    b = B("concat_axis_neg")
    a = b.input("a", [1, 2, 4, 4])
    c = b.input("b", [1, 3, 4, 4])
    b.node("Concat", [a, c], "y_channels", axis=-3)
    k = b.const("k", b.rng.standard_normal([1, 2, 4, 2]).astype(np.float32))
    b.node("Concat", [a, k], "y_width", axis=-1)
    b.output("y_channels", "y_width")
    return b


@model("Flatten of [2,3,4,5] with axis 0 ([1,120]), 1 ([2,60]), 2 ([6,20]) and -1 ([24,5])")
def flatten_axis():
    b = B("flatten_axis")
    x = b.input("x", [2, 3, 4, 5])
    b.node("Flatten", [x], "f0", axis=0)
    b.node("Flatten", [x], "f1", axis=1)
    b.node("Flatten", [x], "f2", axis=2)
    b.node("Flatten", [x], "fneg", axis=-1)
    b.output("f0", "f1", "f2", "fneg")
    return b


@model("Reshape of [2,3,4,5] with constant shapes [0,-1,5], [0,0,-1] and [-1] (rank-1 result)")
def reshape_zero_minus_one():
    b = B("reshape_zero_minus_one")
    x = b.input("x", [2, 3, 4, 5])
    b.node("Reshape", [x, b.i64("shape_a", [0, -1, 5])], "y_a")
    b.node("Reshape", [x, b.i64("shape_b", [0, 0, -1])], "y_b")
    b.node("Reshape", [x, b.i64("shape_c", [-1])], "y_c")
    b.output("y_a", "y_b", "y_c")
    return b


@model("Transpose without a perm attribute (reverses the axes): [2,3,4] -> [4,3,2]")
def transpose_default_perm():
    b = B("transpose_default_perm")
    x = b.input("x", [2, 3, 4])
    b.node("Transpose", [x], "y")
    b.output("y")
    return b


@model("Transpose with perm [0,2,3,1] (NCHW->NHWC): [1,2,3,4] -> [1,3,4,2]")
def transpose_perm():
    b = B("transpose_perm")
    x = b.input("x", [1, 2, 3, 4])
    b.node("Transpose", [x], "y", perm=[0, 2, 3, 1])
    b.output("y")
    return b


@model("Gemm: transA=1 transB=0 alpha=0.5 beta=2 C[N] (y1); transB=1 alpha=1.5 beta=0.25 C[M,N] "
       "(y2); two dynamic inputs, no C (y3)")
def gemm_variants():
    b = B("gemm_variants")
    at = b.input("a_t", [4, 3])
    a = b.input("a", [3, 4])
    bd = b.input("b", [4, 5])
    w1 = b.weight("w1", [4, 5], fan_in=4)
    c1 = b.bias("c1", 5)
    b.node("Gemm", [at, w1, c1], "y1", transA=1, transB=0, alpha=0.5, beta=2.0)
    w2 = b.weight("w2", [5, 4], fan_in=4)
    c2 = b.const("c2", (b.rng.standard_normal([3, 5]) * 0.1).astype(np.float32))
    b.node("Gemm", [a, w2, c2], "y2", transB=1, alpha=1.5, beta=0.25)
    b.node("Gemm", [a, bd], "y3")
    b.output("y1", "y2", "y3")
    return b


@model("MatMul rank 3 x constant rank 2 ([2,3,4]x[4,5], y_const) and rank 3 x rank 3 input "
       "([2,3,4]x[2,4,6], y_dyn)")
def matmul_const_and_dynamic():
    b = B("matmul_const_and_dynamic")
    a = b.input("a", [2, 3, 4])
    bd = b.input("b", [2, 4, 6])
    w = b.weight("w", [4, 5], fan_in=4)
    b.node("MatMul", [a, w], "y_const")
    b.node("MatMul", [a, bd], "y_dyn")
    b.output("y_const", "y_dyn")
    return b


@model("int32 MatMul (MIL's matmul takes int32): a [2,3,4] by a constant [4,5] (y_const) and by a "
       "second input [4,6] broadcast over the batch (y_dyn); products exceed fp16's and fp32's exact "
       "integer range, so a float detour would show")
def matmul_int32():
    b = B("matmul_int32")
    rng = np.random.default_rng(7)
    a = b.input("a", [2, 3, 4], dtype=TensorProto.INT32)
    b.fixed_inputs["a"] = rng.integers(-3000, 3000, size=(2, 3, 4), dtype=np.int32)
    bd = b.input("b", [4, 6], dtype=TensorProto.INT32)
    b.fixed_inputs["b"] = rng.integers(-3000, 3000, size=(4, 6), dtype=np.int32)
    w = b.const("w", rng.integers(-3000, 3000, size=(4, 5), dtype=np.int32))
    b.node("MatMul", [a, w], "y_const")
    b.node("MatMul", [a, bd], "y_dyn")
    b.output("y_const", "y_dyn", dtype=TensorProto.INT32)
    return b


@model("GatherND with runtime indices: index pairs into x [3,4,5] (idx [2,2], negative ones "
       "included; y), and with batch_dims 1, one index into axis 1 per row (idx_b [3,2,1]; y_batch)")
def gather_nd_runtime():
    b = B("gather_nd_runtime")
    x = b.input("x", [3, 4, 5])
    idx = b.input("idx", [2, 2], dtype=TensorProto.INT64)
    b.fixed_inputs["idx"] = np.array([[2, -1], [-3, 3]], dtype=np.int64)
    idx_b = b.input("idx_b", [3, 2, 1], dtype=TensorProto.INT64)
    b.fixed_inputs["idx_b"] = np.array([3, -4, 0, 1, -1, 2], dtype=np.int64).reshape(3, 2, 1)
    b.node("GatherND", [x, idx], "y")
    b.node("GatherND", [x, idx_b], "y_batch", batch_dims=1)
    b.output("y", "y_batch")
    return b


@model("opset 13 Softmax on [2,3,4] along axis 1 (y_axis1) and axis -1 (y_last)")
def softmax_axis():
    b = B("softmax_axis", opset=13)
    x = b.input("x", [2, 3, 4])
    b.node("Softmax", [x], "y_axis1", axis=1)
    b.node("Softmax", [x], "y_last", axis=-1)
    b.output("y_axis1", "y_last")
    return b


@model("opset 11 Softmax axis=1 on [2,3,4]: coerced to 2-D [2,12], softmax over all 12 values")
def softmax_opset11():
    b = B("softmax_opset11", opset=11)
    x = b.input("x", [2, 3, 4])
    b.node("Softmax", [x], "y", axis=1)
    b.output("y")
    return b


@model("Unary float ops on x [2,3,4,5] (x2): Tanh, Exp, Erf, Abs, Neg, Floor, Ceil, Softplus, "
       "Elu (alpha 0.5 and default), LeakyRelu (alpha 0.2 and default); on a positive input p: "
       "Sqrt, Log, Reciprocal; Pow with constant exponents 2 (-> mul), 0.5 (-> sqrt), 1.5, "
       "int64 3 on x (cast to float, negative bases), and a dynamic exponent")
def unary_ops():
    b = B("unary_ops")
    x = b.input("x", [2, 3, 4, 5], scale=2.0)
    p = b.input("p", [2, 3, 4, 5], scale=0.5, shift=3.0)
    outs = []
    for op in ["Tanh", "Exp", "Erf", "Abs", "Neg", "Floor", "Ceil", "Softplus"]:
        outs.append(b.node(op, [x], op.lower()))
    outs.append(b.node("Elu", [x], "elu", alpha=0.5))
    outs.append(b.node("Elu", [x], "elu_default"))
    outs.append(b.node("LeakyRelu", [x], "leaky_relu", alpha=0.2))
    outs.append(b.node("LeakyRelu", [x], "leaky_relu_default"))
    for op in ["Sqrt", "Log", "Reciprocal"]:
        outs.append(b.node(op, [p], op.lower()))
    outs.append(b.node("Pow", [p, b.f32("two", 2.0)], "pow_2"))
    outs.append(b.node("Pow", [p, b.f32("half", 0.5)], "pow_half"))
    outs.append(b.node("Pow", [p, b.f32("one_and_half", 1.5)], "pow_1_5"))
    outs.append(b.node("Pow", [x, b.i64("three", 3)], "pow_int_exponent"))
    scaled = b.node("Mul", [x, b.f32("tenth", 0.1)], "small_exponent")
    outs.append(b.node("Pow", [p, scaled], "pow_dynamic"))
    b.output(*outs)
    return b


@model("opset 20 Gelu, exact (approximate='none', the default) and approximate='tanh'")
def gelu_opset20():
    b = B("gelu_opset20", opset=20, ir_version=9)
    x = b.input("x", [2, 3, 8], scale=2.0)
    b.node("Gelu", [x], "gelu_exact")
    b.node("Gelu", [x], "gelu_tanh", approximate="tanh")
    b.output("gelu_exact", "gelu_tanh")
    return b


@model("opset 17 reductions on x [2,3,4,5]: ReduceMean axes [1] (keepdims default 1), ReduceSum "
       "axes input [-1] keepdims 0, ReduceMax axes [1,2] keepdims 0, ReduceMin without axes (all, "
       "keepdims 1), ReduceProd axes [2] on values near 1, ReduceL2 on scattered axes [0,2], "
       "ReduceSum with no axes and noop_with_empty_axes=1 (identity)")
def reduce_ops():
    b = B("reduce_ops")
    x = b.input("x", [2, 3, 4, 5])
    q = b.input("q", [2, 3, 4, 5], scale=0.2, shift=1.0)
    b.node("ReduceMean", [x], "mean_axis1", axes=[1])
    b.node("ReduceSum", [x, b.i64("last", [-1])], "sum_last", keepdims=0)
    b.node("ReduceMax", [x], "max_12", axes=[1, 2], keepdims=0)
    b.node("ReduceMin", [x], "min_all")
    b.node("ReduceProd", [q], "prod_axis2", axes=[2])
    b.node("ReduceL2", [x], "l2_02", axes=[0, 2])
    b.node("ReduceSum", [x], "sum_noop", noop_with_empty_axes=1)
    b.output("mean_axis1", "sum_last", "max_12", "min_all", "prod_axis2", "l2_02", "sum_noop")
    return b


@model("opset 18 reductions with axes as an input: ReduceMean axes [1,-1] keepdims 0, ReduceL2 "
       "axes [1], ReduceMax without axes (all; keepdims default 1 -> [1,1,1])")
def reduce_opset18():
    b = B("reduce_opset18", opset=18)
    x = b.input("x", [2, 3, 4])
    b.node("ReduceMean", [x, b.i64("axes_mean", [1, -1])], "mean", keepdims=0)
    b.node("ReduceL2", [x, b.i64("axes_l2", [1])], "l2")
    b.node("ReduceMax", [x], "max_all")
    b.output("mean", "l2", "max_all")
    return b


@model("Pad (opset 13+ input form, int64 pads initializer) on [1,2,4,5]: constant with value 1.5, "
       "reflect, edge, edge wider than its axes (9 before an axis of 4, 11 after one of 5: MIL's "
       "replicate pads at most the axis, so the back end chains pads), and constant with default "
       "value padding the channel axis")
def pad_modes():
    b = B("pad_modes")
    x = b.input("x", [1, 2, 4, 5])
    b.node("Pad", [x, b.i64("pads_const", [0, 0, 1, 2, 0, 0, 2, 1]), b.f32("pad_value", 1.5)],
           "y_constant", mode="constant")
    b.node("Pad", [x, b.i64("pads_reflect", [0, 0, 2, 1, 0, 0, 1, 3])], "y_reflect", mode="reflect")
    b.node("Pad", [x, b.i64("pads_edge", [0, 0, 0, 3, 0, 0, 2, 0])], "y_edge", mode="edge")
    b.node("Pad", [x, b.i64("pads_edge_wide", [0, 0, 9, 0, 0, 0, 1, 11])], "y_edge_wide", mode="edge")
    b.node("Pad", [x, b.i64("pads_channel", [0, 1, 0, 0, 0, 1, 0, 0])], "y_channel")
    b.output("y_constant", "y_reflect", "y_edge", "y_edge_wide", "y_channel")
    return b


@model("Identity, Dropout with one output and a ratio input (inference: a no-op), a Constant node feeding an Add (y), "
       "and an output that is just Identity of the graph input (x_copy)")
def identity_dropout_constant():
    b = B("identity_dropout_constant")
    x = b.input("x", [1, 3, 4, 4])
    t = b.node("Identity", [x], "ident")
    t = b.node("Dropout", [t, b.f32("ratio", 0.5)], "drop")
    kval = b.rng.standard_normal([1, 3, 1, 1]).astype(np.float32)
    k = b.node("Constant", [], "k", value=numpy_helper.from_array(kval, "k_value"))
    b.node("Add", [t, k], "y")
    b.node("Identity", [x], "x_copy")
    b.output("y", "x_copy")
    return b


@model("exporter-style and hostile names: input 'input.1', initializers 'conv.weight', tensors "
       "'/conv/Conv_output_0', '123' (also a graph output), 'a:b', outputs 'x.y' and 'x_y' that "
       "collide after sanitising, a node with an empty name")
def weird_names():
    b = B("weird_names")
    x = b.input("input.1", [1, 2, 6, 6])
    t = b.conv(x, 2, 2, 3, out="/conv/Conv_output_0", prefix="conv", name="/conv/Conv",
               pads=[1, 1, 1, 1])
    t = b.node("Relu", [t], "123", name="/relu/Relu")
    s = b.node("Sigmoid", [t], "a:b", name="a:b")
    u = b.node("Add", [s, t], "x.y", name="x.y")
    b.node("Mul", [u, x], "x_y", name="")
    b.output("x.y", "x_y", "123")
    return b


@model("ir_version 3 style (opset 8): every initializer is also listed in graph.input")
def init_also_input():
    b = B("init_also_input", opset=8, ir_version=3)
    b.inits_as_inputs = True
    x = b.input("x", [1, 3, 6, 6])
    t = b.conv(x, 3, 4, 3, prefix="conv", pads=[1, 1, 1, 1])
    t = b.node("Relu", [t], "relu")
    b.node("Add", [t, b.positive("offset", [1, 4, 1, 1])], "y")
    b.output("y")
    return b


@model("dynamic batch: input [batch,3,8,8] (dim_param 'batch') -> Conv, Relu, GlobalAveragePool, "
       "Flatten, Gemm -> [batch,5]; reference uses batch=1 (--input-shape input=1x3x8x8)")
def dynamic_batch():
    b = B("dynamic_batch")
    x = b.input("input", ["batch", 3, 8, 8])
    b.shape_overrides["input"] = (1, 3, 8, 8)
    t = b.conv(x, 3, 4, 3, prefix="conv", pads=[1, 1, 1, 1])
    t = b.node("Relu", [t], "relu")
    t = b.node("GlobalAveragePool", [t], "gap")
    t = b.node("Flatten", [t], "flat", axis=1)
    b.node("Gemm", [t, b.weight("fc.weight", [5, 4]), b.bias("fc.bias", 5)], "output", transB=1)
    b.output("output")
    return b


@model("Conv+Relu whose initializers all live in external_data.onnx.data (onnx external data, "
       "size_threshold=0, one file)")
def external_data():
    b = B("external_data")
    x = b.input("x", [1, 3, 8, 8])
    t = b.conv(x, 3, 4, 3, prefix="conv", pads=[1, 1, 1, 1])
    b.node("Relu", [t], "y")
    b.output("y")
    return b


EXTERNAL = {"external_data": "external_data.onnx.data"}


@model("a BERT-style layer exported with dynamic axes: int64 input_ids/attention_mask "
       "[batch,sequence] (reference batch=2, sequence=6; --input-shape input_ids=2x6 "
       "--input-shape attention_mask=2x6). Embedding Gathers, positions from Shape->Gather->"
       "Range->Unsqueeze, LayerNorm (eps 1e-12), fused QKV MatMul split with Split, head reshapes "
       "whose shapes come from Shape->Gather->Unsqueeze->Concat, scaled attention with a causal "
       "LessOrEqual/And/Or/Equal/Not mask and Where, Softmax, Reshape with 0/-1, erf GELU, Slice+Squeeze "
       "pooler, Expand, and ArgMax (an int64 output)")
def tiny_bert_dynamic():
    b = B("tiny_bert_dynamic")
    INT64 = TensorProto.INT64
    ids = b.input("input_ids", ["batch", "sequence"], dtype=INT64)
    mask = b.input("attention_mask", ["batch", "sequence"], dtype=INT64)
    b.shape_overrides.update({"input_ids": (2, 6), "attention_mask": (2, 6)})
    hidden, heads, head_dim = 8, 2, 4
    word = b.node("Gather", [b.weight("wte", [16, hidden], scale=0.5), ids], "word")
    shape = b.node("Shape", [ids], "ids_shape")
    batch = b.node("Gather", [shape, b.i64("zero", 0)], "batch")
    seq = b.node("Gather", [shape, b.i64("one", 1)], "seq")
    positions = b.node("Range", [b.i64("range_start", 0), seq, b.i64("range_step", 1)], "positions")
    positions2d = b.node("Unsqueeze", [positions, b.i64("axis0", [0])], "positions2d")
    pos = b.node("Gather", [b.weight("wpe", [32, hidden], scale=0.5), positions2d], "pos")
    emb = b.node("Add", [word, pos], "emb")
    scale = b.node("Expand", [b.positive("emb_scale", [1, 1, hidden]),
                              b.node("Shape", [emb], "emb_shape")], "emb_scale_full")
    emb = b.node("Mul", [emb, scale], "emb_scaled")
    ln = b.node("LayerNormalization", [emb, b.positive("ln.gamma", [hidden]), b.bias("ln.beta", hidden)],
                "ln", epsilon=1e-12)
    qkv = b.node("Add", [b.node("MatMul", [ln, b.weight("qkv.weight", [hidden, 3 * hidden])], "qkv_mm"),
                         b.bias("qkv.bias", 3 * hidden)], "qkv")
    b.node("Split", [qkv, b.i64("qkv_split", [hidden] * 3)], ["q", "k", "v"], axis=2)
    b_1d = b.node("Unsqueeze", [batch, b.i64("axes0", [0])], "batch_1d")
    s_1d = b.node("Unsqueeze", [seq, b.i64("axes0b", [0])], "seq_1d")
    heads_shape = b.node("Concat", [b_1d, s_1d, b.i64("heads", [heads]), b.i64("head_dim", [head_dim])],
                         "heads_shape", axis=0)
    split = {}
    for name, perm in [("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])]:
        r = b.node("Reshape", [name, heads_shape], f"{name}_heads")
        split[name] = b.node("Transpose", [r], f"{name}_t", perm=perm)
    scores = b.node("Div", [b.node("MatMul", [split["q"], split["k"]], "qk"),
                            b.node("Sqrt", [b.f32("head_dim_f", float(head_dim))], "sqrt_d")], "scores")
    rows = b.node("Unsqueeze", [positions, b.i64("axes1", [1])], "rows")
    cols = b.node("Unsqueeze", [positions, b.i64("axes0c", [0])], "cols")
    causal = b.node("LessOrEqual", [cols, rows], "causal")
    present = b.node("Cast", [b.node("Unsqueeze", [mask, b.i64("axes12", [1, 2])], "mask4d")], "present",
                     to=TensorProto.BOOL)
    # Every row keeps its own position, so no row is fully masked (that softmax would only
    # compare rounding noise of -1e4 + score, and fp16 rightly disagrees with fp32 there).
    diagonal = b.node("Equal", [rows, cols], "diagonal")
    keep = b.node("Or", [b.node("And", [causal, present], "causal_present"), diagonal], "keep")
    bias = b.node("Where", [b.node("Not", [keep], "masked"), b.f32("neg_big", -1e4), b.f32("zero_f", 0.0)],
                  "mask_bias")
    probs = b.node("Softmax", [b.node("Add", [scores, bias], "scores_masked")], "probs", axis=-1)
    ctx = b.node("Transpose", [b.node("MatMul", [probs, split["v"]], "ctx_heads")], "ctx_t", perm=[0, 2, 1, 3])
    ctx = b.node("Reshape", [ctx, b.i64("merge_shape", [0, 0, -1])], "ctx")
    h = b.node("Add", [b.node("MatMul", [ctx, b.weight("ff.weight", [hidden, hidden])], "ff"), ln], "residual")
    half = b.node("Mul", [h, b.f32("half_f", 0.5)], "h_half")
    erf = b.node("Erf", [b.node("Div", [h, b.f32("sqrt2", 1.4142135)], "h_scaled")], "h_erf")
    gelu = b.node("Mul", [half, b.node("Add", [erf, b.f32("one_f", 1.0)], "erf_plus_1")], "gelu")
    out = b.node("LayerNormalization", [gelu, b.positive("ln2.gamma", [hidden]), b.bias("ln2.beta", hidden)],
                 "last_hidden_state", epsilon=1e-5)
    first = b.node("Slice", [out, b.i64("s0", [0]), b.i64("s1", [1]), b.i64("s_axes", [1])], "first_token")
    first = b.node("Squeeze", [first, b.i64("sq_axes", [1])], "first_2d")
    b.node("Tanh", [b.node("Gemm", [first, b.weight("pool.weight", [hidden, hidden]), b.bias("pool.bias", hidden)],
                               "pool_dense", transB=1)], "pooler_output")
    b.node("ArgMax", [out], "top_feature", axis=-1, keepdims=0)
    b.output("last_hidden_state", "pooler_output")
    b.output("top_feature", dtype=INT64)
    return b


@model("indexing and logic on x [3,4,5]: Gather with negative and scalar constant indices, Gather "
       "of a [12,5] table by a runtime int64 index input, GatherElements with negative indices, "
       "Slice with a negative step and INT64_MAX ends, Split (equal, and sizes input), "
       "Unsqueeze/Squeeze, Tile, Expand, Greater/LessOrEqual/Equal, Or/Xor/Not, Where with a "
       "broadcast condition, ArgMin keepdims")
def indexing_ops():
    b = B("indexing_ops")
    INT64 = TensorProto.INT64
    x = b.input("x", [3, 4, 5])
    y = b.input("y", [3, 4, 5])
    idx = b.input("idx", [2, 2], dtype=INT64)
    outs = [
        b.node("Gather", [x, b.i64("neg_idx", [-1, 0])], "gather_neg", axis=1),
        b.node("Gather", [x, b.i64("scalar_idx", 2)], "gather_scalar", axis=2),
        b.node("Gather", [b.weight("table", [12, 5]), idx], "gather_runtime"),
        b.node("GatherElements", [x, b.i64("ge_idx", np.array([-1, 0, 2, -2] * 15).reshape(3, 4, 5) % 5 - 2)],
               "gather_elements", axis=2),
        b.node("Slice", [x, b.i64("r_start", [-1]), b.i64("r_end", [-(2**63)]), b.i64("r_axes", [2]),
                         b.i64("r_steps", [-2])], "slice_reverse"),
        b.node("Slice", [x, b.i64("m_start", [1, 0]), b.i64("m_end", [2**63 - 1, 3]), b.i64("m_axes", [0, 1])],
               "slice_max"),
    ]
    b.node("Split", [x], ["split_a", "split_b"], axis=1)
    b.node("Split", [x, b.i64("sizes", [1, 3])], ["split_1", "split_3"], axis=1)
    outs += ["split_a", "split_b", "split_1", "split_3"]
    u = b.node("Unsqueeze", [x, b.i64("u_axes", [0, -1])], "unsqueezed")
    outs.append(b.node("Squeeze", [u, b.i64("s_axes", [0])], "squeezed"))
    outs.append(b.node("Tile", [x, b.i64("reps", [1, 2, 1])], "tiled"))
    outs.append(b.node("Expand", [b.node("ReduceMean", [x], "row_mean", axes=[1]), b.i64("to", [2, 3, 4, 5])],
                       "expanded"))
    gt = b.node("Greater", [x, y], "gt")
    small = b.node("LessOrEqual", [x, b.f32("half_f", 0.5)], "small")
    either = b.node("Or", [gt, small], "either")
    odd = b.node("Xor", [either, b.node("Not", [gt], "not_gt")], "odd")
    outs.append(b.node("Where", [odd, x, y], "where_odd"))
    row_cond = b.node("Equal", [b.node("ArgMax", [x], "argmax_last", axis=2, keepdims=1), b.i64("two", 2)],
                      "argmax_is_2")
    outs.append(b.node("Where", [row_cond, b.f32("one_f", 1.0), y], "where_broadcast"))
    b.output(*outs)
    b.node("ArgMin", [x], "argmin", axis=1, keepdims=1)
    b.output("argmin", dtype=INT64)
    return b


@model("fp16 range guard, constant overflow: BatchNormalization on x [1,4,8] (x ~ 500 +- 700) whose "
       "running_var reaches 497,160 and running_mean 1,500 (beyond fp16's 65,504; folded to scale and "
       "shift), Div by 3e5 (kept in fp32), and a masked Softmax on s [2,6] adding "
       "Cast(s < 0) * finfo(float32).min (a sentinel: as +-inf, 0 * sentinel would be NaN)")
def fp16_const_overflow():
    b = B("fp16_const_overflow")
    x = b.input("x", [1, 4, 8], scale=700.0, shift=500.0)
    s = b.input("s", [2, 6])
    var = b.f32("bn.var", [497160.0, 250000.0, 1.0e5, 7.0e4])
    mean = b.f32("bn.mean", [1500.0, -800.0, 300.0, 0.0])
    b.node("BatchNormalization", [x, b.positive("bn.scale", [4]), b.bias("bn.bias", 4), mean, var], "bn_out")
    b.node("Div", [x, b.f32("big_divisor", 3.0e5)], "div_out")
    masked = b.node("Cast", [b.node("Less", [s, b.f32("zero", 0.0)], "negative")], "negative_f",
                    to=TensorProto.FLOAT)
    bias = b.node("Mul", [masked, b.f32("lowest", np.finfo(np.float32).min)], "mask_bias")
    b.node("Softmax", [b.node("Add", [s, bias], "s_masked")], "masked_softmax", axis=-1)
    b.output("bn_out", "div_out", "masked_softmax")
    return b


@model("fp16 range guard, constant underflow: an RMS norm x / sqrt(mean(x*x) + 1e-10) of x [2,16] whose "
       "second row is all zeros (the epsilon would round to 0 and give 0/0), and x * 1e-9 * 1e9 (the "
       "scalar multipliers would round to 0 and inf)")
def fp16_const_underflow():
    b = B("fp16_const_underflow")
    x = b.node("Mul", [b.input("input", [2, 16]), b.f32("row_mask", [[1.0], [0.0]])], "x")
    ms = b.node("ReduceMean", [b.node("Mul", [x, x], "x_sq")], "mean_sq", axes=[1], keepdims=1)
    root = b.node("Sqrt", [b.node("Add", [ms, b.f32("eps", 1e-10)], "mean_sq_eps")], "rms")
    b.node("Div", [x, root], "rms_normed")
    tiny = b.node("Mul", [x, b.f32("tiny", 1e-9)], "x_tiny")
    b.node("Mul", [tiny, b.f32("huge", 1e9)], "x_back")
    b.output("rms_normed", "x_back")
    return b


@model("fp16 activation underflow into log: x [1,64] ~ 1e-4 (input scaled), power = x*x (~1e-8, below "
       "fp16's smallest), log_power = Log(power) (-inf where fp16 flushed), out = log_power * 0.1 + 1")
def fp16_activation_underflow():
    b = B("fp16_activation_underflow")
    x = b.input("x", [1, 64], scale=1e-4)
    power = b.node("Mul", [x, x], "power")
    logp = b.node("Log", [power], "log_power")
    b.node("Add", [b.node("Mul", [logp, b.f32("tenth", 0.1)], "log_scaled"), b.f32("one", 1.0)], "out")
    b.output("out")
    return b


@model("fp16 cancellation in a written-out LayerNorm: h = x*0.05 + 300 on x [4,32], then "
       "(h - mean(h)) / sqrt(mean((h - mean(h))^2) + 1e-5): fp16's spacing at 300 (0.25) is five times "
       "the signal's spread")
def fp16_cancellation():
    b = B("fp16_cancellation")
    x = b.input("x", [4, 32])
    h = b.node("Add", [b.node("Mul", [x, b.f32("gain", 0.05)], "x_small"), b.f32("offset", 300.0)], "h")
    mean = b.node("ReduceMean", [h], "h_mean", axes=[1], keepdims=1)
    d = b.node("Sub", [h, mean], "centered")
    var = b.node("ReduceMean", [b.node("Mul", [d, d], "centered_sq")], "variance", axes=[1], keepdims=1)
    root = b.node("Sqrt", [b.node("Add", [var, b.f32("eps", 1e-5)], "variance_eps")], "std")
    b.node("Div", [d, root], "normalized")
    b.output("normalized")
    return b


@model("weights for compression tests, one per consumer family: x [1,16,8,8] -> Conv W[32,16,3,3] "
       "(4,608) -> Relu -> ConvTranspose W[32,16,2,2] (2,048: exactly the default threshold, so left "
       "dense) -> GlobalAveragePool -> Flatten -> Gemm transB W[192,16] (3,072); ids [1,6] int64 -> "
       "Gather of a [300,32] table (300 rows: no multiple of 16) -> MatMul W[32,192] -> ReduceMean over "
       "the tokens; out = their sum [1,192]")
def compressible():
    b = B("compressible")
    x = b.input("x", [1, 16, 8, 8])
    ids = b.input("ids", [1, 6], dtype=TensorProto.INT64)
    h = b.node("Relu", [b.conv(x, 16, 32, 3, prefix="conv", pads=[1, 1, 1, 1])], "conv_relu")
    up = b.node("ConvTranspose", [h, b.weight("deconv.weight", [32, 16, 2, 2]), b.bias("deconv.bias", 16)],
                "deconv", kernel_shape=[2, 2], strides=[2, 2])
    pooled = b.node("Flatten", [b.node("GlobalAveragePool", [up], "pooled")], "pooled_2d")
    dense = b.node("Gemm", [pooled, b.weight("fc.weight", [192, 16]), b.bias("fc.bias", 192)], "fc", transB=1)
    emb = b.node("Gather", [b.weight("embedding.weight", [300, 32], scale=0.5), ids], "emb")
    proj = b.node("MatMul", [emb, b.weight("proj.weight", [32, 192])], "proj")
    tokens = b.node("ReduceMean", [proj], "proj_mean", axes=[1], keepdims=0)
    b.node("Add", [dense, tokens], "out")
    b.output("out")
    return b


@model("GELU spellings for fuse_gelu: exact with Div by sqrt2 and 0.5 first, Mul by 1/sqrt2 and "
       "0.5 last (torch.nn.GELU's order), tanh form with Pow and with Mul*Mul for x^3, x*sigmoid(1.702x); "
       "near misses kept: Div by 1.5, an erf read twice (second output), tanh with 0.05")
def fusion_gelu():
    b = B("fusion_gelu")
    x = b.input("x", [2, 8], scale=2.0)
    h = b.node("MatMul", [x, b.weight("w", [8, 8])], "h")
    half, one = b.f32("half", 0.5), b.f32("one", 1.0)

    def exact(name, v, div=True, half_first=True, sqrt2=1.4142135):
        arg = (b.node("Div", [v, b.f32(f"{name}_sqrt2", sqrt2)], f"{name}_arg") if div
               else b.node("Mul", [b.f32(f"{name}_inv_sqrt2", 1 / sqrt2), v], f"{name}_arg"))
        erf = b.node("Erf", [arg], f"{name}_erf")
        plus = b.node("Add", [erf, one], f"{name}_plus")
        if half_first:
            return b.node("Mul", [b.node("Mul", [v, half], f"{name}_half"), plus], name), erf
        return b.node("Mul", [b.node("Mul", [v, plus], f"{name}_prod"), half], name), erf

    def tanh_form(name, v, pow_cube=True, cubic=0.044715):
        cube = (b.node("Pow", [v, b.f32(f"{name}_three", 3.0)], f"{name}_cube") if pow_cube
                else b.node("Mul", [b.node("Mul", [v, v], f"{name}_sq"), v], f"{name}_cube"))
        inner = b.node("Add", [v, b.node("Mul", [b.f32(f"{name}_c", cubic), cube], f"{name}_cubic")], f"{name}_in")
        t = b.node("Tanh", [b.node("Mul", [b.f32(f"{name}_k", 0.7978845608), inner], f"{name}_scaled")],
                   f"{name}_tanh")
        return b.node("Mul", [b.node("Mul", [half, v], f"{name}_half"), b.node("Add", [one, t], f"{name}_plus")],
                      name)

    g1, _ = exact("gelu_div", h)
    g2, _ = exact("gelu_mul", g1, div=False, half_first=False)
    g3 = tanh_form("gelu_pow", g2)
    g4 = tanh_form("gelu_mulcube", g3, pow_cube=False)
    g5 = b.node("Mul", [g4, b.node("Sigmoid", [b.node("Mul", [g4, b.f32("k_sig", 1.702)], "sig_in")], "sig")],
                "gelu_sigmoid")
    miss1, _ = exact("miss_constant", g5, sqrt2=1.5)
    miss2, erf = exact("miss_shared", miss1)
    miss3 = tanh_form("miss_cubic", miss2, cubic=0.05)
    b.output(miss3, erf)
    return b


@model("fuse_layer_norm, fuse_silu, fuse_hard_swish, fuse_clip: a written-out LayerNorm (Pow, "
       "Div) with gamma/beta, one with Mul*Mul and Reciprocal and no affine, x*sigmoid(x), "
       "x*relu6(x+3)/6 (as Clip), Min(Max(x,0),6), Clip(Clip); near misses kept: LayerNorm over "
       "axis 1 of 3, x*sigmoid(y), x*HardSigmoid(x) with alpha 0.2, x*relu6(x+3)/5; casts "
       "f32->f16->f32->f16->f32: the middle pair cancels, the rounding pair stays")
def fusion_norm_act():
    b = B("fusion_norm_act")
    x = b.input("x", [1, 4, 6], scale=3.0)
    axes = {"axes": [-1], "keepdims": 1}

    def layer_norm(name, v, squared_by_mul=False, reciprocal=False, ax=None):
        kw = {"axes": ax, "keepdims": 1} if ax else axes
        mean = b.node("ReduceMean", [v], f"{name}_mean", **kw)
        d = b.node("Sub", [v, mean], f"{name}_d")
        sq = (b.node("Mul", [d, d], f"{name}_sq") if squared_by_mul
              else b.node("Pow", [d, b.f32(f"{name}_two", 2.0)], f"{name}_sq"))
        var = b.node("ReduceMean", [sq], f"{name}_var", **kw)
        std = b.node("Sqrt", [b.node("Add", [var, b.f32(f"{name}_eps", 1e-5)], f"{name}_var_eps")], f"{name}_std")
        if reciprocal:
            return b.node("Mul", [d, b.node("Reciprocal", [std], f"{name}_inv")], name)
        return b.node("Div", [d, std], name)

    n1 = layer_norm("ln_affine", x)
    n1 = b.node("Add", [b.node("Mul", [n1, b.positive("gamma", [6])], "ln_scaled"), b.bias("beta", 6)], "ln1")
    n2 = layer_norm("ln_plain", n1, squared_by_mul=True, reciprocal=True)
    silu = b.node("Mul", [n2, b.node("Sigmoid", [n2], "silu_gate")], "silu")
    shifted = b.node("Clip", [b.node("Add", [silu, b.f32("three", 3.0)], "hs_shift"), b.f32("zero", 0.0),
                              b.f32("six", 6.0)], "hs_relu6")
    hswish = b.node("Div", [b.node("Mul", [silu, shifted], "hs_prod"), b.f32("six_div", 6.0)], "hswish")
    clipped = b.node("Min", [b.node("Max", [hswish, b.f32("lo0", 0.0)], "max0"), b.f32("hi6", 6.0)], "relu6_minmax")
    clip2 = b.node("Clip", [b.node("Clip", [clipped, b.f32("lo1", 0.5), b.f32("hi1", 5.0)], "clip_a"),
                            b.f32("lo2", 1.0), b.f32("hi2", 8.0)], "clip_chain")
    miss_ln = layer_norm("miss_ln_axis", clip2, ax=[1])
    miss_silu = b.node("Mul", [miss_ln, b.node("Sigmoid", [clip2], "miss_gate")], "miss_silu")
    miss_hs = b.node("Mul", [miss_silu, b.node("HardSigmoid", [miss_silu], "miss_hsig")], "miss_hswish")
    shifted2 = b.node("Relu", [b.node("Add", [miss_hs, b.f32("three2", 3.0)], "miss_shift")], "miss_relu")
    b.node("Div", [b.node("Mul", [miss_hs, shifted2], "miss_prod"), b.f32("five", 5.0)], "y")
    # On floor(x): small integers, exact in fp16, so the result does not depend on who rounds.
    F16 = TensorProto.FLOAT16
    whole = b.node("Floor", [x], "x_floor")
    b.node("Cast", [b.node("Cast", [b.node("Cast", [b.node("Cast", [whole], "x16", to=F16)], "x32", to=FLOAT)],
                               "x16_again", to=F16)], "x_rounded", to=FLOAT)
    b.output("y", "x_rounded")
    return b


@model("attention for fuse_attention (iOS18) and the cleanup passes: q/k/v projections, heads by "
       "Reshape+Transpose, scores scaled by Mul 0.25 (not 1/sqrt(8): folded into q), additive "
       "mask input, Softmax, second block with Div by sqrt(8) and the same mask; tied weights (two identical initializers), a duplicated Transpose (CSE), "
       "a Transpose-Transpose pair that cancels and a Reshape-Reshape pair")
def fusion_attention():
    b = B("fusion_attention")
    x = b.input("x", [1, 4, 16])
    mask = b.input("mask", [1, 1, 1, 4])
    heads, d = 2, 8
    w = b.weight("q.weight", [16, 16])
    # Tied weights: the same bytes under a second name (dedup_constants stores them once).
    b.const("q2.weight", numpy_helper.to_array(b.inits[-1]).copy())

    def split_heads(name, v, perm):
        r = b.node("Reshape", [v, b.i64(f"{name}_shape", [1, 4, heads, d])], f"{name}_heads")
        return b.node("Transpose", [r], f"{name}_t", perm=perm)

    def attention(name, inp, qw, scale_op, scale):
        q = split_heads(f"{name}_q", b.node("MatMul", [inp, qw], f"{name}_qp"), [0, 2, 1, 3])
        k = split_heads(f"{name}_k", b.node("MatMul", [inp, b.weight(f"{name}.k", [16, 16])], f"{name}_kp"),
                        [0, 2, 3, 1])
        v = split_heads(f"{name}_v", b.node("MatMul", [inp, b.weight(f"{name}.v", [16, 16])], f"{name}_vp"),
                        [0, 2, 1, 3])
        s = b.node(scale_op, [b.node("MatMul", [q, k], f"{name}_qk"), b.f32(f"{name}_scale", scale)],
                   f"{name}_scores")
        p = b.node("Softmax", [b.node("Add", [s, mask], f"{name}_masked")], f"{name}_probs", axis=-1)
        ctx = b.node("Transpose", [b.node("MatMul", [p, v], f"{name}_ctx")], f"{name}_ctx_t", perm=[0, 2, 1, 3])
        return b.node("Reshape", [ctx, b.i64(f"{name}_merge", [1, 4, 16])], f"{name}_out")

    a1 = attention("attn1", x, w, "Mul", 0.25)
    a2 = attention("attn2", a1, "q2.weight", "Div", float(np.sqrt(d)))
    # Two identical transposes (CSE), undone by a third: the pairs fold away.
    t1 = b.node("Transpose", [a2], "swap_a", perm=[0, 2, 1])
    t2 = b.node("Transpose", [a2], "swap_b", perm=[0, 2, 1])
    swapped = b.node("Transpose", [b.node("Add", [t1, t2], "swapped_sum")], "swap_back", perm=[0, 2, 1])
    back = b.node("Transpose", [b.node("Transpose", [swapped], "there", perm=[1, 0, 2])], "back", perm=[1, 0, 2])
    flat = b.node("Reshape", [b.node("Reshape", [back, b.i64("r1", [4, 16])], "r1_out"), b.i64("r2", [1, 64])],
                  "flat")
    b.node("Add", [flat, b.node("Reshape", [a1, b.i64("r3", [1, 64])], "a1_flat")], "y")
    b.output("y")
    return b


@model("compute-unit plan: x [1,4,64,64] -> Conv 4->48 3x3 -> Conv W[48,48,3,3] + BatchNorm + Relu -> "
       "Conv (the same W, no bias) -> GlobalAveragePool -> Flatten [1,48] -> TopK k=3 -> GatherElements "
       "at the topk indices; ~354 MFLOP, above the ANE size floor, with a topk tail off the ANE")
def placement_mix():
    b = B("placement_mix")
    x = b.input("x", [1, 4, 64, 64])
    t = b.conv(x, 4, 48, 3, prefix="stem", pads=[1, 1, 1, 1])
    w = b.weight("body.weight", [48, 48, 3, 3])
    t = b.node("Conv", [t, w], "body_conv", name="body_conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    t = b.bn(t, 48, prefix="body_bn")
    t = b.node("Relu", [t], "body_relu", name="body_relu")
    t = b.node("Conv", [t, w], "tail_conv", name="tail_conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    t = b.node("GlobalAveragePool", [t], "pooled")
    t = b.node("Flatten", [t], "flat", axis=1)
    b.node("TopK", [t, b.i64("k", [3])], ["top_values", "top_indices"], name="topk", axis=1)
    b.node("GatherElements", [t, "top_indices"], "picked", name="picked", axis=1)
    b.output("top_values", "picked")
    b.output("top_indices", dtype=TensorProto.INT64)
    return b


RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def _layout(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "layout"), 0)


def _as_layout0(m: onnx.ModelProto) -> onnx.ModelProto:
    """`m` with each layout-1 recurrent node rewritten as a layout-0 node between transposes:
    X and the initial states `[batch, seq|dirs, ...]` in, Y `[seq, dirs, batch, hidden]` and the
    final states `[dirs, batch, hidden]` out."""
    m = copy.deepcopy(m)
    nodes = []
    for n in m.graph.node:
        if n.op_type not in RECURRENT_OPS or _layout(n) != 1:
            nodes.append(n)
            continue
        kept = [a for a in n.attribute if a.name != "layout"]
        del n.attribute[:]
        n.attribute.extend(kept)
        for i in (0, 5, 6):
            if i < len(n.input) and n.input[i]:
                swapped = f"{n.input[i]}_{n.name}_layout0"
                nodes.append(helper.make_node("Transpose", [n.input[i]], [swapped], perm=[1, 0, 2]))
                n.input[i] = swapped
        after = []
        for i, out in enumerate(n.output):
            if out:
                n.output[i] = f"{out}_layout0"
                perm = [2, 0, 1, 3] if i == 0 else [1, 0, 2]
                after.append(helper.make_node("Transpose", [n.output[i]], [out], perm=perm))
        nodes.append(n)
        nodes.extend(after)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def _recurrent_weights(b: B, prefix: str, gates: int, directions: int, hidden: int, inputs: int,
                       peepholes: bool = False):
    """W, R, B (and P) initializers of an ONNX recurrent layer, uniform in +-1/sqrt(hidden)."""
    bound = 1.0 / np.sqrt(hidden)

    def u(name, shape):
        return b.const(f"{prefix}.{name}", b.rng.uniform(-bound, bound, shape).astype(np.float32))

    names = [u("W", [directions, gates * hidden, inputs]), u("R", [directions, gates * hidden, hidden]),
             u("B", [directions, 2 * gates * hidden])]
    if peepholes:
        names.append(u("P", [directions, 3 * hidden]))
    return names


@model("LSTM, native MIL lstm: bidirectional, layout=1, initial_h/initial_c graph inputs, Y and "
       "Y_h (Y_c omitted); then a reverse layout-0 LSTM with peepholes and full-length "
       "sequence_lens on the first one's Y, publishing only Y_c")
def lstm_layers():
    b = B("lstm_layers")
    x = b.input("x", [2, 6, 5])
    h0 = b.input("h0", [2, 2, 8])
    c0 = b.input("c0", [2, 2, 8])
    w, r, bias = _recurrent_weights(b, "lstm1", 4, 2, 8, 5)
    b.node("LSTM", [x, w, r, bias, "", h0, c0], ["y", "y_h"], name="lstm1", hidden_size=8,
           direction="bidirectional", layout=1)
    flat = b.node("Reshape", ["y", b.i64("flat_shape", [2, 6, 16])], "y_flat")
    seq_major = b.node("Transpose", [flat], "y_seq_major", perm=[1, 0, 2])
    w, r, bias, p = _recurrent_weights(b, "lstm2", 4, 1, 4, 16, peepholes=True)
    lengths = b.const("lstm2.lengths", np.array([6, 6], dtype=np.int32))
    b.node("LSTM", [seq_major, w, r, bias, lengths, "", "", p], ["", "", "c2"], name="lstm2",
           hidden_size=4, direction="reverse")
    b.output("y", "y_h", "c2")
    return b


@model("GRU: bidirectional linear_before_reset=1 (unrolled: MIL's gru resets before R), "
       "layout=1, initial_h graph input, Y and Y_h; then a reverse linear_before_reset=0 GRU "
       "(native MIL gru) on its Y publishing only Y_h")
def gru_layers():
    b = B("gru_layers")
    x = b.input("x", [2, 6, 5])
    h0 = b.input("h0", [2, 2, 8])
    w, r, bias = _recurrent_weights(b, "gru1", 3, 2, 8, 5)
    b.node("GRU", [x, w, r, bias, "", h0], ["y", "y_h"], name="gru1", hidden_size=8,
           direction="bidirectional", layout=1, linear_before_reset=1)
    flat = b.node("Reshape", ["y", b.i64("flat_shape", [2, 6, 16])], "y_flat")
    seq_major = b.node("Transpose", [flat], "y_seq_major", perm=[1, 0, 2])
    w, r, bias = _recurrent_weights(b, "gru2", 3, 1, 4, 16)
    b.node("GRU", [seq_major, w, r, bias], ["", "h2"], name="gru2", hidden_size=4, direction="reverse")
    b.output("y", "y_h", "h2")
    return b


@model("RNN: bidirectional with activations [Relu, Tanh] (two native MIL rnn ops), layout=1, "
       "initial_h graph input, Y and Y_h; then a forward layout-0 RNN with clip 0.5 and ragged "
       "sequence_lens [4, 6] (unrolled) on its Y")
def rnn_layers():
    b = B("rnn_layers")
    x = b.input("x", [2, 6, 5])
    h0 = b.input("h0", [2, 2, 8])
    w, r, bias = _recurrent_weights(b, "rnn1", 1, 2, 8, 5)
    b.node("RNN", [x, w, r, bias, "", h0], ["y", "y_h"], name="rnn1", hidden_size=8,
           direction="bidirectional", layout=1, activations=["Relu", "Tanh"])
    flat = b.node("Reshape", ["y", b.i64("flat_shape", [2, 6, 16])], "y_flat")
    seq_major = b.node("Transpose", [flat], "y_seq_major", perm=[1, 0, 2])
    w, r, bias = _recurrent_weights(b, "rnn2", 1, 1, 4, 16)
    lengths = b.const("rnn2.lengths", np.array([4, 6], dtype=np.int32))
    b.node("RNN", [seq_major, w, r, bias, lengths], ["y2", "h2"], name="rnn2", hidden_size=4, clip=0.5)
    b.output("y", "y_h", "y2", "h2")
    return b


@model("Unrolled recurrent variants, all with sequence_lens fed at run time ([3, 5] of 5): LSTM "
       "with clip, input_forget, peepholes and activations HardSigmoid(0.3, 0.6), "
       "ScaledTanh(0.9, 1.1), Softsign; bidirectional GRU with Affine, LeakyRelu, "
       "ThresholdedRelu, Elu (per-direction lists); reverse RNN with Softplus")
def recurrent_unrolled():
    b = B("recurrent_unrolled")
    x = b.input("x", [5, 2, 4])
    lengths = b.input("lengths", [2], dtype=TensorProto.INT32)
    b.fixed_inputs["lengths"] = np.array([3, 5], dtype=np.int32)
    w, r, bias, p = _recurrent_weights(b, "lstm", 4, 1, 6, 4, peepholes=True)
    b.node("LSTM", [x, w, r, bias, lengths, "", "", p], ["lstm_y", "lstm_h", "lstm_c"], name="lstm",
           hidden_size=6, clip=0.8, input_forget=1, activations=["HardSigmoid", "ScaledTanh", "Softsign"],
           activation_alpha=[0.3, 0.9], activation_beta=[0.6, 1.1])
    w, r, bias = _recurrent_weights(b, "gru", 3, 2, 5, 4)
    b.node("GRU", [x, w, r, bias, lengths], ["gru_y", "gru_h"], name="gru", hidden_size=5,
           direction="bidirectional", activations=["Affine", "LeakyRelu", "ThresholdedRelu", "Elu"],
           activation_alpha=[0.7, 0.05, 0.1, 0.8], activation_beta=[0.2])
    w, r, bias = _recurrent_weights(b, "rnn", 1, 1, 3, 4)
    b.node("RNN", [x, w, r, bias, lengths], ["rnn_y", "rnn_h"], name="rnn", hidden_size=3,
           direction="reverse", activations=["Softplus"])
    b.output("lstm_y", "lstm_h", "lstm_c", "gru_y", "gru_h", "rnn_y", "rnn_h")
    return b


@model("QDQ (opset 21): activations fake-quantized by QuantizeLinear->DequantizeLinear (uint8, zero "
       "point 128); weights stored quantized and read through DequantizeLinear: Conv int8 per output "
       "channel (axis 0), MatMul uint8 per tensor with zero point 7, MatMul int8 block-wise (blocks of 8 "
       "along the input axis, scale [2, 32]); an int32 bias dequantized per tensor")
def qdq_weights():
    b = B("qdq_weights", opset=21, ir_version=10)
    x = b.input("x", [1, 3, 8, 8])

    def quantize(name, w, axis=None, block=None, unsigned=False, zero=0):
        """w's codes (a QDQ model's initializer) and the DequantizeLinear node reading them."""
        if block is not None:
            k = w.shape[axis]
            blocks = np.abs(w).reshape(k // block, block, -1).max(axis=1)
            scale = (blocks / 127.0).astype(np.float32)
            full = np.repeat(scale, block, axis=0)
        elif axis is not None:
            scale = (np.abs(w).max(axis=tuple(d for d in range(w.ndim) if d != axis)) / 127.0).astype(np.float32)
            full = scale.reshape([-1 if d == axis else 1 for d in range(w.ndim)])
        else:
            span = float(w.max() - w.min())
            scale = np.float32(span / 255.0 if unsigned else np.abs(w).max() / 127.0)
            full = scale
        lo, hi, dtype = (0, 255, np.uint8) if unsigned else (-128, 127, np.int8)
        if unsigned:
            zero = int(np.clip(np.round(-w.min() / scale), lo, hi))
        codes = np.clip(np.round(w / full) + zero, lo, hi).astype(dtype)
        inputs = [b.const(f"{name}_quantized", codes), b.const(f"{name}_scale", scale)]
        if zero != 0 or unsigned:
            inputs.append(b.const(f"{name}_zero_point", np.asarray(zero, dtype=dtype)))
        attrs = {}
        if axis is not None:
            attrs["axis"] = axis
        if block is not None:
            attrs["block_size"] = block
        return b.node("DequantizeLinear", inputs, f"{name}_dequantized", **attrs)

    # Activation fake-quant: uint8 with zero point 128.
    a_scale, a_zero = b.f32("x_scale", 0.05), b.const("x_zero_point", np.asarray(128, dtype=np.uint8))
    xq = b.node("QuantizeLinear", [x, a_scale, a_zero], "x_quantized")
    xd = b.node("DequantizeLinear", [xq, a_scale, a_zero], "x_dequantized")
    conv_w = (b.rng.standard_normal([8, 3, 3, 3]) * 0.3).astype(np.float32)
    w = quantize("conv.weight", conv_w, axis=0)
    bias_codes = b.const("conv.bias_quantized", b.rng.integers(-500, 500, [8]).astype(np.int32))
    bias = b.node("DequantizeLinear", [bias_codes, b.f32("conv.bias_scale", 0.001)], "conv.bias_dequantized")
    h = b.node("Relu", [b.node("Conv", [xd, w, bias], "conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "relu")
    pooled = b.node("Flatten", [b.node("GlobalAveragePool", [h], "pooled")], "pooled_2d")
    mm_w = (b.rng.standard_normal([8, 16]) * 0.4 + 0.1).astype(np.float32)
    mid = b.node("MatMul", [pooled, quantize("fc1.weight", mm_w, unsigned=True)], "fc1")
    blk_w = (b.rng.standard_normal([16, 32]) * 0.25).astype(np.float32)
    b.node("MatMul", [mid, quantize("fc2.weight", blk_w, axis=0, block=8)], "out")
    b.output("out")
    return b


def _quantize_dynamic(m: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's quantize_dynamic (int8 weights; DynamicQuantizeLinear, MatMulInteger and
    ConvInteger), on a copy in a temporary folder."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(m, str(src))
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Conv"])
        q = onnx.load(str(dst))
    q.producer_name, q.producer_version = PRODUCER_NAME, PRODUCER_VERSION
    del q.metadata_props[:]
    return q


@model("onnxruntime quantize_dynamic of Conv(3->8)+Relu, GlobalAveragePool, MatMul(8x16) and "
       "MatMul(16x32): DynamicQuantizeLinear per activation, ConvInteger and MatMulInteger with int8 "
       "weights, each result Cast to float and multiplied by the two scales")
def dynamic_quant():
    b = B("dynamic_quant")
    x = b.input("x", [1, 3, 8, 8])
    h = b.node("Relu", [b.conv(x, 3, 8, 3, prefix="conv", pads=[1, 1, 1, 1])], "relu")
    pooled = b.node("Flatten", [b.node("GlobalAveragePool", [h], "pooled")], "pooled_2d")
    mid = b.node("MatMul", [pooled, b.weight("fc1.weight", [8, 16])], "fc1")
    b.node("MatMul", [b.node("Relu", [mid], "fc1_relu"), b.weight("fc2.weight", [16, 32])], "out")
    b.output("out")
    b.postprocess = _quantize_dynamic
    return b


def _vi(name, shape, dtype=FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@model("Scatters with indices fed at run time (MIL scatter_along_axis, scatter_nd), opset 18: "
       "ScatterElements along axis 1 of x [3,4] (idx [3,2], negative ones included; y), the same "
       "with reduction add and a repeated index (y_add), ScatterND of rows (rows [2,1], one "
       "negative; y_nd) and ScatterND with reduction mul on element pairs (pairs [3,2]; y_nd_mul)")
def scatter_runtime():
    b = B("scatter_runtime", opset=18)
    x = b.input("x", [3, 4])
    idx = b.input("idx", [3, 2], dtype=TensorProto.INT64)
    b.fixed_inputs["idx"] = np.array([[0, -1], [2, 1], [-4, 3]], dtype=np.int64)
    idx_dup = b.input("idx_dup", [3, 2], dtype=TensorProto.INT64)
    b.fixed_inputs["idx_dup"] = np.array([[1, 1], [0, 3], [2, -2]], dtype=np.int64)
    upd = b.input("upd", [3, 2])
    rows = b.input("rows", [2, 1], dtype=TensorProto.INT64)
    b.fixed_inputs["rows"] = np.array([[2], [-3]], dtype=np.int64)
    row_upd = b.input("row_upd", [2, 4])
    pairs = b.input("pairs", [3, 2], dtype=TensorProto.INT64)
    b.fixed_inputs["pairs"] = np.array([[0, 0], [1, -1], [2, 2]], dtype=np.int64)
    pair_upd = b.input("pair_upd", [3])
    b.node("ScatterElements", [x, idx, upd], "y", axis=1)
    b.node("ScatterElements", [x, idx_dup, upd], "y_add", axis=1, reduction="add")
    b.node("ScatterND", [x, rows, row_upd], "y_nd")
    b.node("ScatterND", [x, pairs, pair_upd], "y_nd_mul", reduction="mul")
    b.output("y", "y_add", "y_nd", "y_nd_mul")
    return b


@model("If decided at run time (MIL cond): two Ifs on opposite signs of sum(x) (x [2,4]), so the "
       "reference takes one then branch and one else branch. Branches read outer values (x, a "
       "computed h = tanh(x), the initializers w and wm: a MatMul weight), give two outputs each, "
       "and each else branch holds a nested run-time If")
def if_runtime():
    b = B("if_runtime")
    x = b.input("x", [2, 4])
    b.weight("w", [2, 4], scale=1.0)
    b.weight("wm", [4, 4])
    b.node("Tanh", [x], "h")
    b.node("ReduceSum", [x], "s", keepdims=0)
    b.f32("zero", 0.0)
    b.f32("half", 0.5)
    b.node("Greater", ["s", "zero"], "pos")
    b.node("Not", ["pos"], "neg")
    for tag, cond in (("a", "pos"), ("b", "neg")):
        then_g = helper.make_graph([
            helper.make_node("MatMul", ["x", "wm"], [f"{tag}_t0"], name=f"{tag}_then_matmul"),
            helper.make_node("Add", [f"{tag}_t0", "h"], [f"{tag}_t1"], name=f"{tag}_then_add"),
            helper.make_node("ReduceMax", [f"{tag}_t1"], [f"{tag}_t2"], keepdims=1, name=f"{tag}_then_max"),
        ], f"{tag}_then", [], [_vi(f"{tag}_t1", [2, 4]), _vi(f"{tag}_t2", [1, 1])])
        inner_then = helper.make_graph([
            helper.make_node("Mul", [f"{tag}_e0", "w"], [f"{tag}_i0"], name=f"{tag}_inner_mul"),
        ], f"{tag}_inner_then", [], [_vi(f"{tag}_i0", [2, 4])])
        inner_else = helper.make_graph([
            helper.make_node("Neg", [f"{tag}_e0"], [f"{tag}_i1"], name=f"{tag}_inner_neg"),
        ], f"{tag}_inner_else", [], [_vi(f"{tag}_i1", [2, 4])])
        else_g = helper.make_graph([
            helper.make_node("Sub", ["x", "h"], [f"{tag}_e0"], name=f"{tag}_else_sub"),
            helper.make_node("ReduceMax", ["h"], [f"{tag}_hm"], keepdims=0, name=f"{tag}_else_max"),
            helper.make_node("Greater", [f"{tag}_hm", "half"], [f"{tag}_ec"], name=f"{tag}_else_cmp"),
            helper.make_node("If", [f"{tag}_ec"], [f"{tag}_e1"], then_branch=inner_then,
                             else_branch=inner_else, name=f"{tag}_inner_if"),
            helper.make_node("ReduceMin", [f"{tag}_e1"], [f"{tag}_e2"], keepdims=1, name=f"{tag}_else_min"),
        ], f"{tag}_else", [], [_vi(f"{tag}_e1", [2, 4]), _vi(f"{tag}_e2", [1, 1])])
        b.node("If", [cond], [f"y_{tag}", f"m_{tag}"], then_branch=then_g, else_branch=else_g, name=f"if_{tag}")
    b.output("y_a", "m_a", "y_b", "m_b")
    return b


@model("Loop decided at run time (MIL while_loop). grow: trip count n (fed 6) and a condition "
       "computed in the body (sum(acc) < limit, limit fed 12), two loop-carried values (acc [1,4] "
       "and a counter [1]), the iteration number and outer values (x, limit) read in the body; it "
       "stops on the condition. count: a for-loop on n alone (no condition input). shadow: a "
       "for-loop whose body names its iteration number n, shadowing the trip count")
def loop_runtime():
    b = B("loop_runtime")
    x = b.input("x", [1, 4])
    n = b.input("n", [], dtype=TensorProto.INT64)
    b.fixed_inputs["n"] = np.array(6, dtype=np.int64)
    limit = b.input("limit", [])
    b.fixed_inputs["limit"] = np.array(12.0, dtype=np.float32)
    b.f32("counter0", [0.0])
    b.node("Abs", [x], "ax")
    b.node("ReduceSum", ["ax"], "s0", keepdims=0)
    b.node("Less", ["s0", limit], "c0")
    body = helper.make_graph([
        helper.make_node("Cast", ["i"], ["fi"], to=FLOAT, name="body_cast"),
        helper.make_node("Mul", ["acc", "k"], ["grown"], name="body_mul"),
        helper.make_node("Mul", ["ax", "fi"], ["step"], name="body_step"),
        helper.make_node("Add", ["grown", "step"], ["acc_out"], name="body_add"),
        helper.make_node("Add", ["counter", "one"], ["counter_out"], name="body_count"),
        helper.make_node("ReduceSum", ["acc_out"], ["s"], keepdims=0, name="body_sum"),
        helper.make_node("Less", ["s", "limit"], ["cond_out"], name="body_cmp"),
    ], "grow_body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL),
                     _vi("acc", [1, 4]), _vi("counter", [1])],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("acc_out", [1, 4]), _vi("counter_out", [1])],
        initializer=[numpy_helper.from_array(np.array(1.5, dtype=np.float32), "k"),
                     numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")])
    b.node("Loop", [n, "c0", "ax", "counter0"], ["acc_final", "steps"], body=body, name="grow")
    count_body = helper.make_graph([
        helper.make_node("Identity", ["c_in"], ["c_out"], name="count_keep"),
        helper.make_node("Mul", ["v", "x"], ["v_out"], name="count_mul"),
    ], "count_body", [_vi("j", [], TensorProto.INT64), _vi("c_in", [], TensorProto.BOOL), _vi("v", [1, 4])],
        [_vi("c_out", [], TensorProto.BOOL), _vi("v_out", [1, 4])])
    b.node("Loop", [n, "", "ax"], ["power"], body=count_body, name="count")
    # The body names its iteration number `n`, as the outer trip count is named: it shadows it.
    shadow_body = helper.make_graph([
        helper.make_node("Identity", ["s_in"], ["s_out"], name="shadow_keep"),
        helper.make_node("Cast", ["n"], ["fn"], to=FLOAT, name="shadow_cast"),
        helper.make_node("Add", ["a", "fn"], ["a_out"], name="shadow_add"),
    ], "shadow_body", [_vi("n", [], TensorProto.INT64), _vi("s_in", [], TensorProto.BOOL), _vi("a", [1, 4])],
        [_vi("s_out", [], TensorProto.BOOL), _vi("a_out", [1, 4])])
    b.node("Loop", [n, "", "ax"], ["shadowed"], body=shadow_body, name="shadow")
    b.output("acc_final", "power", "shadowed", shape=[1, 4])
    b.output("steps", shape=[1])
    return b


# --------------------------------------------------------------------------------------------
# Malformed models
# --------------------------------------------------------------------------------------------

BAD: Dict[str, Callable[[], bytes]] = {}
BAD_DESCRIPTIONS: Dict[str, str] = {}


def bad(desc: str):
    def deco(fn):
        BAD[fn.__name__] = fn
        BAD_DESCRIPTIONS[fn.__name__] = desc
        return fn
    return deco


def _small_valid(name: str) -> onnx.ModelProto:
    b = B(name)
    x = b.input("x", [1, 3, 8, 8])
    t = b.conv(x, 3, 4, 3, prefix="conv", pads=[1, 1, 1, 1])
    b.node("Relu", [t], "y")
    b.output("y")
    return b.build()


def _raw_model(b: B) -> onnx.ModelProto:
    """Like B.build() but without shape inference (which may reject the broken graph); output
    shapes are given by hand so the intended defect is the only one."""
    outs = [helper.make_tensor_value_info(n, b.output_types[n], b.output_shapes[n])
            for n in b.outputs]
    graph = helper.make_graph(b.nodes, b.name, b.inputs, outs, b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", b.opset)],
                             ir_version=b.ir_version, producer_name=PRODUCER_NAME,
                             producer_version=PRODUCER_VERSION)


@bad("a valid Conv+Relu model cut to its first half")
def truncated():
    data = _small_valid("truncated").SerializeToString()
    return data[: len(data) // 2]


@bad("1024 seeded random bytes (first byte 0x0f: field 1 with invalid wire type 7)")
def not_protobuf():
    data = bytearray(np.random.default_rng(name_seed("not_protobuf")).bytes(1024))
    data[0] = 0x0F
    return bytes(data)


@bad("two unsupported ops: FancyOp (default domain, node 'fancy_1') and NonMaxSuppression "
     "(node 'nms'); otherwise well formed")
def unknown_op():
    b = B("unknown_op")
    x = b.input("x", [1, 3, 4, 4])
    boxes = b.input("boxes", [1, 6, 4])
    scores = b.input("scores", [1, 1, 6])
    b.node("FancyOp", [x], "fancy_out", name="fancy_1")
    b.node("NonMaxSuppression", [boxes, scores], "selected", name="nms")
    b.output("fancy_out", shape=[1, 3, 4, 4])
    b.output("selected", dtype=TensorProto.INT64, shape=["num_selected", 3])
    return _raw_model(b).SerializeToString()


@bad("Conv whose weight input 'conv.weight_missing' is neither an initializer, an input nor a "
     "node output")
def missing_initializer():
    b = B("missing_initializer")
    x = b.input("x", [1, 3, 8, 8])
    b.node("Conv", [x, "conv.weight_missing"], "y", kernel_shape=[3, 3])
    b.output("y", shape=[1, 4, 6, 6])
    return _raw_model(b).SerializeToString()


@bad("two nodes feeding each other: a = Add(x, b), b = Relu(a)")
def cycle():
    b = B("cycle")
    x = b.input("x", [1, 4])
    b.node("Add", [x, "b"], "a", name="add")
    b.node("Relu", ["a"], "b", name="relu")
    b.output("a", shape=[1, 4])
    return _raw_model(b).SerializeToString()


def _external_tensor(name, dims, location):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    n = int(np.prod(dims)) * 4
    for k, v in (("location", location), ("offset", "0"), ("length", str(n))):
        e = t.external_data.add()
        e.key = k
        e.value = v
    return t


def _external_conv(name, location):
    b = B(name)
    x = b.input("x", [1, 3, 8, 8])
    b.node("Conv", [x, "conv.weight"], "y", kernel_shape=[3, 3])
    b.output("y", shape=[1, 4, 6, 6])
    m = _raw_model(b)
    m.graph.initializer.append(_external_tensor("conv.weight", [4, 3, 3, 3], location))
    return m.SerializeToString()


@bad("Conv weight stored externally at location '../../etc/passwd' (path escape)")
def external_escape():
    return _external_conv("external_escape", "../../etc/passwd")


@bad("Conv weight stored externally in 'external_missing.onnx.data', which does not exist")
def external_missing():
    return _external_conv("external_missing", "external_missing.onnx.data")


@bad("two nodes (Relu 'relu', Sigmoid 'sigmoid') both produce tensor 'y'")
def duplicate_output():
    b = B("duplicate_output")
    x = b.input("x", [1, 4])
    b.node("Relu", [x], "y", name="relu")
    b.node("Sigmoid", [x], "y", name="sigmoid")
    b.output("y", shape=[1, 4])
    return _raw_model(b).SerializeToString()


@bad("input of shape [1,3,100000000,100000000] (3e16 elements) through a Relu")
def absurd_shape():
    b = B("absurd_shape")
    x = b.input("x", [1, 3, 100000000, 100000000])
    b.node("Relu", [x], "y")
    b.output("y", shape=[1, 3, 100000000, 100000000])
    return _raw_model(b).SerializeToString()


@bad("Max (node 'max_of_masks') and ArgMax (node 'argmax_of_mask') on bool tensors: types ONNX "
     "does not allow for them, and MIL's maximum and reduce_argmax refuse (found by fuzzing)")
def bool_arithmetic():
    b = B("bool_arithmetic")
    x = b.input("x", [2, 3])
    b.node("Greater", [x, b.f32("zero", [0.0])], "mask", name="positive")
    b.node("Less", [x, b.f32("one", [1.0])], "small", name="small")
    b.node("Max", ["mask", "small"], "either", name="max_of_masks")
    b.node("ArgMax", ["mask"], "first", name="argmax_of_mask", axis=1)
    b.output("either", dtype=TensorProto.BOOL, shape=[2, 3])
    b.output("first", dtype=TensorProto.INT64, shape=[2, 1])
    return _raw_model(b).SerializeToString()


@bad("an LSTM whose activations list has 2 functions (LSTM takes 3 per direction)")
def lstm_bad_activations():
    b = B("lstm_bad_activations")
    x = b.input("x", [3, 1, 2])
    w, r, bias = _recurrent_weights(b, "lstm", 4, 1, 2, 2)
    b.node("LSTM", [x, w, r, bias], ["", "y_h"], name="lstm", hidden_size=2,
           activations=["Sigmoid", "Tanh"])
    b.output("y_h", shape=[1, 1, 2])
    return _raw_model(b).SerializeToString()


@bad("an RNN with clip (so it must be unrolled) over 5,000 steps, beyond edgec's unrolling limit")
def rnn_too_long_to_unroll():
    b = B("rnn_too_long_to_unroll")
    x = b.input("x", [5000, 1, 1])
    w, r, bias = _recurrent_weights(b, "rnn", 1, 1, 1, 1)
    b.node("RNN", [x, w, r, bias], ["", "y_h"], name="rnn", hidden_size=1, clip=1.0)
    b.output("y_h", shape=[1, 1, 1])
    return _raw_model(b).SerializeToString()


@bad("reflect Pad (node 'mirror') of 4 on an axis of size 4: reflection reaches at most size - 1")
def pad_reflect_too_wide():
    b = B("pad_reflect_too_wide")
    x = b.input("x", [1, 4])
    b.node("Pad", [x, b.i64("pads", [0, 4, 0, 0])], "y", name="mirror", mode="reflect")
    b.output("y", shape=[1, 8])
    return _raw_model(b).SerializeToString()


@bad("an If (node 'pick') decided at run time whose branches give different shapes ([2,3] "
     "and [3,2]): Core ML's cond gives one static type")
def if_branch_shapes_differ():
    b = B("if_branch_shapes_differ")
    x = b.input("x", [2, 3])
    b.node("ReduceSum", [x], "s", keepdims=0)
    b.node("Greater", ["s", b.f32("zero", 0.0)], "c")
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"], name="then_relu")], "then", [],
                               [_vi("t", [2, 3])])
    else_g = helper.make_graph([helper.make_node("Transpose", ["x"], ["e"], name="else_transpose")],
                               "else", [], [_vi("e", [3, 2])])
    b.node("If", ["c"], "y", name="pick", then_branch=then_g, else_branch=else_g)
    b.output("y", shape=[2, 3])
    return _raw_model(b).SerializeToString()


@bad("a Loop (node 'grow') decided at run time whose loop-carried value grows ([1,2] to [1,4]): "
     "Core ML's while_loop keeps each loop variable's type")
def loop_carried_shape_changes():
    b = B("loop_carried_shape_changes")
    x = b.input("x", [1, 2])
    n = b.input("n", [], dtype=TensorProto.INT64)
    body = helper.make_graph([
        helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep"),
        helper.make_node("Concat", ["acc", "acc"], ["acc_out"], axis=1, name="double"),
    ], "body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL), _vi("acc", None)],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("acc_out", None)])
    b.node("Loop", [n, "", x], "y", name="grow", body=body)
    b.output("y", shape=[1, 2])
    return _raw_model(b).SerializeToString()


@bad("a Loop (node 'history') whose trip count n is an input, with a scan output: its length "
     "would be known only at run time")
def loop_runtime_scan():
    b = B("loop_runtime_scan")
    x = b.input("x", [1, 2])
    n = b.input("n", [], dtype=TensorProto.INT64)
    body = helper.make_graph([
        helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep"),
        helper.make_node("Add", ["acc", "x"], ["acc_out"], name="step"),
        helper.make_node("Identity", ["acc_out"], ["scan"], name="record"),
    ], "body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL), _vi("acc", [1, 2])],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("acc_out", [1, 2]), _vi("scan", [1, 2])])
    b.node("Loop", [n, "", x], ["y", "trace"], name="history", body=body)
    b.output("y", shape=[1, 2])
    b.output("trace", shape=[3, 1, 2])
    return _raw_model(b).SerializeToString()


# --------------------------------------------------------------------------------------------
# Writing and checking
# --------------------------------------------------------------------------------------------


def save_model(m: onnx.ModelProto, path: Path, external_location: Optional[str]) -> List[Path]:
    """Write the model; return every file written."""
    if external_location is None:
        path.write_bytes(m.SerializeToString())
        return [path]
    data = path.parent / external_location
    # onnx appends to an existing external data file: remove it first to stay idempotent
    if data.exists():
        data.unlink()
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=external_location, size_threshold=0, convert_attribute=False)
    return [path, data]


def declared_shape(vi) -> Optional[list]:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


def gen_valid(name: str, outdir: Path, log) -> List[Path]:
    b = MODELS[name]()
    m = b.build()
    if b.postprocess is not None:
        m = fill_output_shapes(b.postprocess(m))
    path = outdir / f"{name}.onnx"
    written = save_model(m, path, EXTERNAL.get(name))
    # full checker, from the path so external data is checked too
    onnx.checker.check_model(str(path), full_check=True)
    feeds = make_inputs(m, b.shape_overrides, seed=name_seed(name))
    for k, (scale, shift) in b.input_affine.items():
        feeds[k] = (feeds[k] * np.float32(scale) + np.float32(shift)).astype(feeds[k].dtype)
    feeds.update(b.fixed_inputs)
    if any(n.op_type in RECURRENT_OPS and _layout(n) == 1 for n in m.graph.node):
        # onnxruntime's CPU kernels take layout 0 only: run the equivalent layout-0 graph.
        with tempfile.TemporaryDirectory() as tmp:
            equivalent = Path(tmp) / f"{name}.layout0.onnx"
            onnx.save(_as_layout0(m), str(equivalent))
            outs = ort_run(equivalent, feeds)
    else:
        # QDQ models: the reference is the ONNX definition, not onnxruntime's integer fusions.
        quantized = any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
                        for n in m.graph.node)
        outs = ort_run(path, feeds, optimize=not quantized)
    assert list(outs) == [o.name for o in m.graph.output], f"{name}: output order"
    for o in m.graph.output:
        ds = declared_shape(o)
        assert ds is not None, f"{name}: output {o.name} has no inferred shape"
        got = outs[o.name].shape
        assert len(ds) == len(got) and all(d is None or d == g for d, g in zip(ds, got)), \
            f"{name}: output {o.name} declared {ds}, onnxruntime gave {list(got)}"
        assert np.all(np.isfinite(outs[o.name])), f"{name}: non-finite output {o.name}"
    npz = outdir / f"{name}.npz"
    save_npz_deterministic(npz, reference_arrays(feeds, outs))
    written.append(npz)
    for p in written:
        assert p.stat().st_size < MAX_BYTES, f"{p} is {p.stat().st_size} bytes"
    log(f"  {name:34s} " + "  ".join(f"{p.name}={p.stat().st_size}B" for p in written))
    return written


def gen_bad(name: str, outdir: Path, log) -> List[Path]:
    path = outdir / f"{name}.onnx"
    path.write_bytes(BAD[name]())
    log(f"  bad/{name:30s} {path.stat().st_size}B")
    return [path]


# what onnx.checker (full_check) says about each bad model: the intended defect, nothing else
CHECKER_SAYS = {
    "unknown_op": "No Op registered for FancyOp",
    "missing_initializer": "input 'conv.weight_missing' of node",
    "cycle": "must be topologically sorted",
    "duplicate_output": "single static assignment",
    "external_escape": "points outside the directory",
    "external_missing": "is not regular file",
    "absurd_shape": None,  # a well-formed model; only its size is absurd
    "lstm_bad_activations": None,  # the checker does not count activations
    "rnn_too_long_to_unroll": None,  # well-formed; only too long for edgec
}


def check_bad(outdir: Path) -> None:
    """Sanity: the unparseable ones do not parse; the others fail the checker for their reason."""
    for name in ("truncated", "not_protobuf"):
        try:
            onnx.load_model_from_string((outdir / f"{name}.onnx").read_bytes())
        except Exception:
            continue
        raise AssertionError(f"bad/{name}.onnx parses as a ModelProto")
    for name, fragment in CHECKER_SAYS.items():
        try:
            onnx.checker.check_model(str(outdir / f"{name}.onnx"), full_check=True)
        except onnx.checker.ValidationError as e:
            if fragment is None or fragment not in str(e):
                raise AssertionError(f"bad/{name}.onnx: unexpected checker error: {e}") from None
            continue
        if fragment is not None:
            raise AssertionError(f"bad/{name}.onnx passes onnx.checker")


def generate(root: Path, names: List[str], log) -> List[Path]:
    models_dir = root / "models"
    bad_dir = root / "bad"
    models_dir.mkdir(parents=True, exist_ok=True)
    bad_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    for n in names:
        if n in MODELS:
            written += gen_valid(n, models_dir, log)
        else:
            written += gen_bad(n, bad_dir, log)
    if all(n in names for n in BAD):
        check_bad(bad_dir)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="models to generate (default: all)")
    ap.add_argument("--out", type=Path, default=HERE, help="root holding models/ and bad/")
    ap.add_argument("--list", action="store_true", help="list model names and descriptions")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare bytes with --out")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)

    all_names = list(MODELS) + list(BAD)
    if args.list:
        for n in MODELS:
            print(f"models/{n}: {DESCRIPTIONS[n]}")
        for n in BAD:
            print(f"bad/{n}: {BAD_DESCRIPTIONS[n]}")
        return 0
    names = args.names or all_names
    unknown = [n for n in names if n not in MODELS and n not in BAD]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    log = (lambda s: None) if args.quiet else print

    if args.check:
        with tempfile.TemporaryDirectory() as td:
            written = generate(Path(td), names, lambda s: None)
            bad_files = []
            for p in written:
                rel = p.relative_to(td)
                ref = args.out / rel
                if not ref.exists() or not filecmp.cmp(p, ref, shallow=False):
                    bad_files.append(str(rel))
            if bad_files:
                print("differs from a fresh generation: " + ", ".join(bad_files))
                return 1
            print(f"all {len(written)} files are up to date")
            return 0

    written = generate(args.out, names, log)
    log(f"wrote {len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
