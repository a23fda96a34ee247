"""AXI stress of ``zeroskip_top``: flow control, concurrent register traffic, SOFT_RESET.

``test_flow_and_registers``
    LOAD and RUN of compiled networks under random valid/ready on both streams (steady,
    stutter, heavy backpressure, long idle gaps) while a second coroutine keeps the
    AXI4-Lite port busy: reads of STATUS, the counters, ERR_INFO, ID/CONFIG, and
    harmless writes (IRQ_EN, FAULT = 0, BATCH with its current value, IRQ_STATUS = 0), plus
    ``CTRL.LOAD`` / ``CTRL.RUN`` written while the engine is busy (which docs/hardware.md
    says are ignored). Results, ACK beats and counters must equal the golden model, every
    input beat is taken once, register reads stay consistent (busy ⇔ state ≠ 0, STALL and
    COMPUTE ≤ CYCLES, CYCLES never decreasing within a command) and IRQ_STATUS / the
    interrupt line follow IRQ_EN.

``test_soft_reset``
    SOFT_RESET at random cycles of a LOAD (loading, clearing, response) and of a RUN
    (input, layers, output latency, result output), under random flow. docs/hardware.md
    ("Command handling details"): the engine is idle at once, the packet in progress is
    abandoned on both streams (the output may stop without TLAST; input beats still
    arriving are stray data and get one UNEXPECTED answer), done/error/code clear,
    the counters stop, a valid program stays valid and a LOAD not yet acknowledged
    leaves none. Each trial checks exactly that and then runs the valid program
    bit-exact (without reloading it after a reset in a RUN).

``test_soft_reset_ack_race``
    SOFT_RESET in each cycle around the handshake of a LOAD's ACK beat: when the ACK
    is taken, the program is valid; when it is not, there is none.

Counts: ``ZEROSKIP_STRESS_ROUNDS`` (default 6) and ``ZEROSKIP_RESET_TRIALS`` (default 24).
"""

from __future__ import annotations

import copy
import os
import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles
from zeroskip.driver import contract as C
from zeroskip.driver.golden import image_timing, parse_response
from zeroskip.driver.program import encode_program
from zeroskip.tb.common import builds
from zeroskip.tb.common.programs import build_pool, images
from zeroskip.tb.common.zsstress import (
    CTRL,
    E,
    Flow,
    Oracle,
    Stats,
    StreamBench,
    data_of,
    flows,
    random_flow,
    unexpected_beat,
)

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("ZEROSKIP_TB_SEED", "7002"))
ROUNDS = int(os.environ.get("ZEROSKIP_STRESS_ROUNDS", "6"))
TRIALS = int(os.environ.get("ZEROSKIP_RESET_TRIALS", "24"))

CONST_REGS = ("ID", "VERSION", "CONFIG0", "CONFIG1", "CONFIG2")


async def setup(dut, seed: int):
    r = random.Random(seed)
    rng = np.random.default_rng(seed)
    sb = StreamBench(dut, r)
    await sb.reset()
    return sb, Oracle(sb), r, rng


# ----------------------------------------------------------------------------- flow + registers

