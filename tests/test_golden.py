"""Golden model and compiler: bit-exact against independent references on random
networks, program round trips, conflict-free packing, and the loader's checks."""

import npref
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zeroskip.driver import contract as C
from zeroskip.driver.golden import (
    GoldenEngine,
    image_timing,
    pack_image_beats,
    parse_response,
    predict_cycles,
    unpack_results,
)
from zeroskip.driver.program import (
    HwConfig,
    decode_entries,
    decode_program,
    encode_program,
    store_hex,
    store_image,
)
from zeroskip.host.compiler.lowering import CompileError, compile_model, pack_inputs
from zeroskip.host.quant.randnet import random_input, random_qmodel

E = C.ERROR_CODES


def run_golden(model, x, hw, dense=False):
    prog = compile_model(model, hw, dense=dense)
    eng = GoldenEngine(hw)
    ack = eng.load(encode_program(prog))
    assert parse_response(ack[0])[:2] == (C.ACK_MAGIC, 0)
    out, counters = eng.run_images(pack_inputs(x, prog.meta["input_layout"]))
    return prog, out, counters


flags = st.fixed_dictionaries({"zero_channel": st.booleans(), "dense_channel": st.booleans(),
                               "saturate": st.booleans()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), lanes=st.sampled_from([4, 8, 16, 32]), dense=st.booleans(), fl=flags)
def test_golden_bit_exact_on_random_networks(seed, lanes, dense, fl):
    rng = np.random.default_rng(seed)
    model = random_qmodel(rng, **fl)
    x = random_input(rng, model, 3)
    hw = HwConfig(lanes=lanes)
    prog, out, counters = run_golden(model, x, hw, dense)
    np.testing.assert_array_equal(out, npref.forward(model, x))
    assert counters["CYCLES"] == predict_cycles(prog, 3)
    assert counters["MACS"] == 3 * image_timing(prog)["macs"]


@pytest.mark.parametrize("lanes", [4, 8, 16, 32])
def test_edge_channels_and_saturation(lanes):
    rng = np.random.default_rng(lanes)
    for _ in range(6):
        model = random_qmodel(rng, zero_channel=True, dense_channel=True, saturate=True, sparsity=0.8)
        x = random_input(rng, model, 2)
        _, out, _ = run_golden(model, x, HwConfig(lanes=lanes))
        np.testing.assert_array_equal(out, npref.forward(model, x))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lanes=st.sampled_from([4, 8, 16, 32]), dense=st.booleans())
def test_program_round_trip_and_no_bank_conflicts(seed, lanes, dense):
    rng = np.random.default_rng(seed)
    model = random_qmodel(rng)
    hw = HwConfig(lanes=lanes)
    prog = compile_model(model, hw, dense=dense)
    beats = encode_program(prog)
    back = decode_program(beats, hw)
    assert np.array_equal(encode_program(back), beats)
    assert beats.size == prog.n_beats()
    eng = GoldenEngine(hw)
    eng.load(beats)
    assert not any(eng._conflict), "the compiler emitted a bank conflict"
    # every non-zero weight of the model is in the weight store exactly once per row
    for layer, lp in zip(model.layers, prog.layers):
        _, w = decode_entries(lp)
        assert np.count_nonzero(w) == np.count_nonzero(layer.weight)
        assert w.size == lp.n_slots and lp.n_slots % lp.desc.Q == 0


def test_sparse_program_is_cheaper_and_denser_in_bytes():
    rng = np.random.default_rng(7)
    model = random_qmodel(rng, input_shape=(1, 12, 12), n_conv=2, sparsity=0.7)
    hw = HwConfig(lanes=8)
    sp, de = compile_model(model, hw), compile_model(model, hw, dense=True)
    assert predict_cycles(sp) < predict_cycles(de)
    assert image_timing(sp)["macs"] == image_timing(de)["macs"]


def test_store_hex_matches_store_image():
    rng = np.random.default_rng(3)
    model = random_qmodel(rng, n_conv=2)
    hw = HwConfig(lanes=8)
    prog = compile_model(model, hw)
    img = store_image(prog, hw)
    lines = store_hex(prog, hw).split()
    assert len(lines) * hw.lanes >= prog.slots_used()
    for i, line in enumerate(lines):
        v = int(line, 16)
        for s in range(hw.lanes):
            assert (v >> (24 * s)) & 0xFFFFFF == img[i * hw.lanes + s]


def test_compile_errors_are_clear():
    rng = np.random.default_rng(0)
    model = random_qmodel(rng, input_shape=(3, 12, 12), n_conv=1)
    with pytest.raises(CompileError, match="W_SLOTS"):
        compile_model(model, HwConfig(lanes=8, w_slots=8), dense=True)


