"""PyTorch frontend: an ``nn.Module`` → float layer graph, through ``torch.fx``.

The module is traced symbolically (``torch.fx.symbolic_trace``); every call in the traced
graph is dispatched to the handler registered for its module type, function or method
(one handler per op family, :func:`handler`), which returns the IR node. What users
write is accepted: submodules (``nn.Conv2d``, ``nn.Linear``, ``nn.BatchNorm1d/2d``,
``nn.ReLU``, ``nn.ReLU6``, ``nn.MaxPool2d``, ``nn.AvgPool2d``, ``nn.AdaptiveAvgPool2d(1)``,
``nn.Flatten``, ``nn.Dropout``, ``nn.Identity``, ``nn.Sequential``) and the functional forms
(``F.relu``, ``torch.relu``, ``F.relu6``, ``F.max_pool2d``, ``F.avg_pool2d``,
``F.adaptive_avg_pool2d``, ``torch.flatten``, ``x.view(x.size(0), -1)``,
``x.reshape(x.size(0), -1)``, ``x.flatten(1)``, ``x + y``, ``torch.add``, ``x.relu()``),
plus the sparse-pixel modules of :mod:`zeroskip.host.models.sparse`, traced as leaves.

Anything else raises :class:`~zeroskip.driver.errors.UnsupportedModel` naming the node
and its op, and listing what is supported. This frontend only translates: what the
engine can run is decided by the lowering.
"""

from __future__ import annotations

import operator
from typing import Callable

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F
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
    Pad,
    Pool,
    Reduce,
    Tensor,
)
from zeroskip.host.models import sparse as S

_MODULES: dict[type, Callable] = {}
_FUNCTIONS: dict[object, Callable] = {}
_METHODS: dict[str, Callable] = {}

SUPPORTED = ("Conv2d (groups 1 or depthwise; padding numbers, 'same' or 'valid')", "ZeroPad2d / F.pad with zeros",
             "Linear", "BatchNorm1d/2d (folded)",
             "ReLU", "ReLU6", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d(1)", "x.mean((2, 3))",
             "Flatten / view / reshape to (N, -1)",
             "add", "Dropout / Identity (dropped)", "a trailing Softmax / LogSoftmax (run on the host)",
             "the sparse-pixel modules (InputReduce, SparseConv2d, SparseReLU, SparsePool2d, SparseFlatten)")

# leaves: traced as one call, not into their forward
_LEAVES = (S.InputReduce, S.SparseConv2d, S.SparseReLU, S.SparsePool2d, S.SparseFlatten)


def handler(*keys, kind: str):
    """Register a handler for module types (``kind="module"``), functions
    (``"function"``) or tensor methods (``"method"``)."""
    table = {"module": _MODULES, "function": _FUNCTIONS, "method": _METHODS}[kind]

    def deco(fn):
        for k in keys:
            table[k] = fn
        return fn
    return deco


class _Ctx:
    """Translation state: tensor names of fx nodes, shape-only values (``x.size(0)``)."""

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.nodes: list = []
        self.name_of: dict[fx.Node, object] = {}
        self.tensors: dict[str, Tensor] = {}

    def arg(self, a):
        if isinstance(a, fx.Node):
            return self.name_of[a]
        return a

    def emit(self, node) -> str:
        self.nodes.append(node)
        ins = [self.tensors[i] for i in node.inputs]
        self.tensors[node.output] = node.out_tensor(ins)
        return node.output


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to(torch.float64).cpu().numpy()


def _weight(mod: nn.Module) -> torch.Tensor:
    """The effective weight, pruning masks applied (``weight_orig * weight_mask``)."""
    return mod.weight


def _unsupported(fxn: fx.Node, what: str, why: str = "") -> UnsupportedModel:
    reason = f": {why}" if why else ""
    return UnsupportedModel(f"node {fxn.name} ({what}) is not supported{reason}. Supported: {', '.join(SUPPORTED)}")