class Hammer:
    """Concurrent AXI-Lite traffic; collects what it read and checks it afterwards."""

    def __init__(self, sb: StreamBench, r: random.Random, batch: int):
        self.sb, self.r, self.batch = sb, r, batch
        self.stop = False
        self.reads: list[tuple[int, str, int]] = []
        self.ignored_cmds = 0
        self.writes = 0
        self.const: dict = {}

    async def run(self):
        sb, r = self.sb, self.r
        lclr_last = sb.hw.act_bytes // sb.hw.lanes - 1
        while not self.stop:
            u = r.random()
            st = sb.state
            if st == 2 and int(sb.dut.engine_inst.lclr_reg.value) < lclr_last - 64 and u < 0.3:
                await sb.write("CTRL", r.choice([CTRL["LOAD"], CTRL["RUN"], CTRL["LOAD"] | CTRL["RUN"]]))
                self.ignored_cmds += 1
            elif st == 3 and len(sb.src_q) >= 32 and u < 0.3:
                await sb.write("CTRL", r.choice([CTRL["LOAD"], CTRL["RUN"]]))
                self.ignored_cmds += 1
            elif u < 0.65:
                name = r.choice(["STATUS", "STATUS", "CYCLES", "STALL", "COMPUTE", "MACS", "ERR_INFO", "IRQ_EN",
                                 "IRQ_STATUS", "BATCH", *CONST_REGS])
                v = await sb.read(name)
                self.reads.append((sb.cycle, name, v))
            elif u < 0.8:
                await sb.write("IRQ_EN", r.randrange(4))
                self.writes += 1
            elif u < 0.85:
                await sb.write("FAULT", 0)
                self.writes += 1
            elif u < 0.9:
                await sb.write("BATCH", self.batch)
                self.writes += 1
            elif u < 0.93:
                await sb.write("IRQ_STATUS", 0)
                self.writes += 1
            else:
                await ClockCycles(sb.dut.aclk, r.randint(1, 30))

    def check(self, what: str, const: dict):
        # CYCLES restarts when the command starts (reads before it show the previous
        # command's count), then only grows
        last_cycles, restarts = -1, 0
        for cyc, name, v in self.reads:
            if name in const:
                assert v == const[name], f"{what}: {name} read 0x{v:08X} at cycle {cyc}, expected 0x{const[name]:08X}"
            elif name == "STATUS":
                busy, state = v & 1, (v >> 16) & 0xF
                assert busy == int(state != 0), f"{what}: STATUS 0x{v:08X} (busy {busy}, state {state})"
                assert state <= 8, f"{what}: STATUS state {state}"
            elif name == "CYCLES":
                if v < last_cycles:
                    restarts += 1
                    assert restarts == 1, f"{what}: CYCLES went back from {last_cycles} to {v} twice"
                last_cycles = v
            elif name == "BATCH":
                assert v == self.batch, f"{what}: BATCH read {v}, wrote {self.batch}"


async def stress_command(sb: StreamBench, ok: Oracle, r: random.Random, const: dict, fn, batch: int, what: str):
    hm = Hammer(sb, r, batch)
    await sb.write("BATCH", batch)
    task = cocotb.start_soon(hm.run())
    try:
        res = await fn()
    finally:
        hm.stop = True
        await task
    hm.check(what, const)
    # counters once more, now that the register traffic has settled
    if ok.g.status_error == 0 and "RUN" in what:
        await ok.counters(what, batch)
    return res, hm


@cocotb.test()
async def test_flow_and_registers(dut):
    """Random flow on both streams with concurrent AXI-Lite traffic; bit-exact results."""
    sb, ok, r, rng = await setup(dut, SEED)
    stats = Stats("axi_stress", params=dict(sb.params, seed=SEED))
    const = {n: await sb.read(n) for n in CONST_REGS}
    pool = build_pool(sb.hw, r, rng, n_random=3)
    table = flows(r)
    names = list(table)
    for rnd in range(ROUNDS):
        name, model, prog = pool[rnd % len(pool)]
        for in_name, out_name in ((names[rnd % len(names)], names[(rnd + 2) % len(names)]),
                                  (r.choice(names), r.choice(names))):
            sb.set_flow(table[in_name](), table[out_name]())
            what = f"round {rnd} {name} in={in_name} out={out_name}"
            await sb.write("IRQ_STATUS", 3)
            beats = encode_program(prog)

            async def do_load(beats=beats, what=what):
                return await ok.load(beats, what=f"{what}: LOAD")

            (code, _, in0), hm = await stress_command(sb, ok, r, const, do_load, 1, f"{what} LOAD")
            assert code == 0
            assert len(sb.in_log) - in0 == beats.size, f"{what}: {len(sb.in_log) - in0} beats taken of {beats.size}"
            stats.add("ignored_commands", hm.ignored_cmds)
            stats.add("register_reads", len(hm.reads))
            stats.add("register_writes", hm.writes)
            await check_irq(sb, what, error=False)
            batch = r.randint(1, 4)
            img = images(rng, model, batch)

            async def do_run(img=img, batch=batch, what=what):
                return await ok.run(img, batch, what=f"{what}: RUN")

            (code, _, in0), hm = await stress_command(sb, ok, r, const, do_run, batch, f"{what} RUN")
            assert code == 0
            assert len(sb.in_log) - in0 == img.size, f"{what}: {len(sb.in_log) - in0} beats taken of {img.size}"
            stats.case(f"flow:{in_name}/{out_name}", code)
            stats.add("ignored_commands", hm.ignored_cmds)
            stats.add("register_reads", len(hm.reads))
            stats.add("register_writes", hm.writes)
            await check_irq(sb, what, error=False)
        # an error with the interrupt enabled
        sb.set_flow(random_flow(r), random_flow(r))
        await sb.write("IRQ_STATUS", 3)
        code, _, _ = await ok.run(images(rng, model, 1)[:2], 1, what=f"round {rnd}: short input")
        await check_irq(sb, f"round {rnd} error", error=code != 0)
    await sb.settle()
    stats.write()


