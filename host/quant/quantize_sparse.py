"""Post-training int8 quantisation of a sparse-pixel :class:`~zeroskip.host.models.sparse.SparseCNN`.

The scheme is that of ``quantize.py`` (whose helpers it uses), layer by layer:

- **Input**: ``s_in = max|x| / 127`` over the calibration images (or ``input_scale``);
  images are quantised with ``quantize.quantize_input`` (round half to even).
- **Reduce threshold**: ``t = floor(threshold / s_in)`` (see :func:`threshold_to_int8`),
  so that for every representable input ``x = q·s_in`` the integer test ``q > t`` holds
  exactly when the float test ``x > threshold`` does. For other inputs the two differ
  only when ``x`` lies within half an input LSB of the threshold (``q = rint(x / s_in)``
  moves the decision point from ``threshold`` to ``(t + 1/2)·s_in``, the nearest
  half-integer point; ``floor`` is the choice that puts it there). On the detector set
  (7-bit ADC values ``k/127`` and ``s_in = 1/127``) every input is representable and the
  selection is identical. ``meta["reduce_agreement"]`` is the fraction of calibration
  images whose int8 site list equals the float one.
- **Sparse conv** (``QLayer(kind="sconv")``) and **hidden FC** layers: per-output-channel
  weight scales, int32 bias, ``mult``/``shift`` from ``s_in_layer · s_w / s_out``, with
  ``s_out`` calibrated on the float model: the maximum (or ``act_percentile``) of the
  layer's output after ReLU. For a sparse conv only the values at active sites count
  (the rest of the map is structurally zero); a sparse conv without ReLU uses ``max|a|``.
- **Sparse pooling** (``QSparsePool``): ``max`` and ``avg`` (the ``AVG_RECIP`` rule)
  both keep the scale of their input.
- **First FC** reads the flattened zero-filled (C, H, W) grid; the **last FC** has one
  weight scale for the whole tensor and int32 logits (``mult = 1, shift = 1``).

Every ``round`` is half to even (``numpy.rint``); every weighted layer is checked against
the int32 accumulator bound.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from zeroskip.host.training.prune import effective_weight
from zeroskip.host.quant.qmodel import SHIFT_MIN, QInputReduce, QLayer, QModel, QSparsePool
from zeroskip.host.quant.quantize import (
    DEFAULT_N_CALIB,
    _bias_int32,
    calibration_batch,
    check_accumulator_bound,
    multiplier_to_mult_shift,
    quantize_input,
)
from zeroskip.host.quant.reference import reduce_int8
from zeroskip.host.models.sparse import SparseCNN
from zeroskip.host.training.train import DEFAULT_THREADS, torch_threads

CALIB_BATCH = 256


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


def _site_values(a: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    if mask is None:
        return a.double().flatten().numpy()
    return a.double().permute(0, 2, 3, 1)[mask[:, 0]].flatten().numpy()


@torch.no_grad()
def _calibrate(model: SparseCNN, x: torch.Tensor) -> tuple[list[np.ndarray], np.ndarray]:
    """Per quantised layer: its float output values (active sites only for sparse
    layers), and the float reduce's site mask of every image."""
    values: list[list[np.ndarray]] = []
    site_masks = []
    for start in range(0, x.shape[0], CALIB_BATCH):
        xb = x[start:start + CALIB_BATCH]
        outs, masks = model.forward_layers(xb)
        if not values:
            values = [[] for _ in outs]
        for v, a, m in zip(values, outs, masks):
            v.append(_site_values(a, m))
        site_masks.append(model.reduce(xb).mask.numpy())
    return [np.concatenate(v) for v in values], np.concatenate(site_masks)


def _scale_from(values: np.ndarray, relu: bool, percentile: float) -> float:
    v = values if relu else np.abs(values)
    if v.size == 0:
        return 1.0
    top = float(v.max()) if percentile >= 100 else float(np.percentile(v, percentile))
    return top / 127.0 if top > 0 else 1.0


