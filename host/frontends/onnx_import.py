"""ONNX frontend: an ``.onnx`` file (or ``onnx.ModelProto``) → float layer graph.

The ONNX graph is walked in its (topological) node order and every node is dispatched to
the handler registered for its ``op_type`` (:func:`handler`), which emits the IR node —
the same IR :func:`~zeroskip.host.frontends.from_torch` produces. Values are of three kinds:

* **tensors** computed from the model input: IR tensors, named by their ONNX value name;
* **constants**: initializers, ``Constant`` nodes and everything computed from constants
  alone. A node whose inputs are all constants is folded with ONNX's reference
  evaluator, whatever its op (the shape arithmetic exporters emit for
  ``x.view(x.size(0), -1)``: ``Shape → Gather → Unsqueeze → Concat``, or the pads of a
  ``ZeroPad2d``: ``ConstantOfShape → Concat → Reshape → Slice → Transpose → Cast``);
  ``Shape`` of a tensor is a constant too, its batch entry the static batch size or a
  sentinel standing for the symbolic one;
* a **zero-padded tensor** (``Pad``, constant mode, value 0, spatial axes only) that
  folds into the padding of the convolution that reads it.

Accepted (opset 13 and later; earlier opsets where the op reads the same): ``Conv``
(groups 1 or depthwise, dilation 1, explicit pads or ``auto_pad``), ``Gemm``,
``MatMul`` with a constant weight (a following ``Add`` of a constant becomes its bias),
``Relu``, ``Clip`` (0, 6) / (0, ∞), ``MaxPool`` / ``AveragePool`` without padding,
``GlobalAveragePool``, ``ReduceMean`` over H and W, ``Flatten``, ``Reshape`` / ``Squeeze``
to (N, -1), ``BatchNormalization`` (inference), ``Add`` of two tensors, ``Dropout`` /
``Identity``, and a trailing ``Softmax`` / ``LogSoftmax``, which is no IR node: it is
recorded as ``graph.meta["head"]`` (``"softmax"`` / ``"log_softmax"``) for the host to
apply after dequantisation.

Anything else raises :class:`~zeroskip.driver.errors.UnsupportedModel` naming the ONNX
node, its op_type and the reason, and listing what is supported. As for the torch
frontend this only translates: activations and pools are fused and BatchNorms folded by
the passes (:data:`~zeroskip.host.ir.FLOAT_FLOW`), and what the engine can run is decided
by the lowering.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper
from zeroskip.driver.errors import UnsupportedModel
from zeroskip.host.ir.graph import (
    Act,
    Add,
    BatchNorm,
    Conv,
    Flatten,
    Graph,
    Identity,
    Linear,
    Pool,
    Tensor,
)

_HANDLERS: dict[str, Callable] = {}

SUPPORTED = ("Conv (groups 1 or depthwise, dilation 1)", "Gemm", "MatMul by a constant (+ Add of a constant bias)",
             "Relu", "Clip(0, 6) / Clip(0, inf)", "MaxPool / AveragePool (no padding)", "GlobalAveragePool",
             "ReduceMean over H, W", "Flatten(axis 1)", "Reshape / Squeeze to (N, -1)",
             "BatchNormalization (inference)", "Add of two tensors", "Pad with zeros before a Conv",
             "Dropout / Identity (dropped)", "a trailing Softmax / LogSoftmax (graph.meta['head'])",
             "shape arithmetic on constants (Shape, Gather, Unsqueeze, Concat, ...: folded)")

# stands for the symbolic batch size in folded shape arithmetic (a value no real shape has)
_BATCH = 1_000_003
_MIN_OPSET = 7
_RANDOM = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")


def handler(*op_types: str):
    """Register a handler ``fn(ctx, node)`` for ONNX ``op_types`` (default domain)."""
    def deco(fn):
        for op in op_types:
            _HANDLERS[op] = fn
        return fn
    return deco


def _unsupported(node: onnx.NodeProto, why: str = "") -> UnsupportedModel:
    reason = f": {why}" if why else ""
    return UnsupportedModel(f"node {node.name} ({node.op_type}) is not supported{reason}. "
                            f"Supported: {', '.join(SUPPORTED)}")


class _Padded:
    """A zero-padded tensor: ``src`` (IR tensor name), ``pads`` (top, bottom, left, right)."""

    def __init__(self, src: str, pads: tuple, pad_node: onnx.NodeProto):
        self.src, self.pads, self.pad_node = src, pads, pad_node


class _Ctx:
    """Translation state: what every ONNX value is (IR tensor, constant or padded tensor),
    the IR nodes emitted so far and how many ONNX nodes read each value."""

    def __init__(self, graph: onnx.GraphProto, opset: int, batch: int):
        self.opset = opset
        self.batch = batch
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.name_of: dict[str, str] = {}           # ONNX value → IR tensor name
        self.padded: dict[str, _Padded] = {}
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list = []
        self.node_names: set[str] = set()
        self.outputs = [o.name for o in graph.output]
        self.readers: dict[str, int] = {}
        for n in graph.node:
            for i in n.input:
                if i:
                    self.readers[i] = self.readers.get(i, 0) + 1
        for o in self.outputs:
            self.readers[o] = self.readers.get(o, 0) + 1
        self.head: str | None = None

    # -- values --------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, node: onnx.NodeProto, i: int, what: str) -> np.ndarray | None:
        """Input ``i`` of ``node`` as a constant (None when absent); a computed value is refused."""
        if i >= len(node.input) or not node.input[i]:
            return None
        name = node.input[i]
        if name not in self.consts:
            raise _unsupported(node, f"its {what} ({name}) is computed from the input; it must be a constant")
        return self.consts[name]

    def tensor(self, node: onnx.NodeProto, i: int = 0) -> str:
        """Input ``i`` of ``node`` as an IR tensor name."""
        name = node.input[i] if i < len(node.input) else ""
        if name in self.name_of:
            return self.name_of[name]
        if name in self.padded:
            p = self.padded[name]
            raise _unsupported(node, f"it reads the output of Pad node {p.pad_node.name}: a zero Pad folds only "
                               "into the convolution that reads it")
        if name in self.consts:
            raise _unsupported(node, f"its input {name} is a constant, not a tensor computed from the model input")
        raise _unsupported(node, f"input {name!r} is not produced by any supported node")

    def shape(self, ir_name: str) -> tuple:
        return self.tensors[ir_name].shape

    def unused(self, node: onnx.NodeProto, first: int = 1) -> None:
        """Outputs from index ``first`` on must not be read (mask, indices, running statistics)."""
        for o in node.output[first:]:
            if o and self.readers.get(o):
                raise _unsupported(node, f"its output {o} is read; only the first output is supported")

    # -- emitting ------------------------------------------------------------------------
    def node_name(self, node: onnx.NodeProto, suffix: str = "") -> str:
        base = (node.name or f"{node.op_type}_{node.output[0]}") + suffix
        name, k = base, 1
        while name in self.node_names:
            name, k = f"{base}_{k}", k + 1
        self.node_names.add(name)
        return name

    def emit(self, ir_node, onnx_output: str | None = None) -> str:
        self.nodes.append(ir_node)
        ins = [self.tensors[i] for i in ir_node.inputs]
        self.tensors[ir_node.output] = ir_node.out_tensor(ins)
        if onnx_output is not None:
            self.name_of[onnx_output] = ir_node.output
        return ir_node.output

    def alias(self, onnx_output: str, ir_name: str) -> None:
        self.name_of[onnx_output] = ir_name

    def producer_index(self, ir_name: str) -> int | None:
        return next((k for k, n in enumerate(self.nodes) if n.output == ir_name), None)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


# ------------------------------------------------------------------ constant folding
def _fold(ctx: _Ctx, node: onnx.NodeProto) -> None:
    """Evaluate ``node`` on constants with ONNX's reference evaluator."""
    from onnx.reference import ReferenceEvaluator

    feeds = {i: ctx.consts[i] for i in node.input if i}
    try:
        outs = ReferenceEvaluator(node, opsets={"": ctx.opset}).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - the reference evaluator raises many kinds
        raise _unsupported(node, f"folding it on constants failed ({type(e).__name__}: {e})") from None
    for name, val in zip(node.output, outs):
        if name:
            ctx.consts[name] = np.asarray(val)


