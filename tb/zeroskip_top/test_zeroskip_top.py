"""cocotb bench of ``zeroskip_top`` against the golden model.

Every command goes to the RTL and to :class:`~zeroskip.driver.golden.GoldenEngine`; the
response beats must be identical, ``CYCLES - STALL`` must equal the golden cycle count,
``COMPUTE`` and ``MACS`` the golden counters, under random idle cycles on the input stream
and random backpressure on the output stream. Programs come from the host compiler
(TinyCNN-like and random networks, sparse and dense), malformed programs are derived from
valid ones. Run through the pytest runner ``test_zeroskip_top`` below
(``zeroskip.driver.sim.build``).

``ZEROSKIP_TOP_NETS`` sets how many random networks ``test_random_networks`` compiles,
``ZEROSKIP_GRAPH_NETS`` how many random layer graphs ``test_graph_networks`` runs.
"""

from __future__ import annotations

import os
from dataclasses import replace

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles, RisingEdge
from zeroskip.driver import contract as C
from zeroskip.driver.golden import pack_image_beats, parse_response
from zeroskip.driver.program import encode_program
from zeroskip.host.compiler.lowering import CompileError, compile_model
from zeroskip.host.quant import randnet
from zeroskip.tb.common import builds
from zeroskip.tb.common.checker import setup
from zeroskip.tb.common.programs import conflict_program, images, set_field, tiny_cnn_like
from zeroskip.tb.common.zstb import CTRL, TB, E

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("ZEROSKIP_TB_SEED", "1234"))


def compile_or_none(model, hw, dense):
    try:
        return compile_model(model, hw, dense=dense)
    except CompileError:
        return None


# ----------------------------------------------------------------------------- tests

@cocotb.test()
async def test_registers(dut):
    """ID, VERSION, CONFIG, BATCH, IRQ_EN/IRQ_STATUS, FAULT and the interrupt line."""
    tb, ck, _, rng = await setup(dut, seed=SEED, flow=False)
    hw = tb.hw
    assert await tb.read("ID") == C.ID_MAGIC
    assert await tb.read("VERSION") == C.FORMAT_VERSION | (C.RTL_VERSION << 16)
    fault = tb.params.get("FAULT_INJECT", 0)
    assert await tb.read("CONFIG0") == (hw.lanes | (hw.act_log2 << 8) | (int(hw.site_cap > 0) << 16)
                                        | (int(bool(fault)) << 17))
    assert await tb.read("CONFIG1") == hw.w_slots
    assert await tb.read("CONFIG2") == hw.ch_cap | (hw.out_cap << 16)
    await tb.write("BATCH", 0x12345)
    assert await tb.read("BATCH") == 0x2345
    await tb.write("BATCH", 1)
    await tb.write("FAULT", 1)
    assert await tb.read("FAULT") == (1 if fault else 0)
    await tb.write("FAULT", 0)
    st = await tb.status()
    assert st == {"busy": 0, "done": 0, "error": 0, "valid": 0, "code": 0, "state": 0}, st
    # interrupt: a command finishing raises IRQ_STATUS.done; IRQ_EN gates the line
    assert int(dut.interrupt.value) == 0
    await tb.write("IRQ_EN", 3)
    assert await tb.read("IRQ_EN") == 3
    prog = compile_model(randnet.random_qmodel(rng, n_conv=1, n_hidden_fc=0), hw)
    await ck.load(encode_program(prog))
    assert await tb.read("IRQ_STATUS") == 1
    assert int(dut.interrupt.value) == 1
    await tb.write("IRQ_STATUS", 1)
    assert await tb.read("IRQ_STATUS") == 0
    assert int(dut.interrupt.value) == 0
    await ck.load(np.array([0], np.uint64), what="bad magic")
    assert await tb.read("IRQ_STATUS") == 3
    await tb.write("IRQ_EN", 0)
    assert int(dut.interrupt.value) == 0
    await tb.write("IRQ_STATUS", 3)


@cocotb.test()
async def test_tinycnn(dut):
    """TinyCNN-shaped network, sparse and dense programs, batches, random stream flow."""
    tb, ck, _, rng = await setup(dut, seed=SEED)
    model = tiny_cnn_like(rng)
    for dense in (False, True):
        prog = compile_model(model, tb.hw, dense=dense)
        await ck.program_and_run(prog, rng, model, 3, f"tiny dense={dense}")
    # steady flow: the counters must not depend on the DMA
    tb.steady_flow()
    await ck.run(images(rng, model, 2), 2, what="tiny steady")


