"""Quantise a float layer graph (:mod:`zeroskip.host.ir`, after the float passes) into
the engine's integer layers (:class:`~zeroskip.host.quant.qmodel.QModel`).

Each node maps to engine layers through one table keyed by (op, layout of the tensor it
reads), :data:`QUANTISE`; the scheme:

- **Input**: ``s_in = max|x| / 127`` over the calibration batch.
- **Activations**: a tensor's scale comes from its float values on the calibration batch
  (the graph evaluated in float64): ``max(a) / 127`` after ReLU, ``min(max(a), 6) / 127``
  after ReLU6 (so the engine's clamp at 127 is the ReLU6 clamp whenever the range reaches
  6), ``max|a| / 127`` without an activation; ``act_percentile`` < 100 clips outliers.
- **Weights**: one scale per output channel, ``max|W_c| / 127``, for every layer but the
  last, which gets one scale (its int32 outputs are the real outputs times one constant).
  A pruned zero stays 0.
- **Convolution / linear**: ``acc = bias + Σ w·a``; ``M / 2**S ≈ s_in·s_w[c] / s_out``
  (16-bit M, round half to even), the engine rounds half up.
- **Residual add** ``act(conv(x) + skip)``: fused into the convolution, whose row gets
  one more entry per output pixel reading ``skip`` with weight ``m[c]`` (int8, 1..127). The
  weight scale is chosen so that ``m[c]·s_in·s_w[c] = s_skip`` exactly:
  ``m[c] = clip(floor(s_skip / (s_in·max|W_c|/127)), 1, 127)``, ``s_w[c] = s_skip / (m[c]·s_in)``.
- **Average pooling** k×k stride s (s ≤ 2) and **global average pooling**: a depthwise
  convolution with weights 1 and ``M / 2**S ≈ 1 / (window size)``, the output keeping the
  input's scale; the result is ``(Σ·M + 2**(S-1)) >> S``, exactly round-half-up of the
  mean when the window size is a power of two, within one step otherwise.
- **Flatten**: no layer; the linear layer after it reads the map in (C, H, W) order.
- **Sparse-pixel mode** (``sites`` tensors): the input ``Reduce`` becomes the model's
  ``QInputReduce`` with the int8 threshold ``floor(threshold / s_in)``
  (:func:`threshold_to_int8`: ``q > t`` exactly when ``q·s_in > threshold``); a conv on a
  ``sites`` tensor is an ``sconv`` (submanifold) layer, calibrated on the active sites
  only; a pool on one a ``QSparsePool`` (max, or avg with the ``AVG_RECIP`` rule) keeping
  its input's scale. The rest is as above: one table keyed by (op, layout).

Nodes the engine cannot run raise :class:`UnsupportedModel` naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from zeroskip.driver.errors import UnsupportedModel
from zeroskip.host.ir.evaluate import evaluate
from zeroskip.host.ir.graph import Add, Conv, Flatten, Graph, Linear, Pool, Reduce
from zeroskip.host.quant.qmodel import SHIFT_MIN, SPOOL_MODES, LayerKind, QInputReduce, QLayer, QModel, QSparsePool
from zeroskip.host.quant.quantize import (
    DEFAULT_N_CALIB,
    _bias_int32,
    check_accumulator_bound,
    multiplier_to_mult_shift,
    quantize_input,
)

RELU6_MAX = 6.0


@dataclass
class _T:
    """A quantised tensor: the engine layer that writes it (-1: the input) and its scale."""

    layer: int
    scale: float


def _range(vals: np.ndarray, act: str, percentile: float, mask: np.ndarray | None = None) -> float:
    v = vals if act in ("relu", "relu6") else np.abs(vals)
    if mask is not None:   # sparse-pixel map: the values at the active sites only
        v = np.moveaxis(v, 1, -1)[mask[:, 0]]
    v = v.reshape(-1)
    if v.size == 0:
        return 0.0
    m = float(v.max()) if percentile >= 100 else float(np.percentile(v, percentile))
    if act == "relu6":
        m = min(m, RELU6_MAX)
    return m


def _act_scale(vals: np.ndarray, act: str, percentile: float, mask: np.ndarray | None = None) -> float:
    m = _range(vals, act, percentile, mask)
    return m / 127.0 if m > 0 and np.isfinite(m) else 1.0


def _weight_scales(w: np.ndarray, per_channel: bool) -> np.ndarray:
    absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    if per_channel:
        return np.where(absmax > 0, absmax / 127.0, 1.0)
    t = float(absmax.max())
    return np.full(w.shape[0], t / 127.0 if t > 0 else 1.0)


def _fused_adds(graph: Graph) -> dict:
    """Add node name → (conv node, skip tensor name): the input produced by a stride-1
    convolution without activation or pool that only the add reads is the main branch."""
    out = {}
    for n in graph.nodes:
        if not isinstance(n, Add):
            continue
        for main, other in ((0, 1), (1, 0)):
            prod = graph.producer(n.inputs[main])
            if (isinstance(prod, Conv) and prod.act == "none" and not prod.pool and prod.stride == (1, 1)
                    and len(graph.consumers(prod.output)) == 1 and prod.output not in graph.outputs):
                out[n.name] = (prod, n.inputs[other])
                break
        else:
            src = [getattr(graph.producer(i), "op", "input") for i in n.inputs]
            raise UnsupportedModel(f"{n.describe()}: a residual add runs inside the stride-1 convolution that produces "
                                   "one of its inputs (no activation or pooling between them, no other reader); "
                                   f"here the inputs come from {src}")
    return out


def quantize_graph(graph: Graph, calib_x, *, n_calib: int = DEFAULT_N_CALIB, act_percentile: float = 100.0,
                   name: str | None = None, input_scale: float | None = None) -> QModel:
    """Quantise ``graph`` (float, after :data:`~zeroskip.host.ir.passes.FLOAT_FLOW`) with the
    first ``n_calib`` calibration inputs ``calib_x`` (N, *input shape)."""
    if not 0 < act_percentile <= 100:
        raise ValueError(f"act_percentile must be in (0, 100], got {act_percentile}")
    (inp,) = graph.inputs
    if inp.layout == "sites":
        raise UnsupportedModel(f"graph {graph.name}: sparse-pixel graphs use the sparse-pixel quantiser")
    x = np.asarray(calib_x, dtype=np.float64)[:n_calib]
    if x.ndim < 2 or tuple(x.shape[1:]) != inp.shape:
        raise ValueError(f"calibration inputs have shape {tuple(x.shape)}, expected (N, *{inp.shape})")
    if x.shape[0] == 0:
        raise ValueError("no calibration inputs: pass at least one")
    if input_scale is None:
        x_max = float(np.abs(x).max())
        if not np.isfinite(x_max) or x_max == 0:
            raise ValueError(f"calibration inputs have max|x| = {x_max}; need finite, non-zero data")
        input_scale = x_max / 127.0
    vals, masks = evaluate(graph, x, all_tensors=True, with_masks=True)
    fused = _fused_adds(graph)
    last_node = graph.nodes[-1] if graph.nodes else None
    if not isinstance(last_node, Linear) or last_node.act != "none" or graph.outputs != [last_node.output]:
        raise UnsupportedModel(f"graph {graph.name}: the last node must be a linear layer without activation (the "
                               "engine streams its int32 outputs); a trailing Softmax is applied on the host")
    ctx = _Ctx(graph, x, vals, masks, act_percentile, fused, last_node, {inp.name: _T(-1, float(input_scale))})
    deferred = {conv.name for conv, _ in fused.values()}
    for node in graph.nodes:
        if node.name in deferred:
            continue
        layout = graph.tensors[node.inputs[0]].layout
        handler = QUANTISE.get((node.op, layout))
        if handler is None:
            raise UnsupportedModel(f"{node.describe()}: op {node.op!r} on a {layout} tensor cannot run here (an "
                                   "activation or pool must follow the layer that produces its input, with no other "
                                   "reader)")
        handler(ctx, node)
    shape = inp.shape if len(inp.shape) == 3 else (inp.shape[0], 1, 1)
    meta = {"n_calib": int(x.shape[0]), "act_percentile": float(act_percentile), "rounding": "half_to_even",
            "quantiser": "graph", "head": graph.meta.get("head"), "pool_layers": ctx.pools, **ctx.meta_extra}
    layers = ctx.layers
    if ctx.reduce is not None:   # sparse-pixel models are chains: every layer reads the one before
        layers = [replace(lay, src=None) if lay.kind.weighted else lay for lay in layers]
    return QModel(input_shape=shape, layers=tuple(layers), input_scale=float(input_scale),
                  name=name or graph.name, meta=meta, reduce=ctx.reduce)


@dataclass
class _Ctx:
    """What the node handlers share while :func:`quantize_graph` walks the graph."""

    graph: Graph
    x: np.ndarray                 # calibration inputs
    vals: dict                    # float values of every tensor on them
    masks: dict                   # activity masks of the sites tensors
    pct: float                    # act_percentile
    fused: dict                   # add name -> (conv node, skip tensor name)
    last_node: object
    tensors: dict                 # tensor name -> _T
    layers: list = field(default_factory=list)
    pools: dict = field(default_factory=dict)   # engine layers that are pooling (weights of ones, not model weights)
    reduce: QInputReduce | None = None
    meta_extra: dict = field(default_factory=dict)

    def emit(self, layer, out: str, scale: float) -> None:
        if layer.kind.weighted:
            check_accumulator_bound(layer, len(self.layers))
        self.layers.append(layer)
        self.tensors[out] = _T(len(self.layers) - 1, scale)


def _q_flatten(ctx: _Ctx, node: Flatten) -> None:
    ctx.tensors[node.output] = ctx.tensors[node.inputs[0]]


def _q_reduce(ctx: _Ctx, node: Reduce) -> None:
    if ctx.reduce is not None or node.inputs[0] != ctx.graph.inputs[0].name:
        raise UnsupportedModel(f"{node.describe()}: the input reduce must read the model's input, once")
    src = ctx.tensors[node.inputs[0]]
    t_int = threshold_to_int8(node.threshold, src.scale)
    ctx.reduce = QInputReduce(t_int, node.n_max)
    ctx.meta_extra = {"sparse_pixels": True, "threshold_float": float(node.threshold), "threshold_int8": t_int,
                      "reduce_agreement": _reduce_agreement(ctx.x, src.scale, ctx.reduce, ctx.masks[node.output])}
    ctx.tensors[node.output] = src


def _q_add(ctx: _Ctx, node: Add) -> None:
    conv, skip_name = ctx.fused[node.name]
    layer, scale = _conv_layer(conv, ctx.tensors, ctx.vals, ctx.pct, out_name=node.output, act=node.act,
                               skip=ctx.tensors[skip_name], name=f"{conv.name}+{node.name}")
    ctx.emit(layer, node.output, scale)


def _q_conv(ctx: _Ctx, node: Conv) -> None:
    layout = ctx.graph.tensors[node.inputs[0]].layout
    layer, scale = _conv_layer(node, ctx.tensors, ctx.vals, ctx.pct, out_name=node.output, act=node.act,
                               kind=LayerKind.of("conv", layout), mask=ctx.masks.get(node.output))
    ctx.emit(layer, node.output, scale)


def _q_linear(ctx: _Ctx, node: Linear) -> None:
    layer, scale = _linear_layer(node, ctx.tensors, ctx.vals, ctx.pct, node is ctx.last_node)
    ctx.emit(layer, node.output, scale)


def _q_sparse_pool(ctx: _Ctx, node: Pool) -> None:
    if node.kind not in SPOOL_MODES or node.kernel != (2, 2) or node.stride != (2, 2):
        raise UnsupportedModel(f"{node.describe()}: sparse-pixel pooling is 2x2 stride 2, max or avg")
    ctx.emit(QSparsePool(node.kind, name=node.name), node.output, ctx.tensors[node.inputs[0]].scale)


def _q_pool(ctx: _Ctx, node: Pool) -> None:
    layer, scale = _pool_layer(node, ctx.graph, ctx.tensors)
    ctx.emit(layer, node.output, scale)
    ctx.pools[len(ctx.layers) - 1] = node.kind


# (node op, layout of the tensor it reads) -> handler emitting its engine layers
QUANTISE = {
    ("conv", "grid"): _q_conv,             # LayerKind.CONV
    ("conv", "sites"): _q_conv,            # LayerKind.SCONV (submanifold)
    ("linear", "flat"): _q_linear,         # LayerKind.FC
    ("pool", "grid"): _q_pool,             # LayerKind.CONV: depthwise conv of ones
    ("pool", "sites"): _q_sparse_pool,     # LayerKind.SPOOL
    ("add", "grid"): _q_add,               # fused into the conv that produces one input
    ("flatten", "grid"): _q_flatten,       # no layer: the fc reads (C, H, W) order
    ("flatten", "sites"): _q_flatten,
    ("reduce", "grid"): _q_reduce,         # the model's QInputReduce
}


def _reduce_agreement(x: np.ndarray, s_in: float, reduce: QInputReduce, float_mask: np.ndarray) -> float:
    """Fraction of calibration images whose int8 site list equals the float one."""
    import torch
    from zeroskip.host.quant.reference import reduce_int8

    xq = quantize_input(x, s_in)
    int_mask = reduce_int8(torch.from_numpy(np.ascontiguousarray(xq)), reduce).mask.numpy()
    return float(np.mean(np.all(int_mask == float_mask, axis=(1, 2, 3))))


def threshold_to_int8(threshold: float, input_scale: float) -> int:
    """The int8 reduce threshold for a float ``threshold`` at ``input_scale``.

    Returns the largest integer ``t`` with ``t·s <= threshold``, i.e. ``floor(threshold /
    s)`` (corrected for float rounding of the division, so ``q > t`` ⇔ ``q·s >
    threshold`` for every integer ``q`` as evaluated in float64). A threshold at or above
    ``127·s`` gives 127 (no int8 input is active, as no representable input exceeds it);
    one below ``-128·s`` is rejected (every int8 value would have to be active, which
    ``q > t`` cannot express).
    """
    s = float(input_scale)
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"input scale must be a positive finite number, got {input_scale}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if threshold >= 127 * s:
        return 127
    t = math.floor(threshold / s)
    while (t + 1) * s <= threshold:
        t += 1
    while t * s > threshold:
        t -= 1
    if t < -128:
        raise ValueError(f"threshold {threshold} is below the int8 input range (-128 x {s:.6g}): every pixel "
                         "would be active; raise the threshold or the input scale")
    return int(t)


def _src(node, tensors: dict) -> _T:
    return tensors[node.inputs[0]]


def _mult_shift(node, m: np.ndarray):
    try:
        return multiplier_to_mult_shift(m)
    except ValueError as e:
        raise UnsupportedModel(f"{node.describe()}: {e}") from None


def _conv_layer(node: Conv, tensors: dict, vals: dict, pct: float, *, out_name: str, act: str,
                skip: _T | None = None, name: str | None = None, kind: LayerKind = LayerKind.CONV,
                mask=None) -> tuple[QLayer, float]:
    if node.dilation != (1, 1):
        raise UnsupportedModel(f"{node.describe()}: dilation {node.dilation} is not supported (dilation 1 only)")
    c_in = node.weight.shape[1] * node.groups
    if node.groups not in (1, c_in) or (node.groups > 1 and node.c_out != c_in):
        raise UnsupportedModel(f"{node.describe()}: groups={node.groups} is not supported (groups 1, or depthwise: "
                               "groups = input channels = output channels)")
    if any(s not in (1, 2) for s in node.stride):
        raise UnsupportedModel(f"{node.describe()}: stride {node.stride} is not supported (1 or 2 per axis)")
    src = _src(node, tensors)
    w = node.weight.astype(np.float64)
    s_w = _weight_scales(w, per_channel=True)
    if not kind.sparse:
        mask = None
    s_out = _act_scale(vals[out_name], act, pct, mask)
    skip_mult = None
    if skip is not None:
        ratio = skip.scale / (src.scale * s_w)
        skip_mult = np.clip(np.floor(ratio), 1, 127).astype(np.int64)
        s_w = skip.scale / (skip_mult * src.scale)
    q = np.clip(np.rint(w / s_w.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
    bias = _bias_int32(node.bias.astype(np.float64), src.scale * s_w, node.name)
    mult, shift = _mult_shift(node, src.scale * s_w / s_out)
    if kind.sparse:   # a conv on a sites tensor: submanifold, 'same' padding
        kh, kw = node.kernel
        if kh != kw or kh % 2 == 0 or node.padding != (kh // 2,) * 4 or node.stride != (1, 1) or node.groups != 1:
            raise UnsupportedModel(f"{node.describe()}: a sparse-pixel convolution has an odd square kernel, padding "
                                   "k//2, stride 1 and groups 1")
    layer = QLayer(kind=kind, weight=q, bias=bias, mult=mult, shift=shift, pads=node.padding,
                   padding=max(node.padding), stride=node.stride, groups=node.groups, relu=act in ("relu", "relu6"),
                   pool=node.pool, out_scale=s_out, name=name or node.name, src=src.layer,
                   skip=None if skip is None else skip.layer, skip_mult=skip_mult)
    return layer, s_out


def _linear_layer(node: Linear, tensors: dict, vals: dict, pct: float, last: bool) -> tuple[QLayer, float]:
    src = _src(node, tensors)
    w = node.weight.astype(np.float64)
    s_w = _weight_scales(w, per_channel=not last)
    q = np.clip(np.rint(w / s_w.reshape(-1, 1)), -127, 127).astype(np.int8)
    bias = _bias_int32(node.bias.astype(np.float64), src.scale * s_w, node.name)
    if last:
        mult = np.ones(q.shape[0], np.int64)
        shift = np.full(q.shape[0], SHIFT_MIN, np.int64)
        s_out = float(src.scale * s_w[0])
    else:
        s_out = _act_scale(vals[node.output], node.act, pct)
        mult, shift = _mult_shift(node, src.scale * s_w / s_out)
    layer = QLayer(kind=LayerKind.FC, weight=q, bias=bias, mult=mult, shift=shift, relu=node.act in ("relu", "relu6"),
                   out_scale=s_out, name=node.name, src=src.layer)
    return layer, s_out


def _pool_layer(node: Pool, graph: Graph, tensors: dict) -> tuple[QLayer, float]:
    src = _src(node, tensors)
    c, h, w = graph.tensors[node.inputs[0]].shape
    if node.kind == "max":
        raise UnsupportedModel(f"{node.describe()}: a max-pool runs fused into the convolution before it (2x2, "
                               "stride 2, that convolution having no other reader)")
    if node.kind == "global_avg":
        kh, kw, stride = h, w, (1, 1)
    else:
        (kh, kw), stride = node.kernel, node.stride
        if any(s not in (1, 2) for s in stride):
            raise UnsupportedModel(f"{node.describe()}: average pooling with stride {stride} (1 or 2 per axis)")
    n = kh * kw
    weight = np.ones((c, 1, kh, kw), np.int8)
    mult, shift = _mult_shift(node, np.full(c, 1.0 / n))
    layer = QLayer(kind=LayerKind.CONV, weight=weight, bias=np.zeros(c, np.int32), mult=mult, shift=shift, stride=stride,
                   groups=c, relu=False, out_scale=src.scale, name=node.name, src=src.layer)
    return layer, src.scale
