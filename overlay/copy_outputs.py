"""Post-build step of zeroskip.core's pynq_z2 target: put the bitstream and its hardware
handoff side by side under one basename, as pynq requires (``zeroskip.bit`` + ``zeroskip.hwh``).

Run from the work root (the FuseSoC hook does):

    python3 copy_outputs.py [DEST_DIR]

DEST_DIR defaults to ``$ZEROSKIP_OVERLAY_DIR``, else the ``overlay/`` folder next to the
zeroskip.core the build came from (read from the EDAM file), else ``./overlay``. The
``.hwh`` must describe our IP: its VLNV from ``contract.json`` has to appear in it.

A bitstream is shipped only with the timing gate's verdict: ``timing_ok.txt``, which
``zs_check_timing.tcl`` writes in the work root when the routed design meets setup and
hold timing (it stops the run before ``write_bitstream`` otherwise). A bitstream without
that file, or with a negative slack in it, is refused, and nothing is copied.

Standard library only; exits non-zero with a message naming what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

BASENAME = "zeroskip"
BD_NAME = "zeroskip_bd"


def _newest(paths: list[Path]) -> Path | None:
    paths = [p for p in paths if p.is_file()]
    return max(paths, key=lambda p: p.stat().st_mtime) if paths else None


def find_bitstream(work: Path) -> Path | None:
    """The implemented bitstream: Vivado's impl_1 output, or edalize's copy in the work root."""
    return _newest(list(work.glob(f"*.runs/impl_1/{BD_NAME}_wrapper.bit")) + list(work.glob("*.bit")))


def find_hwh(work: Path) -> Path | None:
    """The block design's hardware handoff (Vivado 2020.2+ writes it under *.gen, older under *.srcs)."""
    pattern = f"sources_1/bd/{BD_NAME}/hw_handoff/{BD_NAME}.hwh"
    return _newest(list(work.glob(f"*.gen/{pattern}")) + list(work.glob(f"*.srcs/{pattern}")))


def default_dest(work: Path) -> Path:
    env = os.environ.get("ZEROSKIP_OVERLAY_DIR")
    if env:
        return Path(env)
    for eda in sorted(work.glob("*.eda.yml")):
        m = re.search(r"^\s*core_file:\s*(\S+\.core)\s*$", eda.read_text(), re.M)
        if m:
            core = (work / m.group(1)).resolve()
            if core.is_file():
                return core.parent / "overlay"
    return work / "overlay"


def expected_vlnv(work: Path) -> str | None:
    contract = work / "contract.json"
    if not contract.is_file():
        return None
    ip = json.loads(contract.read_text())["ip"]
    return "{vendor}:{library}:{name}:{version}".format(**ip)


TIMING_OK = "timing_ok.txt"


def check_timing(work: Path) -> dict:
    """The slacks the timing gate recorded (``{"WNS": ns, "WHS": ns}``); raises unless
    both are there and non-negative."""
    marker = work / TIMING_OK
    if not marker.is_file():
        raise ValueError(f"no {TIMING_OK} in {work}: the timing gate (zs_check_timing.tcl, run by impl_1 before "
                         "write_bitstream) did not pass, so this bitstream is not shipped; see the timing summary "
                         "of *.runs/impl_1")
    slack = {}
    for line in marker.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                slack[parts[0]] = float(parts[1])
            except ValueError:
                pass
    if set(slack) != {"WNS", "WHS"}:
        raise ValueError(f"{marker} does not hold WNS and WHS: {marker.read_text()!r}")
    if slack["WNS"] < 0 or slack["WHS"] < 0:
        raise ValueError(f"the routed design misses timing (WNS {slack['WNS']} ns, WHS {slack['WHS']} ns): "
                         "not shipping the bitstream")
    return slack


def copy_outputs(work: Path, dest: Path) -> tuple[Path, Path]:
    bit = find_bitstream(work)
    hwh = find_hwh(work)
    if bit is None:
        raise FileNotFoundError(f"no bitstream in {work}: did implementation finish (see *.runs/impl_1/runme.log)?")
    check_timing(work)
    if hwh is None:
        raise FileNotFoundError(f"no {BD_NAME}.hwh under {work}/*.gen or *.srcs: was the block design generated?")
    vlnv = expected_vlnv(work)
    if vlnv and vlnv not in hwh.read_text(errors="replace"):
        raise ValueError(f"{hwh} does not contain the IP {vlnv}: the block design lacks the zeroskip IP")
    dest.mkdir(parents=True, exist_ok=True)
    out_bit, out_hwh = dest / f"{BASENAME}.bit", dest / f"{BASENAME}.hwh"
    shutil.copyfile(bit, out_bit)
    shutil.copyfile(hwh, out_hwh)
    return out_bit, out_hwh


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    work = Path.cwd()
    dest = Path(argv[0]) if argv else default_dest(work)
    try:
        out_bit, out_hwh = copy_outputs(work, dest)
    except (FileNotFoundError, ValueError) as e:
        print(f"copy_outputs: {e}", file=sys.stderr)
        return 1
    print(f"copy_outputs: {out_bit}\ncopy_outputs: {out_hwh}\n"
          f"copy both to the board (same folder) and load with pynq.Overlay('{out_bit.name}')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
