"""Networks at the capacity limits on ``zeroskip_top``: RTL == golden == integer reference.

``test_limit_networks`` runs the fixed limit networks of :mod:`zeroskip.tb.common.limitnets`
(MAX_LAYERS layers, CH_CAP channels, OUT_CAP outputs, all W_SLOTS slots, ACT_BYTES nearly
full with disjoint and with ping-ponged maps, int32 accumulator extremes, saturating and
vanishing requantisation, sparsity 0 .. 99.9 % with empty and fully dense rows). For each:
the RTL's results equal the golden model's bit for bit, the golden model's equal the
PyTorch integer reference (:func:`zeroskip.host.quant.reference.run_reference`), and
``CYCLES - STALL`` equals ``predict_cycles``. Each limit is then exceeded by one
(MAX_LAYERS + 1 layers, CH_CAP + 1 channels in the header and in the running total,
OUT_CAP + 1 outputs, W_SLOTS exceeded in the header and by a layer's records, activation
bytes and input size beyond ACT_BYTES): the loader refuses with the golden model's code
and beat index.

``test_random_limit_networks`` draws ``ZEROSKIP_LIMIT_NETS`` (default 4) random networks
near a random limit (:func:`zeroskip.tb.common.limitnets.random_limit_model`) and checks the same.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

import cocotb
import numpy as np
import pytest
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import pack_image_beats, predict_cycles, unpack_results
from zeroskip.driver.program import BLOCK_BEATS, BLOCK_ENTRIES, CHANNEL_BEATS, LAYER_BEATS, HwConfig, encode_program
from zeroskip.host.compiler.lowering import CompileError, compile_model
from zeroskip.tb.common import builds
from zeroskip.tb.common import limitnets as LN
from zeroskip.tb.common.programs import set_field
from zeroskip.tb.common.zsstress import E, Flow, Oracle, Stats, StreamBench, flows

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("ZEROSKIP_TB_SEED", "7003"))
N_RANDOM = int(os.environ.get("ZEROSKIP_LIMIT_NETS", "4"))
INT32_MAX = (1 << 31) - 1


async def setup(dut, seed):
    r = random.Random(seed)
    rng = np.random.default_rng(seed)
    sb = StreamBench(dut, r)
    await sb.reset()
    return sb, Oracle(sb), r, rng


def moderate_flow(sb: StreamBench, r: random.Random):
    table = flows(r)
    pick = [n for n in table if n != "long_idle"]
    sb.set_flow(table[r.choice(pick)](), table[r.choice(pick)]())


async def check_network(sb: StreamBench, ok: Oracle, r, rng, name: str, model, prog, stats: Stats, kind: str):
    from zeroskip.host.quant.reference import run_reference

    what = f"{name} ({len(prog.layers)} layers, {prog.n_channels} channels, {prog.n_out} outputs, "
    what += f"{prog.slots_used()} slots)"
    code, _, _ = await ok.load(encode_program(prog), what=what)
    assert code == 0, f"{what}: refused"
    batch = r.randint(2, 3)
    x = LN.limit_inputs(rng, model, batch)
    beats = pack_image_beats(pack_inputs(x, prog.meta["input_layout"]), prog.in_bytes)
    code, _, _ = await ok.run(beats, batch, what=what)
    assert code == 0
    got = unpack_results(np.array([b.data for b in sb.out_log[-batch * (-(-prog.n_out // 2)):]], np.uint64),
                         batch, prog.n_out)
    ref = run_reference(model, x)
    assert np.array_equal(got, ref), f"{what}: RTL (== golden) differs from the integer reference"
    assert ok.g.counters["CYCLES"] == predict_cycles(prog, batch), f"{what}: golden cycles vs predict_cycles"
    stats.case(kind, 0)
    stats.add("images", batch)
    return got


def over_by_one(hw: HwConfig, rng) -> list[tuple[str, np.ndarray, object]]:
    """(what, program beats, expected code or (code, beat index)) of programs one past a limit."""
    out = []
    # MAX_LAYERS + 1 layers
    m = LN.max_layers(replace(hw, max_layers=hw.max_layers + 1), rng)
    p = compile_model(m, replace(hw, max_layers=hw.max_layers + 1))
    out.append(("MAX_LAYERS + 1 layers", encode_program(p), E["CAPACITY"]))
    # OUT_CAP + 1 outputs (header n_out)
    big = replace(hw, out_cap=hw.out_cap + 1, w_slots=hw.w_slots * 4, ch_cap=hw.ch_cap * 2)
    try:
        p = compile_model(LN.out_cap(big, rng), big)
        out.append(("OUT_CAP + 1 outputs", encode_program(p), E["CAPACITY"]))
    except CompileError:
        pass
    # W_SLOTS: a program one group past the store, with the true and with a patched header
    m = LN.w_slots(hw, rng)
    p = compile_model(m, hw, dense=True)
    last = p.layers[-1]
    ch = list(last.channels)
    ch[-1] = replace(ch[-1], n_groups=ch[-1].n_groups + 1)
    q = last.desc.Q
    extra_codes = np.concatenate([last.codes, np.ones(q, np.uint8)])
    extra_w = np.concatenate([last.weights, np.ones(q, np.int8)])
    # the extra entries belong to the last row: rebuild its entries in row order
    lp = replace(last, channels=tuple(ch), codes=extra_codes, weights=extra_w)
    p2 = replace(p, layers=p.layers[:-1] + (lp,))
    b = encode_program(p2)
    out.append(("W_SLOTS exceeded (header)", b, E["CAPACITY"]))
    last_rec = len(b) - BLOCK_BEATS * -(-lp.n_entries // BLOCK_ENTRIES) - 1  # its beat 1
    out.append(("W_SLOTS exceeded (last record)", set_field(b, 3, 0, 32, hw.w_slots),
                (E["CAPACITY"], last_rec + 1)))
    # CH_CAP + 1: header, and a running total past CH_CAP with a header that fits (the
    # program fits W_SLOTS, so the channel check at the last descriptor is the first to fail)
    big = replace(hw, ch_cap=hw.ch_cap + 1)
    try:
        mc = LN.ch_cap(big, rng)
        pc = compile_model(mc, big)
        bc = encode_program(pc)
        last_desc = len(bc) - sum(LAYER_BEATS + CHANNEL_BEATS * len(lp.channels)
                                  + BLOCK_BEATS * -(-lp.n_entries // BLOCK_ENTRIES) for lp in pc.layers[-1:])
        out.append(("CH_CAP + 1 channels (header)", bc, E["CAPACITY"]))
        out.append(("CH_CAP + 1 channels (running total)", set_field(bc, 3, 32, 16, hw.ch_cap),
                    (E["CAPACITY"], last_desc)))
    except CompileError:
        pass
    # activation memory
    good = encode_program(compile_model(LN.max_layers(hw, rng), hw))
    out.append(("act bytes 2^(log2 ACT_BYTES + 1)", set_field(good, 3, 48, 16, hw.act_log2 + 1), E["CAPACITY"]))
    out.append(("in_bytes = ACT_BYTES + 1", set_field(good, 2, 0, 32, hw.act_bytes + 1), E["BAD_LAYER"]))
    out.append(("in_base = ACT_BYTES - 1 (fits)", set_field(good, 1, 32, 16, hw.act_bytes - 1), 0))
    return out


@cocotb.test()
async def test_limit_networks(dut):
    """Fixed networks at every capacity limit, then each limit exceeded by one."""
    sb, ok, r, rng = await setup(dut, SEED)
    hw = sb.hw
    stats = Stats("limits", params=dict(sb.params, seed=SEED))
    for name, model, dense in LN.fixed_models(hw, rng):
        prog = LN.compile_limit(model, hw, dense)
        moderate_flow(sb, r)
        got = await check_network(sb, ok, r, rng, name, model, prog, stats, f"net:{name}")
        if name == "acc_bound":
            assert got[0, 0] == INT32_MAX, f"acc_bound: {got[0, 0]} on the all -128 image, expected 2**31-1"
        if name == "w_slots":
            assert prog.slots_used() == hw.w_slots
        if name == "ch_cap":
            assert prog.n_channels == hw.ch_cap
        if name == "out_cap":
            assert prog.n_out == hw.out_cap
        if name == "max_layers":
            assert len(prog.layers) == hw.max_layers
        stats.extra.setdefault("fixed", {})[name] = {
            "layers": len(prog.layers), "channels": prog.n_channels, "outputs": prog.n_out,
            "slots": prog.slots_used(), "in_bytes": prog.in_bytes, "cycles": predict_cycles(prog, 1)}
    sb.set_flow(Flow(r), Flow(r))
    for what, beats, want in over_by_one(hw, rng):
        code, info, _ = await ok.load(beats, what=what)
        if isinstance(want, tuple):
            assert (code, info) == want, f"{what}: (code, beat) ({code}, {info}), expected {want}"
        else:
            assert code == want, f"{what}: code {code}, expected {want}"
        stats.case(f"over:{what}", code)
        stats.extra.setdefault("over_by_one", {})[what] = [code, info]
    await sb.settle()
    stats.write()


@cocotb.test()
async def test_random_limit_networks(dut):
    """Random networks near a random capacity limit."""
    sb, ok, r, rng = await setup(dut, SEED + 1)
    hw = sb.hw
    stats = Stats("random_limits", params=dict(sb.params, seed=SEED + 1))
    done = tries = 0
    while done < N_RANDOM and tries < 10 * N_RANDOM + 10:
        tries += 1
        limit, model, dense = LN.random_limit_model(hw, rng, LN.LIMITS[done % len(LN.LIMITS)])
        try:
            prog = LN.compile_limit(model, hw, dense)
        except CompileError:
            continue
        moderate_flow(sb, r)
        await check_network(sb, ok, r, rng, f"random {done} ({limit})", model, prog, stats, f"random:{limit}")
        done += 1
        if done % 10 == 0:
            stats.write()
    await sb.settle()
    stats.write()
    assert done == N_RANDOM, f"only {done} of {N_RANDOM} random limit networks compiled"


# ----------------------------------------------------------------------------- pytest runners

# the CI case, then the --fuzz campaign (marked slow)
RUNS = [builds.param("verilator-top-L16", 4),
        builds.param("verilator-top-L8", 70, slow=True), builds.param("verilator-top-L4", 70, slow=True),
        builds.param("verilator-top-L16", 70, slow=True), builds.param("icarus-top-L8", 6, slow=True)]


@pytest.mark.parametrize("build,nets", RUNS)
def test_rtl_limits(build, nets, tmp_path):
    data = builds.run_with_stats(build, __file__, {"ZEROSKIP_LIMIT_NETS": str(nets)}, tmp_path, f"limits{nets}")
    assert data["random_limits"]["cases"] == nets
    fixed = data["limits"]["extra"]["fixed"]
    assert {"max_layers", "w_slots", "act_disjoint", "act_pingpong", "acc_bound"} <= set(fixed)


@pytest.mark.parametrize("lanes,act_bytes,w_slots", [(4, 65536, 16384), (8, 65536, 16384), (16, 65536, 16384),
                                                     (8, 8192, 4096)])
def test_limit_networks_golden(lanes, act_bytes, w_slots):
    """The limit networks without the RTL: golden == integer reference, cycles ==
    predict_cycles, and every limit really reached (fast)."""
    from zeroskip.driver.golden import GoldenEngine
    from zeroskip.host.compiler.lowering import plan_regions
    from zeroskip.host.quant.reference import run_reference

    hw = HwConfig(lanes=lanes, act_bytes=act_bytes, w_slots=w_slots, site_cap=0)
    rng = np.random.default_rng(lanes + act_bytes)
    seen = {}
    for name, model, dense in LN.fixed_models(hw, rng):
        prog = LN.compile_limit(model, hw, dense)
        g = GoldenEngine(hw)
        assert g.load(encode_program(prog)).size == 1 and g.program is not None, name
        x = LN.limit_inputs(rng, model, 3)
        out, cnt = g.run_images(pack_inputs(x, prog.meta["input_layout"]))
        np.testing.assert_array_equal(out, run_reference(model, x), err_msg=name)
        assert cnt["CYCLES"] == predict_cycles(prog, 3)
        regs, clears = plan_regions(model, hw)
        seen[name] = (prog, max(r.base + r.size for r in regs.values()), any(clears.values()))
    assert len(seen["max_layers"][0].layers) == hw.max_layers
    assert seen["w_slots"][0].slots_used() == hw.w_slots
    assert seen["act_disjoint"][1] > 0.9 * hw.act_bytes and not seen["act_disjoint"][2]
    assert seen["act_pingpong"][1] > 0.9 * hw.act_bytes and seen["act_pingpong"][2]
    if "ch_cap" in seen:
        assert seen["ch_cap"][0].n_channels == hw.ch_cap
    if "out_cap" in seen:
        assert seen["out_cap"][0].n_out == hw.out_cap
    for i in range(20 if builds.fuzz_enabled() else 6):
        limit, model, dense = LN.random_limit_model(hw, rng)
        try:
            prog = LN.compile_limit(model, hw, dense)
        except CompileError:
            continue
        g = GoldenEngine(hw)
        g.load(encode_program(prog))
        x = LN.limit_inputs(rng, model, 2)
        out, _ = g.run_images(pack_inputs(x, prog.meta["input_layout"]))
        np.testing.assert_array_equal(out, run_reference(model, x), err_msg=f"random {i} ({limit})")
