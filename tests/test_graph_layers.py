"""The layer-graph kinds end to end on the model backend: rectangular kernels with
asymmetric padding, stride 2, depthwise convolutions, average and global average
pooling, residual adds (identity and projection shortcuts), ReLU6.

Random integer graphs (``randnet.random_graph_qmodel``) run on the golden model bit-exact
against the PyTorch integer reference with cycles equal to the prediction; float graphs
imported from PyTorch go through ``quantize_graph``; malformed descriptors of the new
fields are refused with the engine's error codes. The RTL runs the same random graphs in
``tb/zeroskip_top/test_zeroskip_top.py`` (cocotb test ``test_graph_networks``).
"""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from zeroskip.driver import contract as C
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.errors import CompileError, ProgramError, UnsupportedModel
from zeroskip.driver.golden import GoldenEngine, parse_response, predict_cycles
from zeroskip.driver.program import HwConfig, decode_program, encode_program

from conftest import fuzz_enabled
from zeroskip.host.compiler import compile_model
from zeroskip.host.frontends import from_torch
from zeroskip.host.ir import evaluate, run_passes
from zeroskip.host.quant import randnet
from zeroskip.host.quant.graph_quant import quantize_graph
from zeroskip.host.quant.qmodel import LayerKind
from zeroskip.host.quant.quantize import quantize_input
from zeroskip.host.quant.reference import run_reference

pytestmark = pytest.mark.ml


def run_golden(prog, hw, x_int8):
    ge = GoldenEngine(hw)
    _, code, _ = parse_response(ge.load(encode_program(prog))[0])
    assert code == 0, C.error_text(code)
    packed = pack_inputs(x_int8, prog.meta["input_layout"])
    pad = (-packed.shape[1]) % 8
    beats = np.pad(packed, ((0, 0), (0, pad))).reshape(-1).view(np.uint64)
    out = ge.run(beats, x_int8.shape[0])
    n = x_int8.shape[0]
    res = out.view(np.int32).reshape(n, -1)[:, :prog.n_out]
    return res, ge.counters["CYCLES"] - ge.counters["STALL"]


def check_on_every_lanes(model, rng):
    """Golden model = integer reference, cycles = prediction, at LANES 4, 8, 16 and 32."""
    x = randnet.random_input(rng, model, 3)
    ref = run_reference(model, x)
    for lanes in (4, 8, 16, 32):
        hw = HwConfig(lanes=lanes)
        prog = compile_model(model, hw, dense=bool(rng.random() < 0.3))
        got, cycles = run_golden(prog, hw, x)
        np.testing.assert_array_equal(got, ref)
        assert cycles == predict_cycles(prog, 3)


@pytest.mark.parametrize("seed", range(40 if not fuzz_enabled() else 400))
def test_random_graph_golden_matches_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    check_on_every_lanes(randnet.random_graph_qmodel(rng, saturate=rng.random() < 0.2), rng)


@pytest.mark.parametrize("seed", range(15 if not fuzz_enabled() else 200))
def test_random_hcw_golden_matches_reference(seed):
    """Kernels of more than 16 taps on several input channels (hcw tensors, one virtual
    channel per kernel row), with strides, pools and residual adds beside them."""
    rng = np.random.default_rng(5000 + seed)
    check_on_every_lanes(randnet.random_hcw_qmodel(rng), rng)


def test_random_hcw_models_read_hcw_tensors():
    hcw = skip = 0
    for seed in range(15):
        model = randnet.random_hcw_qmodel(np.random.default_rng(5000 + seed))
        prog = compile_model(model, HwConfig())
        hcw += prog.meta["input_layout"].get("order") == "hcw"
        skip += any(layer.skip is not None for layer in model.layers)
    assert hcw >= 10 and skip >= 3, (hcw, skip)


