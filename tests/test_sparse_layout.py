"""Bank-spreading padding of sparse-pixel maps (host/compiler/lowering.py
``_bank_spread_pads``): the strides it gives, that the compiler uses it where the memory
allows, and that the programs stay exact and get cheaper."""

import numpy as np
import pytest
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import GoldenEngine
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.host.compiler import lowering
from zeroskip.host.compiler.lowering import compile_model
from zeroskip.host.quant import randnet
from zeroskip.host.quant.reference import run_reference


@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_spread_strides(lanes):
    rng = np.random.default_rng(lanes)
    for _ in range(200):
        c, h, w = (int(v) for v in rng.integers(1, 40, 3))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        pads = tuple(int(v) for v in rng.integers(0, 3, 4))
        t, b, left, right = lowering._bank_spread_pads((c, h, w), pads, (kh, kw), lanes)
        assert (t, left) == (pads[0], pads[2]) and 0 <= b - pads[1] < lanes and 0 <= right - pads[3] < lanes
        rs = w + left + right
        assert rs % lanes == kw % lanes
        if (h + t + b) * rs % lanes != (kh * kw) % lanes:
            # the channel stride cannot reach K_h·K_w (mod LANES) with an odd/even row stride mismatch:
            # no bottom padding below LANES rows does it either
            assert all((h + t + pads[1] + e) * rs % lanes != (kh * kw) % lanes for e in range(lanes))


def _cycles_and_check(model, x, lanes):
    hw = HwConfig(lanes=lanes)
    prog = compile_model(model, hw, input_mode="sites")
    eng = GoldenEngine(hw)
    eng.load(encode_program(prog))
    y, _ = eng.run_images(pack_inputs(x, prog.meta["input_layout"]))
    np.testing.assert_array_equal(y, run_reference(model, x))
    return prog, float(np.mean(eng.image_cycles))


@pytest.mark.parametrize("lanes", [8, 16])
def test_spread_programs_exact_and_cheaper(lanes, monkeypatch):
    """Random two-conv sparse-pixel models: results equal the integer reference with and
    without bank spreading; spreading is used only where it saves groups, so no program
    takes more cycles, and over the set they take fewer."""
    rng = np.random.default_rng(7 + lanes)
    spread_total = plain_total = 0.0
    used = 0
    for _ in range(8):
        model = randnet.random_sparse_qmodel(rng, input_shape=(1, 20, 20), n_sconv=2, pool="none", n_max=24,
                                             sparsity=0.7)
        x = randnet.random_sparse_input(rng, model, 4)
        prog, spread = _cycles_and_check(model, x, lanes)
        second = next(lp.desc for lp in prog.layers[1:] if lp.desc.sites)
        used += second.in_row_stride % lanes == model.layers[1].kernel[1] % lanes
        with monkeypatch.context() as m:
            m.setattr(lowering, "_bank_spread_pads", lambda shape, padding, kernel, lanes: lowering._pads4(padding))
            _, plain = _cycles_and_check(model, x, lanes)
        assert spread <= plain
        spread_total += spread
        plain_total += plain
    assert used and spread_total < plain_total
