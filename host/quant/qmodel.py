"""Quantised model description: the hand-over from quantisation to the compiler.

Plain frozen dataclasses over numpy arrays (no torch), so the compiler, the golden
model and the tests can build and inspect models without PyTorch.

Arithmetic (docs/hardware.md, "Arithmetic"): every layer is a convolution (stride 1 or 2
per axis, zero padding per side, groups 1 or depthwise) over int8 activations; an FC layer
(:attr:`LayerKind.FC`) works on its input flattened in (C, H, W) order. Layers are in
topological order; a layer reads the previous layer's output unless ``src`` names
another, and a residual add (``skip``) adds another layer's output, times an int8
multiplier per channel, into the accumulator. For a non-final layer::

    acc = bias + sum(w * a) [+ skip_mult * skip]  # int32, exact
    y   = (acc * mult + (1 << (shift - 1))) >> shift   # floor shift: round half up
    y   = max(y, 0) if relu
    y   = clip(y, -128, 127)
    y   = maxpool2x2(y) if pool                   # floor: odd last row/col dropped

The final layer must be FC; its output is ``acc`` (int32 logits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

MULT_BITS = 16  # mult is an unsigned 16-bit integer
SHIFT_MIN, SHIFT_MAX = 1, 47
SPOOL_MODES = ("max", "avg")   # sparse pooling: the largest active value, or the mean of the active values


class LayerKind(StrEnum):
    """The engine layer kinds: each is one (op, layout) pair of the layer graph
    (docs/ir.md), the key under which the quantiser, the integer reference and the
    lowering find its behaviour. The value is the name bundles and saved models carry."""

    CONV = "conv"     # convolution over a grid: (conv, grid)
    SCONV = "sconv"   # submanifold convolution over the active sites: (conv, sites)
    FC = "fc"         # fully connected on the flattened input: (linear, flat)
    SPOOL = "spool"   # 2x2 pooling of the active sites: (pool, sites)

    @classmethod
    def of(cls, op: str, layout: str) -> LayerKind:
        """The kind of ``op`` on a ``layout`` tensor; raises ``KeyError`` when the engine has none."""
        return _KIND_OF[(op, layout)]

    @property
    def op(self) -> str:
        return _OP_LAYOUT[self][0]

    @property
    def layout(self) -> str:
        """Layout of the tensor the layer reads: ``grid``, ``sites`` or ``flat``."""
        return _OP_LAYOUT[self][1]

    @property
    def sparse(self) -> bool:
        """A sparse-pixel layer: it computes at the active sites only."""
        return self.layout == "sites"

    @property
    def weighted(self) -> bool:
        """The layer has weights, bias and requantisation (a :class:`QLayer`)."""
        return self.op != "pool"


_OP_LAYOUT = {LayerKind.CONV: ("conv", "grid"), LayerKind.SCONV: ("conv", "sites"),
              LayerKind.FC: ("linear", "flat"), LayerKind.SPOOL: ("pool", "sites")}
_KIND_OF = {v: k for k, v in _OP_LAYOUT.items()}


def layer_kind(kind, allowed: tuple[LayerKind, ...] = tuple(LayerKind)) -> LayerKind:
    """``kind`` (a :class:`LayerKind` or its name) as a :class:`LayerKind` among ``allowed``."""
    try:
        k = LayerKind(kind)
    except ValueError:
        k = None
    if k not in allowed:
        raise ValueError(f"layer kind must be one of {', '.join(repr(a.value) for a in allowed)}, got {kind!r}")
    return k


@dataclass(frozen=True, eq=False)
class QLayer:
    """One quantised layer.

    weight: int8, (C_out, C_in, K_h, K_w) for ``conv``, (C_out, C_in) for ``fc``.
    bias: int32 (C_out,). mult: int64 (C_out,) in [0, 2**16). shift: int64 (C_out,) in [1, 47].
    out_scale: real value of one output LSB (float, informational).
    """

    kind: LayerKind
    weight: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    padding: int = 0
    relu: bool = False
    pool: bool = False
    out_scale: float = 1.0
    name: str = ""
    # layer-graph fields (docs/hardware.md "Arithmetic"); the defaults are a chain of
    # stride-1 convolutions with symmetric padding
    stride: tuple = (1, 1)
    pads: tuple | None = None        # (top, bottom, left, right); None: ``padding`` on every side
    groups: int = 1                  # 1, or C_in = C_out (depthwise)
    src: int | None = None           # index of the layer whose output this layer reads (-1: the input);
    #                                  None: the previous layer
    skip: int | None = None          # residual add: index of the layer whose output is added (-1: the input)
    skip_mult: np.ndarray | None = None  # int8 (C_out,) in [1, 127]: acc += skip_mult[c] * skip[c, y, x]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", layer_kind(self.kind, (LayerKind.CONV, LayerKind.SCONV, LayerKind.FC)))
        object.__setattr__(self, "stride", (int(self.stride[0]), int(self.stride[1])))
        if self.pads is None:
            object.__setattr__(self, "pads", (int(self.padding),) * 4)
        else:
            object.__setattr__(self, "pads", tuple(int(p) for p in self.pads))
            if len(self.pads) != 4 or min(self.pads) < 0:
                raise ValueError(f"pads must be (top, bottom, left, right) >= 0, got {self.pads}")
        if any(s not in (1, 2) for s in self.stride):
            raise ValueError(f"stride must be 1 or 2 per axis, got {self.stride}")
        if self.kind is not LayerKind.CONV and (self.stride != (1, 1) or self.groups != 1):
            raise ValueError("stride and groups apply to conv layers")
        if self.groups != 1 and not (self.groups == self.weight.shape[0] and self.weight.shape[1] == 1):
            raise ValueError(f"groups must be 1 or C_out with one input channel per group (depthwise), got "
                             f"groups={self.groups} for weight {self.weight.shape}")
        if self.skip is not None:
            sm = None if self.skip_mult is None else np.asarray(self.skip_mult)
            if self.kind is not LayerKind.CONV or self.pool or self.stride != (1, 1) or sm is None \
                    or sm.shape != (self.weight.shape[0],) or np.any(sm < 1) or np.any(sm > 127):
                raise ValueError("a residual add (skip) needs a stride-1 conv without pooling and skip_mult "
                                 "int (C_out,) in [1, 127]")
        if self.kind is LayerKind.SCONV:
            kh, kw = self.weight.shape[2:] if self.weight.ndim == 4 else (0, 0)
            if kh != kw or kh % 2 == 0 or self.padding != kh // 2 or self.pool:
                raise ValueError("a sparse (submanifold) conv needs an odd square kernel, padding k//2 and no "
                                 "inline pooling (use a QSparsePool layer)")
        want = 2 if self.kind is LayerKind.FC else 4
        if self.weight.ndim != want:
            raise ValueError(f"{self.kind} weight must have {want} dims, got shape {self.weight.shape}")
        if self.weight.dtype != np.int8:
            raise ValueError(f"weight must be int8, got {self.weight.dtype}")
        c_out = self.weight.shape[0]
        for nm in ("bias", "mult", "shift"):
            arr = getattr(self, nm)
            if arr.shape != (c_out,):
                raise ValueError(f"{nm} must have shape ({c_out},), got {arr.shape}")
        if np.any(self.mult < 0) or np.any(self.mult >= (1 << MULT_BITS)):
            raise ValueError("mult must be in [0, 2**16)")
        if np.any(self.shift < SHIFT_MIN) or np.any(self.shift > SHIFT_MAX):
            raise ValueError(f"shift must be in [{SHIFT_MIN}, {SHIFT_MAX}]")
        if self.kind is LayerKind.FC and (self.pool or any(self.pads)):
            raise ValueError("an fc layer has no pooling or padding")

    @property
    def c_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def c_in(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    @property
    def depthwise(self) -> bool:
        return self.groups > 1

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3])) if self.kind is not LayerKind.FC else (1, 1)


@dataclass(frozen=True, eq=False)
class QSparsePool:
    """Sparse 2×2 pooling (stride 2, floor) over the active sites: each active site maps to
    its pooled cell, the cells that hold at least one active site become the new active
    set, and a cell's value merges its active sites (docs/sparse_pixels.md):

    * ``max``: the largest value (the previous layer must apply ReLU, so this equals a
      dense max-pool of the zero-filled map);
    * ``avg``: ``(sum * AVG_RECIP[n] + 2**15) >> 16`` with ``n`` the cell's active sites.
    """

    mode: str = "max"
    name: str = ""
    kind: LayerKind = LayerKind.SPOOL

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", layer_kind(self.kind, (LayerKind.SPOOL,)))
        if self.mode not in SPOOL_MODES:
            raise ValueError(f"sparse pooling mode must be 'max' or 'avg', got {self.mode!r}")


from zeroskip.driver.contract import AVG_RECIP  # noqa: E402  round(2**16 / n), n = active sites in a cell


@dataclass(frozen=True)
class QInputReduce:
    """The quantised sparse-pixel input reduce (the float one is the ``InputReduce``
    module of :mod:`zeroskip.host.models.sparse`): a pixel is active when its channel 0
    exceeds ``threshold`` (int8 units); the first ``n_max`` active pixels in raster order are kept
    (all channels), every other pixel is zeroed."""

    threshold: int
    n_max: int

    def __post_init__(self) -> None:
        if not -128 <= self.threshold <= 127:
            raise ValueError(f"threshold must be an int8 value, got {self.threshold}")
        if not 1 <= self.n_max <= 255:
            raise ValueError(f"n_max must be in 1..255, got {self.n_max}")


@dataclass(frozen=True, eq=False)
class QModel:
    """A quantised network. ``input_scale``: real value of one input LSB (x ≈ q·scale)."""

    input_shape: tuple[int, int, int]
    layers: tuple[QLayer, ...]
    input_scale: float = 1.0
    name: str = "model"
    meta: dict = field(default_factory=dict)
    reduce: QInputReduce | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a model needs at least one layer")
        sparse = [layer.kind.sparse for layer in self.layers]
        if any(sparse):
            if self.reduce is None:
                raise ValueError("sparse layers (sconv/spool) need an input reduce (QModel.reduce)")
            first_dense = next((i for i, sk in enumerate(sparse) if not sk), len(self.layers))
            if first_dense == len(self.layers) or any(sparse[first_dense:]) \
                    or self.layers[first_dense].kind is not LayerKind.FC:
                raise ValueError("sparse layers must come first, followed by the flatten into fc layers")
            for i, layer in enumerate(self.layers[:first_dense]):
                if layer.kind is LayerKind.SPOOL and layer.mode == "max" and (i == 0 or not self.layers[i - 1].relu):
                    raise ValueError(f"layer {i}: sparse max pooling needs a ReLU on the layer before it")
        elif self.reduce is not None:
            raise ValueError("an input reduce needs sparse layers after it")
        if self.layers[-1].kind is not LayerKind.FC:
            raise ValueError("the last layer must be fully connected (it streams int32 logits)")
        for i, layer in enumerate(self.layers):
            for what in ("src", "skip"):
                j = getattr(layer, what, None)
                if j is not None and not -1 <= j < i:
                    raise ValueError(f"layer {i}: {what}={j} must name an earlier layer (or -1, the input)")
        self.out_shapes()

    def source(self, i: int) -> int:
        """Index of the layer whose output layer ``i`` reads (-1: the model input)."""
        src = getattr(self.layers[i], "src", None)
        return i - 1 if src is None else src

    def is_chain(self) -> bool:
        return all(self.source(i) == i - 1 and getattr(layer, "skip", None) is None
                   for i, layer in enumerate(self.layers))

    def out_shapes(self) -> list[tuple[int, ...]]:
        """Output shape of every layer."""
        outs: list[tuple[int, ...]] = []
        inp = tuple(int(s) for s in self.input_shape)
        for i, layer in enumerate(self.layers):
            j = self.source(i)
            shape = layer_output_shape(layer, inp if j < 0 else outs[j], i)
            k = getattr(layer, "skip", None)
            if k is not None:
                sk = inp if k < 0 else outs[k]
                if sk != shape:
                    raise ValueError(f"layer {i}: adds a tensor of shape {sk} to its output of shape {shape}")
            outs.append(shape)
        return outs

    def shapes(self) -> list[tuple[int, ...]]:
        """Input shape of every layer, then the output shape (of the last layer)."""
        outs = self.out_shapes()
        inp = tuple(int(s) for s in self.input_shape)
        return [inp if self.source(i) < 0 else outs[self.source(i)] for i in range(len(self.layers))] + [outs[-1]]


def _pool_shape(layer, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
    if len(shape) != 3 or shape[1] < 2 or shape[2] < 2:
        raise ValueError(f"layer {index}: sparse pooling needs a (C, H>=2, W>=2) map, gets {shape}")
    return (shape[0], shape[1] // 2, shape[2] // 2)


def _conv_shape(layer, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
    if len(shape) != 3:
        raise ValueError(f"layer {index}: conv after a flattened tensor")
    c, h, w = shape
    if layer.c_in != c:
        raise ValueError(f"layer {index}: conv expects {layer.c_in} input channels, gets {c}")
    kh, kw = layer.kernel
    t, b, left, right = layer.pads
    sh, sw = layer.stride
    ho, wo = (h + t + b - kh) // sh + 1, (w + left + right - kw) // sw + 1
    if h + t + b < kh or w + left + right < kw:
        raise ValueError(f"layer {index}: kernel {kh}x{kw} larger than padded input {h}x{w}")
    if layer.pool:
        ho, wo = ho // 2, wo // 2
        if ho < 1 or wo < 1:
            raise ValueError(f"layer {index}: pooling a {ho}x{wo} map")
    return (layer.c_out, ho, wo)


def _fc_shape(layer, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
    n = int(np.prod(shape))
    if layer.c_in != n:
        raise ValueError(f"layer {index}: fc expects {layer.c_in} inputs, gets {n} (shape {shape})")
    return (layer.c_out,)


# output shape of a layer from its input shape, by kind
_OUTPUT_SHAPE = {LayerKind.CONV: _conv_shape, LayerKind.SCONV: _conv_shape, LayerKind.FC: _fc_shape,
                 LayerKind.SPOOL: _pool_shape}


def layer_output_shape(layer, shape: tuple[int, ...], index: int = 0) -> tuple[int, ...]:
    """Output shape of ``layer`` given its input shape; raises on a mismatch."""
    return _OUTPUT_SHAPE[layer.kind](layer, shape, index)


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, relu: bool) -> np.ndarray:
    """The one rounding rule, numpy version: int64 in, int8-range int64 out."""
    acc = acc.astype(np.int64)
    m = mult.astype(np.int64)
    s = shift.astype(np.int64)
    y = (acc * m + (np.int64(1) << (s - 1))) >> s
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127)


def dense_twin(layers) -> list[tuple[LayerKind, object, bool]]:
    """The dense twin of a sparse-pixel network, the one definition behind both the float
    twin (:func:`zeroskip.host.models.sparse.dense_twin_spec`, the comparison CNN) and the
    integer one (:func:`dense_grid_twin`, the cycle baseline): the same network as an
    ordinary CNN over the whole grid. There is no input reduce; every layer on ``sites``
    becomes the same op on a ``grid`` (a sparse conv: a conv with the same kernel,
    channels and padding k//2); a sparse pooling becomes the inline 2x2 max-pool of the
    conv before it; fully connected layers are unchanged.

    ``layers``: the network's layers in order as ``(kind, layer)`` pairs (``layer`` is
    whatever the caller describes a layer with). Returns ``(kind, layer, pool)`` for every
    layer of the twin."""
    out: list[tuple[LayerKind, object, bool]] = []
    for kind, layer in layers:
        if not kind.weighted:
            if not out or out[-1][0] is not LayerKind.CONV or out[-1][2]:
                raise ValueError("a sparse pooling in the dense twin must follow a convolution without pooling")
            out[-1] = (*out[-1][:2], True)
        else:
            out.append((LayerKind.of(kind.op, "grid") if kind.sparse else kind, layer, False))
    return out


def dense_grid_twin(q: QModel) -> QModel:
    """The :func:`dense_twin` of ``q`` as a quantised model (same weights and
    requantisation), for the cycle comparison: what a sparse-pixel model would cost
    computed densely."""
    layers = tuple(QLayer(kind=kind, weight=layer.weight, bias=layer.bias, mult=layer.mult, shift=layer.shift,
                          padding=layer.padding, relu=layer.relu, pool=pool, name=layer.name)
                   if kind is not layer.kind or pool else layer
                   for kind, layer, pool in dense_twin((layer.kind, layer) for layer in q.layers))
    return QModel(input_shape=q.input_shape, layers=layers, input_scale=q.input_scale, name=q.name + "-dense")
