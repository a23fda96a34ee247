"""Stream fuzzing against the golden loader: any byte sequence is answered with an ACK
beat (error code or success) — never an exception, never a hang — and the next valid
program runs bit-exact. The fixed-seed subset runs in CI; --fuzz runs >= 500 cases."""

import numpy as np
import pytest

from zeroskip.driver import contract as C
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import GoldenEngine, parse_response
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.host.compiler.lowering import compile_model
from zeroskip.host.quant.randnet import random_input, random_qmodel

import npref
from conftest import fuzz_enabled

N_CASES = 600 if fuzz_enabled() else 60


def mutate(rng, beats):
    b = beats.copy()
    kind = int(rng.integers(0, 7))
    if kind == 0:  # truncation
        return b[: int(rng.integers(0, b.size))], None, "truncate"
    if kind == 1:  # extra beats
        return np.concatenate([b, rng.integers(0, 2**63, int(rng.integers(1, 9)), dtype=np.uint64)]), None, "extra"
    if kind == 2:  # bit flips
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, b.size))
            b[i] ^= np.uint64(1) << np.uint64(int(rng.integers(0, 64)))
        return b, None, "flip"
    if kind == 3:  # random bytes
        return rng.integers(0, 2**63, int(rng.integers(1, 64)), dtype=np.uint64), None, "random"
    if kind == 4:  # TLAST early
        return b, int(rng.integers(0, b.size - 1)), "tlast_early"
    if kind == 5:  # field out of range in a header / descriptor beat
        i = int(rng.integers(0, min(b.size, 12)))
        b[i] = np.uint64(int(b[i]) | (0xFFFF << int(rng.choice([16, 32, 48]))))
        return b, None, "field"
    return b, None, "intact"


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(123)
    model = random_qmodel(rng, input_shape=(2, 8, 8), n_conv=2, sparsity=0.6)
    hw = HwConfig(lanes=8)
    prog = compile_model(model, hw)
    x = random_input(rng, model, 2)
    return model, hw, encode_program(prog), pack_inputs(x, prog.meta["input_layout"]), npref.forward(model, x)


def test_stream_fuzz_never_breaks_the_loader(setup):
    model, hw, good, packed, ref = setup
    rng = np.random.default_rng(2024)
    eng = GoldenEngine(hw)
    seen = {}
    for _ in range(N_CASES):
        bad, tl, kind = mutate(rng, good)
        resp = eng.load(bad, tlast_at=tl)
        assert resp.size == 1
        magic, code, _ = parse_response(resp[0])
        assert magic == C.ACK_MAGIC and code in C.ERRORS
        seen.setdefault(kind, set()).add(C.ERRORS[code])
        if code == 0:
            continue
        assert eng.program is None
        assert parse_response(eng.load(good)[0])[1] == 0
        out, _ = eng.run_images(packed)
        np.testing.assert_array_equal(out, ref)
    for kind in ("truncate", "extra", "random", "tlast_early"):
        assert "OK" not in seen.get(kind, set()), f"a {kind} stream was accepted"
    assert "TRUNCATED" in seen.get("truncate", set()) | seen.get("tlast_early", set())
