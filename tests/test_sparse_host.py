"""Sparse-pixel host code: float layers, detector dataset, quantisation, integer reference.

The float layers are checked against their definitions (docs/sparse_pixels.md) written
out with loops; the integer reference is cross-checked against an independent numpy
implementation written here that works like the engine, on a site list (raster-scan
reduce, per-site convolution over in-bounds taps, pooling by merging sites into cells),
on random sparse models from ``randnet`` and on a trained, quantised detector model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F
from zeroskip.host.training import prune as zprune
from zeroskip.host.data.detector import ADC_LEVELS, DETECTOR_THRESHOLD, active_fraction, load_detector
from zeroskip.host.quant.qmodel import (
    AVG_RECIP,
    LayerKind,
    QInputReduce,
    QLayer,
    QModel,
    QSparsePool,
    dense_grid_twin,
    layer_output_shape,
)
from zeroskip.host.quant.quantize import quantize_input
from zeroskip.host.quant.quantize_sparse import quantize_sparse, threshold_to_int8
from zeroskip.host.quant.randnet import random_sparse_input, random_sparse_qmodel
from zeroskip.host.quant.reference import IntegerReference, run_reference
from zeroskip.host.quant.reference import reduce_input
from zeroskip.host.models.sparse import (
    InputReduce as FloatReduce,
)
from zeroskip.host.models.sparse import (
    SparseConv2d,
    SparseConvSpec,
    SparseFlatten,
    SparseModelSpec,
    SparsePool2d,
    SparseReLU,
    build_dense_twin,
    build_sparse_model,
    dense_twin_spec,
    sparse_pixels_spec,
)
from zeroskip.host.training.train import evaluate, predict, train

R_DOC = (0, 65536, 32768, 21845, 16384)  # docs/sparse_pixels.md: round(2**16 / n)


# ---------------------------------------------------------------- independent numpy model

def _reduce_sites(img: np.ndarray, threshold, n_max: int) -> list[tuple[int, int]]:
    """Raster scan: the first n_max pixels whose channel 0 exceeds the threshold."""
    sites = []
    for h in range(img.shape[1]):
        for w in range(img.shape[2]):
            if img[0, h, w] > threshold and len(sites) < n_max:
                sites.append((h, w))
    return sites


def _requant(acc, mult, shift, relu):
    y = np.floor_divide(acc * mult + 2 ** (shift - 1), 2**shift)
    if relu:
        y = np.maximum(y, 0)
    return np.minimum(np.maximum(y, -128), 127)


def numpy_sparse_reference(qmodel, x_int8: np.ndarray) -> tuple[list[np.ndarray], list[list]]:
    """Every layer's output (stacked over images) and every image's site list after each
    layer, computed site by site in int64 numpy."""
    red = qmodel.reduce
    per_image, per_sites = [], []
    for img in x_int8.astype(np.int64):
        c, hh, ww = img.shape
        sites = _reduce_sites(img, red.threshold, red.n_max)
        a = np.zeros_like(img)
        for h, w in sites:
            a[:, h, w] = img[:, h, w]
        outs, site_lists = [], []
        for i, layer in enumerate(qmodel.layers):
            if layer.kind is LayerKind.SCONV:
                p = layer.padding
                k = layer.kernel[0]
                wt = layer.weight.astype(np.int64)
                y = np.zeros((layer.c_out, hh, ww), np.int64)
                for h, w in sites:
                    acc = layer.bias.astype(np.int64).copy()
                    for ky in range(k):
                        for kx in range(k):
                            sy, sx = h + ky - p, w + kx - p
                            if 0 <= sy < hh and 0 <= sx < ww:
                                acc += wt[:, :, ky, kx] @ a[:, sy, sx]
                    assert np.all(np.abs(acc) < 2**31)
                    y[:, h, w] = _requant(acc, layer.mult.astype(np.int64), layer.shift.astype(np.int64), layer.relu)
                a = y
            elif layer.kind is LayerKind.SPOOL:
                hh, ww = hh // 2, ww // 2
                cells: dict[tuple[int, int], list[np.ndarray]] = {}
                for h, w in sites:
                    if h // 2 < hh and w // 2 < ww:
                        cells.setdefault((h // 2, w // 2), []).append(a[:, h, w])
                y = np.zeros((a.shape[0], hh, ww), np.int64)
                for (h, w), vals in cells.items():
                    vals = np.stack(vals)
                    if layer.mode == "max":
                        y[:, h, w] = vals.max(axis=0)
                    else:
                        y[:, h, w] = np.floor_divide(vals.sum(axis=0) * R_DOC[len(vals)] + 2**15, 2**16)
                sites = list(cells)
                a = y
            else:
                acc = layer.weight.astype(np.int64) @ a.reshape(-1) + layer.bias.astype(np.int64)
                assert np.all(np.abs(acc) < 2**31)
                if i < len(qmodel.layers) - 1:
                    acc = _requant(acc, layer.mult.astype(np.int64), layer.shift.astype(np.int64), layer.relu)
                a = acc
            outs.append(a.copy())
            site_lists.append(sorted(sites) if layer.kind is not LayerKind.FC else None)
        per_image.append(outs)
        per_sites.append(site_lists)
    n_layers = len(qmodel.layers)
    stacked = [np.stack([o[i] for o in per_image]) if per_image else None for i in range(n_layers)]
    return stacked, per_sites


def check_sparse_against_numpy(qmodel, x: np.ndarray) -> list[np.ndarray]:
    want, want_sites = numpy_sparse_reference(qmodel, x)
    got, masks = IntegerReference(qmodel).forward_sites(torch.from_numpy(x))
    assert len(got) == len(want) == len(qmodel.layers)
    for i, (g, w, m) in enumerate(zip(got, want, masks)):
        last = i == len(want) - 1
        assert g.dtype == (torch.int32 if last else torch.int8)
        np.testing.assert_array_equal(g.numpy(), w, err_msg=f"layer {i}")
        if m is not None:
            for img, sites in enumerate(want_sites):
                got_sites = sorted(map(tuple, m[img, 0].nonzero().tolist()))
                assert got_sites == sites[i], f"layer {i} image {img}"
    np.testing.assert_array_equal(run_reference(qmodel, x), want[-1])
    assert [tuple(o.shape[1:]) for o in want] == qmodel.shapes()[1:]
    return want


# ---------------------------------------------------------------- float layers

def _random_sparse_float(gen: torch.Generator, n: int, c: int, h: int, w: int, p: float) -> tuple:
    mask = torch.rand(n, 1, h, w, generator=gen) < p
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64) * mask
    return x, mask


def test_input_reduce_keeps_first_n_max_in_raster_order():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 2, 7, 9, generator=gen)
    x[1] = 0                                   # no active pixel
    x[2, 0] = 1                                # every pixel active: more than n_max
    x[3, 0, 0, 0], x[3, 0, 6, 8] = 1, 1        # corners
    red = FloatReduce(0.7, 6)(x)
    assert red.x.shape == x.shape and red.mask.shape == (5, 1, 7, 9) and red.mask.dtype == torch.bool
    assert red.coords.shape == (5, 6, 2) and red.coords.dtype == torch.int64
    for i in range(5):
        sites = _reduce_sites(x[i].numpy(), 0.7, 6)
        assert sorted(map(tuple, red.mask[i, 0].nonzero().tolist())) == sites
        want = np.zeros((6, 2), np.int64)
        want[:len(sites)] = np.array(sites, np.int64).reshape(-1, 2) + 1    # 1-based, (0, 0) = empty
        np.testing.assert_array_equal(red.coords[i].numpy(), want)
        keep = red.mask[i].expand_as(x[i])
        assert torch.equal(red.x[i][keep], x[i][keep]) and torch.all(red.x[i][~keep] == 0)
    assert red.n_sites.tolist() == [len(_reduce_sites(x[i].numpy(), 0.7, 6)) for i in range(5)]
    assert red.n_sites[1] == 0 and red.n_sites[2] == 6
    with pytest.raises(ValueError, match="n_max"):
        FloatReduce(0.5, 0)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_sparse_conv_is_submanifold(k):
    gen = torch.Generator().manual_seed(k)
    x, mask = _random_sparse_float(gen, 3, 2, 9, 8, 0.2)
    conv = SparseConv2d(2, 4, k).double()
    y, m2 = conv(x, mask)
    assert m2 is mask and y.shape == (3, 4, 9, 8)
    dense = F.conv2d(x, conv.weight, conv.bias, padding=k // 2)
    sites = mask.expand_as(y)
    assert torch.all(y[~sites] == 0)                       # zero off the sites
    torch.testing.assert_close(y[sites], dense[sites])     # the dense conv at the sites
    with pytest.raises(ValueError, match="odd"):
        SparseConv2d(1, 1, 2)


def _pool_by_definition(x: torch.Tensor, mask: torch.Tensor, mode: str) -> tuple[np.ndarray, np.ndarray]:
    n, c, h, w = x.shape
    y = np.zeros((n, c, h // 2, w // 2))
    m = np.zeros((n, 1, h // 2, w // 2), bool)
    for i in range(n):
        for ph in range(h // 2):
            for pw in range(w // 2):
                vals = [x[i, :, 2 * ph + dy, 2 * pw + dx].numpy() for dy in (0, 1) for dx in (0, 1)
                        if mask[i, 0, 2 * ph + dy, 2 * pw + dx]]
                if vals:
                    m[i, 0, ph, pw] = True
                    y[i, :, ph, pw] = np.max(vals, axis=0) if mode == "max" else np.mean(vals, axis=0)
    return y, m


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("hw", [(8, 6), (7, 9), (2, 3)])
def test_sparse_pool_merges_active_sites(mode, hw):
    gen = torch.Generator().manual_seed(hw[0] * 10 + hw[1])
    x, mask = _random_sparse_float(gen, 4, 3, *hw, 0.4)
    mask[0, 0, -1, :] = True                         # sites in the last row / column:
    mask[0, 0, :, -1] = True                         # dropped by floor pooling when odd
    x = torch.randn(x.shape, generator=gen, dtype=torch.float64) * mask   # negative values too
    y, m = SparsePool2d(mode)(x, mask)
    want_y, want_m = _pool_by_definition(x, mask, mode)
    np.testing.assert_array_equal(m.numpy(), want_m)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-12, atol=1e-12)
    if mode == "max":   # after a ReLU it is the dense max-pool of the zero-filled map
        r, _ = SparseReLU()(x, mask)
        ry, rm = SparsePool2d("max", nonnegative=True)(r, mask)
        torch.testing.assert_close(ry, F.max_pool2d(r, 2))
        gy, gm = SparsePool2d("max")(r, mask)
        torch.testing.assert_close(ry, gy)
        assert torch.equal(rm, gm) and torch.equal(rm, m)


def test_flatten_and_relu():
    gen = torch.Generator().manual_seed(1)
    x, mask = _random_sparse_float(gen, 2, 3, 4, 5, 0.3)
    r, m = SparseReLU()(x, mask)
    assert m is mask and torch.equal(r, F.relu(x))
    flat = SparseFlatten()(x, mask)
    assert flat.shape == (2, 60) and torch.equal(flat, torch.flatten(x, 1))
    with pytest.raises(ValueError, match="bool mask"):
        SparseFlatten()(x, mask.float())


def test_spec_round_trip_model_layout_and_dense_twin():
    spec = SparseModelSpec((2, 13, 11), 0.25, 12,
                           (SparseConvSpec(4, 3, True, "max"), SparseConvSpec(3, 1, False, "avg"),
                            SparseConvSpec(5, 5, False, None)), (7,), 4)
    assert SparseModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.feature_shapes() == [(2, 13, 11), (4, 6, 5), (3, 3, 2), (5, 3, 2)]
    model = build_sparse_model(spec, seed=3)
    assert model.layer_names == ("sconv0", "sconv1", "sconv2", "fc0", "fc1")
    assert model.qlayer_names() == ("sconv0", "spool0", "sconv1", "spool1", "sconv2", "fc0", "fc1")
    assert [n for n, _ in zprune.prunable_layers(model)] == [f"layers.{i}" for i in range(5)]
    x = torch.rand(3, 2, 13, 11)
    assert model(x).shape == (3, 4)
    outs, masks = model.forward_layers(x)
    assert [tuple(o.shape[1:]) for o in outs] == [(4, 13, 11), (4, 6, 5), (3, 6, 5), (3, 3, 2), (5, 3, 2),
                                                  (7,), (4,)]
    assert [m is None for m in masks] == [False] * 5 + [True] * 2
    assert torch.equal(build_sparse_model(spec, seed=3).layers[0].weight, model.layers[0].weight)
    twin_spec = dense_twin_spec(spec)
    twin = build_dense_twin(spec, seed=3)
    assert twin_spec.feature_shapes() == spec.feature_shapes()
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in model.parameters())
    default = sparse_pixels_spec()
    assert default.input_shape == (1, 63, 63) and default.n_classes == 3
    for bad, match in (({"kernel": 2}, "odd"), ({"pool": "min"}, "pool"), ({"relu": False}, "relu")):
        with pytest.raises(ValueError, match=match):
            SparseConvSpec(4, **{"kernel": 3, "relu": True, "pool": "max", **bad})
    with pytest.raises(ValueError, match="n_max"):
        SparseModelSpec((1, 8, 8), 0.1, 0, (SparseConvSpec(2),), (), 2)
    with pytest.raises(ValueError, match="pool"):
        SparseModelSpec((1, 3, 3), 0.1, 4, (SparseConvSpec(2), SparseConvSpec(2)), (), 2)


# ---------------------------------------------------------------- detector dataset

def test_detector_dataset_is_sparse_and_deterministic():
    d = load_detector(seed=1, n_train=600, n_test=150)
    assert d.input_shape == (1, 63, 63) and d.n_classes == 3 and d.name == "detector"
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() <= 1.0
        np.testing.assert_allclose(x * ADC_LEVELS, np.rint(x * ADC_LEVELS), atol=1e-4)   # 7-bit ADC values
        assert np.bincount(y).tolist() == [len(y) // 3] * 3
        act = active_fraction(x, DETECTOR_THRESHOLD)
        assert act.max() <= 0.02 and 0.002 <= act.mean() <= 0.015
        assert (x > 0).mean() <= 0.02                               # noise pixels included
        assert np.all((x[:, 0] > DETECTOR_THRESHOLD).sum(axis=(1, 2)) >= 1)
    again = load_detector(seed=1, n_train=600, n_test=150)
    np.testing.assert_array_equal(d.x_train, again.x_train)
    assert not np.array_equal(d.x_train, load_detector(seed=2, n_train=600, n_test=150).x_train)
    with pytest.raises(ValueError, match="n_train"):
        load_detector(n_train=0)


# ---------------------------------------------------------------- training and quantisation

@pytest.fixture(scope="module")
def detector_pipeline():
    """A default sparse model trained briefly on a detector subset, then quantised."""
    data = load_detector(seed=0, n_train=2000, n_test=500)
    model = build_sparse_model(sparse_pixels_spec(), seed=0)
    train(model, data.x_train, data.y_train, epochs=8, seed=0, quiet=True)   # ~10 s; the full recipe is longer
    qmodel = quantize_sparse(model, data.x_train)
    return data, model, qmodel


@pytest.mark.xdist_group("sparse_pipeline")
def test_sparse_model_trains(detector_pipeline):
    data, model, _ = detector_pipeline
    # Chance is 1/3; telling showers from tracks alone gives 2/3 (the full recipe reaches > 0.9).
    assert evaluate(model, data.x_test, data.y_test) >= 0.6


@pytest.mark.xdist_group("sparse_pipeline")
def test_quantised_sparse_model(detector_pipeline):
    data, model, qmodel = detector_pipeline
    spec = model.spec
    kinds = [(layer.kind, getattr(layer, "mode", None)) for layer in qmodel.layers]
    assert kinds == [("sconv", None), ("spool", "max")] * len(spec.convs) + [("fc", None)] * (len(spec.fcs) + 1)
    assert qmodel.input_scale == pytest.approx(1 / 127)          # the ADC's full scale is 1.0
    assert qmodel.reduce == QInputReduce(12, spec.n_max)          # floor(0.1 * 127)
    assert qmodel.meta["reduce_agreement"] == 1.0
    assert qmodel.meta["spec"] == spec.to_dict()
    x_q = quantize_input(data.x_test, qmodel.input_scale)
    # The int8 reduce selects exactly the float reduce's pixels.
    _, n_sites, coords = reduce_input(qmodel.reduce, x_q)
    red = model.reduce(torch.from_numpy(data.x_test))
    np.testing.assert_array_equal(coords, red.coords.numpy())
    np.testing.assert_array_equal(n_sites, red.n_sites.numpy())
    logits = run_reference(qmodel, x_q)
    float_pred = predict(model, data.x_test).argmax(axis=1)
    assert (logits.argmax(axis=1) == float_pred).mean() >= 0.97
    assert abs((logits.argmax(axis=1) == data.y_test).mean() - (float_pred == data.y_test).mean()) <= 0.02
    for layer in qmodel.layers:
        if layer.kind is not LayerKind.SPOOL and layer is not qmodel.layers[-1]:
            assert np.all((layer.mult >= 2**15) & (layer.mult < 2**16)) and layer.relu
    check_sparse_against_numpy(qmodel, x_q[:40])


def test_quantize_sparse_general_spec():
    """ReLU-less conv, avg pooling, 1×1 and 5×5 kernels, odd maps, a pruned model,
    percentile calibration, an input scale that is not the data's."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 2, 11, 9, generator=gen) ** 6).numpy()
    spec = SparseModelSpec((2, 11, 9), 0.3, 10,
                           (SparseConvSpec(4, 5, False, "avg"), SparseConvSpec(3, 1, True, "max"),
                            SparseConvSpec(3, 3, True, None)), (6,), 3)
    model = build_sparse_model(spec, seed=0)
    zprune.prune_global(model, 0.5)
    q = quantize_sparse(model, x, act_percentile=99.0, input_scale=0.0071)
    assert [layer.kind for layer in q.layers] == ["sconv", "spool", "sconv", "spool", "sconv", "fc", "fc"]
    assert [layer.relu for layer in q.layers if layer.kind is not LayerKind.SPOOL] == [False, True, True, True, False]
    assert q.reduce.threshold == 42                               # floor(0.3 / 0.0071) = floor(42.25)
    x_q = quantize_input(x, q.input_scale)
    check_sparse_against_numpy(q, x_q)
    agree = (run_reference(q, x_q).argmax(axis=1) == predict(model, x).argmax(axis=1)).mean()
    assert agree >= 0.8
    with pytest.raises(TypeError, match="SparseCNN"):
        quantize_sparse(build_dense_twin(spec), x)
    with pytest.raises(ValueError, match="shape"):
        quantize_sparse(model, x[:, :1])
    # one dense twin: the integer twin of the quantised model is the float twin of its spec
    twin_q, twin_spec = dense_grid_twin(q), dense_twin_spec(spec)
    convs = [la for la in twin_q.layers if la.kind is LayerKind.CONV]
    assert [la.kind for la in twin_q.layers] == [LayerKind.CONV] * 3 + [LayerKind.FC] * 2 and twin_q.reduce is None
    assert [(la.c_out, la.kernel[0], la.padding, la.pool) for la in convs] == \
        [(cv.out_channels, cv.kernel, cv.padding, cv.pool) for cv in twin_spec.convs]
    assert twin_q.out_shapes()[:3] == twin_spec.feature_shapes()[1:]
    assert [la.c_out for la in twin_q.layers[3:]] == [*twin_spec.fcs, twin_spec.n_classes]
    tiny = QModel((1, 4, 4), (QLayer(LayerKind.CONV, np.ones((2, 1, 3, 3), np.int8), np.zeros(2, np.int32),
                                     np.ones(2, np.int64), np.ones(2, np.int64), padding=1, pool=True),
                              QLayer(LayerKind.FC, np.ones((3, 8), np.int8), np.zeros(3, np.int32),
                                     np.ones(3, np.int64), np.ones(3, np.int64))))
    assert dense_grid_twin(tiny).layers == tiny.layers      # a dense model is its own twin


