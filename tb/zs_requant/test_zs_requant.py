"""cocotb bench of ``zs_requant``: (acc * M + 2^(S-1)) >> S, ReLU, int8 clamp for random
and extreme accumulators, multipliers and every shift 1..47, back to back."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from zeroskip.tb.common import builds
from zeroskip.tb.common.zstb import sim_params

pytestmark = pytest.mark.rtl


def requant(acc: int, m: int, s: int, relu: bool) -> int:
    y = (acc * m + (1 << (s - 1))) >> s
    if relu:
        y = max(y, 0)
    return min(max(y, -128), 127)


@cocotb.test()
async def test_requant(dut):
    N = sim_params()["N"]
    rng = random.Random(5)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_acc.value = 0
    dut.in_m.value = 0
    dut.in_s.value = 1
    dut.in_relu.value = 0
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    stim = []
    for i in range(600):
        s = (i % 47) + 1 if i < 470 else rng.randint(1, 47)
        m = rng.choice([0, 1, 0xFFFF, rng.randint(0, 0xFFFF)])
        relu = rng.random() < 0.5
        accs = []
        for _ in range(N):
            scale = rng.randint(0, 31)
            accs.append(rng.choice([-(1 << 31), (1 << 31) - 1, 0, rng.randint(-(1 << scale), 1 << scale)]))
        stim.append((accs, m, s, relu) if rng.random() < 0.9 else None)
    want = [[requant(a, m, s, relu) for a in accs] for accs, m, s, relu in (x for x in stim if x)]
    got = []
    for item in stim + [None] * 5:
        await FallingEdge(dut.clk)
        if int(dut.out_valid.value):
            v = int(dut.out_y.value)
            got.append([((v >> (8 * n)) & 0xFF) - (256 if (v >> (8 * n)) & 0x80 else 0) for n in range(N)])
        if item is None:
            dut.in_valid.value = 0
            continue
        accs, m, s, relu = item
        dut.in_valid.value = 1
        dut.in_acc.value = sum((a & 0xFFFFFFFF) << (32 * n) for n, a in enumerate(accs))
        dut.in_m.value = m
        dut.in_s.value = s
        dut.in_relu.value = int(relu)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"item {k}: {g} != {w}"


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-requant", "icarus-requant")])
def test_zs_requant(build, tmp_path):
    builds.run(build, __file__, tmp_path)
