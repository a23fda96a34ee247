"""The driver over the ``model`` backend (golden model behind pynq-shaped objects):
outputs equal the golden model and the independent numpy reference, cycle counters equal
``predict_cycles``, programs that do not fit are refused before any DMA, engine errors
raise ``EngineError`` and leave the overlay usable, a missing TLAST times out and is
recovered from, and an over-long transfer is refused like pynq refuses it."""

import time

import npref
import numpy as np
import pytest
from zeroskip.driver import ConfigMismatch, DmaTimeout, EngineError, TransferTooLarge, ZeroSkip, open_backend
from zeroskip.driver import contract as C
from zeroskip.driver.backends.base import Backend, host_allocate
from zeroskip.driver.backends.model import ModelDMA, ModelOverlay
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.driver import STEPS
from zeroskip.driver.golden import GoldenEngine, predict_cycles
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.host.compiler.lowering import compile_model, input_layout
from zeroskip.host.quant.qmodel import QInputReduce, QLayer, QModel
from zeroskip.host.quant.randnet import random_input, random_qmodel


def _layer(rng, kind, shape, sparsity=0.7, last=False, **kw):
    w = rng.integers(-127, 128, shape).astype(np.int8)
    w[rng.random(shape) < sparsity] = 0
    co = shape[0]
    if last:
        return QLayer(kind, w, rng.integers(-500, 500, co).astype(np.int32), np.ones(co, np.int64),
                      np.ones(co, np.int64), **kw)
    return QLayer(kind, w, rng.integers(-400, 400, co).astype(np.int32), rng.integers(2**13, 2**15, co),
                  rng.integers(17, 21, co), **kw)


def tiny_cnn(rng, c1=8, c2=16, n_out=2):
    """TinyCNN-shaped: conv3x3(8)+ReLU+pool, conv3x3(16)+ReLU+pool, FC on 1x16x16 inputs."""
    return QModel((1, 16, 16), (
        _layer(rng, "conv", (c1, 1, 3, 3), padding=1, relu=True, pool=True),
        _layer(rng, "conv", (c2, c1, 3, 3), padding=1, relu=True, pool=True),
        _layer(rng, "fc", (n_out, c2 * 16), last=True)), name="tinycnn")


DEFAULT_HW = HwConfig()


def compiled(model, hw=DEFAULT_HW):
    prog = compile_model(model, hw)
    return prog, encode_program(prog)


def packed(rng, model, n):
    x = random_input(rng, model, n)
    return x, pack_inputs(x, input_layout(model).to_dict())


@pytest.fixture()
def tiny():
    rng = np.random.default_rng(1)
    model = tiny_cnn(rng)
    prog, beats = compiled(model)
    x, xp = packed(rng, model, 37)
    return model, prog, beats, x, xp


def golden_outputs(beats, xp, hw=DEFAULT_HW):
    g = GoldenEngine(hw)
    g.load(beats)
    return g.run_images(xp)[0]


def test_tinycnn_bit_exact_in_batches(tiny):
    model, prog, beats, x, xp = tiny
    ref = npref.forward(model, x)
    with ZeroSkip(open_backend("model")) as zs:
        info = zs.load_program(beats)
        assert (info.in_bytes, info.n_out, info.lanes) == (prog.in_bytes, prog.n_out, 8)
        for bs in (1, 5, 37):
            res = zs.run(xp, batch_size=bs)
            np.testing.assert_array_equal(res.outputs, ref)
            sizes = [min(bs, 37 - lo) for lo in range(0, 37, bs)]
            assert list(res.timings["images"]) == sizes
            assert list(res.cycles) == [predict_cycles(prog, k) for k in sizes]
            assert res.total_cycles == predict_cycles(prog, 37)
            assert all(res.timings["stall"] == 0)
            assert (res.macs > 0).all()
        assert set(res.timings) >= set(STEPS) | {"images", "cycles_total", "stall"}
        t = res.totals()
        # the steps and the time outside them add up to the measured wall clock of run()
        assert t["other"] >= 0 and abs(sum(t[k] for k in STEPS) + t["other"] - t["wall"]) < 1e-9
        assert t["wall"] == pytest.approx(res.wall_s)
        assert all(k in res.report() for k in STEPS + ("other",))
        assert res.compute_latency_us == pytest.approx(predict_cycles(prog, 1) / 100)
        assert (res.batch_latency_s > 0).all() and res.batch_latency_s.shape == res.cycles.shape


def test_wait_deadline_scales_with_the_batch(tiny):
    """A RUN's deadline is the fixed margin plus the golden cycle bound of the batch at the
    backend's slowest rate: a large batch gets more time, a small one is cut off quickly."""
    _, prog, beats, _, xp = tiny
    with ZeroSkip(open_backend("model"), timeout=0.5) as zs:
        zs.load_program(beats)
        rate = zs.backend.min_cycles_per_s
        one = zs.deadline(zs._image_cycles_bound)
        assert one == pytest.approx(0.5 + predict_cycles(prog, 1) / rate)
        big = zs.deadline(65535 * zs._image_cycles_bound)
        assert big > 65535 * predict_cycles(prog, 1) / rate
        assert zs.deadline(10 ** 9, timeout=3.0) == 3.0


