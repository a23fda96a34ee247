"""Networks, programs and images the ``zeroskip_top`` benches share (numpy and the host
compiler; no cocotb): TinyCNN-shaped models, packed image beats, a program with a bank
conflict, the pool of valid programs the robustness benches start from, and field access
in stream beats."""

from __future__ import annotations

import random

import numpy as np
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import pack_image_beats, predict_cycles
from zeroskip.driver.program import F_OUT, ChannelRec, HwConfig, LayerDesc, LayerProgram, Program
from zeroskip.host.compiler.lowering import CompileError, compile_model, input_layout
from zeroskip.host.quant import randnet
from zeroskip.host.quant.qmodel import QLayer, QModel


def tiny_cnn_like(rng: np.random.Generator, sparsity: float = 0.7) -> QModel:
    """TinyCNN's shape (conv3x3 8 + pool, conv3x3 16 + pool, FC 2) with random weights."""
    layers = []
    c = 1
    for i, c_out in enumerate((8, 16)):
        w = randnet._weights(rng, (c_out, c, 3, 3), sparsity, False, False)
        bias, mult, shift = randnet._requant(rng, w, False)
        layers.append(QLayer("conv", w, bias, mult, shift, padding=1, relu=True, pool=True, name=f"conv{i}"))
        c = c_out
    w = randnet._weights(rng, (2, 16 * 4 * 4), sparsity, False, False)
    bias, _, _ = randnet._requant(rng, w, False)
    layers.append(QLayer("fc", w, bias, np.ones(2, np.int64), np.ones(2, np.int64), name="fc"))
    return QModel(input_shape=(1, 16, 16), layers=tuple(layers), name="tiny_like")


def images(rng: np.random.Generator, model: QModel, n: int) -> np.ndarray:
    """Packed image beats for ``n`` random inputs."""
    x = randnet.random_input(rng, model, n)
    lay = input_layout(model)
    packed = pack_inputs(x, lay.to_dict())
    return pack_image_beats(packed, lay.in_bytes)


def conflict_program(hw) -> Program:
    """A one-layer FC program whose first group puts two non-zero weights in one bank."""
    L = hw.lanes
    lq = L.bit_length() - 1
    n_in = 4 * L
    desc = LayerDesc(flags=F_OUT, p_log2=0, q_log2=lq, tb=0, c_out=2, h_it=1, n_xt=1, w_valid=1,
                     in_ch_stride=1, in_base=0, in_row_stride=0, out_base=0, out_row_stride=0,
                     out_ch_stride=0)
    # row 0: k = 0 and k = L (same bank, other address), then a group end; row 1: k = 1
    steps = [14] * ((L - 1) // 14) + [L - 14 * ((L - 1) // 14)]   # index steps of at most 14
    codes0 = [0] + steps + [15]
    wts0 = [3] + [0] * (len(steps) - 1) + [5, 0]
    codes = np.array(codes0 + [1, 15], np.uint8)
    wts = np.array(wts0 + [7, 0], np.int8)
    chans = (ChannelRec(bias=10, mult=1, shift=1, n_groups=1), ChannelRec(bias=-3, mult=1, shift=1, n_groups=1))
    lp = LayerProgram(desc=desc, channels=chans, codes=codes, weights=wts)
    return Program(lanes=L, in_base=0, in_bytes=n_in, n_out=2, layers=(lp,), act_log2=(n_in - 1).bit_length())


def build_pool(hw: HwConfig, r: random.Random, rng: np.random.Generator, n_random: int = 4) -> list:
    """(name, model, program) of the valid programs the cases start from."""
    pool = []
    m = tiny_cnn_like(rng, 0.8)
    pool.append(("tiny", m, compile_model(m, hw)))
    tries = 0
    while len(pool) < 1 + n_random and tries < 50:
        tries += 1
        model = randnet.random_qmodel(rng, zero_channel=r.random() < 0.3, dense_channel=r.random() < 0.3,
                                      saturate=r.random() < 0.2)
        try:
            prog = compile_model(model, hw, dense=r.random() < 0.3)
        except CompileError:
            continue
        if prog.n_beats() > 1500 or predict_cycles(prog, 1) > 40_000:
            continue
        pool.append((f"net{len(pool)}", model, prog))
    return pool


def set_field(beats: np.ndarray, i: int, lo: int, bits: int, value: int) -> np.ndarray:
    b = beats.copy()
    mask = ((1 << bits) - 1) << lo
    b[i] = np.uint64((int(b[i]) & ~mask) | ((int(value) << lo) & mask))
    return b


def get_field(beats: np.ndarray, i: int, lo: int, bits: int) -> int:
    return (int(beats[i]) >> lo) & ((1 << bits) - 1)
