"""cocotb bench of ``sparse_dot_product``: the P x Q lane array, the segmented adder tree
and the P row accumulators, for every tile shape of the build's LANES, with valid
bubbles, rows of 1..n groups and extreme operands."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from zeroskip.tb.common import builds
from zeroskip.tb.common.zstb import sim_params

pytestmark = pytest.mark.rtl


def s8(v: int) -> int:
    return v - 256 if v & 0x80 else v


def pack(vals, bits):
    out = 0
    for i, v in enumerate(vals):
        out |= (v & ((1 << bits) - 1)) << (bits * i)
    return out


@cocotb.test()
async def test_tiles(dut):
    L = sim_params()["LANES"]
    log2l = L.bit_length() - 1
    rng = random.Random(11)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_first.value = 0
    dut.in_last.value = 0
    dut.in_bias.value = 0
    dut.in_a.value = 0
    dut.in_w.value = 0
    dut.cfg_log2q.value = 0
    dut.cfg_maxred.value = 0
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    for rep in range(3):
        for k in range(log2l + 1):
            Q = 1 << k
            P = L // Q
            dut.cfg_log2q.value = k
            want = []
            stim = []
            for _ in range(rng.randint(5, 25)):
                bias = rng.randint(-(1 << 31), (1 << 31) - 1) if rng.random() < 0.2 else rng.randint(-5000, 5000)
                acc = [bias] * P
                n = rng.choice([1, 1, 2, 3, rng.randint(1, 9)])
                for g in range(n):
                    while rng.random() < 0.2:
                        stim.append(None)
                    a = [rng.choice([0x80, 0x7F, 0, rng.randint(0, 255)]) for _ in range(L)]
                    w = [rng.choice([0x80, 0x7F, 0, rng.randint(0, 255)]) for _ in range(L)]
                    if rng.random() < 0.05:   # the largest group sum: every product (-128)^2
                        a = w = [0x80] * L
                    for p in range(P):
                        acc[p] += sum(s8(a[p * Q + q]) * s8(w[p * Q + q]) for q in range(Q))
                    stim.append((int(g == 0), int(g == n - 1), bias, a, w))
                want.append([((v + (1 << 31)) % (1 << 32)) - (1 << 31) for v in acc])
            got = []
            for item in stim + [None] * 8:
                await FallingEdge(dut.clk)
                if int(dut.out_valid.value):
                    v = int(dut.out_acc.value)
                    got.append([((v >> (32 * p)) & 0xFFFFFFFF) for p in range(P)])
                if item is None:
                    dut.in_valid.value = 0
                    continue
                f, last, bias, a, w = item
                dut.in_valid.value = 1
                dut.in_first.value = f
                dut.in_last.value = last
                dut.in_bias.value = bias & 0xFFFFFFFF
                dut.in_a.value = pack(a, 8)
                dut.in_w.value = pack(w, 8)
            got = [[x - (1 << 32) if x & (1 << 31) else x for x in row] for row in got]
            assert got == want, f"LANES={L} Q={Q}: accumulators differ"


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-dot-L4", "verilator-dot-L8",
                                                             "verilator-dot-L16", "icarus-dot-L8",
                                                             "icarus-dot-L32")])
def test_sparse_dot_product(build, tmp_path):
    builds.run(build, __file__, tmp_path)