# ------------------------------------------------------------------ modules
@handler(nn.Conv2d, S.SparseConv2d, kind="module")
def _conv(ctx, fxn, mod: nn.Conv2d, x, *rest):
    if mod.padding_mode != "zeros":
        raise _unsupported(fxn, f"Conv2d padding_mode={mod.padding_mode!r}", "only zero padding")
    if mod.groups not in (1, mod.in_channels) or (mod.groups != 1 and mod.out_channels % mod.in_channels):
        raise _unsupported(fxn, f"Conv2d groups={mod.groups}", "grouped convolutions other than depthwise "
                           "(groups = in_channels) do not run on the engine")
    if mod.padding == "valid":
        pads = (0, 0, 0, 0)
    elif mod.padding == "same":   # as PyTorch pads it (stride 1): the odd one on the bottom / right
        (th, tw) = (d * (k - 1) for d, k in zip(mod.dilation, mod.kernel_size))
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = mod.padding
        pads = (ph, ph, pw, pw)
    node = Conv(fxn.name, (x,), fxn.name, weight=_np(_weight(mod)), bias=_np(mod.bias), stride=mod.stride,
                padding=pads, groups=mod.groups, dilation=mod.dilation)
    return ctx.emit(node)


@handler(nn.ZeroPad2d, kind="module")
def _zeropad(ctx, fxn, mod: nn.ZeroPad2d, x):
    left, right, top, bottom = (int(p) for p in mod.padding)
    return ctx.emit(Pad(fxn.name, (x,), fxn.name, pads=(top, bottom, left, right)))


@handler(F.pad, kind="function")
def _fpad(ctx, fxn, x, pad, mode="constant", value=None):
    if mode != "constant" or value not in (None, 0, 0.0) or len(pad) != 4:
        raise _unsupported(fxn, f"F.pad(mode={mode!r}, value={value}, pad={pad})", "only zero padding of H and W")
    left, right, top, bottom = (int(p) for p in pad)
    return ctx.emit(Pad(fxn.name, (x,), fxn.name, pads=(top, bottom, left, right)))


@handler(nn.Linear, kind="module")
def _linear(ctx, fxn, mod: nn.Linear, x):
    return ctx.emit(Linear(fxn.name, (x,), fxn.name, weight=_np(_weight(mod)), bias=_np(mod.bias)))


@handler(nn.BatchNorm1d, nn.BatchNorm2d, kind="module")
def _bn(ctx, fxn, mod, x):
    if not mod.track_running_stats or mod.running_mean is None:
        raise _unsupported(fxn, type(mod).__name__, "BatchNorm without running statistics cannot be folded")
    gamma = _np(mod.weight) if mod.affine else np.ones(mod.num_features)
    beta = _np(mod.bias) if mod.affine else np.zeros(mod.num_features)
    return ctx.emit(BatchNorm(fxn.name, (x,), fxn.name, gamma=gamma, beta=beta, mean=_np(mod.running_mean),
                              var=_np(mod.running_var), eps=float(mod.eps)))


@handler(nn.ReLU, S.SparseReLU, kind="module")
def _relu_mod(ctx, fxn, mod, x, *rest):
    return ctx.emit(Act(fxn.name, (x,), fxn.name, kind="relu"))


@handler(nn.ReLU6, kind="module")
def _relu6_mod(ctx, fxn, mod, x):
    return ctx.emit(Act(fxn.name, (x,), fxn.name, kind="relu6"))


@handler(nn.Hardtanh, kind="module")
def _hardtanh_mod(ctx, fxn, mod, x):
    if (mod.min_val, mod.max_val) != (0.0, 6.0):
        raise _unsupported(fxn, f"Hardtanh({mod.min_val}, {mod.max_val})", "only ReLU6 = Hardtanh(0, 6)")
    return ctx.emit(Act(fxn.name, (x,), fxn.name, kind="relu6"))


def _pool_args(fxn, what, kernel, stride, padding=0, ceil_mode=False, dilation=1):
    if padding not in (0, (0, 0)) or ceil_mode or dilation not in (1, (1, 1)):
        raise _unsupported(fxn, what, "pooling without padding, ceil_mode or dilation only")
    return kernel, kernel if stride in (None, ()) else stride


