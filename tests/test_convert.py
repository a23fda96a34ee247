"""Bring your own model: ``convert`` → ``export`` → ``Model(bundle).predict`` on models
written the way users write them (not the project's classes), through the PyTorch module
and through an ONNX export of it; the ``zeroskip convert`` / ``zeroskip predict``
commands end to end; the README's "Your own model" example, executed.

Each model: the import check (float graph vs source) below 1e-4, the bundle's outputs on
the golden model equal to ``conv.predict`` exactly, the bundle's own check bit-exact, and
for a CNN and the ResNet the RTL simulation bit-exact with the golden model's cycles.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from zeroskip.driver import Model
from zeroskip.driver.errors import CompileError, UnsupportedModel
from zeroskip.driver.program import HwConfig

from zeroskip.host import cli, convert

pytestmark = pytest.mark.ml

README = Path(__file__).resolve().parents[1] / "README.md"


# ------------------------------------------------------------------ user models
def seq_cnn(hw: int = 16, n_out: int = 10) -> nn.Sequential:
    """A Sequential CNN with BatchNorm and Dropout."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(16 * (hw // 4) ** 2, n_out))


class FunctionalNet(nn.Module):
    """A functional forward: F.relu, F.max_pool2d, x.view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 12, 3)
        self.fc1 = nn.Linear(12 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


class KwsNet(nn.Module):
    """Depthwise-separable keyword spotting: a 10x4 stride-2 first conv on one channel,
    depthwise 3x3 + pointwise 1x1 blocks, global average pooling, a linear classifier."""

    def __init__(self, c: int = 12):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, (10, 4), stride=2, padding=(4, 1))
        self.bn1 = nn.BatchNorm2d(c)
        layers = []
        for stride in (1, 2):
            layers += [nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, 6)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.gap(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    """A stem, an identity block, a block with a 1x1 stride-2 projection shortcut."""

    def __init__(self, n_out: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2)
        self.fc = nn.Linear(16, n_out)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.flatten(1))


def mlp() -> nn.Sequential:
    """An MLP with BatchNorm1d, ReLU6 and a trailing Softmax."""
    return nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU6(), nn.Linear(32, 16), nn.ReLU6(),
                         nn.Linear(16, 5), nn.Softmax(dim=1))


def _trained_like(model: nn.Module, seed: int) -> nn.Module:
    """Seeded weights and BatchNorm statistics that are not the identity (as after training)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n) * 0.3)
            m.running_var.copy_(torch.rand(n) + 0.5)
            m.weight.data.copy_(torch.rand(n) + 0.5)
            m.bias.data.copy_(torch.randn(n) * 0.2)
    return model.eval()


MODELS = {   # name: (factory, input shape)
    "seq_cnn": (seq_cnn, (1, 16, 16)),
    "functional": (FunctionalNet, (2, 16, 16)),
    "kws_dscnn": (KwsNet, (1, 49, 10)),
    "resnet": (ResNet, (3, 16, 16)),
    "mlp_softmax": (mlp, (20,)),
}


def _model(name: str) -> nn.Module:
    return _trained_like(MODELS[name][0](), seed=sorted(MODELS).index(name))


def _data(name: str, n: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *MODELS[name][1])).astype(np.float32)


def to_onnx(model: nn.Module, x: np.ndarray, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.as_tensor(x[:2]),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return path


def _source(name: str, frontend: str, tmp: Path):
    model = _model(name)
    return model if frontend == "torch" else to_onnx(model, _data(name), tmp / f"{name}.onnx")


CASES = [pytest.param(n, f, id=f"{n}-{f}") for n in MODELS for f in ("torch", "onnx")]


def _roundtrip(name: str, frontend: str, tmp: Path, backend: str = "model", n: int = 12, lanes: int = 8):
    x = _data(name)
    conv = convert(_source(name, frontend, tmp), x, lanes=lanes)
    assert conv.import_rel_error is not None and conv.import_rel_error < 1e-4, conv.import_rel_error
    assert conv.fits, conv.fit_error
    path = conv.export(tmp / f"bundle_{name}_{frontend}", test_inputs=x[:6])
    with Model(path, backend=backend) as m:
        y = m.predict(x[:n])
        last = m.last
        check = m.verify()
    np.testing.assert_array_equal(y, conv.predict(x[:n]))
    assert check["bit_exact"] and check["images"] == 6, check
    assert last.images == n and last.cycles_per_image == conv.cycles()
    return conv, y, last


# ------------------------------------------------------------------ convert → bundle → Model
@pytest.mark.parametrize("name,frontend", CASES)
def test_convert_export_predict(name, frontend, tmp_path):
    conv, y, _ = _roundtrip(name, frontend, tmp_path)
    assert y.shape == (12, conv.qmodel.layers[-1].c_out)
    if name == "mlp_softmax":
        assert conv.head == "softmax"
        np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-12)
    agree = conv.agreement(_data(name, seed=1))
    assert agree["argmax_agreement"] >= 0.9 and agree["rel_l2"] < 0.1, agree
    rows = conv.layers()
    assert sum(r["cycles"] for r in rows) <= conv.cycles()
    rep = conv.report()
    assert "fit: fits" in rep and "us at 100 MHz" in rep and "import check" in rep


