"""The layer-graph IR: the torch.fx frontend on models written the way users write them,
the float evaluation (the import reproduces the source model), each pass on its own, and
a TinyCNN with BatchNorm and Dropout going through the passes into the quantiser, the
compiler and the golden model bit-exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from zeroskip.driver.errors import UnsupportedModel
from zeroskip.host.frontends import from_torch
from zeroskip.host.ir import (
    Act,
    Add,
    BatchNorm,
    Conv,
    Flatten,
    Graph,
    Identity,
    Linear,
    Pool,
    Tensor,
    evaluate,
    run_passes,
)
from zeroskip.host.ir.passes import PASSES


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


def _close(graph: Graph, model: nn.Module, x: np.ndarray, rtol=1e-4):
    with torch.no_grad():
        want = model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    got = evaluate(graph, x)
    scale = max(1e-6, float(np.abs(want).max()))
    assert np.abs(got - want).max() / scale < rtol, (np.abs(got - want).max(), scale)


class SeqBN(nn.Module):
    """A Sequential CNN with BatchNorm and Dropout, as a user writes it."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Linear(32, 3))

    def forward(self, x):
        return self.classifier(self.features(x))


class Functional(nn.Module):
    """A functional-style forward: F.relu, x.view(x.size(0), -1), a residual x + y."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 4)

    def forward(self, x):
        a = F.relu(self.c1(x))
        b = torch.add(a, F.relu(self.c2(a)))
        b = F.max_pool2d(b, 2)
        return self.fc(b.view(b.size(0), -1))


class DepthwiseGap(nn.Module):
    """Depthwise-separable block with a stride-2 rectangular first conv, ReLU6 and global
    average pooling into a linear layer."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, (10, 4), stride=2, padding=(5, 1))
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 12, 1)
        self.bn = nn.BatchNorm2d(12)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        x = F.relu(self.dw(x))
        x = F.relu(self.bn(self.pw(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


def test_sequential_cnn_with_batchnorm_and_dropout_imports_exactly():
    torch.manual_seed(0)
    model = _randomise_bn(SeqBN())
    x = np.random.default_rng(0).normal(size=(5, 1, 16, 16))
    g = from_torch(model, (1, 16, 16))
    assert g.ops().count("batchnorm") == 3 and g.ops().count("identity") == 2
    _close(g, model, x)
    folded = run_passes(g)
    assert folded.ops() == ["conv", "conv", "flatten", "linear", "linear"]
    c0, c1 = folded.nodes[:2]
    assert (c0.act, c0.pool, c1.act, c1.pool) == ("relu", True, "relu", True)
    assert folded.nodes[3].act == "relu" and folded.nodes[4].act == "none"
    _close(folded, model, x)


def test_functional_forward_with_a_residual_add():
    torch.manual_seed(1)
    model = Functional().eval()
    x = np.random.default_rng(1).normal(size=(3, 2, 8, 8))
    g = from_torch(model, (2, 8, 8))
    _close(g, model, x)
    g = run_passes(g)
    add = next(n for n in g.nodes if isinstance(n, Add))
    c1 = g.producer(add.inputs[0])
    assert isinstance(c1, Conv) and c1.act == "relu"
    assert len(g.consumers(c1.output)) == 2, "the residual tensor has two readers"
    assert [n.op for n in g.nodes] == ["conv", "conv", "add", "pool", "flatten", "linear"]
    _close(g, model, x)


def test_depthwise_stride2_rectangular_relu6_and_global_average_pool():
    torch.manual_seed(2)
    model = _randomise_bn(DepthwiseGap(), 2)
    x = np.random.default_rng(2).normal(size=(4, 1, 49, 10))
    g = run_passes(from_torch(model, (1, 49, 10)))
    stem = g.nodes[0]
    assert (stem.kernel, stem.stride, stem.padding, stem.act) == ((10, 4), (2, 2), (5, 5, 1, 1), "relu6")
    assert g.nodes[1].groups == 8 and g.ops().count("batchnorm") == 0
    assert g.tensors[g.nodes[0].output].shape == (8, 25, 5)
    assert any(isinstance(n, Pool) and n.kind == "global_avg" for n in g.nodes)
    _close(g, model, x)


def test_mlp_with_batchnorm1d_and_relu6():
    torch.manual_seed(3)
    model = _randomise_bn(nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU6(), nn.Linear(32, 5)), 3)
    x = np.random.default_rng(3).normal(size=(6, 16))
    g = run_passes(from_torch(model, (16,)))
    assert g.ops() == ["linear", "linear"] and g.nodes[0].act == "relu6"
    _close(g, model, x)


@pytest.mark.parametrize("module,needle", [
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid()), "module Sigmoid"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh()), "module Tanh"),
    (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), "groups=2"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect")), "padding_mode"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.GELU()), "module GELU"),
])
def test_unsupported_ops_are_named(module, needle):
    cin = module[0].in_channels
    with pytest.raises(UnsupportedModel, match=needle) as e:
        from_torch(module.eval(), (cin, 8, 8))
    assert "Supported:" in str(e.value)


