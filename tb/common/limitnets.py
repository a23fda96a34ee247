"""Networks at the engine's capacity limits, for the RTL limit bench
and its golden-model twin (both in tb/zeroskip_top/test_rtl_limits.py).

numpy only. Each builder takes the overlay's :class:`~zeroskip.driver.program.HwConfig`
and returns a :class:`~zeroskip.host.quant.qmodel.QModel` that the compiler maps onto it with
one resource at (or close to) its limit:

=================  ==========================================================
``max_layers``      exactly MAX_LAYERS layers (convs, then hidden FC layers)
``ch_cap``          output channels of all layers summing to exactly CH_CAP
``out_cap``         a final FC layer with OUT_CAP outputs
``w_slots``         dense FC layers filling all W_SLOTS weight slots
``act_disjoint``    feature maps using most of ACT_BYTES, regions disjoint
``act_pingpong``    feature maps too large for disjoint regions: ping-pong with
                    per-layer clears, the two areas using most of ACT_BYTES
``acc_extremes``    weights and biases at the int32 accumulator bound; the
                    inputs reach +2**31-1; saturating (M = 65535, S = 1) and
                    vanishing (S = 47) requantisation
``sparsity_*``      sparsity 0 .. 99.9 % with empty and fully dense rows
=================  ==========================================================

:func:`random_limit_model` draws random networks near one chosen limit.
:func:`limit_inputs` draws images including all -128 and all 127 ones.
"""

from __future__ import annotations

import numpy as np
from zeroskip.driver.program import HwConfig
from zeroskip.host.compiler.lowering import CompileError, compile_model, plan_regions
from zeroskip.host.quant import randnet
from zeroskip.host.quant.qmodel import SHIFT_MIN, QLayer, QModel


def _conv(rng, c_in, c_out, k, sparsity, *, pad=None, pool=False, relu=True, saturate=False, name="conv",
          zero_channel=False, dense_channel=False):
    w = randnet._weights(rng, (c_out, c_in, k, k), sparsity, zero_channel, dense_channel)
    bias, mult, shift = randnet._requant(rng, w, saturate)
    return QLayer("conv", w, bias, mult, shift, padding=k // 2 if pad is None else pad, relu=relu, pool=pool,
                  name=name)


def _fc(rng, n_in, n_out, sparsity, *, last=False, relu=True, saturate=False, name="fc", zero_channel=False,
        dense_channel=False):
    w = randnet._weights(rng, (n_out, n_in), sparsity, zero_channel, dense_channel)
    bias, mult, shift = randnet._requant(rng, w, saturate)
    if last:
        mult, shift = np.ones(n_out, np.int64), np.full(n_out, SHIFT_MIN, np.int64)
    return QLayer("fc", w, bias, mult, shift, relu=False if last else relu, name=name)


def max_layers(hw: HwConfig, rng) -> QModel:
    n = hw.max_layers
    layers = [_conv(rng, 1, 4, 3, 0.3, name="conv0")]
    c, h = 4, 6
    if n >= 3:
        layers.append(_conv(rng, 4, 4, 3, 0.5, pool=True, name="conv1"))
        h = 3
    n_in = c * h * h
    for i in range(n - len(layers) - 1):
        k = int(rng.integers(3, 9))
        layers.append(_fc(rng, n_in, k, 0.4, name=f"fc{i}", relu=bool(rng.random() < 0.7)))
        n_in = k
    layers.append(_fc(rng, n_in, 3, 0.2, last=True, name="out"))
    return QModel((1, 6, 6), tuple(layers), name="max_layers")


