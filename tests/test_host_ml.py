"""Host ML pipeline: datasets, models, training, pruning, quantisation, integer reference.

The integer reference (torch) is cross-checked against an independent numpy
implementation written here from docs/hardware.md ("Arithmetic"), on random models from
``randnet`` including their edge cases, and on a trained, pruned, quantised TinyCNN.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zeroskip.host.training import prune as zprune
from zeroskip.host.data.datasets import DATASETS, load_dataset
from zeroskip.host.models.cnn import ConvSpec, ModelSpec, build_model, tiny_cnn_spec
from zeroskip.host.quant.qmodel import LayerKind, QLayer
from zeroskip.host.quant.quantize import (
    check_accumulator_bound,
    multiplier_to_mult_shift,
    quantize,
    quantize_input,
)
from zeroskip.host.quant.randnet import random_input, random_qmodel
from zeroskip.host.quant.reference import IntegerReference, run_reference
from zeroskip.host.training.train import evaluate, predict, set_seed, train

SPARSITY = 0.7


# ---------------------------------------------------------------- independent numpy model

def numpy_reference(qmodel, x_int8: np.ndarray) -> list[np.ndarray]:
    """Every layer's output, computed straightforwardly in int64 numpy.

    Convolution by shift-and-add over kernel taps, requantisation by floor division,
    pooling by reshaping into 2×2 windows: deliberately different from the torch code.
    """
    a = x_int8.astype(np.int64)
    n = a.shape[0]
    outs = []
    for i, layer in enumerate(qmodel.layers):
        w = layer.weight.astype(np.int64)
        if layer.kind is LayerKind.CONV:
            p = layer.padding
            ap = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
            kh, kw = layer.kernel
            ho, wo = ap.shape[2] - kh + 1, ap.shape[3] - kw + 1
            acc = np.zeros((n, layer.c_out, ho, wo), np.int64)
            for ky in range(kh):
                for kx in range(kw):
                    acc += np.einsum("nchw,oc->nohw", ap[:, :, ky:ky + ho, kx:kx + wo], w[:, :, ky, kx])
            acc += layer.bias.astype(np.int64)[None, :, None, None]
            mult = layer.mult.astype(np.int64)[None, :, None, None]
            shift = layer.shift.astype(np.int64)[None, :, None, None]
        else:
            acc = a.reshape(n, -1) @ w.T + layer.bias.astype(np.int64)[None, :]
            mult = layer.mult.astype(np.int64)[None, :]
            shift = layer.shift.astype(np.int64)[None, :]
        assert np.all(np.abs(acc) < 2**31), "accumulator left the int32 range"
        if i == len(qmodel.layers) - 1:
            outs.append(acc.astype(np.int32))
            break
        y = np.floor_divide(acc * mult + 2 ** (shift - 1), 2**shift)
        if layer.relu:
            y = np.maximum(y, 0)
        y = np.minimum(np.maximum(y, -128), 127)
        if layer.pool:
            c, h, wd = y.shape[1:]
            y = y[:, :, : h // 2 * 2, : wd // 2 * 2].reshape(n, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
        outs.append(y.astype(np.int8))
        a = y
    return outs


def check_against_numpy(qmodel, x: np.ndarray) -> None:
    want = numpy_reference(qmodel, x)
    got = IntegerReference(qmodel).forward_layers(torch.from_numpy(x))
    assert len(got) == len(want) == len(qmodel.layers)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == (torch.int32 if i == len(want) - 1 else torch.int8)
        np.testing.assert_array_equal(g.numpy(), w, err_msg=f"layer {i}")
    np.testing.assert_array_equal(run_reference(qmodel, x), want[-1])
    assert [tuple(o.shape[1:]) for o in want] == qmodel.shapes()[1:]


# ---------------------------------------------------------------- shared trained model

@pytest.fixture(scope="module")
def pipeline():
    """Synthetic set, TinyCNN trained, pruned to 70 %, fine-tuned, finalised, quantised."""
    data = load_dataset("synthetic", seed=0)
    model = build_model(tiny_cnn_spec(data.input_shape, data.n_classes), seed=0)
    train(model, data.x_train, data.y_train, seed=0, quiet=True)
    zprune.prune_global(model, SPARSITY)
    zprune.finetune(model, data.x_train, data.y_train, seed=0, quiet=True)
    zprune.finalize(model)
    qmodel = quantize(model, data.x_train)
    return data, model, qmodel


# ---------------------------------------------------------------- datasets and models

@pytest.mark.parametrize("name", DATASETS)
def test_dataset_shapes_ranges_and_determinism(name):
    d = load_dataset(name, seed=3)
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == d.input_shape and y.shape == (x.shape[0],)
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(y)) == set(range(d.n_classes))
    again = load_dataset(name, seed=3)
    np.testing.assert_array_equal(d.x_train, again.x_train)
    np.testing.assert_array_equal(d.y_test, again.y_test)
    other = load_dataset(name, seed=4)
    assert not np.array_equal(d.x_train, other.x_train)


def test_dataset_sizes_and_errors():
    d = load_dataset("synthetic", n_train=100, n_test=40)
    assert len(d.y_train) == 100 and len(d.y_test) == 40
    assert d.y_train.sum() == 50  # balanced
    g = load_dataset("digits", n_train=500, n_test=200)
    assert len(g.y_train) == 500 and len(g.y_test) == 200
    with pytest.raises(ValueError, match="synthetic, digits"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="too many"):
        load_dataset("digits", n_train=1500, n_test=500)


def test_spec_round_trip_and_model_layout():
    spec = ModelSpec((2, 11, 9), (ConvSpec(4, 5, 2, True), ConvSpec(3, 1, 0, False)), (7,), 5)
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    model = build_model(spec, seed=1)
    assert model.layer_names == ("conv0", "conv1", "fc0", "fc1")
    assert [type(m).__name__ for m in model.layers] == ["Conv2d", "Conv2d", "Linear", "Linear"]
    assert spec.feature_shapes()[-1] == (3, 5, 4) and model.layers[2].in_features == 60
    assert model(torch.zeros(3, 2, 11, 9)).shape == (3, 5)
    with pytest.raises(ValueError, match="does not fit"):
        ModelSpec((1, 4, 4), (ConvSpec(2, 7, 0),), (), 2)
    assert tiny_cnn_spec((1, 16, 16), 2).flat_features == 16 * 4 * 4


# ---------------------------------------------------------------- training and pruning

def _small_run(seed: int):
    d = load_dataset("synthetic", seed=seed, n_train=256, n_test=64)
    model = build_model(tiny_cnn_spec(d.input_shape, d.n_classes), seed=seed)
    losses = train(model, d.x_train, d.y_train, epochs=2, seed=seed, quiet=True)
    zprune.prune_global(model, 0.5)
    losses += zprune.finetune(model, d.x_train, d.y_train, epochs=1, seed=seed, quiet=True)
    zprune.finalize(model)
    return model, losses


def test_training_is_deterministic():
    (m1, l1), (m2, l2) = _small_run(7), _small_run(7)
    assert l1 == l2
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    m3, _ = _small_run(8)
    assert not torch.equal(m1.layers[0].weight, m3.layers[0].weight)
    set_seed(5)
    a = (torch.rand(3), np.random.rand(3))
    set_seed(5)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("target", [0.0, 0.3, 0.7, 0.95])
def test_pruning_hits_target(target):
    spec = ModelSpec((1, 12, 12), (ConvSpec(6, 3, 1, True), ConvSpec(5, 3, 0, False)), (9,), 4)
    model = build_model(spec, seed=2)
    zprune.prune_global(model, target)
    assert abs(zprune.weight_sparsity(model) - target) <= 0.005
    assert all(not hasattr(m, "bias_mask") for _, m in zprune.prunable_layers(model))
    zprune.finalize(model)
    assert abs(zprune.weight_sparsity(model) - target) <= 0.005
    names = [n for n, _ in zprune.layer_sparsity(model)]
    assert names == ["layers.0", "layers.1", "layers.2", "layers.3"]
    weights = torch.cat([m.weight.detach().flatten() for m in model.layers])
    assert zprune.weight_sparsity(model) == pytest.approx(float((weights == 0).float().mean()))


def test_finetune_keeps_pruned_weights_zero():
    d = load_dataset("synthetic", n_train=256, n_test=32)
    model = build_model(tiny_cnn_spec(d.input_shape, d.n_classes), seed=0)
    train(model, d.x_train, d.y_train, epochs=2, quiet=True)  # pruning at init can kill every ReLU
    zprune.prune_global(model, SPARSITY)
    masks = [m.weight_mask.clone() for m in model.layers]
    before = [zprune.effective_weight(m).clone() for m in model.layers]
    zprune.finetune(model, d.x_train, d.y_train, epochs=1, lr=1e-2, quiet=True)
    zprune.finalize(model)
    for m, mask, w0 in zip(model.layers, masks, before):
        assert torch.all(m.weight[mask == 0] == 0)
        assert not torch.equal(m.weight.detach(), w0)  # it did train
    with pytest.raises(ValueError, match="prune_global"):
        zprune.finetune(model, d.x_train, d.y_train, epochs=1, quiet=True)
    zprune.prune_global(model, 0.8)
    with pytest.raises(ValueError, match="finalize"):
        zprune.prune_global(model, 0.9)


# ---------------------------------------------------------------- quantisation

@pytest.mark.xdist_group("host_ml_pipeline")
def test_pruned_zeros_stay_zero_after_quantisation(pipeline):
    _, model, qmodel = pipeline
    assert abs(zprune.weight_sparsity(model) - SPARSITY) <= 0.005
    for mod, layer in zip(model.layers, qmodel.layers):
        w = mod.weight.detach().numpy()
        assert layer.weight.shape == w.shape
        assert np.all(layer.weight[w == 0] == 0)
    n_zero = sum(int((layer.weight == 0).sum()) for layer in qmodel.layers)
    n_all = sum(layer.weight.size for layer in qmodel.layers)
    assert n_zero / n_all >= SPARSITY - 0.005


@pytest.mark.xdist_group("host_ml_pipeline")
def test_quantised_parameters(pipeline):
    data, model, qmodel = pipeline
    assert qmodel.input_scale == pytest.approx(float(np.abs(data.x_train[:512]).max()) / 127)
    assert qmodel.meta["spec"] == model.spec.to_dict()
    s_in = qmodel.input_scale
    for i, (mod, layer) in enumerate(zip(model.layers, qmodel.layers)):
        w = mod.weight.detach().double().numpy().reshape(layer.c_out, -1)
        assert layer.bias.dtype == np.int32 and layer.weight.dtype == np.int8
        assert np.abs(layer.weight.astype(int)).max() <= 127
        last = i == len(qmodel.layers) - 1
        if last:
            s_w = np.full(layer.c_out, np.abs(w).max() / 127)  # one scale for the tensor
            assert np.all(layer.mult == 1) and np.all(layer.shift == 1) and not layer.relu
            assert layer.out_scale == pytest.approx(s_in * s_w[0])
        else:
            absmax = np.abs(w).max(axis=1)
            s_w = np.where(absmax > 0, absmax / 127, 1.0)  # an all-zero channel gets scale 1
            assert np.all((layer.mult >= 2**15) & (layer.mult < 2**16)) and layer.relu
            real = s_in * s_w / layer.out_scale
            np.testing.assert_allclose(layer.mult / 2.0**layer.shift, real, rtol=2**-15)
        q = layer.weight.reshape(layer.c_out, -1)
        assert np.all(np.abs(q - w / s_w[:, None]) <= 0.5 + 1e-9)
        b = mod.bias.detach().double().numpy()
        assert np.all(np.abs(layer.bias - b / (s_in * s_w)) <= 0.5 + 1e-9)
        s_in = layer.out_scale


@pytest.mark.xdist_group("host_ml_pipeline")
def test_quantised_accuracy_matches_float(pipeline):
    data, model, qmodel = pipeline
    float_acc = evaluate(model, data.x_test, data.y_test)
    x_q = quantize_input(data.x_test, qmodel.input_scale)
    logits = run_reference(qmodel, x_q)
    int_acc = float((logits.argmax(axis=1) == data.y_test).mean())
    assert float_acc >= 0.95
    assert abs(int_acc - float_acc) <= 0.01
    # The int32 logits are the float logits in units of out_scale.
    real = predict(model, data.x_test)
    agree = (logits.argmax(axis=1) == real.argmax(axis=1)).mean()
    assert agree >= 0.98
    # The trained model also satisfies the numpy cross-check.
    check_against_numpy(qmodel, x_q[:64])


def test_digits_int8_accuracy_with_defaults():
    data = load_dataset("digits", seed=0)
    model = build_model(tiny_cnn_spec(data.input_shape, data.n_classes), seed=0)
    train(model, data.x_train, data.y_train, seed=0, quiet=True)
    zprune.prune_global(model, SPARSITY)
    zprune.finetune(model, data.x_train, data.y_train, seed=0, quiet=True)
    qmodel = quantize(model, data.x_train)  # masks still attached: effective weights are used
    logits = run_reference(qmodel, quantize_input(data.x_test, qmodel.input_scale))
    assert (logits.argmax(axis=1) == data.y_test).mean() >= 0.90


@pytest.mark.parametrize("act_percentile", [100.0, 99.9])
def test_quantize_general_spec(act_percentile):
    """Padding 0, an odd map pooled with floor, hidden FC layers, percentile calibration."""
    data = load_dataset("digits", seed=1, n_train=600, n_test=200)
    spec = ModelSpec((1, 8, 8), (ConvSpec(6, 3, 0, True), ConvSpec(5, 3, 1, True)), (12, 8), 10)
    assert spec.feature_shapes()[1:] == [(6, 3, 3), (5, 1, 1)]
    model = build_model(spec, seed=1)
    train(model, data.x_train, data.y_train, epochs=8, seed=1, quiet=True)
    qmodel = quantize(model, data.x_train, n_calib=200, act_percentile=act_percentile)
    assert [layer.kind for layer in qmodel.layers] == ["conv", "conv", "fc", "fc", "fc"]
    assert [layer.relu for layer in qmodel.layers] == [True, True, True, True, False]
    x_q = quantize_input(data.x_test, qmodel.input_scale)
    check_against_numpy(qmodel, x_q)
    real = predict(model, data.x_test).argmax(axis=1)
    assert (run_reference(qmodel, x_q).argmax(axis=1) == real).mean() >= 0.9


def test_quantize_input_rounding_and_clipping():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 126.6, 1000.0, -1000.0])
    np.testing.assert_array_equal(quantize_input(x, 1.0), [0, 2, 2, 0, -2, 127, 127, -128])
    assert quantize_input(x, 1.0).dtype == np.int8
    with pytest.raises(ValueError, match="positive"):
        quantize_input(x, 0.0)


@given(st.floats(2.0**-40, 2.0**15, exclude_max=True))
@settings(max_examples=200, deadline=None)
def test_multiplier_to_mult_shift(m):
    mult, shift = multiplier_to_mult_shift(m)
    mult, shift = int(mult[0]), int(shift[0])
    assert 1 <= shift <= 47 and 0 <= mult < 2**16
    if m >= 2.0**-32:
        assert 2**15 <= mult
        assert abs(mult / 2**shift - m) <= m * 2.0**-16
    else:
        assert shift == 47 and abs(mult - m * 2.0**47) <= 0.5


def test_quantize_errors():
    with pytest.raises(ValueError, match="shift below"):
        multiplier_to_mult_shift(2.0**15)
    w = np.zeros((2, 3), np.int8)
    w[1] = 127
    ok = QLayer("fc", w, np.array([0, 2**31 - 1 - 3 * 127 * 128], np.int32), np.ones(2, np.int64),
                np.ones(2, np.int64))
    check_accumulator_bound(ok)
    bad = QLayer("fc", w, np.array([0, 2**31 - 3 * 127 * 128], np.int32), np.ones(2, np.int64),
                 np.ones(2, np.int64), name="fc9")
    with pytest.raises(ValueError, match=r"\(fc9\) channel 1"):
        check_accumulator_bound(bad)
    spec = ModelSpec((1, 4, 4), (ConvSpec(2, 3, 1, False),), (), 2)
    model = build_model(spec, seed=0)
    with torch.no_grad():
        model.layers[1].bias.fill_(1e9)
    with pytest.raises(ValueError, match="int32"):
        quantize(model, np.ones((4, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        quantize(model, np.ones((4, 1, 5, 5), np.float32))


# ---------------------------------------------------------------- integer reference vs numpy

random_model_args = st.fixed_dictionaries({
    "input_shape": st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)),
    "n_conv": st.integers(1, 3),
    "n_hidden_fc": st.integers(0, 2),
    "sparsity": st.sampled_from([None, 0.0, 0.999]),
    "relu": st.sampled_from([None, True, False]),
    "zero_channel": st.booleans(),
    "dense_channel": st.booleans(),
    "saturate": st.booleans(),
})


@given(seed=st.integers(0, 2**63 - 1), args=random_model_args, negative=st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_reference_matches_numpy(seed, args, negative):
    rng = np.random.default_rng(seed)
    qmodel = random_qmodel(rng, **args)
    x = random_input(rng, qmodel, int(rng.integers(1, 5)), negative=negative)
    check_against_numpy(qmodel, x)


@pytest.mark.slow
@given(seed=st.integers(0, 2**63 - 1), args=random_model_args, negative=st.booleans())
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_reference_matches_numpy_fuzz(seed, args, negative):
    rng = np.random.default_rng(seed)
    qmodel = random_qmodel(rng, **args)
    check_against_numpy(qmodel, random_input(rng, qmodel, 3, negative=negative))


def test_random_models_cover_edge_cases():
    """The flags really produce the edge cases the property test relies on."""
    seen = {"zero": 0, "dense": 0, "clip_hi": 0, "clip_lo": 0, "neg_in": 0}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        qmodel = random_qmodel(rng, zero_channel=seed % 2 == 0, dense_channel=seed % 2 == 1,
                               saturate=True, relu=False)
        for layer in qmodel.layers:
            nnz = (layer.weight.reshape(layer.c_out, -1) != 0).sum(axis=1)
            if seed % 2 == 0:
                assert np.any(nnz == 0)
            elif layer.c_out > 1:
                assert np.any(nnz == layer.weight[0].size)
            check_accumulator_bound(layer)
        seen["zero" if seed % 2 == 0 else "dense"] += 1
        x = random_input(rng, qmodel, 4)
        seen["neg_in"] += int(np.any(x < 0))
        for out in numpy_reference(qmodel, x)[:-1]:
            seen["clip_hi"] += int(np.any(out == 127))
            seen["clip_lo"] += int(np.any(out == -128))
        again = random_qmodel(np.random.default_rng(seed), zero_channel=seed % 2 == 0,
                              dense_channel=seed % 2 == 1, saturate=True, relu=False)
        for a, b in zip(qmodel.layers, again.layers):
            np.testing.assert_array_equal(a.weight, b.weight)
            np.testing.assert_array_equal(a.mult, b.mult)
    assert min(seen.values()) >= 10, seen
    assert np.all(random_input(np.random.default_rng(0), qmodel, 8, negative=False) >= 0)


def test_reference_rejects_bad_input():
    qmodel = random_qmodel(np.random.default_rng(0), input_shape=(1, 6, 6))
    ref = IntegerReference(qmodel)
    with pytest.raises(TypeError, match="int8"):
        ref(torch.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match="shape"):
        ref(torch.zeros(1, 1, 5, 6, dtype=torch.int8))
    with pytest.raises(TypeError, match="int8"):
        run_reference(qmodel, np.zeros((1, 1, 6, 6), np.int16))
