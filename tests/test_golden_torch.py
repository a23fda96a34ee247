"""The golden model (what every backend is held to) against the PyTorch integer
reference (the spec), on random networks and on trained TinyCNNs."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeroskip.driver.golden import GoldenEngine
from zeroskip.driver.program import HwConfig, encode_program
from zeroskip.host.compiler.lowering import compile_model, pack_inputs
from zeroskip.host.quant.randnet import random_input, random_qmodel

torch = pytest.importorskip("torch")
from zeroskip.host.quant.reference import run_reference  # noqa: E402


def golden(model, x, lanes, dense=False):
    hw = HwConfig(lanes=lanes)
    prog = compile_model(model, hw, dense=dense)
    eng = GoldenEngine(hw)
    eng.load(encode_program(prog))
    return eng.run_images(pack_inputs(x, prog.meta["input_layout"]))[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), lanes=st.sampled_from([4, 8, 16, 32]), dense=st.booleans(),
       zero=st.booleans(), full=st.booleans(), sat=st.booleans())
def test_golden_equals_integer_reference(seed, lanes, dense, zero, full, sat):
    rng = np.random.default_rng(seed)
    model = random_qmodel(rng, zero_channel=zero, dense_channel=full, saturate=sat)
    x = random_input(rng, model, 4)
    np.testing.assert_array_equal(golden(model, x, lanes, dense), run_reference(model, x))


@pytest.mark.xdist_group("host_ml_pipeline")
@pytest.mark.parametrize("dataset", ["synthetic", "digits"])
def test_trained_tinycnn_bit_exact(dataset, tmp_path_factory, monkeypatch):
    from zeroskip.host.pipeline import TrainConfig, get_trained

    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    tr = get_trained(TrainConfig(dataset=dataset, sparsity=0.7), quiet=True)
    x = tr.x_test_int8[:64]
    for lanes in (4, 8, 16, 32):
        np.testing.assert_array_equal(golden(tr.qmodel, x, lanes), tr.expected[:64])
    np.testing.assert_array_equal(golden(tr.qmodel, x[:8], 8, dense=True), tr.expected[:8])