def test_data_dependent_control_flow_is_refused():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            if x.sum() > 0:
                return self.fc(x)
            return -self.fc(x)

    with pytest.raises(UnsupportedModel, match="control flow"):
        from_torch(Branchy().eval(), (4,))


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        from_torch(nn.Sequential(nn.Linear(4, 2)), (4,))


# ---------------------------------------------------------------- passes one by one
def _t(*shape, layout="grid"):
    return Tensor("x", shape, layout)


def test_fold_bn_pass():
    rng = np.random.default_rng(4)
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    bn = BatchNorm("bn", ("c",), "y", gamma=rng.random(3) + 0.5, beta=rng.normal(size=3), mean=rng.normal(size=3),
                   var=rng.random(3) + 0.5, eps=1e-3)
    g = Graph([_t(2, 6, 6)], [Conv("c", ("x",), "c", weight=w, bias=b, padding=(1, 1, 1, 1)), bn], ["y"])
    x = rng.normal(size=(2, 2, 6, 6))
    want = evaluate(g, x)
    f = PASSES["fold_bn"](g)
    assert f.ops() == ["conv"] and f.outputs == ["c"]
    np.testing.assert_allclose(evaluate(f, x), want, rtol=1e-12, atol=1e-12)
    assert g.ops() == ["conv", "batchnorm"], "the input graph is left unchanged"
    # a BatchNorm after an activation cannot be folded
    g2 = Graph([_t(2, 6, 6)], [Conv("c", ("x",), "c", weight=w, bias=b), Act("r", ("c",), "r"),
                               BatchNorm("bn", ("r",), "y", gamma=np.ones(3), beta=np.zeros(3), mean=np.zeros(3),
                                         var=np.ones(3))], ["y"])
    with pytest.raises(UnsupportedModel, match="bn .batchnorm.: a BatchNorm must directly follow"):
        PASSES["fold_bn"](g2)


def test_drop_identity_pass():
    w = np.ones((2, 4))
    g = Graph([_t(4, layout="flat")], [Identity("d", ("x",), "d"), Linear("l", ("d",), "l", weight=w),
                                       Identity("e", ("l",), "e")], ["e"])
    f = PASSES["drop_identity"](g)
    assert f.ops() == ["linear"] and f.nodes[0].inputs == ("x",) and f.outputs == ["l"]


def test_fuse_passes_respect_other_readers():
    w = np.ones((2, 2, 1, 1))
    conv = Conv("c", ("x",), "c", weight=w)
    g = Graph([_t(2, 4, 4)], [conv, Act("r", ("c",), "r"), Add("a", ("r", "c"), "a")], ["a"])
    f = PASSES["fuse_activation"](g)
    assert f.ops() == ["conv", "act", "add"], "the conv output has a second reader: the ReLU stays a node"
    g = Graph([_t(2, 4, 4)], [conv, Act("r", ("c",), "r", kind="relu6"), Pool("p", ("r",), "p")], ["p"])
    f = PASSES["fuse_pool"](PASSES["fuse_activation"](g))
    assert f.ops() == ["conv"] and (f.nodes[0].act, f.nodes[0].pool) == ("relu6", True) and f.outputs == ["p"]
    assert f.tensors["p"].shape == (2, 2, 2)
    # average pooling and pools on sites tensors stay nodes
    g = Graph([_t(2, 4, 4)], [conv, Pool("p", ("c",), "p", kind="avg")], ["p"])
    assert PASSES["fuse_pool"](g).ops() == ["conv", "pool"]


def test_graph_checks_order_and_shapes():
    w = np.ones((2, 3))
    with pytest.raises(ValueError, match="before anything writes it"):
        Graph([_t(3, layout="flat")], [Linear("a", ("b",), "a", weight=w), Linear("b", ("x",), "b", weight=w)], ["a"])
    with pytest.raises(UnsupportedModel, match="expects 3 inputs, gets 4"):
        Graph([_t(4, layout="flat")], [Linear("a", ("x",), "a", weight=w)], ["a"])
    with pytest.raises(UnsupportedModel, match="needs a flat input"):
        Graph([_t(3, 2, 2)], [Linear("a", ("x",), "a", weight=np.ones((2, 12)))], ["a"])


