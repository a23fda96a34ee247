"""cocotb bench of ``zs_regs``: the AXI4-Lite slave takes AW and W in either order and
back to back, holds B and R under backpressure, and implements the register map
(read-only config, BATCH, CTRL pulses, IRQ_EN / IRQ_STATUS write-1-to-clear, FAULT)."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadWrite
from zeroskip.driver import contract as C
from zeroskip.tb.common import builds
from zeroskip.tb.common.zstb import sim_params

pytestmark = pytest.mark.rtl

REG = C.REG


class Lite:
    """Cycle-level AXI-Lite driver (signals set on the falling edge)."""

    def __init__(self, dut):
        self.dut = dut
        self.pulses = {"cmd_load": 0, "cmd_run": 0, "cmd_soft_reset": 0}
        for s in ("awvalid", "wvalid", "arvalid"):
            getattr(dut, f"s_axi_{s}").value = 0
        dut.s_axi_bready.value = 1
        dut.s_axi_rready.value = 1
        dut.s_axi_awprot.value = 0
        dut.s_axi_arprot.value = 0
        dut.s_axi_wstrb.value = 0xF

    async def tick(self):
        await FallingEdge(self.dut.clk)
        self.cycle = getattr(self, "cycle", 0) + 1
        for k in self.pulses:
            self.pulses[k] += int(getattr(self.dut, k).value)

    async def write(self, addr, data, order="together", strb=0xF, gap=2):
        # valids are tracked here: a value written this time step does not read back yet;
        # every access starts on a falling edge
        d = self.dut
        await self.tick()
        d.s_axi_bready.value = 0  # hold the response until the address and data are in
        awv = wv = 0
        if order in ("together", "aw_first"):
            d.s_axi_awaddr.value = addr
            d.s_axi_awvalid.value = awv = 1
        if order in ("together", "w_first"):
            d.s_axi_wdata.value = data
            d.s_axi_wstrb.value = strb
            d.s_axi_wvalid.value = wv = 1
        aw_done = order == "w_first"
        w_done = order == "aw_first"
        pending_aw = order == "w_first"
        pending_w = order == "aw_first"
        cycles = 0
        while not (aw_done and w_done and not pending_aw and not pending_w):
            aw_hs = awv and int(d.s_axi_awready.value)
            w_hs = wv and int(d.s_axi_wready.value)
            await self.tick()
            cycles += 1
            if aw_hs:
                d.s_axi_awvalid.value = awv = 0
                aw_done = True
            if w_hs:
                d.s_axi_wvalid.value = wv = 0
                w_done = True
            if cycles == gap and pending_aw:
                d.s_axi_awaddr.value = addr
                d.s_axi_awvalid.value = awv = 1
                pending_aw = False
                aw_done = False
            if cycles == gap and pending_w:
                d.s_axi_wdata.value = data
                d.s_axi_wstrb.value = strb
                d.s_axi_wvalid.value = wv = 1
                pending_w = False
                w_done = False
            assert cycles < 50, "write handshake stuck"
        d.s_axi_bready.value = 1
        for _ in range(50):
            await self.dut_settle()
            if int(d.s_axi_bvalid.value):
                break
            await self.tick()
        else:
            raise AssertionError("write response never came")
        assert int(d.s_axi_bresp.value) == 0
        await self.tick()

    async def read(self, addr, rready_delay=0):
        d = self.dut
        await self.tick()
        d.s_axi_araddr.value = addr
        d.s_axi_arvalid.value = 1
        d.s_axi_rready.value = 0 if rready_delay else 1
        for _ in range(50):
            await self.dut_settle()
            hs = int(d.s_axi_arready.value)
            await self.tick()
            if hs:
                break
        else:
            raise AssertionError("read address never accepted")
        d.s_axi_arvalid.value = 0
        for _ in range(rready_delay):
            assert int(d.s_axi_rvalid.value)
            await self.tick()
        d.s_axi_rready.value = 1
        for _ in range(50):
            if int(d.s_axi_rvalid.value):
                break
            await self.tick()
        else:
            raise AssertionError("read data never came")
        v = int(d.s_axi_rdata.value)
        await self.tick()
        return v

    async def dut_settle(self):
        await ReadWrite()


@cocotb.test()
async def test_register_map(dut):
    p = sim_params()
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for s, v in (("st_busy", 1), ("st_done", 0), ("st_error", 1), ("st_prog_valid", 1), ("st_err_code", 0x0B),
                 ("st_state", 5), ("cnt_cycles", 111), ("cnt_stall", 22), ("cnt_compute", 33), ("cnt_macs", 44),
                 ("err_info", 0x1234), ("ev_done", 0), ("ev_error", 0)):
        getattr(dut, s).value = v
    lite = Lite(dut)
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    assert await lite.read(REG["ID"]) == C.ID_MAGIC
    assert await lite.read(REG["STATUS"]) == 1 | 4 | 8 | (0x0B << 8) | (5 << 16)
    assert await lite.read(REG["CYCLES"], rready_delay=3) == 111
    assert await lite.read(REG["MACS"]) == 44
    assert await lite.read(REG["ERR_INFO"]) == 0x1234
    assert await lite.read(REG["CONFIG0"]) == (p["LANES"] | (16 << 8) | (int(p.get("SITE_CAP", 64) > 0) << 16)
                                               | ((p.get("FAULT_INJECT", 0) & 1) << 17))
    assert await lite.read(REG["CONFIG3"]) == p.get("MAX_LAYERS", C.DEFAULTS["MAX_LAYERS"]) | (
        p.get("SITE_CAP", C.DEFAULTS["SITE_CAP"]) << 8)
    assert await lite.read(REG["CONFIG3"] + 4) == 0          # unmapped
    # AW/W in either order, with gaps
    for order in ("together", "aw_first", "w_first"):
        for gap in (1, 3):
            v = (0x100 + gap) if order == "together" else (0x200 + gap if order == "aw_first" else 0x300 + gap)
            await lite.write(REG["BATCH"], v, order, gap=gap)
            assert await lite.read(REG["BATCH"]) == v, order
    # byte strobes
    await lite.write(REG["BATCH"], 0xABCD, strb=0x2)
    assert await lite.read(REG["BATCH"]) == 0xAB00 | (0x303 & 0xFF)
    # read-only registers ignore writes
    await lite.write(REG["ID"], 0)
    assert await lite.read(REG["ID"]) == C.ID_MAGIC
    # CTRL bits are single-cycle pulses
    await lite.write(REG["CTRL"], C.CTRL["LOAD"] | C.CTRL["SOFT_RESET"])
    await lite.write(REG["CTRL"], C.CTRL["RUN"], order="w_first")
    await lite.tick()
    await lite.tick()
    assert lite.pulses == {"cmd_load": 1, "cmd_run": 1, "cmd_soft_reset": 1}, lite.pulses
    # IRQ: events set IRQ_STATUS, IRQ_EN gates irq, write 1 clears
    await lite.write(REG["IRQ_EN"], 2)
    dut.ev_done.value = 1
    dut.ev_error.value = 1
    await lite.tick()
    dut.ev_done.value = 0
    dut.ev_error.value = 0
    await lite.tick()
    assert await lite.read(REG["IRQ_STATUS"]) == 3
    assert int(dut.irq.value) == 1
    await lite.write(REG["IRQ_STATUS"], 2)
    assert await lite.read(REG["IRQ_STATUS"]) == 1
    assert int(dut.irq.value) == 0
    await lite.write(REG["FAULT"], 1)
    assert await lite.read(REG["FAULT"]) == (1 if p.get("FAULT_INJECT", 0) else 0)
    assert int(dut.fault_no_tlast.value) == (1 if p.get("FAULT_INJECT", 0) else 0)


@cocotb.test()
async def test_back_to_back_writes(dut):
    """With B accepted every cycle the slave completes a write per cycle; with B held
    off no write is lost."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    lite = Lite(dut)
    for s in ("st_busy", "st_done", "st_error", "st_prog_valid", "st_err_code", "st_state", "cnt_cycles",
              "cnt_stall", "cnt_compute", "cnt_macs", "err_info", "ev_done", "ev_error"):
        getattr(dut, s).value = 0
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    d = dut
    values = [5, 6, 7, 8]
    d.s_axi_bready.value = 0
    sent = 0
    accepted_aw = accepted_w = 0
    bcount = 0
    cycles = 0
    d.s_axi_awaddr.value = REG["BATCH"]
    d.s_axi_awvalid.value = awv = 1
    d.s_axi_wdata.value = values[0]
    d.s_axi_wvalid.value = wv = 1
    bready = 0
    while bcount < len(values):
        aw_hs = awv and int(d.s_axi_awready.value)
        w_hs = wv and int(d.s_axi_wready.value)
        b_hs = int(d.s_axi_bvalid.value) and bready
        await lite.tick()
        cycles += 1
        if b_hs:
            bcount += 1
        if aw_hs:
            accepted_aw += 1
            if accepted_aw == len(values):
                d.s_axi_awvalid.value = awv = 0
        if w_hs:
            accepted_w += 1
            if accepted_w == len(values):
                d.s_axi_wvalid.value = wv = 0
            else:
                d.s_axi_wdata.value = values[accepted_w]
        if cycles == 6:
            d.s_axi_bready.value = bready = 1
        assert cycles < 40
    sent = bcount
    assert sent == len(values)
    assert await lite.read(REG["BATCH"]) == values[-1]


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-regs", "icarus-regs")])
def test_zs_regs(build, tmp_path):
    builds.run(build, __file__, tmp_path)
