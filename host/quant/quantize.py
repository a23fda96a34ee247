"""Post-training symmetric int8 quantisation: the shared arithmetic (input quantisation,
multiplier → (M, S), the accumulator bound, int32 biases, the calibration batch) and
:func:`quantize` for the project's :class:`~zeroskip.host.models.cnn.SpecCNN`, which goes
through the layer graph and :func:`~zeroskip.host.quant.graph_quant.quantize_graph` like
every other model. The scheme, for a chain of convolutions and linear layers with ReLU
(the graph quantiser extends it to every node kind):

Scales (a real value ``v`` is represented by the integer ``round(v / scale)``):

- **Input**: ``s_in = max|x| / 127`` over the calibration images.
- **Weights** of every layer but the last: one scale per output channel,
  ``s_w[c] = max|W_c| / 127`` (an all-zero channel gets 1), ``q = clip(round(W / s_w), -127, 127)``.
  A pruned zero stays exactly 0.
- **Weights of the last (FC) layer**: one scale for the whole tensor, so its int32 output
  is the real logits times one positive constant and argmax is preserved.
- **Activations**: the output of each non-final layer (after ReLU, before pooling, which
  does not change the scale) gets ``s_out = max(a) / 127`` with ``max(a)`` the maximum of
  the float model's activation over the calibration images (``act_percentile=100``; a
  lower percentile clips outliers instead). A layer whose calibration output is all zero
  gets ``s_out = 1``.
- **Bias**: int32 ``round(b / (s_in_layer * s_w[c]))``.
- **Requantisation** of a non-final layer: the real multiplier
  ``m = s_in_layer * s_w[c] / s_out`` becomes ``mult`` M and ``shift`` S with
  ``M = round(m * 2**S)`` in ``[2**15, 2**16)`` (16 significant bits) and S in [1, 47];
  when ``m < 2**-32`` the shift saturates at 47 and M has fewer bits; ``m >= 2**15`` is
  rejected. The last layer has ``mult = 1, shift = 1`` (ignored: it outputs ``acc``).

Rounding: every ``round`` here is **round half to even** (``numpy.rint``), for weights,
biases, multipliers and :func:`quantize_input`. The hardware's own requantisation rounds
half up (docs/hardware.md); that is a different, fixed rule inside the integer model.

Every layer is checked against the int32 accumulator bound
``sum(|w|) * 128 + |bias| < 2**31`` (activations are int8, so ``|a| <= 128``).
"""

from __future__ import annotations

import numpy as np
import torch

from zeroskip.host.models.cnn import SpecCNN
from zeroskip.host.quant.qmodel import MULT_BITS, SHIFT_MAX, SHIFT_MIN, QLayer, QModel
from zeroskip.host.training.train import DEFAULT_THREADS, torch_threads

DEFAULT_N_CALIB = 512
ACC_LIMIT = 1 << 31
ACT_MAX = 128  # largest |int8| activation


def quantize_input(x_float, scale: float) -> np.ndarray:
    """Float input -> int8: ``clip(rint(x / scale), -128, 127)`` (round half to even)."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"input scale must be a positive finite number, got {scale}")
    x = np.asarray(x_float, dtype=np.float64)
    return np.clip(np.rint(x / scale), -128, 127).astype(np.int8)


def multiplier_to_mult_shift(m) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers ``m`` (> 0) -> int64 (mult, shift) with ``mult / 2**shift ≈ m``.

    ``mult`` is in ``[2**15, 2**16)`` whenever ``2**-32 <= m < 2**15``; smaller ``m``
    uses shift 47 and a smaller mult (possibly 0). Raises for ``m >= 2**15``, which would
    need a shift below 1.
    """
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"requantisation multipliers must be positive and finite, got {m[(~np.isfinite(m)) | (m <= 0)]}")
    frac, exp = np.frexp(m)                     # m = frac * 2**exp, frac in [0.5, 1)
    shift = MULT_BITS - exp.astype(np.int64)    # m * 2**shift = frac * 2**16 in [2**15, 2**16)
    mult = np.rint(frac * (1 << MULT_BITS)).astype(np.int64)
    carry = mult == (1 << MULT_BITS)            # frac rounded up to 1.0: one bit less shift
    at_min = carry & (shift == SHIFT_MIN)       # ... unless the shift is already minimal
    mult[at_min] = (1 << MULT_BITS) - 1
    carry &= ~at_min
    mult[carry] = 1 << (MULT_BITS - 1)
    shift[carry] -= 1
    if np.any(shift < SHIFT_MIN):
        bad = m[shift < SHIFT_MIN]
        raise ValueError(f"requantisation multiplier {bad.max():.6g} >= 2**15 needs a shift below {SHIFT_MIN}: "
                         "the output scale is far smaller than input scale x weight scale; recalibrate "
                         "with data that reaches the layer's real output range")
    small = shift > SHIFT_MAX
    if np.any(small):
        shift[small] = SHIFT_MAX
        mult[small] = np.rint(m[small] * 2.0 ** SHIFT_MAX).astype(np.int64)
    return mult, shift


