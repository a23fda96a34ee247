"""The ONNX frontend: models written the way users write them, exported with
``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``, and the
``torch.export``-based one, ``dynamo=True``), imported with ``from_onnx``, run through the
float passes and evaluated equal to PyTorch and to onnxruntime; hand-written ONNX graphs
for the patterns exporters do not emit here (MatMul + Add, Clip attributes, auto_pad);
unsupported ops refused naming the node and its op."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from zeroskip.driver.errors import UnsupportedModel  # noqa: E402
from zeroskip.host.frontends import from_onnx  # noqa: E402
from zeroskip.host.ir import Conv, Graph, evaluate, run_passes  # noqa: E402
from zeroskip.host.ir.passes import FLOAT_FLOW  # noqa: E402

pytestmark = pytest.mark.ml

BATCH = 3
# dynamo=False: the TorchScript exporter, batch made symbolic with dynamic_axes;
# dynamo=True: the torch.export exporter with the batch of the example input (static);
# "dynamo_dyn": torch.export with a symbolic batch (dynamic_shapes)
EXPORTERS = ("torchscript", "dynamo")


# ------------------------------------------------------------------ user models
class SeqCNN(nn.Module):
    """A Sequential CNN with BatchNorm, Dropout, ReLU, MaxPool, Flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Flatten(), nn.Linear(16 * 4 * 4, 10))

    def forward(self, x):
        return self.net(x)


class FunctionalCNN(nn.Module):
    """A functional forward: F.relu, F.max_pool2d and x.view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 12, 3)
        self.fc1 = nn.Linear(12 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


class DSCNN(nn.Module):
    """A depthwise-separable keyword-spotting net: a 10x4 stride-2 first conv with
    asymmetric zero padding, depthwise 3x3 + pointwise 1x1 blocks with ReLU6, global
    average pooling, a linear classifier."""

    def __init__(self, c: int = 12):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 4, 5))   # left, right, top, bottom
        self.stem = nn.Conv2d(1, c, (10, 4), stride=2)
        self.bn0 = nn.BatchNorm2d(c)
        blocks = []
        for stride in (1, 2):
            blocks += [nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU6(), nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6()]
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, 6)

    def forward(self, x):
        x = F.relu6(self.bn0(self.stem(self.pad(x))))
        x = self.pool(self.blocks(x))
        return self.fc(torch.flatten(x, 1))


class DSCNNSymPad(DSCNN):
    """The same with the padding in the conv (padding=(4, 1))."""

    def __init__(self):
        super().__init__()
        self.pad = nn.Identity()
        self.stem = nn.Conv2d(1, 12, (10, 4), stride=2, padding=(4, 1))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(self.short(x) + y)


class SmallResNet(nn.Module):
    """A stem, an identity block and a block with a 1x1 stride-2 projection shortcut."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def mlp_softmax() -> nn.Sequential:
    """An MLP with BatchNorm1d, ReLU6 and a trailing Softmax."""
    return nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU6(), nn.Linear(32, 16), nn.ReLU6(),
                         nn.Linear(16, 5), nn.Softmax(dim=1))


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


# ------------------------------------------------------------------ helpers
def _export(model: nn.Module, x: torch.Tensor, path, exporter: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        elif exporter == "dynamo":
            torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("N", min=2, max=64)},))


def _ort(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(1e-6, float(np.abs(want).max())))


def _import_and_check(model, x, tmp_path, exporter, *, body=None, head=None, ort_body=True) -> Graph:
    """Export ``model``, import it, run the float passes, compare with PyTorch (``body``:
    the model without its softmax head) and with onnxruntime."""
    path = tmp_path / f"{type(model).__name__}_{exporter}.onnx"
    xt = torch.as_tensor(x)
    _export(model, xt, path, exporter)
    graph = run_passes(from_onnx(path), FLOAT_FLOW)
    got = evaluate(graph, x)
    with torch.no_grad():
        want = (body or model)(xt).double().numpy()
    assert _rel(got, want) < 1e-4, _rel(got, want)
    want_ort = _ort(path, x)
    if head == "softmax":
        got = torch.softmax(torch.as_tensor(got), 1).numpy()
    elif head == "log_softmax":
        got = torch.log_softmax(torch.as_tensor(got), 1).numpy()
    assert _rel(got, want_ort) < 1e-4, _rel(got, want_ort)
    assert graph.meta.get("head") == head
    return graph


