"""Quantised model description: the hand-over from quantisation to the compiler.

Plain frozen dataclasses over numpy arrays (no torch), so the compiler, the golden
model and the tests can build and inspect models without PyTorch.

Arithmetic (docs/hardware.md, "Arithmetic"): every layer is a stride-1 convolution with
zero padding over int8 activations; an FC layer has ``kind == "fc"`` and works on the
previous output flattened in (C, H, W) order. For a non-final layer::

    acc = bias + sum(w * a)                       # int32, exact
    y   = (acc * mult + (1 << (shift - 1))) >> shift   # floor shift: round half up
    y   = max(y, 0) if relu
    y   = clip(y, -128, 127)
    y   = maxpool2x2(y) if pool                   # floor: odd last row/col dropped

The final layer must be FC; its output is ``acc`` (int32 logits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MULT_BITS = 16  # mult is an unsigned 16-bit integer
SHIFT_MIN, SHIFT_MAX = 1, 47


@dataclass(frozen=True, eq=False)
class QLayer:
    """One quantised layer.

    weight: int8, (C_out, C_in, K_h, K_w) for ``conv``, (C_out, C_in) for ``fc``.
    bias: int32 (C_out,). mult: int64 (C_out,) in [0, 2**16). shift: int64 (C_out,) in [1, 47].
    out_scale: real value of one output LSB (float, informational).
    """

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    padding: int = 0
    relu: bool = False
    pool: bool = False
    out_scale: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "fc", "sconv"):
            raise ValueError(f"layer kind must be 'conv', 'sconv' or 'fc', got {self.kind!r}")
        if self.kind == "sconv":
            kh, kw = self.weight.shape[2:] if self.weight.ndim == 4 else (0, 0)
            if kh != kw or kh % 2 == 0 or self.padding != kh // 2 or self.pool:
                raise ValueError("a sparse (submanifold) conv needs an odd square kernel, padding k//2 and no "
                                 "inline pooling (use a QSparsePool layer)")
        want = 2 if self.kind == "fc" else 4
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
        if self.kind == "fc" and (self.pool or self.padding):
            raise ValueError("an fc layer has no pooling or padding")

    @property
    def c_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def c_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3])) if self.kind != "fc" else (1, 1)


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
    kind: str = "spool"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "avg"):
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
        sparse_kinds = [getattr(layer, "kind", "") in ("sconv", "spool") for layer in self.layers]
        if any(sparse_kinds):
            if self.reduce is None:
                raise ValueError("sparse layers (sconv/spool) need an input reduce (QModel.reduce)")
            first_dense = next((i for i, sk in enumerate(sparse_kinds) if not sk), len(self.layers))
            if first_dense == len(self.layers) or any(sparse_kinds[first_dense:]) \
                    or self.layers[first_dense].kind != "fc":
                raise ValueError("sparse layers must come first, followed by the flatten into fc layers")
            for i, layer in enumerate(self.layers[:first_dense]):
                if layer.kind == "spool" and layer.mode == "max" and (i == 0 or not self.layers[i - 1].relu):
                    raise ValueError(f"layer {i}: sparse max pooling needs a ReLU on the layer before it")
        elif self.reduce is not None:
            raise ValueError("an input reduce needs sparse layers after it")
        if self.layers[-1].kind != "fc":
            raise ValueError("the last layer must be fully connected (it streams int32 logits)")
        shape = tuple(int(s) for s in self.input_shape)
        for i, layer in enumerate(self.layers):
            shape = layer_output_shape(layer, shape, i)

    def shapes(self) -> list[tuple[int, ...]]:
        """Input shape of every layer, then the output shape."""
        out = [tuple(int(s) for s in self.input_shape)]
        for i, layer in enumerate(self.layers):
            out.append(layer_output_shape(layer, out[-1], i))
        return out


def layer_output_shape(layer, shape: tuple[int, ...], index: int = 0) -> tuple[int, ...]:
    """Output shape of ``layer`` given its input shape; raises on a mismatch."""
    if layer.kind == "spool":
        if len(shape) != 3 or shape[1] < 2 or shape[2] < 2:
            raise ValueError(f"layer {index}: sparse pooling needs a (C, H>=2, W>=2) map, gets {shape}")
        return (shape[0], shape[1] // 2, shape[2] // 2)
    if layer.kind in ("conv", "sconv"):
        if len(shape) != 3:
            raise ValueError(f"layer {index}: conv after a flattened tensor")
        c, h, w = shape
        if layer.c_in != c:
            raise ValueError(f"layer {index}: conv expects {layer.c_in} input channels, gets {c}")
        kh, kw = layer.kernel
        ho, wo = h + 2 * layer.padding - kh + 1, w + 2 * layer.padding - kw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"layer {index}: kernel {kh}x{kw} larger than padded input {h}x{w}")
        if layer.pool:
            ho, wo = ho // 2, wo // 2
            if ho < 1 or wo < 1:
                raise ValueError(f"layer {index}: pooling a {ho}x{wo} map")
        return (layer.c_out, ho, wo)
    n = int(np.prod(shape))
    if layer.c_in != n:
        raise ValueError(f"layer {index}: fc expects {layer.c_in} inputs, gets {n} (shape {shape})")
    return (layer.c_out,)


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, relu: bool) -> np.ndarray:
    """The one rounding rule, numpy version: int64 in, int8-range int64 out."""
    acc = acc.astype(np.int64)
    m = mult.astype(np.int64)
    s = shift.astype(np.int64)
    y = (acc * m + (np.int64(1) << (s - 1))) >> s
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127)
