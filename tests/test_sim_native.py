"""The native simulation (``zeroskip.driver.sim.native``): ``zeroskip_top`` Verilated into a
shared library, clock and AXI masters in C++, loaded with ctypes.

Bit-exact with the golden model on TinyCNN-shaped, random and sparse-pixel programs, through
the unchanged ``ZeroSkip`` driver and through the one-call-per-batch runner;
``CYCLES − STALL`` equal to ``predict_cycles``; a malformed program answered with the
engine's error beat and TLAST; a cycle deadline that returns an error instead of spinning;
the sharded runner equal to one process; and one TinyCNN run compared with the cocotb sim
backend (same outputs, same engine counters). One library build (LANES=8, FAULT_INJECT=1)
serves the module.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from zeroskip.driver import DmaTimeout, EngineError, ZeroSkip, open_backend
from zeroskip.driver import contract as C
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.errors import BuildError, SimError
from zeroskip.driver.golden import GoldenEngine, pack_image_beats, parse_response, predict_cycles
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.driver.sim import native

# the host modules that make programs (one place, should they move)
from zeroskip.host.compiler.lowering import CompileError, compile_model
from zeroskip.host.quant.randnet import random_input, random_qmodel, random_sparse_input, random_sparse_qmodel

pytestmark = [pytest.mark.rtl, pytest.mark.xdist_group("sim-native")]

HW = HwConfig()
R = C.REG


def workload(model, x, hw=HW, **compile_kw):
    prog = compile_model(model, hw, **compile_kw)
    beats = encode_program(prog)
    xp = pack_inputs(x, prog.meta["input_layout"])
    g = GoldenEngine(hw)
    g.load(beats)
    return prog, beats, xp, g.run_images(xp)[0]


def tiny_workload(seed, n):
    """TinyCNN (70 % sparse, random weights) as the bench runs it, and ``n`` images."""
    w = native.tinycnn_workload(n, HW, seed=seed)
    return w.program, w.beats, w.packed, w.expected


@pytest.fixture(scope="module")
def lib():
    return native.build_native(HW, fault_inject=True, quiet=True)


@pytest.fixture(scope="module")
def zs(lib):
    drv = ZeroSkip(native.open_native(HW, lib=lib), timeout=60)
    yield drv
    drv.close()


@pytest.fixture(scope="module")
def runner(lib):
    r = native.NativeRunner(native.NativeSim(lib))
    yield r
    r.close()


def test_driver_tinycnn_bit_exact_and_cycle_exact(zs):
    prog, beats, xp, ref = tiny_workload(0, 40)
    info = zs.load_program(beats)
    assert info.n_out == 2
    for bs in (1, 32):
        res = zs.run(xp[:bs + 3], batch_size=bs)
        np.testing.assert_array_equal(res.outputs, ref[:bs + 3])
        assert list(res.cycles) == [predict_cycles(prog, k) for k in res.timings["images"]]
        assert (res.timings["cycles_total"] >= res.cycles).all()


@pytest.mark.parametrize("seed", range(4))
def test_random_networks_driver_and_runner(zs, runner, seed):
    rng = np.random.default_rng(50 + seed)
    model = random_qmodel(rng, zero_channel=seed == 1, saturate=seed == 2, dense_channel=seed == 3)
    prog, beats, xp, ref = workload(model, random_input(rng, model, 5))
    zs.load_program(beats)
    res = zs.run(xp, batch_size=3)
    np.testing.assert_array_equal(res.outputs, ref)
    assert list(res.cycles) == [predict_cycles(prog, 3), predict_cycles(prog, 2)]
    runner.load(beats)
    got = runner.run(xp, batch_size=2)
    np.testing.assert_array_equal(got.outputs, ref)
    assert list(got.images) == [2, 2, 1]
    assert list(got.cycles) == [predict_cycles(prog, k) for k in got.images]
    assert list(got.stall) == [0, 0, 0]      # the C++ DMA never keeps the engine waiting


@pytest.mark.parametrize("seed", range(3))
def test_random_graphs_native(zs, seed):
    """Layer graphs (stride 2, depthwise, pools, residual adds, hcw kernels) on the native
    simulation: bit-exact with the golden model, cycles = prediction."""
    from zeroskip.host.quant.randnet import random_graph_qmodel, random_hcw_qmodel

    rng = np.random.default_rng(70 + seed)
    model = random_hcw_qmodel(rng) if seed == 2 else random_graph_qmodel(rng)
    prog, beats, xp, ref = workload(model, random_input(rng, model, 3))
    zs.load_program(beats)
    res = zs.run(xp, batch_size=3)
    np.testing.assert_array_equal(res.outputs, ref)
    assert list(res.cycles) == [predict_cycles(prog, 3)]


def test_model_predict_on_native_backend(tmp_path):
    """``Model(bundle, backend="native")``: the user's API over the native simulation."""
    import torch
    from torch import nn
    from zeroskip.driver import Model
    from zeroskip.host import convert

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    x = np.random.default_rng(1).normal(size=(16, 1, 12, 12)).astype(np.float32)
    conv = convert(net, x, sparsity=0.5)
    path = conv.export(tmp_path / "b", test_inputs=x[:4])
    with Model(path, backend="native", quiet=True) as m:
        y = m.predict(x[:5])
        assert m.last.cycles_per_image == conv.cycles()
        assert m.verify()["bit_exact"]
    np.testing.assert_array_equal(y, conv.predict(x[:5]))