def test_random_graphs_use_every_new_field():
    """The generator reaches what the test above claims to cover."""
    seen = {"xs2": 0, "in_c_step": 0, "skip": 0, "virtual_rows": 0, "asym": 0, "gap": 0}
    for seed in range(40):
        model = randnet.random_graph_qmodel(np.random.default_rng(1000 + seed))
        prog = compile_model(model, HwConfig())
        for layer, lp in zip(model.layers, prog.layers):
            seen["xs2"] += lp.desc.xs2
            seen["in_c_step"] += lp.desc.in_c_step > 0
            seen["skip"] += layer.skip is not None
            seen["virtual_rows"] += layer.kind is LayerKind.CONV and layer.kernel[0] * layer.kernel[1] > 16
            seen["asym"] += len(set(layer.pads)) > 1
            seen["gap"] += layer.name.startswith("gap")
    assert all(v >= 3 for v in seen.values()), seen


class UserResNet(nn.Module):
    """A small ResNet the way users write one: both shortcut kinds, BatchNorm, ReLU6 head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.a1 = nn.Conv2d(8, 8, 3, padding=1)
        self.a2 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.b2 = nn.Conv2d(16, 16, 3, padding=1)
        self.bs = nn.Conv2d(8, 16, 1, stride=2)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 16, 1)
        self.pool = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(self.a2(F.relu(self.a1(x))) + x)
        x = F.relu(self.b2(F.relu(self.b1(x))) + self.bs(x))
        x = F.relu6(self.pw(F.relu(self.dw(x))))
        x = self.gap(self.pool(x))
        return self.fc(x.view(x.size(0), -1))


class UserDSCNN(nn.Module):
    """Depthwise-separable keyword-spotting shape: a 10x4 stride-2 first conv with
    asymmetric padding on the single-channel input, depthwise blocks, global average pool."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 4, 5))
        self.c0 = nn.Conv2d(1, 8, (10, 4), stride=2)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 12, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = F.relu(self.c0(self.pad(x)))
        x = F.relu(self.bn(self.dw(x)))
        x = F.relu(self.pw(x))
        return self.fc(torch.flatten(self.gap(x), 1))


def _randomise_bn(model):
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("cls,shape", [(UserResNet, (3, 16, 16)), (UserDSCNN, (1, 25, 10))])
def test_user_graph_quantised_runs_bit_exact(cls, shape):
    torch.manual_seed(1)
    model = _randomise_bn(cls())
    x = torch.randn(64, *shape)
    graph = run_passes(from_torch(model, shape))
    assert "pad" not in graph.ops()  # zero padding merged into the convolution
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(evaluate(graph, x.numpy()), want, rtol=1e-4, atol=1e-5)
    q = quantize_graph(graph, x.numpy())
    xi = quantize_input(x.numpy()[:6], q.input_scale)
    ref = run_reference(q, xi)
    hw = HwConfig(lanes=8)
    prog = compile_model(q, hw)
    got, cycles = run_golden(prog, hw, xi)
    np.testing.assert_array_equal(got, ref)
    assert cycles == predict_cycles(prog, 6)
    # the int8 model agrees with the float one on most argmaxes (random weights: a weak bound)
    deq = ref * q.layers[-1].out_scale
    assert (deq.argmax(1) == want[:6].argmax(1)).mean() >= 0.5


def _graph_prog(hw):
    model = randnet.random_graph_qmodel(np.random.default_rng(7))
    return model, compile_model(model, hw)


@pytest.mark.parametrize("what,edit", [
    ("reserved bit 23", lambda b, d0: b[d0] | np.uint64(1 << 23)),
    ("reserved bit 31", lambda b, d0: b[d0] | np.uint64(1 << 31)),
    ("in_c_step >= ACT_BYTES", lambda b, d0: (b[d0] & np.uint64((1 << 48) - 1)) | np.uint64(8192 << 48)),
])
def test_new_descriptor_fields_are_checked(what, edit):
    hw = HwConfig(lanes=8, act_bytes=8192, w_slots=4096)
    _, prog = _graph_prog(hw)
    beats = encode_program(prog)
    beats[4] = edit(beats, 4)
    with pytest.raises(ProgramError) as e:
        decode_program(beats, hw)
    assert e.value.code == C.ERROR_CODES["BAD_LAYER"] and e.value.beat == 4, (what, e.value)


