"""Sparse-pixel mode in the compiler and golden model: bit-exact against an independent
site-by-site numpy implementation, for both input formats and both pooling modes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from zeroskip.driver import contract as C
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import GoldenEngine, parse_response
from zeroskip.driver.program import HwConfig, decode_program, encode_program
from zeroskip.host.compiler.lowering import CompileError, compile_model
from zeroskip.host.quant.qmodel import QInputReduce, QLayer, QModel, QSparsePool

import npref


def _layer(rng, kind, shape, sparsity, **kw):
    w = rng.integers(-127, 128, shape).astype(np.int8)
    w[rng.random(shape) < sparsity] = 0
    co = shape[0]
    return QLayer(kind=kind, weight=w, bias=rng.integers(-400, 400, co).astype(np.int32),
                  mult=rng.integers(2**13, 2**15, co), shift=rng.integers(17, 21, co), **kw)


def sparse_model(rng, h, w, c_in, pool, n_max, threshold):
    c1, c2 = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    k = int(rng.choice([1, 3]))
    layers = [_layer(rng, "sconv", (c1, c_in, k, k), rng.uniform(0, 0.9), padding=k // 2, relu=True)]
    hh, ww = h, w
    if pool:
        layers.append(QSparsePool(pool))
        hh, ww = hh // 2, ww // 2
    layers.append(_layer(rng, "sconv", (c2, c1, 3, 3), rng.uniform(0, 0.95), padding=1, relu=bool(rng.random() < .8)))
    if pool == "max" and not layers[-1].relu:
        layers[-1] = QLayer(**{**layers[-1].__dict__, "relu": True})
    if pool and hh >= 2 and ww >= 2:
        layers.append(QSparsePool(pool))
        hh, ww = hh // 2, ww // 2
    layers.append(_layer(rng, "fc", (int(rng.integers(1, 12)), c2 * hh * ww), 0.6, relu=True))
    layers.append(_layer(rng, "fc", (int(rng.integers(1, 5)), layers[-1].c_out), 0.3))
    return QModel(input_shape=(c_in, h, w), layers=tuple(layers), reduce=QInputReduce(threshold, n_max))


def sparse_images(rng, model, n):
    c, h, w = model.input_shape
    x = np.zeros((n, c, h, w), np.int8)
    for img in x:
        k = int(rng.integers(0, min(h * w, 3 * model.reduce.n_max) + 1))
        idx = rng.choice(h * w, size=k, replace=False)
        img[:, idx // w, idx % w] = rng.integers(-128, 128, (c, k))
    return x


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), lanes=st.sampled_from([4, 8, 16, 32]), pool=st.sampled_from([None, "max", "avg"]),
       mode=st.sampled_from(["sites", "reduce"]), dense=st.booleans())
def test_sparse_pixel_bit_exact(seed, lanes, pool, mode, dense):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(4, 20)), int(rng.integers(4, 20))
    c_in = 1 if mode == "reduce" else int(rng.integers(1, 4))
    model = sparse_model(rng, h, w, c_in, pool, int(rng.integers(1, 33)), int(rng.integers(-5, 60)))
    x = sparse_images(rng, model, 4)
    hw = HwConfig(lanes=lanes)
    try:
        prog = compile_model(model, hw, dense=dense, input_mode=mode)
    except CompileError as e:  # a random dense model may not fit the weight store: a clear refusal is right
        assert "W_SLOTS" in str(e) or "ACT_BYTES" in str(e)
        reject()
    beats = encode_program(prog)
    assert np.array_equal(encode_program(decode_program(beats, hw)), beats)
    eng = GoldenEngine(hw)
    assert parse_response(eng.load(beats)[0])[1] == 0
    assert not any(eng._conflict)
    out, counters = eng.run_images(pack_inputs(x, prog.meta["input_layout"]))
    np.testing.assert_array_equal(out, npref.forward_sparse(model, x))
    # maps are scrubbed: running the batch again (state carried over) gives the same answers
    out2, counters2 = eng.run_images(pack_inputs(x[::-1], prog.meta["input_layout"]))
    np.testing.assert_array_equal(out2, out[::-1])
    assert counters2["CYCLES"] == counters["CYCLES"]


def test_site_packet_errors():
    rng = np.random.default_rng(1)
    model = sparse_model(rng, 8, 8, 1, "max", 4, 10)
    hw = HwConfig(lanes=8)
    prog = compile_model(model, hw)
    eng = GoldenEngine(hw)
    eng.load(encode_program(prog))
    good = pack_inputs(sparse_images(rng, model, 1), prog.meta["input_layout"])[0]
    too_many = np.concatenate([[np.uint64(5)], np.zeros(5, np.uint64)])
    resp = eng.run(too_many, 1)
    assert parse_response(resp[-1])[:2] == (C.ERR_MAGIC, C.ERROR_CODES["BAD_SITES"])
    off_map = np.array([1, 9 | (1 << 8)], np.uint64)
    resp = eng.run(off_map, 1)
    assert parse_response(resp[-1])[:2] == (C.ERR_MAGIC, C.ERROR_CODES["BAD_SITES"])
    out = eng.run(good, 1)
    assert out.size == -(-prog.n_out // 2)
    assert eng.status_error == 0


def test_sparse_needs_site_capacity():
    rng = np.random.default_rng(2)
    model = sparse_model(rng, 8, 8, 1, None, 40, 10)
    with pytest.raises(ValueError, match="SITE_CAP"):
        compile_model(model, HwConfig(lanes=8, site_cap=32))


def test_poolsites_grid_limit():
    """POOLSITES grids are at most 64 x 64: the compiler refuses larger pooled maps, the
    loader (golden) refuses such a descriptor with BAD_LAYER at the descriptor's beat 0."""
    rng = np.random.default_rng(5)
    hw = HwConfig(lanes=8)
    with pytest.raises(CompileError, match="64x64"):
        compile_model(sparse_model(rng, 130, 4, 1, "max", 8, 10), hw, input_mode="sites")
    with pytest.raises(CompileError, match="64x64"):
        compile_model(sparse_model(rng, 4, 131, 1, "avg", 8, 10), hw, input_mode="sites")
    model = sparse_model(rng, 129, 6, 1, "max", 8, 10)
    prog = compile_model(model, hw, input_mode="reduce")
    pl = next(i for i, lp in enumerate(prog.layers) if lp.desc.flags & C.LAYER_FLAGS["POOLSITES"])
    assert (prog.layers[pl].desc.h_it, prog.layers[pl].desc.w_valid) == (64, 3)
    beats = encode_program(prog)
    eng = GoldenEngine(hw)
    assert parse_response(eng.load(beats)[0])[1] == 0
    d0 = 4 + sum(8 + 2 * len(lp.channels) + 3 * (-(-lp.n_entries // 16)) for lp in prog.layers[:pl])
    for lo in (0, 32):  # h_it, w_valid of descriptor beat 1
        bad = beats.copy()
        v = int(bad[d0 + 1])
        bad[d0 + 1] = np.uint64((v & ~(0xFFFF << lo)) | (65 << lo))
        _, code, idx = parse_response(eng.load(bad)[0])
        assert (code, idx) == (C.ERROR_CODES["BAD_LAYER"], d0)
        # the same field at 64 is accepted
        ok = beats.copy()
        ok[d0 + 1] = np.uint64((v & ~(0xFFFF << lo)) | (64 << lo))
        assert parse_response(eng.load(ok)[0])[1] == 0


def test_sites_on_the_out_layer_is_refused():
    """The OUT layer writes results, not a site map: SITES there is BAD_LAYER at its
    descriptor (the flag would leave the results unwritten)."""
    rng = np.random.default_rng(9)
    hw = HwConfig(lanes=8)
    prog = compile_model(sparse_model(rng, 12, 12, 1, "max", 8, 10), hw, input_mode="sites")
    beats = encode_program(prog)
    d_out = 4 + sum(8 + 2 * len(lp.channels) + 3 * (-(-lp.n_entries // 16)) for lp in prog.layers[:-1])
    assert int(beats[d_out]) & C.LAYER_FLAGS["OUT"]       # the descriptor of the OUT layer
    assert parse_response(GoldenEngine(hw).load(beats)[0])[1] == 0
    bad = beats.copy()
    bad[d_out] = np.uint64(int(bad[d_out]) | C.LAYER_FLAGS["SITES"])
    _, code, idx = parse_response(GoldenEngine(hw).load(bad)[0])
    assert (code, idx) == (C.ERROR_CODES["BAD_LAYER"], d_out)