@pytest.mark.parametrize("seed", range(12))
def test_random_networks_match_golden_and_reference(seed):
    rng = np.random.default_rng(100 + seed)
    lanes = (4, 8, 16, 32)[seed % 4]
    hw = HwConfig(lanes=lanes)
    model = random_qmodel(rng, zero_channel=seed % 2 == 0, dense_channel=seed % 3 == 0, saturate=seed % 4 == 1)
    prog, beats = compiled(model, hw)
    x, xp = packed(rng, model, 6)
    with ZeroSkip(open_backend("model", hw)) as zs:
        zs.load_program(beats)
        res = zs.run(xp, batch_size=4)
    np.testing.assert_array_equal(res.outputs, golden_outputs(beats, xp, hw))
    np.testing.assert_array_equal(res.outputs, npref.forward(model, x))
    assert list(res.cycles) == [predict_cycles(prog, 4), predict_cycles(prog, 2)]


def test_program_as_bytes_and_int8_images(tiny):
    _, _, beats, _, xp = tiny
    with ZeroSkip(open_backend("model")) as zs:
        zs.load_program(beats.astype("<u8").tobytes())
        res = zs.run(xp.view(np.int8)[:3])
    np.testing.assert_array_equal(res.outputs, golden_outputs(beats, xp[:3]))