def test_old_format_version_is_refused():
    """Programs of format 1 (no XS2 / in_c_step) must not run on this engine, and this
    engine's programs not on a format-1 bitstream: the version is checked on load."""
    hw = HwConfig()
    _, prog = _graph_prog(hw)
    beats = encode_program(prog)
    beats[0] = (beats[0] & ~np.uint64(0xFFFF << 32)) | np.uint64(1 << 32)
    with pytest.raises(ProgramError) as e:
        decode_program(beats, hw)
    assert e.value.code == C.ERROR_CODES["BAD_VERSION"]


def test_unsupported_layers_name_the_node():
    class Dilated(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 4, 3, dilation=2, padding=2)
            self.fc = nn.Linear(4 * 8 * 8, 3)

        def forward(self, x):
            return self.fc(torch.flatten(F.relu(self.c(x)), 1))

    class Grouped(Dilated):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 4, 3, groups=2, padding=1)

    class BigKernel(Dilated):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 4, 5, padding=2)

    x = np.random.default_rng(0).normal(size=(8, 2, 8, 8))
    for cls, words in ((Dilated, "dilation"), (Grouped, "groups=2")):
        g = run_passes(from_torch(cls().eval(), (2, 8, 8)))
        with pytest.raises(UnsupportedModel, match=words) as e:
            quantize_graph(g, x)
        assert "c (conv)" in str(e.value)
    class WideKernel(Dilated):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 4, (1, 17), padding=(0, 8))

    q = quantize_graph(run_passes(from_torch(BigKernel().eval(), (2, 8, 8))), x)
    assert compile_model(q, HwConfig()).meta["input_layout"]["order"] == "hcw"   # 5x5 on 2 channels runs
    q = quantize_graph(run_passes(from_torch(WideKernel().eval(), (2, 8, 8))), x)
    with pytest.raises(CompileError, match="17 columns wide"):
        compile_model(q, HwConfig())


def test_residual_add_without_a_conv_is_refused():
    class AddInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            return self.fc(torch.flatten(F.relu(x + x), 1))

    g = run_passes(from_torch(AddInputs().eval(), (2, 4, 4)))
    with pytest.raises(UnsupportedModel, match="residual add"):
        quantize_graph(g, np.ones((2, 2, 4, 4)))


def test_layer_kinds_are_typed_and_every_stage_has_each():
    """A layer kind is one (op, layout) pair; QLayer takes the kind or its name and keeps
    the typed kind; its JSON form is the name; the integer reference, the output shapes
    and the lowering of sparse-pixel models have a handler for every kind they meet, and
    the quantiser a handler for the (op, layout) of each."""
    import json

    from zeroskip.host.compiler.lowering import _LOWER_SITES
    from zeroskip.host.quant.graph_quant import QUANTISE
    from zeroskip.host.quant.qmodel import _OUTPUT_SHAPE, QLayer, QSparsePool
    from zeroskip.host.quant.reference import IntegerReference

    for kind in LayerKind:
        assert LayerKind.of(kind.op, kind.layout) is kind
        assert (kind.op, kind.layout) in QUANTISE
        assert kind in IntegerReference._HANDLERS and kind in _OUTPUT_SHAPE
        assert kind in _LOWER_SITES or not (kind.sparse or kind is LayerKind.FC)
        assert json.dumps({"kind": kind}) == json.dumps({"kind": kind.value})
    one = np.ones(2, np.int64)
    layer = QLayer(kind="fc", weight=np.ones((2, 3), np.int8), bias=np.zeros(2, np.int32), mult=one, shift=one)
    assert layer.kind is LayerKind.FC
    assert QSparsePool("avg").kind is LayerKind.SPOOL
    with pytest.raises(ValueError, match="layer kind must be one of 'conv', 'sconv', 'fc', got 'spool'"):
        QLayer(kind="spool", weight=np.ones((2, 3), np.int8), bias=np.zeros(2, np.int32), mult=one, shift=one)
    with pytest.raises(KeyError):
        LayerKind.of("pool", "grid")   # a grid pool is a depthwise conv layer, not a kind of its own
