"""Post-build step of zeroskip.core's sim target: run the cocotb testbench on the design
FuseSoC compiled with Icarus Verilog (with the target's parameters, e.g. --LANES=16).

Run from the work root (the FuseSoC hook does). FuseSoC 2.4's own cocotb run does not set
the variables cocotb 2.x needs (GPI_USERS), so this script starts vvp itself:

    python3 run_cocotb.py [--waves]

The target's parameters reach the bench as ``ZEROSKIP_SIM_PARAMS`` (what
``zeroskip.driver.sim.build`` sets). Environment: COCOTB_TEST_FILTER selects tests by regular
expression, ZEROSKIP_WAVES=1 writes an FST waveform. Exit status 1 unless results.xml reports at least one test and
no failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

TEST_MODULE = "test_zeroskip_top"
TOPLEVEL = "zeroskip_top"


def _design(work: Path) -> Path:
    edam = sorted(work.glob("*.eda.yml"))
    if not edam:
        raise FileNotFoundError(f"{work} is not a FuseSoC work root (no *.eda.yml)")
    vvp = work / edam[0].name[: -len(".eda.yml")]
    if not vvp.is_file():
        raise FileNotFoundError(f"{vvp} missing: the Icarus compile did not run")
    return vvp


def _tb_dir(work: Path) -> Path:
    found = sorted(work.glob(f"src/*/tb/{TOPLEVEL}/{TEST_MODULE}.py")) + sorted(work.glob(f"{TEST_MODULE}.py"))
    if not found:
        raise FileNotFoundError(f"{TEST_MODULE}.py not found under {work}/src/*/tb/{TOPLEVEL}")
    return found[0].parent


def parameters(work: Path) -> dict:
    """The Verilog parameters FuseSoC passed to Icarus (``+parameter+TOP.NAME=value`` in
    the command file)."""
    params = {}
    for scr in work.glob("*.scr"):
        for m in re.finditer(rf"^\+parameter\+{TOPLEVEL}\.(\w+)=(-?\d+)\s*$", scr.read_text(), re.M):
            params[m.group(1)] = int(m.group(2))
    return params


def results(path: Path) -> tuple[int, int]:
    """(tests, failures) of a cocotb results.xml."""
    if not path.is_file():
        return 0, 0
    tests = failed = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
    return tests, failed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import find_libpython  # a cocotb dependency
    from cocotb_tools import config

    work = Path.cwd()
    vvp = _design(work)
    tb = _tb_dir(work)
    libpython = os.environ.get("LIBPYTHON_LOC") or find_libpython.find_libpython()
    env = dict(os.environ)
    env.update({
        "LIBPYTHON_LOC": libpython,
        "GPI_USERS": f"{libpython};{config.pygpi_entry_point()}",
        "PYGPI_PYTHON_BIN": sys.executable,
        "COCOTB_TEST_MODULES": TEST_MODULE,
        "COCOTB_TOPLEVEL": TOPLEVEL,
        "TOPLEVEL_LANG": "verilog",
        "COCOTB_RESULTS_FILE": str(work / "results.xml"),
        # the bench's expectations (tb/common/zstb.py) follow the compiled parameters
        "ZEROSKIP_SIM_PARAMS": json.dumps(parameters(work)),
        "ZEROSKIP_SIMULATOR": "icarus",
        "PYTHONPATH": os.pathsep.join([str(tb)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    })
    waves = "--waves" in argv or os.environ.get("ZEROSKIP_WAVES") == "1"
    (work / "results.xml").unlink(missing_ok=True)
    cmd = ["vvp", "-m", config.lib_entry("vpi", "icarus"), str(vvp), "-fst" if waves else "-none"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=work, env=env, check=False)
    tests, failed = results(work / "results.xml")
    if tests == 0:
        print("run_cocotb: no test results (results.xml missing or empty)", file=sys.stderr)
        return 1
    print(f"run_cocotb: {tests - failed}/{tests} tests passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