# ---------------------------------------------------------------- into today's quantiser, bit-exact
def test_tinycnn_with_batchnorm_and_dropout_runs_bit_exact():
    """Imported (BN folded, Dropout dropped, activations and pools fused), quantised by
    the existing quantiser, compiled, run on the golden model: equal to the integer
    reference, and the float import equals the source model."""
    import npref
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.golden import GoldenEngine
    from zeroskip.driver.program import HwConfig, encode_program
    from zeroskip.host.compiler import compile_model, input_layout
    from zeroskip.host.quant.graph_quant import quantize_graph
    from zeroskip.host.quant.quantize import quantize_input
    from zeroskip.host.quant.reference import run_reference

    torch.manual_seed(5)
    model = _randomise_bn(SeqBN(), 5)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(24, 1, 16, 16)).astype(np.float32)
    g = run_passes(from_torch(model, (1, 16, 16)))
    np.testing.assert_allclose(evaluate(g, x), model(torch.as_tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-4)
    q = quantize_graph(g, x[:16])
    xq = quantize_input(x[16:], q.input_scale)
    ref = run_reference(q, xq)
    np.testing.assert_array_equal(ref, npref.forward(q, xq))
    hw = HwConfig(lanes=8)
    prog = compile_model(q, hw)
    gold = GoldenEngine(hw)
    gold.load(encode_program(prog))
    out, _ = gold.run_images(pack_inputs(xq, input_layout(q).to_dict()))
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("pools", [("max", "max", "max", "max"), ("avg", None, "avg", "max")])
def test_sparse_pixel_cnn_imports_as_sites_tensors(pools):
    """The sparse-pixel CNN goes through the same frontend: its layers become conv and
    pool nodes on ``sites`` tensors after the input reduce, and the float graph reproduces
    the model (submanifold convs, sparse max / average pooling, sparse flatten)."""
    from zeroskip.host.data.detector import make_detector
    from zeroskip.host.models.sparse import SparseConvSpec, SparseModelSpec, build_sparse_model

    convs = tuple(SparseConvSpec(c, 3, True, p) for c, p in zip((8, 8, 16, 16), pools))
    spec = SparseModelSpec(input_shape=(1, 63, 63), convs=convs, fcs=(16,), n_classes=3, threshold=0.1, n_max=40)
    model = build_sparse_model(spec, seed=7).eval()
    g = run_passes(from_torch(model, (1, 63, 63)))
    assert g.ops()[0] == "reduce" and g.ops().count("pool") == sum(p is not None for p in pools)
    for n in g.nodes[1:]:
        if isinstance(n, (Conv, Pool)):
            assert g.tensors[n.output].layout == "sites", n.describe()
    assert g.tensors[next(n for n in g.nodes if isinstance(n, Flatten)).output].layout == "flat"
    x, _ = make_detector(np.random.default_rng(7), 8)
    with torch.no_grad():
        want = model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    got = evaluate(g, x)
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))


def test_tinycnn_quantise_goes_through_the_graph():
    """The demo's TinyCNN (a SpecCNN with pruning masks) is quantised through the layer
    graph: ``quantize`` equals ``quantize_graph`` of its import, array for array, pruned
    zeros included."""
    from zeroskip.host.models.cnn import build_model, tiny_cnn_spec
    from zeroskip.host.quant.graph_quant import quantize_graph
    from zeroskip.host.quant.quantize import quantize
    from zeroskip.host.training.prune import finalize, prune_global

    model = build_model(tiny_cnn_spec((1, 16, 16), 2), seed=3)
    prune_global(model, 0.7)
    finalize(model)
    model.eval()
    x = np.random.default_rng(9).normal(size=(32, 1, 16, 16)).astype(np.float32)
    direct = quantize(model, x)
    via = quantize_graph(run_passes(from_torch(model, (1, 16, 16))), x)
    assert direct.input_scale == via.input_scale and len(direct.layers) == len(via.layers)
    for a, b in zip(direct.layers, via.layers):
        for f in ("weight", "bias", "mult", "shift"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert (a.kind, a.pads, a.relu, a.pool) == (b.kind, b.pads, b.relu, b.pool)
    assert np.count_nonzero(via.layers[0].weight) < via.layers[0].weight.size