def ch_cap(hw: HwConfig, rng) -> QModel:
    total = hw.ch_cap
    c_out = min(hw.out_cap, max(1, total // 4))
    a = min(8, max(1, (total - c_out) // 8))
    b = total - c_out - a
    for sp in (0.95, 0.98, 0.995, 0.999):  # sparse enough for W_SLOTS at any LANES
        layers = [_conv(rng, 1, a, 1, 0.0, pad=0, name="conv0")]
        n_in = a * 4 * 4
        if b > 0:
            layers.append(_fc(rng, n_in, b, sp, name="fc0", zero_channel=True, dense_channel=True))
            n_in = b
        layers.append(_fc(rng, n_in, c_out, sp, last=True, name="out"))
        model = QModel((1, 4, 4), tuple(layers), name="ch_cap")
        try:
            compile_model(model, hw)
            return model
        except CompileError:
            continue
    return model


def out_cap(hw: HwConfig, rng) -> QModel:
    layers = (_conv(rng, 1, 4, 3, 0.3, pool=True, name="conv0"),
              _fc(rng, 4 * 3 * 3, hw.out_cap, 0.5, last=True, name="out", zero_channel=True, dense_channel=True))
    return QModel((1, 6, 6), layers, name="out_cap")


def _slot_split(hw: HwConfig) -> tuple[int, int, int]:
    """(n_in, hidden, n_out) with hidden·n_in + n_out·ceil(hidden/L)·L == W_SLOTS exactly
    (dense FC rows, Q = LANES, no bank collisions)."""
    L, W = hw.lanes, hw.w_slots
    best = None
    for h in range(L, 257, L):
        for o in range(1, min(hw.out_cap, 32) + 1):
            rem = W - o * h
            if rem <= 0 or rem % h or (rem // h) % L:
                continue
            n_in = rem // h
            if n_in > 4096:
                continue
            cand = (abs(n_in - 2 * h), n_in, h, o)
            if best is None or cand < best:
                best = cand
    if best is None:
        raise CompileError(f"no exact W_SLOTS split for {hw}")
    return best[1:]


def w_slots(hw: HwConfig, rng) -> QModel:
    n_in, h, o = _slot_split(hw)
    layers = (_fc(rng, n_in, h, 0.0, name="fc0", dense_channel=True), _fc(rng, h, o, 0.0, last=True, name="out"))
    return QModel((n_in, 1, 1), layers, name="w_slots", meta={"dense": True})


def _act_total(model: QModel, hw: HwConfig) -> tuple[int, bool]:
    regs, clears = plan_regions(model, hw)
    return max(r.base + r.size for r in regs.values()), any(clears.values())


def _act_model(hw: HwConfig, rng, h: int, deep: bool) -> QModel:
    layers = [_conv(rng, 1, 2, 3, 0.2, name="conv0")]
    c = 2
    if deep:
        layers.append(_conv(rng, 2, 2, 3, 0.5, name="conv1"))
        layers.append(_conv(rng, 2, 1, 3, 0.5, name="conv2"))
        c = 1
    layers.append(_conv(rng, c, 2, 3, 0.5, pool=True, name="convp"))
    n_in = 2 * (h // 2) * (h // 2)
    layers.append(_fc(rng, n_in, 4, 0.999, last=True, name="out"))
    return QModel((1, h, h), tuple(layers), name="act_pingpong" if deep else "act_disjoint")


def act_bytes(hw: HwConfig, rng, pingpong: bool) -> QModel:
    """The largest square input whose maps fit, disjoint or (``pingpong``) ping-ponged."""
    def fits(h: int) -> bool:
        try:
            _, clears = _act_total(_act_model(hw, np.random.default_rng(0), h, pingpong), hw)
        except CompileError:
            return False
        return pingpong or not clears

    best = None
    lo, hi = 4, 256
    while lo <= hi:  # the activation use grows with the map size
        h = (lo + hi) // 2
        if fits(h):
            best, lo = h, h + 1
        else:
            hi = h - 1
    if best is None:
        raise CompileError("no activation-limit model fits")
    return _act_model(hw, rng, best, pingpong)


def acc_extremes(hw: HwConfig, rng) -> QModel:
    """conv → FC (saturating / vanishing requantisation) → FC at the accumulator bound."""
    conv = _conv(rng, 1, 4, 3, 0.0, name="conv0", relu=False)
    conv = QLayer("conv", conv.weight, conv.bias, np.array([65535, 65535, 1, 40000], np.int64),
                  np.array([1, 47, 47, 20], np.int64), padding=1, relu=False, name="conv0")
    n = 4 * 4 * 4
    w = np.full((6, n), -128, np.int8)
    w[1] = 127
    w[2, ::2] = 0
    w[3] = rng.integers(-128, 128, n)
    w[4] = 0
    w[5, 0] = -128
    room = (1 << 31) - 1 - np.abs(w.astype(np.int64)).sum(axis=1) * 128
    bias = np.array([room[0], -room[1], room[2], 0, room[4], -room[5]], np.int64).astype(np.int32)
    fc = QLayer("fc", w, bias, np.array([65535, 1, 65535, 3, 1, 65535], np.int64),
                np.array([1, 47, 2, 5, 1, 1], np.int64), relu=False, name="fc0")
    w2 = np.full((4, 6), -128, np.int8)
    w2[1] = 127
    w2[2] = [-128, 127, 0, 0, 1, -1]
    w2[3] = 0
    room2 = (1 << 31) - 1 - np.abs(w2.astype(np.int64)).sum(axis=1) * 128
    bias2 = np.array([room2[0], -room2[1], 0, -(1 << 31) + 1], np.int64).astype(np.int32)
    out = QLayer("fc", w2, bias2, np.ones(4, np.int64), np.full(4, SHIFT_MIN, np.int64), name="out")
    return QModel((1, 4, 4), (conv, fc, out), name="acc_extremes")


def acc_bound(hw: HwConfig, rng) -> QModel:
    """One FC layer on the image: all -128 weights with the largest bias reach exactly
    2**31 - 1 on an all -128 image."""
    n = 16
    w = np.full((4, n), -128, np.int8)
    w[1] = 127
    w[2] = rng.integers(-128, 128, n)
    w[3, ::3] = -128
    room = (1 << 31) - 1 - np.abs(w.astype(np.int64)).sum(axis=1) * 128
    bias = np.array([room[0], -room[1], room[2], -room[3]], np.int64).astype(np.int32)
    out = QLayer("fc", w, bias, np.ones(4, np.int64), np.full(4, SHIFT_MIN, np.int64), name="out")
    return QModel((1, 4, 4), (out,), name="acc_bound")


def sparsity_model(hw: HwConfig, rng, sparsity: float) -> QModel:
    m = randnet.random_qmodel(rng, input_shape=(2, 8, 8), n_conv=2, n_hidden_fc=1, sparsity=sparsity,
                              zero_channel=True, dense_channel=True, saturate=bool(rng.random() < 0.3))
    return QModel(m.input_shape, m.layers, name=f"sparsity_{sparsity:g}")


def fixed_models(hw: HwConfig, rng) -> list[tuple[str, QModel, bool]]:
    """(name, model, dense) of every fixed limit network that fits ``hw`` (a limit that
    cannot be reached with the others, e.g. CH_CAP rows that need more than W_SLOTS
    slots, is left out)."""
    builders = [
        ("max_layers", lambda: max_layers(hw, rng), False),
        ("ch_cap", lambda: ch_cap(hw, rng), False),
        ("out_cap", lambda: out_cap(hw, rng), False),
        ("w_slots", lambda: w_slots(hw, rng), True),
        ("act_disjoint", lambda: act_bytes(hw, rng, False), False),
        ("act_pingpong", lambda: act_bytes(hw, rng, True), False),
        ("acc_extremes", lambda: acc_extremes(hw, rng), False),
        ("acc_bound", lambda: acc_bound(hw, rng), False),
    ] + [(f"sparsity_{s:g}", lambda s=s: sparsity_model(hw, rng, s), s == 0.0) for s in (0.0, 0.5, 0.9, 0.99, 0.999)]
    out = []
    for name, build, dense in builders:
        try:
            model = build()
            compile_limit(model, hw, dense)
        except CompileError:
            continue
        out.append((name, model, dense))
    return out


LIMITS = ("layers", "channels", "outputs", "slots", "act", "sparse")


def random_limit_model(hw: HwConfig, rng, limit: str | None = None) -> tuple[str, QModel, bool]:
    """A random network close to one limit (``limit`` or a random one of :data:`LIMITS`);
    (description, model, dense)."""
    limit = limit or str(rng.choice(LIMITS))
    sp = float(rng.choice([0.0, 0.3, 0.6, 0.9, 0.99, 0.999]))
    flags = {"zero_channel": bool(rng.random() < 0.5), "dense_channel": bool(rng.random() < 0.5)}
    sat = bool(rng.random() < 0.3)
    if limit == "layers":
        n = int(rng.integers(max(2, hw.max_layers - 2), hw.max_layers + 1))
        n_conv = int(rng.integers(1, min(3, n - 1) + 1))
        m = randnet.random_qmodel(rng, input_shape=(1, int(rng.integers(4, 9)), int(rng.integers(4, 9))),
                                  n_conv=n_conv, n_hidden_fc=0, sparsity=sp, saturate=sat, **flags)
        layers = list(m.layers[:-1])
        n_in = int(np.prod(m.shapes()[len(layers)]))
        for i in range(n - len(layers) - 1):
            k = int(rng.integers(1, 9))
            layers.append(_fc(rng, n_in, k, sp, name=f"fc{i}", saturate=sat, relu=bool(rng.random() < 0.7), **flags))
            n_in = k
        layers.append(_fc(rng, n_in, int(rng.integers(1, 11)), sp, last=True, name="out"))
        model = QModel(m.input_shape, tuple(layers), name="rand_layers")
    elif limit == "channels":
        total = int(rng.integers(int(0.8 * hw.ch_cap), hw.ch_cap + 1))
        c_out = int(rng.integers(1, min(hw.out_cap, total // 2) + 1))
        a = int(rng.integers(1, 9))
        b = max(1, total - c_out - a)
        k = int(rng.choice([1, 3]))
        layers = (_conv(rng, 1, a, k, min(sp, 0.5), name="conv0", saturate=sat),
                  _fc(rng, a * 16, b, max(sp, 0.9), name="fc0", saturate=sat, **flags),
                  _fc(rng, b, c_out, max(sp, 0.9), last=True, name="out"))
        model = QModel((1, 4, 4), layers, name="rand_channels")
    elif limit == "outputs":
        n_out = int(rng.integers(max(1, hw.out_cap - 8), hw.out_cap + 1))
        m = randnet.random_qmodel(rng, n_hidden_fc=0, sparsity=sp, saturate=sat, **flags)
        n_in = int(np.prod(m.shapes()[-2]))
        layers = m.layers[:-1] + (_fc(rng, n_in, n_out, max(sp, 0.5), last=True, name="out", **flags),)
        model = QModel(m.input_shape, layers, name="rand_outputs")
    elif limit == "slots":
        n_in, h, o = _slot_split(hw)
        frac = float(rng.uniform(0.85, 1.0))
        h2 = max(hw.lanes, int(h * frac) // hw.lanes * hw.lanes)
        layers = (_fc(rng, n_in, h2, 0.0, name="fc0", saturate=sat, dense_channel=True),
                  _fc(rng, h2, o, 0.0, last=True, name="out"))
        return "slots", QModel((n_in, 1, 1), layers, name="rand_slots"), True
    elif limit == "act":
        model = act_bytes(hw, rng, bool(rng.random() < 0.5))
    else:
        model = randnet.random_qmodel(rng, sparsity=sp, saturate=sat, **flags)
    return limit, model, bool(rng.random() < 0.2) and limit not in ("channels",)


def compile_limit(model: QModel, hw: HwConfig, dense: bool):
    """compile_model, falling back to the sparse encoding when the dense one does not fit."""
    try:
        return compile_model(model, hw, dense=dense)
    except CompileError:
        if not dense:
            raise
        return compile_model(model, hw, dense=False)


def limit_inputs(rng, model: QModel, n: int) -> np.ndarray:
    """``n`` int8 images: random, then all -128 and all 127 (when n allows)."""
    x = randnet.random_input(rng, model, n)
    if n >= 2:
        x[0] = -128
        x[1] = 127
    return x