@cocotb.test()
async def test_random_networks(dut):
    """Random networks from the host compiler (sparse and dense), random flow and batches."""
    tb, ck, r, rng = await setup(dut, seed=SEED)
    n = int(os.environ.get("ZEROSKIP_TOP_NETS", "6"))
    done = 0
    tries = 0
    while done < n and tries < 10 * n:
        tries += 1
        model = randnet.random_qmodel(rng, zero_channel=r.random() < 0.3, dense_channel=r.random() < 0.3,
                                      saturate=r.random() < 0.2)
        dense = r.random() < 0.3
        prog = compile_or_none(model, tb.hw, dense)
        if prog is None:
            continue
        tb.random_flow(r, p_idle=r.choice([0.0, 0.2, 0.5]), p_bp=r.choice([0.0, 0.2, 0.5]))
        await ck.program_and_run(prog, rng, model, r.randint(1, 3), f"net {done} dense={dense}")
        done += 1
    assert done == n, f"only {done} of {n} random networks compiled"


@cocotb.test()
async def test_graph_networks(dut):
    """Random layer graphs: rectangular kernels, asymmetric padding, stride 2 (XS2 and a
    doubled row step), depthwise layers (in_c_step), average and global average pooling,
    residual adds with identity and projection shortcuts, kernels of more than 16 taps on
    hcw tensors; sparse and dense programs."""
    tb, ck, r, rng = await setup(dut, seed=SEED)
    n = int(os.environ.get("ZEROSKIP_GRAPH_NETS", "6"))
    done = tries = 0
    while done < n and tries < 10 * n:
        tries += 1
        if r.random() < 0.3:   # kernels of more than 16 taps on hcw tensors
            model = randnet.random_hcw_qmodel(rng)
        else:
            model = randnet.random_graph_qmodel(rng, saturate=r.random() < 0.2)
        dense = r.random() < 0.3
        prog = compile_or_none(model, tb.hw, dense)
        if prog is None:
            continue
        tb.random_flow(r, p_idle=r.choice([0.0, 0.2]), p_bp=r.choice([0.0, 0.2]))
        await ck.program_and_run(prog, rng, model, r.randint(1, 2), f"graph {done} dense={dense}")
        done += 1
    assert done == n, f"only {done} of {n} random graphs compiled"


@cocotb.test()
async def test_malformed_programs(dut):
    """Each malformed program is refused with the golden model's code and beat index, the
    engine returns to idle, and the next valid program runs bit-exact."""
    tb, ck, r, rng = await setup(dut, seed=SEED)
    hw = tb.hw
    model = tiny_cnn_like(rng)
    prog = compile_model(model, hw)
    good = encode_program(prog)
    n = good.size
    d0 = 4  # first descriptor beat
    c0 = d0 + 8  # first channel record
    cases = [
        ("bad magic", set_field(good, 0, 0, 32, 0x12345678)),
        ("bad version", set_field(good, 0, 32, 16, 7)),
        ("lanes", set_field(good, 0, 48, 8, 16 if hw.lanes == 32 else 32)),
        ("n_layers 0", set_field(good, 0, 56, 8, 0)),
        ("n_layers > MAX", set_field(good, 0, 56, 8, hw.max_layers + 1)),
        ("slots > W_SLOTS", set_field(good, 3, 0, 32, hw.w_slots + 1)),
        ("n_out > OUT_CAP", set_field(good, 2, 32, 16, hw.out_cap + 1)),
        ("in_bytes 0", set_field(good, 2, 0, 32, 0)),
        ("truncated in header", good[:2]),
        ("truncated in descriptor", good[:d0 + 3]),
        ("truncated in records", good[:c0 + 1]),
        ("truncated in blocks", good[: n - 4]),
        ("truncated last beat", good[: n - 1]),
        ("too long", np.concatenate([good, good[:5]])),
        ("total beats off", set_field(good, 1, 0, 32, n + 3)),
        ("log2P+log2Q", set_field(good, d0, 12, 4, 5)),
        ("C_out 0", set_field(good, d0, 32, 16, 0)),
        ("pool odd h_it", set_field(good, d0 + 1, 0, 16, 3)),
        ("n_groups 0", set_field(good, c0 + 1, 0, 24, 0)),
        ("shift 0", set_field(good, c0, 48, 6, 0)),
        ("shift 48", set_field(good, c0, 48, 6, 48)),
        ("clear_len", set_field(good, d0 + 3, 32, 32, hw.act_bytes + 1)),
        ("sparse input mode", set_field(good, 1, 48, 8, 1)),
        ("input mode 3", set_field(good, 1, 48, 8, 3)),
        ("n_groups huge", set_field(good, c0 + 1, 0, 24, 0xFFFFFF)),
        ("single beat", good[:1]),
        ("garbage", np.array([0xDEADBEEF, 1, 2], np.uint64)),
    ]
    cases += [
        ("reserved descriptor bit 23", set_field(good, d0, 23, 1, 1)),
        ("reserved descriptor bit 31", set_field(good, d0, 31, 1, 1)),
    ]
    if hw.act_bytes < 65536:
        cases.append(("in_c_step >= ACT_BYTES", set_field(good, d0, 48, 16, hw.act_bytes)))
        cases.append(("in_base >= ACT_BYTES", set_field(good, 1, 32, 16, hw.act_bytes)))
        cases.append(("out_base >= ACT_BYTES", set_field(good, d0 + 2, 32, 16, hw.act_bytes)))
    for what, beats in cases:
        resp = await ck.load(beats, what=what)
        magic, code, _ = parse_response(resp[0])
        assert magic == C.ACK_MAGIC and code != 0, f"{what}: accepted"
        # the engine is idle and takes the next command
        if r.random() < 0.3:
            await ck.program_and_run(prog, rng, model, 1, f"after {what}")
    await ck.program_and_run(prog, rng, model, 2, "after all malformed")


