"""cocotb bench of ``sparse_weight_store``: the ``$readmemh`` image (a bundle's
weight_store.hex, one LANES x 24-bit word per line) reads back word for word, then
writes and registered reads behave as a simple dual-port RAM.

The hex file is the build's ``INIT_FILE`` parameter (the build table generates it:
:func:`zeroskip.tb.common.builds.weight_store_hex`)."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from zeroskip.tb.common import builds
from zeroskip.tb.common.zstb import sim_params

pytestmark = pytest.mark.rtl


def read_hex(path: str) -> list[int]:
    return [int(ln, 16) for ln in open(path).read().split()]


@cocotb.test()
async def test_init_and_rw(dut):
    Clock(dut.clk, 10, unit="ns").start()
    words = read_hex(sim_params()["INIT_FILE"].strip('"'))
    width = len(dut.wr_data)
    dut.wr_en.value = 0
    dut.rd_en.value = 0
    dut.wr_addr.value = 0
    dut.wr_data.value = 0
    dut.rd_addr.value = 0
    # read back the image: address in one cycle, data registered in the next
    got = []
    for a in range(len(words) + 1):
        await FallingEdge(dut.clk)
        if a:
            got.append(int(dut.rd_data.value))
        if a < len(words):
            dut.rd_en.value = 1
            dut.rd_addr.value = a
    assert got == words, "weight store image differs from the hex file"
    # writes, then read-back; rd_en low holds the output
    rng = random.Random(3)
    n = sim_params()["DEPTH"]
    shadow = {}
    for _ in range(40):
        await FallingEdge(dut.clk)
        a = rng.randrange(n)
        v = rng.getrandbits(width)
        dut.wr_en.value = (1 << len(dut.wr_en)) - 1   # every entry of the word
        dut.wr_addr.value = a
        dut.wr_data.value = v
        dut.rd_en.value = 0
        shadow[a] = v
    # a single-entry write leaves the word's other entries alone
    await FallingEdge(dut.clk)
    a = next(iter(shadow))
    dut.wr_en.value = 1 << 2
    dut.wr_addr.value = a
    dut.wr_data.value = (1 << width) - 1
    shadow[a] = shadow[a] | (((1 << 24) - 1) << 48)
    await FallingEdge(dut.clk)
    dut.wr_en.value = 0
    for a, v in shadow.items():
        dut.rd_en.value = 1
        dut.rd_addr.value = a
        await FallingEdge(dut.clk)
        dut.rd_en.value = 0
        dut.rd_addr.value = (a + 1) % n
        assert int(dut.rd_data.value) == v
        await FallingEdge(dut.clk)
        assert int(dut.rd_data.value) == v, "rd_en low must hold the read data"


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-ws", "icarus-ws")])
def test_sparse_weight_store(build, tmp_path):
    builds.run(build, __file__, tmp_path)
