"""cocotb bench of ``zero_skip_mac``: registered int8 x int8 products and the row
accumulator (load on the first entry, skip invalid entries, result after the last)."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from zeroskip.tb.common import builds

pytestmark = pytest.mark.rtl


def s8(v: int) -> int:
    return v - 256 if v & 0x80 else v


@cocotb.test()
async def test_mac_rows(dut):
    """Random rows with random gaps; products 2 cycles and sums 3 cycles after input."""
    Clock(dut.clk, 10, unit="ns").start()
    rng = random.Random(7)
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_clear.value = 0
    dut.in_last.value = 0
    dut.in_a.value = 0
    dut.in_w.value = 0
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    stim = []  # per cycle: (valid, clear, last, a, w)
    rows = []
    for _ in range(60):
        n = rng.randint(1, 12)
        total = 0
        for i in range(n):
            while rng.random() < 0.3:
                stim.append((0, rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 255), rng.randint(0, 255)))
            a = rng.choice([0, 0x80, 0x7F, rng.randint(0, 255)])
            w = rng.choice([0x80, 0x7F, 0xFF, rng.randint(0, 255)])
            total += s8(a) * s8(w)
            stim.append((1, int(i == 0), int(i == n - 1), a, w))
        rows.append(total)
    stim += [(0, 0, 0, 0, 0)] * 4

    prods = []
    accs = []
    for v, c, l, a, w in stim:
        await FallingEdge(dut.clk)
        dut.in_valid.value = v
        dut.in_clear.value = c
        dut.in_last.value = l
        dut.in_a.value = a
        dut.in_w.value = w
        if int(dut.prod_valid.value):
            prods.append(dut.prod.value.to_signed())
        if int(dut.acc_valid.value):
            accs.append(dut.acc.value.to_signed())
    want_prods = [s8(a) * s8(w) for v, _, _, a, w in stim if v]
    assert prods == want_prods
    assert accs == rows


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-mac", "icarus-mac")])
def test_zero_skip_mac(build, tmp_path):
    builds.run(build, __file__, tmp_path)
