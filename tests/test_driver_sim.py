"""The driver over the ``sim`` backend: the real zeroskip_top in a live cocotb simulation.

Bit-exact with the golden model, ``CYCLES − STALL`` equal to ``predict_cycles``, the
missing-TLAST fault (FAULT register) gives ``DmaTimeout`` within the timeout and the
overlay works again after the driver's reset, and a transfer over the DMA length register
is refused. One simulation (Verilator, FAULT_INJECT=1) serves the module; all tests share
one xdist group so it is built and started once.
"""

import time

import numpy as np
import pytest
from zeroskip.driver import DmaTimeout, EngineError, TransferTooLarge, ZeroSkip, open_backend
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import GoldenEngine, predict_cycles
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.host.compiler.lowering import compile_model, input_layout
from zeroskip.host.quant.qmodel import QLayer, QModel
from zeroskip.host.quant.randnet import random_input, random_qmodel

pytestmark = [pytest.mark.rtl, pytest.mark.xdist_group("sim-backend")]


def _layer(rng, kind, shape, last=False, **kw):
    w = rng.integers(-127, 128, shape).astype(np.int8)
    w[rng.random(shape) < 0.7] = 0
    co = shape[0]
    mult, shift = ((np.ones(co, np.int64), np.ones(co, np.int64)) if last
                   else (rng.integers(2**13, 2**15, co), rng.integers(17, 21, co)))
    return QLayer(kind, w, rng.integers(-400, 400, co).astype(np.int32), mult, shift, **kw)


def tiny_cnn(rng):
    return QModel((1, 16, 16), (_layer(rng, "conv", (8, 1, 3, 3), padding=1, relu=True, pool=True),
                                _layer(rng, "conv", (16, 8, 3, 3), padding=1, relu=True, pool=True),
                                _layer(rng, "fc", (2, 256), last=True)), name="tinycnn")


DEFAULT_HW = HwConfig()


def workload(model, n, rng, hw=DEFAULT_HW):
    prog = compile_model(model, hw)
    beats = encode_program(prog)
    xp = pack_inputs(random_input(rng, model, n), input_layout(model).to_dict())
    g = GoldenEngine(hw)
    g.load(beats)
    return prog, beats, xp, g.run_images(xp)[0]


@pytest.fixture(scope="module")
def zs():
    drv = ZeroSkip(open_backend("sim", HwConfig(), simulator="verilator", fault_inject=True, quiet=True), timeout=60)
    yield drv
    drv.close()


def test_tinycnn_bit_exact_and_cycle_exact(zs):
    rng = np.random.default_rng(0)
    prog, beats, xp, ref = workload(tiny_cnn(rng), 40, rng)
    zs.load_program(beats)
    for bs in (1, 32):
        res = zs.run(xp[:bs + 3], batch_size=bs)
        np.testing.assert_array_equal(res.outputs, ref[:bs + 3])
        sizes = list(res.timings["images"])
        assert list(res.cycles) == [predict_cycles(prog, k) for k in sizes]
        assert (res.timings["cycles_total"] >= res.cycles).all()


@pytest.mark.parametrize("seed", range(4))
def test_random_networks_bit_exact(zs, seed):
    rng = np.random.default_rng(50 + seed)
    model = random_qmodel(rng, zero_channel=seed == 1, saturate=seed == 2)
    prog, beats, xp, ref = workload(model, 5, rng)
    zs.load_program(beats)
    res = zs.run(xp, batch_size=3)
    np.testing.assert_array_equal(res.outputs, ref)
    assert list(res.cycles) == [predict_cycles(prog, 3), predict_cycles(prog, 2)]


def test_missing_tlast_times_out_then_recovers(zs):
    rng = np.random.default_rng(1)
    _, beats, xp, ref = workload(tiny_cnn(rng), 4, rng)
    zs.load_program(beats)
    zs.regs.set_fault(True)
    t0 = time.monotonic()
    with pytest.raises(DmaTimeout, match="receive channel did not complete within 3 s.*TLAST"):
        zs.run(xp, timeout=3.0)
    assert 3.0 <= time.monotonic() - t0 < 6.0
    zs.regs.set_fault(False)
    st = zs.status()
    assert st.program_valid and not st.busy
    np.testing.assert_array_equal(zs.run(xp).outputs, ref)


def test_engine_error_then_valid_program(zs):
    rng = np.random.default_rng(2)
    _, beats, xp, ref = workload(tiny_cnn(rng), 3, rng)
    bad = beats.copy()
    bad[0] = np.uint64((int(bad[0]) & ~(0xFFFF << 32)) | (7 << 32))      # format version 7
    with pytest.raises(EngineError, match="BAD_VERSION"):
        zs.load_program(bad)
    zs.load_program(beats)
    np.testing.assert_array_equal(zs.run(xp).outputs, ref)


def test_length_register_limit_is_refused():
    rng = np.random.default_rng(3)
    _, beats, xp, ref = workload(tiny_cnn(rng), 8, rng)
    with ZeroSkip(open_backend("sim", HwConfig(), fault_inject=True, len_bits=11, quiet=True), timeout=60) as drv:
        drv.load_program(beats)                                   # 1,5xx bytes < 2047
        with pytest.raises(TransferTooLarge, match=r"\(11 bits\) allows 2047 bytes"):
            drv.run(xp, batch_size=8)
        res = drv.run(xp)                                         # default batches fit
        assert max(res.timings["images"]) * 328 <= 2047
        np.testing.assert_array_equal(res.outputs, ref)


@pytest.mark.xdist_group("sim-backend-icarus")
def test_icarus_backend_bit_exact():
    hw = HwConfig(act_bytes=8192, w_slots=4096)
    rng = np.random.default_rng(4)
    model = random_qmodel(rng, input_shape=(1, 6, 6), n_conv=1, n_hidden_fc=0)
    prog, beats, xp, ref = workload(model, 2, rng, hw)
    with ZeroSkip(open_backend("sim", hw, simulator="icarus", quiet=True), timeout=120) as drv:
        drv.load_program(beats)
        res = drv.run(xp)
        np.testing.assert_array_equal(res.outputs, ref)
        assert res.total_cycles == predict_cycles(prog, 2)