async def check_irq(sb: StreamBench, what: str, error: bool):
    st = await sb.read("IRQ_STATUS")
    assert st & 1 and bool(st & 2) == error, f"{what}: IRQ_STATUS {st}, expected done{' and error' if error else ''}"
    for en in (0, 1, 2, 3):
        await sb.write("IRQ_EN", en)
        await ClockCycles(sb.dut.aclk, 2)
        line = int(sb.dut.interrupt.value)
        assert line == int(bool(st & en)), f"{what}: interrupt {line} with IRQ_STATUS {st} IRQ_EN {en}"
    await sb.write("IRQ_STATUS", 3)
    await ClockCycles(sb.dut.aclk, 2)
    assert int(sb.dut.interrupt.value) == 0 and await sb.read("IRQ_STATUS") == 0


# ----------------------------------------------------------------------------- soft reset

LOAD_TARGETS = ("random", 1, 2, 8)           # states: loading, clearing, ACK beat
RUN_TARGETS = ("random", 3, 4, 5, 6)         # input, layers, output latency, result output


async def soft_reset_trial(sb: StreamBench, ok: Oracle, r: random.Random, rng, entry, phase: str, target,
                           stats: Stats, what: str):
    name, model, prog = entry
    hw = sb.hw
    g_before = copy.deepcopy(ok.g)
    if phase == "LOAD":
        beats = encode_program(prog)
        want = copy.deepcopy(ok.g).load(beats)
        batch = None
        est = beats.size * 2 + hw.act_bytes // hw.lanes + 40
    else:
        batch = r.randint(1, 3)
        beats = images(rng, model, batch)
        want = copy.deepcopy(ok.g).run(beats, batch)
        t = image_timing(prog)
        est = batch * (t["total"] + beats.size // batch) + 20
    if target == 8:
        sb.hold_output()  # keep the response beat waiting
    await sb.wait_idle_sampled()
    sb.check_quiet()
    if batch is not None:
        await sb.write("BATCH", batch)
    out0, in0, rs0 = len(sb.out_log), len(sb.in_log), len(sb.reset_log)
    c0 = sb.cycle
    await sb.write("CTRL", CTRL[phase])
    sb.send(beats)
    if target == "random":
        await ClockCycles(sb.dut.aclk, r.randrange(0, est))
    else:
        reached = await sb.wait_state(target, c0, 4 * est + 1000)
        assert reached, f"{what}: state {target} not reached"
        span = {1: beats.size, 2: hw.act_bytes // hw.lanes, 3: beats.size, 4: 200, 5: 1, 6: 4, 8: 3}[target]
        await ClockCycles(sb.dut.aclk, r.randrange(0, max(1, span)))
    if target == 8:
        # release the output around the reset: the ACK may or may not be taken
        cocotb.start_soon(release_later(sb, r.randrange(0, 8), r))
    await sb.write("CTRL", CTRL["SOFT_RESET"])
    assert len(sb.reset_log) == rs0 + 1, f"{what}: {len(sb.reset_log) - rs0} SOFT_RESET pulses"
    rc, rstate = sb.reset_log[-1]
    await ClockCycles(sb.dut.aclk, 2)
    if target == 8:
        await ClockCycles(sb.dut.aclk, 10)
    # idle at once: the state right after the pulse is IDLE, no beat moves with it
    assert sb.after_reset[len(sb.reset_log) - 1] == 0, f"{what}: state {sb.after_reset[-1]} after the reset"
    assert not any(b.cycle == rc for b in sb.in_log[in0:]), f"{what}: input beat taken in the reset cycle"
    assert not any(b.cycle == rc for b in sb.out_log[out0:]), f"{what}: output beat taken in the reset cycle"
    stray = sum(1 for b in sb.in_log[in0:] if b.cycle > rc) > 0 or len(sb.src_q) > 0
    await sb.wait_sent()
    t0 = sb.cycle
    while stray and not any(b.last and b.cycle > rc for b in sb.out_log[out0:]):
        assert sb.cycle - t0 < 200_000, f"{what}: no answer to the input after the reset"
        await ClockCycles(sb.dut.aclk, 4)
    await ClockCycles(sb.dut.aclk, 40)
    await sb.wait_idle_sampled()
    before = [b for b in sb.out_log[out0:] if b.cycle <= rc]
    after = [b for b in sb.out_log[out0:] if b.cycle > rc]
    # what went out before the reset is a prefix of the golden response
    got = data_of(before)
    assert np.array_equal(got, want[: got.size]), (
        f"{what}: output before the reset is not a prefix of the golden response")
    ack_taken = phase == "LOAD" and got.size == 1
    complete = got.size == want.size and bool(before) and before[-1].last
    # after the reset: one UNEXPECTED beat if input was still arriving, else nothing
    if stray:
        assert [b.data for b in after] == [unexpected_beat()] and after[-1].last, (
            f"{what}: after the reset {len(after)} beats, expected one UNEXPECTED")
    else:
        assert not after, f"{what}: {len(after)} output beats after the reset without input"
    sb.account()
    # golden state
    if phase == "LOAD":
        if ack_taken:
            ok.g.load(beats)
        else:
            ok.g = g_before
            ok.g.program = None
    else:
        ok.g = g_before
        if complete:
            ok.g.run(beats, batch)
    st = await sb.status()
    valid = ok.g.program is not None
    if stray:
        assert st == {**st, "busy": 0, "done": 1, "error": 1, "code": E["UNEXPECTED"], "valid": int(valid)}, (
            f"{what}: STATUS {st} after the stray rest (program valid {valid})")
        assert await sb.read("ERR_INFO") == 0
    else:  # a reset also clears done/error/code of a command that had finished
        assert st == {**st, "busy": 0, "done": 0, "error": 0, "code": 0, "valid": int(valid)}, (
            f"{what}: STATUS {st} after SOFT_RESET in state {rstate} (ACK taken {ack_taken}, program valid {valid})")
    # the counters stopped
    c1 = await sb.read("CYCLES")
    await ClockCycles(sb.dut.aclk, 50)
    c2 = await sb.read("CYCLES")
    assert c1 == c2, f"{what}: CYCLES still counting after SOFT_RESET ({c1} -> {c2})"
    if rstate != 0:
        assert c1 <= rc - c0 + 2, f"{what}: CYCLES {c1} beyond the reset ({rc - c0} cycles after the command)"
    stats.case(f"reset:{phase}:state{rstate}", E["UNEXPECTED"] if stray else 0)
    stats.add("reset_with_stray_rest", int(stray))
    stats.add("reset_output_cut_without_tlast", int(bool(before) and not before[-1].last))
    stats.add("reset_ack_taken_in_reset_cycle", int(ack_taken and before[-1].cycle == rc))


async def release_later(sb: StreamBench, k: int, r: random.Random):
    await ClockCycles(sb.dut.aclk, k)
    sb.set_flow(sb.in_flow, Flow(r))


@cocotb.test()
async def test_soft_reset(dut):
    """SOFT_RESET at random points of LOAD and RUN; recovery and a bit-exact valid run."""
    sb, ok, r, rng = await setup(dut, SEED + 1)
    stats = Stats("soft_reset", params=dict(sb.params, seed=SEED + 1))
    pool = build_pool(sb.hw, r, rng, n_random=3)
    for trial in range(TRIALS):
        entry = pool[trial % len(pool)]
        name, model, prog = entry
        phase = "LOAD" if trial % 2 == 0 else "RUN"
        sb.set_flow(random_flow(r, allow_long=False), random_flow(r, allow_long=False))
        if phase == "RUN" and (ok.g.program is None or ok.g.program.n_beats() != prog.n_beats()
                               or not np.array_equal(encode_program(ok.g.program), encode_program(prog))):
            await ok.load(encode_program(prog), what=f"trial {trial}: load")
        target = r.choice(LOAD_TARGETS if phase == "LOAD" else RUN_TARGETS)
        what = f"trial {trial} ({phase} of {name}, target {target})"
        await soft_reset_trial(sb, ok, r, rng, entry, phase, target, stats, what)
        sb.set_flow(random_flow(r), random_flow(r))
        if ok.g.program is None:
            if r.random() < 0.5:  # a LOAD cut short leaves no program
                code, _, _ = await ok.run(images(rng, model, 1), 1, what=f"{what}: run without program")
                assert code == E["NO_PROGRAM"]
            await ok.load(encode_program(prog), what=f"{what}: reload")
        else:
            assert np.array_equal(encode_program(ok.g.program), encode_program(prog))
        batch = r.randint(1, 2)
        code, _, _ = await ok.run(images(rng, model, batch), batch, what=f"{what}: valid run")
        assert code == 0
    # SOFT_RESET while idle clears done/error/code and keeps the program
    await ok.run(images(rng, pool[0][1], 1)[:1], 1, what="short before idle reset")
    await sb.write("CTRL", CTRL["SOFT_RESET"])
    st = await sb.status()
    assert st == {**st, "busy": 0, "done": 0, "error": 0, "code": 0}, st
    await sb.settle()
    stats.write()


@cocotb.test()
async def test_soft_reset_ack_race(dut):
    """SOFT_RESET in every cycle around the ACK handshake of a LOAD."""
    sb, ok, r, rng = await setup(dut, SEED + 2)
    stats = Stats("soft_reset_race", params=dict(sb.params, seed=SEED + 2))
    pool = build_pool(sb.hw, r, rng, n_random=1)
    name, model, prog = pool[-1]
    beats = encode_program(prog)
    outcomes = set()
    for k in range(0, 10):
        sb.set_flow()
        await sb.wait_idle_sampled()
        sb.check_quiet()
        sb.hold_output()
        out0, rs0 = len(sb.out_log), len(sb.reset_log)
        await sb.write("CTRL", CTRL["LOAD"])
        sb.send(beats)
        assert await sb.wait_state(8, sb.cycle, 10 * beats.size + sb.hw.act_bytes)
        cocotb.start_soon(release_later(sb, k, r))
        await sb.write("CTRL", CTRL["SOFT_RESET"])
        await ClockCycles(sb.dut.aclk, 12)
        rc, rstate = sb.reset_log[rs0]
        out = sb.out_log[out0:]
        sb.account()
        taken = bool(out)
        if taken:
            assert len(out) == 1 and out[0].last and parse_response(out[0].data)[:2] == (C.ACK_MAGIC, 0)
        st = await sb.status()
        assert st["valid"] == int(taken), (
            f"k={k}: ACK {'taken' if taken else 'not taken'} (cycle {out[0].cycle if out else None}, "
            f"reset {rc} in state {rstate}), program valid {st['valid']}")
        outcomes.add((taken, out[0].cycle - rc if out else None))
        ok.g.program = None
        if taken:
            ok.g.load(beats)
        code, _, _ = await ok.run(images(rng, model, 1), 1, what=f"race k={k}: run")
        assert code == (0 if taken else E["NO_PROGRAM"])
        stats.case(f"race:{'ack_taken' if taken else 'ack_dropped'}", code)
    stats.extra["outcomes"] = sorted(str(o) for o in outcomes)
    await sb.settle()
    stats.write()
    assert any(t for t, _ in outcomes) and any(not t for t, _ in outcomes), outcomes


# ----------------------------------------------------------------------------- pytest runner

# the CI case, then the --fuzz campaign (marked slow)
RUNS = [builds.param("verilator-top-L4", 3, 24),
        builds.param("verilator-top-L8", 12, 120, slow=True), builds.param("verilator-top-L4", 12, 120, slow=True),
        builds.param("verilator-top-L16", 12, 120, slow=True)]


@pytest.mark.parametrize("build,rounds,trials", RUNS)
def test_axi_stress(build, rounds, trials, tmp_path):
    data = builds.run_with_stats(build, __file__, {"ZEROSKIP_STRESS_ROUNDS": str(rounds),
                                                   "ZEROSKIP_RESET_TRIALS": str(trials)},
                                 tmp_path, f"stress{trials}")
    assert data["axi_stress"]["cases"] == 2 * rounds
    assert data["axi_stress"]["extra"]["ignored_commands"] > 0
    assert data["soft_reset"]["cases"] == trials
    states = {k.split(":")[2] for k in data["soft_reset"]["kinds"]}
    assert {"state1", "state2", "state3", "state4", "state6"} <= states, states
    assert data["soft_reset"]["extra"]["reset_with_stray_rest"] > 0