@pytest.mark.parametrize("lanes", [16, 32])
@pytest.mark.parametrize("name", ["resnet", "mlp_softmax"])
def test_convert_for_wider_overlays(name, lanes, tmp_path):
    """A user's model compiled for a LANES 16 or 32 overlay: the bundle says so, and the
    golden model of that overlay runs it bit-exact with the predicted cycles."""
    conv, _, last = _roundtrip(name, "torch", tmp_path, lanes=lanes)
    manifest = json.loads((tmp_path / f"bundle_{name}_torch" / "manifest.json").read_text())
    assert conv.program.lanes == lanes and manifest["hw"]["lanes"] == lanes, manifest["hw"]


@pytest.mark.parametrize("name", ["kws_dscnn", "resnet"])
def test_layer_kinds_of_the_new_engine_layers(name, tmp_path):
    """The stride-2 10x4 stem, depthwise layers, both residual kinds and the global
    average pool come out as the engine layers they should, and run bit-exact."""
    conv, _, _ = _roundtrip(name, "torch", tmp_path)
    kinds = " ".join(r["kind"] for r in conv.layers())
    if name == "resnet":
        assert kinds.count("+add") == 2 and "conv 1x1 /2x2" in kinds and "global avg pool" in kinds
    else:
        assert "conv 10x4 /2x2" in kinds and "depthwise conv 3x3" in kinds and "global avg pool" in kinds


@pytest.mark.rtl
@pytest.mark.parametrize("name", ["seq_cnn", "resnet"])
def test_sim_backend_bit_exact_and_cycle_exact(name, tmp_path):
    """The Verilator simulation of the overlay: the same outputs as the golden model and
    the same cycles per image (CYCLES − STALL)."""
    conv, y_model, last_model = _roundtrip(name, "torch", tmp_path, backend="model", n=3)
    path = tmp_path / f"bundle_{name}_torch"
    x = _data(name)[:3]
    with Model(path, backend="sim") as m:
        y = m.predict(x)
        assert m.backend == "sim"
        assert m.last.cycles_per_image == last_model.cycles_per_image == conv.cycles()
        assert m.verify()["bit_exact"]
    np.testing.assert_array_equal(y, y_model)