@handler(nn.MaxPool2d, nn.AvgPool2d, kind="module")
def _pool_mod(ctx, fxn, mod, x):
    kind = "max" if isinstance(mod, nn.MaxPool2d) else "avg"
    if kind == "avg" and (not mod.count_include_pad or mod.divisor_override):
        raise _unsupported(fxn, "AvgPool2d", "count_include_pad=False / divisor_override")
    k, s = _pool_args(fxn, type(mod).__name__, mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode,
                      getattr(mod, "dilation", 1))
    return ctx.emit(Pool(fxn.name, (x,), fxn.name, kind=kind, kernel=k, stride=s))


@handler(nn.AdaptiveAvgPool2d, kind="module")
def _gap_mod(ctx, fxn, mod, x):
    if mod.output_size not in (1, (1, 1)):
        raise _unsupported(fxn, f"AdaptiveAvgPool2d({mod.output_size})", "only global average pooling (1)")
    return ctx.emit(Pool(fxn.name, (x,), fxn.name, kind="global_avg"))


@handler(S.SparsePool2d, kind="module")
def _spool(ctx, fxn, mod, x, mask):
    return ctx.emit(Pool(fxn.name, (x,), fxn.name, kind=mod.mode, kernel=2, stride=2))


@handler(nn.Flatten, S.SparseFlatten, kind="module")
def _flatten_mod(ctx, fxn, mod, x, *rest):
    if getattr(mod, "start_dim", 1) != 1 or getattr(mod, "end_dim", -1) != -1:
        raise _unsupported(fxn, "Flatten", "only Flatten(1, -1)")
    return ctx.emit(Flatten(fxn.name, (x,), fxn.name))


@handler(nn.Dropout, nn.Dropout2d, nn.Identity, kind="module")
def _identity_mod(ctx, fxn, mod, x):
    return ctx.emit(Identity(fxn.name, (x,), fxn.name))


@handler(S.InputReduce, kind="module")
def _reduce(ctx, fxn, mod, x):
    name = ctx.emit(Reduce(fxn.name, (x,), fxn.name, threshold=mod.threshold, n_max=mod.n_max))
    return _Reduced(name)


class _Reduced:
    """The value of an InputReduce call: ``(x, mask, coords)``; x and mask are the sites
    tensor (the mask travels with the layout)."""

    def __init__(self, name: str):
        self.name = name


# ------------------------------------------------------------------ functions and methods
@handler(F.relu, torch.relu, kind="function")
def _relu_fn(ctx, fxn, x, inplace=False):
    return ctx.emit(Act(fxn.name, (x,), fxn.name, kind="relu"))


@handler("relu", kind="method")
def _relu_method(ctx, fxn, x):
    return ctx.emit(Act(fxn.name, (x,), fxn.name, kind="relu"))


@handler(F.relu6, kind="function")
def _relu6_fn(ctx, fxn, x, inplace=False):
    return ctx.emit(Act(fxn.name, (x,), fxn.name, kind="relu6"))


@handler(F.max_pool2d, F.avg_pool2d, kind="function")
def _pool_fn(ctx, fxn, x, kernel_size, stride=None, padding=0, *rest, **kw):
    kind = "max" if fxn.target is F.max_pool2d else "avg"
    k, s = _pool_args(fxn, fxn.target.__name__, kernel_size, stride, padding, kw.get("ceil_mode", False),
                      kw.get("dilation", 1))
    return ctx.emit(Pool(fxn.name, (x,), fxn.name, kind=kind, kernel=k, stride=s))


@handler(F.adaptive_avg_pool2d, kind="function")
def _gap_fn(ctx, fxn, x, output_size):
    if output_size not in (1, (1, 1)):
        raise _unsupported(fxn, f"adaptive_avg_pool2d({output_size})", "only global average pooling (1)")
    return ctx.emit(Pool(fxn.name, (x,), fxn.name, kind="global_avg"))


@handler(torch.mean, kind="function")
@handler("mean", kind="method")
def _mean(ctx, fxn, x, dim=None, keepdim=False, **kw):
    """``x.mean((2, 3))`` / ``torch.mean(x, dim=[-2, -1], keepdim=...)``: global average
    pooling over H and W (then a flatten unless ``keepdim``)."""
    dim = kw.get("dim", dim)
    keepdim = kw.get("keepdim", keepdim)
    dims = {int(d) % 4 for d in (dim if isinstance(dim, (tuple, list)) else [dim])} if dim is not None else None
    if dims != {2, 3} or kw.get("dtype") is not None:
        raise _unsupported(fxn, f"mean(dim={dim})", "only the mean over H and W of an (N, C, H, W) map")
    name = ctx.emit(Pool(fxn.name if keepdim else f"{fxn.name}_pool", (x,), fxn.name if keepdim else f"{fxn.name}_pool",
                         kind="global_avg"))
    return name if keepdim else ctx.emit(Flatten(fxn.name, (name,), fxn.name))


