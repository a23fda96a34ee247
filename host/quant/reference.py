"""The PyTorch integer reference: the bit-exact specification of the engine's arithmetic.

:class:`IntegerReference` evaluates a :class:`~zeroskip.host.quant.qmodel.QModel` on int8
images exactly as docs/hardware.md ("Arithmetic") defines it, for every layer::

    acc = bias + Σ w·a                                   int32, exact
    last layer (FC):  out = acc                          int32 logits
    other layers:     y = (acc·M + 2**(S-1)) >> S        arithmetic shift = floor
                      y = max(y, 0) if relu
                      y = clip(y, -128, 127)
                      y = 2×2 max-pool (floor) if pool

Convolutions and matrix products run in float64: every product of two int8 values and
every partial sum below 2**31 is an integer below 2**53, so float64 sums are exact in any
order. The result is converted to int64 and requantisation, ReLU, clamp and pooling are
done on integers.

Sparse-pixel models (with ``qmodel.reduce``) have their own reference,
:class:`~zeroskip.host.quant.reference_sparse.SparseIntegerReference`; :func:`run_reference`
runs either.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zeroskip.host.quant.qmodel import QModel
from zeroskip.host.quant.reference_sparse import run_sparse_reference
from zeroskip.host.training.train import DEFAULT_THREADS, torch_threads

DEFAULT_BATCH = 256


class IntegerReference(nn.Module):
    """Integer forward pass of ``qmodel``: int8 (N, C, H, W) in, int32 (N, n_out) out."""

    def __init__(self, qmodel: QModel) -> None:
        super().__init__()
        if qmodel.reduce is not None:
            raise ValueError("a sparse-pixel model (with an input reduce) needs "
                             "reference_sparse.SparseIntegerReference (run_reference runs either)")
        self.qmodel = qmodel
        self.input_shape = tuple(int(s) for s in qmodel.input_shape)
        for i, layer in enumerate(qmodel.layers):
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

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output: int8 activations (N, C, H, W) or (N, F), last int32 (N, n_out)."""
        self._check_input(x)
        a = x.to(torch.int64)
        outs: list[torch.Tensor] = []
        n_layers = len(self.qmodel.layers)
        for i, layer in enumerate(self.qmodel.layers):
            w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
            if layer.kind == "conv":
                acc = F.conv2d(a.to(torch.float64), w, padding=layer.padding).to(torch.int64)
                acc = acc + b.view(1, -1, 1, 1)
                m = getattr(self, f"m{i}").view(1, -1, 1, 1)
                s = getattr(self, f"s{i}").view(1, -1, 1, 1)
            else:
                flat = a.reshape(a.shape[0], -1).to(torch.float64)
                acc = (flat @ w.T).to(torch.int64) + b.view(1, -1)
                m = getattr(self, f"m{i}").view(1, -1)
                s = getattr(self, f"s{i}").view(1, -1)
            if i == n_layers - 1:
                outs.append(acc.to(torch.int32))
                break
            y = torch.bitwise_right_shift(acc * m + torch.bitwise_left_shift(torch.ones_like(s), s - 1), s)
            y = torch.clamp(y, 0 if layer.relu else -128, 127)
            if layer.pool:
                y = F.max_pool2d(y, 2)  # floor mode: an odd last row / column is dropped
            outs.append(y.to(torch.int8))
            a = y
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """int32 outputs (N, n_out) of the last layer."""
        return self.forward_layers(x)[-1]


def run_reference(qmodel: QModel, x_int8: np.ndarray, batch_size: int = DEFAULT_BATCH,
                  threads: int | None = DEFAULT_THREADS) -> np.ndarray:
    """Integer reference on a numpy int8 batch (N, C, H, W) -> int32 (N, n_out), in batches
    of ``batch_size`` with ``threads`` torch threads (the result does not depend on either).
    Sparse-pixel models run on ``reference_sparse.SparseIntegerReference``."""
    if qmodel.reduce is not None:
        return run_sparse_reference(qmodel, x_int8, batch_size, threads)
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
