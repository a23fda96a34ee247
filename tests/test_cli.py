"""CLI: bad arguments and bad files give a one-line error and a non-zero exit, never a
traceback; --help works for every command."""

import json
import subprocess
import sys

import npref
import numpy as np
import pytest
from zeroskip.driver.program import HwConfig
from zeroskip.host.compiler.export import export_bundle
from zeroskip.host.quant.randnet import random_input, random_qmodel

CMDS = ["demo", "train", "export", "run", "sweep", "bench"]


def zs(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "zeroskip.host.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("cmd", CMDS)
def test_help(cmd):
    r = zs(cmd, "--help")
    assert r.returncode == 0 and "--out" in r.stdout


def _one_line_error(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error:"), r.stderr
    return lines[0]


def test_run_missing_bundle(tmp_path):
    line = _one_line_error(zs("run", str(tmp_path / "nope"), "--backend", "model", "--out", str(tmp_path / "o")))
    assert "not a bundle folder" in line


@pytest.fixture()
def bundle(tmp_path):
    rng = np.random.default_rng(4)
    model = random_qmodel(rng, input_shape=(1, 8, 8), n_conv=1)
    x = random_input(rng, model, 3)
    return export_bundle(tmp_path / "b", model, HwConfig(lanes=8), x, npref.forward(model, x))


def test_run_corrupt_bundle(bundle, tmp_path):
    raw = bytearray((bundle / "expected.npy").read_bytes())
    raw[-1] ^= 1
    (bundle / "expected.npy").write_bytes(bytes(raw))
    line = _one_line_error(zs("run", str(bundle), "--backend", "model", "--out", str(tmp_path / "o")))
    assert "expected.npy" in line and "sha256" in line


def test_run_bundle_for_other_lanes_is_refused(bundle, tmp_path):
    m = json.loads((bundle / "manifest.json").read_text())
    m["hw"]["lanes"] = 16
    (bundle / "manifest.json").write_text(json.dumps(m))
    line = _one_line_error(zs("run", str(bundle), "--backend", "model", "--out", str(tmp_path / "o")))
    assert "LANES" in line


@pytest.mark.parametrize("args,needle", [
    (["demo", "--sparsity", "1.5", "--backend", "model"], "--sparsity"),
    (["sweep", "--sparsities", "0.3,abc"], "--sparsities"),
])
def test_bad_values(args, needle, tmp_path):
    line = _one_line_error(zs(*args, "--out", str(tmp_path)))
    assert needle in line


def test_argparse_errors_exit_nonzero():
    r = zs("demo", "--lanes", "5")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = zs("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- bad files: one line, before any run

@pytest.mark.parametrize("name,fault,needle", [
    ("program.bin", "flip", "program.bin"),
    ("program.bin", "truncate", "program.bin"),
    ("program_dense.bin", "missing", "program_dense.bin: missing file"),
    ("inputs.npy", "truncate", "inputs.npy"),
    ("weight_store.hex", "flip", "weight_store.hex"),
    ("manifest.json", "garbage", "manifest is not valid JSON"),
    ("manifest.json", "missing", "missing manifest"),
])
def test_run_bad_bundle_file_is_one_line_and_runs_nothing(bundle, tmp_path, name, fault, needle):
    p = bundle / name
    if fault == "missing":
        p.unlink()
    elif fault == "truncate":
        p.write_bytes(p.read_bytes()[:-9])
    elif fault == "garbage":
        p.write_text("{not json")
    else:
        raw = bytearray(p.read_bytes())
        raw[len(raw) // 2] ^= 0x10
        p.write_bytes(bytes(raw))
    out = tmp_path / "o"
    line = _one_line_error(zs("run", str(bundle), "--backend", "model", "--out", str(out)))
    assert needle in line
    assert "re-export" in line or "copy the" in line
    assert not out.exists()     # refused before the backend ran anything


def test_run_file_instead_of_bundle_folder(tmp_path):
    f = tmp_path / "program.bin"
    f.write_bytes(b"\0" * 16)
    line = _one_line_error(zs("run", str(f), "--backend", "model", "--out", str(tmp_path / "o")))
    assert "not a bundle folder" in line


def test_run_bundle_beyond_overlay_capacity(bundle, tmp_path):
    """The bundle's program needs more than the configuration it names: refused, one line."""
    m = json.loads((bundle / "manifest.json").read_text())
    m["hw"]["w_slots"] = 8
    (bundle / "manifest.json").write_text(json.dumps(m))
    line = _one_line_error(zs("run", str(bundle), "--backend", "model", "--out", str(tmp_path / "o")))
    assert "CAPACITY" in line and "program.bin" in line


# Bad arguments that reach past argparse, and files where a folder is expected.

def test_run_board_backend_without_overlay_is_one_line(bundle, tmp_path):
    import os

    r = subprocess.run([sys.executable, "-m", "zeroskip.host.cli", "run", str(bundle), "--backend", "board",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "ZEROSKIP_OVERLAY": str(tmp_path / "no-overlay")})
    line = _one_line_error(r)
    assert "no overlay bitstream" in line


def test_run_out_is_a_file_is_one_line(bundle, tmp_path):
    f = tmp_path / "out-file"
    f.write_text("")
    line = _one_line_error(zs("run", str(bundle), "--backend", "model", "--out", str(f)))
    assert "out-file" in line


def test_run_bundle_exported_without_model_info(bundle, tmp_path):
    """A bundle written by export_bundle() without model information (no dataset or
    sparsity in the manifest) runs and reports."""
    r = zs("run", str(bundle), "--backend", "model", "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-500:]
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    # counts are integers (a dense model's cycles per image are the same for every image)
    for k in ("cycles_dense", "cycles_sparse", "cycles_predicted", "macs_sparse", "mismatches"):
        assert isinstance(s[k], int), (k, s[k])
    assert s["cycles_sparse"] == s["cycles_predicted"]
    assert s["compute_latency_us"] == s["cycles_sparse"] / s["clock_mhz"]
    # wall-clock latency is measured on the board only; off it the key is there but empty
    assert s["latency_e2e_us"] is None and s["per_image_us_at_batch"] is None
    printed = {ln.split()[0]: ln.split()[1] for ln in r.stdout.splitlines()
               if ln.startswith("  ") and len(ln.split()) == 2}
    assert printed["cycles_sparse"] == str(s["cycles_sparse"])       # not 11678.0
    assert f"cycles = prediction ({s['cycles_predicted']} per image)" in r.stderr + r.stdout


@pytest.mark.parametrize("args,needle", [
    (["train", "--epochs", "-1"], "--epochs"),
    (["export", "--n-samples", "-3"], "--n-samples"),
    (["export", "--model", "sparsepixels", "--n-max", "0"], "--n-max"),
])
def test_bad_counts_are_refused_before_training(args, needle, tmp_path):
    """Negative or zero counts: a usage error naming the option (exit 2, no traceback),
    before anything is trained or written."""
    r = zs(*args, "--out", str(tmp_path / "o"), "--quiet", timeout=600)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-500:]
    assert needle in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


# -- the zoo on the command line: demo --model NAME, bench --zoo, bench --kinds ------------------

def test_demo_zoo_choices_match_the_zoo_bench():
    from zeroskip.host import cli
    from zeroskip.host.bench import zoo as zb

    assert set(cli.ZOO_DEMO_MODELS) == set(zb.TRAIN) == set(zb.FINETUNE)


@pytest.mark.ml
def test_demo_zoo_model(tmp_path, monkeypatch, capsys):
    from zeroskip.host import cli

    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    rc = cli.main(["demo", "--model", "jet_mlp", "--backend", "model", "--epochs", "1", "--finetune-epochs", "1",
                   "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "bit-exact" in text and "on model" in text and "us per inference" in text
    s = json.loads((out / "summary_jet_mlp.json").read_text())
    assert s["bit_exact"] is True and s["test_images"] == sum(r["images"] for r in s["runs"])
    assert all(r["mismatches"] == 0 and r["cycles_match"] for r in s["runs"])
    assert s["latency_us"] == pytest.approx(s["cycles_predicted"] / 100.0)
    assert s["weight_sparsity"] == pytest.approx(0.7, abs=1e-3) and 0.0 <= s["int8"] <= 1.0
    assert (out / "bundle_jet_mlp" / "manifest.json").is_file()
    # a dataset is the tiny model's option: a one-line error for zoo models
    assert cli.main(["demo", "--model", "jet_mlp", "--dataset", "digits", "--backend", "model",
                     "--out", str(out)]) == 2
    assert "--dataset" in capsys.readouterr().err


@pytest.mark.ml
def test_bench_zoo_and_kinds(tmp_path, monkeypatch, capsys):
    from zeroskip.host import cli

    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path / "cache"))
    rc = cli.main(["bench", "--zoo", "--kinds", "--models", "jet_mlp", "--lanes", "8", "--backend", "model",
                   "--verify", "1", "--epochs", "1", "--finetune-epochs", "1", "--out", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "jet_mlp" in text and "MAC utilisation per layer kind" in text and "depthwise 3x3" in text
    rows = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    assert [(r["model"], r["lanes"], r["verified_images"], r["mismatches"]) for r in rows] == [("jet_mlp", 8, 1, 0)]
    assert (tmp_path / "zoo" / "zoo.md").is_file() and (tmp_path / "kinds.json").is_file()
    assert cli.main(["bench", "--zoo", "--models", "nope", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli.main(["bench", "--verify", "2", "--out", str(tmp_path)]) == 2