def _flat_to_batch(ctx, fxn, x, shape) -> str:
    t = ctx.tensors[x]
    flat = int(np.prod(t.shape))
    dims = [d for d in shape]
    ok = len(dims) == 2 and (isinstance(dims[0], _Size) or dims[0] == -1) and dims[1] in (-1, flat)
    if not ok:
        raise _unsupported(fxn, f"reshape to {shape}", "only flattening to (N, -1)")
    if t.layout == "flat":
        return x
    return ctx.emit(Flatten(fxn.name, (x,), fxn.name))


@handler(torch.flatten, kind="function")
def _flatten_fn(ctx, fxn, x, start_dim=0, end_dim=-1):
    if start_dim != 1 or end_dim != -1:
        raise _unsupported(fxn, f"torch.flatten(x, {start_dim}, {end_dim})", "only torch.flatten(x, 1)")
    return ctx.emit(Flatten(fxn.name, (x,), fxn.name))


@handler("flatten", kind="method")
def _flatten_method(ctx, fxn, x, start_dim=0, end_dim=-1):
    return _flatten_fn(ctx, fxn, x, start_dim, end_dim)


@handler("view", "reshape", kind="method")
def _view(ctx, fxn, x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return _flat_to_batch(ctx, fxn, x, shape)


@handler(torch.reshape, kind="function")
def _reshape_fn(ctx, fxn, x, shape):
    return _flat_to_batch(ctx, fxn, x, tuple(shape))


class _Size:
    """The batch size (``x.size(0)`` / ``x.shape[0]``): a shape-only value."""


@handler("size", kind="method")
def _size(ctx, fxn, x, dim=None):
    if dim != 0:
        raise _unsupported(fxn, f"x.size({dim})", "only x.size(0) (the batch) is data-independent here")
    return _Size()


@handler(operator.add, torch.add, kind="function")
def _add(ctx, fxn, a, b, *rest, **kw):
    if not (isinstance(a, str) and isinstance(b, str)) or rest or kw.get("alpha", 1) != 1:
        raise _unsupported(fxn, "add", "only the sum of two tensors of one shape")
    return ctx.emit(Add(fxn.name, (a, b), fxn.name))


@handler(operator.getitem, kind="function")
def _getitem(ctx, fxn, obj, idx):
    if isinstance(obj, _Reduced):   # (x, mask, coords) of the input reduce: x and mask are the sites tensor
        if idx in (0, 1):
            return obj.name
        return _Unused("the InputReduce site coordinates", "the engine computes them itself")
    if isinstance(obj, tuple):      # (y, mask) of a sparse layer
        return obj[idx]
    raise _unsupported(fxn, f"indexing [{idx}]")


@handler(getattr, kind="function")
def _getattr(ctx, fxn, obj, attr):
    if attr == "shape":
        return _ShapeOf()
    raise _unsupported(fxn, f"attribute .{attr}")


class _Head:
    """A trailing Softmax / LogSoftmax over the classes of tensor ``name``."""

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind


def _head(fxn, x, dim, kind):
    if dim not in (1, -1):
        raise _unsupported(fxn, f"{kind}(dim={dim})", "only over the classes (dim=1) at the end of the model")
    return _Head(x, kind)


@handler(nn.Softmax, nn.LogSoftmax, kind="module")
def _softmax_mod(ctx, fxn, mod, x):
    return _head(fxn, x, mod.dim, "softmax" if isinstance(mod, nn.Softmax) else "log_softmax")


@handler(F.softmax, torch.softmax, F.log_softmax, torch.log_softmax, kind="function")
def _softmax_fn(ctx, fxn, x, dim=None, *rest, **kw):
    kind = "log_softmax" if fxn.target in (F.log_softmax, torch.log_softmax) else "softmax"
    return _head(fxn, x, kw.get("dim", dim), kind)


@handler("softmax", "log_softmax", kind="method")
def _softmax_method(ctx, fxn, x, dim=None, *rest, **kw):
    return _head(fxn, x, kw.get("dim", dim), fxn.target)


class _Unused:
    """A value the overlay does not provide; fine while nothing reads it."""

    def __init__(self, what: str, why: str):
        self.what, self.why = what, why


class _ShapeOf:
    def __getitem__(self, i):
        return _Size()


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)