@given(st.floats(-3.0, 3.0), st.floats(1e-3, 0.5))
@settings(max_examples=300, deadline=None)
def test_threshold_to_int8_matches_float_on_representable_inputs(threshold, scale):
    if threshold < -128 * scale:
        with pytest.raises(ValueError, match="below"):
            threshold_to_int8(threshold, scale)
        return
    t = threshold_to_int8(threshold, scale)
    q = np.arange(-128, 128)
    np.testing.assert_array_equal(q > t, q * scale > threshold)


def test_threshold_to_int8_edges():
    assert threshold_to_int8(0.1, 1 / 127) == 12
    assert threshold_to_int8(13 / 127, 1 / 127) == 13        # exactly on the grid: q = 13 is not above it
    assert threshold_to_int8(10.0, 1 / 127) == 127
    assert threshold_to_int8(-1.0, 1 / 127) == -127


# ---------------------------------------------------------------- integer reference vs numpy

random_sparse_args = st.fixed_dictionaries({
    "input_shape": st.tuples(st.integers(1, 2), st.integers(1, 24), st.integers(1, 24)),
    "n_max": st.integers(1, 32),
    "n_sconv": st.integers(1, 2),
    "pool": st.sampled_from([None, "max", "avg", "none"]),
    "n_hidden_fc": st.integers(0, 1),
    "sparsity": st.sampled_from([None, 0.0, 0.999]),
    "relu": st.sampled_from([None, True, False]),
    "zero_channel": st.booleans(),
    "saturate": st.booleans(),
})