@pytest.mark.parametrize("mode", ["sites", "reduce"])
def test_sparse_pixel_networks(zs, runner, mode):
    rng = np.random.default_rng(7)
    done = 0
    while done < 2:
        model = random_sparse_qmodel(rng, zero_channel=rng.random() < 0.3)
        try:
            prog, beats, xp, ref = workload(model, random_sparse_input(rng, model, 4), input_mode=mode)
        except CompileError:
            continue
        zs.load_program(beats)
        np.testing.assert_array_equal(zs.run(xp, batch_size=3).outputs, ref)
        runner.load(beats)
        res = runner.run(xp, batch_size=4)
        np.testing.assert_array_equal(res.outputs, ref)
        g = GoldenEngine(HW)
        g.load(beats)
        g.run_images(xp)
        assert int(res.cycles[0]) == g.counters["CYCLES"] - g.counters["STALL"]
        done += 1


def test_malformed_program_gets_error_beat_with_tlast(lib, zs):
    prog, beats, xp, ref = tiny_workload(2, 3)
    bad_magic = beats.copy()
    bad_magic[0] = np.uint64(int(bad_magic[0]) ^ 0xFF)
    sim = native.NativeSim(lib)
    try:
        for bad, code in ((bad_magic, "BAD_MAGIC"), (beats[:len(beats) // 2], "TRUNCATED")):
            res = sim.command([(R["CTRL"], C.CTRL["LOAD"])], bad, 4, 100_000, [R["STATUS"]])
            assert res.status == native.DONE and res.tlast          # the answer ends with TLAST
            np.testing.assert_array_equal(res.beats, GoldenEngine(HW).load(bad))
            assert parse_response(int(res.beats[-1]))[1] == C.ERROR_CODES[code]
            st = res.values[R["STATUS"]]
            assert st & C.STATUS["ERROR"] and (st >> 8) & 0xFF == C.ERROR_CODES[code]
        # the same model then loads a valid program; a RUN with an image short answers
        # with the error beat (and TLAST), and the next RUN is right
        runner = native.NativeRunner(sim)
        runner.load(beats)
        short = pack_image_beats(xp, prog.in_bytes)[:-1]
        res = sim.command([(R["BATCH"], 3), (R["CTRL"], C.CTRL["RUN"])], short, 8, 100_000, [R["STATUS"]])
        assert res.status == native.DONE and res.tlast
        g = GoldenEngine(HW)
        g.load(beats)
        np.testing.assert_array_equal(res.beats, g.run(short, 3))
        assert parse_response(int(res.beats[-1]))[:2] == (C.ERR_MAGIC, C.ERROR_CODES["INPUT_SHORT"])
        np.testing.assert_array_equal(runner.run(xp).outputs, ref)
    finally:
        sim.close()
    bad = beats.copy()
    bad[0] = np.uint64((int(bad[0]) & ~(0xFFFF << 32)) | (7 << 32))                 # format version 7
    with pytest.raises(EngineError, match="BAD_VERSION"):
        zs.load_program(bad)
    zs.load_program(beats)
    np.testing.assert_array_equal(zs.run(xp).outputs, ref)


def test_cycle_deadline_returns_an_error(lib):
    prog, beats, xp, ref = tiny_workload(3, 4)
    runner = native.NativeRunner(native.NativeSim(lib))
    sim = runner.sim
    try:
        runner.load(beats)
        need = predict_cycles(prog, 4)
        c0 = sim.cycle
        res = sim.command([(R["BATCH"], 4), (R["CTRL"], C.CTRL["RUN"])], pack_image_beats(xp, prog.in_bytes),
                          4 * -(-prog.n_out // 2), need // 2)
        assert res.status == native.DEADLINE and not res.tlast
        assert need // 2 <= sim.cycle - c0 < need                                  # stopped at the deadline
        sim.write(R["CTRL"], C.CTRL["SOFT_RESET"])
        # the engine never ends its stream (FAULT suppresses TLAST): an error, not a hang
        sim.write(R["FAULT"], 1)
        t0 = time.monotonic()
        with pytest.raises(DmaTimeout, match="did not end with TLAST within"):
            runner.run(xp, batch_size=4)
        assert time.monotonic() - t0 < 30
        sim.write(R["FAULT"], 0)
        np.testing.assert_array_equal(runner.run(xp).outputs, ref)
    finally:
        runner.close()


def test_driver_missing_tlast_times_out_then_recovers(zs):
    _, beats, xp, ref = tiny_workload(1, 4)
    zs.load_program(beats)
    zs.regs.set_fault(True)
    t0 = time.monotonic()
    with pytest.raises(DmaTimeout, match="receive channel did not complete within 2 s.*TLAST"):
        zs.run(xp, timeout=2.0)
    assert 2.0 <= time.monotonic() - t0 < 5.0
    zs.regs.set_fault(False)
    st = zs.status()
    assert st.program_valid and not st.busy
    np.testing.assert_array_equal(zs.run(xp).outputs, ref)


def test_sharded_equals_one_process(lib, runner):
    prog, beats, xp, ref = tiny_workload(4, 70)
    runner.load(beats)
    one = runner.run(xp, batch_size=8)
    with native.ShardedRunner(lib, processes=2) as pool:
        assert pool.load(beats).n_out == prog.n_out
        many = pool.run(xp, batch_size=8)
    assert many.processes == 2
    np.testing.assert_array_equal(many.outputs, ref)
    for k in ("images", "cycles", "compute", "macs"):
        np.testing.assert_array_equal(getattr(many, k), getattr(one, k))


def test_sharded_worker_error_names_the_shard(lib):
    with native.ShardedRunner(lib, processes=1) as pool:
        with pytest.raises(SimError, match="shard 1 of 1 failed during LOAD: .*magic"):
            pool.load(np.zeros(8, np.uint64))


def test_same_as_cocotb_backend(lib):
    """One TinyCNN program on the cocotb sim backend and the native library: the same
    outputs and the same engine counters (CYCLES − STALL, COMPUTE, MACS) per batch; only
    the DMA's start-up stall may differ."""
    prog, beats, xp, ref = tiny_workload(5, 6)
    results = []
    for backend in (open_backend("sim", HW, simulator="verilator", fault_inject=True, quiet=True),
                    native.open_native(HW, lib=lib)):
        with ZeroSkip(backend, timeout=60) as drv:
            drv.load_program(beats)
            results.append(drv.run(xp, batch_size=4))
    cocotb_res, native_res = results
    np.testing.assert_array_equal(native_res.outputs, ref)
    np.testing.assert_array_equal(native_res.outputs, cocotb_res.outputs)
    np.testing.assert_array_equal(native_res.cycles, cocotb_res.cycles)
    np.testing.assert_array_equal(native_res.macs, cocotb_res.macs)
    assert list(native_res.cycles) == [predict_cycles(prog, 4), predict_cycles(prog, 2)]


def test_build_is_cached_per_config_and_failures_show_errors(lib, tmp_path, monkeypatch):
    t0 = time.monotonic()
    assert native.build_native(HW, fault_inject=True, quiet=True) == lib                # cached
    assert time.monotonic() - t0 < 5
    keys = {native.native_key(native.native_params(hw, fi))
            for hw, fi in ((HW, True), (HW, False), (HwConfig(lanes=4), True), (HwConfig(out_cap=128), True))}
    assert len(keys) == 4
    broken = tmp_path / "src"
    broken.mkdir()
    (broken / "zs_native.cpp").write_text((native.NATIVE_DIR / "zs_native.cpp").read_text()
                                          + "\nstatic int broken = undefined_name_here;\n")
    monkeypatch.setattr(native, "NATIVE_DIR", broken)
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BuildError, match=r"(?s)failed; from .*build\.log.*error:.*undefined_name_here"):
        native.build_native(HW, quiet=True)