def test_sites_mode_images_of_varying_length():
    rng = np.random.default_rng(7)
    model = QModel((1, 8, 8), (_layer(rng, "sconv", (4, 1, 3, 3), padding=1, relu=True),
                               _layer(rng, "fc", (3, 4 * 64), last=True)), reduce=QInputReduce(10, 12))
    prog, beats = compiled(model)
    x = np.zeros((9, 1, 8, 8), np.int8)
    for i, img in enumerate(x):            # 0 .. 16 candidate pixels: empty, partial and capped lists
        idx = rng.choice(64, size=2 * i, replace=False)
        img[0, idx // 8, idx % 8] = rng.integers(-128, 128, idx.size)
    images = pack_inputs(x, prog.meta["input_layout"])
    assert len({a.size for a in images}) > 1
    with ZeroSkip(open_backend("model")) as zs:
        assert zs.load_program(beats).input_mode == 2
        res = zs.run(images, batch_size=4)
        np.testing.assert_array_equal(res.outputs, npref.forward_sparse(model, x))
        assert len(res.cycles) == 3 and (res.cycles > 0).all()
        with pytest.raises(ValueError, match="pre-reduced sites"):
            zs.run(np.zeros((2, 8), np.uint8))


# ------------------------------------------------------------------ refusals before any DMA

class CountingOverlay(ModelOverlay):
    """Counts the packets that reach the engine's input port."""

    packets = 0

    def stream_in(self, beats):
        CountingOverlay.packets += 1
        super().stream_in(beats)


def model_backend(hw):
    ov = CountingOverlay(hw)
    return Backend(kind="model", ip=ov, dma=ModelDMA(ov), allocate=host_allocate)


def test_lanes_mismatch_is_refused_before_dma():
    rng = np.random.default_rng(2)
    _, beats = compiled(tiny_cnn(rng), HwConfig(lanes=8))
    CountingOverlay.packets = 0
    zs = ZeroSkip(model_backend(HwConfig(lanes=16)))
    msg = r"bundle built for LANES=8, overlay has LANES=16: recompile with --lanes 16"
    with pytest.raises(ConfigMismatch, match=msg):
        zs.load_program(beats)
    with pytest.raises(ConfigMismatch, match="LANES=4, overlay has LANES=16"):
        zs.load_program(compiled(tiny_cnn(rng), HwConfig(lanes=16))[1], manifest_hw=HwConfig(lanes=4).to_dict())
    assert CountingOverlay.packets == 0


def test_capacity_mismatch_is_refused_before_dma():
    rng = np.random.default_rng(3)
    prog, beats = compiled(tiny_cnn(rng))
    CountingOverlay.packets = 0
    small = HwConfig(w_slots=64, ch_cap=8, out_cap=1)
    with pytest.raises(ConfigMismatch) as e:
        ZeroSkip(model_backend(small)).load_program(beats)
    msg = str(e.value)
    assert f"weight slots {prog.slots_used()} > 64" in msg and "channel records" in msg and "outputs 2 > 1" in msg
    assert CountingOverlay.packets == 0


# ------------------------------------------------------------------ engine errors

@pytest.mark.parametrize("mutate,code", [
    (lambda b: _set(b, 0, 32, 16, 9), "BAD_VERSION"),                       # format version
    (lambda b: b[:-4], "TRUNCATED"),                                        # cut short
    (lambda b: _set(b, 4, 0, 8, 0xFF), "BAD_LAYER"),                        # unknown layer flags
])
def test_engine_load_errors_then_recovery(tiny, mutate, code):
    _, _, beats, _, xp = tiny
    with ZeroSkip(open_backend("model")) as zs:
        with pytest.raises(EngineError) as e:
            zs.load_program(mutate(beats.copy()))
        assert e.value.name == code and e.value.code == C.ERROR_CODES[code]
        assert C.ERROR_FIX[e.value.code] in str(e.value)
        assert zs.status().error and not zs.status().program_valid
        with pytest.raises(Exception, match="no program loaded"):
            zs.run(xp[:1])
        zs.load_program(beats)
        np.testing.assert_array_equal(zs.run(xp[:4]).outputs, golden_outputs(beats, xp[:4]))


def _set(beats, beat, lo, bits, value):
    m = ((1 << bits) - 1) << lo
    beats[beat] = np.uint64((int(beats[beat]) & ~m) | (value << lo))
    return beats


def test_engine_run_error_keeps_program():
    """An image packet the engine rejects (here: sites beyond the map) raises EngineError with
    the beat index; the program stays loaded and the next run is correct."""
    rng = np.random.default_rng(4)
    model = QModel((1, 8, 8), (_layer(rng, "sconv", (2, 1, 3, 3), padding=1, relu=True),
                               _layer(rng, "fc", (2, 2 * 64), last=True)), reduce=QInputReduce(0, 4))
    prog, beats = compiled(model)
    x = np.ones((2, 1, 8, 8), np.int8)
    good = pack_inputs(x, prog.meta["input_layout"])
    bad = np.array([1, 9 | (9 << 8) | (5 << 16)], np.uint64)        # one site at (9, 9) on an 8x8 map
    with ZeroSkip(open_backend("model")) as zs:
        zs.load_program(beats)
        with pytest.raises(EngineError, match="BAD_SITES") as e:
            zs.run([good[0], bad], batch_size=2)
        assert e.value.name == "BAD_SITES" and e.value.beat >= 1
        assert zs.status().program_valid
        np.testing.assert_array_equal(zs.run(good).outputs, npref.forward_sparse(model, x))


# ------------------------------------------------------------------ DMA: TLAST, length register

def test_missing_tlast_times_out_and_recovers(tiny):
    _, _, beats, _, xp = tiny
    with ZeroSkip(open_backend("model", fault_inject=True), timeout=0.3) as zs:
        zs.load_program(beats)
        zs.regs.set_fault(True)
        t0 = time.monotonic()
        with pytest.raises(DmaTimeout) as e:
            zs.run(xp[:4])
        assert 0.3 <= time.monotonic() - t0 < 1.5
        msg = str(e.value)
        assert "receive channel" in msg and "TLAST" in msg and "length register" in msg and ".hwh" in msg
        zs.regs.set_fault(False)
        assert zs.status().program_valid and not zs.status().busy
        np.testing.assert_array_equal(zs.run(xp[:4]).outputs, golden_outputs(beats, xp[:4]))


def test_transfer_over_length_register_is_refused(tiny):
    _, prog, beats, _, xp = tiny
    per_image = -(-prog.in_bytes // 8) * 8                    # 328 bytes
    with ZeroSkip(open_backend("model", len_bits=11)) as zs:  # 2047 bytes per transfer
        zs.load_program(beats)                                # 1528 bytes
        refused = r"DMA length register \(11 bits\) allows 2047 bytes.*batch_size <= 6"
        with pytest.raises(TransferTooLarge, match=refused):
            zs.run(xp[:8], batch_size=8)
        assert zs.max_batch() == 2047 // per_image == 6
        res = zs.run(xp[:8])                                  # the default batch fits
        assert list(res.timings["images"]) == [6, 2]
        np.testing.assert_array_equal(res.outputs, golden_outputs(beats, xp[:8]))
        # the channel itself refuses like pynq's _SDMAChannel
        buf = zs.backend.allocate((300,), np.uint64)
        with pytest.raises(ValueError, match="exceeds the maximum DMA buffer size 2047"):
            zs.dma.sendchannel.transfer(buf)


def test_unexpected_data_while_idle_is_answered(tiny):
    """Data sent without CTRL.LOAD/RUN is drained and answered with UNEXPECTED (engine contract)."""
    ov = ModelOverlay()
    ov.stream_in(np.arange(3, dtype=np.uint64))
    beats, last = ov.stream_out(8)
    assert last and len(beats) == 1
    assert (beats[0] >> 32) & 0xFF == C.ERROR_CODES["UNEXPECTED"] and beats[0] & 0xFFFFFFFF == C.ERR_MAGIC
    assert ov.read(C.REG["STATUS"]) & C.STATUS["ERROR"]