def _x(*shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((BATCH, *shape)).astype(np.float32)


# ------------------------------------------------------------------ exported models
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_sequential_cnn(tmp_path, exporter):
    g = _import_and_check(_randomise_bn(SeqCNN()), _x(1, 16, 16), tmp_path, exporter)
    assert g.ops() == ["conv", "conv", "flatten", "linear"]   # BN folded, ReLU and pool fused, Dropout gone
    assert all(n.act == "relu" and n.pool for n in g.nodes if isinstance(n, Conv))


@pytest.mark.parametrize("exporter", (*EXPORTERS, "dynamo_dyn"))
def test_functional_view(tmp_path, exporter):
    g = _import_and_check(FunctionalCNN().eval(), _x(2, 16, 16), tmp_path, exporter)
    assert g.ops() == ["conv", "conv", "flatten", "linear", "linear"]


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("model", [DSCNN, DSCNNSymPad])
def test_depthwise_separable(tmp_path, exporter, model):
    g = _import_and_check(_randomise_bn(model()), _x(1, 49, 10), tmp_path, exporter)
    stem = g.nodes[0]
    assert isinstance(stem, Conv) and stem.kernel == (10, 4) and stem.stride == (2, 2) and stem.act == "relu6"
    assert stem.padding == ((4, 5, 1, 2) if model is DSCNN else (4, 4, 1, 1))   # (top, bottom, left, right)
    assert [n.groups for n in g.nodes if isinstance(n, Conv)] == [1, 12, 1, 12, 1]
    assert g.ops()[-3:] == ["pool", "flatten", "linear"]


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_resnet_block(tmp_path, exporter):
    g = _import_and_check(_randomise_bn(SmallResNet()), _x(3, 16, 16), tmp_path, exporter)
    assert g.ops().count("add") == 2
    adds = [n for n in g.nodes if n.op == "add"]
    assert all(n.act == "relu" for n in adds)
    proj = [n for n in g.nodes if isinstance(n, Conv) and n.kernel == (1, 1)]
    assert len(proj) == 1 and proj[0].stride == (2, 2)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_mlp_softmax_head(tmp_path, exporter):
    model = _randomise_bn(mlp_softmax())
    g = _import_and_check(model, _x(20), tmp_path, exporter, body=model[:-1], head="softmax")
    assert g.ops() == ["linear", "linear", "linear"]
    assert [n.act for n in g.nodes] == ["relu6", "relu6", "none"]


def test_log_softmax_head(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            return F.log_softmax(self.fc(x), dim=1)

    model = Net().eval()
    _import_and_check(model, _x(8), tmp_path, "torchscript", body=model.fc, head="log_softmax")


def test_matmul_parameters(tmp_path):
    """``x @ W + b`` with raw parameters: MatMul + Add of a constant, one Linear."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(10, 6))
            self.b = nn.Parameter(torch.randn(6))

        def forward(self, x):
            return F.relu(x @ self.w + self.b)

    g = _import_and_check(Net().eval(), _x(10), tmp_path, "torchscript")
    assert g.ops() == ["linear"] and g.nodes[0].act == "relu"


# ------------------------------------------------------------------ hand-written ONNX
def _model(nodes, inits, in_shape, out_shape, opset=17):
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        [numpy_helper.from_array(np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v),
                                 name=k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _check_against_ort(model, x, rtol=1e-4) -> Graph:
    graph = run_passes(from_onnx(model), FLOAT_FLOW)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    assert _rel(evaluate(graph, x), want) < rtol
    return graph


def test_matmul_add_gemm_alpha_beta():
    rng = np.random.default_rng(1)
    w1, b1 = rng.standard_normal((12, 8)), rng.standard_normal(8)
    w2, c2 = rng.standard_normal((5, 8)), rng.standard_normal((1, 5))
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"),
             helper.make_node("Add", ["b1", "h"], ["hb"], name="bias"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "c2"], ["y"], name="gemm", alpha=0.5, beta=2.0, transB=1)]
    m = _model(nodes, {"w1": w1, "b1": b1, "w2": w2, "c2": c2}, [12], [5])
    g = _check_against_ort(m, _x(12))
    assert g.ops() == ["linear", "linear"]


def test_clip_attributes_opset10_and_inputs():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 4)) * 3
    nodes = [helper.make_node("MatMul", ["x", "wt"], ["h"], name="fc"),
             helper.make_node("Clip", ["h"], ["y"], name="clip", min=0.0, max=6.0)]
    g = _check_against_ort(_model(nodes, {"wt": w.T}, [4], [6], opset=10), _x(4))
    assert g.nodes[0].act == "relu6"
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
             helper.make_node("Clip", ["h", "lo"], ["y"], name="clip")]
    g = _check_against_ort(_model(nodes, {"w": w, "lo": np.float32(0)}, [4], [6]), _x(4))
    assert g.nodes[0].act == "relu"
    nodes[1] = helper.make_node("Clip", ["h", "lo", "hi"], ["y"], name="clip")
    with pytest.raises(UnsupportedModel, match=r"clip \(Clip\)"):
        from_onnx(_model(nodes, {"w": w, "lo": np.float32(-1), "hi": np.float32(1)}, [4], [6]))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad_and_pools(auto_pad):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 4, 3))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", auto_pad=auto_pad, strides=[2, 1]),
             helper.make_node("AveragePool", ["c"], ["p"], name="avg", kernel_shape=[2, 2], strides=[1, 2]),
             helper.make_node("ReduceMean", ["p", "axes"], ["y"], name="mean", keepdims=0)]
    m = _model(nodes, {"w": w, "axes": np.array([-2, -1], np.int64)}, [2, 9, 8], [4], opset=18)
    g = _check_against_ort(m, _x(2, 9, 8))
    assert g.ops() == ["conv", "pool", "pool", "flatten"]


def test_conv_constant_bias_squeeze_and_bad_reshape():
    rng = np.random.default_rng(4)
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal((1, 5, 1, 1))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 0, 2, 1]),
             helper.make_node("Add", ["c", "b"], ["cb"], name="bias"),
             helper.make_node("GlobalAveragePool", ["cb"], ["p"], name="gap"),
             helper.make_node("Squeeze", ["p", "axes"], ["y"], name="squeeze")]
    inits = {"w": w, "b": b, "axes": np.array([2, 3], np.int64)}
    g = _check_against_ort(_model(nodes, inits, [3, 6, 7], [5]), _x(3, 6, 7))
    assert g.ops() == ["conv", "pool", "flatten"] and g.nodes[0].padding == (1, 2, 0, 1)
    nodes[3] = helper.make_node("Reshape", ["p", "shape"], ["y"], name="merge_batch")
    inits["shape"] = np.array([1, -1], np.int64)
    with pytest.raises(UnsupportedModel, match=r"merge_batch \(Reshape\).*\[1, -1\]"):
        from_onnx(_model(nodes, inits, [3, 6, 7], [5]))


def test_matmul_add_constant_elsewhere_refused():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "c"], ["y"], name="shift")]
    with pytest.raises(UnsupportedModel, match=r"shift \(Add\)"):
        from_onnx(_model(nodes, {"c": np.ones(4)}, [4], [4]))


# ------------------------------------------------------------------ unsupported
def _export_ts(model, x_shape, tmp_path):
    path = tmp_path / "m.onnx"
    _export(model.eval(), torch.zeros(2, *x_shape), path, "torchscript")
    return path


def test_sigmoid_in_the_middle(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    with pytest.raises(UnsupportedModel, match=r"node /1/Sigmoid \(Sigmoid\) is not supported.*Supported: Conv"):
        from_onnx(_export_ts(model, (4,), tmp_path))


def test_dilation_refused(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2), nn.ReLU())
    with pytest.raises(UnsupportedModel, match=r"/0/Conv \(Conv\).*dilations"):
        from_onnx(_export_ts(model, (1, 10, 10), tmp_path))


def test_grouped_conv_refused(tmp_path):
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(UnsupportedModel, match=r"/0/Conv \(Conv\).*group=2 with 4 input channels"):
        from_onnx(_export_ts(model, (4, 6, 6), tmp_path))


def test_lstm_refused(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 8, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0][:, -1]

    # the exporter puts a Transpose before the LSTM: the first refused node, the LSTM listed after it
    with pytest.raises(UnsupportedModel, match=r"\(Transpose\) is not supported.*/lstm/LSTM \(LSTM\)"):
        from_onnx(_export_ts(Net(), (5, 4), tmp_path))


def test_softmax_in_the_middle_and_mul_refused(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.Softmax(dim=1), nn.Linear(8, 2))
    with pytest.raises(UnsupportedModel, match=r"/1/Softmax \(Softmax\).*last op"):
        from_onnx(_export_ts(model, (4,), tmp_path))

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) * x

    with pytest.raises(UnsupportedModel, match=r"\(Mul\)"):
        from_onnx(_export_ts(Gate(), (4,), tmp_path))
