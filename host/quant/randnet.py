"""Random small quantised models and inputs for property tests (numpy only, no torch).

``random_qmodel(rng)`` draws a valid :class:`~zeroskip.host.quant.qmodel.QModel`: 1–3 conv
layers (kernel 1–4; padding 0..k//2; 2×2 pool when the map allows), 0–2 hidden FC
layers and a final FC layer with int32 outputs. Weights are random int8 (the full range,
-128 included) at a random sparsity in [0, 0.999]; biases, multipliers and shifts are
drawn so that outputs mostly land inside the int8 range but sometimes clip. Flags force
edge cases in every non-final layer:

- ``zero_channel``: one output channel has only zero weights (its output is bias only);
- ``dense_channel``: one output channel has no zero weight (when the layer has a single
  output channel and both flags are set, the channel is all zero);
- ``saturate``: multipliers 2**6..2**12 times too large, so most outputs clip at 127 / -128
  (or at 0 with ReLU).

``random_input(rng, qmodel, n, negative=True)`` draws int8 images including negative
values and the extremes -128 and 127.

``random_sparse_qmodel(rng)`` draws a valid sparse-pixel model: an input reduce
(threshold, ``n_max`` 1..32) on inputs up to 24×24 with 1–2 channels, 1–2 sparse convs
(kernel 1 or 3), each optionally followed by sparse pooling (``max`` only after a ReLU,
or ``avg``), then 0–1 hidden FC layers and the final FC layer.
``random_sparse_input(rng, qmodel, n)`` draws int8 images with a controlled number of
active pixels (channel 0 above the threshold), including images with none and with more
than ``n_max``, and pixels exactly at the threshold.

Every model respects the int32 accumulator bound ``sum|w|*128 + |bias| < 2**31``.
"""

from __future__ import annotations

import numpy as np

from zeroskip.host.quant.qmodel import (
    MULT_BITS,
    SHIFT_MAX,
    SHIFT_MIN,
    LayerKind,
    QInputReduce,
    QLayer,
    QModel,
    QSparsePool,
)

CONV, SCONV, FC = LayerKind.CONV, LayerKind.SCONV, LayerKind.FC

MAX_HW = 12
MAX_CHANNELS = 8
MAX_FC = 16
MAX_OUT = 10
KERNELS = (1, 2, 3, 4)  # the engine supports up to 16 taps per input channel
SPARSE_MAX_HW = 24
SPARSE_MAX_CHANNELS = 2
SPARSE_MAX_N = 32
SPARSE_KERNELS = (1, 3)


def _sparsity(rng: np.random.Generator) -> float:
    """0, 0.999 or uniform in between, each edge with probability 1/6."""
    u = rng.random()
    if u < 1 / 6:
        return 0.0
    if u < 2 / 6:
        return 0.999
    return float(rng.uniform(0.0, 0.999))


def _weights(rng: np.random.Generator, shape: tuple[int, ...], sparsity: float, zero_channel: bool,
             dense_channel: bool) -> np.ndarray:
    w = rng.integers(-128, 128, size=shape)
    w[w == 0] = 1
    w[rng.random(shape) < sparsity] = 0
    c_out = shape[0]
    chans = rng.permutation(c_out)
    if dense_channel:
        dense = rng.integers(1, 128, size=shape[1:]) * rng.choice([-1, 1], size=shape[1:])
        w[chans[0]] = dense
    if zero_channel:  # with a single output channel this wins over dense_channel
        w[chans[-1]] = 0
    return w.astype(np.int8)