@cocotb.test()
async def test_run_errors(dut):
    """NO_PROGRAM, UNEXPECTED, INPUT_SHORT, INPUT_LONG, BATCH=0, BANK_CONFLICT; each
    followed by a correct run."""
    tb, ck, r, rng = await setup(dut, seed=SEED)
    hw = tb.hw
    model = tiny_cnn_like(rng, 0.8)
    prog = compile_model(model, hw)
    # no program yet
    await ck.run(images(rng, model, 1), 1, what="no program")
    await ck.load(encode_program(prog))
    nb = -(-prog.in_bytes // 8)
    # data while idle
    await tb.send(images(rng, model, 1)[:3])
    got = await tb.recv()
    assert got.size == 1 and parse_response(got[0]) == (C.ERR_MAGIC, E["UNEXPECTED"], 0), got
    st = await tb.status()
    assert st["error"] and st["code"] == E["UNEXPECTED"] and st["valid"], st
    await ck.run(images(rng, model, 1), 1, what="after unexpected")
    # TLAST too early: inside image 1 of 3, and at the end of image 0 of 2
    img = images(rng, model, 3)
    await ck.run(img[: nb + 5], 3, what="input short")
    await ck.run(img[: nb], 2, what="input short at image end")
    # no TLAST after the batch
    await ck.run(img, 2, what="input long")
    await ck.run(img[:nb], 0, what="batch 0")
    await ck.run(img[:2 * nb], 2, what="after input errors")
    # bank conflict
    bad = conflict_program(hw)
    await ck.load(encode_program(bad), what="conflict program")
    x = rng.integers(0, 256, size=(2, bad.in_bytes), dtype=np.uint8)
    await ck.run(pack_image_beats(x, bad.in_bytes), 2, what="bank conflict")
    await ck.program_and_run(prog, rng, model, 2, "after conflict")


@cocotb.test()
async def test_layer_clears(dut):
    """Per-layer clears (lengths not a multiple of LANES, wrapping past the end of the
    activation memory, zeroing part of a layer's input) in both models."""
    tb, ck, r, rng = await setup(dut, seed=SEED)
    hw = tb.hw
    model = tiny_cnn_like(rng, 0.6)
    prog = compile_model(model, hw)
    for trial in range(3):
        layers = []
        for i, lp in enumerate(prog.layers):
            d = lp.desc
            if trial == 0:
                base, length = d.in_base + r.randrange(64), r.randrange(1, 300)
            elif trial == 1:
                base, length = hw.act_bytes - r.randrange(1, 40), r.randrange(41, 120)
            else:
                base, length = r.randrange(hw.act_bytes), r.choice([0, 1, hw.lanes - 1, hw.lanes + 1, 513])
            if i == 0:  # the first layer's clear may not erase the image it reads
                base, length = (d.out_base + 7) % hw.act_bytes, r.randrange(0, 40)
            layers.append(replace(lp, desc=replace(d, clear_base=base % hw.act_bytes, clear_len=length)))
        p2 = replace(prog, layers=tuple(layers))
        await ck.program_and_run(p2, rng, model, 2, f"clears {trial}")


async def _wait_state(tb: TB, state: int, limit: int = 100000) -> None:
    for _ in range(limit):
        await RisingEdge(tb.dut.aclk)
        s = int(tb.dut.engine_inst.state_reg.value)
        if s == state:
            return
    raise AssertionError(f"state {state} not reached")


@cocotb.test()
async def test_soft_reset(dut):
    """SOFT_RESET mid-run keeps the program; mid-load it invalidates it; both recover."""
    tb, ck, r, rng = await setup(dut, seed=SEED, flow=False)
    model = tiny_cnn_like(rng)
    prog = compile_model(model, tb.hw)
    await ck.load(encode_program(prog))
    # mid-run: wait for the layers of the first image, then reset
    await tb.write("BATCH", 1)
    await tb.write("CTRL", CTRL["RUN"])
    await tb.send(images(rng, model, 1))
    await _wait_state(tb, 4)
    await ClockCycles(dut.aclk, 50)
    await tb.write("CTRL", CTRL["SOFT_RESET"])
    st = await tb.status()
    assert not st["busy"] and st["valid"] and not st["done"], st
    assert tb.sink.empty()
    tb.random_flow(r)
    await ck.run(images(rng, model, 2), 2, what="after soft reset in run")
    # mid-load: during the memory clear that ends a load
    tb.steady_flow()
    await tb.write("CTRL", CTRL["LOAD"])
    await tb.send(encode_program(prog))
    await _wait_state(tb, 2)
    await tb.write("CTRL", CTRL["SOFT_RESET"])
    st = await tb.status()
    assert not st["busy"] and not st["valid"], st
    ck.g.program = None
    await ck.run(images(rng, model, 1), 1, what="no program after reset in load")
    tb.random_flow(r)
    await ck.program_and_run(prog, rng, model, 1, "after soft reset in load")


@cocotb.test()
async def test_fault_inject(dut):
    """FAULT[0] suppresses TLAST on result streams (FAULT_INJECT=1 builds only)."""
    tb, ck, r, rng = await setup(dut, seed=SEED, flow=False)
    if not tb.params.get("FAULT_INJECT", 0):
        return
    model = tiny_cnn_like(rng)
    prog = compile_model(model, tb.hw)
    await ck.load(encode_program(prog))
    img = images(rng, model, 1)
    want = ck.g.run(img, 1)
    await tb.write("FAULT", 1)
    await tb.write("BATCH", 1)
    await tb.write("CTRL", CTRL["RUN"])
    await tb.send(img)
    await tb.wait_idle()
    assert tb.sink.empty(), "a frame ended although TLAST was suppressed"
    await tb.write("FAULT", 0)
    # a stray packet closes the open frame with an error beat
    await tb.send(img[:1])
    got = await tb.recv()
    assert np.array_equal(got[:-1], want), "results under fault injection"
    assert parse_response(got[-1])[:2] == (C.ERR_MAGIC, E["UNEXPECTED"])


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-top-L8", "verilator-top-L4",
                                                             "verilator-top-L16", "verilator-top-L32",
                                                             "icarus-top-L8",
                                                             "icarus-top-L8-synth")])
def test_zeroskip_top(build, tmp_path):
    """Verilator LANES 8, 4, 16 and 32, Icarus LANES 8 with a smaller activation memory (its
    slower simulation kept short) and Icarus's synthesis view (``SYNTHESIS`` defined: the
    accumulators and counters are the DSP48E1 instances Yosys and Vivado map, simulated
    with Yosys's primitive models). ``--fuzz`` raises the random networks per build from
    20 (Verilator) / 3 (Icarus) to 200 / 20, the random layer graphs from 8 / 2 to 100 / 10."""
    sim = builds.BUILDS[build].simulator
    fuzz = int(builds.fuzz_enabled())
    nets = {"verilator": (20, 200), "icarus": (3, 20)}[sim][fuzz]
    graphs = {"verilator": (8, 100), "icarus": (2, 10)}[sim][fuzz]
    builds.run(build, __file__, tmp_path, {"ZEROSKIP_TOP_NETS": str(nets), "ZEROSKIP_GRAPH_NETS": str(graphs)})
