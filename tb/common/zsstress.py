"""Cycle-level stream drivers and monitors for the robustness benches of ``zeroskip_top``
(test_stream_fuzz.py, test_axi_stress.py, test_rtl_limits.py in tb/zeroskip_top/).

Unlike :class:`zeroskip.tb.common.zstb.TB` (cocotbext-axi frames), :class:`StreamBench` drives
``s_axis`` and ``m_axis_tready`` itself, one decision per clock edge, so a bench can

* put TLAST on any beat (packets that end early, or carry a second packet right behind);
* pause the input and the output with any pattern (``Flow``: steady, light, heavy
  backpressure, long idle gaps);
* see every handshake with its cycle number: nothing is lost or merged, also when a
  ``SOFT_RESET`` abandons an output packet without TLAST;
* measure when the engine returns to idle (``engine_inst.state_reg``) relative to the
  last input beat, minus the cycles the output was held by backpressure.

AXI4-Lite goes through cocotbext-axi's ``AxiLiteMaster``, which accepts concurrent
reads and writes from several coroutines.

Every command helper compares nothing by itself; :class:`Oracle` runs the golden model
next to the RTL and checks response beats, STATUS, ERR_INFO and the counters.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster
from zeroskip.driver import contract as C
from zeroskip.driver.golden import GoldenEngine, parse_response, response_beat
from zeroskip.driver.program import HwConfig
from zeroskip.tb.common.zstb import hw_config, sim_params

REG = C.REG
CTRL = C.CTRL
E = C.ERROR_CODES
S_IDLE = 0

# The loader judges a weight block after decoding it: up to 16 entries, one per cycle.
BLOCK_DECODE = C.PROGRAM["block_entries"]


# ----------------------------------------------------------------------------- flow

class Flow:
    """A named pause pattern: ``next()`` says whether to pause this cycle.

    ``p`` is the chance that a burst of pause cycles starts, ``burst`` its longest
    length. ``rare_long`` adds an occasional gap of up to ``rare_long`` cycles.
    """

    def __init__(self, rng: random.Random, name: str = "steady", p: float = 0.0, burst: int = 1,
                 rare_long: int = 0):
        self.rng, self.name, self.p, self.burst, self.rare_long = rng, name, p, burst, rare_long
        self._left = 0

    def __call__(self) -> bool:
        if self._left:
            self._left -= 1
            return True
        r = self.rng.random()
        if self.rare_long and r < 0.002:
            self._left = self.rng.randint(1, self.rare_long) - 1
            return True
        if self.p and r < self.p:
            self._left = self.rng.randint(1, self.burst) - 1
            return True
        return False


def flows(rng: random.Random) -> dict:
    """The patterns the benches pick from."""
    return {
        "steady": lambda: Flow(rng, "steady"),
        "light": lambda: Flow(rng, "light", 0.2, 4),
        "heavy": lambda: Flow(rng, "heavy", 0.6, 12),
        "stutter": lambda: Flow(rng, "stutter", 0.5, 1),
        "long_idle": lambda: Flow(rng, "long_idle", 0.05, 3, rare_long=400),
    }


def random_flow(rng: random.Random, allow_long: bool = True) -> Flow:
    table = flows(rng)
    names = [n for n in table if allow_long or n != "long_idle"]
    return table[rng.choice(names)]()


# ----------------------------------------------------------------------------- bench

@dataclass
class Beat:
    cycle: int
    data: int
    last: int
    m_stall: int = 0  # output stall cycles counted up to this beat


class StreamBench:
    """Clock, AXI-Lite master, cycle-level ``s_axis`` source, ``m_axis`` sink, monitors."""

    def __init__(self, dut, rng: random.Random, *, clock_ns: int = 10):
        self.dut = dut
        self.rng = rng
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        self.hw: HwConfig = hw_config()
        self.params = sim_params()
        Clock(dut.aclk, clock_ns, unit="ns").start()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_ctrl"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        logging.getLogger(f"cocotb.{dut._name}.s_axi_ctrl").setLevel(logging.WARNING)
        self.cycle = 0
        self.src_q: deque = deque()          # (data, last) waiting to be sent
        self.in_log: list[Beat] = []         # accepted input beats
        self.out_log: list[Beat] = []        # accepted output beats
        self.idle_log: list[tuple[int, int]] = []  # (cycle, m_stall) of every return to IDLE
        self.m_stall = 0
        self.consumed = 0                    # out_log beats accounted for by a command
        self.in_flow: Flow = Flow(rng)
        self.out_flow: Flow = Flow(rng)
        self.state = 0
        self.reset_log: list[tuple[int, int]] = []  # (cycle, state) of every SOFT_RESET pulse
        self.after_reset: list[int] = []             # state in the cycle after each pulse
        self.state_enter: dict[int, int] = {}        # state -> last cycle it was entered
        self.hold_until_ctrl = False                 # offer no input until a CTRL write lands
        self._s_valid = 0
        self._m_ready = 0
        self._state_sig = dut.engine_inst.state_reg
        dut.s_axis_tvalid.value = 0
        dut.s_axis_tdata.value = 0
        dut.s_axis_tlast.value = 0
        dut.s_axis_tkeep.value = 0xFF
        dut.m_axis_tready.value = 0

    # -- setup ------------------------------------------------------------------------
    async def reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 4)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 2)
        import cocotb

        cocotb.start_soon(self._run())
        await ClockCycles(self.dut.aclk, 2)

    def set_flow(self, in_flow: Flow | None = None, out_flow: Flow | None = None):
        self.in_flow = in_flow or Flow(self.rng)
        self.out_flow = out_flow or Flow(self.rng)

    def hold_output(self):
        """Keep m_axis_tready low until the next set_flow."""
        self.out_flow = Flow(self.rng, "hold", 1.0, 1)

    async def _run(self):
        dut = self.dut
        edge = RisingEdge(dut.aclk)
        s_tvalid, s_tdata, s_tlast = dut.s_axis_tvalid, dut.s_axis_tdata, dut.s_axis_tlast
        s_tready = dut.s_axis_tready
        m_tvalid, m_tdata, m_tlast, m_tready = dut.m_axis_tvalid, dut.m_axis_tdata, dut.m_axis_tlast, dut.m_axis_tready
        st = self._state_sig
        soft = dut.engine_inst.cmd_soft_reset
        ctrl_wr = dut.regs_inst.ctrl_wr
        while True:
            await edge
            self.cycle += 1
            # handshakes of the edge that just happened (values before the edge)
            if self._s_valid and int(s_tready.value):
                data, last = self.src_q.popleft()
                self.in_log.append(Beat(self.cycle, data, last, self.m_stall))
                self._s_valid = 0
            if int(m_tvalid.value):
                if self._m_ready:
                    self.out_log.append(Beat(self.cycle, int(m_tdata.value), int(m_tlast.value), self.m_stall))
                else:
                    self.m_stall += 1
            s = int(st.value)
            if self.reset_log and self.reset_log[-1][0] == self.cycle - 1:
                self.after_reset.append(s)
            if int(soft.value):
                self.reset_log.append((self.cycle, s))
            if s != self.state:
                self.state_enter[s] = self.cycle
            if s == S_IDLE and self.state != S_IDLE:
                self.idle_log.append((self.cycle, self.m_stall))
            self.state = s
            # a CTRL write completed at this edge: its command pulse is the next cycle
            if self.hold_until_ctrl and int(ctrl_wr.value):
                self.hold_until_ctrl = False
            # drive the next cycle; a beat once offered stays until taken
            if self.hold_until_ctrl:
                pass
            elif not self._s_valid:
                if self.src_q and not self.in_flow():
                    data, last = self.src_q[0]
                    s_tdata.value = data
                    s_tlast.value = last
                    s_tvalid.value = 1
                    self._s_valid = 1
                else:
                    s_tvalid.value = 0
            ready = 0 if self.out_flow() else 1
            if ready != self._m_ready:
                m_tready.value = ready
                self._m_ready = ready

    # -- registers --------------------------------------------------------------------
    async def write(self, name: str, value: int):
        await self.axil.write_dword(REG[name], int(value) & 0xFFFFFFFF)

    async def read(self, name: str) -> int:
        return int(await self.axil.read_dword(REG[name]))

    async def status(self) -> dict:
        s = await self.read("STATUS")
        return {"busy": s & 1, "done": (s >> 1) & 1, "error": (s >> 2) & 1, "valid": (s >> 3) & 1,
                "code": (s >> 8) & 0xFF, "state": (s >> 16) & 0xF}

    async def counters(self) -> dict:
        return {k: await self.read(k) for k in ("CYCLES", "STALL", "COMPUTE", "MACS")}

    # -- streams ----------------------------------------------------------------------
    def send(self, beats, tlast=None):
        """Queue ``beats``; TLAST on the indices in ``tlast`` (default: the last beat)."""
        beats = [int(b) for b in np.asarray(beats, np.uint64)]
        marks = {len(beats) - 1} if tlast is None else set(tlast)
        for i, b in enumerate(beats):
            self.src_q.append((b, int(i in marks)))

    def flush_source(self) -> int:
        """Drop beats not yet offered; returns how many."""
        n = len(self.src_q) - self._s_valid
        keep = [self.src_q.popleft()] if self._s_valid else []
        self.src_q.clear()
        self.src_q.extend(keep)
        return n

    async def wait_sent(self, limit: int = 10_000_000):
        start = self.cycle
        while self.src_q:
            if self.cycle - start > limit:
                raise AssertionError(f"input not taken within {limit} cycles ({len(self.src_q)} beats left)")
            await ClockCycles(self.dut.aclk, 4)

    async def wait_packets(self, start: int, n: int, limit: int) -> list[list[Beat]]:
        """Wait for ``n`` output packets (ending with TLAST) after out_log[start]."""
        t0 = self.cycle
        while True:
            pk = split_packets(self.out_log[start:])
            if len(pk) >= n and pk[n - 1] and pk[n - 1][-1].last:
                return pk[:n]
            if self.cycle - t0 > limit:
                got = sum(len(p) for p in pk)
                raise AssertionError(f"no TLAST within {limit} cycles: {got} output beats, "
                                     f"state {self.state}, {len(self.src_q)} input beats unsent")
            await ClockCycles(self.dut.aclk, 4)

    async def wait_state(self, state: int, since: int, limit: int) -> bool:
        """Wait until ``state`` is entered at or after cycle ``since``."""
        t0 = self.cycle
        while self.state_enter.get(state, -1) < since:
            if self.cycle - t0 > limit:
                return False
            await ClockCycles(self.dut.aclk, 1)
        return True

    async def wait_idle_sampled(self, limit: int = 100_000):
        t0 = self.cycle
        while self.state != S_IDLE:
            if self.cycle - t0 > limit:
                raise AssertionError(f"engine still in state {self.state} after {limit} cycles")
            await ClockCycles(self.dut.aclk, 1)

    async def command(self, cmd: str | None, beats, *, tlast=None, batch: int | None = None,
                      packets: int = 1, limit: int = 2_000_000) -> tuple[list[list[Beat]], int]:
        """Issue ``cmd`` ("LOAD", "RUN" or None for stray data), send ``beats`` and wait for
        ``packets`` response packets. Returns (packets, index of the first input beat)."""
        await self.wait_idle_sampled()
        self.check_quiet()
        if batch is not None:
            await self.write("BATCH", batch)
        out0, in0 = len(self.out_log), len(self.in_log)
        if cmd is not None:
            await self.write("CTRL", CTRL[cmd])
        self.send(beats, tlast)
        pk = await self.wait_packets(out0, packets, limit)
        await self.wait_sent(limit)
        self.consumed = out0 + sum(len(p) for p in pk)
        return pk, in0

    def check_quiet(self):
        """No output beat came out that no command asked for (a duplicated or late
        response would show up here)."""
        extra = self.out_log[self.consumed:]
        assert not extra, (f"{len(extra)} output beat(s) nobody asked for: "
                           f"{fmt([b.data for b in extra])}, TLAST {[b.last for b in extra][:6]}")

    async def settle(self, cycles: int = 200):
        """End of a test: idle, and nothing more comes out."""
        await self.wait_idle_sampled()
        await ClockCycles(self.dut.aclk, cycles)
        self.check_quiet()

    def account(self):
        """All output so far was checked by the caller."""
        self.consumed = len(self.out_log)

    def recovery(self, in_from: int) -> tuple[int, int]:
        """(cycles from the last input beat since in_log[in_from] to the next return to idle,
        the same minus the output's backpressure cycles in between)."""
        last = self.in_log[-1]
        assert len(self.in_log) > in_from, "no input beat"
        idle = next(((c, s) for c, s in self.idle_log if c > last.cycle), None)
        assert idle is not None, "engine did not return to idle after the last input beat"
        return idle[0] - last.cycle, idle[0] - last.cycle - (idle[1] - last.m_stall)


def split_packets(beats: list[Beat]) -> list[list[Beat]]:
    out, cur = [], []
    for b in beats:
        cur.append(b)
        if b.last:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def data_of(packet: list[Beat]) -> np.ndarray:
    return np.array([b.data for b in packet], np.uint64)


# ----------------------------------------------------------------------------- oracle

def unexpected_beat() -> int:
    return response_beat(C.ERR_MAGIC, E["UNEXPECTED"], 0)


def fmt(beats) -> str:
    return "[" + ", ".join(f"0x{int(b):016X}" for b in list(beats)[:6]) + (" ..." if len(beats) > 6 else "") + "]"


def describe(beat: int) -> str:
    m, c, i = parse_response(beat)
    return f"(0x{m:08X}, {C.ERRORS.get(c, c)}, {i})"


class Oracle:
    """The golden model next to the RTL, with the checks every bench shares."""

    def __init__(self, sb: StreamBench):
        self.sb = sb
        self.g = GoldenEngine(sb.hw)

    async def check_status(self, what: str, code: int, info: int | None, valid: bool | None = None):
        st = await self.sb.status()
        assert not st["busy"] and st["done"], f"{what}: engine not idle/done: {st}"
        assert st["error"] == int(code != 0) and st["code"] == code, (
            f"{what}: STATUS {st}, expected code {C.ERRORS.get(code, code)}")
        if valid is not None:
            assert st["valid"] == int(valid), f"{what}: program-valid {st['valid']}, expected {int(valid)}"
        if code:
            got = await self.sb.read("ERR_INFO")
            assert got == info, f"{what}: ERR_INFO {got}, expected {info}"

    def compare(self, what: str, got: np.ndarray, want: np.ndarray):
        if got.size == want.size and np.array_equal(got, want):
            return
        i = next((k for k in range(min(got.size, want.size)) if got[k] != want[k]), min(got.size, want.size))
        extra = ""
        if got.size and want.size:
            extra = f"; last beats RTL {describe(got[-1])} golden {describe(want[-1])}"
        raise AssertionError(f"{what}: RTL answered {got.size} beats, golden {want.size}, first difference at "
                             f"{i}\n rtl    {fmt(got[i:])}\n golden {fmt(want[i:])}{extra}")

    async def counters(self, what: str, batch: int):
        cnt = await self.sb.counters()
        gc = self.g.counters
        net = cnt["CYCLES"] - cnt["STALL"]
        assert net == gc["CYCLES"], (
            f"{what}: CYCLES-STALL {cnt['CYCLES']}-{cnt['STALL']}={net}, golden {gc['CYCLES']}")
        assert cnt["COMPUTE"] == gc["COMPUTE"], f"{what}: COMPUTE {cnt['COMPUTE']}, golden {gc['COMPUTE']}"
        assert cnt["MACS"] == gc["MACS"], f"{what}: MACS {cnt['MACS']}, golden {gc['MACS']}"

    async def load(self, beats, *, what: str, tlast_at: int | None = None, rest_stray: bool = True):
        """LOAD ``beats`` with TLAST at ``tlast_at`` (default the last beat). Beats after
        ``tlast_at`` follow as a second packet, which the idle engine answers UNEXPECTED."""
        beats = np.asarray(beats, np.uint64)
        n = beats.size
        tl = n - 1 if tlast_at is None else int(tlast_at)
        marks = [tl] + ([n - 1] if tl < n - 1 else [])
        want = self.g.load(beats[: tl + 1])
        stray = tl < n - 1 and rest_stray
        pk, in0 = await self.sb.command("LOAD", beats if stray or tl == n - 1 else beats[: tl + 1],
                                        tlast=marks if stray else None, packets=2 if stray else 1)
        got = data_of(pk[0])
        self.compare(f"{what}: LOAD", got, want)
        _, code, info = parse_response(want[0])
        if stray:
            self.compare(f"{what}: data after TLAST", data_of(pk[1]), np.array([unexpected_beat()], np.uint64))
            self.g.status_error = E["UNEXPECTED"]
            await self.check_status(what, E["UNEXPECTED"], 0, valid=code == 0)
        else:
            await self.check_status(what, code, info, valid=code == 0)
        return code, info, in0

    async def run(self, beats, batch: int, *, what: str, tlast_at: int | None = None, rest_stray: bool = True,
                  check_counters: bool = True):
        beats = np.asarray(beats, np.uint64)
        n = beats.size
        tl = n - 1 if tlast_at is None else int(tlast_at)
        stray = tl < n - 1 and rest_stray
        want = self.g.run(beats[: tl + 1], batch)
        code = self.g.status_error
        pk, in0 = await self.sb.command("RUN", beats if stray else beats[: tl + 1],
                                        tlast=[tl, n - 1] if stray else None, batch=batch,
                                        packets=2 if stray else 1)
        got = data_of(pk[0])
        self.compare(f"{what}: RUN", got, want)
        info = parse_response(want[-1])[2] if code else None
        if stray:
            self.compare(f"{what}: data after TLAST", data_of(pk[1]), np.array([unexpected_beat()], np.uint64))
            self.g.status_error = E["UNEXPECTED"]
        if code == 0 and check_counters and not stray:
            await self.counters(what, batch)
        if stray:
            await self.check_status(what, E["UNEXPECTED"], 0, valid=self.g.program is not None)
        else:
            await self.check_status(what, code, info, valid=self.g.program is not None)
        return code, info, in0

    async def stray(self, beats, *, what: str):
        pk, in0 = await self.sb.command(None, beats)
        self.compare(f"{what}: stray packet", data_of(pk[0]), np.array([unexpected_beat()], np.uint64))
        self.g.status_error = E["UNEXPECTED"]
        await self.check_status(what, E["UNEXPECTED"], 0, valid=self.g.program is not None)
        return E["UNEXPECTED"], 0, in0


# ----------------------------------------------------------------------------- stats

@dataclass
class Stats:
    """Counts a bench reports to its pytest wrapper (``ZEROSKIP_FUZZ_STATS``)."""

    bench: str
    params: dict = field(default_factory=dict)
    cases: int = 0
    kinds: dict = field(default_factory=dict)       # kind -> {code name: count}
    recovery: dict = field(default_factory=dict)    # class -> max cycles (backpressure excluded)
    recovery_raw: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def case(self, kind: str, code: int, count: bool = True):
        self.cases += int(count)
        d = self.kinds.setdefault(kind, {})
        name = C.ERRORS.get(code, str(code))
        d[name] = d.get(name, 0) + 1

    def bound(self, cls: str, raw: int, net: int):
        self.recovery[cls] = max(self.recovery.get(cls, 0), net)
        self.recovery_raw[cls] = max(self.recovery_raw.get(cls, 0), raw)

    def add(self, key: str, n: int = 1):
        self.extra[key] = self.extra.get(key, 0) + n

    def write(self):
        path = os.environ.get("ZEROSKIP_FUZZ_STATS")
        if not path:
            return
        data = {}
        if os.path.exists(path):
            try:
                with open(path) as fh:
                    data = json.load(fh)
            except ValueError:
                data = {}
        data[self.bench] = {"params": self.params, "cases": self.cases, "kinds": self.kinds,
                            "recovery": self.recovery, "recovery_raw": self.recovery_raw, "extra": self.extra}
        with open(path, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)