@given(seed=st.integers(0, 2**63 - 1), args=random_sparse_args, negative=st.booleans(),
       fraction=st.sampled_from([None, None, 0.0, 0.05, 0.3, 1.0]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sparse_reference_matches_numpy(seed, args, negative, fraction):
    rng = np.random.default_rng(seed)
    qmodel = random_sparse_qmodel(rng, **args)
    x = random_sparse_input(rng, qmodel, int(rng.integers(1, 6)), fraction=fraction, negative=negative)
    check_sparse_against_numpy(qmodel, x)


@pytest.mark.slow
@given(seed=st.integers(0, 2**63 - 1), args=random_sparse_args, negative=st.booleans())
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sparse_reference_matches_numpy_fuzz(seed, args, negative):
    rng = np.random.default_rng(seed)
    qmodel = random_sparse_qmodel(rng, **args)
    check_sparse_against_numpy(qmodel, random_sparse_input(rng, qmodel, 4, negative=negative))


def test_random_sparse_inputs_cover_edge_cases():
    """No site, more active pixels than n_max, sites on the border, pixels exactly at the
    threshold, sites dropped by floor pooling of an odd map."""
    seen = {"none": 0, "overflow": 0, "border": 0, "at_threshold": 0, "dropped": 0, "avg": 0, "max": 0}
    for seed in range(60):
        rng = np.random.default_rng(seed)
        qmodel = random_sparse_qmodel(rng, threshold=int(rng.integers(0, 100)))
        x = random_sparse_input(rng, qmodel, 6)
        t, n_max = qmodel.reduce.threshold, qmodel.reduce.n_max
        active = x[:, 0].astype(int) > t
        counts = active.sum(axis=(1, 2))
        seen["none"] += int(np.any(counts == 0))
        seen["overflow"] += int(np.any(counts > n_max))
        seen["at_threshold"] += int(np.any(x[:, 0] == t))
        _, h, w = qmodel.input_shape
        seen["border"] += int(np.any(active[:, [0, -1], :]) or np.any(active[:, :, [0, -1]]))
        modes = {layer.mode for layer in qmodel.layers if layer.kind is LayerKind.SPOOL}
        seen["avg"] += "avg" in modes
        seen["max"] += "max" in modes
        if qmodel.layers[1].kind is LayerKind.SPOOL and (h % 2 or w % 2):
            kept = reduce_input(qmodel.reduce, x)[0][:, 0] != 0
            seen["dropped"] += int(np.any(kept[:, 2 * (h // 2):, :]) or np.any(kept[:, :, 2 * (w // 2):]))
        check_sparse_against_numpy(qmodel, x)
    assert min(seen.values()) >= 5, seen
    a, b = (random_sparse_qmodel(np.random.default_rng(7)) for _ in range(2))
    assert a.reduce == b.reduce and all(np.array_equal(la.weight, lb.weight) for la, lb in zip(a.layers, b.layers)
                                        if la.kind is not LayerKind.SPOOL)
    q = random_sparse_qmodel(np.random.default_rng(0), input_shape=(1, 5, 5), n_max=3)
    x = random_sparse_input(np.random.default_rng(1), q, 20, fraction=1.0)
    assert np.all(x[:, 0] > q.reduce.threshold) or q.reduce.threshold == 127


def _manual_model(threshold: int, n_max: int, input_shape=(1, 5, 5), first_pool: str | None = None) -> QModel:
    c = input_shape[0]
    layers: list = []
    if first_pool:
        layers.append(QSparsePool(first_pool))
    w = np.ones((1, c, 3, 3), np.int8)
    layers.append(QLayer("sconv", w, np.array([5], np.int32), np.array([1 << 15]), np.array([16]), padding=1,
                         relu=True))
    layers.append(QSparsePool("max"))
    shape = tuple(input_shape)
    for i, layer in enumerate(layers):
        shape = layer_output_shape(layer, shape, i)
    n_in = int(np.prod(shape))
    fc = QLayer("fc", np.arange(1, n_in + 1).astype(np.int8).reshape(1, n_in), np.array([-3], np.int32),
                np.ones(1, np.int64), np.ones(1, np.int64))
    return QModel(input_shape, (*layers, fc), reduce=QInputReduce(threshold, n_max))


def test_sparse_reference_directed_edge_cases():
    q = _manual_model(threshold=10, n_max=2)
    x = np.zeros((4, 1, 5, 5), np.int8)
    x[1, 0, 0, 0] = 11                        # corner site; x == threshold is not active:
    x[1, 0, 0, 1] = 10
    x[2, 0] = 50                              # every pixel active: only (0, 0), (0, 1) kept
    x[3, 0, 4, 4] = 100                       # dropped by floor pooling of the 5x5 map
    want = check_sparse_against_numpy(q, x)
    # No site: every map is zero and the logits are the fc bias.
    assert np.all(want[0][0] == 0) and want[-1][0, 0] == -3
    # Corner site: acc = 5 + 11 → (16 * 2**15 + 2**15) >> 16 = 8, pooled to cell (0, 0).
    assert want[0][1, 0, 0, 0] == 8 and want[-1][1, 0] == 8 - 3
    # Two sites of 50 next to each other: acc = 5 + 100 at both → 53, one cell.
    assert want[1][2, 0, 0, 0] == 53 and np.count_nonzero(want[1][2]) == 1
    assert np.all(want[1][3] == 0) and np.count_nonzero(want[0][3]) == 1
    # An avg pool straight after the reduce (on the input), two input channels.
    q2 = _manual_model(threshold=0, n_max=8, input_shape=(2, 6, 7), first_pool="avg")
    x2 = random_sparse_input(np.random.default_rng(3), q2, 8)
    check_sparse_against_numpy(q2, x2)
    # A reduce that can never fire.
    q3 = _manual_model(threshold=127, n_max=4)
    assert np.all(run_reference(q3, np.full((2, 1, 5, 5), 127, np.int8)) == -3)


def test_avg_rule_and_dispatch():
    assert tuple(AVG_RECIP) == R_DOC == tuple([0] + [round(2**16 / n) for n in range(1, 5)])
    # (sum * R[n] + 2**15) >> 16 stays in int8 for every n and every int8 sum.
    for n in range(1, 5):
        sums = np.arange(-128 * n, 127 * n + 1, dtype=np.int64)
        y = (sums * R_DOC[n] + 2**15) >> 16
        assert y.min() >= -128 and y.max() <= 127
    q = random_sparse_qmodel(np.random.default_rng(0))
    with pytest.raises(TypeError, match="int8"):
        run_reference(q, np.zeros((1, *q.input_shape), np.int16))
    with pytest.raises(TypeError, match="int8"):
        IntegerReference(q)(torch.zeros(1, *q.input_shape))
    assert run_reference(q, np.zeros((0, *q.input_shape), np.int8)).shape == (0, q.layers[-1].c_out)