@handler("Shape")
def _shape(ctx, node):
    x = node.input[0]
    if x in ctx.padded:
        p = ctx.padded[x]
        c, h, w = ctx.shape(p.src)
        dims = [ctx.batch, c, h + p.pads[0] + p.pads[1], w + p.pads[2] + p.pads[3]]
    else:
        dims = [ctx.batch, *ctx.shape(ctx.tensor(node))]
    a = _attrs(node)
    start, end = a.get("start", 0), a.get("end", None)
    ctx.consts[node.output[0]] = np.asarray(dims[start:end], dtype=np.int64)


# ------------------------------------------------------------------ layers
def _spatial_pads(node, a: dict, hw: tuple, kernel: tuple, stride: tuple) -> tuple:
    """(top, bottom, left, right) from ``pads`` / ``auto_pad``."""
    auto = _s(a.get("auto_pad", "NOTSET"))
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s in zip(hw, kernel, stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return (pads[0][0], pads[0][1], pads[1][0], pads[1][1])
    if auto != "NOTSET":
        raise _unsupported(node, f"auto_pad={auto}")
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4:
        raise _unsupported(node, f"pads {p}: only 2-D (N, C, H, W) inputs")
    return (p[0], p[2], p[1], p[3])   # ONNX [t, l, b, r] → (top, bottom, left, right)


def _two(node, a: dict, key: str, default) -> tuple:
    v = tuple(int(x) for x in a.get(key, default))
    if len(v) != 2:
        raise _unsupported(node, f"{key}={list(v)}: only 2-D (N, C, H, W) inputs")
    return v


@handler("Conv")
def _conv(ctx, node):
    src = node.input[0]
    extra = (0, 0, 0, 0)
    if src in ctx.padded:
        p = ctx.padded[src]
        x, extra = p.src, p.pads
    else:
        x = ctx.tensor(node)
    t = ctx.tensors[x]
    if t.layout == "flat":
        raise _unsupported(node, f"a convolution needs a (C, H, W) input, gets {t.shape}")
    w = ctx.const(node, 1, "weight")
    if w.ndim != 4:
        raise _unsupported(node, f"weight of shape {w.shape}: only 2-D convolutions")
    b = ctx.const(node, 2, "bias")
    a = _attrs(node)
    kernel = _two(node, a, "kernel_shape", w.shape[2:])
    if kernel != tuple(w.shape[2:]):
        raise _unsupported(node, f"kernel_shape {kernel} differs from the weight's {w.shape[2:]}")
    dil = _two(node, a, "dilations", (1, 1))
    if dil != (1, 1):
        raise _unsupported(node, f"dilations {list(dil)}: only dilation 1")
    stride = _two(node, a, "strides", (1, 1))
    groups = int(a.get("group", 1))
    c_in = t.shape[0]
    if groups != 1 and not (groups == c_in and w.shape[0] % c_in == 0):
        raise _unsupported(node, f"group={groups} with {c_in} input channels: grouped convolutions other than "
                           "depthwise (group = input channels) do not run on the engine")
    hw = (t.shape[1] + extra[0] + extra[1], t.shape[2] + extra[2] + extra[3])
    pads = _spatial_pads(node, a, hw, kernel, stride)
    pads = tuple(p + e for p, e in zip(pads, extra))
    ctx.emit(Conv(ctx.node_name(node), (x,), node.output[0], weight=_f64(w), bias=None if b is None else _f64(b),
                  stride=stride, padding=pads, groups=groups), node.output[0])


@handler("Pad")
def _pad(ctx, node):
    x = ctx.tensor(node)
    a = _attrs(node)
    mode = _s(a.get("mode", "constant"))
    if mode != "constant":
        raise _unsupported(node, f"mode={mode}: only zero padding")
    pads = ctx.const(node, 1, "pads")
    if pads is None:
        pads = np.asarray(a.get("pads", []))
    value = ctx.const(node, 2, "constant value")
    if value is None:
        value = a.get("value", 0.0)
    if np.any(np.asarray(value) != 0):
        raise _unsupported(node, f"padding value {value}: only zeros")
    pads = [int(v) for v in np.asarray(pads).reshape(-1)]
    rank = 4 if ctx.tensors[x].layout != "flat" else 2
    axes = ctx.const(node, 3, "axes")
    axes = list(range(rank)) if axes is None else [int(v) % rank for v in np.asarray(axes).reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise _unsupported(node, f"pads {pads} for axes {axes}")
    full = [0] * (2 * rank)
    for k, ax in enumerate(axes):
        full[ax], full[rank + ax] = pads[k], pads[len(axes) + k]
    if rank != 4 or any(full[i] for i in (0, 1, 4, 5)) or any(v < 0 for v in full):
        raise _unsupported(node, f"pads {pads}: only non-negative padding of H and W of a (C, H, W) map")
    pp = (full[2], full[6], full[3], full[7])
    if node.input[0] in ctx.padded:
        raise _unsupported(node, "a Pad of a Pad")
    ctx.padded[node.output[0]] = _Padded(x, pp, node)


def _linear(ctx, node, x: str, weight: np.ndarray, bias: np.ndarray | None) -> str:
    return ctx.emit(Linear(ctx.node_name(node), (x,), node.output[0], weight=_f64(weight),
                           bias=None if bias is None else _f64(bias)), node.output[0])


def _bias_vector(node, c: np.ndarray, n: int, what: str) -> np.ndarray:
    c = np.asarray(c)
    if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1) or c.size not in (1, n):
        raise _unsupported(node, f"{what} of shape {c.shape} is not a bias of {n} outputs")
    return np.broadcast_to(_f64(c).reshape(-1), (n,)).copy()


def _flat_input(ctx, node) -> str:
    x = ctx.tensor(node)
    if ctx.tensors[x].layout != "flat":
        raise _unsupported(node, f"a fully connected layer needs a flat input, gets {ctx.tensors[x].shape}: "
                           "flatten it first")
    return x


@handler("Gemm")
def _gemm(ctx, node):
    if node.input[1] in ctx.name_of:
        raise _unsupported(node, "a product of two computed tensors (attention) does not run on the engine")
    x = _flat_input(ctx, node)
    a = _attrs(node)
    if int(a.get("transA", 0)):
        raise _unsupported(node, "transA=1")
    b = _f64(ctx.const(node, 1, "weight"))
    if b.ndim != 2:
        raise _unsupported(node, f"weight of shape {b.shape}")
    weight = float(a.get("alpha", 1.0)) * (b if int(a.get("transB", 0)) else b.T)
    c = ctx.const(node, 2, "bias")
    bias = None if c is None else float(a.get("beta", 1.0)) * _bias_vector(node, c, weight.shape[0], "C")
    _linear(ctx, node, x, weight, bias)


@handler("MatMul")
def _matmul(ctx, node):
    if node.input[1] in ctx.name_of:
        raise _unsupported(node, "a product of two computed tensors (attention) does not run on the engine")
    x = _flat_input(ctx, node)
    w = _f64(ctx.const(node, 1, "weight"))
    if w.ndim != 2:
        raise _unsupported(node, f"weight of shape {w.shape}: only a 2-D (K, N) weight")
    _linear(ctx, node, x, w.T, None)


def _fold_bias(ctx, node, x_in: str, c: np.ndarray) -> bool:
    """Fold a constant added to ONNX value ``x_in`` into the bias of the Linear / Conv
    that writes it, when nothing else reads it. True when done."""
    x = ctx.name_of.get(x_in)
    k = None if x != x_in else ctx.producer_index(x)   # the Add reads the layer's own output
    if k is None:
        return False
    prod = ctx.nodes[k]
    if not isinstance(prod, (Linear, Conv)) or prod.act != "none" or ctx.readers.get(x_in, 0) != 1:
        return False
    n = prod.weight.shape[0]
    c = np.asarray(c)
    rank = 4 if isinstance(prod, Conv) else 2        # the bias broadcasts over (N, C, H, W) / (N, F)
    if c.ndim > rank:
        return False
    s = (1,) * (rank - c.ndim) + c.shape
    if s[0] != 1 or s[1] not in (1, n) or any(d != 1 for d in s[2:]):
        return False
    vec = np.broadcast_to(_f64(c).reshape(-1), (n,))
    ctx.nodes[k] = replace(prod, bias=np.asarray(prod.bias, np.float64) + vec)
    ctx.alias(node.output[0], x)
    return True


@handler("Add")
def _add(ctx, node):
    ia, ib = node.input[0], node.input[1]
    if ctx.is_const(ia) or ctx.is_const(ib):
        x_in, c = (ib, ctx.consts[ia]) if ctx.is_const(ia) else (ia, ctx.consts[ib])
        ctx.tensor(node, list(node.input).index(x_in))
        if not _fold_bias(ctx, node, x_in, c):
            raise _unsupported(node, "adding a constant is supported only as the bias of the MatMul / Gemm / Conv "
                               "just before it (with no other reader)")
        return
    a, b = ctx.tensor(node, 0), ctx.tensor(node, 1)
    if ctx.tensors[a].shape != ctx.tensors[b].shape:
        raise _unsupported(node, f"adds tensors of shapes {ctx.tensors[a].shape} and {ctx.tensors[b].shape}: "
                           "only tensors of one shape (no broadcasting)")
    ctx.emit(Add(ctx.node_name(node), (a, b), node.output[0]), node.output[0])


@handler("Relu")
def _relu(ctx, node):
    ctx.emit(Act(ctx.node_name(node), (ctx.tensor(node),), node.output[0], kind="relu"), node.output[0])


@handler("Clip")
def _clip(ctx, node):
    x = ctx.tensor(node)
    a = _attrs(node)
    lo, hi = ctx.const(node, 1, "min"), ctx.const(node, 2, "max")
    lo = float(a.get("min", -np.inf)) if lo is None else float(np.asarray(lo).reshape(-1)[0])
    hi = float(a.get("max", np.inf)) if hi is None else float(np.asarray(hi).reshape(-1)[0])
    if lo == 0.0 and hi == 6.0:
        kind = "relu6"
    elif lo == 0.0 and hi == np.inf:
        kind = "relu"
    else:
        raise _unsupported(node, f"Clip({lo}, {hi}): only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU)")
    ctx.emit(Act(ctx.node_name(node), (x,), node.output[0], kind=kind), node.output[0])


@handler("MaxPool", "AveragePool")
def _pool(ctx, node):
    x = ctx.tensor(node)
    t = ctx.tensors[x]
    if t.layout == "flat":
        raise _unsupported(node, f"pooling needs a (C, H, W) input, gets {t.shape}")
    ctx.unused(node)
    a = _attrs(node)
    kernel = _two(node, a, "kernel_shape", ())
    stride = _two(node, a, "strides", (1, 1))
    if _two(node, a, "dilations", (1, 1)) != (1, 1):
        raise _unsupported(node, "dilated pooling")
    pads = _spatial_pads(node, a, t.shape[1:], kernel, stride)
    if any(pads):
        raise _unsupported(node, f"padding {pads}: only pooling without padding")
    if int(a.get("ceil_mode", 0)):
        for size, k, s in zip(t.shape[1:], kernel, stride):
            if (size - k) % s:
                raise _unsupported(node, "ceil_mode=1 where it changes the output size")
    kind = "max" if node.op_type == "MaxPool" else "avg"
    ctx.emit(Pool(ctx.node_name(node), (x,), node.output[0], kind=kind, kernel=kernel, stride=stride),
             node.output[0])


@handler("GlobalAveragePool")
def _gap(ctx, node):
    ctx.emit(Pool(ctx.node_name(node), (ctx.tensor(node),), node.output[0], kind="global_avg"), node.output[0])


def _axes(ctx, node, rank: int) -> list | None:
    a = _attrs(node)
    axes = ctx.const(node, 1, "axes") if len(node.input) > 1 else None
    if axes is None:
        axes = a.get("axes")
    return None if axes is None else sorted(int(v) % rank for v in np.asarray(axes).reshape(-1))


@handler("ReduceMean")
def _reduce_mean(ctx, node):
    x = ctx.tensor(node)
    t = ctx.tensors[x]
    axes = _axes(ctx, node, 4 if t.layout != "flat" else 2)
    if t.layout == "flat" or axes != [2, 3]:
        raise _unsupported(node, f"mean over axes {axes}: only the mean over H and W of an (N, C, H, W) map")
    a = _attrs(node)
    if int(a.get("keepdims", 1)):
        ctx.emit(Pool(ctx.node_name(node), (x,), node.output[0], kind="global_avg"), node.output[0])
        return
    name = ctx.node_name(node)
    pooled = ctx.emit(Pool(name, (x,), f"{node.output[0]}/global_avg", kind="global_avg"))
    ctx.emit(Flatten(ctx.node_name(node, "/flatten"), (pooled,), node.output[0]), node.output[0])


def _to_flat(ctx, node, x: str) -> None:
    if ctx.tensors[x].layout == "flat":
        ctx.alias(node.output[0], x)
    else:
        ctx.emit(Flatten(ctx.node_name(node), (x,), node.output[0]), node.output[0])


@handler("Flatten")
def _flatten(ctx, node):
    x = ctx.tensor(node)
    rank = 4 if ctx.tensors[x].layout != "flat" else 2
    axis = int(_attrs(node).get("axis", 1))
    if axis % rank != 1 or axis < -rank:
        raise _unsupported(node, f"axis={axis}: only Flatten(axis=1), which keeps the batch")
    _to_flat(ctx, node, x)


@handler("Reshape")
def _reshape(ctx, node):
    x = ctx.tensor(node)
    t = ctx.tensors[x]
    shape = [int(v) for v in np.asarray(ctx.const(node, 1, "shape")).reshape(-1)]
    allowzero = int(_attrs(node).get("allowzero", 0))
    size = int(np.prod(t.shape))
    dims = list(shape)
    if not allowzero:
        keep = [ctx.batch, *t.shape]
        dims = [keep[i] if d == 0 and i < len(keep) else d for i, d in enumerate(dims)]
    batch_ok = bool(dims) and (dims[0] == ctx.batch or (dims[0] == -1 and -1 not in dims[1:]
                                                         and int(np.prod(dims[1:])) == size))
    if batch_ok and len(dims) == 2 and dims[1] in (-1, size):
        _to_flat(ctx, node, x)
        return
    if batch_ok and tuple(dims[1:]) == t.shape:
        ctx.alias(node.output[0], x)
        return
    shown = ["N" if d == _BATCH else d for d in shape]
    raise _unsupported(node, f"reshape of a {t.shape} tensor to {shown}: only flattening to (N, -1)")


@handler("Squeeze")
def _squeeze(ctx, node):
    x = ctx.tensor(node)
    t = ctx.tensors[x]
    axes = _axes(ctx, node, 4 if t.layout != "flat" else 2)
    if t.layout != "flat" and axes == [2, 3] and t.shape[1:] == (1, 1):
        _to_flat(ctx, node, x)
        return
    raise _unsupported(node, f"squeeze of axes {axes} of a {t.shape} tensor: only squeezing a (C, 1, 1) map "
                       "to (C,) with axes [2, 3]")


@handler("BatchNormalization")
def _bn(ctx, node):
    x = ctx.tensor(node)
    a = _attrs(node)
    if int(a.get("training_mode", 0)):
        raise _unsupported(node, "training_mode=1: export the model in eval mode (model.eval())")
    ctx.unused(node)
    gamma, beta = ctx.const(node, 1, "scale"), ctx.const(node, 2, "bias")
    mean, var = ctx.const(node, 3, "running mean"), ctx.const(node, 4, "running variance")
    n = ctx.tensors[x].shape[0]
    if any(v is None or np.asarray(v).size != n for v in (gamma, beta, mean, var)):
        raise _unsupported(node, f"statistics that are not vectors of {n} channels")
    ctx.emit(BatchNorm(ctx.node_name(node), (x,), node.output[0], gamma=_f64(gamma).reshape(-1),
                       beta=_f64(beta).reshape(-1), mean=_f64(mean).reshape(-1), var=_f64(var).reshape(-1),
                       eps=float(a.get("epsilon", 1e-5))), node.output[0])


@handler("Dropout", "Identity")
def _identity(ctx, node):
    x = ctx.tensor(node)
    if node.op_type == "Dropout":
        training = ctx.const(node, 2, "training_mode")
        if training is not None and bool(np.asarray(training).reshape(-1)[0]):
            raise _unsupported(node, "training_mode=True: export the model in eval mode (model.eval())")
        ctx.unused(node)
    ctx.emit(Identity(ctx.node_name(node), (x,), node.output[0]), node.output[0])


@handler("Softmax", "LogSoftmax")
def _softmax(ctx, node):
    x = ctx.tensor(node)
    head = "softmax" if node.op_type == "Softmax" else "log_softmax"
    if node.output[0] not in ctx.outputs or ctx.readers.get(node.output[0], 0) != 1:
        raise _unsupported(node, f"{node.op_type} is supported only as the last op of the model (applied by the "
                           "host after dequantisation)")
    if ctx.tensors[x].layout != "flat":
        raise _unsupported(node, f"{node.op_type} of a {ctx.tensors[x].shape} map: only over the classes of a "
                           "flat output")
    axis = int(_attrs(node).get("axis", -1 if ctx.opset >= 13 else 1))
    if axis % 2 != 1:
        raise _unsupported(node, f"axis={axis}: only over the classes (axis 1 / -1)")
    ctx.head = head
    ctx.alias(node.output[0], x)


# ------------------------------------------------------------------ entry point
def _load(path_or_model) -> tuple[onnx.ModelProto, str | None]:
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, None
    if isinstance(path_or_model, (str, Path)):
        p = Path(path_or_model)
        if not p.is_file():
            raise FileNotFoundError(f"no ONNX file {p}")
        return onnx.load(str(p)), p.stem
    raise TypeError(f"from_onnx takes a path to an .onnx file or an onnx.ModelProto, not {type(path_or_model)}")


def _input(graph: onnx.GraphProto, input_shape) -> tuple[Tensor, int]:
    inits = {i.name for i in graph.initializer}
    ins = [i for i in graph.input if i.name not in inits]
    if len(ins) != 1:
        raise UnsupportedModel(f"the model has {len(ins)} inputs ({', '.join(i.name for i in ins)}); the overlay "
                               "runs models with exactly one input")
    inp = ins[0]
    tt = inp.type.tensor_type
    if tt.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        raise UnsupportedModel(f"input {inp.name} has element type "
                               f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; a float input is needed")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") \
        else None
    batch = _BATCH
    if dims:
        batch = dims[0] if dims[0] else _BATCH
        dims = dims[1:]
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if dims is not None and (len(dims) != len(shape) or any(d and d != s for d, s in zip(dims, shape))):
            raise ValueError(f"input_shape {shape} does not match the model's input {inp.name} of shape "
                             f"(N, {', '.join('?' if d is None else str(d) for d in dims)})")
    else:
        if dims is None or any(d is None for d in dims):
            raise ValueError(f"the model's input {inp.name} has no fixed shape; give input_shape (without the batch)")
        shape = tuple(dims)
    if len(shape) not in (1, 3):
        raise UnsupportedModel(f"input {inp.name} of shape (N, {shape}): only (N, C, H, W) images and (N, F) "
                               "vectors")
    return Tensor(inp.name, shape, "grid" if len(shape) == 3 else "flat"), batch


def _prescan(graph: onnx.GraphProto) -> None:
    """Refuse up front the nodes computing on the model input with an op no handler
    knows (LSTM, Sigmoid, attention, ...), naming the first and listing the others."""
    inits = {i.name for i in graph.initializer}
    dynamic = {i.name for i in graph.input if i.name not in inits}
    bad = []
    for node in graph.node:
        if node.op_type in ("Shape", "Size") or not any(i in dynamic for i in node.input if i):
            continue
        dynamic.update(o for o in node.output if o)
        if node.domain not in ("", "ai.onnx") or node.op_type not in _HANDLERS:
            bad.append(node)
    if bad:
        first, rest = bad[0], bad[1:]
        why = "no such layer on the overlay"
        if first.domain not in ("", "ai.onnx"):
            why = f"custom domain {first.domain!r}"
        if rest:
            why += "; other unsupported nodes: " + ", ".join(f"{n.name} ({n.op_type})" for n in rest[:8]) + \
                (", ..." if len(rest) > 8 else "")
        raise _unsupported(first, why)


def from_onnx(path_or_model, input_shape: tuple | None = None, name: str | None = None) -> Graph:
    """Translate an ONNX model (a path to an ``.onnx`` file or an ``onnx.ModelProto``) into
    a float :class:`~zeroskip.host.ir.graph.Graph`. ``input_shape`` (without the batch:
    (C, H, W) or (F,)) is needed only when the model's input has symbolic sizes other
    than the batch. A trailing Softmax / LogSoftmax is recorded in ``graph.meta["head"]``."""
    model, stem = _load(path_or_model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset < _MIN_OPSET:
        raise UnsupportedModel(f"the model uses ONNX opset {opset}; opset {_MIN_OPSET} or later is needed "
                               "(13 or later recommended)")
    g = model.graph
    if len(g.output) != 1:
        raise UnsupportedModel(f"the model has {len(g.output)} outputs ({', '.join(o.name for o in g.output)}); "
                               "the overlay runs models with exactly one output")
    _prescan(g)
    inp, batch = _input(g, input_shape)
    ctx = _Ctx(g, opset, batch)
    ctx.tensors[inp.name] = inp
    ctx.name_of[inp.name] = inp.name
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise _unsupported(node, f"custom domain {node.domain!r}")
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise _unsupported(node, "control flow (subgraphs) does not run on the overlay")
        if node.op_type in _RANDOM:
            raise _unsupported(node, "random values")
        if all(ctx.is_const(i) for i in node.input if i):
            _fold(ctx, node)
            continue
        fn = _HANDLERS.get(node.op_type)
        if fn is None:
            raise _unsupported(node)
        fn(ctx, node)
    out = g.output[0].name
    if out not in ctx.name_of:
        what = "a constant" if out in ctx.consts else "a padded tensor no convolution reads" \
            if out in ctx.padded else "not computed"
        raise UnsupportedModel(f"the model's output {out} is {what}")
    graph = Graph([inp], ctx.nodes, [ctx.name_of[out]], name or stem or g.name or "model")
    if ctx.head is not None:
        graph.meta["head"] = ctx.head
    return graph