# ------------------------------------------------------------------ accuracy on a real task
def test_digits_cnn_int8_agrees_with_float():
    """The Sequential CNN trained a few epochs on scikit-learn's 8x8 digits: int8 argmax
    agrees with float on >= 95 % of held-out digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[:, None] / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:1400], perm[1400:]
    torch.manual_seed(0)
    model = seq_cnn(hw=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.as_tensor(x[tr]), torch.as_tensor(y[tr])
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # a tiny net: one thread is ~0.5 s, several fight over the CPUs
    try:
        for _ in range(10):
            for i in torch.randperm(len(tr)).split(64):
                opt.zero_grad()
                F.cross_entropy(model(xt[i]), yt[i]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        acc_float = float((model(torch.as_tensor(x[te])).argmax(1).numpy() == y[te]).mean())
    assert acc_float >= 0.85, acc_float
    conv = convert(model, x[tr][:256])
    assert conv.import_rel_error < 1e-4 and conv.fits
    agree = conv.agreement(x[te])
    assert agree["argmax_agreement"] >= 0.95, agree
    assert float((conv.predict(x[te]).argmax(1) == y[te]).mean()) >= acc_float - 0.03


# ------------------------------------------------------------------ what is refused
class SigmoidInTheMiddle(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.gate = nn.Sigmoid()
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.gate(self.fc1(x)))


class LstmCellNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc0 = nn.Linear(8, 8)
        self.rnn = nn.LSTMCell(8, 16)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        h, _ = self.rnn(F.relu(self.fc0(x)))
        return self.fc(h)


class LstmNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        y, _ = self.lstm(x.unsqueeze(1))
        return self.fc(y[:, -1])


@pytest.mark.parametrize("model,frontend,needle", [
    (SigmoidInTheMiddle, "torch", "gate (module Sigmoid)"),
    (SigmoidInTheMiddle, "onnx", "/gate/Sigmoid (Sigmoid)"),
    (LstmCellNet, "torch", "rnn (module LSTMCell)"),
    (LstmNet, "onnx", "(LSTM)"),
])
def test_unsupported_layers_are_named(model, frontend, needle, tmp_path):
    m = model().eval()
    x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    src = m if frontend == "torch" else to_onnx(m, x, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedModel) as e:
        convert(src, x)
    assert needle in str(e.value) and "Supported:" in str(e.value)


def _too_big(kind: str):
    """A Linear head just over one capacity of the default overlay (read from HwConfig)."""
    hw = HwConfig()
    if kind == "out_cap":
        n_in, n_out = 16, hw.out_cap + 1
    else:
        n_out = 16
        n_in = hw.w_slots // n_out + 64
        assert n_in * n_out > hw.w_slots and n_out <= hw.out_cap
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(n_in, n_out)).eval()
    return model, np.random.default_rng(0).standard_normal((8, n_in)).astype(np.float32), \
        {"out_cap": "OUT_CAP", "w_slots": "W_SLOTS"}[kind]


@pytest.mark.parametrize("kind", ["out_cap", "w_slots"])
def test_model_that_does_not_fit_writes_nothing(kind, tmp_path, capsys):
    model, x, cap = _too_big(kind)
    conv = convert(model, x)
    assert not conv.fits and cap in conv.fit_error
    assert "does not fit" in conv.report() and cap in conv.report()
    with pytest.raises(CompileError, match=cap):
        conv.export(tmp_path / "b")
    assert list(tmp_path.iterdir()) == []          # no bundle, no temporary folder
    onnx_path = to_onnx(model, x, tmp_path / "big.onnx")
    np.save(tmp_path / "calib.npy", x)
    capsys.readouterr()
    rc = cli.main(["convert", str(onnx_path), "--calib", str(tmp_path / "calib.npy"), "--out", str(tmp_path / "b")])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "does not fit" in out and "layer" in out       # the report is printed
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error:") and cap in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "calib.npy"]


@pytest.fixture()
def small_bundle(tmp_path):
    x = _data("seq_cnn", 16)
    conv = convert(_model("seq_cnn"), x)
    return conv, conv.export(tmp_path / "small", test_inputs=x[:4])


@pytest.mark.parametrize("bad", ["shape", "flat", "nan", "inf", "empty"])
def test_predict_refuses_bad_inputs_before_running(small_bundle, bad):
    conv, path = small_bundle
    x = _data("seq_cnn", 4)
    x = {"shape": x[:, :, :8], "flat": x.reshape(4, -1), "nan": np.where(x > 2, np.nan, x),
         "inf": np.where(x > 2, np.inf, x), "empty": x[:0]}[bad]
    with Model(path, backend="model") as m:
        with pytest.raises(ValueError):
            m.predict(x)
        assert m.last is None                      # nothing ran
        one = m.predict(_data("seq_cnn", 1)[0])    # one sample without the batch axis is fine
    assert one.shape == (1, 10)


def test_convert_pt2_file(tmp_path):
    model = _model("seq_cnn")
    x = _data("seq_cnn", 16)
    p = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.as_tensor(x[:2]),)), str(p))
    conv = convert(p, x)
    assert conv.import_rel_error < 1e-4 and conv.fits


# ------------------------------------------------------------------ the CLI end to end
MODULE = '''
import torch
from torch import nn


def tiny():
    torch.manual_seed(7)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.1), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()


def gated():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Sigmoid(), nn.Linear(8, 3))


def not_a_model():
    return 42
'''


@pytest.fixture()
def user_dir(tmp_path, monkeypatch):
    """A user's folder: a model module on sys.path, calibration / test / label arrays."""
    mod = f"usermodels_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{mod}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x[:32])
    np.save(tmp_path / "x.npy", x[32:])
    np.save(tmp_path / "labels.npy", np.arange(8) % 3)
    yield tmp_path, mod
    sys.modules.pop(mod, None)


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error:") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("form", ["factory", "onnx"])
def test_cli_convert_then_predict(user_dir, form, capsys):
    d, mod = user_dir
    spec = f"{mod}:tiny"
    if form == "onnx":
        model = __import__(mod).tiny()
        spec = str(to_onnx(model, np.load(d / "calib.npy"), d / "tiny.onnx"))
    rc = cli.main(["convert", spec, "--calib", str(d / "calib.npy"), "--test", str(d / "x.npy"),
                   "--labels", str(d / "labels.npy"), "--name", "tiny", "--out", str(d / "bundle")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "model tiny" in out and "conv 3x3 +pool" in out and "linear" in out       # the per-layer table
    assert re.search(r"fit: fits: 2/\d+ layers", out)
    assert re.search(r"predicted: \d+ cycles per inference = [\d.]+ us at 100 MHz", out)
    assert re.search(r"on 8 --test inputs: argmax agreement [\d.]+%, relative L2 error", out)
    assert "accuracy on the --labels" in out
    assert f"zeroskip predict {d / 'bundle'} x.npy" in out
    assert (d / "bundle" / "manifest.json").is_file() and (d / "bundle" / "labels.npy").is_file()

    rc = cli.main(["predict", str(d / "bundle"), str(d / "x.npy"), "--backend", "model", "--batch", "3",
                   "--out", str(d / "y.npy")])
    out = capsys.readouterr().out
    assert rc == 0, out
    y = np.load(d / "y.npy")
    with Model(d / "bundle", backend="model") as m:
        np.testing.assert_array_equal(y, m.predict(np.load(d / "x.npy")))
        cycles = m.last.cycles_per_image
    assert f"8 inferences on model: {cycles:.0f} cycles each" in out
    assert f"(argmax): {y.argmax(1).tolist()}" in out


def test_cli_weights_for_a_factory(user_dir, capsys):
    d, mod = user_dir
    other = __import__(mod).tiny()
    torch.manual_seed(99)
    for p in other.parameters():
        p.data.normal_()
    torch.save(other.state_dict(), d / "w.pt")
    assert cli.main(["convert", f"{mod}:tiny", "--calib", str(d / "calib.npy"), "--weights", str(d / "w.pt"),
                     "--out", str(d / "b"), "--quiet"]) == 0
    want = convert(other, np.load(d / "calib.npy")).predict(np.load(d / "x.npy"))
    with Model(d / "b", backend="model") as m:
        np.testing.assert_array_equal(m.predict(np.load(d / "x.npy")), want)
    capsys.readouterr()
    torch.save({"nope": torch.zeros(1)}, d / "bad.pt")
    assert cli.main(["convert", f"{mod}:tiny", "--calib", str(d / "calib.npy"), "--weights", str(d / "bad.pt"),
                     "--out", str(d / "b2")]) == 2
    assert "--weights" in _err_line(capsys) and not (d / "b2").exists()


@pytest.mark.parametrize("case,needle", [
    ("garbage_onnx", "not a readable ONNX model"),
    ("missing_model", "no such model file"),
    ("no_module", "cannot import"),
    ("no_factory", "has no callable"),
    ("not_a_model", "not a torch.nn.Module"),
    ("unsupported", "(module Sigmoid)"),
    ("missing_calib", "--calib"),
    ("calib_shape", "(10,)"),
    ("labels_without_test", "--labels"),
    ("bad_sparsity", "--sparsity"),
    ("out_not_a_bundle", "not empty and not a bundle"),
])
def test_cli_convert_errors_are_one_line(user_dir, case, needle, capsys):
    d, mod = user_dir
    calib = str(d / "calib.npy")
    (d / "garbage.onnx").write_bytes(b"not a protobuf at all")
    (d / "junk").mkdir()
    (d / "junk" / "thesis.tex").write_text("keep me")
    np.save(d / "calib_flat.npy", np.zeros((4, 10), np.float32))
    args = {
        "garbage_onnx": [str(d / "garbage.onnx"), "--calib", calib],
        "missing_model": [str(d / "nope.onnx"), "--calib", calib],
        "no_module": ["no_such_pkg_zs.models:net", "--calib", calib],
        "no_factory": [f"{mod}:nothing_here", "--calib", calib],
        "not_a_model": [f"{mod}:not_a_model", "--calib", calib],
        "unsupported": [f"{mod}:gated", "--calib", calib],
        "missing_calib": [f"{mod}:tiny", "--calib", str(d / "nope.npy")],
        "calib_shape": [f"{mod}:tiny", "--calib", str(d / "calib_flat.npy")],
        "labels_without_test": [f"{mod}:tiny", "--calib", calib, "--labels", str(d / "labels.npy")],
        "bad_sparsity": [f"{mod}:tiny", "--calib", calib, "--sparsity", "1.5"],
        "out_not_a_bundle": [f"{mod}:tiny", "--calib", calib, "--out", str(d / "junk")],
    }[case]
    if "--out" not in args:
        args += ["--out", str(d / "b")]
    capsys.readouterr()
    assert cli.main(["convert", *args]) == 2
    assert needle in _err_line(capsys)
    assert not (d / "b").exists() and (d / "junk" / "thesis.tex").read_text() == "keep me"


def test_cli_predict_errors_are_one_line(small_bundle, tmp_path, capsys):
    _, path = small_bundle
    x = _data("seq_cnn", 4)
    np.save(tmp_path / "wrong.npy", x[:, :, :8])
    np.save(tmp_path / "nan.npy", np.where(x > 2, np.nan, x))
    (tmp_path / "text.npy").write_text("1,2,3")
    for args, needle in [
        ([str(path), str(tmp_path / "wrong.npy")], "this model takes (N, 1, 16, 16)"),
        ([str(path), str(tmp_path / "nan.npy")], "NaN"),
        ([str(path), str(tmp_path / "text.npy")], "not a readable .npy"),
        ([str(path), str(tmp_path / "none.npy")], "no such file"),
        ([str(tmp_path / "no_bundle"), str(tmp_path / "nan.npy")], "not a bundle folder"),
    ]:
        capsys.readouterr()
        assert cli.main(["predict", *args, "--backend", "sim", "--out", str(tmp_path / "y.npy")]) == 2
        assert needle in _err_line(capsys)
        assert not (tmp_path / "y.npy").exists()       # refused before any backend opened


@pytest.mark.parametrize("cmd", ["convert", "predict"])
def test_cli_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([cmd, "--help"])
    assert e.value.code == 0 and "--out" in capsys.readouterr().out


# ------------------------------------------------------------------ the README example runs as written
def _readme_block() -> str:
    text = README.read_text()
    m = re.search(r"^## Your own model\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Your own model' section"
    blocks = re.findall(r"```python\n(.*?)```", m.group(1), re.S)
    assert len(blocks) == 1, "expected one ```python block under 'Your own model'"
    return blocks[0]


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    code = _readme_block()
    assert len(code.strip().splitlines()) <= 25
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__readme__"}
    exec(compile(code, str(README) + ":Your own model", "exec"), ns)
    out = capsys.readouterr().out
    assert "fit: fits" in out and "cycles each" in out
    conv, y = ns["conv"], ns["y"]
    assert conv.fits and conv.import_rel_error < 1e-4
    bundles = [p for p in tmp_path.iterdir() if (p / "manifest.json").is_file()]
    assert len(bundles) == 1
    with Model(bundles[0], backend="model") as m:
        assert m.verify()["bit_exact"]
    np.testing.assert_array_equal(y, conv.predict(ns["calib"][: y.shape[0]]))


# ------------------------------------------------------------------ idioms other code bases use
class MeanHead(nn.Module):
    """Nested Sequential, bias-free convs, ``x.mean((2, 3))`` as the global pool."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                             nn.ReLU(inplace=True)),
                               nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.ReLU())
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.f(x).mean(dim=(2, 3)))


class SamePadding(nn.Module):
    """``padding="same"`` with an even kernel (PyTorch pads the extra row and column at
    the bottom and right) and ``torch.mean(..., keepdim=True)``."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 4, padding="same")
        self.c2 = nn.Conv2d(4, 4, 3, padding="valid")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.mean(F.relu(self.c2(F.relu(self.c1(x)))), dim=[-2, -1], keepdim=True)
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("cls,shape", [(MeanHead, (3, 16, 16)), (SamePadding, (1, 9, 9))])
def test_other_idioms_convert_bit_exact(cls, shape, tmp_path):
    torch.manual_seed(0)
    model = cls().eval()
    x = np.random.default_rng(0).normal(size=(32, *shape)).astype(np.float32)
    conv = convert(model, x)
    assert conv.import_rel_error < 1e-4 and conv.fits
    path = conv.export(tmp_path / "b", test_inputs=x[:4])
    with Model(path, backend="model") as m:
        np.testing.assert_array_equal(m.predict(x[:4]), conv.predict(x[:4]))
        assert m.verify()["bit_exact"]


def test_concatenation_is_refused_by_name():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 2)

        def forward(self, x):
            return self.fc(torch.flatten(torch.cat([self.a(x), self.b(x)], 1), 1))

    with pytest.raises(UnsupportedModel, match=r"node cat \(function cat\)"):
        convert(Cat().eval(), np.zeros((4, 1, 8, 8), np.float32) + 1)
