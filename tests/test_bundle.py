"""Bundle export/load: round trip, atomic writes, and a clear error for each corruption."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import npref
import numpy as np
import pytest
from zeroskip.driver.bundle import BundleError, load_bundle
from zeroskip.driver.golden import GoldenEngine
from zeroskip.driver.program import HwConfig
from zeroskip.host import export as export_mod
from zeroskip.host.export import export_bundle
from zeroskip.host.randnet import random_input, random_qmodel


@pytest.fixture()
def bundle(tmp_path):
    rng = np.random.default_rng(5)
    model = random_qmodel(rng, input_shape=(1, 10, 10), n_conv=2, sparsity=0.6)
    x = random_input(rng, model, 4)
    exp = npref.forward(model, x)
    path = export_bundle(tmp_path / "b", model, HwConfig(lanes=8), x, exp, labels=np.arange(4))
    return path, model, x, exp


def test_round_trip(bundle):
    path, model, x, exp = bundle
    b = load_bundle(path)
    np.testing.assert_array_equal(b.inputs, x)
    np.testing.assert_array_equal(b.expected, exp)
    eng = GoldenEngine(b.hw)
    eng.load(b.program_beats)
    out, _ = eng.run_images(b.packed_inputs())
    np.testing.assert_array_equal(out, exp)
    meta = json.loads((path / "weights_metadata.json").read_text())
    idx = np.frombuffer((path / "weights_indices.bin").read_bytes(), "<u2")
    val = np.frombuffer((path / "weights_values.bin").read_bytes(), np.int8)
    for layer, lm in zip(model.layers, meta["layers"]):
        rows = layer.weight.reshape(layer.c_out, -1)
        for c, (off, n) in enumerate(lm["channel_segments"]):
            dense = np.zeros(rows.shape[1], np.int8)
            dense[idx[off:off + n]] = val[off:off + n]
            np.testing.assert_array_equal(dense, rows[c])


def _flip(p: Path, at: int = 20):
    raw = bytearray(p.read_bytes())
    raw[at % len(raw)] ^= 0x5A
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("fault,match", [
    ("flip_program", r"program.bin: sha256 differs"),
    ("flip_inputs", r"inputs.npy: sha256 differs"),
    ("truncate_program", r"program.bin: \d+ bytes, manifest says"),
    ("missing_expected", r"expected.npy: missing file"),
    ("missing_manifest", r"missing manifest"),
    ("bad_json", r"manifest is not valid JSON"),
    ("wrong_version", r"program format version 99"),
    ("wrong_bundle_version", r"bundle version 7"),
    ("bad_hw", r"bad hardware config"),
])
def test_corruption_gives_clear_error(bundle, fault, match):
    path = bundle[0]
    man = path / "manifest.json"
    if fault == "flip_program":
        _flip(path / "program.bin")
    elif fault == "flip_inputs":
        _flip(path / "inputs.npy", 200)
    elif fault == "truncate_program":
        (path / "program.bin").write_bytes((path / "program.bin").read_bytes()[:-8])
    elif fault == "missing_expected":
        (path / "expected.npy").unlink()
    elif fault == "missing_manifest":
        man.unlink()
    elif fault == "bad_json":
        man.write_text(man.read_text()[:-10])
    else:
        m = json.loads(man.read_text())
        if fault == "wrong_version":
            m["program_format_version"] = 99
        elif fault == "wrong_bundle_version":
            m["bundle_version"] = 7
        else:
            m["hw"]["lanes"] = 5
        man.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=match):
        load_bundle(path)


def test_tampered_program_with_matching_hash_is_rejected(bundle):
    """A program edited and re-hashed still has to decode under the bundle's config."""
    path = bundle[0]
    raw = bytearray((path / "program.bin").read_bytes())
    raw[0] ^= 0xFF  # magic
    (path / "program.bin").write_bytes(bytes(raw))
    from zeroskip.driver.bundle import sha256_file
    m = json.loads((path / "manifest.json").read_text())
    m["files"]["program.bin"]["sha256"] = sha256_file(path / "program.bin")
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="BAD_MAGIC"):
        load_bundle(path)


def test_interrupted_export_leaves_old_bundle_intact(bundle, monkeypatch):
    path, model, x, exp = bundle
    before = (path / "manifest.json").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod, "store_hex", boom)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(path, model, HwConfig(lanes=8), x, exp)
    assert (path / "manifest.json").read_text() == before
    load_bundle(path)
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_interrupted_first_export_leaves_nothing(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    model = random_qmodel(rng)
    x = random_input(rng, model, 1)
    monkeypatch.setattr(export_mod, "store_hex", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        export_bundle(tmp_path / "new", model, HwConfig(), x, npref.forward(model, x))
    assert list(tmp_path.iterdir()) == []


def test_driver_runs_bundle_without_torch(bundle):
    """The board has no torch: zeroskip.driver must load a bundle and run the model backend
    in a process where importing torch fails."""
    path = bundle[0]
    code = textwrap.dedent(f"""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is not available on this board")
        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from zeroskip.driver.bundle import load_bundle
        from zeroskip.driver.golden import GoldenEngine
        b = load_bundle({str(path)!r})
        e = GoldenEngine(b.hw); e.load(b.program_beats)
        out, cnt = e.run_images(b.packed_inputs())
        assert np.array_equal(out, b.expected)
        try:
            import torch
        except ImportError:
            print("OK no torch")
        assert "torch" not in sys.modules
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert "OK no torch" in r.stdout