def from_torch(model: nn.Module, input_shape: tuple, *, name: str | None = None) -> Graph:
    """Translate ``model`` (in eval mode) for inputs of ``input_shape`` (without the batch
    dimension: (C, H, W) or (F,)) into a float :class:`~zeroskip.host.ir.graph.Graph`."""
    if model.training:
        raise ValueError("put the model in eval mode first (model.eval()): BatchNorm and Dropout behave "
                         "differently while training")
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as e:  # noqa: BLE001 - torch.fx raises many kinds on data-dependent code
        raise UnsupportedModel(f"{type(model).__name__} cannot be traced by torch.fx ({type(e).__name__}: {e}): "
                               "data-dependent control flow (if/for on tensor values) does not run on the "
                               "overlay") from None
    input_shape = tuple(int(s) for s in input_shape)
    ctx = _Ctx(gm)
    inputs, outputs = [], []
    head = None
    for fxn in gm.graph.nodes:
        if fxn.op == "placeholder":
            if inputs:
                raise UnsupportedModel(f"{type(model).__name__}.forward takes more than one input ({fxn.name})")
            t = Tensor(fxn.name, input_shape, "grid" if len(input_shape) == 3 else "flat")
            inputs.append(t)
            ctx.tensors[t.name] = t
            ctx.name_of[fxn] = t.name
            continue
        if fxn.op == "output":
            val = ctx.arg(fxn.args[0]) if not isinstance(fxn.args[0], (tuple, list)) else None
            if isinstance(val, _Head):     # a trailing Softmax / LogSoftmax: applied on the host
                head, val = val.kind, val.name
            if not isinstance(val, str):
                raise UnsupportedModel(f"{type(model).__name__}.forward must return one tensor")
            outputs.append(val)
            continue
        args = [fx.node.map_arg(a, ctx.arg) for a in fxn.args]
        kwargs = {k: fx.node.map_arg(v, ctx.arg) for k, v in fxn.kwargs.items()}
        unused = next((a for a in [*args, *kwargs.values()] if isinstance(a, _Unused)), None)
        if unused is not None:
            raise _unsupported(fxn, f"a use of {unused.what}", unused.why)
        if any(isinstance(a, _Head) for a in [*args, *kwargs.values()]):
            raise _unsupported(fxn, "an op after a Softmax", "a Softmax / LogSoftmax runs on the host, as the "
                               "model's last op only")
        if fxn.op == "call_module":
            mod = gm.get_submodule(fxn.target)
            fn = next((h for t, h in _MODULES.items() if type(mod) is t), None)
            if fn is None:
                raise _unsupported(fxn, f"module {type(mod).__name__}")
            out = fn(ctx, fxn, mod, *args, **kwargs)
            if isinstance(mod, (S.SparseConv2d, S.SparseReLU, S.SparsePool2d)):
                out = (out, out)  # (y, mask): the mask travels with the sites tensor
        elif fxn.op == "call_function":
            fn = _FUNCTIONS.get(fxn.target)
            if fn is None:
                raise _unsupported(fxn, f"function {getattr(fxn.target, '__name__', fxn.target)}")
            out = fn(ctx, fxn, *args, **kwargs)
        elif fxn.op == "call_method":
            fn = _METHODS.get(fxn.target)
            if fn is None:
                raise _unsupported(fxn, f"method .{fxn.target}()")
            out = fn(ctx, fxn, *args, **kwargs)
        else:
            raise _unsupported(fxn, f"{fxn.op} {fxn.target}", "parameters used outside a layer")
        ctx.name_of[fxn] = out
    graph = Graph(inputs, ctx.nodes, outputs, name or type(model).__name__)
    if head is not None:
        graph.meta["head"] = head
    return graph
