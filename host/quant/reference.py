"""The PyTorch integer reference: the bit-exact specification of the engine's arithmetic,
for dense and sparse-pixel models alike.

:class:`IntegerReference` evaluates a :class:`~zeroskip.host.quant.qmodel.QModel` on int8
images exactly as docs/hardware.md ("Arithmetic") and docs/sparse_pixels.md define it.
One loop over the layers; each layer kind has one handler, and a sparse-pixel model is
the same loop with an activity mask (N, 1, H, W) beside the map::

    reduce (sparse-pixel models): active = x[:, 0] > threshold (int8 compare); keep the
             first n_max active pixels in raster order with all channels, zero the rest
    conv / sconv: acc = bias + Σ w·a (zero padding per side, stride 1 or 2, groups 1 or
             depthwise) [+ skip_mult·skip: residual add]                 int32, exact
             y = (acc·M + 2**(S-1)) >> S    arithmetic shift = floor
             y = max(y, 0) if relu;  y = clip(y, -128, 127)
             conv: y = 2×2 max-pool (floor) if pool
             sconv: y = 0 off the active sites (the active set is unchanged)
    spool:   2×2 cells (h//2, w//2), floor; new active set = cells with >= 1 active site
             max: the largest active value of the cell
             avg: (sum·R[n] + 2**15) >> 16, n = active sites of the cell, R = AVG_RECIP
    fc:      on the (zero-filled) map flattened in (C, H, W) order; the last layer
             outputs acc (int32 logits)

Convolutions and matrix products run in float64: every product of two int8 values and
every partial sum below 2**31 is an integer below 2**53, so float64 sums are exact in any
order; requantisation, ReLU, clamp and pooling are integer arithmetic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zeroskip.host.models.sparse import Reduced, raster_keep, site_coordinates
from zeroskip.host.quant.qmodel import AVG_RECIP, LayerKind, QInputReduce, QModel
from zeroskip.host.training.train import DEFAULT_THREADS, torch_threads

DEFAULT_BATCH = 256


def reduce_int8(x: torch.Tensor, reduce: QInputReduce) -> Reduced:
    """The integer input reduce: ``x`` int8 (N, C, H, W) → zero-filled int8 map, bool mask
    (N, 1, H, W) and 1-based site coordinates (N, n_max, 2) (see ``sparse.Reduced``)."""
    if x.dtype != torch.int8 or x.ndim != 4:
        raise TypeError(f"reduce_int8 expects an int8 (N, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}")
    keep = raster_keep(x[:, 0] > reduce.threshold, reduce.n_max)
    mask = keep.unsqueeze(1)
    return Reduced(x * mask.to(x.dtype), mask, site_coordinates(keep, reduce.n_max))


def requantize_t(acc: torch.Tensor, m: torch.Tensor, s: torch.Tensor, relu: bool) -> torch.Tensor:
    """The one rounding rule on int64 tensors: ``clip(max?((acc·M + 2**(S-1)) >> S, 0))``."""
    y = torch.bitwise_right_shift(acc * m + torch.bitwise_left_shift(torch.ones_like(s), s - 1), s)
    return torch.clamp(y, 0 if relu else -128, 127)


def sparse_pool_int(a: torch.Tensor, mask: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer sparse 2×2 pooling of a zero-filled int64 map ``a`` (N, C, H, W) with
    ``mask`` (N, 1, H, W): returns the pooled map (int64, zero off the new sites) and the
    new mask. ``mode`` is ``'max'`` or ``'avg'`` (docs/sparse_pixels.md)."""
    n, c, h, w = a.shape
    h2, w2 = h // 2, w // 2
    cells = a[:, :, :2 * h2, :2 * w2].reshape(n, c, h2, 2, w2, 2)
    mcells = mask[:, :, :2 * h2, :2 * w2].reshape(n, 1, h2, 2, w2, 2)
    count = mcells.sum(dim=(3, 5))                                 # active sites per cell, 0..4
    new_mask = count > 0
    if mode == "max":
        y = cells.masked_fill(~mcells, -(1 << 40)).amax(dim=(3, 5))
        y = torch.where(new_mask, y, torch.zeros((), dtype=y.dtype))
    elif mode == "avg":
        recip = torch.tensor(AVG_RECIP, dtype=torch.int64)[count]
        y = torch.bitwise_right_shift(cells.sum(dim=(3, 5)) * recip + (1 << 15), 16)
    else:
        raise ValueError(f"sparse pooling mode must be 'max' or 'avg', got {mode!r}")
    return y, new_mask


