"""Shared cocotb testbench pieces for ``zeroskip_top``: the TB class (clock, reset,
AXI-Lite master, AXI-Stream source and sink, idle/backpressure generators) and command
helpers that mirror the driver (LOAD, RUN, counters).

Simulation parameters reach the test through ``ZEROSKIP_SIM_PARAMS`` (set by
:func:`zeroskip.driver.sim.build.run`); :func:`hw_config` turns them into the
:class:`~zeroskip.driver.program.HwConfig` the compiler and the golden model use.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from zeroskip.driver import contract as C
from zeroskip.driver.program import HwConfig

REG = C.REG
CTRL = C.CTRL
STATUS = C.STATUS
E = C.ERROR_CODES


def sim_params() -> dict:
    out = {}
    for k, v in json.loads(os.environ.get("ZEROSKIP_SIM_PARAMS", "{}")).items():
        try:
            out[k] = int(v)
        except (TypeError, ValueError):  # string parameters such as INIT_FILE
            out[k] = v
    return out


def hw_config() -> HwConfig:
    p = sim_params()
    d = dict(C.DEFAULTS)
    d.update({k: v for k, v in p.items() if k in d})
    return HwConfig(lanes=d["LANES"], act_bytes=d["ACT_BYTES"], w_slots=d["W_SLOTS"], ch_cap=d["CH_CAP"],
                    out_cap=d["OUT_CAP"], max_layers=d["MAX_LAYERS"], site_cap=d["SITE_CAP"])


def beats_to_bytes(beats) -> bytes:
    return np.asarray(beats, dtype=np.uint64).astype("<u8").tobytes()


def bytes_to_beats(data: bytes) -> np.ndarray:
    if len(data) % 8:
        raise AssertionError(f"response of {len(data)} bytes is not whole beats")
    return np.frombuffer(bytes(data), dtype="<u8").astype(np.uint64)


def random_pauses(rng: random.Random, p: float):
    """Pause generator: True (pause) with probability ``p``, in short bursts."""
    while True:
        if rng.random() < p:
            for _ in range(rng.randint(1, 6)):
                yield True
        else:
            yield False


class TB:
    def __init__(self, dut, *, clock_ns: int = 10):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        self.hw = hw_config()
        self.params = sim_params()
        self.clock = Clock(dut.aclk, clock_ns, unit="ns")
        self.clock.start()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_ctrl"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                                      reset_active_level=False)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        for port in ("s_axi_ctrl", "s_axis", "m_axis"):  # one line per transaction is too much
            logging.getLogger(f"cocotb.{dut._name}.{port}").setLevel(logging.WARNING)

    def set_idle(self, gen=None):
        self.source.set_pause_generator(gen)
        if gen is None:
            self.source.pause = False

    def set_backpressure(self, gen=None):
        self.sink.set_pause_generator(gen)
        if gen is None:
            self.sink.pause = False

    def random_flow(self, rng: random.Random, p_idle: float = 0.3, p_bp: float = 0.3):
        self.set_idle(random_pauses(rng, p_idle) if p_idle else None)
        self.set_backpressure(random_pauses(rng, p_bp) if p_bp else None)

    def steady_flow(self):
        self.set_idle(None)
        self.set_backpressure(None)

    async def reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 4)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 2)

    # -- registers --------------------------------------------------------------------
    async def write(self, name: str, value: int):
        await self.axil.write_dword(REG[name], int(value) & 0xFFFFFFFF)

    async def read(self, name: str) -> int:
        return int(await self.axil.read_dword(REG[name]))

    async def counters(self) -> dict:
        return {k: await self.read(k) for k in ("CYCLES", "STALL", "COMPUTE", "MACS")}

    async def status(self) -> dict:
        s = await self.read("STATUS")
        return {"busy": s & 1, "done": (s >> 1) & 1, "error": (s >> 2) & 1, "valid": (s >> 3) & 1,
                "code": (s >> 8) & 0xFF, "state": (s >> 16) & 0xF}

    async def wait_idle(self, timeout_cycles: int = 200000):
        for _ in range(timeout_cycles // 100):
            if not (await self.status())["busy"]:
                return
            await ClockCycles(self.dut.aclk, 100)
        raise AssertionError("engine still busy")

    # -- stream commands --------------------------------------------------------------
    async def recv(self, timeout_us: float = 20000) -> np.ndarray:
        frame = await with_timeout(self.sink.recv(), timeout_us, "us")
        return bytes_to_beats(frame.tdata)

    async def send(self, beats):
        await self.source.send(AxiStreamFrame(beats_to_bytes(beats)))

    async def load(self, beats, timeout_us: float = 20000) -> np.ndarray:
        await self.write("CTRL", CTRL["LOAD"])
        await self.send(beats)
        return await self.recv(timeout_us)

    async def run(self, beats, batch: int, timeout_us: float = 50000) -> np.ndarray:
        await self.write("BATCH", batch)
        await self.write("CTRL", CTRL["RUN"])
        await self.send(beats)
        return await self.recv(timeout_us)

    async def idle_cycles(self, n: int):
        await ClockCycles(self.dut.aclk, n)

    async def edge(self):
        await RisingEdge(self.dut.aclk)


def chunks(seq, n):
    it = iter(seq)
    while True:
        part = list(itertools.islice(it, n))
        if not part:
            return
        yield part
