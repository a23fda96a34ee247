"""Robustness of the RTL in simulation (docs/robustness.md): stream fuzzing, AXI stress and
SOFT_RESET, networks at the capacity limits.

The cocotb benches are tb/test_stream_fuzz.py, tb/test_axi_stress.py and
tb/test_rtl_limits.py. They run on the same cached ``zeroskip_top`` builds as
tests/test_rtl_top.py (same parameters, same xdist groups), so no extra compile is
needed and two workers never compile one build. The CI subset is fixed-seed and spread
over LANES 8 / 4 / 16; ``--fuzz`` (``make fuzz``) runs the long campaigns marked
``slow``: >= 500 stream cases, >= 200 random limit networks, 100+ SOFT_RESET trials per
configuration.

Each bench writes its counts (cases per mutation and error code, the largest recovery
time, ...) to a JSON file; the test prints a summary and, when ``ZEROSKIP_STATS_DIR``
is set, copies the file there (the figures of docs/robustness.md).
"""

import json
import os
import shutil

import numpy as np
import pytest
from zeroskip.driver.sim import build as simbuild

FUZZ = os.environ.get("ZEROSKIP_FUZZ") == "1"

# the build parameters and xdist groups of tests/test_rtl_top.py
BUILDS = {
    "verilator-L8": ("verilator", {"LANES": 8, "FAULT_INJECT": 1}, "verilator-top-L8"),
    "verilator-L4": ("verilator", {"LANES": 4, "FAULT_INJECT": 1}, "verilator-top-L4"),
    "verilator-L16": ("verilator", {"LANES": 16, "FAULT_INJECT": 1}, "verilator-top-L16"),
    "icarus-L8": ("icarus", {"LANES": 8, "FAULT_INJECT": 1, "ACT_BYTES": 8192, "W_SLOTS": 4096}, "icarus-top-L8"),
}


def _param(build, *rest, slow=False):
    marks = [pytest.mark.xdist_group(BUILDS[build][2])]
    if slow:
        marks.append(pytest.mark.slow)
    return pytest.param(build, *rest, id="-".join([build, *map(str, rest)]), marks=marks)


def _run(build, module, env, tmp_path, name):
    simulator, params, _ = BUILDS[build]
    stats = tmp_path / "stats.json"
    env = {**env, "ZEROSKIP_FUZZ_STATS": str(stats)}
    simbuild.run("zeroskip_top", module, params, simulator, test_dir=tmp_path, extra_env=env)
    data = json.loads(stats.read_text())
    out = os.environ.get("ZEROSKIP_STATS_DIR")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copy(stats, os.path.join(out, f"{name}-{build}.json"))
    for bench, d in data.items():
        print(f"{bench} [{build}]: {d['cases']} cases, recovery {d.get('recovery')}")
    return data


# ----------------------------------------------------------------------------- stream fuzz

STREAM_CI = [_param("verilator-L8", 60)]
STREAM_LONG = [_param("verilator-L8", 600, slow=True), _param("verilator-L4", 250, slow=True),
               _param("verilator-L16", 250, slow=True), _param("icarus-L8", 60, slow=True)]


def _stream(build, cases, tmp_path):
    data = _run(build, "zeroskip.tb.test_stream_fuzz", {"ZEROSKIP_FUZZ_CASES": str(cases)}, tmp_path,
                f"stream{cases}")
    d = data["stream_fuzz"]
    assert d["cases"] == cases
    codes = {c for kind in d["kinds"].values() for c in kind}
    # every error the stream can produce was provoked, and valid cases succeeded
    want = {"OK", "BAD_MAGIC", "BAD_VERSION", "CONFIG_MISMATCH", "TRUNCATED", "TOO_LONG", "BAD_LAYER",
            "INPUT_SHORT", "UNEXPECTED"}
    if cases >= 200:
        want |= {"CAPACITY", "NO_PROGRAM", "INPUT_LONG", "BANK_CONFLICT"}
    assert want <= codes, f"not provoked: {sorted(want - codes)}"


@pytest.mark.rtl
@pytest.mark.parametrize("build,cases", STREAM_CI + STREAM_LONG)
def test_stream_fuzz(build, cases, tmp_path):
    _stream(build, cases, tmp_path)


# ----------------------------------------------------------------------------- AXI stress

STRESS_CI = [_param("verilator-L4", 3, 24)]
STRESS_LONG = [_param("verilator-L8", 12, 120, slow=True), _param("verilator-L4", 12, 120, slow=True),
               _param("verilator-L16", 12, 120, slow=True)]


def _stress(build, rounds, trials, tmp_path):
    data = _run(build, "zeroskip.tb.test_axi_stress",
                {"ZEROSKIP_STRESS_ROUNDS": str(rounds), "ZEROSKIP_RESET_TRIALS": str(trials)}, tmp_path,
                f"stress{trials}")
    assert data["axi_stress"]["cases"] == 2 * rounds
    assert data["axi_stress"]["extra"]["ignored_commands"] > 0
    assert data["soft_reset"]["cases"] == trials
    states = {k.split(":")[2] for k in data["soft_reset"]["kinds"]}
    assert {"state1", "state2", "state3", "state4", "state6"} <= states, states
    assert data["soft_reset"]["extra"]["reset_with_stray_rest"] > 0


@pytest.mark.rtl
@pytest.mark.parametrize("build,rounds,trials", STRESS_CI + STRESS_LONG)
def test_axi_stress(build, rounds, trials, tmp_path):
    _stress(build, rounds, trials, tmp_path)


# ----------------------------------------------------------------------------- limits

LIMITS_CI = [_param("verilator-L16", 4)]
LIMITS_LONG = [_param("verilator-L8", 70, slow=True), _param("verilator-L4", 70, slow=True),
               _param("verilator-L16", 70, slow=True), _param("icarus-L8", 6, slow=True)]


def _limits(build, nets, tmp_path):
    data = _run(build, "zeroskip.tb.test_rtl_limits", {"ZEROSKIP_LIMIT_NETS": str(nets)}, tmp_path,
                f"limits{nets}")
    assert data["random_limits"]["cases"] == nets
    fixed = data["limits"]["extra"]["fixed"]
    assert {"max_layers", "w_slots", "act_disjoint", "act_pingpong", "acc_bound"} <= set(fixed)


@pytest.mark.rtl
@pytest.mark.parametrize("build,nets", LIMITS_CI + LIMITS_LONG)
def test_limit_networks(build, nets, tmp_path):
    _limits(build, nets, tmp_path)


# ----------------------------------------------------------------------------- golden twin

@pytest.mark.parametrize("lanes,act_bytes,w_slots", [(4, 65536, 16384), (8, 65536, 16384), (16, 65536, 16384),
                                                     (8, 8192, 4096)])
def test_limit_networks_golden(lanes, act_bytes, w_slots):
    """The limit networks without the RTL: golden == integer reference, cycles ==
    predict_cycles, and every limit really reached (fast; runs everywhere)."""
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.golden import GoldenEngine, predict_cycles
    from zeroskip.driver.program import HwConfig, encode_program
    from zeroskip.host.compiler.lowering import CompileError, plan_regions
    from zeroskip.host.quant.reference import run_reference
    from zeroskip.tb import limitnets as LN

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
    for i in range(20 if FUZZ else 6):
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