def quantize_sparse(model: SparseCNN, calib_x, *, n_calib: int = DEFAULT_N_CALIB, act_percentile: float = 100.0,
                    input_scale: float | None = None, name: str | None = None) -> QModel:
    """Quantise a :class:`~zeroskip.host.models.sparse.SparseCNN` to a sparse-pixel
    :class:`QModel` using the first ``n_calib`` images of ``calib_x``.

    Layers: per conv block ``QLayer(kind="sconv")`` then ``QSparsePool(mode)`` if it
    pools, then the ``fc`` layers; ``reduce = QInputReduce(threshold_to_int8(...), n_max)``.
    ``input_scale`` overrides the calibrated input scale. Pruning masks may still be
    attached (the effective weights are used). See the module docstring for the scheme.
    """
    spec = getattr(model, "spec", None)
    if not isinstance(model, SparseCNN) or spec is None:
        raise TypeError(f"quantize_sparse needs a SparseCNN (sparse.build_sparse_model), got {type(model).__name__}")
    x, s_in = calibration_batch(calib_x, n_calib, spec.input_shape, act_percentile, input_scale)
    t_int = threshold_to_int8(spec.threshold, s_in)
    reduce = QInputReduce(t_int, spec.n_max)

    was_training = model.training
    model.eval()
    try:
        with torch_threads(DEFAULT_THREADS):
            values, float_sites = _calibrate(model, x)
    finally:
        model.train(was_training)
    x_q = quantize_input(x.numpy(), s_in)
    int_sites = _int_sites(x_q, reduce)
    agreement = float(np.mean(np.all(int_sites == float_sites, axis=(1, 2, 3))))

    qnames = model.qlayer_names()
    n_conv = len(spec.convs)
    n_weighted = len(model.layers)
    layers: list = []
    s_prev = s_in
    q_index = 0
    for i, (lname, mod) in enumerate(zip(model.layer_names, model.layers)):
        is_conv = i < n_conv
        last = i == n_weighted - 1
        relu = spec.convs[i].relu if is_conv else not last
        w = effective_weight(mod).double().numpy()
        b = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(w.shape[0])
        c_out = w.shape[0]
        absmax = np.abs(w.reshape(c_out, -1)).max(axis=1)
        if last:
            top = float(absmax.max())
            s_w = np.full(c_out, top / 127.0 if top > 0 else 1.0)
        else:
            s_w = np.where(absmax > 0, absmax / 127.0, 1.0)
        q = np.clip(np.rint(w / s_w.reshape((c_out,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
        bias = _bias_int32(b, s_prev * s_w, lname)
        if last:
            mult, shift = np.ones(c_out, np.int64), np.full(c_out, SHIFT_MIN, np.int64)
            s_out = float(s_prev * s_w[0])
        else:
            s_out = _scale_from(values[q_index], relu, act_percentile)
            try:
                mult, shift = multiplier_to_mult_shift(s_prev * s_w / s_out)
            except ValueError as e:
                raise ValueError(f"layer {q_index} ({lname}): {e}") from None
        layer = QLayer(kind="sconv" if is_conv else "fc", weight=q, bias=bias, mult=mult, shift=shift,
                       padding=spec.convs[i].kernel // 2 if is_conv else 0, relu=relu, out_scale=s_out, name=lname)
        check_accumulator_bound(layer, q_index)
        layers.append(layer)
        q_index += 1
        s_prev = s_out
        if is_conv and spec.convs[i].pool:
            layers.append(QSparsePool(spec.convs[i].pool, name=qnames[q_index]))
            q_index += 1
    meta = {"spec": spec.to_dict(), "sparse_pixels": True, "n_calib": int(x.shape[0]),
            "act_percentile": float(act_percentile), "rounding": "half_to_even",
            "threshold_float": spec.threshold, "threshold_int8": t_int, "reduce_agreement": agreement}
    return QModel(input_shape=spec.input_shape, layers=tuple(layers), input_scale=s_in, name=name or "sparse_model",
                  meta=meta, reduce=reduce)


def _int_sites(x_q: np.ndarray, reduce: QInputReduce) -> np.ndarray:
    """The int8 reduce's site mask (N, 1, H, W) of int8 images."""
    return reduce_int8(torch.from_numpy(np.ascontiguousarray(x_q)), reduce).mask.numpy()
