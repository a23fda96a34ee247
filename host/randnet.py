"""Random small quantised models and inputs for property tests (numpy only, no torch).

``random_qmodel(rng)`` draws a valid :class:`~zeroskip.host.qmodel.QModel`: 1–3 conv
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

Every model respects the int32 accumulator bound ``sum|w|*128 + |bias| < 2**31``.
"""

from __future__ import annotations

import numpy as np

from .qmodel import MULT_BITS, SHIFT_MAX, SHIFT_MIN, QLayer, QModel

MAX_HW = 12
MAX_CHANNELS = 8
MAX_FC = 16
MAX_OUT = 10
KERNELS = (1, 2, 3, 4)  # the engine supports up to 16 taps per input channel


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
        layers.append(QLayer("conv", wq, bias, mult, shift, padding=p, relu=layer_relu(), pool=pool,
                             name=f"conv{i}"))
        c, h, w = c_out, (ho // 2 if pool else ho), (wo // 2 if pool else wo)
    n_in = c * h * w
    sizes = [int(rng.integers(1, MAX_FC + 1)) for _ in range(n_hidden_fc)] + [int(rng.integers(1, MAX_OUT + 1))]
    for i, n_out in enumerate(sizes):
        wq, bias, mult, shift = draw((n_out, n_in))
        last = i == len(sizes) - 1
        if last:
            mult, shift = np.ones(n_out, np.int64), np.full(n_out, SHIFT_MIN, np.int64)
        layers.append(QLayer("fc", wq, bias, mult, shift, relu=False if last else layer_relu(), name=f"fc{i}"))
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
