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
from zeroskip.host.compiler import export as export_mod
from zeroskip.host.compiler.export import export_bundle
from zeroskip.host.quant.randnet import random_input, random_qmodel


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


# --------------------------------------------------------------------------- every file, every fault

BUNDLE_FILES = ["program.bin", "program_dense.bin", "program.hex", "weight_store.hex", "inputs.npy", "expected.npy",
                "labels.npy", "weights_indices.bin", "weights_values.bin", "weights_metadata.json"]
FIX = ("re-export", "copy the bundle", "copy the whole bundle")


def _rehash(path: Path, name: str):
    """Make the manifest agree with a changed file: only the content checks can catch it."""
    from zeroskip.driver.bundle import sha256_file

    m = json.loads((path / "manifest.json").read_text())
    p = path / name
    m["files"][name] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    (path / "manifest.json").write_text(json.dumps(m))


def _other_content(name: str, raw: bytes, n: int) -> bytes:
    """Well-formed content of the right kind that does not belong to this bundle."""
    import io

    if name.endswith(".npy"):
        buf = io.BytesIO()
        arr = {"inputs.npy": np.zeros((n + 1, 1, 10, 10), np.int8), "expected.npy": np.zeros((n, 99), np.int32),
               "labels.npy": np.zeros(n + 3, np.int64)}[name]
        np.save(buf, arr)
        return buf.getvalue()
    if name.endswith(".bin"):
        return raw[8:] + raw[:8]          # same size, other beats / weights
    if name.endswith(".hex"):
        lines = raw.decode().splitlines()
        return ("\n".join(lines[1:] + lines[:1]) + "\n").encode()
    return json.dumps({"layers": [{"channel_segments": [[0, 10 ** 6]]}]}).encode()


@pytest.mark.parametrize("fault", ["missing", "truncated", "flipped", "appended", "emptied", "mismatched"])
@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_every_file_fault_is_named_with_its_fix(bundle, name, fault):
    """Each file of a bundle, missing, cut short, with a flipped byte, with extra bytes,
    empty, or replaced by well-formed content of another export (with the manifest
    updated to match, so only the content checks can tell): load_bundle refuses it with
    an error naming that file and the fix, before anything reaches the overlay."""
    path = bundle[0]
    p = path / name
    raw = p.read_bytes()
    if fault == "missing":
        p.unlink()
    elif fault == "truncated":
        p.write_bytes(raw[: len(raw) // 2])
    elif fault == "flipped":
        _flip(p, len(raw) - 3)
    elif fault == "appended":
        p.write_bytes(raw + b"\0" * 8)
    elif fault == "emptied":
        p.write_bytes(b"")
    else:
        p.write_bytes(_other_content(name, raw, len(bundle[2])))
        _rehash(path, name)
    with pytest.raises(BundleError) as e:
        load_bundle(path)
    msg = str(e.value)
    assert name in msg, msg
    assert any(f in msg for f in FIX), msg


@pytest.mark.parametrize("edit,needle", [
    (lambda m: m.update(format="something-else"), "not a zeroskip bundle manifest"),
    (lambda m: m.pop("files"), "no 'files' table"),
    (lambda m: m["files"].pop("weight_store.hex"), "lists no weight_store.hex"),
    (lambda m: m["files"].update({"../program.bin": m["files"]["program.bin"]}), "not a plain file name"),
    (lambda m: m["files"].update({"program.bin": "abc"}), "has no size and sha256"),
    (lambda m: m["files"].update({"extra.bin": {"bytes": 1, "sha256": "0"}}), "extra.bin: missing file"),
    (lambda m: m.update(n_out=m["n_out"] + 1), "expected.npy"),
    (lambda m: m["input_layout"].update(pad=m["input_layout"]["pad"] + 1, in_bytes=1), "inputs.npy"),
    (lambda m: m["hw"].update(lanes=16), "program.bin: the program does not decode: CONFIG_MISMATCH"),
    (lambda m: m["hw"].update(w_slots=8, ch_cap=2), "program.bin: the program does not decode: CAPACITY"),
])
def test_manifest_mismatch_is_named_with_its_fix(bundle, edit, needle):
    path = bundle[0]
    man = path / "manifest.json"
    m = json.loads(man.read_text())
    edit(m)
    man.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=needle.replace(".", r"\.").replace("(", r"\(")) as e:
        load_bundle(path)
    assert any(f in str(e.value) for f in FIX), str(e.value)


def test_export_interrupted_at_every_step_never_leaves_a_loadable_half_bundle(bundle, monkeypatch):
    """Stop the export at each of its file operations as a power cut would (the clean-up
    does not run): the target folder is the previous bundle, unchanged, and any leftover
    temporary folder fails to load."""
    path, model, x, exp = bundle
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    class Cut(BaseException):
        pass

    real = {"write": export_mod._write, "save": np.save, "replace": os.replace, "chmod": os.chmod}
    n_ops = [0]

    def arm(limit):
        def counted(key):
            def op(*a, **k):
                n_ops[0] += 1
                if limit is not None and n_ops[0] > limit:
                    raise Cut()
                return real[key](*a, **k)
            return op
        monkeypatch.setattr(export_mod, "_write", counted("write"))
        monkeypatch.setattr(export_mod.np, "save", counted("save"))
        monkeypatch.setattr(export_mod.os, "replace", counted("replace"))
        monkeypatch.setattr(export_mod.os, "chmod", counted("chmod"))
        monkeypatch.setattr(export_mod.shutil, "rmtree", lambda *a, **k: None)   # no clean-up after a cut

    x2 = x[::-1].copy()
    exp2 = npref.forward(model, x2)
    arm(None)
    n_ops[0] = 0
    export_bundle(path.parent / "count", model, HwConfig(lanes=8), x2, exp2)   # how many operations
    total = n_ops[0]
    assert total >= 10
    for limit in range(total):
        n_ops[0] = 0
        arm(limit)
        with pytest.raises(Cut):
            export_bundle(path, model, HwConfig(lanes=8), x2, exp2)
        monkeypatch.undo()
        if path.exists():    # the old bundle, untouched
            assert {p.name: p.read_bytes() for p in path.iterdir()} == before, f"cut after {limit} operations"
            load_bundle(path)
        for d in path.parent.iterdir():
            if d.name.startswith(f".{path.name}.tmp-"):
                try:
                    half = load_bundle(d)
                except BundleError:
                    continue
                # only a complete export (cut at the final rename) loads, and it is the new one
                np.testing.assert_array_equal(half.inputs, x2)
        if not path.exists():  # cut between the two renames: the old bundle is kept aside, complete
            olds = [d for d in path.parent.iterdir() if d.name.startswith(f".{path.name}.old-")]
            assert olds and {p.name: p.read_bytes() for p in olds[0].iterdir()} == before
            os.replace(olds[0], path)
