"""The ``zeroskip_top`` benches' checker: every command goes to the RTL (through
:class:`~zeroskip.tb.common.zstb.TB`) and to :class:`~zeroskip.driver.golden.GoldenEngine`,
and the answers, STATUS, ERR_INFO and counters must agree."""

from __future__ import annotations

import random

import numpy as np
from zeroskip.driver import contract as C
from zeroskip.driver.golden import GoldenEngine, pack_image_beats, parse_response
from zeroskip.driver.program import Program, encode_program
from zeroskip.host.quant.qmodel import QModel
from zeroskip.tb.common.programs import images
from zeroskip.tb.common.zstb import TB


class Checker:
    """Drives the RTL and the golden model with the same commands and compares."""

    def __init__(self, tb: TB):
        self.tb = tb
        self.g = GoldenEngine(tb.hw)
        self.log = tb.log

    async def load(self, beats, *, what: str = "program") -> np.ndarray:
        beats = np.asarray(beats, np.uint64)
        got = await self.tb.load(beats)
        want = self.g.load(beats)
        assert got.size == 1, f"{what}: LOAD answered {got.size} beats"
        gm, gc, gi = parse_response(got[0])
        wm, wc, wi = parse_response(want[0])
        assert (gm, gc, gi) == (wm, wc, wi), (
            f"{what}: LOAD response RTL (0x{gm:08X}, {C.ERRORS.get(gc)}, {gi}) golden "
            f"(0x{wm:08X}, {C.ERRORS.get(wc)}, {wi})")
        st = await self.tb.status()
        assert not st["busy"] and st["done"], f"{what}: engine not idle/done after LOAD: {st}"
        assert st["error"] == (wc != 0) and st["code"] == wc, f"{what}: STATUS {st}, expected code {wc}"
        assert st["valid"] == (wc == 0), f"{what}: program-valid {st['valid']} after code {wc}"
        if wc:
            assert await self.tb.read("ERR_INFO") == wi, f"{what}: ERR_INFO"
        return got

    async def run(self, beats, batch: int, *, what: str = "run", check_cycles: bool = True) -> np.ndarray:
        beats = np.asarray(beats, np.uint64)
        got = await self.tb.run(beats, batch)
        want = self.g.run(beats, batch)
        assert got.size == want.size and np.array_equal(got, want), (
            f"{what}: RTL answered {got.size} beats, golden {want.size}; first difference at "
            f"{next((i for i in range(min(got.size, want.size)) if got[i] != want[i]), min(got.size, want.size))}"
            f"\n rtl    {[hex(int(x)) for x in got[:8]]}\n golden {[hex(int(x)) for x in want[:8]]}")
        st = await self.tb.status()
        assert not st["busy"] and st["done"], f"{what}: engine not idle after RUN: {st}"
        code = self.g.status_error
        assert st["error"] == (code != 0) and st["code"] == code, f"{what}: STATUS {st}, golden code {code}"
        if code == 0 and check_cycles:
            cnt = await self.tb.counters()
            gc = self.g.counters
            assert cnt["CYCLES"] - cnt["STALL"] == gc["CYCLES"], (
                f"{what}: CYCLES-STALL {cnt['CYCLES']}-{cnt['STALL']}={cnt['CYCLES'] - cnt['STALL']}, "
                f"golden {gc['CYCLES']}")
            assert cnt["COMPUTE"] == gc["COMPUTE"], f"{what}: COMPUTE {cnt['COMPUTE']} golden {gc['COMPUTE']}"
            assert cnt["MACS"] == gc["MACS"], f"{what}: MACS {cnt['MACS']} golden {gc['MACS']}"
        elif code:
            _, _, info = parse_response(want[-1])
            assert await self.tb.read("ERR_INFO") == info, f"{what}: ERR_INFO"
        return got

    async def program_and_run(self, prog: Program, rng: np.random.Generator, model: QModel | None,
                              batch: int, what: str):
        await self.load(encode_program(prog), what=what)
        if model is not None:
            img = images(rng, model, batch)
        else:
            x = rng.integers(0, 256, size=(batch, prog.in_bytes), dtype=np.uint8)
            img = pack_image_beats(x, prog.in_bytes)
        await self.run(img, batch, what=what)


async def setup(dut, *, seed: int, flow: bool = True) -> tuple[TB, Checker, random.Random,
                                                                      np.random.Generator]:
    tb = TB(dut)
    await tb.reset()
    r = random.Random(seed)
    if flow:
        tb.random_flow(r)
    return tb, Checker(tb), r, np.random.default_rng(seed)
