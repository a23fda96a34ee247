"""The build table: every simulator build the RTL tests use, listed once.

A build is a toplevel compiled by one simulator with one set of Verilog parameters and
defines (:func:`zeroskip.driver.sim.build.build` caches it by those). Each entry's name is
also its pytest-xdist group (``--dist loadgroup``): every test on a build runs in one
worker, so two workers never compile the same model, and tests that need the same build
name the same entry, so they share it by construction. Runners reach a build only through
:func:`param` (the pytest parameter carrying the group mark) and :func:`run`; two entries
with the same settings are refused at import.

``zeroskip_top`` builds:

* ``verilator-top-L4/L8/L16/L32``: the default capacities, ``FAULT_INJECT=1`` (the fault
  test runs); the top-level bench and the robustness benches (stream fuzzing, AXI stress,
  limit networks) share them, and the sparse-pixel bench shares the LANES 32 one.
* ``icarus-top-L8``: a smaller activation memory (``ACT_BYTES=8192``, ``W_SLOTS=4096``)
  keeps Icarus short and lets the descriptor address checks fire;
  ``icarus-top-L8-synth`` is the same with ``SYNTHESIS`` defined and Yosys's Xilinx
  primitive models, i.e. the DSP48E1 accumulators and counters synthesis maps.
* ``verilator-sparse-L4/L8``, ``verilator-sparse-L8-nosites`` (``SITE_CAP=0``: no
  sparse-pixel support) and ``icarus-sparse-L8``: the sparse-pixel bench, without
  ``FAULT_INJECT``.

Block builds: ``zero_skip_mac``, ``zs_requant``, ``zs_regs`` and ``sparse_dot_product``
on both simulators (the dot product for LANES 4/8/16 on Verilator, 8/32 on Icarus), and
``sparse_weight_store`` with the ``weight_store.hex`` of a small compiled program as
its ``INIT_FILE`` (:func:`weight_store_hex`).

    @pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-top-L8", "icarus-top-L8")])
    def test_x(build, tmp_path):
        builds.run(build, __file__, tmp_path)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import pytest


@dataclass(frozen=True)
class Build:
    toplevel: str
    simulator: str
    params: Mapping[str, object]
    defines: Mapping[str, object] = field(default_factory=dict)
    # Yosys's simulation models of the Xilinx primitives as an extra source (SYNTHESIS view)
    xilinx_cells: bool = False
    # parameters computed when the build runs (e.g. a generated INIT_FILE path)
    late_params: Mapping[str, Callable[[], object]] = field(default_factory=dict)

    def settings(self) -> str:
        return json.dumps([self.toplevel, self.simulator, {k: str(v) for k, v in self.params.items()},
                           {k: str(v) for k, v in self.defines.items()}, self.xilinx_cells,
                           sorted(self.late_params)], sort_keys=True)


def weight_store_hex() -> str:
    """``weight_store.hex`` of a small compiled program, at a content-addressed path in the
    build cache (the ``INIT_FILE`` of the ``sparse_weight_store`` builds)."""
    import numpy as np
    from zeroskip.driver.program import HwConfig, store_hex
    from zeroskip.driver.sim import build as simbuild
    from zeroskip.host.compiler.lowering import compile_model
    from zeroskip.host.quant import randnet

    hw = HwConfig(lanes=8, act_bytes=8192, w_slots=1024)
    rng = np.random.default_rng(3)
    prog = compile_model(randnet.random_qmodel(rng, n_conv=2, n_hidden_fc=1, sparsity=0.5), hw)
    text = store_hex(prog, hw)
    path = simbuild.cache_root() / f"ws-{hashlib.sha256(text.encode()).hexdigest()[:12]}.hex"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text)
    return str(path)


_TOP_ICARUS = {"LANES": 8, "FAULT_INJECT": 1, "ACT_BYTES": 8192, "W_SLOTS": 4096}

BUILDS: dict[str, Build] = {
    # zeroskip_top: top-level bench and robustness benches
    "verilator-top-L8": Build("zeroskip_top", "verilator", {"LANES": 8, "FAULT_INJECT": 1}),
    "verilator-top-L4": Build("zeroskip_top", "verilator", {"LANES": 4, "FAULT_INJECT": 1}),
    "verilator-top-L16": Build("zeroskip_top", "verilator", {"LANES": 16, "FAULT_INJECT": 1}),
    "verilator-top-L32": Build("zeroskip_top", "verilator", {"LANES": 32, "FAULT_INJECT": 1}),
    "icarus-top-L8": Build("zeroskip_top", "icarus", _TOP_ICARUS),
    "icarus-top-L8-synth": Build("zeroskip_top", "icarus", _TOP_ICARUS, {"SYNTHESIS": 1}, xilinx_cells=True),
    # zeroskip_top: sparse-pixel bench
    "verilator-sparse-L8": Build("zeroskip_top", "verilator", {"LANES": 8}),
    "verilator-sparse-L4": Build("zeroskip_top", "verilator", {"LANES": 4}),
    "verilator-sparse-L8-nosites": Build("zeroskip_top", "verilator", {"LANES": 8, "SITE_CAP": 0}),
    "icarus-sparse-L8": Build("zeroskip_top", "icarus", {"LANES": 8, "ACT_BYTES": 16384, "W_SLOTS": 8192}),
    # blocks
    "verilator-mac": Build("zero_skip_mac", "verilator", {"ACC_W": 32, "ACC_ENABLE": 1}),
    "icarus-mac": Build("zero_skip_mac", "icarus", {"ACC_W": 32, "ACC_ENABLE": 1}),
    "verilator-requant": Build("zs_requant", "verilator", {"N": 4}),
    "icarus-requant": Build("zs_requant", "icarus", {"N": 4}),
    "verilator-regs": Build("zs_regs", "verilator", {"LANES": 8, "FAULT_INJECT": 1}),
    "icarus-regs": Build("zs_regs", "icarus", {"LANES": 4, "MAX_LAYERS": 5, "SITE_CAP": 0}),
    **{f"verilator-dot-L{n}": Build("sparse_dot_product", "verilator", {"LANES": n}) for n in (4, 8, 16)},
    **{f"icarus-dot-L{n}": Build("sparse_dot_product", "icarus", {"LANES": n}) for n in (8, 32)},
    **{f"{sim}-ws": Build("sparse_weight_store", sim, {"DEPTH": 128, "WIDTH": 8 * 24},
                          late_params={"INIT_FILE": lambda: f'"{weight_store_hex()}"'})
       for sim in ("verilator", "icarus")},
}

_seen: dict[str, str] = {}
for _name, _b in BUILDS.items():
    if _b.settings() in _seen:
        raise ValueError(f"builds {_seen[_b.settings()]} and {_name} are the same build")
    _seen[_b.settings()] = _name


def param(build: str, *values, slow: bool = False, id: str | None = None):
    """A pytest parameter ``(build, *values)`` in the build's xdist group (``slow``: also
    marked ``slow``, run with ``--fuzz``); its id is the build name and the values."""
    if build not in BUILDS:
        raise KeyError(f"{build!r} is not in the build table (tb/common/builds.py)")
    marks = [pytest.mark.xdist_group(build)] + ([pytest.mark.slow] if slow else [])
    return pytest.param(build, *values, id=id or "-".join([build, *map(str, values)]), marks=marks)


def params_of(build: str) -> dict:
    """The Verilog parameters of ``build``, computed ones included."""
    b = BUILDS[build]
    return {**b.params, **{k: f() for k, f in b.late_params.items()}}


TB_DIR = Path(__file__).resolve().parents[1]


def bench_module(bench_file: str | os.PathLike) -> str:
    """The importable name of a bench file under ``tb/``:
    ``tb/zeroskip_top/test_zeroskip_top.py`` -> ``zeroskip.tb.zeroskip_top.test_zeroskip_top``."""
    rel = Path(bench_file).resolve().relative_to(TB_DIR).with_suffix("")
    return ".".join(("zeroskip", "tb", *rel.parts))


def run(build: str, bench_file: str | os.PathLike, test_dir, env: Mapping[str, str] | None = None) -> Path:
    """Run the cocotb tests of the bench ``bench_file`` (a runner passes its ``__file__``)
    on ``build`` (built once, cached); returns the results file. A failing cocotb test
    fails the calling pytest test."""
    from zeroskip.driver.sim import build as simbuild

    b = BUILDS[build]
    return simbuild.run(b.toplevel, bench_module(bench_file), params_of(build), b.simulator, test_dir=test_dir,
                        extra_env=env, defines=dict(b.defines) or None,
                        extra_sources=[simbuild.xilinx_cells_sim()] if b.xilinx_cells else ())


def fuzz_enabled() -> bool:
    """``--fuzz`` given (the long campaigns): the conftest sets ``ZEROSKIP_FUZZ=1``."""
    return os.environ.get("ZEROSKIP_FUZZ") == "1"


def run_with_stats(build: str, bench_file: str | os.PathLike, env: Mapping[str, str], test_dir, name: str) -> dict:
    """:func:`run` for a robustness bench that writes its counts to ``ZEROSKIP_FUZZ_STATS``;
    returns them, prints a summary and, when ``ZEROSKIP_STATS_DIR`` is set, copies the file
    there as ``<name>-<build>.json``."""
    stats = Path(test_dir) / "stats.json"
    run(build, bench_file, test_dir, {**env, "ZEROSKIP_FUZZ_STATS": str(stats)})
    data = json.loads(stats.read_text())
    out = os.environ.get("ZEROSKIP_STATS_DIR")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copy(stats, os.path.join(out, f"{name}-{build}.json"))
    for bench, d in data.items():
        print(f"{bench} [{build}]: {d['cases']} cases, recovery {d.get('recovery')}")
    return data