def _requant(rng: np.random.Generator, weight: np.ndarray, saturate: bool) -> tuple[np.ndarray, ...]:
    """(bias int32, mult int64, shift int64) giving outputs of order ±64 for random inputs."""
    c_out = weight.shape[0]
    w = weight.reshape(c_out, -1).astype(np.float64)
    # Typical |acc| for inputs of size ~70: sqrt(Σ w²) * 70 (at least 1).
    typical = np.maximum(np.sqrt((w * w).sum(axis=1)) * 70.0, 1.0)
    bias = np.rint(rng.normal(0.0, 0.5, c_out) * typical).astype(np.int64)
    m = 64.0 / typical * 2.0 ** rng.uniform(-2.0, 2.0, c_out)
    if saturate:
        m = m * 2.0 ** rng.uniform(6.0, 12.0, c_out)
    _, exp = np.frexp(m)
    bits = rng.integers(1, MULT_BITS + 1, c_out)        # significant bits of the multiplier
    shift = np.clip(bits - exp, SHIFT_MIN, SHIFT_MAX).astype(np.int64)
    mult = np.clip(np.rint(m * 2.0 ** shift), 0, (1 << MULT_BITS) - 1).astype(np.int64)
    # Occasional extreme corners of the (mult, shift) space.
    corner = rng.random(c_out) < 0.1
    mult[corner] = rng.choice([0, 1, (1 << MULT_BITS) - 1], size=int(corner.sum()))
    shift[corner] = rng.choice([SHIFT_MIN, SHIFT_MAX, rng.integers(SHIFT_MIN, SHIFT_MAX + 1)],
                               size=int(corner.sum()))
    # Keep sum|w|*128 + |bias| < 2**31.
    room = (1 << 31) - 1 - np.abs(w).sum(axis=1).astype(np.int64) * 128
    bias = np.clip(bias, -room, room)
    return bias.astype(np.int32), mult, shift


