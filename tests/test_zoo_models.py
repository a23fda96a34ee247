"""The model zoo (zeroskip.host.zoo): every entry builds, runs on its own data set, and
imports through the torch.fx frontend and the float passes to a layer graph whose float
evaluation reproduces the PyTorch model; the data sets have the promised shapes, dtypes
and determinism; the models have the reference sizes."""

from __future__ import annotations

import time
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch
from torch import nn
from zeroskip.host.frontends import from_torch
from zeroskip.host.ir import evaluate, run_passes
from zeroskip.host.ir.passes import FLOAT_FLOW
from zeroskip.host.models.cnn import build_model, tiny_cnn_spec
from zeroskip.host.models.sparse import SparseCNN, sparse_pixels_spec
from zeroskip.host.zoo import ZOO, ZooEntry, get
from zeroskip.host.zoo.models import DSCNNKWS, ResNet8, TinyCNN

pytestmark = pytest.mark.ml

NAMES = ("tinycnn", "lenet5", "dscnn_kws", "resnet8", "fc_autoencoder", "jet_mlp", "sparsepixels")


def _batch(entry: ZooEntry, n_train: int = 48, n_test: int = 16, seed: int = 0):
    return entry.dataset(n_train, n_test, seed)


def _settle_batchnorm(model: nn.Module, x: np.ndarray, seed: int = 0) -> nn.Module:
    """Put every BatchNorm into a non-trivial inference state: random affine parameters,
    then a few training-mode forwards on real data to move the running statistics; eval."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.momentum = 0.5
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.as_tensor(x))
    return model.eval()


@pytest.fixture(scope="module")
def data():
    return {name: _batch(ZOO[name]) for name in NAMES}


def test_registry_names_and_fields():
    assert tuple(ZOO) == NAMES
    for name, e in ZOO.items():
        assert isinstance(e, ZooEntry) and e.name == name and get(name) is e
        assert e.task in ("classification", "autoencoder") and e.source
        assert callable(e.factory) and callable(e.dataset) and e.n_out >= 1
    assert ZOO["fc_autoencoder"].task == "autoencoder" and ZOO["fc_autoencoder"].n_out == 640
    with pytest.raises(ValueError) as err:
        get("alexnet")
    assert "alexnet" in str(err.value) and all(n in str(err.value) for n in NAMES)


def test_entries_are_frozen():
    with pytest.raises(FrozenInstanceError):
        ZOO["lenet5"].n_out = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
def test_forward_on_its_data_set(name, data):
    e = ZOO[name]
    torch.manual_seed(0)
    model = e.factory().eval()
    x_tr, _, x_te, _ = data[name]
    with torch.no_grad():
        out = model(torch.as_tensor(x_te))
    assert tuple(out.shape) == (len(x_te), e.n_out)
    assert torch.isfinite(out).all()
    if e.task == "autoencoder":
        assert out.shape == x_te.shape


@pytest.mark.parametrize("name", NAMES)
def test_import_through_the_frontend_matches_torch(name, data):
    e = ZOO[name]
    torch.manual_seed(1)
    x_tr, _, x_te, _ = data[name]
    model = _settle_batchnorm(e.factory(), x_tr[:32])
    graph = run_passes(from_torch(model, e.input_shape), FLOAT_FLOW)
    assert "batchnorm" not in graph.ops() and "identity" not in graph.ops()
    with torch.no_grad():
        want = model(torch.as_tensor(x_te)).double().numpy()
    got = evaluate(graph, x_te)
    assert got.shape == want.shape == (len(x_te), e.n_out)
    scale = max(1e-6, float(np.abs(want).max()))
    assert np.abs(got - want).max() / scale < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_data_set_shapes_dtypes_and_determinism(name, data):
    e = ZOO[name]
    x_tr, y_tr, x_te, y_te = data[name]
    assert x_tr.shape == (48, *e.input_shape) and x_te.shape == (16, *e.input_shape)
    assert x_tr.dtype == x_te.dtype == np.float32
    assert np.isfinite(x_tr).all() and np.isfinite(x_te).all()
    if e.task == "autoencoder":
        assert y_tr.dtype == np.float32 and np.array_equal(y_tr, x_tr) and np.array_equal(y_te, x_te)
    else:
        assert y_tr.dtype == y_te.dtype == np.int64
        assert y_tr.shape == (48,) and y_te.shape == (16,)
        assert y_tr.min() >= 0 and max(y_tr.max(), y_te.max()) < e.n_out
        assert len(np.unique(y_tr)) == min(e.n_out, 48)   # balanced / stratified draws cover the classes
    again = _batch(e)
    for a, b in zip(data[name], again):
        assert np.array_equal(a, b)
    other = _batch(e, seed=1)
    assert not np.array_equal(other[0], x_tr)
    assert not np.array_equal(x_tr[: len(x_te)], x_te), "train and test samples differ"


def test_data_sets_are_fast_at_default_size():
    for name in NAMES:
        t = time.perf_counter()
        x_tr, _, x_te, _ = ZOO[name].dataset(None, None, 0)
        took = time.perf_counter() - t
        assert len(x_tr) >= 1000 and len(x_te) >= 250
        assert took < 5.0, f"{name}: {took:.1f} s for {len(x_tr) + len(x_te)} samples"


def test_tinycnn_is_the_project_tinycnn():
    """Same layers as SpecCNN(tiny_cnn_spec): its weights give the same logits."""
    spec_model = build_model(tiny_cnn_spec((1, 16, 16), 10), seed=3).eval()
    zoo_model = TinyCNN().eval()
    ours = [p for p in zoo_model.parameters()]
    theirs = [p for p in spec_model.layers.parameters()]
    assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in theirs]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            a.copy_(b)
        x = torch.as_tensor(ZOO["tinycnn"].dataset(20, 10, 0)[2])
        assert torch.allclose(zoo_model(x), spec_model(x), atol=1e-6)


def test_sparsepixels_is_the_default_sparse_model():
    model = ZOO["sparsepixels"].factory()
    assert isinstance(model, SparseCNN) and model.spec == sparse_pixels_spec()


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,count", [
    ("lenet5", 61_706),         # LeNet-5's classic parameter count
    ("dscnn_kws", 23_756),      # MLPerf Tiny DS-CNN, trainable parameters (BN γ, β included)
    ("jet_mlp", 4_389),         # hls4ml tutorial part 1 model
])
def test_reference_parameter_counts(name, count):
    assert _n_params(ZOO[name].factory()) == count


def test_reference_feature_map_shapes():
    kws = DSCNNKWS().eval()
    with torch.no_grad():
        assert tuple(kws.stem(torch.zeros(1, 1, 49, 10)).shape) == (1, 64, 25, 5)
    net = ResNet8().eval()
    with torch.no_grad():
        x = net.stem(torch.zeros(1, 3, 32, 32))
        shapes = []
        for stack in (net.stack1, net.stack2, net.stack3):
            x = stack(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert net.stack1.shortcut is None
    for stack in (net.stack2, net.stack3):
        sc = stack.shortcut
        assert isinstance(sc, nn.Conv2d) and sc.kernel_size == (1, 1) and sc.stride == (2, 2)
    graph = run_passes(from_torch(net, (3, 32, 32)), FLOAT_FLOW)
    assert graph.ops().count("add") == 3
