"""The board-side install, as docs/board.md does it: a pure-Python wheel built on the PC
(``make wheel``), installed with ``--no-deps`` into an environment that has numpy and
nothing else (no torch, no matplotlib, no build step), runs a bundle with ``zeroskip run``.

The environment mimics the oldest supported PYNQ image (v2.7: Python 3.8, pip 20.0.2)
when a Python 3.8 interpreter is on this machine, else it uses this interpreter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import npref
import numpy as np
import pytest
from zeroskip.driver.program import HwConfig
from zeroskip.host.compiler.export import export_bundle
from zeroskip.host.quant.randnet import random_input, random_qmodel

ROOT = Path(__file__).resolve().parents[1]


def _python38() -> str | None:
    for cand in (shutil.which("python3.8"), *sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))):
        if cand and subprocess.run([str(cand), "-c", "import venv"], capture_output=True).returncode == 0:
            return str(cand)
    return None


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """`make wheel`'s command, on a copy of the source tree (setuptools builds in the tree)."""
    src = tmp_path_factory.mktemp("src") / "zeroskip"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "outputs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src])
    wheels = list(dist.glob("zeroskip-*-py3-none-any.whl"))
    assert len(wheels) == 1, "a pure-Python wheel (py3-none-any)"
    return wheels[0]


def test_board_install_runs_a_bundle_without_torch(wheel, tmp_path):
    py = _python38()
    env_dir = tmp_path / "board-env"
    if py:
        _run([py, "-m", "venv", env_dir])
    else:
        venv.EnvBuilder(with_pip=True).create(env_dir)
    pip, python = env_dir / "bin" / "pip", env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if py:
        _run([python, "-m", "pip", "install", "-q", "pip==20.0.2"], env=clean)   # the v2.7 image's pip
    _run([pip, "install", "-q", "numpy"], env=clean)
    _run([pip, "install", "--no-deps", wheel], env=clean)     # no build step, nothing fetched
    probe = _run([python, "-c", "import importlib.util as u, sys; print(sys.version_info[:2], "
                  "[m for m in ('torch', 'matplotlib', 'pynq') if u.find_spec(m)])"], env=clean, cwd=tmp_path)
    assert "[]" in probe.stdout, f"the board environment must have numpy only: {probe.stdout}"

    rng = np.random.default_rng(8)
    model = random_qmodel(rng, input_shape=(2, 9, 9), n_conv=2, sparsity=0.7)
    x = random_input(rng, model, 12)
    bundle = export_bundle(tmp_path / "bundle", model, HwConfig(lanes=8), x, npref.forward(model, x))
    out = tmp_path / "out"
    r = _run([env_dir / "bin" / "zeroskip", "run", bundle, "--backend", "model", "--out", out], env=clean,
             cwd=tmp_path)
    assert "bit-exact: 12 images match the integer reference" in r.stderr + r.stdout
    assert "no plots: matplotlib is not installed" in r.stderr + r.stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["mismatches"] == 0 and s["cycles_sparse"] == s["cycles_predicted"]
    drv = _run([python, "-c", "import zeroskip.driver, sys; print(zeroskip.driver.__file__); "
                "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib')))"], env=clean,
               cwd=tmp_path)
    assert str(env_dir) in drv.stdout and drv.stdout.strip().endswith("[]")


def test_wheel_has_the_benches(wheel):
    """The cocotb benches, their runners and the build table ship as ``zeroskip.tb`` (every
    ``.py`` under ``tb/``), so an installed zeroskip can simulate."""
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    want = {f"zeroskip/tb/{p.relative_to(ROOT / 'tb').as_posix()}" for p in (ROOT / "tb").rglob("*.py")
            if "__pycache__" not in p.parts}
    assert len(want) > 10 and want - names == set(), f"missing from the wheel: {sorted(want - names)}"