def check_accumulator_bound(layer: QLayer, index: int = 0) -> None:
    """Raise if some channel of ``layer`` could overflow the int32 accumulator."""
    w = layer.weight.reshape(layer.c_out, -1).astype(np.int64)
    worst = np.abs(w).sum(axis=1) * ACT_MAX + np.abs(layer.bias.astype(np.int64))
    if np.any(worst >= ACC_LIMIT):
        c = int(np.argmax(worst))
        raise ValueError(f"layer {index} ({layer.name or layer.kind}) channel {c}: sum|w|*128 + |bias| = "
                         f"{int(worst[c])} does not fit the int32 accumulator (< 2**31); "
                         "shrink the bias or the weights (e.g. retrain with weight decay)")


def _bias_int32(b: np.ndarray, step: np.ndarray, name: str) -> np.ndarray:
    q = np.rint(b / step)
    if np.any(np.abs(q) >= ACC_LIMIT):
        raise ValueError(f"layer {name}: bias {b[np.abs(q) >= ACC_LIMIT]} / scale does not fit int32; "
                         "the bias is huge compared to input scale x weight scale")
    return q.astype(np.int32)


def calibration_batch(calib_x, n_calib: int, input_shape: tuple, act_percentile: float,
                      input_scale: float | None = None) -> tuple[torch.Tensor, float]:
    """The first ``n_calib`` calibration images as a float32 tensor, checked, and the input
    scale: ``input_scale`` when given, else max|x| / 127."""
    if not 0 < act_percentile <= 100:
        raise ValueError(f"act_percentile must be in (0, 100], got {act_percentile}")
    x = torch.as_tensor(np.asarray(calib_x[:n_calib], dtype=np.float32))
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"calibration images have shape {tuple(x.shape)}, expected (N, *{tuple(input_shape)})")
    if x.shape[0] == 0:
        raise ValueError("no calibration images: pass at least one image in calib_x")
    if input_scale is not None:
        s_in = float(input_scale)
        if not np.isfinite(s_in) or s_in <= 0:
            raise ValueError(f"input_scale must be a positive finite number, got {input_scale}")
        return x, s_in
    x_max = float(x.abs().max())
    if not np.isfinite(x_max) or x_max == 0:
        raise ValueError(f"calibration images have max|x| = {x_max}; need finite, non-zero data")
    return x, x_max / 127.0


def quantize(model: SpecCNN, calib_x, *, n_calib: int = DEFAULT_N_CALIB, act_percentile: float = 100.0,
             name: str | None = None) -> QModel:
    """Quantise a :class:`SpecCNN` (pruning masks may still be attached: the effective
    weights are used) with the first ``n_calib`` of ``calib_x``: the module goes through
    the layer graph (:func:`~zeroskip.host.frontends.from_torch`, the float passes) and
    the one graph quantiser (:func:`~zeroskip.host.quant.graph_quant.quantize_graph`),
    as every imported model does. See the module docstring for the scheme."""
    spec = getattr(model, "spec", None)
    if spec is None or not hasattr(model, "layers"):
        raise TypeError(f"quantize needs a SpecCNN (models.build_model), got {type(model).__name__}")
    x, s_in = calibration_batch(calib_x, n_calib, spec.input_shape, act_percentile)
    from zeroskip.host.frontends import from_torch
    from zeroskip.host.ir import run_passes
    from zeroskip.host.quant.graph_quant import quantize_graph

    was_training = model.training
    try:
        graph = run_passes(from_torch(model.eval(), tuple(spec.input_shape), name=name or "model"))
    finally:
        model.train(was_training)
    with torch_threads(DEFAULT_THREADS):
        q = quantize_graph(graph, x.numpy(), n_calib=n_calib, act_percentile=act_percentile, name=name or "model",
                           input_scale=s_in)
    q.meta["spec"] = spec.to_dict()
    return q