def random_qmodel(rng: np.random.Generator, *, input_shape: tuple[int, int, int] | None = None,
                  n_conv: int | None = None, n_hidden_fc: int | None = None, sparsity: float | None = None,
                  zero_channel: bool = False, dense_channel: bool = False, saturate: bool = False,
                  relu: bool | None = None, name: str = "random") -> QModel:
    """A random valid QModel (see the module docstring).

    Fixed choices override the random ones: ``input_shape`` (C, H, W), ``n_conv`` (random
    1–3; 0 gives an FC-only model), ``n_hidden_fc`` (random 0–2), ``sparsity`` (all
    layers), ``relu`` (all non-final layers; default random per layer). Inputs larger than
    the random range are accepted but make the FC layers large.
    """
    if input_shape is None:
        input_shape = (int(rng.integers(1, 4)), int(rng.integers(3, MAX_HW + 1)), int(rng.integers(3, MAX_HW + 1)))
    c, h, w = (int(s) for s in input_shape)
    if min(c, h, w) < 1:
        raise ValueError(f"input_shape must have positive sizes, got {input_shape}")
    n_conv = int(rng.integers(1, 4)) if n_conv is None else int(n_conv)
    n_hidden_fc = int(rng.integers(0, 3)) if n_hidden_fc is None else int(n_hidden_fc)
    if n_conv < 0 or n_hidden_fc < 0:
        raise ValueError(f"n_conv and n_hidden_fc must be >= 0, got {n_conv} and {n_hidden_fc}")

    def layer_relu() -> bool:
        return bool(rng.random() < 0.7) if relu is None else bool(relu)

    def draw(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        s = _sparsity(rng) if sparsity is None else float(sparsity)
        wq = _weights(rng, shape, s, zero_channel, dense_channel)
        return (wq, *_requant(rng, wq, saturate))

    layers: list[QLayer] = []
    for i in range(n_conv):
        k = int(rng.choice(KERNELS))
        p_min = max(0, -(-(k - min(h, w)) // 2))         # ceil((k - min(h, w)) / 2)
        p = int(rng.integers(p_min, k // 2 + 1))
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        pool = ho >= 2 and wo >= 2 and bool(rng.random() < 0.5)
        c_out = int(rng.integers(1, MAX_CHANNELS + 1))
        wq, bias, mult, shift = draw((c_out, c, k, k))
        layers.append(QLayer(CONV, wq, bias, mult, shift, padding=p, relu=layer_relu(), pool=pool,
                             name=f"conv{i}"))
        c, h, w = c_out, (ho // 2 if pool else ho), (wo // 2 if pool else wo)
    n_in = c * h * w
    sizes = [int(rng.integers(1, MAX_FC + 1)) for _ in range(n_hidden_fc)] + [int(rng.integers(1, MAX_OUT + 1))]
    for i, n_out in enumerate(sizes):
        wq, bias, mult, shift = draw((n_out, n_in))
        last = i == len(sizes) - 1
        if last:
            mult, shift = np.ones(n_out, np.int64), np.full(n_out, SHIFT_MIN, np.int64)
        layers.append(QLayer(FC, wq, bias, mult, shift, relu=False if last else layer_relu(), name=f"fc{i}"))
        n_in = n_out
    return QModel(input_shape=tuple(int(s) for s in input_shape), layers=tuple(layers), name=name,
                  meta={"random": True})


def random_input(rng: np.random.Generator, qmodel: QModel, n: int, *, negative: bool = True) -> np.ndarray:
    """``n`` random int8 images for ``qmodel``: uniform over [-128, 127] (or [0, 127] when
    not ``negative``), with about 30 % zeros and 10 % extremes (-128 / 127)."""
    shape = (int(n), *(int(s) for s in qmodel.input_shape))
    lo = -128 if negative else 0
    x = rng.integers(lo, 128, size=shape)
    u = rng.random(shape)
    x[u < 0.3] = 0
    ext = (u >= 0.3) & (u < 0.4)
    x[ext] = rng.choice([lo, 127], size=int(ext.sum()))
    return x.astype(np.int8)


def _threshold(rng: np.random.Generator) -> int:
    """Mostly 0..120; sometimes negative, sometimes 126 or 127 (no int8 value exceeds 127)."""
    u = rng.random()
    if u < 0.1:
        return int(rng.integers(-128, 0))
    if u < 0.15:
        return int(rng.choice([126, 127]))
    return int(rng.integers(0, 121))


def random_sparse_qmodel(rng: np.random.Generator, *, input_shape: tuple[int, int, int] | None = None,
                         n_max: int | None = None, threshold: int | None = None, n_sconv: int | None = None,
                         pool: str | None = None, n_hidden_fc: int | None = None, sparsity: float | None = None,
                         zero_channel: bool = False, dense_channel: bool = False, saturate: bool = False,
                         relu: bool | None = None, name: str = "random_sparse") -> QModel:
    """A random valid sparse-pixel QModel (see the module docstring).

    Fixed choices override the random ones: ``input_shape`` (C, H, W) (random C 1–2, H
    and W 1–24), ``n_max`` (random 1–32), ``threshold`` (int8), ``n_sconv`` (random 1–2),
    ``pool`` after every sparse conv whose map allows it (``'max'``, ``'avg'`` or
    ``'none'``; default random per layer; ``'max'`` forces ReLU on the conv before),
    ``n_hidden_fc`` (random 0–1), ``sparsity``, ``relu`` and the edge-case flags as in
    :func:`random_qmodel`.
    """
    if input_shape is None:
        input_shape = (int(rng.integers(1, SPARSE_MAX_CHANNELS + 1)), int(rng.integers(1, SPARSE_MAX_HW + 1)),
                       int(rng.integers(1, SPARSE_MAX_HW + 1)))
    c, h, w = (int(s) for s in input_shape)
    if min(c, h, w) < 1:
        raise ValueError(f"input_shape must have positive sizes, got {input_shape}")
    if pool not in (None, "max", "avg", "none"):
        raise ValueError(f"pool must be 'max', 'avg', 'none' or None (random), got {pool!r}")
    n_max = int(rng.integers(1, SPARSE_MAX_N + 1)) if n_max is None else int(n_max)
    threshold = _threshold(rng) if threshold is None else int(threshold)
    n_sconv = int(rng.integers(1, 3)) if n_sconv is None else int(n_sconv)
    n_hidden_fc = int(rng.integers(0, 2)) if n_hidden_fc is None else int(n_hidden_fc)
    if n_sconv < 1 or n_hidden_fc < 0:
        raise ValueError(f"need n_sconv >= 1 and n_hidden_fc >= 0, got {n_sconv} and {n_hidden_fc}")

    def draw(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        s = _sparsity(rng) if sparsity is None else float(sparsity)
        wq = _weights(rng, shape, s, zero_channel, dense_channel)
        return (wq, *_requant(rng, wq, saturate))

    layers: list = []
    for i in range(n_sconv):
        k = int(rng.choice(SPARSE_KERNELS))
        c_out = int(rng.integers(1, MAX_CHANNELS + 1))
        mode = pool if pool is not None else str(rng.choice(["none", "max", "avg"]))
        if h < 2 or w < 2:
            mode = "none"
        layer_relu = bool(rng.random() < 0.7) if relu is None else bool(relu)
        if mode == "max":
            layer_relu = True
        wq, bias, mult, shift = draw((c_out, c, k, k))
        layers.append(QLayer(SCONV, wq, bias, mult, shift, padding=k // 2, relu=layer_relu, name=f"sconv{i}"))
        c = c_out
        if mode != "none":
            layers.append(QSparsePool(mode, name=f"spool{i}"))
            h, w = h // 2, w // 2
    n_in = c * h * w
    sizes = [int(rng.integers(1, MAX_FC + 1)) for _ in range(n_hidden_fc)] + [int(rng.integers(1, MAX_OUT + 1))]
    for i, n_out in enumerate(sizes):
        wq, bias, mult, shift = draw((n_out, n_in))
        last = i == len(sizes) - 1
        if last:
            mult, shift = np.ones(n_out, np.int64), np.full(n_out, SHIFT_MIN, np.int64)
        fc_relu = False if last else (bool(rng.random() < 0.7) if relu is None else bool(relu))
        layers.append(QLayer(FC, wq, bias, mult, shift, relu=fc_relu, name=f"fc{i}"))
        n_in = n_out
    return QModel(input_shape=tuple(int(s) for s in input_shape), layers=tuple(layers), name=name,
                  meta={"random": True}, reduce=QInputReduce(threshold, n_max))


def random_sparse_input(rng: np.random.Generator, qmodel: QModel, n: int, *, fraction: float | None = None,
                        negative: bool = True, border: bool | None = None) -> np.ndarray:
    """``n`` random int8 images for the sparse-pixel ``qmodel`` (which needs a reduce).

    Active pixels (channel 0 > threshold) are placed at random: with ``fraction`` each
    pixel is active with that probability; by default each image draws its count: none
    (1 in 6), more than ``n_max`` (1 in 6, when the image has room) or 1..n_max. With
    ``border`` (default: random per image) the border rows and columns are 8 times as
    likely to hold active pixels. Active channel-0 values are uniform over
    (threshold, 127], with ``threshold + 1`` and 127 frequent; inactive ones are mostly
    ``min(0, threshold)``, sometimes exactly ``threshold`` or uniform below it. The other
    channels are random everywhere (the reduce must zero them off the sites); with
    ``negative=False`` they are >= 0. A threshold of 127 allows no active pixel.
    """
    if qmodel.reduce is None:
        raise ValueError("random_sparse_input needs a sparse-pixel model (qmodel.reduce)")
    if fraction is not None and not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    t, n_max = qmodel.reduce.threshold, qmodel.reduce.n_max
    c, h, w = (int(s) for s in qmodel.input_shape)
    hw = h * w
    lo = -128 if negative else 0
    x = rng.integers(lo, 128, size=(int(n), c, h, w))
    u = rng.random(x.shape)
    x[u < 0.3] = 0
    ext = (u >= 0.3) & (u < 0.4)
    x[ext] = rng.choice([lo, 127], size=int(ext.sum()))

    # Channel 0: inactive everywhere, then the chosen active pixels.
    bg = min(0, t)
    ch0 = np.full((int(n), hw), bg, np.int64)
    u = rng.random(ch0.shape)
    ch0[u < 0.1] = t
    below = u >= 0.8
    ch0[below] = rng.integers(-128, t + 1, size=int(below.sum()))
    yy, xx = np.divmod(np.arange(hw), w)
    on_border = (yy == 0) | (yy == h - 1) | (xx == 0) | (xx == w - 1)
    for img in range(int(n)):
        if t >= 127:
            break
        if fraction is not None:
            where = np.flatnonzero(rng.random(hw) < fraction)
        else:
            v = rng.random()
            if v < 1 / 6:
                count = 0
            elif v < 2 / 6 and hw > n_max:
                count = int(rng.integers(n_max + 1, min(hw, 2 * n_max + 4) + 1))
            else:
                count = int(rng.integers(1, min(n_max, hw) + 1))
            bias_border = bool(rng.random() < 0.5) if border is None else bool(border)
            p = np.where(on_border, 8.0, 1.0) if bias_border else np.ones(hw)
            where = rng.choice(hw, size=count, replace=False, p=p / p.sum())
        vals = rng.integers(t + 1, 128, size=where.size)
        e = rng.random(where.size)
        vals[e < 0.1] = t + 1
        vals[(e >= 0.1) & (e < 0.2)] = 127
        ch0[img, where] = vals
    x[:, 0] = ch0.reshape(int(n), h, w)
    return x.astype(np.int8)


def random_graph_qmodel(rng: np.random.Generator, *, input_shape: tuple[int, int, int] | None = None,
                        sparsity: float | None = None, saturate: bool = False, name: str = "random_graph") -> QModel:
    """A random valid layer-graph QModel with every grid layer kind of the engine:
    rectangular kernels with asymmetric zero padding, stride 1 or 2 per axis, depthwise
    convolutions (kernels up to 5×5 and global ones), average and global average pooling
    (depthwise convolutions of ones), residual adds with an identity or a 1×1 (stride 1 or
    2) projection shortcut, then 0–1 hidden FC layers and the final FC layer."""
    if input_shape is None:
        input_shape = (int(rng.integers(1, 4)), int(rng.integers(5, 15)), int(rng.integers(5, 15)))
    c, h, w = (int(s) for s in input_shape)
    layers: list[QLayer] = []
    shapes: list[tuple] = []   # output shape of every layer

    def add(layer: QLayer, shape) -> int:
        layers.append(layer)
        shapes.append(tuple(int(s) for s in shape))
        return len(layers) - 1

    def draw(shape):
        s = _sparsity(rng) if sparsity is None else float(sparsity)
        wq = _weights(rng, shape, s, bool(rng.random() < 0.2), bool(rng.random() < 0.2))
        return (wq, *_requant(rng, wq, saturate))

    def conv(src: int, c_in: int, hh: int, ww: int, *, depthwise: bool = False, allow_stride: bool = True):
        while True:
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            if depthwise and rng.random() < 0.3:
                kh, kw = int(rng.integers(3, 6)), int(rng.integers(3, 6))
            if depthwise or kh * kw <= 16:
                break
        pads = tuple(int(rng.integers(0, k)) for k in (kh, kh, kw, kw))
        stride = tuple(int(rng.choice([1, 2])) if allow_stride else 1 for _ in range(2))
        ho = (hh + pads[0] + pads[1] - kh) // stride[0] + 1
        wo = (ww + pads[2] + pads[3] - kw) // stride[1] + 1
        if ho < 1 or wo < 1 or hh + pads[0] + pads[1] < kh or ww + pads[2] + pads[3] < kw:
            pads, stride, kh, kw = (0, 0, 0, 0), (1, 1), 1, 1
            ho, wo = hh, ww
        pool = ho >= 2 and wo >= 2 and rng.random() < 0.25
        c_out = c_in if depthwise else int(rng.integers(1, MAX_CHANNELS + 1))
        wq, bias, mult, shift = draw((c_out, 1 if depthwise else c_in, kh, kw))
        i = add(QLayer(CONV, wq, bias, mult, shift, pads=pads, stride=stride, groups=c_out if depthwise else 1,
                       relu=bool(rng.random() < 0.7), pool=pool, src=src, name=f"conv{len(layers)}"),
                (c_out, ho // 2 if pool else ho, wo // 2 if pool else wo))
        return i

    cur = -1
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["conv", "dw", "res", "proj", "avg"])
        if kind in ("conv", "dw"):
            cur = conv(cur, c, h, w, depthwise=kind == "dw")
        elif kind == "avg" and h >= 2 and w >= 2:
            st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            mult, shift = (np.full(c, 1 << 14, np.int64), np.full(c, 16, np.int64))
            cur = add(QLayer(CONV, np.ones((c, 1, 2, 2), np.int8), np.zeros(c, np.int32), mult, shift, stride=st,
                             groups=c, src=cur, name=f"avg{len(layers)}"),
                      (c, (h - 2) // st[0] + 1, (w - 2) // st[1] + 1))
        elif kind in ("res", "proj"):
            # block input cur (c, h, w): a 'same' conv, then a stride-1 'same' conv with the skip
            skip = cur
            if kind == "proj":
                st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
                c_p = int(rng.integers(1, MAX_CHANNELS + 1))
                wq, bias, mult, shift = draw((c_p, c, 1, 1))
                skip = add(QLayer(CONV, wq, bias, mult, shift, stride=st, relu=False, src=cur,
                                  name=f"proj{len(layers)}"), (c_p, (h - 1) // st[0] + 1, (w - 1) // st[1] + 1))
            sc, sh, sw = (c, h, w) if skip == cur else shapes[skip]
            if skip == cur and skip == -1:
                sc, sh, sw = c, h, w
            # main branch: from cur to the skip's shape: a 3×3 conv with the skip's stride
            st = (1, 1) if kind == "res" else layers[skip].stride
            wq, bias, mult, shift = draw((sc, c, 3, 3))
            mid = add(QLayer(CONV, wq, bias, mult, shift, pads=(1, 1, 1, 1), stride=st, relu=True, src=cur,
                             name=f"mid{len(layers)}"), (sc, (h - 1) // st[0] + 1, (w - 1) // st[1] + 1))
            k = int(rng.choice([1, 3]))
            wq, bias, mult, shift = draw((sc, sc, k, k))
            sm = rng.integers(1, 128, size=sc)
            cur = add(QLayer(CONV, wq, bias, mult, shift, pads=(k // 2,) * 4, relu=bool(rng.random() < 0.8),
                             src=mid, skip=skip, skip_mult=sm, name=f"res{len(layers)}"), (sc, sh, sw))
        else:
            continue
        c, h, w = shapes[cur]
    if rng.random() < 0.4 and h * w > 1 and w <= 16:
        n = h * w
        mult, shift = multiplier_for(1.0 / n)
        cur = add(QLayer(CONV, np.ones((c, 1, h, w), np.int8), np.zeros(c, np.int32), np.full(c, mult, np.int64),
                         np.full(c, shift, np.int64), groups=c, src=cur, name=f"gap{len(layers)}"), (c, 1, 1))
        c, h, w = c, 1, 1
    n_in = c * h * w
    sizes = [int(rng.integers(1, MAX_FC + 1)) for _ in range(int(rng.integers(0, 2)))]
    sizes.append(int(rng.integers(1, MAX_OUT + 1)))
    for i, n_out in enumerate(sizes):
        wq, bias, mult, shift = draw((n_out, n_in))
        last = i == len(sizes) - 1
        if last:
            mult, shift = np.ones(n_out, np.int64), np.full(n_out, SHIFT_MIN, np.int64)
        cur = add(QLayer(FC, wq, bias, mult, shift, relu=False if last else bool(rng.random() < 0.7), src=cur,
                         name=f"fc{i}"), (n_out,))
        n_in = n_out
    return QModel(input_shape=(int(input_shape[0]), int(input_shape[1]), int(input_shape[2])), layers=tuple(layers),
                  name=name, meta={"random": True})


def multiplier_for(m: float) -> tuple[int, int]:
    """(mult, shift) with 16 significant bits of mult for the real multiplier ``m`` < 1."""
    _, exp = np.frexp(m)
    shift = int(np.clip(MULT_BITS - exp, SHIFT_MIN, SHIFT_MAX))
    return int(np.rint(m * 2.0 ** shift)), shift


def random_hcw_qmodel(rng: np.random.Generator, *, name: str = "random_hcw") -> QModel:
    """A random model whose convolutions have more than 16 taps per input channel on
    several input channels (LeNet's 5×5 on 6 channels, up to 10×10 and rectangular):
    its input and maps are ``hcw`` tensors, read one virtual channel per kernel row;
    sometimes with a residual add beside such a kernel, a pool or a stride."""
    c = int(rng.integers(2, 4))
    h, w = int(rng.integers(6, 14)), int(rng.integers(6, 14))
    layers: list[QLayer] = []
    shape = (c, h, w)
    cur = -1
    for j in range(int(rng.integers(1, 3))):
        c_in, hh, ww = shape
        if min(hh + 2, 10) * min(ww + 2, 10) <= 16 or c_in == 1:
            break
        while True:
            kh, kw = int(rng.integers(2, 11)), int(rng.integers(2, 11))
            if kh * kw > 16 and kh <= hh + 2 and kw <= ww + 2:
                break
        pads = tuple(int(rng.integers(0, 2)) for _ in range(4))
        stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
        ho = (hh + pads[0] + pads[1] - kh) // stride[0] + 1
        wo = (ww + pads[2] + pads[3] - kw) // stride[1] + 1
        if ho < 1 or wo < 1:
            pads, stride = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2), (1, 1)
            ho, wo = hh, ww
        c_out = int(rng.integers(1, MAX_CHANNELS + 1))
        wq = _weights(rng, (c_out, c_in, kh, kw), _sparsity(rng), False, bool(rng.random() < 0.3))
        bias, mult, shift = _requant(rng, wq, False)
        pool = ho >= 2 and wo >= 2 and rng.random() < 0.3
        layers.append(QLayer(CONV, wq, bias, mult, shift, pads=pads, stride=stride, relu=True, pool=pool,
                             src=cur, name=f"big{j}"))
        cur = len(layers) - 1
        shape = (c_out, ho // 2 if pool else ho, wo // 2 if pool else wo)
    if rng.random() < 0.5:   # a 'same' large kernel with a residual add of its input
        c_in, hh, ww = shape
        kh, kw = 5, int(rng.integers(4, 8))
        if c_in > 1:
            wq = _weights(rng, (c_in, c_in, kh, kw), _sparsity(rng), False, False)
            bias, mult, shift = _requant(rng, wq, False)
            layers.append(QLayer(CONV, wq, bias, mult, shift, pads=(2, 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2),
                                 relu=True, src=cur, skip=cur, skip_mult=rng.integers(1, 128, size=c_in),
                                 name="bigres"))
            cur = len(layers) - 1
    n_in = int(np.prod(shape))
    n_out = int(rng.integers(1, MAX_OUT + 1))
    wq = _weights(rng, (n_out, n_in), _sparsity(rng), False, False)
    bias, _, _ = _requant(rng, wq, False)
    layers.append(QLayer(FC, wq, bias, np.ones(n_out, np.int64), np.full(n_out, SHIFT_MIN, np.int64), src=cur,
                         name="out"))
    return QModel(input_shape=(c, h, w), layers=tuple(layers), name=name, meta={"random": True})