# -- the loader's checks -------------------------------------------------------------------

@pytest.fixture(scope="module")
def good():
    rng = np.random.default_rng(11)
    model = random_qmodel(rng, input_shape=(1, 8, 8), n_conv=2, sparsity=0.5)
    hw = HwConfig(lanes=8)
    prog = compile_model(model, hw)
    x = random_input(rng, model, 2)
    return model, hw, prog, encode_program(prog), x


def _mutate_field(beats, beat, lo, bits, value):
    b = beats.copy()
    mask = ((1 << bits) - 1) << lo
    b[beat] = np.uint64((int(b[beat]) & ~mask & 0xFFFFFFFFFFFFFFFF) | ((value << lo) & mask))
    return b


CASES = {
    "bad_magic": (lambda b: _mutate_field(b, 0, 0, 32, 0x12345678), None, "BAD_MAGIC"),
    "bad_version": (lambda b: _mutate_field(b, 0, 32, 16, 99), None, "BAD_VERSION"),
    "other_lanes": (lambda b: _mutate_field(b, 0, 48, 8, 16), None, "CONFIG_MISMATCH"),
    "too_many_slots": (lambda b: _mutate_field(b, 3, 0, 32, 1 << 30), None, "CAPACITY"),
    "truncated": (lambda b: b[:-5], None, "TRUNCATED"),
    "too_long": (lambda b: np.concatenate([b, np.zeros(3, np.uint64)]), None, "TOO_LONG"),
    "early_tlast": (lambda b: b, 10, "TRUNCATED"),
    "bad_pq": (lambda b: _mutate_field(b, 4, 8, 4, 0), None, "BAD_LAYER"),
    "zero_cout": (lambda b: _mutate_field(b, 4, 32, 16, 0), None, "BAD_LAYER"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_program_error_then_recovery(good, case):
    model, hw, prog, beats, x = good
    mutate, tlast, name = CASES[case]
    eng = GoldenEngine(hw)
    bad = mutate(beats)
    resp = eng.load(bad, tlast_at=tlast)
    magic, code, _ = parse_response(resp[0])
    assert magic == C.ACK_MAGIC and code == E[name], C.error_text(code)
    # RUN without a valid program is refused with an error beat, never a hang
    run = eng.run(pack_image_beats(pack_inputs(x, prog.meta["input_layout"]), prog.in_bytes), 2)
    assert parse_response(run[-1])[:2] == (C.ERR_MAGIC, E["NO_PROGRAM"])
    # the next valid program runs bit-exact
    assert parse_response(eng.load(beats)[0])[1] == 0
    out, _ = eng.run_images(pack_inputs(x, prog.meta["input_layout"]))
    np.testing.assert_array_equal(out, npref.forward(model, x))


def test_input_length_errors(good):
    model, hw, prog, beats, x = good
    eng = GoldenEngine(hw)
    eng.load(beats)
    img = pack_image_beats(pack_inputs(x, prog.meta["input_layout"]), prog.in_bytes)
    per = img.size // 2
    short = eng.run(img[:-1], 2)
    assert parse_response(short[-1])[:2] == (C.ERR_MAGIC, E["INPUT_SHORT"])
    assert short.size - 1 == -(-prog.n_out // 2)  # first image's results were sent
    long = eng.run(np.concatenate([img, img[:1]]), 2)
    assert parse_response(long[-1])[:2] == (C.ERR_MAGIC, E["INPUT_LONG"])
    ok = eng.run(img, 2)
    np.testing.assert_array_equal(unpack_results(ok, 2, prog.n_out), npref.forward(model, x))
    assert per * 2 == img.size


@pytest.mark.parametrize("lanes", [4, 8, 16, 32])
def test_lane_budget_accounts_for_every_lane_cycle(lanes):
    """The bench's breakdown of LANES × cycles (useful MACs, idle pixels, fillers, row
    ends, conflict group ends, SETUP/clear/FILL) adds up for every layer of random networks."""
    from zeroskip.host.bench.figures import lane_budget

    rng = np.random.default_rng(70 + lanes)
    for _ in range(4):
        model = random_qmodel(rng)
        prog = compile_model(model, HwConfig(lanes=lanes), dense=bool(rng.random() < 0.3))
        for lp, lt in zip(prog.layers, image_timing(prog)["layers"]):
            parts = lane_budget(lp, lt, lanes)
            assert sum(parts.values()) == lanes * lt.total and min(parts.values()) >= 0, parts
            assert parts["useful"] == lt.macs