class IntegerReference(nn.Module):
    """Integer forward pass of ``qmodel`` (dense or sparse-pixel): int8 (N, C, H, W) in,
    int32 (N, n_out) out."""

    def __init__(self, qmodel: QModel) -> None:
        super().__init__()
        self.qmodel = qmodel
        self.input_shape = tuple(int(s) for s in qmodel.input_shape)
        for i, layer in enumerate(qmodel.layers):
            if not layer.kind.weighted:   # sparse pooling has no parameters
                continue
            self.register_buffer(f"w{i}", torch.from_numpy(layer.weight.astype(np.float64)))
            self.register_buffer(f"b{i}", torch.from_numpy(layer.bias.astype(np.int64)))
            self.register_buffer(f"m{i}", torch.from_numpy(layer.mult.astype(np.int64)))
            self.register_buffer(f"s{i}", torch.from_numpy(layer.shift.astype(np.int64)))

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of int8, got {type(x).__name__}; "
                            "use run_reference() for numpy arrays")
        if x.dtype != torch.int8:
            raise TypeError(f"expected int8 input, got {x.dtype}; quantise with quantize.quantize_input")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input has shape {tuple(x.shape)}, expected (N, *{self.input_shape})")

    def _params(self, i: int, ndim: int):
        shape = (1, -1, 1, 1) if ndim == 4 else (1, -1)
        return (getattr(self, f"w{i}"), getattr(self, f"b{i}").view(shape), getattr(self, f"m{i}").view(shape),
                getattr(self, f"s{i}").view(shape))

    # one handler a layer kind, in _HANDLERS: (layer, i, a, mask, last, skip) -> (output, mask)
    def _conv(self, layer, i, a, mask, last, skip):
        w, b, m, s = self._params(i, 4)
        t, bo, left, right = layer.pads
        a = F.pad(a.to(torch.float64), (left, right, t, bo))
        acc = F.conv2d(a, w, stride=layer.stride, groups=layer.groups).to(torch.int64) + b
        if skip is not None:            # residual add: skip_mult[c] * skip, inside the accumulator
            acc = acc + skip * torch.as_tensor(np.asarray(layer.skip_mult, np.int64)).view(1, -1, 1, 1)
        y = requantize_t(acc, m, s, layer.relu)
        if mask is not None:            # sparse (submanifold): outputs only at the active sites
            y = y * mask
        if layer.pool:
            y = F.max_pool2d(y, 2)      # floor mode: an odd last row / column is dropped
        return y, mask

    def _fc(self, layer, i, a, mask, last, skip):
        w, b, m, s = self._params(i, 2)
        acc = (a.reshape(a.shape[0], -1).to(torch.float64) @ w.T).to(torch.int64) + b
        if last:
            return acc, None
        return requantize_t(acc, m, s, layer.relu), None

    def _spool(self, layer, i, a, mask, last, skip):
        return sparse_pool_int(a, mask, layer.mode)

    _HANDLERS = {LayerKind.CONV: _conv, LayerKind.SCONV: _conv, LayerKind.FC: _fc, LayerKind.SPOOL: _spool}

    def forward_sites(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Every layer's output (int8 maps (N, C, H, W) or vectors (N, F), the last int32
        (N, n_out)) and the activity mask after each layer (None outside sparse-pixel
        layers)."""
        self._check_input(x)
        mask = None
        if self.qmodel.reduce is not None:
            red = reduce_int8(x, self.qmodel.reduce)
            a, mask = red.x.to(torch.int64), red.mask
        else:
            a = x.to(torch.int64)
        inp, inp_mask = a, mask
        outs: list[torch.Tensor] = []
        masks: list[torch.Tensor | None] = []
        vals: list[torch.Tensor] = []   # int64 outputs, read by later layers (src, skip)
        n_layers = len(self.qmodel.layers)
        for i, layer in enumerate(self.qmodel.layers):
            last = i == n_layers - 1
            j = self.qmodel.source(i)
            a, mask = (inp, inp_mask) if j < 0 else (vals[j], masks[j])
            k = getattr(layer, "skip", None)
            skip = None if k is None else (inp if k < 0 else vals[k])
            a, mask = self._HANDLERS[layer.kind](self, layer, i, a, mask, last, skip)
            vals.append(a)
            outs.append(a.to(torch.int32 if last else torch.int8))
            masks.append(mask)
        return outs, masks

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output (see :meth:`forward_sites`)."""
        return self.forward_sites(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """int32 outputs (N, n_out) of the last layer."""
        return self.forward_sites(x)[0][-1]


def run_reference(qmodel: QModel, x_int8: np.ndarray, batch_size: int = DEFAULT_BATCH,
                  threads: int | None = DEFAULT_THREADS) -> np.ndarray:
    """Integer reference on a numpy int8 batch (N, C, H, W) -> int32 (N, n_out), in batches
    of ``batch_size`` with ``threads`` torch threads (the result depends on neither)."""
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        raise TypeError(f"expected int8 images, got {x.dtype}; quantise with quantize.quantize_input")
    ref = IntegerReference(qmodel)
    n_out = qmodel.layers[-1].c_out
    if x.shape[0] == 0:
        return np.zeros((0, n_out), np.int32)
    with torch.no_grad(), torch_threads(threads):
        outs = [ref(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])))
                for i in range(0, x.shape[0], batch_size)]
    return torch.cat(outs).numpy()


def reduce_input(reduce: QInputReduce, x_int8: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The integer reduce on a numpy int8 batch (N, C, H, W): returns the zero-filled int8
    images, the number of kept sites per image (int64 (N,)) and their 1-based (h, w)
    in raster order (int64 (N, n_max, 2), (0, 0) past the last site)."""
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        raise TypeError(f"expected int8 images, got {x.dtype}")
    red = reduce_int8(torch.from_numpy(np.ascontiguousarray(x)), reduce)
    return red.x.numpy(), red.n_sites.numpy(), red.coords.numpy()
