"""CLI: bad arguments and bad files give a one-line error and a non-zero exit, never a
traceback; --help works for every command."""

import json
import subprocess
import sys

import numpy as np
import pytest

from zeroskip.driver.program import HwConfig
from zeroskip.host.export import export_bundle
from zeroskip.host.randnet import random_input, random_qmodel

import npref

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
