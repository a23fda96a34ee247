"""Post-training symmetric int8 quantisation of a :class:`~zeroskip.host.models.cnn.SpecCNN`.

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
from torch.nn import functional as F

from zeroskip.host.models.cnn import SpecCNN
from zeroskip.host.training.prune import effective_weight
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


@torch.no_grad()
def _calibration_maxima(model: SpecCNN, x: torch.Tensor, percentile: float) -> list[float]:
    """Per non-final layer: the ``percentile`` of its float output after ReLU (before pool)."""
    spec = model.spec
    n_conv = len(spec.convs)
    out = []
    a = x
    for i, mod in enumerate(model.layers[:-1]):
        if i == n_conv:
            a = torch.flatten(a, 1)
        a = F.relu(mod(a))
        flat = a.double().flatten().numpy()
        out.append(float(flat.max()) if percentile >= 100 else float(np.percentile(flat, percentile)))
        if i < n_conv and spec.convs[i].pool:
            a = F.max_pool2d(a, 2)
    return out


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
    """Quantise ``model`` to a :class:`QModel` using the first ``n_calib`` of ``calib_x``.

    ``model`` must be a ``SpecCNN`` (it carries the ``spec`` that fixes padding, pooling
    and ReLU). Pruning masks may still be attached; the effective weights are used.
    See the module docstring for the scheme.
    """
    spec = getattr(model, "spec", None)
    if spec is None or not hasattr(model, "layers"):
        raise TypeError(f"quantize needs a SpecCNN (models.build_model), got {type(model).__name__}")
    x, s_in = calibration_batch(calib_x, n_calib, spec.input_shape, act_percentile)
    with torch_threads(DEFAULT_THREADS):
        maxima = _calibration_maxima(model, x, act_percentile)

    n_conv = len(spec.convs)
    n_layers = len(model.layers)
    layers: list[QLayer] = []
    s_prev = s_in
    for i, (lname, mod) in enumerate(zip(model.layer_names, model.layers)):
        w = effective_weight(mod).double().numpy()
        b = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(w.shape[0])
        c_out = w.shape[0]
        last = i == n_layers - 1
        absmax = np.abs(w.reshape(c_out, -1)).max(axis=1)
        if last:
            t = float(absmax.max())
            s_w = np.full(c_out, t / 127.0 if t > 0 else 1.0)
        else:
            s_w = np.where(absmax > 0, absmax / 127.0, 1.0)
        wshape = (c_out,) + (1,) * (w.ndim - 1)
        q = np.clip(np.rint(w / s_w.reshape(wshape)), -127, 127).astype(np.int8)
        bias = _bias_int32(b, s_prev * s_w, lname)
        if last:
            mult = np.ones(c_out, np.int64)
            shift = np.full(c_out, SHIFT_MIN, np.int64)
            s_out = float(s_prev * s_w[0])
        else:
            s_out = maxima[i] / 127.0 if maxima[i] > 0 else 1.0
            try:
                mult, shift = multiplier_to_mult_shift(s_prev * s_w / s_out)
            except ValueError as e:
                raise ValueError(f"layer {i} ({lname}): {e}") from None
        is_conv = i < n_conv
        layer = QLayer(kind="conv" if is_conv else "fc", weight=q, bias=bias, mult=mult, shift=shift,
                       padding=spec.convs[i].padding if is_conv else 0, relu=not last,
                       pool=spec.convs[i].pool if is_conv else False, out_scale=s_out, name=lname)
        check_accumulator_bound(layer, i)
        layers.append(layer)
        s_prev = s_out
    meta = {"spec": spec.to_dict(), "n_calib": int(x.shape[0]), "act_percentile": float(act_percentile),
            "rounding": "half_to_even"}
    return QModel(input_shape=spec.input_shape, layers=tuple(layers), input_scale=s_in,
                  name=name or "model", meta=meta)
