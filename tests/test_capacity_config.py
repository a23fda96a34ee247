"""Every capacity the compiler relies on is readable from the overlay (CONFIG0..3), and the
driver refuses a program that needs more, naming the capacity, before any DMA: an overlay
built with fewer layers or without sparse-pixel mode (SITE_CAP = 0), on the golden model
and on the RTL itself."""

from __future__ import annotations

import numpy as np
import pytest
from zeroskip.driver import ConfigMismatch, ZeroSkip, open_backend
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import GoldenEngine
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.host.compiler.lowering import compile_model, input_layout
from zeroskip.host.quant.randnet import random_input, random_qmodel, random_sparse_qmodel

SMALL = HwConfig(lanes=8, max_layers=4, site_cap=0)


def _program(n_conv: int, n_hidden_fc: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    model = random_qmodel(rng, input_shape=(1, 8, 8), n_conv=n_conv, n_hidden_fc=n_hidden_fc, sparsity=0.5)
    prog = compile_model(model, HwConfig(lanes=8))
    return model, prog, encode_program(prog), pack_inputs(random_input(rng, model, 3), input_layout(model).to_dict())


def _sparse_program():
    rng = np.random.default_rng(9)
    model = random_sparse_qmodel(rng, n_sconv=1, n_hidden_fc=0)
    return encode_program(compile_model(model, HwConfig(lanes=8), input_mode="sites"))


def _check(backend):
    with ZeroSkip(backend) as zs:
        # the overlay reports its own build, not the contract defaults
        assert (zs.hw.max_layers, zs.hw.site_cap, zs.hw.lanes) == (4, 0, 8)
        assert zs.regs.sparse_pixels() is False
        _, prog, beats, _ = _program(n_conv=3, n_hidden_fc=1)
        assert len(prog.layers) == 5
        sent = zs.dma.sendchannel.transferred
        with pytest.raises(ConfigMismatch, match=r"layers 5 > 4"):
            zs.load_program(beats)
        with pytest.raises(ConfigMismatch, match="without sparse-pixel support"):
            zs.load_program(_sparse_program())
        assert zs.dma.sendchannel.transferred == sent      # refused before any DMA
        # a program that fits runs bit-exact
        _, prog, beats, xp = _program(n_conv=2, n_hidden_fc=1)
        assert len(prog.layers) == 4
        zs.load_program(beats)
        gold = GoldenEngine(SMALL)
        gold.load(beats)
        np.testing.assert_array_equal(zs.run(xp).outputs, gold.run_images(xp)[0])


def test_model_backend_reports_and_enforces_its_capacities():
    _check(open_backend("model", hw=SMALL))


@pytest.mark.rtl
def test_rtl_reports_and_enforces_its_capacities():
    """CONFIG3 read from the RTL built with MAX_LAYERS=4, SITE_CAP=0."""
    _check(open_backend("sim", hw=SMALL, quiet=True))
